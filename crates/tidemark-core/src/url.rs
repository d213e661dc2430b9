//! Connection strings: the one parser of every libpq URL and keyword form
//! users paste (both bindings and the JS host use it, the JS host through
//! `inspectUrl`), its redaction for messages, and the connection policy
//! (what is retried, how long to wait). Pure: the hosts dial.
//!
//! tokio-postgres's own parser is not used: it ends the user name and
//! password at the first `@` (libpq-style URLs with an unescaped `@` in the
//! password are read as a host), rejects `sslmode=verify-full` and every
//! parameter it does not know, and falls back to defaults for an empty URL.
//! The parts are read here and handed to tokio-postgres's builder.

use std::time::Duration;

use serde::Serialize;
use tokio_postgres::config::Host;
use tokio_postgres::Config;

/// What replaces a secret in every message.
pub const MASK: &str = "****";

/// A failure before the engine runs: a bad URL (a configuration error) or a
/// failed connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    /// `E_INVALID_URL` or `E_CONNECT`.
    pub code: &'static str,
    pub message: String,
    /// The server's SQLSTATE, when the server answered with an error.
    pub sql_state: Option<String>,
}

/// What the TLS layer must do, from `sslmode` (libpq's meaning, except that
/// `require` verifies too, as node-postgres does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    Disable,
    /// TLS when the server offers it, without verification (psql's default).
    Prefer,
    /// TLS required, certificate not verified (`no-verify`, or
    /// `TIDEMARK_TLS_INSECURE=1`).
    RequireInsecure,
    /// TLS required, the chain verified but not the host name (`verify-ca`).
    VerifyCa,
    /// TLS required, chain and host name verified (`verify-full`, and
    /// `require`, which libpq does not verify but node-postgres does).
    VerifyFull,
}

impl Tls {
    /// The name the JS host's socket code uses.
    pub fn name(&self) -> &'static str {
        match self {
            Tls::Disable => "disable",
            Tls::Prefer => "prefer",
            Tls::RequireInsecure => "require-insecure",
            Tls::VerifyCa => "verify-ca",
            Tls::VerifyFull => "verify-full",
        }
    }
}

/// TCP keepalive settings: a connection whose network went silent fails
/// within about a minute instead of hanging (probes are answered by the
/// server's kernel, so a statement that is merely slow is never cut).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Keepalive {
    /// libpq `keepalives` (default on).
    pub enabled: bool,
    /// libpq `keepalives_idle` (s): idle time before the first probe (30 s).
    pub idle_ms: u64,
    /// libpq `keepalives_interval` (s): between probes (10 s).
    pub interval_ms: u64,
    /// libpq `keepalives_count`: unanswered probes before the connection is
    /// dropped (3).
    pub count: u32,
    /// libpq `tcp_user_timeout` (ms): how long sent data may stay
    /// unacknowledged (60 s).
    pub user_timeout_ms: u64,
}

impl Default for Keepalive {
    fn default() -> Keepalive {
        Keepalive {
            enabled: true,
            idle_ms: 30_000,
            interval_ms: 10_000,
            count: 3,
            user_timeout_ms: 60_000,
        }
    }
}

/// A parsed URL, ready for tokio-postgres.
#[derive(Debug)]
pub struct Target {
    pub config: Config,
    pub tls: Tls,
    pub sslmode: String,
    pub root_cert: Option<String>,
    /// `sslcert` / `sslkey`: a client certificate and its key (PEM files).
    pub client_cert: Option<(String, String)>,
    pub keepalive: Keepalive,
    /// `connect_timeout` from the URL (libpq: seconds), when given.
    pub connect_timeout_ms: Option<u64>,
}

/// Parameters whose values are secrets: masked in every message.
const SECRET_KEYS: &[&str] = &["password", "sslpassword"];

/// libpq parameters applied to the connection (the TLS ones are the
/// hosts', `sslmode` and the keepalives are read here).
const APPLIED: &[&str] = &[
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
];

/// Parameters that are accepted and ignored: libpq's own that tokio-postgres
/// does not take, and those that other tools put in the URLs users share
/// with tidemark (Prisma's `schema`, `pgbouncer`, `connection_limit`, ...).
const TOLERATED: &[&str] = &[
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslcompression",
    "sslsni",
    "sslnegotiation",
    "sslcertmode",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "requiressl",
    "gssencmode",
    "gssdelegation",
    "krbsrvname",
    "gsslib",
    "service",
    "passfile",
    "fallback_application_name",
    "require_auth",
    "replication",
    "client_encoding",
    "pgbouncer",
    "schema",
    "connection_limit",
    "pool_timeout",
    "connect_timeout_retries",
    "statement_cache_size",
    "socket_timeout",
    "sslaccept",
    "sslidentity",
    "uselibpqcompat",
];

