//! The JWT classics of the bypass corpus: tokens an attacker can make without the
//! issuer's private key, each refused with 401 and nothing sent upstream. Every test
//! first shows that a genuine token of the same issuer does reach `/admin/x`, so the
//! refusals cannot pass by accident.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::{Expect::Forwarded, Expect::Refused, check};
use crate::common::{Harness, ORDERS_POLICY, SECRET, Setup, fixture_key};

const RS: &str = "rs-issuer";
const EC: &str = "ec-issuer";
/// The harness's own HS256 issuer.
const HS: &str = "scopegate";

/// A gateway trusting an RS256-only issuer (key `r1` = rsa1), an ES256 issuer (key `e1`
/// = ec256) and the harness's HS256 issuer.
async fn gateway() -> Harness {
    let issuers = format!(
        "- {{ issuer: {RS}, keys: [{{ kid: r1, alg: RS256, pem_file: {} }}], algorithms: [RS256] }}\n\
         - {{ issuer: {EC}, keys: [{{ kid: e1, alg: ES256, pem_file: {} }}] }}\n",
        fixture_key("rsa1.pub.pem"),
        fixture_key("ec256.pub.pem"),
    );
    Harness::start_with(Setup {
        policy: ORDERS_POLICY,
        issuers: &issuers,
        ..Setup::default()
    })
    .await
}

/// Admin claims of `iss`, valid for ten minutes.
fn admin_claims(iss: &str) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    json!({"iss": iss, "sub": "root", "roles": ["admin"], "scope": "admin:read orders:read", "exp": now + 600})
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(fixture_key(name)).expect("fixture key")
}

fn rsa(name: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(&pem(name)).expect("rsa key")
}

/// A token with exactly this header JSON, signed for `alg` with `key`.
fn signed(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).expect("sign");
    format!("{message}.{sig}")
}

/// A token with this header JSON and a given (unverifiable) signature part.
fn unsigned(header: &Value, claims: &Value, signature: &str) -> String {
    format!("{}.{}.{signature}", b64(header), b64(claims))
}

/// The genuine admin token of the RS256 issuer.
fn genuine_rs() -> String {
    signed(
        &json!({"alg": "RS256", "typ": "JWT", "kid": "r1"}),
        &admin_claims(RS),
        &rsa("rsa1.key.pem"),
        Algorithm::RS256,
    )
}

/// Each token must be refused 401 on `/admin/x`, after a genuine one got through.
async fn refuse_all(h: &Harness, case: &str, genuine: &str, forged: &[String]) {
    let ok = format!("Authorization: Bearer {genuine}");
    check(h, case, "/admin/x", &[&ok], Forwarded("/admin/x")).await;
    for (i, token) in forged.iter().enumerate() {
        let auth = format!("Authorization: Bearer {token}");
        let resp = check(h, case, "/admin/x", &[&auth], Refused(401)).await;
        assert_eq!(resp.json()["reason"], "invalid_token", "{case} #{i}");
    }
}

/// `alg: none` (in any case): an unsigned token accepted as verified.
#[tokio::test]
async fn jwt_alg_none() {
    let h = gateway().await;
    let mut forged = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        for iss in [RS, EC, HS] {
            let header = json!({"alg": alg, "typ": "JWT"});
            forged.push(unsigned(&header, &admin_claims(iss), ""));
            forged.push(unsigned(&header, &admin_claims(iss), "c2ln"));
        }
    }
    // `none` with the kid of a real key changes nothing.
    forged.push(unsigned(
        &json!({"alg": "none", "kid": "r1"}),
        &admin_claims(RS),
        "",
    ));
    refuse_all(&h, "alg none", &genuine_rs(), &forged).await;
    h.stop().await;
}

