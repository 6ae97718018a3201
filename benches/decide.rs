//! The decision core alone: normalize + route lookup + decide for a caller whose token is
//! already verified, on policies of 10, 1,000 and 10,000 routes.
//!
//! Run: `cargo bench --bench decide`. The target is under 1 µs per decision at 10,000
//! routes, within 1.5x of the 10-route figure.

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::Method;
use scopegate::auth::Principal;
use scopegate::decide::{self, NoTrace, Verdict};
use scopegate::normalize::{NormalizeOptions, normalize_path};
use scopegate::policy::Policy;

/// A policy with `n` resource families, each with a collection, an item (param), and a
/// catch-all route, plus the roles that use them.
fn policy(n: usize) -> Policy {
    let families = n / 3;
    let mut text = String::from(
        "version: 1\ndefault_role: reader\nroles:\n  reader: { scopes: [r1:read, r2:read] }\n  writer: { inherits: [reader], scopes: [\"*\"], deny: [\"r0:delete\"] }\nroutes:\n",
    );
    text.push_str("  - { path: /health, methods: [GET], public: true }\n");
    for i in 0..families {
        text.push_str(&format!(
            "  - {{ path: /r{i}, methods: [GET, POST], scopes: [\"r{i}:{{action}}\"] }}\n  - {{ path: \"/r{i}/{{id}}\", scopes: [\"r{i}:{{action}}\"] }}\n  - {{ path: \"/r{i}/{{id}}/files/{{*rest}}\", methods: [GET], scopes: [r{i}:read] }}\n"
        ));
    }
    match Policy::from_bytes(Path::new("bench.yaml"), text.as_bytes()) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn decide_once(policy: &Policy, method: &Method, raw_path: &str, who: &Principal) -> Verdict {
    let path = normalize_path(raw_path, NormalizeOptions::default()).unwrap_or_default();
    let lookup = policy.lookup(method, &path);
    decide::decide(policy, &lookup, Some(Ok(who)), &mut NoTrace).verdict
}

fn bench(c: &mut Criterion) {
    let writer = Principal {
        subject: Some("u1".into()),
        roles: vec!["writer".into()],
        scopes: Some(vec!["r1:read".into(), "r1:write".into(), "r2:read".into()]),
        claims: Default::default(),
    };
    let mut group = c.benchmark_group("decide");
    for n in [10usize, 1_000, 10_000] {
        let p = policy(n);
        let cases = [
            ("hit", Method::GET, "/r1"),
            ("param", Method::POST, "/r1/42"),
            ("catch_all", Method::GET, "/r2/7/files/a/b/c.txt"),
            ("miss", Method::GET, "/nowhere/at/all"),
            ("denied", Method::DELETE, "/r2/9"),
        ];
        for (name, method, path) in cases {
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    decide_once(
                        black_box(&p),
                        black_box(&method),
                        black_box(path),
                        black_box(&writer),
                    )
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
