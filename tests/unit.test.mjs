// Config resolution, .env parsing, URL precedence and redaction. No
// database; URL reading and redaction are the engine's (through the loaded
// backend, so this runs once per backend).
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pkgRequire, project, writeFiles } from './helpers.mjs';

const { parseDotenv, loadDotenv } = pkgRequire('./lib/dotenv.cjs');
const { resolveConfig } = pkgRequire('./lib/config.cjs');
const { parseDuration } = pkgRequire('./lib/options.cjs');
const { redact, scrub, resolveUrl, urlFromPgEnv, inspect } = pkgRequire('./lib/url.cjs');
const { TidemarkError } = pkgRequire('./index.cjs');

test('.env parsing: quotes, export, comments, escapes, multiline', () => {
  const text = [
    '\ufeff# a comment',
    'PLAIN=value',
    'export EXPORTED=yes',
    '  SPACED  =  padded value  ',
    'EMPTY=',
    'INLINE=abc # trailing comment',
    'HASH_IN_VALUE=abc#def',
    "SINGLE='it''s $HOME \\n'",
    'DOUBLE="line1\\nline2 \\"q\\" # not a comment"',
    'MULTI="first',
    'second"',
    'BACKTICK=`a "b" \'c\'`',
    'CRLF=windows\r',
    'not a valid line',
    'URL=postgres://u:p@h:5432/db?sslmode=require&x=1',
    'DUP=one',
    'DUP=two',
  ].join('\n');
  assert.deepEqual(parseDotenv(text), {
    PLAIN: 'value',
    EXPORTED: 'yes',
    SPACED: 'padded value',
    EMPTY: '',
    INLINE: 'abc',
    HASH_IN_VALUE: 'abc#def',
    SINGLE: "it",
    DOUBLE: 'line1\nline2 "q" # not a comment',
    MULTI: 'first\nsecond',
    BACKTICK: 'a "b" \'c\'',
    CRLF: 'windows',
    URL: 'postgres://u:p@h:5432/db?sslmode=require&x=1',
    DUP: 'two',
  });
  // Single quotes are literal.
  assert.deepEqual(parseDotenv("A='x\\ny $B'"), { A: 'x\\ny $B' });
});

test('.env files load in Next.js precedence and never override the environment', (t) => {
  const dir = project(t, {
    '.env': 'A=env\nB=env\nC=env\nD=env\nE=env\n',
    '.env.development': 'A=development\nB=development\nC=development\n',
    '.env.local': 'A=local\nB=local\n',
    '.env.development.local': 'A=development.local\n',
    '.env.test': 'A=test\n',
  });
  const dev = loadDotenv(dir, { E: 'from the shell' });
  assert.deepEqual(dev.values, { A: 'development.local', B: 'local', C: 'development', D: 'env' });
  assert.deepEqual(dev.files, ['.env.development.local', '.env.local', '.env.development', '.env']);
  assert.equal(dev.origin.B, '.env.local');

  // NODE_ENV=test skips .env.local, so tests are reproducible.
  const testEnv = loadDotenv(dir, { NODE_ENV: 'test' });
  assert.deepEqual(testEnv.values, { A: 'test', B: 'env', C: 'env', D: 'env', E: 'env' });

  // A variable set to the empty string is still set.
  assert.equal(loadDotenv(dir, { D: '' }).values.D, undefined);
});

test('durations: a bare number is in the option\'s unit (milliseconds unless told), strings take units', () => {
  assert.equal(parseDuration(1500), 1500);
  assert.equal(parseDuration('1500'), 1500);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('5s'), 5000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('soon'), undefined);
  assert.equal(parseDuration('-5s'), undefined);
  assert.equal(parseDuration(-1), undefined);
  assert.equal(parseDuration('20', 's'), 20_000);
  assert.equal(parseDuration(20, 's'), 20_000);
  assert.equal(parseDuration('250ms', 's'), 250);
  assert.equal(parseDuration('2min'), 120_000);
  assert.equal(parseDuration('0'), 0);
});

