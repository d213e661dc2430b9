// Fault injection for the end-to-end suite (issue 11): a 50-migration
// project with a no-transaction CREATE INDEX CONCURRENTLY, the real CLI as a
// child process, faults applied from outside (SIGKILL, a cutting/silencing
// TCP proxy, pg_ctl restart, a dead network made with a network namespace),
// and the checks that every trial must pass afterwards.
//
// Randomness is reproducible: TIDEMARK_FAULT_SEED=<n> replays a run (the seed
// is printed at the start and in every failure).
import { execFile, spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CLI, PKG, PG_HOST, PG_PORT, psql, cleanEnv, writeFiles } from './helpers.mjs';
import { PG_BIN } from './servers.mjs';

// ------------------------------------------------------------------ knobs

function positiveInt(value, fallback) {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

/** Trials per fault kind and backend (the README's full run: 20). */
export const TRIALS = positiveInt(process.env.TIDEMARK_FAULT_TRIALS, 5);
export const SEED = process.env.TIDEMARK_FAULT_SEED !== undefined ? Number(process.env.TIDEMARK_FAULT_SEED) >>> 0 : randomInt(2 ** 31);
export const BACKEND = process.env.TIDEMARK_BACKEND || 'native';

/** Migrations in the fault project, and which one is the no-transaction index build. */
export const COUNT = 50;
export const CIC_AT = 25;
/** Rows of the table the index build reads (about 1 s per index on a 2-core machine). */
export const BIG_ROWS = positiveInt(process.env.TIDEMARK_FAULT_BIG_ROWS, 400_000);
/** Rows each ordinary migration inserts, and how long it sleeps (spreads the run out in time). */
export const ROWS = 100;
const SLEEP_S = 0.02;

/** How long any one tidemark run may take before the suite calls it hung. */
export const HANG_MS = 90_000;

/** Deterministic stream of numbers in [0, 1) for a label (fault kind, backend). */
export function rng(label) {
  let a = (SEED ^ createHash('sha256').update(label).digest().readUInt32BE(0)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pad = (i) => String(i).padStart(3, '0');
export const version = pad;

// ------------------------------------------------------------------ the project

export const CIC_INDEXES = ['fault_big_b', 'fault_big_ba'];

/**
 * The 50 migration files: ordinary ones create and fill fault_t_NNN; CIC_AT
 * builds two indexes concurrently (with `IF NOT EXISTS` in the variant that
 * issue 11 saw marked completed over an INVALID index).
 */
export function faultFiles({ ifNotExists = false } = {}) {
  const ine = ifNotExists ? 'IF NOT EXISTS ' : '';
  const files = {};
  for (let i = 1; i <= COUNT; i += 1) {
    const v = pad(i);
    if (i === CIC_AT) {
      files[`migrations/${v}_index_big.sql`] =
        '-- tidemark:no-transaction\n' +
        '-- Two index builds on a table big enough that each takes a noticeable time.\n' +
        `CREATE INDEX CONCURRENTLY ${ine}${CIC_INDEXES[0]} ON fault_big (b);\n` +
        `CREATE INDEX CONCURRENTLY ${ine}${CIC_INDEXES[1]} ON fault_big (b, a);\n`;
    } else {
      files[`migrations/${v}_table_${v}.sql`] =
        `CREATE TABLE fault_t_${v} (id int PRIMARY KEY, note text NOT NULL);\n` +
        `INSERT INTO fault_t_${v} SELECT g, md5(g::text) FROM generate_series(1, ${ROWS}) g;\n` +
        `SELECT pg_sleep(${SLEEP_S});\n`;
    }
  }
  return files;
}

/** A temp folder with the fault project; removed at exit. */
export function faultProject(options) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-faultproject-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  writeFiles(dir, faultFiles(options));
  return dir;
}

// ------------------------------------------------------------------ servers and databases

/**
 * Where trial databases live: the shared server (127.0.0.1:5432) or a
 * test-started one (servers.mjs). Each target gets a template database
 * holding fault_big, so a trial database is a fast copy.
 */
export function mainTarget() {
  return {
    label: 'main',
    host: PG_HOST,
    get port() {
      return Number(PG_PORT);
    },
    psql: (sql, db = 'postgres') => psql(sql, db),
  };
}

export function serverTarget(server) {
  return {
    label: server.name,
    host: '127.0.0.1',
    get port() {
      return server.port;
    },
    psql: (sql, db = 'postgres') => server.psql(sql, db),
    server,
  };
}

let dbCounter = 0;
const KEEP = process.env.TIDEMARK_FAULT_KEEP === '1';

/** Creates the template database (fault_big with BIG_ROWS rows) on `target`. */
export async function createTemplate(target) {
  const name = `tmf_tpl_${process.pid}_${randomBytes(2).toString('hex')}`;
  await target.psql(`CREATE DATABASE ${name}`);
  await target.psql(`CREATE TABLE fault_big AS SELECT g AS a, md5(g::text) AS b FROM generate_series(1, ${BIG_ROWS}) g`, name);
  await target.psql('VACUUM ANALYZE fault_big', name);
  target.template = name;
  return name;
}

export async function dropDatabase(target, name) {
  created.delete(name);
  await target.psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
}

// Trial databases not dropped yet (name -> target).
const created = new Map();

/** Drops the trial databases a harness error left behind (kept with TIDEMARK_FAULT_KEEP=1). */
export async function dropLeftovers() {
  if (KEEP) return;
  for (const [name, target] of [...created]) {
    if (target.server && !target.server.running) continue;
    await dropDatabase(target, name);
  }
}

/** A new database for one trial, copied from the target's template. */
export async function trialDatabase(target, label) {
  dbCounter += 1;
  const name = `tmf_${process.pid}_${label.replace(/[^a-z0-9]/g, '')}_${dbCounter}`;
  await target.psql(`CREATE DATABASE ${name} TEMPLATE ${target.template}`);
  created.set(name, target);
  return name;
}

export function cleanupDatabase(target, name, failed) {
  if (KEEP && failed) {
    created.delete(name);
    return Promise.resolve();
  }
  return dropDatabase(target, name);
}

export function urlFor(target, db, { host, port, params } = {}) {
  const q = params ? `?${new URLSearchParams(params)}` : '';
  return `postgres://postgres@${host ?? target.host}:${port ?? target.port}/${db}${q}`;
}

// ------------------------------------------------------------------ running the CLI

// CLI processes still running when this process exits are killed (by pid).
const liveChildren = new Set();
process.once('exit', () => {
  for (const c of liveChildren) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone
    }
  }
});

