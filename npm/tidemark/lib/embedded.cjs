'use strict';
// The embedded database (design §9). With no database URL, outside
// production and CI, the CLI runs on PGlite (PostgreSQL compiled to wasm, an
// optional peer dependency) stored under .tidemark/pglite, so a fresh clone
// can migrate and seed with nothing installed but Node.
//
// The engines reach PGlite through lib/pglite-wire.cjs: the wasm engine over
// an in-process duplex, the native engine over a loopback TCP port. A lock
// file beside the folder (<dir>.lock) keeps two processes from opening the
// same files; while `tidemark db serve` runs, the lock names its URL and the
// other commands connect to it instead of opening the files themselves.

const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');
const { TidemarkError } = require('./errors.cjs');
const { noUrlMessage } = require('./config.cjs');
// Loaded on first use: commands with a database URL never need it.
let wireModule;
const wire = () => (wireModule ??= require('./pglite-wire.cjs'));

const PACKAGE = '@electric-sql/pglite';
const INSTALL = `npm install --save-dev ${PACKAGE}`;
const USER = 'postgres';
const DATABASE = 'postgres';
// The wasm engine still parses a URL (user, database); the bytes go over the duplex.
const IN_PROCESS_URL = `postgres://${USER}@127.0.0.1/${DATABASE}?sslmode=disable`;

const rel = (config, p) => path.relative(config.cwd, p) || '.';
const localUrl = (host, port) => `postgres://${USER}@${host}:${port}/${DATABASE}?sslmode=disable`;

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

/** Resolves PGlite from the project (cwd upwards), else from beside tidemark. */
function findPglite(cwd) {
  for (const from of [path.join(cwd, 'package.json'), __filename]) {
    try {
      return createRequire(from).resolve(PACKAGE);
    } catch {
      // not installed there
    }
  }
  return undefined;
}

function pgliteVersion(entry) {
  let dir = path.dirname(entry);
  for (let i = 0; i < 5; i += 1) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
      if (pkg.name === PACKAGE) return pkg.version;
    } catch {
      // keep looking upwards
    }
    dir = path.dirname(dir);
  }
  return undefined;
}

function notInstalled(config, what) {
  return new TidemarkError(
    'E_NO_DATABASE_URL',
    `no database URL is set, and the embedded database ${what} that tidemark uses without one needs ${PACKAGE}, ` +
      `which is not installed; install it with: ${INSTALL}`,
    { exitCode: 3, hint: `or use a PostgreSQL server: ${noUrlMessage(config).replace(/^no database URL: /, '')}` },
  );
}

// ---------------------------------------------------------------- the lock

/** The lock of the folder: held by the process that has the files open. */
const folderLock = (dir) => `${dir}.lock`;
/** Taken by runs that go through `db serve`, which are one session: one at a time. */
const runLock = (dir) => `${dir}.run.lock`;

// Lock files this process holds (a stale file may name this very pid: pids
// repeat across container runs).
const held = new Set();

function alive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** The live holder of lock `file`, `{ pid, command, url?, since }`; `{ stale }`; or undefined. */
function readHolder(file) {
  let holder;
  try {
    holder = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if (err.code === 'ENOENT') return undefined;
    return { stale: true };
  }
  if (!holder || !alive(holder.pid) || (holder.pid === process.pid && !held.has(file))) return { stale: true };
  return holder;
}

