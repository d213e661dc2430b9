// One URL parser and one connection policy for both backends (they live in
// tidemark-core; the JS host and the wasm build only open sockets). This file
// runs once per backend with the same expectations, so passing on both means
// the same redaction, error code, exit code and retry decision on both: a
// table of URL forms (no password substring ever printed), then connection
// faults from small fake servers, then a connection whose network goes silent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import { tidemark, project, ndjson, engine, ENGINE, pkgRequire, cleanEnv, CLI, PG_HOST, PG_PORT, database, assertNoSecret } from './helpers.mjs';
import { freePort, createPostgres } from './servers.mjs';

const MIGRATIONS = { 'migrations/001_a.sql': 'CREATE TABLE a (id int);\n' };
const native = ENGINE.backend !== 'wasm';

/** The socket's words for a refused connection, per backend. */
const refused = (port) => (native ? 'error connecting to server: Connection refused \\(os error 111\\)' : `connect ECONNREFUSED 127\\.0\\.0\\.1:${port}`);

/** Runs the CLI twice (text and --json) and returns both, checking they agree. */
async function run(cwd, args, env = {}) {
  const text = await tidemark(args, { cwd, env, timeout: 30_000 });
  const json = await tidemark([...args, '--json'], { cwd, env, timeout: 30_000 });
  const events = ndjson(json.stdout);
  const error = events.find((e) => e.event === 'error');
  assert.equal(json.code, text.code, `${args.join(' ')}\n${text.all}\n${json.all}`);
  return { text, json, events, error };
}

let port; // nothing listens there

before(async () => {
  port = await freePort();
});

// [url, exit code, error code, the URL as shown, what the message says after the URL]
// Secrets all contain "Sekrit" (and the @-password "ssw0rd"): none may appear anywhere.
const CASES = () => [
  [
    `postgres://app:p@ssw0rdSekrit@127.0.0.1:${port}/db`,
    2,
    'E_CONNECT',
    `postgres://app:****@127.0.0.1:${port}/db`,
    `could not connect to 127\\.0\\.0\\.1:${port} \\(database db, user app, sslmode prefer\\)`,
  ],
  ['postgres://', 3, 'E_INVALID_URL', 'postgres://', 'it names no host'],
  ['postgres:///db', 3, 'E_INVALID_URL', 'postgres:///db', 'it names no host'],
  ['postgres://%%%', 3, 'E_INVALID_URL', 'postgres://%%%', 'the host has a % that does not start a %XX escape'],
  ['postgres://app:%zzSekrit@h/db', 3, 'E_INVALID_URL', 'postgres://app:****@h/db', 'the password has a % that does not start a %XX escape'],
  ['postgres://app:pa/Sekrit@h/db', 3, 'E_INVALID_URL', 'postgres://app:****@h/db', 'must be percent-encoded'],
  [
    `postgres://app:Se%40krit%2Fx@127.0.0.1:${port}/db`,
    2,
    'E_CONNECT',
    `postgres://app:****@127.0.0.1:${port}/db`,
    `could not connect to 127\\.0\\.0\\.1:${port} \\(database db, user app, sslmode prefer\\)`,
  ],
  [
    `postgres://app:Sekrit1@[::1]:${port}/db?sslmode=disable`,
    2,
    'E_CONNECT',
    `postgres://app:****@[::1]:${port}/db?sslmode=disable`,
    `could not connect to ::1:${port} \\(database db, user app, sslmode disable\\)`,
  ],
  [
    `postgres://app:Sekrit2@127.0.0.1:${port}/db?password=Sekrit3&sslpassword=Sekrit4`,
    2,
    'E_CONNECT',
    `postgres://app:****@127.0.0.1:${port}/db?password=****&sslpassword=****`,
    `could not connect to 127\\.0\\.0\\.1:${port} \\(database db, user app, sslmode prefer\\)`,
  ],
  [
    `host=127.0.0.1 port=${port} user=app dbname=db password=ab&Sekrit99`,
    2,
    'E_CONNECT',
    `host=127.0.0.1 port=${port} user=app dbname=db password=****`,
    `could not connect to 127\\.0\\.0\\.1:${port} \\(database db, user app, sslmode prefer\\)`,
  ],
  [
    `host=127.0.0.1 port=${port} user=app password='ab cd Sekrit' dbname=db`,
    2,
    'E_CONNECT',
    `host=127.0.0.1 port=${port} user=app password=**** dbname=db`,
    `could not connect to 127\\.0\\.0\\.1:${port} \\(database db, user app, sslmode prefer\\)`,
  ],
  ["host=h password='ab Sekrit", 3, 'E_INVALID_URL', 'host=h password=****', "the quoted value of password has no closing '"],
  ['host=h password=ab&Sekrit dbnmae=x', 3, 'E_INVALID_URL', 'host=h password=**** dbnmae=x', 'unknown parameter dbnmae'],
  ['postgres://u:Sekrit@h/d?sslmode=bogus', 3, 'E_INVALID_URL', 'postgres://u:****@h/d?sslmode=bogus', 'sslmode=bogus is not one of'],
  ['mysql://root:Sekrit@h/db', 3, 'E_INVALID_URL', 'mysql://root:****@h/db', "the scheme mysql:// is not PostgreSQL's"],
];

