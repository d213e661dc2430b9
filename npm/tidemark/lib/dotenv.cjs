'use strict';
// A small .env reader: KEY=VALUE lines, an optional `export ` prefix,
// comments, single/double/backtick quotes (double quotes understand \n, \r,
// \t, \" and \\, and may span lines). No interpolation. A quote that is
// never closed is an error naming the file and line, never a guess.

const fs = require('node:fs');
const path = require('node:path');
const { TidemarkError } = require('./errors.cjs');

const KEY = /[A-Za-z_][A-Za-z0-9_.-]*/y;

/**
 * Parses the text of a .env file into a plain object (later lines win).
 * Throws an Error with `line` and `key` (never the value, which may be a
 * secret) when a quoted value is never closed.
 */
function parseDotenv(text) {
  const out = {};
  let s = String(text);
  if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
  s = s.replace(/\r\n?/g, '\n');
  let i = 0;
  const n = s.length;
  const skipBlanks = () => {
    while (i < n && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const skipLine = () => {
    const nl = s.indexOf('\n', i);
    i = nl === -1 ? n : nl + 1;
  };
  while (i < n) {
    skipBlanks();
    if (i >= n) break;
    if (s[i] === '\n') {
      i++;
      continue;
    }
    if (s[i] === '#') {
      skipLine();
      continue;
    }
    if (s.startsWith('export', i) && (s[i + 6] === ' ' || s[i + 6] === '\t')) {
      i += 6;
      skipBlanks();
    }
    KEY.lastIndex = i;
    const m = KEY.exec(s);
    if (!m) {
      skipLine();
      continue;
    }
    const key = m[0];
    i = KEY.lastIndex;
    skipBlanks();
    if (s[i] !== '=') {
      skipLine();
      continue;
    }
    i++;
    skipBlanks();
    const q = s[i];
    if (q === '"' || q === "'" || q === '`') {
      let j = i + 1;
      let value = '';
      let closed = false;
      while (j < n) {
        const c = s[j];
        if (c === q) {
          closed = true;
          break;
        }
        if (q === '"' && c === '\\' && j + 1 < n) {
          const e = s[j + 1];
          value += e === 'n' ? '\n' : e === 'r' ? '\r' : e === 't' ? '\t' : e === '"' || e === '\\' ? e : `\\${e}`;
          j += 2;
          continue;
        }
        value += c;
        j++;
      }
      if (closed) {
        out[key] = value;
        i = j + 1;
        skipLine(); // anything after the closing quote is a comment
        continue;
      }
      const line = s.slice(0, i).split('\n').length;
      const err = new Error(`the value of ${key} opens a ${q} quote that is never closed`);
      err.line = line;
      err.key = key;
      throw err;
    }
    const nl = s.indexOf('\n', i);
    const end = nl === -1 ? n : nl;
    let raw = s.slice(i, end);
    const hash = raw.search(/(^|[ \t])#/);
    if (hash !== -1) raw = raw.slice(0, hash);
    out[key] = raw.trim();
    i = end;
  }
  return out;
}

/**
 * The .env files read for `mode`, highest precedence first (Next.js order):
 * `.env.<mode>.local`, `.env.local` (not for `test`, so tests are
 * reproducible), `.env.<mode>`, `.env`.
 */
function dotenvFiles(mode) {
  const files = [`.env.${mode}.local`];
  if (mode !== 'test') files.push('.env.local');
  files.push(`.env.${mode}`, '.env');
  return files;
}

/**
 * Reads the .env files of `dir` for `env.NODE_ENV` (default `development`).
 * Returns the variables they define that `env` does not already set (a
 * variable already set always wins, even when empty) and where each came from.
 * Never modifies `env`.
 */
function loadDotenv(dir, env) {
  const mode = env.NODE_ENV || 'development';
  const values = {};
  const origin = {};
  const files = [];
  for (const name of dotenvFiles(mode)) {
    const file = path.join(dir, name);
    let text;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    files.push(name);
    let parsed;
    try {
      parsed = parseDotenv(text);
    } catch (err) {
      throw new TidemarkError(
        'E_CONFIG',
        `${name} line ${err.line}: ${err.message}; close the quote (a quoted value may span lines up to its closing quote)`,
      );
    }
    for (const [k, v] of Object.entries(parsed)) {
      if (Object.hasOwn(env, k) || Object.hasOwn(values, k)) continue;
      values[k] = v;
      origin[k] = name;
    }
  }
  return { values, origin, files };
}

module.exports = { parseDotenv, loadDotenv, dotenvFiles };
