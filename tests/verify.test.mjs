// tidemark verify: the lint (deploy's refusals and squawk's migration-safety
// rules, silencing comments, --strict), the replay's failures (syntax, run
// time, a PGlite that lacks an extension), --shadow-url, and the target
// check with --url and --rehearse, which must leave the target unchanged.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { tidemark, project, database, ndjson, engine, cleanEnv, psql, PKG, PG_HOST, PG_PORT, assertNoSecret } from './helpers.mjs';

const api = await import(path.join(PKG, 'index.mjs'));

const BASE = {
  'migrations/001_users.sql': 'CREATE TABLE users (id int PRIMARY KEY, email text);\nCREATE TABLE goals (id int PRIMARY KEY, user_id int);\n',
};

/** One migration per rule family, each on a table an earlier migration made. */
const RISKY = {
  ...BASE,
  'migrations/002_index.sql': 'CREATE INDEX users_email ON users (email);\n',
  'migrations/003_required.sql': '-- every user has an age\nALTER TABLE users ADD COLUMN age int NOT NULL;\n',
  'migrations/004_fk.sql': 'ALTER TABLE goals ADD CONSTRAINT goals_user FOREIGN KEY (user_id) REFERENCES users (id);\n',
  'migrations/005_type.sql':
    '-- migrate:up\nALTER TABLE users ALTER COLUMN email TYPE varchar(200);\n-- migrate:down\nALTER TABLE users ALTER COLUMN email TYPE text;\n',
};

const SUMMARY = (n, reversible, lint) =>
  new RegExp(
    `^Verified ${n} migrations on a scratch embedded database: all applied; ${reversible} reverted and restored the schema, then applied again; findings: ${lint} \\(\\d+ ms\\)$`,
  );

/** The finding lines of `out` (each finding is one line, its safer form the next). */
const findingLines = (out) => out.filter((l) => /^(warning|error): /.test(l));

