// The wasm bridge under stress: big payloads both ways, a server that drops
// the connection mid-migration, and eight wasm-backed processes racing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { database, project, tidemark, REPO, PKG } from './helpers.mjs';

const require = createRequire(path.join(PKG, 'index.cjs'));
const wasmPath = path.join(REPO, 'npm/tidemark-wasm/index.cjs');
const opts = fs.existsSync(path.join(REPO, 'npm/tidemark-wasm/pkg/tidemark_lite_bg.wasm'))
  ? { timeout: 120_000 }
  : { skip: 'the wasm backend is not built (npm run build)' };
const onlyWasmRun = (t) => process.env.TIDEMARK_BACKEND !== 'wasm' && t.skip('runs in the wasm pass of the suite');

test('a 20 MB migration goes through the bridge intact', opts, async (t) => {
  if (onlyWasmRun(t)) return;
  const wasm = require(wasmPath);
  const db = await database(t);
  const blob = 'tidemark-'.repeat(Math.ceil((20 << 20) / 9)).slice(0, 20 << 20);
  const sql = `CREATE TABLE big (t text);\nINSERT INTO big VALUES ('${blob}');\n`;
  assert.ok(sql.length > 20 << 20);
  const r = await wasm.execute('migrate', { url: db.url, migrations: [{ name: '001_big.sql', bytes: Buffer.from(sql) }] });
  assert.equal(r.applied.length, 1);
  const md5 = await db.query('SELECT length(t) || \' \' || md5(t) FROM big');
  assert.equal(md5, `${blob.length} ${createHash('md5').update(blob).digest('hex')}`);
});

test('a seed that sends large notices goes through', opts, async (t) => {
  if (onlyWasmRun(t)) return;
  const wasm = require(wasmPath);
  const db = await database(t);
  const migrations = [{ name: '001_t.sql', bytes: Buffer.from('CREATE TABLE t (n int);') }];
  await wasm.execute('migrate', { url: db.url, migrations });
  const seed = "DO $$ BEGIN FOR i IN 1..100 LOOP RAISE NOTICE '%', repeat('n', 100000); END LOOP; END $$;\nINSERT INTO t VALUES (42);\n";
  const r = await wasm.execute('seed', { url: db.url, migrations, seeds: [{ name: '001_noisy.sql', bytes: Buffer.from(seed) }] });
  assert.equal(r.ran.length, 1);
  assert.equal(await db.query('SELECT n FROM t'), '42');
});

test('a server that closes the socket mid-migration gives a clean error and no partial state', opts, async (t) => {
  if (onlyWasmRun(t)) return;
  const wasm = require(wasmPath);
  const db = await database(t);
  const migrations = [
    { name: '001_a.sql', bytes: Buffer.from('CREATE TABLE a (id int);') },
    { name: '002_b.sql', bytes: Buffer.from('CREATE TABLE b (id int);\nSELECT pg_terminate_backend(pg_backend_pid());\nCREATE TABLE b2 (id int);') },
    { name: '003_c.sql', bytes: Buffer.from('CREATE TABLE c (id int);') },
  ];
  const err = await wasm.execute('migrate', { url: db.url, migrations }).then(
    () => assert.fail('expected an error'),
    (e) => e,
  );
  assert.ok(err instanceof Error);
  assert.ok(err.code, `error has a code: ${err.message}`);
  assert.match(err.message, /terminat|connection|closed/i);
  assert.equal(await db.query("SELECT string_agg(version || ':' || status, ',' ORDER BY version) FROM schema_migrations WHERE status = 'completed'"), '001:completed');
  assert.equal(await db.query("SELECT count(*) FROM pg_tables WHERE tablename IN ('b', 'b2', 'c')"), '0');
  // The next run finishes the job.
  const fixed = migrations.map((m) => (m.name === '002_b.sql' ? { ...m, bytes: Buffer.from('CREATE TABLE b (id int);') } : m));
  const r = await wasm.execute('migrate', { url: db.url, migrations: fixed });
  assert.deepEqual(r.applied.map((m) => m.version), ['002', '003']);
});

test('eight wasm-backed processes migrating one database apply each migration exactly once', opts, async (t) => {
  if (onlyWasmRun(t)) return;
  const db = await database(t);
  const files = {};
  for (let i = 1; i <= 20; i++) {
    files[`migrations/${String(i).padStart(3, '0')}_t${i}.sql`] = `CREATE TABLE t${i} (id int PRIMARY KEY, v text);\nCREATE INDEX t${i}_v ON t${i} (v);\n`;
  }
  const dir = project(t, files);
  const runs = await Promise.all(
    Array.from({ length: 8 }, () => tidemark(['migrate', '--json'], { cwd: dir, env: { DATABASE_URL: db.url, TIDEMARK_BACKEND: 'wasm' }, timeout: 90_000 })),
  );
  for (const r of runs) assert.equal(r.code, 0, r.all);
  const applied = runs.flatMap((r) => r.out.map((l) => JSON.parse(l)).filter((e) => e.event === 'migrationApplied').map((e) => e.version));
  assert.equal(applied.length, 20);
  assert.equal(new Set(applied).size, 20);
  assert.equal(await db.query("SELECT count(*) FROM schema_migrations WHERE status = 'completed'"), '20');
});
