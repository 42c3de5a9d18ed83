//! TLS client configuration shared by IMAP and SMTP: rustls with the ring provider, the system's
//! roots plus an optional extra CA file. Certificates are always verified.

use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// A TLS set-up problem, naming the file or host at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}: {path}: {message}")]
    CaFile {
        key: &'static str,
        path: String,
        message: String,
    },
    #[error("TLS with {host}: {message}")]
    Handshake { host: String, message: String },
}

/// A connector trusting the system's roots and `ca_file` (named by config key `key` in errors).
pub fn connector(
    ca_file: Option<&Path>,
    key: &'static str,
) -> Result<tokio_rustls::TlsConnector, TlsError> {
    Ok(tokio_rustls::TlsConnector::from(Arc::new(client_config(
        ca_file, key,
    )?)))
}

/// The rustls client configuration behind [`connector`] (ring provider, system roots plus
/// `ca_file`), for clients that build their own connections (the OAuth2 token endpoint's).
pub fn client_config(
    ca_file: Option<&Path>,
    key: &'static str,
) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let ca_err = |message: String| TlsError::CaFile {
            key,
            path: path.display().to_string(),
            message,
        };
        let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_err(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| ca_err(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_err("no PEM certificate in the file".into()));
        }
        for c in certs {
            roots.add(c).map_err(|e| ca_err(e.to_string()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::CaFile {
        key,
        path: String::new(),
        message: e.to_string(),
    })?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(config)
}

/// Runs the TLS handshake over `tcp`, verifying the certificate for `host`.
pub async fn handshake(
    connector: &tokio_rustls::TlsConnector,
    host: &str,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, TlsError> {
    let err = |message: String| TlsError::Handshake {
        host: host.to_string(),
        message,
    };
    let name = ServerName::try_from(host.to_string()).map_err(|e| err(e.to_string()))?;
    connector
        .connect(name, tcp)
        .await
        .map_err(|e| err(e.to_string()))
}
