//! A JWK Set as an identity provider publishes it → the keys scopegate verifies with.
//!
//! Only signing keys the issuer's allow-list can use survive: `use: enc` keys, keys whose
//! `key_ops` exclude `verify`, symmetric (`oct`) keys, unknown key types and algorithms
//! outside the allow-list are dropped one by one, so one odd key never costs the others.
//! Symmetric keys are never taken from a URL: an HMAC secret that is published is no secret.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::keys::{MIN_RSA_BITS, VerifyKey, rsa_modulus_bits};

/// Why a JWKS document yields no keys at all (single odd keys are skipped, not errors).
#[derive(Debug, thiserror::Error)]
pub enum JwkSetError {
    #[error("not a JWK Set: {0}")]
    Json(#[source] serde_json::Error),
    #[error("no usable signing key for the allowed algorithms ({ignored} keys ignored)")]
    NoUsableKeys { ignored: usize },
}

/// The usable keys of one JWKS document.
pub(crate) struct ParsedSet {
    pub keys: Vec<VerifyKey>,
    /// Changes exactly when the usable keys do (order in the document does not count).
    pub fingerprint: [u8; 32],
    /// Keys present in the document but not usable here.
    pub ignored: usize,
}

/// The outer shape only: each key is parsed on its own so one unknown key type does not
/// make the whole set unreadable.
#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

/// Parses a JWKS body, keeping the keys usable with `allowed`.
pub(crate) fn parse(body: &[u8], allowed: &[Algorithm]) -> Result<ParsedSet, JwkSetError> {
    let raw: RawSet = serde_json::from_slice(body).map_err(JwkSetError::Json)?;
    let mut keys = Vec::new();
    let mut ids = Vec::new();
    let mut ignored = 0;
    for value in raw.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            ignored += 1;
            continue;
        };
        let usable = usable_algorithms(&jwk, allowed);
        let key = match DecodingKey::from_jwk(&jwk) {
            Ok(key) if !usable.is_empty() => key,
            _ => {
                ignored += 1;
                continue;
            }
        };
        let params = serde_json::to_string(&jwk.algorithm).unwrap_or_default();
        for alg in usable {
            ids.push(format!(
                "{:?}\u{0}{:?}\u{0}{params}",
                jwk.common.key_id, alg
            ));
            keys.push(VerifyKey {
                kid: jwk.common.key_id.clone(),
                alg,
                key: key.clone(),
            });
        }
    }
    if keys.is_empty() {
        return Err(JwkSetError::NoUsableKeys { ignored });
    }
    ids.sort_unstable();
    let mut hash = Sha256::new();
    for id in &ids {
        hash.update(id.as_bytes());
        hash.update([0xff]);
    }
    Ok(ParsedSet {
        keys,
        fingerprint: hash.finalize().into(),
        ignored,
    })
}

