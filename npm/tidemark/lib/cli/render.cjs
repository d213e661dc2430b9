'use strict';
// What the CLI prints: one line per event (or NDJSON), the summaries and
// tables of the reports, and errors with the line the engine quotes.

const fs = require('node:fs');
const path = require('node:path');
const util = require('node:util');
// The embedded database's own lines; its module loads only for its events
// (a deploy with a URL never needs it: start-up, issue 15).
const embeddedLine = (e) =>
  e.source === 'embedded' || String(e.event).startsWith('embedded') ? require('../embedded/index.cjs').describe(e) : undefined;

/**
 * `util.styleText` where Node has it (20.12+); on Node 20.0-20.11 the same
 * ANSI codes from `util.inspect.colors`, which every Node 20 has.
 */
function paint(format, text) {
  if (typeof util.styleText === 'function') return util.styleText(format, text, { validateStream: false });
  const codes = util.inspect.colors[format];
  return codes ? `\u001b[${codes[0]}m${text}\u001b[${codes[1]}m` : text;
}

/**
 * Whether file descriptor `fd` is a terminal. A pipe, a file or /dev/null
 * (CI, Vercel, `| tee`, `> /dev/null`) is told by fstat; only another
 * character device asks node:tty, whose loading (with node:net and the
 * streams) costs 5 ms (start-up, issue 15).
 */
function isTerminal(fd) {
  try {
    const st = fs.fstatSync(fd);
    if (!st.isCharacterDevice()) return false;
    if (fs.statSync('/dev/null').rdev === st.rdev) return false;
  } catch {
    // No /dev/null (Windows): ask node:tty.
  }
  try {
    return require('node:tty').isatty(fd);
  } catch {
    return false;
  }
}

/** Descriptors whose reader went away (`| head`): nothing more is written to them. */
const gone = new Set();

/**
 * Writes `text` to `fd` whole, synchronously: the CLI never creates
 * process.stdout and process.stderr, whose stream classes cost 5-7 ms to load
 * on every run (start-up, issue 15), and nothing is left to flush at exit.
 * A non-blocking descriptor that is full is waited on. When the reader went
 * away (`| head`), later output to it is dropped but the command runs to its
 * end: its exit code is still the outcome's, never a 0 for a run cut short.
 */
function writeAll(fd, text) {
  if (gone.has(fd)) return;
  const bytes = Buffer.from(text);
  let at = 0;
  while (at < bytes.length) {
    try {
      at += fs.writeSync(fd, bytes, at);
    } catch (err) {
      if (err.code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
        continue;
      }
      if (err.code === 'EPIPE') {
        gone.add(fd);
        return;
      }
      throw err;
    }
  }
}

class Output {
  constructor({ json, noColor, env }) {
    this.json = Boolean(json);
    const allowed = !noColor && !env.NO_COLOR;
    this.colorOut = allowed && isTerminal(1);
    this.colorErr = allowed && isTerminal(2);
  }

  style(format, text, stream = 'out') {
    const on = stream === 'out' ? this.colorOut : this.colorErr;
    return on ? paint(format, text) : text;
  }

  line(text) {
    writeAll(1, `${text}\n`);
  }

  err(text) {
    writeAll(2, `${text}\n`);
  }

  record(obj) {
    writeAll(1, `${JSON.stringify(obj)}\n`);
  }
}

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Renders one event as a human line (or nothing). */
function renderEvent(out, e) {
  const d = (s) => out.style('dim', s);
  const local = embeddedLine(e);
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

/** One verify finding: `warning: migrations/002_x.sql:4:3: message [rule]`, then the safer form. */
function renderFinding(out, f) {
  const label = f.severity === 'error' ? out.style('red', 'error:') : out.style('yellow', 'warning:');
  const where = [f.file, f.line, f.column].filter((x) => x !== undefined && x !== null && x !== '').join(':');
  out.line(`${label} ${where ? `${where}: ` : ''}${f.message} [${f.rule}]`);
  if (f.safer) out.line(`  safer: ${f.safer}`);
}

/** `verify`: the downs that did not restore the schema, the target check, then the summary. */
function renderVerify(out, report, took, config, targetAsked) {
  const on = config.shadowUrl ? 'a scratch database on the shadow server' : 'a scratch embedded database';
  for (const n of report.notReversed) {
    out.line(`${out.style('red', 'not reversed:')} ${n.file}: its down does not restore the schema its up changed`);
    for (const l of n.leftBehind) out.line(`  left behind:  ${l}`);
    for (const l of n.notRestored) out.line(`  not restored: ${l}`);
  }
  const errors = report.findings.filter((f) => f.severity === 'error').length;
  const warnings = report.findings.length - errors;
  const lint = report.findings.length === 0 ? 'none' : [errors && plural(errors, 'error'), warnings && plural(warnings, 'warning')].filter(Boolean).join(', ');
  const t = report.target;
  if (t) {
    const pending = t.pending.length === 0 ? 'nothing pending' : `${t.pending.length} pending (${t.pending.map((m) => m.version).join(', ')})`;
    out.line(`Target ${config.redactedUrl}: ${plural(t.applied, 'migration')} applied, ${pending}; read without the migration lock, nothing written`);
    const r = t.rehearsal;
    if (r) {
      const stop = r.stoppedBefore ? `; not rehearsed from ${r.stoppedBefore} on (it runs without a transaction, which a rollback cannot undo)` : '';
      out.line(`Rehearsed ${plural(r.rehearsed, 'pending migration')} on the target in one transaction, rolled back (lock_timeout ${r.lockTimeoutMs} ms)${stop}`);
    }
  }
  if (report.notReplayed) {
    if (targetAsked) out.line(`The target ${config.redactedUrl} was not checked: deploy would refuse the files first`);
    out.line(`Not replayed: ${report.notReplayed}; findings: ${lint} (${took} ms)`);
    return;
  }
  const [bad] = report.notReversed;
  if (bad) {
    const rest = report.migrations - report.replayed - 1;
    out.line(`Stopped at ${bad.file} on ${on}: ${report.replayed} before it replayed${rest ? `, ${rest} after it not run` : ''}; findings: ${lint} (${took} ms)`);
    return;
  }
  const downs = `${plural(report.reversible, 'reversible one')} reverted and restored the schema, then applied again`;
  out.line(`Verified ${plural(report.migrations, 'migration')} on ${on}: all applied; ${downs}; findings: ${lint} (${took} ms)`);
}

/** verify's exit code: 1 when a finding is an error (warnings are, with --strict) or a down does not undo its up. */
function verifyExitCode(report) {
  return report.notReversed.length > 0 || report.findings.some((f) => f.severity === 'error') ? 1 : 0;
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

module.exports = {
  Output,
  plural,
  renderEvent,
  migrateSummary,
  seedSummary,
  formatAppliedAt,
  short,
  renderStatus,
  renderAdopt,
  renderVerify,
  renderFinding,
  verifyExitCode,
  renderPlan,
  holderLines,
  sourcePointer,
  renderError,
};
