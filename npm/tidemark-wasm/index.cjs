'use strict';
// The wasm backend, with the same functions as the native addon:
// migrate/deploy/status/down/redo/seed/reset(options, onEvent) and create.
const engine = require('./pkg/tidemark_wasm.js');
const { openSocket } = require('./host.cjs');

function operation(name) {
  return async function (options, onEvent) {
    const info = engine.parseUrl(options.url, Boolean(options.tlsInsecure));
    const socket = await openSocket(info, options.connectTimeoutMs ?? 30_000);
    return engine[name](options, socket, typeof onEvent === 'function' ? onEvent : undefined);
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
  create: (options) => engine.create(options),
};
