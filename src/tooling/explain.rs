//! `scopegate explain` (and later `POST /v1/explain`): one decision, with every step
//! that led to it, made by the same code the gateway runs.

use http::Method;
use serde::Serialize;

use crate::auth::{AuthFailure, Principal};
use crate::decide::{self, Verdict};
use crate::normalize::{NormalizeOptions, normalize_path};
use crate::policy::Policy;

/// The answer to "what would the gateway do with this request?".
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub decision: &'static str,
    pub status: u16,
    pub reason: Option<&'static str>,
    pub route: Option<String>,
    pub required_scopes: Vec<String>,
    pub missing_scopes: Vec<String>,
    pub effective_scopes: Vec<String>,
    pub trace: Vec<String>,
}

/// Decides `method path` for a caller: `None` sent no credentials, `Some(Err)` sent bad ones.
pub fn explain(
    policy: &Policy,
    method: &Method,
    path: &str,
    caller: Option<Result<Principal, AuthFailure>>,
    opts: NormalizeOptions,
) -> Explanation {
    let mut trace = Vec::new();
    let path = match normalize_path(path, opts) {
        Ok(p) => p,
        Err(e) => {
            trace.push(format!("1. path refused: {e}"));
            return Explanation {
                decision: "deny",
                status: 400,
                reason: Some("bad_request"),
                route: None,
                required_scopes: Vec::new(),
                missing_scopes: Vec::new(),
                effective_scopes: Vec::new(),
                trace,
            };
        }
    };
    trace.push(format!("1. path: {path}"));
    let lookup = policy.lookup(method, &path);
    let auth = caller
        .as_ref()
        .map_or(Err(AuthFailure::Missing), |c| c.as_ref().map_err(|e| *e));
    let d = decide::decide(policy, &lookup, Some(auth), &mut trace);
    let principal = auth.ok();
    let report = match (d.rule, principal) {
        (Some(rule), Some(p)) => decide::scope_report(policy, rule, p),
        _ => Default::default(),
    };
    let effective = principal
        .map(|p| decide::effective_scopes(policy, p))
        .unwrap_or_default();
    let strings = |v: Vec<&str>| v.into_iter().map(String::from).collect();
    Explanation {
        decision: d.verdict.as_str(),
        status: match d.verdict {
            Verdict::Deny => d.reason.map_or(403, |r| r.status()),
            _ => 200,
        },
        reason: d.reason.map(|r| r.as_str()),
        route: d.route.map(|r| r.pattern.to_string()),
        required_scopes: strings(report.required),
        missing_scopes: if d.reason == Some(decide::Reason::InsufficientScope) {
            strings(report.missing)
        } else {
            Vec::new()
        },
        effective_scopes: strings(effective),
        trace,
    }
}
