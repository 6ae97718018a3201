//! Authentication: finds a request's credentials (a bearer JWT or an API key), checks
//! them, and yields the [`Principal`] the decision runs on (SPEC §3 step 4).
//!
//! Ambiguity is refused rather than resolved: two `Authorization` headers, two API-key
//! headers, or a token and a key together are all invalid, so no component in front
//! of or behind the gateway can disagree with it about who the caller is.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::header::{AUTHORIZATION, HeaderName};
use http::{HeaderMap, HeaderValue};

use crate::config::auth::AuthConfig;

mod api_key;
pub mod claims;
mod jwk_set;
mod jwks;
mod jwt;
mod keys;
mod refresh;
mod token_cache;

pub use api_key::{ApiKeyFileError, ApiKeys, load_api_keys};
pub use jwk_set::JwkSetError;
pub use jwks::JwksError;
pub use jwt::JwtSetupError;
pub use keys::KeyError;
pub use refresh::RefreshError;

/// Metric names recorded by authentication (SPEC §5).
pub mod metric_names {
    pub use super::refresh::REFRESHES as JWKS_REFRESHES;
    pub use super::token_cache::{HITS as TOKEN_CACHE_HITS, MISSES as TOKEN_CACHE_MISSES};
}

/// Describes the authentication metrics to the installed recorder (call once at start,
/// after installing it).
pub fn describe_metrics() {
    metrics::describe_counter!(
        metric_names::JWKS_REFRESHES,
        "Fetches of an issuer's keys (discovery + JWKS), by issuer and result"
    );
    metrics::describe_counter!(
        metric_names::TOKEN_CACHE_HITS,
        "Bearer tokens found in the verified-token cache"
    );
    metrics::describe_counter!(
        metric_names::TOKEN_CACHE_MISSES,
        "Bearer tokens that had to be verified"
    );
}

/// Who the caller is, after authentication: the input to the decision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Principal {
    /// The subject claim, or the API key's `subject`.
    pub subject: Option<String>,
    /// Roles as named by the credential; empty = none named (the policy's default role applies).
    pub roles: Vec<String>,
    /// `None`: no scope claim, so the caller is limited by role alone.
    pub scopes: Option<Vec<String>>,
    /// Verified claims, for `claim:` sources in the policy (empty for API keys).
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// Why a request's credentials were refused (never carries the credential itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// No credentials at all: 401 `missing_credentials`.
    #[error("missing credentials")]
    Missing,
    /// A valid token outside its `exp`/`nbf` window: 401 `expired_token`.
    #[error("expired token")]
    Expired,
    /// Anything else wrong with the credentials: 401 `invalid_token`.
    #[error("invalid credentials: {}", .0.as_str())]
    Invalid(InvalidReason),
}

impl AuthFailure {
    /// The SPEC's `reason` for the denial body and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing_credentials",
            AuthFailure::Expired => "expired_token",
            AuthFailure::Invalid(_) => "invalid_token",
        }
    }
}

/// The detail behind `AuthFailure::Invalid`, for logs (clients only see `invalid_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidReason {
    /// Not a well-formed header value, JWT or claim.
    Malformed,
    /// Longer than `limits.max_token_bytes`; refused before parsing.
    TooLarge,
    /// An `Authorization` scheme other than `Bearer` (or `ApiKey` where configured).
    UnknownScheme,
    /// `Authorization` or the API-key header sent more than once.
    DuplicateAuthorization,
    /// A bearer token and an API key together: which one counts is never guessed.
    AmbiguousCredentials,
    /// The token's `iss` is not a configured issuer (or it has none).
    UnknownIssuer,
    /// `alg` is not in the issuer's allow-list (always the case for `none`).
    AlgorithmNotAllowed,
    /// No key of the issuer has the token's `kid` and `alg`.
    NoMatchingKey,
    /// No candidate key verifies the signature.
    BadSignature,
    /// The verified `iss` differs from the issuer whose keys verified it.
    WrongIssuer,
    /// `aud` names none of the issuer's `audiences`.
    WrongAudience,
    /// No `exp`: tokens that never expire are not accepted.
    MissingExp,
    /// The API key's hash is not in the key file.
    UnknownApiKey,
}

impl InvalidReason {
    /// A stable snake_case name for log fields.
    pub fn as_str(&self) -> &'static str {
        match self {
            InvalidReason::Malformed => "malformed",
            InvalidReason::TooLarge => "too_large",
            InvalidReason::UnknownScheme => "unknown_scheme",
            InvalidReason::DuplicateAuthorization => "duplicate_authorization",
            InvalidReason::AmbiguousCredentials => "ambiguous_credentials",
            InvalidReason::UnknownIssuer => "unknown_issuer",
            InvalidReason::AlgorithmNotAllowed => "algorithm_not_allowed",
            InvalidReason::NoMatchingKey => "no_matching_key",
            InvalidReason::BadSignature => "bad_signature",
            InvalidReason::WrongIssuer => "wrong_issuer",
            InvalidReason::WrongAudience => "wrong_audience",
            InvalidReason::MissingExp => "missing_exp",
            InvalidReason::UnknownApiKey => "unknown_api_key",
        }
    }
}

