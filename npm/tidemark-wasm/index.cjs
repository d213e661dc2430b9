'use strict';
// The wasm backend, with the same functions as the native addon:
// migrate/deploy/status/down/redo/seed/reset/adopt/baseline/unlock/accept/plan/
// createDatabase/verify(options, onEvent), create, inspectUrl and redactText.
const os = require('node:os');
const engine = require('./pkg/tidemark_wasm.js');
const { dial } = require('./host.cjs');

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
    return engine[name]({ osUser: osUser(), ...rest }, connect, typeof onEvent === 'function' ? onEvent : undefined);
  };
}

module.exports = {
  backend: 'wasm',
  version: () => engine.version(),
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
  create: (options) => engine.create(options),
  inspectUrl: (url) => engine.inspectUrl(String(url)),
  redactText: (text, url) => engine.redactText(String(text), String(url)),
};
