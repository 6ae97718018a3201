//! Property tests of the decision on the bundled reference policy (`policies/orders.yaml`):
//! scopes only ever widen, and shadow mode changes nothing but refusals.

use std::path::Path;

use http::Method;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::auth::InvalidReason;

const ORDERS: &str = include_str!("../../policies/orders.yaml");

fn compile(text: &str) -> Policy {
    match Policy::from_bytes(Path::new("orders.yaml"), text.as_bytes()) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

thread_local! {
    static ENFORCE: &'static Policy = Box::leak(Box::new(compile(ORDERS)));
    static SHADOW: &'static Policy = Box::leak(Box::new(compile(
        &ORDERS.replacen("mode: enforce", "mode: shadow", 1),
    )));
}

fn enforce() -> &'static Policy {
    ENFORCE.with(|p| *p)
}

fn shadow() -> &'static Policy {
    SHADOW.with(|p| *p)
}

/// What the credentials check came to.
#[derive(Debug, Clone)]
enum Caller {
    Missing,
    Invalid,
    Expired,
    Valid(Principal),
}

/// The decision as the gateway makes it: credentials are only consulted when wanted.
fn run<'p>(policy: &'p Policy, method: &Method, path: &str, caller: &Caller) -> Decision<'p> {
    let lookup = policy.lookup(method, path);
    let auth = wants_credentials(policy, &lookup).then_some(match caller {
        Caller::Missing => Err(AuthFailure::Missing),
        Caller::Invalid => Err(AuthFailure::Invalid(InvalidReason::BadSignature)),
        Caller::Expired => Err(AuthFailure::Expired),
        Caller::Valid(p) => Ok(p),
    });
    decide(policy, &lookup, auth, &mut NoTrace)
}

const SCOPES: &[&str] = &[
    "orders:read",
    "orders:write",
    "orders:delete",
    "payments:write",
    "admin:read",
    "admin:write",
    "admin:delete",
    "projects:read",
    "projects:write",
    "users:read",
    "users:write",
    "reports:read",
    "reports:write",
    "orders:*",
    "admin:*",
    "*",
    "unknown:scope",
];

const ROLES: &[&str] = &["customer", "support", "admin", "partner", "none", "ghost"];

const PATHS: &[&str] = &[
    "/health",
    "/orders",
    "/orders/7",
    "/orders/7/refund",
    "/admin/settings",
    "/projects/p1/x",
    "/projects/p3/x",
    "/users/u1/profile",
    "/users/u2/profile",
    "/reports/daily",
    "/partner/projects/p1/orders",
    "/partner/projects/p9/orders",
    "/nope",
    "/orders/",
];

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn method() -> impl Strategy<Value = Method> {
    proptest::sample::select(METHODS).prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap())
}

fn path() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(PATHS)
}

fn scope_set() -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(SCOPES, 0..=6)
        .prop_map(|v| v.into_iter().map(String::from).collect())
}

/// A principal whose token has a scope claim (adding to `None` would *narrow* it).
fn principal(scopes: Vec<String>) -> impl Strategy<Value = Principal> {
    (
        proptest::sample::subsequence(ROLES, 0..=2),
        proptest::option::of(proptest::sample::select(&["u1", "u2"][..])),
        proptest::sample::subsequence(&["p1", "p2", "p3"][..], 0..=2),
    )
        .prop_map(move |(roles, sub, projects)| Principal {
            subject: sub.map(String::from),
            roles: roles.into_iter().map(String::from).collect(),
            scopes: Some(scopes.clone()),
            claims: json!({"sub": sub, "projects": projects})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        })
}

fn caller() -> impl Strategy<Value = Caller> {
    prop_oneof![
        1 => Just(Caller::Missing),
        1 => Just(Caller::Invalid),
        1 => Just(Caller::Expired),
        6 => scope_set().prop_flat_map(principal).prop_map(Caller::Valid),
        2 => scope_set().prop_flat_map(principal).prop_map(|mut p| {
            p.scopes = None;
            Caller::Valid(p)
        }),
    ]
}

