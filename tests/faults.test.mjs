// Fault injection (issue 11): tidemark must tell the truth under every
// interruption. A 50-migration deploy (one of them a no-transaction
// CREATE INDEX CONCURRENTLY on a 400k-row table) is run through the real CLI
// and interrupted at random points: SIGKILL of the CLI, connections cut by a
// proxy, the server restarted (fast and immediate), a network that goes
// silent; and tidemark connects to servers that close during connect and TLS.
// After each trial: every migration is completed with its row and objects or
// absent, nothing reported applied is lost, the exit code and message say
// what happened (a lost connection is never "fix the file"), and the next
// deploy exits 0 with everything applied and no INVALID index.
// Plus single-shot regressions for defects 2, 4, 8, 9 and 10 of issue 11.
//
// Run: npm run test:faults (both backends), or
//   TIDEMARK_BACKEND=native node --test tests/faults.test.mjs
// TIDEMARK_FAULT_TRIALS=20 for the full count (default 5 per fault kind),
// TIDEMARK_FAULT_SEED=<n> to replay a run's fault points, TIDEMARK_FAULT_KEEP=1
// to keep the databases of failed trials, TIDEMARK_FAULT_REPORT=<file.json>
// to write the outcomes.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { engine, ENGINE, project, database, tidemark, ndjson } from './helpers.mjs';
import { createPostgres } from './servers.mjs';
import * as F from './faults-lib.mjs';

const cwd = F.faultProject();
const cwdIfNotExists = F.faultProject({ ifNotExists: true });
const main = F.mainTarget();
let cal;
let pgServer;
let restartTarget;

const replay = `TIDEMARK_FAULT_SEED=${F.SEED} TIDEMARK_FAULT_TRIALS=${F.TRIALS} TIDEMARK_BACKEND=${F.BACKEND}`;
console.log(`faults: seed ${F.SEED}, ${F.TRIALS} trials per fault kind, backend ${F.BACKEND} (replay: ${replay} node --test tests/faults.test.mjs)`);

before(async () => {
  if (ENGINE.skip) return;
  await F.createTemplate(main);
  cal = await F.calibrate(main, cwd);
  console.log(
    `faults: a clean deploy takes ${cal.totalMs} ms (connected at ${cal.connectedMs} ms, index build of ${F.version(F.CIC_AT)} from ${cal.cicStartMs} ms for ${cal.cicMs} ms)`,
  );
});

after(async () => {
  // Databases of trials that ended in a harness error (judge drops the others).
  await F.dropLeftovers();
  if (main.template) await F.dropDatabase(main, main.template);
  if (pgServer) await pgServer.cleanup();
  if (F.outcomes.length) console.log(`faults: outcomes (seed ${F.SEED})\n${F.outcomeTable()}`);
  F.writeReport();
});

/** Fault points are drawn when the tests are defined, so a trial's point depends only on the seed. */
function points(kind, n) {
  const random = F.rng(`${kind}:${F.BACKEND}`);
  return Array.from({ length: n }, (_, k) => {
    const [u, v, w] = [random(), random(), random()];
    // About half the trials run the project whose index builds say IF NOT EXISTS.
    const ine = w >= 0.5;
    return { trial: k + 1, u, v, dir: ine ? cwdIfNotExists : cwd, variant: ine ? 'IF NOT EXISTS' : '' };
  });
}

/** The fault point of a trial: even trials anywhere in the run after connecting, odd ones inside the index build. */
function pointFor(p) {
  if (p.trial % 2 === 0) return { mode: 'time', delayMs: Math.round(p.u * Math.max(100, cal.totalMs - cal.connectedMs) * 0.95), variant: p.variant };
  return { mode: 'cic', delayMs: Math.round(p.u * cal.cicMs), variant: p.variant };
}

async function reach(run, point) {
  if (point.mode === 'time') {
    if (!(await run.waitFor((e) => e.event === 'connected'))) return false;
  } else if (!(await run.waitFor((e) => e.event === 'migrationApplied' && e.version === F.version(F.CIC_AT - 1)))) {
    return false;
  }
  await F.sleep(point.delayMs);
  return !run.exited;
}

