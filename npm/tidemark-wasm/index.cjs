'use strict';
// The wasm backend, with the same functions as the native addon:
// execute(op, request, onEvent), begin, create, defaults, inspectUrl,
// redactText and version. The engine cannot open sockets: execute hands it
// dial() (host.cjs), which it calls once per connection attempt.
const engine = require('./pkg/tidemark_wasm.js');
const { dial } = require('./host.cjs');

/**
 * Runs `op` with `request` (the engine's request keys). `request.__duplex`:
 * a ready stream.Duplex that already speaks to the server (tidemark's
 * embedded database: PGlite in process); no socket is opened.
 */
function execute(op, request, onEvent) {
  const { __duplex: ready, ...rest } = request;
  const connect = ready ? async () => ({ socket: ready }) : dial;
  return engine.execute(op, rest, connect, typeof onEvent === 'function' ? onEvent : undefined);
}

module.exports = {
  backend: 'wasm',
  version: () => engine.version(),
  defaults: () => engine.defaults(),
  execute,
  begin: (op, request, onEvent) => engine.begin(op, request, typeof onEvent === 'function' ? onEvent : undefined),
  create: (options) => engine.create(options),
  inspectUrl: (url) => engine.inspectUrl(String(url)),
  redactText: (text, url) => engine.redactText(String(text), String(url)),
};
