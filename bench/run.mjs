#!/usr/bin/env node
// tidemark's peer-comparison benchmark. One command (`npm run bench` at the root,
// or `node bench/run.mjs`): installs the peers into bench/node_modules (npm ci) when
// needed, generates the workloads under bench/.work/, runs every tool against a
// fresh database per run, and prints one table (markdown) on stdout; progress
// goes to stderr.
//
// Environment:
//   RUNS=5                 timed runs per tool and workload (median, min, max)
//   BENCH_PG=127.0.0.1:5432  server (trust auth, user postgres or BENCH_PGUSER)
//   BENCH_N=200            migrations in workloads 1, 2, 3, 5
//   BENCH_DELAY_MS=5       added delay each way in workload 5
//   BENCH_TOOLS=a,b        only these tool ids (tidemark-native, tidemark-wasm,
//                          node-pg-migrate, dbmate, dbmate-bin, drizzle,
//                          postgres-migrations, sqlx)
//   BENCH_WORKLOADS=...    subset of counts,noop,fresh,status,big,latency
//   BENCH_SQLX=1           include sqlx-cli (cargo install on first use: minutes)
//   BENCH_NO_INSTALL=1     do not run npm ci for bench/node_modules
//
// Needs: PostgreSQL, psql, GNU time (/usr/bin/time), Node 20+, a built tidemark
// (npm run build at the root).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

import { abortAll, measure, summarize } from './lib/measure.mjs';
import { abortCreates, createDb, dbUrl, dropAllOwn, dropDb, pgTarget, pingRtt, psql } from './lib/pg.mjs';
import { startProxy } from './lib/proxy.mjs';
import { allTools, benchDir, psqlBaselines } from './lib/tools.mjs';
import { bigMigration, smallMigrations } from './lib/workloads.mjs';

const RUNS = Number(process.env.RUNS ?? 5);
const N = Number(process.env.BENCH_N ?? 200);
const DELAY = Number(process.env.BENCH_DELAY_MS ?? 5);
const BIG_ROWS = 25000; // 25,000 lines of 100 bytes: the 2.5 MB migration of issue 15
const onlyTools = process.env.BENCH_TOOLS ? new Set(process.env.BENCH_TOOLS.split(',')) : null;
const workloads = new Set((process.env.BENCH_WORKLOADS ?? 'counts,noop,fresh,status,big,latency').split(','));
const target = pgTarget();
const log = (...a) => console.error('[bench]', ...a);

