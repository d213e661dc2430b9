// Where settings come from, end to end: flags > environment (.env files
// included) > tidemark.config.json > the "tidemark" key of package.json >
// defaults; and which URL wins. Asserted on the database itself.
import test from 'node:test';
import assert from 'node:assert/strict';
import { tidemark, project, database, engine, BASIC, writeFiles, PG_HOST, PG_PORT, assertNoSecret, psql, ndjson } from './helpers.mjs';

const tables = (db) =>
  db.query("SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_name LIKE 'track_%'");

test('tracking table: flag > env > tidemark.config.json > package.json > default', engine, async (t) => {
  const db = await database(t);
  // Each run uses a fresh tracking table, so the migration must be re-runnable.
  const cwd = project(t, {
    'migrations/001_noop.sql': 'SELECT 1;\n',
    'package.json': { name: 'app', private: true, tidemark: { table: 'track_package_json' } },
  });
  const env = { DATABASE_URL: db.url };

  assert.equal((await tidemark(['migrate'], { cwd, env })).code, 0);
  assert.equal(await tables(db), 'track_package_json');

  writeFiles(cwd, { 'tidemark.config.json': { table: 'track_config_file' } });
  assert.equal((await tidemark(['migrate'], { cwd, env })).code, 0);
  assert.equal(await tables(db), 'track_config_file,track_package_json');

  writeFiles(cwd, { '.env': 'TIDEMARK_TABLE=track_dotenv\n' });
  assert.equal((await tidemark(['migrate'], { cwd, env })).code, 0);
  assert.equal(await tables(db), 'track_config_file,track_dotenv,track_package_json');

  assert.equal((await tidemark(['migrate'], { cwd, env: { ...env, TIDEMARK_TABLE: 'track_shell' } })).code, 0);
  assert.equal(await tables(db), 'track_config_file,track_dotenv,track_package_json,track_shell');

  assert.equal((await tidemark(['migrate', '--table', 'track_flag'], { cwd, env: { ...env, TIDEMARK_TABLE: 'track_shell' } })).code, 0);
  assert.equal(await tables(db), 'track_config_file,track_dotenv,track_flag,track_package_json,track_shell');

  // --config picks another file; its paths are relative to it.
  writeFiles(cwd, {
    'config/tidemark.json': { table: 'track_explicit', dir: '../db' },
    'db/001_only.sql': 'SELECT 1;\n',
    '.env': '',
  });
  const r = await tidemark(['migrate', '--config', 'config/tidemark.json'], { cwd, env });
  assert.equal(r.code, 0, r.all);
  assert.match(r.out.at(-1), /^1 migration applied/);
  assert.equal(await db.query('SELECT version FROM track_explicit'), '001');
});

test('unknown config keys are warned about, not fatal', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, { ...BASIC, 'tidemark.config.json': { tabel: 'oops' } });
  const r = await tidemark(['status', '--url', db.url], { cwd });
  assert.equal(r.code, 0, r.all);
  assert.match(r.stdout, /^warning: unknown key "tabel" in tidemark\.config\.json \(ignored\); known keys: /m);
});

test('URL precedence, end to end: the winning variable is named, the others are never tried', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASIC);
  // Every loser points at a port where nothing listens: if it were used, the run would fail.
  const dead = 'postgres://postgres:deadpw@127.0.0.1:1/nope';
  const order = ['TIDEMARK_DATABASE_URL', 'DATABASE_URL_UNPOOLED', 'POSTGRES_URL_NON_POOLING', 'DATABASE_URL', 'POSTGRES_URL'];
  for (const [i, winner] of order.entries()) {
    const env = {};
    for (const name of order.slice(i + 1)) env[name] = dead;
    env[winner] = db.url;
    env.PGHOST = '127.0.0.1';
    env.PGPORT = '1';
    env.PGDATABASE = 'nope';
    const r = await tidemark(['status'], { cwd, env });
    assert.equal(r.code, 0, `${winner}: ${r.all}`);
    assert.equal(r.out[0], `Using ${winner} (${db.redacted})`);
    assertNoSecret(assert, r, db.password);
  }
  // --url beats them all.
  const all = Object.fromEntries(order.map((n) => [n, dead]));
  const flag = await tidemark(['status', '--url', db.url], { cwd, env: all });
  assert.equal(flag.code, 0, flag.all);
  assert.equal(flag.out[0], `Using --url (${db.redacted})`);
  const short = await tidemark(['status', '-u', db.url], { cwd, env: all });
  assert.equal(short.out[0], `Using --url (${db.redacted})`);
});

