//! The authenticator as the proxy sees it: headers in, principal or failure out.

use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use jsonwebtoken::Algorithm::{ES256, HS256};
use serde_json::{Value, json};

use super::testutil::{SECRET, config, env, fixtures, ready, sign, sign_hmac};
use super::*;

const MAX: usize = 4096;

const JWT: &str = r#"
jwt:
  issuers:
    - issuer: https://idp.example.com/
      keys: [{ alg: ES256, pem_file: keys/ec256.pub.pem }, { alg: HS256, secret_env: JWT_SECRET }]
"#;

fn authenticator(api_key_header: &str) -> Authenticator {
    let yaml = format!("{JWT}api_keys:\n  header: {api_key_header}\n  file: api_keys.yaml\n");
    Authenticator::new(&config(&yaml), MAX, &fixtures(), &env).unwrap()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn token_with(extra: Value) -> String {
    let mut c = json!({ "iss": "https://idp.example.com/", "sub": "u1", "exp": now() + 600.0 });
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    sign(ES256, None, "ec256", &c)
}

fn token() -> String {
    token_with(json!({ "scope": "orders:read" }))
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    h
}

fn auth(pairs: &[(&str, &str)]) -> Result<Arc<Principal>, AuthFailure> {
    authenticator("X-API-Key").authenticate_now(&headers(pairs))
}

fn invalid(reason: InvalidReason) -> Result<Arc<Principal>, AuthFailure> {
    Err(AuthFailure::Invalid(reason))
}

#[test]
fn bearer_scheme_in_any_case() {
    let t = token();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let p = auth(&[("authorization", &format!("{scheme} {t}"))]).unwrap();
        assert_eq!(p.subject.as_deref(), Some("u1"), "{scheme}");
        assert_eq!(p.scopes, Some(vec!["orders:read".to_string()]));
    }
}

#[test]
fn nothing_sent_is_missing() {
    assert_eq!(auth(&[]), Err(AuthFailure::Missing));
    assert_eq!(
        auth(&[("cookie", "session=abc"), ("x-api-keys", "k")]),
        Err(AuthFailure::Missing)
    );
}

#[test]
fn two_authorization_headers_are_refused() {
    let t = format!("Bearer {}", token());
    assert_eq!(
        auth(&[("authorization", &t), ("authorization", &t)]),
        invalid(InvalidReason::DuplicateAuthorization)
    );
}

#[test]
fn malformed_authorization_values() {
    for value in [
        "Bearer",
        "Bearer ",
        "Bearer  ",
        "Bearer a b",
        "Bearer\ttok",
        "Bearer tok\t",
    ] {
        assert_eq!(
            auth(&[("authorization", value)]),
            invalid(InvalidReason::Malformed),
            "{value:?}"
        );
    }
    let mut h = HeaderMap::new();
    h.insert(
        AUTHORIZATION,
        HeaderValue::from_bytes(b"Bearer t\xc3\xb6k").unwrap(),
    );
    assert_eq!(
        authenticator("X-API-Key").authenticate_now(&h),
        invalid(InvalidReason::Malformed)
    );
    // Extra spaces between scheme and token are allowed (RFC 7235: 1*SP).
    assert!(auth(&[("authorization", &format!("Bearer   {}", token()))]).is_ok());
}

#[test]
fn other_schemes_are_unknown() {
    for value in [
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "ApiKey test-api-key-1",
        "Bearertoken",
    ] {
        assert_eq!(
            auth(&[("authorization", value)]),
            invalid(InvalidReason::UnknownScheme),
            "{value}"
        );
    }
}

#[test]
fn not_a_jwt_is_malformed() {
    assert_eq!(
        auth(&[("authorization", "Bearer test-api-key-1")]),
        invalid(InvalidReason::Malformed)
    );
}

#[test]
fn expired_is_its_own_failure() {
    let t = token_with(json!({ "exp": now() - 3600.0 }));
    let r = auth(&[("authorization", &format!("Bearer {t}"))]);
    assert_eq!(r, Err(AuthFailure::Expired));
    assert_eq!(AuthFailure::Expired.reason(), "expired_token");
}