test('verify lints each rule family with file, line, column, rule and the safer form; --strict makes them fail', engine, async (t) => {
  const cwd = project(t, RISKY);
  const r = await tidemark(['verify', '--lock-timeout', '2s'], { cwd });
  assert.equal(r.code, 0, r.all);
  const lines = findingLines(r.out);
  assert.equal(lines.length, 5, r.stdout);
  assert.match(lines[0], /^warning: migrations\/002_index\.sql:1:1: .*table updates are blocked.* \[require-concurrent-index-creation\]$/);
  assert.equal(r.out[r.out.indexOf(lines[0]) + 1], '  safer: CREATE INDEX CONCURRENTLY, in a migration of its own marked `-- tidemark:no-transaction` (it cannot run in a transaction)');
  assert.match(lines[1], /^warning: migrations\/003_required\.sql:2:19: .*`NOT NULL`.* \[adding-required-field\]$/);
  assert.match(lines[2], /^warning: migrations\/004_fk\.sql:1:\d+: .* \[(adding-foreign-key-constraint|constraint-missing-not-valid)\]$/);
  assert.ok(lines.slice(2, 4).some((l) => l.includes('[constraint-missing-not-valid]')), r.stdout);
  assert.ok(lines.slice(2, 4).some((l) => l.includes('[adding-foreign-key-constraint]')), r.stdout);
  assert.match(lines[4], /^warning: migrations\/005_type\.sql:2:38: .*rewritten.* \[changing-column-type\]$/);
  assert.match(r.out.at(-1), SUMMARY(5, '1 reversible one', '5 warnings'));

  const strict = await tidemark(['verify', '--lock-timeout', '2s', '--strict'], { cwd });
  assert.equal(strict.code, 1, strict.all);
  assert.deepEqual(
    findingLines(strict.out).map((l) => l.replace(/:.*\[/, ' [')),
    findingLines(r.out).map((l) => l.replace(/^warning/, 'error').replace(/:.*\[/, ' [')),
  );
  assert.match(strict.out.at(-1), SUMMARY(5, '1 reversible one', '5 errors'));
});

test('verify asks for a lock_timeout unless the file or the configuration sets one', engine, async (t) => {
  const cwd = project(t, { ...BASE, 'migrations/002_col.sql': 'ALTER TABLE users ADD COLUMN name text;\n' });
  const r = await tidemark(['verify'], { cwd });
  assert.equal(r.code, 0, r.all);
  assert.equal(findingLines(r.out).length, 1, r.stdout);
  assert.match(findingLines(r.out)[0], /^warning: migrations\/002_col\.sql:1:1: Missing `set lock_timeout` before potentially slow .*operations \[require-lock-timeout\]$/);
  assert.ok(r.out.includes("  safer: SET lock_timeout = '2s'; at the top of the file, or deploy with --lock-timeout 2s (TIDEMARK_LOCK_TIMEOUT)"), r.stdout);
  assert.deepEqual(findingLines((await tidemark(['verify'], { cwd, env: { TIDEMARK_LOCK_TIMEOUT: '2s' } })).out), []);
  fs.writeFileSync(path.join(cwd, 'migrations/002_col.sql'), "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN name text;\n");
  const set = await tidemark(['verify'], { cwd });
  assert.deepEqual(findingLines(set.out), []);
  assert.match(set.out.at(-1), SUMMARY(2, '0 reversible ones', 'none'));
});

test('a tidemark:allow comment silences a rule for one statement, tidemark:allow-file for the file; an unknown rule name is a finding', engine, async (t) => {
  const cwd = project(t, {
    ...BASE,
    'migrations/002_index.sql':
      '-- tidemark:allow require-concurrent-index-creation -- users is tiny\n' +
      'CREATE INDEX users_email ON users (email);\n' +
      'CREATE INDEX goals_user ON goals (user_id); -- tidemark:allow require-concurrent-index-creation\n' +
      'CREATE INDEX users_id_email ON users (id, email);\n',
    'migrations/003_fk.sql':
      '-- tidemark:allow-file constraint-missing-not-valid, adding-foreign-key-constraint\n' +
      'ALTER TABLE goals ADD CONSTRAINT goals_user FOREIGN KEY (user_id) REFERENCES users (id);\n',
    'migrations/004_typo.sql': '-- tidemark:allow require-concurrent-index-creaton\nCREATE INDEX goals_id ON goals (id);\n',
  });
  const r = await tidemark(['verify', '--lock-timeout', '2s'], { cwd });
  assert.equal(r.code, 0, r.all);
  assert.deepEqual(
    findingLines(r.out).map((l) => l.replace(/^(\w+: \S+): .* \[/, '$1 [')),
    [
      'warning: migrations/002_index.sql:4:1 [require-concurrent-index-creation]',
      'warning: migrations/004_typo.sql:1:1 [unknown-rule]',
      'warning: migrations/004_typo.sql:2:1 [require-concurrent-index-creation]',
    ],
  );
  assert.ok(r.out.some((l) => l.includes('`require-concurrent-index-creaton` in a tidemark:allow comment is not a rule tidemark checks')), r.stdout);
});

test('what deploy would refuse is an error without --strict, and nothing is replayed', engine, async (t) => {
  const cwd = project(t, {
    ...BASE,
    'migrations/002_commit.sql': "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN a text;\nCOMMIT;\nALTER TABLE users ADD COLUMN b text;\n",
    'migrations/003_concurrently.sql': 'CREATE INDEX CONCURRENTLY users_email ON users (email);\n',
    'migrations/notes.txt': 'not a migration',
  });
  const r = await tidemark(['verify', '--lock-timeout', '2s'], { cwd });
  assert.equal(r.code, 1, r.all);
  const lines = findingLines(r.out);
  assert.match(lines[0], /^warning: migrations\/notes\.txt: notes\.txt is not a \.sql file.* \[W_UNEXPECTED_FILE\]$/);
  assert.match(lines[1], /^error: migrations\/002_commit\.sql:3:1: 002_commit\.sql:3: `COMMIT` would end tidemark's transaction .* \[E_TRANSACTION_CONTROL\]$/);
  assert.match(lines[2], /^error: migrations\/003_concurrently\.sql:1:1: .*CREATE INDEX CONCURRENTLY.*-- tidemark:no-transaction.* \[E_NEEDS_NO_TRANSACTION\]$/);
  assert.equal(lines.length, 3, r.stdout);
  assert.match(r.out.at(-1), /^Not replayed: deploy would refuse 2 of the files as they are, so nothing was replayed; fix them first; findings: 2 errors, 1 warning \(\d+ ms\)$/);
  const json = ndjson((await tidemark(['verify', '--json', '--lock-timeout', '2s'], { cwd })).stdout).at(-1);
  assert.equal(json.report.replayed, 0);
  assert.equal(json.report.findings.length, 3);
  const db = await database(t);
  const target = await tidemark(['verify', '--lock-timeout', '2s', '--url', db.url], { cwd });
  assert.equal(target.code, 1, target.all);
  assert.ok(target.out.includes(`The target ${db.redacted} was not checked: deploy would refuse the files first`), target.stdout);
});

test('verify reports a syntax error and a missing table with file, line and SQLSTATE (exit 2), after the lint', engine, async (t) => {
  const syntax = project(t, { ...BASE, 'migrations/002_bad.sql': "SET lock_timeout = '2s';\nCREATE TABLE t (id int,);\n" });
  const s = await tidemark(['verify'], { cwd: syntax });
  assert.equal(s.code, 2, s.all);
  assert.match(s.stderr, /^error: migration 002_bad\.sql at line 2, column 24 failed: syntax error at or near "\)" \(SQLSTATE 42601\)/m);
  assert.match(s.stderr, /--> migrations\/002_bad\.sql:2:24/);
  assert.doesNotMatch(s.stderr, /shadow-url/, 'a syntax error is not blamed on PGlite');

  const runtime = project(t, { ...RISKY, 'migrations/006_missing.sql': "SET lock_timeout = '2s';\nINSERT INTO nowhere VALUES (1);\n" });
  const r = await tidemark(['verify', '--json', '--lock-timeout', '2s'], { cwd: runtime });
  assert.equal(r.code, 2, r.all);
  const events = ndjson(r.stdout);
  assert.equal(events.filter((e) => e.event === 'finding').length, 5, 'the lint ran and said what it found first');
  const err = events.at(-1);
  assert.equal(err.event, 'error');
  assert.equal(err.code, 'E_MIGRATION_FAILED');
  assert.equal(err.sqlState, '42P01');
  assert.equal(err.file, path.join('migrations', '006_missing.sql'));
  assert.deepEqual([err.line, err.column, err.exitCode], [2, 13, 2]);
  assert.equal(err.hint, undefined, 'a missing table is not blamed on PGlite');
});

test('verify --json prints one JSON object per line: findings as they are found, then the report', engine, async (t) => {
  const cwd = project(t, RISKY);
  const r = await tidemark(['verify', '--json', '--lock-timeout', '2s'], { cwd });
  assert.equal(r.code, 0, r.all);
  const events = ndjson(r.stdout);
  const findings = events.filter((e) => e.event === 'finding');
  assert.deepEqual(findings[0], {
    event: 'finding',
    file: path.join('migrations', '002_index.sql'),
    version: '002',
    line: 1,
    column: 1,
    rule: 'require-concurrent-index-creation',
    severity: 'warning',
    message: findings[0].message,
    safer: 'CREATE INDEX CONCURRENTLY, in a migration of its own marked `-- tidemark:no-transaction` (it cannot run in a transaction)',
    docs: 'https://squawkhq.com/docs/require-concurrent-index-creation',
  });
  const done = events.at(-1);
  assert.equal(done.event, 'done');
  assert.equal(done.command, 'verify');
  assert.deepEqual(
    done.report.findings,
    findings.map(({ event, ...f }) => f),
  );
  assert.deepEqual([done.report.migrations, done.report.replayed, done.report.reversible], [5, 5, 1]);
});

/** Tables, columns, indexes and constraints of `db`'s public schema, and its tracking rows. */
async function snapshot(db) {
  return db.query(
    "SELECT string_agg(x, E'\\n' ORDER BY x) FROM (" +
      "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable AS x FROM information_schema.columns WHERE table_schema = 'public' " +
      "UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public' " +
      "UNION ALL SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace " +
      "UNION ALL SELECT 'row ' || version || ' ' || status || ' ' || checksum FROM schema_migrations) s",
  );
}

test('verify --url checks the target as deploy would: drift and out-of-order are errors, nothing is written', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, { ...BASE, 'migrations/003_later.sql': "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN c text;\n" });
  assert.equal((await tidemark(['deploy', '--url', db.url], { cwd })).code, 0);
  fs.writeFileSync(path.join(cwd, 'migrations/001_users.sql'), `${BASE['migrations/001_users.sql']}-- edited\n`);
  fs.writeFileSync(path.join(cwd, 'migrations/002_between.sql'), "SET lock_timeout = '2s';\nALTER TABLE goals ADD COLUMN note text;\n");
  fs.writeFileSync(path.join(cwd, 'migrations/004_next.sql'), "SET lock_timeout = '2s';\nALTER TABLE goals ADD COLUMN done bool;\n");
  const before = await snapshot(db);
  const r = await tidemark(['verify', '--url', db.url], { cwd });
  assert.equal(r.code, 1, r.all);
  assertNoSecret(assert, r, db.password);
  const lines = findingLines(r.out);
  assert.match(lines[0], /^error: migrations\/001_users\.sql: migration 001_users\.sql was applied on .* but has changed since \(checksum \w+ then, \w+ now\); restore the file, or put the change in a new migration \[E_CHECKSUM_MISMATCH\]$/);
  assert.match(lines[1], /^error: migrations\/002_between\.sql: migration 002_between\.sql is pending but 003 \(a later version\) is already applied.* \[E_OUT_OF_ORDER\]$/);
  assert.equal(lines.length, 2, r.stdout);
  assert.ok(r.out.includes(`Target ${db.redacted}: 2 migrations applied, 2 pending (002, 004); read without the migration lock, nothing written`), r.stdout);
  assert.equal(await snapshot(db), before, 'the target is unchanged');
  assert.equal(await db.query("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'tidemark%' AND datname = current_database()"), '0');
});

test('verify --rehearse runs the pending migrations on the target in a transaction that is rolled back', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASE);
  assert.equal((await tidemark(['deploy', '--url', db.url], { cwd })).code, 0);
  await db.query("INSERT INTO users VALUES (1, 'a@example.com'), (2, 'a@example.com')");
  fs.writeFileSync(path.join(cwd, 'migrations/002_name.sql'), "ALTER TABLE users ADD COLUMN name text NOT NULL DEFAULT '';\n");
  fs.writeFileSync(path.join(cwd, 'migrations/003_goals.sql'), 'ALTER TABLE goals ADD COLUMN title text;\nCREATE TABLE tags (id int PRIMARY KEY);\n');
  fs.writeFileSync(path.join(cwd, 'migrations/004_index.sql'), '-- tidemark:no-transaction\nCREATE INDEX CONCURRENTLY users_name ON users (name);\n');
  const before = await snapshot(db);
  const r = await tidemark(['verify', '--url', db.url, '--rehearse', '--lock-timeout', '2s'], { cwd });
  assert.equal(r.code, 0, r.all);
  assert.ok(r.out.includes(`Target ${db.redacted}: 1 migration applied, 3 pending (002, 003, 004); read without the migration lock, nothing written`), r.stdout);
  assert.ok(
    r.out.includes('Rehearsed 2 pending migrations on the target in one transaction, rolled back (lock_timeout 2000 ms); not rehearsed from 004_index.sql on (it runs without a transaction, which a rollback cannot undo)'),
    r.stdout,
  );
  assert.equal(await snapshot(db), before, 'the target is unchanged (catalog and tracking rows)');
  const report = await api.verify({ cwd, url: db.url, rehearse: true, lockTimeout: '2s', environment: {} });
  assert.deepEqual(report.target.rehearsal, { rehearsed: 2, stoppedBefore: '004_index.sql', lockTimeoutMs: 2000 });
  assert.deepEqual(report.target.pending.map((m) => [m.version, m.transaction]), [['002', true], ['003', true], ['004', false]]);
  assert.equal(await snapshot(db), before);
  const alone = await tidemark(['verify', '--rehearse'], { cwd, env: { DATABASE_URL: db.url } });
  assert.equal(alone.code, 3, alone.all);
  assert.match(alone.stderr, /^error: rehearse runs the pending migrations on the target database, which --url \(the url option\) names; pass it explicitly/m);

  // A migration that passes on the empty scratch database fails on the target's data.
  fs.rmSync(path.join(cwd, 'migrations/004_index.sql'));
  fs.writeFileSync(path.join(cwd, 'migrations/004_unique.sql'), '-- tidemark:allow-file require-concurrent-index-creation\nSET lock_timeout = \'2s\';\nCREATE UNIQUE INDEX users_email ON users (email);\n');
  const bad = await tidemark(['verify', '--url', db.url, '--rehearse', '--json'], { cwd });
  assert.equal(bad.code, 2, bad.all);
  const err = ndjson(bad.stdout).at(-1);
  assert.equal(err.code, 'E_MIGRATION_FAILED');
  assert.equal(err.sqlState, '23505');
  assert.equal(err.file, path.join('migrations', '004_unique.sql'));
  assert.equal(err.line, 3);
  assert.match(err.message, /^rehearsal on the target: migration 004_unique\.sql at line 3, column 1 failed: could not create unique index "users_email" \(SQLSTATE 23505\); everything the rehearsal ran was rolled back, so the target is unchanged$/);
  assert.equal(await snapshot(db), before, 'the target is unchanged after a failed rehearsal');
});

