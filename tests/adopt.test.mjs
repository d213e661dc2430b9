// Switching from another tool: `adopt`, `baseline`, and the refusal of
// deploy/migrate/status on a database whose history another tool keeps.
// History is made by the peer tool itself where it installs from npm
// (node-pg-migrate, knex, drizzle-orm's migrator, dbmate, postgres-migrations: tests/peers, `npm ci
// --prefix tests/peers`); otherwise the rows are written exactly as the peer
// writes them, with the peer's source cited beside them.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { tidemark, project, database, ndjson, engine, writeFiles, REPO, cleanEnv, assertNoSecret, pkgRequire } from './helpers.mjs';

const PEERS = path.join(REPO, 'tests', 'peers');
const peerRequire = createRequire(path.join(PEERS, 'package.json'));
const peersInstalled = fs.existsSync(path.join(PEERS, 'node_modules', 'node-pg-migrate'));
/** Tests that run a peer tool: skipped (with the reason) until tests/peers is installed. */
const peer = engine.skip ? engine : peersInstalled ? {} : { skip: 'the peer tools are not installed: npm ci --prefix tests/peers' };

/** Runs a program, resolving with { code, stdout, stderr }. */
function run(file, args, { cwd, env = {} } = {}) {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env: { ...cleanEnv(), ...env }, encoding: 'utf8', timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}

/** Each migration counts itself into `runs`: a migration run twice shows up twice. */
const counted = (n) => `INSERT INTO runs VALUES ('${n}');\n`;
const runs = (db) => db.query("SELECT coalesce(string_agg(v, ',' ORDER BY v), '') FROM runs");
const tracked = (db, table = 'schema_migrations') =>
  db.query(`SELECT coalesce(string_agg(version || ':' || status, ',' ORDER BY version), '') FROM ${table}`);
const sha = (algo, text) => createHash(algo).update(text).digest('hex');

/**
 * The common path of every switch (two migrations the peer applied): deploy refuses (exit 3, naming the tool
 * and adopt), adopt --dry-run writes nothing, adopt records, status is clean,
 * adopt again is a no-op, and a new migration in the peer's layout is the only
 * one deploy runs.
 */
async function switchOver(t, { db, cwd, tool, dir = 'migrations', newFile, newSql, extraFiles = {}, countBefore, trackingBefore }) {
  const expectAdopted = 2;
  // Unless the peer's table is tidemark's: tidemark's table must not exist before adopt writes it.
  trackingBefore ??= async () => ((await db.query("SELECT to_regclass('schema_migrations') IS NULL")) === 't' ? 'unchanged' : 'written');
  const url = ['--url', db.url, '--dir', dir];
  const refused = await tidemark(['deploy', ...url], { cwd });
  assert.equal(refused.code, 3, refused.all);
  assert.match(refused.stderr, new RegExp(`^error: this database's migrations were applied by ${tool} \\(`));
  assert.match(refused.stderr, /tidemark adopt/);
  for (const cmd of [['migrate'], ['status']]) {
    const r = await tidemark([...cmd, ...url], { cwd });
    assert.equal(r.code, 3, `${cmd}: ${r.all}`);
    assert.match(r.stderr, /tidemark adopt/);
  }
  assert.equal(await runs(db), countBefore);

  const dry = await tidemark(['adopt', '--dry-run', ...url], { cwd });
  assert.equal(dry.code, 0, dry.all);
  assert.match(dry.stdout, new RegExp(`^Found ${tool}'s history in \\S+: `, 'm'));
  assert.equal(dry.out.filter((l) => l.startsWith('Would adopt ')).length, expectAdopted, dry.stdout);
  assert.match(dry.out.at(-1), new RegExp(`^Dry run: would adopt ${expectAdopted} migrations? from ${tool}, .*nothing was written`));
  assert.equal(await trackingBefore(), 'unchanged', 'adopt --dry-run wrote something');

  const adopted = await tidemark(['adopt', ...url], { cwd });
  assert.equal(adopted.code, 0, adopted.all);
  assert.equal(adopted.out.filter((l) => /^Adopted \d+ /.test(l) && !/ into /.test(l)).length, expectAdopted, adopted.stdout);
  assert.match(adopted.out.at(-1), new RegExp(`^Adopted ${expectAdopted} migrations? from ${tool} into public\\.schema_migrations, 0 pending; nothing was run`));
  assertNoSecret(assert, adopted, db.password);
  assert.equal(await runs(db), countBefore, 'adopt ran a migration');

  const status = await tidemark(['status', '--exit-code', ...url], { cwd });
  assert.equal(status.code, 0, status.all);
  assert.equal(status.out.at(-1), `${expectAdopted} applied, 0 pending`);

  const again = await tidemark(['adopt', ...url], { cwd });
  assert.equal(again.code, 0, again.all);
  assert.match(again.out.at(-1), new RegExp(`^Nothing to adopt: ${expectAdopted} already recorded, 0 pending`));

  writeFiles(cwd, { [path.join(dir, newFile)]: newSql, ...extraFiles });
  const deployed = await tidemark(['deploy', ...url], { cwd });
  assert.equal(deployed.code, 0, deployed.all);
  assert.match(deployed.out.at(-1), /^1 migration applied, 0 pending/);
  return adopted;
}

