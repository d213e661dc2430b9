// What a user sees when something fails: the message, the file:line:column
// pointer with a caret, the exit code, the --json error record, and never
// the password.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { tidemark, project, database, ndjson, engine, BASIC, assertNoSecret, writeFiles, PKG } from './helpers.mjs';

const api = await import(path.join(PKG, 'index.mjs'));

test('a failing migration: error, pointer and caret; earlier ones stay applied; a failed row', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    ...BASIC,
    'migrations/004_broken.sql': 'CREATE TABLE ok_before (id int);\n\n-- the next statement fails at run time\nINSERT INTO nope VALUES (1);\n',
    'migrations/005_later.sql': 'CREATE TABLE later (id int);\n',
  });
  const env = { DATABASE_URL: db.url };
  const r = await tidemark(['migrate'], { cwd, env });
  assert.equal(r.code, 2, r.all);
  assert.equal(r.out[0], `Using DATABASE_URL (${db.redacted})`);
  assert.deepEqual(
    r.out.filter((l) => l.startsWith('Applied ')).map((l) => l.split(' ').slice(0, 3).join(' ')),
    ['Applied 001 initial_schema', 'Applied 002 add_goals', 'Applied 003 add_goal_title'],
  );
  assert.match(
    r.err[0],
    /^error: migration 004_broken\.sql at line 4, column 13 failed: relation "nope" does not exist \(SQLSTATE 42P01\); it was rolled back/,
  );
  assert.deepEqual(r.err.slice(1, 5), [
    '  --> migrations/004_broken.sql:4:13',
    '   |',
    ' 4 | INSERT INTO nope VALUES (1);',
    '   |             ^',
  ]);
  assertNoSecret(assert, r, db.password);

  assert.equal(
    await db.query('SELECT version || \':\' || status FROM schema_migrations ORDER BY version'),
    '001:completed\n002:completed\n003:completed\n004:failed',
  );
  assert.equal(await db.query("SELECT to_regclass('ok_before') IS NULL AND to_regclass('later') IS NULL"), 't');

  const status = await tidemark(['status', '--exit-code'], { cwd, env });
  assert.equal(status.code, 1);
  assert.match(status.stdout, /^004\s+broken\s+failed\b/m);
  assert.match(status.stdout, /^004 failed: relation "nope" does not exist$/m);
  assert.equal(status.out.at(-1), '3 applied, 2 pending, 1 failed');
});

test('--json error record: code, message, file relative to the project, line, column, sqlState', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    'db/migrations/001_a.sql': 'CREATE TABLE a (id int);\n',
    'db/migrations/002_b.sql': 'SELECT 1;\nSELECT * FROM\n  missing_table;\n',
  });
  const r = await tidemark(['migrate', '--json', '--dir', 'db/migrations'], { cwd, env: { DATABASE_URL: db.url } });
  assert.equal(r.code, 2);
  const records = ndjson(r.stdout);
  assert.equal(records[0].event, 'connecting');
  const failed = records.find((e) => e.event === 'migrationFailed');
  assert.equal(failed.version, '002');
  assert.equal(failed.file, '002_b.sql');
  const error = records.at(-1);
  assert.equal(error.event, 'error');
  assert.equal(error.code, 'E_MIGRATION_FAILED');
  assert.equal(error.file, 'db/migrations/002_b.sql');
  assert.equal(error.line, 3);
  assert.equal(error.column, 3);
  assert.equal(error.sqlState, '42P01');
  assert.equal(error.version, '002');
  assert.equal(error.exitCode, 2);
  assert.deepEqual(error.applied.map((m) => m.version), ['001']);
  // The human error still goes to stderr for logs.
  assert.match(r.stderr, /^error: migration 002_b\.sql/);
  assert.match(r.stderr, /--> db\/migrations\/002_b\.sql:3:3/);
});

test('a syntax error in a later migration does not cost the earlier ones', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    ...BASIC,
    'migrations/004_typo.sql': 'CREATE TABLE fine (id int);\nCREAT TABLE oops (id int);\n',
  });
  const r = await tidemark(['migrate'], { cwd, env: { DATABASE_URL: db.url } });
  assert.equal(r.code, 2);
  assert.match(r.err[0], /^error: migration 004_typo\.sql at line 2, column 1 failed: syntax error at or near "CREAT" \(SQLSTATE 42601\)/);
  assert.deepEqual(r.err.slice(1, 5), ['  --> migrations/004_typo.sql:2:1', '   |', ' 2 | CREAT TABLE oops (id int);', '   | ^']);
  assert.equal(await db.query("SELECT count(*) FROM schema_migrations WHERE status = 'completed'"), '3');
});

test('checks before anything runs: transaction control and statements that need no transaction', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    'migrations/001_ok.sql': 'CREATE TABLE t (id int);\n',
    'migrations/002_commits.sql': 'INSERT INTO t VALUES (1);\nCOMMIT;\nINSERT INTO t VALUES (2);\n',
  });
  const env = { DATABASE_URL: db.url };
  let r = await tidemark(['migrate'], { cwd, env });
  assert.equal(r.code, 2, r.all);
  assert.match(r.err[0], /^error: .*002_commits\.sql.*2/);
  assert.match(r.stderr, /--> migrations\/002_commits\.sql:2:1\n   \|\n 2 \| COMMIT;\n   \| \^/);
  // Refused before anything ran: not even 001.
  assert.equal(await db.query("SELECT to_regclass('t') IS NULL"), 't');

  const cwd2 = project(t, { 'migrations/001_idx.sql': 'CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n' });
  r = await tidemark(['migrate', '--json'], { cwd: cwd2, env });
  assert.equal(r.code, 2);
  const error = ndjson(r.stdout).at(-1);
  assert.equal(error.code, 'E_NEEDS_NO_TRANSACTION');
  assert.equal(error.file, 'migrations/001_idx.sql');
  assert.equal(error.line, 2);
});