test('config precedence: option > env > tidemark.config.json > package.json key > default', (t) => {
  const dir = project(t, {
    'package.json': { name: 'app', tidemark: { table: 'from_package_json', schema: 'pkg_schema', dir: 'pkg-migrations' } },
  });
  const env = {};
  let c = resolveConfig({ cwd: dir, environment: env });
  assert.equal(c.table, 'from_package_json');
  assert.equal(c.schema, 'pkg_schema');
  assert.equal(c.dir, path.join(dir, 'pkg-migrations'));
  assert.equal(c.seedsTable, 'schema_seeds');
  assert.equal(c.sources.table, 'package.json ("tidemark" key)');

  // tidemark.config.json wins over package.json entirely (the files are not merged).
  writeFiles(dir, { 'tidemark.config.json': { table: 'from_config_file', lockTimeout: '5s' } });
  c = resolveConfig({ cwd: dir, environment: env });
  assert.equal(c.table, 'from_config_file');
  assert.equal(c.schema, 'public');
  assert.equal(c.lockTimeout, 5000);
  assert.equal(c.sources.table, 'tidemark.config.json');

  c = resolveConfig({ cwd: dir, environment: { TIDEMARK_TABLE: 'from_env', TIDEMARK_LOCK_TIMEOUT: '7s' } });
  assert.equal(c.table, 'from_env');
  assert.equal(c.lockTimeout, 7000);
  assert.equal(c.sources.table, 'TIDEMARK_TABLE');

  c = resolveConfig({ cwd: dir, table: 'from_flag', lockTimeout: 9000, environment: { TIDEMARK_TABLE: 'from_env' } });
  assert.equal(c.table, 'from_flag');
  assert.equal(c.lockTimeout, 9000);

  // Defaults.
  const bare = resolveConfig({ cwd: project(t), environment: {} });
  assert.equal(bare.dir, path.join(bare.cwd, 'migrations'));
  assert.equal(bare.seedsDir, path.join(bare.cwd, 'seeds'));
  assert.equal(bare.schema, 'public');
  assert.equal(bare.table, 'schema_migrations');
  assert.equal(bare.lockWaitTimeout, 120_000);
  assert.equal(bare.connectTimeout, 30_000);
  assert.equal(bare.lockTimeout, undefined);
  assert.equal(bare.seedEnv, 'development');
  assert.equal(bare.production, false);
});

test('config: --config paths are relative to the config file; unknown keys warn; bad values name their source', (t) => {
  const dir = project(t, {
    'config/db.json': { dir: '../db/migrations', seedsDir: 'seeds', tablee: 'typo' },
    'bad.json': '{ not json',
    'list.json': '[1, 2]',
    'wrongtype.json': { lockTimeout: 'soon' },
  });
  const c = resolveConfig({ cwd: dir, config: 'config/db.json', environment: {} });
  assert.equal(c.dir, path.join(dir, 'db', 'migrations'));
  assert.equal(c.seedsDir, path.join(dir, 'config', 'seeds'));
  assert.equal(c.warnings.length, 1);
  assert.match(c.warnings[0].message, /unknown key "tablee" in config\/db\.json/);

  // A flag's path is relative to cwd even when a config file is used.
  assert.equal(resolveConfig({ cwd: dir, config: 'config/db.json', dir: 'm', environment: {} }).dir, path.join(dir, 'm'));

  const err = (fn) => {
    try {
      fn();
    } catch (e) {
      return e;
    }
    assert.fail('expected an error');
  };
  let e = err(() => resolveConfig({ cwd: dir, config: 'missing.json', environment: {} }));
  assert.ok(e instanceof TidemarkError);
  assert.equal(e.code, 'E_CONFIG');
  assert.equal(e.exitCode, 3);
  assert.match(e.message, /could not read the config file missing\.json/);
  e = err(() => resolveConfig({ cwd: dir, config: 'bad.json', environment: {} }));
  assert.match(e.message, /bad\.json is not valid JSON/);
  e = err(() => resolveConfig({ cwd: dir, config: 'list.json', environment: {} }));
  assert.match(e.message, /must hold a JSON object/);
  e = err(() => resolveConfig({ cwd: dir, config: 'wrongtype.json', environment: {} }));
  assert.match(e.message, /"lockTimeout" in wrongtype\.json must be a duration/);
  e = err(() => resolveConfig({ cwd: dir, environment: { TIDEMARK_CONNECT_TIMEOUT: 'forever' } }));
  assert.match(e.message, /^TIDEMARK_CONNECT_TIMEOUT must be a duration/);
  e = err(() => resolveConfig({ cwd: dir, steps: 0, environment: {} }));
  assert.match(e.message, /steps option must be a whole number/);
});