/** Creates lock `file` holding `info`, atomically (link fails when it exists). */
function tryLock(file, info) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  fs.writeFileSync(tmp, JSON.stringify(info));
  try {
    fs.linkSync(tmp, file);
    held.add(file);
    return true;
  } catch (err) {
    if (err.code === 'EEXIST') return false;
    throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function describeHolder(h) {
  const since = h.since ? `, since ${h.since}` : '';
  return `pid ${h.pid}, tidemark ${h.command}${since}`;
}

/**
 * Takes lock `file` of the embedded database in `dir`, waiting up to
 * `waitMs` for another tidemark run to finish. Resolves with `{ rewrite(extra),
 * release() }`, or with `{ served }` (the holder) when `tidemark db serve`
 * has it, unless `serving`, when that is an error.
 */
async function acquire(config, dir, file, { command, waitMs, serving = false }) {
  const info = { pid: process.pid, command, since: new Date().toISOString() };
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      if (tryLock(file, info)) {
        let released = false;
        return {
          rewrite: (extra) => {
            const tmp = `${file}.${process.pid}.tmp`;
            fs.writeFileSync(tmp, JSON.stringify({ ...info, ...extra }));
            fs.renameSync(tmp, file);
          },
          release: () => {
            if (released) return;
            released = true;
            held.delete(file);
            fs.rmSync(file, { force: true });
          },
        };
      }
    } catch (err) {
      throw new TidemarkError('E_CONFIG', `could not create the lock file ${rel(config, file)}: ${err.message}`);
    }
    const holder = readHolder(file);
    if (holder === undefined) continue;
    if (holder.stale) {
      // Left by a process that is gone (killed, or the machine rebooted).
      fs.rmSync(file, { force: true });
      continue;
    }
    if (holder.url) {
      if (serving) {
        throw new TidemarkError(
          'E_CONFIG',
          `the embedded database ${rel(config, dir)} is already being served at ${holder.url} (${describeHolder(holder)}); use that URL, or stop it first`,
        );
      }
      return { served: holder };
    }
    if (Date.now() >= deadline) {
      throw new TidemarkError(
        'E_LOCK_TIMEOUT',
        `the embedded database ${rel(config, dir)} is in use by another tidemark process (${describeHolder(holder)}) ` +
          `and it did not finish within ${waitMs} ms; wait for it, or wait longer with --lock-wait-timeout ` +
          `(if no such process exists, delete ${rel(config, file)})`,
        { exitCode: 2 },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// ---------------------------------------------------------------- PGlite

/**
 * Throws unless `dir` is absent, empty or a PostgreSQL data folder: tidemark
 * never initializes a database into, or deletes, a folder of other files
 * (think --embedded-dir .).
 */
function checkFolder(config, dir, doing) {
  const inside = path.relative(dir, config.cwd);
  const holdsCwd = inside === '' || (!inside.startsWith('..') && !path.isAbsolute(inside));
  let entries;
  try {
    entries = fs.readdirSync(dir);
  } catch (err) {
    if (err.code === 'ENOENT') return;
    throw new TidemarkError('E_CONFIG', `the embedded database folder ${rel(config, dir)} is not usable: ${err.message}`);
  }
  if (holdsCwd || (entries.length > 0 && !entries.includes('PG_VERSION'))) {
    throw new TidemarkError(
      'E_CONFIG',
      `refusing to ${doing} ${rel(config, dir)}: it ${holdsCwd ? 'holds the project' : 'is not a PGlite database (no PG_VERSION) and not empty'}; ` +
        'point --embedded-dir (TIDEMARK_EMBEDDED_DIR, "embeddedDir") at a folder of its own, such as .tidemark/pglite',
    );
  }
}

/** `.tidemark/` keeps itself out of git (and the lock files with it). */
function ignoreInGit(dir) {
  const parent = path.dirname(dir);
  if (path.basename(parent) !== '.tidemark') return;
  const file = path.join(parent, '.gitignore');
  try {
    fs.writeFileSync(file, "# tidemark's local files (the embedded database): not for git\n*\n", { flag: 'wx' });
  } catch {
    // already there, or not writable: the repository's .gitignore can do it
  }
}

/** Opens (creating when new) the PGlite database in `dir`. */
async function openPglite(config, entry, dir) {
  let PGlite;
  try {
    ({ PGlite } = require(entry));
  } catch (err) {
    throw new TidemarkError('E_CONFIG', `could not load ${PACKAGE} (${entry}): ${err.message}`);
  }
  checkFolder(config, dir, 'create a database in');
  const fresh = !fs.existsSync(path.join(dir, 'PG_VERSION'));
  fs.mkdirSync(dir, { recursive: true });
  if (fresh) ignoreInGit(dir);
  try {
    const db = new PGlite(dir);
    await db.waitReady;
    return { db, fresh };
  } catch (err) {
    const message = err && err.message ? err.message : String(err);
    throw new TidemarkError(
      'E_EMBEDDED',
      `could not open the embedded database in ${rel(config, dir)} with ${PACKAGE} ${pgliteVersion(entry) ?? ''}: ${message}; ` +
        'if another PGlite version made it, or it is damaged, tidemark reset deletes and recreates it',
      { exitCode: 2 },
    );
  }
}

// ---------------------------------------------------------------- commands

/**
 * Decides what a connecting command without a URL does. Returns undefined
 * when the caller did not allow the embedded database (the API, unless
 * `embedded: true`); throws E_NO_DATABASE_URL (exit 3) when it may not be used
 * here or PGlite is missing; else returns the plan, whose `event` is the
 * `connecting` event to emit and whose run() runs the command on it.
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
  const event = {
    event: 'connecting',
    source: 'embedded',
    dir: rel(config, dir),
    reason: command === 'verify' ? 'a scratch database for verify, deleted afterwards' : 'no database URL is set',
  };
  if (served) {
    event.url = served.url;
    event.servedBy = served.pid;
  }
  return {
    event,
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