/// The parts of a connection string as written (decoded), before defaults.
#[derive(Debug, Default, Clone)]
struct Parts {
    /// `host[:port]` entries of a URL's authority, or `host=` values.
    hosts: Vec<String>,
    ports: Vec<String>,
    user: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
    /// Every other `key=value`, in order.
    params: Vec<(String, String)>,
}

/// Where a URL's scheme ends (`postgres://` or `postgresql://`, any case).
fn postgres_scheme(s: &str) -> Option<usize> {
    ["postgresql://", "postgres://"].iter().find_map(|p| {
        s.get(..p.len())
            .filter(|h| h.eq_ignore_ascii_case(p))
            .map(|_| p.len())
    })
}

/// Any `scheme://` prefix: its length.
fn any_scheme(s: &str) -> Option<usize> {
    let i = s.find("://")?;
    let name = &s[..i];
    let ok = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    ok.then_some(i + 3)
}

/// Decodes `%XX` escapes; `what` names the part for the error (never its
/// value: it may be the password).
fn decode(s: &str, what: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => {
                    return Err(format!(
                        "the {what} has a % that does not start a %XX escape (write a literal % as %25)"
                    ))
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("the {what} is not UTF-8 once decoded"))
}

/// The byte ranges of a URL: userinfo end (`@`), and the query start.
struct UrlLayout {
    scheme_end: usize,
    /// Index of the `@` that ends the userinfo, if any.
    at: Option<usize>,
    /// Where the authority ends (`/`, `?` or the end).
    authority_end: usize,
    /// Where the query starts (after `?`), if any.
    query: Option<usize>,
}

/// Splits a URL: the userinfo ends at the last `@` before the path or query
/// (so an unescaped `@` in a password stays in the password).
fn url_layout(s: &str, scheme_end: usize) -> UrlLayout {
    let rest = &s[scheme_end..];
    let first_end = rest.find(['/', '?']).map_or(s.len(), |i| scheme_end + i);
    let at = s[scheme_end..first_end].rfind('@').map(|i| scheme_end + i);
    let host_start = at.map_or(scheme_end, |a| a + 1);
    let authority_end = s[host_start..]
        .find(['/', '?'])
        .map_or(s.len(), |i| host_start + i);
    let query = s[authority_end..].find('?').map(|i| authority_end + i + 1);
    UrlLayout {
        scheme_end,
        at,
        authority_end,
        query,
    }
}

/// The last `@` of a URL whose authority has none although one follows
/// where no `@` belongs: after a host whose port is not a number, in the
/// path (`postgres://u:pa/ss@h/db`), or in a query pair that is not a known
/// parameter (`postgres://u:pa?ss@h/db`). Such a URL is refused, and
/// redaction hides everything up to that `@`.
fn misplaced_at(s: &str, l: &UrlLayout) -> Option<usize> {
    if l.at.is_some() || !s[l.authority_end..].contains('@') {
        return None;
    }
    let authority = &s[l.scheme_end..l.authority_end];
    let bad_port = authority
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.ends_with(']') && p.parse::<u16>().is_err());
    let path_end = l.query.map_or(s.len(), |q| q - 1);
    let in_path = s[l.authority_end..path_end].contains('@');
    let in_query = l.query.is_some_and(|q| {
        s[q..].split('&').any(|pair| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            pair.contains('@') && !APPLIED.contains(&key) && !TOLERATED.contains(&key)
        })
    });
    (bad_port || in_path || in_query)
        .then(|| s.rfind('@'))
        .flatten()
}

