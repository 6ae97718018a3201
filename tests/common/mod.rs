//! Test harness for the gateway integration tests: a real gateway on 127.0.0.1:0 in
//! front of a real echo upstream, reached through a byte-counting TCP relay so a test
//! can tell whether anything at all reached the upstream.
//!
//! ```text
//! test client ──► gateway (App::serve) ──► relay (counts bytes) ──► EchoServer
//! ```
#![allow(dead_code)]

pub mod certs;
pub mod reload;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use scopegate::app::{App, Listeners};
use scopegate::auth::Authenticator;
use scopegate::config::Config;
use scopegate::policy::LivePolicy;
use scopegate::tooling::echo::EchoServer;
use scopegate::tooling::token::{TokenSpec, mint};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The reference policy of SPEC §3 (plus its one documented addition).
pub const ORDERS_POLICY: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/orders.yaml"));

/// The test API-key file (keys `test-api-key-1` and `test-api-key-2`).
pub const API_KEYS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/api_keys.yaml"
));

/// The HS256 secret the harness's issuer verifies with (given to `App::build` through
/// its `env` closure; the process environment is never touched).
pub const SECRET: &str = "integration-test-secret-0123456789abcdef0123456789";
const SECRET_ENV: &str = "SCOPEGATE_IT_SECRET";

/// Upper bound for any single network wait, so a broken gateway fails a test instead
/// of hanging the suite.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the gateway's `upstream.url` points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamKind {
    /// The echo server behind the counting relay.
    #[default]
    Echo,
    /// A 127.0.0.1 port that was bound and then closed: connections are refused.
    Closed,
    /// A test's own upstream (e.g. a deliberately misbehaving one) on this address.
    At(SocketAddr),
}

/// Everything a test may vary about the gateway it runs against.
#[derive(Debug, Clone, Default)]
pub struct Setup<'a> {
    /// The policy file's text.
    pub policy: &'a str,
    /// Top-level YAML appended to the config (`limits:`, `paths:`, `forwarded:`, ...).
    pub extra_config: &'a str,
    /// Extra keys of the `upstream:` section, one per line (e.g. `timeout: 200ms`).
    pub upstream_settings: &'a str,
    pub upstream: UpstreamKind,
    /// Copy the fixture API-key file next to the config and configure `auth.api_keys`.
    pub api_keys: bool,
    /// Use this `upstream.url` instead of the echo server (`upstream` is then ignored):
    /// for upstreams a test runs itself (TLS, WebSocket, gRPC).
    pub upstream_url: Option<&'a str>,
    /// More `auth.jwt.issuers` entries after the harness's own HS256 issuer, as YAML
    /// list items written at column 0 (`- issuer: ...`); the harness indents them.
    pub issuers: &'a str,
}