test('config: .env files feed the environment fallbacks, the shell wins', (t) => {
  const dir = project(t, { '.env': 'TIDEMARK_SCHEMA=from_dotenv\nDATABASE_URL=postgres://a@dotenv/db\n' });
  let c = resolveConfig({ cwd: dir, environment: {} });
  assert.equal(c.schema, 'from_dotenv');
  assert.equal(c.url, 'postgres://a@dotenv/db');
  assert.equal(c.urlSource, 'DATABASE_URL');
  c = resolveConfig({ cwd: dir, environment: { TIDEMARK_SCHEMA: 'from_shell' } });
  assert.equal(c.schema, 'from_shell');
  c = resolveConfig({ cwd: dir, environment: {}, dotenv: false });
  assert.equal(c.schema, 'public');
  assert.equal(c.url, undefined);
});

test('URL precedence: flag, TIDEMARK_DATABASE_URL, DATABASE_URL_UNPOOLED, POSTGRES_URL_NON_POOLING, DATABASE_URL, POSTGRES_URL, config, PG*', () => {
  const all = {
    TIDEMARK_DATABASE_URL: 'postgres://t@h/1',
    DATABASE_URL_UNPOOLED: 'postgres://neon@h/2',
    POSTGRES_URL_NON_POOLING: 'postgres://vercel@h/3',
    DATABASE_URL: 'postgres://d@h-pooler/4',
    POSTGRES_URL: 'postgres://p@h/5',
    PGHOST: 'pghost',
    PGDATABASE: 'pgdb',
  };
  const order = ['TIDEMARK_DATABASE_URL', 'DATABASE_URL_UNPOOLED', 'POSTGRES_URL_NON_POOLING', 'DATABASE_URL', 'POSTGRES_URL'];
  assert.deepEqual(resolveUrl({ flag: 'postgres://flag@h/0', env: all }), { url: 'postgres://flag@h/0', source: '--url' });
  const env = { ...all };
  for (const name of order) {
    assert.deepEqual(resolveUrl({ env }), { url: all[name], source: name });
    delete env[name];
  }
  assert.deepEqual(resolveUrl({ env, configUrl: 'postgres://cfg@h/6', configLabel: 'tidemark.config.json' }), {
    url: 'postgres://cfg@h/6',
    source: 'tidemark.config.json',
  });
  assert.deepEqual(resolveUrl({ env }), { url: 'postgres://pghost/pgdb', source: 'PG* variables' });
  assert.deepEqual(resolveUrl({ env: {} }), { url: undefined, source: undefined });
  // Empty values count as unset (CI templates often leave them empty).
  assert.equal(resolveUrl({ env: { DATABASE_URL_UNPOOLED: '', DATABASE_URL: 'postgres://x@h/d' } }).source, 'DATABASE_URL');
});

