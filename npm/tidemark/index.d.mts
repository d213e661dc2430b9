// Types of the ESM entry (index.mjs): the declarations of index.d.ts (the
// CommonJS entry's), re-exported, plus the default export (the whole API).
import api = require('./index.js');

export * from './index.js';
export default api;