/// A running gateway + echo upstream; everything is torn down with the test's runtime.
pub struct Harness {
    /// The gateway's public address.
    pub addr: SocketAddr,
    /// The admin listener's address (`/metrics`, `/readyz`, `/v1/*`).
    pub admin_addr: SocketAddr,
    /// What the config's `upstream.url` names (the relay, or a closed port).
    pub upstream_addr: SocketAddr,
    /// Holds the config, policy and key files.
    pub dir: TempDir,
    /// The gateway's authenticator (readiness, as `/readyz` reports it).
    pub auth: Arc<Authenticator>,
    /// The policy in force, as requests load it.
    pub policy: Arc<LivePolicy>,
    pub config_path: PathBuf,
    relay: Option<Relay>,
    echo: Option<EchoServer>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Harness {
    /// A gateway on `policy_yaml` with `extra_config` (top-level YAML) appended to its config.
    pub async fn start(policy_yaml: &str, extra_config: &str) -> Harness {
        Harness::start_with(Setup {
            policy: policy_yaml,
            extra_config,
            ..Setup::default()
        })
        .await
    }

    /// The reference policy with default settings.
    pub async fn orders() -> Harness {
        Harness::start(ORDERS_POLICY, "").await
    }

    pub async fn start_with(setup: Setup<'_>) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("policy.yaml"), setup.policy).expect("write policy");

        let (echo, relay, upstream_addr) = match setup.upstream {
            _ if setup.upstream_url.is_some() => (None, None, closed_port().await),
            UpstreamKind::Echo => {
                let echo = EchoServer::start().await.expect("echo upstream");
                let relay = Relay::start(echo.addr).await;
                let addr = relay.addr;
                (Some(echo), Some(relay), addr)
            }
            UpstreamKind::Closed => (None, None, closed_port().await),
            UpstreamKind::At(addr) => (None, None, addr),
        };

        let url = match setup.upstream_url {
            Some(url) => url.to_string(),
            None => format!("http://{upstream_addr}"),
        };
        let mut upstream = format!("upstream:\n  url: {url}\n");
        for line in setup
            .upstream_settings
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            upstream.push_str("  ");
            upstream.push_str(line.trim());
            upstream.push('\n');
        }
        let api_keys = if setup.api_keys {
            std::fs::write(dir.path().join("api_keys.yaml"), API_KEYS).expect("write keys");
            "  api_keys:\n    file: api_keys.yaml\n"
        } else {
            ""
        };
        let mut issuers = String::new();
        for line in setup.issuers.lines().filter(|l| !l.trim().is_empty()) {
            issuers.push_str("      ");
            issuers.push_str(line);
            issuers.push('\n');
        }
        let config_text = format!(
            "listen: 127.0.0.1:0\n\
             admin:\n  listen: 127.0.0.1:0\n\
             {upstream}\
             auth:\n  jwt:\n    issuers:\n      - issuer: scopegate\n        \
             keys: [{{ alg: HS256, secret_env: {SECRET_ENV} }}]\n        \
             algorithms: [HS256]\n\
             {issuers}\
             {api_keys}\
             policy: policy.yaml\n\
             {}\n",
            setup.extra_config
        );
        let config_path = dir.path().join("scopegate.yaml");
        std::fs::write(&config_path, &config_text).expect("write config");
        let config = Config::from_str(&config_path, &config_text)
            .unwrap_or_else(|e| panic!("config refused: {e}\n---\n{config_text}"));
        let env = |name: &str| (name == SECRET_ENV).then(|| SECRET.to_string());
        let app = App::build(config, &env).unwrap_or_else(|e| panic!("app refused: {e}"));
        let auth = app.auth.clone();
        let policy = app.policy.clone();

        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let admin = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind admin");
        let admin_addr = admin.local_addr().expect("admin addr");
        let (tx, rx) = oneshot::channel::<()>();
        let listeners = Listeners {
            public: listener,
            admin,
        };
        let task = tokio::spawn(app.run(listeners, async move {
            let _ = rx.await;
        }));
        wait_until_accepting(addr).await;
        wait_until_accepting(admin_addr).await;
        Harness {
            addr,
            admin_addr,
            upstream_addr,
            dir,
            auth,
            policy,
            config_path,
            relay,
            echo,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Bytes the gateway has sent towards the upstream so far (0 if it never connected).
    pub fn upstream_bytes(&self) -> u64 {
        self.relay
            .as_ref()
            .map_or(0, |r| r.bytes.load(Ordering::SeqCst))
    }

    /// Connections the gateway has opened to the upstream so far.
    pub fn upstream_connections(&self) -> u64 {
        self.relay
            .as_ref()
            .map_or(0, |r| r.connections.load(Ordering::SeqCst))
    }

    /// Upstream connections open right now (opened and not yet closed by either side).
    pub fn upstream_open_connections(&self) -> u64 {
        self.relay
            .as_ref()
            .map_or(0, |r| r.open.load(Ordering::SeqCst))
    }

    /// Waits up to 3 s for the open upstream connections to fall to `n`, and returns
    /// how many are open then.
    pub async fn await_upstream_open(&self, n: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.upstream_open_connections() > n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.upstream_open_connections()
    }

    /// Closes every upstream connection open now, from the upstream's side.
    pub fn cut_upstream_connections(&self) {
        if let Some(r) = self.relay.as_ref() {
            r.cut.notify_waiters();
        }
    }

    /// Stops the gateway and the echo upstream and waits for both.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(IO_TIMEOUT, task).await;
        }
        if let Some(echo) = self.echo.take() {
            echo.shutdown().await;
        }
        if let Some(relay) = self.relay.take() {
            relay.accept.abort();
            let _ = relay.accept.await;
        }
    }

