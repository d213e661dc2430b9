//! Dialing PostgreSQL natively: TLS through rustls with the ring provider
//! (no OpenSSL), and the connection task on napi's tokio runtime. URL
//! parsing is the core's (`tidemark_core::url`), shared with the wasm host.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tidemark_core::url::{ConnectError, Endpoint, Target, Tls};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};

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
