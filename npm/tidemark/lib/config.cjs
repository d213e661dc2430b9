'use strict';
// Resolves options exactly the same way for the CLI and the API:
// flags (or API options) > environment (with .env files) > config file > defaults.

const fs = require('node:fs');
const path = require('node:path');
const { OPTIONS, URL_ENV, parseDuration, bareUnit } = require('./options.cjs');
const { TidemarkError } = require('./errors.cjs');
const { loadDotenv } = require('./dotenv.cjs');
const { resolveUrl, redact, choosePooling, DIRECT_ENV } = require('./url.cjs');
const loader = require('./loader.cjs');

// Options resolved on their own below, not by the generic loop.
const SEPARATE = new Set(['url', 'config', 'env', 'allowProduction', 'force']);

const MAX_INT32 = 2 ** 31 - 1;

/** Reads and parses a JSON file; a missing file is `undefined` when `optional`. */
function readJson(file, label, optional) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (optional && err.code === 'ENOENT') return undefined;
    throw new TidemarkError('E_CONFIG', `could not read the config file ${label}: ${err.message}`);
  }
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    throw new TidemarkError('E_CONFIG', `the config file ${label} is not valid JSON: ${err.message}`);
  }
}

/**
 * Finds the config: `--config <path>`, else `tidemark.config.json` in `cwd`,
 * else the `tidemark` key of `cwd`'s package.json. Returns
 * `{ values, label, dir, file }` (values `{}` and label undefined when none).
 */
function loadConfigFile(cwd, explicit) {
  const rel = (f) => path.relative(cwd, f) || f;
  if (explicit) {
    const file = path.resolve(cwd, explicit);
    const label = rel(file);
    const json = readJson(file, label, false);
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      throw new TidemarkError('E_CONFIG', `the config file ${label} must hold a JSON object`);
    }
    // A package.json passed explicitly is read like the default one.
    const values = path.basename(file) === 'package.json' ? (json.tidemark ?? {}) : json;
    return { values, label: path.basename(file) === 'package.json' ? `${label} ("tidemark" key)` : label, dir: path.dirname(file), file };
  }
  const own = path.join(cwd, 'tidemark.config.json');
  const json = readJson(own, 'tidemark.config.json', true);
  if (json !== undefined) {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      throw new TidemarkError('E_CONFIG', 'the config file tidemark.config.json must hold a JSON object');
    }
    return { values: json, label: 'tidemark.config.json', dir: cwd, file: own };
  }
  const pkgFile = path.join(cwd, 'package.json');
  const pkg = readJson(pkgFile, 'package.json', true);
  if (pkg && typeof pkg === 'object' && pkg.tidemark !== undefined) {
    if (pkg.tidemark === null || typeof pkg.tidemark !== 'object' || Array.isArray(pkg.tidemark)) {
      throw new TidemarkError('E_CONFIG', 'the "tidemark" key of package.json must be an object');
    }
    return { values: pkg.tidemark, label: 'package.json ("tidemark" key)', dir: cwd, file: pkgFile };
  }
  return { values: {}, label: undefined, dir: cwd, file: undefined };
}

function describeSource(opt, source, cli) {
  if (source === 'flag') return cli ? `--${opt.flag}` : `the ${opt.key} option`;
  if (source.startsWith('env:')) return source.slice(4);
  return `"${opt.key}" in ${source.slice(7)}`;
}

function convert(opt, value, source, cli) {
  const where = () => describeSource(opt, source, cli);
  const code = source === 'flag' && cli ? 'E_USAGE' : 'E_CONFIG';
  switch (opt.type) {
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      throw new TidemarkError(code, `${where()} must be true or false, not ${JSON.stringify(value)}`);
    case 'duration': {
      // Milliseconds from here on: the engine takes `<key>Ms` (api.cjs).
      const ms = parseDuration(value, opt.unit);
      // 0 would mean "no time at all" to one engine and "no limit" to another:
      // refused, like negative and non-numeric values, with one message.
      // The engine and PostgreSQL's own timeouts take 32-bit milliseconds.
      if (ms === undefined || ms < 1 || ms > MAX_INT32) {
        const example = opt.unit === 's' ? '20' : '5000';
        throw new TidemarkError(
          code,
          `${where()} must be a duration above zero such as ${example} (${bareUnit(opt)}), 500ms, 20s or 2min ` +
            `(at most 24 days), not ${JSON.stringify(value)}`,
        );
      }
      return ms;
    }
    case 'integer': {
      const n = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(String(value)) ? Number(value) : NaN;
      if (!Number.isSafeInteger(n) || n < 1 || n > MAX_INT32) {
        throw new TidemarkError(code, `${where()} must be a whole number of at least 1, not ${JSON.stringify(value)}`);
      }
      return n;
    }
    default:
      if (typeof value !== 'string' || value === '') {
        throw new TidemarkError(code, `${where()} must be a non-empty string, not ${JSON.stringify(value)}`);
      }
      return value;
  }
}

/** The environment variable and value that say this is production, or undefined. */
function productionSignal(env) {
  if (env.NODE_ENV === 'production') return 'NODE_ENV=production';
  if (env.VERCEL_ENV === 'production') return 'VERCEL_ENV=production';
  return undefined;
}

