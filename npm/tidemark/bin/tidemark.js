#!/usr/bin/env node
'use strict';

// Output is written to file descriptors 1 and 2 synchronously
// (lib/cli/render.cjs): process.stdout and process.stderr are never created
// (their stream classes cost 5-7 ms to load; start-up, issue 15), and at
// exit nothing is left to flush.
const { writeSync } = require('node:fs');
const say = (text) => {
  try {
    writeSync(2, text);
  } catch {
    // stderr is gone: nothing to tell.
  }
};

// Before anything else: an older Node.js gets one line, not a TypeError.
const tooOld = require('../lib/node-check.cjs').unsupportedNode();
if (tooOld) {
  say('error: ' + tooOld + '\n');
  process.exit(3);
}

function exit(code) {
  process.exit(code);
}

// Never a false green: if the work stops without an answer (nothing left
// for the event loop to wait for, the command still pending), that is an
// error, not exit 0.
let settled = false;
process.on('beforeExit', () => {
  if (settled) return;
  settled = true;
  say('error: tidemark stopped before the command finished (E_INTERNAL: nothing was left to wait for); this is a bug, please report it\n');
  process.exitCode = 2;
});

// Node 22.1+ keeps the compiled code of tidemark's modules between runs
// (in the system's temporary folder); Node 20 has no such cache.
require('node:module').enableCompileCache?.();

// The process ends with the command (see shortLived in lib/loader.cjs).
require('../lib/loader.cjs').shortLived.value = true;

require('../lib/cli/main.cjs')
  .main(process.argv.slice(2))
  .finally(() => {
    settled = true;
  })
  .then(exit, (err) => {
    say(`error: internal error: ${err && err.stack ? err.stack : err}\n`);
    exit(2);
  });
