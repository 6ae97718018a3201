//! A loopback identity provider the tests control: it serves an OpenID discovery
//! document and a JWKS (over HTTP, or HTTPS with the fixture certificate), counts every
//! fetch, and can be taken "down" (503) and rotated at will. Tokens are signed with the
//! fixture keys in tests/fixtures/keys.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The issuer name the loopback IdP's tokens carry.
pub const ISSUER: &str = "http://idp.test/";

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// One fixture key pair as an IdP would publish and use it.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// File stem in tests/fixtures/keys (`rsa1`, `ec256`, `ed25519`, ...).
    pub name: &'static str,
    pub alg: Algorithm,
    pub kid: &'static str,
}

pub const RSA1: Key = Key {
    name: "rsa1",
    alg: Algorithm::RS256,
    kid: "rsa-1",
};
pub const RSA2: Key = Key {
    name: "rsa2",
    alg: Algorithm::RS256,
    kid: "rsa-2",
};
pub const EC256: Key = Key {
    name: "ec256",
    alg: Algorithm::ES256,
    kid: "ec-1",
};
pub const ED25519: Key = Key {
    name: "ed25519",
    alg: Algorithm::EdDSA,
    kid: "ed-1",
};

impl Key {
    /// The public key as a JWK (what the JWKS lists).
    pub fn jwk(&self) -> Value {
        let pem = std::fs::read(fixture(&format!("keys/{}.pub.pem", self.name))).unwrap();
        let key = match self.alg {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 => DecodingKey::from_ec_pem(&pem),
            _ => DecodingKey::from_ed_pem(&pem),
        }
        .unwrap();
        let mut jwk = Jwk::from_decoding_key(&key, Some(self.alg)).unwrap();
        jwk.common.key_id = Some(self.kid.to_string());
        let mut v = serde_json::to_value(jwk).unwrap();
        v["use"] = json!("sig");
        v
    }

    /// A token of [`ISSUER`] signed with this key, valid for 10 minutes.
    pub fn token(&self, sub: &str, scope: &str) -> String {
        self.token_with_kid(self.kid, sub, scope)
    }

    /// Like [`Key::token`] but naming `kid` in the header.
    pub fn token_with_kid(&self, kid: &str, sub: &str, scope: &str) -> String {
        let pem = std::fs::read(fixture(&format!("keys/{}.key.pem", self.name))).unwrap();
        let key = match self.alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            _ => EncodingKey::from_ed_pem(&pem),
        }
        .unwrap();
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_string());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = json!({
            "iss": ISSUER, "sub": sub, "aud": "orders-api", "scope": scope,
            "iat": now, "exp": now + 600,
        });
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }
}

/// What the IdP serves right now.
struct State {
    keys: Vec<Value>,
    /// The `issuer` its discovery document claims.
    discovery_issuer: String,
    cache_control: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    up: AtomicBool,
    jwks_fetches: AtomicU64,
    discovery_fetches: AtomicU64,
    connections: AtomicU64,
    base: String,
}

/// A running loopback IdP; stops with the test's runtime.
pub struct Idp {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Idp {
    /// An IdP over plain HTTP publishing `keys`.
    pub async fn start(keys: &[Key]) -> Idp {
        Idp::start_inner(keys, false).await
    }

    /// An IdP over HTTPS (certificate for 127.0.0.1 from tests/fixtures/idp-tls/ca.pem).
    pub async fn start_tls(keys: &[Key]) -> Idp {
        Idp::start_inner(keys, true).await
    }

    async fn start_inner(keys: &[Key], tls: bool) -> Idp {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls { "https" } else { "http" };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                keys: keys.iter().map(Key::jwk).collect(),
                discovery_issuer: ISSUER.to_string(),
                cache_control: None,
            }),
            up: AtomicBool::new(true),
            jwks_fetches: AtomicU64::new(0),
            discovery_fetches: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            base: format!("{scheme}://{addr}"),
        });
        let acceptor = tls.then(tls_acceptor);
        let task = tokio::spawn(serve(listener, shared.clone(), acceptor));
        Idp { addr, shared, task }
    }

    /// `http(s)://127.0.0.1:port`.
    pub fn base(&self) -> &str {
        &self.shared.base
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.base())
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.base())
    }

    /// Publishes exactly `keys` from now on.
    pub fn set_keys(&self, keys: &[Key]) {
        self.shared.state.lock().unwrap().keys = keys.iter().map(Key::jwk).collect();
    }

    /// Publishes raw JWK values (for keys the gateway must ignore).
    pub fn set_raw_keys(&self, keys: Vec<Value>) {
        self.shared.state.lock().unwrap().keys = keys;
    }

    pub fn set_discovery_issuer(&self, issuer: &str) {
        self.shared.state.lock().unwrap().discovery_issuer = issuer.to_string();
    }

    pub fn set_cache_control(&self, value: Option<&str>) {
        self.shared.state.lock().unwrap().cache_control = value.map(String::from);
    }

    /// Down: every request gets 503 (still counted).
    pub fn set_up(&self, up: bool) {
        self.shared.up.store(up, Ordering::SeqCst);
    }

    pub fn jwks_fetches(&self) -> u64 {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// TCP connections accepted (also those whose TLS handshake then failed).
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    pub fn discovery_fetches(&self) -> u64 {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Waits (bounded) until the JWKS has been fetched more than `n` times.
    pub async fn wait_for_jwks_fetches_over(&self, n: u64) {
        wait_until(&format!("more than {n} JWKS fetches"), || {
            self.jwks_fetches() > n
        })
        .await;
    }
}

/// Polls `cond` every 10 ms for up to 15 s; panics naming `what` if it never holds.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(fixture("idp-tls/server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("idp-tls/server.key.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, tls: Option<tokio_rustls::TlsAcceptor>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(answer(&shared, req)) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let _ = match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => builder.serve_connection(TokioIo::new(s), service).await,
                    Err(_) => return,
                },
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
            };
        });
    }
}

fn answer(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    match path {
        "/jwks" => shared.jwks_fetches.fetch_add(1, Ordering::SeqCst),
        "/.well-known/openid-configuration" => {
            shared.discovery_fetches.fetch_add(1, Ordering::SeqCst)
        }
        _ => 0,
    };
    let reply = |status: StatusCode, body: Value, cache: Option<&str>| {
        let mut b = Response::builder()
            .status(status)
            .header(CONTENT_TYPE, "application/json");
        if let Some(c) = cache {
            b = b.header(CACHE_CONTROL, c);
        }
        b.body(Full::new(Bytes::from(body.to_string()))).unwrap()
    };
    if !shared.up.load(Ordering::SeqCst) {
        return reply(StatusCode::SERVICE_UNAVAILABLE, json!({}), None);
    }
    let state = shared.state.lock().unwrap();
    match path {
        "/jwks" => reply(
            StatusCode::OK,
            json!({ "keys": state.keys }),
            state.cache_control.as_deref(),
        ),
        "/.well-known/openid-configuration" => reply(
            StatusCode::OK,
            json!({
                "issuer": state.discovery_issuer,
                "jwks_uri": format!("{}/jwks", shared.base),
                "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            }),
            None,
        ),
        _ => reply(StatusCode::NOT_FOUND, json!({}), None),
    }
}