test('a table of URL forms: the same redaction, error code and exit code on both backends, no secret printed', engine, async (t) => {
  const cwd = project(t, MIGRATIONS);
  for (const [url, exit, code, shown, says] of CASES()) {
    const { text, json, events, error } = await run(cwd, ['deploy', '--connect-timeout', '300ms', '--url', url]);
    const all = text.all + json.all;
    assert.equal(text.code, exit, `${url}\n${all}`);
    assert.equal(error?.code, code, `${url}\n${json.all}`);
    for (const secret of ['Sekrit', 'ssw0rd', 'Se%40krit']) assert.ok(!all.includes(secret), `${secret} leaked for ${url}:\n${all}`);
    if (exit === 3) {
      const message = `invalid database URL ${shown} (from --url): `;
      assert.ok(error.message.startsWith(message), `${url}: ${error.message}`);
      assert.ok(error.message.slice(message.length).includes(says), `${url}: ${error.message}`);
      assert.equal(text.stderr, `error: ${error.message}\n`);
    } else {
      assert.deepEqual(events[0], { event: 'connecting', source: '--url', url: shown });
      assert.equal(text.out[0], `Using --url (${shown})`);
      const host = url.includes('[::1]') ? '(connect ECONNREFUSED ::1:\\d+|.*Connection refused.*)' : refused(port);
      assert.match(error.message, new RegExp(`^${says}( \\(after \\d+ attempts over \\d+ ms\\))?: ${host}$`), url);
      assert.equal(error.sqlState, undefined);
    }
  }
});

test('a URL without a user connects as the operating system user on both backends (never "anonymous")', engine, async (t) => {
  const cwd = project(t, MIGRATIONS);
  const user = os.userInfo().username;
  const { text, events, error } = await run(cwd, ['status', '--url', `postgres://${PG_HOST}:${PG_PORT}/tidemark_no_such_db?sslmode=disable`]);
  assert.equal(text.code, 2, text.all);
  assert.deepEqual(retries(events), []);
  assert.match(
    error.message,
    new RegExp(`user the default, sslmode disable\\): (database "tidemark_no_such_db" does not exist \\(SQLSTATE 3D000\\)|role "${user}" does not exist \\(SQLSTATE 28000\\))$`),
  );
  assert.ok(['3D000', '28000'].includes(error.sqlState), error.sqlState);
});

test("the session keeps the URL's application_name; tidemark only when the URL has none", engine, async (t) => {
  for (const [query, want] of [['?application_name=billing-deploy', 'billing-deploy'], ['', 'tidemark']]) {
    const db = await database(t);
    const cwd = project(t, { 'migrations/001_seen.sql': "CREATE TABLE seen AS SELECT current_setting('application_name') AS name;\n" });
    const r = await tidemark(['deploy', '--url', `${db.url}${query}`], { cwd });
    assert.equal(r.code, 0, r.all);
    assertNoSecret(assert, r, db.password);
    assert.equal(await db.query('SELECT name FROM seen'), want);
  }
});

test('the API reads a URL the same way: inspectUrl, redaction and the application_name of the URL', engine, () => {
  const { inspect, redact } = pkgRequire('./lib/url.cjs');
  const info = inspect('postgres://app:p@ssw0rd@db.example.com:6543/app?application_name=billing');
  assert.deepEqual(info, {
    problem: null,
    redacted: 'postgres://app:****@db.example.com:6543/app?application_name=billing',
    host: 'db.example.com',
    port: 6543,
    database: 'app',
    user: 'app',
    sslmode: 'prefer',
    poolerReason: 'port 6543 is the pooler port',
    applicationName: 'billing',
  });
  assert.equal(inspect('postgres://h/d').applicationName, 'tidemark');
  assert.equal(redact('host=h password=\'it\\\'s Sekrit\' dbname=d'), 'host=h password=**** dbname=d');
});

// ------------------------------------------------------------------ faults

