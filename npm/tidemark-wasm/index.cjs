'use strict';
// The wasm backend, with the same functions as the native addon:
// migrate/deploy/status/down/redo/seed/reset/adopt/baseline/unlock/accept/plan/
// createDatabase/verify(options, onEvent), create, inspectUrl and redactText.
//
// Two builds of the one engine (scripts/build-wasm.sh): pkg/tidemark_lite
// carries the deploy path (what a Vercel build and most runs need) within
// its size budget; pkg/tidemark_full carries every operation. A call goes to
// the lite module, which declines what it lacks with E_WASM_FULL_MODULE
// before reading, sending or reporting anything; the full module is then
// loaded (once) and makes the call. Same engine, same results.
const os = require('node:os');
const { dial } = require('./host.cjs');

const FULL_MODULE = 'E_WASM_FULL_MODULE';
let liteModule;
let fullModule;
const lite = () => (liteModule ??= require('./pkg/tidemark_lite.js'));
const full = () => (fullModule ??= require('./pkg/tidemark_full.js'));

/** The user when the URL names none, as libpq and the native addon do. */
function osUser() {
  try {
    return os.userInfo().username;
  } catch {
    return undefined;
  }
}

function operation(name) {
  return function (options, onEvent) {
    // `__duplex`: a ready stream.Duplex that already speaks to the server
    // (tidemark's embedded database: PGlite in process); no socket is opened.
    const { __duplex: ready, ...rest } = options;
    const connect = ready ? async () => ({ socket: ready }) : dial;
    const args = [{ osUser: osUser(), ...rest }, connect, typeof onEvent === 'function' ? onEvent : undefined];
    return lite()[name](...args).catch((err) => {
      if (err?.code !== FULL_MODULE) throw err;
      return full()[name](...args);
    });
  };
}

module.exports = {
  backend: 'wasm',
  version: () => lite().version(),
  migrate: operation('migrate'),
  deploy: operation('deploy'),
  status: operation('status'),
  down: operation('down'),
  redo: operation('redo'),
  seed: operation('seed'),
  reset: operation('reset'),
  adopt: operation('adopt'),
  baseline: operation('baseline'),
  unlock: operation('unlock'),
  accept: operation('accept'),
  plan: operation('plan'),
  createDatabase: operation('createDatabase'),
  verify: operation('verify'),
  create: (options) => lite().create(options),
  inspectUrl: (url) => lite().inspectUrl(String(url)),
  redactText: (text, url) => lite().redactText(String(text), String(url)),
};
