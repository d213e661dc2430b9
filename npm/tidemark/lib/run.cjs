'use strict';
// One run of a command for the CLI and the API alike (style rule 2): read
// the folders, hand the engine its request, convert its errors. lib/api.cjs
// wraps it as the public functions; lib/cli/ renders what it reports.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { TidemarkError } = require('./errors.cjs');
const { noUrlMessage } = require('./config.cjs');
const { scrub } = require('./url.cjs');
const loader = require('./loader.cjs');
const embedded = require('./embedded/index.cjs');
const { runDueScripts } = require('./script-seeds.cjs');

const rel = (cwd, p) => path.relative(cwd, p) || '.';

/** Contents the engine reads: SQL, diesel's metadata.toml, drizzle's journal. */
const wantsBytes = (name) => name.endsWith('.sql') || name.endsWith('.toml') || name.endsWith('_journal.json');

/**
 * Lists every entry of `dir` as `{ name, bytes }`, sorted by name, or returns
 * undefined when the folder does not exist. With `depth` 1 (migrations),
 * subfolders are listed too: the folder as `sub/` and its entries as
 * `sub/file` (deeper folders as `sub/deeper/`), so the engine sees every
 * layout (Prisma, diesel, drizzle-kit) and refuses what it cannot read. Files
 * the engine does not read (snapshots, scripts) are passed with no bytes. An
 * entry that cannot be read (a dangling symlink) is an error naming it.
 */
function readFolder(dir, cwd, what, depth = 0) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (err.code === 'ENOENT') return undefined;
    if (err.code === 'ENOTDIR') throw new TidemarkError('E_CONFIG', `the ${what} folder ${rel(cwd, dir)} is a file, not a folder`);
    throw new TidemarkError('E_CONFIG', `could not read the ${what} folder ${rel(cwd, dir)}: ${err.message}`);
  }
  const files = [];
  // `dir` is absolute and normalized: plain concatenation, where path.join
  // would normalize each of hundreds of names again on every deploy.
  const prefix = dir.endsWith(path.sep) ? dir : dir + path.sep;
  const empty = Buffer.alloc(0);
  const visit = (full, name, level, e) => {
    let kind = e.isFile() ? 'file' : e.isDirectory() ? 'dir' : 'other';
    if (e.isSymbolicLink()) {
      try {
        const st = fs.statSync(full);
        kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
      } catch (err) {
        throw new TidemarkError(
          'E_CONFIG',
          `${rel(cwd, full)} in the ${what} folder is a symbolic link to something that does not exist (${err.code}); fix or remove the link`,
          { file: rel(cwd, full) },
        );
      }
    }
    if (kind === 'dir') {
      files.push({ name: name + '/', bytes: empty });
      if (level >= depth) return;
      let inner;
      try {
        inner = fs.readdirSync(full, { withFileTypes: true });
      } catch (err) {
        throw new TidemarkError('E_CONFIG', `could not read ${rel(cwd, full)}: ${err.message}`, { file: rel(cwd, full) });
      }
      for (const i of inner) visit(full + path.sep + i.name, name + '/' + i.name, level + 1, i);
      return;
    }
    if (kind !== 'file') {
      throw new TidemarkError('E_CONFIG', `${rel(cwd, full)} in the ${what} folder is not a file or a folder; remove it`, {
        file: rel(cwd, full),
      });
    }
    if (depth > 0 && !wantsBytes(name)) {
      files.push({ name, bytes: empty });
      return;
    }
    try {
      files.push({ name, bytes: fs.readFileSync(full) });
    } catch (err) {
      throw new TidemarkError('E_CONFIG', `could not read ${rel(cwd, full)}: ${err.message}`, { file: rel(cwd, full) });
    }
  };
  for (const e of entries) visit(prefix + e.name, e.name, 0, e);
  files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return files;
}

function readMigrations(config, required) {
  const files = readFolder(config.dir, config.cwd, 'migrations', 1);
  if (files === undefined && required) {
    throw new TidemarkError(
      'E_CONFIG',
      `the migrations folder ${rel(config.cwd, config.dir)} does not exist (looked in ${config.dir}); ` +
        'create it (tidemark create <name> does), or point the --dir flag at your migrations ' +
        '(or set TIDEMARK_DIR, or "dir" in tidemark.config.json)',
    );
  }
  return files ?? [];
}

function seedFolder(config) {
  return path.join(config.seedsDir, config.seedEnv);
}

