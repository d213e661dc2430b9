'use strict';
// Preloaded into a tidemark CLI run by bench/startup.mjs (`node -r`): marks
// the start-up phases of one command and writes them as one JSON line to
// file descriptor 3 when the CLI calls process.exit. It only wraps
// functions (the loader's load, the binding's command, the wasm host's
// dial); it changes nothing they do.
const Module = require('node:module');
const fs = require('node:fs');

// Milliseconds since the process started. Not `performance.now()`: the
// global `performance` loads perf_hooks (11 modules, 0.7 ms), which the CLI
// itself does not, so the marks would add to what they measure.
const now = () => process.uptime() * 1000;
const at = { preload: now() };
const load = Module._load;
// The engine: the addon, the wasm package, and its modules (loaded on first
// use since issue 14); `engine` sums the time spent in their requires.
const engines = /^(tidemark-wasm|@tidemark\/[^/]+)$|\.node$|\/pkg\/tidemark_\w+\.js$/;
at.engine = 0;
let inEngine = false;
Module._load = function (request) {
  const outer = !inEngine && engines.test(request);
  const t0 = outer ? now() : 0;
  if (outer) inEngine = true;
  let out;
  try {
    out = load.apply(this, arguments);
  } finally {
    if (outer) {
      inEngine = false;
      at.engine += now() - t0;
    }
  }
  if (request === './host.cjs' && typeof out.dial === 'function' && !out.dial.marked) {
    const dial = out.dial;
    out.dial = async function (...args) {
      at.dial ??= now();
      const socket = await dial.apply(this, args);
      at.dialed ??= now();
      return socket;
    };
    out.dial.marked = true;
  }
  if (request.endsWith('/loader.cjs') && !out.load.marked) {
    const inner = out.load;
    out.load = function (...args) {
      const result = inner.apply(this, args);
      const b = result.binding;
      if (!b.marked) {
        b.marked = true;
        // The event callback is the last function argument of a call:
        // marks the `connected` event it receives.
        const watchConnected = (args) => {
          const i = args.findLastIndex((a) => typeof a === 'function');
          if (i < 0) return;
          const onEvent = args[i];
          args[i] = (e) => {
            if (e && e.event === 'connected') at.connected ??= now();
            return onEvent(e);
          };
        };
        // The engine's early connect (lib/run.cjs): its start is marked;
        // the connection is then set up while the files are read.
        if (typeof b.connect === 'function') {
          const early = b.connect;
          b.connect = function (...args) {
            at.connectCall ??= now();
            watchConnected(args);
            return early.apply(this, args);
          };
        }
        // One function per command, or one `execute(op, ...)`.
        for (const command of ['deploy', 'status', 'migrate', 'execute']) {
          const f = b[command];
          if (typeof f !== 'function') continue;
          b[command] = function (...args) {
            at.call = now();
            watchConnected(args);
            return Promise.resolve(f.apply(this, args)).finally(() => {
              at.returned = now();
            });
          };
        }
      }
      return result;
    };
    out.load.marked = true;
  }
  return out;
};

const exit = process.exit;
process.exit = function (code) {
  at.exit = now();
  try {
    fs.writeSync(3, `${JSON.stringify(at)}\n`);
  } catch {
    // fd 3 not open: run by hand, nothing to report to.
  }
  return exit.call(this, code);
};
