'use strict';
// The Node.js floor is package.json's "engines" (one place). The CLI and the
// API check it before anything else, so an older Node gets one clear line
// instead of a TypeError from an API it lacks.
//
// Kept to syntax and APIs that old Node.js versions parse and have.

const { engines } = require('../package.json');

/** The message for an unsupported Node.js, or undefined when `version` is supported. */
function unsupportedNode(version) {
  const v = version || process.versions.node;
  const floor = Number(/>=\s*(\d+)/.exec(engines.node)[1]);
  if (Number(String(v).split('.')[0]) >= floor) return undefined;
  return (
    'tidemark needs Node.js ' + floor + ' or newer (package.json "engines": "' + engines.node + '"), ' +
    'and this is Node.js ' + v + '; install a newer Node.js (for example with nvm install ' + floor + ')'
  );
}

module.exports = { unsupportedNode };
