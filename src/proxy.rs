//! The gateway service: normalize → look up → authenticate → decide → forward.
//!
//! One [`Gateway`] is shared by every connection. Each request loads the live policy
//! once and is decided on that snapshot to the end, even if a reload swaps it meanwhile.

mod access;
mod forward;
mod headers;
mod pool;
pub mod server;
mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderName, HeaderValue, Request, Response};
use hyper::body::Incoming;

use crate::auth::{AuthFailure, Authenticator, Principal};
use crate::config::Config;
use crate::decide::{self, Decision, NoTrace, Reason, Verdict};
use crate::normalize::{NormalizeOptions, normalize_path};
use crate::policy::{LivePolicy, Lookup, Policy};
use crate::respond::{self, Body, Refusal};
use crate::telemetry;
use crate::tls::{self, ClientCert};
use access::Access;

pub use forward::{Upstream, UpstreamError};

/// Errors building a gateway from its config.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("upstream: {0}")]
    Upstream(#[from] UpstreamError),
    #[error("identity_headers: `{0}` is not a valid header name")]
    HeaderName(String),
}

/// The shared state of a running gateway; cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    policy: Arc<LivePolicy>,
    auth: Arc<Authenticator>,
    upstream: Upstream,
    identity: IdentityNames,
    trusted: Vec<ipnet::IpNet>,
    normalize: NormalizeOptions,
}

/// The identity headers the gateway sets (and strips from clients).
#[derive(Clone)]
pub(crate) struct IdentityNames {
    pub subject: HeaderName,
    pub roles: HeaderName,
    pub scopes: HeaderName,
}

/// Facts about the connection a request came in on; one per connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub tls: bool,
    /// The client certificate the TLS layer verified (mTLS), if any.
    pub client_cert: Option<Arc<ClientCert>>,
}

impl Gateway {
    /// Builds the gateway around a live policy and an authenticator the caller keeps
    /// handles to (the reloader swaps the policy; API keys are swapped inside `auth`).
    pub fn new(
        config: &Config,
        policy: Arc<LivePolicy>,
        auth: Arc<Authenticator>,
    ) -> Result<Gateway, SetupError> {
        let name = |s: &str| {
            HeaderName::from_bytes(s.as_bytes()).map_err(|_| SetupError::HeaderName(s.to_string()))
        };
        let identity = IdentityNames {
            subject: name(&config.identity_headers.subject)?,
            roles: name(&config.identity_headers.roles)?,
            scopes: name(&config.identity_headers.scopes)?,
        };
        Ok(Gateway {
            inner: Arc::new(Inner {
                policy,
                auth,
                upstream: Upstream::new(&config.upstream)?,
                identity,
                trusted: config.forwarded.trusted_proxies.clone(),
                normalize: NormalizeOptions {
                    allow_semicolons: config.paths.allow_semicolons,
                },
            }),
        })
    }

