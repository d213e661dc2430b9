'use strict';
// tidemark's JS API. Types: index.d.ts.
module.exports = require('./lib/api.cjs');
