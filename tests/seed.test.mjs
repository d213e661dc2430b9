// seed and reset against the real server.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
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

// A script seed talks to the database through its own client; here psql,
// given the DATABASE_URL tidemark hands it.
const SCRIPT = `import { execFileSync } from 'node:child_process';
const sql = "INSERT INTO goals (id, user_id, title) VALUES (7, 1, 'From a script') ON CONFLICT (id) DO NOTHING;" +
  ' CREATE TABLE IF NOT EXISTS script_runs (at timestamptz DEFAULT now()); INSERT INTO script_runs DEFAULT VALUES;';
execFileSync('psql', [process.env.DATABASE_URL, '-v', 'ON_ERROR_STOP=1', '-qc', sql], { stdio: 'inherit' });
console.log('seeded through psql');
`;

test('script seeds run as child processes in folder order, tracked like SQL seeds', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    ...BASIC,
    'seeds/development/001_users.sql': SEEDS['seeds/development/001_users.sql'],
    'seeds/development/002_goals.mjs': SCRIPT,
    'seeds/development/003_more.sql': "INSERT INTO goals (id, user_id, title) SELECT 8, 1, 'After ' || title FROM goals WHERE id = 7;\n",
  });
  const env = { DATABASE_URL: db.url };
  await tidemark(['migrate'], { cwd, env });

  const r = await tidemark(['seed'], { cwd, env });
  assert.equal(r.code, 0, r.all);
  assert.match(r.out[1], /^Seeded 001_users \(\d+ ms\)$/);
  assert.match(r.out[2], /^Seeded 002_goals \(\d+ ms\)$/);
  assert.match(r.out[3], /^Seeded 003_more \(\d+ ms\)$/);
  assert.equal(r.out.at(-1), '3 seeds ran, 0 skipped (development)');
  assert.ok(!r.all.includes('seeded through psql'), "the script's own output is not mixed into tidemark's");
  // 003 ran after the script: it read the script's row.
  assert.equal(await db.query("SELECT string_agg(title, ',' ORDER BY id) FROM goals"), 'From a script,After From a script');
  const sum = createHash('sha256').update(SCRIPT).digest('hex');
  assert.equal(await db.query("SELECT checksum FROM schema_seeds WHERE name = '002_goals'"), sum);
  assertNoSecret(assert, r, db.password);

  const again = await tidemark(['seed', '--json'], { cwd, env });
  assert.equal(again.code, 0, again.all);
  const records = ndjson(again.stdout);
  assert.deepEqual(records.filter((e) => e.event === 'seedSkipped').map((e) => e.file), ['001_users.sql', '002_goals.mjs', '003_more.sql']);
  assert.deepEqual(records.at(-1).report, { environment: 'development', ran: [], skipped: ['001_users', '002_goals', '003_more'] });
  assert.equal(await db.query('SELECT count(*) FROM script_runs'), '1');

  const only = await tidemark(['seed', '--only', '002_goals', '--force', '--json'], { cwd, env });
  assert.equal(only.code, 0, only.all);
  const report = ndjson(only.stdout).at(-1).report;
  assert.deepEqual(report.ran.map((s) => [s.name, s.file]), [['002_goals', '002_goals.mjs']]);
  assert.ok(!('scriptDue' in report), JSON.stringify(report));
  assert.equal(await db.query('SELECT count(*) FROM script_runs'), '2');

  // reset seeds through the same path: the script runs on the new schema.
  const reset = await tidemark(['reset', '--yes'], { cwd, env });
  assert.equal(reset.code, 0, reset.all);
  assert.match(reset.out.at(-2), /^Seeded 003_more \(\d+ ms\)$/);
  assert.equal(reset.out.at(-1), 'Reset: 3 migrations applied, 3 seeds ran, 0 skipped (development)');
  assert.equal(await db.query('SELECT count(*) FROM script_runs'), '1');
  assert.equal(await db.query("SELECT string_agg(title, ',' ORDER BY id) FROM goals"), 'From a script,After From a script');
});

test('seed commands racing on one database run a script seed once (the lock is held while it runs)', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    ...BASIC,
    'seeds/development/001_users.sql': SEEDS['seeds/development/001_users.sql'],
    // Slow enough that every racer reaches the lock while it runs.
    'seeds/development/002_script.mjs':
      "import { execFileSync } from 'node:child_process';\n" +
      'await new Promise((resolve) => setTimeout(resolve, 400));\n' +
      "execFileSync('psql', [process.env.DATABASE_URL, '-v', 'ON_ERROR_STOP=1', '-qc', " +
      "'CREATE TABLE IF NOT EXISTS script_runs (n int); INSERT INTO script_runs VALUES (1)']);\n",
  });
  const env = { DATABASE_URL: db.url };
  await tidemark(['migrate'], { cwd, env });
  const racers = await Promise.all(Array.from({ length: 4 }, () => tidemark(['seed'], { cwd, env })));
  for (const r of racers) assert.equal(r.code, 0, r.all);
  assert.equal(await db.query('SELECT count(*) FROM script_runs'), '1', 'the script ran once');
  const seeded = racers.filter((r) => r.out.some((l) => /^Seeded 002_script \(\d+ ms\)$/.test(l)));
  assert.equal(seeded.length, 1, racers.map((r) => r.all).join('\n---\n'));
  for (const r of racers.filter((x) => x !== seeded[0])) {
    assert.ok(r.out.includes('Skipped seed 002_script (already ran with the same contents)'), r.all);
  }
  assert.equal(await db.query("SELECT string_agg(name, ',' ORDER BY name) FROM schema_seeds"), '001_users,002_script');
});

