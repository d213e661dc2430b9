// The CLI contract that needs no database and no engine: help, usage
// errors, configuration errors and the production refusals (all happen
// before tidemark connects or loads its engine).
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { tidemark, project, ndjson, BASIC, assertNoSecret, CLI, cleanEnv } from './helpers.mjs';

const COMMANDS = ['migrate', 'deploy', 'status', 'down', 'redo', 'create', 'seed', 'reset'];

test('tidemark --help lists every command, the common flags with their env fallbacks, and the exit codes', async (t) => {
  const cwd = project(t);
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = await tidemark(args, { cwd });
    assert.equal(r.code, 0, args.join(' '));
    assert.equal(r.stderr, '');
    assert.match(r.out[0], /^tidemark 0\.1\.0: /);
    assert.ok(r.out.includes('Usage: tidemark <command> [options]'));
    for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${c}\\b`, 'm'), c);
    assert.match(r.stdout, /^  migrate, up\s+Apply pending migrations$/m);
    assert.match(r.stdout, /-u, --url <url>/);
    assert.match(r.stdout, /TIDEMARK_DATABASE_URL, DATABASE_URL_UNPOOLED, POSTGRES_URL_NON_POOLING, DATABASE_URL, POSTGRES_URL, PG\*/);
    assert.match(r.stdout, /-d, --dir <path>\s+Migrations folder \[default: migrations; env: TIDEMARK_DIR\]/);
    assert.match(r.stdout, /--lock-wait-timeout <time>.*\n.*\[a bare number is milliseconds; default: 120s; env: TIDEMARK_LOCK_WAIT_TIMEOUT\]/);
    assert.match(r.stdout, /--connect-timeout <time>.*\n.*\[a bare number is seconds; default: 30s; env: TIDEMARK_CONNECT_TIMEOUT\]/);
    for (const env of ['TIDEMARK_SCHEMA', 'TIDEMARK_TABLE', 'TIDEMARK_LOCK_TIMEOUT', 'TIDEMARK_STATEMENT_TIMEOUT']) {
      assert.match(r.stdout, new RegExp(env), env);
    }
    assert.match(r.stdout, /^Exit codes:$/m);
    assert.match(r.stdout, /^  3  configuration or usage error/m);
  }
});

test('per-command help shows only that command\'s flags', async (t) => {
  const cwd = project(t);
  const expectations = {
    migrate: { has: ['--allow-drift', '--allow-missing', '--allow-out-of-order', '--to <version>', '--url'], not: ['--steps', '--exit-code', '--reversible', '--allow-production'] },
    up: { has: ['tidemark migrate (alias: up)', '--allow-drift'], not: [] },
    deploy: { has: ['--url', '--json', 'Also accepted, so that one set of flags works for every command (deploy does not use them):\n  --seeds-dir\n'], not: ['--allow-drift', '--to'] },
    status: { has: ['--exit-code'], not: ['--steps'] },
    down: { has: ['--steps <n>', '--to <version>'], not: ['--allow-drift'] },
    redo: { has: ['--steps <n>'], not: ['--to <version>'] },
    create: { has: ['Usage: tidemark create <name> [options]', '--reversible', '--dir', '(create does not use them):\n  --url, --seeds-dir, --schema,'], not: ['--steps'] },
    seed: { has: ['--env <name>', '--allow-production', '--force', '--seeds-dir <path>'], not: ['--steps'] },
    reset: { has: ['--env <name>', '--seeds-dir <path>'], not: ['--allow-production', '--force'] },
  };
  for (const [command, { has, not }] of Object.entries(expectations)) {
    for (const args of [[command, '--help'], ['help', command], [command, '-h']]) {
      const r = await tidemark(args, { cwd });
      assert.equal(r.code, 0, args.join(' '));
      for (const s of has) assert.ok(r.stdout.includes(s), `${args.join(' ')} should mention ${s}`);
      for (const flag of not) {
        const listed = new RegExp(`^\\s+(?:-\\w, )?${flag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`, 'm');
        assert.doesNotMatch(r.stdout, listed, `${args.join(' ')} should not list ${flag}`);
      }
    }
  }
});

test('unknown command, unknown flag, flag of another command, missing value: exit 3 with a pointer to --help', async (t) => {
  const cwd = project(t, BASIC);
  const cases = [
    [['frobnicate'], /^error: unknown command "frobnicate"; the commands are migrate, deploy, .*; run tidemark --help$/],
    [['migrate', '--frobnicate'], /^error: unknown option --frobnicate; run tidemark migrate --help for the options$/],
    [['migrate', '-x'], /^error: unknown option -x; run tidemark migrate --help/],
    [['migrate', '--steps', '2'], /^error: option --steps does not apply to tidemark migrate \(it is for: down, redo\); run tidemark migrate --help$/],
    [['deploy', '--allow-drift'], /^error: option --allow-drift does not apply to tidemark deploy \(it is for: migrate\); deploy is always strict/],
    [['status', '--url'], /^error: option --url needs a value; run tidemark status --help$/],
    [['status', '--json=yes'], /^error: option --json does not take a value/],
    [['status', 'extra'], /^error: unexpected argument "extra" for tidemark status/],
    [['down', '--steps', 'two', '--url', 'postgres://h/db'], /^error: --steps must be a whole number of at least 1, not "two"$/],
    [['migrate', '--lock-timeout', 'soon', '--url', 'postgres://h/db'], /^error: --lock-timeout must be a duration above zero such as 5000 \(a bare number is milliseconds\), 500ms, 20s or 2min \(at most 24 days\), not "soon"$/],
  ];
  for (const [args, pattern] of cases) {
    const r = await tidemark(args, { cwd });
    assert.equal(r.code, 3, `${args.join(' ')}: ${r.all}`);
    assert.equal(r.stdout, '', args.join(' '));
    assert.match(r.err[0], pattern, args.join(' '));
  }
  // No command at all: the help, and exit 3.
  const bare = await tidemark([], { cwd });
  assert.equal(bare.code, 3);
  assert.match(bare.stderr, /Usage: tidemark <command>/);
  assert.match(bare.stderr, /error: no command given; run tidemark --help/);
});

test('no database URL: exit 3, E_NO_DATABASE_URL, naming every variable looked at', async (t) => {
  const cwd = project(t, BASIC);
  for (const command of ['migrate', 'deploy', 'status', 'down', 'redo', 'seed', 'reset']) {
    const r = await tidemark([command], { cwd, env: { CI: 'true' } });
    assert.equal(r.code, 3, command);
    assert.equal(r.stdout, '', command);
    assert.equal(
      r.err[0],
      'error: no database URL: pass --url, or set one of TIDEMARK_DATABASE_URL, DATABASE_URL_UNPOOLED, ' +
        'POSTGRES_URL_NON_POOLING, DATABASE_URL, POSTGRES_URL (in the environment or a .env file), or the PGHOST/PGDATABASE variables',
      command,
    );
  }
  const json = await tidemark(['migrate', '--json'], { cwd, env: { CI: 'true' } });
  assert.equal(json.code, 3);
  const [record, ...rest] = ndjson(json.stdout);
  assert.deepEqual(rest, []);
  assert.equal(record.event, 'error');
  assert.equal(record.code, 'E_NO_DATABASE_URL');
  assert.equal(record.exitCode, 3);
  assert.match(record.message, /DATABASE_URL_UNPOOLED/);
});

test('a URL that is not PostgreSQL\'s: exit 3 E_INVALID_URL, password redacted, nothing migrated', async (t) => {
  const cwd = project(t, BASIC);
  const r = await tidemark(['migrate', '--json'], { cwd, env: { DATABASE_URL: 'mysql://app:hunter2hunter2@db/app' } });
  assert.equal(r.code, 3);
  const records = ndjson(r.stdout);
  assert.equal(records.at(-1).code, 'E_INVALID_URL');
  assert.match(records.at(-1).message, /mysql:\/\/app:\*\*\*\*@db\/app \(from DATABASE_URL\)/);
  assertNoSecret(assert, r, 'hunter2hunter2');
});

test('missing migrations folder: exit 3 naming the path and the --dir flag', async (t) => {
  const cwd = project(t);
  const r = await tidemark(['migrate', '--url', 'postgres://postgres@127.0.0.1:1/x'], { cwd });
  assert.equal(r.code, 3);
  assert.match(r.stderr, /error: the migrations folder migrations does not exist \(looked in .*\/migrations\); create it .*--dir flag/);
  const other = await tidemark(['status', '--dir', 'db/migrations', '--url', 'postgres://postgres@127.0.0.1:1/x'], { cwd });
  assert.equal(other.code, 3);
  assert.match(other.stderr, /the migrations folder db\/migrations does not exist/);
  // TIDEMARK_DIR is the env fallback and shows up the same way.
  const env = await tidemark(['deploy', '--url', 'postgres://postgres@127.0.0.1:1/x'], { cwd, env: { TIDEMARK_DIR: 'sql' } });
  assert.equal(env.code, 3);
  assert.match(env.stderr, /the migrations folder sql does not exist/);
  // deploy says which database it was pointed at even when it fails early.
  assert.equal(env.out[0], 'Using --url (postgres://postgres@127.0.0.1:1/x)');
});

test('unreadable or invalid config: exit 3 naming the file', async (t) => {
  const cwd = project(t, { ...BASIC, 'broken.json': '{ "dir": ', 'tidemark.config.json': { lockWaitTimeout: 'a while' } });
  let r = await tidemark(['status', '--config', 'broken.json'], { cwd });
  assert.equal(r.code, 3);
  assert.match(r.err[0], /^error: the config file broken\.json is not valid JSON/);
  r = await tidemark(['status', '--config', 'nope.json'], { cwd });
  assert.equal(r.code, 3);
  assert.match(r.err[0], /^error: could not read the config file nope\.json/);
  r = await tidemark(['status'], { cwd });
  assert.equal(r.code, 3);
  assert.match(r.err[0], /^error: "lockWaitTimeout" in tidemark\.config\.json must be a duration/);
});

test('seed refuses production before connecting, naming the variable (exit 2)', async (t) => {
  const cwd = project(t, { ...BASIC, 'seeds/production/001_admin.sql': 'select 1;\n', 'seeds/development/001_users.sql': 'select 1;\n' });
  // The URL points nowhere: a refusal must come before any connection attempt.
  const url = 'postgres://postgres:hunter2hunter2@127.0.0.1:1/nowhere';
  let r = await tidemark(['seed', '--url', url], { cwd, env: { NODE_ENV: 'production' } });
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.match(r.err[0], /^error: refusing to seed: this is production \(NODE_ENV=production\); .*--allow-production/);

  r = await tidemark(['seed', '--url', url], { cwd, env: { VERCEL_ENV: 'production' } });
  assert.equal(r.code, 2);
  assert.match(r.err[0], /^error: refusing to seed: this is production \(VERCEL_ENV=production\)/);

  // --allow-production only for the production folder.
  r = await tidemark(['seed', '--allow-production', '--env', 'development', '--url', url], { cwd, env: { VERCEL_ENV: 'production' } });
  assert.equal(r.code, 2);
  assert.match(r.err[0], /production is seeded only from the production seeds, and the seed environment is "development"; --allow-production only runs seeds\/production: pass --env production$/);

  r = await tidemark(['seed', '--json', '--url', url], { cwd, env: { NODE_ENV: 'production' } });
  assert.equal(r.code, 2);
  const [record] = ndjson(r.stdout);
  assert.equal(record.code, 'E_SEED_PRODUCTION');
  assert.equal(record.exitCode, 2);

  // With --allow-production and --env production it gets as far as connecting.
  r = await tidemark(['seed', '--allow-production', '--url', url, '--connect-timeout', '1s'], { cwd, env: { NODE_ENV: 'production' } });
  assert.doesNotMatch(r.stderr, /refusing to seed/);
  assertNoSecret(assert, r, 'hunter2hunter2');
});

test('reset always refuses production (exit 2)', async (t) => {
  const cwd = project(t, BASIC);
  const url = 'postgres://postgres@127.0.0.1:1/nowhere';
  for (const env of [{ NODE_ENV: 'production' }, { VERCEL_ENV: 'production' }]) {
    const r = await tidemark(['reset', '--url', url], { cwd, env });
    assert.equal(r.code, 2);
    assert.match(r.err[0], /^error: refusing to reset: this is production \((NODE|VERCEL)_ENV=production\); reset drops the schema/);
  }
});

test('seed without a seeds folder for the environment: exit 3 listing the ones that exist', async (t) => {
  const cwd = project(t, { ...BASIC, 'seeds/development/001_users.sql': 'select 1;\n', 'seeds/preview/001_x.sql': 'select 1;\n' });
  const r = await tidemark(['seed', '--env', 'staging', '--url', 'postgres://postgres@127.0.0.1:1/x'], { cwd });
  assert.equal(r.code, 3);
  assert.match(r.stderr, /no seeds for the environment "staging": the folder seeds\/staging does not exist \(seeds has: development, preview\)/);
});

test('TIDEMARK_BACKEND must be native or wasm (exit 3)', async (t) => {
  const cwd = project(t, BASIC);
  const r = await tidemark(['status', '--url', 'postgres://postgres@127.0.0.1:1/x'], { cwd, env: { TIDEMARK_BACKEND: 'turbo' } });
  assert.equal(r.code, 3);
  assert.match(r.stderr, /TIDEMARK_BACKEND must be "native" or "wasm", not "turbo"/);
});

test('colour on a terminal, unless NO_COLOR or --no-color', { skip: !hasScript() && 'needs util-linux script(1) for a pseudo-terminal' }, async (t) => {
  const cwd = project(t);
  // script(1) runs the CLI on a pseudo-terminal, so stdout and stderr are TTYs.
  const onTty = (args, env = {}) =>
    new Promise((resolve) => {
      const command = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ');
      execFile('script', ['-qec', command, '/dev/null'], { cwd, env: cleanEnv(env), encoding: 'utf8' }, (_, stdout) => resolve(stdout));
    });
  assert.match(await onTty(['--bogus']), /\x1b\[31merror:\x1b\[39m unknown option --bogus/);
  assert.doesNotMatch(await onTty(['--bogus'], { NO_COLOR: '1' }), /\x1b\[/);
  assert.doesNotMatch(await onTty(['--bogus', '--no-color']), /\x1b\[/);
});

function hasScript() {
  try {
    execFileSync('script', ['-qec', 'true', '/dev/null'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('no colour when stdout is not a terminal', async (t) => {
  const cwd = project(t);
  const r = await tidemark(['migrate', '--bogus'], { cwd, env: { FORCE_COLOR: '1' } });
  assert.doesNotMatch(r.all, /\x1b\[/);
});

// A reader that goes away (`tidemark migrate | head -1`) must not turn a failed
// run into exit 0: later output is dropped, the exit code is still the outcome's.
test('stdout closed by its reader: a failing migrate still exits 2, and what committed stays recorded', async (t) => {
  const { database } = await import('./helpers.mjs');
  const db = await database(t);
  const files = { 'migrations/031_bad.sql': 'SELECT nope FROM nowhere;\n' };
  for (let i = 1; i <= 30; i++) files[`migrations/${String(i).padStart(3, '0')}_t${i}.sql`] = `CREATE TABLE epipe_${i} (id int);\n`;
  const cwd = project(t, files);
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [CLI, 'migrate', '--url', db.url], { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  // Read the first chunk, then go away, as `head -1` does.
  child.stdout.once('data', () => child.stdout.destroy());
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise((resolve) => child.on('close', resolve));
  assert.equal(code, 2, stderr);
  assert.match(stderr, /031_bad\.sql/);
  assert.equal(await db.query("SELECT status FROM schema_migrations WHERE version = '031'"), 'failed');
  assert.equal(await db.query("SELECT to_regclass('epipe_30') IS NOT NULL"), 't');
});
