//! Serde types of the `auth:` section of the gateway config (SPEC §2).
//!
//! Only the written form lives here; `crate::auth::Authenticator::new` turns it into
//! checked keys and fails closed on anything it cannot honour.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::units;

/// The `auth:` section: which credentials the gateway accepts. Both parts are optional;
/// a gateway with neither accepts no credentials (only public routes work).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Bearer JWTs and the issuers trusted to sign them.
    pub jwt: Option<JwtConfig>,
    /// Static API keys, looked up by their SHA-256 in a watched file.
    pub api_keys: Option<ApiKeysConfig>,
}

impl AuthConfig {
    /// Makes relative paths (PEM files, CA files, the API-key file) relative to `base`,
    /// the config file's directory.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for issuer in self.jwt.iter_mut().flat_map(|j| j.issuers.iter_mut()) {
            issuer
                .keys
                .iter_mut()
                .filter_map(|k| k.pem_file.as_mut())
                .for_each(fix);
            issuer.ca.iter_mut().for_each(fix);
        }
        if let Some(keys) = &mut self.api_keys {
            fix(&mut keys.file);
        }
    }
}

/// `auth.jwt`: trusted issuers and how their claims map onto a principal.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Every issuer whose tokens are accepted; a token is checked with its own issuer's keys only.
    pub issuers: Vec<IssuerConfig>,
    /// Where scopes, roles and the subject are found in a token's claims.
    #[serde(default)]
    pub claims: ClaimsConfig,
    /// Verified tokens kept (until their `exp`) to skip re-verifying signatures.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
}

/// One trusted token issuer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The exact `iss` value of its tokens; also how a token picks its issuer.
    pub issuer: String,
    /// Accepted `aud` values (any one suffices); empty means `aud` is not checked.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// OpenID discovery document URL (keys fetched from its `jwks_uri`).
    pub discovery: Option<String>,
    /// JWKS URL, for issuers without discovery.
    pub jwks_uri: Option<String>,
    /// Static keys, for issuers whose keys are distributed out of band.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// The `alg` values accepted from this issuer; never `none`. Empty: the algorithms of `keys`.
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "default_leeway", deserialize_with = "units::duration")]
    pub leeway: Duration,
    /// A private CA for an https `discovery` / `jwks_uri`.
    pub ca: Option<PathBuf>,
    /// Bounds of the JWKS refresh interval (Cache-Control max-age is clamped into them).
    pub refresh: Option<RefreshConfig>,
    /// When true, a token of this issuer without a scope claim holds no scopes at all.
    #[serde(default)]
    pub require_scope_claim: bool,
}

/// One static verification key of an issuer: a public key PEM file, or an HMAC secret
/// read from an environment variable (never written in the config itself).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Matched against a token's `kid` header.
    pub kid: Option<String>,
    /// The one algorithm this key verifies (`RS256`, `ES256`, `EdDSA`, `HS256`, ...).
    pub alg: String,
    /// A public key PEM (RSA, EC or Ed25519), relative to the config file's directory.
    pub pem_file: Option<PathBuf>,
    /// The name of the environment variable holding an HMAC secret (raw UTF-8 bytes).
    pub secret_env: Option<String>,
}

/// `refresh:` bounds for JWKS refreshes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshConfig {
    /// Never refetch sooner than this, whatever the IdP's Cache-Control says.
    #[serde(default = "default_refresh_min", deserialize_with = "units::duration")]
    pub min: Duration,
    /// Always refetch at least this often.
    #[serde(default = "default_refresh_max", deserialize_with = "units::duration")]
    pub max: Duration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            min: default_refresh_min(),
            max: default_refresh_max(),
        }
    }
}

/// Claim names (dotted paths) that carry scopes, roles and the subject; the first
/// present one wins, because IdPs disagree on the names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsConfig {
    /// Scope claims, e.g. `scope` (space-separated string) or `scp` (array).
    #[serde(default = "default_scope_claims")]
    pub scopes: Vec<String>,
    /// Role claims, e.g. Keycloak's `realm_access.roles`.
    #[serde(default = "default_role_claims")]
    pub roles: Vec<String>,
    /// The subject claim, passed on as the identity and used by `claim:` constraints.
    #[serde(default = "default_subject_claim")]
    pub subject: String,
}

