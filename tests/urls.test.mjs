// The connection strings users paste, and the environment variables their
// hosting providers set: every form is recognized, pooled URLs are detected,
// the direct URL is chosen when there is one, and no password ever shows.
// lib/url.cjs and lib/config.cjs ask the engine's one URL parser (through
// the loaded backend), so all of it runs on both backends; the CLI checks at
// the end need no database (they fail before connecting, or against a
// closed port).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pkgRequire, project, tidemark, engine } from './helpers.mjs';
import { freePort } from './servers.mjs';

const url = pkgRequire('./lib/url.cjs');
const { resolveConfig } = pkgRequire('./lib/config.cjs');

// No database needed: runs on both backends (the URL parser is the engine's).
const pureJs = {};

/** What tidemark connects with for `env` (and an optional --url): `{ source, url, pooled, switchedFrom? }`. */
function choose(env, flag) {
  return url.choosePooling({ ...url.resolveUrl({ flag, env }), env });
}

const PW = 's3cr3t-Pw-7q';

// [connection string, the password in it (as written), pooled?]
const FORMS = [
  [`postgres://app:${PW}@db.example.com:5432/app`, PW, false],
  [`postgresql://app:${PW}@db.example.com/app`, PW, false],
  [`POSTGRES://app:${PW}@db.example.com/app`, PW, false],
  ['postgres://app@db.example.com/app', undefined, false],
  ['postgres://db.example.com/app', undefined, false],
  [`postgres://app:${encodeURIComponent('p@ss:w/rd?#% x')}@db.example.com/app`, encodeURIComponent('p@ss:w/rd?#% x'), false],
  [`postgres://app:${PW}@[::1]:5432/app`, PW, false],
  [`postgres://app:${PW}@[2001:db8::1]/app?sslmode=require`, PW, false],
  [`postgres://app:${PW}@[::1]:6543/app`, PW, true],
  [`postgres://app:${PW}@db.example.com/app?sslmode=verify-full&sslrootcert=%2Fetc%2Fssl%2Fca.pem&application_name=web&connect_timeout=10`, PW, false],
  [`postgres://app:${PW}@db.example.com/app?sslmode=require&channel_binding=require`, PW, false],
  [`postgres://app:${PW}@db.example.com/app?schema=tenant_1`, PW, false],
  [`postgres://app:${PW}@db.example.com/app?pgbouncer=false`, PW, false],
  [`postgres://app:${PW}@db.example.com/app?pgbouncer=true`, PW, true],
  [`postgres://app:${PW}@db.example.com:5432/app?pgbouncer=true&connection_limit=1&schema=public`, PW, true],
  [`postgres://app:${PW}@db.example.com:6543/app`, PW, true],
  [`postgres://app:${PW}@db.example.com:65432/app`, PW, false],
  // Neon: direct and pooled endpoints, channel binding, and the endpoint option for clients without SNI.
  [`postgresql://neondb_owner:${PW}@ep-cool-darkness-a1b2c3d4.us-east-2.aws.neon.tech/neondb?sslmode=require&channel_binding=require`, PW, false],
  [`postgresql://neondb_owner:${PW}@ep-cool-darkness-a1b2c3d4-pooler.us-east-2.aws.neon.tech/neondb?sslmode=require&channel_binding=require`, PW, true],
  [`postgres://neondb_owner:${PW}@ep-cool-darkness-a1b2c3d4.us-east-2.aws.neon.tech/neondb?options=endpoint%3Dep-cool-darkness-a1b2c3d4&sslmode=require`, PW, false],
  // Supabase's transaction pooler (Supavisor) on 6543, as Prisma is told to use it.
  [`postgres://postgres.abcdefghijklmnop:${PW}@aws-0-us-east-1.pooler.supabase.com:6543/postgres?pgbouncer=true`, PW, true],
  // Password as a query parameter.
  [`postgres://db.example.com/app?user=app&password=${PW}&sslmode=require`, PW, false],
  // Unix sockets.
  ['postgres://app@/app?host=/var/run/postgresql', undefined, false],
  [`postgres:///app?host=%2Fvar%2Frun%2Fpostgresql&user=app&password=${PW}`, PW, false],
  ['postgresql://%2Fvar%2Frun%2Fpostgresql/app', undefined, false],
  // libpq keyword/value strings.
  [`host=db.example.com port=5432 dbname=app user=app password=${PW}`, PW, false],
  [`host=db.example.com dbname='my app' user=app password='${PW} x'`, `${PW} x`, false],
  [`host = db.example.com dbname = app password = ${PW} sslmode=verify-full`, PW, false],
  ['host=/var/run/postgresql dbname=app user=app', undefined, false],
  [`host=ep-cool-darkness-a1b2c3d4-pooler.us-east-2.aws.neon.tech dbname=neondb user=u password=${PW} sslmode=require`, PW, true],
  ['host=db.example.com port=6543 dbname=app', undefined, true],
  [`host=db.example.com dbname=app user=app password=${PW} pgbouncer=true`, PW, true],
];

