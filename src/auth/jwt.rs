//! Bearer JWT verification for every configured issuer, with the verified-token cache.
//!
//! A token picks its issuer by its (unverified) `iss`, and is then checked with that
//! issuer's keys and algorithm allow-list only: one issuer's keys never verify another
//! issuer's tokens, and the token's `alg` never changes how a key is used. Claim checks
//! are done here rather than by jsonwebtoken so the clock can be injected and so
//! "expired" is reported only when the time checks are the sole failure.
//!
//! Keys of an issuer with `discovery`/`jwks_uri` are fetched and refreshed by
//! [`super::refresh`]; a token whose `kid` none of them has triggers one (rate-limited)
//! refetch before it is refused.

mod issuer;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::errors::ErrorKind;
use metrics::Counter;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::claims::{first_present, lookup, strings};
use super::jwks::JwksError;
use super::keys::KeyError;
#[cfg(test)]
use super::keys::load_key;
use super::refresh::{RefreshError, Refreshed};
use super::token_cache::{self, Entry, TokenCache};
use super::{AuthFailure, InvalidReason, Principal};
use crate::config::auth::{ClaimsConfig, JwtConfig};
use issuer::Issuer;

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
    #[error("issuer `{issuer}` has no `keys`: give `keys`, `discovery` or `jwks_uri`")]
    NoKeys { issuer: String },
    #[error("issuer `{issuer}`: give only one of `keys`, `discovery` or `jwks_uri`")]
    KeySources { issuer: String },
    #[error("issuer `{issuer}`: {error}")]
    Remote { issuer: String, error: JwksError },
    #[error(
        "issuer `{issuer}`: {alg:?} keys are never taken from a URL; use a static `secret_env` key"
    )]
    HmacFromUrl { issuer: String, alg: Algorithm },
    #[error("issuer `{issuer}`: `refresh` needs 1s <= min <= max")]
    RefreshBounds { issuer: String },
    #[error("issuer `{issuer}`: `ca` and `refresh` apply only to `discovery` / `jwks_uri`")]
    OnlyForRemote { issuer: String },
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
    issuers: Vec<Issuer>,
    by_name: HashMap<String, usize>,
    claims: ClaimsConfig,
    cache: TokenCache,
    /// The cache's hit and miss counters, registered at the first request (the recorder
    /// is installed by then) so later ones skip the registry's lock and look-up.
    cache_counters: OnceLock<[Counter; 2]>,
}

