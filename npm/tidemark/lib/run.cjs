'use strict';
// One run of a command for the CLI and the API alike (style rule 2): read
// the folders, hand the engine its request, convert its errors. lib/api.cjs
// wraps it as the public functions; lib/cli/ renders what it reports.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { TidemarkError } = require('./errors.cjs');
const { noUrlMessage } = require('./config.cjs');
const { scrub, inspect, redact } = require('./url.cjs');
const loader = require('./loader.cjs');
// Loaded when used: a deploy with a URL needs neither (start-up, issue 15).
const embedded = () => require('./embedded/index.cjs');
const scriptSeeds = () => require('./script-seeds.cjs');

const rel = (cwd, p) => path.relative(cwd, p) || '.';

/** One turn of the event loop. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/**
 * The bytes of each file in `paths` (absolute), in order. With the native
 * engine, one call reads them all (`readFiles`, a plain read with no rules
 * of its own): hundreds of `fs.readFileSync` calls made V8 compile Node's
 * fs wrappers with its optimizing compiler in a short command, 3.7 MB of
 * peak memory and a background compile (start-up, issue 15). A file the
 * engine could not read (or every file, with the wasm engine) is read here,
 * so a failure is Node's own error, the same on both backends.
 */
function readFiles(paths, binding, cwd) {
  let read;
  if (paths.length > 0 && typeof binding?.readFiles === 'function') {
    try {
      read = binding.readFiles(paths);
    } catch {
      // Read below, one by one.
    }
  }
  return paths.map((full, i) => {
    if (read?.[i]) return read[i];
    try {
      return fs.readFileSync(full);
    } catch (err) {
      throw new TidemarkError('E_CONFIG', `could not read ${rel(cwd, full)}: ${err.message}`, { file: rel(cwd, full) });
    }
  });
}

/**
 * Lists every entry of `dir` as `{ files, toRead }` (the entries as `{ name,
 * bytes }` with no bytes yet, and the files to read with their paths; see
 * readFolder), or returns undefined when the folder does not exist. With
 * `depth` 1 (migrations), subfolders are listed too: the folder as `sub/` and its entries as
 * `sub/file` (deeper folders as `sub/deeper/`), so the engine sees every
 * layout (Prisma, diesel, drizzle-kit) and refuses what it cannot read. In a
 * migrations listing (depth > 0), only files ending in one of `endings` are
 * read (the engine's list, `defaults().readEndings`); the rest (snapshots,
 * notes) are passed with no bytes. An entry that cannot be read (a dangling
 * symlink) is an error naming it.
 */
function listFolder(dir, cwd, what, depth, endings) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (err.code === 'ENOENT') return undefined;
    if (err.code === 'ENOTDIR') throw new TidemarkError('E_CONFIG', `the ${what} folder ${rel(cwd, dir)} is a file, not a folder`);
    throw new TidemarkError('E_CONFIG', `could not read the ${what} folder ${rel(cwd, dir)}: ${err.message}`);
  }
  const files = [];
  // The files whose bytes the engine reads, with their paths: read by the caller.
  const toRead = [];
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
    if (depth > 0 && !endings.some((ending) => name.endsWith(ending))) {
      files.push({ name, bytes: empty });
      return;
    }
    const file = { name, bytes: empty };
    files.push(file);
    toRead.push([file, full]);
  };
  for (const e of entries) visit(prefix + e.name, e.name, 0, e);
  return { files, toRead };
}

/** The listing's files with the bytes read for them, sorted by name. */
function filled({ files, toRead }, bytes) {
  toRead.forEach(([file], i) => {
    file.bytes = bytes[i];
  });
  files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return files;
}

/** The entries of `dir` (see listFolder) with their bytes, sorted by name, or undefined. */
function readFolder(dir, cwd, what, depth = 0, binding = undefined, endings = []) {
  const listing = listFolder(dir, cwd, what, depth, endings);
  return listing && filled(listing, readFiles(listing.toRead.map(([, full]) => full), binding, cwd));
}