test('every URL form users paste is recognized as a PostgreSQL connection string', pureJs, () => {
  for (const [form] of FORMS) {
    assert.equal(url.inspect(form).problem, null, form);
  }
});

test('redaction hides the password of every form and keeps the rest', pureJs, () => {
  for (const [form, secret] of FORMS) {
    const shown = url.redact(form);
    if (secret === undefined) {
      assert.equal(shown, form, 'nothing to hide, nothing changed');
      continue;
    }
    assert.ok(!shown.includes(secret), `${form} -> ${shown}`);
    assert.ok(!shown.includes(decodeURIComponent(secret)), `${form} -> ${shown}`);
    assert.ok(shown.includes(url.MASK), shown);
    // The host is still there, so the user can see where it points.
    const host = /@\[?([^\]/:?]+)|host\s*=\s*(\S+)|\?host=([^&]+)/.exec(form);
    if (host) assert.ok(shown.includes(host[1] ?? host[2] ?? host[3]), `${form} -> ${shown}`);
  }
});

test('pooled URLs are detected: a -pooler. host, port 6543, or pgbouncer=true', pureJs, () => {
  for (const [form, , pooled] of FORMS) {
    const got = choose({}, form);
    assert.equal(got.url, form, 'a --url alone is used as given');
    assert.equal(Boolean(got.pooled), pooled, `${form}: pooled should be ${pooled}`);
    assert.equal(got.switchedFrom, undefined, form);
  }
});

// Vercel Postgres (Neon underneath): the variables the integration sets.
const VERCEL = {
  POSTGRES_URL: 'postgres://default:VercelPw-k2J9x@ep-frosty-sun-a1b2c3d4-pooler.us-east-1.aws.neon.tech/verceldb?sslmode=require',
  POSTGRES_PRISMA_URL:
    'postgres://default:VercelPw-k2J9x@ep-frosty-sun-a1b2c3d4-pooler.us-east-1.aws.neon.tech/verceldb?pgbouncer=true&connect_timeout=15&sslmode=require',
  POSTGRES_URL_NON_POOLING: 'postgres://default:VercelPw-k2J9x@ep-frosty-sun-a1b2c3d4.us-east-1.aws.neon.tech/verceldb?sslmode=require',
  POSTGRES_URL_NO_SSL: 'postgres://default:VercelPw-k2J9x@ep-frosty-sun-a1b2c3d4-pooler.us-east-1.aws.neon.tech/verceldb',
  POSTGRES_USER: 'default',
  POSTGRES_HOST: 'ep-frosty-sun-a1b2c3d4-pooler.us-east-1.aws.neon.tech',
  POSTGRES_PASSWORD: 'VercelPw-k2J9x',
  POSTGRES_DATABASE: 'verceldb',
};

// Neon's own integration (and the Vercel marketplace one).
const NEON = {
  DATABASE_URL:
    'postgresql://neondb_owner:NeonPw-Zx81q@ep-raspy-river-a5b6c7d8-pooler.us-east-2.aws.neon.tech/neondb?sslmode=require&channel_binding=require',
  DATABASE_URL_UNPOOLED:
    'postgresql://neondb_owner:NeonPw-Zx81q@ep-raspy-river-a5b6c7d8.us-east-2.aws.neon.tech/neondb?sslmode=require&channel_binding=require',
  PGHOST: 'ep-raspy-river-a5b6c7d8-pooler.us-east-2.aws.neon.tech',
  PGHOST_UNPOOLED: 'ep-raspy-river-a5b6c7d8.us-east-2.aws.neon.tech',
  PGUSER: 'neondb_owner',
  PGDATABASE: 'neondb',
  PGPASSWORD: 'NeonPw-Zx81q',
};

