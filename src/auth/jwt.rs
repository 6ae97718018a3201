//! Bearer JWT verification against statically configured issuers.
//!
//! A token picks its issuer by its (unverified) `iss`, and is then checked with that
//! issuer's keys and algorithm allow-list only: one issuer's keys never verify another
//! issuer's tokens, and the token's `alg` never changes how a key is used. Claim checks
//! are done here rather than by jsonwebtoken so the clock can be injected and so
//! "expired" is reported only when the time checks are the sole failure.

use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::claims::{first_present, lookup, strings};
use super::keys::{KeyError, KeyStore, load_key, parse_algorithm};
use super::{AuthFailure, InvalidReason, Principal};
use crate::config::auth::{ClaimsConfig, IssuerConfig, JwtConfig};

/// Why the JWT part of the auth config cannot be honoured; names issuers, files and
/// variables, never key material.
#[derive(Debug, thiserror::Error)]
pub enum JwtSetupError {
    #[error("auth.jwt.issuers is empty: list at least one issuer or remove `jwt`")]
    NoIssuers,
    #[error("auth.jwt.issuers[{index}]: `issuer` must not be empty")]
    EmptyIssuer { index: usize },
    #[error("issuer `{issuer}` is listed twice")]
    DuplicateIssuer { issuer: String },
    #[error(
        "issuer `{issuer}`: `discovery` / `jwks_uri` are not supported yet; configure static `keys`"
    )]
    JwksNotSupported { issuer: String },
    #[error("issuer `{issuer}` has no `keys`")]
    NoKeys { issuer: String },
    #[error("issuer `{issuer}`, {key}: {error}")]
    Key {
        issuer: String,
        key: String,
        error: KeyError,
    },
    #[error("issuer `{issuer}`, algorithms: {error}")]
    Algorithm { issuer: String, error: KeyError },
    #[error("issuer `{issuer}`: kid `{kid}` is used by more than one key")]
    DuplicateKid { issuer: String, kid: String },
    #[error(
        "issuer `{issuer}`: algorithm {alg:?} is allowed but no key has that `alg` (HS* need a `secret_env` key)"
    )]
    AlgorithmWithoutKey { issuer: String, alg: Algorithm },
    #[error("issuer `{issuer}`, {key}: its alg {alg:?} is not in the issuer's `algorithms`")]
    KeyAlgorithmNotAllowed {
        issuer: String,
        key: String,
        alg: Algorithm,
    },
}

/// Verifies bearer JWTs for every configured issuer.
pub(crate) struct JwtVerifier {
    issuers: HashMap<String, Issuer>,
    claims: ClaimsConfig,
}

struct Issuer {
    name: String,
    audiences: Vec<String>,
    /// The allow-list, each with the jsonwebtoken settings that check only the signature.
    algorithms: Vec<(Algorithm, Validation)>,
    leeway_secs: f64,
    require_scope_claim: bool,
    keys: KeyStore,
}

/// The only payload field read before the signature is checked: it picks the issuer.
#[derive(Deserialize)]
struct UnverifiedIss {
    iss: Option<String>,
}

/// Enough of a header to tell "unsupported algorithm" from "garbage".
#[derive(Deserialize)]
struct RawAlg {
    alg: String,
}

impl JwtVerifier {
    /// Builds every issuer's keys and allow-list; any doubt is a setup error (fail closed).
    pub fn new(
        cfg: &JwtConfig,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, JwtSetupError> {
        if cfg.issuers.is_empty() {
            return Err(JwtSetupError::NoIssuers);
        }
        let mut issuers = HashMap::new();
        for (index, ic) in cfg.issuers.iter().enumerate() {
            if ic.issuer.is_empty() {
                return Err(JwtSetupError::EmptyIssuer { index });
            }
            let issuer = Issuer::new(ic, base_dir, env)?;
            if issuers.insert(ic.issuer.clone(), issuer).is_some() {
                return Err(JwtSetupError::DuplicateIssuer {
                    issuer: ic.issuer.clone(),
                });
            }
        }
        Ok(JwtVerifier {
            issuers,
            claims: cfg.claims.clone(),
        })
    }

    /// Verifies `token` as of the current time.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthFailure> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        self.verify_at(token, now)
    }