/** A server whose connections `onSocket` handles; closed when the test ends. */
async function fakeServer(t, onSocket) {
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return server.address().port;
}

/** PostgreSQL's ErrorResponse with SQLSTATE `code`. */
function errorResponse(code, message) {
  const fields = Buffer.concat([
    ...[
      ['S', 'FATAL'],
      ['V', 'FATAL'],
      ['C', code],
      ['M', message],
    ].map(([k, v]) => Buffer.from(`${k}${v}\0`)),
    Buffer.from([0]),
  ]);
  const head = Buffer.alloc(5);
  head.write('E');
  head.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([head, fields]);
}

/** Answers the SSLRequest with N, then the startup with an error. */
const refuseStartup = (code, message) => (s) => {
  s.once('data', (first) => {
    const sslRequest = first.length === 8 && first.readInt32BE(4) === 80877103;
    const answer = () => s.end(errorResponse(code, message));
    if (sslRequest) {
      s.write('N');
      s.once('data', answer);
    } else answer();
  });
};

async function deployTo(t, port, query = '', timeout = '1500ms') {
  const cwd = project(t, MIGRATIONS);
  return run(cwd, ['deploy', '--connect-timeout', timeout, '--url', `postgres://app:Sekrit@127.0.0.1:${port}/db${query}`]);
}

const retries = (events) => events.filter((e) => e.event === 'connectRetry');

test('a server that closes the socket while connecting, at any stage and sslmode: a connection error, never retried', engine, async (t) => {
  const onAccept = await fakeServer(t, (s) => s.end());
  const duringTls = await fakeServer(t, (s) => {
    s.once('data', () => {
      s.write('S');
      s.once('data', () => s.destroy()); // the ClientHello
    });
  });
  for (const [port, query] of [
    [onAccept, ''],
    [onAccept, '?sslmode=prefer'],
    [onAccept, '?sslmode=require'],
    [onAccept, '?sslmode=disable'],
    [duringTls, ''],
    [duringTls, '?sslmode=require'],
  ]) {
    const { text, events, error } = await deployTo(t, port, query);
    assert.equal(text.code, 2, `${query}: ${text.all}`);
    assert.equal(error.code, 'E_CONNECT', text.all);
    assert.match(error.message, new RegExp(`^could not connect to 127\\.0\\.0\\.1:${port} .*: .*(closed|eof|reset)`, 'i'), error.message);
    assert.deepEqual(retries(events), [], `${query}: not retried`);
    assert.ok(!text.all.includes('Sekrit'), text.all);
  }
  // The API's promise settles too (it never did on wasm).
  const api = pkgRequire('./index.cjs');
  const cwd = project(t, MIGRATIONS);
  await assert.rejects(
    api.deploy({ cwd, url: `postgres://app@127.0.0.1:${onAccept}/db?sslmode=require`, connectTimeout: 1500, dotenv: false }),
    (err) => err.code === 'E_CONNECT',
  );
});

test('the same retry decisions on both backends: refused, starting and full servers are retried; a bad password is not, a silent one is bounded', engine, async (t) => {
  const silent = await fakeServer(t, () => {});
  const full = await fakeServer(t, refuseStartup('53300', 'sorry, too many clients already'));
  const starting = await fakeServer(t, refuseStartup('57P03', 'the database system is starting up'));
  const badPassword = await fakeServer(t, refuseStartup('28P01', 'password authentication failed for user "app"'));
  const cases = [
    [port, true, refused(port), undefined],
    // One attempt spends the whole budget waiting: nothing left to retry in.
    [silent, false, 'timed out after 1200 ms', undefined],
    [full, true, 'sorry, too many clients already \\(SQLSTATE 53300\\)', '53300'],
    [starting, true, 'the database system is starting up \\(SQLSTATE 57P03\\)', '57P03'],
    [badPassword, false, 'password authentication failed for user "app" \\(SQLSTATE 28P01\\); check the user name and password', '28P01'],
  ];
  for (const [p, retried, reason, sqlState] of cases) {
    const { text, events, error } = await deployTo(t, p, '?sslmode=prefer', '1200ms');
    assert.equal(text.code, 2, text.all);
    assert.equal(error.code, 'E_CONNECT');
    assert.equal(error.sqlState, sqlState, JSON.stringify(error));
    const tries = retried ? ` \\(after \\d+ attempts over \\d+ ms\\)` : '';
    assert.match(error.message, new RegExp(`^could not connect to 127\\.0\\.0\\.1:${p} \\(database db, user app, sslmode prefer\\)${tries}: ${reason}$`));
    const r = retries(events);
    assert.equal(r.length > 0, retried, `${reason}: ${JSON.stringify(r)}`);
    for (const [i, e] of r.entries()) {
      assert.equal(e.attempt, i + 1);
      assert.match(e.error, new RegExp(`^${reason}$`));
      // The text output prints the same attempt line.
    }
    if (retried) assert.match(text.out[1], new RegExp(`^Connecting: attempt 1 failed \\(${reason}\\); retrying in \\d+ ms$`), text.all);
  }
});