test('a connection lost while a script seed runs: exit 2 saying it ran and was not recorded; the next run runs it again', engine, async (t) => {
  const db = await database(t);
  // The script ends tidemark's own session (by its application_name) and exits 0,
  // on its first run.
  const kill =
    "import { execFileSync } from 'node:child_process';\n" +
    "execFileSync('psql', [process.env.DATABASE_URL, '-v', 'ON_ERROR_STOP=1', '-qAtc', " +
    '"CREATE TABLE IF NOT EXISTS script_runs (n int); INSERT INTO script_runs VALUES (1); ' +
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tidemark' AND pid <> pg_backend_pid() AND (SELECT count(*) FROM script_runs) = 1\"]);\n";
  const cwd = project(t, { ...BASIC, 'seeds/development/001_kill.mjs': kill });
  const env = { DATABASE_URL: db.url };
  await tidemark(['migrate'], { cwd, env });
  const r = await tidemark(['seed'], { cwd, env });
  assert.equal(r.code, 2, r.all);
  assert.match(
    r.err[0],
    /^error: the script seed 001_kill ran to its end, but it could not be recorded, so the next seed run runs it again: the connection to the database was lost \(.+\); run the command again/,
  );
  assertNoSecret(assert, r, db.password);
  assert.equal(await db.query('SELECT count(*) FROM schema_seeds'), '0');
  assert.equal(await db.query('SELECT count(*) FROM script_runs'), '1');
  // The script ends the session on its first run only.
  const again = await tidemark(['seed'], { cwd, env });
  assert.equal(again.code, 0, again.all);
  assert.match(again.out[1], /^Seeded 001_kill \(\d+ ms\)$/);
  assert.equal(await db.query("SELECT string_agg(name, ',') FROM schema_seeds"), '001_kill');
  assert.equal(await db.query('SELECT count(*) FROM script_runs'), '2');
});

test('a failing script seed stops the run, is not recorded, and its stderr is shown without the password', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    ...BASIC,
    'seeds/development/001_users.sql': SEEDS['seeds/development/001_users.sql'],
    'seeds/development/002_fail.cjs': "console.error('could not connect to ' + process.env.DATABASE_URL);\nprocess.exit(4);\n",
    'seeds/development/003_more.sql': "INSERT INTO users VALUES (3, 'never@example.com');\n",
  });
  const env = { DATABASE_URL: db.url };
  await tidemark(['migrate'], { cwd, env });
  const r = await tidemark(['seed'], { cwd, env });
  assert.equal(r.code, 2, r.all);
  assert.match(r.out[1], /^Seeded 001_users/);
  assert.match(r.err[0], /^error: seed seeds\/development\/002_fail\.cjs failed: it exited with code 4; nothing was recorded for it/);
  assert.match(r.stderr, /could not connect to postgres/);
  assertNoSecret(assert, r, db.password);
  assert.equal(await db.query("SELECT string_agg(name, ',') FROM schema_seeds"), '001_users');
  assert.equal(await db.query('SELECT count(*) FROM users WHERE id = 3'), '0');
  const json = ndjson((await tidemark(['seed', '--json'], { cwd, env })).stdout).at(-1);
  assert.equal(json.code, 'E_SEED_FAILED');
  assert.equal(json.file, 'seeds/development/002_fail.cjs');
  assertNoSecret(assert, { all: JSON.stringify(json) }, db.password);
});

test('a TypeScript seed needs a Node that strips types: exit 3 naming the version, nothing run', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    ...BASIC,
    'seeds/development/001_users.ts': "const n: number = 1;\nconsole.log(n);\n",
  });
  const env = { DATABASE_URL: db.url };
  await tidemark(['migrate'], { cwd, env });
  const r = await tidemark(['seed'], { cwd, env });
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major > 22 || (major === 22 && minor >= 6)) {
    assert.equal(r.code, 0, r.all);
    assert.equal(await db.query("SELECT string_agg(name, ',') FROM schema_seeds"), '001_users');
    return;
  }
  assert.equal(r.code, 3, r.all);
  assert.match(
    r.err[0],
    new RegExp(`^error: seeds/development/001_users\\.ts is a TypeScript seed, and this Node \\(${process.versions.node.replace(/\./g, '\\.')}\\) cannot run TypeScript: that needs Node 22\\.6 or later`),
  );
  assert.equal(await db.query("SELECT count(*) FROM schema_seeds"), '0');
});
