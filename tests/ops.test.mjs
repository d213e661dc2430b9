// Operations around the apply: unlock (who holds the migration lock, and
// ending that session), accept (an edit that changes no behaviour), plan
// (what deploy would send, compared with what it then sends), db create,
// seed --only, verify (a replay on a scratch embedded database) and the
// status report's currentVersion.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import os from 'node:os';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { tidemark, project, database, ndjson, engine, cleanEnv, BASIC, PKG, PG_HOST, PG_PORT, assertNoSecret } from './helpers.mjs';

const api = await import(path.join(PKG, 'index.mjs'));

/** The lock key tidemark reports for the database's default tracking table. */
async function lockKey(db, cwd, extra = []) {
  const r = await tidemark(['unlock', '--json', '--url', db.url, ...extra], { cwd });
  assert.equal(r.code, 0, r.all);
  return ndjson(r.stdout).at(-1).report.lockKey;
}

/**
 * A psql session (application_name `ops-lock-holder`) that takes the advisory
 * lock `key` in `dbName` and then sleeps, as a stuck deploy would. Resolves
 * once the server shows the lock granted, with the child and its pid.
 */
async function holdLock(t, dbName, key) {
  const child = spawn(
    'psql',
    ['-h', PG_HOST, '-p', PG_PORT, '-U', 'postgres', '-d', dbName, '-X', '-c', `SELECT pg_advisory_lock(${key})`, '-c', 'SELECT pg_sleep(120)'],
    { env: cleanEnv({ PGAPPNAME: 'ops-lock-holder' }), stdio: 'ignore' },
  );
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  t.after(() => child.kill('SIGKILL'));
  const { psql } = await import('./helpers.mjs');
  for (let i = 0; i < 200; i += 1) {
    const pid = await psql(
      `SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'ops-lock-holder' AND a.datname = '${dbName}'`,
    );
    if (pid) return { child, pid: Number(pid), exited };
    await sleep(25);
  }
  throw new Error('the lock holder never took the lock');
}

test('unlock with no holder says so and exits 0', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {});
  const r = await tidemark(['unlock', '--url', db.url], { cwd });
  assert.equal(r.code, 0, r.all);
  assert.deepEqual(r.out, [`Using --url (${db.redacted})`, 'No one holds the migration lock of public.schema_migrations']);
  // --terminate with no holder: nothing to end, still 0.
  const term = await tidemark(['unlock', '--terminate', '--url', db.url], { cwd });
  assert.equal(term.code, 0, term.all);
  assert.equal(term.out.at(-1), 'No one holds the migration lock of public.schema_migrations');
  assertNoSecret(assert, r, db.password);
});

test('unlock shows the session that really holds the migration lock, and only in this database', engine, async (t) => {
  const db = await database(t);
  const other = await database(t);
  const cwd = project(t, BASIC);
  const key = await lockKey(db, cwd);
  const held = await holdLock(t, db.name, key);

  // It is tidemark's own lock: a migrate waits on it and times out naming the holder.
  const blocked = await tidemark(['migrate', '--lock-wait-timeout', '500ms', '--url', db.url], { cwd });
  assert.equal(blocked.code, 2, blocked.all);
  assert.match(
    blocked.stderr,
    new RegExp(`could not take the migration lock on public.schema_migrations within 500 ms: it is held by pid ${held.pid} \\(application_name 'ops-lock-holder'`),
  );

  const r = await tidemark(['unlock', '--url', db.url], { cwd });
  assert.equal(r.code, 0, r.all);
  assert.equal(r.out[1], `The migration lock of public.schema_migrations is held by pid ${held.pid}`);
  assert.equal(r.out[2], '  application_name ops-lock-holder');
  assert.equal(r.out[3], '  user             postgres');
  assert.match(r.out[4], /^ {2}client {11}(127\.0\.0\.1|::1|local socket)$/);
  assert.match(r.out[5], /^ {2}connected since {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ s ago; the lock was taken at or after this\)$/);
  assert.match(r.out[6], /^ {2}state {12}active$/);
  assert.equal(r.out[7], '  query            SELECT pg_sleep(120)');
  assert.equal(r.out.at(-1), 'tidemark unlock --terminate ends that session.');
  assert.equal(held.child.exitCode, null, 'showing must not end anything');

  const json = ndjson((await tidemark(['unlock', '--json', '--url', db.url], { cwd })).stdout).at(-1);
  assert.equal(json.event, 'done');
  assert.equal(json.report.holder.pid, held.pid);
  assert.equal(json.report.holder.applicationName, 'ops-lock-holder');
  assert.equal(json.report.terminated, false);
  assert.equal(json.report.table, 'public.schema_migrations');

  // The same key in another database is not this database's lock.
  const elsewhere = await tidemark(['unlock', '--url', other.url], { cwd });
  assert.equal(elsewhere.out.at(-1), 'No one holds the migration lock of public.schema_migrations');
  // Another tracking table has another lock.
  const otherTable = await tidemark(['unlock', '--table', 'tidemark_migrations', '--url', db.url], { cwd });
  assert.equal(otherTable.out.at(-1), 'No one holds the migration lock of public.tidemark_migrations');

  // The API reports the same.
  const report = await api.unlock({ cwd, url: db.url, environment: {} });
  assert.equal(report.holder.pid, held.pid);
  assert.equal(report.holder.user, 'postgres');
  assert.equal(typeof report.holder.since, 'string');
  assert.equal(report.waiting, 0);
});

