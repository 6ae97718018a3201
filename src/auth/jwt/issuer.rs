//! One trusted issuer: where its keys come from (static config or its IdP), which
//! algorithms it may use, and the claim checks its tokens must pass.

use std::path::Path;

use jsonwebtoken::{Algorithm, AlgorithmFamily, Validation};
use serde_json::{Map, Value};

use super::JwtSetupError;
use crate::auth::jwks::{HttpFetcher, parse_url};
use crate::auth::keys::{KeyStore, load_key, parse_algorithm};
use crate::auth::refresh::{Bounds, RemoteKeys, Source};
use crate::auth::{AuthFailure, InvalidReason};
use crate::config::auth::{IssuerConfig, RefreshConfig};

/// The algorithm an issuer fetched from a URL may use when its config names none: the
/// one OpenID Connect requires every provider to support.
const DEFAULT_REMOTE_ALGORITHM: Algorithm = Algorithm::RS256;

/// A background refresh more often than this would hammer the IdP.
const MIN_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) struct Issuer {
    pub name: String,
    audiences: Vec<String>,
    /// The allow-list, each with the jsonwebtoken settings that check only the signature.
    pub algorithms: Vec<(Algorithm, Validation)>,
    /// The same allow-list, as the JWKS parser wants it.
    pub allowed: Vec<Algorithm>,
    pub leeway_secs: f64,
    pub require_scope_claim: bool,
    pub keys: KeyStore,
    /// Set when the keys come from the issuer's IdP rather than from config.
    pub remote: Option<RemoteKeys>,
}

impl Issuer {
    pub fn new(
        ic: &IssuerConfig,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, JwtSetupError> {
        let issuer = || ic.issuer.clone();
        let sources = [
            !ic.keys.is_empty(),
            ic.discovery.is_some(),
            ic.jwks_uri.is_some(),
        ];
        match sources.iter().filter(|s| **s).count() {
            0 => return Err(JwtSetupError::NoKeys { issuer: issuer() }),
            1 => {}
            _ => return Err(JwtSetupError::KeySources { issuer: issuer() }),
        }
        let allowed = parse_algorithms(ic)?;
        let (keys, remote, allowed) = if ic.keys.is_empty() {
            let allowed = if allowed.is_empty() {
                vec![DEFAULT_REMOTE_ALGORITHM]
            } else {
                allowed
            };
            if let Some(alg) = allowed.iter().find(|a| a.family() == AlgorithmFamily::Hmac) {
                return Err(JwtSetupError::HmacFromUrl {
                    issuer: issuer(),
                    alg: *alg,
                });
            }
            (KeyStore::pending(), Some(remote(ic, base_dir)?), allowed)
        } else {
            let (keys, allowed) = static_keys(ic, base_dir, env, allowed)?;
            (keys, None, allowed)
        };
        Ok(Issuer {
            name: ic.issuer.clone(),
            audiences: ic.audiences.clone(),
            algorithms: allowed.iter().map(|a| (*a, signature_only(*a))).collect(),
            allowed,
            leeway_secs: ic.leeway.as_secs_f64(),
            require_scope_claim: ic.require_scope_claim,
            keys,
            remote,
        })
    }

    /// Issuer, audience, then time: `Expired` only when nothing but the clock objects.
    /// On success, the moment (seconds since the epoch) from which the token is expired.
    pub fn check_claims(&self, claims: &Map<String, Value>, now: f64) -> Result<f64, AuthFailure> {
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
        let expires_at = exp + self.leeway_secs;
        if now >= expires_at {
            return Err(AuthFailure::Expired);
        }
        if nbf.is_some_and(|nbf| now + self.leeway_secs < nbf) {
            return Err(AuthFailure::Expired);
        }
        Ok(expires_at)
    }
}

/// The `algorithms:` list as written (duplicates dropped); `none` is refused.
fn parse_algorithms(ic: &IssuerConfig) -> Result<Vec<Algorithm>, JwtSetupError> {
    let mut allowed: Vec<Algorithm> = Vec::new();
    for name in &ic.algorithms {
        let alg = parse_algorithm(name).map_err(|error| JwtSetupError::Algorithm {
            issuer: ic.issuer.clone(),
            error,
        })?;
        if !allowed.contains(&alg) {
            allowed.push(alg);
        }
    }
    Ok(allowed)
}

/// The fetching side of an issuer with `discovery` or `jwks_uri`.
fn remote(ic: &IssuerConfig, base_dir: &Path) -> Result<RemoteKeys, JwtSetupError> {
    let fail = |error| JwtSetupError::Remote {
        issuer: ic.issuer.clone(),
        error,
    };
    let source = match (&ic.discovery, &ic.jwks_uri) {
        (Some(url), _) => Source::Discovery(parse_url(url).map_err(fail)?),
        (None, Some(url)) => Source::Jwks(parse_url(url).map_err(fail)?),
        (None, None) => {
            return Err(JwtSetupError::NoKeys {
                issuer: ic.issuer.clone(),
            });
        }
    };
    let url = match &source {
        Source::Discovery(u) | Source::Jwks(u) => u,
    };
    let https = url.scheme() == Some(&http::uri::Scheme::HTTPS);
    let ca = ic.ca.as_ref().map(|ca| base_dir.join(ca));
    let fetcher = HttpFetcher::new(ca.as_deref(), https).map_err(fail)?;
    let RefreshConfig { min, max } = ic.refresh.clone().unwrap_or_default();
    if min < MIN_REFRESH || min > max {
        return Err(JwtSetupError::RefreshBounds {
            issuer: ic.issuer.clone(),
        });
    }
    Ok(RemoteKeys::new(source, fetcher, Bounds { min, max }))
}

/// Keys from config, checked against the allow-list (empty: the keys' own algorithms).
fn static_keys(
    ic: &IssuerConfig,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    mut allowed: Vec<Algorithm>,
) -> Result<(KeyStore, Vec<Algorithm>), JwtSetupError> {
    let issuer = || ic.issuer.clone();
    if ic.ca.is_some() || ic.refresh.is_some() {
        return Err(JwtSetupError::OnlyForRemote { issuer: issuer() });
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
    if let Some(alg) = allowed.iter().find(|a| !keys.iter().any(|k| k.alg == **a)) {
        return Err(JwtSetupError::AlgorithmWithoutKey {
            issuer: issuer(),
            alg: *alg,
        });
    }
    if allowed.is_empty() {
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
    Ok((KeyStore::new(keys), allowed))
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
