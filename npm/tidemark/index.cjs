'use strict';
// tidemark's JS API. Types: index.d.ts.
const tooOld = require('./lib/node-check.cjs').unsupportedNode();
if (tooOld) throw new Error(tooOld);
module.exports = require('./lib/api.cjs');
