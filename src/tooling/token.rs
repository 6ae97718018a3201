//! `scopegate token`: development HS256 tokens, so a policy can be tried without an IdP.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Map, Value};

/// What goes into a development token.
#[derive(Debug, Clone, Default)]
pub struct TokenSpec {
    pub sub: Option<String>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub iss: Option<String>,
    pub aud: Option<String>,
    pub ttl: Option<Duration>,
    /// `k=v` pairs; a value that parses as JSON is taken as JSON, otherwise as a string.
    pub claims: Vec<(String, String)>,
}

/// Why no token could be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error("the clock is before 1970")]
    Clock,
}

/// The default issuer of development tokens (and of the demo's gateway).
pub const DEFAULT_ISSUER: &str = "scopegate";

/// Signs `spec` with HS256 and `secret` (its raw bytes).
pub fn mint(secret: &[u8], spec: &TokenSpec) -> Result<String, TokenError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| TokenError::Clock)?
        .as_secs();
    let ttl = spec.ttl.unwrap_or(Duration::from_secs(3600)).as_secs();
    let mut claims = Map::new();
    claims.insert(
        "iss".into(),
        spec.iss.as_deref().unwrap_or(DEFAULT_ISSUER).into(),
    );
    if let Some(sub) = &spec.sub {
        claims.insert("sub".into(), sub.as_str().into());
    }
    if let Some(aud) = &spec.aud {
        claims.insert("aud".into(), aud.as_str().into());
    }
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + ttl).into());
    if !spec.roles.is_empty() {
        claims.insert("roles".into(), spec.roles.clone().into());
    }
    if !spec.scopes.is_empty() {
        claims.insert("scope".into(), spec.scopes.join(" ").into());
    }
    for (k, v) in &spec.claims {
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.clone()));
        claims.insert(k.clone(), value);
    }
    Ok(encode(
        &Header::default(),
        &Value::Object(claims),
        &EncodingKey::from_secret(secret),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, decode};

    #[test]
    fn minted_tokens_carry_the_documented_claims() {
        let spec = TokenSpec {
            sub: Some("u1".into()),
            roles: vec!["admin".into()],
            scopes: vec!["a:read".into(), "b:write".into()],
            claims: vec![
                ("projects".into(), r#"["p1"]"#.into()),
                ("team".into(), "blue".into()),
            ],
            ..Default::default()
        };
        let token = mint(b"s3cret", &spec).unwrap();
        let mut v = Validation::new(jsonwebtoken::Algorithm::HS256);
        v.set_issuer(&["scopegate"]);
        let data = decode::<Value>(&token, &DecodingKey::from_secret(b"s3cret"), &v).unwrap();
        let c = data.claims;
        assert_eq!(c["sub"], "u1");
        assert_eq!(c["scope"], "a:read b:write");
        assert_eq!(c["roles"][0], "admin");
        assert_eq!(c["projects"][0], "p1");
        assert_eq!(c["team"], "blue");
        assert!(c.get("aud").is_none());
        assert_eq!(
            c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
            3600
        );
    }
}
