// Connect retries (design §7): a database that is not up yet (a cold
// serverless compute, a container still starting) is retried with backoff
// until --connect-timeout, each retry is reported, and when it never comes
// up the error says how often it tried. Authentication failures are not
// retried (tls.test.mjs checks that).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { tidemark, project, ndjson, engine, ENGINE, assertNoSecret } from './helpers.mjs';
import { createPostgres, freePort } from './servers.mjs';

const PASSWORD = 'apppass';
const MIGRATIONS = {
  'migrations/001_create_things.sql': 'CREATE TABLE things (id int PRIMARY KEY);\n',
  'migrations/002_add_name.sql': 'ALTER TABLE things ADD COLUMN name text;\n',
};

let server;
let db;

// initdb and the roles happen up front (on some port), then the server is
// stopped: the test starts it again, late, on the port tidemark is dialing.
before(async () => {
  if (ENGINE.skip) return;
  server = await createPostgres({
    name: 'retry',
    conf: { password_encryption: 'scram-sha-256' },
    hba: ['host all all 127.0.0.1/32 scram-sha-256'],
  });
  await server.start();
  await server.psql(`CREATE ROLE app LOGIN PASSWORD '${PASSWORD}'`);
  db = await server.createDatabase('app');
  await server.stop();
}, { timeout: 60_000 });

