// Where the start-up time of one tidemark command goes (issue 15): runs
// `deploy` (nothing pending) and `status` on a database with N migrations
// applied, native and wasm, interleaved with `node -e 0`, and prints the
// median of each phase (bench/lib/phases.cjs marks them inside the CLI):
//
//   node start                 process start to the first line of tidemark (Node's own bootstrap)
//   CLI: modules, config, .env, files
//                              tidemark's own modules, flags, config file, .env, URL, reading the migrations
//   engine load                require of the addon, or of the wasm package (reading, compiling and
//                              instantiating the module)
//   dial (wasm)                node:net connect, made while the files are read (native: part
//                              of connect + startup, on the addon's threads)
//   connect + startup          TCP, startup, authentication, until the `connected` event; both
//                              engines start connecting before the files are read, so this is
//                              only what is left of it once they are
//   query + engine             the tracking-table read, the files checked, the report made
//   output, exit()             rendering until process.exit
//   teardown                   process.exit until the parent sees the exit (V8 and Node teardown)
//
// node bench/startup.mjs                  # RUNS=15 BENCH_N=200
// STARTUP_BEFORE=/other/checkout/npm/tidemark/bin/tidemark.js node bench/startup.mjs
//                                         # the same rows for another build, interleaved
// STARTUP_DELAY_MS=5 node bench/startup.mjs
//                                         # through the delaying proxy (lib/proxy.mjs), 5 ms
//                                         # each way: a server about 10 ms away
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDb, dbUrl, dropAllOwn, pgTarget } from './lib/pg.mjs';
import { startProxy } from './lib/proxy.mjs';
import { smallMigrations, sqlText } from './lib/workloads.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const runs = Number(process.env.RUNS ?? 15);
const n = Number(process.env.BENCH_N ?? 200);
const clis = { '': join(here, '..', 'npm/tidemark/bin/tidemark.js') };
if (process.env.STARTUP_BEFORE) clis['before: '] = process.env.STARTUP_BEFORE;

const work = mkdtempSync(join(tmpdir(), 'tidemark-startup-'));
const dir = join(work, 'migrations');
mkdirSync(dir);
for (const m of smallMigrations(n)) writeFileSync(join(dir, `${String(m.i).padStart(4, '0')}_${m.name}.sql`), sqlText(m));

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

const delayMs = Number(process.env.STARTUP_DELAY_MS ?? 0);
let proxy;
try {
  const db = await createDb('startup');
  if (delayMs > 0) proxy = await startProxy({ ...pgTarget(), delayMs });
  const url = proxy ? dbUrl(db, { ...pgTarget(), host: '127.0.0.1', port: proxy.port }) : dbUrl(db);
  const run = (cli, backend, command, phases = true) =>
    spawnSync(process.execPath, [...(phases ? ['-r', join(here, 'lib/phases.cjs')] : []), cli, command, '--dir', 'migrations', '--url', url], {
      cwd: work,
      env: { ...process.env, NO_COLOR: '1', TIDEMARK_BACKEND: backend },
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
    });
  const setup = run(clis[''], 'native', 'migrate', false);
  if (setup.status !== 0) throw new Error(`setup migrate failed: ${setup.stderr}`);

  const cases = [['node -e 0']];
  for (const [label, cli] of Object.entries(clis)) for (const command of ['deploy', 'status']) for (const backend of ['native', 'wasm']) cases.push([`${label}${backend} ${command}`, cli, backend, command]);
  const samples = new Map(cases.map(([name]) => [name, []]));
  for (let r = 0; r < runs; r++) {
    for (const [name, cli, backend, command] of [...cases.slice(r % cases.length), ...cases.slice(0, r % cases.length)]) {
      const t0 = performance.now();
      const p = cli ? run(cli, backend, command) : spawnSync(process.execPath, ['-e', '0']);
      const wall = performance.now() - t0;
      if (p.status !== 0) throw new Error(`${name} exited ${p.status}: ${p.stderr}`);
      if (!cli) {
        samples.get(name).push({ wall });
        continue;
      }
      const at = JSON.parse(String(p.output[3]).trim());
      const wasm = at.dial !== undefined;
      samples.get(name).push({
        'node start': at.preload,
        'CLI: modules, config, .env, files': at.call - at.preload - at.engine,
        'engine load': at.engine,
        dial: wasm ? at.dialed - at.dial : 0,
        // Both engines connect while the CLI reads the files (lib/run.cjs):
        // what is left of it after they are read (0 when the files took longer).
        'connect + startup': Math.max(0, at.connected - at.call),
        'query + engine': at.returned - at.connected,
        'output, exit()': at.exit - at.returned,
        teardown: wall - at.exit,
        wall,
      });
    }
  }
  const columns = Object.keys(samples.get(cases[1][0])[0]);
  const through = proxy ? `, through a proxy that holds every chunk ${delayMs} ms each way` : '';
  console.log(`${n} migrations applied${through}, ${runs} runs each, interleaved; median ms per phase (the columns need not add up to the wall median).\n`);
  console.log(`| command | ${columns.join(' | ')} |`);
  console.log(`|---|${columns.map(() => '---:').join('|')}|`);
  for (const [name, list] of samples) {
    const cell = (c) => (list[0][c] === undefined ? '' : median(list.map((s) => s[c])).toFixed(1));
    console.log(`| ${name} | ${columns.map(cell).join(' | ')} |`);
  }
} finally {
  await proxy?.close();
  await dropAllOwn();
  rmSync(work, { recursive: true, force: true });
}