impl Default for ClaimsConfig {
    fn default() -> Self {
        ClaimsConfig {
            scopes: default_scope_claims(),
            roles: default_role_claims(),
            subject: default_subject_claim(),
        }
    }
}

/// `auth.api_keys`: where API keys are sent and the file of their hashes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysConfig {
    /// The header carrying the key; `Authorization` means the `ApiKey` scheme.
    #[serde(default = "default_api_key_header")]
    pub header: String,
    /// The key file (SPEC §2), relative to the config file's directory; watched.
    pub file: PathBuf,
}

fn default_cache_size() -> usize {
    10_000
}

fn default_leeway() -> Duration {
    Duration::from_secs(30)
}

fn default_refresh_min() -> Duration {
    Duration::from_secs(5 * 60)
}

fn default_refresh_max() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_scope_claims() -> Vec<String> {
    ["scope", "scp", "permissions"].map(String::from).to_vec()
}

fn default_role_claims() -> Vec<String> {
    ["role", "roles", "realm_access.roles"]
        .map(String::from)
        .to_vec()
}

fn default_subject_claim() -> String {
    "sub".to_string()
}

fn default_api_key_header() -> String {
    "X-API-Key".to_string()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Result<AuthConfig, String> {
        crate::yaml::from_str(Path::new("gw.yaml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_follow_the_spec() {
        let cfg = parse(
            "jwt:\n  issuers:\n    - issuer: https://idp/\n      keys: [{ alg: RS256, pem_file: k.pem }]\napi_keys:\n  file: keys.yaml\n",
        )
        .unwrap();
        let jwt = cfg.jwt.unwrap();
        assert_eq!(jwt.cache_size, 10_000);
        assert_eq!(jwt.claims.scopes, ["scope", "scp", "permissions"]);
        assert_eq!(jwt.claims.roles, ["role", "roles", "realm_access.roles"]);
        assert_eq!(jwt.claims.subject, "sub");
        let iss = &jwt.issuers[0];
        assert_eq!(iss.leeway, Duration::from_secs(30));
        assert!(iss.audiences.is_empty());
        assert!(!iss.require_scope_claim);
        assert!(iss.refresh.is_none());
        let keys = cfg.api_keys.unwrap();
        assert_eq!(keys.header, "X-API-Key");
        assert_eq!(keys.file, Path::new("keys.yaml"));
    }

    #[test]
    fn durations_and_refresh_defaults() {
        let cfg = parse(
            "jwt:\n  issuers:\n    - issuer: i\n      leeway: 5s\n      refresh: { max: 1h }\n",
        )
        .unwrap();
        let iss = &cfg.jwt.unwrap().issuers[0];
        assert_eq!(iss.leeway, Duration::from_secs(5));
        let refresh = iss.refresh.as_ref().unwrap();
        assert_eq!(refresh.min, Duration::from_secs(300));
        assert_eq!(refresh.max, Duration::from_secs(3600));
        assert_eq!(RefreshConfig::default().max, Duration::from_secs(86_400));
    }

    #[test]
    fn unknown_keys_are_refused_everywhere() {
        for text in [
            "jwks: {}\n",
            "jwt:\n  issuers: []\n  claim: {}\n",
            "jwt:\n  issuers:\n    - issuer: i\n      audience: [a]\n",
            "jwt:\n  issuers:\n    - issuer: i\n      keys: [{ alg: RS256, pem: x }]\n",
            "jwt:\n  issuers: []\n  claims: { scope: [x] }\n",
            "api_keys: { file: k.yaml, headers: X }\n",
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains("unknown field"), "{text:?}: {e}");
        }
    }

    #[test]
    fn empty_section_has_neither_part() {
        let cfg = parse("{}\n").unwrap();
        assert!(cfg.jwt.is_none() && cfg.api_keys.is_none());
    }
}
