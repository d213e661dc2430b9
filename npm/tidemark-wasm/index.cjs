'use strict';
// The wasm backend, with the same functions as the native addon:
// migrate/deploy/status/down/redo/seed/reset(options, onEvent) and create.
const engine = require('./pkg/tidemark_wasm.js');
const { openSocket, guardStartup } = require('./host.cjs');

function operation(name) {
  return async function (options, onEvent) {
    // `__duplex`: a ready stream.Duplex that already speaks to the server
    // (tidemark's embedded database: PGlite in process); no socket is opened.
    const { __duplex: ready, ...rest } = options;
    const report = typeof onEvent === 'function' ? onEvent : undefined;
    let socket = ready;
    if (!socket) {
      const info = engine.parseUrl(rest.url, Boolean(rest.tlsInsecure));
      const onRetry = (attempt, error, delayMs) => report?.({ event: 'connectRetry', attempt, error, delayMs });
      const budget = rest.connectTimeoutMs ?? 30_000;
      const started = Date.now();
      const opened = await openSocket(info, budget, onRetry);
      socket = opened.socket;
      // The host did TLS: the engine needs the channel binding for SCRAM.
      if (opened.tlsServerEndPoint) rest.tlsServerEndPoint = opened.tlsServerEndPoint;
      const connected = guardStartup(socket, budget - (Date.now() - started));
      return engine[name](rest, socket, (e) => {
        if (e.event === 'connected') connected();
        report?.(e);
      });
    }
    return engine[name](rest, socket, report);
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
