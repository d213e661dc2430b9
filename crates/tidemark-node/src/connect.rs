//! Dialing PostgreSQL natively: URL normalization (libpq parameters that
//! tokio-postgres rejects), TLS through rustls with the ring provider, and
//! the connection task on napi's tokio runtime.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls};

/// A failure before the engine runs: a bad URL (a configuration error) or a
/// failed connection.
#[derive(Debug)]
pub struct ConnectError {
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
    /// TLS required, chain and host name verified.
    Verify,
}

/// A parsed URL, normalized for tokio-postgres.
#[derive(Debug)]
pub struct Target {
    pub config: Config,
    pub tls: Tls,
    pub sslmode: String,
    pub root_cert: Option<String>,
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
    let normalized = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslmode" => sslmode = percent_decode(v),
                "sslrootcert" => root_cert = Some(percent_decode(v)),
                k if PASSED_THROUGH.contains(&k) => kept.push(pair.to_string()),
                _ => {}
            }
        }
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        let mut kept = Vec::new();
        for token in keyword_tokens(url) {
            let (k, v) = token.split_once('=').unwrap_or((token.as_str(), ""));
            let unquoted = v.trim_matches('\'').to_string();
            match k.trim() {
                "sslmode" => sslmode = unquoted,
                "sslrootcert" => root_cert = Some(unquoted),
                k if PASSED_THROUGH.contains(&k) => kept.push(token.clone()),
                _ => {}
            }
        }
        kept.join(" ")
    };
    let tls = match sslmode.as_str() {
        "disable" => Tls::Disable,
        "allow" | "prefer" if tls_insecure => Tls::Prefer,
        "allow" | "prefer" => Tls::Prefer,
        "no-verify" => Tls::RequireInsecure,
        "require" | "verify-ca" | "verify-full" if tls_insecure => Tls::RequireInsecure,
        "require" | "verify-ca" | "verify-full" => Tls::Verify,
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
    Ok(Target {
        config,
        tls,
        sslmode,
        root_cert,
    })
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

/// Accepts any certificate but still checks the handshake signatures: TLS
/// without authentication, for `prefer` and `no-verify`.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn rustls_config(target: &Target) -> Result<ClientConfig, ConnectError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_error = |why: String| ConnectError {
        code: "E_CONNECT",
        message: format!("could not set up TLS: {why}"),
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?;
    let config = match target.tls {
        Tls::Verify => {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(path) = &target.root_cert {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| tls_error(format!("cannot read sslrootcert {path}: {e}")))?;
                for cert in certs {
                    let cert =
                        cert.map_err(|e| tls_error(format!("bad certificate in {path}: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| tls_error(format!("bad certificate in {path}: {e}")))?;
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth(),
    };
    Ok(config)
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
    fn of(target: &Target) -> Endpoint {
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

/// A connected client and the task that drives its connection.
pub struct Connected {
    pub client: Client,
    pub task: tokio::task::JoinHandle<()>,
    pub endpoint: Endpoint,
}

impl Connected {
    /// Closes the session and waits for the connection task, so nothing is
    /// left writing after the call returns.
    pub async fn close(self) {
        drop(self.client);
        let _ = self.task.await;
    }
}

/// Dials the server.
pub async fn connect(
    mut target: Target,
    connect_timeout_ms: Option<u64>,
    application_name: Option<&str>,
) -> Result<Connected, ConnectError> {
    if let Some(ms) = connect_timeout_ms {
        target.config.connect_timeout(Duration::from_millis(ms));
    }
    if let Some(name) = application_name {
        target.config.application_name(name);
    }
    let endpoint = Endpoint::of(&target);
    let failed = |e: tokio_postgres::Error| {
        let reason = match e.as_db_error() {
            Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            None => {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    let t = s.to_string();
                    if !text.contains(&t) {
                        text = format!("{text}: {t}");
                    }
                    source = s.source();
                }
                text
            }
        };
        ConnectError {
            code: "E_CONNECT",
            message: format!(
                "could not connect to {}:{} (database {}, user {}, sslmode {}): {reason}",
                endpoint.host, endpoint.port, endpoint.database, endpoint.user, endpoint.sslmode
            ),
        }
    };
    let (client, task) = match target.tls {
        Tls::Disable => {
            target.config.ssl_mode(SslMode::Disable);
            let (client, connection) = target.config.connect(NoTls).await.map_err(failed)?;
            (
                client,
                tokio::spawn(async move {
                    let _ = connection.await;
                }),
            )
        }
        _ => {
            let mode = if target.tls == Tls::Prefer {
                SslMode::Prefer
            } else {
                SslMode::Require
            };
            target.config.ssl_mode(mode);
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(rustls_config(&target)?);
            let (client, connection) = target.config.connect(tls).await.map_err(failed)?;
            (
                client,
                tokio::spawn(async move {
                    let _ = connection.await;
                }),
            )
        }
    };
    Ok(Connected {
        client,
        task,
        endpoint,
    })
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
        assert_eq!(t.tls, Tls::Verify);
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
    fn invalid_urls_are_redacted_configuration_errors() {
        let e = parse("postgres://u:topsecret@h:notaport/d", false).unwrap_err();
        assert_eq!(e.code, "E_INVALID_URL");
        assert!(!e.message.contains("topsecret"), "{}", e.message);
        let e = parse("postgres://u:topsecret@h/d?sslmode=bogus", false).unwrap_err();
        assert!(e.message.contains("sslmode=bogus") && !e.message.contains("topsecret"));
    }
}
