// The tools under test: how each lays out a migrations folder, and the
// commands for apply (fresh), re-apply (no-op deploy) and status.
//
// Every command runs with cwd = the tool's own workload folder, which holds
// `migrations/` in that tool's naming convention and nothing else.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sqlText } from './workloads.mjs';

export const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const rootDir = join(benchDir, '..');
const nm = join(benchDir, 'node_modules');
const require = createRequire(join(benchDir, 'package.json'));
const runners = join(benchDir, 'lib', 'runners');

const pkgVersion = (name) => JSON.parse(readFileSync(join(nm, name, 'package.json'), 'utf8')).version;
const node = process.execPath;

function write(dir, files) {
  const m = join(dir, 'migrations');
  mkdirSync(m, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(m, name)), { recursive: true });
    writeFileSync(join(m, name), text);
  }
}

const ts = (i) => String(20260101000000 + i); // 14-digit timestamp versions (dbmate, sqlx)

function tidemark(backend) {
  const cli = process.env.BENCH_TIDEMARK_CLI ?? join(rootDir, 'npm/tidemark/bin/tidemark.js');
  const env = { TIDEMARK_BACKEND: backend };
  const cmd = (verb) => (url) => ({ argv: [node, cli, verb, '--dir', 'migrations', '--url', url], env });
  return {
    id: `tidemark-${backend}`,
    label: `tidemark (${backend})`,
    viaNode: true,
    check() {
      const r = spawnSync(node, [cli, '--version'], { encoding: 'utf8', env: { ...process.env, ...env } });
      if (r.status !== 0 || !r.stdout.includes(`${backend} backend`)) return { skip: `tidemark --version with TIDEMARK_BACKEND=${backend} failed: ${(r.stderr || r.stdout).trim().split('\n')[0]}` };
      return { version: r.stdout.trim().replace(/^tidemark /, '') };
    },
    layout(dir, migrations) {
      write(dir, Object.fromEntries(migrations.map((m) => [`${String(m.i).padStart(4, '0')}_${m.name}.sql`, sqlText(m)])));
    },
    apply: cmd('migrate'),
    redeploy: cmd('deploy'),
    status: cmd('status'),
  };
}

const dbmateArgs = (url) => ['--url', url, '--migrations-dir', 'migrations', '--no-dump-schema'];
const dbmateLayout = (dir, migrations) =>
  write(dir, Object.fromEntries(migrations.map((m) => [`${ts(m.i)}_${m.name}.sql`, `-- migrate:up\n${sqlText(m)}\n-- migrate:down\n`])));
function dbmateBinary() {
  const triple = `${process.platform}-${process.arch}`;
  try { return require.resolve(`@dbmate/${triple}/bin/dbmate${process.platform === 'win32' ? '.exe' : ''}`); } catch { return null; }
}

export function allTools() {
  const tools = [tidemark('native'), tidemark('wasm')];

  tools.push({
    id: 'node-pg-migrate',
    label: 'node-pg-migrate',
    viaNode: true,
    check: () => ({ version: pkgVersion('node-pg-migrate') }),
    layout(dir, migrations) {
      write(dir, Object.fromEntries(migrations.map((m) => [`${1700000000000 + m.i}_${m.name}.sql`, `-- Up Migration\n${sqlText(m)}\n-- Down Migration\n`])));
    },
    apply: (url) => ({ argv: [node, join(nm, 'node-pg-migrate/bin/node-pg-migrate.js'), 'up', '--migrations-dir', 'migrations'], env: { DATABASE_URL: url } }),
    status: null, // no status command (closest: `up --dry-run`)
  });

  tools.push({
    id: 'dbmate',
    label: 'dbmate (npm wrapper)',
    viaNode: true,
    check() {
      const r = spawnSync(node, [join(nm, 'dbmate/dist/cli.js'), '--version'], { encoding: 'utf8' });
      if (r.status !== 0) return { skip: `dbmate's npm wrapper does not run: ${(r.stderr || r.stdout).trim().split('\n')[0]}` };
      return { version: r.stdout.trim().replace(/^dbmate version /, '') };
    },
    layout: dbmateLayout,
    apply: (url) => ({ argv: [node, join(nm, 'dbmate/dist/cli.js'), ...dbmateArgs(url), 'migrate'] }),
    status: (url) => ({ argv: [node, join(nm, 'dbmate/dist/cli.js'), ...dbmateArgs(url), 'status'] }),
  });

  tools.push({
    id: 'dbmate-bin',
    label: 'dbmate (Go binary, no Node)',
    viaNode: false,
    check() {
      const bin = dbmateBinary();
      if (!bin || !existsSync(bin)) return { skip: `no @dbmate/${process.platform}-${process.arch} package installed` };
      return { version: pkgVersion('dbmate') };
    },
    layout: dbmateLayout,
    apply: (url) => ({ argv: [dbmateBinary(), ...dbmateArgs(url), 'migrate'] }),
    status: (url) => ({ argv: [dbmateBinary(), ...dbmateArgs(url), 'status'] }),
  });

  tools.push({
    id: 'drizzle',
    label: 'drizzle-orm migrator',
    viaNode: true,
    check: () => ({ version: `drizzle-orm ${pkgVersion('drizzle-orm')}, pg ${pkgVersion('pg')}` }),
    layout(dir, migrations) {
      const base = Date.UTC(2026, 0, 1);
      const entries = migrations.map((m, k) => ({ idx: k, version: '7', when: base + k * 1000, tag: `${String(k).padStart(4, '0')}_${m.name}`, breakpoints: true }));
      const files = { 'meta/_journal.json': JSON.stringify({ version: '7', dialect: 'postgresql', entries }, null, 2) };
      migrations.forEach((m, k) => { files[`${entries[k].tag}.sql`] = m.statements.join('\n--> statement-breakpoint\n') + '\n'; });
      write(dir, files);
    },
    apply: (url) => ({ argv: [node, join(runners, 'drizzle.mjs'), url, 'migrations'] }),
    status: null, // drizzle-kit has no status command
  });

  tools.push({
    id: 'postgres-migrations',
    label: 'postgres-migrations',
    viaNode: true,
    check: () => ({ version: `${pkgVersion('postgres-migrations')}, pg ${pkgVersion('pg')}` }),
    layout(dir, migrations) {
      write(dir, Object.fromEntries(migrations.map((m) => [`${m.i}_${m.name}.sql`, sqlText(m)])));
    },
    apply: (url) => ({ argv: [node, join(runners, 'postgres-migrations.mjs'), url, 'migrations'] }),
    status: null, // no status command
  });

  tools.push({
    id: 'sqlx',
    label: 'sqlx-cli',
    viaNode: false,
    optIn: 'BENCH_SQLX',
    check: () => sqlxCheck(),
    layout(dir, migrations) {
      write(dir, Object.fromEntries(migrations.map((m) => [`${ts(m.i)}_${m.name}.sql`, sqlText(m)])));
    },
    apply: (url) => ({ argv: [sqlxPath, 'migrate', 'run', '--no-dotenv', '--source', 'migrations', '-D', url] }),
    status: (url) => ({ argv: [sqlxPath, 'migrate', 'info', '--no-dotenv', '--source', 'migrations', '-D', url] }),
  });

  for (const t of tools) t.redeploy ??= t.apply;
  return tools;
}