fn parse_url_parts(s: &str, scheme_end: usize) -> Result<Parts, String> {
    let l = url_layout(s, scheme_end);
    let mut parts = Parts::default();
    if let Some(at) = l.at {
        let userinfo = &s[l.scheme_end..at];
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        if !user.is_empty() {
            parts.user = Some(decode(user, "user name")?);
        }
        if let Some(p) = password {
            parts.password = Some(decode(p, "password")?);
        }
    }
    let host_start = l.at.map_or(l.scheme_end, |a| a + 1);
    let authority = &s[host_start..l.authority_end];
    let path_end = l.query.map_or(s.len(), |q| q - 1);
    let path = s.get(l.authority_end..path_end).unwrap_or("");
    if misplaced_at(s, &l).is_some() {
        // `postgres://u:pa/ss@h/db`: a raw `/` or `?` ended the authority
        // early. Said without quoting it: it may be part of a password.
        return Err("a user name or password contains a character that must be percent-encoded: write / as %2F, ? as %3F, @ as %40 (and @ in a database name as %40)".into());
    }
    if !authority.is_empty() {
        for entry in authority.split(',') {
            let (host, port) = if let Some(v6) = entry.strip_prefix('[') {
                match v6.split_once(']') {
                    Some((addr, after)) => match after.strip_prefix(':') {
                        Some(p) => (addr.to_string(), Some(p)),
                        None if after.is_empty() => (addr.to_string(), None),
                        None => {
                            return Err(format!(
                                "{entry:?} has text after the IPv6 address's closing ]"
                            ))
                        }
                    },
                    None => {
                        return Err(format!("the IPv6 address in {entry:?} lacks its closing ]"))
                    }
                }
            } else {
                match entry.rsplit_once(':') {
                    Some((h, p)) => (decode(h, "host")?, Some(p)),
                    None => (decode(entry, "host")?, None),
                }
            };
            parts.hosts.push(host);
            parts.ports.push(port.unwrap_or("").to_string());
        }
    }
    if let Some(db) = path.strip_prefix('/') {
        if !db.is_empty() {
            parts.dbname = Some(decode(db, "database name")?);
        }
    }
    if let Some(q) = l.query {
        for pair in s[q..].split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(k, "parameter name")?;
            let what = if SECRET_KEYS.contains(&key.as_str()) {
                key.clone()
            } else {
                format!("value of {key}")
            };
            let value = decode(v, &what)?;
            parts.set(key, value);
        }
    }
    Ok(parts)
}

impl Parts {
    /// A `key=value` from a query string or keyword string: the connection
    /// parts override what the URL's authority said (libpq's order).
    fn set(&mut self, key: String, value: String) {
        match key.as_str() {
            "host" => {
                self.hosts = value.split(',').map(str::to_string).collect();
            }
            "port" => self.ports = value.split(',').map(str::to_string).collect(),
            "user" => self.user = Some(value),
            "password" => self.password = Some(value),
            "dbname" => self.dbname = Some(value),
            _ => self.params.push((key, value)),
        }
    }

    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One `key=value` of a keyword string, with where its value is.
#[derive(Debug)]
struct Keyword {
    key: String,
    value: String,
    /// Byte range of the value as written (quotes included).
    span: (usize, usize),
}

/// Reads a libpq keyword/value string: `key = value` pairs separated by
/// blanks; values single-quoted or bare, `\` escaping the next character.
/// Tolerant: returns what it read and the first problem, so that redaction
/// can mask even a string that does not parse.
fn keywords(s: &str) -> (Vec<Keyword>, Option<String>) {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut problem = None;
    let mut i = 0;
    let skip_ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_ws(i);
        if i >= b.len() {
            break;
        }
        let key_start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = s[key_start..i].to_string();
        i = skip_ws(i);
        if i >= b.len() || b[i] != b'=' {
            problem.get_or_insert(format!("{key:?} is not followed by = and a value"));
            continue;
        }
        i = skip_ws(i + 1);
        let value_start = i;
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            let mut closed = false;
            while i < b.len() {
                match b[i] {
                    b'\\' if i + 1 < b.len() => {
                        value.push(b[i + 1]);
                        i += 2;
                    }
                    b'\'' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
            if !closed {
                problem.get_or_insert(format!("the quoted value of {key} has no closing '"));
            }
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                value.push(b[i]);
                i += 1;
            }
        }
        out.push(Keyword {
            key,
            value: String::from_utf8_lossy(&value).into_owned(),
            span: (value_start, i),
        });
    }
    (out, problem)
}

/// Reads either form into its parts, or says what is wrong.
fn parts_of(url: &str) -> Result<Parts, String> {
    let s = url.trim();
    if let Some(end) = postgres_scheme(s) {
        return parse_url_parts(s, end);
    }
    if let Some(end) = any_scheme(s) {
        return Err(format!(
            "the scheme {}:// is not PostgreSQL's; use postgres:// or postgresql://",
            &s[..end - 3]
        ));
    }
    if s.is_empty() || !s.contains('=') {
        return Err("expected a postgres:// or postgresql:// URL, or key=value pairs such as host=localhost dbname=app".into());
    }
    let (list, problem) = keywords(s);
    if let Some(p) = problem {
        return Err(p);
    }
    let mut parts = Parts::default();
    for k in list {
        parts.set(k.key, k.value);
    }
    Ok(parts)
}

