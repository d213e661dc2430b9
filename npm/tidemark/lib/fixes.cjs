'use strict';
// The engine's messages name no flag: it cannot know whether the CLI or an
// API call asked. The host adds the fix in its caller's words, by error
// code: `--allow-out-of-order` for the CLI, `the allowOutOfOrder option` for
// the API (names from the one options table).

const path = require('node:path');
const { OPTIONS } = require('./options.cjs');

const FIXES = {
  E_SEED_PRODUCTION: (name, config) => {
    const folder = path.relative(config.cwd, path.join(config.seedsDir, 'production')) || '.';
    if (config.allowProduction) return `${name('allowProduction')} only runs ${folder}: pass ${name('env', 'production')}`;
    return `if you really mean it, pass ${name('allowProduction')} ${name('env', 'production')} to run ${folder}`;
  },
  E_OUT_OF_ORDER: (name) => `to apply it as it is, pass ${name('allowOutOfOrder')}`,
  E_MISSING_MIGRATION: (name, config) => `the folder read is ${path.relative(config.cwd, config.dir) || '.'} (${name('dir')})`,
  E_TRACKING_TABLE_TOUCHED: (name) => `with ${name('table')} (or TIDEMARK_TABLE, or "table" in tidemark.config.json)`,
  E_TRACKING_TABLE_INCOMPATIBLE: (name) => `for example with ${name('table', 'tidemark_migrations')} (or TIDEMARK_TABLE, or "table" in tidemark.config.json)`,
};

/**
 * Appends the fix for `err.code` to its message, naming options as the CLI
 * (`cli: true`) or the API does. Returns `err`.
 */
function withFix(err, config, { cli }) {
  const fix = config && err && FIXES[err.code];
  if (!fix || err.fixed) return err;
  const name = (key, value) => {
    const opt = OPTIONS.find((o) => o.key === key);
    if (cli) return value === undefined ? `--${opt.flag}` : `--${opt.flag} ${value}`;
    return value === undefined ? `the ${key} option` : `${key}: '${value}'`;
  };
  err.message = `${err.message}; ${fix(name, config)}`;
  Object.defineProperty(err, 'fixed', { value: true });
  return err;
}

module.exports = { withFix };
