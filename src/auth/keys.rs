//! Verification keys of one issuer: loaded from config at start, or fetched from the
//! issuer's JWKS, and kept in a store the refresher swaps at run time.
//!
//! Every key carries the one algorithm it may verify, so a token can never choose how
//! its own key is interpreted (no RS256-key-as-HMAC-secret confusion).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

use crate::config::auth::KeyConfig;

/// Why one configured key (or algorithm name) cannot be used; never shows key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "unknown algorithm `{0}` (use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, HS256, HS384 or HS512)"
    )]
    UnknownAlgorithm(String),
    #[error("algorithm `none` is never accepted")]
    AlgorithmNone,
    #[error("give exactly one of `pem_file` (a public key) or `secret_env` (an HMAC secret)")]
    Source,
    #[error("{alg:?} verifies with a public key: use `pem_file`, not `secret_env`")]
    SecretForPublicKeyAlgorithm { alg: Algorithm },
    #[error("{alg:?} is an HMAC algorithm: its secret comes from `secret_env`, never from a file")]
    PemForHmac { alg: Algorithm },
    #[error("environment variable `{var}` (secret_env) is not set or is empty")]
    SecretEnv { var: String },
    #[error("cannot read {}: {error}", file.display())]
    Read {
        file: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: expected a `PUBLIC KEY` PEM block, found {found}", file.display())]
    NotPublicKeyPem { file: PathBuf, found: String },
    #[error("{}: not a usable {alg:?} public key ({why})", file.display())]
    BadKey {
        file: PathBuf,
        alg: Algorithm,
        why: &'static str,
    },
}

/// One key, bound to the single algorithm it verifies.
pub(crate) struct VerifyKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// The keys of one issuer at one moment. `generation` changes whenever the keys do,
/// which is how cached verifications made with older keys are recognised as stale.
pub(crate) struct KeySet {
    pub keys: Vec<VerifyKey>,
    pub generation: u64,
    /// Identifies the content of a fetched JWKS, so an unchanged refetch changes nothing.
    pub fingerprint: Option<[u8; 32]>,
    /// False until an issuer whose keys come from its IdP has fetched them once.
    pub loaded: bool,
}

/// The current keys of one issuer. Verifications load a snapshot; a refresher may
/// `replace` them at any time without blocking verifications in flight.
pub(crate) struct KeyStore {
    current: ArcSwap<KeySet>,
}

impl KeyStore {
    /// A store holding static `keys`: loaded from the start.
    pub fn new(keys: Vec<VerifyKey>) -> Self {
        KeyStore {
            current: ArcSwap::from_pointee(KeySet {
                keys,
                generation: 0,
                fingerprint: None,
                loaded: true,
            }),
        }
    }

    /// A store that has no keys until the first successful fetch.
    pub fn pending() -> Self {
        KeyStore {
            current: ArcSwap::from_pointee(KeySet {
                keys: Vec::new(),
                generation: 0,
                fingerprint: None,
                loaded: false,
            }),
        }
    }

    /// The keys as of now (a cheap guard; hold it only for one verification).
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.current.load()
    }

    /// The generation of the keys in force.
    pub fn generation(&self) -> u64 {
        self.current.load().generation
    }

    /// Swaps in a new key set under a new generation (JWKS refresh). Callers serialize
    /// their replacements, so reading the old generation first is not racy.
    pub fn replace(&self, keys: Vec<VerifyKey>, fingerprint: Option<[u8; 32]>) -> u64 {
        let generation = self.current.load().generation.wrapping_add(1);
        self.current.store(Arc::new(KeySet {
            keys,
            generation,
            fingerprint,
            loaded: true,
        }));
        generation
    }
}

/// Parses an algorithm name as written in the config; `none` in any spelling is refused.
pub(crate) fn parse_algorithm(name: &str) -> Result<Algorithm, KeyError> {
    if name.eq_ignore_ascii_case("none") {
        return Err(KeyError::AlgorithmNone);
    }
    Algorithm::from_str(name).map_err(|_| KeyError::UnknownAlgorithm(name.to_string()))
}