/**
 * Starts `tidemark ...args --json` as a child process (optionally inside a
 * network namespace) and parses its NDJSON events as they arrive.
 * Returns a run: { child, events, stdout, stderr, waitFor(pred), done }.
 * `done` resolves with { code, signal, hung, ms }; a run that takes longer
 * than `hangMs` is killed and marked hung.
 */
export function startCli(args, { cwd, env = {}, netns, hangMs = HANG_MS } = {}) {
  const argv = [CLI, ...args, '--json'];
  const [cmd, cmdArgs] = netns ? ['ip', ['netns', 'exec', netns, process.execPath, ...argv]] : [process.execPath, argv];
  const child = spawn(cmd, cmdArgs, { cwd, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  child.on('close', () => liveChildren.delete(child));
  const run = { child, args, events: [], stdout: '', stderr: '', startedAt: Date.now(), listeners: new Set() };
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    run.stdout += chunk;
    buf += chunk;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line === '') continue;
      let ev;
      try {
        ev = JSON.parse(line);
      } catch {
        ev = { event: 'unparsable', line };
      }
      ev.atMs = Date.now() - run.startedAt;
      run.events.push(ev);
      for (const l of run.listeners) l(ev);
    }
  });
  child.stderr.on('data', (c) => {
    run.stderr += c;
  });
  run.done = new Promise((resolve) => {
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, hangMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      run.exited = true;
      for (const l of run.listeners) l(null);
      resolve({ code, signal, hung, ms: Date.now() - run.startedAt });
    });
  });
  /** Resolves with the first event (seen or future) that matches, or null if the run ends first. */
  run.waitFor = (pred) =>
    new Promise((resolve) => {
      const seen = run.events.find(pred);
      if (seen) return resolve(seen);
      if (run.exited) return resolve(null);
      const l = (ev) => {
        if (ev === null || pred(ev)) {
          run.listeners.delete(l);
          resolve(ev);
        }
      };
      run.listeners.add(l);
    });
  return run;
}

/** The versions a run reported applied (migrationApplied events). */
export function reportedApplied(run) {
  return run.events.filter((e) => e.event === 'migrationApplied').map((e) => e.version);
}

