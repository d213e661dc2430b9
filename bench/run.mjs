#!/usr/bin/env node
// tidemark's benchmark harness: generates the workloads, runs each command
// against a fresh database per run, and prints one table (median, min and
// max wall time over RUNS runs, and peak RSS), next to bare `node -e 0`.
//
//   node bench/run.mjs            (RUNS=7 by default; BENCH_PG=host:port)
//
// Needs: a PostgreSQL server that trusts local logins, psql, GNU time
// (/usr/bin/time), and a built addon (npm run build).
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'npm/tidemark/bin/tidemark.js');
const RUNS = Number(process.env.RUNS ?? 7);
const [host, port] = (process.env.BENCH_PG ?? '127.0.0.1:5432').split(':');
const backend = process.env.TIDEMARK_BACKEND ?? 'native';

function psql(db, sql) {
  execFileSync('psql', ['-h', host, '-p', port, '-U', 'postgres', '-d', db, '-qAtc', sql], { stdio: 'pipe' });
}

function freshDb(tag) {
  const name = `tidemark_bench_${tag}_${process.pid}`;
  psql('postgres', `DROP DATABASE IF EXISTS ${name}`);
  psql('postgres', `CREATE DATABASE ${name}`);
  return name;
}

function workload(n) {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-bench-'));
  const migrations = join(dir, 'migrations');
  mkdirSync(migrations);
  for (let i = 1; i <= n; i++) {
    const v = String(i).padStart(4, '0');
    writeFileSync(
      join(migrations, `${v}_table_${i}.sql`),
      `CREATE TABLE t${i} (id bigserial PRIMARY KEY, a text, b integer, c timestamptz DEFAULT now(), d jsonb);\nCREATE INDEX t${i}_b ON t${i} (b);\n`,
    );
  }
  return dir;
}

/** Runs `argv` under GNU time: wall ms (hrtime) and peak RSS in KB. */
function measure(argv, cwd) {
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'RSS=%M', ...argv], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', TIDEMARK_BACKEND: backend } });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const rss = Number(/RSS=(\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { ms, rss };
}

function summarize(label, samples) {
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const rss = Math.max(...samples.map((s) => s.rss));
  return { label, median: ms[Math.floor(ms.length / 2)], min: ms[0], max: ms.at(-1), rssMb: rss / 1024, runs: ms.length };
}

const rows = [];
const work = workload(200);
const url = (db) => `postgres://postgres@${host}:${port}/${db}`;

// Floor: bare Node start-up.
rows.push(summarize('node -e 0 (floor)', Array.from({ length: RUNS }, () => measure(['node', '-e', '0'], work))));

// 200 fresh migrations, a fresh database per run.
{
  const samples = [];
  for (let i = 0; i < RUNS; i++) {
    const db = freshDb(`fresh${i}`);
    samples.push(measure(['node', cli, 'migrate', '--url', url(db)], work));
    psql('postgres', `DROP DATABASE ${db}`);
  }
  rows.push(summarize(`tidemark migrate, 200 fresh (${backend})`, samples));
}

// No-op deploy and status with 200 applied.
{
  const db = freshDb('noop');
  measure(['node', cli, 'migrate', '--url', url(db)], work);
  rows.push(summarize(`tidemark deploy, 200 applied, nothing pending (${backend})`, Array.from({ length: RUNS }, () => measure(['node', cli, 'deploy', '--url', url(db)], work))));
  rows.push(summarize(`tidemark status, 200 applied (${backend})`, Array.from({ length: RUNS }, () => measure(['node', cli, 'status', '--url', url(db)], work))));
  psql('postgres', `DROP DATABASE ${db}`);
}
rmSync(work, { recursive: true, force: true });

const fmt = (n) => n.toFixed(1);
console.log(`| command | median ms | min ms | max ms | peak RSS MB | runs |`);
console.log(`|---|---:|---:|---:|---:|---:|`);
for (const r of rows) console.log(`| ${r.label} | ${fmt(r.median)} | ${fmt(r.min)} | ${fmt(r.max)} | ${fmt(r.rssMb)} | ${r.runs} |`);