/** reach() for a trial: notes in the trial's detail when the run ended before its fault point. */
async function reachOrNote(run, point) {
  const reached = await reach(run, point);
  if (!reached) point.note = 'not reached: the run ended before the fault point';
  return reached;
}

/** Everything after the fault: wait for the server to let go, check, recover, record, assert. */
async function judge(t, { kind, trial, target, db, run, result, point, dir, extra = [], outcome = (state) => F.truthfulOutcome(run, result, state) }) {
  const problems = [...extra];
  const lingering = await F.waitForSessionsGone(target, db);
  if (lingering) problems.push(`${lingering} session(s) of the interrupted deploy still on the server 15 s later`);
  const state = await F.inspect(target, db);
  if (outcome) problems.push(...outcome(state));
  problems.push(...F.consistency(state).map((p) => `after the fault: ${p}`));
  problems.push(...F.durability(state, F.reportedApplied(run)));
  const notDone = [];
  for (let i = 1; i <= F.COUNT; i += 1) if (state.rows.get(F.version(i))?.status !== 'completed') notDone.push(F.version(i));
  const rec = await F.recover(target, db, dir);
  problems.push(...rec.problems);
  const recApplied = rec.run.events.find((e) => e.event === 'done')?.report?.applied?.map((a) => a.version) ?? [];
  if (rec.result.code === 0 && recApplied.join() !== notDone.join()) {
    problems.push(`the next deploy reported applying [${recApplied.join(', ')}] but [${notDone.join(', ')}] were the ones not applied`);
  }
  const detail = `${point ? F.describePoint(point) : ''}; ${F.reportedApplied(run).length} reported applied; ${F.summarize(state)}`;
  F.record(kind, trial, problems, detail);
  t.diagnostic(`${kind} ${trial}: ${detail}`);
  await F.cleanupDatabase(target, db, problems.length > 0);
  assert.deepEqual(
    problems,
    [],
    `${kind} trial ${trial} (${detail}) [replay: ${replay}]\n${F.describeRun(run, result)}\n--- next deploy ---\n${F.describeRun(rec.run, rec.result)}`,
  );
}

// ------------------------------------------------------------------ SIGKILL

describe('SIGKILL of the CLI mid-deploy', () => {
  for (const p of points('kill', F.TRIALS)) {
    test(`kill trial ${p.trial}`, { ...engine, timeout: 300_000 }, async (t) => {
      const point = pointFor(p);
      const db = await F.trialDatabase(main, 'kill');
      const run = F.startCli(['deploy', '--url', F.urlFor(main, db)], { cwd: p.dir });
      const reached = await reachOrNote(run, point);
      if (reached) run.child.kill('SIGKILL');
      const result = await run.done;
      await judge(t, {
        kind: 'kill',
        trial: p.trial,
        dir: p.dir,
        target: main,
        db,
        run,
        result,
        point,
        outcome: (state) => {
          if (result.signal === 'SIGKILL') return [];
          // It finished before the kill: then it must have told the truth.
          if (result.hung) return ['tidemark hung'];
          if (result.code === 0) return F.complete(state).map((x) => `exit 0 but ${x}`);
          const err = F.errorEvent(run);
          return [`exit ${result.code} although nothing was interrupted: ${err ? `${err.code}: ${err.message}` : run.stderr}`];
        },
      });
    });
  }
});

// ------------------------------------------------------------------ cuts

