// Shared helpers for the end-to-end tests: temp projects, throwaway
// databases on the real server, and running the real CLI.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PKG = path.join(REPO, 'npm', 'tidemark');
export const CLI = path.join(PKG, 'bin', 'tidemark.js');
export const pkgRequire = createRequire(path.join(PKG, 'index.cjs'));

// TIDEMARK_TEST_PG=host:port points the tests at another server (as the engine's tests do).
const [PG_HOST, PG_PORT] = (process.env.TIDEMARK_TEST_PG || '127.0.0.1:5432').split(':');
export { PG_HOST, PG_PORT };

/**
 * Whether the engine for TIDEMARK_BACKEND (native unless set to wasm) is
 * there. Tests that need it pass `engine` as their options, so they skip
 * with the reason instead of failing before the addon is built.
 */
function engineStatus() {
  const want = process.env.TIDEMARK_BACKEND || 'native';
  if (want === 'wasm') {
    try {
      pkgRequire.resolve('tidemark-wasm');
      return { backend: 'wasm', packageName: 'tidemark-wasm' };
    } catch {
      return { skip: 'TIDEMARK_BACKEND=wasm but the tidemark-wasm package is not built yet' };
    }
  }
  const { platformSuffix } = pkgRequire("./lib/loader.cjs");
  const suffix = platformSuffix();
  const packageName = `@tidemark/${suffix}`;
  try {
    pkgRequire.resolve(packageName);
    return { backend: 'native', packageName };
  } catch {
    // not installed into node_modules; the development checkout's build?
  }
  const local = path.join(REPO, 'npm', 'platforms', suffix, `tidemark.${suffix}.node`);
  if (fs.existsSync(local)) return { backend: 'native', packageName };
  return { skip: `the native addon is not built yet (${path.relative(REPO, local)})` };
}

export const ENGINE = engineStatus();
/** Test options for tests that need the engine: `test('x', engine, async (t) => ...)`. */
export const engine = ENGINE.skip ? { skip: ENGINE.skip } : {};

/**
 * A minimal environment for the CLI: nothing from the developer's shell that
 * could point tidemark at a database (DATABASE_URL, PG*, NODE_ENV, ...).
 */
export function cleanEnv(extra = {}) {
  const env = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR', 'SYSTEMROOT', 'TIDEMARK_BACKEND']) {
    if (process.env[k] !== undefined) env[k] = process.env[k];
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/**
 * Runs `tidemark ...args` in `cwd` and resolves with `{ code, stdout,
 * stderr, out, err, all }` (out/err: arrays of lines without the trailing
 * empty one; all: stdout + stderr).
 */
export function tidemark(args, { cwd, env = {}, timeout = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, ...args], { cwd, env: cleanEnv(env), timeout, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(new Error(`could not run tidemark ${args.join(' ')}: ${error.message}\n${stderr}`));
        return;
      }
      const lines = (s) => (s === '' ? [] : s.replace(/\n$/, '').split('\n'));
      resolve({
        code: error ? error.code : 0,
        stdout,
        stderr,
        out: lines(stdout),
        err: lines(stderr),
        all: stdout + stderr,
      });
    });
  });
}

/** Parses NDJSON stdout, failing on any line that is not JSON. */
export function ndjson(stdout) {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        throw new Error(`stdout line is not JSON: ${l}`);
      }
    });
}

/** Runs psql against `db` (default postgres) and returns its unaligned, tuples-only output. */
export function psql(sql, db = 'postgres') {
  return new Promise((resolve, reject) => {
    execFile(
      'psql',
      ['-h', PG_HOST, '-p', PG_PORT, '-U', 'postgres', '-d', db, '-X', '-v', 'ON_ERROR_STOP=1', '-Atc', sql],
      { encoding: 'utf8', env: cleanEnv() },
      (error, stdout, stderr) => (error ? reject(new Error(`psql: ${stderr || error.message}`)) : resolve(stdout.trim())),
    );
  });
}

let counter = 0;

/**
 * Creates a uniquely named database and drops it when the test ends.
 * Returns `{ name, url, query(sql) }`; `url` has a password in it
 * (`secretpw-<random>`, which a trust server ignores) so every test can check
 * that it never shows up in the output.
 */
export async function database(t) {
  counter += 1;
  const name = `tidemark_js_${process.pid}_${counter}_${randomBytes(3).toString('hex')}`;
  await psql(`CREATE DATABASE ${name}`);
  t.after(() => psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  const password = `secretpw${randomBytes(4).toString('hex')}`;
  return {
    name,
    password,
    url: `postgres://postgres:${password}@${PG_HOST}:${PG_PORT}/${name}`,
    redacted: `postgres://postgres:****@${PG_HOST}:${PG_PORT}/${name}`,
    query: (sql) => psql(sql, name),
  };
}

/**
 * Writes a temp project: `files` maps relative paths to contents (strings,
 * Buffers, or objects, which become JSON). Removed when the test ends.
 */
export function project(t, files = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  writeFiles(dir, files);
  return dir;
}

export function writeFiles(dir, files) {
  for (const [rel, contents] of Object.entries(files)) {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const data = typeof contents === 'string' || Buffer.isBuffer(contents) ? contents : `${JSON.stringify(contents, null, 2)}\n`;
    fs.writeFileSync(file, data);
  }
}

/** A small, valid migrations folder used by many tests. */
export const BASIC = {
  'migrations/001_initial_schema.sql': 'CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);\n',
  'migrations/002_add_goals.sql':
    '-- migrate:up\nCREATE TABLE goals (id int PRIMARY KEY, user_id int REFERENCES users (id));\n-- migrate:down\nDROP TABLE goals;\n',
  'migrations/003_add_goal_title.up.sql': 'ALTER TABLE goals ADD COLUMN title text;\n',
  'migrations/003_add_goal_title.down.sql': 'ALTER TABLE goals DROP COLUMN title;\n',
};

/** Asserts that the output never shows `secret`. */
export function assertNoSecret(assert, result, secret) {
  assert.ok(!result.all.includes(secret), `the password ${secret} leaked into the output:\n${result.all}`);
}