/// Byte ranges of every secret in `s` (a URL, keyword string or neither).
fn secret_spans(s: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    if let Some(end) = any_scheme(s) {
        let l = url_layout(s, end);
        // A raw `/` or `?` in the password ended the authority early: hide
        // up to the last `@`.
        let userinfo_end = l.at.or_else(|| misplaced_at(s, &l));
        if let Some(at) = userinfo_end {
            if let Some(colon) = s[end..at].find(':') {
                spans.push((end + colon + 1, at));
            }
        }
        let query_from = userinfo_end.map_or(l.authority_end, |a| a.max(l.authority_end));
        if let Some(q) = s[query_from..].find('?').map(|i| query_from + i + 1) {
            let mut at = q;
            for pair in s[q..].split('&') {
                if let Some((k, v)) = pair.split_once('=') {
                    let key = decode(k, "").unwrap_or_else(|_| k.to_string());
                    if SECRET_KEYS.contains(&key.to_ascii_lowercase().as_str()) && !v.is_empty() {
                        let start = at + k.len() + 1;
                        spans.push((start, start + v.len()));
                    }
                }
                at += pair.len() + 1;
            }
        }
    } else {
        for k in keywords(s).0 {
            if SECRET_KEYS.contains(&k.key.to_ascii_lowercase().as_str()) && k.span.1 > k.span.0 {
                spans.push(k.span);
            }
        }
    }
    spans.sort_unstable();
    spans
}

/// `url` with every secret (the userinfo password, `password=` and
/// `sslpassword=` in a query or keyword string) replaced by `****`. Works on
/// strings that do not parse too, erring on the side of hiding more.
///
/// ```
/// use tidemark_core::url::redact;
/// assert_eq!(redact("postgres://app:p@ss@db/app"), "postgres://app:****@db/app");
/// assert_eq!(redact("host=db password='a b&c' user=app"), "host=db password=**** user=app");
/// ```
pub fn redact(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut last = 0;
    for (start, end) in secret_spans(url) {
        if start < last {
            last = last.max(end);
            continue;
        }
        out.push_str(&url[last..start]);
        out.push_str(MASK);
        last = end;
    }
    out.push_str(&url[last..]);
    out
}

/// Every form of every secret in `url` (as written, unquoted, decoded),
/// longest first; those under 3 characters are left out (replacing them
/// would mangle ordinary words, and no message of tidemark's carries one).
fn secrets(url: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for (start, end) in secret_spans(url) {
        let raw = &url[start..end];
        found.push(raw.to_string());
        if let Ok(d) = decode(raw, "") {
            found.push(d);
        }
        if raw.starts_with('\'') || raw.contains('\\') {
            found.extend(keywords(&format!("k={raw}")).0.into_iter().map(|k| k.value));
        }
    }
    if let Ok(p) = parts_of(url) {
        found.extend(p.password.clone());
        found.extend(p.param("sslpassword").map(str::to_string));
    }
    found.retain(|s| s.chars().count() >= 3);
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    found.dedup();
    found
}

/// `text` with every secret of `url` replaced by `****`: for messages that
/// come from elsewhere (a server error) and might echo one.
pub fn redact_text(text: &str, url: &str) -> String {
    let mut out = text.to_string();
    for s in secrets(url) {
        out = out.replace(&s, MASK);
    }
    out
}

fn number<T: std::str::FromStr>(key: &str, value: &str, unit: &str) -> Result<T, String> {
    value
        .trim()
        .parse::<T>()
        .map_err(|_| format!("{key}={value:?} is not a whole number{unit}"))
}