/// The allowed algorithms `jwk` may verify: its own `alg` when it names one, else every
/// allowed algorithm of its key type and curve. Empty: the key is not for us.
fn usable_algorithms(jwk: &Jwk, allowed: &[Algorithm]) -> Vec<Algorithm> {
    let common = &jwk.common;
    match &common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return Vec::new(),
    }
    if let Some(ops) = &common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Vec::new();
    }
    let named = match common.key_algorithm {
        None => None,
        Some(a) => match Algorithm::try_from(a) {
            Ok(alg) => Some(alg),
            // An encryption algorithm (RSA-OAEP, ...) or one we do not know.
            Err(_) => return Vec::new(),
        },
    };
    let fits = |alg: &Algorithm| -> bool {
        match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => {
                alg.family() == AlgorithmFamily::Rsa
                    && rsa_modulus_bits(&rsa.n).is_some_and(|bits| bits >= MIN_RSA_BITS)
            }
            AlgorithmParameters::EllipticCurve(ec) => matches!(
                (&ec.curve, alg),
                (EllipticCurve::P256, Algorithm::ES256) | (EllipticCurve::P384, Algorithm::ES384)
            ),
            AlgorithmParameters::OctetKeyPair(okp) => {
                okp.curve == EllipticCurve::Ed25519 && *alg == Algorithm::EdDSA
            }
            // `oct` (HMAC secrets) and anything else: never from a URL.
            _ => false,
        }
    };
    allowed
        .iter()
        .copied()
        .filter(|alg| named.is_none_or(|n| n == *alg))
        .filter(fits)
        .collect()
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::Algorithm::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::auth::testutil::{jwk, set};

    fn kids(parsed: &ParsedSet) -> Vec<(Option<&str>, Algorithm)> {
        parsed
            .keys
            .iter()
            .map(|k| (k.kid.as_deref(), k.alg))
            .collect()
    }

    fn body(keys: &[Value]) -> Vec<u8> {
        serde_json::to_vec(&set(keys)).unwrap()
    }

    #[test]
    fn every_supported_key_type_is_used() {
        let keys = [
            jwk("rsa1", RS256, "r1"),
            jwk("ec256", ES256, "e1"),
            jwk("ec384", ES384, "e2"),
            jwk("ed25519", EdDSA, "d1"),
        ];
        let parsed = parse(&body(&keys), &[RS256, ES256, ES384, EdDSA]).unwrap();
        assert_eq!(
            kids(&parsed),
            [
                (Some("r1"), RS256),
                (Some("e1"), ES256),
                (Some("e2"), ES384),
                (Some("d1"), EdDSA)
            ]
        );
        assert_eq!(parsed.ignored, 0);
    }

    #[test]
    fn encryption_keys_foreign_algorithms_and_secrets_are_ignored() {
        let mut enc = jwk("rsa2", RS256, "enc");
        enc["use"] = json!("enc");
        let mut oaep = jwk("rsa2", RS256, "oaep");
        oaep["alg"] = json!("RSA-OAEP");
        let mut sign_only = jwk("rsa2", RS256, "ops");
        sign_only["key_ops"] = json!(["sign"]);
        let keys = [
            jwk("rsa1", RS256, "good"),
            enc,
            oaep,
            sign_only,
            jwk("ec256", ES256, "not-allowed"),
            json!({ "kty": "oct", "kid": "secret", "k": "c2VjcmV0" }),
            json!({ "kty": "XYZ", "kid": "future" }),
            json!("not even an object"),
        ];
        let parsed = parse(&body(&keys), &[RS256, HS256]).unwrap();
        assert_eq!(kids(&parsed), [(Some("good"), RS256)]);
        assert_eq!(parsed.ignored, 7);
    }

    #[test]
    fn a_key_without_alg_serves_each_allowed_algorithm_of_its_type() {
        let mut r = jwk("rsa1", RS256, "r");
        r.as_object_mut().unwrap().remove("alg");
        let mut e = jwk("ec384", ES384, "e");
        e.as_object_mut().unwrap().remove("alg");
        let parsed = parse(&body(&[r, e]), &[RS256, PS256, ES256, ES384]).unwrap();
        assert_eq!(
            kids(&parsed),
            [(Some("r"), RS256), (Some("r"), PS256), (Some("e"), ES384)]
        );
    }

    #[test]
    fn a_curve_that_does_not_fit_its_alg_is_ignored() {
        let mut wrong = jwk("ec384", ES384, "x");
        wrong["alg"] = json!("ES256");
        assert!(matches!(
            parse(&body(&[wrong]), &[ES256, ES384]),
            Err(JwkSetError::NoUsableKeys { ignored: 1 })
        ));
    }

    #[test]
    fn nothing_usable_or_not_json_is_an_error() {
        assert!(matches!(
            parse(&body(&[jwk("ec256", ES256, "e")]), &[RS256]),
            Err(JwkSetError::NoUsableKeys { ignored: 1 })
        ));
        assert!(matches!(
            parse(b"{\"keys\": []}", &[RS256]),
            Err(JwkSetError::NoUsableKeys { ignored: 0 })
        ));
        assert!(matches!(
            parse(b"<html>", &[RS256]),
            Err(JwkSetError::Json(_))
        ));
        assert!(matches!(parse(b"{}", &[RS256]), Err(JwkSetError::Json(_))));
    }

    #[test]
    fn fingerprint_follows_the_usable_keys_not_their_order() {
        let a = jwk("rsa1", RS256, "a");
        let b = jwk("ec256", ES256, "b");
        let fp = |keys: &[Value]| parse(&body(keys), &[RS256, ES256]).unwrap().fingerprint;
        assert_eq!(fp(&[a.clone(), b.clone()]), fp(&[b.clone(), a.clone()]));
        let mut enc = jwk("rsa2", RS256, "enc");
        enc["use"] = json!("enc");
        assert_eq!(
            fp(std::slice::from_ref(&a)),
            fp(&[a.clone(), enc]),
            "ignored keys do not count"
        );
        assert_ne!(fp(std::slice::from_ref(&a)), fp(&[a.clone(), b]));
        assert_ne!(
            fp(&[a]),
            fp(&[jwk("rsa2", RS256, "a")]),
            "same kid, new key"
        );
    }
}