test('node-pg-migrate: its own history is adopted, .js migrations included; deploy then runs only the new migration', peer, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    'migrations/1700000000000_create-runs.sql': `-- Up Migration\nCREATE TABLE runs (v text);\n${counted('1')}\n-- Down Migration\nDROP TABLE runs;\n`,
    // A JavaScript migration: history once applied, never run by tidemark.
    'migrations/1700000000001_second.js': `exports.up = (pgm) => {\n  pgm.sql("INSERT INTO runs VALUES ('2')");\n};\n`,
  });
  const npm = await run(process.execPath, [path.join(PEERS, 'node_modules', 'node-pg-migrate', 'bin', 'node-pg-migrate.js'), 'up', '--migrations-dir', 'migrations'], {
    cwd,
    env: { DATABASE_URL: db.url },
  });
  assert.equal(npm.code, 0, npm.stdout + npm.stderr);
  assert.equal(await db.query('SELECT count(*) FROM pgmigrations'), '2');
  assert.equal(await runs(db), '1,2');
  const adopted = await switchOver(t, {
    db,
    cwd,
    tool: 'node-pg-migrate',
    countBefore: '1,2',
    newFile: '1700000000002_third.sql',
    newSql: `-- Up Migration\n${counted('3')}`,
  });
  assert.match(adopted.stdout, /^Found node-pg-migrate's history in pgmigrations: 2 entries, matched by file name$/m);
  assert.match(adopted.stdout, /^Adopted 1700000000000 create-runs \(applied \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)$/m);
  assert.equal(await runs(db), '1,2,3');
  // Who and what: the role, and where the rows came from. The peer's table is left alone.
  assert.equal(
    await db.query("SELECT string_agg(applied_by, ',' ORDER BY version) FROM schema_migrations WHERE version < '1700000000002'"),
    'postgres (adopted from node-pg-migrate),postgres (adopted from node-pg-migrate)',
  );
  assert.equal(
    await db.query("SELECT count(*) FROM schema_migrations s JOIN pgmigrations p ON p.name = s.version || '_' || s.name AND p.run_on::timestamptz = s.applied_at"),
    '2',
    'applied_at comes from run_on',
  );
  assert.equal(await db.query('SELECT count(*) FROM pgmigrations'), '2');

  // A .js migration the tool never applied cannot run here: named, nothing runs.
  writeFiles(cwd, { 'migrations/1700000000003_later.js': 'exports.up = () => {};\n' });
  const pending = await tidemark(['deploy', '--url', db.url], { cwd });
  assert.equal(pending.code, 3, pending.all);
  assert.match(pending.stderr, /1700000000003_later\.js/);
  assert.equal(await runs(db), '1,2,3');
});

test('postgres-migrations: its migrations table is adopted by id, its SHA-1 checked (a file renamed from <id>-<name>.sql included); deploy then runs only the new file', peer, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    'migrations/1_create-runs.sql': `CREATE TABLE runs (v text);\n${counted('1')}`,
    'migrations/2-second.sql': counted('2'),
  });
  // postgres-migrations' own migrate(), over a pg client (both from tests/peers).
  const script =
    `const pg = require(${JSON.stringify(peerRequire.resolve('pg'))});\n` +
    `const { migrate } = require(${JSON.stringify(peerRequire.resolve('postgres-migrations'))});\n` +
    'const client = new pg.Client({ connectionString: process.env.DATABASE_URL });\n' +
    "client.connect().then(() => migrate({ client }, 'migrations')).then(() => client.end(), (e) => { console.error(e); process.exit(1); });\n";
  const applied = await run(process.execPath, ['-e', script], { cwd, env: { DATABASE_URL: db.url } });
  assert.equal(applied.code, 0, applied.stdout + applied.stderr);
  assert.equal(await db.query("SELECT string_agg(id || ' ' || name, ',' ORDER BY id) FROM migrations"), '0 create-migrations-table,1 create-runs,2 second');
  assert.equal(await runs(db), '1,2');

  // tidemark reads <version>_<name>.sql: the dash form gets its rename.
  const dash = await tidemark(['deploy', '--url', db.url], { cwd });
  assert.equal(dash.code, 3, dash.all);
  assert.match(dash.stderr, /2-second\.sql is not named <version>_<name>\.sql.*postgres-migrations migration \(<id>-<name>\.sql\).*rename it to 2_second\.sql/);
  fs.renameSync(path.join(cwd, 'migrations/2-second.sql'), path.join(cwd, 'migrations/2_second.sql'));

  const adopted = await switchOver(t, {
    db,
    cwd,
    tool: 'postgres-migrations',
    countBefore: '1,2',
    newFile: '3_third.sql',
    newSql: counted('3'),
  });
  assert.match(adopted.stdout, /^Found postgres-migrations's history in migrations: 2 entries, matched by the file's number \(its id\)$/m);
  assert.equal(await runs(db), '1,2,3');
  assert.equal(
    await db.query('SELECT count(*) FROM schema_migrations s JOIN migrations m ON m.id::text = s.version AND m.executed_at::timestamptz = s.applied_at'),
    '2',
    'applied_at comes from executed_at',
  );
  // A JavaScript migration of that tool it never applied cannot run here: named as its, nothing runs.
  writeFiles(cwd, { 'migrations/4_later.js': 'module.exports.generateSql = () => "INSERT INTO runs VALUES (\'4\')";\n' });
  const pending = await tidemark(['deploy', '--url', db.url], { cwd });
  assert.equal(pending.code, 3, pending.all);
  assert.match(pending.stderr, /4_later\.js is a postgres-migrations JavaScript migration \(it exports generateSql\)/);
  assert.equal(await runs(db), '1,2,3');

  // An applied file edited since: adopt records postgres-migrations' checksum and says so (exit 1).
  const db2 = await database(t);
  const edited = await run(process.execPath, ['-e', script], { cwd: project(t, { 'migrations/1_a.sql': 'SELECT 1;\n' }), env: { DATABASE_URL: db2.url } });
  assert.equal(edited.code, 0, edited.stderr);
  const cwd2 = project(t, { 'migrations/1_a.sql': 'SELECT 2;\n' });
  const changed = await tidemark(['adopt', '--url', db2.url], { cwd: cwd2 });
  assert.equal(changed.code, 1, changed.all);
  assert.match(changed.stdout, /1_a\.sql/);
});