// Milliseconds of reading between two turns of the event loop (readFolderInTurns).
const TURN_MS = 1;
// The clock of those turns. Not `performance.now()`: the global `performance`
// loads Node's perf_hooks, 11 modules and 0.7 ms of every wasm command
// (start-up, issue 15).
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * readFolder for a connection being set up on this thread (the wasm
 * engine's, see connect in npm/tidemark-wasm): the files are read in turns
 * of about a millisecond, and each turn lets the connection take its next
 * step (the server's answers to the startup and to the first read arrive
 * meanwhile), where one long read would hold it until the end (issue 15).
 */
async function readFolderInTurns(dir, cwd, what, depth = 0, endings = []) {
  await settle();
  const listing = listFolder(dir, cwd, what, depth, endings);
  if (!listing) return listing;
  const bytes = [];
  let turn = nowMs();
  for (const [, full] of listing.toRead) {
    bytes.push(readFiles([full], undefined, cwd)[0]);
    if (nowMs() - turn >= TURN_MS) {
      await settle();
      turn = nowMs();
    }
  }
  return filled(listing, bytes);
}

/** `read(dir, what, depth)`: readFolder, or readFolderInTurns (see run). */
async function readMigrations(config, required, read) {
  const files = await read(config.dir, 'migrations', 1);
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

async function readSeeds(config, required, read) {
  const dir = seedFolder(config);
  const files = await read(dir, 'seeds', 0);
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

// The operating system's user, once read (null: none).
let user;
/**
 * The operating system's user: the database user when the URL names none
 * (libpq's default) and who accepts an edit (the engine adds the role).
 * Read once: every engine call's request names it, and getpwuid reads
 * /etc/passwd.
 */
function osUser() {
  if (user === undefined) {
    try {
      user = os.userInfo().username || null;
    } catch {
      user = null;
    }
  }
  return user ?? undefined;
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
  const local = config.url ? undefined : embedded().prepare(command, config, { allowed: allowEmbedded });
  if (!config.url && !local) {
    throw new TidemarkError('E_NO_DATABASE_URL', noUrlMessage(config));
  }
  // The engine names the embedded database once it is decided (its refusals came first).
  if (local) begin({ embedded: local.source });
  for (const w of pooled) emit(w);
  // The engine connects while the files are read here (issue 15): the
  // server sets the session up and answers the first read meanwhile. The
  // native engine does so on its own threads; the wasm engine on this
  // thread's event loop, so the files are read in turns (`inTurns`).
  let dialing;
  if (!local && typeof binding.connect === 'function') {
    try {
      dialing = binding.connect(command, engineRequest(config), emit);
    } catch (err) {
      throw convertError(err, config);
    }
  }
  // Which migration files the engine reads: its own list.
  const endings = loader.defaults(config.env).readEndings;
  const read = dialing?.inTurns
    ? (dir, what, depth) => readFolderInTurns(dir, config.cwd, what, depth, endings)
    : (dir, what, depth) => readFolder(dir, config.cwd, what, depth, binding, endings);
  let migrations;
  let seeds;
  try {
    // unlock and db create read no files.
    migrations = command === 'unlock' || command === 'createDatabase' ? [] : await readMigrations(config, command !== 'seed', read);
    seeds = command === 'seed' || command === 'reset' ? await readSeeds(config, command === 'seed', read) : [];
  } catch (err) {
    if (dialing) dialing.close();
    throw err;
  }
  const request = engineRequest(config, { migrations, seeds });
  // Script seeds: run here when the engine calls for them, under its lock.
  const where = { command, config, dir: seedFolder(config) };
  const scripts = seeds.length > 0 ? scriptSeeds().scriptRunner(where) : undefined;
  let report;
  try {
    report = local
      ? scriptSeeds().refuseScriptDue(await local.run({ binding, backend, request, emit }), where)
      : await binding.execute(command, request, emit, dialing, scripts?.run);
  } catch (err) {
    // A connection execute did not take (it threw before): given up.
    if (dialing) dialing.close();
    await settle();
    throw scripts?.failure() ?? convertError(err, config);
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

/** A finding's file relative to cwd, as errors name files. */
function relFinding(config, f) {
  return f.file ? { ...f, file: path.relative(config.cwd, path.join(config.dir, f.file)) } : f;
}

/** The events of verify with each finding's file relative to cwd. */
function verifyEvents(config, onEvent) {
  if (typeof onEvent !== 'function') return onEvent;
  return (e) => onEvent(e.event === 'finding' ? { event: 'finding', ...relFinding(config, e) } : e);
}

/**
 * A replay failure on PGlite that a server would likely not have: an
 * extension or a feature the embedded build lacks. Says so, and names the
 * shadow option.
 */
function pgliteHint(err) {
  if (!(err instanceof TidemarkError) || err.code !== 'E_MIGRATION_FAILED') return err;
  const missing = ['58P01', '0A000'].includes(err.sqlState) || /extension|not supported|not available/i.test(err.message);
  if (!missing) return err;
  err.hint =
    'the embedded scratch database (PGlite) lacks this extension or feature, which a PostgreSQL server may have: ' +
    'replay on a real server with --shadow-url <url> (or TIDEMARK_SHADOW_DATABASE_URL), where verify creates and drops a scratch database' +
    (err.hint ? ` (server hint: ${err.hint})` : '');
  return err;
}

/** A scratch database name on a shadow server; the engine drops only names with this prefix. */
function scratchName() {
  return `tidemark_verify_${Date.now().toString(36)}_${require('node:crypto').randomBytes(4).toString('hex')}`;
}

/** The shadow server's URL pointed at database `name` (postgres:// URLs only). */
function shadowUrlFor(config, name) {
  const source = config.sources?.shadowUrl ?? 'the shadow URL';
  const info = inspect(config.shadowUrl, config.env);
  if (info.problem) {
    throw new TidemarkError('E_INVALID_URL', `invalid shadow database URL ${info.redacted} (from ${source}): ${info.problem}`);
  }
  let u;
  try {
    u = new URL(config.shadowUrl);
  } catch {
    u = undefined;
  }
  if (!u || !/^postgres(ql)?:$/.test(u.protocol)) {
    throw new TidemarkError(
      'E_INVALID_URL',
      `the shadow database URL (from ${source}) must be a postgres:// URL, so that verify can point it at a scratch database of its own; got ${info.redacted}`,
    );
  }
  u.pathname = `/${name}`;
  u.searchParams.delete('dbname');
  return u.toString();
}

/**
 * Replays on a scratch database created on the shadow server, dropped
 * afterwards whatever happened. Refuses when it cannot create one.
 */
async function replayOnShadow(config, onEvent) {
  const { emit } = eventSink(onEvent);
  const name = scratchName();
  const url = shadowUrlFor(config, name);
  const source = config.sources?.shadowUrl ?? 'the shadowUrl option';
  const scratch = { ...config, url, urlSource: `${source}, scratch database ${name}`, warnings: [], poolSafe: false, pooledFrom: undefined };
  const quiet = () => undefined;
  let created;
  try {
    created = await run('createDatabase', scratch, { onEvent: quiet });
  } catch (err) {
    throw new TidemarkError(
      err.code ?? 'E_DATABASE',
      `could not create a scratch database on the shadow server ${redact(url, config.env)} (from ${source}): ${err.message}; ` +
        'verify needs a role that may CREATE DATABASE there (and drops the database afterwards); or leave the shadow URL unset to replay on the embedded database',
      { sqlState: err.sqlState, exitCode: 3 },
    );
  }
  if (!created.created) {
    throw new TidemarkError('E_CONFIG', `the scratch database ${name} exists already on the shadow server; verify uses only a database it created itself, so nothing was run; run again`);
  }
  try {
    return await run('verify', scratch, { onEvent });
  } finally {
    try {
      await run('createDatabase', { ...scratch, dropScratch: true }, { onEvent: quiet });
    } catch (err) {
      emit({
        event: 'warning',
        code: 'W_SCRATCH_NOT_DROPPED',
        message: `could not drop the scratch database ${name} on the shadow server: ${err.message}; drop it by hand (DROP DATABASE ${name})`,
      });
    }
  }
}

/**
 * verify: lints and replays the migrations on a throwaway database (a
 * scratch embedded PGlite in a temporary folder, deleted afterwards; or a
 * scratch database on the shadow server, dropped afterwards); with
 * `target` (an explicit URL), also checks that database as deploy would,
 * and with `rehearse` runs its pending migrations in a rolled-back
 * transaction. Never writes to the target.
 */
async function verifyWith(config, { onEvent, target = false } = {}) {
  if (config.rehearse && !target) {
    throw new TidemarkError(
      'E_USAGE',
      'rehearse runs the pending migrations on the target database, which --url (the url option) names; pass it explicitly (a URL from the environment or the config file is never taken as the target)',
    );
  }
  const events = verifyEvents(config, onEvent);
  let report;
  if (config.shadowUrl) {
    report = await replayOnShadow(config, events);
  } else {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-verify-'));
    try {
      report = await run('verify', { ...config, url: undefined, poolSafe: false, embeddedDir: path.join(tmp, 'pglite') }, { onEvent: events, embedded: true });
    } catch (err) {
      throw pgliteHint(err);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  report = { ...report, findings: report.findings.map((f) => relFinding(config, f)) };
  if (!target || report.notReplayed) return report;
  // The configuration's warnings were said by the replay.
  const checked = await run('verify', { ...config, verifyTarget: true, warnings: [] }, { onEvent: events });
  return { ...report, findings: [...report.findings, ...checked.findings.map((f) => relFinding(config, f))], target: checked.target };
}

module.exports = { run, verifyWith, createFiles };