test("Vercel Postgres's variables: POSTGRES_URL_NON_POOLING is used", pureJs, () => {
  const got = choose(VERCEL);
  assert.equal(got.source, 'POSTGRES_URL_NON_POOLING');
  assert.equal(got.url, VERCEL.POSTGRES_URL_NON_POOLING);
  assert.ok(!got.pooled);
  // And the pooled ones are recognized as such.
  for (const k of ['POSTGRES_URL', 'POSTGRES_PRISMA_URL', 'POSTGRES_URL_NO_SSL']) {
    assert.ok(choose({ [k]: VERCEL[k] }, VERCEL[k]).pooled, k);
  }
  for (const k of ['POSTGRES_URL', 'POSTGRES_PRISMA_URL', 'POSTGRES_URL_NON_POOLING', 'POSTGRES_URL_NO_SSL']) {
    assert.ok(!url.redact(VERCEL[k]).includes(VERCEL.POSTGRES_PASSWORD), k);
  }
  // Only the pooled POSTGRES_URL and the non-pooling one (the common subset).
  const two = choose({ POSTGRES_URL: VERCEL.POSTGRES_URL, POSTGRES_URL_NON_POOLING: VERCEL.POSTGRES_URL_NON_POOLING });
  assert.equal(two.source, 'POSTGRES_URL_NON_POOLING');
  assert.ok(!two.pooled);
  // Only the pooled one: used, in pool-safe mode.
  const pooledOnly = choose({ POSTGRES_URL: VERCEL.POSTGRES_URL });
  assert.equal(pooledOnly.source, 'POSTGRES_URL');
  assert.ok(pooledOnly.pooled);
});

test("Neon's variables: DATABASE_URL_UNPOOLED is used", pureJs, () => {
  const got = choose(NEON);
  assert.equal(got.source, 'DATABASE_URL_UNPOOLED');
  assert.equal(got.url, NEON.DATABASE_URL_UNPOOLED);
  assert.ok(!got.pooled);
  for (const k of ['DATABASE_URL', 'DATABASE_URL_UNPOOLED']) {
    assert.ok(!url.redact(NEON[k]).includes(NEON.PGPASSWORD), k);
  }
  // Both integrations at once (the Vercel marketplace sets both sets): a direct URL either way.
  const both = choose({ ...VERCEL, ...NEON });
  assert.ok(['DATABASE_URL_UNPOOLED', 'POSTGRES_URL_NON_POOLING'].includes(both.source), both.source);
  assert.ok(!both.pooled);
});

test('a pooled DATABASE_URL next to a direct one (Prisma\'s DIRECT_URL, Neon\'s DATABASE_URL_UNPOOLED): the direct one, and where it switched from', pureJs, () => {
  const pooled = 'postgres://app:PooledPw-1@db.example.com:6543/app?pgbouncer=true';
  const direct = 'postgres://app:DirectPw-2@db.example.com:5432/app';
  for (const name of ['DIRECT_URL', 'DATABASE_URL_UNPOOLED', 'POSTGRES_URL_NON_POOLING']) {
    const got = choose({ DATABASE_URL: pooled, [name]: direct });
    assert.equal(got.source, name);
    assert.equal(got.url, direct);
    assert.ok(!got.pooled);
    if (name === 'DIRECT_URL') assert.equal(got.switchedFrom, 'DATABASE_URL');
  }
  // A "direct" variable that is itself pooled is not a way out.
  const bothPooled = choose({ DATABASE_URL: pooled, DIRECT_URL: 'postgres://app:x@ep-a-pooler.us-east-2.aws.neon.tech/app' });
  assert.equal(bothPooled.source, 'DATABASE_URL');
  assert.ok(bothPooled.pooled);
  // Not pooled: DIRECT_URL is not consulted.
  const plain = choose({ DATABASE_URL: direct, DIRECT_URL: 'postgres://other@h/app' });
  assert.equal(plain.source, 'DATABASE_URL');
  assert.equal(plain.switchedFrom, undefined);
});

