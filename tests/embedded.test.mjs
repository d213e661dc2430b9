// The embedded database (PGlite under .tidemark/pglite) that the CLI uses
// when no database URL is set, outside production and CI, and `tidemark db
// serve`. Real parts: the CLI in child processes, PGlite from node_modules,
// psql. Runs through the backend TIDEMARK_BACKEND names, like the rest.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tidemark, project, ndjson, engine, BASIC, CLI, cleanEnv, pkgRequire, REPO } from './helpers.mjs';

const DEV_SEEDS = {
  'seeds/development/001_users.sql':
    "INSERT INTO users VALUES (1, 'ada@example.com'), (2, 'grace@example.com') ON CONFLICT (id) DO NOTHING;\n",
  'seeds/development/002_goals.sql': "INSERT INTO goals (id, user_id, title) VALUES (1, 1, 'Ship') ON CONFLICT DO NOTHING;\n",
};

// Never CI, never production, no URL: the embedded database's conditions,
// whatever the environment of this test run (CI sets CI=true).
const DEV = { CI: undefined, NODE_ENV: undefined, VERCEL_ENV: undefined };

function pgliteEntry() {
  try {
    return pkgRequire.resolve('@electric-sql/pglite', { paths: [REPO] });
  } catch {
    return undefined;
  }
}
const PGLITE = pgliteEntry();
const needs = PGLITE ? engine : { skip: '@electric-sql/pglite is not installed (npm install at the repository root)' };

/** Opens the embedded database in this process (as a check, between CLI runs) and runs `sql`. */
async function peek(dir, sql) {
  const { PGlite } = pkgRequire(PGLITE);
  const db = new PGlite(dir);
  try {
    const r = await db.query(sql);
    return r.rows;
  } finally {
    await db.close();
  }
}

function psql(port, sql) {
  return new Promise((resolve, reject) => {
    execFile(
      'psql',
      ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-X', '-v', 'ON_ERROR_STOP=1', '-Atc', sql],
      { encoding: 'utf8', env: cleanEnv(), timeout: 30_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`psql: ${stderr || error.message}`)) : resolve(stdout.trim())),
    );
  });
}

/** Starts `tidemark db serve --port 0` and resolves once it prints its URL. */
function serve(cwd, args = []) {
  const child = spawn(process.execPath, [CLI, 'db', 'serve', '--port', '0', ...args], { cwd, env: cleanEnv(DEV) });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s) => {
    stdout += s;
  });
  child.stderr.setEncoding('utf8').on('data', (s) => {
    stderr += s;
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`db serve did not start:\n${stdout}${stderr}`)), 60_000);
    const check = () => {
      const m = /DATABASE_URL=(postgres:\/\/\S+:(\d+)\/\S+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], port: Number(m[2]) });
      }
    };
    child.stdout.on('data', check);
    exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`db serve exited:\n${stdout}${stderr}`));
    });
  });
  return { child, ready, exited, output: () => stdout + stderr };
}

const USING = 'Using the embedded database (.tidemark/pglite): no database URL is set';

