'use strict';
// The CLI: parse flags (from the one options table), resolve the config like
// the API does, run, and render events and reports as lines or NDJSON.

const fs = require('node:fs');
const path = require('node:path');
const util = require('node:util');
const { OPTIONS, COMMANDS, CONNECTING, canonicalCommand, bareUnit, accepts } = require('./options.cjs');
const { TidemarkError } = require('./errors.cjs');
const { resolveConfig } = require('./config.cjs');
const runner = require('./run.cjs');
const loader = require('./loader.cjs');
const embedded = require('./embedded.cjs');
const { redact } = require('./url.cjs');
const { withFix } = require('./fixes.cjs');
const { version: VERSION } = require('../package.json');

// ---------------------------------------------------------------- parsing

function parseArgsOptions() {
  const o = {};
  for (const opt of OPTIONS) {
    o[opt.flag] = { type: opt.type === 'boolean' ? 'boolean' : 'string' };
    if (opt.short) o[opt.flag].short = opt.short;
  }
  return o;
}

function firstCommandIn(argv) {
  for (const a of argv) {
    const c = canonicalCommand(a);
    if (c) return c;
  }
  return undefined;
}

function helpPointer(command) {
  return command ? `run tidemark ${command} --help` : 'run tidemark --help';
}

/** Turns node:util parseArgs errors into our usage errors. */
function usageError(err, argv) {
  const pointer = helpPointer(firstCommandIn(argv));
  const quoted = /'([^']+)'/.exec(err.message);
  const name = quoted ? quoted[1] : undefined;
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new TidemarkError('E_USAGE', `unknown option ${name ?? ''}; ${pointer} for the options`.replace('  ', ' '));
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const flag = name ? name.replace(/ <value>$/, '').split(', ').pop() : 'an option';
      if (/does not take an argument/.test(err.message)) {
        return new TidemarkError('E_USAGE', `option ${flag} does not take a value; ${pointer}`);
      }
      return new TidemarkError('E_USAGE', `option ${flag} needs a value; ${pointer}`);
    }
    default:
      return new TidemarkError('E_USAGE', `${err.message}; ${pointer}`);
  }
}

/**
 * `--steps -1` and `--connect-timeout -5` as `--steps=-1`: node:util's parser
 * takes a value starting with `-` for another option, and would say the flag
 * "needs a value"; this way the value reaches its own check and message.
 */
function joinNegativeValues(argv) {
  const out = [];
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const opt = OPTIONS.find((o) => o.type !== 'boolean' && (a === `--${o.flag}` || (o.short && a === `-${o.short}`)));
    if (opt && i + 1 < argv.length && /^-\.?\d/.test(argv[i + 1])) {
      out.push(`--${opt.flag}=${argv[i + 1]}`);
      i += 1;
    } else {
      out.push(a);
    }
  }
  return out;
}

/**
 * Parses argv into `{ command, args, values }`. `command` is undefined for a
 * bare `tidemark` (or `tidemark --help` / `--version`).
 */
