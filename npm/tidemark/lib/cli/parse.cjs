'use strict';
// The CLI's arguments: flags from the one options table (lib/options.cjs),
// commands and their positional arguments, usage errors.

const { OPTIONS, COMMANDS, canonicalCommand, accepts } = require('../options.cjs');
const { TidemarkError } = require('../errors.cjs');

/**
 * The common command lines (`deploy --dir migrations --url ...`) without
 * node:util's parseArgs, whose first call costs 1-1.5 ms (start-up, issue
 * 15): only positionals, known long options as `--flag`, `--flag value`
 * or `--flag=value`, and values that do not start with `-`. Returns
 * undefined for anything else (short flags, `--`, an unknown option, a
 * missing value, `--yes=1`), which parseArgs then parses and reports as
 * before. Same values, positionals and option tokens as parseArgs for what
 * it accepts (tests/unit.test.mjs compares the two).
 */
function parseSimple(args) {
  const values = { __proto__: null };
  const positionals = [];
  const tokens = [];
  for (let i = 0; i < args.length; i += 1) {
    const a = args[i];
    if (!a.startsWith('-')) {
      positionals.push(a);
      tokens.push({ kind: 'positional', index: i, value: a });
      continue;
    }
    if (!a.startsWith('--') || a === '--') return undefined;
    const eq = a.indexOf('=');
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    const opt = OPTIONS.find((o) => o.flag === name);
    if (!opt) return undefined;
    if (opt.type === 'boolean') {
      if (eq >= 0) return undefined;
      values[name] = true;
      tokens.push({ kind: 'option', name, rawName: a, index: i, value: undefined, inlineValue: undefined });
      continue;
    }
    if (eq >= 0) {
      values[name] = a.slice(eq + 1);
      tokens.push({ kind: 'option', name, rawName: `--${name}`, index: i, value: values[name], inlineValue: true });
      continue;
    }
    const value = args[i + 1];
    if (value === undefined || value.startsWith('-')) return undefined;
    values[name] = value;
    tokens.push({ kind: 'option', name, rawName: a, index: i, value, inlineValue: false });
    i += 1;
  }
  return { values, positionals, tokens };
}

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
    parsed =
      parseSimple(args) ??
      require('node:util').parseArgs({ args, options: parseArgsOptions(), allowPositionals: true, strict: true, tokens: true });
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

module.exports = { parseCli, flagsToOptions, helpPointer, parseSimple, parseArgsOptions };