/// Loads one static key from config: a public key PEM for asymmetric algorithms, the
/// raw UTF-8 bytes of an environment variable for HMAC.
pub(crate) fn load_key(
    cfg: &KeyConfig,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<VerifyKey, KeyError> {
    let alg = parse_algorithm(&cfg.alg)?;
    let hmac = alg.family() == AlgorithmFamily::Hmac;
    let key = match (&cfg.pem_file, &cfg.secret_env) {
        (Some(_), Some(_)) | (None, None) => return Err(KeyError::Source),
        (Some(_), None) if hmac => return Err(KeyError::PemForHmac { alg }),
        (None, Some(_)) if !hmac => return Err(KeyError::SecretForPublicKeyAlgorithm { alg }),
        (Some(file), None) => load_pem(&base_dir.join(file), alg)?,
        (None, Some(var)) => {
            let secret = env(var)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| KeyError::SecretEnv { var: var.clone() })?;
            if secret.len() < min_hmac_secret_len(alg) {
                tracing::warn!(
                    secret_env = %var,
                    "HMAC secret is shorter than the hash output; use at least {} random bytes",
                    min_hmac_secret_len(alg)
                );
            }
            DecodingKey::from_secret(secret.as_bytes())
        }
    };
    Ok(VerifyKey {
        kid: cfg.kid.clone(),
        alg,
        key,
    })
}

/// RFC 7518 §3.2: the key should be at least as long as the hash output.
fn min_hmac_secret_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

/// Reads a public key PEM and checks it fits `alg`, so a wrong file fails at start
/// rather than as "bad signature" on every request.
fn load_pem(file: &Path, alg: Algorithm) -> Result<DecodingKey, KeyError> {
    let bytes = std::fs::read(file).map_err(|error| KeyError::Read {
        file: file.to_path_buf(),
        error,
    })?;
    let label = pem_label(&bytes);
    let family = alg.family();
    let acceptable = match label {
        Some("PUBLIC KEY") => true,
        Some("RSA PUBLIC KEY") => family == AlgorithmFamily::Rsa,
        _ => false,
    };
    if !acceptable {
        // Only the label is shown: the file may well be a private key.
        return Err(KeyError::NotPublicKeyPem {
            file: file.to_path_buf(),
            found: label.map_or_else(|| "no PEM block".to_string(), |l| format!("`{l}`")),
        });
    }
    let bad = |why| KeyError::BadKey {
        file: file.to_path_buf(),
        alg,
        why,
    };
    let key = match family {
        AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(&bytes),
        AlgorithmFamily::Ec => DecodingKey::from_ec_pem(&bytes),
        AlgorithmFamily::Ed => DecodingKey::from_ed_pem(&bytes),
        AlgorithmFamily::Hmac => return Err(KeyError::PemForHmac { alg }),
    }
    .map_err(|_| bad("wrong key type or not a valid key"))?;
    // Building a JWK parses the key with the crypto backend, which also tells the curve.
    let jwk = Jwk::from_decoding_key(&key, None).map_err(|_| bad("not a valid key"))?;
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(rsa), _) => {
            let bits = rsa_modulus_bits(&rsa.n).ok_or_else(|| bad("not a valid key"))?;
            if bits < MIN_RSA_BITS {
                return Err(bad("RSA keys need at least 2048 bits"));
            }
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256)
            if ec.curve != EllipticCurve::P256 =>
        {
            return Err(bad("ES256 needs a P-256 key"));
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384)
            if ec.curve != EllipticCurve::P384 =>
        {
            return Err(bad("ES384 needs a P-384 key"));
        }
        _ => {}
    }
    Ok(key)
}

/// RSA keys shorter than this are refused, wherever they come from.
pub(crate) const MIN_RSA_BITS: usize = 2048;

/// The size of an RSA modulus given as base64url (JWK `n`), to the byte.
pub(crate) fn rsa_modulus_bits(n: &str) -> Option<usize> {
    let n = URL_SAFE_NO_PAD.decode(n).ok()?;
    Some(n.iter().skip_while(|b| **b == 0).count() * 8)
}

