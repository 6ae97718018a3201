//! One request decided by the gateway's own steps, with what it would forward.

use http::Method;

use super::CaseRequest;
use crate::auth::{AuthFailure, Principal};
use crate::decide::{self, Verdict};
use crate::normalize::{NormalizeOptions, normalize_path};
use crate::policy::Policy;

/// What the gateway would do with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The status the client gets; 200 stands for "forwarded to the upstream".
    pub status: u16,
    pub reason: Option<String>,
    /// For `insufficient_scope`: the scopes the caller lacks.
    pub missing_scopes: Vec<String>,
    /// The identity headers set on the forwarded request; `None` when nothing is
    /// forwarded or no valid caller identity goes with it.
    pub identity: Option<ForwardedIdentity>,
}

/// The identity header values, as the proxy would set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedIdentity {
    pub subject: Option<String>,
    pub roles: String,
    pub scopes: String,
}

/// Decides `req` for a caller: `None` sent no credentials, `Some(Err)` sent bad ones.
pub fn evaluate(
    policy: &Policy,
    req: &CaseRequest,
    caller: Option<Result<&Principal, AuthFailure>>,
    opts: NormalizeOptions,
    trace: &mut Vec<String>,
) -> Evaluation {
    let refused = |reason: &str| Evaluation {
        status: 400,
        reason: Some(reason.to_string()),
        missing_scopes: Vec::new(),
        identity: None,
    };
    let Ok(method) = Method::from_bytes(req.method.as_bytes()) else {
        trace.push(format!("1. method `{}` is not an HTTP method", req.method));
        return refused("bad_request");
    };
    let path = match normalize_path(&req.path, opts) {
        Ok(p) => p,
        Err(e) => {
            trace.push(format!("1. path refused: {e}"));
            return refused("bad_request");
        }
    };
    trace.push(format!("1. path: {path}"));
    let lookup = policy.lookup(&method, &path);
    let auth = caller.unwrap_or(Err(AuthFailure::Missing));
    let d = decide::decide(policy, &lookup, Some(auth), trace);
    let principal = auth.ok();
    let missing_scopes = match (d.rule, principal, d.reason) {
        (Some(rule), Some(p), Some(decide::Reason::InsufficientScope)) => {
            decide::scope_report(policy, rule, p)
                .missing
                .into_iter()
                .map(String::from)
                .collect()
        }
        _ => Vec::new(),
    };
    let status = match d.verdict {
        Verdict::Deny => d.reason.map_or(403, |r| r.status()),
        Verdict::Allow | Verdict::ShadowDeny => 200,
    };
    // As the proxy does: a forwarded request carries the identity of a valid caller,
    // except on the unauthenticated pass-through of `unmatched: allow`.
    let identity = principal
        .filter(|_| d.forwards() && !d.passthrough)
        .map(|p| {
            let id = decide::identity(policy, p);
            ForwardedIdentity {
                subject: id.subject.map(String::from),
                roles: id.roles.join(" "),
                scopes: id.scopes.join(" "),
            }
        });
    Evaluation {
        status,
        reason: d.reason.map(|r| r.as_str().to_string()),
        missing_scopes,
        identity,
    }
}