/// One verification against the keys in force, with what the cache and the unknown-kid
/// refetch need to know about it.
struct Attempt {
    /// The issuer the token named, when it is a configured one.
    issuer: Option<usize>,
    /// That issuer's key-set generation the attempt used.
    generation: u64,
    /// The principal and the moment it expires, or why not.
    result: Result<(Principal, f64), AuthFailure>,
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
    /// Issuers with `discovery`/`jwks_uri` start without keys: see [`JwtVerifier::refresh`].
    pub fn new(
        cfg: &JwtConfig,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, JwtSetupError> {
        if cfg.issuers.is_empty() {
            return Err(JwtSetupError::NoIssuers);
        }
        let mut issuers = Vec::with_capacity(cfg.issuers.len());
        let mut by_name = HashMap::new();
        for (index, ic) in cfg.issuers.iter().enumerate() {
            if ic.issuer.is_empty() {
                return Err(JwtSetupError::EmptyIssuer { index });
            }
            if by_name.insert(ic.issuer.clone(), index).is_some() {
                return Err(JwtSetupError::DuplicateIssuer {
                    issuer: ic.issuer.clone(),
                });
            }
            issuers.push(Issuer::new(ic, base_dir, env)?);
        }
        Ok(JwtVerifier {
            issuers,
            by_name,
            claims: cfg.claims.clone(),
            cache: TokenCache::new(cfg.cache_size),
            cache_counters: OnceLock::new(),
        })
    }

    /// Verifies `token` now: from the cache when it was verified before under the
    /// issuer's current keys, else by signature (refetching the issuer's keys once if
    /// it names a `kid` they lack).
    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, AuthFailure> {
        let now = unix_now();
        let hash = token_cache::hash(token);
        let generation = |i: usize| self.issuers.get(i).map_or(0, |i| i.keys.generation());
        let [hits, misses] = self.cache_counters.get_or_init(|| {
            [
                metrics::counter!(token_cache::HITS),
                metrics::counter!(token_cache::MISSES),
            ]
        });
        if let Some(principal) = self.cache.get(&hash, now, generation) {
            hits.increment(1);
            return Ok(principal);
        }
        misses.increment(1);
        let mut attempt = self.attempt(token, now);
        if let (Err(AuthFailure::Invalid(InvalidReason::NoMatchingKey)), Some(index)) =
            (&attempt.result, attempt.issuer)
        {
            let issuer = &self.issuers[index];
            if let Some(remote) = &issuer.remote {
                // Boxed: the rare fetch must not make every request's future larger.
                Box::pin(remote.refetch_for_unknown_kid(
                    &issuer.name,
                    &issuer.allowed,
                    &issuer.keys,
                    || self.cache.clear_issuer(index),
                ))
                .await;
                if issuer.keys.generation() != attempt.generation {
                    attempt = self.attempt(token, unix_now());
                }
            }
        }
        let (principal, expires_at) = attempt.result?;
        let principal = Arc::new(principal);
        if let Some(issuer) = attempt.issuer {
            self.cache.insert(Entry {
                hash,
                issuer,
                generation: attempt.generation,
                expires_at,
                principal: principal.clone(),
            });
        }
        Ok(principal)
    }

    /// Verifies `token` as of `now` (seconds since the epoch) with the keys in force;
    /// no cache, no fetching (tests).
    #[cfg(test)]
    pub fn verify_at(&self, token: &str, now: f64) -> Result<Principal, AuthFailure> {
        self.attempt(token, now).result.map(|(p, _)| p)
    }

    /// True once every issuer has a key set (static ones from the start).
    pub fn is_ready(&self) -> bool {
        self.issuers.iter().all(|i| i.keys.snapshot().loaded)
    }

    /// The issuers whose keys are fetched, by index.
    pub fn remote_issuers(&self) -> impl Iterator<Item = (usize, &str)> {
        self.issuers
            .iter()
            .enumerate()
            .filter(|(_, i)| i.remote.is_some())
            .map(|(n, i)| (n, i.name.as_str()))
    }

    /// Fetches issuer `index`'s keys now; a change empties its part of the cache.
    /// `None`: the issuer's keys are static.
    pub async fn refresh(&self, index: usize) -> Option<Result<Refreshed, RefreshError>> {
        let issuer = self.issuers.get(index)?;
        let remote = issuer.remote.as_ref()?;
        Some(
            remote
                .refresh(&issuer.name, &issuer.allowed, &issuer.keys, || {
                    self.cache.clear_issuer(index)
                })
                .await,
        )
    }

    /// Keeps issuer `index`'s keys fresh until the task is dropped: refresh when due,
    /// retry with backoff after a failure (the last good keys stay in force meanwhile).
    pub async fn keep_fresh(self: Arc<Self>, index: usize) {
        let Some(bounds) = self
            .issuers
            .get(index)
            .and_then(|i| i.remote.as_ref())
            .map(|r| r.bounds)
        else {
            return;
        };
        let mut failures = 0u32;
        while let Some(result) = self.refresh(index).await {
            let wait = match result {
                Ok(r) => {
                    failures = 0;
                    r.next
                }
                Err(_) => {
                    failures = failures.saturating_add(1);
                    bounds.retry_after(failures)
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Entries in the verified-token cache (tests).
    #[cfg(test)]
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    fn attempt(&self, token: &str, now: f64) -> Attempt {
        let mut attempt = Attempt {
            issuer: None,
            generation: 0,
            result: Err(AuthFailure::Invalid(InvalidReason::Malformed)),
        };
        attempt.result = self.check(token, now, &mut attempt);
        attempt
    }

    /// The checks, in order; fills in `attempt`'s issuer and generation as it finds them.
    fn check(
        &self,
        token: &str,
        now: f64,
        attempt: &mut Attempt,
    ) -> Result<(Principal, f64), AuthFailure> {
        let invalid = AuthFailure::Invalid;
        // Checked after the cache lookup: a cached token passed this already.
        if !token.bytes().all(|b| b.is_ascii_graphic()) || token.split('.').count() != 3 {
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
        let index = iss
            .and_then(|iss| self.by_name.get(&iss).copied())
            .ok_or(invalid(InvalidReason::UnknownIssuer))?;
        let issuer = &self.issuers[index];
        let keys = issuer.keys.snapshot();
        attempt.issuer = Some(index);
        attempt.generation = keys.generation;
        let validation = issuer
            .algorithms
            .iter()
            .find(|(alg, _)| *alg == header.alg)
            .map(|(_, v)| v)
            .ok_or(invalid(InvalidReason::AlgorithmNotAllowed))?;

        let matches_kid = |k: &&super::keys::VerifyKey| match &header.kid {
            Some(kid) => k.kid.as_deref() == Some(kid.as_str()),
            None => true,
        };
        let mut candidates = keys
            .keys
            .iter()
            .filter(|k| k.alg == header.alg)
            .filter(matches_kid)
            .peekable();
        if candidates.peek().is_none() {
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
        let expires_at = issuer.check_claims(&claims, now)?;
        Ok((self.principal(issuer, claims), expires_at))
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

/// Seconds since the epoch, as JWT time claims count them.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
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
mod cache_tests;
#[cfg(test)]
mod mapping_tests;
#[cfg(test)]
mod tests;
