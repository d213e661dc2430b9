// Runs one command under GNU time: wall time (hrtime around the spawn) and peak RSS.
import { spawn } from 'node:child_process';

const CLEAN = /^(DATABASE_URL|DATABASE_URL_UNPOOLED|POSTGRES_URL|POSTGRES_URL_NON_POOLING|TIDEMARK_.*|PG.*)$/;

/** The environment every tool gets: the harness's, minus connection variables, plus `extra`. */
export function toolEnv(extra = {}) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !CLEAN.test(k)));
  return { ...env, NO_COLOR: '1', ...extra };
}

const running = new Set();
let aborted = false;
/** Stops the commands under way (SIGINT of the harness) and refuses new ones. */
export function abortAll() {
  aborted = true;
  for (const c of running) c.kill('SIGTERM');
}

/** -> { ms, rssKb, stdout, stderr }; throws with the output when the command fails. */
export function measure({ argv, env = {}, cwd }) {
  return new Promise((resolve, reject) => {
    if (aborted) return reject(new Error('aborted'));
    const start = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'BENCH_RSS_KB=%M', ...argv], { cwd, env: toolEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    child.on('exit', () => running.delete(child));
    const out = [];
    const err = [];
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const stdout = Buffer.concat(out).toString();
      let stderr = Buffer.concat(err).toString();
      const m = /BENCH_RSS_KB=(\d+)\s*$/.exec(stderr);
      stderr = stderr.replace(/(Command exited with non-zero status \d+\n)?BENCH_RSS_KB=\d+\s*$/, '');
      if (code !== 0) {
        const err = new Error(`exit ${code}: ${(stderr.trim() || stdout.trim()).split('\n').slice(0, 3).join(' / ')}`);
        err.log = `$ ${argv.join(' ')}\n(cwd ${cwd})\nexit ${code} after ${ms.toFixed(0)} ms\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
        return reject(err);
      }
      resolve({ ms, rssKb: m ? Number(m[1]) : NaN, stdout, stderr });
    });
  });
}

export function summarize(samples) {
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const mid = ms.length >> 1;
  return {
    median: ms.length % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2,
    min: ms[0],
    max: ms.at(-1),
    rssMb: Math.max(...samples.map((s) => s.rssKb)) / 1024,
    rssMedianMb: [...samples.map((s) => s.rssKb)].sort((a, b) => a - b)[samples.length >> 1] / 1024,
    runs: ms.length,
  };
}