/// Builds the connection from the parts; `Err` says what is wrong.
fn build(p: &Parts, tls_insecure: bool) -> Result<Target, String> {
    let unknown: Vec<&str> = p
        .params
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !APPLIED.contains(k) && !TOLERATED.contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "unknown parameter{} {}; check the spelling (PostgreSQL's parameters are listed at https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS)",
            if unknown.len() > 1 { "s" } else { "" },
            unknown.join(", ")
        ));
    }
    let mut config = Config::new();
    let hostaddr = p.param("hostaddr").filter(|h| !h.is_empty());
    if p.hosts.iter().all(String::is_empty) && hostaddr.is_none() {
        return Err("it names no host; write it as postgres://user:password@host:port/database (or host=... in a keyword string)".into());
    }
    if p.hosts.len() > 1 && p.hosts.iter().any(String::is_empty) {
        return Err("its list of hosts has an empty entry".into());
    }
    for h in p.hosts.iter().filter(|h| !h.is_empty()) {
        config.host(h);
    }
    if let Some(addr) = hostaddr {
        let ip = addr
            .parse()
            .map_err(|_| format!("hostaddr={addr:?} is not an IP address"))?;
        config.hostaddr(ip);
        if p.hosts.iter().all(String::is_empty) {
            config.host(addr);
        }
    }
    let hosts = config.get_hosts().len().max(1);
    if p.ports.len() > 1 && p.ports.len() != hosts {
        return Err(format!(
            "it lists {} ports for {hosts} hosts; give one port, or one per host",
            p.ports.len()
        ));
    }
    for port in &p.ports {
        let n = if port.is_empty() {
            5432
        } else {
            match port.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(format!("the port {port:?} is not a number from 1 to 65535")),
            }
        };
        config.port(n);
    }
    if let Some(u) = &p.user {
        config.user(u);
    }
    if let Some(pw) = &p.password {
        config.password(pw.as_bytes());
    }
    if let Some(d) = &p.dbname {
        config.dbname(d);
    }
    let mut keepalive = Keepalive::default();
    let mut connect_timeout_ms = None;
    let mut sslmode = String::from("prefer");
    let (mut root_cert, mut ssl_cert, mut ssl_key) = (None, None, None);
    for (k, v) in &p.params {
        match k.as_str() {
            "options" => {
                config.options(v);
            }
            "application_name" => {
                config.application_name(v);
            }
            "connect_timeout" => {
                // libpq: seconds; 0 or less means none.
                let s: i64 = number(k, v, " of seconds")?;
                connect_timeout_ms = (s > 0).then(|| s as u64 * 1000);
            }
            "keepalives" => keepalive.enabled = v.trim() != "0",
            // 0 means the system's default, as in libpq.
            "keepalives_idle" => {
                let s: u64 = number(k, v, " of seconds")?;
                keepalive.idle_ms = if s == 0 { 7_200_000 } else { s * 1000 };
            }
            "keepalives_interval" => {
                let s: u64 = number(k, v, " of seconds")?;
                keepalive.interval_ms = if s == 0 { 75_000 } else { s * 1000 };
            }
            "keepalives_count" | "keepalives_retries" => {
                let n: u32 = number(k, v, "")?;
                keepalive.count = if n == 0 { 9 } else { n };
            }
            // 0: no bound (the system's default).
            "tcp_user_timeout" => keepalive.user_timeout_ms = number(k, v, " of milliseconds")?,
            "target_session_attrs" => {
                config.target_session_attrs(match v.as_str() {
                    "any" => tokio_postgres::config::TargetSessionAttrs::Any,
                    "read-write" => tokio_postgres::config::TargetSessionAttrs::ReadWrite,
                    "read-only" => tokio_postgres::config::TargetSessionAttrs::ReadOnly,
                    other => {
                        return Err(format!(
                            "target_session_attrs={other} is not one of any, read-write, read-only"
                        ))
                    }
                });
            }
            "channel_binding" => {
                config.channel_binding(match v.as_str() {
                    "disable" => tokio_postgres::config::ChannelBinding::Disable,
                    "prefer" => tokio_postgres::config::ChannelBinding::Prefer,
                    "require" => tokio_postgres::config::ChannelBinding::Require,
                    other => {
                        return Err(format!(
                            "channel_binding={other} is not one of disable, prefer, require"
                        ))
                    }
                });
            }
            "load_balance_hosts" => {
                config.load_balance_hosts(match v.as_str() {
                    "disable" => tokio_postgres::config::LoadBalanceHosts::Disable,
                    "random" => tokio_postgres::config::LoadBalanceHosts::Random,
                    other => {
                        return Err(format!(
                            "load_balance_hosts={other} is not one of disable, random"
                        ))
                    }
                });
            }
            "sslmode" => sslmode = v.clone(),
            "sslrootcert" => root_cert = Some(v.clone()),
            "sslcert" => ssl_cert = Some(v.clone()),
            "sslkey" => ssl_key = Some(v.clone()),
            _ => {}
        }
    }
    if config.get_application_name().is_none() {
        config.application_name("tidemark");
    }
    let tls = match sslmode.as_str() {
        "disable" => Tls::Disable,
        "allow" | "prefer" => Tls::Prefer,
        "no-verify" => Tls::RequireInsecure,
        "require" | "verify-ca" | "verify-full" if tls_insecure => Tls::RequireInsecure,
        "verify-ca" => Tls::VerifyCa,
        "require" | "verify-full" => Tls::VerifyFull,
        other => {
            return Err(format!(
                "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full, no-verify"
            ))
        }
    };
    let client_cert = match (ssl_cert, ssl_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("sslcert and sslkey go together: give both, or neither".into()),
    };
    Ok(Target {
        config,
        tls,
        sslmode,
        root_cert,
        client_cert,
        keepalive,
        connect_timeout_ms,
    })
}

/// Parses a libpq URL or keyword string.
pub fn parse(url: &str, tls_insecure: bool) -> Result<Target, ConnectError> {
    parts_of(url)
        .and_then(|p| build(&p, tls_insecure))
        .map_err(|why| ConnectError {
            code: "E_INVALID_URL",
            message: format!("invalid database URL {}: {why}", redact(url)),
            sql_state: None,
        })
}

