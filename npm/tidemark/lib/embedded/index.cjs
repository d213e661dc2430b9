'use strict';
// The embedded database (design §9). With no database URL, outside
// production and CI, the CLI runs on PGlite (PostgreSQL compiled to wasm, an
// optional peer dependency) stored under .tidemark/pglite, so a fresh clone
// can migrate and seed with nothing installed but Node.
//
// The engines reach PGlite through the wire protocol (wire.cjs): the wasm engine over
// an in-process duplex, the native engine over a loopback TCP port. A lock
// file beside the folder (<dir>.lock, lock.cjs) keeps two processes from opening the
// same files; while `tidemark db serve` runs, the lock names its URL and the
// other commands connect to it instead of opening the files themselves.

const fs = require('node:fs');
const path = require('node:path');
const { TidemarkError } = require('../errors.cjs');
const { noUrlMessage } = require('../config.cjs');
const { folderLock, runLock, readHolder, acquire } = require('./lock.cjs');
const { PACKAGE, INSTALL, IN_PROCESS_URL, localUrl, findPglite, pgliteVersion, notInstalled, checkFolder, openPglite } = require('./pglite.cjs');
// Loaded on first use: commands with a database URL never need it.
let wireModule;
const wire = () => (wireModule ??= require('./wire.cjs'));

const rel = (config, p) => path.relative(config.cwd, p) || '.';

/**
 * `CI=true` (or `VERCEL=1`: a Vercel build, which sets CI only on some
 * images) when the environment says this is CI, else undefined.
 */
function ciSignal(env) {
  for (const name of ['CI', 'VERCEL']) {
    const v = env[name];
    if (v === undefined || v === '' || /^(0|false)$/i.test(v)) continue;
    return `${name}=${v}`;
  }
  return undefined;
}

/** Why the embedded database may not stand in for a missing URL, or undefined. */
function refusal(command, config) {
  // verify replays on a scratch copy it deletes afterwards: fine in CI and production alike.
  if (command === 'verify') return undefined;
  if (command === 'deploy') {
    return 'deploy never uses the embedded database: it is for CI and deploys, which migrate a real database; for local development use tidemark migrate';
  }
  if (config.productionSource) return `the embedded database is not used in production (${config.productionSource})`;
  const ci = ciSignal(config.env);
  if (ci) return `the embedded database is not used in CI (${ci}); set a database URL for the job`;
  return undefined;
}

// ---------------------------------------------------------------- commands

/**
 * Decides what a connecting command without a URL does. Returns undefined
 * when the caller did not allow the embedded database (the API, unless
 * `embedded: true`); throws E_NO_DATABASE_URL (exit 3) when it may not be used
 * here or PGlite is missing; else returns the plan, whose `source` the
 * engine's `connecting` event names (request key `embedded`) and whose run()
 * runs the command on it.
 */
function prepare(command, config, { allowed }) {
  if (!allowed) return undefined;
  const why = refusal(command, config);
  if (why) throw new TidemarkError('E_NO_DATABASE_URL', noUrlMessage(config), { hint: why });
  const dir = config.embeddedDir;
  checkFolder(config, dir, 'use');
  const holder = readHolder(folderLock(dir));
  const served = holder && !holder.stale && holder.url ? holder : undefined;
  const entry = findPglite(config.cwd);
  if (!served && !entry) throw notInstalled(config, `(${rel(config, dir)})`);
  const source = {
    dir: rel(config, dir),
    reason: command === 'verify' ? 'a scratch database for verify, deleted afterwards' : 'no database URL is set',
  };
  if (served) {
    source.url = served.url;
    source.servedBy = served.pid;
  }
  return {
    source,
    run: (args) => runEmbedded(command, config, { ...args, dir, entry }),
  };
}

/**
 * Runs `binding.execute(command, request, emit)` on the embedded database: through the
 * running `db serve` if there is one, else on the files, opened in process.
 */
async function runEmbedded(command, config, { binding, backend, request, emit, dir, entry }) {
  if (config.statementTimeout !== undefined) {
    // PGlite runs PostgreSQL without timer interrupts: the setting takes, nothing enforces it.
    emit({
      event: 'warning',
      code: 'W_EMBEDDED_NO_TIMEOUTS',
      message: `the embedded database (PGlite) does not enforce statement_timeout: a statement runs to the end whatever ${
        config.sources?.statementTimeout ?? '--statement-timeout'
      } says`,
    });
  }
  const waitMs = config.lockWaitTimeout;
  const lock = await acquire(config, dir, folderLock(dir), { command, waitMs });
  if (lock.served) {
    if (command === 'reset') {
      emit({ event: 'embeddedServed', dir: rel(config, dir), url: lock.served.url, pid: lock.served.pid });
    }
    // The served database is one session, where advisory locks do not
    // exclude: tidemark runs through it take turns on a lock file instead.
    const turn = await acquire(config, dir, runLock(dir), { command, waitMs });
    try {
      return await binding.execute(command, { ...request, url: lock.served.url }, emit);
    } finally {
      turn.release();
    }
  }
  try {
    if (!entry) throw notInstalled(config, `(${rel(config, dir)})`);
    if (command === 'reset' && fs.existsSync(dir)) {
      checkFolder(config, dir, 'delete');
      fs.rmSync(dir, { recursive: true, force: true });
      emit({ event: 'embeddedDeleted', dir: rel(config, dir) });
    }
    const { db, fresh } = await openPglite(config, entry, dir);
    if (fresh) emit({ event: 'embeddedCreated', dir: rel(config, dir), version: pgliteVersion(entry) });
    const session = new (wire().Session)(db);
    let listener;
    try {
      const o = { ...request };
      if (backend === 'wasm') {
        o.url = IN_PROCESS_URL;
        o.__duplex = wire().openDuplex(session);
      } else {
        listener = await wire().listen(session, { host: '127.0.0.1', port: 0 });
        o.url = localUrl('127.0.0.1', listener.port);
      }
      return await binding.execute(command, o, emit);
    } finally {
      if (listener) await listener.close();
      await session.close();
    }
  } finally {
    lock.release();
  }
}

