//! TLS on the listener (ALPN, mTLS and its claims, certificate rotation on disk) and
//! HTTPS upstreams with a private CA, all with certificates made in the test.

mod common;

use std::path::Path;
use std::time::Duration;

use common::certs::{self, Ca, Leaf, Usage};
use common::*;
use scopegate::tooling::echo::EchoServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const POLICY: &str = r#"
version: 1
routes:
  - path: /health
    methods: [GET]
    public: true
  - path: /orders
    methods: [GET]
    scopes: [orders:read]
  - path: /services/{name}
    methods: [GET]
    scopes: [orders:read]
    require:
      name: { in: [claim:x509.sans] }
unmatched: deny
"#;

/// The gateway's certificate files, written under `dir`.
struct ServerFiles {
    ca: Ca,
    leaf: Leaf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn server_files(dir: &Path) -> ServerFiles {
    let ca = Ca::new("listener CA");
    let leaf = ca.leaf("gateway", &["127.0.0.1", "localhost"], Usage::Server);
    let cert = certs::write(dir, "tls.crt", &leaf.cert_pem);
    let key = certs::write(dir, "tls.key", &leaf.key_pem);
    ServerFiles {
        ca,
        leaf,
        cert,
        key,
    }
}

fn tls_config(files: &ServerFiles, client_ca: Option<&Path>) -> String {
    let mut s = format!(
        "tls:\n  cert: {}\n  key: {}\n",
        files.cert.display(),
        files.key.display()
    );
    if let Some(ca) = client_ca {
        s.push_str(&format!("  client_ca: {}\n", ca.display()));
    }
    s
}

fn token(h: &Harness, extra: &[(&str, &str)]) -> String {
    format!("Bearer {}", h.token(&[], &["orders:read"], "u1", extra))
}

#[tokio::test]
async fn https_serves_http1_and_http2_chosen_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let files = server_files(dir.path());
    let h = Harness::start(POLICY, &tls_config(&files, None)).await;
    let auth = token(&h, &[]);

    for (alpn, version, upstream_saw) in [
        (&b"http/1.1"[..], http::Version::HTTP_11, "HTTP/1.1"),
        (&b"h2"[..], http::Version::HTTP_2, "HTTP/1.1"),
    ] {
        let config = certs::client_config(&files.ca.pem, &[alpn], None);
        let stream = certs::connect(h.addr, config).await.expect("TLS handshake");
        assert_eq!(certs::alpn(&stream).as_deref(), Some(alpn));
        assert_eq!(certs::server_cert(&stream), files.leaf.der);
        let resp = certs::get(stream, "/orders", &[("authorization", &auth)])
            .await
            .expect("request over TLS");
        assert_eq!(resp.status, 200, "{}", resp.brief());
        assert_eq!(resp.version, version);
        let echo = resp.echo();
        assert_eq!(echo.path, "/orders");
        assert_eq!(echo.version, upstream_saw);
        assert_eq!(echo.header("x-forwarded-proto"), Some("https"));
    }

    // Denials are the gateway's own, over TLS too.
    let config = certs::client_config(&files.ca.pem, &[b"h2"], None);
    let stream = certs::connect(h.addr, config).await.unwrap();
    let resp = certs::get(stream, "/orders", &[]).await.unwrap();
    assert_denial(&resp, 401, "UnauthorizedError", "missing_credentials");

