// The JS API, in process: same resolution as the CLI, typed reports, the
// same events through onEvent, TidemarkError with paths relative to cwd.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { project, database, engine, BASIC, PKG } from './helpers.mjs';

const api = await import(path.join(PKG, 'index.mjs'));
const { TidemarkError } = api;

test('migrate, status, down through the API, with onEvent', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, BASIC);
  const events = [];
  const options = { cwd, environment: { DATABASE_URL: db.url }, onEvent: (e) => events.push(e) };

  const report = await api.migrate(options);
  assert.deepEqual(report.applied.map((m) => m.version), ['001', '002', '003']);
  assert.equal(report.alreadyApplied, 0);
  assert.equal(report.upToDate, false);
  assert.deepEqual(events[0], { event: 'connecting', source: 'DATABASE_URL', url: db.redacted });
  assert.deepEqual(events.filter((e) => e.event === 'migrationApplied').map((e) => e.version), ['001', '002', '003']);

  const status = await api.status({ cwd, environment: { DATABASE_URL: db.url } });
  assert.equal(status.applied, 3);
  assert.equal(status.pending, 0);
  assert.ok(status.migrations.every((m) => m.state === 'applied' && m.checksum === 'ok' && typeof m.appliedAt === 'string'));

  const down = await api.down({ cwd, environment: { DATABASE_URL: db.url }, steps: 2 });
  assert.deepEqual(down.reverted.map((m) => m.version), ['003', '002']);

  const again = await api.migrate({ cwd, url: db.url, environment: {}, to: '002' });
  assert.deepEqual(again.applied.map((m) => m.version), ['002']);
  assert.equal(again.pending, 1);
});

test('errors are TidemarkError with file relative to cwd, position, SQLSTATE and partial progress', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, { ...BASIC, 'migrations/004_bad.sql': 'SELECT 1;\nSELECT nope FROM nowhere;\n' });
  await assert.rejects(api.migrate({ cwd, environment: { DATABASE_URL: db.url } }), (err) => {
    assert.ok(err instanceof TidemarkError);
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'E_MIGRATION_FAILED');
    assert.equal(err.file, path.join('migrations', '004_bad.sql'));
    assert.equal(err.line, 2);
    assert.equal(err.column, 18); // "nowhere"
    assert.equal(err.sqlState, '42P01');
    assert.equal(err.version, '004');
    assert.equal(err.exitCode, 2);
    assert.deepEqual(err.applied.map((m) => m.version), ['001', '002', '003']);
    assert.ok(!err.message.includes(db.password));
    return true;
  });
});

test('configuration errors reject before connecting', async (t) => {
  const cwd = project(t);
  await assert.rejects(api.migrate({ cwd, environment: {} }), { name: 'TidemarkError', code: 'E_NO_DATABASE_URL', exitCode: 3 });
  await assert.rejects(api.status({ cwd, url: 'postgres://postgres@127.0.0.1:1/x', environment: {} }), (err) => {
    assert.equal(err.code, 'E_CONFIG');
    assert.match(err.message, /the migrations folder migrations does not exist/);
    return true;
  });
  await assert.rejects(api.seed({ cwd, url: 'postgres://postgres@127.0.0.1:1/x', environment: { NODE_ENV: 'production' } }), {
    code: 'E_SEED_PRODUCTION',
    exitCode: 2,
  });
  await assert.rejects(api.migrate({ cwd, url: 'postgres://h/db', lockTimeout: 'soon', environment: {} }), {
    code: 'E_CONFIG',
    message: /the lockTimeout option must be a duration/,
  });
});

test('create through the API, with an injected clock', engine, async (t) => {
  const cwd = project(t, { 'migrations/20260109000000_init.sql': '' });
  const report = await api.create({ cwd, name: 'add_goals', now: new Date('2027-03-04T05:06:07Z'), environment: {} });
  assert.equal(report.version, '20270304050607');
  assert.equal(report.files.length, 1);
  assert.equal(report.files[0].name, '20270304050607_add_goals.sql');
  assert.equal(report.files[0].file, path.join('migrations', '20270304050607_add_goals.sql'));
  assert.ok(fs.existsSync(report.files[0].path));
  await assert.rejects(api.create({ cwd, name: '../escape', environment: {} }), { code: 'E_INVALID_OPTION', exitCode: 3 });
});

