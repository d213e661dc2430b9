// seed and reset against the real server.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tidemark, project, database, ndjson, engine, BASIC, assertNoSecret } from './helpers.mjs';

const SEEDS = {
  'seeds/development/001_users.sql': "INSERT INTO users VALUES (1, 'dev@example.com') ON CONFLICT (id) DO UPDATE SET email = excluded.email;\n",
  'seeds/development/002_goals.sql': "INSERT INTO goals (id, user_id, title) VALUES (1, 1, 'Ship') ON CONFLICT DO NOTHING;\n",
  'seeds/preview/001_users.sql': "INSERT INTO users VALUES (2, 'preview@example.com') ON CONFLICT DO NOTHING;\n",
  'seeds/production/001_admin.sql': "INSERT INTO users VALUES (100, 'admin@example.com') ON CONFLICT DO NOTHING;\n",
};

test('seed runs each file once, skips unchanged ones, re-runs changed ones, --force runs all', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, { ...BASIC, ...SEEDS });
  const env = { DATABASE_URL: db.url };
  await tidemark(['migrate'], { cwd, env });

  const r = await tidemark(['seed'], { cwd, env });
  assert.equal(r.code, 0, r.all);
  assert.equal(r.out[0], `Using DATABASE_URL (${db.redacted})`);
  assert.match(r.out[1], /^Seeded 001_users \(\d+ ms\)$/);
  assert.match(r.out[2], /^Seeded 002_goals \(\d+ ms\)$/);
  assert.equal(r.out.at(-1), '2 seeds ran, 0 skipped (development)');
  assert.equal(await db.query('SELECT email FROM users ORDER BY id'), 'dev@example.com');
  assert.equal(await db.query('SELECT string_agg(name, \',\' ORDER BY name) FROM schema_seeds'), '001_users,002_goals');
  assertNoSecret(assert, r, db.password);

  const again = await tidemark(['seed'], { cwd, env });
  assert.equal(again.code, 0);
  assert.deepEqual(again.out.slice(1), [
    'Skipped seed 001_users (already ran with the same contents)',
    'Skipped seed 002_goals (already ran with the same contents)',
    '0 seeds ran, 2 skipped (development)',
  ]);

  fs.writeFileSync(
    path.join(cwd, 'seeds/development/001_users.sql'),
    "INSERT INTO users VALUES (1, 'changed@example.com') ON CONFLICT (id) DO UPDATE SET email = excluded.email;\n",
  );
  const changed = await tidemark(['seed'], { cwd, env });
  assert.ok(changed.out.some((l) => /^Seeded 001_users \(\d+ ms\)$/.test(l)), changed.stdout);
  assert.ok(changed.out.includes('Skipped seed 002_goals (already ran with the same contents)'), changed.stdout);
  assert.equal(changed.out.at(-1), '1 seed ran, 1 skipped (development)');
  assert.equal(await db.query('SELECT email FROM users WHERE id = 1'), 'changed@example.com');

  const forced = await tidemark(['seed', '--force', '--json'], { cwd, env });
  assert.equal(forced.code, 0);
  const records = ndjson(forced.stdout);
  assert.deepEqual(records.filter((e) => e.event === 'seedApplied').map((e) => [e.name, e.file]), [
    ['001_users', '001_users.sql'],
    ['002_goals', '002_goals.sql'],
  ]);
  assert.deepEqual(records.at(-1).report.skipped, []);
  assert.equal(records.at(-1).report.environment, 'development');
});

test('seed environment: --env, else NODE_ENV, else development', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, { ...BASIC, ...SEEDS });
  await tidemark(['migrate', '--url', db.url], { cwd });
  const byFlag = await tidemark(['seed', '--env', 'preview', '--url', db.url], { cwd, env: { NODE_ENV: 'development' } });
  assert.equal(byFlag.code, 0, byFlag.all);
  assert.equal(byFlag.out.at(-1), '1 seed ran, 0 skipped (preview)');
  const byNodeEnv = await tidemark(['seed', '--url', db.url], { cwd, env: { NODE_ENV: 'preview' } });
  assert.equal(byNodeEnv.out.at(-1), '0 seeds ran, 1 skipped (preview)');
  const byDefault = await tidemark(['seed', '--url', db.url], { cwd });
  assert.equal(byDefault.out.at(-1), '2 seeds ran, 0 skipped (development)');
});

