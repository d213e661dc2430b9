'use strict';
// `tidemark --help` and `tidemark <command> --help`, from the one options
// table; the engine's defaults where it declares them.

const { OPTIONS, COMMANDS, CONNECTING, bareUnit, accepts } = require('../options.cjs');
const loader = require('../loader.cjs');
const { version: VERSION } = require('../../package.json');

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

module.exports = { globalHelp, commandHelp };