#[test]
fn api_key_hit_and_miss() {
    let p = auth(&[("x-api-key", "test-api-key-1")]).unwrap();
    assert_eq!(p.subject.as_deref(), Some("ci-bot"));
    assert_eq!(p.roles, ["support"]);
    assert_eq!(p.scopes, Some(vec!["orders:read".to_string()]));
    assert_eq!(p.claims.get("sub").and_then(|s| s.as_str()), Some("ci-bot"));
    let p = auth(&[("X-Api-Key", "test-api-key-2")]).unwrap();
    assert_eq!(p.subject.as_deref(), Some("reporter"));
    assert_eq!(
        p.scopes, None,
        "an entry without scopes is limited by its roles alone"
    );
    assert_eq!(
        auth(&[("x-api-key", "test-api-key-3")]),
        invalid(InvalidReason::UnknownApiKey)
    );
    assert_eq!(
        auth(&[("x-api-key", "")]),
        invalid(InvalidReason::Malformed)
    );
    assert_eq!(
        auth(&[("x-api-key", "test api key")]),
        invalid(InvalidReason::Malformed)
    );
}

#[test]
fn duplicate_or_ambiguous_credentials() {
    let key = ("x-api-key", "test-api-key-1");
    assert_eq!(
        auth(&[key, key]),
        invalid(InvalidReason::DuplicateAuthorization)
    );
    let bearer = format!("Bearer {}", token());
    assert_eq!(
        auth(&[("authorization", &bearer), key]),
        invalid(InvalidReason::AmbiguousCredentials)
    );
}

#[test]
fn api_key_scheme_on_authorization() {
    let a = authenticator("Authorization");
    let run = |pairs: &[(&str, &str)]| a.authenticate_now(&headers(pairs));
    for scheme in ["ApiKey", "apikey", "APIKEY"] {
        let p = run(&[("authorization", &format!("{scheme} test-api-key-1"))]).unwrap();
        assert_eq!(p.subject.as_deref(), Some("ci-bot"), "{scheme}");
    }
    assert!(run(&[("authorization", &format!("Bearer {}", token()))]).is_ok());
    assert_eq!(
        run(&[("authorization", "ApiKey nope")]),
        invalid(InvalidReason::UnknownApiKey)
    );
    assert_eq!(
        run(&[("authorization", "ApiKey")]),
        invalid(InvalidReason::Malformed)
    );
    assert_eq!(
        run(&[("x-api-key", "test-api-key-1")]),
        Err(AuthFailure::Missing),
        "X-API-Key is not read then"
    );
    let v = "ApiKey test-api-key-1";
    assert_eq!(
        run(&[("authorization", v), ("authorization", v)]),
        invalid(InvalidReason::DuplicateAuthorization)
    );
}

#[test]
fn oversized_credentials_are_refused_before_parsing() {
    let t = token();
    let tight = Authenticator::new(&config(JWT), t.len(), &fixtures(), &env).unwrap();
    let h = headers(&[("authorization", &format!("Bearer {t}"))]);
    assert!(
        tight.authenticate_now(&h).is_ok(),
        "exactly max_token_bytes is fine"
    );
    let small = Authenticator::new(&config(JWT), t.len() - 1, &fixtures(), &env).unwrap();
    assert_eq!(small.authenticate_now(&h), invalid(InvalidReason::TooLarge));
    assert_eq!(
        small.verify_jwt_now(&t),
        Err(AuthFailure::Invalid(InvalidReason::TooLarge))
    );

    let junk = "!".repeat(MAX + 1);
    assert_eq!(
        auth(&[("authorization", &format!("Bearer {junk}"))]),
        invalid(InvalidReason::TooLarge)
    );
    // A whole header beyond max_token_bytes plus room for a scheme is refused unread.
    let huge = "!".repeat(MAX + SCHEME_ALLOWANCE);
    assert_eq!(
        auth(&[("authorization", &format!("Bogus {huge}"))]),
        invalid(InvalidReason::TooLarge)
    );
    assert_eq!(
        auth(&[("x-api-key", &junk)]),
        invalid(InvalidReason::TooLarge)
    );

    // An API key in `Authorization` is held to the same limit.
    let cfg = config("api_keys: { header: Authorization, file: api_keys.yaml }\n");
    let key = "test-api-key-1";
    let exact = Authenticator::new(&cfg, key.len(), &fixtures(), &env).unwrap();
    let h = headers(&[("authorization", "ApiKey test-api-key-1")]);
    assert!(exact.authenticate_now(&h).is_ok());
    let short = Authenticator::new(&cfg, key.len() - 1, &fixtures(), &env).unwrap();
    assert_eq!(short.authenticate_now(&h), invalid(InvalidReason::TooLarge));
}

