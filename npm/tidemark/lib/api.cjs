'use strict';
// The JS API: resolve options like the CLI, then one run (lib/run.cjs); an
// engine error gets its fix in the API's words (lib/fixes.cjs).

const { TidemarkError } = require('./errors.cjs');
const { withFix } = require('./fixes.cjs');
const { resolveConfig } = require('./config.cjs');
const { redact } = require('./url.cjs');
const { run, verifyWith, createFiles } = require('./run.cjs');
const { version: VERSION } = require('../package.json');

/** Runs `fn(config)` with the resolved config; an engine error gets its fix in the API's words. */
async function withConfig(options, fn) {
  const config = resolveConfig(options);
  try {
    return await fn(config);
  } catch (err) {
    throw withFix(err, config, { cli: false });
  }
}

function command(name) {
  const fn = async (options = {}) =>
    withConfig(options, (config) => run(name, config, { onEvent: options.onEvent, embedded: options.embedded === true }));
  Object.defineProperty(fn, 'name', { value: name });
  return fn;
}

/** Replays the migrations on a throwaway embedded database; see verifyWith in lib/run.cjs. */
async function verify(options = {}) {
  return withConfig(options, (config) => verifyWith(config, { onEvent: options.onEvent }));
}

/** Accepts the edit of applied migration `options.version` (with `options.reason`). */
async function accept(options = {}) {
  const version = options.version === undefined ? undefined : String(options.version);
  return withConfig(options, (config) => run('accept', { ...config, version }, { onEvent: options.onEvent }));
}

/** Creates the next migration file(s); see createFiles. */
async function create(options = {}) {
  const config = resolveConfig(options);
  return createFiles(config, { name: options.name, reversible: options.reversible, now: options.now, onEvent: options.onEvent });
}

module.exports = {
  migrate: command('migrate'),
  deploy: command('deploy'),
  status: command('status'),
  down: command('down'),
  redo: command('redo'),
  seed: command('seed'),
  reset: command('reset'),
  adopt: command('adopt'),
  baseline: command('baseline'),
  unlock: command('unlock'),
  plan: command('plan'),
  createDatabase: command('createDatabase'),
  verify,
  accept,
  create,
  resolveConfig: (options) => resolveConfig(options),
  redact: (url) => redact(url),
  TidemarkError,
  version: VERSION,
};
