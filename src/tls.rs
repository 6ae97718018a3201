//! TLS with rustls: the listener's server config (with optional mTLS), the certificate
//! that is reloaded when its files change, the client config for HTTPS upstreams, and
//! the facts a verified client certificate contributes to the decision.
//!
//! Every config is built with the aws-lc-rs provider passed explicitly, so nothing here
//! depends on which process-wide default some other crate installed; [`install_provider`]
//! still installs it once for crates that look the default up.

mod peer;
mod reload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

pub use peer::{ClientCert, X509_SANS, X509_SUBJECT, has_token_x509, strip_token_x509};
pub use reload::{CertReloader, RELOAD_INTERVAL};

/// Why a TLS config could not be built; the gateway refuses to start with one.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no PEM certificate found", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: {what}: {source}", path.display())]
    Pem {
        path: PathBuf,
        what: &'static str,
        source: rustls_pki_types::pem::Error,
    },
    #[error("{}: {what}: {source}", path.display())]
    Rustls {
        path: PathBuf,
        what: &'static str,
        source: rustls::Error,
    },
    #[error("client_ca {}: {source}", path.display())]
    ClientVerifier {
        path: PathBuf,
        source: rustls::server::VerifierBuilderError,
    },
    #[error("no trusted root certificates: the system has none and no `ca` is configured")]
    NoRoots,
}

/// The provider every config here is built with.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Installs aws-lc-rs as the process default; later calls (and a default some other
/// part already installed) are fine, so this never fails.
pub fn install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The listener's TLS: ALPN `h2` and `http/1.1`, TLS 1.2 and 1.3 only, client
/// certificates required when `client_ca` is set. The returned reloader owns the
/// certificate: run [`CertReloader::watch`] to pick up rotated files.
pub fn server_config(cfg: &TlsConfig) -> Result<(Arc<ServerConfig>, Arc<CertReloader>), TlsError> {
    let provider = provider();
    let reloader = Arc::new(CertReloader::load(
        cfg.cert.clone(),
        cfg.key.clone(),
        provider.clone(),
    )?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|source| TlsError::Rustls {
            path: cfg.cert.clone(),
            what: "protocol versions",
            source,
        })?;
    let builder = match &cfg.client_ca {
        Some(ca) => {
            let roots = Arc::new(root_store(ca)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|source| TlsError::ClientVerifier {
                    path: ca.clone(),
                    source,
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(reloader.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), reloader))
}

/// The client config for an HTTPS upstream: the configured `ca` when there is one
/// (a private CA is then the only trust anchor), else the system's roots. ALPN is left
/// unset: the connector sets it from the HTTP versions it enables.
pub fn client_config(ca: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let roots = match ca {
        Some(path) => root_store(path)?,
        None => system_roots()?,
    };
    client_config_with(roots)
}

/// A client config trusting nothing, for a plain-`http` upstream whose connector type
/// still wants one (it is never used to connect).
pub fn unused_client_config() -> Result<ClientConfig, TlsError> {
    client_config_with(RootCertStore::empty())
}

fn client_config_with(roots: RootCertStore) -> Result<ClientConfig, TlsError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|source| TlsError::Rustls {
            path: PathBuf::new(),
            what: "protocol versions",
            source,
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "could not read some system root certificates");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::debug!(ignored, "unparsable system root certificates skipped");
    }
    if added == 0 {
        return Err(TlsError::NoRoots);
    }
    Ok(roots)
}

/// Every certificate in a PEM file as a trust anchor; a file with none is an error.
fn root_store(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|source| TlsError::Rustls {
            path: path.to_path_buf(),
            what: "trust anchor",
            source,
        })?;
    }
    Ok(roots)
}

/// The PEM certificates of a file, in order (a chain: end entity first).
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    certs_from_pem(path, &bytes)
}

fn certs_from_pem(path: &Path, bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_path_buf(),
            what: "certificate",
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
fn key_from_pem(path: &Path, bytes: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|source| TlsError::Pem {
        path: path.to_path_buf(),
        what: "private key",
        source,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;