test('no URL, not CI, not production: migrate, status, seed, down and reset run on PGlite in .tidemark/pglite, across processes', needs, async (t) => {
  const cwd = project(t, { ...BASIC, ...DEV_SEEDS });
  const dir = path.join(cwd, '.tidemark', 'pglite');
  const run = (args) => tidemark(args, { cwd, env: DEV });

  const m = await run(['migrate']);
  assert.equal(m.code, 0, m.all);
  assert.equal(m.stderr, '');
  assert.equal(m.out[0], USING);
  assert.match(m.out[1], /^Created the embedded database in \.tidemark\/pglite \(PGlite \d+\.\d+\.\d+\)$/);
  assert.equal(m.out[2], 'Created tracking table public.schema_migrations');
  assert.match(m.stdout, /^Applied 001 initial_schema \(\d+ ms\)$/m);
  assert.match(m.stdout, /^Applied 003 add_goal_title \(\d+ ms\)$/m);
  assert.match(m.out.at(-1), /^3 migrations applied, 0 pending \(\d+ ms\)$/);
  assert.ok(fs.existsSync(path.join(dir, 'PG_VERSION')), 'the data lives in .tidemark/pglite');
  assert.equal(fs.readFileSync(path.join(cwd, '.tidemark/.gitignore'), 'utf8').split('\n').at(-2), '*', '.tidemark/ keeps itself out of git');
  assert.ok(!fs.existsSync(`${dir}.lock`), 'the lock file is gone after the run');

  // Another process sees what the first one applied: the data is on disk.
  const s = await run(['status']);
  assert.equal(s.code, 0, s.all);
  assert.equal(s.out[0], USING);
  assert.ok(!s.stdout.includes('Created the embedded database'), s.stdout);
  assert.equal(s.out.at(-1), '3 applied, 0 pending');

  const again = await run(['migrate', '--json']);
  assert.equal(again.code, 0, again.all);
  const records = ndjson(again.stdout);
  assert.deepEqual(records[0], { event: 'connecting', source: 'embedded', dir: '.tidemark/pglite', reason: 'no database URL is set' });
  assert.equal(records.at(-1).event, 'done');
  assert.deepEqual(records.at(-1).report.applied, []);

  const seeded = await run(['seed']);
  assert.equal(seeded.code, 0, seeded.all);
  assert.equal(seeded.out[0], USING);
  assert.equal(seeded.out.at(-1), '2 seeds ran, 0 skipped (development)');
  // Re-opened from the files: the rows are there.
  assert.deepEqual(await peek(dir, 'SELECT id, email FROM users ORDER BY id'), [
    { id: 1, email: 'ada@example.com' },
    { id: 2, email: 'grace@example.com' },
  ]);

  const down = await run(['down']);
  assert.equal(down.code, 0, down.all);
  assert.match(down.stdout, /^Reverted 003 add_goal_title \(\d+ ms\)$/m);
  assert.equal(down.out.at(-1), '1 migration reverted');
  const after = await run(['status', '--exit-code']);
  assert.equal(after.code, 1, after.all);
  assert.equal(after.out.at(-1), '2 applied, 1 pending');

  // The engine's error path on PGlite: a run-time error in the second of two
  // pending migrations keeps the first, records the failure, names file and line.
  fs.writeFileSync(path.join(cwd, 'migrations/004_bad.sql'), 'CREATE TABLE ok4 (id int);\nSELECT * FROM nowhere;\n');
  const bad = await run(['migrate']);
  assert.equal(bad.code, 2, bad.all);
  assert.match(bad.stdout, /^Applied 003 add_goal_title/m);
  assert.match(bad.stderr, /^error: .*nowhere/m);
  assert.match(bad.stderr, /--> migrations\/004_bad\.sql:2:15$/m);
  const failed = await run(['status']);
  assert.match(failed.stdout, /^004\s+bad\s+failed/m);
  fs.rmSync(path.join(cwd, 'migrations/004_bad.sql'));

  // reset on the embedded database deletes it and starts afresh.
  const reset = await run(['reset']);
  assert.equal(reset.code, 0, reset.all);
  assert.deepEqual(reset.out.slice(0, 3), [
    USING,
    'Deleted the embedded database .tidemark/pglite: reset starts it afresh',
    reset.out[2],
  ]);
  assert.match(reset.out[2], /^Created the embedded database in \.tidemark\/pglite/);
  assert.equal(reset.out.at(-1), 'Reset: 3 migrations applied, 2 seeds ran, 0 skipped (development)');
  const rows = await peek(dir, "SELECT (SELECT count(*)::int FROM users) AS users, (SELECT string_agg(version || ':' || status, ',' ORDER BY version) FROM schema_migrations) AS applied");
  assert.deepEqual(rows, [{ users: 2, applied: '001:completed,002:completed,003:completed' }]);

  // The API uses the embedded database only when asked to.
  const api = pkgRequire('./index.cjs');
  await assert.rejects(api.status({ cwd, environment: {} }), { code: 'E_NO_DATABASE_URL' });
  const events = [];
  const report = await api.status({ cwd, environment: { TIDEMARK_BACKEND: process.env.TIDEMARK_BACKEND ?? '' }, embedded: true, onEvent: (e) => events.push(e) });
  assert.equal(report.applied, 3);
  assert.equal(events[0].source, 'embedded');
});

test('a script seed on the embedded database: exit 3 naming it, the seeds before it committed, nothing recorded for it', needs, async (t) => {
  const cwd = project(t, {
    ...BASIC,
    'seeds/development/001_users.sql': "INSERT INTO users VALUES (1, 'dev@example.com');\n",
    'seeds/development/002_script.mjs': "console.log('never runs');\n",
  });
  const run = (args) => tidemark(args, { cwd, env: DEV });
  assert.equal((await run(['migrate'])).code, 0);
  const r = await run(['seed']);
  assert.equal(r.code, 3, r.all);
  assert.match(r.out[1], /^Seeded 001_users \(\d+ ms\)$/);
  assert.equal(
    r.err[0],
    'error: seeds/development/002_script.mjs is a script seed, which runs as its own process with DATABASE_URL, and the embedded database ' +
      'has no URL it can connect to; run tidemark db serve and point --url at it, or use a database server',
  );
  const s = await run(['seed', '--json']);
  assert.equal(s.code, 3, s.all);
  const records = ndjson(s.stdout);
  assert.deepEqual(records.filter((e) => e.event === 'seedSkipped').map((e) => e.file), ['001_users.sql'], 'only 001 was recorded');
  assert.equal(records.at(-1).code, 'E_CONFIG');
});