test('knex: its knex_migrations is adopted by file name, .js migrations included; deploy then runs only the new SQL', peer, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    'migrations/20240101120000_create_runs.js': `exports.up = (knex) => knex.raw("CREATE TABLE runs (v text); ${counted('1').trim()}");\nexports.down = (knex) => knex.raw('DROP TABLE runs');\n`,
    'migrations/20240101120001_second.js': `exports.up = (knex) => knex.raw("${counted('2').trim()}");\nexports.down = () => {};\n`,
  });
  // knex's own CLI, with no knexfile: the client and URL as flags, knex itself from tests/peers (KNEX_PATH).
  const knexDir = path.join(PEERS, 'node_modules', 'knex');
  const knex = await run(process.execPath, [path.join(knexDir, 'bin', 'cli.js'), 'migrate:latest', '--client', 'pg', '--connection', db.url, '--migrations-directory', 'migrations'], {
    cwd,
    env: { KNEX_PATH: knexDir },
  });
  assert.equal(knex.code, 0, knex.stdout + knex.stderr);
  assert.equal(await db.query('SELECT count(*) FROM knex_migrations'), '2');
  const adopted = await switchOver(t, {
    db,
    cwd,
    tool: 'knex',
    countBefore: '1,2',
    newFile: '20240101120002_third.sql',
    newSql: counted('3'),
  });
  assert.match(adopted.stdout, /^Found knex's history in knex_migrations: 2 entries, matched by file name$/m);
  assert.match(adopted.stdout, /^Adopted 20240101120001 second \(applied \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)$/m);
  assert.equal(await runs(db), '1,2,3');
  assert.equal(
    await db.query("SELECT count(*) FROM schema_migrations s JOIN knex_migrations k ON k.name = s.version || '_' || s.name || '.js' AND k.migration_time = s.applied_at"),
    '2',
    'applied_at comes from migration_time',
  );
  // A knex script it never applied cannot run here: named as knex's, nothing runs.
  writeFiles(cwd, { 'migrations/20240101120009_later.js': 'exports.up = (knex) => knex.raw("select 1");\n' });
  const pending = await tidemark(['deploy', '--url', db.url], { cwd });
  assert.equal(pending.code, 3, pending.all);
  assert.match(pending.stderr, /20240101120009_later\.js is a knex migration/);
  assert.equal(await runs(db), '1,2,3');
});

test('dbmate: its schema_migrations becomes tidemark\'s in place, rows kept', peer, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    'db/migrations/20240101000000_create_runs.sql': `-- migrate:up\nCREATE TABLE runs (v text);\n${counted('1')}\n-- migrate:down\nDROP TABLE runs;\n`,
    'db/migrations/20240102000000_second.sql': `-- migrate:up\n${counted('2')}\n-- migrate:down\n`,
  });
  const dbmate = await run(
    process.execPath,
    [peerRequire.resolve('dbmate/dist/cli.js'), '--url', `${db.url}?sslmode=disable`, '--migrations-dir', 'db/migrations', '--no-dump-schema', 'migrate'],
    { cwd },
  );
  assert.equal(dbmate.code, 0, dbmate.stdout + dbmate.stderr);
  assert.equal(await db.query("SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations"), '20240101000000,20240102000000');
  const adopted = await switchOver(t, {
    db,
    cwd,
    tool: 'dbmate',
    dir: 'db/migrations',
    countBefore: '1,2',
    trackingBefore: async () =>
      (await db.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'schema_migrations'")) === '1' ? 'unchanged' : 'written',
    newFile: '20240103000000_third.sql',
    newSql: `-- migrate:up\n${counted('3')}\n-- migrate:down\n`,
  });
  assert.match(adopted.stdout, /^Converted schema_migrations in place into tidemark's table, keeping dbmate's rows$/m);
  assert.equal(await runs(db), '1,2,3');
  assert.equal(await tracked(db), '20240101000000:completed,20240102000000:completed,20240103000000:completed');
  assert.equal(
    await db.query("SELECT count(*) FROM schema_migrations WHERE checksum IS NOT NULL AND applied_by LIKE '%(adopted from dbmate)'"),
    '2',
  );
});

