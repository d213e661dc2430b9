// The two backends are one engine: the same migrations through the native
// addon and through wasm give the same reports and the same tracking rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { database, REPO, PKG } from './helpers.mjs';

const require = createRequire(path.join(PKG, 'index.cjs'));
const nativePath = path.join(REPO, 'npm/platforms/linux-x64-gnu/tidemark.linux-x64-gnu.node');
const wasmPath = path.join(REPO, 'npm/tidemark-wasm/index.cjs');
const built = fs.existsSync(nativePath) && fs.existsSync(path.join(REPO, 'npm/tidemark-wasm/pkg/tidemark_lite_bg.wasm'));
const opts = built ? {} : { skip: 'both backends must be built (npm run build)' };

function read(dir) {
  return fs.readdirSync(dir).sort().map((name) => ({ name, bytes: fs.readFileSync(path.join(dir, name)) }));
}

/** Durations and timestamps differ run to run; everything else must not. */
function stable(value) {
  return JSON.parse(
    JSON.stringify(value, (k, v) => (k === 'durationMs' || k === 'appliedAt' || k === 'applied_at' || k === 'duration_ms' ? 0 : v)),
  );
}

test('native and wasm backends produce identical reports and tracking tables', opts, async (t) => {
  if (process.env.TIDEMARK_BACKEND === 'wasm') return t.skip('runs once, with the native suite');
  const native = require(nativePath);
  const wasm = require(wasmPath);
  assert.equal(native.version(), wasm.version());
  const migrations = read(path.join(REPO, 'migrations'));
  const seeds = read(path.join(REPO, 'seeds/development'));
  const results = {};
  for (const [name, backend] of [['native', native], ['wasm', wasm]]) {
    const db = await database(t);
    const events = [];
    const base = { url: db.url, migrations, seeds, seedEnv: 'development' };
    const out = {
      migrate: await backend.execute('migrate', base, (e) => events.push(e)),
      again: await backend.execute('deploy', base),
      status: await backend.execute('status', base),
      seed: await backend.execute('seed', base),
      down: await backend.execute('down', { ...base, migrations: [...migrations, { name: '003_extra.sql', bytes: Buffer.from('-- migrate:up\nCREATE TABLE extra ();\n-- migrate:down\nDROP TABLE extra;\n') }] }).catch((e) => ({ code: e.code })),
      error: await backend.execute('migrate', { ...base, migrations: [...migrations, { name: '003_bad.sql', bytes: Buffer.from('SELECT 1;\nSELECT nope;\n') }] })
        .catch((e) => ({ code: e.code, message: e.message, file: e.file, folder: e.folder, line: e.line, column: e.column, sourceLine: e.sourceLine, sqlState: e.sqlState, version: e.version })),
      create: backend.create({ existing: migrations.map((m) => m.name), name: 'add goals', stamp: '20260101000000', millis: 1 }),
    };
    out.events = events.filter((e) => e.event !== 'connected');
    out.tracking = await db.query("SELECT json_agg(json_build_object('version', version, 'name', name, 'checksum', checksum, 'status', status, 'error', error_message) ORDER BY version) FROM schema_migrations");
    out.seeds = await db.query('SELECT json_agg(json_build_object(\'name\', name, \'checksum\', checksum) ORDER BY name) FROM schema_seeds');
    results[name] = stable(out);
  }
  assert.equal(results.native.migrate.applied.length, 2);
  assert.equal(results.native.error.code, 'E_MIGRATION_FAILED');
  // The error says which folder its file is in and quotes the failing line.
  assert.deepEqual([results.native.error.folder, results.native.error.line, results.native.error.sourceLine], ['migration', 2, 'SELECT nope;']);
  assert.deepStrictEqual(results.wasm, results.native);
});