describe('connections cut by a proxy mid-deploy', () => {
  for (const p of points('cut', F.TRIALS)) {
    test(`cut trial ${p.trial}`, { ...engine, timeout: 300_000 }, async (t) => {
      const point = pointFor(p);
      const rst = p.v < 0.5;
      const db = await F.trialDatabase(main, 'cut');
      const proxy = await F.startProxy({ host: main.host, port: main.port });
      let result;
      let run;
      let cut = 0;
      let rstNote = true;
      try {
        run = F.startCli(['deploy', '--url', F.urlFor(main, db, { host: '127.0.0.1', port: proxy.port })], { cwd: p.dir });
        if (await reachOrNote(run, point)) cut = proxy.cut({ rst });
        else rstNote = false;
        result = await run.done;
      } finally {
        await proxy.close();
      }
      if (rstNote) point.note = `${cut} connection(s) cut with ${rst ? 'RST' : 'FIN'}`;
      await judge(t, { kind: 'cut', trial: p.trial, dir: p.dir, target: main, db, run, result, point });
    });
  }
});

// ------------------------------------------------------------------ restarts

describe('server restarted mid-deploy (pg_ctl restart)', () => {
  before(async () => {
    if (ENGINE.skip) return;
    // synchronous_commit on (the fixture's default is off): "applied" must
    // survive an immediate restart, as on a real server.
    pgServer = await createPostgres({
      name: 'faults',
      conf: { synchronous_commit: 'on', max_connections: 40 },
      hba: ['host all all 127.0.0.1/32 trust'],
    });
    await pgServer.start();
    restartTarget = F.serverTarget(pgServer);
    await F.createTemplate(restartTarget);
  });

  for (const mode of ['fast', 'immediate']) {
    for (const p of points(`restart-${mode}`, F.TRIALS)) {
      test(`restart -m ${mode} trial ${p.trial}`, { ...engine, timeout: 300_000 }, async (t) => {
        const point = pointFor(p);
        const db = await F.trialDatabase(restartTarget, mode);
        const run = F.startCli(['deploy', '--url', F.urlFor(restartTarget, db)], { cwd: p.dir });
        let restarted = Promise.resolve();
        if (await reachOrNote(run, point)) restarted = F.restartServer(pgServer, mode);
        const result = await run.done;
        await restarted;
        await judge(t, { kind: `restart-${mode}`, trial: p.trial, dir: p.dir, target: restartTarget, db, run, result, point });
      });
    }
  }
});

// ------------------------------------------------------------------ silence

describe('a connection that goes silent mid-deploy', () => {
  // libpq's parameters: with these a dead network must end the run within seconds.
  const SHORT = { keepalives: '1', keepalives_idle: '1', keepalives_interval: '1', keepalives_count: '3', tcp_user_timeout: '3000' };
  let dead;
  before(async () => {
    if (ENGINE.skip) return;
    dead = await F.deadNetwork();
  });
  after(async () => {
    if (dead) await dead.destroy();
  });

  async function silentTrial(t, { kind, p, params, boundMs }) {
    const point = pointFor(p);
    const db = await F.trialDatabase(main, 'silent');
    const proxy = await F.startProxy({ host: main.host, port: main.port, listenHost: dead.hostAddr });
    const extra = [];
    let run;
    let result;
    try {
      run = F.startCli(['deploy', '--url', F.urlFor(main, db, { host: dead.hostAddr, port: proxy.port, params })], { cwd: p.dir, netns: dead.ns, hangMs: boundMs + 60_000 });
      if (await reachOrNote(run, point)) {
        proxy.silence();
        await dead.down();
        const silentAt = Date.now();
        const timer = F.sleep(boundMs).then(() => 'hung');
        if ((await Promise.race([run.done, timer])) === 'hung') {
          const how = params ? `URL parameters ${new URLSearchParams(params)}` : 'no keepalive parameters in the URL (the defaults)';
          extra.push(`tidemark still running ${boundMs / 1000} s after the network went silent (${how})`);
          run.child.kill('SIGKILL');
        }
        result = await run.done;
        point.note = `ended ${Date.now() - silentAt} ms after the silence`;
      } else {
        result = await run.done;
      }
    } finally {
      await dead.up();
      // The server side of a dead network ends too (its own keepalives).
      await proxy.close();
    }
    const outcome = (state) => (extra.length ? [] : F.truthfulOutcome(run, result, state));
    await judge(t, { kind, trial: p.trial, dir: p.dir, target: main, db, run, result, point, extra, outcome });
  }

  for (const p of points('silent', Math.ceil(F.TRIALS / 2))) {
    test(`silent trial ${p.trial}`, { ...engine, timeout: 300_000 }, (t) => silentTrial(t, { kind: 'silent', p, params: SHORT, boundMs: 25_000 }));
  }
  // The defaults must catch a dead network within about a minute: slow, so only in the full count.
  const full = F.TRIALS >= 20 ? {} : { skip: 'runs with TIDEMARK_FAULT_TRIALS=20 (takes up to 100 s)' };
  for (const p of points('silent-default', 1)) {
    test(`silent trial ${p.trial}, default keepalives`, { ...engine, ...full, timeout: 300_000 }, (t) =>
      silentTrial(t, { kind: 'silent-default', p, params: undefined, boundMs: 100_000 }),
    );
  }
});

