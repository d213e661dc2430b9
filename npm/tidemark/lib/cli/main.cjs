'use strict';
// The CLI: parse flags (lib/cli/parse.cjs), resolve the config like the API
// does, run (lib/run.cjs), and render events and reports (lib/cli/render.cjs).

const { TidemarkError } = require('../errors.cjs');
const { resolveConfig } = require('../config.cjs');
const runner = require('../run.cjs');
const loader = require('../loader.cjs');
// Loaded when used (reset's CI check, db serve): start-up, issue 15.
const embedded = () => require('../embedded/index.cjs');
const { redact } = require('../url.cjs');
const { withFix } = require('../fixes.cjs');
const { version: VERSION } = require('../../package.json');
const { parseCli, flagsToOptions } = require('./parse.cjs');
// Help text is loaded when asked for (start-up, issue 15).
const globalHelp = () => require('./help.cjs').globalHelp();
const commandHelp = (command) => require('./help.cjs').commandHelp(command);
const {
  Output,
  plural,
  renderEvent,
  migrateSummary,
  seedSummary,
  short,
  renderStatus,
  renderAdopt,
  renderVerify,
  renderFinding,
  verifyExitCode,
  renderPlan,
  holderLines,
  renderError,
} = require('./render.cjs');

function asTidemarkError(err) {
  if (err instanceof TidemarkError) return err;
  return new TidemarkError('E_INTERNAL', `internal error: ${err && err.stack ? err.stack : err}`, { exitCode: 2 });
}

/** `tidemark --version [--json]`: the version and the engine in use. */
function printVersion(out, env) {
  let b;
  let error;
  try {
    b = loader.load(env);
  } catch (err) {
    error = asTidemarkError(err);
  }
  if (out.json) {
    out.record({ event: 'version', version: VERSION, backend: b ? b.backend : null, package: b ? b.packageName : null, node: process.versions.node });
    if (error) out.record(error.toJSON());
  } else {
    out.line(b ? `tidemark ${VERSION} (${b.backend} backend, ${b.packageName})` : `tidemark ${VERSION} (no engine loaded)`);
  }
  if (!error) return 0;
  renderError(out, error);
  return error.exitCode;
}

/**
 * `reset` on a database server (not the embedded database, which reset
 * deletes as a folder) drops real tables: refused in CI, else confirmed by a
 * prompt in a terminal or by --yes. Production is refused by the API itself.
 * Throws when the reset must not go ahead.
 */
async function confirmReset(out, config, values) {
  const schemas = config.schema === 'public' ? 'the schema public' : `the schemas public and ${config.schema} (tracking)`;
  const it = config.schema === 'public' ? 'it' : 'them';
  const what =
    `reset drops ${schemas}, with every table in ${it} (also those no migration created), ` +
    `in the database ${redact(config.url)} (from ${config.urlSource})`;
  const ci = embedded().ciSignal(config.env);
  if (ci) {
    throw new TidemarkError('E_RESET_CI', `refusing to reset in CI (${ci}): ${what}; reset is for development databases`, { exitCode: 2 });
  }
  if (values.yes) return;
  const terminal = Boolean(process.stdin.isTTY && process.stderr.isTTY) && !out.json;
  if (!terminal) {
    throw new TidemarkError('E_USAGE', `${what}; there is no terminal to ask in, so pass --yes to confirm`);
  }
  const readline = require('node:readline/promises');
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  let answer;
  try {
    answer = await rl.question(`${what}.\nDrop ${it} and start afresh? [y/N] `);
  } finally {
    rl.close();
  }
  if (!/^y(es)?$/i.test(answer.trim())) {
    throw new TidemarkError('E_RESET_CANCELLED', 'reset cancelled; nothing was dropped', { exitCode: 3 });
  }
}

/**
 * `tidemark unlock [--terminate]`: shows the holder; with --terminate, asks
 * (or takes --yes) and then ends exactly that pid, which the engine checks
 * still holds the lock of this database and tracking table.
 */