    // ---- tokens ----------------------------------------------------------------------

    /// An HS256 token of the harness issuer; `sub` empty = no `sub` claim; each extra
    /// claim value is taken as JSON when it parses as JSON (see `mint`).
    pub fn token(
        &self,
        roles: &[&str],
        scopes: &[&str],
        sub: &str,
        extra_claims: &[(&str, &str)],
    ) -> String {
        token_with_secret(SECRET.as_bytes(), roles, scopes, sub, extra_claims)
    }

    // ---- HTTP/1.1 client -------------------------------------------------------------

    /// One request on a fresh HTTP/1.1 connection; the body is collected.
    pub async fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Resp {
        self.request_body(method, target, headers, Empty::<Bytes>::new())
            .await
    }

    /// Like [`Harness::request`], with a request body.
    pub async fn request_body<B>(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: B,
    ) -> Resp
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let resp = self.request_streaming(method, target, headers, body).await;
        Resp::collect(resp).await
    }

    /// One request on a fresh HTTP/1.1 connection; the response body is left unread.
    pub async fn request_streaming<B>(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: B,
    ) -> Response<Incoming>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let stream = timeout(TcpStream::connect(self.addr))
            .await
            .expect("connect");
        let (mut sender, conn) =
            timeout(hyper::client::conn::http1::handshake(TokioIo::new(stream)))
                .await
                .expect("h1 handshake");
        tokio::spawn(conn);
        let mut req = Request::new(body);
        *req.method_mut() = Method::from_bytes(method.as_bytes()).expect("method");
        *req.uri_mut() = target.parse().expect("request target");
        req.headers_mut().insert(
            HOST,
            HeaderValue::from_str(&self.addr.to_string()).expect("host"),
        );
        add_headers(req.headers_mut(), headers);
        timeout(sender.send_request(req)).await.expect("h1 request")
    }

    // ---- admin listener --------------------------------------------------------------

    /// One request to the admin listener with an optional body; the answer is collected.
    pub async fn admin(&self, method: &str, path: &str, body: &str) -> Resp {
        let stream = timeout(TcpStream::connect(self.admin_addr))
            .await
            .expect("connect admin");
        let (mut sender, conn) =
            timeout(hyper::client::conn::http1::handshake(TokioIo::new(stream)))
                .await
                .expect("h1 handshake");
        tokio::spawn(conn);
        let mut req = Request::new(Full::new(Bytes::from(body.to_string())));
        *req.method_mut() = Method::from_bytes(method.as_bytes()).expect("method");
        *req.uri_mut() = path.parse().expect("admin path");
        req.headers_mut().insert(
            HOST,
            HeaderValue::from_str(&self.admin_addr.to_string()).expect("host"),
        );
        let resp = timeout(sender.send_request(req))
            .await
            .expect("admin request");
        Resp::collect(resp).await
    }

    /// `GET` on the admin listener.
    pub async fn admin_get(&self, path: &str) -> Resp {
        self.admin("GET", path, "").await
    }

    // ---- raw TCP ---------------------------------------------------------------------

    /// Writes `bytes` as-is on a fresh connection and reads until the server closes it.
    /// `None`: the connection closed (or was reset) without any response.
    pub async fn raw(&self, bytes: &[u8]) -> Option<Resp> {
        let mut stream = timeout(TcpStream::connect(self.addr))
            .await
            .expect("connect");
        // The server may answer and close before reading everything (e.g. 431).
        let _ = stream.write_all(bytes).await;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match tokio::time::timeout(IO_TIMEOUT, stream.read(&mut chunk)).await {
                Err(_) => panic!(
                    "raw: no end of response within {IO_TIMEOUT:?}; got so far: {:?}",
                    String::from_utf8_lossy(&buf)
                ),
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        if buf.is_empty() {
            None
        } else {
            Some(parse_raw_response(&buf))
        }
    }

    /// `raw`, for a request that must get an answer.
    pub async fn raw_ok(&self, bytes: &[u8]) -> Resp {
        self.raw(bytes)
            .await
            .expect("raw: the connection closed without a response")
    }

    /// A raw `GET target HTTP/1.1` with `Connection: close`, a Host and `headers`
    /// (each a whole `Name: value` line without CRLF).
    pub async fn raw_get(&self, target: &str, headers: &[&str]) -> Resp {
        self.raw_ok(raw_request("GET", target, headers).as_bytes())
            .await
    }

    // ---- HTTP/2 prior knowledge ------------------------------------------------------

    /// One request over HTTP/2 cleartext (prior knowledge) on a fresh connection.
    pub async fn h2_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Resp {
        let stream = timeout(TcpStream::connect(self.addr))
            .await
            .expect("connect");
        let (mut sender, conn) = timeout(hyper::client::conn::http2::handshake(
            TokioExecutor::new(),
            TokioIo::new(stream),
        ))
        .await
        .expect("h2 handshake");
        tokio::spawn(conn);
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::from_bytes(method.as_bytes()).expect("method");
        *req.uri_mut() = format!("http://{}{path}", self.addr).parse().expect("uri");
        *req.version_mut() = Version::HTTP_2;
        add_headers(req.headers_mut(), headers);
        let resp = timeout(sender.send_request(req)).await.expect("h2 request");
        Resp::collect(resp).await
    }
}

