use std::path::Path;

use super::*;
use crate::tooling::token::{TokenSpec, mint};

const POLICY: &str = "\
version: 1
scopes:
  orders:read: Read orders
  orders:write: Change orders
default_role: customer
roles:
  customer:
    scopes: [orders:read]
  clerk:
    scopes: [\"orders:*\"]
routes:
  - path: /health
    methods: [GET]
    public: true
  - path: /orders/{id}
    methods: [GET, POST]
    scopes: [\"orders:{action}\"]
";

const SECRET: &str = "policy-test-secret-of-32-bytes!!";

fn policy() -> Policy {
    Policy::from_bytes(Path::new("p.yaml"), POLICY.as_bytes()).unwrap()
}

fn case(yaml: &str) -> Case {
    crate::yaml::from_str(Path::new("case.yaml"), yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn authenticator() -> Authenticator {
    let cfg: crate::config::auth::AuthConfig = crate::yaml::from_str(
        Path::new("auth.yaml"),
        "jwt:\n  issuers:\n    - issuer: scopegate\n      keys: [{ alg: HS256, secret_env: S }]\n      algorithms: [HS256]\n",
    )
    .unwrap();
    let env = |n: &str| (n == "S").then(|| SECRET.to_string());
    Authenticator::new(&cfg, 8192, Path::new("."), &env).unwrap()
}

fn run(policy: &Policy, yaml: &str, setup: &Setup) -> Outcome {
    run_case(policy, &case(yaml), setup)
}

#[test]
fn identity_headers_are_what_the_proxy_forwards() {
    let o = run(
        &policy(),
        "name: c\nrequest: { method: GET, path: /orders/1 }\n\
         principal: { roles: [clerk, unknown], scopes: [\"orders:*\"], claims: { sub: u1 } }\n\
         expect: { status: 200, identityHeaders: { subject: u1, roles: clerk unknown, scopes: [orders:read, orders:write] } }\n",
        &Setup::default(),
    );
    assert!(o.passed, "{:?}", o.mismatch);
}

#[test]
fn the_default_role_is_forwarded_for_a_caller_naming_none() {
    let o = run(
        &policy(),
        "name: c\nrequest: { method: GET, path: /orders/1 }\nprincipal: { claims: { sub: u2 } }\n\
         expect: { status: 200, identityHeaders: { roles: customer, scopes: orders:read } }\n",
        &Setup::default(),
    );
    assert!(o.passed, "{:?}", o.mismatch);
}

#[test]
fn a_wrong_identity_expectation_fails() {
    let o = run(
        &policy(),
        "name: c\nrequest: { method: GET, path: /orders/1 }\nprincipal: { roles: [customer] }\n\
         expect: { status: 200, identityHeaders: { scopes: orders:read orders:write } }\n",
        &Setup::default(),
    );
    assert!(!o.passed);
    assert_eq!(
        o.mismatch.as_deref(),
        Some("identity header scopes `orders:read`, expected `orders:read orders:write`")
    );
}

#[test]
fn a_denied_request_forwards_no_identity() {
    let o = run(
        &policy(),
        "name: c\nrequest: { method: DELETE, path: /orders/1 }\nprincipal: { roles: [customer] }\n\
         expect: { status: 405, identityHeaders: { roles: customer } }\n",
        &Setup::default(),
    );
    assert!(!o.passed);
    assert!(o.mismatch.unwrap().starts_with("no identity headers"));
}

#[test]
fn a_token_is_verified_with_the_configured_issuers() {
    let token = mint(
        SECRET.as_bytes(),
        &TokenSpec {
            sub: Some("t1".into()),
            roles: vec!["clerk".into()],
            scopes: vec!["orders:write".into()],
            ..Default::default()
        },
    )
    .unwrap();
    let auth = authenticator();
    let setup = Setup {
        authenticator: Some(&auth),
        ..Default::default()
    };
    let yaml = format!(
        "name: c\nrequest: {{ method: POST, path: /orders/1 }}\nprincipal: {{ token: {token} }}\n\
         expect: {{ status: 200, identityHeaders: {{ subject: t1, roles: clerk, scopes: orders:write }} }}\n"
    );
    let o = run(&policy(), &yaml, &setup);
    assert!(o.passed, "{:?} {:?}", o.mismatch, o.trace);
}

#[test]
fn a_token_signed_with_another_key_is_invalid() {
    let token = mint(b"some-other-secret-of-32-bytes!!!", &TokenSpec::default()).unwrap();
    let auth = authenticator();
    let setup = Setup {
        authenticator: Some(&auth),
        ..Default::default()
    };
    let yaml = format!(
        "name: c\nrequest: {{ method: GET, path: /orders/1 }}\nprincipal: {{ token: {token} }}\n\
         expect: {{ status: 401, reason: invalid_token }}\n"
    );
    let o = run(&policy(), &yaml, &setup);
    assert!(o.passed, "{:?}", o.mismatch);
}

#[test]
fn a_token_without_a_config_fails_the_case() {
    let token = mint(SECRET.as_bytes(), &TokenSpec::default()).unwrap();
    let yaml = format!(
        "name: c\nrequest: {{ method: GET, path: /health }}\nprincipal: {{ token: {token} }}\n\
         expect: {{ status: 200 }}\n"
    );
    let o = run(&policy(), &yaml, &Setup::default());
    assert!(!o.passed);
    assert!(o.mismatch.unwrap().contains("needs a gateway config (-c)"));
}

#[test]
fn a_public_route_forwards_a_valid_callers_identity() {
    let o = run(
        &policy(),
        "name: c\nrequest: { method: GET, path: /health }\nprincipal: { roles: [clerk], claims: { sub: u3 } }\n\
         expect: { status: 200, identityHeaders: { subject: u3, roles: clerk } }\n",
        &Setup::default(),
    );
    assert!(o.passed, "{:?}", o.mismatch);
}