test('unlock --terminate asks, needs --yes without a terminal, refuses a pid that does not hold the lock, then ends the holder', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASIC);
  const key = await lockKey(db, cwd);
  const held = await holdLock(t, db.name, key);

  const noTty = await tidemark(['unlock', '--terminate', '--url', db.url], { cwd });
  assert.equal(noTty.code, 3, noTty.all);
  assert.match(noTty.stderr, /error: ending pid \d+ rolls back whatever it has not committed; there is no terminal to ask in, so pass --yes to confirm/);

  const wrongPid = await tidemark(['unlock', '--terminate', '--yes', '--pid', '1', '--url', db.url], { cwd });
  assert.equal(wrongPid.code, 2, wrongPid.all);
  assert.match(wrongPid.stderr, new RegExp(`error: pid 1 does not hold the migration lock of public.schema_migrations \\(pid ${held.pid} does\\); nothing was ended`));
  // The engine checks again itself: the API with a stale pid ends nothing.
  await assert.rejects(api.unlock({ cwd, url: db.url, environment: {}, terminate: true, pid: 1 }), (err) => {
    assert.equal(err.code, 'E_UNLOCK_REFUSED');
    assert.match(err.message, new RegExp(`pid 1 no longer holds the migration lock of public.schema_migrations: pid ${held.pid} holds it now`));
    return true;
  });
  assert.equal(held.child.exitCode, null, 'nothing was ended so far');

  const ended = await tidemark(['unlock', '--terminate', '--yes', '--url', db.url], { cwd });
  assert.equal(ended.code, 0, ended.all);
  assert.equal(ended.out[1], `The migration lock of public.schema_migrations is held by pid ${held.pid}`);
  assert.equal(ended.out.at(-1), `Ended pid ${held.pid}; it no longer holds the migration lock of public.schema_migrations`);
  assert.equal(ended.out.filter((l) => l.startsWith('Using ')).length, 1, ended.stdout);
  const exit = await held.exited;
  assert.notEqual(exit.code, 0, 'psql saw its session end');
  const after = await tidemark(['unlock', '--url', db.url], { cwd });
  assert.equal(after.out.at(-1), 'No one holds the migration lock of public.schema_migrations');
  // And the deploy that was blocked goes through.
  const deploy = await tidemark(['deploy', '--url', db.url], { cwd });
  assert.equal(deploy.code, 0, deploy.all);
  assertNoSecret(assert, ended, db.password);
});

