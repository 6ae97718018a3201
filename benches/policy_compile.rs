//! Parse + validate + compile of a 10,000-route policy file, as a reload does it (the
//! bytes are already read), with the gateway binary's allocator. The target is under 100 ms.
//!
//! Run: `cargo bench --bench policy_compile`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use scopegate::policy::Policy;

#[path = "common/big_policy.rs"]
mod big_policy;
use big_policy::policy_text;

/// The allocator `src/main.rs` installs: a compile makes and frees a few hundred
/// thousand small allocations, and glibc's malloc costs them differently.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    let text = policy_text(10_000);
    let compiled = Policy::from_bytes(Path::new("bench.yaml"), text.as_bytes())
        .unwrap_or_else(|e| panic!("bench policy refused: {e}"));
    assert_eq!(compiled.route_count(), 10_000);
    let mut g = c.benchmark_group("policy_compile");
    g.sample_size(20);
    g.bench_function("10000_routes", |b| {
        b.iter(|| Policy::from_bytes(Path::new("bench.yaml"), black_box(text.as_bytes())))
    });
    // The YAML parse alone (serde-saphyr into the raw serde types), to show the split.
    g.bench_function("10000_routes_yaml_only", |b| {
        b.iter(|| {
            scopegate::yaml::from_str::<scopegate::policy::raw::RawPolicy>(
                Path::new("bench.yaml"),
                black_box(&text),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