test('--embedded-dir / TIDEMARK_EMBEDDED_DIR choose the folder; two runs at once take turns on its lock', needs, async (t) => {
  const cwd = project(t, BASIC);
  const env = { ...DEV, TIDEMARK_EMBEDDED_DIR: 'var/db' };
  const [a, b] = await Promise.all([tidemark(['migrate'], { cwd, env }), tidemark(['migrate'], { cwd, env })]);
  for (const r of [a, b]) {
    assert.equal(r.code, 0, r.all);
    assert.equal(r.out[0], 'Using the embedded database (var/db): no database URL is set');
  }
  const applied = [a, b].map((r) => r.out.filter((l) => l.startsWith('Applied ')).length);
  assert.deepEqual(applied.sort(), [0, 3], 'every migration applied exactly once');
  assert.ok(fs.existsSync(path.join(cwd, 'var/db/PG_VERSION')));
  assert.ok(!fs.existsSync(path.join(cwd, '.tidemark')));
  const s = await tidemark(['status', '--embedded-dir', 'var/db', '--statement-timeout', '5s'], { cwd, env: DEV });
  assert.equal(s.code, 0, s.all);
  assert.equal(s.out[0], 'Using the embedded database (var/db): no database URL is set');
  // PGlite has no timer interrupts: say so rather than pretend.
  assert.equal(s.out[1], 'warning: the embedded database (PGlite) does not enforce statement_timeout: a statement runs to the end whatever --statement-timeout says');
  assert.equal(s.out.at(-1), '3 applied, 0 pending');
});

test('db serve: psql connects, tidemark uses the served database, Ctrl-C stops it with the data saved', needs, async (t) => {
  const cwd = project(t, { ...BASIC, ...DEV_SEEDS });
  const server = serve(cwd);
  t.after(() => server.child.kill('SIGKILL'));
  const { url, port } = await server.ready;
  assert.equal(url, `postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable`);
  assert.match(server.output(), /^Serving the embedded database \(\.tidemark\/pglite\) on 127\.0\.0\.1; connect your app with:$/m);

  // While it serves, the CLI goes through it (it cannot open the files twice).
  const m = await tidemark(['migrate'], { cwd, env: DEV });
  assert.equal(m.code, 0, m.all);
  assert.equal(m.out[0], `Using the embedded database (.tidemark/pglite), served by tidemark db serve at ${url}: no database URL is set`);
  const seeded = await tidemark(['seed'], { cwd, env: DEV });
  assert.equal(seeded.code, 0, seeded.all);

  assert.equal(await psql(port, 'select count(*) from users'), '2');
  // Two clients at once; a client that leaves inside a transaction is rolled back.
  const [x, y] = await Promise.all([
    psql(port, "insert into users values (3, 'c@example.com'); select count(*) from users"),
    psql(port, "begin; insert into users values (4, 'd@example.com'); select pg_sleep(0.2)"),
  ]);
  assert.equal(x.split('\n').at(-1), '3');
  assert.match(y, /INSERT 0 1/);
  assert.equal(await psql(port, 'select string_agg(id::text, \',\' order by id) from users'), '1,2,3');
  // The app's URL works for tidemark too.
  const viaUrl = await tidemark(['status'], { cwd, env: { ...DEV, DATABASE_URL: url } });
  assert.equal(viaUrl.code, 0, viaUrl.all);
  assert.equal(viaUrl.out.at(-1), '3 applied, 0 pending');

  server.child.kill('SIGINT');
  const exit = await server.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, server.output());
  assert.match(server.output(), /^Stopped; the data is saved in \.tidemark\/pglite$/m);
  assert.ok(!fs.existsSync(path.join(cwd, '.tidemark/pglite.lock')));

  // The data outlives the server: in process, and served again.
  const s = await tidemark(['status'], { cwd, env: DEV });
  assert.equal(s.out[0], USING);
  assert.equal(s.out.at(-1), '3 applied, 0 pending');
  const again = serve(cwd);
  t.after(() => again.child.kill('SIGKILL'));
  const second = await again.ready;
  assert.equal(await psql(second.port, 'select count(*) from users'), '3');
  again.child.kill('SIGINT');
  assert.equal((await again.exited).code, 0, again.output());
});

