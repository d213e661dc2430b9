'use strict';

// Script seeds (`.mjs`, `.cjs`, `.js`, and `.ts` where Node strips types).
// The engine decides everything about them as it does for SQL seeds (which
// are due, in folder order, the production refusal, `--only`, the checksum,
// the tracking row); it never spawns, so it stops before a script seed that
// is due and reports it as `scriptDue`. This file only runs that script as a
// child process with the resolved URL in DATABASE_URL and hands it back to
// the engine (`ranScript`), which records it and goes on with the seeds
// after it.

const { spawn } = require('node:child_process');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { TidemarkError } = require('./errors.cjs');
const { scrub } = require('./url.cjs');

const TYPESCRIPT = /\.[cm]?ts$/;
/** How much of a failing script's stderr the error quotes. */
const TAIL_BYTES = 2000;

/**
 * The Node flags a child needs to run `file` on Node `version`: none for
 * JavaScript; type stripping for TypeScript (on by default from 23.6, behind
 * --experimental-strip-types from 22.6). Older Node cannot: exit 3, naming
 * the version needed.
 */
function nodeFlags(file, version = process.versions.node) {
  if (!TYPESCRIPT.test(file)) return [];
  const [major, minor] = version.split('.').map(Number);
  if (major > 23 || (major === 23 && minor >= 6)) return [];
  if (major > 22 || (major === 22 && minor >= 6)) return ['--experimental-strip-types'];
  throw new TidemarkError(
    'E_SCRIPT_SEED_UNSUPPORTED',
    `${file} is a TypeScript seed, and this Node (${version}) cannot run TypeScript: that needs Node 22.6 or later ` +
      '(type stripping; tidemark passes --experimental-strip-types before 23.6); nothing was run for it. ' +
      'Run tidemark with a newer Node, or write the seed as .mjs',
    { exitCode: 3, file },
  );
}

/** The last `TAIL_BYTES` of what a stream wrote. */
function tail(stream) {
  let kept = Buffer.alloc(0);
  stream.on('data', (chunk) => {
    kept = Buffer.concat([kept, chunk]);
    if (kept.length > TAIL_BYTES * 2) kept = kept.subarray(kept.length - TAIL_BYTES);
  });
  return () => {
    const text = kept.subarray(Math.max(0, kept.length - TAIL_BYTES)).toString('utf8').trim();
    return kept.length > TAIL_BYTES ? `…${text}` : text;
  };
}

/**
 * Runs one script seed to its end. Resolves with its duration in ms;
 * rejects with E_SEED_FAILED naming the file, its exit code or signal and
 * the end of its stderr (passwords redacted).
 */
function runScript(due, { config, dir }) {
  const shown = path.relative(config.cwd, path.join(dir, due.file));
  const flags = nodeFlags(shown);
  const failed = (how, stderr) =>
    new TidemarkError(
      'E_SEED_FAILED',
      scrub(
        `seed ${shown} failed: ${how}; nothing was recorded for it, and the seeds before it are committed. ` +
          `Fix it and run the seed command again${stderr ? `. The end of its stderr:\n${stderr}` : ''}`,
        config.url,
        config.env,
      ),
      { file: shown },
    );
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [...flags, path.join(dir, due.file)], {
      cwd: config.cwd,
      env: { ...config.env, DATABASE_URL: config.url },
      // Its stdout must not mix with --json's NDJSON: kept, like stderr,
      // only to explain a failure.
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.resume();
    const stderr = tail(child.stderr);
    child.on('error', (err) => reject(failed(`it could not be started (${err.message})`, '')));
    child.on('close', (code, signal) => {
      if (code === 0) resolve(Math.round(performance.now() - started));
      else reject(failed(signal ? `it was ended by ${signal}` : `it exited with code ${code}`, stderr()));
    });
  });
}

/**
 * Runs the script seeds the engine reports due, one at a time, each handed
 * back to the engine through `seedAgain(options)` (the seed command with
 * `ranScript`), and returns the report with every call's seeds merged, in
 * the shape of a report without scripts. `report` is seed's report, or
 * reset's (whose `seed` part is seed's).
 */
async function runDueScripts(report, { command, config, dir, seedAgain }) {
  const first = command === 'reset' ? report?.seed : report;
  if (!first?.scriptDue) return report;
  const { scriptDue, ...merged } = first;
  merged.ran = [...merged.ran];
  merged.skipped = [...merged.skipped];
  let due = scriptDue;
  while (due) {
    if (!config.url) {
      throw new TidemarkError(
        'E_CONFIG',
        `${due.file} is a script seed, which runs as its own process with DATABASE_URL, and the embedded database ` +
          'has no URL it can connect to; run tidemark db serve and point --url at it, or use a database server',
        { exitCode: 3 },
      );
    }
    const durationMs = await runScript(due, { config, dir });
    const next = await seedAgain({ ranScript: { name: due.name, checksum: due.checksum, durationMs } });
    if (next.scriptDue?.name === due.name) {
      // An engine that does not know ranScript would loop on the same seed.
      throw new TidemarkError('E_BACKEND', `the ${command} engine did not record the script seed ${due.file}; it is older than this package`);
    }
    merged.ran.push(...next.ran);
    merged.skipped.push(...next.skipped);
    due = next.scriptDue;
  }
  return command === 'reset' ? { ...report, seed: merged } : merged;
}

module.exports = { runDueScripts, nodeFlags };
