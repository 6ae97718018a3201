//! Token header and claims parsing through `Authenticator::verify_jwt`, with static keys
//! (HS256, RS256, ES256, EdDSA). The first byte picks the mode:
//! - even: the rest is taken as a token string, as a client would send it;
//! - odd: the rest is split at the first NUL into header and claims JSON, and the target
//!   signs them with the HS256 issuer's secret itself, so the fuzzer reaches the claims
//!   checks and the principal mapping behind a valid signature.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use scopegate::auth::Authenticator;
use scopegate::config::auth::AuthConfig;

const SECRET: &str = "fuzz-secret-0123456789abcdef0123456789";

const AUTH: &str = r#"
jwt:
  issuers:
    - issuer: hs
      audiences: [api]
      keys: [{ alg: HS256, secret_env: FUZZ_SECRET }]
    - issuer: rs
      keys: [{ kid: r1, alg: RS256, pem_file: rsa1.pub.pem }]
    - issuer: ec
      keys: [{ kid: e1, alg: ES256, pem_file: ec256.pub.pem }]
    - issuer: ed
      keys: [{ alg: EdDSA, pem_file: ed25519.pub.pem }]
  claims:
    scopes: [scope, scp, permissions]
    roles: [role, roles, realm_access.roles]
    subject: sub
"#;

fn authenticator() -> &'static Authenticator {
    static AUTHN: OnceLock<Authenticator> = OnceLock::new();
    AUTHN.get_or_init(|| {
        let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keys");
        let mut cfg: AuthConfig =
            scopegate::yaml::from_str(Path::new("fuzz.yaml"), AUTH).expect("auth config");
        cfg.resolve_paths(&keys);
        let env = |name: &str| (name == "FUZZ_SECRET").then(|| SECRET.to_string());
        Authenticator::new(&cfg, 8192, &keys, &env).expect("authenticator")
    })
}

/// Verification is async (an unknown kid may refetch keys); with static keys it never
/// waits, so a current-thread runtime drives it to completion at once.
fn verify(token: &str) -> Result<std::sync::Arc<scopegate::auth::Principal>, scopegate::auth::AuthFailure> {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let rt = RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    });
    rt.block_on(authenticator().verify_jwt(token))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(token) = std::str::from_utf8(rest) {
            let _ = verify(token);
        }
        return;
    }
    let (header, claims) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&br#"{"alg":"HS256"}"#[..], rest),
    };
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let Ok(sig) = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256) else {
        return;
    };
    let token = format!("{message}.{sig}");
    if let Ok(principal) = verify(&token) {
        // Whatever verified came from the one issuer whose secret signed it.
        let claims: serde_json::Value = serde_json::from_slice(claims).expect("verified JSON");
        assert_eq!(claims["iss"], "hs", "{principal:?}");
    }
});