// ------------------------------------------------------------------ servers that close while connecting

describe('a server that closes during connect and during TLS', () => {
  const cases = [
    ['end', undefined],
    ['end', 'prefer'],
    ['end', 'require'],
    ['end', 'disable'],
    ['rst', undefined],
    ['tls-then-end', undefined],
    ['tls-then-end', 'require'],
    ['startup-then-end', 'prefer'],
  ];
  let trial = 0;
  for (const [behaviour, sslmode] of cases) {
    trial += 1;
    const n = trial;
    test(`closing server: ${behaviour}, sslmode ${sslmode ?? 'default'} (CLI)`, { ...engine, timeout: 120_000 }, async () => {
      const srv = await F.closingServer(behaviour);
      let run;
      let result;
      try {
        const url = `postgres://postgres@127.0.0.1:${srv.port}/x${sslmode ? `?sslmode=${sslmode}` : ''}`;
        run = F.startCli(['deploy', '--url', url, '--connect-timeout', '2'], { cwd, hangMs: 60_000 });
        result = await run.done;
      } finally {
        await srv.close();
      }
      const problems = [];
      const err = F.errorEvent(run);
      if (result.hung) problems.push('tidemark hung');
      else if (result.code !== 2) problems.push(`exit ${result.code}, not 2 (nothing could be done)`);
      if (!err) problems.push('no error event');
      else if (!/connect/i.test(err.message)) problems.push(`the error does not say the connection failed: ${err.code}: ${err.message}`);
      if (run.events.some((e) => e.event === 'done')) problems.push('a done event although it never connected');
      const detail = `${behaviour}, sslmode ${sslmode ?? 'default'}, CLI`;
      F.record('closing-server', n, problems, detail);
      assert.deepEqual(problems, [], `${detail}\n${F.describeRun(run, result)}`);
    });
  }
  for (const [behaviour, sslmode] of [
    ['end', undefined],
    ['end', 'require'],
    ['tls-then-end', 'prefer'],
  ]) {
    trial += 1;
    const n = trial;
    test(`closing server: ${behaviour}, sslmode ${sslmode ?? 'default'} (API promise settles)`, { ...engine, timeout: 120_000 }, async () => {
      const srv = await F.closingServer(behaviour);
      let r;
      try {
        r = await F.apiDeploy(`postgres://postgres@127.0.0.1:${srv.port}/x${sslmode ? `?sslmode=${sslmode}` : ''}`, cwd);
      } finally {
        await srv.close();
      }
      const problems = [];
      if (r.settled !== 'rejected') problems.push(`the deploy() promise ${r.settled === 'resolved' ? 'resolved' : `never settled (${r.settled})`}`);
      else if (!/connect/i.test(r.message ?? '')) problems.push(`rejected with an error that does not say the connection failed: ${r.code}: ${r.message}`);
      const detail = `${behaviour}, sslmode ${sslmode ?? 'default'}, API`;
      F.record('closing-server', n, problems, detail);
      assert.deepEqual(problems, [], `${detail}: ${JSON.stringify(r)}`);
    });
  }
});