/** The run's error event (--json), if any. */
export function errorEvent(run) {
  return run.events.find((e) => e.event === 'error');
}

/** A short account of a run for failure messages. */
export function describeRun(run, result) {
  const tailLines = (s, n) =>
    s
      .split('\n')
      .slice(-n)
      .map((l) => (l.length > 400 ? `${l.slice(0, 400)}...` : l))
      .join('\n');
  const how = result ? (result.hung ? `HUNG (killed after ${result.ms} ms)` : result.signal ? `killed by ${result.signal}` : `exit ${result.code} after ${result.ms} ms`) : '';
  return `tidemark ${run.args.join(' ')} --json: ${how}\n--- stdout (end) ---\n${tailLines(run.stdout, 8)}\n--- stderr ---\n${tailLines(run.stderr, 12)}`;
}

// ------------------------------------------------------------------ calibration

/**
 * One clean deploy: how long a run takes and where the index build sits in
 * it, so fault points fall inside the run. Throws when the clean run itself
 * does not succeed (then no fault trial can mean anything).
 */
export async function calibrate(target, cwd) {
  const db = await trialDatabase(target, 'calibrate');
  try {
    const run = startCli(['deploy', '--url', urlFor(target, db)], { cwd });
    const result = await run.done;
    if (result.code !== 0) throw new Error(`the clean calibration deploy failed:\n${describeRun(run, result)}`);
    const state = await inspect(target, db);
    const problems = [...consistency(state), ...complete(state)];
    if (problems.length) throw new Error(`the clean calibration deploy left a wrong state: ${problems.join('; ')}`);
    const at = (v) => run.events.find((e) => e.event === 'migrationApplied' && e.version === v)?.atMs;
    const before = at(pad(CIC_AT - 1));
    const after = at(pad(CIC_AT));
    const connected = run.events.find((e) => e.event === 'connected')?.atMs ?? 0;
    return { totalMs: result.ms, connectedMs: connected, cicStartMs: before, cicMs: Math.max(200, after - before) };
  } finally {
    await dropDatabase(target, db);
  }
}

/**
 * Where a trial's fault goes. Even trials: a uniform time in the whole run;
 * odd trials: inside the index build (after migration CIC_AT-1 reported).
 */
export function faultPoint(random, trial, cal) {
  if (trial % 2 === 0) return { mode: 'time', delayMs: Math.round(random() * cal.totalMs * 0.95) };
  return { mode: 'cic', delayMs: Math.round(random() * cal.cicMs) };
}

/** Waits for the fault point of a run; false when the run ended first. */
export async function reachFaultPoint(run, point) {
  if (point.mode === 'cic') {
    const ev = await run.waitFor((e) => e.event === 'migrationApplied' && e.version === pad(CIC_AT - 1));
    if (!ev) return false;
  }
  await sleep(point.delayMs);
  return !run.exited;
}

export function describePoint(point) {
  const variant = point.variant ? ` (${point.variant})` : '';
  const where = point.mode === 'cic' ? `${point.delayMs} ms into the index build of ${pad(CIC_AT)}` : `${point.delayMs} ms after connecting`;
  return point.note ? `${where}${variant}, ${point.note}` : `${where}${variant}`;
}

// ------------------------------------------------------------------ state and checks

/** What the database holds: tracking rows, fault tables (with row counts), indexes. */
export async function inspect(target, db) {
  const hasTable = await target.psql(`SELECT to_regclass('public.schema_migrations') IS NOT NULL`, db);
  const rows = new Map();
  if (hasTable === 't') {
    const out = await target.psql(`SELECT version, status, coalesce(statements_done::text, '') FROM public.schema_migrations ORDER BY version`, db);
    for (const line of out.split('\n').filter(Boolean)) {
      const [v, status, done] = line.split('|');
      rows.set(v, { status, statementsDone: done });
    }
  }
  const tablesOut = await target.psql(`SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE 'fault\\_t\\_%' ORDER BY 1`, db);
  const tables = new Map();
  const names = tablesOut.split('\n').filter(Boolean);
  if (names.length) {
    const counts = await target.psql(names.map((n) => `SELECT '${n}', count(*) FROM ${n}`).join(' UNION ALL '), db);
    for (const line of counts.split('\n').filter(Boolean)) {
      const [n, c] = line.split('|');
      tables.set(n, Number(c));
    }
  }
  const idxOut = await target.psql(
    `SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'pg_toast', 'information_schema') ORDER BY 1`,
    db,
  );
  const indexes = new Map();
  for (const line of idxOut.split('\n').filter(Boolean)) {
    const [n, valid] = line.split('|');
    indexes.set(n, valid === 't');
  }
  return { rows, tables, indexes };
}