/// A raw HTTP/1.1 request text with a Host and `Connection: close`.
pub fn raw_request(method: &str, target: &str, headers: &[&str]) -> String {
    let mut s = format!("{method} {target} HTTP/1.1\r\nHost: gateway.test\r\n");
    for h in headers {
        s.push_str(h);
        s.push_str("\r\n");
    }
    s.push_str("Connection: close\r\n\r\n");
    s
}

/// Signs a token like [`Harness::token`] with any secret (for wrong-key tests).
pub fn token_with_secret(
    secret: &[u8],
    roles: &[&str],
    scopes: &[&str],
    sub: &str,
    extra_claims: &[(&str, &str)],
) -> String {
    let spec = TokenSpec {
        sub: (!sub.is_empty()).then(|| sub.to_string()),
        roles: roles.iter().map(|s| s.to_string()).collect(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        claims: extra_claims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..TokenSpec::default()
    };
    mint(secret, &spec).expect("mint token")
}

/// `Authorization: Bearer <token>` as a header pair.
pub fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

fn add_headers(map: &mut HeaderMap, headers: &[(&str, &str)]) {
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
}

async fn timeout<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(IO_TIMEOUT, f)
        .await
        .expect("network operation timed out")
}

/// Waits until the gateway accepts connections (by connecting, not by sleeping blindly).
async fn wait_until_accepting(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
    loop {
        match TcpStream::connect(addr).await {
            Ok(_) => return,
            Err(e) if tokio::time::Instant::now() > deadline => {
                panic!("gateway on {addr} never accepted a connection: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The absolute path of a test key in `tests/fixtures/keys` (e.g. `rsa1.pub.pem`).
pub fn fixture_key(name: &str) -> String {
    format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A 127.0.0.1 port that was just bound and released: nothing listens there.
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
    let addr = l.local_addr().expect("local addr");
    drop(l);
    addr
}

// ---- responses ---------------------------------------------------------------------------

/// A whole response: status, headers, body bytes.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub async fn collect(resp: Response<Incoming>) -> Resp {
        let (parts, body) = resp.into_parts();
        let body = timeout(body.collect())
            .await
            .expect("read response body")
            .to_bytes();
        Resp {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
        }
    }

    /// A header's single value as text (panics when repeated, so duplicates are noticed).
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut all = self.headers.get_all(name).iter();
        let first = all.next()?;
        assert!(
            all.next().is_none(),
            "header {name} is repeated: {:?}",
            self.headers
        );
        Some(first.to_str().expect("header value is text"))
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {} {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// True when the answer came from the echo upstream (it stamps `x-echo: 1`).
    pub fn is_from_upstream(&self) -> bool {
        self.headers.get("x-echo").is_some_and(|v| v == "1")
    }

    /// What the upstream received, parsed from the echo's JSON answer.
    pub fn echo(&self) -> Echo {
        assert!(
            self.is_from_upstream(),
            "expected an upstream answer, got {} {:?} {:?}",
            self.status,
            self.headers,
            String::from_utf8_lossy(&self.body)
        );
        Echo::parse(&self.json())
    }

    /// The status and the start of the body, for assertion messages.
    pub fn brief(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let cut: String = text.chars().take(400).collect();
        format!(
            "{} {cut}{}",
            self.status,
            if cut.len() < text.len() { "..." } else { "" }
        )
    }

    /// The `X-Request-Id` header (every answer must carry one).
    pub fn request_id(&self) -> &str {
        self.header("x-request-id")
            .unwrap_or_else(|| panic!("no X-Request-Id: {:?}", self.headers))
    }
}

/// What the echo upstream says it received.
#[derive(Debug, Clone)]
pub struct Echo {
    pub method: String,
    /// The request target's path exactly as received.
    pub path: String,
    pub query: Option<String>,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub version: String,
    /// Lower-case name → every value, in order.
    pub headers: BTreeMap<String, Vec<String>>,
    pub body_bytes: u64,
    pub body_sha256: String,
}

impl Echo {
    pub fn parse(v: &Value) -> Echo {
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("echo.{k}: {v}"))
                .to_string()
        };
        let headers = v["headers"]
            .as_object()
            .expect("echo.headers")
            .iter()
            .map(|(k, vals)| {
                let vals = vals
                    .as_array()
                    .expect("header values")
                    .iter()
                    .map(|x| x.as_str().expect("header value").to_string())
                    .collect();
                (k.clone(), vals)
            })
            .collect();
        Echo {
            method: s("method"),
            path: s("path"),
            query: v["query"].as_str().map(str::to_string),
            version: s("version"),
            headers,
            body_bytes: v["bodyBytes"].as_u64().expect("echo.bodyBytes"),
            body_sha256: s("bodySha256"),
        }
    }

    /// The single value of a header the upstream received (panics when repeated).
    pub fn header(&self, name: &str) -> Option<&str> {
        let vals = self.headers.get(&name.to_ascii_lowercase())?;
        assert_eq!(
            vals.len(),
            1,
            "upstream got {name} {} times: {vals:?}",
            vals.len()
        );
        Some(&vals[0])
    }

    pub fn has(&self, name: &str) -> bool {
        self.headers.contains_key(&name.to_ascii_lowercase())
    }

    /// Header names the upstream received that equal `name` once `_` is read as `-`
    /// (any case): every spelling a server might fold into `name`.
    pub fn spellings_of(&self, name: &str) -> Vec<&str> {
        let want = name.to_ascii_lowercase().replace('_', "-");
        self.headers
            .keys()
            .filter(|k| k.replace('_', "-") == want)
            .map(String::as_str)
            .collect()
    }
}

/// Asserts a gateway-made JSON denial: status, `name`, `reason`, `statusCode`, JSON
/// content type, `requestId` equal to the `X-Request-Id` header, not from the upstream.
pub fn assert_denial(resp: &Resp, status: u16, name: &str, reason: &str) -> Value {
    assert_eq!(resp.status.as_u16(), status, "status; got {}", resp.brief());
    assert!(
        !resp.is_from_upstream(),
        "a denial must come from the gateway"
    );
    let ct = resp.header("content-type").expect("content-type");
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let v = resp.json();
    assert_eq!(v["name"], name, "{v}");
    assert_eq!(v["reason"], reason, "{v}");
    assert_eq!(v["statusCode"], status, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    let id = resp.request_id();
    assert!(!id.is_empty());
    assert_eq!(v["requestId"], id, "{v}");
    v
}

// ---- raw response parsing ----------------------------------------------------------------

/// Parses one HTTP/1.x response (Content-Length, chunked, or read-to-close body).
pub fn parse_raw_response(raw: &[u8]) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).expect("head is text");
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let mut parts = status_line.splitn(3, ' ');
    let version = match parts.next() {
        Some("HTTP/1.1") => Version::HTTP_11,
        Some("HTTP/1.0") => Version::HTTP_10,
        other => panic!("status line {other:?}"),
    };
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("header line");
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).expect("header name"),
            HeaderValue::from_str(value.trim()).expect("header value"),
        );
    }
    let chunked = headers.get("transfer-encoding").is_some_and(|v| {
        v.to_str()
            .unwrap_or("")
            .to_ascii_lowercase()
            .contains("chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else if let Some(len) = headers.get("content-length") {
        let len: usize = len.to_str().unwrap().parse().expect("content-length");
        assert!(rest.len() >= len, "short body: {} of {len}", rest.len());
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Resp {
        status: StatusCode::from_u16(status).expect("status"),
        version,
        headers,
        body: Bytes::from(body),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&data[..line_end]).expect("chunk size");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("hex chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

// ---- bodies ------------------------------------------------------------------------------

/// The echo's download pattern (byte i = i % 251), generated on the fly as a streamed
/// request body in 64 KiB chunks without a length (so it travels chunked).
pub struct PatternUpload {
    sent: u64,
    len: u64,
}

impl PatternUpload {
    pub fn new(len: u64) -> PatternUpload {
        PatternUpload { sent: 0, len }
    }
}

impl Body for PatternUpload {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let n = (self.len - self.sent).min(64 * 1024);
        if n == 0 {
            return Poll::Ready(None);
        }
        let start = self.sent;
        let chunk: Vec<u8> = (start..start + n).map(|i| (i % 251) as u8).collect();
        self.sent += n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }

    fn is_end_stream(&self) -> bool {
        self.sent == self.len
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Hashes a response body frame by frame (never holding it whole): (length, hex sha256).
pub async fn hash_body(mut body: Incoming) -> (u64, String) {
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    while let Some(frame) = timeout(body.frame()).await {
        if let Some(data) = frame.expect("body frame").data_ref() {
            hasher.update(data);
            len += data.len() as u64;
        }
    }
    (len, hex(&hasher.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when a response has a JSON content type.
pub fn is_json(resp: &Resp) -> bool {
    resp.headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

// ---- counting relay ------------------------------------------------------------------------

/// A TCP relay in front of the echo server that counts what the gateway sends upstream,
/// so a test can prove that a refused request never reached it.
struct Relay {
    addr: SocketAddr,
    bytes: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    /// Connections accepted and not yet finished in both directions.
    open: Arc<AtomicU64>,
    /// Closes every open connection, as an upstream's keep-alive timeout would.
    cut: Arc<tokio::sync::Notify>,
    /// The accept loop, aborted by `Harness::stop` (so leak checks see it gone).
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let bytes = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let open = Arc::new(AtomicU64::new(0));
        let cut = Arc::new(tokio::sync::Notify::new());
        let (b, c, o, k) = (
            bytes.clone(),
            connections.clone(),
            open.clone(),
            cut.clone(),
        );
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                o.fetch_add(1, Ordering::SeqCst);
                let (b, o, k) = (b.clone(), o.clone(), k.clone());
                tokio::spawn(async move {
                    let cut = k.notified();
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        o.fetch_sub(1, Ordering::SeqCst);
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    let up = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match ri.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            b.fetch_add(n as u64, Ordering::SeqCst);
                            if wo.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = wo.shutdown().await;
                    };
                    let down = async {
                        let _ = tokio::io::copy(&mut ro, &mut wi).await;
                        let _ = wi.shutdown().await;
                    };
                    tokio::select! {
                        _ = async { tokio::join!(up, down) } => {}
                        _ = cut => {}
                    }
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Relay {
            addr,
            bytes,
            connections,
            open,
            cut,
            accept,
        }
    }
}
