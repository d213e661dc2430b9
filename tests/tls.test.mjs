// Production connections: TLS in every sslmode, certificate verification
// (sslrootcert, SSL_CERT_FILE, host names), client certificates, SCRAM with
// channel binding, wrong passwords, and the connection string forms users
// paste, against servers this file starts (the main test server trusts
// everyone, so it cannot show any of this).
//
// Two servers: `tls` (ssl = on, hostssl only: SCRAM for everyone, `cert`
// for certuser, plaintext rejected) and `plain` (no TLS, SCRAM).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tidemark, project, engine, ENGINE, assertNoSecret } from './helpers.mjs';
import { makeCerts, createPostgres, tempDir } from './servers.mjs';

const PASSWORD = 'apppass';
// Percent-encoding matters for this one: @ : / ? # % and a space.
const ODD_PASSWORD = 'p@ss:w/rd?#% x';
// SASLprep (NFKC) changes this one: the server keys the SCRAM secret on
// "fix-XII-pass", so a client that sends the bytes as typed is refused. The
// wasm backend's lite module carries no Unicode tables and hands such a
// connection to its full module (crates/stringprep-lite).
const UNICODE_PASSWORD = 'ﬁx-Ⅻ-ｐａｓｓ';

const MIGRATIONS = {
  'migrations/001_create_things.sql': 'CREATE TABLE things (id int PRIMARY KEY);\n',
  'migrations/002_add_name.sql': 'ALTER TABLE things ADD COLUMN name text;\n',
};

let certs;
let tls;
let plain;

before(async () => {
  if (ENGINE.skip) return;
  certs = await makeCerts(tempDir('certs'));
  [tls, plain] = await Promise.all([
    createPostgres({
      name: 'tls',
      conf: {
        ssl: 'on',
        ssl_cert_file: certs.serverCert,
        ssl_key_file: certs.serverKey,
        ssl_ca_file: certs.ca,
        password_encryption: 'scram-sha-256',
      },
      hba: [
        'hostssl all certuser 127.0.0.1/32 cert',
        'hostssl all all 127.0.0.1/32 scram-sha-256',
        'hostnossl all all 127.0.0.1/32 reject',
      ],
    }),
    createPostgres({
      name: 'plain',
      listen: '127.0.0.1,::1',
      conf: { ssl: 'off', password_encryption: 'scram-sha-256' },
      hba: ['host all all 127.0.0.1/32 scram-sha-256', 'host all all ::1/128 scram-sha-256'],
    }),
  ]);
  await Promise.all([tls.start(), plain.start()]);
  const roles = `CREATE ROLE app LOGIN PASSWORD '${PASSWORD}'; CREATE ROLE certuser LOGIN; CREATE ROLE odd LOGIN PASSWORD '${ODD_PASSWORD.replace(/'/g, "''")}'; CREATE ROLE uni LOGIN PASSWORD '${UNICODE_PASSWORD}';`;
  await Promise.all([tls.psql(roles), plain.psql(roles)]);
}, { timeout: 120_000 });

after(async () => {
  await Promise.all([tls?.cleanup(), plain?.cleanup()]);
  if (certs) fs.rmSync(certs.dir, { recursive: true, force: true });
});

/** postgres://user:password@host:port/db?params (password percent-encoded). */
function url(server, db, { user = 'app', password = PASSWORD, host = 'localhost', params = {} } = {}) {
  const auth = password === undefined ? user : `${user}:${encodeURIComponent(password)}`;
  const query = new URLSearchParams(params).toString();
  return `postgres://${auth}@${host}:${server.port}/${db}${query ? `?${query}` : ''}`;
}

async function deploy(t, target, { env = {}, args = [] } = {}) {
  const cwd = project(t, MIGRATIONS);
  const started = Date.now();
  const r = await tidemark(['deploy', ...args, '--url', target], { cwd, env });
  r.ms = Date.now() - started;
  return r;
}

