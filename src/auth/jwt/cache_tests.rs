//! The verified-token cache as the verifier uses it: hits, misses and key changes.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::Algorithm::*;
use serde_json::json;

use super::tests::verifier_from;
use super::*;
use crate::auth::testutil::{env, fixtures, ready, sign};
use crate::config::auth::KeyConfig;

const CONFIG: &str = r#"
jwt:
  issuers:
    - issuer: a
      keys: [{ kid: k1, alg: RS256, pem_file: keys/rsa1.pub.pem }]
    - issuer: b
      keys: [{ alg: ES256, pem_file: keys/ec256.pub.pem }]
  cache_size: 100
"#;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn token_a(sub: &str) -> String {
    let c = json!({ "iss": "a", "sub": sub, "exp": now() + 600.0 });
    sign(RS256, Some("k1"), "rsa1", &c)
}

fn token_b() -> String {
    let c = json!({ "iss": "b", "sub": "b1", "exp": now() + 600.0 });
    sign(ES256, None, "ec256", &c)
}

#[test]
fn a_verified_token_is_served_from_the_cache() {
    let v = verifier_from(CONFIG).unwrap();
    let t = token_a("u1");
    let first = ready(v.verify(&t)).unwrap();
    assert_eq!(v.cached(), 1);
    let second = ready(v.verify(&t)).unwrap();
    assert!(Arc::ptr_eq(&first, &second), "the cached principal itself");
    let other = ready(v.verify(&token_a("u2"))).unwrap();
    assert_eq!(other.subject.as_deref(), Some("u2"));
    assert_eq!(v.cached(), 2);
}

#[test]
fn failures_are_not_cached() {
    let v = verifier_from(CONFIG).unwrap();
    let expired = sign(
        RS256,
        Some("k1"),
        "rsa1",
        &json!({ "iss": "a", "exp": now() - 600.0 }),
    );
    assert_eq!(ready(v.verify(&expired)), Err(AuthFailure::Expired));
    let forged = sign(
        RS256,
        Some("k1"),
        "rsa2",
        &json!({ "iss": "a", "exp": now() + 60.0 }),
    );
    assert_eq!(
        ready(v.verify(&forged)),
        Err(AuthFailure::Invalid(InvalidReason::BadSignature))
    );
    assert_eq!(v.cached(), 0);
}

#[test]
fn a_key_change_empties_only_that_issuers_entries() {
    let v = verifier_from(CONFIG).unwrap();
    let (ta, tb) = (token_a("u1"), token_b());
    ready(v.verify(&ta)).unwrap();
    let b_before = ready(v.verify(&tb)).unwrap();
    assert_eq!(v.cached(), 2);

    // Issuer `a` rotates: k1 (rsa1) is replaced by a key of another kid.
    let rotated = load_key(
        &KeyConfig {
            kid: Some("k2".into()),
            alg: "RS256".into(),
            pem_file: Some("keys/rsa2.pub.pem".into()),
            secret_env: None,
        },
        &fixtures(),
        &env,
    )
    .unwrap();
    v.issuers[v.by_name["a"]].keys.replace(vec![rotated], None);

    // Even before any sweep, the stale entry must not answer.
    assert_eq!(
        ready(v.verify(&ta)),
        Err(AuthFailure::Invalid(InvalidReason::NoMatchingKey))
    );
    let b_after = ready(v.verify(&tb)).unwrap();
    assert!(Arc::ptr_eq(&b_before, &b_after), "issuer b still cached");
}

#[test]
fn cache_size_zero_verifies_every_time() {
    let v = verifier_from(&CONFIG.replace("cache_size: 100", "cache_size: 0")).unwrap();
    let t = token_a("u1");
    let first = ready(v.verify(&t)).unwrap();
    let second = ready(v.verify(&t)).unwrap();
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(first, second);
    assert_eq!(v.cached(), 0);
}

/// Counts counters by name, for checking what the cache records.
#[derive(Default)]
struct CountingRecorder(std::sync::Mutex<HashMap<String, Arc<std::sync::atomic::AtomicU64>>>);

impl CountingRecorder {
    fn get(&self, name: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |c| c.load(std::sync::atomic::Ordering::SeqCst))
    }
}

impl metrics::Recorder for CountingRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let mut counters = self.0.lock().unwrap();
        let c = counters.entry(key.name().to_string()).or_default();
        metrics::Counter::from_arc(c.clone())
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[test]
fn hits_and_misses_are_counted() {
    let v = verifier_from(CONFIG).unwrap();
    let recorder = CountingRecorder::default();
    let (t1, t2) = (token_a("u1"), token_a("u2"));
    metrics::with_local_recorder(&recorder, || {
        ready(v.verify(&t1)).unwrap();
        ready(v.verify(&t1)).unwrap();
        ready(v.verify(&t1)).unwrap();
        ready(v.verify(&t2)).unwrap();
        let _ = ready(v.verify("not.a.token"));
    });
    assert_eq!(recorder.get(token_cache::HITS), 2);
    assert_eq!(recorder.get(token_cache::MISSES), 3);
}