// ---------------------------------------------------------------- preflight
function ensureInstalled() {
  const lock = join(benchDir, 'package-lock.json');
  const installed = join(benchDir, 'node_modules/.package-lock.json');
  if (process.env.BENCH_NO_INSTALL || (existsSync(installed) && statSync(installed).mtimeMs >= statSync(lock).mtimeMs)) return;
  log('installing the peers: npm ci --prefix bench');
  const r = spawnSync('npm', ['ci', '--prefix', benchDir, '--no-audit', '--no-fund'], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error('npm ci --prefix bench failed');
}

function need(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: is it installed?\n${r.stderr ?? r.error}`);
  return r.stdout.trim();
}

ensureInstalled();
need('/usr/bin/time', ['-f', '%M', 'true']);
need('psql', ['--version']);
const serverVersion = await psql('postgres', 'show server_version').catch((e) => { throw new Error(`cannot reach PostgreSQL at ${target.host}:${target.port}: ${e.message}`); });

const tools = [];
const skipped = [];
for (const t of allTools()) {
  if (onlyTools && !onlyTools.has(t.id)) continue;
  if (t.optIn && !process.env[t.optIn]) { skipped.push({ label: t.label, why: `opt-in: set ${t.optIn}=1` }); continue; }
  const c = t.check();
  if (c.skip) { skipped.push({ label: t.label, why: c.skip }); log(`skip ${t.label}: ${c.skip}`); continue; }
  tools.push({ ...t, version: c.version });
}
const baselines = psqlBaselines.map((b) => ({ ...b, version: b.check().version }));
const floor = { id: 'floor', label: '`node -e 0` (floor)', version: process.version, floor: true };

// ---------------------------------------------------------------- workload folders
const work = join(benchDir, '.work', `run-${process.pid}`);
rmSync(work, { recursive: true, force: true });
const small = smallMigrations(N);
const big = bigMigration(BIG_ROWS);
const dirOf = (kind, t) => join(work, kind, t.id);
for (const t of tools) {
  t.layout(dirOf('small', t), small);
  t.layout(dirOf('one', t), smallMigrations(1));
  t.layout(dirOf('big', t), [big]);
}
for (const b of baselines) b.layout(dirOf('big', b), [big]);
mkdirSync(dirOf('small', floor), { recursive: true });

// ---------------------------------------------------------------- cleanup
const failDir = join(benchDir, '.work', `failures-${process.pid}`);
const proxies = [];
let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    for (const p of proxies) await p.close();
    const n = await dropAllOwn().catch(() => 0);
    rmSync(work, { recursive: true, force: true });
    log(`cleaned up: ${n} database(s) dropped, proxies stopped`);
  })();
  return cleaning;
}
process.on('SIGINT', () => {
  log('interrupted: stopping');
  abortCreates();
  abortAll();
  // Let the command under way exit and its database be dropped, then clean up what is left.
  setTimeout(() => cleanup().finally(() => process.exit(130)), 500);
});

// ---------------------------------------------------------------- helpers
const failures = [];
function failed(what, err) {
  mkdirSync(failDir, { recursive: true });
  const file = join(failDir, `${failures.length + 1}.log`);
  writeFileSync(file, `${what}\n${err.log ?? err.stack ?? err.message}\n`);
  failures.push({ what, file, message: err.message });
  log(`${what}: FAILED (${file})\n${err.message}`);
  return err.message;
}

const tableCount = (db) => psql(db, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename ~ '^t[0-9]+$'`).then(Number);
const verifyTables = (want) => async (db, t) => {
  const n = await tableCount(db);
  if (n !== want) throw new Error(`${t.label}: ${n} of ${want} tables after apply`);
};
const verifySmall = verifyTables(N);
async function verifyBig(db, t) {
  const n = Number(await psql(db, 'SELECT count(*) FROM big'));
  if (n !== BIG_ROWS) throw new Error(`${t.label}: ${n} of ${BIG_ROWS} rows after apply`);
}
const via = (port) => ({ ...target, port });

/** Per tool: a database with the N migrations applied by the tool itself, used as a template. */
const templates = new Map();
async function template(t) {
  if (!templates.has(t.id)) {
    templates.set(t.id, (async () => {
      const db = await createDb(`tpl_${t.id}`);
      await measure({ ...t.apply(dbUrl(db)), cwd: dirOf('small', t) });
      await verifySmall(db, t);
      return db;
    })());
  }
  return templates.get(t.id);
}

const rows = []; // { workload, tool, stats?, error? }
const loads = []; // { workload, before, after } (1-minute load average)

/**
 * Timed runs. Each entry: { tool, kind, prepare() -> db|null, cmd(db) -> {argv, env}, verify?(db) }.
 * Rounds are interleaved (every entry once per round, starting order rotated) so
 * that drift in machine load spreads over all tools alike. A failing entry is
 * reported and not run again.
 */
async function timed(workload, entries) {
  const before = os.loadavg()[0];
  const samples = entries.map(() => []);
  const errors = entries.map(() => null);
  for (let r = 0; r < RUNS; r++) {
    for (let k = 0; k < entries.length; k++) {
      const idx = (k + r) % entries.length;
      const e = entries[idx];
      if (errors[idx]) continue;
      let db = null;
      try {
        db = await e.prepare();
        samples[idx].push(await measure({ ...e.cmd(db), cwd: dirOf(e.kind, e.tool) }));
        if (e.verify) await e.verify(db, e.tool);
      } catch (err) {
        errors[idx] = failed(`${workload} / ${e.tool.label} (run ${r + 1})`, err);
      } finally {
        if (db) await dropDb(db);
      }
    }
    log(`${workload}: round ${r + 1}/${RUNS}`);
  }
  loads.push({ workload, before, after: os.loadavg()[0] });
  entries.forEach((e, i) => rows.push({ workload, tool: e.tool, stats: errors[i] ? null : summarize(samples[i]), error: errors[i] }));
}

const floorEntry = { tool: floor, kind: 'small', prepare: async () => null, cmd: () => ({ argv: [process.execPath, '-e', '0'] }) };
const noopEntry = (t, port = target.port) => ({
  tool: t, kind: 'small',
  prepare: async () => createDb(`noop_${t.id}`, await template(t)),
  cmd: (db) => t.redeploy(dbUrl(db, via(port))),
});
const freshEntry = (t, port = target.port) => ({
  tool: t, kind: 'small',
  prepare: () => createDb(`fresh_${t.id}`),
  cmd: (db) => t.apply(dbUrl(db, via(port))),
  verify: verifySmall,
});
const statusEntry = (t) => ({
  tool: t, kind: 'small',
  prepare: async () => createDb(`status_${t.id}`, await template(t)),
  cmd: (db) => t.status(dbUrl(db)),
});
const bigEntry = (t) => ({
  tool: t, kind: 'big',
  prepare: () => createDb(`big_${t.id}`),
  cmd: (db) => t.apply(dbUrl(db)),
  verify: verifyBig,
});

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };

