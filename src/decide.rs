//! The decision: steps 2-10 of the policy's decision order, pure and synchronous.
//!
//! The caller has already normalized the path (step 1), looked the route up
//! ([`Policy::lookup`], step 2) and, when [`wants_credentials`] says so, authenticated
//! the request. [`decide`] takes those facts and returns a [`Decision`] without I/O and
//! without allocating; a [`Trace`] records each step for `explain` and costs nothing
//! when it is [`NoTrace`].

mod report;

use crate::auth::{AuthFailure, Principal};
use crate::normalize::decode_segment;
use crate::policy::{
    Constraint, Lookup, MethodRule, Mode, PathEntry, Policy, Role, Route, Source, Unmatched, scope,
};

pub use report::{Identity, ScopeReport, effective_scopes, identity, scope_report};

/// What happens to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
    /// Would be denied, but shadow mode forwards it (logged and counted).
    ShadowDeny,
}

impl Verdict {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::ShadowDeny => "shadow_deny",
        }
    }
}

/// The machine reason for a refusal (or a shadow mode's would-be refusal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    BadRequest,
    NoMatchingRoute,
    MethodNotAllowed,
    MissingCredentials,
    InvalidToken,
    ExpiredToken,
    RoleNotPermitted,
    InsufficientScope,
    ConstraintFailed,
    UpstreamUnavailable,
    UpstreamTimeout,
}

impl Reason {
    /// The `reason` field of a denial and the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BadRequest => "bad_request",
            Reason::NoMatchingRoute => "no_matching_route",
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::MissingCredentials => "missing_credentials",
            Reason::InvalidToken => "invalid_token",
            Reason::ExpiredToken => "expired_token",
            Reason::RoleNotPermitted => "role_not_permitted",
            Reason::InsufficientScope => "insufficient_scope",
            Reason::ConstraintFailed => "constraint_failed",
            Reason::UpstreamUnavailable => "upstream_unavailable",
            Reason::UpstreamTimeout => "upstream_timeout",
        }
    }

    /// The HTTP status this reason is answered with.
    pub fn status(self) -> u16 {
        match self {
            Reason::BadRequest => 400,
            Reason::MissingCredentials | Reason::InvalidToken | Reason::ExpiredToken => 401,
            Reason::NoMatchingRoute
            | Reason::RoleNotPermitted
            | Reason::InsufficientScope
            | Reason::ConstraintFailed => 403,
            Reason::MethodNotAllowed => 405,
            Reason::UpstreamUnavailable => 502,
            Reason::UpstreamTimeout => 504,
        }
    }
}

/// The outcome of [`decide`], borrowing the policy it was made on.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'p> {
    pub verdict: Verdict,
    /// Why it was (or in shadow mode would have been) refused; `None` when allowed.
    pub reason: Option<Reason>,
    pub entry: Option<&'p PathEntry>,
    pub route: Option<&'p Route>,
    pub rule: Option<&'p MethodRule>,
    /// `unmatched: allow`: forwarded without authentication or identity.
    pub passthrough: bool,
}

impl Decision<'_> {
    /// The policy's pattern of the matched path: the bounded metric label (`""` if none).
    pub fn route_label(&self) -> &str {
        self.entry.map_or("", |e| &e.pattern)
    }

    /// True when the request goes to the upstream.
    pub fn forwards(&self) -> bool {
        self.verdict != Verdict::Deny
    }
}

/// Receives one line per decision step; [`NoTrace`] ignores them at no cost.
pub trait Trace {
    fn step<F: FnOnce() -> String>(&mut self, line: F);
}

/// The trace used on the request path: records nothing, formats nothing.
pub struct NoTrace;

impl Trace for NoTrace {
    #[inline]
    fn step<F: FnOnce() -> String>(&mut self, _line: F) {}
}

impl Trace for Vec<String> {
    fn step<F: FnOnce() -> String>(&mut self, line: F) {
        self.push(line());
    }
}

/// Whether the decision will look at credentials, so the caller knows to authenticate.
pub fn wants_credentials(policy: &Policy, lookup: &Lookup<'_, '_>) -> bool {
    match lookup {
        Lookup::Matched { .. } => true,
        Lookup::NoRoute if policy.unmatched == Unmatched::Allow => false,
        // In shadow mode the request is forwarded, and a valid caller's identity with it.
        Lookup::NoRoute | Lookup::MethodNotAllowed(_) => policy.mode == Mode::Shadow,
    }
}