/// HS256 signed with the issuer's RSA *public* key as the HMAC secret, against an issuer
/// that only accepts RS256 (a verifier that let the token pick the algorithm would check
/// the HMAC with the key bytes it holds).
#[tokio::test]
async fn jwt_hs256_signed_with_the_rsa_public_key() {
    let h = gateway().await;
    let mut forged = Vec::new();
    for file in ["rsa1.pub.pem", "rsa1.pkcs1.pub.pem"] {
        let bytes = pem(file);
        let trimmed = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
        for secret in [bytes, trimmed] {
            let key = EncodingKey::from_secret(&secret);
            for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                for kid in [Some("r1"), None] {
                    let mut header = json!({"alg": format!("{alg:?}"), "typ": "JWT"});
                    if let Some(kid) = kid {
                        header["kid"] = json!(kid);
                    }
                    forged.push(signed(&header, &admin_claims(RS), &key, alg));
                }
            }
        }
    }
    refuse_all(&h, "HS256 with RSA public key", &genuine_rs(), &forged).await;
    h.stop().await;
}

/// `kid` injection: path traversal and SQL-shaped key ids, signed with whatever such a
/// lookup would have produced (an empty file, a chosen string) or an attacker's key.
#[tokio::test]
async fn jwt_kid_injection() {
    let h = gateway().await;
    let attacker = rsa("rsa2.key.pem");
    let kids = [
        "../../../../../../dev/null",
        "/dev/null",
        "../../etc/passwd",
        "r1/../r1",
        "r1\u{0}",
        "' OR '1'='1",
        "x' UNION SELECT 'attacker-secret' --",
        "",
        "r1 ",
    ];
    let mut forged = Vec::new();
    for kid in kids {
        for iss in [RS, HS] {
            for secret in [
                &b""[..],
                b"\n",
                b"attacker-secret",
                b"root:x:0:0:root:/root:/bin/bash\n",
            ] {
                let header = json!({"alg": "HS256", "kid": kid});
                let key = EncodingKey::from_secret(secret);
                forged.push(signed(&header, &admin_claims(iss), &key, Algorithm::HS256));
            }
        }
        let header = json!({"alg": "RS256", "kid": kid});
        forged.push(signed(
            &header,
            &admin_claims(RS),
            &attacker,
            Algorithm::RS256,
        ));
    }
    // The right kid does not make another key's signature valid.
    forged.push(signed(
        &json!({"alg": "RS256", "kid": "r1"}),
        &admin_claims(RS),
        &attacker,
        Algorithm::RS256,
    ));
    refuse_all(&h, "kid injection", &genuine_rs(), &forged).await;
    h.stop().await;
}

/// `jku`, `x5u` and an embedded `jwk`: keys named by the token itself must never be
/// fetched or used. The URLs point at a loopback listener that must see no connection.
#[tokio::test]
async fn jwt_jku_x5u_and_embedded_jwk_are_ignored() {
    let h = gateway().await;
    let bait = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
    let url = format!("http://{}/jwks.json", bait.local_addr().expect("addr"));

    let attacker = rsa("rsa2.key.pem");
    let attacker_jwk =
        serde_json::to_value(Jwk::from_encoding_key(&attacker, Algorithm::RS256).expect("jwk"))
            .expect("jwk json");
    let hmac_jwk = json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode("attacker"), "alg": "HS256"});
    let mut forged = Vec::new();
    for kid in [Some("r1"), Some("attacker"), None] {
        let mut header = json!({"alg": "RS256", "jku": url, "x5u": url, "jwk": attacker_jwk});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        forged.push(signed(
            &header,
            &admin_claims(RS),
            &attacker,
            Algorithm::RS256,
        ));
        for field in ["jku", "x5u", "jwk"] {
            let mut one = json!({"alg": "RS256", "kid": kid});
            one[field] = header[field].clone();
            forged.push(signed(&one, &admin_claims(RS), &attacker, Algorithm::RS256));
        }
    }
    forged.push(signed(
        &json!({"alg": "HS256", "jwk": hmac_jwk, "jku": url}),
        &admin_claims(HS),
        &EncodingKey::from_secret(b"attacker"),
        Algorithm::HS256,
    ));
    refuse_all(&h, "jku/x5u/jwk", &genuine_rs(), &forged).await;

    // A genuine token that carries the headers anyway is judged on its real signature.
    let genuine = signed(
        &json!({"alg": "RS256", "kid": "r1", "jku": url, "x5u": url}),
        &admin_claims(RS),
        &rsa("rsa1.key.pem"),
        Algorithm::RS256,
    );
    let auth = format!("Authorization: Bearer {genuine}");
    check(
        &h,
        "jku ignored",
        "/admin/x",
        &[&auth],
        Forwarded("/admin/x"),
    )
    .await;
    // Every request above has been answered, so any fetch would already be queued.
    let fetched = tokio::time::timeout(std::time::Duration::ZERO, bait.accept()).await;
    assert!(
        fetched.is_err(),
        "the gateway connected to a token-named URL"
    );
    h.stop().await;
}

