'use strict';
// The wasm backend, with the same functions as the native addon:
// migrate/deploy/status/down/redo/seed/reset/adopt/baseline(options, onEvent)
// and create.
const engine = require('./pkg/tidemark_wasm.js');
const { openSocket, guardStartup, retryable, backoffMs } = require('./host.cjs');

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
      for (let attempt = 1; ; attempt++) {
        const left = budget - (Date.now() - started);
        const opened = await openSocket(info, left, onRetry);
        // The host did TLS: the engine needs the channel binding for SCRAM.
        const attemptOptions = opened.tlsServerEndPoint ? { ...rest, tlsServerEndPoint: opened.tlsServerEndPoint } : rest;
        const connected = guardStartup(opened.socket, budget - (Date.now() - started));
        let isConnected = false;
        try {
          return await engine[name](attemptOptions, opened.socket, (e) => {
            if (e.event === 'connected') {
              isConnected = true;
              connected();
            }
            report?.(e);
          });
        } catch (err) {
          // A server that is still starting (or a waking serverless compute)
          // answers the startup with an error: retry that too, as the native
          // addon does. Nothing has run before `connected`.
          const elapsed = Date.now() - started;
          const delay = Math.min(backoffMs(attempt), Math.max(0, budget - elapsed));
          if (isConnected || err.code !== 'E_CONNECT' || !retryable(err.message) || elapsed + 10 >= budget) throw err;
          onRetry(attempt, err.message, delay);
          await new Promise((r) => setTimeout(r, delay));
        }
      }
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
  adopt: operation('adopt'),
  baseline: operation('baseline'),
  create: (options) => engine.create(options),
};
