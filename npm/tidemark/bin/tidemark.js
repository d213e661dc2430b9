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

require('../lib/cli.cjs')
  .main(process.argv.slice(2))
  .then(exit, (err) => {
    process.stderr.write(`error: internal error: ${err && err.stack ? err.stack : err}\n`);
    exit(2);
  });