test('unlock --terminate through the API ends the holder and reports it', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {});
  const key = await lockKey(db, cwd);
  const held = await holdLock(t, db.name, key);
  const report = await api.unlock({ cwd, url: db.url, environment: {}, terminate: true, pid: held.pid });
  assert.equal(report.terminated, true);
  assert.equal(report.holder.pid, held.pid);
  await held.exited;
  assert.equal(await db.query(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = ${held.pid}`), '0');
});

test('status reports currentVersion: null before anything is applied, then the highest applied version', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASIC);
  const before = await api.status({ cwd, url: db.url, environment: {} });
  assert.equal(before.currentVersion, null);
  await tidemark(['migrate', '--to', '002', '--url', db.url], { cwd });
  const json = ndjson((await tidemark(['status', '--json', '--url', db.url], { cwd })).stdout).at(-1);
  assert.equal(json.report.currentVersion, '002');
  await tidemark(['migrate', '--url', db.url], { cwd });
  const after = await api.status({ cwd, url: db.url, environment: {} });
  assert.equal(after.currentVersion, '003');
  assert.equal(after.applied, 3);
});

test('accept: a drifted migration whose edit is accepted shows as accepted, deploy goes on, a later edit is drift again', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASIC);
  const env = { DATABASE_URL: db.url };
  assert.equal((await tidemark(['migrate'], { cwd, env })).code, 0);
  const file = path.join(cwd, 'migrations/003_add_goal_title.up.sql');
  const applied = await db.query("SELECT checksum FROM schema_migrations WHERE version = '003'");
  fs.writeFileSync(file, '-- the title is shown on the dashboard\nALTER TABLE goals ADD COLUMN title text;\n');

  const refused = await tidemark(['deploy'], { cwd, env });
  assert.equal(refused.code, 2, refused.all);
  assert.match(refused.stderr, /migration 003_add_goal_title\.up\.sql was applied on .* but has changed since/);

  const noReason = await tidemark(['accept', '003'], { cwd, env });
  assert.equal(noReason.code, 3, noReason.all);
  assert.match(noReason.stderr, /^error: accepting the edit of 003 needs a reason \(why it changes no behaviour\), which is recorded with it$/m);
  const noVersion = await tidemark(['accept', '--reason', 'x'], { cwd, env });
  assert.equal(noVersion.code, 3, noVersion.all);
  assert.match(noVersion.stderr, /tidemark accept needs the version of the applied migration/);

  const ok = await tidemark(['accept', '003', '--reason', 'comment only'], { cwd, env });
  assert.equal(ok.code, 0, ok.all);
  const now = await db.query("SELECT checksum FROM schema_migrations WHERE version = '003'");
  assert.notEqual(now, applied);
  assert.match(
    ok.out.at(-1),
    new RegExp(`^Accepted the edit of 003_add_goal_title\\.up\\.sql: checksum ${applied.slice(0, 12)} as applied, ${now.slice(0, 12)} now; by \\S+ \\(role postgres\\), reason: comment only$`),
  );
  assert.equal(
    await db.query("SELECT accepted_from || '|' || accepted_reason || '|' || (accepted_at IS NOT NULL) FROM schema_migrations WHERE version = '003'"),
    `${applied}|comment only|true`,
  );
  assertNoSecret(assert, ok, db.password);

  const status = await tidemark(['status', '--exit-code'], { cwd, env });
  assert.equal(status.code, 0, status.all);
  assert.match(status.stdout, /^003 +add_goal_title +applied +\S+ \S+ +\d+ ms +accepted$/m);
  assert.match(status.stdout, new RegExp(`^003 edit accepted: checksum ${applied.slice(0, 12)} as applied, ${now.slice(0, 12)} now; \\S+ \\S+ UTC by \\S+ \\(role postgres\\): comment only$`, 'm'));
  assert.equal(status.out.at(-1), '3 applied, 0 pending, 1 accepted');
  const json = ndjson((await tidemark(['status', '--json'], { cwd, env })).stdout).at(-1).report;
  assert.equal(json.drifted, 0);
  assert.equal(json.migrations.find((m) => m.version === '003').checksum, 'accepted');
  assert.equal(json.accepted.length, 1);
  assert.deepEqual(
    { ...json.accepted[0], acceptedAt: typeof json.accepted[0].acceptedAt, acceptedBy: /\(role postgres\)$/.test(json.accepted[0].acceptedBy) },
    { version: '003', name: 'add_goal_title', file: '003_add_goal_title.up.sql', appliedChecksum: applied, acceptedChecksum: now, acceptedAt: 'string', acceptedBy: true, reason: 'comment only' },
  );

  const deploy = await tidemark(['deploy'], { cwd, env });
  assert.equal(deploy.code, 0, deploy.all);
  assert.match(deploy.out.at(-1), /^Up to date: 3 migrations applied, nothing pending/);

  // Not accepted: a later edit, which is drift again (never silent).
  fs.writeFileSync(file, '-- the title is shown on the dashboard\nALTER TABLE goals ADD COLUMN title text NOT NULL;\n');
  const again = await tidemark(['deploy'], { cwd, env });
  assert.equal(again.code, 2, again.all);
  assert.match(again.stderr, /003_add_goal_title\.up\.sql was applied on .* but has changed since/);
  const drifted = await tidemark(['status', '--exit-code'], { cwd, env });
  assert.equal(drifted.code, 1, drifted.all);
  assert.match(drifted.stdout, /^003 +add_goal_title +applied .* changed$/m);
  assert.equal(drifted.out.at(-1), '3 applied, 0 pending, 1 drifted');
});

test('accept refuses what it cannot accept: unchanged, pending and unknown versions', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASIC);
  const env = { DATABASE_URL: db.url };
  await tidemark(['migrate', '--to', '002'], { cwd, env });
  const unchanged = await tidemark(['accept', '001', '--reason', 'x'], { cwd, env });
  assert.equal(unchanged.code, 2, unchanged.all);
  assert.match(unchanged.stderr, /^error: 001_initial_schema\.sql has not changed since it was applied; there is nothing to accept$/m);
  const pending = await tidemark(['accept', '003', '--reason', 'x', '--json'], { cwd, env });
  assert.equal(pending.code, 2, pending.all);
  const err = ndjson(pending.stdout).at(-1);
  assert.equal(err.code, 'E_NOTHING_TO_ACCEPT');
  assert.match(err.message, /003_add_goal_title\.up\.sql is not applied, so there is no edit to accept/);
  assert.equal(err.file, path.join('migrations', '003_add_goal_title.up.sql'));
  const unknown = await tidemark(['accept', '999', '--reason', 'x'], { cwd, env });
  assert.equal(unknown.code, 2, unknown.all);
  assert.match(unknown.stderr, /no migration file has the version 999/);
  // Nothing was written by any of them.
  assert.equal(await db.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'schema_migrations' AND column_name LIKE 'accepted%'"), '0');
});

test('accept through the API', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASIC);
  const options = { cwd, url: db.url, environment: {} };
  await api.migrate(options);
  fs.appendFileSync(path.join(cwd, 'migrations/001_initial_schema.sql'), '-- users sign in by email\n');
  await assert.rejects(api.deploy(options), (e) => e.code === 'E_CHECKSUM_MISMATCH');
  await assert.rejects(api.accept({ ...options, version: '001' }), (e) => e.code === 'E_INVALID_OPTION');
  const report = await api.accept({ ...options, version: '001', reason: 'comment' });
  assert.equal(report.accepted.version, '001');
  assert.equal(report.accepted.reason, 'comment');
  const status = await api.status(options);
  assert.equal(status.drifted, 0);
  assert.deepEqual(status.accepted.map((a) => a.version), ['001']);
  assert.equal((await api.deploy(options)).upToDate, true);
});

/**
 * A TCP proxy in front of the test server that records the text of every
 * simple-query ('Q') message clients send, in order. Use a URL with
 * sslmode=disable, so the protocol stays readable.
 */
async function queryRecorder(t) {
  const queries = [];
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(PG_PORT), PG_HOST);
    sockets.add(client).add(upstream);
    let buf = Buffer.alloc(0);
    let started = false;
    client.on('data', (d) => {
      upstream.write(d);
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (!started) {
          // SSLRequest / StartupMessage: length, then a protocol code.
          if (buf.length < 8 || buf.length < buf.readInt32BE(0)) break;
          started = buf.readInt32BE(4) === 196608;
          buf = buf.subarray(buf.readInt32BE(0));
          continue;
        }
        if (buf.length < 5 || buf.length < 1 + buf.readInt32BE(1)) break;
        const len = buf.readInt32BE(1);
        if (buf[0] === 0x51) queries.push(buf.subarray(5, len).toString('utf8'));
        buf = buf.subarray(1 + len);
      }
    });
    upstream.on('data', (d) => client.write(d));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', () => {});
      s.on('close', end);
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  });
  return {
    queries,
    url: (db) => `postgres://postgres:${db.password}@127.0.0.1:${server.address().port}/${db.name}?sslmode=disable`,
    take: () => queries.splice(0),
  };
}