/** The deploy worked: exit 0, both migrations applied and recorded, no password shown. */
async function assertDeployed(r, server, db) {
  assert.equal(r.code, 0, server.explain(r));
  assert.ok(r.out.some((l) => /^Applied 001 create_things \(\d+ ms\)$/.test(l)), server.explain(r));
  assert.match(r.out.at(-1), /^2 migrations applied, 0 pending \(\d+ ms\)$/);
  assert.equal(
    await server.psql("SELECT string_agg(version || ':' || status, ',' ORDER BY version) FROM schema_migrations", db),
    '001:completed,002:completed',
  );
  assertNoSecret(assert, r, PASSWORD);
}

/** The deploy failed with a connection error: exit 2, nothing applied, no password shown. */
async function assertRefused(r, server, db) {
  assert.equal(r.code, 2, server.explain(r));
  assert.match(r.stderr, /^error: /, server.explain(r));
  assertNoSecret(assert, r, PASSWORD);
  assert.equal(await server.psql("SELECT to_regclass('public.schema_migrations') IS NULL", db), 't');
}

// ------------------------------------------------------------------ sslmode

test('sslmode=disable: the server refuses plaintext, and the error is the server\'s', engine, async (t) => {
  const db = await tls.createDatabase('app');
  const r = await deploy(t, url(tls, db, { params: { sslmode: 'disable' } }));
  await assertRefused(r, tls, db);
  assert.match(r.stderr, /pg_hba\.conf/);
  assert.match(r.stderr, /no encryption/);
});

test('no sslmode and sslmode=prefer: TLS without verification', engine, async (t) => {
  for (const params of [{}, { sslmode: 'prefer' }]) {
    const db = await tls.createDatabase('app');
    const r = await deploy(t, url(tls, db, { params }));
    await assertDeployed(r, tls, db);
  }
});

test('sslmode=require verifies the chain: an unknown CA fails with a hint', engine, async (t) => {
  const db = await tls.createDatabase('app');
  const r = await deploy(t, url(tls, db, { params: { sslmode: 'require' } }));
  await assertRefused(r, tls, db);
  assert.match(r.stderr, /certificate/i, tls.explain(r));
  assert.match(r.stderr, /unknown ?issuer|not trusted|untrusted|could not be verified|unable to verify|verif/i, tls.explain(r));
  // It says how to fix it.
  assert.match(r.stderr, /sslrootcert/, tls.explain(r));
  assert.match(r.stderr, /sslmode=no-verify|TIDEMARK_TLS_INSECURE/, tls.explain(r));
});

test('sslmode=require with TIDEMARK_TLS_INSECURE=1 (or --tls-insecure) encrypts without verifying', engine, async (t) => {
  let db = await tls.createDatabase('app');
  let r = await deploy(t, url(tls, db, { params: { sslmode: 'require' } }), { env: { TIDEMARK_TLS_INSECURE: '1' } });
  await assertDeployed(r, tls, db);
  db = await tls.createDatabase('app');
  r = await deploy(t, url(tls, db, { params: { sslmode: 'require' } }), { args: ['--tls-insecure'] });
  await assertDeployed(r, tls, db);
});

test('sslmode=no-verify encrypts without verifying (chain or host name)', engine, async (t) => {
  const db = await tls.createDatabase('app');
  const r = await deploy(t, url(tls, db, { host: '127.0.0.1', params: { sslmode: 'no-verify' } }));
  await assertDeployed(r, tls, db);
});

test('sslmode=require with sslrootcert: verified, works', engine, async (t) => {
  const db = await tls.createDatabase('app');
  const r = await deploy(t, url(tls, db, { params: { sslmode: 'require', sslrootcert: certs.ca } }));
  await assertDeployed(r, tls, db);
});

test('sslmode=verify-ca checks the chain but not the host name', engine, async (t) => {
  for (const host of ['localhost', '127.0.0.1']) {
    const db = await tls.createDatabase('app');
    const r = await deploy(t, url(tls, db, { host, params: { sslmode: 'verify-ca', sslrootcert: certs.ca } }));
    await assertDeployed(r, tls, db);
  }
});