function readSeeds(config, required) {
  const dir = seedFolder(config);
  const files = readFolder(dir, config.cwd, 'seeds');
  if (files === undefined && required) {
    let have = '';
    try {
      const envs = fs.readdirSync(config.seedsDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
      have = envs.length ? ` (${rel(config.cwd, config.seedsDir)} has: ${envs.join(', ')})` : '';
    } catch {
      // the seeds folder itself is missing
    }
    throw new TidemarkError(
      'E_CONFIG',
      `no seeds for the environment "${config.seedEnv}": the folder ${rel(config.cwd, dir)} does not exist${have}; ` +
        'create it, choose another environment with --env, or point --seeds-dir at your seeds',
    );
  }
  return files ?? [];
}

/**
 * The operating system's user: the database user when the URL names none
 * (libpq's default) and who accepts an edit (the engine adds the role).
 */
function osUser() {
  try {
    return os.userInfo().username || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The engine's request (crates/tidemark-core/src/engine.rs `Request`): the
 * resolved config as it is, since its keys are the request's keys, plus
 * the files and who runs tidemark. Unset options are left out, so the
 * engine's defaults apply; `env` (the environment) stays here.
 */
function engineRequest(config, files = {}) {
  const { env, sources = {}, warnings, ...request } = { ...config, ...files, osUser: osUser() };
  for (const [key, value] of Object.entries(request)) {
    if (value === undefined || value === null || sources[key] === 'default') delete request[key];
  }
  return request;
}

/**
 * Turns whatever the engine threw into a TidemarkError: stable code, file
 * relative to cwd (`migrations/003_x.sql`), and no password anywhere.
 */
function convertError(err, config) {
  if (err instanceof TidemarkError) return err;
  const raw = err && typeof err === 'object' ? err : { message: String(err) };
  const known = typeof raw.code === 'string' && /^E_[A-Z0-9_]+$/.test(raw.code);
  const code = known ? raw.code : 'E_INTERNAL';
  let message = scrub(String(raw.message ?? raw), config.url, config.env);
  if (!known) {
    message = `internal error in the tidemark engine${raw.code ? ` (${raw.code})` : ''}: ${message}; please report it`;
  }
  let file;
  if (typeof raw.file === 'string' && raw.file) {
    const dir = raw.folder === 'seed' ? seedFolder(config) : config.dir;
    file = path.relative(config.cwd, path.join(dir, raw.file));
  }
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  // The database the URL names does not exist (SQLSTATE 3D000 at connect): name the command that creates it.
  const missingDatabase = code === 'E_CONNECT' && message.includes('(SQLSTATE 3D000)');
  const hint = missingDatabase ? 'create it with tidemark db create (or createDatabase() from the API); the role needs CREATEDB' : raw.hint;
  return new TidemarkError(code, message, {
    file,
    folder: file === undefined ? undefined : raw.folder,
    line: num(raw.line),
    column: num(raw.column),
    sourceLine: typeof raw.sourceLine === 'string' ? raw.sourceLine : undefined,
    sqlState: raw.sqlState ?? (missingDatabase ? '3D000' : undefined),
    version: raw.version ?? undefined,
    detail: scrub(raw.detail ?? undefined, config.url, config.env),
    hint: scrub(hint ?? undefined, config.url, config.env),
    applied: Array.isArray(raw.applied) ? raw.applied : [],
    cause: err,
  });
}

/** Calls `fn` for each event; an exception in it is kept and rethrown at the end. */
function eventSink(onEvent) {
  const state = { error: undefined };
  const emit = (event) => {
    if (typeof onEvent !== 'function') return;
    try {
      onEvent(event);
    } catch (err) {
      state.error ??= err;
    }
  };
  return { emit, state };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Runs one connecting command with an already resolved config. The engine
 * first refuses what the command must never do and reports `{ event:
 * 'connecting', source, url }` (URL redacted), before the files are read.
 * Resolves with the engine's report. With no URL and `embedded: true` (the
 * CLI), runs on the embedded database where allowed (lib/embedded/), which
 * the engine names: `{ event: 'connecting', source: 'embedded', dir, reason }`.
 */
async function run(command, config, { onEvent, embedded: allowEmbedded = false } = {}) {
  // deploy --dry-run is plan.
  if (command === 'deploy' && config.dryRun) command = 'plan';
  const { emit, state } = eventSink(onEvent);
  // The pooler warning follows the line that names the URL.
  const pooled = (config.warnings ?? []).filter((w) => w.code === 'W_POOLED_URL');
  for (const w of config.warnings ?? []) if (w.code !== 'W_POOLED_URL') emit(w);
  const { binding, backend } = loader.load(config.env);
  const begin = (extra) => {
    try {
      binding.begin(command, engineRequest(config, extra), emit);
    } catch (err) {
      throw convertError(err, config);
    }
  };
  begin();
  // No URL: the embedded database, when allowed here (else E_NO_DATABASE_URL saying why).
  const local = config.url ? undefined : embedded.prepare(command, config, { allowed: allowEmbedded });
  if (!config.url && !local) {
    throw new TidemarkError('E_NO_DATABASE_URL', noUrlMessage(config));
  }
  // The engine names the embedded database once it is decided (its refusals came first).
  if (local) begin({ embedded: local.source });
  for (const w of pooled) emit(w);
  // unlock and db create read no files.
  const migrations = command === 'unlock' || command === 'createDatabase' ? [] : readMigrations(config, command !== 'seed');
  const seeds = command === 'seed' || command === 'reset' ? readSeeds(config, command === 'seed') : [];
  const request = engineRequest(config, { migrations, seeds });
  let report;
  try {
    report = local ? await local.run({ binding, backend, request, emit }) : await binding.execute(command, request, emit);
    // Script seeds the engine reports due: run here, recorded by the engine.
    const seedAgain = (more) => binding.execute('seed', { ...request, ...more }, emit);
    report = await runDueScripts(report, { command, config, dir: seedFolder(config), seedAgain });
  } catch (err) {
    await settle();
    throw convertError(err, config);
  }
  await settle();
  if (state.error) throw state.error;
  return report;
}

/** `YYYYMMDDHHMMSS` in UTC. */
function utcStamp(now) {
  return now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/**
 * Writes the next migration file(s) into `config.dir` (created when missing),
 * never overwriting. Returns `{ version, files: [{ name, file, path }] }`.
 */
function createFiles(config, { name, reversible, now = new Date(), onEvent } = {}) {
  const { emit } = eventSink(onEvent);
  for (const w of config.warnings ?? []) if (w.code !== 'W_POOLED_URL') emit(w);
  if (typeof name !== 'string' || name.trim() === '') {
    throw new TidemarkError('E_INVALID_OPTION', 'create needs a migration name, for example: tidemark create add_user_email');
  }
  const existing = (readFolder(config.dir, config.cwd, 'migrations', 1) ?? []).map((f) => f.name);
  const { binding } = loader.load(config.env);
  let result;
  try {
    result = binding.create({
      existing,
      name,
      reversible: Boolean(reversible ?? config.reversible),
      stamp: utcStamp(now),
      millis: now.getTime(),
    });
  } catch (err) {
    throw convertError(err, config);
  }
  fs.mkdirSync(config.dir, { recursive: true });
  const written = [];
  for (const f of result.files) {
    const target = path.join(config.dir, f.name);
    // The engine checks names already; this keeps every write inside the
    // folder (at most one subfolder down: Prisma's and diesel's layouts).
    const parts = f.name.split('/');
    if (parts.length > 2 || parts.some((p) => p === '' || p.startsWith('.') || p !== path.basename(p))) {
      throw new TidemarkError('E_INVALID_OPTION', `refusing to write ${JSON.stringify(f.name)} outside ${rel(config.cwd, config.dir)}`);
    }
    try {
      if (parts.length === 2) fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, f.contents, { flag: 'wx' });
    } catch (err) {
      for (const w of written) fs.rmSync(w.path, { force: true });
      if (err.code === 'EEXIST') {
        throw new TidemarkError('E_FILE_EXISTS', `refusing to overwrite ${rel(config.cwd, target)}, which already exists; choose another name`, {
          file: rel(config.cwd, target),
        });
      }
      throw new TidemarkError('E_CONFIG', `could not write ${rel(config.cwd, target)}: ${err.message}`);
    }
    const entry = { name: f.name, file: rel(config.cwd, target), path: target };
    written.push(entry);
  }
  for (const w of written) emit({ event: 'created', name: w.name, file: w.file, path: w.path });
  return { version: result.version, files: written };
}

/**
 * Replays the migrations on a throwaway embedded database (PGlite) in a
 * temporary folder, deleted afterwards; never touches a database server.
 */
async function verifyWith(config, { onEvent } = {}) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-verify-'));
  try {
    return await run('verify', { ...config, url: undefined, embeddedDir: path.join(tmp, 'pglite') }, { onEvent, embedded: true });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

module.exports = { run, verifyWith, createFiles };
