// migrate / up / deploy / status / down / redo against the real server,
// through the real CLI, asserting what a user sees.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tidemark, project, database, ndjson, engine, ENGINE, BASIC, assertNoSecret, writeFiles } from './helpers.mjs';

const APPLIED_LINE = /^Applied (\d+) (\S+) \((\d+) ms\)$/;

test('--version names the engine in use', engine, async (t) => {
  const cwd = project(t);
  for (const flag of ['--version', '-v']) {
    const r = await tidemark([flag], { cwd });
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `tidemark 0.1.0 (${ENGINE.backend} backend, ${ENGINE.packageName})\n`);
  }
});

test('migrate applies pending migrations, one line each, then is up to date', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASIC);
  const env = { DATABASE_URL: db.url };

  const first = await tidemark(['migrate'], { cwd, env });
  assert.equal(first.code, 0, first.all);
  assert.equal(first.stderr, '');
  assert.equal(first.out[0], `Using DATABASE_URL (${db.redacted})`);
  const applied = first.out.filter((l) => APPLIED_LINE.test(l)).map((l) => l.replace(/\(\d+ ms\)/, '(N ms)'));
  assert.deepEqual(applied, ['Applied 001 initial_schema (N ms)', 'Applied 002 add_goals (N ms)', 'Applied 003 add_goal_title (N ms)']);
  assert.match(first.out.at(-1), /^3 migrations applied, 0 pending \(\d+ ms\)$/);
  assertNoSecret(assert, first, db.password);

  const rows = await db.query("SELECT version, name, status FROM schema_migrations ORDER BY version");
  assert.equal(rows, '001|initial_schema|completed\n002|add_goals|completed\n003|add_goal_title|completed');
  assert.equal(await db.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'goals' AND column_name = 'title'"), '1');

  // `up` is migrate's alias; nothing to do now.
  const again = await tidemark(['up'], { cwd, env });
  assert.equal(again.code, 0);
  assert.deepEqual(again.out.slice(0, 1), [`Using DATABASE_URL (${db.redacted})`]);
  assert.match(again.out.at(-1), /^Up to date: 3 migrations applied, nothing pending \(\d+ ms\)$/);
  assert.equal(again.out.length, 2, again.stdout);
});

test('migrate --to stops at a version; the rest stays pending', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASIC);
  const r = await tidemark(['migrate', '--to', '002', '--url', db.url], { cwd });
  assert.equal(r.code, 0, r.all);
  assert.equal(r.out[0], `Using --url (${db.redacted})`);
  assert.match(r.out.at(-1), /^2 migrations applied, 1 pending \(\d+ ms\)$/);
  assert.equal(await db.query('SELECT string_agg(version, \',\' ORDER BY version) FROM schema_migrations'), '001,002');
  const up = await tidemark(['migrate', '--to', '002', '--url', db.url], { cwd });
  assert.match(up.out.at(-1), /^Up to date: 2 migrations applied, 1 pending after --to \(\d+ ms\)$/);
});

test('deploy always prints where it connects, applies, and is strict', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASIC);
  const env = { POSTGRES_URL_NON_POOLING: db.url };
  const r = await tidemark(['deploy'], { cwd, env });
  assert.equal(r.code, 0, r.all);
  assert.equal(r.out[0], `Using POSTGRES_URL_NON_POOLING (${db.redacted})`);
  assert.match(r.out.at(-1), /^3 migrations applied, 0 pending/);

  const up = await tidemark(['deploy'], { cwd, env });
  assert.equal(up.code, 0);
  assert.equal(up.out[0], `Using POSTGRES_URL_NON_POOLING (${db.redacted})`);
  assert.match(up.out.at(-1), /^Up to date: 3 migrations applied, nothing pending/);

  // An applied file changed: migrate --allow-drift goes on with a warning, deploy refuses.
  fs.appendFileSync(path.join(cwd, 'migrations/001_initial_schema.sql'), '-- edited after it was applied\n');
  writeFiles(cwd, { 'migrations/004_add_index.sql': 'CREATE INDEX goals_user ON goals (user_id);\n' });
  const strict = await tidemark(['deploy'], { cwd, env });
  assert.equal(strict.code, 2, strict.all);
  assert.equal(strict.out[0], `Using POSTGRES_URL_NON_POOLING (${db.redacted})`);
  assert.match(strict.err[0], /^error: .*001_initial_schema\.sql.*changed/);
  assert.equal(await db.query("SELECT count(*) FROM schema_migrations WHERE version = '004'"), '0');

  const plain = await tidemark(['migrate'], { cwd, env });
  assert.equal(plain.code, 2);

  const relaxed = await tidemark(['migrate', '--allow-drift'], { cwd, env });
  assert.equal(relaxed.code, 0, relaxed.all);
  assert.ok(relaxed.out.some((l) => /^warning: .*001_initial_schema\.sql/.test(l)), relaxed.stdout);
  assert.ok(relaxed.out.some((l) => /^Applied 004 add_index \(\d+ ms\)$/.test(l)), relaxed.stdout);
});