/** drizzle-kit v0's layout: flat NNNN_name.sql files and meta/_journal.json. */
function drizzleFolder(entries) {
  const files = {};
  const journal = { version: '7', dialect: 'postgresql', entries: [] };
  entries.forEach(([tag, sql], idx) => {
    files[`drizzle/${tag}.sql`] = sql;
    journal.entries.push({ idx, version: '7', when: 1717000000000 + idx * 1000, tag, breakpoints: true });
  });
  files['drizzle/meta/_journal.json'] = journal;
  return files;
}

/** Runs drizzle-orm's node-postgres migrator on `cwd/drizzle`, as an app does at deploy time. */
async function drizzleMigrate(db, cwd) {
  const pg = peerRequire('pg');
  const { drizzle } = peerRequire('drizzle-orm/node-postgres');
  const { migrate } = peerRequire('drizzle-orm/node-postgres/migrator');
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await migrate(drizzle(client), { migrationsFolder: path.join(cwd, 'drizzle') });
  } finally {
    await client.end();
  }
}

test('drizzle: a file edited after the migrator ran it is found by the journal\'s when and adopted as changed', peer, async (t) => {
  const db = await database(t);
  const cwd = project(t, drizzleFolder([['0000_create_runs', `CREATE TABLE runs (v text);\n${counted('1')}`], ['0001_second', counted('2')]]));
  await drizzleMigrate(db, cwd);
  fs.appendFileSync(path.join(cwd, 'drizzle', '0001_second.sql'), '-- edited after it ran\n');
  const r = await tidemark(['adopt', '--url', db.url, '--dir', 'drizzle', '--json'], { cwd });
  assert.equal(r.code, 1, r.all);
  const { report } = ndjson(r.stdout).find((e) => e.event === 'done');
  assert.deepEqual(
    report.adopted.map((a) => [a.version, a.state]),
    [['0000', 'matched'], ['0001', 'changed']],
  );
  assert.equal(report.matchesFiles, false);
  const status = await tidemark(['status', '--exit-code', '--url', db.url, '--dir', 'drizzle'], { cwd });
  assert.equal(status.code, 1, status.all);
  assert.match(status.stdout, /^0001\s+second\s+applied .* changed$/m);
});