/// The label of the first `-----BEGIN <label>-----` line, if any.
fn pem_label(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &text[start..];
    Some(&rest[..rest.find("-----")?])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys")
    }

    fn key(alg: &str, pem: Option<&str>, secret: Option<&str>) -> KeyConfig {
        KeyConfig {
            kid: None,
            alg: alg.to_string(),
            pem_file: pem.map(PathBuf::from),
            secret_env: secret.map(String::from),
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load(cfg: &KeyConfig) -> Result<VerifyKey, KeyError> {
        load_key(cfg, &fixtures(), &|v| {
            (v == "SECRET").then(|| "s3cr3t".to_string())
        })
    }

    #[test]
    fn every_supported_kind_loads() {
        for (alg, file) in [
            ("RS256", "rsa1.pub.pem"),
            ("RS512", "rsa1.pkcs1.pub.pem"),
            ("PS256", "rsa2.pub.pem"),
            ("ES256", "ec256.pub.pem"),
            ("ES384", "ec384.pub.pem"),
            ("EdDSA", "ed25519.pub.pem"),
        ] {
            let k = load(&key(alg, Some(file), None)).unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(format!("{:?}", k.alg), alg);
        }
        assert!(load(&key("HS256", None, Some("SECRET"))).is_ok());
    }

    #[test]
    fn wrong_files_fail_at_start_without_showing_contents() {
        let cases = [
            (
                key("RS256", Some("rsa1.key.pem"), None),
                "found `PRIVATE KEY`",
            ),
            (
                key("RS256", Some("ec256.pub.pem"), None),
                "not a usable RS256",
            ),
            (
                key("ES256", Some("ec384.pub.pem"), None),
                "ES256 needs a P-256 key",
            ),
            (
                key("ES384", Some("ec256.pub.pem"), None),
                "ES384 needs a P-384 key",
            ),
            (
                key("EdDSA", Some("rsa1.pub.pem"), None),
                "not a usable EdDSA",
            ),
            (
                key("ES256", Some("rsa1.pkcs1.pub.pem"), None),
                "found `RSA PUBLIC KEY`",
            ),
            (key("RS256", Some("missing.pem"), None), "cannot read"),
            (key("RS256", Some("README.md"), None), "found no PEM block"),
            (
                key("HS256", Some("rsa1.pub.pem"), None),
                "never from a file",
            ),
            (key("RS256", None, Some("SECRET")), "use `pem_file`"),
            (key("HS256", None, Some("UNSET")), "`UNSET`"),
            (key("HS256", None, None), "exactly one of"),
            (key("HS256", Some("a"), Some("SECRET")), "exactly one of"),
            (key("none", None, None), "`none` is never accepted"),
            (
                key("rs256", Some("rsa1.pub.pem"), None),
                "unknown algorithm `rs256`",
            ),
        ];
        for (cfg, want) in cases {
            let e = load(&cfg).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(want), "{cfg:?}: {e}");
            assert!(!e.contains("MII"), "key material in {e}");
            assert!(!e.contains("s3cr3t"), "secret in {e}");
        }
    }

    #[test]
    fn empty_secret_env_is_refused() {
        let cfg = key("HS256", None, Some("EMPTY"));
        let e = load_key(&cfg, &fixtures(), &|_| Some(String::new())).err();
        assert!(matches!(e, Some(KeyError::SecretEnv { .. })));
        assert!(matches!(
            load_key(&cfg, &fixtures(), &no_env),
            Err(KeyError::SecretEnv { .. })
        ));
    }

    #[test]
    fn store_swaps_atomically() {
        let store = KeyStore::pending();
        assert!(!store.snapshot().loaded);
        let before = store.snapshot();
        let generation = store.replace(
            vec![load(&key("HS256", None, Some("SECRET"))).unwrap()],
            None,
        );
        assert!(
            before.keys.is_empty(),
            "a snapshot taken earlier is unchanged"
        );
        let after = store.snapshot();
        assert_eq!(after.keys.len(), 1);
        assert!(after.loaded);
        assert_ne!(after.generation, before.generation);
        assert_eq!(after.generation, generation);
    }
}