test('verify --rehearse gives up on a busy table after lock_timeout instead of waiting', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASE);
  assert.equal((await tidemark(['deploy', '--url', db.url], { cwd })).code, 0);
  fs.writeFileSync(path.join(cwd, 'migrations/002_name.sql'), 'ALTER TABLE users ADD COLUMN name text;\n');
  const holder = spawn('psql', ['-h', PG_HOST, '-p', PG_PORT, '-U', 'postgres', '-d', db.name, '-X', '-c', 'BEGIN; LOCK TABLE users; SELECT pg_sleep(60);'], {
    env: cleanEnv({ PGAPPNAME: 'verify-lock-holder' }),
    stdio: 'ignore',
  });
  t.after(() => holder.kill('SIGKILL'));
  for (let i = 0; i < 200; i += 1) {
    if ((await db.query("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'verify-lock-holder' AND l.mode = 'AccessExclusiveLock' AND l.granted")) !== '0') break;
    await sleep(25);
  }
  const started = Date.now();
  const r = await tidemark(['verify', '--url', db.url, '--rehearse', '--lock-timeout', '300ms'], { cwd });
  assert.equal(r.code, 2, r.all);
  assert.match(r.stderr, /^error: rehearsal on the target: migration 002_name\.sql at line 1, column 1 failed: canceling statement due to lock timeout \(SQLSTATE 55P03\); another session holds a lock on what it changes, and a deploy now would wait for it; everything the rehearsal ran was rolled back, so the target is unchanged$/m);
  assert.ok(Date.now() - started < 30_000);
});

