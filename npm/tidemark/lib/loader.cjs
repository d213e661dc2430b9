'use strict';
// Finds the engine: the native package for this platform, else the
// WebAssembly package. TIDEMARK_BACKEND=native|wasm forces one.

const fs = require('node:fs');
const path = require('node:path');
const { TidemarkError } = require('./errors.cjs');
const { version: OWN_VERSION } = require('../package.json');

/** `linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`, ...: napi-rs's platform names. */
function platformSuffix(platform = process.platform, arch = process.arch) {
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function isMusl() {
  // musl's dynamic loader is /lib/ld-musl-<arch>.so.1. Checking for it costs
  // well under a millisecond, where process.report.getReport() (which says
  // the same through the glibc version) costs 10-15 ms on every start.
  try {
    return fs.readdirSync('/lib').some((f) => f.startsWith('ld-musl-'));
  } catch {
    return false;
  }
}

function reason(err) {
  const first = String(err && err.message ? err.message : err).split('\n')[0];
  return err && err.code === 'MODULE_NOT_FOUND' ? `not installed (${first})` : first;
}

function checkVersion(binding, what) {
  let v;
  try {
    v = binding.version();
  } catch (err) {
    // tidemark-wasm loads its module on first use: a module that is not
    // there (not built in a source checkout) is "not installed", as a
    // missing package is.
    if (err && err.code === 'MODULE_NOT_FOUND') throw err;
    throw new TidemarkError('E_BACKEND', `${what} loaded but its version() failed: ${reason(err)}`);
  }
  if (v !== OWN_VERSION) {
    throw new TidemarkError(
      'E_BACKEND',
      `${what} is version ${v}, but tidemark is ${OWN_VERSION}; they must match. ` +
        `Reinstall so both come from the same release (npm install tidemark@${OWN_VERSION}), ` +
        'and check that the lockfile does not pin another version of the platform package',
    );
  }
}

function tryNative(tried) {
  const suffix = platformSuffix();
  const packageName = `@tidemark/${suffix}`;
  try {
    const binding = require(packageName);
    checkVersion(binding, packageName);
    return { backend: 'native', binding, packageName, path: require.resolve(packageName) };
  } catch (err) {
    if (err instanceof TidemarkError) throw err;
    tried.push(`${packageName}: ${reason(err)}`);
  }
  // A development checkout of this repository: npm/platforms/<suffix>/ beside
  // npm/tidemark/, where the addon build puts the file.
  const local = path.join(__dirname, '..', '..', 'platforms', suffix, `tidemark.${suffix}.node`);
  if (!fs.existsSync(local)) {
    if (fs.existsSync(path.dirname(path.dirname(local)))) tried.push(`${local}: not built yet`);
  } else {
    try {
      const binding = require(local);
      checkVersion(binding, `${packageName} (${local})`);
      return { backend: 'native', binding, packageName, path: local };
    } catch (err) {
      if (err instanceof TidemarkError) throw err;
      tried.push(`${local}: ${reason(err)}`);
    }
  }
  return undefined;
}

/**
 * Set by the CLI, whose process ends with the command: the wasm engine's
 * code then stays in V8's baseline compiler unless it runs very hot (a
 * multi-megabyte migration). By default V8 recompiles every function that
 * has run a little with its optimizing compiler on a background thread, and
 * a short command pays for that twice: the compiles compete with the
 * command for the CPU, and the process cannot exit until they finish. A
 * 200-migration no-op deploy spent 20-60 ms on them (bench/README.md, issue
 * 15). Never set for the API: a V8 flag applies to the whole process, and a
 * long-lived one wants the optimized code.
 */
const shortLived = { value: false };
const WASM_TIERING_BUDGET = 100_000_000; // V8's default: 1,800,000
// Also for the CLI: V8 validates a function of the module when it first
// compiles it (on its first call), not all 1,400 of them when the module
// is compiled; a no-op deploy runs about half of them. 1.5-2 ms less per
// wasm command (bench/README.md, issue 15). The module is built by us and
// checked by the test suite; a function that failed validation would
// still be refused, when called.
const WASM_FLAGS = [`--wasm-tiering-budget=${WASM_TIERING_BUDGET}`, '--wasm-lazy-validation'];
// The Node.js majors whose V8 has these flags (V8 prints an error line for
// a flag it does not know, so a later Node is left at its defaults).
const WASM_FLAGS_NODE = [20, 24];

function tryWasm(tried) {
  // tidemark-wasm's package.json has "main" and no "exports" map: resolving
  // an exports map loads Node's ES module resolver, 1.5 ms of every wasm
  // command (start-up, issue 15).
  const packageName = 'tidemark-wasm';
  const major = Number(process.versions.node.split('.')[0]);
  if (shortLived.value && major >= WASM_FLAGS_NODE[0] && major <= WASM_FLAGS_NODE[1]) {
    const v8 = require('node:v8');
    for (const flag of WASM_FLAGS) v8.setFlagsFromString(flag);
  }
  try {
    const binding = require(packageName);
    checkVersion(binding, packageName);
    return { backend: 'wasm', binding, packageName, path: require.resolve(packageName) };
  } catch (err) {
    if (err instanceof TidemarkError) throw err;
    tried.push(`${packageName}: ${reason(err)}`);
  }
  return undefined;
}

const cache = new Map();

/**
 * The repository root when this package runs from a source checkout of
 * tidemark (npm/tidemark beside crates/), where the engines come from
 * `npm run build`, not from npm; else undefined.
 */
function sourceCheckout() {
  const root = path.join(__dirname, '..', '..', '..');
  return fs.existsSync(path.join(root, 'crates', 'tidemark-node', 'Cargo.toml')) ? root : undefined;
}

/**
 * Loads the engine. `env` is where TIDEMARK_BACKEND is read (default
 * process.env). Returns `{ backend: 'native' | 'wasm', binding, packageName,
 * path }`; throws a TidemarkError E_BACKEND listing what was tried and why
 * each failed, and how to fix it.
 */
function load(env = process.env) {
  const want = env.TIDEMARK_BACKEND || '';
  if (cache.has(want)) return cache.get(want);
  if (!['', 'native', 'wasm'].includes(want)) {
    throw new TidemarkError('E_BACKEND', `TIDEMARK_BACKEND must be "native" or "wasm", not ${JSON.stringify(want)}`);
  }
  const tried = [];
  const result = (want !== 'wasm' && tryNative(tried)) || (want !== 'native' && tryWasm(tried)) || undefined;
  if (!result) {
    const forced = want ? ` (TIDEMARK_BACKEND=${want})` : '';
    const fixes = [];
    const checkout = sourceCheckout();
    if (checkout) {
      fixes.push(
        `this is a source checkout of tidemark (${checkout}) whose engines are not built yet: ` +
          'run npm run build there (it builds the native addon and the wasm package; it needs the Rust toolchain)',
      );
    } else if (want !== 'wasm') {
      fixes.push(
        'reinstall without --omit=optional (npm install, or npm ci without --omit=optional / --no-optional), ' +
          'and check that package-lock.json was not created on another platform with the optional ' +
          '@tidemark/* packages left out (delete node_modules and run npm install again)',
      );
    }
    if (want === 'wasm' && !checkout) fixes.push(`reinstall tidemark so that tidemark-wasm@${OWN_VERSION} is installed beside it`);
    if (want) fixes.push('or unset TIDEMARK_BACKEND to let tidemark pick the engine');
    throw new TidemarkError(
      'E_BACKEND',
      `tidemark could not load its engine for ${platformSuffix()}${forced}. Tried:\n` +
        tried.map((t) => `  - ${t}`).join('\n') +
        `\nTo fix: ${fixes.join('; ')}`,
    );
  }
  cache.set(want, result);
  return result;
}

/**
 * The engine's defaults of its request's keys (`schema`, `table`,
 * `seedsTable`, `lockWaitTimeout`, `connectTimeout` in ms, `seedEnv`):
 * declared once, in the engine.
 */
function defaults(env = process.env) {
  const loaded = load(env);
  loaded.defaults ??= loaded.binding.defaults();
  return loaded.defaults;
}

module.exports = { load, defaults, platformSuffix, isMusl, shortLived };
