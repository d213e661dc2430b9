'use strict';
// Where the database URL comes from (design §7). Reading a URL (its shape,
// host, pooler signs) and redacting it are the engine's: every URL tidemark
// prints goes through redact(), which asks the loaded backend.

const { URL_ENV } = require('./options.cjs');
const loader = require('./loader.cjs');

const MASK = '****';

// One reading of each URL per process: the engine's parser is the only one
// (crates/tidemark-core/src/url.rs), reached through the loaded backend.
const seen = new Map();

/**
 * The engine's reading of `url`: `{ problem, redacted, host, port,
 * database, user, sslmode, poolerReason, applicationName }`. `problem` says
 * what is wrong (null when the URL is usable); nothing in it is secret.
 * `env` is where TIDEMARK_BACKEND is read.
 */
function inspect(url, env = process.env) {
  const key = String(url);
  let info = seen.get(key);
  if (!info) {
    info = loader.load(env).binding.inspectUrl(key);
    seen.set(key, info);
  }
  return info;
}

/**
 * Returns `url` with every secret replaced by `****`: the userinfo password
 * and `password=`/`sslpassword=` in a query or keyword string, for strings
 * that do not parse too.
 */
function redact(url, env) {
  if (url === undefined || url === null) return url;
  return inspect(url, env).redacted;
}

/** Replaces every form of the URL's secrets in `text` with `****`. */
function scrub(text, url, env = process.env) {
  if (typeof text !== 'string' || url === undefined || url === null) return text;
  return loader.load(env).binding.redactText(text, String(url));
}

/**
 * Builds a URL from libpq's PG* variables (PGHOST, PGPORT, PGUSER,
 * PGPASSWORD, PGDATABASE, PGSSLMODE), or returns undefined when neither
 * PGHOST nor PGDATABASE is set.
 */
function urlFromPgEnv(env) {
  const get = (k) => (env[k] ? String(env[k]) : undefined);
  const host = get('PGHOST');
  const database = get('PGDATABASE');
  if (!host && !database) return undefined;
  const user = get('PGUSER');
  const password = get('PGPASSWORD');
  const port = get('PGPORT');
  const params = [];
  let hostPart = '';
  if (host && host.startsWith('/')) {
    params.push(`host=${encodeURIComponent(host)}`); // a Unix socket directory
  } else {
    hostPart = host ? (host.includes(':') ? `[${host}]` : host) : 'localhost';
    if (port) hostPart += `:${port}`;
  }
  if (host && host.startsWith('/') && port) params.push(`port=${encodeURIComponent(port)}`);
  let userinfo = '';
  if (user) {
    userinfo = encodeURIComponent(user);
    if (password) userinfo += `:${encodeURIComponent(password)}`;
    userinfo += '@';
  } else if (password) {
    userinfo = `:${encodeURIComponent(password)}@`;
  }
  const sslmode = get('PGSSLMODE');
  if (sslmode) params.push(`sslmode=${encodeURIComponent(sslmode)}`);
  const db = database ? `/${encodeURIComponent(database)}` : '';
  return `postgres://${userinfo}${hostPart}${db}${params.length ? `?${params.join('&')}` : ''}`;
}

/**
 * Picks the database URL: the flag (or API option), then TIDEMARK_DATABASE_URL,
 * DATABASE_URL_UNPOOLED (Neon), POSTGRES_URL_NON_POOLING (Vercel Postgres),
 * DATABASE_URL, POSTGRES_URL, then the config file's `url`, then PG*.
 * Returns `{ url, source }` (source: the flag, variable or file that gave it)
 * or `{ url: undefined }`. Empty values count as unset.
 */
function resolveUrl({ flag, flagLabel = '--url', env, configUrl, configLabel }) {
  if (flag) return { url: String(flag), source: flagLabel };
  for (const name of URL_ENV) {
    if (env[name]) return { url: String(env[name]), source: name };
  }
  if (configUrl) return { url: String(configUrl), source: configLabel };
  const pg = urlFromPgEnv(env);
  if (pg) return { url: pg, source: 'PG* variables' };
  return { url: undefined, source: undefined };
}

/**
 * Why `url` looks like a transaction-mode pooler (PgBouncer, Supavisor,
 * Neon's pooled endpoints), or undefined: the engine's reading.
 */
function poolerSignal(url, env) {
  const info = inspect(url, env);
  return info.problem ? undefined : info.poolerReason ?? undefined;
}

/** Variables that hold a direct (unpooled) URL, in the order tidemark prefers them. */
const DIRECT_ENV = ['DATABASE_URL_UNPOOLED', 'POSTGRES_URL_NON_POOLING', 'DIRECT_URL'];

/**
 * Pooler awareness: when the chosen URL is pooled, switch to a direct URL
 * if one is set (migrations need a session), else keep it and run in
 * pool-safe mode. Returns `{ url, source, pooled, reason?, switchedFrom? }`.
 */
function choosePooling({ url, source, env }) {
  if (url === undefined) return { url, source, pooled: false };
  const reason = poolerSignal(url, env);
  if (!reason) return { url, source, pooled: false };
  for (const name of DIRECT_ENV) {
    const direct = env[name];
    if (direct && name !== source && !poolerSignal(direct, env)) {
      return { url: String(direct), source: name, pooled: false, reason, switchedFrom: source };
    }
  }
  return { url, source, pooled: true, reason };
}

module.exports = { inspect, redact, scrub, urlFromPgEnv, resolveUrl, poolerSignal, choosePooling, DIRECT_ENV, MASK };