async function unlockCommand(out, config, values, onEvent) {
  const report = await runner.run('unlock', { ...config, terminate: false }, { onEvent });
  if (out.json) out.record({ event: 'done', command: 'unlock', report });
  else for (const l of holderLines(out, report)) out.line(l);
  if (!config.terminate) {
    if (report.holder && !out.json) out.line(out.style('dim', 'tidemark unlock --terminate ends that session.'));
    return 0;
  }
  if (!report.holder) return 0;
  const { pid } = report.holder;
  if (config.pid !== undefined && config.pid !== pid) {
    throw new TidemarkError('E_UNLOCK_REFUSED', `pid ${config.pid} does not hold the migration lock of ${report.table} (pid ${pid} does); nothing was ended`);
  }
  if (!values.yes) {
    const terminal = Boolean(process.stdin.isTTY && process.stderr.isTTY) && !out.json;
    const what = `ending pid ${pid} rolls back whatever it has not committed`;
    if (!terminal) throw new TidemarkError('E_USAGE', `${what}; there is no terminal to ask in, so pass --yes to confirm`);
    const readline = require('node:readline/promises');
    const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
    let answer;
    try {
      answer = await rl.question(`End pid ${pid}? Its open transaction is rolled back. [y/N] `);
    } finally {
      rl.close();
    }
    if (!/^y(es)?$/i.test(answer.trim())) {
      throw new TidemarkError('E_UNLOCK_CANCELLED', `unlock cancelled; pid ${pid} was not ended`, { exitCode: 3 });
    }
  }
  // The second connection's own connecting lines were said already.
  const quiet = (e) => (e.event === 'connecting' || e.event === 'connected' ? undefined : onEvent(e));
  const ended = await runner.run('unlock', { ...config, terminate: true, pid }, { onEvent: quiet });
  if (out.json) out.record({ event: 'done', command: 'unlock', report: ended });
  else out.line(`${out.style('yellow', 'Ended')} pid ${pid}; it no longer holds the migration lock of ${ended.table}`);
  return 0;
}

/** `tidemark db serve`: serves the embedded database until SIGINT or SIGTERM. */
async function serveCommand(out, config, onEvent) {
  let stop;
  const stopSignal = new Promise((resolve) => {
    stop = resolve;
  });
  const onSignal = () => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await embedded().serve(config, {
      stopSignal,
      onEvent: (e) => {
        onEvent(e);
        if (out.json) return;
        if (e.event === 'serving') {
          out.line(`Serving the embedded database (${e.dir}) on 127.0.0.1; connect your app with:`);
          out.line(`  DATABASE_URL=${e.url}`);
          out.line(out.style('dim', 'tidemark migrate, seed and status use it while it runs. Press Ctrl-C to stop.'));
        } else if (e.event === 'stopped') {
          out.line(`Stopped; the data is saved in ${e.dir}`);
        }
      },
    });
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  return 0;
}