function summarize(state) {
  const completed = [...state.rows].filter(([, r]) => r.status === 'completed').map(([v]) => v);
  const other = [...state.rows].filter(([, r]) => r.status !== 'completed').map(([v, r]) => `${v}=${r.status}`);
  const invalid = [...state.indexes].filter(([, ok]) => !ok).map(([n]) => n);
  return `completed ${completed.length ? `${completed[0]}..${completed.at(-1)} (${completed.length})` : 'none'}${other.length ? `, other rows: ${other.join(', ')}` : ''}, fault tables ${state.tables.size}${invalid.length ? `, INVALID indexes: ${invalid.join(', ')}` : ''}`;
}
export { summarize };

/**
 * What must hold at any moment, also right after a fault: each ordinary
 * migration is completed with its table and rows, or absent (no table, no
 * row: a `failed` row would blame a file for a fault); the completed ones are
 * a prefix of the plan; a completed index migration has both indexes, valid.
 * (The interrupted no-transaction migration may be half done here; it must be
 * finished by the next deploy, see `complete`.)
 */
export function consistency(state) {
  const problems = [];
  let gapAt;
  for (let i = 1; i <= COUNT; i += 1) {
    const v = pad(i);
    const row = state.rows.get(v);
    if (row && !['completed', 'failed'].includes(row.status)) problems.push(`${v} has a tracking row with status '${row.status}'`);
    const done = row?.status === 'completed';
    if (done && gapAt) problems.push(`${v} is completed but ${gapAt} before it is not`);
    if (!done && !gapAt) gapAt = v;
    if (i === CIC_AT) {
      if (done) {
        for (const ix of CIC_INDEXES) {
          if (!state.indexes.has(ix)) problems.push(`${v} is completed but its index ${ix} does not exist`);
          else if (!state.indexes.get(ix)) problems.push(`${v} is completed but its index ${ix} is INVALID`);
        }
      }
      continue;
    }
    const table = `fault_t_${v}`;
    if (done) {
      if (!state.tables.has(table)) problems.push(`${v} is completed but table ${table} does not exist`);
      else if (state.tables.get(table) !== ROWS) problems.push(`${v} is completed but ${table} has ${state.tables.get(table)} rows, not ${ROWS}`);
    } else {
      if (row?.status === 'failed') problems.push(`${v} (an ordinary migration) has a 'failed' row although the file is fine`);
      if (state.tables.has(table)) problems.push(`${v} is not completed but its table ${table} exists (half applied)`);
    }
  }
  return problems;
}

/** What must hold when a deploy says it is done: everything applied, no INVALID index. */
export function complete(state) {
  const problems = [];
  const missing = [];
  for (let i = 1; i <= COUNT; i += 1) if (state.rows.get(pad(i))?.status !== 'completed') missing.push(pad(i));
  if (missing.length) problems.push(`not completed: ${missing.length > 6 ? `${missing.slice(0, 6).join(', ')}, ... (${missing.length})` : missing.join(', ')}`);
  for (const [n, ok] of state.indexes) if (!ok) problems.push(`index ${n} is INVALID`);
  return problems;
}

/** Migrations reported applied must have stayed applied (durability). */
export function durability(state, reported) {
  const lost = reported.filter((v) => state.rows.get(v)?.status !== 'completed');
  return lost.length ? [`reported applied but not completed in the database: ${lost.join(', ')}`] : [];
}

const CONNECTION_WORDS = /connection|connect|closed|eof|reset|broken pipe|terminat|shut ?down|timed? ?out|unreachable|network/i;

/**
 * The outcome of a run that met a connection fault (cut, restart, silence):
 * exit 0 only with everything applied; otherwise exit 2 with an error that is
 * about the connection, not a blame on a file; migrations an error lists as
 * applied are applied.
 */