test('resolveConfig is the CLI\'s resolution', (t) => {
  const cwd = project(t, { 'tidemark.config.json': { schema: 'app', lockWaitTimeout: '10s' } });
  const c = api.resolveConfig({ cwd, environment: { POSTGRES_URL: 'postgres://u:pw@h/db', TIDEMARK_SCHEMA: 'env_schema' } });
  assert.equal(c.schema, 'env_schema');
  assert.equal(c.lockWaitTimeout, 10_000);
  assert.equal(c.urlSource, 'POSTGRES_URL');
  assert.equal(c.redactedUrl, 'postgres://u:****@h/db');
  assert.equal(api.redact('postgres://u:pw@h/db'), 'postgres://u:****@h/db');
});

// The engine starts connecting while the files are read (issue 15: the
// native one on its own threads, the wasm one on the event loop); when the
// files cannot be read, that connection is given up: the error is the
// files', and no session is left open on the server.
// The connection set up while the files are read is given up when they
// cannot be: a server that accepts and never answers, or one that refuses
// (retried with backoff), must not hold the process open until the connect
// timeout (20 s here) runs out. Native aborts its task; wasm drops its
// connecting task and aborts the socket its host is opening.
test('a connection given up when the files cannot be read holds nothing open', engine, async (t) => {
  const net = await import('node:net');
  const { spawn } = await import('node:child_process');
  const silent = net.createServer((c) => c.on('error', () => {}));
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => silent.close());
  // A port nothing listens on: connection refused, retried.
  const probe = net.createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const refused = probe.address().port;
  await new Promise((resolve) => probe.close(resolve));
  const cwd = project(t, {});
  // Through the API (the folder is missing, so the connection is given up
  // at once), then through the engine's own connect/close once the attempt
  // is under way: waiting for the silent server's answer, or in the backoff
  // between two refused attempts.
  const script = `
    const api = await import(${JSON.stringify(path.join(PKG, 'index.mjs'))});
    const { createRequire } = await import('node:module');
    const { binding } = createRequire(${JSON.stringify(path.join(PKG, 'index.cjs'))})('./lib/loader.cjs').load();
    for (const port of [${silent.address().port}, ${refused}]) {
      const url = 'postgres://u@127.0.0.1:' + port + '/x?sslmode=disable&connect_timeout=20';
      const events = [];
      await api.migrate({ cwd: ${JSON.stringify(cwd)}, url, environment: {}, dir: 'nowhere', onEvent: (e) => events.push(e.event) })
        .then(() => console.log('resolved'), (e) => console.log(e.code, events.join(',')));
      const dialing = binding.connect('migrate', { url }, (e) => events.push(e.event));
      await new Promise((resolve) => setTimeout(resolve, 400));
      dialing.close();
    }
  `;
  const started = Date.now();
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise((resolve) => child.on('exit', resolve));
  const elapsed = Date.now() - started;
  assert.equal(code, 0, out);
  assert.deepEqual(out.trim().split('\n'), ['E_CONFIG connecting', 'E_CONFIG connecting'], out);
  // Far below the 20 s connect timeout either would wait for.
  assert.ok(elapsed < 8000, `the process took ${elapsed} ms to exit:\n${out}`);
});

test('a migrations folder that cannot be read is the error, and leaves no session open', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {});
  const appName = `tidemark_early_${process.pid}`;
  const url = `${db.url}${db.url.includes('?') ? '&' : '?'}application_name=${appName}`;
  const events = [];
  await assert.rejects(api.migrate({ cwd, url, environment: {}, dir: 'nowhere', onEvent: (e) => events.push(e) }), (err) => {
    assert.ok(err instanceof TidemarkError);
    assert.equal(err.code, 'E_CONFIG');
    assert.match(err.message, /the migrations folder nowhere does not exist/);
    return true;
  });
  assert.equal(events[0].event, 'connecting');
  const sessions = () => db.query(`SELECT count(*) FROM pg_stat_activity WHERE application_name = '${appName}'`).then(Number);
  for (let i = 0; i < 50 && (await sessions()) > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await sessions(), 0);
  // Nothing was created: no tracking table.
  assert.equal(await db.query("SELECT to_regclass('schema_migrations') IS NULL"), 't');
  // The same folder, readable, applies through the connection set up meanwhile.
  fs.mkdirSync(path.join(cwd, 'nowhere'));
  fs.writeFileSync(path.join(cwd, 'nowhere', '001_t.sql'), 'CREATE TABLE early_t (id int);\n');
  const report = await api.migrate({ cwd, url, environment: {}, dir: 'nowhere' });
  assert.deepEqual(report.applied.map((m) => m.version), ['001']);
  assert.equal(await db.query("SELECT to_regclass('early_t') IS NOT NULL"), 't');
});
