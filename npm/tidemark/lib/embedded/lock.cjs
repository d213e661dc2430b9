'use strict';
// The lock files beside the embedded database's folder: <dir>.lock is held by
// the process that has the files open (naming the URL while \`db serve\`
// runs), <dir>.run.lock by runs that take turns on a served database.

const fs = require('node:fs');
const path = require('node:path');
const { TidemarkError } = require('../errors.cjs');

const rel = (config, p) => path.relative(config.cwd, p) || '.';

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

module.exports = { folderLock, runLock, readHolder, acquire };