/// HAProxy 2026: an ES256 signature longer than the curve allows overflowed a fixed
/// buffer. Oversized, undersized and DER-shaped signatures are refused, and the gateway
/// keeps serving afterwards.
#[tokio::test]
async fn haproxy_2026_oversized_es256_signature() {
    let h = gateway().await;
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": "e1"});
    let key = EncodingKey::from_ec_pem(&pem("ec256.key.pem")).expect("ec key");
    let genuine = signed(&header, &admin_claims(EC), &key, Algorithm::ES256);
    let real_sig = URL_SAFE_NO_PAD
        .decode(genuine.rsplit('.').next().expect("signature"))
        .expect("b64");
    assert_eq!(real_sig.len(), 64);
    let claims = admin_claims(EC);
    let with_sig = |bytes: &[u8]| unsigned(&header, &claims, &URL_SAFE_NO_PAD.encode(bytes));
    let mut padded = real_sig.clone();
    padded.extend_from_slice(&[0xAB; 4096]);
    let mut der = vec![0x30, 0x44, 0x02, 0x20];
    der.extend_from_slice(&real_sig[..32]);
    der.extend_from_slice(&[0x02, 0x20]);
    der.extend_from_slice(&real_sig[32..]);
    let forged = vec![
        with_sig(&padded),
        with_sig(&[0xFF; 4096]),
        with_sig(&[0x00; 5000]),
        with_sig(&[0x41; 10_000]), // also over max_token_bytes
        with_sig(&real_sig[..63]),
        with_sig(&[real_sig.as_slice(), &[0]].concat()),
        with_sig(&der),
        with_sig(&[0u8; 64]),
        with_sig(&[]),
    ];
    let ok = format!("Authorization: Bearer {genuine}");
    check(
        &h,
        "ES256 control",
        "/admin/x",
        &[&ok],
        Forwarded("/admin/x"),
    )
    .await;
    refuse_all(&h, "oversized ES256 signature", &genuine, &forged).await;
    // Still serving, still verifying.
    check(&h, "ES256 after", "/admin/x", &[&ok], Forwarded("/admin/x")).await;
    h.stop().await;
}

/// Headers that change how a token must be read (`crit`), or a token naming an issuer
/// with another issuer's algorithm, are refused too.
#[tokio::test]
async fn jwt_crit_and_cross_issuer_algorithms() {
    let h = gateway().await;
    let rs_key = rsa("rsa1.key.pem");
    let forged = vec![
        signed(
            &json!({"alg": "RS256", "kid": "r1", "crit": ["b64"], "b64": false}),
            &admin_claims(RS),
            &rs_key,
            Algorithm::RS256,
        ),
        // The RS256 issuer's key, used on a token claiming the ES256 issuer.
        signed(
            &json!({"alg": "RS256", "kid": "r1"}),
            &admin_claims(EC),
            &rs_key,
            Algorithm::RS256,
        ),
        // The HS256 issuer's secret on a token claiming the RS256 issuer.
        signed(
            &json!({"alg": "HS256"}),
            &admin_claims(RS),
            &EncodingKey::from_secret(SECRET.as_bytes()),
            Algorithm::HS256,
        ),
        // PS256 with the right RSA key: an algorithm the issuer never allowed.
        signed(
            &json!({"alg": "PS256", "kid": "r1"}),
            &admin_claims(RS),
            &rs_key,
            Algorithm::PS256,
        ),
    ];
    refuse_all(&h, "crit / cross-issuer", &genuine_rs(), &forged).await;
    h.stop().await;
}