test('plan prints what deploy would send, writes nothing, and deploy then sends exactly those messages', engine, async (t) => {
  const db = await database(t);
  const rec = await queryRecorder(t);
  const url = rec.url(db);
  const cwd = project(t, BASIC);
  assert.equal((await tidemark(['migrate', '--to', '001', '--url', url], { cwd })).code, 0);
  rec.take();

  const human = await tidemark(['plan', '--url', url], { cwd });
  assert.equal(human.code, 0, human.all);
  assert.equal(human.out[0], `Using --url (${url.replace(db.password, '****')})`);
  assert.deepEqual(human.out.slice(1, 4), [
    'Would apply 2 migrations (1 already applied); deploy would send 3 messages:',
    '  002 add_goals',
    '  003 add_goal_title',
  ]);
  assert.equal(human.out[4], "-- message 1 of 3: read the tracking table and look for other tools' tables (no lock)");
  assert.ok(human.out.includes('-- message 2 of 3: take the migration lock, upgrade the tracking table if it is older, and read it again'), human.stdout);
  assert.ok(human.out.includes('-- message 3 of 3: apply 002, 003, each in its own transaction with its tracking row, and release the lock'), human.stdout);
  assert.equal(human.out.at(-1), 'Nothing was written.');
  assertNoSecret(assert, human, db.password);
  // Only the read went to the server.
  assert.equal(rec.take().length, 1);

  const json = await tidemark(['plan', '--json', '--url', url], { cwd });
  const plan = ndjson(json.stdout).at(-1).report;
  assert.deepEqual(plan.pending.map((m) => [m.version, m.transaction]), [['002', true], ['003', true]]);
  assert.equal(plan.complete, true);
  assert.equal(plan.upToDate, false);
  const batch = plan.messages[2].sql;
  assert.match(batch, /^BEGIN;\n/);
  assert.match(batch, /CREATE TABLE goals/);
  assert.match(batch, /INSERT INTO "public"."schema_migrations" \(version, name, checksum, applied_at, duration_ms, status\) VALUES \('003', 'add_goal_title'/);
  assert.equal((batch.match(/^COMMIT;$/gm) ?? []).length, 2);
  assert.deepEqual(rec.take(), [plan.messages[0].sql], 'plan sends the read and nothing else');
  // Nothing was written.
  assert.equal(await db.query('SELECT count(*) FROM schema_migrations'), '1');
  assert.equal(await db.query("SELECT to_regclass('goals') IS NULL"), 't');

  const dry = ndjson((await tidemark(['deploy', '--dry-run', '--json', '--url', url], { cwd })).stdout).at(-1).report;
  assert.deepEqual(dry.messages, plan.messages);
  rec.take();

  const deploy = await tidemark(['deploy', '--url', url], { cwd });
  assert.equal(deploy.code, 0, deploy.all);
  assert.deepEqual(rec.take(), plan.messages.map((m) => m.sql), 'deploy sent exactly the messages plan printed');

  const upToDate = await tidemark(['plan', '--url', url], { cwd });
  assert.equal(upToDate.out[1], 'Up to date: 3 migrations applied; deploy would send 1 message (the read) and change nothing');
});

test('plan on an empty database shows the tracking table being created, and creates nothing; deploy agrees', engine, async (t) => {
  const db = await database(t);
  const rec = await queryRecorder(t);
  const url = rec.url(db);
  const cwd = project(t, BASIC);
  const plan = ndjson((await tidemark(['plan', '--json', '--url', url], { cwd })).stdout).at(-1).report;
  assert.equal(plan.createsTrackingTable, true);
  assert.equal(plan.messages[1].purpose, 'take the migration lock, create the tracking table, and read it again');
  assert.match(plan.messages[1].sql, /CREATE TABLE "public"."schema_migrations"/);
  assert.equal(await db.query("SELECT to_regclass('public.schema_migrations') IS NULL"), 't');
  rec.take();
  assert.equal((await tidemark(['deploy', '--url', url], { cwd })).code, 0);
  assert.deepEqual(rec.take(), plan.messages.map((m) => m.sql));
});

test('plan makes the same checks as deploy, lists no-transaction statements, and hides PASSWORD literals', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    ...BASIC,
    'migrations/004_role.sql': "CREATE ROLE ops_app_role LOGIN PASSWORD 'hunter2-never-shown';\n",
    'migrations/005_index.sql': '-- tidemark:no-transaction\nCREATE INDEX CONCURRENTLY goals_title ON goals (title);\n',
  });
  const human = await tidemark(['plan', '--url', db.url], { cwd });
  assert.equal(human.code, 0, human.all);
  assert.ok(!human.all.includes('hunter2-never-shown'), human.all);
  assert.ok(human.out.includes("CREATE ROLE ops_app_role LOGIN PASSWORD '****';"), human.stdout);
  assert.ok(human.out.includes("String literals after PASSWORD are shown as '****'."), human.stdout);
  assert.ok(human.out.includes('  005 index (no transaction)'), human.stdout);
  assert.ok(human.out.includes('-- message 4 of 5: 005_index.sql statement 1 of 1, without a transaction (tracking updates between statements not shown)'), human.stdout);
  assert.ok(human.out.includes('-- message 5 of 5: release the migration lock'), human.stdout);
  assert.ok(human.out.includes('Not shown: the tracking updates deploy sends between the statements of no-transaction and COPY migrations.'));
  assert.equal(await db.query("SELECT count(*) FROM pg_roles WHERE rolname = 'ops_app_role'"), '0');

  // Drift is refused like deploy refuses it.
  await tidemark(['migrate', '--to', '003', '--url', db.url], { cwd });
  fs.appendFileSync(path.join(cwd, 'migrations/001_initial_schema.sql'), '-- edited\n');
  const drift = await tidemark(['plan', '--url', db.url], { cwd });
  assert.equal(drift.code, 2, drift.all);
  assert.match(drift.stderr, /migration 001_initial_schema\.sql was applied on .* but has changed since/);
  // Bad SQL in a pending file too.
  fs.writeFileSync(path.join(cwd, 'migrations/001_initial_schema.sql'), BASIC['migrations/001_initial_schema.sql']);
  fs.writeFileSync(path.join(cwd, 'migrations/006_tx.sql'), 'BEGIN;\nSELECT 1;\nCOMMIT;\nBEGIN;\nSELECT 2;\n');
  const bad = await tidemark(['plan', '--json', '--url', db.url], { cwd });
  assert.equal(bad.code, 2, bad.all);
  const api2 = await api.plan({ cwd, url: db.url, environment: {} }).catch((e) => e);
  assert.equal(api2.code, ndjson(bad.stdout).at(-1).code);
});