test('seed --allow-production --env production runs seeds/production in production', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, { ...BASIC, ...SEEDS });
  const env = { DATABASE_URL: db.url, VERCEL_ENV: 'production' };
  await tidemark(['migrate'], { cwd, env });
  const refused = await tidemark(['seed'], { cwd, env });
  assert.equal(refused.code, 2);
  assert.match(refused.err[0], /^error: refusing to seed: this is production \(VERCEL_ENV=production\)/);
  assert.equal(await db.query("SELECT to_regclass('schema_seeds') IS NULL"), 't');

  const r = await tidemark(['seed', '--allow-production', '--env', 'production'], { cwd, env });
  assert.equal(r.code, 0, r.all);
  assert.equal(r.out.at(-1), '1 seed ran, 0 skipped (production)');
  assert.equal(await db.query('SELECT email FROM users'), 'admin@example.com');
});

test('a failing seed: exit 2, the pointer into seeds/<env>/, earlier seeds committed', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    ...BASIC,
    'seeds/development/001_users.sql': "INSERT INTO users VALUES (1, 'a@example.com');\n",
    'seeds/development/002_bad.sql': "INSERT INTO users VALUES (2, NULL);\n",
  });
  const env = { DATABASE_URL: db.url };
  await tidemark(['migrate'], { cwd, env });
  const r = await tidemark(['seed'], { cwd, env });
  assert.equal(r.code, 2, r.all);
  assert.match(r.out[1], /^Seeded 001_users/);
  assert.match(r.err[0], /^error: seed 002_bad\.sql.*null value/);
  assert.match(r.stderr, /--> seeds\/development\/002_bad\.sql:1/);
  assert.match(r.stderr, / 1 \| INSERT INTO users VALUES \(2, NULL\);/);
  const json = ndjson((await tidemark(['seed', '--json'], { cwd, env })).stdout).at(-1);
  assert.equal(json.code, 'E_SEED_FAILED');
  assert.equal(json.file, 'seeds/development/002_bad.sql');
  assert.equal(json.sqlState, '23502');
  assert.equal(await db.query('SELECT count(*) FROM users'), '1');
});

test('reset drops everything, migrates and seeds; it refuses production', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, { ...BASIC, ...SEEDS });
  const env = { DATABASE_URL: db.url };
  await tidemark(['migrate'], { cwd, env });
  await db.query("INSERT INTO users VALUES (42, 'stray@example.com'); CREATE TABLE stray (id int)");

  const r = await tidemark(['reset', '--yes'], { cwd, env });
  assert.equal(r.code, 0, r.all);
  assert.equal(r.out[0], `Using DATABASE_URL (${db.redacted})`);
  assert.equal(r.out[1], 'Dropped schema public with everything in it');
  assert.ok(r.out.some((l) => /^Applied 001 initial_schema/.test(l)), r.stdout);
  assert.ok(r.out.some((l) => /^Seeded 002_goals/.test(l)), r.stdout);
  assert.equal(r.out.at(-1), 'Reset: 3 migrations applied, 2 seeds ran, 0 skipped (development)');
  assert.equal(await db.query("SELECT to_regclass('stray') IS NULL"), 't');
  assert.equal(await db.query('SELECT string_agg(id::text, \',\' ORDER BY id) FROM users'), '1');

  const json = await tidemark(['reset', '--json', '--env', 'preview', '--yes'], { cwd, env });
  assert.equal(json.code, 0, json.all);
  const done = ndjson(json.stdout).at(-1);
  assert.equal(done.command, 'reset');
  assert.equal(done.report.migrate.applied.length, 3);
  assert.equal(done.report.seed.environment, 'preview');

  const prod = await tidemark(['reset'], { cwd, env: { ...env, NODE_ENV: 'production' } });
  assert.equal(prod.code, 2);
  assert.match(prod.err[0], /^error: refusing to reset: this is production \(NODE_ENV=production\)/);
  assert.equal(await db.query('SELECT count(*) FROM users'), '1');
});
