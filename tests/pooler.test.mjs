// Poolers (design §7): PgBouncer in transaction mode in front of a test
// server. A pooled URL alone gets a warning and pool-safe mode (no session
// state, transaction-scoped lock, no prepared statements, no startup
// options); concurrent deploys through it still apply each migration once;
// and a direct URL next to the pooled one is used instead.
//
// Pooled-URL detection: a host with `-pooler.`, port 6543, or pgbouncer=true.
// PgBouncer listens on a random port here, so the URLs say pgbouncer=true.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tidemark, project, ndjson, engine, ENGINE, assertNoSecret } from './helpers.mjs';
import { createPostgres, startPgBouncer, psqlUrl } from './servers.mjs';

const PASSWORD = 'apppass';

let server;
let bouncer;

before(async () => {
  if (ENGINE.skip) return;
  server = await createPostgres({
    name: 'pooled',
    conf: { password_encryption: 'scram-sha-256', max_connections: 40 },
    hba: ['host all all 127.0.0.1/32 scram-sha-256'],
  });
  await server.start();
  await server.psql(`CREATE ROLE app LOGIN PASSWORD '${PASSWORD}'`);
  // Clients log in to PgBouncer with SCRAM; PgBouncer logs in to the server with the same password.
  bouncer = await startPgBouncer({ backend: server, users: { app: PASSWORD }, poolSize: 4, poolMode: 'transaction' });
}, { timeout: 60_000 });

after(async () => {
  await bouncer?.cleanup();
  await server?.cleanup();
});

const pooledUrl = (db) => `postgres://app:${PASSWORD}@127.0.0.1:${bouncer.port}/${db}?pgbouncer=true`;
const directUrl = (db) => `postgres://app:${PASSWORD}@127.0.0.1:${server.port}/${db}`;
const redactedPooled = (db) => `postgres://app:****@127.0.0.1:${bouncer.port}/${db}?pgbouncer=true`;

const BASIC = {
  'migrations/001_create_things.sql': 'CREATE TABLE things (id int PRIMARY KEY);\n',
  'migrations/002_add_name.sql': '-- migrate:up\nALTER TABLE things ADD COLUMN name text;\n-- migrate:down\nALTER TABLE things DROP COLUMN name;\n',
  'migrations/003_index.sql': 'CREATE INDEX things_name ON things (name);\n',
};

const rows = (db) => server.psql("SELECT coalesce(string_agg(version || ':' || status, ',' ORDER BY version), '') FROM schema_migrations", db);

test('deploy through a pooled URL alone: a warning, pool-safe mode, and the migrations applied', engine, async (t) => {
  const db = await server.createDatabase('app');
  const cwd = project(t, {
    ...BASIC,
    // What the migrations' transactions saw: the settings must reach them in pool-safe mode too.
    'migrations/004_settings.sql':
      "CREATE TABLE seen_settings AS SELECT current_setting('lock_timeout') AS lock_timeout, current_setting('statement_timeout') AS statement_timeout;\n",
  });
  const env = { DATABASE_URL: pooledUrl(db) };
  const r = await tidemark(['deploy', '--lock-timeout', '5s', '--statement-timeout', '60s'], { cwd, env });
  assert.equal(r.code, 0, bouncer.explain(r));
  assert.ok(r.out.includes(`Using DATABASE_URL (${redactedPooled(db)})`), r.all);
  const warning = r.out.find((l) => l.startsWith('warning:'));
  assert.ok(warning, `no warning about the pooler:\n${r.all}`);
  assert.match(warning, /pgbouncer=true|pooler|pooled/i);
  assert.match(warning, /pool-safe mode/);
  assert.match(r.out.at(-1), /^4 migrations applied, 0 pending \(\d+ ms\)$/);
  assert.equal(await rows(db), '001:completed,002:completed,003:completed,004:completed');
  assert.equal(await server.psql("SELECT lock_timeout || '|' || statement_timeout FROM seen_settings", db), '5s|1min');
  assertNoSecret(assert, r, PASSWORD);

  // Nothing left behind in the pooled server sessions: no advisory lock held,
  // and no session settings for the next client of the same server connection.
  assert.equal(await server.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), '0');
  const nextClient = await psqlUrl(
    `postgres://app@127.0.0.1:${bouncer.port}/${db}`,
    "SELECT current_setting('lock_timeout') || '|' || current_setting('statement_timeout')",
    PASSWORD,
  );
  assert.equal(nextClient, '0|0', 'session settings leaked into a pooled server connection');

  // Again: up to date (the fast path works through the pooler too).
  const again = await tidemark(['deploy'], { cwd, env });
  assert.equal(again.code, 0, bouncer.explain(again));
  assert.match(again.out.at(-1), /^Up to date: 4 migrations applied, nothing pending \(\d+ ms\)$/);

  // status goes through it as well.
  const status = await tidemark(['status', '--exit-code'], { cwd, env });
  assert.equal(status.code, 0, bouncer.explain(status));
  assert.equal(status.out.at(-1), '4 applied, 0 pending');
});

