//! Bearer-token verification as a request pays for it (`Authenticator::verify_jwt`:
//! parse, pick the issuer, check signature and claims, map the principal), uncached vs.
//! a hit in the verified-token cache, for RS256, ES256 and EdDSA.
//!
//! Run: `cargo bench --bench token`. The target is a cache hit under 1 µs.

use std::future::Future;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use scopegate::auth::{AuthFailure, Authenticator, Principal};
use scopegate::config::auth::AuthConfig;
use serde_json::json;

const CASES: [(Algorithm, &str); 3] = [
    (Algorithm::RS256, "rsa1"),
    (Algorithm::ES256, "ec256"),
    (Algorithm::EdDSA, "ed25519"),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// An authenticator trusting one issuer per algorithm, with `cache_size`.
fn authenticator(cache_size: usize) -> Authenticator {
    let yaml = format!(
        "jwt:\n  cache_size: {cache_size}\n  issuers:\n\
         \x20   - {{ issuer: RS256, audiences: [api], keys: [{{ kid: k, alg: RS256, pem_file: keys/rsa1.pub.pem }}] }}\n\
         \x20   - {{ issuer: ES256, audiences: [api], keys: [{{ kid: k, alg: ES256, pem_file: keys/ec256.pub.pem }}] }}\n\
         \x20   - {{ issuer: EdDSA, audiences: [api], keys: [{{ kid: k, alg: EdDSA, pem_file: keys/ed25519.pub.pem }}] }}\n"
    );
    let cfg: AuthConfig =
        scopegate::yaml::from_str(Path::new("bench.yaml"), &yaml).unwrap_or_else(|e| panic!("{e}"));
    Authenticator::new(&cfg, 8192, &fixtures(), &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

/// A realistic access token (a few scopes and roles) signed with fixture key `name`.
fn token(alg: Algorithm, name: &str) -> String {
    let pem = std::fs::read(fixtures().join(format!("keys/{name}.key.pem"))).expect("key");
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .expect("key");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = json!({
        "iss": format!("{alg:?}"), "aud": "api", "sub": "user-4711", "iat": now,
        "exp": now + 3600, "scope": "orders:read orders:write payments:write",
        "roles": ["customer"], "client_id": "web-app",
    });
    let mut header = Header::new(alg);
    header.kid = Some("k".into());
    jsonwebtoken::encode(&header, &claims, &key).expect("sign")
}

/// Static keys never wait, so one poll finishes verification; no runtime in the loop.
fn verify(auth: &Authenticator, token: &str) -> Result<Arc<Principal>, AuthFailure> {
    let mut fut = pin!(auth.verify_jwt(token));
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => panic!("static-key verification waited"),
    }
}

fn bench(c: &mut Criterion) {
    let uncached = authenticator(0);
    let cached = authenticator(10_000);
    let mut group = c.benchmark_group("verify_jwt");
    for (alg, name) in CASES {
        let t = token(alg, name);
        assert!(verify(&uncached, &t).is_ok());
        assert!(verify(&cached, &t).is_ok(), "warms the cache");
        let label = format!("{alg:?}");
        group.bench_with_input(BenchmarkId::new("uncached", &label), &t, |b, t| {
            b.iter(|| verify(&uncached, black_box(t)))
        });
        group.bench_with_input(BenchmarkId::new("cache_hit", &label), &t, |b, t| {
            b.iter(|| verify(&cached, black_box(t)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