test('PG* variables build a URL only when PGHOST or PGDATABASE is set', () => {
  assert.equal(urlFromPgEnv({ PGUSER: 'u', PGPASSWORD: 'p' }), undefined);
  assert.equal(
    urlFromPgEnv({ PGHOST: 'db.example.com', PGPORT: '6543', PGUSER: 'app user', PGPASSWORD: 'p@ss/w:rd', PGDATABASE: 'app', PGSSLMODE: 'require' }),
    'postgres://app%20user:p%40ss%2Fw%3Ard@db.example.com:6543/app?sslmode=require',
  );
  assert.equal(urlFromPgEnv({ PGDATABASE: 'app' }), 'postgres://localhost/app');
  assert.equal(urlFromPgEnv({ PGHOST: '/var/run/postgresql', PGDATABASE: 'app', PGUSER: 'u' }), 'postgres://u@/app?host=%2Fvar%2Frun%2Fpostgresql');
});

test('redact hides the password in every URL shape', () => {
  const cases = [
    ['postgres://app:s3cret@db.example.com:5432/app', 'postgres://app:****@db.example.com:5432/app'],
    ['postgresql://app:s3cret@db.example.com/app?sslmode=require', 'postgresql://app:****@db.example.com/app?sslmode=require'],
    ['postgres://app@db.example.com/app', 'postgres://app@db.example.com/app'],
    ['postgres://db.example.com/app', 'postgres://db.example.com/app'],
    ['postgres://app:p%40ss@h/db', 'postgres://app:****@h/db'],
    // Invalid (unencoded '@', '/', '?') must not leak either.
    ['postgres://app:p@ss@h/db', 'postgres://app:****@h/db'],
    ['postgres://app:pa/ss@h/db', 'postgres://app:****@h/db'],
    ['postgres://app:pa?ss@h/db', 'postgres://app:****@h/db'],
    ['postgres://h/db?user=app&password=s3cret&sslmode=require', 'postgres://h/db?user=app&password=****&sslmode=require'],
    ['postgres://h/db?PASSWORD=s3cret', 'postgres://h/db?PASSWORD=****'],
    ['host=h user=app password=s3cret dbname=db', 'host=h user=app password=**** dbname=db'],
    ["host=h password='s3 cret' dbname=db", 'host=h password=**** dbname=db'],
    ['postgres://app:@h/db', 'postgres://app:****@h/db'],
  ];
  for (const [input, expected] of cases) {
    assert.equal(redact(input), expected, input);
    assert.ok(!redact(input).includes('s3cret'), input);
  }
});

test('scrub removes the password, raw or decoded, from any message', () => {
  const url = 'postgres://app:p%40ssw0rd@h/db';
  assert.equal(scrub('auth failed for p@ssw0rd and p%40ssw0rd', url), 'auth failed for **** and ****');
  assert.equal(scrub('nothing to hide', 'postgres://h/db'), 'nothing to hide');
});

