// Cold `tidemark verify` (lint + replay on a scratch embedded PGlite), per
// backend, on the repository's migrations/ and on 200 generated migrations
// (a table and an index each; every other one reversible, so 100 downs are
// checked against the catalog fingerprint and applied again). Wall-clock
// time of the whole CLI process; median of N runs (default 3).
//
//   node bench/verify.mjs [runs] [baseline-cli]
//
// With a second argument (another checkout's bin/tidemark.js, e.g. one
// built without the linter), the same folders are timed with it too, to
// show what the lint adds. With BENCH_SHADOW_URL set (a server where the
// role may CREATE DATABASE), the replay on a scratch server database
// (--shadow-url) is timed as well. Prints a Markdown table.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { smallMigrations, sqlText } from './lib/workloads.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(REPO, 'npm/tidemark/bin/tidemark.js');
const RUNS = Number(process.argv[2] ?? 3);
const BASELINE = process.argv[3];

const env = (backend) => ({ PATH: process.env.PATH, HOME: process.env.HOME, TIDEMARK_BACKEND: backend, NO_COLOR: '1' });

const SHADOW = process.env.BENCH_SHADOW_URL;

function timed(cli, cwd, backend, extra = []) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [cli, 'verify', '--json', ...extra], { cwd, env: env(backend), encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0 && r.status !== 1) throw new Error(`verify (${backend}) failed:\n${r.stdout.slice(-2000)}${r.stderr}`);
  const done = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'done');
  return { ms, report: done.report };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);

function example() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-verify-bench-'));
  fs.cpSync(path.join(REPO, 'migrations'), path.join(dir, 'migrations'), { recursive: true });
  return dir;
}

function generated(n) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-verify-bench-'));
  fs.mkdirSync(path.join(dir, 'migrations'));
  for (const m of smallMigrations(n)) {
    const base = `${String(m.i).padStart(3, '0')}_${m.name}`;
    if (m.i % 2 === 0) {
      fs.writeFileSync(path.join(dir, 'migrations', `${base}.up.sql`), sqlText(m));
      fs.writeFileSync(path.join(dir, 'migrations', `${base}.down.sql`), `DROP TABLE t${m.i};\n`);
    } else {
      fs.writeFileSync(path.join(dir, 'migrations', `${base}.sql`), sqlText(m));
    }
  }
  return dir;
}

const folders = [
  ['migrations/ (the example app)', example()],
  ['200 generated (100 reversible)', generated(200)],
];
const rows = [];
for (const [label, dir] of folders) {
  for (const backend of ['native', 'wasm']) {
    const clis = [
      ['this branch', CLI, []],
      ...(SHADOW ? [['this branch, --shadow-url', CLI, ['--shadow-url', SHADOW]]] : []),
      ...(BASELINE && backend === 'native' ? [['baseline', BASELINE, []]] : []),
    ];
    for (const [which, cli, extra] of clis) {
      const times = [];
      let report;
      for (let i = 0; i < RUNS; i += 1) {
        const r = timed(cli, dir, backend, extra);
        times.push(r.ms);
        report = r.report;
      }
      const findings = report.findings ? report.findings.length : '-';
      rows.push(`| ${label} | ${backend} | ${which} | ${report.migrations} / ${report.replayed} / ${report.reversible} | ${findings} | ${fmt(median(times))} | ${times.map(fmt).join(', ')} |`);
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log('| folder | backend | build | migrations / replayed / reversible | findings | median | runs |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