test('no URL in CI or production, deploy, no PGlite, or a folder that is not its own: exit 3 saying why, nothing created', async (t) => {
  const cwd = project(t, BASIC);
  const variables = /TIDEMARK_DATABASE_URL, DATABASE_URL_UNPOOLED, POSTGRES_URL_NON_POOLING, DATABASE_URL, POSTGRES_URL .*PGHOST\/PGDATABASE/;
  const cases = [
    [['migrate'], { CI: 'true' }, /^hint: the embedded database is not used in CI \(CI=true\)/m],
    [['seed'], { CI: '1' }, /^hint: the embedded database is not used in CI \(CI=1\)/m],
    [['status'], { CI: undefined, NODE_ENV: 'production' }, /^hint: the embedded database is not used in production \(NODE_ENV=production\)/m],
    [['migrate'], { CI: undefined, VERCEL_ENV: 'production' }, /^hint: the embedded database is not used in production \(VERCEL_ENV=production\)/m],
    [['deploy'], DEV, /^hint: deploy never uses the embedded database/m],
  ];
  for (const [args, env, hint] of cases) {
    const r = await tidemark(args, { cwd, env });
    assert.equal(r.code, 3, `${args} ${JSON.stringify(env)}: ${r.all}`);
    assert.equal(r.stdout, '');
    assert.match(r.err[0], /^error: no database URL: pass --url, or set one of /);
    assert.match(r.err[0], variables);
    assert.match(r.stderr, hint);
  }
  const json = await tidemark(['migrate', '--json'], { cwd, env: { CI: 'true' } });
  assert.equal(json.code, 3);
  const [record] = ndjson(json.stdout);
  assert.equal(record.code, 'E_NO_DATABASE_URL');
  assert.match(record.hint, /not used in CI/);

  // PGlite not installed (hidden from module resolution): how to install it.
  const hide = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-hide-')), 'hide-pglite.cjs');
  t.after(() => fs.rmSync(path.dirname(hide), { recursive: true, force: true }));
  fs.writeFileSync(
    hide,
    "const M = require('node:module'); const orig = M._resolveFilename;\n" +
      "M._resolveFilename = function (r, ...a) { if (r === '@electric-sql/pglite') { const e = new Error(`Cannot find module '${r}'`); e.code = 'MODULE_NOT_FOUND'; throw e; } return orig.call(this, r, ...a); };\n",
  );
  const missing = await tidemark(['migrate'], { cwd, env: { ...DEV, NODE_OPTIONS: `--require ${hide}` } });
  assert.equal(missing.code, 3, missing.all);
  assert.match(missing.err[0], /needs @electric-sql\/pglite, which is not installed; install it with: npm install --save-dev @electric-sql\/pglite$/);
  assert.match(missing.stderr, /^hint: or use a PostgreSQL server: pass --url/m);
  const serveMissing = await tidemark(['db', 'serve'], { cwd, env: { ...DEV, NODE_OPTIONS: `--require ${hide}` } });
  assert.equal(serveMissing.code, 3, serveMissing.all);
  assert.match(serveMissing.stderr, /npm install --save-dev @electric-sql\/pglite/);

  // A folder that is not a database of its own is never initialized or deleted.
  for (const [args, pattern] of [
    [['reset', '--embedded-dir', '.'], /^error: refusing to use \.: it holds the project; point --embedded-dir/],
    [['migrate', '--embedded-dir', 'migrations'], /^error: refusing to use migrations: it is not a PGlite database \(no PG_VERSION\) and not empty/],
  ]) {
    const r = await tidemark(args, { cwd, env: DEV });
    assert.equal(r.code, 3, r.all);
    assert.match(r.err[0], pattern);
  }
  assert.ok(fs.existsSync(path.join(cwd, 'migrations/001_initial_schema.sql')));

  assert.ok(!fs.existsSync(path.join(cwd, '.tidemark')), 'no embedded database was created');
});

test('db serve usage errors: no subcommand, a bad port, a port in use', needs, async (t) => {
  const cwd = project(t, BASIC);
  const bare = await tidemark(['db'], { cwd, env: DEV });
  assert.equal(bare.code, 3);
  assert.match(bare.stderr, /^error: tidemark db needs a subcommand: tidemark db create or tidemark db serve/m);
  const port = await tidemark(['db', 'serve', '--port', '70000'], { cwd, env: DEV });
  assert.equal(port.code, 3);
  assert.match(port.stderr, /^error: --port must be a port number from 0 to 65535/m);
  const deployFlag = await tidemark(['deploy', '--embedded-dir', 'x'], { cwd, env: DEV });
  assert.equal(deployFlag.code, 3);
  assert.match(deployFlag.stderr, /option --embedded-dir does not apply to tidemark deploy/);
  // A port that is taken: say so and how to pick another.
  const net = await import('node:net');
  const blocker = net.createServer();
  await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => blocker.close());
  const taken = await tidemark(['db', 'serve', '--port', String(blocker.address().port)], { cwd, env: DEV });
  assert.equal(taken.code, 3, taken.all);
  assert.match(taken.stderr, /could not listen on 127\.0\.0\.1:\d+: .*EADDRINUSE.*--port 0 for any free port/);
  assert.ok(!fs.existsSync(path.join(cwd, '.tidemark/pglite.lock')));
});