test('a failing migration through the pooler: earlier ones stay applied, a failed row, the error points at the file', engine, async (t) => {
  const db = await server.createDatabase('app');
  const cwd = project(t, {
    ...BASIC,
    'migrations/004_broken.sql': 'CREATE TABLE fine (id int);\nINSERT INTO nope VALUES (1);\n',
  });
  const r = await tidemark(['deploy'], { cwd, env: { DATABASE_URL: pooledUrl(db) } });
  assert.equal(r.code, 2, bouncer.explain(r));
  assert.match(r.stderr, /^error: migration 004_broken\.sql at line 2, column 13 failed: relation "nope" does not exist/);
  assert.equal(await rows(db), '001:completed,002:completed,003:completed,004:failed');
  assert.equal(await server.psql("SELECT to_regclass('fine') IS NULL", db), 't');
  assert.equal(await server.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), '0');
});

test('eight concurrent deploys through the pooler apply each of 20 migrations exactly once', engine, async (t) => {
  const db = await server.createDatabase('app');
  const files = { 'migrations/001_log.sql': "CREATE TABLE applied_log (version text NOT NULL);\nINSERT INTO applied_log VALUES ('001');\n" };
  for (let i = 2; i <= 20; i += 1) {
    const v = String(i).padStart(3, '0');
    files[`migrations/${v}_table_${v}.sql`] = `CREATE TABLE t_${v} (id int);\nSELECT pg_sleep(0.02);\nINSERT INTO applied_log VALUES ('${v}');\n`;
  }
  const url = pooledUrl(db);
  const runs = await Promise.all(
    Array.from({ length: 8 }, () => {
      const cwd = project(t, files);
      return tidemark(['deploy', '--json', '--lock-wait-timeout', '60s'], { cwd, env: { DATABASE_URL: url }, timeout: 90_000 });
    }),
  );
  for (const r of runs) {
    assert.equal(r.code, 0, bouncer.explain(r));
    assertNoSecret(assert, r, PASSWORD);
  }
  const applied = runs.flatMap((r) => ndjson(r.stdout).filter((e) => e.event === 'migrationApplied').map((e) => e.version));
  assert.equal(applied.length, 20, `migrationApplied events: ${applied.join(', ')}`);
  assert.equal(new Set(applied).size, 20);
  assert.equal(await server.psql("SELECT count(*) FILTER (WHERE status = 'completed') || '/' || count(*) FROM schema_migrations", db), '20/20');
  assert.equal(await server.psql('SELECT count(*) || \'/\' || count(DISTINCT version) FROM applied_log', db), '20/20');
  assert.equal(await server.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), '0');
});

for (const directVar of ['DIRECT_URL', 'DATABASE_URL_UNPOOLED']) {
  test(`DATABASE_URL pooled and ${directVar} direct: the direct one is used, and the output says so`, engine, async (t) => {
    const db = await server.createDatabase('app');
    const cwd = project(t, BASIC);
    const env = { DATABASE_URL: pooledUrl(db), [directVar]: directUrl(db) };
    const r = await tidemark(['deploy'], { cwd, env });
    assert.equal(r.code, 0, bouncer.explain(r));
    // The first line names the direct variable (e.g. "Using DIRECT_URL (...) instead of the pooled DATABASE_URL").
    assert.match(r.out[0], new RegExp(`^Using ${directVar} \\(postgres://app:\\*\\*\\*\\*@127\\.0\\.0\\.1:${server.port}/${db}\\)`), r.all);
    assert.ok(!r.all.includes('pool-safe'), `no pool-safe warning when a direct URL is used:\n${r.all}`);
    assert.ok(!r.out.some((l) => l.startsWith('warning:')), r.all);
    assert.match(r.out.at(-1), /^3 migrations applied, 0 pending \(\d+ ms\)$/);
    assertNoSecret(assert, r, PASSWORD);

    // And it really connected to the server, not to PgBouncer.
    const status = await tidemark(['status', '--json'], { cwd, env });
    assert.equal(status.code, 0, bouncer.explain(status));
    const events = ndjson(status.stdout);
    assert.equal(events.find((e) => e.event === 'connecting').source, directVar);
    assert.equal(events.find((e) => e.event === 'connected').port, server.port);
  });
}

test('adopt through a pooled URL: one transaction converts golang-migrate\'s table; deploy then applies only the rest', engine, async (t) => {
  const db = await server.createDatabase('app');
  // golang-migrate's table and its one row, as it writes them (see tests/adopt.test.mjs), owned by the app.
  await server.psql(
    'SET ROLE app; CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL); ' +
      'INSERT INTO schema_migrations VALUES (2, false); CREATE TABLE things (id int PRIMARY KEY); ALTER TABLE things ADD COLUMN name text;',
    db,
  );
  const cwd = project(t, BASIC);
  const env = { DATABASE_URL: pooledUrl(db) };
  const refused = await tidemark(['deploy'], { cwd, env });
  assert.equal(refused.code, 3, bouncer.explain(refused));
  const adopted = await tidemark(['adopt'], { cwd, env });
  assert.equal(adopted.code, 0, bouncer.explain(adopted));
  assert.match(adopted.out.at(-1), /^Adopted 2 migrations from golang-migrate into public\.schema_migrations, 1 pending; nothing was run/);
  const deployed = await tidemark(['deploy'], { cwd, env });
  assert.equal(deployed.code, 0, bouncer.explain(deployed));
  assert.match(deployed.out.at(-1), /^1 migration applied, 0 pending/);
  assert.equal(await rows(db), '001:completed,002:completed,003:completed');
});
