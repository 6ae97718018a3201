//! Path normalization alone (step 1 of every decision): typical paths, which should take
//! the borrowed fast path, and hostile ones, which must be decoded, resolved or refused
//! without a cost that grows out of proportion to their length.
//!
//! Run: `cargo bench --bench normalize`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use scopegate::normalize::{NormalizeOptions, normalize_path};

fn bench(c: &mut Criterion) {
    let long_dots = format!("/a{}", "/b/..".repeat(400));
    let long_encoded = format!("/{}", "%61".repeat(600));
    let many_slashes = format!("/{}x", "/".repeat(1000));
    let cases: [(&str, &str); 10] = [
        ("typical/short", "/orders/7"),
        (
            "typical/api",
            "/api/v2/projects/p-1f3a/apps/42/installations",
        ),
        (
            "typical/query_free_long",
            "/v1/organizations/org_12345/users/u_67890/roles/admin",
        ),
        (
            "hostile/encoded_dot_segments",
            "/admin/%2e%2e/%2E%2e/secret/../x",
        ),
        ("hostile/double_encoded", "/a/%252e%252e/b"),
        ("hostile/refused_encoded_slash", "/a%2Fb/c"),
        ("hostile/refused_above_root", "/a/../../etc/passwd"),
        ("hostile/2000_bytes_of_dot_segments", &long_dots),
        ("hostile/1800_bytes_percent_encoded", &long_encoded),
        ("hostile/1000_slashes", &many_slashes),
    ];
    let mut g = c.benchmark_group("normalize");
    for (name, path) in cases {
        g.bench_function(name, |b| {
            b.iter(|| normalize_path(black_box(path), NormalizeOptions::default()).is_ok())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