test('sslmode=verify-ca with the wrong CA: the certificate is not trusted', engine, async (t) => {
  const db = await tls.createDatabase('app');
  const r = await deploy(t, url(tls, db, { params: { sslmode: 'verify-ca', sslrootcert: certs.wrongCa } }));
  await assertRefused(r, tls, db);
  assert.match(r.stderr, /certificate/i, tls.explain(r));
  assert.match(r.stderr, /unknown ?issuer|not trusted|untrusted|could not be verified|unable to verify/i, tls.explain(r));
});

test('sslmode=verify-full checks the host name: localhost works, 127.0.0.1 does not', engine, async (t) => {
  const good = await tls.createDatabase('app');
  const ok = await deploy(t, url(tls, good, { params: { sslmode: 'verify-full', sslrootcert: certs.ca } }));
  await assertDeployed(ok, tls, good);

  const bad = await tls.createDatabase('app');
  const r = await deploy(t, url(tls, bad, { host: '127.0.0.1', params: { sslmode: 'verify-full', sslrootcert: certs.ca } }));
  await assertRefused(r, tls, bad);
  // The message is about the name, not a generic failure.
  assert.match(r.stderr, /not valid for|does not match|host ?name|altnames/i, tls.explain(r));
  assert.match(r.stderr, /localhost/, tls.explain(r));
});

test('a client certificate (sslcert + sslkey) logs in a cert-authenticated role', engine, async (t) => {
  const db = await tls.createDatabase('certuser');
  const params = { sslmode: 'verify-full', sslrootcert: certs.ca, sslcert: certs.clientCert, sslkey: certs.clientKey };
  const r = await deploy(t, url(tls, db, { user: 'certuser', password: undefined, params }));
  await assertDeployed(r, tls, db);
  assert.equal(await tls.psql('SELECT DISTINCT applied_by FROM schema_migrations', db), 'certuser');

  // Without the certificate the same role is refused, so the pass above was the certificate's doing.
  const db2 = await tls.createDatabase('certuser');
  const { sslcert, sslkey, ...noCert } = params;
  const refused = await deploy(t, url(tls, db2, { user: 'certuser', password: undefined, params: noCert }));
  await assertRefused(refused, tls, db2);
  assert.match(refused.stderr, /certificate/i);
});

test('the roots in SSL_CERT_FILE are trusted (sslmode=verify-full, no sslrootcert)', engine, async (t) => {
  const db = await tls.createDatabase('app');
  const r = await deploy(t, url(tls, db, { params: { sslmode: 'verify-full' } }), { env: { SSL_CERT_FILE: certs.ca } });
  await assertDeployed(r, tls, db);
});

// ------------------------------------------------------------------ SCRAM

test('SCRAM with channel_binding=require over verified TLS', engine, async (t) => {
  const db = await tls.createDatabase('app');
  const r = await deploy(t, url(tls, db, { params: { sslmode: 'require', sslrootcert: certs.ca, channel_binding: 'require' } }));
  await assertDeployed(r, tls, db);
});

test('channel_binding=require without TLS fails', engine, async (t) => {
  const db = await plain.createDatabase('app');
  const r = await deploy(t, url(plain, db, { host: '127.0.0.1', params: { sslmode: 'disable', channel_binding: 'require' } }));
  await assertRefused(r, plain, db);
});

test('a wrong password fails at once (no retries), says so, and is never shown', engine, async (t) => {
  const wrong = 'Wr0ngPassw0rd-zq81x';
  for (const [server, params] of [
    [plain, { sslmode: 'disable' }],
    [tls, { sslmode: 'verify-full', sslrootcert: certs.ca }],
  ]) {
    const db = await server.createDatabase('app');
    const host = server === plain ? '127.0.0.1' : 'localhost';
    const r = await deploy(t, url(server, db, { host, password: wrong, params }), { args: ['--connect-timeout', '30s'] });
    await assertRefused(r, server, db);
    assert.match(r.stderr, /password authentication failed for user "app"/, server.explain(r));
    assertNoSecret(assert, r, wrong);
    assert.ok(r.ms < 5000, `an authentication failure must not be retried until the connect timeout (took ${r.ms} ms)`);
  }
});

