'use strict';

/**
 * Codes whose cause is the configuration or the invocation, not the
 * database: exit code 3. Everything else the engine or the connection
 * reports is exit code 2.
 */
const CONFIG_CODES = new Set([
  'E_USAGE', // unknown command or flag, bad flag value
  'E_CONFIG', // unreadable config file, missing migrations folder, bad option value
  'E_NO_DATABASE_URL',
  'E_INVALID_URL',
  'E_INVALID_OPTION',
  'E_BACKEND', // no engine could be loaded, or its version does not match
  'E_PEER_HISTORY', // another tool's history and none of tidemark's: adopt it first
  'E_NO_PEER_HISTORY', // adopt found nothing to adopt
  'E_ADOPT_AMBIGUOUS', // adopt cannot decide (two tools, two files for one entry)
  // A migrations folder tidemark cannot read as it is: never "up to date".
  'E_UNKNOWN_LAYOUT',
  'E_BAD_FILE_NAME',
  'E_INVALID_MARKER',
  'E_SCRIPT_MIGRATION',
]);

/** The exit code the CLI uses for an error code. */
function exitCodeFor(code) {
  return CONFIG_CODES.has(code) ? 3 : 2;
}

const FIELDS = ['file', 'folder', 'line', 'column', 'sourceLine', 'sqlState', 'version', 'detail', 'hint'];

/**
 * The one error type of the JS API: a stable `code`, where it happened
 * (`file` relative to the working directory, its `folder`: migration or
 * seed, 1-based `line`/`column`, the line's text `sourceLine`), the
 * server's `sqlState`/`detail`/`hint`, the migrations committed before it
 * (`applied`) and the CLI's `exitCode`.
 */
class TidemarkError extends Error {
  constructor(code, message, props = {}) {
    super(message, props.cause === undefined ? undefined : { cause: props.cause });
    this.name = 'TidemarkError';
    this.code = code;
    for (const f of FIELDS) {
      if (props[f] !== undefined && props[f] !== null) this[f] = props[f];
    }
    this.applied = Array.isArray(props.applied) ? props.applied : [];
    this.exitCode = props.exitCode ?? exitCodeFor(code);
  }

  /** The shape `--json` prints: `{ event: 'error', code, message, ... }`. */
  toJSON() {
    const out = { event: 'error', code: this.code, message: this.message };
    for (const f of FIELDS) if (this[f] !== undefined) out[f] = this[f];
    if (this.applied.length > 0) out.applied = this.applied;
    out.exitCode = this.exitCode;
    return out;
  }
}

module.exports = { TidemarkError, exitCodeFor, CONFIG_CODES };
