//! Connection strings: every libpq URL and keyword form users paste,
//! normalized for tokio-postgres (which rejects `sslmode=verify-full`,
//! `pgbouncer`, `schema`, `sslrootcert`, ...), and redacted for messages.
//! Pure: the hosts dial.

use std::str::FromStr;

use tokio_postgres::config::Host;
use tokio_postgres::Config;

/// A failure before the engine runs: a bad URL (a configuration error) or a
/// failed connection.
#[derive(Debug)]
pub struct ConnectError {
    /// `E_INVALID_URL` or `E_CONNECT`.
    pub code: &'static str,
    pub message: String,
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

/// A parsed URL, normalized for tokio-postgres.
#[derive(Debug)]
pub struct Target {
    pub config: Config,
    pub tls: Tls,
    pub sslmode: String,
    pub root_cert: Option<String>,
    /// `sslcert` / `sslkey`: a client certificate and its key (PEM files).
    pub client_cert: Option<(String, String)>,
}

/// Masks the password of a URL or keyword string, for messages.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "****");
            }
        }
    }
    // password=... in a query string or keyword form.
    let lower = out.to_ascii_lowercase();
    if let Some(i) = lower.find("password=") {
        let start = i + "password=".len();
        let end = out[start..]
            .find(['&', ' '])
            .map_or(out.len(), |e| start + e);
        out.replace_range(start..end, "****");
    }
    out
}

/// libpq parameters tokio-postgres understands; everything else is taken
/// out before parsing (`sslmode` and `sslrootcert` are handled here).
const PASSED_THROUGH: &[&str] = &[
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
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// Parameters that are accepted and ignored: libpq's own that tokio-postgres
/// does not take (TLS files are handled by the hosts), and those that other
/// tools put in the URLs users share with tidemark (Prisma's `schema`,
/// `pgbouncer`, `connection_limit`, ...).
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

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a libpq URL or keyword string.
pub fn parse(url: &str, tls_insecure: bool) -> Result<Target, ConnectError> {
    let invalid = |why: String| ConnectError {
        code: "E_INVALID_URL",
        message: format!("invalid database URL {}: {why}", redact(url)),
    };
    let mut sslmode = String::from("prefer");
    let mut root_cert = None;
    let mut ssl_cert = None;
    let mut ssl_key = None;
    let mut unknown = Vec::new();
    let mut keep = |key: &str, value: String, original: String, kept: &mut Vec<String>| match key {
        "sslmode" => sslmode = value,
        "sslrootcert" => root_cert = Some(value),
        "sslcert" => ssl_cert = Some(value),
        "sslkey" => ssl_key = Some(value),
        k if PASSED_THROUGH.contains(&k) => kept.push(original),
        k if TOLERATED.contains(&k) => {}
        k => unknown.push(k.to_string()),
    };
    let normalized = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        if let Some(why) = authority_problem(url) {
            return Err(invalid(why));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            keep(k, percent_decode(v), pair.to_string(), &mut kept);
        }
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else if url.contains("://") || !url.contains('=') {
        return Err(invalid(
            "expected a postgres:// or postgresql:// URL, or key=value pairs such as host=localhost dbname=app".into(),
        ));
    } else {
        let mut kept = Vec::new();
        for token in keyword_tokens(url) {
            let Some((k, v)) = token.split_once('=') else {
                return Err(invalid(format!("{token:?} is not a key=value pair")));
            };
            let unquoted = v.trim_matches('\'').to_string();
            keep(k.trim(), unquoted, token.clone(), &mut kept);
        }
        kept.join(" ")
    };
    if !unknown.is_empty() {
        return Err(invalid(format!(
            "unknown parameter{} {}; check the spelling (PostgreSQL's parameters are listed at https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS)",
            if unknown.len() > 1 { "s" } else { "" },
            unknown.join(", ")
        )));
    }
    let tls = match sslmode.as_str() {
        "disable" => Tls::Disable,
        "allow" | "prefer" if tls_insecure => Tls::Prefer,
        "allow" | "prefer" => Tls::Prefer,
        "no-verify" => Tls::RequireInsecure,
        "require" | "verify-ca" | "verify-full" if tls_insecure => Tls::RequireInsecure,
        "verify-ca" => Tls::VerifyCa,
        "require" | "verify-full" => Tls::VerifyFull,
        other => {
            return Err(invalid(format!(
                "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full, no-verify"
            )))
        }
    };
    let mut config = Config::from_str(&normalized).map_err(|e| invalid(e.to_string()))?;
    if config.get_hosts().is_empty() {
        config.host("localhost");
    }
    if config.get_application_name().is_none() {
        config.application_name("tidemark");
    }
    let client_cert = match (ssl_cert, ssl_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            return Err(invalid(
                "sslcert and sslkey go together: give both, or neither".into(),
            ))
        }
    };
    Ok(Target {
        client_cert,
        config,
        tls,
        sslmode,
        root_cert,
    })
}

/// What is wrong with the host and port part of a URL, in words (the
/// parser's own message is only "invalid connection string").
fn authority_problem(url: &str) -> Option<String> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    for host in hosts.split(',') {
        let port = if let Some(v6) = host.strip_prefix('[') {
            match v6.split_once(']') {
                Some((_, after)) => after.strip_prefix(':'),
                None => return Some(format!("the IPv6 address in {host:?} lacks its closing ]")),
            }
        } else {
            host.rsplit_once(':').map(|(_, p)| p)
        };
        if let Some(port) = port {
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Some(format!("the port {port:?} is not a number from 1 to 65535"));
            }
        }
    }
    None
}

