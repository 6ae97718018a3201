//! Setup checks and the mapping of verified claims onto a principal.

use jsonwebtoken::Algorithm::*;
use serde_json::{Value, json};

use super::tests::{NOW, check, claims, verifier, verifier_from};
use super::*;
use crate::auth::testutil::{SECRET, env, fixtures, sign, sign_hmac};

fn principal(extra: Value) -> Principal {
    check(&sign(ES256, None, "ec256", &claims(extra))).unwrap()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn claim_mapping() {
    let p = principal(json!({ "scope": "orders:read orders:write", "roles": ["support"] }));
    assert_eq!(p.scopes, Some(strs(&["orders:read", "orders:write"])));
    assert_eq!(p.roles, strs(&["support"]));
    assert_eq!(p.subject.as_deref(), Some("u1"));
    assert_eq!(
        p.claims.get("aud"),
        Some(&json!("orders-api")),
        "whole claim map kept"
    );

    assert_eq!(
        principal(json!({ "scp": ["a:read", "b:write"] })).scopes,
        Some(strs(&["a:read", "b:write"]))
    );
    assert_eq!(
        principal(json!({ "permissions": ["p:x"] })).scopes,
        Some(strs(&["p:x"]))
    );
    assert_eq!(
        principal(json!({ "scope": "first", "scp": ["second"] })).scopes,
        Some(strs(&["first"]))
    );
    assert_eq!(
        principal(json!({ "scope": "" })).scopes,
        Some(vec![]),
        "present but empty"
    );
    assert_eq!(
        principal(json!({})).scopes,
        None,
        "no scope claim: limited by role alone"
    );

    let p = principal(json!({ "realm_access": { "roles": ["admin", "user"] } }));
    assert_eq!(p.roles, strs(&["admin", "user"]));
    assert_eq!(
        principal(json!({ "role": "partner", "roles": ["x"] })).roles,
        strs(&["partner"])
    );
    assert!(principal(json!({})).roles.is_empty());
    assert_eq!(principal(json!({ "sub": null })).subject, None);
}

#[test]
fn require_scope_claim_means_no_scopes() {
    let c = claims(json!({ "iss": "hs-issuer" }));
    let p = check(&sign_hmac(HS256, None, SECRET.as_bytes(), &c)).unwrap();
    assert_eq!(p.scopes, Some(vec![]));
    let c = claims(json!({ "iss": "hs-issuer", "scope": "a" }));
    let p = check(&sign_hmac(HS256, None, SECRET.as_bytes(), &c)).unwrap();
    assert_eq!(p.scopes, Some(strs(&["a"])));
}

#[test]
fn custom_claim_paths() {
    let v = verifier_from(
        r#"
jwt:
  issuers: [{ issuer: i, keys: [{ alg: EdDSA, pem_file: keys/ed25519.pub.pem }] }]
  claims:
    scopes: [https://example.com/scopes]
    roles: [app.roles]
    subject: email
"#,
    )
    .unwrap();
    let c = json!({
        "iss": "i", "exp": NOW + 60.0, "email": "a@example.com",
        "https://example.com/scopes": ["s1"], "app": { "roles": "r1 r2" }, "scope": "ignored",
    });
    let p = v.verify_at(&sign(EdDSA, None, "ed25519", &c), NOW).unwrap();
    assert_eq!(p.scopes, Some(strs(&["s1"])));
    assert_eq!(p.roles, strs(&["r1", "r2"]));
    assert_eq!(p.subject.as_deref(), Some("a@example.com"));
}

#[test]
fn algorithms_default_to_those_of_the_keys() {
    let v = verifier_from(
        "jwt:\n  issuers: [{ issuer: i, keys: [{ alg: ES256, pem_file: keys/ec256.pub.pem }] }]\n",
    )
    .unwrap();
    let c = json!({ "iss": "i", "exp": NOW + 60.0 });
    assert!(v.verify_at(&sign(ES256, None, "ec256", &c), NOW).is_ok());
    assert_eq!(
        v.verify_at(&sign(RS256, None, "rsa1", &c), NOW),
        Err(AuthFailure::Invalid(InvalidReason::AlgorithmNotAllowed))
    );
}

#[test]
fn keys_can_be_swapped_at_run_time() {
    let v = verifier();
    let c = claims(json!({ "iss": "rsa-only" }));
    let token = sign(RS256, None, "rsa2", &c);
    assert!(v.verify_at(&token, NOW).is_err());
    let new_key = crate::auth::keys::load_key(
        &crate::config::auth::KeyConfig {
            kid: None,
            alg: "RS256".into(),
            pem_file: Some("keys/rsa2.pub.pem".into()),
            secret_env: None,
        },
        &fixtures(),
        &env,
    )
    .unwrap();
    v.issuers[v.by_name["rsa-only"]]
        .keys
        .replace(vec![new_key], None);
    assert!(v.verify_at(&token, NOW).is_ok());
}

#[test]
fn setup_errors() {
    let cases: &[(&str, &str)] = &[
        ("issuers: []", "auth.jwt.issuers is empty"),
        (
            "issuers: [{ issuer: '', keys: [] }]",
            "issuers[0]: `issuer` must not be empty",
        ),
        ("issuers: [{ issuer: i }]", "issuer `i` has no `keys`"),
        (
            "issuers: [{ issuer: i, jwks_uri: http://i/jwks, keys: [{ alg: RS256, pem_file: keys/rsa1.pub.pem }] }]",
            "give only one of `keys`, `discovery` or `jwks_uri`",
        ),
        (
            "issuers: [{ issuer: i, discovery: http://i/d, jwks_uri: http://i/jwks }]",
            "give only one of",
        ),
        (
            "issuers: [{ issuer: i, jwks_uri: /jwks }]",
            "issuer `i`: `/jwks` is not an absolute http(s) URL",
        ),
        (
            "issuers: [{ issuer: i, discovery: 'ftp://i/x' }]",
            "not an absolute http(s) URL",
        ),
        (
            "issuers: [{ issuer: i, jwks_uri: http://i/jwks, algorithms: [RS256, HS256] }]",
            "HS256 keys are never taken from a URL",
        ),
        (
            "issuers: [{ issuer: i, jwks_uri: http://i/jwks, algorithms: [none] }]",
            "`none` is never accepted",
        ),
        (
            "issuers: [{ issuer: i, jwks_uri: http://i/jwks, refresh: { min: 0s } }]",
            "`refresh` needs 1s <= min <= max",
        ),
        (
            "issuers: [{ issuer: i, jwks_uri: http://i/jwks, refresh: { min: 2h, max: 1h } }]",
            "`refresh` needs 1s <= min <= max",
        ),
        (
            "issuers: [{ issuer: i, jwks_uri: https://i/jwks, ca: keys/README.md }]",
            "holds no usable certificate",
        ),
        (
            "issuers: [{ issuer: i, ca: ca.pem, keys: [{ alg: RS256, pem_file: keys/rsa1.pub.pem }] }]",
            "`ca` and `refresh` apply only to `discovery` / `jwks_uri`",
        ),
        (
            "issuers: [{ issuer: i, algorithms: [RS256, HS256], keys: [{ alg: RS256, pem_file: keys/rsa1.pub.pem }] }]",
            "algorithm HS256 is allowed but no key has that `alg`",
        ),
        (
            "issuers: [{ issuer: i, algorithms: [none], keys: [{ alg: RS256, pem_file: keys/rsa1.pub.pem }] }]",
            "issuer `i`, algorithms: algorithm `none` is never accepted",
        ),
        (
            "issuers: [{ issuer: i, algorithms: [RS256], keys: [{ alg: RS256, pem_file: keys/rsa1.pub.pem }, { kid: e, alg: ES256, pem_file: keys/ec256.pub.pem }] }]",
            "keys[1] (kid `e`): its alg ES256 is not in the issuer's `algorithms`",
        ),
        (
            "issuers: [{ issuer: i, keys: [{ kid: a, alg: RS256, pem_file: keys/rsa1.pub.pem }, { kid: a, alg: RS256, pem_file: keys/rsa2.pub.pem }] }]",
            "kid `a` is used by more than one key",
        ),
        (
            "issuers: [{ issuer: i, keys: [{ alg: HS256, secret_env: JWT_SECRET }] }, { issuer: i, keys: [{ alg: HS256, secret_env: JWT_SECRET }] }]",
            "issuer `i` is listed twice",
        ),
        (
            "issuers: [{ issuer: i, keys: [{ alg: HS256, secret_env: NOT_SET }] }]",
            "issuer `i`, keys[0]: environment variable `NOT_SET`",
        ),
        (
            "issuers: [{ issuer: i, keys: [{ alg: RS256, pem_file: keys/rsa1.key.pem }] }]",
            "found `PRIVATE KEY`",
        ),
    ];
    for (jwt, want) in cases {
        let e = verifier_from(&format!("jwt:\n  {jwt}\n"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains(want), "{jwt}\n  got: {e}");
        assert!(!e.contains(SECRET), "{e}");
    }
}
