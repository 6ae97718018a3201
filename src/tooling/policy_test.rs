//! `scopegate test`: policy unit tests. Each case is a request and a principal; the
//! policy decides it exactly as the gateway would (same normalizer, lookup and decide),
//! and the status, reason and missing scopes are compared with what the case expects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use http::Method;
use serde::Deserialize;

use crate::auth::{AuthFailure, Principal};
use crate::decide::{self, Verdict};
use crate::normalize::{NormalizeOptions, normalize_path};
use crate::policy::{Policy, PolicyError};
use crate::yaml::{self, Located};

/// A test file: the policy it tests (relative to the file) and its cases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    #[serde(default)]
    pub policy: Option<PathBuf>,
    pub cases: Vec<Case>,
}

/// One request, who sends it, and what must happen.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub request: CaseRequest,
    #[serde(default)]
    pub principal: Option<CasePrincipal>,
    pub expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRequest {
    pub method: String,
    pub path: String,
}

/// The caller as the verified credential would describe it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasePrincipal {
    #[serde(default)]
    pub roles: Vec<String>,
    /// Absent: the token has no scope claim (limited by role alone).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub claims: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expect {
    pub status: u16,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub missing_scopes: Option<Vec<String>>,
}

/// A test file that could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum TestFileError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(#[from] Located),
    #[error("{}: names no policy (give `policy:` in the file or -c)", .0.display())]
    NoPolicy(PathBuf),
    #[error("{0}")]
    Policy(#[from] PolicyError),
}

/// What one case did.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub passed: bool,
    /// What was expected and what happened, for a failing case.
    pub mismatch: Option<String>,
    pub trace: Vec<String>,
}

impl CasePrincipal {
    /// The principal a token with these contents would give.
    pub fn to_principal(&self) -> Principal {
        let claims: serde_json::Map<String, serde_json::Value> =
            self.claims.clone().into_iter().collect();
        Principal {
            subject: claims.get("sub").and_then(|s| s.as_str()).map(String::from),
            roles: self.roles.clone(),
            scopes: self.scopes.clone(),
            claims,
        }
    }
}

/// Runs every case of one test file; `fallback_policy` is used when the file names none.
pub fn run_file(
    path: &Path,
    fallback_policy: Option<&Path>,
) -> Result<Vec<Outcome>, TestFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TestFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file: TestFile = yaml::from_str(path, &text)?;
    let policy_path = match (&file.policy, fallback_policy) {
        (Some(p), _) => path.parent().unwrap_or(Path::new(".")).join(p),
        (None, Some(p)) => p.to_path_buf(),
        (None, None) => return Err(TestFileError::NoPolicy(path.to_path_buf())),
    };
    let policy = Policy::load(&policy_path)?;
    Ok(file.cases.iter().map(|c| run_case(&policy, c)).collect())
}

/// Decides one case as the gateway would.
pub fn run_case(policy: &Policy, case: &Case) -> Outcome {
    let mut trace = Vec::new();
    let principal = case.principal.as_ref().map(CasePrincipal::to_principal);
    let (status, reason, missing) = evaluate(policy, &case.request, principal.as_ref(), &mut trace);
    let mut problems = Vec::new();
    if status != case.expect.status {
        problems.push(format!("status {status}, expected {}", case.expect.status));
    }
    if let Some(want) = &case.expect.reason
        && reason.as_deref() != Some(want.as_str())
    {
        problems.push(format!(
            "reason {}, expected {want}",
            reason.as_deref().unwrap_or("(none)")
        ));
    }
    if let Some(want) = &case.expect.missing_scopes
        && &missing != want
    {
        problems.push(format!(
            "missing scopes [{}], expected [{}]",
            missing.join(" "),
            want.join(" ")
        ));
    }
    Outcome {
        name: case.name.clone(),
        passed: problems.is_empty(),
        mismatch: (!problems.is_empty()).then(|| problems.join("; ")),
        trace,
    }
}

/// Status, reason and missing scopes of one request, by the gateway's own steps.
pub fn evaluate(
    policy: &Policy,
    req: &CaseRequest,
    principal: Option<&Principal>,
    trace: &mut Vec<String>,
) -> (u16, Option<String>, Vec<String>) {
    let Ok(method) = Method::from_bytes(req.method.as_bytes()) else {
        trace.push(format!("1. method `{}` is not an HTTP method", req.method));
        return (400, Some("bad_request".into()), Vec::new());
    };
    let path = match normalize_path(&req.path, NormalizeOptions::default()) {
        Ok(p) => p,
        Err(e) => {
            trace.push(format!("1. path refused: {e}"));
            return (400, Some("bad_request".into()), Vec::new());
        }
    };
    trace.push(format!("1. path: {path}"));
    let lookup = policy.lookup(&method, &path);
    let auth = Some(principal.ok_or(AuthFailure::Missing));
    let d = decide::decide(policy, &lookup, auth, trace);
    let missing = match (d.rule, principal, d.reason) {
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
    (status, d.reason.map(|r| r.as_str().to_string()), missing)
}