/** Runs the CLI; resolves with the exit code. */
async function main(argv, env = process.env) {
  const jsonRequested = argv.includes('--json');
  const noColorRequested = argv.includes('--no-color');
  let out = new Output({ json: jsonRequested, noColor: noColorRequested, env });
  let config;
  const fail = (e) => {
    const err = withFix(asTidemarkError(e), config, { cli: true });
    if (out.json) out.record(err.toJSON());
    renderError(out, err);
    return err.exitCode;
  };
  let parsed;
  try {
    parsed = parseCli(argv);
  } catch (err) {
    return fail(err);
  }
  const { command, args, values } = parsed;

  if (values.version && !values.help) return printVersion(out, env);
  if (values.help) {
    out.line(command ? commandHelp(command) : globalHelp());
    return 0;
  }
  if (!command) {
    out.err(globalHelp());
    out.err('');
    return fail(new TidemarkError('E_USAGE', 'no command given; run tidemark --help'));
  }

  try {
    config = resolveConfig({ ...flagsToOptions(values), cwd: process.cwd() }, { cli: true });
  } catch (err) {
    return fail(err);
  }
  out = new Output({ json: values.json, noColor: values['no-color'], env: config.env });
  const onEvent = out.json ? (e) => out.record(e) : (e) => renderEvent(out, e);

  const started = process.hrtime.bigint();
  const elapsed = () => Number((process.hrtime.bigint() - started) / 1_000_000n);
  try {
    if (command === 'create') {
      const report = runner.createFiles(config, { name: args.join(' '), reversible: values.reversible, onEvent });
      if (out.json) out.record({ event: 'done', command, report });
      return 0;
    }
    if (command === 'verify') {
      // The scratch database's own lines and every apply/revert are noise here: the summary says it.
      const noise = new Set(['connecting', 'embeddedCreated', 'trackingTableCreated', 'lockAcquired', 'migrationApplied', 'migrationReverted']);
      const show = (e) => {
        if (e.event === 'finding') renderFinding(out, e);
        else if (!noise.has(e.event)) onEvent(e);
      };
      const target = values.url !== undefined;
      const report = await runner.verifyWith(config, { onEvent: out.json ? onEvent : show, target });
      if (out.json) out.record({ event: 'done', command, report, durationMs: elapsed() });
      else renderVerify(out, report, elapsed(), config, target);
      return verifyExitCode(report);
    }
    if (command === 'db' && args[0] === 'create') {
      const report = await runner.run('createDatabase', config, { onEvent });
      if (out.json) out.record({ event: 'done', command: 'db create', report, durationMs: elapsed() });
      else out.line(report.created ? `${out.style('green', 'Created')} database ${report.database}` : `Database ${report.database} exists already; nothing to do`);
      return 0;
    }
    if (command === 'db') return await serveCommand(out, config, onEvent);
    if (command === 'unlock') return await unlockCommand(out, config, values, onEvent);
    if (command === 'reset' && config.url && !config.production) await confirmReset(out, config, values);
    if (command === 'accept') config.version = args[0];
    // plan and accept look at a real server's history: they need a URL.
    const report = await runner.run(command, config, { onEvent, embedded: command !== 'plan' && command !== 'accept' });
    const took = elapsed();
    if (out.json) {
      out.record({ event: 'done', command, report, durationMs: took });
    } else {
      switch (command === 'deploy' && config.dryRun ? 'plan' : command) {
        case 'plan':
          renderPlan(out, report);
          break;
        case 'migrate':
        case 'deploy':
          out.line(migrateSummary(report, took));
          break;
        case 'status':
          renderStatus(out, report, config);
          break;
        case 'down':
          out.line(`${plural(report.reverted?.length ?? 0, 'migration')} reverted`);
          break;
        case 'redo':
          out.line(`${plural(report.reverted?.length ?? 0, 'migration')} reverted, ${report.applied?.length ?? 0} applied again (${took} ms)`);
          break;
        case 'seed':
          out.line(seedSummary(report));
          break;
        case 'accept': {
          const a = report.accepted;
          out.line(
            `${out.style('green', 'Accepted')} the edit of ${a.file}: checksum ${short(a.appliedChecksum)} as applied, ` +
              `${short(a.acceptedChecksum)} now; by ${a.acceptedBy ?? '-'}, reason: ${a.reason}`,
          );
          break;
        }
        case 'reset':
          if (Array.isArray(report.dropped) && report.dropped.length > 0) out.line(`Dropped: ${report.dropped.join(', ')}`);
          out.line(`Reset: ${plural(report.migrate?.applied?.length ?? 0, 'migration')} applied, ${seedSummary(report.seed ?? {})}`);
          break;
        case 'adopt':
        case 'baseline':
          renderAdopt(out, report, config, took);
          break;
        default:
          break;
      }
    }
    // Adopted history that does not match the files is found drift.
    if (command === 'adopt' && report.matchesFiles === false) return 1;
    if (command === 'status' && values['exit-code']) {
      const r = report;
      if (r.pending || r.failed || r.drifted || r.missing) return 1;
    }
    return 0;
  } catch (err) {
    return fail(err);
  }
}

module.exports = { main };