// ------------------------------------------------------------------ single-shot regressions (issue 11)

describe('issue 11 regressions', () => {
  async function trackingRows(db) {
    const has = await db.query(`SELECT to_regclass('public.schema_migrations') IS NOT NULL`);
    if (has !== 't') return [];
    const out = await db.query(`SELECT version || ':' || status FROM public.schema_migrations ORDER BY version`);
    return out ? out.split('\n') : [];
  }
  async function regclass(db, name) {
    return (await db.query(`SELECT to_regclass('public.${name}') IS NOT NULL`)) === 't';
  }
  function regression(name, fn) {
    const kind = `regression ${name.split(':')[0]}`;
    test(name, { ...engine, timeout: 120_000 }, async (t) => {
      try {
        await fn(t);
        F.record(kind, 1, []);
      } catch (e) {
        F.record(kind, 1, [e.message.split('\n')[0]]);
        throw e;
      }
    });
  }

  regression('defect 2: COPY ... TO STDOUT in an ordinary migration is refused before anything runs', async (t) => {
    const db = await database(t);
    const dir = project(t, {
      'migrations/001_first.sql': 'CREATE TABLE copy_first (id int);\n',
      'migrations/002_copy_out.sql': 'CREATE TABLE copy_second (id int);\nCOPY (SELECT 1) TO stdout;\n',
      'migrations/003_third.sql': 'CREATE TABLE copy_third (id int);\n',
    });
    const r = await tidemark(['deploy', '--json', '--url', db.url], { cwd: dir });
    const rows = await trackingRows(db);
    const err = ndjson(r.stdout).find((e) => e.event === 'error');
    const state = { first: await regclass(db, 'copy_first'), second: await regclass(db, 'copy_second'), third: await regclass(db, 'copy_third') };
    assert.ok(r.code === 2 || r.code === 3, `exit ${r.code}, expected a refusal before anything runs; tracking rows: ${rows.join(', ') || 'none'}\n${r.all}`);
    assert.ok(err && /002_copy_out\.sql/.test(`${err.file ?? ''} ${err.message}`), `the error must name 002_copy_out.sql: ${JSON.stringify(err)}`);
    assert.deepEqual(rows, [], `refused before anything runs: no tracking rows, got ${rows.join(', ')}`);
    assert.deepEqual(state, { first: false, second: false, third: false }, 'no migration may have run');
  });

  regression('defect 4: set_config(search_path, \'\') in one migration does not leak into the next', async (t) => {
    const db = await database(t);
    const dir = project(t, {
      'migrations/001_first.sql': 'CREATE TABLE leak_first (id int);\n',
      // What every pg_dump output starts with, plus timeouts turned off.
      'migrations/002_dump_header.sql':
        "SELECT pg_catalog.set_config('search_path', '', false);\nSET statement_timeout = 0;\nSET lock_timeout = 0;\nCREATE TABLE public.leak_second (id int);\n",
      // Unqualified, and checks that tidemark's own settings are back.
      'migrations/003_unqualified.sql':
        'CREATE TABLE leak_third (id int);\nINSERT INTO leak_third VALUES (1);\n' +
        "DO $$ BEGIN\n  IF current_setting('statement_timeout') <> '45s' OR current_setting('lock_timeout') <> '7s' THEN\n" +
        "    RAISE EXCEPTION 'settings leaked: statement_timeout %, lock_timeout %', current_setting('statement_timeout'), current_setting('lock_timeout');\n" +
        '  END IF;\nEND $$;\n',
    });
    const r = await tidemark(['deploy', '--json', '--url', db.url, '--statement-timeout', '45s', '--lock-timeout', '7s'], { cwd: dir });
    const err4 = ndjson(r.stdout).find((e) => e.event === 'error');
    assert.equal(r.code, 0, `exit ${r.code}: ${err4 ? `${err4.code}: ${err4.message}` : ''}\n${r.all}`);
    assert.deepEqual(await trackingRows(db), ['001:completed', '002:completed', '003:completed']);
    assert.equal(await db.query('SELECT count(*) FROM public.leak_third'), '1');
  });

  regression('defect 8: a NUL byte in 003 is refused before anything runs, naming 003', async (t) => {
    const db = await database(t);
    const dir = project(t, {
      'migrations/001_first.sql': 'CREATE TABLE nul_first (id int);\n',
      'migrations/002_second.sql': 'CREATE TABLE nul_second (id int);\n',
      'migrations/003_nul.sql': Buffer.concat([Buffer.from("CREATE TABLE nul_third (id int);\nINSERT INTO nul_third SELECT length('a"), Buffer.from([0]), Buffer.from("b');\n")]),
    });
    const r = await tidemark(['deploy', '--json', '--url', db.url], { cwd: dir });
    const err = ndjson(r.stdout).find((e) => e.event === 'error');
    assert.ok(r.code === 2 || r.code === 3, `exit ${r.code}, expected a refusal\n${r.all}`);
    assert.ok(err && /003_nul\.sql/.test(err.file ?? ''), `the error must name migrations/003_nul.sql: ${JSON.stringify(err)}`);
    assert.equal(err.line, 2, `the NUL byte is on line 2: ${JSON.stringify(err)}`);
    assert.deepEqual(await trackingRows(db), [], 'no row at all (no failed row on 001)');
    assert.equal(await regclass(db, 'nul_first'), false, '001 must not have run');
  });

  regression('defect 9: --statement-timeout does not bound the wait for the migration lock', async (t) => {
    const db = await database(t);
    const dir = project(t, { 'migrations/001_first.sql': 'CREATE TABLE wait_first (id int);\n' });
    const holder = await F.holdLock(F.mainTarget(), db.name, { holdS: 4, appName: `tmf_wait_${process.pid}` });
    t.after(() => holder.stop());
    const started = Date.now();
    const r = await tidemark(['deploy', '--json', '--url', db.url, '--statement-timeout', '2s', '--lock-wait-timeout', '10s'], { cwd: dir });
    const took = Date.now() - started;
    const err9 = ndjson(r.stdout).find((e) => e.event === 'error');
    assert.equal(r.code, 0, `the deploy must wait for the lock (held ~4 s) and succeed; exit ${r.code} after ${took} ms: ${err9 ? `${err9.code}: ${err9.message}` : ''}\n${r.all}`);
    assert.ok(took >= 2500, `it returned after ${took} ms, before the lock was released`);
    assert.deepEqual(await trackingRows(db), ['001:completed']);
  });

  regression('defect 10: the lock-timeout error names the holder in this database only', async (t) => {
    const db = await database(t);
    const other = await database(t);
    const dir = project(t, { 'migrations/001_first.sql': 'CREATE TABLE holder_first (id int);\n' });
    const m = F.mainTarget();
    // The same key held in another database first, then in ours.
    const elsewhere = await F.holdLock(m, other.name, { holdS: 30, appName: `tmf_other_${process.pid}` });
    t.after(() => elsewhere.stop());
    const here = await F.holdLock(m, db.name, { holdS: 30, appName: `tmf_here_${process.pid}` });
    t.after(() => here.stop());
    const r = await tidemark(['deploy', '--json', '--url', db.url, '--lock-wait-timeout', '2s'], { cwd: dir });
    const err = ndjson(r.stdout).find((e) => e.event === 'error');
    assert.equal(r.code, 2, `exit ${r.code}, expected 2 (E_LOCK_TIMEOUT)\n${r.all}`);
    assert.equal(err?.code, 'E_LOCK_TIMEOUT', `expected E_LOCK_TIMEOUT\n${r.all}`);
    assert.match(err.message, new RegExp(`pid ${here.pid}\\b`), `must name the holder in ${db.name} (pid ${here.pid}): ${err.message}`);
    assert.ok(!err.message.includes(String(elsewhere.pid)) && !err.message.includes('tmf_other_'), `names the session in another database (pid ${elsewhere.pid}): ${err.message}`);
  });
});