test('URL shape check: only PostgreSQL URLs and keyword strings', () => {
  assert.equal(inspect('postgres://h/db').problem, null);
  assert.equal(inspect('POSTGRESQL://h/db').problem, null);
  assert.equal(inspect('host=localhost dbname=app').problem, null);
  assert.match(inspect('mysql://u:p@h/db').problem, /mysql:\/\/ is not PostgreSQL's/);
  assert.match(inspect('localhost:5432').problem, /expected a postgres:\/\//);
});

test('production: NODE_ENV or VERCEL_ENV, and the seed environment', (t) => {
  const cwd = project(t);
  let c = resolveConfig({ cwd, environment: { NODE_ENV: 'production' } });
  assert.equal(c.production, true);
  assert.equal(c.productionSource, 'NODE_ENV=production');
  assert.equal(c.seedEnv, 'production');
  c = resolveConfig({ cwd, environment: { VERCEL_ENV: 'production', NODE_ENV: 'development' } });
  assert.equal(c.production, true);
  assert.equal(c.productionSource, 'VERCEL_ENV=production');
  assert.equal(c.seedEnv, 'development');
  c = resolveConfig({ cwd, environment: { VERCEL_ENV: 'preview' } });
  assert.equal(c.production, false);
  c = resolveConfig({ cwd, env: 'staging', environment: { NODE_ENV: 'test' } });
  assert.equal(c.seedEnv, 'staging');
  assert.throws(() => resolveConfig({ cwd, env: '../etc', environment: {} }), /plain folder name/);
});

test('TidemarkError: codes map to exit codes, toJSON is the --json error record', () => {
  const e = new TidemarkError('E_MIGRATION_FAILED', 'boom', { file: 'migrations/001_x.sql', line: 2, column: 3, sqlState: '42P01' });
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'TidemarkError');
  assert.equal(e.exitCode, 2);
  assert.deepEqual(e.applied, []);
  assert.deepEqual(e.toJSON(), {
    event: 'error',
    code: 'E_MIGRATION_FAILED',
    message: 'boom',
    file: 'migrations/001_x.sql',
    line: 2,
    column: 3,
    sqlState: '42P01',
    exitCode: 2,
  });
  for (const code of ['E_USAGE', 'E_CONFIG', 'E_NO_DATABASE_URL', 'E_INVALID_URL', 'E_INVALID_OPTION', 'E_BACKEND']) {
    assert.equal(new TidemarkError(code, 'x').exitCode, 3, code);
  }
  for (const code of ['E_CONNECT', 'E_DATABASE', 'E_LOCK_TIMEOUT', 'E_SEED_PRODUCTION', 'E_PANIC']) {
    assert.equal(new TidemarkError(code, 'x').exitCode, 2, code);
  }
});

test('the ESM entry re-exports the CommonJS API (one TidemarkError class)', async () => {
  const esm = await import(path.join(pkgRequire.resolve('./index.cjs'), '..', 'index.mjs'));
  const cjs = pkgRequire('./index.cjs');
  for (const name of ['migrate', 'deploy', 'status', 'down', 'redo', 'seed', 'reset', 'create', 'resolveConfig', 'redact', 'TidemarkError']) {
    assert.equal(typeof esm[name], 'function', name);
    assert.equal(esm[name], cjs[name], name);
  }
  assert.equal(esm.version, '0.1.0');
  // Through the package's exports map too.
  const viaExports = pkgRequire('tidemark/package.json');
  assert.equal(viaExports.version, '0.1.0');
});

test('tlsInsecure comes from the flag, TIDEMARK_TLS_INSECURE or the config; timeouts fit 32 bits', (t) => {
  const cwd = project(t);
  assert.equal(resolveConfig({ cwd, environment: {} }).tlsInsecure, undefined);
  assert.equal(resolveConfig({ cwd, environment: { TIDEMARK_TLS_INSECURE: '1' } }).tlsInsecure, true);
  assert.equal(resolveConfig({ cwd, environment: { TIDEMARK_TLS_INSECURE: 'true' } }).tlsInsecure, true);
  assert.equal(resolveConfig({ cwd, tlsInsecure: false, environment: { TIDEMARK_TLS_INSECURE: '1' } }).tlsInsecure, false);
  assert.throws(() => resolveConfig({ cwd, environment: { TIDEMARK_TLS_INSECURE: 'yes please' } }), /TIDEMARK_TLS_INSECURE must be true or false/);
  assert.equal(resolveConfig({ cwd, statementTimeout: '24h', environment: {} }).statementTimeout, 86_400_000);
  assert.throws(() => resolveConfig({ cwd, lockWaitTimeout: '1000h', environment: {} }), /at most 24 days/);
  assert.throws(() => resolveConfig({ cwd, steps: 2 ** 40, environment: {} }), /whole number/);
});

test('script seeds: which Node runs TypeScript, and the flag it needs', () => {
  const { nodeFlags } = pkgRequire('./lib/script-seeds.cjs');
  for (const file of ['001_a.mjs', '001_a.cjs', '001_a.js']) assert.deepEqual(nodeFlags(file, '18.0.0'), []);
  assert.deepEqual(nodeFlags('001_a.ts', '22.6.0'), ['--experimental-strip-types']);
  assert.deepEqual(nodeFlags('001_a.mts', '23.5.1'), ['--experimental-strip-types']);
  assert.deepEqual(nodeFlags('001_a.ts', '23.6.0'), []);
  assert.deepEqual(nodeFlags('001_a.cts', '24.1.0'), []);
  for (const version of ['20.20.2', '22.5.1']) {
    assert.throws(
      () => nodeFlags('seeds/development/001_a.ts', version),
      (err) => err.code === 'E_SCRIPT_SEED_UNSUPPORTED' && err.exitCode === 3 && err.message.includes(`this Node (${version})`) && err.message.includes('22.6'),
    );
  }
});

test("CLI flags: the fast parser agrees with node:util's parseArgs on what it accepts, and leaves the rest to it", async () => {
  const { parseArgs } = await import('node:util');
  const { parseSimple, parseArgsOptions, parseCli } = pkgRequire('./lib/cli/parse.cjs');
  const { OPTIONS } = pkgRequire('./lib/options.cjs');
  const valued = OPTIONS.filter((o) => o.type !== 'boolean').map((o) => o.flag);
  const booleans = OPTIONS.filter((o) => o.type === 'boolean').map((o) => o.flag);
  const reference = (args) => parseArgs({ args, options: parseArgsOptions(), allowPositionals: true, strict: true, tokens: true });
  const shape = (p) => JSON.stringify({ values: { ...p.values }, positionals: p.positionals, tokens: p.tokens });
  const accepted = [
    ['deploy', '--dir', 'migrations', '--url', 'postgres://u:p@h/d?sslmode=require'],
    ['migrate', '--url=postgres://h/d', '--dry-run', '--json'],
    ['seed', '--env', 'development', '--only', 'a.sql', '--only', 'b.sql'],
    ['create', 'add', 'users', '--reversible'],
    ['deploy', '--dir', 'a', '--dir', 'b'],
    ['status', '--url=', '--dir=x=y'],
    ['deploy', '--connect-timeout', '5s', '--lock-timeout=2s'],
    ['verify', '--strict'],
    ['--version'],
    ...valued.map((f) => ['status', `--${f}`, 'v']),
    ...valued.map((f) => ['status', `--${f}=v`]),
    ...booleans.map((f) => ['status', `--${f}`]),
  ];
  for (const args of accepted) {
    const fast = parseSimple(args);
    assert.ok(fast, `the fast parser takes ${args.join(' ')}`);
    assert.equal(shape(fast), shape(reference(args)), args.join(' '));
  }
  // Everything else goes to parseArgs: its results and its errors, as before.
  const declined = [
    ['deploy', '-d', 'migrations'],
    ['deploy', '-u', 'postgres://h/d', '-y'],
    ['deploy', '--', '--dir'],
    ['deploy', '--nope'],
    ['deploy', '--dir'],
    ['deploy', '--dir', '--json'],
    ['deploy', '--json=1'],
    ['deploy', '-'],
    ['-h'],
  ];
  for (const args of declined) assert.equal(parseSimple(args), undefined, args.join(' '));
  // The usage errors the CLI gives for them are parseArgs's, mapped.
  assert.throws(() => parseCli(['deploy', '--nope']), /unknown option --nope/);
  assert.throws(() => parseCli(['deploy', '--dir']), /option --dir needs a value/);
  assert.throws(() => parseCli(['deploy', '--json=1']), /option --json does not take a value/);
  assert.deepEqual({ ...parseCli(['deploy', '-d', 'm', '-u', 'postgres://h/d']).values }, { dir: 'm', url: 'postgres://h/d' });
});