test('Vercel (POSTGRES_URL_NON_POOLING over the pooled POSTGRES_URL) and Neon (DATABASE_URL_UNPOOLED over DATABASE_URL)', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASIC);
  const pooled = 'postgres://postgres:pooledpw@127.0.0.1:1/pooled?pgbouncer=true';
  const vercel = await tidemark(['deploy'], { cwd, env: { POSTGRES_URL: pooled, POSTGRES_URL_NON_POOLING: db.url } });
  assert.equal(vercel.code, 0, vercel.all);
  assert.equal(vercel.out[0], `Using POSTGRES_URL_NON_POOLING (${db.redacted})`);
  const neon = await tidemark(['deploy'], { cwd, env: { DATABASE_URL: pooled, DATABASE_URL_UNPOOLED: db.url } });
  assert.equal(neon.code, 0, neon.all);
  assert.equal(neon.out[0], `Using DATABASE_URL_UNPOOLED (${db.redacted})`);
  assertNoSecret(assert, vercel, 'pooledpw');
});

test('PG* variables, when no URL variable is set', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASIC);
  const r = await tidemark(['migrate'], {
    cwd,
    env: { PGHOST: PG_HOST, PGPORT: PG_PORT, PGUSER: 'postgres', PGPASSWORD: 'pgpassword-secret', PGDATABASE: db.name },
  });
  assert.equal(r.code, 0, r.all);
  assert.equal(r.out[0], `Using PG* variables (postgres://postgres:****@${PG_HOST}:${PG_PORT}/${db.name})`);
  assertNoSecret(assert, r, 'pgpassword-secret');
  assert.equal(await db.query('SELECT count(*) FROM schema_migrations'), '3');
});

test('.env files in Next.js precedence; the shell always wins', engine, async (t) => {
  const db = await database(t);
  const dead = 'postgres://postgres:deadpw@127.0.0.1:1/nope';
  const cwd = project(t, {
    ...BASIC,
    '.env': `DATABASE_URL=${dead}\n`,
    '.env.development': `DATABASE_URL=${dead}\n`,
    '.env.local': `DATABASE_URL="${db.url}"\n`,
    '.env.test': `DATABASE_URL=${dead}\n`,
  });
  let r = await tidemark(['status'], { cwd });
  assert.equal(r.code, 0, r.all);
  assert.equal(r.out[0], `Using DATABASE_URL (${db.redacted})`);

  // .env.development.local beats .env.local.
  writeFiles(cwd, { '.env.development.local': `export DATABASE_URL='${db.url}?application_name=devlocal'\n`, '.env.local': `DATABASE_URL=${dead}\n` });
  r = await tidemark(['status'], { cwd });
  assert.equal(r.code, 0, r.all);
  assert.equal(r.out[0], `Using DATABASE_URL (${db.redacted}?application_name=devlocal)`);

  // NODE_ENV=test reads .env.test.local and .env.test, never .env.local.
  writeFiles(cwd, { '.env.test.local': `DATABASE_URL=${db.url}\n` });
  r = await tidemark(['status'], { cwd, env: { NODE_ENV: 'test' } });
  assert.equal(r.code, 0, r.all);

  // A variable set in the shell is never overridden by a file.
  r = await tidemark(['status', '--connect-timeout', '1s'], { cwd, env: { DATABASE_URL: dead } });
  assert.equal(r.code, 2);
  assert.equal(r.out[0], 'Using DATABASE_URL (postgres://postgres:****@127.0.0.1:1/nope)');
  assertNoSecret(assert, r, 'deadpw');
});

test('--tls-insecure / TIDEMARK_TLS_INSECURE=1: encrypt without verifying a self-signed certificate', engine, async (t) => {
  if ((await psql('SHOW ssl')) !== 'on') return t.skip('the test server has ssl off');
  const db = await database(t);
  const cwd = project(t, BASIC);
  const url = `${db.url}?sslmode=require`;
  const verified = await tidemark(['status', '--json', '--url', url], { cwd });
  assert.equal(verified.code, 2, verified.all);
  assert.equal(ndjson(verified.stdout).at(-1).code, 'E_CONNECT');
  for (const [args, env] of [[['--tls-insecure'], {}], [[], { TIDEMARK_TLS_INSECURE: '1' }]]) {
    const r = await tidemark(['status', '--json', '--url', url, ...args], { cwd, env });
    assert.equal(r.code, 0, r.all);
    const connected = ndjson(r.stdout).find((e) => e.event === 'connected');
    assert.equal(connected.database, db.name);
  }
});
