//! Fetching an issuer's keys over HTTP(S): OpenID discovery, the JWKS document and the
//! `Cache-Control` that says how long it may be kept.
//!
//! One pooled hyper client per issuer (rustls with the system roots, or only the
//! issuer's `ca`), the same client stack the upstream uses. Every fetch is bounded in
//! time and size, so a slow or hostile IdP cannot hold a refresh forever or fill memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL};
use http::uri::Scheme;
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;

/// Whole-fetch deadline: connect, TLS, headers and body.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Discovery documents and JWKS are a few KiB; anything near this is not one.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What went wrong setting up a client or fetching a document. Names URLs and files,
/// never response bodies (they are not ours to log).
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("`{url}` is not an absolute http(s) URL")]
    BadUrl { url: String },
    #[error("cannot read the CA file {}: {error}", file.display())]
    CaRead {
        file: PathBuf,
        error: rustls::pki_types::pem::Error,
    },
    #[error("the CA file {} holds no usable certificate", file.display())]
    CaEmpty { file: PathBuf },
    #[error("no system root certificates for https ({0}); configure `ca`")]
    NoSystemRoots(#[source] std::io::Error),
    #[error("TLS setup: {0}")]
    Tls(#[source] rustls::Error),
    #[error("GET {url}: {error}: {cause}")]
    Request {
        url: String,
        #[source]
        error: Box<hyper_util::client::legacy::Error>,
        /// The innermost cause ("Connection refused", a certificate error, ...), which
        /// hyper-util's own message leaves out.
        cause: String,
    },
    #[error("GET {url}: no complete answer within {FETCH_TIMEOUT:?}")]
    Timeout { url: String },
    #[error("GET {url}: status {status}")]
    Status { url: String, status: StatusCode },
    #[error("GET {url}: reading the body failed or it is over {MAX_BODY_BYTES} bytes")]
    Body { url: String },
    #[error("{url}: not a discovery document: {error}")]
    Discovery {
        url: String,
        #[source]
        error: serde_json::Error,
    },
    #[error("{url}: the discovery document names issuer `{found}`, not the configured one")]
    IssuerMismatch { url: String, found: String },
}

/// A fetched document and how long the server says it stays fresh.
pub(crate) struct Fetched {
    pub body: Bytes,
    pub max_age: Option<Duration>,
}

/// The HTTP(S) client of one issuer.
pub(crate) struct HttpFetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

/// The fields of an OpenID discovery document scopegate reads.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl HttpFetcher {
    /// A client trusting only `ca` when given, else the system roots. `https_needed`:
    /// a configured URL is https, so missing system roots are an error now rather than
    /// a failed fetch later.
    pub fn new(ca: Option<&Path>, https_needed: bool) -> Result<Self, JwksError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = HttpsConnectorBuilder::new();
        let builder = match ca {
            Some(file) => {
                let roots = load_ca(file)?;
                let tls = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(JwksError::Tls)?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                builder.with_tls_config(tls)
            }
            None => match builder.with_provider_and_native_roots(provider.clone()) {
                Ok(b) => b,
                Err(e) if https_needed => return Err(JwksError::NoSystemRoots(e)),
                Err(_) => {
                    // Plain-http issuer on a machine without roots: an https `jwks_uri`
                    // named by its discovery document will fail to verify, never pass.
                    let tls = rustls::ClientConfig::builder_with_provider(provider)
                        .with_safe_default_protocol_versions()
                        .map_err(JwksError::Tls)?
                        .with_root_certificates(RootCertStore::empty())
                        .with_no_client_auth();
                    HttpsConnectorBuilder::new().with_tls_config(tls)
                }
            },
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let connector = builder.https_or_http().enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(HttpFetcher { client })
    }

    /// GETs `url`; only a 200 with a body under the size limit counts.
    pub async fn get(&self, url: &Uri) -> Result<Fetched, JwksError> {
        let fetch = async {
            let req = Request::get(url.clone())
                .header(ACCEPT, HeaderValue::from_static("application/json"))
                .body(Empty::new())
                .map_err(|_| JwksError::BadUrl {
                    url: url.to_string(),
                })?;
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|error| JwksError::Request {
                    url: url.to_string(),
                    cause: root_cause(&error),
                    error: Box::new(error),
                })?;
            if resp.status() != StatusCode::OK {
                return Err(JwksError::Status {
                    url: url.to_string(),
                    status: resp.status(),
                });
            }
            let max_age = max_age(resp.headers());
            let body = Limited::new(resp.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|_| JwksError::Body {
                    url: url.to_string(),
                })?
                .to_bytes();
            Ok(Fetched { body, max_age })
        };
        tokio::time::timeout(FETCH_TIMEOUT, fetch)
            .await
            .map_err(|_| JwksError::Timeout {
                url: url.to_string(),
            })?
    }

    /// Reads the discovery document at `url`, checks it speaks for `issuer` (OpenID
    /// Connect Discovery §4.3: they must be identical), and returns its `jwks_uri`.
    pub async fn discover(&self, url: &Uri, issuer: &str) -> Result<Uri, JwksError> {
        let fetched = self.get(url).await?;
        let doc: Discovery =
            serde_json::from_slice(&fetched.body).map_err(|error| JwksError::Discovery {
                url: url.to_string(),
                error,
            })?;
        if doc.issuer != issuer {
            return Err(JwksError::IssuerMismatch {
                url: url.to_string(),
                found: doc.issuer,
            });
        }
        parse_url(&doc.jwks_uri)
    }
}