/// Why a URL points at a transaction-mode pooler (PgBouncer, Supavisor,
/// Neon's pooled endpoints): `pgbouncer=true`, a `-pooler.` host, port 6543.
fn pooler_reason(target: &Target, parts: &Parts) -> Option<String> {
    if parts
        .param("pgbouncer")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Some("pgbouncer=true".into());
    }
    let e = Endpoint::of(target);
    if e.host.to_ascii_lowercase().contains("-pooler.") {
        return Some(format!("the host {} is a pooler endpoint", e.host));
    }
    (e.port == 6543).then(|| "port 6543 is the pooler port".into())
}

/// What `inspectUrl` tells the JS host: enough to name the database and
/// decide about poolers, with nothing secret in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlInfo {
    /// What is wrong with the URL (it cannot be used), or `None`.
    pub problem: Option<String>,
    /// The URL with every secret masked.
    pub redacted: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub sslmode: Option<String>,
    /// Why the URL looks like a transaction-mode pooler, or `None`.
    pub pooler_reason: Option<String>,
    /// The `application_name` the session will have.
    pub application_name: Option<String>,
}

/// Reads `url` for the host: its shape problem, where it points, its
/// redacted form. Never fails.
///
/// ```
/// use tidemark_core::url::inspect;
/// let info = inspect("postgres://app:secret@ep-x-pooler.neon.tech/db");
/// assert_eq!(info.problem, None);
/// assert_eq!(info.redacted, "postgres://app:****@ep-x-pooler.neon.tech/db");
/// assert!(info.pooler_reason.is_some());
/// assert!(inspect("postgres://").problem.unwrap().contains("names no host"));
/// ```
pub fn inspect(url: &str) -> UrlInfo {
    let redacted = redact(url);
    let parsed = parts_of(url).and_then(|p| build(&p, false).map(|t| (p, t)));
    match parsed {
        Err(problem) => UrlInfo {
            problem: Some(problem),
            redacted,
            host: None,
            port: None,
            database: None,
            user: None,
            sslmode: None,
            pooler_reason: None,
            application_name: None,
        },
        Ok((parts, target)) => {
            let e = Endpoint::of(&target);
            UrlInfo {
                problem: None,
                redacted,
                pooler_reason: pooler_reason(&target, &parts),
                application_name: target.config.get_application_name().map(str::to_string),
                host: Some(e.host),
                port: Some(e.port),
                database: Some(e.database).filter(|d| !d.is_empty()),
                user: Some(e.user).filter(|u| !u.is_empty()),
                sslmode: Some(e.sslmode),
            }
        }
    }
}

/// Where the connection went, for the `connected` event and messages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub sslmode: String,
}

impl Endpoint {
    /// Where `target` points.
    pub fn of(target: &Target) -> Endpoint {
        let c = &target.config;
        let host = match c.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => c
                .get_hostaddrs()
                .first()
                .map_or_else(|| "localhost".into(), |a| a.to_string()),
        };
        let user = c.get_user().unwrap_or("").to_string();
        Endpoint {
            host,
            port: c.get_ports().first().copied().unwrap_or(5432),
            database: c.get_dbname().unwrap_or(&user).to_string(),
            user,
            sslmode: target.sslmode.clone(),
        }
    }
}

/// How long connecting may take, retries included, when neither the host
/// nor the URL's `connect_timeout` says: a cold serverless database takes
/// seconds.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 30_000;

/// The connect budget: the host's option, else the URL's `connect_timeout`,
/// else [`DEFAULT_CONNECT_TIMEOUT_MS`].
pub fn connect_budget(option_ms: Option<u64>, target: &Target) -> Duration {
    Duration::from_millis(
        option_ms
            .or(target.connect_timeout_ms)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS)
            .max(1),
    )
}