test('resolveConfig: the chosen URL, redacted, and pool-safe mode only when no direct URL is set', pureJs, (t) => {
  const cwd = project(t);
  const neon = resolveConfig({ cwd, environment: NEON, dotenv: false });
  assert.equal(neon.urlSource, 'DATABASE_URL_UNPOOLED');
  assert.equal(neon.redactedUrl, NEON.DATABASE_URL_UNPOOLED.replace(NEON.PGPASSWORD, '****'));
  assert.ok(!neon.poolSafe);
  assert.ok(!neon.warnings.some((w) => /pool/i.test(w.message)));

  const pooled = resolveConfig({ cwd, environment: { DATABASE_URL: NEON.DATABASE_URL }, dotenv: false });
  assert.equal(pooled.urlSource, 'DATABASE_URL');
  assert.ok(pooled.poolSafe);
  const w = pooled.warnings.find((x) => /pool-safe mode/.test(x.message));
  assert.ok(w, JSON.stringify(pooled.warnings));
  assert.ok(!w.message.includes(NEON.PGPASSWORD));
});

// ------------------------------------------------------------------ through the CLI

const MIGRATIONS = { 'migrations/001_a.sql': 'CREATE TABLE a (id int);\n' };

test('invalid URLs: exit 3, the URL shown redacted, and why', engine, async (t) => {
  const cwd = project(t, MIGRATIONS);
  const cases = [
    ['mysql://root:Sekrit-my1@db.example.com:3306/app', 'mysql://root:****@db.example.com:3306/app', /mysql:\/\/.*(not PostgreSQL|postgres:\/\/)/],
    ['notaurl', 'notaurl', /postgres:\/\//],
    ['postgres://u:Sekrit-port2@db.example.com:notaport/d', 'postgres://u:****@db.example.com:notaport/d', /port/i],
    ['postgres://u:Sekrit-ssl3@db.example.com/d?sslmode=verify-everything', 'postgres://u:****@db.example.com/d?sslmode=verify-everything', /sslmode/],
    ['postgres://u:Sekrit-key4@db.example.com/d?sslmdoe=require', 'postgres://u:****@db.example.com/d?sslmdoe=require', /sslmdoe/],
  ];
  for (const [bad, shown, why] of cases) {
    for (const env of [{}, { DATABASE_URL: bad }]) {
      const args = env.DATABASE_URL ? ['deploy'] : ['deploy', '--url', bad];
      const r = await tidemark(args, { cwd, env: { ...env, TIDEMARK_CONNECT_TIMEOUT: '1s' } });
      assert.equal(r.code, 3, `${bad}: ${r.all}`);
      assert.match(r.stderr, /^error: invalid database URL/, r.all);
      assert.ok(r.stderr.includes(shown), `${bad}: the message should show ${shown}:\n${r.stderr}`);
      // The reason, not just the URL, says what is wrong.
      assert.match(r.stderr.split(shown).join(''), why, r.all);
      const secret = /Sekrit-\w+/.exec(bad);
      if (secret) assert.ok(!r.all.includes(secret[0]), `the password leaked:\n${r.all}`);
    }
  }
});

test("the CLI with Vercel's and Neon's variables: says which variable it uses, never the password", engine, async (t) => {
  // The direct URL points at a closed local port, so the run fails fast
  // without a network; the pooled ones must not be tried at all.
  const port = await freePort();
  const cwd = project(t, MIGRATIONS);
  const local = (u) => u.replace(/@[^/]+\//, `@127.0.0.1:${port}/`);
  const sets = [
    ['POSTGRES_URL_NON_POOLING', { ...VERCEL, POSTGRES_URL_NON_POOLING: local(VERCEL.POSTGRES_URL_NON_POOLING) }, VERCEL.POSTGRES_PASSWORD],
    ['DATABASE_URL_UNPOOLED', { ...NEON, DATABASE_URL_UNPOOLED: local(NEON.DATABASE_URL_UNPOOLED) }, NEON.PGPASSWORD],
  ];
  for (const [source, env, password] of sets) {
    const r = await tidemark(['deploy', '--connect-timeout', '1s'], { cwd, env, timeout: 20_000 });
    assert.equal(r.code, 2, r.all);
    assert.ok(r.out[0].startsWith(`Using ${source} (${url.redact(env[source])})`), r.all);
    assert.ok(!r.all.includes(password), `the password leaked:\n${r.all}`);
    assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.ok(!r.all.includes('pool-safe'), r.all);
  }
});
