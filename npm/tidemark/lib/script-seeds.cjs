'use strict';

// Script seeds (`.mjs`, `.cjs`, `.js`, and `.ts` where Node strips types).
// The engine decides everything about them as it does for SQL seeds (which
// are due, in folder order, the production refusal, `--only`, the checksum,
// the tracking row); it never spawns, so it calls the runner this file gives
// it (`execute`'s last argument) for each script seed due, while it holds
// the seed lock: seed commands racing on one database run a script once.
// The runner only runs the script as a child process with the resolved URL
// in DATABASE_URL and resolves with how long it ran; the engine records it
// and goes on with the seeds after it.

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

/** The error for a script seed where no URL can be handed to it. */
function noUrl(due, { config, dir }) {
  const file = path.relative(config.cwd, path.join(dir, due.file));
  return new TidemarkError(
    'E_CONFIG',
    `${file} is a script seed, which runs as its own process with DATABASE_URL, and the embedded database ` +
      'has no URL it can connect to; run tidemark db serve and point --url at it, or use a database server',
    { exitCode: 3, file },
  );
}

/**
 * The script seed runner for `execute` (seed and reset): `run(due)` runs
 * the seed the engine reports due (`{ name, file, checksum }`) and resolves
 * with its duration in ms. `failure()` is the error a run threw, which the
 * engine stopped on: the caller throws it as it is (its code and exit code)
 * in place of the engine's copy of its message.
 */
function scriptRunner({ config, dir }) {
  let failure;
  const run = async (due) => {
    try {
      if (!config.url) throw noUrl(due, { config, dir });
      return await runScript(due, { config, dir });
    } catch (err) {
      failure = err;
      throw err;
    }
  };
  return { run, failure: () => failure };
}

/**
 * A report that still names a script seed due came from a run with no
 * runner (the embedded database, which has no URL for it): the seeds before
 * it are committed; the script cannot run.
 */
function refuseScriptDue(report, { command, config, dir }) {
  const due = (command === 'reset' ? report?.seed : report)?.scriptDue;
  if (due) throw noUrl(due, { config, dir });
  return report;
}

module.exports = { scriptRunner, refuseScriptDue, nodeFlags };
