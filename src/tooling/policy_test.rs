//! `scopegate test`: policy unit tests. Each case is a request and a caller; the policy
//! decides it exactly as the gateway would (same normalizer, lookup and decide), and
//! the status, reason, missing scopes and forwarded identity headers are compared with
//! what the case expects.
//!
//! A caller is written either as what a verified credential would say (`roles`,
//! `scopes`, `claims`) or as a real `token`, which is verified with the issuers of the
//! gateway config given by `-c` — so a test can also pin down how an IdP's tokens are
//! read (claim mapping, expiry, audience). Without a config a `token` case fails:
//! an unverified token is never decided on.

mod evaluate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::auth::{AuthFailure, Authenticator, Principal};
use crate::normalize::NormalizeOptions;
use crate::policy::{Policy, PolicyError};
use crate::yaml::{self, Located};

pub use evaluate::{Evaluation, ForwardedIdentity, evaluate};

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
    /// Absent: the request carries no credentials.
    #[serde(default)]
    pub principal: Option<CasePrincipal>,
    pub expect: Expect,
}

/// The request of a case: method and path as a client would send them (normalized
/// like the gateway does before deciding).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRequest {
    pub method: String,
    pub path: String,
}

/// The caller: either what a verified credential would describe, or a real token.
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
    /// A JWT, verified with the `-c` config's issuers; excludes the fields above.
    #[serde(default)]
    pub token: Option<String>,
}

/// What must happen; only the fields given are compared.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expect {
    pub status: u16,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub missing_scopes: Option<Vec<String>>,
    /// The identity headers the upstream would receive (the request must be forwarded).
    #[serde(default)]
    pub identity_headers: Option<ExpectIdentity>,
}

/// Expected identity header values: `subject`, `roles` (as the credential names them,
/// or the default role) and `scopes` (effective, sorted), each a space-separated string
/// or a list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectIdentity {
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub roles: Option<HeaderText>,
    #[serde(default)]
    pub scopes: Option<HeaderText>,
}

/// A header value written as the header carries it, or as a list of its words.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum HeaderText {
    Text(String),
    Words(Vec<String>),
}

impl HeaderText {
    /// The header value this stands for.
    pub fn value(&self) -> String {
        match self {
            HeaderText::Text(t) => t.clone(),
            HeaderText::Words(w) => w.join(" "),
        }
    }
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

/// What a test run may take from a gateway config (`-c`).
#[derive(Default)]
pub struct Setup<'a> {
    /// The policy tested when a file names none.
    pub fallback_policy: Option<&'a Path>,
    /// Verifies `token` principals; `None` makes such cases fail.
    pub authenticator: Option<&'a Authenticator>,
    /// The config's path options, so `;` is refused or allowed as the gateway would.
    pub normalize: NormalizeOptions,
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

    /// The authentication result for this caller: a `token` is verified like the
    /// gateway verifies a bearer token; anything else is taken as already verified.
    fn authenticate(&self, setup: &Setup) -> Result<Result<Principal, AuthFailure>, String> {
        let Some(token) = &self.token else {
            return Ok(Ok(self.to_principal()));
        };
        if !self.roles.is_empty() || self.scopes.is_some() || !self.claims.is_empty() {
            return Err("principal: give either `token` or roles/scopes/claims, not both".into());
        }
        match setup.authenticator {
            // A test run is synchronous; a small runtime fetches IdP keys if the issuer
            // has any to fetch, then verifies exactly as the gateway does.
            Some(auth) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("starting a runtime to verify the token: {e}"))?;
                rt.block_on(async {
                    auth.fetch_keys().await.map_err(|e| e.to_string())?;
                    Ok(auth
                        .verify_jwt(token)
                        .await
                        .map(std::sync::Arc::unwrap_or_clone))
                })
            }
            None => {
                Err("principal.token needs a gateway config (-c) whose issuers verify it".into())
            }
        }
    }
}

/// Runs every case of one test file.
pub fn run_file(path: &Path, setup: &Setup) -> Result<Vec<Outcome>, TestFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TestFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file: TestFile = yaml::from_str(path, &text)?;
    let policy_path = match (&file.policy, setup.fallback_policy) {
        (Some(p), _) => path.parent().unwrap_or(Path::new(".")).join(p),
        (None, Some(p)) => p.to_path_buf(),
        (None, None) => return Err(TestFileError::NoPolicy(path.to_path_buf())),
    };
    let policy = Policy::load(&policy_path)?;
    Ok(file
        .cases
        .iter()
        .map(|c| run_case(&policy, c, setup))
        .collect())
}

/// Decides one case as the gateway would and compares it with the expectation.
pub fn run_case(policy: &Policy, case: &Case, setup: &Setup) -> Outcome {
    let mut trace = Vec::new();
    let caller = match case.principal.as_ref().map(|p| p.authenticate(setup)) {
        None => None,
        Some(Ok(result)) => Some(result),
        Some(Err(problem)) => {
            return Outcome {
                name: case.name.clone(),
                passed: false,
                mismatch: Some(problem),
                trace,
            };
        }
    };
    let got = evaluate(
        policy,
        &case.request,
        caller.as_ref().map(|r| r.as_ref().map_err(|e| *e)),
        setup.normalize,
        &mut trace,
    );
    let problems = compare(&case.expect, &got);
    Outcome {
        name: case.name.clone(),
        passed: problems.is_empty(),
        mismatch: (!problems.is_empty()).then(|| problems.join("; ")),
        trace,
    }
}

/// Every difference between what a case expects and what happened.
fn compare(want: &Expect, got: &Evaluation) -> Vec<String> {
    let mut problems = Vec::new();
    if got.status != want.status {
        problems.push(format!("status {}, expected {}", got.status, want.status));
    }
    if let Some(reason) = &want.reason
        && got.reason.as_deref() != Some(reason.as_str())
    {
        problems.push(format!(
            "reason {}, expected {reason}",
            got.reason.as_deref().unwrap_or("(none)")
        ));
    }
    if let Some(missing) = &want.missing_scopes
        && &got.missing_scopes != missing
    {
        problems.push(format!(
            "missing scopes [{}], expected [{}]",
            got.missing_scopes.join(" "),
            missing.join(" ")
        ));
    }
    if let Some(headers) = &want.identity_headers {
        match &got.identity {
            None => problems.push(
                "no identity headers would be forwarded (denied, or no valid credentials)".into(),
            ),
            Some(id) => {
                let mut check = |name: &str, want: Option<String>, got: Option<&str>| {
                    if let Some(want) = want
                        && got != Some(want.as_str())
                    {
                        problems.push(format!(
                            "identity header {name} {}, expected `{want}`",
                            got.map_or("absent".to_string(), |g| format!("`{g}`"))
                        ));
                    }
                };
                check("subject", headers.subject.clone(), id.subject.as_deref());
                check(
                    "roles",
                    headers.roles.as_ref().map(HeaderText::value),
                    Some(&id.roles),
                );
                check(
                    "scopes",
                    headers.scopes.as_ref().map(HeaderText::value),
                    Some(&id.scopes),
                );
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests;
