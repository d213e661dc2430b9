#!/usr/bin/env node
'use strict';

// Before anything else: an older Node.js gets one line, not a TypeError.
const tooOld = require('../lib/node-check.cjs').unsupportedNode();
if (tooOld) {
  process.stderr.write('error: ' + tooOld + '\n');
  process.exit(3);
}

// Exit only once stdout and stderr are flushed (pipes are asynchronous on
// some platforms), and quietly when the reader went away (`| head`).
function exit(code) {
  process.exitCode = code;
  let pending = 2;
  const done = () => {
    pending -= 1;
    if (pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

// Never a false green: if the work stops without an answer (nothing left
// for the event loop to wait for, the command still pending), that is an
// error, not exit 0.
let settled = false;
process.on('beforeExit', () => {
  if (settled) return;
  settled = true;
  process.stderr.write('error: tidemark stopped before the command finished (E_INTERNAL: nothing was left to wait for); this is a bug, please report it\n');
  process.exitCode = 2;
});

// The process ends with the command (see shortLived in lib/loader.cjs).
require('../lib/loader.cjs').shortLived.value = true;

require('../lib/cli/main.cjs')
  .main(process.argv.slice(2))
  .finally(() => {
    settled = true;
  })
  .then(exit, (err) => {
    process.stderr.write(`error: internal error: ${err && err.stack ? err.stack : err}\n`);
    exit(2);
  });