test('drizzle: its migrator\'s history is matched by SHA-256', peer, async (t) => {
  const db = await database(t);
  const first = [
    ['0000_create_runs', `CREATE TABLE runs (v text);\n--> statement-breakpoint\n${counted('1')}`],
    ['0001_second', counted('2')],
  ];
  const cwd = project(t, drizzleFolder(first));
  await drizzleMigrate(db, cwd);
  assert.equal(await db.query('SELECT count(*) FROM drizzle.__drizzle_migrations'), '2');
  const next = drizzleFolder([...first, ['0002_third', counted('3')]]);
  const adopted = await switchOver(t, {
    db,
    cwd,
    tool: 'drizzle',
    dir: 'drizzle',
    countBefore: '1,2',
    newFile: '0002_third.sql',
    newSql: next['drizzle/0002_third.sql'],
    extraFiles: { 'drizzle/meta/_journal.json': next['drizzle/meta/_journal.json'] },
  });
  assert.match(adopted.stdout, /^Found drizzle's history in drizzle\.__drizzle_migrations: 2 entries, matched by the SHA-256/m);
  assert.equal(await runs(db), '1,2,3');
  assert.equal(await db.query('SELECT count(*) FROM drizzle.__drizzle_migrations'), '2', 'the peer\'s table is left alone');
});

// sqlx writes this table and these rows (launchbadge/sqlx, sqlx-postgres
// src/migrate.rs: ensure_migrations_table and apply): version bigint, the
// description (the file name's words), success, the SHA-384 of the file's
// SQL as bytea (sqlx-core src/migrate/migration.rs), execution time in ns.
const SQLX_TABLE = `CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);`;
const sqlxRow = (version, description, sql, success = true) =>
  `INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (${version}, '${description}', ${success}, '\\x${sha('sha384', sql)}', 1234567);`;

const SQLX_FILES = {
  'migrations/20240101000000_create_runs.sql': `CREATE TABLE runs (v text);\n${counted('1')}`,
  'migrations/20240102000000_second.sql': counted('2'),
};

async function sqlxDatabase(t, { success = true } = {}) {
  const db = await database(t);
  await db.query(
    `${SQLX_TABLE}\n${Object.values(SQLX_FILES).join('')}\n` +
      `${sqlxRow('20240101000000', 'create runs', SQLX_FILES['migrations/20240101000000_create_runs.sql'])}\n` +
      `${sqlxRow('20240102000000', 'second', SQLX_FILES['migrations/20240102000000_second.sql'], success)}`,
  );
  return db;
}

test('sqlx: rows as sqlx writes them are adopted by version, checked with its SHA-384', engine, async (t) => {
  const db = await sqlxDatabase(t);
  const cwd = project(t, SQLX_FILES);
  await switchOver(t, {
    db,
    cwd,
    tool: 'sqlx',
    countBefore: '1,2',
    newFile: '20240103000000_third.sql',
    newSql: counted('3'),
  });
  assert.equal(await runs(db), '1,2,3');
  // execution_time is in nanoseconds; tidemark keeps milliseconds.
  assert.equal(await db.query("SELECT duration_ms FROM schema_migrations WHERE version = '20240101000000'"), '1');
});

test('sqlx: a file that differs from the checksum sqlx recorded is reported and recorded as changed', engine, async (t) => {
  const db = await sqlxDatabase(t);
  const cwd = project(t, { ...SQLX_FILES, 'migrations/20240102000000_second.sql': `${counted('2')}-- edited after it ran\n` });
  const r = await tidemark(['adopt', '--url', db.url], { cwd });
  assert.equal(r.code, 1, r.all);
  assert.match(
    r.stdout,
    /^Adopted changed 20240102000000 second: migrations\/20240102000000_second\.sql differs from what sqlx applied; status shows it as changed$/m,
  );
  const status = await tidemark(['status', '--exit-code', '--url', db.url], { cwd });
  assert.equal(status.code, 1, status.all);
  assert.match(status.stdout, /20240102000000\s+second\s+applied .* changed/);
  const deploy = await tidemark(['deploy', '--url', db.url], { cwd });
  assert.equal(deploy.code, 2, deploy.all);
  assert.match(deploy.stderr, /20240102000000_second\.sql was applied on .* but has changed since/);
  assert.equal(await runs(db), '1,2');
});

test('sqlx: an entry whose file is gone is reported and recorded as missing', engine, async (t) => {
  const db = await sqlxDatabase(t);
  const cwd = project(t, { 'migrations/20240101000000_create_runs.sql': SQLX_FILES['migrations/20240101000000_create_runs.sql'] });
  const r = await tidemark(['adopt', '--url', db.url], { cwd });
  assert.equal(r.code, 1, r.all);
  assert.match(r.stdout, /^Adopted missing 20240102000000 second: sqlx applied it but its file is not in migrations; status shows it as missing$/m);
  const status = await tidemark(['status', '--exit-code', '--url', db.url], { cwd });
  assert.equal(status.code, 1, status.all);
  assert.match(status.stdout, /^20240102000000\s+second\s+missing\b/m);
  const deploy = await tidemark(['deploy', '--url', db.url], { cwd });
  assert.equal(deploy.code, 2, deploy.all);
  assert.match(deploy.stderr, /20240102000000_second was applied on .* but its file is not in the migrations folder/);
});

test('sqlx: an unsuccessful row stops adoption with what to resolve', engine, async (t) => {
  const db = await sqlxDatabase(t, { success: false });
  const cwd = project(t, SQLX_FILES);
  const r = await tidemark(['adopt', '--url', db.url, '--json'], { cwd });
  assert.equal(r.code, 2, r.all);
  const error = ndjson(r.stdout).find((e) => e.event === 'error');
  assert.equal(error.code, 'E_PEER_FAILED');
  assert.match(error.message, /^sqlx recorded migration 20240102000000 \(second\) as failed \(success = false in _sqlx_migrations\)/);
  assert.equal(await db.query("SELECT to_regclass('schema_migrations') IS NULL"), 't', 'nothing was written');
});

// golang-migrate keeps one row, the latest version and whether it is dirty
// (golang-migrate/migrate database/postgres/postgres.go: ensureVersionTable,
// SetVersion: version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL).
const GOLANG_FILES = {
  'migrations/000001_create_runs.up.sql': `CREATE TABLE runs (v text);\n${counted('1')}`,
  'migrations/000001_create_runs.down.sql': 'DROP TABLE runs;\n',
  'migrations/000002_second.up.sql': counted('2'),
  'migrations/000002_second.down.sql': "DELETE FROM runs WHERE v = '2';\n",
};
async function golangDatabase(t, dirty) {
  const db = await database(t);
  await db.query(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);\n' +
      `${GOLANG_FILES['migrations/000001_create_runs.up.sql']}${GOLANG_FILES['migrations/000002_second.up.sql']}` +
      `INSERT INTO schema_migrations (version, dirty) VALUES (2, ${dirty});`,
  );
  return db;
}