    // Plain HTTP on the TLS port gets no HTTP answer (at most a TLS alert).
    let mut plain = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(IO_TIMEOUT, plain.read_to_end(&mut got)).await;
    assert!(
        !got.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    h.stop().await;
}

#[tokio::test]
async fn mtls_refuses_clients_without_a_certificate_and_maps_the_certificate_to_claims() {
    let dir = tempfile::tempdir().unwrap();
    let files = server_files(dir.path());
    let client_ca = Ca::new("client CA");
    let client_ca_path = certs::write(dir.path(), "client-ca.crt", &client_ca.pem);
    let h = Harness::start(POLICY, &tls_config(&files, Some(&client_ca_path))).await;
    let auth = token(&h, &[]);

    // No client certificate: the handshake (or, with TLS 1.3, the first read) fails.
    let config = certs::client_config(&files.ca.pem, &[b"http/1.1"], None);
    let refused = match certs::connect(h.addr, config).await {
        Err(_) => true,
        Ok(stream) => certs::get(stream, "/health", &[]).await.is_err(),
    };
    assert!(refused, "a client without a certificate was served");

    // A certificate from another CA is refused as well.
    let stranger = Ca::new("other CA").leaf("intruder", &["intruder"], Usage::Client);
    let config = certs::client_config(&files.ca.pem, &[b"http/1.1"], Some(&stranger));
    let refused = match certs::connect(h.addr, config).await {
        Err(_) => true,
        Ok(stream) => certs::get(stream, "/health", &[]).await.is_err(),
    };
    assert!(
        refused,
        "a client certificate of an unknown CA was accepted"
    );

    // A good certificate: served, and its SANs feed `require` through `claim:x509.sans`.
    let good = client_ca.leaf("billing", &["billing", "billing.internal"], Usage::Client);
    let config = certs::client_config(&files.ca.pem, &[b"h2"], Some(&good));
    for (path, headers, status) in [
        ("/health", vec![], 200),
        (
            "/services/billing",
            vec![("authorization", auth.as_str())],
            200,
        ),
        (
            "/services/payroll",
            vec![("authorization", auth.as_str())],
            403,
        ),
        // A client certificate is not a credential: a token is still required.
        ("/services/billing", vec![], 401),
    ] {
        let stream = certs::connect(h.addr, config.clone()).await.expect("mTLS");
        let resp = certs::get(stream, path, &headers).await.expect("request");
        assert_eq!(resp.status, status, "{path}: {}", resp.brief());
        if status == 403 {
            assert_denial(&resp, 403, "ForbiddenError", "constraint_failed");
        }
    }

    // A token cannot bring its own x509 claims: the certificate's win.
    let forged = token(&h, &[("x509.sans", r#"["payroll"]"#)]);
    let stream = certs::connect(h.addr, config.clone()).await.unwrap();
    let resp = certs::get(stream, "/services/payroll", &[("authorization", &forged)])
        .await
        .unwrap();
    assert_denial(&resp, 403, "ForbiddenError", "constraint_failed");
    h.stop().await;
}

#[tokio::test]
async fn x509_claims_from_a_token_are_ignored_without_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let files = server_files(dir.path());
    let h = Harness::start(POLICY, &tls_config(&files, None)).await;
    for claims in [
        &[("x509.sans", r#"["billing"]"#)][..],
        &[("x509", r#"{"sans": ["billing"]}"#)][..],
    ] {
        let forged = token(&h, claims);
        let config = certs::client_config(&files.ca.pem, &[b"http/1.1"], None);
        let stream = certs::connect(h.addr, config).await.unwrap();
        let resp = certs::get(stream, "/services/billing", &[("authorization", &forged)])
            .await
            .unwrap();
        assert_denial(&resp, 403, "ForbiddenError", "constraint_failed");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_certificate_swapped_on_disk_is_served_to_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let files = server_files(dir.path());
    let h = Harness::start(POLICY, &tls_config(&files, None)).await;
    let config = certs::client_config(&files.ca.pem, &[b"http/1.1"], None);

    // A connection opened before the swap keeps working afterwards.
    let before = certs::connect(h.addr, config.clone()).await.unwrap();
    assert_eq!(certs::server_cert(&before), files.leaf.der);
    let io = hyper_util::rt::TokioIo::new(before);
    let (mut old_conn, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);

    // A broken pair on disk (new key, old certificate) is not taken: the old one stays.
    let rotated = files
        .ca
        .leaf("gateway-rotated", &["127.0.0.1"], Usage::Server);
    std::fs::write(&files.key, &rotated.key_pem).unwrap();
    tokio::time::sleep(scopegate::tls::RELOAD_INTERVAL * 2).await;
    let stream = certs::connect(h.addr, config.clone()).await.unwrap();
    assert_eq!(
        certs::server_cert(&stream),
        files.leaf.der,
        "a mismatched pair was loaded"
    );
    drop(stream);

    // The matching certificate arrives: new connections get it within a few periods.
    std::fs::write(&files.cert, &rotated.cert_pem).unwrap();
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
    loop {
        let stream = certs::connect(h.addr, config.clone()).await.unwrap();
        if certs::server_cert(&stream) == rotated.der {
            let resp = certs::get(stream, "/health", &[]).await.unwrap();
            assert_eq!(resp.status, 200);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotated certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut req = http::Request::new(http_body_util::Empty::<bytes::Bytes>::new());
    *req.uri_mut() = "/health".parse().unwrap();
    req.headers_mut()
        .insert(http::header::HOST, "gateway.test".parse().unwrap());
    let resp = old_conn
        .send_request(req)
        .await
        .expect("old connection still open");
    assert_eq!(resp.status(), 200);
    h.stop().await;
}

/// An HTTPS upstream (the echo server behind a TLS front) signed by a private CA.
async fn https_upstream(http2: bool, trust: &str) -> (Harness, EchoServer) {
    let upstream_ca = Ca::new("upstream CA");
    let leaf = upstream_ca.leaf("upstream", &["127.0.0.1"], Usage::Server);
    let echo = EchoServer::start().await.expect("echo");
    let front = certs::tls_front(echo.addr, certs::server_config(&leaf)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_pem = if trust == "private" {
        upstream_ca.pem.clone()
    } else {
        Ca::new("unrelated CA").pem
    };
    let ca = certs::write(dir.path(), "upstream-ca.crt", &ca_pem);
    let url = format!("https://{front}");
    let settings = format!("ca: {}\nhttp2: {http2}\n", ca.display());
    let h = Harness::start_with(Setup {
        policy: POLICY,
        upstream_url: Some(&url),
        upstream_settings: &settings,
        ..Setup::default()
    })
    .await;
    // The CA file is read at start; the directory may go now.
    drop(dir);
    (h, echo)
}

#[tokio::test]
async fn https_upstream_with_a_private_ca_over_http1_and_http2() {
    for (http2, version) in [(false, "HTTP/1.1"), (true, "HTTP/2.0")] {
        let (h, echo) = https_upstream(http2, "private").await;
        let auth = token(&h, &[]);
        let resp = h
            .request("GET", "/orders?x=1", &[("authorization", &auth)])
            .await;
        assert_eq!(resp.status, 200, "{}", resp.brief());
        let seen = resp.echo();
        assert_eq!(seen.path, "/orders");
        assert_eq!(seen.query.as_deref(), Some("x=1"));
        assert_eq!(seen.version, version);
        h.stop().await;
        echo.shutdown().await;
    }
}

#[tokio::test]
async fn https_upstream_with_an_untrusted_certificate_is_a_502() {
    let (h, echo) = https_upstream(false, "unrelated").await;
    let auth = token(&h, &[]);
    let resp = h
        .request("GET", "/orders", &[("authorization", &auth)])
        .await;
    assert_denial(&resp, 502, "BadGatewayError", "upstream_unavailable");
    h.stop().await;
    echo.shutdown().await;
}
