// What a user gets from the registry: pack the packages, install the tarballs
// into a fresh npm-workspaces + Turbo monorepo on a PATH without cargo, and
// run the scripts a Vercel build and a laptop run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pg = (process.env.TIDEMARK_TEST_PG ?? '127.0.0.1:5432').split(':');

function psql(sql) {
  execFileSync('psql', ['-h', pg[0], '-p', pg[1], '-U', 'postgres', '-d', 'postgres', '-qAtc', sql]);
}

for (const withNative of [true, false]) {
test(`packed tarballs install into a fresh monorepo and run migrate:vercel and seed:dev without cargo (${withNative ? 'native' : 'native package removed: wasm'})`, { timeout: 180_000 }, (t) => {
  if (process.env.TIDEMARK_BACKEND === 'wasm') return t.skip('runs once, in the native pass');
  const work = mkdtempSync(join(tmpdir(), 'tidemark-pack-'));
  const db = `tidemark_pack_${process.pid}_${withNative ? 'native' : 'wasm'}`;
  t.after(() => {
    rmSync(work, { recursive: true, force: true });
    psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  });
  const tarballs = join(work, 'tarballs');
  mkdirSync(tarballs);
  for (const pkg of ['npm/tidemark', 'npm/tidemark-wasm', 'npm/platforms/linux-x64-gnu']) {
    execFileSync('npm', ['pack', '--silent', '--pack-destination', tarballs], { cwd: join(root, pkg), stdio: 'pipe' });
  }
  const files = readdirSync(tarballs)
    .filter((f) => withNative || !f.includes('linux-x64-gnu'))
    .map((f) => join(tarballs, f));
  assert.equal(files.length, withNative ? 3 : 2, `tarballs: ${files}`);

  // A monorepo like the users': workspaces, turbo.json, migrations and seeds.
  const app = join(work, 'app');
  mkdirSync(join(app, 'apps/web'), { recursive: true });
  writeFileSync(join(app, 'apps/web/package.json'), JSON.stringify({ name: 'web', private: true, scripts: { build: 'node -e 0' } }));
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({
      name: 'my-app',
      private: true,
      workspaces: ['apps/*'],
      scripts: {
        'migrate:vercel': 'tidemark deploy',
        'seed:dev': 'tidemark seed --env development',
        'migrate:status': 'tidemark status --exit-code',
      },
    }),
  );
  cpSync(join(root, 'turbo.json'), join(app, 'turbo.json'));
  cpSync(join(root, 'migrations'), join(app, 'migrations'), { recursive: true });
  cpSync(join(root, 'seeds'), join(app, 'seeds'), { recursive: true });

  // PATH with node and npm but no cargo or rustc.
  const path = [dirname(process.execPath), '/usr/bin', '/bin'].join(':');
  const env = { ...process.env, PATH: path, NO_COLOR: '1', npm_config_audit: 'false', npm_config_fund: 'false' };
  delete env.TIDEMARK_BACKEND;
  assert.notEqual(spawnSync('sh', ['-c', 'command -v cargo'], { env }).status, 0, 'cargo must not be on PATH');
  // Without the native package: as if a lockfile made elsewhere dropped it.
  const omit = withNative ? [] : ['--omit=optional'];
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--save-dev', ...omit, ...files], { cwd: app, env, stdio: 'pipe' });

  psql(`CREATE DATABASE ${db}`);
  const runEnv = { ...env, DATABASE_URL: `postgres://postgres:pw@${pg[0]}:${pg[1]}/${db}` };
  const run = (script) => spawnSync('npm', ['run', '-s', script], { cwd: app, env: runEnv, encoding: 'utf8' });

  const deploy = run('migrate:vercel');
  assert.equal(deploy.status, 0, deploy.stdout + deploy.stderr);
  assert.match(deploy.stdout, /^Using DATABASE_URL \(postgres:\/\/postgres:\*\*\*\*@/m);
  assert.match(deploy.stdout, /^Applied 001 initial_schema \(\d+ ms\)$/m);
  assert.match(deploy.stdout, /^Applied 002 formula_versioning \(\d+ ms\)$/m);
  assert.ok(!deploy.stdout.includes(':pw@') && !deploy.stderr.includes(':pw@'));

  const seed = run('seed:dev');
  assert.equal(seed.status, 0, seed.stdout + seed.stderr);
  assert.match(seed.stdout, /^Seeded 001_users \(\d+ ms\)$/m);

  const status = run('migrate:status');
  assert.equal(status.status, 0, status.stdout + status.stderr);

  const version = spawnSync('npx', ['tidemark', '--version'], { cwd: app, env, encoding: 'utf8' });
  assert.match(version.stdout, withNative ? /native backend/ : /wasm backend/);
});
}