export function truthfulOutcome(run, result, state) {
  const problems = [];
  if (result.hung) return [`tidemark hung: no exit within ${result.ms} ms`];
  if (result.signal) return [`tidemark died of ${result.signal}`];
  const err = errorEvent(run);
  if (result.code === 0) {
    problems.push(...complete(state).map((p) => `exit 0 but ${p}`));
    if (err) problems.push(`exit 0 with an error event: ${err.code}: ${err.message}`);
    return problems;
  }
  if (result.code !== 2) problems.push(`exit ${result.code} (a lost connection is exit 2)`);
  if (!err) {
    problems.push(`exit ${result.code} without an error event on stdout`);
    return problems;
  }
  const text = `${err.message} ${err.hint ?? ''}`;
  if (err.code === 'E_MIGRATION_FAILED') problems.push(`a lost connection reported as E_MIGRATION_FAILED: ${err.message}`);
  if (/fix the file/i.test(text)) problems.push(`a lost connection blamed on a file ("Fix the file"): ${err.message}`);
  if (!CONNECTION_WORDS.test(text)) problems.push(`the error does not say the connection was lost: ${err.code}: ${err.message}`);
  // Issue 11: a lost connection says what is committed, what is unknown, and to run deploy again.
  if (err.code !== 'E_CONNECT' && !/again/i.test(text)) problems.push(`the error does not say to run deploy again: ${err.code}: ${err.message}`);
  for (const a of err.applied ?? []) {
    if (state.rows.get(a.version)?.status !== 'completed') problems.push(`the error lists ${a.version} as applied, but it is not completed`);
  }
  return problems;
}

/**
 * The next deploy, run directly against the database: must exit 0 and leave
 * everything applied, with no INVALID index.
 */
export async function recover(target, db, cwd) {
  const run = startCli(['deploy', '--url', urlFor(target, db)], { cwd });
  const result = await run.done;
  const state = await inspect(target, db);
  const problems = [];
  if (result.code !== 0 || result.hung || result.signal) {
    const err = errorEvent(run);
    problems.push(`the next deploy did not succeed: ${result.hung ? 'hung' : `exit ${result.code}`}${err ? ` ${err.code}: ${err.message}` : ''}`);
  }
  problems.push(...consistency(state).map((p) => `after the next deploy: ${p}`), ...complete(state).map((p) => `after the next deploy: ${p}`));
  return { run, result, state, problems };
}

/** Waits (up to `ms`) until no session but ours is connected to `db`; a killed client's backend may linger. */
export async function waitForSessionsGone(target, db, ms = 15_000) {
  const until = Date.now() + ms;
  for (;;) {
    const n = Number(await target.psql(`SELECT count(*) FROM pg_stat_activity WHERE datname = '${db}' AND pid <> pg_backend_pid()`));
    if (n === 0) return 0;
    if (Date.now() > until) return n;
    await sleep(100);
  }
}

// ------------------------------------------------------------------ TCP proxy

/**
 * A TCP proxy on `listenHost` forwarding to host:port. cut(rst) ends every
 * open connection (both sides; RST or FIN); silence() stops forwarding in
 * both directions without closing anything (what a dead network looks like
 * from the application; with `deadNetwork` the packets are dropped too);
 * release() closes what silence() kept open.
 */
