//! Dialing PostgreSQL natively: TLS through rustls with the ring provider
//! (no OpenSSL), and the connection task on napi's tokio runtime. URL
//! parsing is the core's (`tidemark_core::url`), shared with the wasm host.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tidemark_core::url::{ConnectError, Endpoint, Target, Tls};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls};

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

/// `verify-ca`: the chain must lead to a trusted root; the host name is not
/// checked (libpq's meaning).
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn tls_error(why: String) -> ConnectError {
    ConnectError {
        code: "E_CONNECT",
        message: format!("could not set up TLS: {why}"),
    }
}

fn add_pem_roots(roots: &mut RootCertStore, path: &str, what: &str) -> Result<(), ConnectError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(format!("cannot read {what} {path}: {e}")))?;
    for cert in certs {
        let cert = cert.map_err(|e| tls_error(format!("bad certificate in {path}: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| tls_error(format!("bad certificate in {path}: {e}")))?;
    }
    Ok(())
}

/// Roots: webpki's, the system store when `SSL_CERT_FILE` names one, and
/// the URL's `sslrootcert`.
fn roots(target: &Target) -> Result<RootCertStore, ConnectError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Ok(system) = std::env::var("SSL_CERT_FILE") {
        if !system.is_empty() && std::path::Path::new(&system).exists() {
            add_pem_roots(&mut roots, &system, "SSL_CERT_FILE")?;
        }
    }
    if let Some(path) = &target.root_cert {
        add_pem_roots(&mut roots, path, "sslrootcert")?;
    }
    Ok(roots)
}

/// The rustls configuration for `target`'s sslmode, roots and client
/// certificate.
fn rustls_config(target: &Target) -> Result<ClientConfig, ConnectError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?;
    let builder = match target.tls {
        Tls::VerifyFull => builder.with_root_certificates(roots(target)?),
        Tls::VerifyCa => {
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(target)?),
                provider,
            )
            .build()
            .map_err(|e| tls_error(e.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider))),
    };
    Ok(match &target.client_cert {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .map_err(|e| tls_error(format!("cannot read sslcert {cert}: {e}")))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_error(format!("bad certificate in sslcert {cert}: {e}")))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| tls_error(format!("cannot read sslkey {key}: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| tls_error(format!("sslcert/sslkey: {e}")))?
        }
        None => builder.with_no_client_auth(),
    })
}

/// What to tell the user to do about a connection failure they can fix
/// from the URL.
fn hint(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    if r.contains("notvalidforname") {
        "; the server's certificate is not valid for this host name: connect with the name the certificate was issued for, or use sslmode=verify-ca to check only the chain"
    } else if r.contains("certificate")
        && (r.contains("unknownissuer") || r.contains("invalid peer"))
    {
        "; the server's certificate could not be verified (not signed by a CA tidemark trusts): add sslrootcert=/path/to/ca.pem to the URL, or encrypt without verifying with sslmode=no-verify (or TIDEMARK_TLS_INSECURE=1)"
    } else if r.contains("password authentication failed") {
        "; check the user name and password"
    } else {
        ""
    }
}

/// The text of a connection error: the server's message, or the whole
/// source chain (tokio-postgres's own Display can be just "db error").
fn reason(e: &tokio_postgres::Error) -> (String, Option<String>) {
    if let Some(db) = e.as_db_error() {
        return (
            format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            Some(db.code().code().to_string()),
        );
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text = format!("{text}: {t}");
        }
        source = s.source();
    }
    (text, None)
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

/// How to dial, beyond the URL.
pub struct Dial<'a> {
    /// The whole budget for connecting, retries included (default 30 s).
    pub connect_timeout_ms: Option<u64>,
    pub application_name: Option<&'a str>,
    /// Session settings for the startup packet (direct connections).
    pub startup_options: Option<String>,
    /// Called before each retry: attempt number, the error, the wait in ms.
    pub on_retry: &'a (dyn Fn(u32, &str, u64) + Send + Sync),
}

/// One attempt.
async fn attempt(
    config: &Config,
    tls: Option<&ClientConfig>,
) -> Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error> {
    match tls {
        None => {
            let (client, connection) = config.connect(NoTls).await?;
            Ok((
                client,
                tokio::spawn(async move {
                    let _ = connection.await;
                }),
            ))
        }
        Some(tls) => {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls.clone());
            let (client, connection) = config.connect(tls).await?;
            Ok((
                client,
                tokio::spawn(async move {
                    let _ = connection.await;
                }),
            ))
        }
    }
}

/// Jitter without a random-number dependency: the clock's nanoseconds.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1000) / 1000.0
}

/// Dials the server, retrying with backoff what can heal (refused
/// connections, DNS, a waking serverless compute) until the connect timeout
/// is spent; authentication failures fail at once.
pub async fn connect(target: Target, dial: Dial<'_>) -> Result<Connected, ConnectError> {
    let endpoint = Endpoint::of(&target);
    let mut config = target.config.clone();
    if let Some(name) = dial.application_name {
        config.application_name(name);
    }
    if let Some(options) = dial.startup_options {
        config.options(options);
    }
    let tls = match target.tls {
        Tls::Disable => {
            config.ssl_mode(SslMode::Disable);
            None
        }
        Tls::Prefer => {
            config.ssl_mode(SslMode::Prefer);
            Some(rustls_config(&target)?)
        }
        _ => {
            config.ssl_mode(SslMode::Require);
            Some(rustls_config(&target)?)
        }
    };
    let budget = Duration::from_millis(dial.connect_timeout_ms.unwrap_or(30_000).max(1));
    let started = std::time::Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let left = budget
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(100));
        config.connect_timeout(left);
        // The budget covers the whole attempt: TCP, TLS, startup and
        // authentication (a server that accepts and never answers).
        let failure = match tokio::time::timeout(left, attempt(&config, tls.as_ref())).await {
            Ok(Ok((client, task))) => {
                return Ok(Connected {
                    client,
                    task,
                    endpoint,
                })
            }
            Ok(Err(e)) => reason(&e),
            Err(_) => (format!("timed out after {} ms", left.as_millis()), None),
        };
        let (text, sql_state) = failure;
        let elapsed = started.elapsed();
        // The last wait is cut to what is left, so the final attempt lands
        // at the deadline.
        let delay = Duration::from_millis(tidemark_core::url::backoff_ms(attempts, jitter()))
            .min(budget.saturating_sub(elapsed));
        let retry = tidemark_core::url::retryable(&text, sql_state.as_deref())
            && elapsed + Duration::from_millis(10) < budget;
        if !retry {
            let tries = if attempts > 1 {
                format!(
                    " (after {attempts} attempts over {} ms)",
                    elapsed.as_millis()
                )
            } else {
                String::new()
            };
            return Err(ConnectError {
                code: "E_CONNECT",
                message: format!(
                    "could not connect to {}:{} (database {}, user {}, sslmode {}){tries}: {text}{}",
                    endpoint.host,
                    endpoint.port,
                    endpoint.database,
                    endpoint.user,
                    endpoint.sslmode,
                    hint(&text)
                ),
            });
        }
        (dial.on_retry)(attempts, &text, delay.as_millis() as u64);
        tokio::time::sleep(delay).await;
    }
}