/// "Would be allowed": shadow-mode would-be denials count as denials here.
fn would_allow(d: &Decision<'_>) -> bool {
    d.reason.is_none()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn adding_a_scope_never_turns_allow_into_deny(
        m in method(),
        p in path(),
        base in scope_set().prop_flat_map(principal),
        extra in proptest::sample::select(SCOPES),
    ) {
        let mut more = base.clone();
        more.scopes.get_or_insert_with(Vec::new).push(extra.to_string());
        let before = run(enforce(), &m, p, &Caller::Valid(base));
        let after = run(enforce(), &m, p, &Caller::Valid(more));
        if would_allow(&before) {
            prop_assert!(would_allow(&after), "{m} {p} +{extra}: {:?}", after.reason);
            prop_assert_eq!(before.verdict, after.verdict);
        }
    }

    #[test]
    fn removing_a_scope_never_turns_deny_into_allow(
        m in method(),
        p in path(),
        base in scope_set().prop_flat_map(principal),
        index in any::<prop::sample::Index>(),
    ) {
        let held = base.scopes.clone().unwrap_or_default();
        prop_assume!(!held.is_empty());
        let mut less = base.clone();
        less.scopes.get_or_insert_with(Vec::new).remove(index.index(held.len()));
        let before = run(enforce(), &m, p, &Caller::Valid(base));
        let after = run(enforce(), &m, p, &Caller::Valid(less));
        if !would_allow(&before) {
            prop_assert!(!would_allow(&after), "{m} {p}: {:?}", after.reason);
        }
    }

    /// Shadow mode forwards everything enforce forwards, on the same route and with the
    /// same identity, and refuses only malformed credentials; all else it forwards. (For
    /// 405 / no route, shadow mode checks credentials that enforce never looks at, so a
    /// bad token there is a 401 in shadow mode: SPEC §3 step 10.)
    #[test]
    fn shadow_changes_nothing_but_refusals(m in method(), p in path(), c in caller()) {
        let strict = run(enforce(), &m, p, &c);
        let lax = run(shadow(), &m, p, &c);
        let malformed = |r: Option<Reason>| {
            matches!(r, Some(Reason::InvalidToken | Reason::ExpiredToken | Reason::BadRequest))
        };
        if lax.verdict == Verdict::Deny {
            prop_assert!(malformed(lax.reason), "{} {}: shadow refused {:?}", m, p, lax.reason);
        } else {
            prop_assert_eq!(strict.reason, lax.reason, "{} {}", m, p);
            prop_assert_eq!(strict.passthrough, lax.passthrough);
            prop_assert_eq!(strict.route_label(), lax.route_label());
        }
        match strict.verdict {
            Verdict::Allow | Verdict::ShadowDeny => {
                prop_assert_eq!(strict.verdict, lax.verdict, "{} {}", m, p)
            }
            Verdict::Deny if malformed(strict.reason) => {
                prop_assert_eq!(lax.verdict, Verdict::Deny, "{} {}", m, p);
                prop_assert_eq!(strict.reason, lax.reason);
            }
            Verdict::Deny => {
                let before_auth = matches!(
                    strict.reason,
                    Some(Reason::NoMatchingRoute | Reason::MethodNotAllowed)
                );
                if !(before_auth && matches!(c, Caller::Invalid | Caller::Expired)) {
                    prop_assert_eq!(lax.verdict, Verdict::ShadowDeny, "{} {} {:?}", m, p, strict.reason);
                }
            }
        }
    }

    /// Without credentials nothing beyond a public route (or a shadow route's would-be
    /// denial) is ever allowed.
    #[test]
    fn no_credentials_only_reach_public_routes(m in method(), p in path()) {
        let d = run(enforce(), &m, p, &Caller::Missing);
        if d.verdict == Verdict::Allow {
            prop_assert!(d.route.is_some_and(|r| r.public), "{} {}", m, p);
        }
    }
}