function parseCli(argv) {
  let parsed;
  try {
    const args = joinNegativeValues(argv);
    parsed = util.parseArgs({ args, options: parseArgsOptions(), allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    throw usageError(err, argv);
  }
  const { values, positionals, tokens } = parsed;
  let [name, ...args] = positionals;
  if (name === 'help') {
    values.help = true;
    [name, ...args] = args;
  }
  if (name === undefined) return { command: undefined, args: [], values };
  const command = canonicalCommand(name);
  if (!command) {
    const list = Object.keys(COMMANDS).join(', ');
    throw new TidemarkError('E_USAGE', `unknown command "${name}"; the commands are ${list}; run tidemark --help`);
  }
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    const opt = OPTIONS.find((o) => o.flag === t.name);
    if (accepts(opt, command)) continue;
    const strict = command === 'deploy' && opt.key.startsWith('allow')
      ? '; deploy is always strict (use tidemark migrate to relax a check)'
      : '';
    throw new TidemarkError(
      'E_USAGE',
      `option --${opt.flag} does not apply to tidemark ${command} (it is for: ${opt.commands.join(', ')})${strict}; ${helpPointer(command)}`,
    );
  }
  if (command === 'db' && args[0] !== 'serve' && args[0] !== 'create' && !values.help) {
    const what = args[0] === undefined ? 'tidemark db needs a subcommand' : `unknown subcommand "${args[0]}" for tidemark db`;
    throw new TidemarkError('E_USAGE', `${what}: tidemark db create or tidemark db serve; ${helpPointer(command)}`);
  }
  if (command === 'db' && args[0] === 'serve') {
    const flag = ['url', 'connect-timeout', 'tls-insecure'].find((f) => values[f] !== undefined);
    if (flag) throw new TidemarkError('E_USAGE', `option --${flag} is for tidemark db create; db serve serves the embedded database; ${helpPointer(command)}`);
  }
  if (command === 'accept' && args.length === 0 && !values.help) {
    throw new TidemarkError('E_USAGE', `tidemark accept needs the version of the applied migration, for example: tidemark accept 003 --reason "comment only"; ${helpPointer(command)}`);
  }
  const allowed = command === 'create' ? Infinity : command === 'db' || command === 'accept' ? 1 : 0;
  if (args.length > allowed) {
    throw new TidemarkError('E_USAGE', `unexpected argument "${args[allowed]}" for tidemark ${command}; ${helpPointer(command)}`);
  }
  return { command, args, values };
}

/** The API options the flags stand for. */
function flagsToOptions(values) {
  const o = {};
  for (const opt of OPTIONS) {
    if (opt.cli || values[opt.flag] === undefined) continue;
    o[opt.key] = values[opt.flag];
  }
  return o;
}

// ---------------------------------------------------------------- help

/** The engine's default of an option it declares; undefined when no engine loads (help still works). */
function engineDefault(key) {
  try {
    return loader.defaults()[key];
  } catch {
    return undefined;
  }
}

function formatDefault(opt) {
  const value = opt.engineDefault ? engineDefault(opt.key) : opt.default;
  if (value === undefined) return undefined;
  if (opt.type === 'duration') return value % 1000 === 0 ? `${value / 1000}s` : `${value}ms`;
  return String(value);
}

function optionLines(options) {
  const rows = options.map((opt) => {
    const names = `${opt.short ? `-${opt.short}, ` : '    '}--${opt.flag}${opt.value ? ` ${opt.value}` : ''}`;
    const notes = [];
    if (opt.unit) notes.push(bareUnit(opt));
    const d = formatDefault(opt);
    if (d !== undefined) notes.push(`default: ${d}`);
    if (opt.env || opt.envHelp) notes.push(`env: ${opt.envHelp ?? opt.env}`);
    return { names, help: opt.help, notes: notes.length ? `[${notes.join('; ')}]` : '' };
  });
  const width = Math.max(...rows.map((r) => r.names.length)) + 2;
  const lines = [];
  for (const r of rows) {
    const first = `  ${r.names.padEnd(width)}${r.help}`;
    if (!r.notes) lines.push(first);
    else if (first.length + 1 + r.notes.length <= 100) lines.push(`${first} ${r.notes}`);
    else lines.push(first, `  ${''.padEnd(width)}${r.notes}`);
  }
  return lines;
}

const EXIT_CODES = [
  'Exit codes:',
  '  0  success',
  '  1  status --exit-code found pending, failed, drifted or missing migrations (adopt: history that differs from the files;',
  '     verify: a down that does not undo its up)',
  '  2  the database, a migration or a seed failed (or the connection did)',
  '  3  configuration or usage error (unknown flag, no database URL, missing folder, bad config)',
];

function globalHelp() {
  const names = Object.entries(COMMANDS).map(([name, spec]) => ({
    label: [name, ...(spec.aliases ?? [])].join(', ') + (spec.args ? ` ${spec.args}` : ''),
    summary: spec.summary,
  }));
  const w = Math.max(...names.map((n) => n.label.length)) + 2;
  const common = OPTIONS.filter((o) => CONNECTING.every((c) => accepts(o, c)) && !['help', 'version'].includes(o.key));
  return [
    `tidemark ${VERSION}: PostgreSQL migrations and seeds for JavaScript monorepos`,
    '',
    'Usage: tidemark <command> [options]',
    '',
    'Commands:',
    ...names.map((n) => `  ${n.label.padEnd(w)}${n.summary}`),
    '',
    'Options for every command that connects (create takes them too, so one set of flags fits all):',
    ...optionLines(common),
    '',
    ...optionLines(OPTIONS.filter((o) => o.key === 'help' || o.key === 'version')),
    '',
    'Flags win over environment variables, which win over tidemark.config.json (or the',
    '"tidemark" key of package.json), which win over defaults. .env, .env.local, .env.<NODE_ENV>',
    'and .env.<NODE_ENV>.local are read without overriding variables already set.',
    '',
    'With no database URL, outside production (NODE_ENV/VERCEL_ENV) and CI, migrate, status, down, redo,',
    'seed and reset use the embedded database (PGlite) in .tidemark/pglite (--embedded-dir); deploy never',
    'does. tidemark db serve serves it to your app.',
    '',
    ...EXIT_CODES,
    '',
    'Run tidemark <command> --help for the options of one command.',
  ].join('\n');
}

/** The common flags this command accepts without using them (design §8). */
function alsoAccepted(command) {
  const unused = OPTIONS.filter((o) => accepts(o, command) && !o.commands.includes(command));
  if (unused.length === 0) return [];
  const lines = ['', `Also accepted, so that one set of flags works for every command (${command} does not use them):`];
  let line = ' ';
  for (const [i, o] of unused.entries()) {
    const item = ` --${o.flag}${i === unused.length - 1 ? '' : ','}`;
    if (line.length + item.length > 100) {
      lines.push(line);
      line = ' ';
    }
    line += item;
  }
  lines.push(line);
  return lines;
}

function commandHelp(command) {
  const spec = COMMANDS[command];
  const aliases = spec.aliases ? ` (alias: ${spec.aliases.join(', ')})` : '';
  return [
    `tidemark ${command}${aliases}: ${spec.summary}`,
    '',
    `Usage: tidemark ${command}${spec.args ? ` ${spec.args}` : ''} [options]`,
    '',
    spec.description,
    '',
    'Options:',
    ...optionLines(OPTIONS.filter((o) => o.commands.includes(command) && o.key !== 'version')),
    ...alsoAccepted(command),
    '',
    ...EXIT_CODES,
  ].join('\n');
}

// ---------------------------------------------------------------- output

/**
 * `util.styleText` where Node has it (20.12+); on Node 20.0-20.11 the same
 * ANSI codes from `util.inspect.colors`, which every Node 20 has.
 */
function paint(format, text) {
  if (typeof util.styleText === 'function') return util.styleText(format, text, { validateStream: false });
  const codes = util.inspect.colors[format];
  return codes ? `\u001b[${codes[0]}m${text}\u001b[${codes[1]}m` : text;
}

class Output {
  constructor({ json, noColor, env }) {
    this.json = Boolean(json);
    const allowed = !noColor && !env.NO_COLOR;
    this.colorOut = allowed && Boolean(process.stdout.isTTY);
    this.colorErr = allowed && Boolean(process.stderr.isTTY);
  }

  style(format, text, stream = 'out') {
    const on = stream === 'out' ? this.colorOut : this.colorErr;
    return on ? paint(format, text) : text;
  }

  line(text) {
    process.stdout.write(`${text}\n`);
  }

  err(text) {
    process.stderr.write(`${text}\n`);
  }

  record(obj) {
    process.stdout.write(`${JSON.stringify(obj)}\n`);
  }
}

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Renders one event as a human line (or nothing). */
function renderEvent(out, e) {
  const d = (s) => out.style('dim', s);
  const local = embedded.describe(e); // the embedded database's own lines
  if (local !== undefined) {
    out.line(local);
    return;
  }
  switch (e.event) {
    case 'connecting':
      out.line(
        e.insteadOf
          ? `Using ${e.source} (${e.url}) instead of the pooled ${e.insteadOf} (${e.pooler})`
          : `Using ${e.source} (${e.url})`,
      );
      break;
    case 'connectRetry':
      out.line(d(`Connecting: attempt ${e.attempt} failed (${e.error}); retrying in ${e.delayMs} ms`));
      break;
    case 'warning':
      out.line(`${out.style('yellow', 'warning:')} ${e.message}`);
      break;
    case 'trackingTableCreated':
      out.line(`Created tracking table ${e.table}`);
      break;
    case 'trackingTableUpgraded':
      out.line(`Upgraded tracking table ${e.table} (added the missing columns)`);
      break;
    case 'migrationApplied':
      out.line(`${out.style('green', 'Applied')} ${e.version} ${e.name} ${d(`(${e.durationMs} ms)`)}`);
      break;
    case 'statementApplied':
      out.line(d(`  statement ${e.index}/${e.total} of ${e.version}`));
      break;
    case 'migrationResumed':
      out.line(`Resuming ${e.version} ${e.name} after ${plural(e.skippedStatements, 'statement')} that already ran`);
      break;
    case 'migrationReverted':
      out.line(`${out.style('yellow', 'Reverted')} ${e.version} ${e.name} ${d(`(${e.durationMs} ms)`)}`);
      break;
    case 'seedApplied':
      out.line(`${out.style('green', 'Seeded')} ${e.name} ${d(`(${e.durationMs} ms)`)}`);
      break;
    case 'seedSkipped':
      out.line(`Skipped seed ${e.name} ${d('(already ran with the same contents)')}`);
      break;
    case 'created':
      out.line(`${out.style('green', 'Created')} ${e.file}`);
      break;
    case 'schemasDropped':
      out.line(
        e.schemas.length === 1
          ? `${out.style('yellow', 'Dropped')} schema ${e.schemas[0]} with everything in it`
          : `${out.style('yellow', 'Dropped')} schemas ${e.schemas.join(', ')} with everything in them`,
      );
      break;
    default:
      // connected, planned, upToDate, lockAcquired, migrationFailed: the
      // summary or the error says it.
      break;
  }
}

function migrateSummary(report, elapsed) {
  const applied = report.applied?.length ?? 0;
  const pending = report.pending ?? 0;
  if (applied === 0) {
    const rest = pending === 0 ? 'nothing pending' : `${pending} pending after --to`;
    return `Up to date: ${plural(report.alreadyApplied ?? 0, 'migration')} applied, ${rest} (${elapsed} ms)`;
  }
  return `${plural(applied, 'migration')} applied, ${pending} pending (${elapsed} ms)`;
}

function seedSummary(report) {
  return `${plural(report.ran?.length ?? 0, 'seed')} ran, ${report.skipped?.length ?? 0} skipped (${report.environment})`;
}

function formatAppliedAt(iso) {
  if (!iso) return '-';
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return String(iso);
  return t.toISOString().slice(0, 19).replace('T', ' ');
}

/** The first 12 hex digits of a checksum, as the engine's messages show them. */
const short = (checksum) => String(checksum ?? '').slice(0, 12);

function renderStatus(out, report, config) {
  const rows = report.migrations.map((m) => [
    m.version,
    m.name,
    m.state === 'pending' && m.outOfOrder ? 'pending (out of order)' : m.state,
    formatAppliedAt(m.appliedAt),
    m.durationMs === undefined || m.durationMs === null ? '-' : `${m.durationMs} ms`,
    m.checksum === 'none' ? '-' : m.checksum,
  ]);
  if (rows.length === 0) {
    out.line(`No migrations in ${path.relative(config.cwd, config.dir) || '.'} and none applied`);
  } else {
    const header = ['version', 'name', 'state', 'applied at (UTC)', 'duration', 'checksum'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const fmt = (r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
    out.line(out.style('bold', fmt(header)));
    for (const [i, r] of rows.entries()) {
      const m = report.migrations[i];
      const color = m.state === 'applied' ? (m.checksum === 'changed' ? 'yellow' : undefined) : m.state === 'pending' ? 'cyan' : 'red';
      const text = fmt(r);
      out.line(color ? out.style(color, text) : text);
    }
    for (const m of report.migrations) {
      if (m.state === 'failed' && m.errorMessage) out.line(`${m.version} failed: ${m.errorMessage}`);
    }
    for (const a of report.accepted ?? []) {
      out.line(
        `${a.version} edit accepted: checksum ${short(a.appliedChecksum)} as applied, ${short(a.acceptedChecksum)} now; ` +
          `${formatAppliedAt(a.acceptedAt)} UTC by ${a.acceptedBy ?? '-'}: ${a.reason}`,
      );
    }
  }
  const parts = [`${report.applied} applied`, `${report.pending} pending`];
  if (report.drifted) parts.push(`${report.drifted} drifted`);
  if (report.accepted?.length) parts.push(`${report.accepted.length} accepted`);
  if (report.missing) parts.push(`${report.missing} missing`);
  if (report.failed) parts.push(`${report.failed} failed`);
  out.line(parts.join(', '));
}

/** `adopt` and `baseline`: what matched, what did not, what stays pending. */
function renderAdopt(out, report, config, took) {
  const file = (f) => path.relative(config.cwd, path.join(config.dir, f));
  const dry = report.dryRun;
  const baseline = report.from === 'baseline';
  if (!baseline && report.table) {
    out.line(`Found ${report.from}'s history in ${report.table}: ${plural(report.entries, 'entry', 'entries')}, matched ${report.matchedBy}`);
  }
  const verb = dry ? 'Would adopt' : baseline ? 'Marked' : 'Adopted';
  for (const a of report.adopted) {
    const when = a.appliedAt ? ` ${out.style('dim', `(applied ${formatAppliedAt(a.appliedAt)})`)}` : '';
    if (a.state === 'matched') {
      out.line(`${out.style('green', verb)} ${a.version} ${a.name}${baseline ? ' as applied' : ''}${when}`);
    } else if (a.state === 'changed') {
      out.line(
        `${out.style('yellow', `${verb} changed`)} ${a.version} ${a.name}: ${file(a.file)} differs from what ${report.from} applied; status shows it as changed`,
      );
    } else {
      out.line(
        `${out.style('yellow', `${verb} missing`)} ${a.version}${a.name ? ` ${a.name}` : ''}: ${report.from} applied it but its file is not in ${path.relative(config.cwd, config.dir) || '.'}; status shows it as missing`,
      );
    }
  }
  for (const n of report.notRecorded) {
    out.line(`${out.style('yellow', 'Not recorded')} ${report.from} entry ${n}: no file has its content and no journal entry names it`);
  }
  for (const p of report.pending) {
    out.line(`${out.style('cyan', 'Pending')} ${p.version} ${p.name} (${file(p.file)}): the next deploy applies it`);
  }
  if (report.converted) {
    out.line(`${dry ? 'Would convert' : 'Converted'} ${report.table} in place into tidemark's table, keeping ${report.from}'s rows`);
  }
  const parts = [];
  if (report.alreadyRecorded) parts.push(`${report.alreadyRecorded} already recorded`);
  parts.push(`${report.pending.length} pending`);
  const n = plural(report.adopted.length, 'migration');
  if (report.adopted.length === 0 && !report.converted) {
    out.line(`Nothing to ${baseline ? 'mark' : 'adopt'}: ${parts.join(', ')} (${took} ms)`);
  } else if (dry) {
    out.line(`Dry run: would ${baseline ? 'mark' : 'adopt'} ${n}${baseline ? ' as applied' : ` from ${report.from}`}, ${parts.join(', ')}; nothing was written (${took} ms)`);
  } else {
    const where = baseline ? `as applied in ${report.trackingTable}` : `from ${report.from} into ${report.trackingTable}`;
    out.line(`${baseline ? 'Marked' : 'Adopted'} ${n} ${where}, ${parts.join(', ')}; nothing was run (${took} ms)`);
  }
}

/** `  --> file:line:col`, the line (the engine quotes it), and a caret under the column. */
function sourcePointer(err) {
  if (!err.file || !err.line) return [];
  const lines = [`  --> ${err.file}:${err.line}${err.column ? `:${err.column}` : ''}`];
  const src = err.sourceLine;
  if (typeof src !== 'string') return lines;
  const gutter = String(err.line).length;
  const pad = ' '.repeat(gutter + 2);
  lines.push(`${pad}|`, ` ${err.line} | ${src}`);
  if (err.column) {
    // Columns count characters; keep tabs so the caret lines up.
    const before = Array.from(src).slice(0, err.column - 1);
    lines.push(`${pad}| ${before.map((c) => (c === '\t' ? '\t' : ' ')).join('')}^`);
  }
  return lines;
}

function renderError(out, err) {
  out.err(`${out.style('red', 'error:', 'err')} ${err.message}`);
  for (const l of sourcePointer(err)) out.err(l);
  if (err.detail) out.err(`detail: ${err.detail}`);
  if (err.hint) out.err(`${out.style('cyan', 'hint:', 'err')} ${err.hint}`);
}

// ---------------------------------------------------------------- main

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
  const ci = embedded.ciSignal(config.env);
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

function asTidemarkError(err) {
  if (err instanceof TidemarkError) return err;
  return new TidemarkError('E_INTERNAL', `internal error: ${err && err.stack ? err.stack : err}`, { exitCode: 2 });
}

/** `verify`: the downs that did not restore the schema, then the summary. */
function renderVerify(out, report, took) {
  for (const n of report.notReversed) {
    out.line(`${out.style('red', 'not reversed:')} ${n.file}: its down does not restore the schema its up changed`);
    for (const l of n.leftBehind) out.line(`  left behind:  ${l}`);
    for (const l of n.notRestored) out.line(`  not restored: ${l}`);
  }
  const [bad] = report.notReversed;
  if (bad) {
    const rest = report.migrations - report.replayed - 1;
    out.line(`Stopped at ${bad.file} on a scratch embedded database: ${report.replayed} before it replayed${rest ? `, ${rest} after it not run` : ''} (${took} ms)`);
    return;
  }
  const downs = `${plural(report.reversible, 'reversible one')} reverted and restored the schema, then applied again`;
  out.line(`Verified ${plural(report.migrations, 'migration')} on a scratch embedded database: all applied; ${downs} (${took} ms)`);
}

/** `plan` / `deploy --dry-run`: the pending migrations, then each message deploy would send. */
function renderPlan(out, report) {
  const n = report.messages.length;
  const sends = `deploy would send ${plural(n, 'message')}`;
  if (report.upToDate) {
    out.line(`Up to date: ${plural(report.alreadyApplied, 'migration')} applied; ${sends} (the read) and change nothing`);
  } else {
    const table = report.createsTrackingTable ? ', create the tracking table' : '';
    out.line(`Would apply ${plural(report.pending.length, 'migration')} (${report.alreadyApplied} already applied)${table}; ${sends}:`);
    for (const m of report.pending) out.line(`  ${m.version} ${m.name}${m.transaction ? '' : ' (no transaction)'}`);
  }
  for (const [i, m] of report.messages.entries()) {
    out.line(out.style('dim', `-- message ${i + 1} of ${n}: ${m.purpose}`));
    out.line(m.sql.replace(/\n$/, ''));
  }
  if (!report.complete) out.line('Not shown: the tracking updates deploy sends between the statements of no-transaction and COPY migrations.');
  if (report.redacted) out.line("String literals after PASSWORD are shown as '****'.");
  out.line('Nothing was written.');
}

/** The lines that describe who holds the lock (`unlock`). */
function holderLines(out, report) {
  const h = report.holder;
  if (!h) return [`No one holds the migration lock of ${report.table}`];
  const since = h.since ? `${formatAppliedAt(h.since)} UTC (${h.seconds} s ago; the lock was taken at or after this)` : '-';
  const rows = [
    ['application_name', h.applicationName || '-'],
    ['user', h.user || '-'],
    ['client', h.clientAddr ?? 'local socket'],
    ['connected since', since],
    ['state', h.state || '-'],
    ['query', (h.query || '-').replace(/\s+/g, ' ')],
  ];
  if (report.waiting) rows.push(['waiting', `${plural(report.waiting, 'session')} wait for the lock`]);
  return [
    `The migration lock of ${report.table} is held by ${out.style('bold', `pid ${h.pid}`)}`,
    ...rows.map(([k, v]) => `  ${k.padEnd(17)}${v}`),
  ];
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
    await embedded.serve(config, {
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
      const report = await runner.verifyWith(config, { onEvent: out.json ? onEvent : (e) => (noise.has(e.event) ? undefined : onEvent(e)) });
      if (out.json) out.record({ event: 'done', command, report, durationMs: elapsed() });
      else renderVerify(out, report, elapsed());
      return report.notReversed.length > 0 ? 1 : 0;
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

module.exports = { main, parseCli, globalHelp, commandHelp, sourcePointer, migrateSummary };