test('db create creates the URL\'s database when missing, says so when it exists, and migrate on a missing database names it', engine, async (t) => {
  const { psql } = await import('./helpers.mjs');
  const name = `tidemark_ops_create_${process.pid}_${Date.now() % 100000}`;
  t.after(() => psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  const url = `postgres://postgres:secretpw-create@${PG_HOST}:${PG_PORT}/${name}`;
  const cwd = project(t, BASIC);

  const missing = await tidemark(['migrate', '--url', url], { cwd });
  assert.equal(missing.code, 2, missing.all);
  assert.match(missing.stderr, new RegExp(`database "${name}" does not exist \\(SQLSTATE 3D000\\)`));
  assert.match(missing.stderr, /^hint: create it with tidemark db create \(or createDatabase\(\) from the API\); the role needs CREATEDB$/m);

  const created = await tidemark(['db', 'create', '--url', url], { cwd });
  assert.equal(created.code, 0, created.all);
  assert.deepEqual(created.out, [`Using --url (postgres://postgres:****@${PG_HOST}:${PG_PORT}/${name})`, `Created database ${name}`]);
  assert.equal(await psql(`SELECT count(*) FROM pg_database WHERE datname = '${name}'`), '1');
  assert.ok(!created.all.includes('secretpw-create'));

  const again = await tidemark(['db', 'create', '--json', '--url', url], { cwd });
  assert.equal(again.code, 0, again.all);
  assert.deepEqual(ndjson(again.stdout).at(-1).report, { database: name, created: false });
  assert.equal((await tidemark(['migrate', '--url', url], { cwd })).code, 0);

  const viaApi = await api.createDatabase({ cwd, url, environment: {} });
  assert.deepEqual(viaApi, { database: name, created: false });
});

test('db create with a role that may not create databases says so', engine, async (t) => {
  const { psql } = await import('./helpers.mjs');
  const role = `tidemark_ops_nocreate_${process.pid}`;
  const name = `tidemark_ops_never_${process.pid}`;
  await psql(`DROP ROLE IF EXISTS ${role}; CREATE ROLE ${role} LOGIN NOCREATEDB`);
  t.after(async () => {
    await psql(`DROP DATABASE IF EXISTS ${name}`);
    await psql(`DROP ROLE IF EXISTS ${role}`);
  });
  const cwd = project(t, {});
  const r = await tidemark(['db', 'create', '--url', `postgres://${role}@${PG_HOST}:${PG_PORT}/${name}`], { cwd });
  assert.equal(r.code, 2, r.all);
  assert.match(
    r.stderr,
    new RegExp(`^error: the database ${name} does not exist and this role may not create it \\(permission denied to create database\\); give the role CREATEDB \\(ALTER ROLE \\.\\.\\. CREATEDB\\) or have an administrator create the database$`, 'm'),
  );
  assert.equal(await psql(`SELECT count(*) FROM pg_database WHERE datname = '${name}'`), '0');
  const usage = await tidemark(['db', 'drop'], { cwd });
  assert.equal(usage.code, 3);
  assert.match(usage.stderr, /unknown subcommand "drop" for tidemark db: tidemark db create or tidemark db serve/);
});

test('seed --only runs one seed, by name or file name, and names the seeds when none matches', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    ...BASIC,
    'seeds/development/001_users.sql': "INSERT INTO users VALUES (1, 'a@example.com') ON CONFLICT DO NOTHING;\n",
    'seeds/development/002_more_users.sql': "INSERT INTO users VALUES (2, 'b@example.com') ON CONFLICT DO NOTHING;\n",
  });
  const env = { DATABASE_URL: db.url };
  await tidemark(['migrate'], { cwd, env });
  const one = await tidemark(['seed', '--only', '002_more_users'], { cwd, env });
  assert.equal(one.code, 0, one.all);
  assert.match(one.out[1], /^Seeded 002_more_users \(\d+ ms\)$/);
  assert.equal(one.out.at(-1), '1 seed ran, 0 skipped (development)');
  assert.equal(await db.query('SELECT string_agg(id::text, \',\' ORDER BY id) FROM users'), '2');
  const byFile = await tidemark(['seed', '--only', '001_users.sql'], { cwd, env });
  assert.equal(byFile.out.at(-1), '1 seed ran, 0 skipped (development)');
  assert.equal(await db.query('SELECT string_agg(name, \',\' ORDER BY name) FROM schema_seeds'), '001_users,002_more_users');
  const none = await tidemark(['seed', '--only', 'users'], { cwd, env });
  assert.equal(none.code, 3, none.all);
  assert.match(none.stderr, /^error: there is no seed named "users" in the development seeds \(they are: 001_users, 002_more_users\)$/m);
});