/**
 * Resolves every option the way the CLI does. `options` are the API options
 * (or the CLI's flags); `internal.cli` makes messages name flags.
 *
 * Returns a plain object: cwd, env (the environment with .env files merged
 * in, never written back to process.env), dotenvFiles, configFile, url,
 * urlSource, redactedUrl, dir and seedsDir (absolute), schema, table,
 * seedsTable, the timeouts in ms, allowDrift, allowMissing, allowOutOfOrder,
 * to, steps, reversible, seedEnv, production, productionSource,
 * allowProduction, force, sources (where each value came from) and warnings.
 */
function resolveConfig(options = {}, internal = {}) {
  const cli = Boolean(internal.cli);
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const baseEnv = options.environment ?? process.env;
  const dot = options.dotenv === false ? { values: {}, origin: {}, files: [] } : loadDotenv(cwd, baseEnv);
  const env = { ...dot.values, ...baseEnv };
  const cfg = loadConfigFile(cwd, options.config);
  const warnings = [];

  const known = new Set(OPTIONS.filter((o) => o.config).map((o) => o.key));
  for (const key of Object.keys(cfg.values)) {
    if (key === '$schema') continue;
    if (!known.has(key)) {
      warnings.push({
        event: 'warning',
        code: 'W_CONFIG_UNKNOWN_KEY',
        message: `unknown key "${key}" in ${cfg.label} (ignored); known keys: ${[...known].join(', ')}`,
      });
    }
  }

  const out = {
    cwd,
    env,
    dotenvFiles: dot.files,
    configFile: cfg.file,
    sources: {},
    warnings,
  };
  for (const opt of OPTIONS) {
    if (opt.cli || SEPARATE.has(opt.key)) continue;
    let value;
    let source;
    if (options[opt.key] !== undefined && options[opt.key] !== null) {
      value = options[opt.key];
      source = 'flag';
    } else if (opt.env && env[opt.env]) {
      value = env[opt.env];
      source = `env:${opt.env}`;
    } else if (opt.config && cfg.values[opt.key] !== undefined && cfg.values[opt.key] !== null) {
      value = cfg.values[opt.key];
      source = `config:${cfg.label}`;
    }
    if (source === undefined) {
      out[opt.key] = opt.engineDefault ? loader.defaults(env)[opt.key] : opt.default;
      out.sources[opt.key] = 'default';
      if (opt.type === 'path' && opt.default !== undefined) out[opt.key] = path.resolve(cwd, opt.default);
      continue;
    }
    let v = convert(opt, value, source, cli);
    // Paths in a config file are relative to that file, like tsconfig's.
    if (opt.type === 'path') v = path.resolve(source.startsWith('config:') ? cfg.dir : cwd, v);
    out[opt.key] = v;
    out.sources[opt.key] = source.startsWith('config:') ? cfg.label : source.startsWith('env:') ? source.slice(4) : cli ? `--${opt.flag}` : 'option';
  }

  const configUrl = cfg.values.url;
  if (configUrl !== undefined && typeof configUrl !== 'string') {
    throw new TidemarkError('E_CONFIG', `"url" in ${cfg.label} must be a string`);
  }
  const { url, source } = resolveUrl({
    flag: options.url,
    flagLabel: cli ? '--url' : 'the url option',
    env,
    configUrl,
    configLabel: cfg.label,
  });
  const pooling = choosePooling({ url, source, env });
  out.url = pooling.url;
  out.urlSource = pooling.source;
  out.redactedUrl = pooling.url === undefined ? undefined : redact(pooling.url, env);
  out.poolSafe = pooling.pooled;
  out.pooledFrom = pooling.switchedFrom;
  out.poolerReason = pooling.reason;
  if (pooling.pooled) {
    out.warnings.push({
      event: 'warning',
      code: 'W_POOLED_URL',
      message:
        `${pooling.source} goes through a connection pooler (${pooling.reason}) and no direct URL is set ` +
        `(${DIRECT_ENV.join(', ')}): using pool-safe mode (a transaction-scoped lock, no session settings); ` +
        'set a direct URL for migrations where you can',
    });
  }

  if (options.env !== undefined && options.env !== null && (typeof options.env !== 'string' || options.env === '')) {
    throw new TidemarkError(cli ? 'E_USAGE' : 'E_CONFIG', `${cli ? '--env' : 'the env option'} must be a non-empty string`);
  }
  out.seedEnv = options.env || env.NODE_ENV || loader.defaults(env).seedEnv;
  if (/[/\\]|^\.\.?$/.test(out.seedEnv)) {
    throw new TidemarkError(cli && options.env ? 'E_USAGE' : 'E_CONFIG', `the seed environment ${JSON.stringify(out.seedEnv)} must be a plain folder name (no '/' or '..')`);
  }
  out.productionSource = productionSignal(env);
  out.production = out.productionSource !== undefined;
  out.allowProduction = Boolean(options.allowProduction);
  out.force = Boolean(options.force);
  return out;
}

/** The message of E_NO_DATABASE_URL: every place that was looked at. */
function noUrlMessage(config) {
  const where = config.configFile ? ` or "url" in ${path.relative(config.cwd, config.configFile) || config.configFile}` : '';
  return (
    `no database URL: pass --url, or set one of ${URL_ENV.join(', ')} ` +
    `(in the environment or a .env file)${where}, or the PGHOST/PGDATABASE variables`
  );
}

module.exports = { resolveConfig, loadConfigFile, productionSignal, noUrlMessage };