test('--shadow-url replays on a scratch database it creates and drops; PGlite lacking an extension names that option', engine, async (t) => {
  const cwd = project(t, { ...BASE, 'migrations/002_hstore.sql': 'CREATE EXTENSION hstore;\nALTER TABLE users ADD COLUMN attrs hstore;\n' });
  const embedded = await tidemark(['verify', '--lock-timeout', '2s'], { cwd });
  assert.equal(embedded.code, 2, embedded.all);
  assert.match(embedded.stderr, /^error: migration 002_hstore\.sql at line 1, column 1 failed: extension "hstore" is not available/m);
  assert.match(embedded.stderr, /^hint: the embedded scratch database \(PGlite\) lacks this extension or feature, which a PostgreSQL server may have: replay on a real server with --shadow-url <url> \(or TIDEMARK_SHADOW_DATABASE_URL\)/m);

  const scratch = () => psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'tidemark\\_verify\\_%'");
  const before = await scratch();
  const password = 'shadowsecret42';
  const shadow = `postgres://postgres:${password}@${PG_HOST}:${PG_PORT}/postgres`;
  const r = await tidemark(['verify', '--lock-timeout', '2s', '--shadow-url', shadow], { cwd });
  assert.equal(r.code, 0, r.all);
  assert.ok(!r.all.includes(password), r.all);
  assert.match(r.out.at(-1), /^Verified 2 migrations on a scratch database on the shadow server: all applied; 0 reversible ones reverted and restored the schema, then applied again; findings: none \(\d+ ms\)$/);
  assert.equal(await scratch(), before, 'the scratch database is dropped');
  const env = await tidemark(['verify', '--lock-timeout', '2s'], { cwd, env: { TIDEMARK_SHADOW_DATABASE_URL: shadow } });
  assert.equal(env.code, 0, env.all);

  const refused = await tidemark(['verify', '--shadow-url', `postgres://nobody_${process.pid}:x@${PG_HOST}:${PG_PORT}/postgres`], { cwd });
  assert.equal(refused.code, 3, refused.all);
  assert.match(refused.stderr, /^error: could not create a scratch database on the shadow server postgres:\/\/nobody_\d+:\*\*\*\*@.*verify needs a role that may CREATE DATABASE there/m);
});