test('golang-migrate: every file up to its version counts; its table is converted in place', engine, async (t) => {
  const db = await golangDatabase(t, false);
  const cwd = project(t, GOLANG_FILES);
  const adopted = await switchOver(t, {
    db,
    cwd,
    tool: 'golang-migrate',
    countBefore: '1,2',
    trackingBefore: async () => ((await db.query('SELECT version::text || dirty::text FROM schema_migrations')) === '2false' ? 'unchanged' : 'written'),
    newFile: '000003_third.up.sql',
    newSql: counted('3'),
  });
  assert.match(adopted.stdout, /^Found golang-migrate's history in schema_migrations: 1 entry, matched every file up to the recorded version$/m);
  assert.match(adopted.stdout, /^Converted schema_migrations in place/m);
  assert.equal(await runs(db), '1,2,3');
  assert.equal(await tracked(db), '000001:completed,000002:completed,000003:completed');
});

test('golang-migrate: a dirty version stops adoption', engine, async (t) => {
  const db = await golangDatabase(t, true);
  const cwd = project(t, GOLANG_FILES);
  const r = await tidemark(['adopt', '--url', db.url], { cwd });
  assert.equal(r.code, 2, r.all);
  assert.match(r.stderr, /^error: golang-migrate left version 2 dirty .*migrate force 2/);
  assert.equal(await db.query('SELECT version::text || dirty::text FROM schema_migrations'), '2true', 'its table is untouched');
});

// Prisma Migrate's table (prisma/prisma-engines, schema-engine's postgres
// connector: create_migrations_table): a row per attempt, finished_at NULL
// while it runs or after it failed, rolled_back_at set by `migrate resolve`.
const PRISMA_TABLE = `CREATE TABLE "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL,
    "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
);`;

const PRISMA_FILES = {
  'prisma/migrations/migration_lock.toml': 'provider = "postgresql"\n',
  'prisma/migrations/20240101000000_init/migration.sql': `-- CreateTable\nCREATE TABLE runs (v text);\n${counted('1')}`,
  'prisma/migrations/20240102000000_second/migration.sql': counted('2'),
};
const prismaRow = (id, name, { finished = true, rolledBack = false } = {}) =>
  `INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, rolled_back_at, started_at, applied_steps_count) VALUES ` +
  `('${id}', '${sha('sha256', PRISMA_FILES[`prisma/migrations/${name}/migration.sql`])}', ${finished ? "now() + interval '5 ms'" : 'NULL'}, '${name}', ` +
  `${rolledBack ? 'now()' : 'NULL'}, now(), ${finished ? 1 : 0});\n`;

test('prisma: rows as Prisma writes them are adopted by folder name; a new folder is the only one deploy runs', engine, async (t) => {
  const db = await database(t);
  await db.query(
    `${PRISMA_TABLE}\n${PRISMA_FILES['prisma/migrations/20240101000000_init/migration.sql']}${counted('2')}` +
      // A failed attempt that `prisma migrate resolve --rolled-back` closed, then the run that finished.
      prismaRow('0a', '20240101000000_init', { finished: false, rolledBack: true }) +
      prismaRow('1b', '20240101000000_init') +
      prismaRow('2c', '20240102000000_second'),
  );
  const cwd = project(t, PRISMA_FILES);
  const adopted = await switchOver(t, {
    db,
    cwd,
    tool: 'prisma',
    dir: 'prisma/migrations',
    countBefore: '1,2',
    newFile: '20240103000000_third/migration.sql',
    newSql: counted('3'),
  });
  assert.match(adopted.stdout, /^Found prisma's history in _prisma_migrations: 2 entries, matched by folder name$/m);
  assert.equal(await runs(db), '1,2,3');
  // finished_at - started_at is the duration; finished_at the applied time.
  assert.equal(await db.query("SELECT duration_ms FROM schema_migrations WHERE version = '20240102000000'"), '5');
});

test('prisma: deploy refuses its database; a failed migration stops adoption', engine, async (t) => {
  const db = await database(t);
  const sql = PRISMA_FILES['prisma/migrations/20240101000000_init/migration.sql'];
  await db.query(
    `${PRISMA_TABLE}\n${sql}` +
      prismaRow('a1', '20240101000000_init') +
      `INSERT INTO _prisma_migrations (id, checksum, migration_name, logs) VALUES ('b2', '${sha('sha256', 'x')}', '20240102000000_broken', 'error');`,
  );
  const cwd = project(t, { 'prisma/migrations/20240101000000_init/migration.sql': sql });
  const deploy = await tidemark(['deploy', '--url', db.url, '--dir', 'prisma/migrations'], { cwd });
  assert.equal(deploy.code, 3, deploy.all);
  assert.match(deploy.stderr, /applied by prisma \(_prisma_migrations\).*run `tidemark adopt`/);
  const adopt = await tidemark(['adopt', '--url', db.url, '--dir', 'prisma/migrations'], { cwd });
  assert.equal(adopt.code, 2, adopt.all);
  assert.match(adopt.stderr, /Prisma recorded migration 20240102000000_broken as started but not finished \(finished_at is NULL\).*prisma migrate resolve/);
  assert.equal(await db.query("SELECT to_regclass('schema_migrations') IS NULL"), 't');
});

// diesel's table (diesel-rs/diesel, diesel_migrations: setup_database /
// CREATE_MIGRATIONS_TABLE): version VARCHAR(50) (the folder's timestamp without
// dashes), run_on TIMESTAMP.
const DIESEL_FILES = {
  'migrations/00000000000000_diesel_initial_setup/up.sql': `CREATE TABLE runs (v text);\n${counted('0')}`,
  'migrations/00000000000000_diesel_initial_setup/down.sql': 'DROP TABLE runs;\n',
  'migrations/2024-01-01-000000_second/up.sql': counted('1'),
  'migrations/2024-01-01-000000_second/down.sql': "DELETE FROM runs WHERE v = '1';\n",
};

test('diesel: rows as diesel writes them are adopted by version; a new folder is the only one deploy runs', engine, async (t) => {
  const db = await database(t);
  await db.query(
    'CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);\n' +
      `${DIESEL_FILES['migrations/00000000000000_diesel_initial_setup/up.sql']}${counted('1')}` +
      "INSERT INTO __diesel_schema_migrations (version) VALUES ('00000000000000'), ('20240101000000');",
  );
  const cwd = project(t, DIESEL_FILES);
  await switchOver(t, {
    db,
    cwd,
    tool: 'diesel',
    countBefore: '0,1',
    newFile: '2024-01-02-000000_third/up.sql',
    newSql: counted('2'),
    extraFiles: { 'migrations/2024-01-02-000000_third/down.sql': "DELETE FROM runs WHERE v = '2';\n" },
  });
  assert.equal(await runs(db), '0,1,2');
  assert.equal(await tracked(db), '00000000000000:completed,20240101000000:completed,20240102000000:completed');
});

test('diesel: deploy refuses its database and names adopt', engine, async (t) => {
  const db = await database(t);
  await db.query(
    'CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);\n' +
      "INSERT INTO __diesel_schema_migrations (version) VALUES ('00000000000000'), ('20240101000000');",
  );
  const cwd = project(t, { 'migrations/20240101000000_create_posts.sql': 'CREATE TABLE posts (id int);\n' });
  const status = await tidemark(['status', '--url', db.url], { cwd });
  assert.equal(status.code, 3, status.all);
  assert.match(status.stderr, /^error: this database's migrations were applied by diesel \(__diesel_schema_migrations\)/);
  assert.equal(await db.query("SELECT to_regclass('posts') IS NULL"), 't');
});

test('tools tidemark does not adopt (Flyway, Sequelize, TypeORM): deploy, migrate and status refuse their database and point at baseline', engine, async (t) => {
  const cases = [
    // Flyway's table (flyway/flyway, the PostgreSQL create table script of its schema history).
    [
      'Flyway',
      'flyway_schema_history',
      'CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50), description varchar(200) NOT NULL, ' +
        'type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum int, installed_by varchar(100) NOT NULL, ' +
        'installed_on timestamp NOT NULL DEFAULT now(), execution_time int NOT NULL, success boolean NOT NULL);\n' +
        "INSERT INTO flyway_schema_history VALUES (1, '1', 'create posts', 'SQL', 'V1__create_posts.sql', 12345, 'postgres', now(), 5, true);",
    ],
    // Sequelize's (sequelize/umzug SequelizeStorage: "SequelizeMeta", name varchar(255) primary key).
    ['Sequelize', '"SequelizeMeta"', 'CREATE TABLE "SequelizeMeta" (name varchar(255) PRIMARY KEY);\n' + "INSERT INTO \"SequelizeMeta\" VALUES ('20240101000000-create-posts.js');"],
    // TypeORM's (typeorm MigrationExecutor: migrations (id serial, timestamp bigint, name varchar)).
    ['TypeORM', 'migrations', 'CREATE TABLE migrations (id serial PRIMARY KEY, "timestamp" bigint NOT NULL, name varchar NOT NULL);\n' + "INSERT INTO migrations (\"timestamp\", name) VALUES (1704067200000, 'CreatePosts1704067200000');"],
  ];
  for (const [tool, table, sql] of cases) {
    const db = await database(t);
    await db.query(sql);
    const cwd = project(t, { 'migrations/1_create_posts.sql': 'CREATE TABLE posts (id int);\n', 'migrations/2_add_title.sql': 'ALTER TABLE posts ADD title text;\n' });
    for (const command of ['deploy', 'migrate', 'status']) {
      const r = await tidemark([command, '--url', db.url], { cwd });
      assert.equal(r.code, 3, `${tool} ${command}: ${r.all}`);
      assert.match(
        r.stderr,
        new RegExp(`^error: this database's migrations were applied by ${tool} \\(${table.replace(/"/g, '"?')}\\) and tidemark has no history of its own .*tidemark does not read ${tool}'s history: .*tidemark baseline --to`),
      );
    }
    assert.equal(await db.query("SELECT to_regclass('posts') IS NULL"), 't', `${tool}: nothing ran`);
    const adopt = await tidemark(['adopt', '--url', db.url], { cwd });
    assert.equal(adopt.code, 3, adopt.all);
    assert.match(adopt.stderr, new RegExp(`^error: this database's history is kept by ${tool} \\(.*\\), which tidemark does not adopt .*tidemark baseline --to`));
    // The way on: what the tool applied is marked, the rest deploys.
    await db.query('CREATE TABLE posts (id int);');
    const baseline = await tidemark(['baseline', '--to', '1', '--url', db.url], { cwd });
    assert.equal(baseline.code, 0, baseline.all);
    const deploy = await tidemark(['deploy', '--url', db.url], { cwd });
    assert.equal(deploy.code, 0, deploy.all);
    assert.match(deploy.out.at(-1), /^1 migration applied, 0 pending/);
  }
});

test('two tools\' histories: adopt refuses to guess; --from chooses', engine, async (t) => {
  const db = await sqlxDatabase(t);
  // node-pg-migrate's table (salsita/node-pg-migrate src/migration.ts: id, name, run_on).
  await db.query(
    "CREATE TABLE pgmigrations (id SERIAL PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL);\n" +
      "INSERT INTO pgmigrations (name, run_on) VALUES ('20240101000000_create_runs', now());",
  );
  const cwd = project(t, SQLX_FILES);
  const guess = await tidemark(['adopt', '--url', db.url], { cwd });
  assert.equal(guess.code, 3, guess.all);
  assert.match(guess.stderr, /more than one tool \(node-pg-migrate in pgmigrations, sqlx in _sqlx_migrations\).*--from node-pg-migrate\|sqlx/);
  const deploy = await tidemark(['deploy', '--url', db.url], { cwd });
  assert.equal(deploy.code, 3, deploy.all);
  assert.match(deploy.stderr, /applied by node-pg-migrate \(pgmigrations\) and sqlx \(_sqlx_migrations\)/);
  const chosen = await tidemark(['adopt', '--from', 'sqlx', '--url', db.url], { cwd });
  assert.equal(chosen.code, 0, chosen.all);
  assert.match(chosen.out.at(-1), /^Adopted 2 migrations from sqlx/);
  const unknown = await tidemark(['adopt', '--from', 'flyway', '--url', db.url], { cwd });
  assert.equal(unknown.code, 3, unknown.all);
  assert.match(unknown.stderr, /unknown tool "flyway" to adopt from; the tools are node-pg-migrate, knex, drizzle, prisma, sqlx, dbmate, golang-migrate, diesel, postgres-migrations/);
});

test('adopt on a database without any tool\'s history points at baseline', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, SQLX_FILES);
  const r = await tidemark(['adopt', '--url', db.url], { cwd });
  assert.equal(r.code, 3, r.all);
  assert.match(r.stderr, /found no other tool's migration history .*tidemark baseline --to <version>/);
});

test('baseline --to marks a restored database; deploy runs only what follows', engine, async (t) => {
  const db = await database(t);
  const files = { ...SQLX_FILES, 'migrations/20240103000000_third.sql': counted('3') };
  await db.query(Object.values(SQLX_FILES).join(''));
  const cwd = project(t, files);
  const dry = await tidemark(['baseline', '--to', '20240102000000', '--dry-run', '--url', db.url], { cwd });
  assert.equal(dry.code, 0, dry.all);
  assert.match(dry.out.at(-1), /^Dry run: would mark 2 migrations as applied, 1 pending; nothing was written/);
  assert.equal(await db.query("SELECT to_regclass('schema_migrations') IS NULL"), 't');
  const r = await tidemark(['baseline', '--to', '20240102000000', '--url', db.url], { cwd });
  assert.equal(r.code, 0, r.all);
  assert.deepEqual(r.out.slice(1, 4), [
    'Marked 20240101000000 create_runs as applied',
    'Marked 20240102000000 second as applied',
    'Pending 20240103000000 third (migrations/20240103000000_third.sql): the next deploy applies it',
  ]);
  assert.match(r.out.at(-1), /^Marked 2 migrations as applied in public\.schema_migrations, 1 pending; nothing was run/);
  const again = await tidemark(['baseline', '--to', '20240102000000', '--url', db.url], { cwd });
  assert.match(again.out.at(-1), /^Nothing to mark: 2 already recorded, 1 pending/);
  const deploy = await tidemark(['deploy', '--url', db.url], { cwd });
  assert.equal(deploy.code, 0, deploy.all);
  assert.match(deploy.out.at(-1), /^1 migration applied, 0 pending/);
  assert.equal(await runs(db), '1,2,3');
  const unknown = await tidemark(['baseline', '--to', '7', '--url', db.url], { cwd });
  assert.equal(unknown.code, 2, unknown.all);
  assert.match(unknown.stderr, /there is no migration with version 7/);
});

test('the API: adopt({ dryRun }) and adopt() resolve with the report', engine, async (t) => {
  const db = await sqlxDatabase(t);
  const cwd = project(t, SQLX_FILES);
  const api = pkgRequire('./index.cjs');
  const dry = await api.adopt({ url: db.url, cwd, dryRun: true });
  assert.equal(dry.from, 'sqlx');
  assert.equal(dry.dryRun, true);
  assert.equal(dry.adopted.length, 2);
  assert.equal(await db.query("SELECT to_regclass('schema_migrations') IS NULL"), 't');
  const done = await api.adopt({ url: db.url, cwd, from: 'sqlx' });
  assert.equal(done.matchesFiles, true);
  assert.deepEqual(done.adopted.map((a) => a.appliedAt !== undefined), [true, true]);
  const again = await api.adopt({ url: db.url, cwd });
  assert.equal(again.alreadyRecorded, 2);
  assert.equal(again.adopted.length, 0);
});