/** Runs the CLI in a pseudo-terminal (util-linux `script`), typing `input`. */
function inTerminal(args, { cwd, input }) {
  return new Promise((resolve, reject) => {
    const quote = (a) => `'${String(a).replace(/'/g, "'\\''")}'`;
    const cmd = [process.execPath, path.join(PKG, 'bin', 'tidemark.js'), ...args].map(quote).join(' ');
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd, env: cleanEnv({ NO_COLOR: '1' }), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      // Answer once the question is on the screen.
      if (out.includes('[y/N]') && !child.answered) {
        child.answered = true;
        child.stdin.write(input);
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out: out.replace(/\r/g, '') }));
  });
}

test('unlock --terminate in a terminal asks first: no ends nothing (exit 3), yes ends the holder', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {});
  const key = await lockKey(db, cwd);
  const held = await holdLock(t, db.name, key);

  const no = await inTerminal(['unlock', '--terminate', '--url', db.url], { cwd, input: 'n\n' });
  assert.equal(no.code, 3, no.out);
  assert.match(no.out, new RegExp(`End pid ${held.pid}\\? Its open transaction is rolled back\\. \\[y/N\\]`));
  assert.match(no.out, new RegExp(`error: unlock cancelled; pid ${held.pid} was not ended`));
  assert.equal(held.child.exitCode, null, 'answering no ends nothing');

  const yes = await inTerminal(['unlock', '--terminate', '--url', db.url], { cwd, input: 'y\n' });
  assert.equal(yes.code, 0, yes.out);
  assert.match(yes.out, new RegExp(`Ended pid ${held.pid}; it no longer holds the migration lock of public.schema_migrations`));
  await held.exited;
  assert.ok(!yes.out.includes(db.password));
});