// ------------------------------------------------------------------ a server without TLS

test('a server without TLS: no sslmode falls back to plaintext; sslmode=require refuses', engine, async (t) => {
  const db = await plain.createDatabase('app');
  const ok = await deploy(t, url(plain, db, { host: '127.0.0.1' }));
  await assertDeployed(ok, plain, db);

  const db2 = await plain.createDatabase('app');
  const r = await deploy(t, url(plain, db2, { host: '127.0.0.1', params: { sslmode: 'require' } }), { args: ['--connect-timeout', '30s'] });
  await assertRefused(r, plain, db2);
  assert.match(r.stderr, /TLS|SSL/, plain.explain(r));
  assert.ok(r.ms < 5000, `a server that refuses TLS must not be retried until the connect timeout (took ${r.ms} ms)`);
});

test('connection string forms reach a SCRAM server: keyword form, postgresql://, encoded password, IPv6, Unix socket', engine, async (t) => {
  const q = (s) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const forms = [
    (db) => `postgresql://app:${PASSWORD}@127.0.0.1:${plain.port}/${db}`,
    (db) => `host=127.0.0.1 port=${plain.port} dbname=${db} user=app password=${PASSWORD} sslmode=disable`,
    (db) => `host=127.0.0.1 port = ${plain.port} dbname=${q(db)} user='app' password=${q(PASSWORD)} application_name='tidemark test'`,
    (db) => `postgres://odd:${encodeURIComponent(ODD_PASSWORD)}@127.0.0.1:${plain.port}/${db}?sslmode=prefer`,
    (db) => `host=127.0.0.1 port=${plain.port} dbname=${db} user=odd password=${q(ODD_PASSWORD)}`,
    (db) => `postgres://app:${PASSWORD}@[::1]:${plain.port}/${db}?connect_timeout=10&application_name=web&options=-c%20search_path%3Dpublic`,
    (db) => `postgres://app:${PASSWORD}@127.0.0.1:${plain.port}/${db}?schema=public&pgbouncer=false&connection_limit=5`,
    (db) => `postgres://app@/${db}?host=${encodeURIComponent(plain.dir)}&port=${plain.port}`,
    (db) => `host=${plain.dir} port=${plain.port} dbname=${db} user=app`,
  ];
  for (const form of forms) {
    const db = await plain.createDatabase('app');
    await plain.psql('GRANT CREATE ON SCHEMA public TO odd', db);
    const target = form(db);
    const r = await deploy(t, target);
    assert.equal(r.code, 0, `${target.replace(PASSWORD, '****')}\n${plain.explain(r)}`);
    assert.equal(await plain.psql('SELECT count(*) FROM schema_migrations', db), '2');
    assertNoSecret(assert, r, PASSWORD);
    assertNoSecret(assert, r, ODD_PASSWORD);
    assertNoSecret(assert, r, encodeURIComponent(ODD_PASSWORD));
  }
});

test('a non-ASCII password is SASLprepped as the server does: deploy, then a wrong one is refused', engine, async (t) => {
  const db = await plain.createDatabase('app');
  await plain.psql('GRANT CREATE ON SCHEMA public TO uni', db);
  const r = await deploy(t, `postgres://uni:${encodeURIComponent(UNICODE_PASSWORD)}@127.0.0.1:${plain.port}/${db}`);
  assert.equal(r.code, 0, plain.explain(r));
  assert.equal(await plain.psql('SELECT count(*) FROM schema_migrations', db), '2');
  assertNoSecret(assert, r, encodeURIComponent(UNICODE_PASSWORD));
  // The same letters without NFKC's folding are another password.
  const db2 = await plain.createDatabase('app');
  const wrong = await deploy(t, `postgres://uni:${encodeURIComponent('ﬁx-Ⅻ-pass!')}@127.0.0.1:${plain.port}/${db2}`);
  assert.equal(wrong.code, 2, plain.explain(wrong));
  assert.match(wrong.stderr, /password authentication failed/, plain.explain(wrong));
});
