// Cold `tidemark migrate` of the example schema (the repository's
// migrations/) on the embedded database (PGlite in .tidemark/pglite), per
// backend: the first run (PGlite creates its data folder: initdb) and a no-op
// re-run (PGlite opens the folder; nothing pending). Wall-clock time of the
// whole CLI process, as a user sees it; median of N runs (default 5).
//
//   node bench/embedded.mjs [runs]
//
// Prints a Markdown table (bench/EMBEDDED.md holds the last one) and, for
// scale, PGlite's own start (create / open / close) without tidemark.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(REPO, 'npm/tidemark/bin/tidemark.js');
const RUNS = Number(process.argv[2] ?? 5);

const env = (backend) => ({ PATH: process.env.PATH, HOME: process.env.HOME, TIDEMARK_BACKEND: backend, NO_COLOR: '1' });

function timed(args, cwd, backend) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, env: env(backend), encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`tidemark ${args.join(' ')} (${backend}) failed:\n${r.stdout}${r.stderr}`);
  return { ms, stdout: r.stdout };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);

function project() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-embedded-bench-'));
  fs.cpSync(path.join(REPO, 'migrations'), path.join(dir, 'migrations'), { recursive: true });
  return dir;
}

/** PGlite alone: create a new folder, then open it again, in fresh processes. */
function pgliteAlone() {
  const script = `
    const t0 = performance.now();
    const { PGlite } = require(${JSON.stringify(path.join(REPO, 'node_modules/@electric-sql/pglite'))});
    const t1 = performance.now();
    (async () => { const db = new PGlite(process.argv[1]); await db.waitReady; const t2 = performance.now();
      await db.close(); const t3 = performance.now();
      console.log(JSON.stringify({ require: t1 - t0, ready: t2 - t1, close: t3 - t2 })); })();`;
  const create = [];
  const open = [];
  for (let i = 0; i < RUNS; i += 1) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-pglite-bench-'));
    const data = path.join(dir, 'pglite');
    for (const into of [create, open]) {
      const r = spawnSync(process.execPath, ['-e', script, data], { encoding: 'utf8' });
      into.push(JSON.parse(r.stdout));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { create, open };
}

const rows = [];
for (const backend of ['native', 'wasm']) {
  const first = [];
  const again = [];
  for (let i = 0; i < RUNS; i += 1) {
    const cwd = project();
    try {
      const a = timed(['migrate'], cwd, backend);
      if (!/^2 migrations applied/m.test(a.stdout)) throw new Error(`unexpected output:\n${a.stdout}`);
      first.push(a.ms);
      const b = timed(['migrate'], cwd, backend);
      if (!/^Up to date: 2 migrations applied, nothing pending/m.test(b.stdout)) throw new Error(`unexpected output:\n${b.stdout}`);
      again.push(b.ms);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }
  rows.push({ backend, first, again });
  process.stderr.write(`${backend}: first ${first.map(fmt).join(', ')}; re-run ${again.map(fmt).join(', ')}\n`);
}
const alone = pgliteAlone();

const pglite = JSON.parse(fs.readFileSync(path.join(REPO, 'node_modules/@electric-sql/pglite/package.json'), 'utf8')).version;
const lines = [
  `Cold \`tidemark migrate\` of the example schema (\`migrations/\`: 2 migrations) on the embedded database,`,
  `wall clock of the whole CLI process, median of ${RUNS} (min–max in brackets). PGlite ${pglite}, Node ${process.version},`,
  `${os.cpus().length} × ${os.cpus()[0].model.trim()}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')} at the end.`,
  '',
  '| backend | first run (empty data folder: PGlite initdb + migrate) | no-op re-run (open + one read) |',
  '|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.backend} | ${fmt(median(r.first))} (${fmt(Math.min(...r.first))}–${fmt(Math.max(...r.first))}) | ` +
      `${fmt(median(r.again))} (${fmt(Math.min(...r.again))}–${fmt(Math.max(...r.again))}) |`,
  ),
  '',
  'PGlite alone, for scale (a fresh Node process each, median):',
  '',
  '| step | new folder | existing folder |',
  '|---|---|---|',
  `| require('@electric-sql/pglite') | ${fmt(median(alone.create.map((x) => x.require)))} | ${fmt(median(alone.open.map((x) => x.require)))} |`,
  `| new PGlite(dir) until ready | ${fmt(median(alone.create.map((x) => x.ready)))} | ${fmt(median(alone.open.map((x) => x.ready)))} |`,
  `| close() | ${fmt(median(alone.create.map((x) => x.close)))} | ${fmt(median(alone.open.map((x) => x.close)))} |`,
];
console.log(lines.join('\n'));
