// The deploy path's size budget (issue 14): the wasm module a deploy loads
// stays within 600 KB raw and 250 KB gzipped. scripts/build-wasm.sh builds
// two modules from one crate; the lite one is what migrate, deploy and
// status load, and the full one (every operation) loads only for the rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { REPO } from './helpers.mjs';

const pkg = path.join(REPO, 'npm/tidemark-wasm/pkg');
const lite = path.join(pkg, 'tidemark_lite_bg.wasm');
const full = path.join(pkg, 'tidemark_full_bg.wasm');
const opts = fs.existsSync(lite) && fs.existsSync(full) ? {} : { skip: 'the wasm backend is not built (npm run build)' };

const RAW_BUDGET = 600_000;
const GZIP_BUDGET = 250_000;

test('the deploy-path wasm module is within 600 KB raw and 250 KB gzipped', opts, () => {
  const bytes = fs.readFileSync(lite);
  const gz = zlib.gzipSync(bytes, { level: 9 }).length;
  assert.ok(bytes.length <= RAW_BUDGET, `tidemark_lite_bg.wasm is ${bytes.length} bytes, over the budget of ${RAW_BUDGET}`);
  assert.ok(gz <= GZIP_BUDGET, `tidemark_lite_bg.wasm is ${gz} bytes gzipped, over the budget of ${GZIP_BUDGET}`);
  // The split is worth keeping only while the full module is the bigger one.
  assert.ok(fs.statSync(full).size > bytes.length, 'the full module should be larger than the lite one');
});

/** The .wasm files a process compiles for one call of the wasm package (the glue reads each with fs.readFileSync). */
function modulesLoaded(op, url) {
  const script = `
    const fs = require('node:fs');
    const read = fs.readFileSync;
    const seen = [];
    fs.readFileSync = function (file, ...rest) {
      if (String(file).endsWith('.wasm')) seen.push(require('node:path').basename(String(file)));
      return read.call(this, file, ...rest);
    };
    const wasm = require(${JSON.stringify(path.join(REPO, 'npm/tidemark-wasm/index.cjs'))});
    wasm.execute(process.argv[1], { url: process.argv[2], connectTimeout: 1, migrations: [] })
      .then(() => {}, () => {})
      .finally(() => console.log(JSON.stringify(seen)));
  `;
  const r = spawnSync(process.execPath, ['-e', script, op, url], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

test('deploy and status load only the lite module; adopt and a non-ASCII password load the full one', opts, () => {
  // Nothing listens on port 1: each call fails to connect, after choosing its module.
  const url = 'postgres://u:pw@127.0.0.1:1/none';
  assert.deepEqual(modulesLoaded('deploy', url), ['tidemark_lite_bg.wasm']);
  assert.deepEqual(modulesLoaded('status', url), ['tidemark_lite_bg.wasm']);
  assert.deepEqual(modulesLoaded('seed', url), ['tidemark_lite_bg.wasm']);
  assert.deepEqual(modulesLoaded('adopt', url), ['tidemark_lite_bg.wasm', 'tidemark_full_bg.wasm']);
  assert.deepEqual(modulesLoaded('verify', url), ['tidemark_lite_bg.wasm', 'tidemark_full_bg.wasm']);
  assert.deepEqual(modulesLoaded('deploy', 'postgres://u:p%C3%A4ss@127.0.0.1:1/none'), ['tidemark_lite_bg.wasm', 'tidemark_full_bg.wasm']);
});

test('the lite module declines what it lacks before dialing or reporting anything', opts, async () => {
  const require = createRequire(path.join(REPO, 'npm/tidemark-wasm/index.cjs'));
  const liteJs = require('./pkg/tidemark_lite.js');
  const dials = [];
  const events = [];
  const dial = async (target) => {
    dials.push(target);
    throw new Error('no server here');
  };
  for (const [op, url] of [['adopt', 'postgres://u@127.0.0.1:1/none'], ['unlock', 'postgres://u@127.0.0.1:1/none'], ['deploy', 'postgres://u:ｐａｓｓ@127.0.0.1:1/none']]) {
    // The module's own signature: the request's keys, then its files packed (npm/tidemark-wasm/index.cjs): none here.
    await assert.rejects(liteJs.execute(op, { url }, '', new Uint8Array(0), new Uint32Array(0), 0, dial, (e) => events.push(e)), (err) => {
      assert.equal(err.code, 'E_WASM_FULL_MODULE', `${op}: ${err.message}`);
      return true;
    });
  }
  assert.deepEqual(dials, []);
  assert.deepEqual(events, []);
});