test("the URL's connect_timeout bounds the retries when --connect-timeout is not given", engine, async (t) => {
  const cwd = project(t, MIGRATIONS);
  const started = Date.now();
  const { text, error } = await run(cwd, ['deploy', '--url', `postgres://app@127.0.0.1:${port}/db?connect_timeout=1`]);
  assert.equal(text.code, 2, text.all);
  // The engine stops within 10 ms of the deadline (crates/tidemark-core/src/connect.rs), so the
  // time it reports is 990 ms or more.
  assert.match(error.message, new RegExp(`\\(after \\d+ attempts over (99\\d|10\\d\\d) ms\\): ${refused(port)}$`), error.message);
  assert.ok(Date.now() - started < 10_000, 'two runs of about a second each');
});

// ------------------------------------------------------------------ silent network

/** Whether this machine lets the test make a private network namespace (root, unshare). */
function canUnshare() {
  try {
    execFileSync('unshare', ['-n', 'ip', 'link', 'set', 'lo', 'up'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const netns = canUnshare() ? {} : { skip: 'needs unshare -n and ip (root) to make a network go silent' };
let silentServer;

after(async () => {
  await silentServer?.cleanup();
});

test('a connection whose network goes silent mid-migration ends with a connection error within seconds (keepalives)', { ...engine, ...netns, timeout: 120_000 }, async (t) => {
  if (engine.skip || netns.skip) return;
  // A private network namespace: the CLI reaches the test server through a
  // proxy on its own loopback (the proxy talks to the server's Unix socket),
  // and taking that loopback down makes the network silent: no FIN, no RST,
  // every packet dropped, while the statement (pg_sleep) goes on.
  silentServer = await createPostgres({ name: 'silent' });
  await silentServer.start();
  const db = await silentServer.createDatabase('postgres');
  const cwd = project(t, { 'migrations/001_slow.sql': 'SELECT pg_sleep(600);\n' });
  const proxy = path.join(cwd, 'proxy.cjs');
  fs.writeFileSync(
    proxy,
    `const net = require('node:net');
net.createServer((c) => {
  const s = net.connect(process.argv[2]);
  c.pipe(s); s.pipe(c);
  c.on('error', () => s.destroy()); s.on('error', () => c.destroy());
}).listen(55432, '127.0.0.1');
`,
  );
  const socket = path.join(silentServer.dir, `.s.PGSQL.${silentServer.port}`);
  // Short keepalives so that the test runs in seconds (the defaults catch a
  // dead network within about a minute).
  const url = `postgres://postgres@127.0.0.1:55432/${db}?sslmode=disable&keepalives_idle=1&keepalives_interval=1&keepalives_count=2&tcp_user_timeout=3000`;
  const script = [
    'ip link set lo up',
    `node ${JSON.stringify(proxy)} ${JSON.stringify(socket)} & P=$!`,
    'sleep 0.5',
    `node ${JSON.stringify(CLI)} deploy --url "$URL" & C=$!`,
    'sleep 3', // connected, the migration is running
    'ip link set lo down',
    'date +%s%3N >&2', // when the network went silent
    'wait $C; code=$?',
    'kill $P',
    'exit $code',
  ].join('\n');
  const r = await new Promise((resolve) => {
    execFile('unshare', ['-n', 'sh', '-c', script], { cwd, env: cleanEnv({ URL: url }), timeout: 90_000, encoding: 'utf8' }, (error, stdout, stderr) =>
      resolve({ code: error ? error.code : 0, stdout, stderr, ended: Date.now() }),
    );
  });
  const silentAt = Number(/^(\d{13})$/m.exec(r.stderr)?.[1]);
  const took = r.ended - silentAt;
  assert.equal(r.code, 2, `${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /connection|closed|timed out/i, r.stderr);
  // native: 1 s idle + 2 probes 1 s apart (TCP_USER_TIMEOUT 3 s); wasm:
  // the 1 s idle, then node's own probe settings (libuv: 10 probes 1 s apart).
  assert.ok(took < 30_000, `took ${took} ms after the network went silent:\n${r.stderr}`);
});
