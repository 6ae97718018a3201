//! Table tests of the decision core on the policy format's reference example.

use std::path::Path;

use http::Method;
use serde_json::json;

use super::*;
use crate::auth::InvalidReason;

const POLICY: &str = r#"
version: 1
scopes:
  orders:read: r
  orders:write: w
  orders:delete: d
  payments:write: p
  admin:read: ar
  admin:write: aw
  admin:delete: ad
  projects:read: pr
  projects:write: pw
  projects:delete: pd
  users:read: ur
  users:write: uw
  users:delete: ud
  reports:read: rr
  reports:write: rw
  reports:delete: rd
default_role: customer
roles:
  customer: { scopes: [orders:read, orders:write] }
  support: { scopes: ["orders:*"], deny: [orders:delete] }
  admin: { inherits: [support], scopes: ["*"], attributes: { projects: ["*"] } }
  partner: { scopes: [orders:read, "projects:*"], attributes: { projects: [p1, p2] } }
  none: {}
routes:
  - { path: /health, methods: [GET], public: true }
  - { path: /orders, methods: [GET], scopes: [orders:read] }
  - { path: "/orders/{id}", scopes: ["orders:{action}"] }
  - path: "/orders/{id}/refund"
    methods: [POST]
    any_scopes: [[orders:write, payments:write], [admin:write]]
  - { path: "/admin/{*rest}", scopes: ["admin:{action}"], roles: [admin] }
  - path: "/projects/{projectId}/{*rest}"
    scopes: ["projects:{action}"]
    require: { projectId: { in: [role:projects, claim:projects] } }
  - path: "/users/{userId}/{*rest}"
    scopes: ["users:{action}"]
    require: { userId: { equals: claim:sub } }
    bypass_roles: [admin, support]
  - { path: "/reports/{*rest}", scopes: ["reports:{action}"], mode: shadow }
"#;

fn policy(text: &str) -> Policy {
    match Policy::from_bytes(Path::new("t.yaml"), text.as_bytes()) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn who(roles: &[&str], scopes: Option<&[&str]>, claims: serde_json::Value) -> Principal {
    Principal {
        subject: claims.get("sub").and_then(|s| s.as_str()).map(String::from),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        scopes: scopes.map(|s| s.iter().map(|x| x.to_string()).collect()),
        claims: claims.as_object().cloned().unwrap_or_default(),
    }
}

/// Decides one request; `None` principal means no credentials.
fn run(
    p: &Policy,
    method: &str,
    path: &str,
    principal: Option<&Principal>,
) -> (Verdict, Option<Reason>) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let lookup = p.lookup(&method, path);
    let auth = Some(principal.ok_or(AuthFailure::Missing));
    let d = decide(p, &lookup, auth, &mut NoTrace);
    (d.verdict, d.reason)
}

use Reason::*;
use Verdict::*;

/// (method, path, caller, expected verdict, expected reason)
type Case<'a> = (
    &'a str,
    &'a str,
    Option<&'a Principal>,
    Verdict,
    Option<Reason>,
);

