//! gRPC through the gateway: a real tonic service (the standard health service) behind
//! `upstream.http2: true`, called with tonic's generated client. gRPC paths are
//! ordinary policy routes; refusals reach the client as gRPC statuses.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::*;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tonic::codegen::Service;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as Wire;
use tonic_health::pb::health_client::HealthClient;

const SERVICE: &str = "orders.v1.Orders";

const POLICY: &str = r#"
version: 1
routes:
  - path: /grpc.health.v1.Health/Check
    methods: [POST]
    scopes: [health:read]
unmatched: deny
"#;

/// The tonic health service on its own port, counting connections and noting whether
/// requests arrived with `te: trailers`.
struct GrpcUpstream {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
    te_trailers: Arc<AtomicBool>,
}

async fn grpc_upstream() -> GrpcUpstream {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(SERVICE, ServingStatus::Serving)
        .await;
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicU64::new(0));
    let te_trailers = Arc::new(AtomicBool::new(false));
    let (count, te) = (connections.clone(), te_trailers.clone());
    tokio::spawn(async move {
        let _reporter = reporter;
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let health = health.clone();
            let te = te.clone();
            let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                if req.headers().get("te").is_some_and(|v| v == "trailers") {
                    te.store(true, Ordering::SeqCst);
                }
                health.clone().call(req)
            });
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .http2_only()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    GrpcUpstream {
        addr,
        connections,
        te_trailers,
    }
}

async fn gateway(upstream: SocketAddr) -> Harness {
    let url = format!("http://{upstream}");
    Harness::start_with(Setup {
        policy: POLICY,
        upstream_url: Some(&url),
        upstream_settings: "http2: true",
        ..Setup::default()
    })
    .await
}

/// Calls `Health/Check` through the gateway with tonic's generated client over h2c.
async fn check(h: &Harness, authorization: Option<&str>) -> Result<Wire, tonic::Status> {
    let client: Client<HttpConnector, tonic::body::Body> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let origin = format!("http://{}", h.addr).parse().unwrap();
    call(HealthClient::with_origin(client, origin), authorization).await
}

async fn call<T>(
    mut health: HealthClient<T>,
    authorization: Option<&str>,
) -> Result<Wire, tonic::Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: SERVICE.into(),
    });
    if let Some(a) = authorization {
        req.metadata_mut()
            .insert("authorization", a.parse().unwrap());
    }
    let resp = tokio::time::timeout(IO_TIMEOUT, health.check(req))
        .await
        .expect("gRPC call timed out")?;
    Ok(resp.into_inner().status())
}

#[tokio::test]
async fn an_allowed_grpc_call_reaches_the_tonic_service() {
    let upstream = grpc_upstream().await;
    let h = gateway(upstream.addr).await;
    let token = format!("Bearer {}", h.token(&[], &["health:read"], "svc", &[]));
    let status = check(&h, Some(&token)).await.expect("call allowed");
    assert_eq!(status, Wire::Serving);
    assert!(
        upstream.te_trailers.load(Ordering::SeqCst),
        "te: trailers was not forwarded to the HTTP/2 upstream"
    );
    h.stop().await;
}

#[tokio::test]
async fn denied_grpc_calls_get_grpc_statuses_and_never_reach_the_service() {
    let upstream = grpc_upstream().await;
    let h = gateway(upstream.addr).await;
    let wrong_scope = format!("Bearer {}", h.token(&[], &["orders:read"], "svc", &[]));

    let denied = check(&h, Some(&wrong_scope))
        .await
        .expect_err("call denied");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    assert!(!denied.message().is_empty());

    let denied = check(&h, None).await.expect_err("call denied");
    assert_eq!(denied.code(), tonic::Code::Unauthenticated, "{denied:?}");

    let bad = format!(
        "Bearer {}",
        token_with_secret(
            b"another-secret-entirely-0123456789",
            &[],
            &["health:read"],
            "svc",
            &[]
        )
    );
    let denied = check(&h, Some(&bad)).await.expect_err("call denied");
    assert_eq!(denied.code(), tonic::Code::Unauthenticated, "{denied:?}");

    assert_eq!(
        upstream.connections.load(Ordering::SeqCst),
        0,
        "a denied call reached the gRPC service"
    );
    h.stop().await;
}

#[tokio::test]
async fn grpc_over_tls_with_alpn_h2() {
    let upstream = grpc_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::Ca::new("listener CA");
    let leaf = ca.leaf("gateway", &["127.0.0.1"], certs::Usage::Server);
    let cert = certs::write(dir.path(), "tls.crt", &leaf.cert_pem);
    let key = certs::write(dir.path(), "tls.key", &leaf.key_pem);
    let tls = format!(
        "tls:\n  cert: {}\n  key: {}\n",
        cert.display(),
        key.display()
    );
    let url = format!("http://{}", upstream.addr);
    let h = Harness::start_with(Setup {
        policy: POLICY,
        extra_config: &tls,
        upstream_url: Some(&url),
        upstream_settings: "http2: true",
        ..Setup::default()
    })
    .await;
    // The connector sets ALPN h2 itself, so the config must come without any.
    let config = Arc::unwrap_or_clone(certs::client_config(&ca.pem, &[], None));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http2()
        .build();
    let client: Client<_, tonic::body::Body> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(https);
    let origin: http::Uri = format!("https://{}", h.addr).parse().unwrap();

    let token = format!("Bearer {}", h.token(&[], &["health:read"], "svc", &[]));
    let status = call(
        HealthClient::with_origin(client.clone(), origin.clone()),
        Some(&token),
    )
    .await
    .expect("call allowed over TLS");
    assert_eq!(status, Wire::Serving);
    let denied = call(HealthClient::with_origin(client, origin), None)
        .await
        .expect_err("call denied over TLS");
    assert_eq!(denied.code(), tonic::Code::Unauthenticated, "{denied:?}");
    h.stop().await;
}
