//! The listener's certificate, swapped atomically when its files change on disk.
//!
//! cert-manager and Kubernetes secret mounts replace the files (often through a symlink
//! swap) without telling anyone, so the files are re-read on a short period and their
//! bytes compared with a digest: no watcher to set up, no missed rename events, and the
//! cost is two small reads a second. A pair that does not load (half-written, key not
//! matching the certificate) leaves the current certificate in place and is retried.
//! Connections already open keep the certificate they were handshaken with.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use super::{TlsError, certs_from_pem, key_from_pem, read};

/// How often the certificate files are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Serves the current certificate to every new handshake and replaces it when the
/// files change.
pub struct CertReloader {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
    /// Digest of the file bytes the current certificate was built from.
    loaded: std::sync::Mutex<[u8; 32]>,
}

impl std::fmt::Debug for CertReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertReloader")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl CertReloader {
    /// Loads the pair once; failing here stops the gateway from starting.
    pub fn load(
        cert_path: PathBuf,
        key_path: PathBuf,
        provider: Arc<CryptoProvider>,
    ) -> Result<CertReloader, TlsError> {
        let (cert, key) = (read(&cert_path)?, read(&key_path)?);
        let digest = digest(&cert, &key);
        let certified = build(&cert_path, &cert, &key_path, &key, &provider)?;
        Ok(CertReloader {
            cert_path,
            key_path,
            provider,
            current: ArcSwap::from_pointee(certified),
            loaded: std::sync::Mutex::new(digest),
        })
    }

    /// The certificate new handshakes get now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    /// Re-reads the files and swaps in the pair when their bytes changed and load.
    /// `Ok(false)`: unchanged. An error leaves the current certificate in place.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let (cert, key) = (read(&self.cert_path)?, read(&self.key_path)?);
        let digest = digest(&cert, &key);
        // Only the watch task reloads; the lock never meets the handshake path.
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if *loaded == digest {
            return Ok(false);
        }
        let certified = build(&self.cert_path, &cert, &self.key_path, &key, &self.provider)?;
        self.current.store(Arc::new(certified));
        *loaded = digest;
        Ok(true)
    }

    /// Checks the files every `interval`, forever; spawn it and drop it at shutdown.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A failure is logged once per distinct message, not every tick.
        let mut last_error: Option<String> = None;
        loop {
            ticks.tick().await;
            let this = self.clone();
            let result = tokio::task::spawn_blocking(move || this.reload_if_changed()).await;
            match result {
                Ok(Ok(true)) => {
                    last_error = None;
                    tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
                }
                Ok(Ok(false)) => last_error = None,
                Ok(Err(e)) => {
                    let message = e.to_string();
                    if last_error.as_deref() != Some(&message) {
                        tracing::warn!(error = %message, "TLS certificate not reloaded; keeping the current one");
                    }
                    last_error = Some(message);
                }
                Err(e) => tracing::warn!(error = %e, "TLS certificate reload task failed"),
            }
        }
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn build(
    cert_path: &std::path::Path,
    cert: &[u8],
    key_path: &std::path::Path,
    key: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = certs_from_pem(cert_path, cert)?;
    let key = key_from_pem(key_path, key)?;
    let certified =
        CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Rustls {
            path: key_path.to_path_buf(),
            what: "private key does not load or does not match the certificate",
            source,
        })?;
    Ok(certified)
}

/// One digest over both files; the length prefix keeps `ab`+`c` apart from `a`+`bc`.
fn digest(cert: &[u8], key: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((cert.len() as u64).to_be_bytes());
    h.update(cert);
    h.update(key);
    h.finalize().into()
}