after(async () => {
  await server?.cleanup();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('a server that comes up late: retried with backoff, each retry reported, then the deploy succeeds', engine, async (t) => {
  const port = await freePort();
  const cwd = project(t, MIGRATIONS);
  const url = `postgres://app:${PASSWORD}@127.0.0.1:${port}/${db}`;
  const running = tidemark(['deploy', '--json', '--connect-timeout', '30s', '--url', url], { cwd });
  await sleep(1500);
  await server.start(port);
  t.after(() => server.stop());
  const r = await running;
  assert.equal(r.code, 0, server.explain(r));
  assertNoSecret(assert, r, PASSWORD);

  const events = ndjson(r.stdout);
  const kinds = events.map((e) => e.event);
  const connected = kinds.indexOf('connected');
  assert.ok(connected > 0, `no connected event:\n${r.stdout}`);
  const retries = events.filter((e) => e.event === 'connectRetry');
  assert.ok(retries.length >= 1, `no connectRetry events before the server came up:\n${r.stdout}`);
  assert.ok(kinds.lastIndexOf('connectRetry') < connected, 'every connectRetry comes before connected');
  for (const [i, e] of retries.entries()) {
    assert.equal(e.attempt, i + 1, JSON.stringify(e));
    assert.equal(typeof e.error, 'string', JSON.stringify(e));
    assert.ok(e.error.length > 0, JSON.stringify(e));
    assert.ok(Number.isInteger(e.delayMs) && e.delayMs > 0, JSON.stringify(e));
  }
  // Backoff: the delays do not shrink.
  for (let i = 1; i < retries.length; i += 1) {
    assert.ok(retries[i].delayMs >= retries[i - 1].delayMs, `delays ${retries.map((e) => e.delayMs).join(', ')}`);
  }
  // It really waited for the server (about 1.5 s of retrying), and then migrated.
  assert.equal(events.filter((e) => e.event === 'migrationApplied').length, 2);
  assert.equal(events.at(-1).event, 'done');
  assert.equal(
    await server.psql("SELECT string_agg(version || ':' || status, ',' ORDER BY version) FROM schema_migrations", db),
    '001:completed,002:completed',
  );
});

test('the human output says it is retrying', engine, async (t) => {
  const port = await freePort();
  const cwd = project(t, MIGRATIONS);
  const url = `postgres://app:${PASSWORD}@127.0.0.1:${port}/${db}`;
  const running = tidemark(['status', '--connect-timeout', '30s', '--url', url], { cwd });
  await sleep(1200);
  await server.start(port);
  t.after(() => server.stop());
  const r = await running;
  assert.equal(r.code, 0, server.explain(r));
  // One line per retry, numbered from 1, with the reason the backend's
  // socket gave for a refused connection and the wait before the next try.
  // (The last attempts may reach the server while it is still starting:
  // "the database system is starting up" or "... not yet accepting
  // connections", both SQLSTATE 57P03.)
  const refused =
    ENGINE.backend === 'wasm'
      ? `connect ECONNREFUSED 127.0.0.1:${port}`
      : 'error connecting to server: Connection refused (os error 111)';
  const starting = /^the database system is [^()]+ \(SQLSTATE 57P03\)$/;
  const lines = r.out.filter((l) => l.startsWith('Connecting: '));
  assert.ok(lines.length >= 1, `no retry line:\n${r.all}`);
  for (const [i, line] of lines.entries()) {
    const [, attempt, reason, delay] = /^Connecting: attempt (\d+) failed \((.*)\); retrying in (\d+) ms$/.exec(line) ?? [];
    assert.equal(attempt, String(i + 1), r.all);
    // The first attempt comes long before the server does: refused.
    if (i === 0) assert.equal(reason, refused, r.all);
    else assert.ok(reason === refused || starting.test(reason), r.all);
    // Backoff from 100 ms, doubling, capped at 2 s, with jitter down to half.
    const base = Math.min(100 * 2 ** i, 2000);
    assert.ok(Number(delay) >= base / 2 && Number(delay) <= base, `${line}: not within ${base / 2}-${base} ms`);
  }
  // Right after the line that names the URL, before anything else.
  assert.match(r.out[0], /^Using --url \(postgres:\/\/app:\*\*\*\*@127\.0\.0\.1:/, r.all);
  assert.deepEqual(r.out.slice(1, 1 + lines.length), lines, r.all);
  assertNoSecret(assert, r, PASSWORD);
});

test('nothing ever listening: fails after the connect timeout and says how often it tried', engine, async (t) => {
  const port = await freePort();
  const cwd = project(t, MIGRATIONS);
  const url = `postgres://app:${PASSWORD}@127.0.0.1:${port}/postgres`;
  const started = Date.now();
  // In the environment, not argv, so a harness failure message cannot show the password.
  const r = await tidemark(['deploy', '--connect-timeout', '2s'], { cwd, env: { DATABASE_URL: url }, timeout: 20_000 });
  const ms = Date.now() - started;
  assert.equal(r.code, 2, r.all);
  assert.ok(ms >= 1500, `gave up after ${ms} ms, before the 2 s connect timeout`);
  assert.ok(ms < 8000, `took ${ms} ms with a 2 s connect timeout`);
  assert.match(r.stderr, /^error: /);
  assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
  assert.match(r.stderr, /after \d+ attempts/);
  const attempts = Number(/after (\d+) attempts/.exec(r.stderr)[1]);
  assert.ok(attempts >= 2, `only ${attempts} attempts in 2 s`);
  assertNoSecret(assert, r, PASSWORD);
});

test('a server that accepts TCP but never answers: the connect timeout still bounds the wait', engine, async (t) => {
  // Like a load balancer in front of a compute that is not there.
  const sockets = new Set();
  const blackhole = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    blackhole.close();
  });
  const { port } = blackhole.address();
  const cwd = project(t, MIGRATIONS);
  const started = Date.now();
  const url = `postgres://app:${PASSWORD}@127.0.0.1:${port}/postgres`;
  const r = await tidemark(['deploy', '--connect-timeout', '2s'], { cwd, env: { DATABASE_URL: url }, timeout: 20_000 });
  const ms = Date.now() - started;
  assert.equal(r.code, 2, r.all);
  assert.ok(ms < 8000, `took ${ms} ms with a 2 s connect timeout`);
  assert.match(r.stderr, /time(d)? ?out/i, r.all);
  assertNoSecret(assert, r, PASSWORD);
});