test('duplicate versions are an error naming both files', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, { 'migrations/001_a.sql': 'SELECT 1;\n', 'migrations/1_b.sql': 'SELECT 2;\n' });
  const r = await tidemark(['migrate', '--json'], { cwd, env: { DATABASE_URL: db.url } });
  assert.equal(r.code, 2);
  const error = ndjson(r.stdout).at(-1);
  assert.equal(error.code, 'E_DUPLICATE_VERSION');
  assert.match(error.message, /001_a\.sql/);
  assert.match(error.message, /1_b\.sql/);
});

test('connection failure: exit 2, E_CONNECT, and the password never shows', engine, async (t) => {
  const cwd = project(t, BASIC);
  // Nothing listens on port 1; the password has characters that URLs encode.
  const secret = 'hunter2-S3cr3t';
  const urls = [
    `postgres://app:${secret}@127.0.0.1:1/app`,
    `postgres://app:${encodeURIComponent(`${secret}@/:`)}@127.0.0.1:1/app`,
    `postgres://127.0.0.1:1/app?user=app&password=${secret}`,
  ];
  for (const url of urls) {
    for (const args of [['migrate'], ['deploy'], ['status', '--json']]) {
      const r = await tidemark([...args, '--connect-timeout', '1s'], { cwd, env: { DATABASE_URL: url } });
      assert.equal(r.code, 2, `${args.join(' ')} ${url}: ${r.all}`);
      assertNoSecret(assert, r, secret);
      if (args.includes('--json')) {
        const records = ndjson(r.stdout);
        assert.equal(records[0].event, 'connecting');
        assert.match(records[0].url, /\*\*\*\*/);
        assert.equal(records.at(-1).code, 'E_CONNECT');
      } else {
        assert.match(r.out[0], /^Using DATABASE_URL \(postgres:\/\/.*\*\*\*\*.*\)$/);
        assert.match(r.err[0], /^error: could not connect/);
      }
    }
  }
});

test('lock timeout: a second run gives up and names the holder', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, { 'migrations/001_slow.sql': 'SELECT pg_sleep(2);\n' });
  const env = { DATABASE_URL: db.url };
  const slow = tidemark(['migrate'], { cwd, env });
  // Give the first run time to take the lock.
  await new Promise((r) => setTimeout(r, 700));
  const blocked = await tidemark(['migrate', '--json', '--lock-wait-timeout', '300ms'], { cwd, env });
  const first = await slow;
  assert.equal(first.code, 0, first.all);
  assert.equal(blocked.code, 2, blocked.all);
  const error = ndjson(blocked.stdout).at(-1);
  assert.equal(error.code, 'E_LOCK_TIMEOUT');
  assert.match(error.message, /tidemark/); // the holder's application_name
});

test('the fix names the option the way the caller passes it: a flag for the CLI, an option for the API', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, { 'migrations/001_a.sql': 'CREATE TABLE a (id int);\n', 'migrations/003_c.sql': 'CREATE TABLE c (id int);\n' });
  const env = { DATABASE_URL: db.url };
  assert.equal((await tidemark(['migrate'], { cwd, env })).code, 0);
  writeFiles(cwd, { 'migrations/002_b.sql': 'CREATE TABLE b (id int);\n' });
  const why = 'migration 002_b.sql is pending but 003 (a later version) is already applied, probably from a merged branch; give it a version above 003, or allow out-of-order migrations';
  const r = await tidemark(['migrate'], { cwd, env });
  assert.equal(r.code, 2, r.all);
  assert.equal(r.err[0], `error: ${why}; to apply it as it is, pass --allow-out-of-order`);
  await assert.rejects(api.migrate({ cwd, url: db.url, environment: {} }), (err) => {
    assert.equal(err.code, 'E_OUT_OF_ORDER');
    assert.equal(err.message, `${why}; to apply it as it is, pass the allowOutOfOrder option`);
    return true;
  });
  // With it, the same migration applies.
  assert.equal((await api.migrate({ cwd, url: db.url, environment: {}, allowOutOfOrder: true })).applied.length, 1);
});

test('another tool\'s tracking table: the fix names --table for the CLI and the table option for the API', engine, async (t) => {
  const db = await database(t);
  await db.query('CREATE TABLE dbmate_like (version varchar(128) PRIMARY KEY)');
  const cwd = project(t, { 'migrations/001_a.sql': 'CREATE TABLE a (id int);\n' });
  const env = { DATABASE_URL: db.url };
  const why = /^the tracking table public\.dbmate_like already exists with columns \(version; version is character varying\(128\)\) \(dbmate's shape\), which tidemark cannot use \(when it holds dbmate's history, `tidemark adopt` takes it over instead, converting the table in place\); tidemark leaves another tool's table alone, so keep tidemark's history in another table; /;
  const r = await tidemark(['migrate', '--table', 'dbmate_like'], { cwd, env });
  assert.equal(r.code, 2, r.all);
  const line = r.err[0].replace(/^error: /, '');
  assert.match(line, why);
  assert.match(line, /; for example with --table tidemark_migrations \(or TIDEMARK_TABLE, or "table" in tidemark\.config\.json\)$/);
  await assert.rejects(api.migrate({ cwd, url: db.url, environment: {}, table: 'dbmate_like' }), (err) => {
    assert.equal(err.code, 'E_TRACKING_TABLE_INCOMPATIBLE');
    assert.match(err.message, why);
    assert.match(err.message, /; for example with table: 'tidemark_migrations' \(or TIDEMARK_TABLE/);
    return true;
  });
  assert.equal(await db.query("SELECT to_regclass('a') IS NULL"), 't');
});
