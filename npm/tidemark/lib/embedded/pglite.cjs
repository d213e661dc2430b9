'use strict';
// PGlite itself (an optional peer dependency): finding it, opening its data
// folder (never one of other files), and the URLs the engines use for it.

const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');
const { TidemarkError } = require('../errors.cjs');
const { noUrlMessage } = require('../config.cjs');

const PACKAGE = '@electric-sql/pglite';
const INSTALL = `npm install --save-dev ${PACKAGE}`;
const USER = 'postgres';
const DATABASE = 'postgres';
// The wasm engine still parses a URL (user, database); the bytes go over the duplex.
const IN_PROCESS_URL = `postgres://${USER}@127.0.0.1/${DATABASE}?sslmode=disable`;

const rel = (config, p) => path.relative(config.cwd, p) || '.';
const localUrl = (host, port) => `postgres://${USER}@${host}:${port}/${DATABASE}?sslmode=disable`;

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

module.exports = { PACKAGE, INSTALL, IN_PROCESS_URL, localUrl, findPglite, pgliteVersion, notInstalled, checkFolder, openPglite };