#[test]
fn api_keys_are_swapped() {
    let a = authenticator("X-API-Key");
    let h = headers(&[("x-api-key", "test")]);
    assert_eq!(
        a.authenticate_now(&h),
        invalid(InvalidReason::UnknownApiKey)
    );
    let keys = ApiKeys::from_yaml_str(
        std::path::Path::new("new.yaml"),
        "keys:\n  - { sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, subject: new }\n",
    )
    .unwrap();
    a.set_api_keys(keys);
    assert_eq!(
        a.authenticate_now(&h).unwrap().subject.as_deref(),
        Some("new")
    );
    let old = headers(&[("x-api-key", "test-api-key-1")]);
    assert_eq!(
        a.authenticate_now(&old),
        invalid(InvalidReason::UnknownApiKey)
    );
}

#[test]
fn verify_jwt_for_explain() {
    let a = authenticator("X-API-Key");
    let c = json!({ "iss": "https://idp.example.com/", "exp": now() + 60.0, "roles": ["admin"] });
    let p = a
        .verify_jwt_now(&sign_hmac(HS256, None, SECRET.as_bytes(), &c))
        .unwrap();
    assert_eq!(p.roles, ["admin"]);
    assert_eq!(p.scopes, None);
    assert_eq!(
        a.verify_jwt_now(""),
        Err(AuthFailure::Invalid(InvalidReason::Malformed))
    );
    assert_eq!(
        a.verify_jwt_now("a b.c.d"),
        Err(AuthFailure::Invalid(InvalidReason::Malformed))
    );

    let keys_only = config("api_keys: { file: api_keys.yaml }\n");
    let a = Authenticator::new(&keys_only, MAX, &fixtures(), &env).unwrap();
    assert_eq!(
        a.verify_jwt_now(&token()),
        Err(AuthFailure::Invalid(InvalidReason::UnknownIssuer))
    );
    let h = headers(&[("authorization", &format!("Bearer {}", token()))]);
    assert_eq!(
        a.authenticate_now(&h),
        invalid(InvalidReason::UnknownIssuer)
    );
}

#[test]
fn nothing_configured_accepts_nothing() {
    let a = Authenticator::new(&AuthConfig::default(), MAX, &fixtures(), &env).unwrap();
    assert_eq!(
        a.authenticate_now(&headers(&[("x-api-key", "test-api-key-1")])),
        Err(AuthFailure::Missing)
    );
    assert_eq!(
        a.authenticate_now(&headers(&[("authorization", "ApiKey test-api-key-1")])),
        invalid(InvalidReason::UnknownScheme)
    );
}

#[test]
fn setup_errors_name_the_problem() {
    let bad_header = config("api_keys: { header: 'X API Key', file: api_keys.yaml }\n");
    let e = Authenticator::new(&bad_header, MAX, &fixtures(), &env)
        .err()
        .unwrap();
    assert!(matches!(e, AuthSetupError::BadHeaderName { .. }), "{e}");
    let missing = config("api_keys: { file: nope.yaml }\n");
    let e = Authenticator::new(&missing, MAX, &fixtures(), &env)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("nope.yaml"), "{e}");
    let no_secret = config(JWT);
    let e = Authenticator::new(&no_secret, MAX, &fixtures(), &|_| None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("JWT_SECRET") && e.contains("https://idp.example.com/"),
        "{e}"
    );
}

#[test]
fn failures_display_without_credentials() {
    let c = json!({ "iss": "https://idp.example.com/", "exp": now() + 60.0 });
    let t = sign_hmac(HS256, None, b"not-the-configured-secret-at-all", &c);
    let failure = auth(&[("authorization", &format!("Bearer {t}"))]).unwrap_err();
    assert_eq!(failure, AuthFailure::Invalid(InvalidReason::BadSignature));
    assert_eq!(failure.to_string(), "invalid credentials: bad_signature");
    assert_eq!(failure.reason(), "invalid_token");
    assert_eq!(AuthFailure::Missing.reason(), "missing_credentials");
    assert!(!format!("{failure:?}").contains(&t[..20]));
}

impl Authenticator {
    /// `authenticate` for tests of paths that never wait.
    fn authenticate_now(&self, headers: &HeaderMap) -> Result<Arc<Principal>, AuthFailure> {
        ready(self.authenticate(headers))
    }

    /// `verify_jwt` for tests of paths that never wait.
    fn verify_jwt_now(&self, token: &str) -> Result<Arc<Principal>, AuthFailure> {
        ready(self.verify_jwt(token))
    }
}