/// Decides on a looked-up request. `auth` is `None` when credentials were not checked
/// (only when [`wants_credentials`] said they are not needed).
pub fn decide<'p>(
    policy: &'p Policy,
    lookup: &Lookup<'p, '_>,
    auth: Option<Result<&Principal, AuthFailure>>,
    trace: &mut impl Trace,
) -> Decision<'p> {
    let mut d = Decision {
        verdict: Verdict::Allow,
        reason: None,
        entry: None,
        route: None,
        rule: None,
        passthrough: false,
    };
    let (route, rule, params) = match lookup {
        Lookup::NoRoute if policy.unmatched == Unmatched::Allow => {
            trace.step(|| {
                "2. route: none matches; `unmatched: allow` passes it through unauthenticated"
                    .into()
            });
            d.passthrough = true;
            return d;
        }
        Lookup::NoRoute => {
            trace.step(|| "2. route: none matches".into());
            return refuse_before_auth(d, policy.mode, Reason::NoMatchingRoute, auth, trace);
        }
        Lookup::MethodNotAllowed(entry) => {
            d.entry = Some(entry);
            trace.step(|| {
                format!(
                    "2. route: {} has no rule for this method (Allow: {})",
                    entry.pattern,
                    entry.allow.to_str().unwrap_or("")
                )
            });
            return refuse_before_auth(d, policy.mode, Reason::MethodNotAllowed, auth, trace);
        }
        Lookup::Matched {
            entry,
            rule,
            route,
            params,
        } => {
            d.entry = Some(entry);
            d.route = Some(route);
            d.rule = Some(rule);
            trace.step(|| {
                format!(
                    "2. route: routes[{}] {} {}",
                    route.index, rule.method, route.pattern
                )
            });
            (*route, *rule, params)
        }
    };
    let mode = route.mode.unwrap_or(policy.mode);
    if route.public {
        trace.step(|| "3. public route: allowed without credentials".into());
        return d;
    }
    let principal = match auth {
        Some(Ok(p)) => {
            trace.step(|| {
                format!(
                    "4. credentials: valid, subject {}",
                    p.subject.as_deref().unwrap_or("(none)")
                )
            });
            p
        }
        Some(Err(AuthFailure::Missing)) | None => {
            trace.step(|| "4. credentials: none".into());
            return refuse(d, mode, Reason::MissingCredentials, trace);
        }
        Some(Err(failure)) => {
            trace.step(|| format!("4. credentials: refused ({failure})"));
            return hard_refuse(d, auth_reason(failure));
        }
    };
    let roles = caller_roles(policy, principal);
    trace.step(|| describe_roles(policy, principal));
    if !route.roles.is_empty() && !roles.clone().any(|r| holds_any_role(r, &route.roles)) {
        trace.step(|| "7. role gate: the caller holds none of the route's roles".into());
        return refuse(d, mode, Reason::RoleNotPermitted, trace);
    }
    let held = |s: &str| holds_scope(policy, principal, s);
    let all_ok = rule.all.iter().all(|s| held(s));
    let any_ok = rule.any.is_empty() || rule.any.iter().any(|g| g.iter().all(|s| held(s)));
    if !(all_ok && any_ok) {
        trace.step(|| {
            format!(
                "8. scopes: missing {}",
                scope_report(policy, rule, principal).missing.join(" ")
            )
        });
        return refuse(d, mode, Reason::InsufficientScope, trace);
    }
    trace.step(|| "8. scopes: every required scope is held".into());
    if !route.require.is_empty() {
        if !route.bypass_roles.is_empty()
            && roles
                .clone()
                .any(|r| holds_any_role(r, &route.bypass_roles))
        {
            trace.step(|| "9. require: skipped, the caller holds a bypass role".into());
        } else if let Some(c) = route
            .require
            .iter()
            .find(|c| !constraint_met(c, params, roles.clone(), principal))
        {
            trace.step(|| format!("9. require: `{}` is not among the allowed values", c.param));
            return refuse(d, mode, Reason::ConstraintFailed, trace);
        } else {
            trace.step(|| "9. require: every constraint is met".into());
        }
    }
    trace.step(|| "10. allow".into());
    d
}

/// A would-be denial: blocks in enforce mode, is only recorded in shadow mode.
fn refuse<'p>(
    mut d: Decision<'p>,
    mode: Mode,
    reason: Reason,
    trace: &mut impl Trace,
) -> Decision<'p> {
    d.reason = Some(reason);
    d.verdict = match mode {
        Mode::Enforce => Verdict::Deny,
        Mode::Shadow => Verdict::ShadowDeny,
    };
    trace.step(|| {
        format!(
            "=> {} ({}{})",
            d.verdict.as_str(),
            reason.as_str(),
            if mode == Mode::Shadow {
                ", shadow mode forwards it"
            } else {
                ""
            }
        )
    });
    d
}