/** The baselines of workload 4: `psql -f` as asked (autocommit: one transaction and one
 * round trip per statement), `psql -1 -f` (the whole file in one transaction), and the file
 * sent as one query: the statements joined with psql's `\;`, which makes psql send them in
 * one simple-query message, as tidemark does (the counting proxy shows 1 Q for it). */
function psqlBaseline(mode) {
  const id = { each: 'psql', tx: 'psql-1', one: 'psql-one' }[mode];
  const label = {
    each: '`psql -f` (statement by statement)',
    tx: '`psql -1 -f` (one transaction)',
    one: '`psql -f` sending it as one query (`\\;`)',
  }[mode];
  return {
    id,
    label,
    viaNode: false,
    check() {
      const r = spawnSync('psql', ['--version'], { encoding: 'utf8' });
      return r.status === 0 ? { version: r.stdout.trim().replace(/^psql \(PostgreSQL\) /, '') } : { skip: 'no psql' };
    },
    layout(dir, migrations) {
      const text = (m) => {
        if (mode !== 'one') return sqlText(m);
        // Every statement of the generated workloads ends its line with `;` (no `;` inside a
        // literal), so joining with `\;` is exact here.
        const lines = sqlText(m).split('\n').filter(Boolean);
        return lines.map((l, k) => (k < lines.length - 1 ? l.replace(/;$/, '\\;') : l)).join('\n') + '\n';
      };
      write(dir, Object.fromEntries(migrations.map((m) => [`${m.name}.sql`, text(m)])));
    },
    apply: (url) => ({ argv: ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', ...(mode === 'tx' ? ['-1'] : []), '-d', url, '-f', 'migrations/big.sql'] }),
  };
}
export const psqlBaselines = [psqlBaseline('each'), psqlBaseline('tx'), psqlBaseline('one')];

// sqlx-cli: opt-in (BENCH_SQLX=1). Uses `sqlx` from PATH, else bench/.work/sqlx/bin/sqlx,
// else runs `cargo install sqlx-cli --no-default-features --features postgres` into bench/.work/sqlx.
let sqlxPath = null;
function sqlxCheck() {
  const version = (p) => {
    const r = spawnSync(p, ['--version'], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim().replace(/^sqlx-cli /, '') : null;
  };
  const local = join(benchDir, '.work/sqlx/bin/sqlx');
  for (const p of ['sqlx', local]) {
    const v = version(p);
    if (v) { sqlxPath = p; return { version: v }; }
  }
  if (spawnSync('cargo', ['--version']).status !== 0) return { skip: 'BENCH_SQLX=1 but no sqlx on PATH and no cargo to install it' };
  console.error('sqlx-cli: cargo install sqlx-cli --no-default-features --features postgres (takes several minutes) ...');
  const r = spawnSync('cargo', ['install', 'sqlx-cli', '--no-default-features', '--features', 'postgres', '--root', join(benchDir, '.work/sqlx')], { stdio: ['ignore', 'inherit', 'inherit'] });
  const v = r.status === 0 ? version(local) : null;
  if (!v) return { skip: `cargo install sqlx-cli failed (exit ${r.status})` };
  sqlxPath = local;
  return { version: v };
}
