'use strict';
// The wasm backend, with the same functions as the native addon (but
// readFiles: wasm has no filesystem): connect(op, request, onEvent),
// execute(op, request, onEvent, dialing, runScript), begin, create, defaults,
// inspectUrl, redactText and version. The engine cannot open sockets:
// connect and execute hand it dial() (host.cjs), which it calls once per
// connection attempt.
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
 * The request as it crosses into wasm: the keys without the files, then the
 * files' names (each followed by a NUL), their bytes in one buffer and their
 * lengths (the migrations, then the seeds), and how many are migrations.
 * Unpacked by `request` in crates/tidemark-wasm/src/lib.rs. Three crossings
 * instead of several per file (issue 15).
 */
function pack(request) {
  const { migrations = [], seeds = [], ...rest } = request;
  const files = [...migrations, ...seeds];
  let names = '';
  const sizes = new Uint32Array(files.length);
  const chunks = files.map((f, i) => {
    names += `${f.name}\0`;
    sizes[i] = f.bytes.length;
    return f.bytes;
  });
  return [rest, names, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), sizes, migrations.length];
}

/**
 * Starts connecting for `op` (the engine's `connect`, as the native addon
 * has it): the engine dials and sets the session up on this thread's event
 * loop, and sends deploy's, migrate's or status's first read, while the host
 * reads the files, which it must do in turns (`inTurns`) so that the
 * connection moves on meanwhile (issue 15). Returns undefined when the call
 * will need the full module (which then connects in execute). `close()`
 * gives the connection up when execute will not take it.
 */
function connect(op, request, onEvent) {
  const { __duplex: ready, migrations, seeds, ...rest } = request;
  if (ready) return undefined;
  // close() aborts the socket being opened (and one handed over but not
  // taken by execute), so that nothing holds the process open.
  const abort = new AbortController();
  const dialHere = (target, remainingMs) => dial(target, remainingMs, abort.signal);
  let inner = lite().connect(op, rest, dialHere, typeof onEvent === 'function' ? onEvent : undefined);
  if (!inner) return undefined;
  // The engine's Dialing, once: execute takes it, or close gives it up.
  const take = () => {
    const taken = inner;
    inner = undefined;
    return taken;
  };
  // Also when execute failed after taking it. A socket the engine already
  // called connected() on is the engine's to close, and this leaves it alone.
  const giveUp = () => abort.abort();
  return {
    inTurns: true,
    take,
    abort: giveUp,
    close() {
      const d = take();
      if (d) {
        d.close();
        d.free();
      }
      giveUp();
    },
  };
}

/**
 * Runs `op` with `request` (the engine's request keys), on the connection
 * `dialing` (from connect) when given. `request.__duplex`: a ready
 * stream.Duplex that already speaks to the server (tidemark's embedded
 * database: PGlite in process); no socket is opened.
 */
function execute(op, request, onEvent, dialing, runScript) {
  const { __duplex: ready, ...rest } = request;
  const connect = ready ? async () => ({ socket: ready }) : dial;
  const args = [op, ...pack(rest), connect, typeof onEvent === 'function' ? onEvent : undefined];
  const scripts = typeof runScript === 'function' ? runScript : undefined;
  return lite()
    .execute(...args, dialing?.take(), scripts)
    .catch((err) => {
      dialing?.abort();
      if (err?.code !== FULL_MODULE) throw err;
      return full().execute(...args, undefined, scripts);
    });
}

module.exports = {
  backend: 'wasm',
  version: () => lite().version(),
  defaults: () => lite().defaults(),
  connect,
  execute,
  begin: (op, request, onEvent) => lite().begin(op, request, typeof onEvent === 'function' ? onEvent : undefined),
  create: (options) => lite().create(options),
  inspectUrl: (url) => lite().inspectUrl(String(url)),
  redactText: (text, url) => lite().redactText(String(text), String(url)),
};
