'use strict';
// Where the database URL comes from (design §7), and redaction: every URL
// tidemark prints goes through redact().

const { URL_ENV } = require('./options.cjs');

const MASK = '****';

// `password=...` in a query string or a libpq keyword/value string; the value
// may be single-quoted (keyword/value form) or run to the next & or blank.
const PASSWORD_PARAM = /(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|[^&\s]*)/gi;

/**
 * Returns `url` with its password replaced by `****`, in the userinfo
 * (`postgres://user:****@host/db`) and in any `password=` parameter. Works on
 * strings that are not valid URLs too, erring on the side of hiding more.
 */
function redact(url) {
  if (url === undefined || url === null) return url;
  let s = String(url);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)/.exec(s);
  if (scheme) {
    const rest = s.slice(scheme[1].length);
    // The userinfo ends at the last '@' before the path or query. A password
    // with a raw '/', '?' or '#' is invalid, but must not leak either, so
    // when there is an '@' later on, take the last one outright.
    const authorityEnd = rest.search(/[/?#]/);
    const authority = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd);
    let at = authority.lastIndexOf('@');
    if (at === -1) at = rest.lastIndexOf('@');
    if (at !== -1) {
      const userinfo = rest.slice(0, at);
      const colon = userinfo.indexOf(':');
      if (colon !== -1) {
        s = `${scheme[1]}${userinfo.slice(0, colon)}:${MASK}${rest.slice(at)}`;
      }
    }
  }
  return s.replace(PASSWORD_PARAM, (_, prefix) => `${prefix}${MASK}`);
}

/**
 * Every form of the password in `url` (as written and percent-decoded),
 * longest first; empty when there is none. Used to scrub messages.
 */
function passwordsOf(url) {
  const found = new Set();
  if (!url) return [];
  const s = String(url);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)/.exec(s);
  if (scheme) {
    const rest = s.slice(scheme[1].length);
    const authorityEnd = rest.search(/[/?#]/);
    const authority = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd);
    let at = authority.lastIndexOf('@');
    if (at === -1) at = rest.lastIndexOf('@');
    if (at !== -1) {
      const userinfo = rest.slice(0, at);
      const colon = userinfo.indexOf(':');
      if (colon !== -1) found.add(userinfo.slice(colon + 1));
    }
  }
  for (const m of s.matchAll(PASSWORD_PARAM)) {
    let v = m[2];
    if (v.startsWith("'")) v = v.replace(/^'|'$/g, '').replace(/\\(.)/g, '$1');
    found.add(v);
  }
  const out = new Set();
  for (const p of found) {
    if (!p) continue;
    out.add(p);
    try {
      out.add(decodeURIComponent(p));
    } catch {
      // not percent-encoded
    }
  }
  // Longest first, so a password that contains another is replaced whole.
  return [...out].filter((p) => p.length >= 1).sort((a, b) => b.length - a.length);
}

/** Replaces every occurrence of the URL's password in `text` with `****`. */
function scrub(text, url) {
  if (typeof text !== 'string') return text;
  let out = text;
  for (const p of passwordsOf(url)) {
    // One- and two-character passwords would mangle ordinary words; they
    // cannot be hidden by search-and-replace, and the engine never prints
    // them anyway.
    if (p.length < 3) continue;
    out = out.split(p).join(MASK);
  }
  return out;
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
 * Returns a reason when `url` is neither a postgres:// URL nor a libpq
 * keyword string, or undefined when it looks like one. Catching this here
 * matters: an unrecognized string must never fall back to default
 * connection settings and migrate some other database.
 */
function urlShapeProblem(url) {
  const s = String(url).trim();
  if (/^postgres(ql)?:\/\//i.test(s)) return undefined;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(s);
  if (scheme) return `the scheme ${scheme[1]}:// is not PostgreSQL's; use postgres:// or postgresql://`;
  if (/(^|\s)(host|hostaddr|dbname|user|port|service)\s*=/i.test(s)) return undefined;
  return 'it must start with postgres:// or postgresql://, or be a keyword string such as "host=localhost dbname=app user=app"';
}

/** Host and port of a URL or keyword string (the first host), for pooler detection. */
function hostAndPort(url) {
  const s = String(url);
  const m = /^postgres(?:ql)?:\/\/(?:[^@/?]*@)?(\[[^\]]*\]|[^:/?,]*)(?::(\d+))?/i.exec(s);
  if (m) {
    const q = /[?&]host=([^&]*)/.exec(s);
    const p = /[?&]port=(\d+)/.exec(s);
    return { host: decodeURIComponent(m[1] || (q ? q[1] : '')), port: m[2] ?? (p ? p[1] : undefined) };
  }
  const host = /(?:^|\s)host\s*=\s*'?([^'\s]*)/.exec(s);
  const port = /(?:^|\s)port\s*=\s*'?(\d+)/.exec(s);
  return { host: host ? host[1] : '', port: port ? port[1] : undefined };
}

/**
 * Why `url` looks like a transaction-mode pooler (PgBouncer, Supavisor,
 * Neon's pooled endpoints), or undefined: a `-pooler.` host, port 6543, or
 * `pgbouncer=true`.
 */
function poolerSignal(url) {
  if (/[?&\s]pgbouncer=true\b/i.test(String(url))) return 'pgbouncer=true';
  const { host, port } = hostAndPort(url);
  if (/-pooler\./i.test(host)) return `the host ${host} is a pooler endpoint`;
  if (port === '6543') return 'port 6543 is the pooler port';
  return undefined;
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
  const reason = poolerSignal(url);
  if (!reason) return { url, source, pooled: false };
  for (const name of DIRECT_ENV) {
    const direct = env[name];
    if (direct && name !== source && !poolerSignal(direct)) {
      return { url: String(direct), source: name, pooled: false, reason, switchedFrom: source };
    }
  }
  return { url, source, pooled: true, reason };
}

module.exports = { urlShapeProblem, redact, scrub, passwordsOf, urlFromPgEnv, resolveUrl, poolerSignal, choosePooling, hostAndPort, DIRECT_ENV, MASK };