test('status: one row per migration, a summary, and --exit-code', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASIC);
  const env = { DATABASE_URL: db.url };
  await tidemark(['migrate', '--to', '002'], { cwd, env });

  const r = await tidemark(['status'], { cwd, env });
  assert.equal(r.code, 0, r.all);
  assert.equal(r.out[0], `Using DATABASE_URL (${db.redacted})`);
  assert.match(r.out[1], /^version\s+name\s+state\s+applied at \(UTC\)\s+duration\s+checksum$/);
  assert.match(r.out[2], /^001\s+initial_schema\s+applied\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d+ ms\s+ok$/);
  assert.match(r.out[3], /^002\s+add_goals\s+applied\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d+ ms\s+ok$/);
  assert.match(r.out[4], /^003\s+add_goal_title\s+pending\s+-\s+-\s+-$/);
  assert.equal(r.out[5], '2 applied, 1 pending');
  assert.equal(r.out.length, 6);

  const check = await tidemark(['status', '--exit-code'], { cwd, env });
  assert.equal(check.code, 1);
  assert.equal(check.out.at(-1), '2 applied, 1 pending');

  await tidemark(['migrate'], { cwd, env });
  const clean = await tidemark(['status', '--exit-code'], { cwd, env });
  assert.equal(clean.code, 0, clean.all);
  assert.equal(clean.out.at(-1), '3 applied, 0 pending');

  // Drift and a missing file both count for --exit-code, and show in the summary.
  // (001 is a whole file; an edit in 002's down section would not be drift.)
  fs.appendFileSync(path.join(cwd, 'migrations/001_initial_schema.sql'), '-- edited\n');
  fs.rmSync(path.join(cwd, 'migrations/003_add_goal_title.up.sql'));
  fs.rmSync(path.join(cwd, 'migrations/003_add_goal_title.down.sql'));
  const dirty = await tidemark(['status', '--exit-code'], { cwd, env });
  assert.equal(dirty.code, 1, dirty.all);
  assert.match(dirty.stdout, /^001\s+initial_schema\s+applied\s+.*\s+changed$/m);
  assert.match(dirty.stdout, /^003\s+add_goal_title\s+missing\b/m);
  assert.equal(dirty.out.at(-1), '2 applied, 0 pending, 1 drifted, 1 missing');

  // Editing only the down section of a sectioned file is not drift.
  fs.rmSync(path.join(cwd, 'migrations/001_initial_schema.sql'));
  writeFiles(cwd, { 'migrations/001_initial_schema.sql': BASIC['migrations/001_initial_schema.sql'] });
  fs.appendFileSync(path.join(cwd, 'migrations/002_add_goals.sql'), '-- edited in the down section\n');
  const downOnly = await tidemark(['status'], { cwd, env });
  assert.equal(downOnly.out.at(-1), '2 applied, 0 pending, 1 missing');
  // Without --exit-code, status reports and exits 0.
  assert.equal((await tidemark(['status'], { cwd, env })).code, 0);
});

test('status --json: the connecting event, then a done record with the report', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASIC);
  const r = await tidemark(['status', '--json'], { cwd, env: { DATABASE_URL: db.url } });
  assert.equal(r.code, 0, r.all);
  assert.equal(r.stderr, '');
  const records = ndjson(r.stdout);
  assert.deepEqual(records[0], { event: 'connecting', source: 'DATABASE_URL', url: db.redacted });
  const done = records.at(-1);
  assert.equal(done.event, 'done');
  assert.equal(done.command, 'status');
  assert.deepEqual(
    done.report.migrations.map((m) => [m.version, m.name, m.state, m.checksum, m.outOfOrder]),
    [
      ['001', 'initial_schema', 'pending', 'none', false],
      ['002', 'add_goals', 'pending', 'none', false],
      ['003', 'add_goal_title', 'pending', 'none', false],
    ],
  );
  assert.equal(done.report.pending, 3);
  assert.equal(done.report.applied, 0);
  assertNoSecret(assert, r, db.password);
});

test('migrate --json: every event as NDJSON, and nothing else on stdout', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, { ...BASIC, 'migrations/notes.txt': 'not a migration\n' });
  const r = await tidemark(['migrate', '--json'], { cwd, env: { DATABASE_URL: db.url } });
  assert.equal(r.code, 0, r.all);
  assert.equal(r.stderr, '');
  const records = ndjson(r.stdout);
  const kinds = records.map((e) => e.event);
  assert.equal(kinds[0], 'connecting');
  assert.equal(kinds.at(-1), 'done');
  for (const k of ['warning', 'lockAcquired', 'planned', 'trackingTableCreated', 'migrationApplied']) {
    assert.ok(kinds.includes(k), `missing ${k} event in ${kinds.join(', ')}`);
  }
  const warning = records.find((e) => e.event === 'warning');
  assert.equal(typeof warning.code, 'string');
  assert.match(warning.message, /notes\.txt/);
  assert.deepEqual(records.find((e) => e.event === 'planned'), { event: 'planned', applied: 0, pending: 3 });
  const applied = records.filter((e) => e.event === 'migrationApplied');
  assert.deepEqual(
    applied.map((e) => [e.version, e.name, e.file, typeof e.durationMs]),
    [
      ['001', 'initial_schema', '001_initial_schema.sql', 'number'],
      ['002', 'add_goals', '002_add_goals.sql', 'number'],
      ['003', 'add_goal_title', '003_add_goal_title.up.sql', 'number'],
    ],
  );
  const done = records.at(-1);
  assert.equal(done.command, 'migrate');
  assert.equal(done.report.applied.length, 3);
  assert.equal(done.report.alreadyApplied, 0);
  assert.equal(done.report.pending, 0);
  assert.equal(done.report.upToDate, false);

  const again = ndjson((await tidemark(['migrate', '--json'], { cwd, env: { DATABASE_URL: db.url } })).stdout);
  assert.ok(again.some((e) => e.event === 'upToDate' && e.applied === 3));
  assert.equal(again.at(-1).report.upToDate, true);
});