    /// Verifies `token` as of `now` (seconds since the epoch).
    pub fn verify_at(&self, token: &str, now: f64) -> Result<Principal, AuthFailure> {
        let invalid = AuthFailure::Invalid;
        if token.split('.').count() != 3 {
            return Err(invalid(InvalidReason::Malformed));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| header_failure(token))?;
        if header.crit.is_some() {
            // RFC 7515 §4.1.11: extensions we do not understand must be refused.
            return Err(invalid(InvalidReason::Malformed));
        }
        let iss = jsonwebtoken::dangerous::insecure_decode_claims::<UnverifiedIss>(token)
            .map_err(|_| invalid(InvalidReason::Malformed))?
            .iss;
        let issuer = iss
            .and_then(|iss| self.issuers.get(&iss))
            .ok_or(invalid(InvalidReason::UnknownIssuer))?;
        let validation = issuer
            .algorithms
            .iter()
            .find(|(alg, _)| *alg == header.alg)
            .map(|(_, v)| v)
            .ok_or(invalid(InvalidReason::AlgorithmNotAllowed))?;

        let keys = issuer.keys.snapshot();
        let candidates: Vec<_> = match &header.kid {
            Some(kid) => keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid.as_str()) && k.alg == header.alg)
                .collect(),
            None => keys.iter().filter(|k| k.alg == header.alg).collect(),
        };
        if candidates.is_empty() {
            return Err(invalid(InvalidReason::NoMatchingKey));
        }
        let mut claims = None;
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) => match e.kind() {
                    // Not this key: try the next one of the same algorithm.
                    ErrorKind::InvalidSignature
                    | ErrorKind::InvalidKeyFormat
                    | ErrorKind::InvalidRsaKey(_)
                    | ErrorKind::InvalidEcdsaKey
                    | ErrorKind::InvalidEddsaKey => continue,
                    ErrorKind::InvalidAlgorithm => {
                        return Err(invalid(InvalidReason::AlgorithmNotAllowed));
                    }
                    _ => return Err(invalid(InvalidReason::Malformed)),
                },
            }
        }
        let claims = claims.ok_or(invalid(InvalidReason::BadSignature))?;
        issuer.check_claims(&claims, now)?;
        Ok(self.principal(issuer, claims))
    }

    /// Maps verified claims onto a principal per the `claims:` config.
    fn principal(&self, issuer: &Issuer, claims: Map<String, Value>) -> Principal {
        let scopes = match first_present(&claims, &self.claims.scopes) {
            Some(v) => Some(strings(v)),
            None if issuer.require_scope_claim => Some(Vec::new()),
            None => None,
        };
        let roles = first_present(&claims, &self.claims.roles)
            .map(strings)
            .unwrap_or_default();
        let subject = lookup(&claims, &self.claims.subject)
            .and_then(Value::as_str)
            .map(String::from);
        Principal {
            subject,
            roles,
            scopes,
            claims,
        }
    }
}