/** Parses --port (0: any free port). */
function parsePort(config) {
  const raw = config.embeddedPort ?? '5432';
  const n = /^\s*\d+\s*$/.test(String(raw)) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    const where = config.sources?.embeddedPort ?? 'default';
    const flag = ['default', '--port', 'option'].includes(where);
    const label = flag ? '--port' : where === 'TIDEMARK_EMBEDDED_PORT' ? where : `"embeddedPort" in ${where}`;
    throw new TidemarkError(flag ? 'E_USAGE' : 'E_CONFIG', `${label} must be a port number from 0 to 65535 (0: any free port), not ${JSON.stringify(raw)}`);
  }
  return n;
}

function cannotListen(port, err) {
  const fix = err.code === 'EADDRINUSE' ? '; another server (PostgreSQL?) uses it: pass --port with another number, or --port 0 for any free port' : '';
  return new TidemarkError('E_CONFIG', `could not listen on 127.0.0.1:${port}: ${err.message}${fix}`);
}

/** Throws cannotListen when 127.0.0.1:port cannot be listened on. */
function listenError(port) {
  return new Promise((resolve, reject) => {
    const probe = require('node:net').createServer();
    probe.once('error', (err) => reject(cannotListen(port, err)));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

/**
 * `tidemark db serve`: serves the embedded database on 127.0.0.1 until
 * `stopSignal` resolves (the CLI: SIGINT or SIGTERM). Emits
 * `{ event: 'serving', dir, url, pid }` once listening and `{ event:
 * 'stopped', dir }` once the data is flushed and the lock released.
 */
async function serve(config, { onEvent = () => {}, stopSignal }) {
  const port = parsePort(config);
  const dir = config.embeddedDir;
  const entry = findPglite(config.cwd);
  if (!entry) {
    throw new TidemarkError('E_CONFIG', `tidemark db serve needs ${PACKAGE}, which is not installed; install it with: ${INSTALL}`);
  }
  checkFolder(config, dir, 'use');
  // Fail on a taken port before the slow part (opening PGlite).
  if (port !== 0) await listenError(port);
  const lock = await acquire(config, dir, folderLock(dir), { command: 'db serve', waitMs: config.lockWaitTimeout, serving: true });
  let session;
  let listener;
  try {
    const { db, fresh } = await openPglite(config, entry, dir);
    if (fresh) onEvent({ event: 'embeddedCreated', dir: rel(config, dir), version: pgliteVersion(entry) });
    session = new (wire().Session)(db, { resetWhenIdle: true });
    try {
      listener = await wire().listen(session, { host: '127.0.0.1', port });
    } catch (err) {
      throw cannotListen(port, err);
    }
    const url = localUrl('127.0.0.1', listener.port);
    lock.rewrite({ url, port: listener.port });
    onEvent({ event: 'serving', dir: rel(config, dir), url, pid: process.pid });
    await stopSignal;
  } finally {
    if (listener) await listener.close();
    if (session) await session.close();
    lock.release();
  }
  onEvent({ event: 'stopped', dir: rel(config, dir) });
}

/** The human line for an embedded-database event, or undefined for other events. */
function describe(e) {
  switch (e.event) {
    case 'connecting':
      if (e.source !== 'embedded') return undefined;
      if (e.url) return `Using the embedded database (${e.dir}), served by tidemark db serve at ${e.url}: ${e.reason}`;
      return `Using the embedded database (${e.dir}): ${e.reason}`;
    case 'embeddedDeleted':
      return `Deleted the embedded database ${e.dir}: reset starts it afresh`;
    case 'embeddedCreated':
      return `Created the embedded database in ${e.dir} (PGlite${e.version ? ` ${e.version}` : ''})`;
    case 'embeddedServed':
      return `The embedded database is being served by tidemark db serve (pid ${e.pid}), so reset drops and recreates its schema instead of deleting ${e.dir}`;
    default:
      return undefined;
  }
}

module.exports = { prepare, serve, describe, refusal, ciSignal, findPglite, IN_PROCESS_URL, PACKAGE, INSTALL };
