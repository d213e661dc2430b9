// ESM entry: a thin wrapper over the CommonJS API, so both share one module
// instance (one loaded engine, one TidemarkError class).
import api from './index.cjs';

export const {
  migrate,
  deploy,
  status,
  down,
  redo,
  seed,
  reset,
  adopt,
  baseline,
  unlock,
  accept,
  plan,
  createDatabase,
  verify,
  create,
  resolveConfig,
  redact,
  TidemarkError,
  version,
} = api;
export default api;