// ---------------------------------------------------------------- run
const started = Date.now();
let rtt = null;
const counts = new Map(); // `${key}|${tool.id}` -> { connections, types, bytesAfterAuth } | { error }
try {
  const counter = await startProxy({ host: target.host, port: target.port, delayMs: 0 });
  proxies.push(counter);
  const lag = await startProxy({ host: target.host, port: target.port, delayMs: DELAY });
  proxies.push(lag);

  const pings = async (port) => median(await pingRtt({ ...target, port, count: 21 }));
  rtt = { direct: await pings(target.port), lag: await pings(lag.port) };
  log(`select 1 round trip: ${rtt.direct.toFixed(2)} ms direct, ${rtt.lag.toFixed(2)} ms through the ${DELAY} ms-each-way proxy`);

  // 6. Round trips: one run per tool and workload through the counting proxy.
  if (workloads.has('counts')) {
    const once = async (key, t, prepare, cmd, kind, verify) => {
      let db = null;
      try {
        db = await prepare();
        await counter.reset();
        await measure({ ...cmd(dbUrl(db, via(counter.port))), cwd: dirOf(kind, t) });
        counts.set(`${key}|${t.id}`, await counter.counts());
        if (verify) await verify(db, t);
      } catch (err) {
        counts.set(`${key}|${t.id}`, { error: failed(`round trips ${key} / ${t.label}`, err) });
      } finally {
        if (db) await dropDb(db);
      }
    };
    for (const t of tools) {
      log(`counting round trips: ${t.label}`);
      await once('noop', t, async () => createDb(`cnoop_${t.id}`, await template(t)), (u) => t.redeploy(u), 'small');
      await once('fresh', t, () => createDb(`cfresh_${t.id}`), (u) => t.apply(u), 'small', verifySmall);
      await once('fresh1', t, () => createDb(`cone_${t.id}`), (u) => t.apply(u), 'one', verifyTables(1));
      if (t.status) await once('status', t, async () => createDb(`cstatus_${t.id}`, await template(t)), (u) => t.status(u), 'small');
      if (workloads.has('big')) await once('big', t, () => createDb(`cbig_${t.id}`), (u) => t.apply(u), 'big', verifyBig);
    }
    if (workloads.has('big')) for (const b of baselines) await once('big', b, () => createDb(`cbig_${b.id}`), (u) => b.apply(u), 'big', verifyBig);
  }

  if (workloads.has('noop')) {
    log('workload 1: no-op deploy');
    await timed('1. no-op deploy', [floorEntry, ...tools.map((t) => noopEntry(t))]);
  }
  if (workloads.has('fresh')) {
    log('workload 2: fresh apply');
    await timed('2. fresh apply', tools.map((t) => freshEntry(t)));
  }
  if (workloads.has('status')) {
    log('workload 3: status');
    await timed('3. status', [floorEntry, ...tools.filter((t) => t.status).map(statusEntry)]);
  }
  if (workloads.has('big')) {
    log('workload 4: one 2.5 MB migration');
    await timed('4. 2.5 MB migration', [...baselines.map(bigEntry), ...tools.map(bigEntry)]);
  }
  if (workloads.has('latency')) {
    log('workload 5: with added latency');
    await timed(`5a. no-op deploy, RTT ${rtt.lag.toFixed(1)} ms`, tools.map((t) => noopEntry(t, lag.port)));
    await timed(`5b. fresh apply, RTT ${rtt.lag.toFixed(1)} ms`, tools.map((t) => freshEntry(t, lag.port)));
  }
} finally {
  await cleanup();
}

// ---------------------------------------------------------------- report
const fmt = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '');
const qm = (c) => (c.types.Q ?? 0) + (c.types.E ?? 0);
const countKey = (workload) => ({ 1: 'noop', 2: 'fresh', 3: 'status', 4: 'big' })[workload[0]] ?? null;
const migrationsIn = (key) => ({ big: 1, fresh1: 1 })[key] ?? N;
const cell = (s) => s.replace(/\|/g, '\\|').replace(/\s+/g, ' ');