impl Issuer {
    fn new(
        ic: &IssuerConfig,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, JwtSetupError> {
        let issuer = || ic.issuer.clone();
        if ic.discovery.is_some() || ic.jwks_uri.is_some() {
            return Err(JwtSetupError::JwksNotSupported { issuer: issuer() });
        }
        if ic.keys.is_empty() {
            return Err(JwtSetupError::NoKeys { issuer: issuer() });
        }
        let label = |i: usize| match &ic.keys[i].kid {
            Some(kid) => format!("keys[{i}] (kid `{kid}`)"),
            None => format!("keys[{i}]"),
        };
        let mut keys = Vec::with_capacity(ic.keys.len());
        for (i, kc) in ic.keys.iter().enumerate() {
            let key = load_key(kc, base_dir, env).map_err(|error| JwtSetupError::Key {
                issuer: issuer(),
                key: label(i),
                error,
            })?;
            if let Some(kid) = &kc.kid
                && ic.keys[..i].iter().any(|k| k.kid.as_ref() == Some(kid))
            {
                return Err(JwtSetupError::DuplicateKid {
                    issuer: issuer(),
                    kid: kid.clone(),
                });
            }
            keys.push(key);
        }

        let mut allowed: Vec<Algorithm> = Vec::new();
        for name in &ic.algorithms {
            let alg = parse_algorithm(name).map_err(|error| JwtSetupError::Algorithm {
                issuer: issuer(),
                error,
            })?;
            if !keys.iter().any(|k| k.alg == alg) {
                return Err(JwtSetupError::AlgorithmWithoutKey {
                    issuer: issuer(),
                    alg,
                });
            }
            if !allowed.contains(&alg) {
                allowed.push(alg);
            }
        }
        if ic.algorithms.is_empty() {
            // No explicit list: exactly the algorithms of the configured keys.
            for k in &keys {
                if !allowed.contains(&k.alg) {
                    allowed.push(k.alg);
                }
            }
        }
        if let Some((i, k)) = keys
            .iter()
            .enumerate()
            .find(|(_, k)| !allowed.contains(&k.alg))
        {
            return Err(JwtSetupError::KeyAlgorithmNotAllowed {
                issuer: issuer(),
                key: label(i),
                alg: k.alg,
            });
        }

        Ok(Issuer {
            name: ic.issuer.clone(),
            audiences: ic.audiences.clone(),
            algorithms: allowed
                .into_iter()
                .map(|a| (a, signature_only(a)))
                .collect(),
            leeway_secs: ic.leeway.as_secs_f64(),
            require_scope_claim: ic.require_scope_claim,
            keys: KeyStore::new(keys),
        })
    }

    /// Issuer, audience, then time: `Expired` only when nothing but the clock objects.
    fn check_claims(&self, claims: &Map<String, Value>, now: f64) -> Result<(), AuthFailure> {
        let invalid = AuthFailure::Invalid;
        if claims.get("iss").and_then(Value::as_str) != Some(self.name.as_str()) {
            return Err(invalid(InvalidReason::WrongIssuer));
        }
        if !self.audiences.is_empty() {
            let ok = match claims.get("aud") {
                Some(Value::String(aud)) => self.audiences.contains(aud),
                Some(Value::Array(auds)) => auds
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|a| self.audiences.iter().any(|want| want == a)),
                _ => false,
            };
            if !ok {
                return Err(invalid(InvalidReason::WrongAudience));
            }
        }
        let exp = match claims.get("exp") {
            None | Some(Value::Null) => return Err(invalid(InvalidReason::MissingExp)),
            Some(v) => v.as_f64().ok_or(invalid(InvalidReason::Malformed))?,
        };
        let nbf = match claims.get("nbf") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_f64().ok_or(invalid(InvalidReason::Malformed))?),
        };
        // RFC 7519 §4.1.4: valid only *before* exp; §4.1.5: valid from nbf on.
        if now >= exp + self.leeway_secs {
            return Err(AuthFailure::Expired);
        }
        if nbf.is_some_and(|nbf| now + self.leeway_secs < nbf) {
            return Err(AuthFailure::Expired);
        }
        Ok(())
    }
}

/// jsonwebtoken settings that check the algorithm and signature only; the claims are
/// checked by `Issuer::check_claims`.
fn signature_only(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.leeway = 0;
    v
}

/// A header jsonwebtoken could not read: an `alg` it does not know (`none`, `HS1`, ...)
/// is a refused algorithm, anything else is malformed.
fn header_failure(token: &str) -> AuthFailure {
    let unknown_alg = token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|json| serde_json::from_slice::<RawAlg>(&json).ok())
        .is_some_and(|raw| raw.alg.parse::<Algorithm>().is_err());
    AuthFailure::Invalid(if unknown_alg {
        InvalidReason::AlgorithmNotAllowed
    } else {
        InvalidReason::Malformed
    })
}

#[cfg(test)]
mod mapping_tests;
#[cfg(test)]
mod tests;