/// Refusals that no mode forwards: present but invalid or expired credentials.
fn hard_refuse(mut d: Decision<'_>, reason: Reason) -> Decision<'_> {
    d.verdict = Verdict::Deny;
    d.reason = Some(reason);
    d
}

/// No route or no method: in shadow mode invalid credentials still refuse.
fn refuse_before_auth<'p>(
    d: Decision<'p>,
    mode: Mode,
    reason: Reason,
    auth: Option<Result<&Principal, AuthFailure>>,
    trace: &mut impl Trace,
) -> Decision<'p> {
    match auth {
        Some(Err(f)) if mode == Mode::Shadow && f != AuthFailure::Missing => {
            trace.step(|| format!("4. credentials: refused ({f})"));
            hard_refuse(d, auth_reason(f))
        }
        _ => refuse(d, mode, reason, trace),
    }
}

fn auth_reason(f: AuthFailure) -> Reason {
    match f {
        AuthFailure::Missing => Reason::MissingCredentials,
        AuthFailure::Expired => Reason::ExpiredToken,
        AuthFailure::Invalid(_) => Reason::InvalidToken,
    }
}

/// The policy roles of a caller: those its credential names that the policy knows
/// (unknown names grant nothing), or the default role when it names none.
pub fn caller_roles<'p>(
    policy: &'p Policy,
    principal: &'p Principal,
) -> impl Iterator<Item = &'p Role> + Clone {
    let default = if principal.roles.is_empty() {
        policy.default_role()
    } else {
        None
    };
    principal
        .roles
        .iter()
        .filter_map(|name| policy.role(name))
        .chain(default)
}

fn holds_any_role(role: &Role, wanted: &[usize]) -> bool {
    wanted.iter().any(|w| role.is_a.contains(w))
}

/// Steps 5-6: a scope is effective when the caller's roles grant it (a policy without
/// roles grants every scope) and the token's scopes include it (no scope claim: no limit).
pub fn holds_scope(policy: &Policy, principal: &Principal, scope: &str) -> bool {
    let by_role = !policy.has_roles() || caller_roles(policy, principal).any(|r| r.holds(scope));
    by_role
        && principal
            .scopes
            .as_ref()
            .is_none_or(|token| token.iter().any(|t| scope::covers(t, scope)))
}

fn constraint_met<'p>(
    c: &Constraint,
    params: &matchit::Params<'_, '_>,
    roles: impl Iterator<Item = &'p Role> + Clone,
    principal: &Principal,
) -> bool {
    let Some(raw) = params.get(&*c.param) else {
        return false;
    };
    let value = decode_segment(raw);
    let value = value.as_ref();
    let listed = |v: &str| v == value || (!c.exact && v == "*");
    c.sources.iter().any(|source| match source {
        Source::RoleAttribute(attr) => roles
            .clone()
            .filter_map(|r| r.attributes.get(&**attr))
            .flatten()
            .any(|v| listed(v)),
        Source::Claim(path) => {
            crate::auth::claims::lookup(&principal.claims, path).is_some_and(|claim| match claim {
                serde_json::Value::String(s) => {
                    listed(s) || (!c.exact && s.split_whitespace().any(|v| v == value))
                }
                serde_json::Value::Array(items) => {
                    items.iter().filter_map(|i| i.as_str()).any(|v| v == value)
                }
                serde_json::Value::Number(n) => n.to_string() == value,
                _ => false,
            })
        }
    })
}

fn describe_roles(policy: &Policy, principal: &Principal) -> String {
    let named: Vec<&str> = caller_roles(policy, principal).map(|r| &*r.name).collect();
    let unknown: Vec<&str> = principal
        .roles
        .iter()
        .filter(|n| policy.role(n).is_none())
        .map(String::as_str)
        .collect();
    let mut line = if !policy.has_roles() {
        "5. roles: the policy defines none, so every scope is granted".to_string()
    } else if principal.roles.is_empty() {
        format!(
            "5. roles: none named; default role: {}",
            named.first().copied().unwrap_or("(none)")
        )
    } else {
        format!(
            "5. roles: {}",
            if named.is_empty() {
                "(none known)".to_string()
            } else {
                named.join(", ")
            }
        )
    };
    if !unknown.is_empty() {
        line.push_str(&format!(
            "; unknown, granting nothing: {}",
            unknown.join(", ")
        ));
    }
    line.push_str(match &principal.scopes {
        None => "; 6. token has no scope claim: limited by role alone",
        Some(_) => "; 6. token scopes limit the role's rights",
    });
    line
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