    /// Handles one request from `peer`: refuses it here or streams it to the upstream.
    /// Every request ends in [`Access::finish`]: its metrics and its access-log line.
    pub async fn handle(&self, req: Request<Incoming>, peer: &Peer) -> Response<Body> {
        let start = Instant::now();
        let inner = &*self.inner;
        let request_id = headers::request_id(req.headers());
        let grpc = respond::is_grpc(req.headers());
        let method = telemetry::method_label(req.method());
        // A clone of the URI shares its bytes: the path can be borrowed while `req` moves on.
        let uri = req.uri().clone();
        let path = match normalize_path(uri.path(), inner.normalize) {
            Ok(p) => p,
            Err(e) => {
                let access = Access {
                    start,
                    request_id: &request_id,
                    method,
                    path: uri.path(),
                    route: None,
                    handles: &telemetry::NO_ROUTE,
                    decision: Verdict::Deny.as_str(),
                    reason: Reason::BadRequest.as_str(),
                    subject: "",
                    auth_error: "",
                    decision_time: start.elapsed(),
                    upstream_status: None,
                };
                tracing::debug!(request_id = ?request_id, error = %e, "refused: bad path");
                let detail = e.to_string();
                let r = Refusal {
                    detail: Some(&detail),
                    grpc,
                    ..Default::default()
                };
                let resp = respond::refusal(Reason::BadRequest, &request_id, &r);
                access.finish(resp.status());
                return resp;
            }
        };
        let policy = inner.policy.load();
        let lookup = policy.lookup(req.method(), &path);
        let auth = if decide::wants_credentials(&policy, &lookup) {
            let checked = inner.auth.authenticate(req.headers()).await;
            Some(checked.map(|p| with_connection_claims(p, peer)))
        } else {
            None
        };
        let checked = auth
            .as_ref()
            .map(|r| r.as_ref().map(|p| &**p).map_err(|e| *e));
        let decision = decide::decide(&policy, &lookup, checked, &mut NoTrace);
        let mut access = Access {
            start,
            request_id: &request_id,
            method,
            path: &path,
            route: decision.entry.map(|e| &e.pattern),
            handles: decision.entry.map_or(&telemetry::NO_ROUTE, |e| &e.metrics),
            decision: decision.verdict.as_str(),
            reason: decision.reason.map_or("", Reason::as_str),
            subject: match &auth {
                Some(Ok(p)) => p.subject.as_deref().unwrap_or(""),
                _ => "",
            },
            auth_error: match &auth {
                Some(Err(AuthFailure::Invalid(why))) => why.as_str(),
                Some(Err(AuthFailure::Expired)) => "expired",
                _ => "",
            },
            decision_time: start.elapsed(),
            upstream_status: None,
        };
        if decision.verdict == Verdict::Deny {
            let resp = refuse(
                &policy,
                &decision,
                &lookup,
                auth.as_ref(),
                &request_id,
                grpc,
            );
            access.finish(resp.status());
            return resp;
        }
        let principal = match (&auth, decision.passthrough) {
            (Some(Ok(p)), false) => Some(p.as_ref()),
            _ => None,
        };
        let identity = principal.map(|p| (p, &*policy));
        let forwarded = forward::Outgoing {
            path: &path,
            peer,
            request_id: &request_id,
            identity,
            names: &inner.identity,
            trusted: &inner.trusted,
        };
        let resp = match inner.upstream.send(req, forwarded).await {
            Ok(resp) => {
                telemetry::record_upstream_response(resp.status());
                access.upstream_status = Some(resp.status().as_u16());
                resp
            }
            Err(e) => {
                let reason = e.reason();
                telemetry::record_upstream_error(e.kind());
                tracing::warn!(request_id = ?request_id, error = %e, "upstream failed");
                respond::refusal(
                    reason,
                    &request_id,
                    &Refusal {
                        grpc,
                        ..Default::default()
                    },
                )
            }
        };
        access.finish(resp.status());
        resp
    }
}

/// Adds the verified client certificate's `x509.subject` / `x509.sans` claims, and
/// removes any `x509` claims the token brought itself: those facts come from the TLS
/// handshake only. Copies the principal only when there is something to change.
fn with_connection_claims(p: Arc<Principal>, peer: &Peer) -> Arc<Principal> {
    match &peer.client_cert {
        Some(cert) => {
            let mut p = Principal::clone(&p);
            cert.apply(&mut p.claims);
            Arc::new(p)
        }
        None if tls::has_token_x509(&p.claims) => {
            let mut p = Principal::clone(&p);
            tls::strip_token_x509(&mut p.claims);
            Arc::new(p)
        }
        None => p,
    }
}

/// Renders a denial with what the caller needs to fix it.
fn refuse(
    policy: &Policy,
    d: &Decision<'_>,
    lookup: &Lookup<'_, '_>,
    auth: Option<&Result<Arc<Principal>, AuthFailure>>,
    request_id: &HeaderValue,
    grpc: bool,
) -> Response<Body> {
    let reason = d.reason.unwrap_or(Reason::NoMatchingRoute);
    let credentials_sent = matches!(
        auth,
        Some(Ok(_)) | Some(Err(AuthFailure::Invalid(_) | AuthFailure::Expired))
    );
    let report = match (reason, d.rule, auth) {
        (Reason::InsufficientScope, Some(rule), Some(Ok(p))) => {
            decide::scope_report(policy, rule, p)
        }
        _ => Default::default(),
    };
    let allow = match lookup {
        Lookup::MethodNotAllowed(entry) => Some(&entry.allow),
        _ => None,
    };
    let r = Refusal {
        required: &report.required,
        missing: &report.missing,
        allow,
        detail: None,
        credentials_sent,
        grpc,
    };
    respond::refusal(reason, request_id, &r)
}
