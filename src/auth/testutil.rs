//! Shared by the auth tests: fixture paths, token minting, config parsing.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

use crate::config::auth::AuthConfig;

/// `tests/fixtures` of this crate: test-only PEM key pairs and an API key file.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The HMAC secret behind `JWT_SECRET` in tests.
pub const SECRET: &str = "a-test-only-hmac-secret-of-32-by";

/// The test environment: only `JWT_SECRET` is set.
pub fn env(name: &str) -> Option<String> {
    (name == "JWT_SECRET").then(|| SECRET.to_string())
}

/// Parses an `auth:` section.
pub fn config(yaml: &str) -> AuthConfig {
    crate::yaml::from_str(Path::new("test.yaml"), yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn header(alg: Algorithm, kid: Option<&str>) -> Header {
    let mut h = Header::new(alg);
    h.kid = kid.map(String::from);
    h
}

/// A token signed with the private key in `tests/fixtures/keys/<name>.key.pem`.
pub fn sign(alg: Algorithm, kid: Option<&str>, name: &str, claims: &Value) -> String {
    let pem = std::fs::read(fixtures().join(format!("keys/{name}.key.pem"))).unwrap();
    let key = match name {
        n if n.starts_with("rsa") => EncodingKey::from_rsa_pem(&pem),
        n if n.starts_with("ec") => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .unwrap();
    jsonwebtoken::encode(&header(alg, kid), claims, &key).unwrap()
}

/// A token HMAC-signed with `secret`.
pub fn sign_hmac(alg: Algorithm, kid: Option<&str>, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&header(alg, kid), claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// A hand-built token: any header, any payload, a dummy signature.
pub fn handmade(header: &Value, claims: &Value, signature: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.{signature}", part(header), part(claims))
}

/// The public JWK of fixture key `<name>` with `alg` and `kid`.
pub fn jwk(name: &str, alg: Algorithm, kid: &str) -> Value {
    let pem = std::fs::read(fixtures().join(format!("keys/{name}.pub.pem"))).unwrap();
    let key = match name {
        n if n.starts_with("rsa") => jsonwebtoken::DecodingKey::from_rsa_pem(&pem),
        n if n.starts_with("ec") => jsonwebtoken::DecodingKey::from_ec_pem(&pem),
        _ => jsonwebtoken::DecodingKey::from_ed_pem(&pem),
    }
    .unwrap();
    let mut jwk = jsonwebtoken::jwk::Jwk::from_decoding_key(&key, Some(alg)).unwrap();
    jwk.common.key_id = Some(kid.to_string());
    serde_json::to_value(jwk).unwrap()
}

/// A JWK Set of `keys`.
pub fn set(keys: &[Value]) -> Value {
    serde_json::json!({ "keys": keys })
}

/// Runs a future that must complete without waiting (the static-key path never awaits).
pub fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the future waited"),
    }
}