/// Splits a keyword/value connection string, keeping quoted values whole.
fn keyword_tokens(s: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                current.push(c);
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            '\'' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    // Join `key = value` written with spaces.
    let mut joined: Vec<String> = Vec::new();
    for t in tokens {
        match joined.last_mut() {
            Some(last) if last.ends_with('=') || t.starts_with('=') => last.push_str(&t),
            _ => joined.push(t),
        }
    }
    joined
}

/// Where the connection went, for the `connected` event and messages.
#[derive(Debug, Clone, serde::Serialize)]
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
            None => "localhost".into(),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/app"),
            "postgres://app:****@db:5432/app"
        );
        assert_eq!(
            redact("postgres://app:p%40ss@db/app?sslmode=require"),
            "postgres://app:****@db/app?sslmode=require"
        );
        assert_eq!(
            redact("host=db password=s3cret user=app"),
            "host=db password=**** user=app"
        );
        assert_eq!(redact("postgres://db/app"), "postgres://db/app");
    }

    #[test]
    fn normalizes_what_tokio_postgres_rejects() {
        let t = parse("postgres://u:p@ep-x-pooler.us-east-2.aws.neon.tech/neondb?sslmode=verify-full&pgbouncer=true&schema=app&sslrootcert=%2Ftmp%2Fca.pem&connect_timeout=10", false).unwrap();
        assert_eq!(t.tls, Tls::VerifyFull);
        assert_eq!(t.root_cert.as_deref(), Some("/tmp/ca.pem"));
        assert_eq!(t.config.get_dbname(), Some("neondb"));
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
    }

    #[test]
    fn what_is_not_a_postgres_url_is_refused() {
        for bad in [
            "notaurl:::",
            "mysql://x:topsecret@127.0.0.1:1/db",
            "foo=bar",
            "",
            "postgres://h/d?sslmod=require",
        ] {
            let e = parse(bad, false).unwrap_err();
            assert_eq!(e.code, "E_INVALID_URL", "{bad}");
            assert!(!e.message.contains("topsecret"));
        }
        assert!(parse("postgres://h/d?sslmod=require", false)
            .unwrap_err()
            .message
            .contains("unknown parameter sslmod"));
        // Prisma's and libpq's extra parameters are fine.
        assert!(parse("postgresql://u:p@h:6543/d?pgbouncer=true&connection_limit=1&schema=public&sslcert=a.pem&sslkey=a.key", false).is_ok());
        assert!(parse("postgres://h/d?sslcert=a.pem", false).is_err());
    }

    #[test]
    fn invalid_urls_are_redacted_configuration_errors() {
        let e = parse("postgres://u:topsecret@h:notaport/d", false).unwrap_err();
        assert_eq!(e.code, "E_INVALID_URL");
        assert!(
            e.message.contains("the port \"notaport\" is not a number"),
            "{}",
            e.message
        );
        assert!(parse("postgres://u:p@[::1]:5432,h2:5433/d", false).is_ok());
        assert!(!e.message.contains("topsecret"), "{}", e.message);
        let e = parse("postgres://u:topsecret@h/d?sslmode=bogus", false).unwrap_err();
        assert!(e.message.contains("sslmode=bogus") && !e.message.contains("topsecret"));
    }
}

/// Whether a failed connection attempt is worth another try: refused
/// connections, name-resolution failures, timeouts, and a server (or a cold
/// Neon compute) that is still starting. Authentication failures never are.
pub fn retryable(message: &str, sql_state: Option<&str>) -> bool {
    match sql_state {
        // cannot_connect_now (starting up), too_many_connections.
        Some("57P03" | "53300") => return true,
        // invalid_password, invalid_authorization_specification, unknown database...
        Some(s) if s.starts_with("28") || s == "3D000" || s == "42501" => return false,
        _ => {}
    }
    let m = message.to_ascii_lowercase();
    [
        "connection refused",
        "econnrefused",
        "could not translate host name",
        "failed to lookup address",
        "name or service not known",
        "temporary failure in name resolution",
        "enotfound",
        "eai_again",
        "timed out",
        "etimedout",
        "connection reset",
        "econnreset",
        "compute node",
        "is starting up",
        "endpoint is disabled",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

/// The wait before retry `attempt` (1-based): exponential from 100 ms, capped
/// at 2 s, scaled by `jitter` in [0, 1) to between half and all of it, so
/// that parallel deploys do not retry in step.
pub fn backoff_ms(attempt: u32, jitter: f64) -> u64 {
    let base = 100u64
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(10))
        .min(2000);
    let factor = 0.5 + 0.5 * jitter.clamp(0.0, 1.0);
    (base as f64 * factor) as u64
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
mod retry_tests {
    use super::*;

    #[test]
    fn retries_what_can_heal_and_never_authentication() {
        assert!(retryable(
            "error connecting to server: Connection refused (os error 111)",
            None
        ));
        assert!(retryable("connect ECONNREFUSED 127.0.0.1:5432", None));
        assert!(retryable(
            "failed to lookup address information: Name or service not known",
            None
        ));
        assert!(retryable(
            "the database system is starting up",
            Some("57P03")
        ));
        assert!(retryable("Couldn't connect to compute node", Some("XX000")));
        assert!(!retryable(
            "password authentication failed for user \"app\"",
            Some("28P01")
        ));
        assert!(!retryable(
            "database \"nope\" does not exist",
            Some("3D000")
        ));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_ms(1, 1.0), 100);
        assert_eq!(backoff_ms(2, 1.0), 200);
        assert_eq!(backoff_ms(10, 1.0), 2000);
        assert_eq!(backoff_ms(1, 0.0), 50);
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