/// Errors setting the authenticator up from config (bad PEM, missing env var, ...):
/// the gateway refuses to start rather than authenticate with less than configured.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error(transparent)]
    Jwt(#[from] JwtSetupError),
    #[error("auth.api_keys.header: `{header}` is not a valid header name")]
    BadHeaderName { header: String },
    #[error(transparent)]
    ApiKeys(#[from] ApiKeyFileError),
    #[error("issuer `{issuer}`: cannot load its keys: {error}")]
    KeysUnavailable { issuer: String, error: RefreshError },
}

/// Room for the scheme and separator (`Bearer `, `ApiKey `) on top of `max_token_bytes`,
/// so an oversized header is refused before it is parsed at all.
const SCHEME_ALLOWANCE: usize = 16;

/// Checks credentials on every request; built once from config, shared by all requests.
pub struct Authenticator {
    jwt: Option<Arc<jwt::JwtVerifier>>,
    api_key_header: Option<ApiKeyHeader>,
    api_keys: ArcSwap<ApiKeys>,
    max_token_bytes: usize,
}

/// The background key refresh; dropping it stops it.
pub struct KeyRefresh {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for KeyRefresh {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Where API keys are sent.
enum ApiKeyHeader {
    /// `Authorization: ApiKey <key>`.
    Authorization,
    /// A header of its own, `X-API-Key` by default.
    Named(HeaderName),
}

/// A credential found in the request, not yet checked.
enum Credential<'a> {
    Bearer(&'a str),
    ApiKey(&'a str),
}

impl Authenticator {
    /// `base_dir`: relative paths in the config are relative to the config file's directory.
    /// `env`: how to read environment variables (tests pass a closure instead of mutating the process env).
    pub fn new(
        cfg: &AuthConfig,
        max_token_bytes: usize,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, AuthSetupError> {
        let jwt = match &cfg.jwt {
            Some(j) => Some(Arc::new(jwt::JwtVerifier::new(j, base_dir, env)?)),
            None => None,
        };
        let (api_key_header, api_keys) = match &cfg.api_keys {
            Some(k) => {
                let name = HeaderName::from_bytes(k.header.as_bytes()).map_err(|_| {
                    AuthSetupError::BadHeaderName {
                        header: k.header.clone(),
                    }
                })?;
                let header = if name == AUTHORIZATION {
                    ApiKeyHeader::Authorization
                } else {
                    ApiKeyHeader::Named(name)
                };
                (Some(header), load_api_keys(&base_dir.join(&k.file))?)
            }
            None => (None, ApiKeys::default()),
        };
        Ok(Authenticator {
            jwt,
            api_key_header,
            api_keys: ArcSwap::from_pointee(api_keys),
            max_token_bytes,
        })
    }

    /// Finds and checks the request's credentials (Authorization: Bearer <jwt>, or the
    /// API-key header). Completes without waiting unless a token names a `kid` its
    /// issuer's fetched keys lack (then the keys are refetched once, rate-limited).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Principal>, AuthFailure> {
        let authorization = single(headers, &AUTHORIZATION)?;
        let key_header = match &self.api_key_header {
            Some(ApiKeyHeader::Named(name)) => single(headers, name)?,
            _ => None,
        };
        let from_authorization = authorization
            .map(|v| self.parse_authorization(v))
            .transpose()?;
        let from_key_header = key_header.map(|v| self.parse_api_key(v)).transpose()?;
        match (from_authorization, from_key_header) {
            (None, None) => Err(AuthFailure::Missing),
            (Some(_), Some(_)) => Err(AuthFailure::Invalid(InvalidReason::AmbiguousCredentials)),
            (Some(Credential::Bearer(token)), None) => self.verify_jwt(token).await,
            (Some(Credential::ApiKey(key)), None) | (None, Some(key)) => self.check_api_key(key),
        }
    }

    /// Verifies a bare JWT, exactly as for a request (also used by `scopegate explain
    /// --token`, which runs it on a runtime after [`Authenticator::fetch_keys`]).
    pub async fn verify_jwt(&self, token: &str) -> Result<Arc<Principal>, AuthFailure> {
        if token.len() > self.max_token_bytes {
            return Err(AuthFailure::Invalid(InvalidReason::TooLarge));
        }
        if token.is_empty() {
            return Err(AuthFailure::Invalid(InvalidReason::Malformed));
        }
        match &self.jwt {
            Some(jwt) => jwt.verify(token).await,
            None => Err(AuthFailure::Invalid(InvalidReason::UnknownIssuer)),
        }
    }

    /// Replaces the API keys (the file is watched elsewhere); keys are swapped atomically (arc-swap).
    pub fn set_api_keys(&self, keys: ApiKeys) {
        self.api_keys.store(Arc::new(keys));
    }

    /// True once every issuer has keys to verify with (`/readyz`). Static keys count from
    /// the start; fetched ones after their first successful fetch, and from then on for
    /// good (a failed refresh keeps the last good keys).
    pub fn is_ready(&self) -> bool {
        self.jwt.as_ref().is_none_or(|j| j.is_ready())
    }

    /// Starts keeping every `discovery`/`jwks_uri` issuer's keys fresh in the background
    /// (first fetch at once). The tasks stop when the returned handle is dropped.
    /// Must be called on a tokio runtime.
    pub fn spawn_key_refresh(&self) -> KeyRefresh {
        let tasks = self
            .jwt
            .iter()
            .flat_map(|jwt| {
                jwt.remote_issuers()
                    .map(|(index, _)| tokio::spawn(jwt.clone().keep_fresh(index)))
                    .collect::<Vec<_>>()
            })
            .collect();
        KeyRefresh { tasks }
    }

    /// Fetches every `discovery`/`jwks_uri` issuer's keys once, now (for one-shot
    /// commands such as `explain`, which run no background refresh).
    pub async fn fetch_keys(&self) -> Result<(), AuthSetupError> {
        let Some(jwt) = &self.jwt else { return Ok(()) };
        for (index, name) in jwt.remote_issuers() {
            if let Some(Err(error)) = jwt.refresh(index).await {
                return Err(AuthSetupError::KeysUnavailable {
                    issuer: name.to_string(),
                    error,
                });
            }
        }
        Ok(())
    }

    /// `Bearer <token>` (any case), or `ApiKey <key>` when API keys travel in `Authorization`.
    fn parse_authorization<'a>(
        &self,
        value: &'a HeaderValue,
    ) -> Result<Credential<'a>, AuthFailure> {
        let invalid = AuthFailure::Invalid;
        if value.len() > self.max_token_bytes.saturating_add(SCHEME_ALLOWANCE) {
            return Err(invalid(InvalidReason::TooLarge));
        }
        let text = visible_ascii(value.as_bytes(), true)?;
        let mut parts = text.split(' ').filter(|p| !p.is_empty());
        let scheme = parts.next().ok_or(invalid(InvalidReason::Malformed))?;
        let credential = parts.next();
        if parts.next().is_some() {
            return Err(invalid(InvalidReason::Malformed));
        }
        let wrap: fn(&'a str) -> Credential<'a> = if scheme.eq_ignore_ascii_case("bearer") {
            Credential::Bearer
        } else if scheme.eq_ignore_ascii_case("apikey")
            && matches!(self.api_key_header, Some(ApiKeyHeader::Authorization))
        {
            Credential::ApiKey
        } else {
            return Err(invalid(InvalidReason::UnknownScheme));
        };
        let credential = credential.ok_or(invalid(InvalidReason::Malformed))?;
        if credential.len() > self.max_token_bytes {
            return Err(invalid(InvalidReason::TooLarge));
        }
        Ok(wrap(credential))
    }

    /// The whole value of the API-key header is the key.
    fn parse_api_key<'a>(&self, value: &'a HeaderValue) -> Result<&'a str, AuthFailure> {
        if value.len() > self.max_token_bytes {
            return Err(AuthFailure::Invalid(InvalidReason::TooLarge));
        }
        let key = visible_ascii(value.as_bytes(), false)?;
        if key.is_empty() {
            return Err(AuthFailure::Invalid(InvalidReason::Malformed));
        }
        Ok(key)
    }

    fn check_api_key(&self, key: &str) -> Result<Arc<Principal>, AuthFailure> {
        self.api_keys
            .load()
            .lookup(key.as_bytes())
            .ok_or(AuthFailure::Invalid(InvalidReason::UnknownApiKey))
    }
}

/// The one value of `name`; a repeated header is refused, never resolved.
fn single<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a HeaderValue>, AuthFailure> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthFailure::Invalid(InvalidReason::DuplicateAuthorization));
    }
    Ok(first)
}

/// The value as text when it is visible ASCII (plus spaces where a scheme separates).
fn visible_ascii(bytes: &[u8], spaces: bool) -> Result<&str, AuthFailure> {
    let ok = bytes
        .iter()
        .all(|b| b.is_ascii_graphic() || (spaces && *b == b' '));
    match std::str::from_utf8(bytes) {
        Ok(text) if ok => Ok(text),
        _ => Err(AuthFailure::Invalid(InvalidReason::Malformed)),
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