#[test]
fn the_reference_policy_decides_as_specified() {
    let p = policy(POLICY);
    let customer = who(
        &["customer"],
        Some(&["orders:read", "orders:write"]),
        json!({"sub": "u1"}),
    );
    let customer_admin_scope = who(&["customer"], Some(&["admin:read"]), json!({}));
    let support = who(&["support"], None, json!({"sub": "s1"}));
    let admin = who(&["admin"], None, json!({"sub": "a1"}));
    let partner = who(&["partner"], None, json!({"sub": "p"}));
    let partner_claims = who(&["partner"], None, json!({"projects": ["p9"]}));
    let nobody = who(&["none"], None, json!({}));
    let unknown_role = who(&["ghost"], None, json!({}));
    let no_role = who(&[], None, json!({"sub": "u7"}));
    let narrow_token = who(&["admin"], Some(&["orders:read"]), json!({}));
    let wildcard_token = who(&["customer"], Some(&["orders:*"]), json!({}));
    let user_u1 = who(&["customer"], Some(&["users:read"]), json!({"sub": "u1"}));
    let user_any = who(&[], None, json!({"sub": "u1"}));

    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("GET", "/health", None, Allow, None),
        ("POST", "/health", None, Deny, Some(MethodNotAllowed)),
        ("GET", "/nowhere", Some(&admin), Deny, Some(NoMatchingRoute)),
        ("GET", "/orders", None, Deny, Some(MissingCredentials)),
        ("GET", "/orders", Some(&customer), Allow, None),
        ("HEAD", "/orders", Some(&customer), Allow, None),
        ("DELETE", "/orders", Some(&admin), Deny, Some(MethodNotAllowed)),
        ("GET", "/orders/7", Some(&customer), Allow, None),
        ("DELETE", "/orders/7", Some(&customer), Deny, Some(InsufficientScope)),
        ("DELETE", "/orders/7", Some(&support), Deny, Some(InsufficientScope)),
        ("DELETE", "/orders/7", Some(&admin), Allow, None),
        ("PUT", "/orders/7", Some(&support), Allow, None),
        // Scopes only limit: the token narrows admin to orders:read.
        ("GET", "/orders/7", Some(&narrow_token), Allow, None),
        ("PUT", "/orders/7", Some(&narrow_token), Deny, Some(InsufficientScope)),
        // A wildcard token scope is limited by the role's rights.
        ("PUT", "/orders/7", Some(&wildcard_token), Allow, None),
        ("DELETE", "/orders/7", Some(&wildcard_token), Deny, Some(InsufficientScope)),
        // any_scopes: customer has orders:write but not payments:write; admin has admin:write.
        ("POST", "/orders/7/refund", Some(&customer), Deny, Some(InsufficientScope)),
        ("POST", "/orders/7/refund", Some(&admin), Allow, None),
        // Role gate: the token's admin scope does not make a customer an admin.
        ("GET", "/admin/settings", Some(&customer_admin_scope), Deny, Some(RoleNotPermitted)),
        ("GET", "/admin/settings", Some(&admin), Allow, None),
        ("GET", "/admin/", Some(&admin), Deny, Some(NoMatchingRoute)),
        // require with role attributes and claims.
        ("GET", "/projects/p1/tasks", Some(&partner), Allow, None),
        ("GET", "/projects/p3/tasks", Some(&partner), Deny, Some(ConstraintFailed)),
        ("GET", "/projects/p9/tasks", Some(&partner_claims), Allow, None),
        ("GET", "/projects/anything/x", Some(&admin), Allow, None),
        // The customer role lacks users:read: the token cannot add it.
        ("GET", "/users/u1/profile", Some(&user_u1), Deny, Some(InsufficientScope)),
        ("GET", "/users/u2/profile", Some(&user_u1), Deny, Some(InsufficientScope)),
        ("GET", "/users/u1/profile", Some(&user_any), Deny, Some(InsufficientScope)),
        ("GET", "/users/u2/profile", Some(&admin), Allow, None),
        // The none role and unknown roles grant nothing; no role gets the default.
        ("GET", "/orders", Some(&nobody), Deny, Some(InsufficientScope)),
        ("GET", "/orders", Some(&unknown_role), Deny, Some(InsufficientScope)),
        ("GET", "/orders", Some(&no_role), Allow, None),
        ("DELETE", "/orders/1", Some(&no_role), Deny, Some(InsufficientScope)),
        // A shadow route forwards what it would deny.
        ("GET", "/reports/q1", Some(&customer), ShadowDeny, Some(InsufficientScope)),
        ("GET", "/reports/q1", None, ShadowDeny, Some(MissingCredentials)),
        ("GET", "/reports/q1", Some(&admin), Allow, None),
    ];
    let mut failures = Vec::new();
    for (method, path, principal, verdict, reason) in cases {
        let got = run(&p, method, path, principal);
        if got != (verdict, reason) {
            failures.push(format!(
                "{method} {path}: got {got:?}, want {:?}",
                (verdict, reason)
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn users_require_is_checked_when_scopes_allow() {
    let p = policy(POLICY);
    let text = POLICY.replace(
        "customer: { scopes: [orders:read, orders:write] }",
        "customer: { scopes: [orders:read, orders:write, users:read] }",
    );
    let p2 = policy(&text);
    let u1 = who(&["customer"], None, json!({"sub": "u1"}));
    assert_eq!(
        run(&p, "GET", "/users/u1/x", Some(&u1)),
        (Deny, Some(InsufficientScope))
    );
    assert_eq!(run(&p2, "GET", "/users/u1/x", Some(&u1)), (Allow, None));
    assert_eq!(
        run(&p2, "GET", "/users/u2/x", Some(&u1)),
        (Deny, Some(ConstraintFailed))
    );
    // Percent-encoded path values are compared decoded.
    let spaced = who(&["customer"], None, json!({"sub": "a b"}));
    assert_eq!(
        run(&p2, "GET", "/users/a%20b/x", Some(&spaced)),
        (Allow, None)
    );
}

#[test]
fn invalid_and_expired_credentials_are_refused_even_in_shadow_mode() {
    let p = policy(&POLICY.replacen("version: 1", "version: 1\nmode: shadow", 1));
    let get = Method::GET;
    for (failure, reason) in [
        (AuthFailure::Invalid(InvalidReason::Malformed), InvalidToken),
        (AuthFailure::Expired, ExpiredToken),
    ] {
        for path in ["/orders", "/nowhere"] {
            let lookup = p.lookup(&get, path);
            let d = decide(&p, &lookup, Some(Err(failure)), &mut NoTrace);
            assert_eq!((d.verdict, d.reason), (Deny, Some(reason)), "{path}");
        }
    }
    let lookup = p.lookup(&get, "/nowhere");
    let d = decide(&p, &lookup, Some(Err(AuthFailure::Missing)), &mut NoTrace);
    assert_eq!((d.verdict, d.reason), (ShadowDeny, Some(NoMatchingRoute)));
}

#[test]
fn public_routes_ignore_credentials_and_unmatched_allow_passes_through() {
    let p = policy(&POLICY.replacen("version: 1", "version: 1\nunmatched: allow", 1));
    let lookup = p.lookup(&Method::GET, "/health");
    let d = decide(&p, &lookup, Some(Err(AuthFailure::Expired)), &mut NoTrace);
    assert_eq!((d.verdict, d.reason), (Allow, None));
    let lookup = p.lookup(&Method::GET, "/elsewhere");
    assert!(!wants_credentials(&p, &lookup));
    let d = decide(&p, &lookup, None, &mut NoTrace);
    assert!(d.passthrough && d.verdict == Allow);
}

#[test]
fn a_policy_without_roles_grants_every_scope_that_the_token_holds() {
    let p = policy("version: 1\nroutes:\n  - { path: /a, scopes: [a:read] }\n");
    let no_claim = who(&["whatever"], None, json!({}));
    let narrow = who(&[], Some(&["b:read"]), json!({}));
    assert_eq!(run(&p, "GET", "/a", Some(&no_claim)), (Allow, None));
    assert_eq!(
        run(&p, "GET", "/a", Some(&narrow)),
        (Deny, Some(InsufficientScope))
    );
}

#[test]
fn denial_reports_name_the_missing_scopes() {
    let p = policy(POLICY);
    let customer = who(&["customer"], None, json!({}));
    let Lookup::Matched { rule, .. } = p.lookup(&Method::POST, "/orders/1/refund") else {
        panic!("no route")
    };
    let report = scope_report(&p, rule, &customer);
    assert_eq!(
        report.required,
        ["orders:write", "payments:write", "admin:write"]
    );
    assert_eq!(report.missing, ["payments:write"]);
}

#[test]
fn effective_scopes_are_role_rights_within_token_scopes() {
    let p = policy(POLICY);
    let support = who(&["support"], Some(&["orders:*", "admin:read"]), json!({}));
    assert_eq!(
        effective_scopes(&p, &support),
        ["orders:read", "orders:write"]
    );
    let admin = who(&["admin"], None, json!({}));
    assert_eq!(effective_scopes(&p, &admin).len(), 16);
}

#[test]
fn the_trace_tells_each_step() {
    let p = policy(POLICY);
    let customer = who(&["customer"], Some(&["orders:read"]), json!({}));
    let lookup = p.lookup(&Method::DELETE, "/orders/9");
    let mut trace = Vec::new();
    let d = decide(&p, &lookup, Some(Ok(&customer)), &mut trace);
    assert_eq!(d.reason, Some(InsufficientScope));
    let text = trace.join("\n");
    assert!(text.contains("routes[2] DELETE /orders/{id}"), "{text}");
    assert!(text.contains("missing orders:delete"), "{text}");
}
