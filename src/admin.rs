//! The admin listener: `/metrics`, `/healthz`, `/readyz` and the `/v1/*` API, on its
//! own address (loopback by default) and never reachable through the proxy port.
//!
//! It also runs the Prometheus recorder's upkeep, so histograms stay bounded without a
//! second HTTP server or thread.

mod v1;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::normalize::NormalizeOptions;
use crate::policy::LivePolicy;

/// How often the recorder's histograms are drained even when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The content type Prometheus expects for the text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything the admin endpoints read; cheap to clone.
#[derive(Clone)]
pub struct Admin {
    inner: Arc<Inner>,
}

struct Inner {
    policy: Arc<LivePolicy>,
    auth: Arc<Authenticator>,
    metrics: PrometheusHandle,
    normalize: NormalizeOptions,
    draining: Arc<AtomicBool>,
}

impl Admin {
    /// `draining` turns `/readyz` to 503 as soon as it is set (at the first shutdown signal).
    pub fn new(
        policy: Arc<LivePolicy>,
        auth: Arc<Authenticator>,
        metrics: PrometheusHandle,
        normalize: NormalizeOptions,
        draining: Arc<AtomicBool>,
    ) -> Admin {
        Admin {
            inner: Arc::new(Inner {
                policy,
                auth,
                metrics,
                normalize,
                draining,
            }),
        }
    }

    /// Ready: a policy is loaded (always, once built), every issuer has keys, and the
    /// process is not shutting down.
    pub fn is_ready(&self) -> bool {
        !self.inner.draining.load(Ordering::SeqCst) && self.inner.auth.is_ready()
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        let get = |allowed: bool, f: &dyn Fn() -> Response<Full<Bytes>>| {
            if allowed {
                f()
            } else {
                method_not_allowed("GET, HEAD")
            }
        };
        let is_get = method == Method::GET || method == Method::HEAD;
        match path.as_str() {
            "/metrics" => get(is_get, &|| {
                text(StatusCode::OK, PROMETHEUS_TEXT, self.inner.metrics.render())
            }),
            "/healthz" => get(is_get, &|| {
                text(StatusCode::OK, "text/plain", "ok\n".into())
            }),
            "/readyz" => get(is_get, &|| {
                if self.is_ready() {
                    text(StatusCode::OK, "text/plain", "ready\n".into())
                } else {
                    text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        "not ready\n".into(),
                    )
                }
            }),
            "/v1/policy" => get(is_get, &|| {
                json(StatusCode::OK, &v1::policy(&self.inner.policy))
            }),
            "/v1/scopes" => get(is_get, &|| {
                json(StatusCode::OK, &v1::scopes(&self.inner.policy.load()))
            }),
            "/v1/roles" => get(is_get, &|| {
                json(StatusCode::OK, &v1::roles(&self.inner.policy.load()))
            }),
            "/v1/explain" if method == Method::POST => {
                v1::explain(
                    req,
                    &self.inner.policy.load(),
                    &self.inner.auth,
                    self.inner.normalize,
                )
                .await
            }
            "/v1/explain" => method_not_allowed("POST"),
            p if p.starts_with("/v1/roles/") => get(is_get, &|| {
                v1::role(&self.inner.policy.load(), &p["/v1/roles/".len()..])
            }),
            _ => error(
                StatusCode::NOT_FOUND,
                "NotFoundError",
                "No such admin endpoint",
            ),
        }
    }
}

/// Serves the admin endpoints on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, admin: Admin, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut upkeep = tokio::time::interval(UPKEEP_EVERY);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = upkeep.tick() => {
                admin.inner.metrics.run_upkeep();
                crate::telemetry::refresh_gauges();
                continue;
            }
            () = &mut shutdown => break,
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(admin.handle(req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "admin connection ended with an error");
            }
        });
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            *resp.status_mut() = status;
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("cannot render JSON: {e}\n"),
        ),
    }
}

/// An error in the gateway's JSON error shape (`message`, `statusCode`, `name`).
fn error(status: StatusCode, name: &'static str, message: &str) -> Response<Full<Bytes>> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        message: &'a str,
        status_code: u16,
        name: &'static str,
    }
    json(
        status,
        &Body {
            message,
            status_code: status.as_u16(),
            name,
        },
    )
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut resp = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowedError",
        "Method not allowed",
    );
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    resp
}