const out = [];
const p = (s = '') => out.push(s);
p(`## Results`);
p();
p(`${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, Linux ${os.release()}, Node ${process.version}, PostgreSQL ${serverVersion} on ${target.host}:${target.port}, RUNS=${RUNS}, N=${N}, ${((Date.now() - started) / 60000).toFixed(1)} min.`);
if (rtt) p(`\`select 1\` round trip (median of 21 simple-query pings): **${fmt(rtt.direct, 2)} ms** direct, **${fmt(rtt.lag, 2)} ms** through the delaying proxy (${DELAY} ms each way).`);
p();
p('| workload | tool | median ms | min ms | max ms | peak RSS MB (median) | × native | query msgs (Q+E) | per migration |');
p('|---|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const native = rows.find((x) => x.workload === r.workload && x.tool.id === 'tidemark-native')?.stats?.median;
  const key = countKey(r.workload);
  const c = key ? counts.get(`${key}|${r.tool.id}`) : null;
  const cq = c && !c.error ? qm(c) : null;
  if (r.error) { p(`| ${r.workload} | ${r.tool.label} | failed: ${cell(r.error).slice(0, 200)} | | | | | | |`); continue; }
  const s = r.stats;
  const per = cq != null ? cq / migrationsIn(key) : null;
  p(`| ${r.workload} | ${r.tool.label} | ${fmt(s.median)} | ${fmt(s.min)} | ${fmt(s.max)} | ${fmt(s.rssMedianMb)} | ${native && !r.tool.floor ? fmt(s.median / native, 2) : ''} | ${cq ?? ''} | ${per != null ? fmt(per, per < 10 ? 3 : 1) : ''} |`);
}
p();
if (loads.length) p(`1-minute load average (start → end of each workload; the machine has ${os.cpus().length} cores): ${loads.map((l) => `${l.workload.split(',')[0]}: ${fmt(l.before, 1)} → ${fmt(l.after, 1)}`).join('; ')}.`);
p();

