//! What a refusal tells the caller (required and missing scopes) and what an allowed
//! request forwards (the effective scopes). Only denials and identity headers need these,
//! so they may allocate.

use super::holds_scope;
use crate::auth::Principal;
use crate::policy::{MethodRule, Policy, scope};

/// What the gateway tells the upstream about an allowed caller (the identity headers):
/// one function so `scopegate test` checks exactly what the proxy forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity<'a> {
    /// The credential's subject, if it has one.
    pub subject: Option<&'a str>,
    /// The roles as the credential names them (unknown ones too, since the upstream may
    /// know them), or the policy's default role when it names none.
    pub roles: Vec<&'a str>,
    /// The effective scopes, sorted.
    pub scopes: Vec<&'a str>,
}

/// The identity forwarded for `principal` under `policy`.
pub fn identity<'a>(policy: &'a Policy, principal: &'a Principal) -> Identity<'a> {
    let roles = if principal.roles.is_empty() {
        policy
            .default_role()
            .map(|r| &*r.name)
            .into_iter()
            .collect()
    } else {
        principal.roles.iter().map(String::as_str).collect()
    };
    Identity {
        subject: principal.subject.as_deref(),
        roles,
        scopes: effective_scopes(policy, principal),
    }
}

/// The scopes a rule asks for and those of them the caller lacks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScopeReport<'p> {
    pub required: Vec<&'p str>,
    pub missing: Vec<&'p str>,
}

/// Required scopes (all-of first, then every `any_scopes` group) and the missing ones:
/// the missing all-of scopes, plus the missing part of the `any_scopes` group that is
/// closest to being held.
pub fn scope_report<'p>(
    policy: &Policy,
    rule: &'p MethodRule,
    principal: &Principal,
) -> ScopeReport<'p> {
    let held = |s: &str| holds_scope(policy, principal, s);
    let mut required: Vec<&str> = rule.all.iter().map(|s| &**s).collect();
    for s in rule.any.iter().flatten() {
        if !required.contains(&&**s) {
            required.push(s);
        }
    }
    let mut missing: Vec<&str> = rule.all.iter().map(|s| &**s).filter(|s| !held(s)).collect();
    let closest = rule
        .any
        .iter()
        .map(|g| {
            g.iter()
                .map(|s| &**s)
                .filter(|s| !held(s))
                .collect::<Vec<_>>()
        })
        .min_by_key(Vec::len);
    if let Some(group) = closest {
        for s in group {
            if !missing.contains(&s) {
                missing.push(s);
            }
        }
    }
    ScopeReport { required, missing }
}

/// The caller's effective scopes, sorted: each scope the policy knows (plus, without a
/// catalog, the token's own literal scopes) that both the roles and the token grant.
pub fn effective_scopes<'a>(policy: &'a Policy, principal: &'a Principal) -> Vec<&'a str> {
    let token_literals = principal
        .scopes
        .iter()
        .flatten()
        .filter(|s| policy.catalog().is_none() && !scope::is_wildcard(s))
        .map(String::as_str);
    let mut out: Vec<&str> = policy
        .known_scopes()
        .iter()
        .map(|s| &**s)
        .chain(token_literals)
        .filter(|s| holds_scope(policy, principal, s))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}
