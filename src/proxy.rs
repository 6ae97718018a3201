//! The gateway service: normalize → look up → authenticate → decide → forward.
//!
//! One [`Gateway`] is shared by every connection. Each request loads the live policy
//! once and is decided on that snapshot to the end, even if a reload swaps it meanwhile.

mod forward;
mod headers;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderName, HeaderValue, Request, Response};
use hyper::body::Incoming;

use crate::auth::{AuthFailure, Authenticator, Principal};
use crate::config::Config;
use crate::decide::{self, Decision, NoTrace, Reason, Verdict};
use crate::normalize::{NormalizeOptions, normalize_path};
use crate::policy::{LivePolicy, Lookup, Policy};
use crate::respond::{self, Body, Refusal};

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

/// Facts about the connection a request came in on.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    pub tls: bool,
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
    pub async fn handle(&self, req: Request<Incoming>, peer: Peer) -> Response<Body> {
        let inner = &*self.inner;
        let request_id = headers::request_id(req.headers());
        let grpc = respond::is_grpc(req.headers());
        // A clone of the URI shares its bytes: the path can be borrowed while `req` moves on.
        let uri = req.uri().clone();
        let path = match normalize_path(uri.path(), inner.normalize) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(request_id = ?request_id, error = %e, "refused: bad path");
                let detail = e.to_string();
                let r = Refusal {
                    detail: Some(&detail),
                    grpc,
                    ..Default::default()
                };
                return respond::refusal(Reason::BadRequest, &request_id, &r);
            }
        };
        let policy = inner.policy.load();
        let lookup = policy.lookup(req.method(), &path);
        let auth = if decide::wants_credentials(&policy, &lookup) {
            Some(inner.auth.authenticate(req.headers()).await)
        } else {
            None
        };
        let checked = auth
            .as_ref()
            .map(|r| r.as_ref().map(|p| &**p).map_err(|e| *e));
        let decision = decide::decide(&policy, &lookup, checked, &mut NoTrace);
        log_decision(&req, &path, &decision, &request_id, auth.as_ref());
        if decision.verdict == Verdict::Deny {
            return refuse(
                &policy,
                &decision,
                &lookup,
                auth.as_ref(),
                &request_id,
                grpc,
            );
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
        match inner.upstream.send(req, forwarded).await {
            Ok(resp) => resp,
            Err(e) => {
                let reason = e.reason();
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
        }
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

fn log_decision(
    req: &Request<Incoming>,
    path: &str,
    d: &Decision<'_>,
    request_id: &HeaderValue,
    auth: Option<&Result<Arc<Principal>, AuthFailure>>,
) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let subject = match auth {
        Some(Ok(p)) => p.subject.as_deref().unwrap_or(""),
        _ => "",
    };
    let auth_error = match auth {
        Some(Err(AuthFailure::Invalid(why))) => why.as_str(),
        Some(Err(AuthFailure::Expired)) => "expired",
        _ => "",
    };
    tracing::debug!(
        request_id = request_id.to_str().unwrap_or(""),
        method = %req.method(),
        path,
        route = d.route_label(),
        decision = d.verdict.as_str(),
        reason = d.reason.map_or("", Reason::as_str),
        subject,
        auth_error,
        "decision"
    );
}