if (counts.size) {
  p(`### Round trips (workload 6)`);
  p();
  p(`Frontend messages the server received after authentication, one run per tool through the counting proxy. **Query messages = Q (simple query) + E (Execute)**; Parse, Bind, Describe and Sync are shown for the extended-protocol tools but not counted (a Parse/Bind/Execute/Sync group is one statement). "Sync points" (Q + S) is the number of ReadyForQuery answers the client waits for, close to the number of round trips for clients that do not pipeline. "per migration" divides by the migrations in the folder (${N}, or 1).`);
  p();
  p('| workload | tool | connections | Q | P | B | E | S | query msgs | per migration | sync points (Q+S) | bytes sent |');
  p('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const label = { noop: `1. no-op deploy (${N} applied)`, fresh: `2. fresh apply (${N})`, fresh1: '2. fresh apply (1)', status: `3. status (${N} applied)`, big: '4. 2.5 MB migration' };
  for (const key of Object.keys(label)) {
    for (const t of key === 'big' ? [...baselines, ...tools] : tools) {
      const c = counts.get(`${key}|${t.id}`);
      if (!c) continue;
      if (c.error) { p(`| ${label[key]} | ${t.label} | failed: ${cell(c.error).slice(0, 160)} | | | | | | | | | |`); continue; }
      const n = (k) => c.types[k] ?? 0;
      p(`| ${label[key]} | ${t.label} | ${c.connections} | ${n('Q')} | ${n('P')} | ${n('B')} | ${n('E')} | ${n('S')} | ${qm(c)} | ${fmt(qm(c) / migrationsIn(key), 3)} | ${n('Q') + n('S')} | ${c.bytesAfterAuth} |`);
    }
  }
  p();
}

// Targets, checked on this run's numbers.
{
  const med = (w, id) => rows.find((r) => r.workload.startsWith(w) && r.tool.id === id)?.stats?.median;
  const verdicts = [];
  const v = (ok, text) => verdicts.push(`- ${ok === null ? 'not measured' : ok ? '**met**' : '**missed**'}: ${text}`);
  for (const id of ['tidemark-native', 'tidemark-wasm']) {
    const c = (k) => { const x = counts.get(`${k}|${id}`); return x && !x.error ? qm(x) : null; };
    if (c('noop') === null && c('fresh') === null) continue;
    v(c('noop') === null ? null : c('noop') === 1, `${id}: no-op deploy sends exactly 1 query message (sent ${c('noop')})`);
    v(c('fresh') === null || c('fresh1') === null ? null : c('fresh') <= 3 && c('fresh1') <= 3, `${id}: applying N migrations sends at most 3 (N = ${N}: ${c('fresh')}, N = 1: ${c('fresh1')})`);
  }
  {
    const native = med('1.', 'tidemark-native');
    const fl = med('1.', 'floor');
    const nodeTools = tools.filter((t) => t.viaNode && t.id !== 'tidemark-native');
    const beaten = nodeTools.filter((t) => (med('1.', t.id) ?? Infinity) <= native);
    v(native == null ? null : beaten.length === 0, `workload 1: tidemark native fastest of the tools started through Node (native ${fmt(native)} ms; ${nodeTools.map((t) => `${t.id} ${fmt(med('1.', t.id))}`).join(', ')})`);
    v(native == null || fl == null ? null : native - fl <= 40, `workload 1: tidemark native within 40 ms of \`node -e 0\` (${fmt(native)} − ${fmt(fl)} = ${fmt(native - fl)} ms)`);
  }
  {
    const native = med('5b.', 'tidemark-native');
    const peers = tools.filter((t) => !t.id.startsWith('tidemark'));
    const ratios = peers.map((t) => ({ id: t.id, x: (med('5b.', t.id) ?? NaN) / native })).filter((r) => Number.isFinite(r.x));
    v(native == null || !ratios.length ? null : ratios.every((r) => r.x >= 5), `workload 5b (fresh apply at ${fmt(rtt?.lag)} ms RTT): tidemark native at least 5× faster than every peer (${ratios.map((r) => `${r.id} ${fmt(r.x, 2)}×`).join(', ')})`);
  }
  {
    const native = med('4.', 'tidemark-native');
    const ps = med('4.', 'psql');
    const ps1 = med('4.', 'psql-1');
    const one = med('4.', 'psql-one');
    v(native == null || ps == null ? null : native <= 1.2 * ps, `workload 4: tidemark native within 1.2× of \`psql -f\` (${fmt(native)} / ${fmt(ps)} ms = ${fmt(native / ps, 3)}×; against \`psql -1 -f\`: ${fmt(native / ps1, 3)}×)`);
    v(native == null || one == null ? null : native <= 1.1 * one, `workload 4 (issue 15): tidemark native within 1.1× of \`psql -f\` sending the file as one query (${fmt(native)} / ${fmt(one)} ms = ${fmt(native / one, 3)}×)`);
  }
  // Issue 15: start-up at the floor.
  {
    const rss = (w, id) => rows.find((r) => r.workload.startsWith(w) && r.tool.id === id)?.stats?.rssMedianMb;
    const native = med('1.', 'tidemark-native');
    const fl = med('1.', 'floor');
    v(native == null || fl == null ? null : native - fl <= 20, `issue 15: no-op deploy, native within 20 ms of \`node -e 0\` (${fmt(native)} − ${fmt(fl)} = ${fmt(native - fl)} ms)`);
    for (const [w, what, limit] of [['1.', 'no-op deploy', 1.3], ['3.', 'status', 1.3], ['4.', '2.5 MB migration', 1.2]]) {
      const n = med(w, 'tidemark-native');
      const x = med(w, 'tidemark-wasm');
      v(n == null || x == null ? null : x <= limit * n, `issue 15: ${what}, wasm within ${limit}× of native (${fmt(x)} / ${fmt(n)} ms = ${fmt(x / n, 2)}×)`);
    }
    const flr = rss('1.', 'floor');
    for (const [id, limit] of [['tidemark-native', 10], ['tidemark-wasm', 20]]) {
      const r = rss('1.', id);
      v(r == null || flr == null ? null : r - flr <= limit, `issue 15: peak RSS of a no-op deploy, ${id} within ${limit} MB of \`node -e 0\` (median of the runs' peaks: ${fmt(r)} − ${fmt(flr)} = ${fmt(r - flr)} MB)`);
    }
  }
  p('### Targets (this run)');
  p();
  for (const line of verdicts) p(line);
  p();
}

p('### Versions');
p();
for (const t of tools) p(`- ${t.label}: ${t.version}`);
if (workloads.has('big')) p(`- psql: ${baselines[0].version}`);
for (const s of skipped) p(`- ${s.label}: not run (${s.why})`);
p();
if (failures.length) {
  p('### Failures');
  p();
  for (const f of failures) p(`- ${f.what}: ${cell(f.message).slice(0, 300)} (full output: ${f.file})`);
  p();
}
console.log(out.join('\n'));
process.exit(failures.length ? 1 : 0);