/// Startup `options` that carry the session settings, so they cost no round
/// trip: `-c lock_timeout=...` and `-c statement_timeout=...`, after any
/// options the URL already had (Neon's `endpoint=...`).
pub fn startup_options(
    existing: Option<&str>,
    lock_timeout_ms: Option<u64>,
    statement_timeout_ms: Option<u64>,
) -> Option<String> {
    let mut parts: Vec<String> = existing
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .into_iter()
        .collect();
    if let Some(ms) = lock_timeout_ms {
        parts.push(format!("-c lock_timeout={ms}"));
    }
    if let Some(ms) = statement_timeout_ms {
        parts.push(format!("-c statement_timeout={ms}"));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_secret() {
        for (url, want) in [
            (
                "postgres://app:s3cret@db:5432/app",
                "postgres://app:****@db:5432/app",
            ),
            (
                "postgres://app:p%40ss@db/app?sslmode=require",
                "postgres://app:****@db/app?sslmode=require",
            ),
            (
                "postgres://app:p@ssw0rd@127.0.0.1/db",
                "postgres://app:****@127.0.0.1/db",
            ),
            (
                "postgres://u:topsecret@h/d?password=other1&sslpassword=keypass",
                "postgres://u:****@h/d?password=****&sslpassword=****",
            ),
            (
                "postgres://h/d?sslpassword=keypass&sslmode=require",
                "postgres://h/d?sslpassword=****&sslmode=require",
            ),
            (
                "host=db password=s3cret user=app",
                "host=db password=**** user=app",
            ),
            (
                "host=db password=ab&Secret99 user=app",
                "host=db password=**** user=app",
            ),
            (
                "host=db password='ab cd' user=app",
                "host=db password=**** user=app",
            ),
            (
                "host=db password = 'it\\'s' dbname=x",
                "host=db password = **** dbname=x",
            ),
            ("host=db password='ab cd", "host=db password=****"),
            ("postgres://u:ab/cd@h/db", "postgres://u:****@h/db"),
            ("postgres://u:123/cd@h/db", "postgres://u:****@h/db"),
            ("postgres://u:12?34@h/db", "postgres://u:****@h/db"),
            ("postgres://u:123?=x@h/db", "postgres://u:****@h/db"),
            (
                "postgres://h:5432/db?application_name=me@x",
                "postgres://h:5432/db?application_name=me@x",
            ),
            (
                "mysql://x:topsecret@127.0.0.1:1/db",
                "mysql://x:****@127.0.0.1:1/db",
            ),
            ("postgres://db/app", "postgres://db/app"),
            ("postgres://%%%", "postgres://%%%"),
        ] {
            assert_eq!(redact(url), want, "{url}");
        }
    }

    #[test]
    fn an_at_sign_in_the_password_stays_in_the_password() {
        let t = parse("postgres://app:p@ssw0rd@127.0.0.1:5433/db", false).unwrap();
        assert_eq!(t.config.get_password(), Some(&b"p@ssw0rd"[..]));
        assert_eq!(t.config.get_user(), Some("app"));
        let e = Endpoint::of(&t);
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 5433));
    }

    #[test]
    fn normalizes_what_tokio_postgres_rejects() {
        let t = parse("postgres://u:p@ep-x-pooler.us-east-2.aws.neon.tech/neondb?sslmode=verify-full&pgbouncer=true&schema=app&sslrootcert=%2Ftmp%2Fca.pem&connect_timeout=10", false).unwrap();
        assert_eq!(t.tls, Tls::VerifyFull);
        assert_eq!(t.root_cert.as_deref(), Some("/tmp/ca.pem"));
        assert_eq!(t.config.get_dbname(), Some("neondb"));
        assert_eq!(t.connect_timeout_ms, Some(10_000));
        let k = parse(
            "host=localhost dbname='my db' sslmode=disable pgbouncer=true",
            false,
        )
        .unwrap();
        assert_eq!(k.tls, Tls::Disable);
        assert_eq!(k.config.get_dbname(), Some("my db"));
        assert_eq!(
            parse("postgres://h/d?sslmode=require", true).unwrap().tls,
            Tls::RequireInsecure
        );
        let v6 = parse("postgres://u@[::1]:5433/d", false).unwrap();
        assert_eq!(
            (Endpoint::of(&v6).host.as_str(), Endpoint::of(&v6).port),
            ("::1", 5433)
        );
        assert!(parse("postgres://u:p@[::1]:5432,h2:5433/d", false).is_ok());
    }

    #[test]
    fn keepalives_follow_libpq_parameters() {
        let t = parse("postgres://h/d", false).unwrap();
        assert_eq!(t.keepalive, Keepalive::default());
        let t = parse("postgres://h/d?keepalives_idle=2&keepalives_interval=1&keepalives_count=2&tcp_user_timeout=3000", false).unwrap();
        assert_eq!(
            (
                t.keepalive.idle_ms,
                t.keepalive.interval_ms,
                t.keepalive.count,
                t.keepalive.user_timeout_ms
            ),
            (2000, 1000, 2, 3000)
        );
        assert!(
            !parse("host=h keepalives=0", false)
                .unwrap()
                .keepalive
                .enabled
        );
        assert!(parse("postgres://h/d?keepalives_idle=soon", false).is_err());
    }

    #[test]
    fn the_application_name_of_the_url_is_kept() {
        let t = parse("postgres://h/d?application_name=billing", false).unwrap();
        assert_eq!(t.config.get_application_name(), Some("billing"));
        let t = parse("postgres://h/d", false).unwrap();
        assert_eq!(t.config.get_application_name(), Some("tidemark"));
    }

    #[test]
    fn what_is_not_a_usable_postgres_url_is_refused() {
        for (bad, why) in [
            ("notaurl:::", "expected a postgres://"),
            ("mysql://x:topsecret@127.0.0.1:1/db", "scheme mysql://"),
            ("foo=bar", "unknown parameter foo"),
            ("", "expected a postgres://"),
            ("postgres://h/d?sslmod=require", "unknown parameter sslmod"),
            ("postgres://", "names no host"),
            ("postgres:///db", "names no host"),
            ("dbname=app", "names no host"),
            ("postgres://%%%", "% that does not start"),
            ("postgres://u:%zzsecret@h/db", "password has a %"),
            (
                "postgres://u:topsecret@h:notaport/d",
                "the port \"notaport\"",
            ),
            ("postgres://u:top/secret@h/d", "must be percent-encoded"),
            ("postgres://u:topsecret@h/d?sslmode=bogus", "sslmode=bogus"),
            ("host=h password='topsecret", "no closing '"),
            ("host=h sslcert=a.pem", "sslcert and sslkey"),
        ] {
            let e = parse(bad, false).unwrap_err();
            assert_eq!(e.code, "E_INVALID_URL", "{bad}");
            assert!(e.message.contains(why), "{bad}: {}", e.message);
            assert!(
                !e.message.contains("topsecret") && !e.message.contains("secret@"),
                "{}",
                e.message
            );
            let i = inspect(bad);
            assert!(i.problem.is_some_and(|p| p.contains(why)), "{bad}");
        }
        assert!(parse("postgresql://u:p@h:6543/d?pgbouncer=true&connection_limit=1&schema=public&sslcert=a.pem&sslkey=a.key", false).is_ok());
    }

    #[test]
    fn inspect_names_the_endpoint_and_the_pooler() {
        let i = inspect("postgres://app:pw@ep-x-pooler.neon.tech/db");
        assert_eq!(i.problem, None);
        assert_eq!(i.host.as_deref(), Some("ep-x-pooler.neon.tech"));
        assert_eq!(
            i.pooler_reason.as_deref(),
            Some("the host ep-x-pooler.neon.tech is a pooler endpoint")
        );
        assert_eq!(
            inspect("postgres://h:6543/d").pooler_reason.as_deref(),
            Some("port 6543 is the pooler port")
        );
        assert_eq!(
            inspect("host=h port=6543 pgbouncer=true")
                .pooler_reason
                .as_deref(),
            Some("pgbouncer=true")
        );
        assert_eq!(inspect("postgres://h/d").pooler_reason, None);
        assert_eq!(inspect("postgres://h/d").user, None);
    }

    proptest::proptest! {
        /// Whatever a password contains, written raw, percent-encoded or
        /// quoted in a keyword string, no message shows it.
        #[test]
        fn no_password_is_ever_shown(tail in "[a-zA-Z0-9@/?&#%:' =\\\\]{1,12}") {
            let pw = format!("Zq{tail}");
            let encoded: String = pw.bytes().map(|b| format!("%{b:02X}")).collect();
            let quoted = pw.replace('\\', "\\\\").replace('\'', "\\'");
            for url in [
                format!("postgres://u:{pw}@h:5432/db?sslmode=disable"),
                format!("postgres://u:{encoded}@h/db"),
                format!("postgres://h/db?password={encoded}&sslpassword={encoded}"),
                format!("host=h password='{quoted}' dbname=d"),
                format!("host=h dbname=d password='{quoted}"),
            ] {
                let shown = redact(&url);
                proptest::prop_assert!(!shown.contains(&pw), "{url} -> {shown}");
                proptest::prop_assert!(!shown.contains(&encoded), "{url} -> {shown}");
                let info = inspect(&url);
                let all = format!("{info:?}");
                proptest::prop_assert!(!all.contains(&pw), "{url} -> {all}");
                if let Ok(t) = parse(&url, false) {
                    let e = format!("{:?}", Endpoint::of(&t));
                    proptest::prop_assert!(!e.contains(&pw), "{url} -> {e}");
                }
            }
        }
    }

    #[test]
    fn texts_are_scrubbed_of_every_form_of_the_password() {
        let url = "postgres://app:p%40ssw0rd@h/db";
        assert_eq!(
            redact_text("auth failed for p@ssw0rd and p%40ssw0rd", url),
            "auth failed for **** and ****"
        );
        assert_eq!(
            redact_text("nothing to hide", "postgres://h/db"),
            "nothing to hide"
        );
        assert_eq!(
            redact_text("x ab cd y", "host=h password='ab cd'"),
            "x **** y"
        );
    }

    #[test]
    fn startup_options_keep_the_urls_own() {
        assert_eq!(
            startup_options(Some("endpoint=ep-x"), Some(5000), None).as_deref(),
            Some("endpoint=ep-x -c lock_timeout=5000")
        );
        assert_eq!(startup_options(None, None, None), None);
    }
}