test('down and redo revert with the down SQL, newest first', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASIC);
  const env = { DATABASE_URL: db.url };
  await tidemark(['migrate'], { cwd, env });

  const down = await tidemark(['down'], { cwd, env });
  assert.equal(down.code, 0, down.all);
  assert.equal(down.out[0], `Using DATABASE_URL (${db.redacted})`);
  assert.match(down.out[1], /^Reverted 003 add_goal_title \(\d+ ms\)$/);
  assert.equal(down.out.at(-1), '1 migration reverted');
  assert.equal(await db.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'goals' AND column_name = 'title'"), '0');
  assert.equal(await db.query('SELECT string_agg(version, \',\' ORDER BY version) FROM schema_migrations'), '001,002');

  const redo = await tidemark(['redo'], { cwd, env });
  assert.equal(redo.code, 0, redo.all);
  assert.match(redo.out[1], /^Reverted 002 add_goals \(\d+ ms\)$/);
  assert.match(redo.out[2], /^Applied 002 add_goals \(\d+ ms\)$/);
  assert.match(redo.out.at(-1), /^1 migration reverted, 1 applied again \(\d+ ms\)$/);

  await tidemark(['migrate'], { cwd, env });
  const two = await tidemark(['down', '--steps', '2', '--json'], { cwd, env });
  assert.equal(two.code, 0, two.all);
  const reverted = ndjson(two.stdout).filter((e) => e.event === 'migrationReverted').map((e) => e.version);
  assert.deepEqual(reverted, ['003', '002']);

  // 001 has no down SQL: refused before anything is reverted.
  const none = await tidemark(['down', '--to', '0'], { cwd, env });
  assert.equal(none.code, 2, none.all);
  assert.match(none.err[0], /^error: .*001_initial_schema\.sql.*no down/);
  assert.equal(await db.query('SELECT string_agg(version, \',\' ORDER BY version) FROM schema_migrations'), '001');
});

test('the tracking table follows --schema and --table', engine, async (t) => {
  const db = await database(t);
  await db.query('CREATE SCHEMA ops');
  const cwd = project(t, BASIC);
  const r = await tidemark(['migrate', '--schema', 'ops', '--table', 'migrations_log', '--url', db.url], { cwd });
  assert.equal(r.code, 0, r.all);
  assert.ok(r.out.includes('Created tracking table ops.migrations_log'), r.stdout);
  assert.equal(await db.query('SELECT count(*) FROM ops.migrations_log'), '3');
  assert.equal(await db.query("SELECT to_regclass('public.schema_migrations') IS NULL"), 't');
});

test('a no-transaction migration shows statement progress, and resumes after a failure', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    'migrations/001_table.sql': 'CREATE TABLE t (id int, other int);\n',
    'migrations/002_indexes.sql':
      '-- tidemark:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\nCREATE INDEX CONCURRENTLY t_other ON typo (other);\n',
  });
  const env = { DATABASE_URL: db.url };
  const failed = await tidemark(['migrate'], { cwd, env });
  assert.equal(failed.code, 2, failed.all);
  assert.ok(failed.out.includes('  statement 1/2 of 002'), failed.stdout);
  assert.match(failed.err[0], /^error: migration 002_indexes\.sql at line 3.*1 of its 2 statements had completed/);
  assert.match(failed.stderr, /--> migrations\/002_indexes\.sql:3:/);
  assert.equal(await db.query("SELECT status FROM schema_migrations WHERE version = '002'"), 'failed');

  fs.writeFileSync(
    path.join(cwd, 'migrations/002_indexes.sql'),
    '-- tidemark:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\nCREATE INDEX CONCURRENTLY t_other ON t (other);\n',
  );
  const resumed = await tidemark(['migrate'], { cwd, env });
  assert.equal(resumed.code, 0, resumed.all);
  assert.deepEqual(resumed.out.slice(1, 3), ['Resuming 002 indexes after 1 statement that already ran', '  statement 2/2 of 002']);
  assert.match(resumed.out[3], /^Applied 002 indexes \(\d+ ms\)$/);
  assert.equal(await db.query("SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 't'"), 't_id,t_other');
});