test('plan in pool-safe mode (pgbouncer=true) matches what deploy then sends: transaction-scoped lock and claims', engine, async (t) => {
  const db = await database(t);
  const rec = await queryRecorder(t);
  const url = `${rec.url(db)}&pgbouncer=true`;
  const cwd = project(t, BASIC);
  const plan = ndjson((await tidemark(['plan', '--json', '--url', url], { cwd })).stdout).at(-1).report;
  assert.equal(plan.messages.length, 3);
  assert.match(plan.messages[1].sql, /^BEGIN;\n[\s\S]*pg_advisory_xact_lock\(/);
  assert.match(plan.messages[2].sql, /pg_advisory_xact_lock\([\s\S]*INSERT INTO "public"."schema_migrations" \(version, name, checksum, applied_at, status\) VALUES \('001'/);
  assert.ok(!plan.messages[2].sql.includes('pg_advisory_unlock'), 'transaction-scoped locks end with their transactions');
  rec.take();
  const deploy = await tidemark(['deploy', '--url', url], { cwd });
  assert.equal(deploy.code, 0, deploy.all);
  assert.deepEqual(rec.take(), plan.messages.map((m) => m.sql));
});

const REVERSIBLE = {
  'migrations/001_initial_schema.sql': 'CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);\n',
  'migrations/002_goals.sql': '-- migrate:up\nCREATE TABLE goals (id int PRIMARY KEY, user_id int REFERENCES users (id));\n-- migrate:down\nDROP TABLE goals;\n',
};

test('verify replays the folder on a scratch embedded database, with no URL, also in CI, and leaves nothing behind', engine, async (t) => {
  const cwd = project(t, REVERSIBLE);
  const before = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('tidemark-verify-')).length;
  const r = await tidemark(['verify', '--lock-timeout', '2s'], { cwd, env: { CI: 'true' } });
  assert.equal(r.code, 0, r.all);
  assert.match(r.out.at(-1), /^Verified 2 migrations on a scratch embedded database: all applied; 1 reversible one reverted and restored the schema, then applied again; findings: none \(\d+ ms\)$/);
  assert.equal(r.out.length, 1, r.stdout);
  assert.ok(!fs.existsSync(path.join(cwd, '.tidemark')), 'verify does not use the project\'s embedded database');
  assert.equal(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('tidemark-verify-')).length, before, 'the scratch folder is deleted');
  const json = ndjson((await tidemark(['verify', '--json', '--lock-timeout', '2s'], { cwd })).stdout).at(-1);
  assert.deepEqual(json.report, { migrations: 2, replayed: 2, reversible: 1, notReversed: [], findings: [] });
  const report = await api.verify({ cwd, environment: {}, lockTimeout: '2s' });
  assert.deepEqual(report, { migrations: 2, replayed: 2, reversible: 1, notReversed: [], findings: [] });
});

test('verify reports a down that does not restore the schema (exit 1) and a migration that fails (exit 2, file and line)', engine, async (t) => {
  const cwd = project(t, {
    ...REVERSIBLE,
    'migrations/003_title.sql':
      '-- migrate:up\nALTER TABLE goals ADD COLUMN title text NOT NULL DEFAULT \'\';\nCREATE INDEX goals_title ON goals (title);\n-- migrate:down\nDROP INDEX goals_title;\n',
  });
  const r = await tidemark(['verify'], { cwd });
  assert.equal(r.code, 1, r.all);
  const at = r.out.findIndex((l) => l.startsWith('not reversed:'));
  assert.deepEqual(r.out.slice(at, at + 2), [
    'not reversed: 003_title.sql: its down does not restore the schema its up changed',
    "  left behind:  column goals.title text not null default ''::text",
  ]);
  assert.match(r.out.at(-1), /^Stopped at 003_title\.sql on a scratch embedded database: 2 before it replayed; findings: \d+ warnings? \(\d+ ms\)$/);

  fs.writeFileSync(path.join(cwd, 'migrations/003_title.sql'), '-- migrate:up\nALTER TABLE goals ADD COLUMN title text;\n-- migrate:down\nALTER TABLE goals DROP COLUMN title;\n');
  fs.writeFileSync(path.join(cwd, 'migrations/004_bad.sql'), 'SELECT 1;\nINSERT INTO nowhere VALUES (1);\n');
  const bad = await tidemark(['verify'], { cwd });
  assert.equal(bad.code, 2, bad.all);
  assert.match(bad.stderr, /^error: migration 004_bad\.sql at line 2, column 13 failed: relation "nowhere" does not exist \(SQLSTATE 42P01\)/m);
  assert.match(bad.stderr, /--> migrations\/004_bad\.sql:2:13/);
  const syntax = project(t, { 'migrations/001_x.sql': 'CREATE TABLE t (id int,);\n' });
  const s = await tidemark(['verify', '--json'], { cwd: syntax });
  assert.equal(s.code, 2, s.all);
  const err = ndjson(s.stdout).at(-1);
  assert.equal(err.sqlState, '42601');
  assert.equal(err.file, path.join('migrations', '001_x.sql'));
  assert.equal(err.line, 1);
});
