//! Dialing PostgreSQL natively: TLS through rustls with the ring provider
//! (no OpenSSL), and the connection task on napi's tokio runtime. URL
//! parsing is the core's (`tidemark_core::url`), shared with the wasm host.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tidemark_core::connect::{AttemptError, Dialer};
use tidemark_core::url::{ConnectError, Target, Tls};
use tidemark_core::Dial;
use tidemark_core::Reporter;
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
        sql_state: None,
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

/// A connected client and the task that drives its connection.
pub struct Connected {
    pub client: Client,
    pub task: tokio::task::JoinHandle<()>,
}

impl Connected {
    /// Closes the session and waits for the connection task, so nothing is
    /// left writing after the call returns.
    pub async fn close(self) {
        drop(self.client);
        let _ = self.task.await;
    }
}

type Session = (Client, tokio::task::JoinHandle<()>);

/// One attempt.
async fn attempt(
    config: &Config,
    tls: Option<&ClientConfig>,
) -> Result<Session, tokio_postgres::Error> {
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

/// TCP + rustls attempts for the core's connection loop.
struct NativeDialer {
    config: Config,
    tls: Option<ClientConfig>,
}

impl Dialer for NativeDialer {
    type Connection = Session;

    async fn dial(&mut self, remaining_ms: u64) -> (Result<Session, AttemptError>, u64) {
        let started = Instant::now();
        let left = Duration::from_millis(remaining_ms);
        self.config.connect_timeout(left);
        let outcome =
            match tokio::time::timeout(left, attempt(&self.config, self.tls.as_ref())).await {
                Ok(Ok(session)) => Ok(session),
                Ok(Err(e)) => Err(AttemptError::of(&e)),
                Err(_) => Err(AttemptError {
                    message: format!("timed out after {remaining_ms} ms"),
                    sql_state: None,
                }),
            };
        (outcome, started.elapsed().as_millis() as u64)
    }

    async fn sleep(&mut self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// Jitter without a random-number dependency: the clock's nanoseconds.
    fn jitter(&mut self) -> f64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        f64::from(nanos % 1000) / 1000.0
    }
}

/// Dials the server through the core's connection policy (retries,
/// events, the error text), with TCP keepalives and `TCP_USER_TIMEOUT` from
/// the URL so that a connection whose network goes silent fails instead of
/// hanging.
pub async fn connect<R: Reporter + ?Sized>(
    dial: Dial,
    reporter: &R,
) -> Result<Connected, ConnectError> {
    let Dial {
        target,
        endpoint,
        budget_ms,
    } = dial;
    let mut config = target.config.clone();
    let k = &target.keepalive;
    config.keepalives(k.enabled);
    config.keepalives_idle(Duration::from_millis(k.idle_ms));
    config.keepalives_interval(Duration::from_millis(k.interval_ms));
    config.keepalives_retries(k.count);
    if k.user_timeout_ms > 0 {
        config.tcp_user_timeout(Duration::from_millis(k.user_timeout_ms));
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
    let mut dialer = NativeDialer { config, tls };
    let (client, task) =
        tidemark_core::connect::connect(&mut dialer, &endpoint, budget_ms, reporter).await?;
    Ok(Connected { client, task })
}
