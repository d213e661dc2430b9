'use strict';
// The wasm backend, with the same functions as the native addon:
// execute(op, request, onEvent), begin, create, defaults, inspectUrl,
// redactText and version. The engine cannot open sockets: execute hands it
// dial() (host.cjs), which it calls once per connection attempt.
//
// Two builds of the one engine (scripts/build-wasm.sh): pkg/tidemark_lite
// carries the deploy path (what a Vercel build and most runs need) within
// its size budget; pkg/tidemark_full carries every operation. A call goes to
// the lite module, which declines what it lacks with E_WASM_FULL_MODULE
// before sending or reporting anything; the full module is then loaded
// (once) and makes the call. Same engine, same results.
const { dial } = require('./host.cjs');

const FULL_MODULE = 'E_WASM_FULL_MODULE';
let liteModule;
let fullModule;
const lite = () => (liteModule ??= require('./pkg/tidemark_lite.js'));
const full = () => (fullModule ??= require('./pkg/tidemark_full.js'));

/**
 * Runs `op` with `request` (the engine's request keys). `request.__duplex`:
 * a ready stream.Duplex that already speaks to the server (tidemark's
 * embedded database: PGlite in process); no socket is opened.
 */
function execute(op, request, onEvent) {
  const { __duplex: ready, ...rest } = request;
  const connect = ready ? async () => ({ socket: ready }) : dial;
  const args = [op, rest, connect, typeof onEvent === 'function' ? onEvent : undefined];
  return lite()
    .execute(...args)
    .catch((err) => {
      if (err?.code !== FULL_MODULE) throw err;
      return full().execute(...args);
    });
}

module.exports = {
  backend: 'wasm',
  version: () => lite().version(),
  defaults: () => lite().defaults(),
  execute,
  begin: (op, request, onEvent) => lite().begin(op, request, typeof onEvent === 'function' ? onEvent : undefined),
  create: (options) => lite().create(options),
  inspectUrl: (url) => lite().inspectUrl(String(url)),
  redactText: (text, url) => lite().redactText(String(text), String(url)),
};