/// An absolute `http` or `https` URL.
pub(crate) fn parse_url(url: &str) -> Result<Uri, JwksError> {
    let bad = || JwksError::BadUrl {
        url: url.to_string(),
    };
    let uri: Uri = url.parse().map_err(|_| bad())?;
    let scheme_ok = uri.scheme() == Some(&Scheme::HTTP) || uri.scheme() == Some(&Scheme::HTTPS);
    if !scheme_ok || uri.authority().is_none() {
        return Err(bad());
    }
    Ok(uri)
}

/// `Cache-Control: max-age=N` (RFC 9111 §5.2.2.1); `no-cache`/`no-store` mean "now".
pub(crate) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(text) = value.to_str() else { continue };
        for directive in text.split(',').map(str::trim) {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
                return Some(Duration::ZERO);
            }
            if name.eq_ignore_ascii_case("max-age")
                && let Some(secs) = arg.and_then(|a| a.parse::<u64>().ok())
            {
                found = Some(Duration::from_secs(secs));
            }
        }
    }
    found
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

fn load_ca(file: &Path) -> Result<RootCertStore, JwksError> {
    let certs = CertificateDer::pem_file_iter(file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| JwksError::CaRead {
            file: file.to_path_buf(),
            error,
        })?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(JwksError::CaEmpty {
            file: file.to_path_buf(),
        });
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cache_control_max_age() {
        let secs = |v: &[&str]| max_age(&headers(v)).map(|d| d.as_secs());
        assert_eq!(secs(&[]), None);
        assert_eq!(secs(&["public, max-age=3600"]), Some(3600));
        assert_eq!(secs(&["MAX-AGE=60, must-revalidate"]), Some(60));
        assert_eq!(secs(&["max-age=\"120\""]), Some(120));
        assert_eq!(secs(&["public", "max-age=7"]), Some(7));
        assert_eq!(secs(&["max-age=-1"]), None);
        assert_eq!(secs(&["max-age=soon"]), None);
        assert_eq!(secs(&["no-cache"]), Some(0));
        assert_eq!(secs(&["max-age=600, no-store"]), Some(0));
    }

    #[test]
    fn only_absolute_http_urls() {
        for ok in [
            "http://127.0.0.1:8080/jwks",
            "https://idp.example.com/.well-known/x",
        ] {
            assert!(parse_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/jwks",
            "ftp://idp/jwks",
            "idp.example.com/jwks",
            "",
            "https://",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ca_files_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here").unwrap();
        assert!(matches!(
            HttpFetcher::new(Some(&empty), true),
            Err(JwksError::CaEmpty { .. })
        ));
        assert!(matches!(
            HttpFetcher::new(Some(&dir.path().join("missing.pem")), true),
            Err(JwksError::CaRead { .. })
        ));
    }
}