export async function startProxy({ host, port, listenHost = '127.0.0.1' }) {
  const conns = new Set();
  let silent = false;
  const server = net.createServer((client) => {
    const c = { client, upstream: net.connect(port, host) };
    conns.add(c);
    c.client.setNoDelay(true);
    c.upstream.setNoDelay(true);
    const pipe = (from, to) =>
      from.on('data', (d) => {
        if (!silent && !to.destroyed) to.write(d);
      });
    pipe(c.client, c.upstream);
    pipe(c.upstream, c.client);
    const end = () => {
      if (silent) return;
      c.client.destroy();
      c.upstream.destroy();
      conns.delete(c);
    };
    c.client.on('error', () => {});
    c.upstream.on('error', () => {});
    c.client.on('close', end);
    c.upstream.on('close', end);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, resolve);
  });
  return {
    port: server.address().port,
    host: listenHost,
    get open() {
      return conns.size;
    },
    cut({ rst = false } = {}) {
      const n = conns.size;
      for (const c of conns) {
        for (const s of [c.client, c.upstream]) {
          if (rst && typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
          else s.destroy();
        }
      }
      conns.clear();
      return n;
    },
    silence() {
      silent = true;
      return conns.size;
    },
    release() {
      silent = false;
      for (const c of conns) {
        c.client.destroy();
        c.upstream.destroy();
      }
      conns.clear();
    },
    close() {
      this.release();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

// ------------------------------------------------------------------ a dead network

function ip(args) {
  return new Promise((resolve, reject) =>
    execFile('ip', args, { encoding: 'utf8' }, (e, stdout, stderr) => (e ? reject(new Error(`ip ${args.join(' ')}: ${stderr || e.message}`)) : resolve(stdout))),
  );
}

/**
 * A network namespace joined to this one by a veth pair: a client started in
 * it (startCli's `netns`) reaches `hostAddr` over a real link, and down()
 * takes the host end of the link down, so every packet (data, ACKs, keepalive
 * probes) is dropped silently: nothing is closed, nothing is answered, which
 * is what a dead network or a vanished NAT entry looks like. A proxy that
 * merely stops forwarding on loopback would not do: the kernel would keep
 * acknowledging data and keepalive probes. Needs root and iproute2.
 */
export async function deadNetwork() {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error('the silent-connection trials need root (they create a network namespace with ip netns)');
  }
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    throw new Error('the silent-connection trials need iproute2 (apt-get install -y iproute2)');
  }
  const id = process.pid % 100000;
  const ns = `tidemark-faults-${process.pid}`;
  const hostIf = `tmf${id}h`;
  const nsIf = `tmf${id}n`;
  const net3 = 1 + (process.pid % 250);
  const hostAddr = `10.231.${net3}.1`;
  const nsAddr = `10.231.${net3}.2`;
  const destroySync = () => {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // gone already
    }
    try {
      execFileSync('ip', ['link', 'del', hostIf], { stdio: 'ignore' });
    } catch {
      // gone with the namespace
    }
  };
  destroySync();
  process.once('exit', destroySync);
  await ip(['netns', 'add', ns]);
  await ip(['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
  await ip(['link', 'set', nsIf, 'netns', ns]);
  await ip(['addr', 'add', `${hostAddr}/30`, 'dev', hostIf]);
  await ip(['link', 'set', hostIf, 'up']);
  await ip(['netns', 'exec', ns, 'ip', 'addr', 'add', `${nsAddr}/30`, 'dev', nsIf]);
  await ip(['netns', 'exec', ns, 'ip', 'link', 'set', nsIf, 'up']);
  await ip(['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  return {
    ns,
    hostAddr,
    down: () => ip(['link', 'set', hostIf, 'down']),
    up: () => ip(['link', 'set', hostIf, 'up']),
    destroy: async () => destroySync(),
  };
}

// ------------------------------------------------------------------ server restarts

/** pg_ctl restart -m <mode> of a servers.mjs server, as the server user, on the same port. */
export function restartServer(server, mode) {
  const pgCtl = path.join(PG_BIN, 'pg_ctl');
  const args = ['-D', server.data, '-m', mode, '-w', '-t', '60', '-o', `-p ${server.port} -k ${server.dir}`, '-l', server.logFile, 'restart'];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', pgCtl, ...args]] : [pgCtl, args];
  return new Promise((resolve, reject) =>
    execFile(cmd, argv, { encoding: 'utf8', timeout: 90_000 }, (e, stdout, stderr) =>
      e ? reject(new Error(`pg_ctl restart -m ${mode} failed: ${stderr || e.message}\n${server.log(20)}`)) : resolve(),
    ),
  );
}

// ------------------------------------------------------------------ servers that close

/**
 * A fake server on a free port that misbehaves while tidemark connects:
 * - 'end': closes (FIN) as soon as the connection is accepted
 * - 'rst': resets as soon as the connection is accepted
 * - 'tls-then-end': answers the SSLRequest with 'S' (TLS accepted) and closes
 *   in the TLS handshake; without an SSLRequest, closes on the first bytes
 * - 'startup-then-end': answers the SSLRequest with 'N' and closes when the
 *   startup message arrives (before authentication)
 */
export async function closingServer(behaviour) {
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    if (behaviour === 'end') return void s.end();
    if (behaviour === 'rst') return void s.resetAndDestroy();
    let first = true;
    s.on('data', (d) => {
      const isSslRequest = first && d.length >= 8 && d.readInt32BE(4) === 80877103;
      first = false;
      if (behaviour === 'tls-then-end') {
        if (isSslRequest) s.write('S');
        s.end();
      } else if (isSslRequest) {
        s.write('N');
      } else {
        s.end();
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Runs the API (`deploy`) in a child process against `url` and reports
 * whether its promise settled: { settled: 'resolved'|'rejected'|'never', code, message }.
 */
export function apiDeploy(url, cwd, { hangMs = 60_000 } = {}) {
  const script = `
    const api = require(${JSON.stringify(PKG)});
    const url = process.argv[1];
    api.deploy({ url, cwd: process.cwd(), connectTimeout: 2000 }).then(
      (r) => { process.stdout.write(JSON.stringify({ settled: 'resolved', report: r })); },
      (e) => { process.stdout.write(JSON.stringify({ settled: 'rejected', code: e && e.code, message: e && e.message })); },
    );`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', script, url], { cwd, env: cleanEnv(), timeout: hangMs, encoding: 'utf8' }, (e, stdout, stderr) => {
      if (e && e.killed) return resolve({ settled: 'hung', message: `killed after ${hangMs} ms`, stderr });
      if (!stdout) return resolve({ settled: 'never', exitCode: e ? e.code : 0, stderr });
      try {
        resolve({ ...JSON.parse(stdout), stderr });
      } catch {
        resolve({ settled: 'unparsable', stdout, stderr });
      }
    });
  });
}

// ------------------------------------------------------------------ the advisory lock

/** tidemark's lock key for schema.table: the first 8 bytes of SHA-256("tidemark:" schema "." table), big-endian, signed (crates/tidemark-core/src/db.rs). */
export function lockKey(schema = 'public', table = 'schema_migrations') {
  return createHash('sha256').update(`tidemark:${schema}.${table}`).digest().readBigInt64BE(0);
}

/**
 * A psql session on `db` that takes tidemark's lock and holds it for
 * `holdS` seconds (then its session ends, which releases it). Resolves once
 * the lock is held; `.done` when the session has ended; `.stop()` ends it
 * early (by its pid).
 */
export async function holdLock(target, db, { holdS, appName }) {
  const key = lockKey();
  const child = spawn(
    'psql',
    ['-h', target.host, '-p', String(target.port), '-U', 'postgres', '-d', db, '-X', '-v', 'ON_ERROR_STOP=1', '-Atq', '-c', `SELECT pg_advisory_lock(${key})`, '-c', `SELECT pg_sleep(${holdS})`],
    { env: cleanEnv({ PGAPPNAME: appName }), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (c) => {
    stderr += c;
  });
  const done = new Promise((resolve) => child.on('close', resolve));
  const until = Date.now() + 10_000;
  for (;;) {
    const pid = await target.psql(
      `SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = '${appName}'`,
    );
    if (pid) return { pid: Number(pid), done, stop: () => child.kill('SIGTERM') };
    if (Date.now() > until) {
      child.kill('SIGTERM');
      throw new Error(`the lock holder ${appName} did not get the lock: ${stderr}`);
    }
    await sleep(50);
  }
}

// ------------------------------------------------------------------ outcome table

/** Records one trial's outcome for the summary (and TIDEMARK_FAULT_REPORT). */
export const outcomes = [];
export function record(kind, trial, problems, detail = '') {
  outcomes.push({ kind, backend: BACKEND, trial, passed: problems.length === 0, problems, detail });
}

/** Markdown table: per kind, trials / passed / failed and the first failure. */
export function outcomeTable(list = outcomes) {
  const kinds = new Map();
  for (const o of list) {
    const k = `${o.kind}|${o.backend}`;
    if (!kinds.has(k)) kinds.set(k, { kind: o.kind, backend: o.backend, trials: 0, passed: 0, failed: 0, first: '' });
    const s = kinds.get(k);
    s.trials += 1;
    if (o.passed) s.passed += 1;
    else {
      s.failed += 1;
      if (!s.first) s.first = `trial ${o.trial}${o.detail ? ` (${o.detail})` : ''}: ${o.problems.join('; ')}`;
    }
  }
  const cell = (s) => s.replace(/\|/g, '\\|').replace(/\s+/g, ' ').slice(0, 400);
  const lines = ['| fault | backend | trials | passed | failed | first failure |', '|---|---|---|---|---|---|'];
  for (const s of kinds.values()) lines.push(`| ${s.kind} | ${s.backend} | ${s.trials} | ${s.passed} | ${s.failed} | ${cell(s.first)} |`);
  return lines.join('\n');
}

export function writeReport() {
  const file = process.env.TIDEMARK_FAULT_REPORT;
  if (!file) return;
  fs.writeFileSync(file, `${JSON.stringify({ seed: SEED, trials: TRIALS, backend: BACKEND, outcomes }, null, 2)}\n`);
}
