//! Parse + validate + compile of a 10,000-route policy file, as a reload does it (the
//! bytes are already read), with the gateway binary's allocator. The target is under 100 ms.
//!
//! Run: `cargo bench --bench policy_compile`.

use std::fmt::Write;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use scopegate::policy::Policy;

/// The allocator `src/main.rs` installs: a compile makes and frees a few hundred
/// thousand small allocations, and glibc's malloc costs them differently.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// 10,000 routes over 2,500 resource families with a catalog of their scopes, templates,
/// `any_scopes`, role gates, constraints and inheriting roles: every compile step has work.
fn policy_text(routes: usize) -> String {
    let families = routes / 4;
    let mut t = String::from(
        "version: 1\nactions: { GET: read, HEAD: read, POST: write, PUT: write, PATCH: write, DELETE: delete }\nscopes:\n",
    );
    for i in 0..families {
        for a in ["read", "write", "delete"] {
            let _ = writeln!(t, "  r{i}:{a}: {a} r{i}");
        }
    }
    t.push_str(
        "default_role: reader\nroles:\n  reader: { scopes: [r0:read, r1:read, r2:read], attributes: { projects: [p1, p2] } }\n  \
         writer: { inherits: [reader], scopes: [\"*\"], deny: [r0:delete] }\n  admin: { inherits: [writer], scopes: [\"*\"] }\nroutes:\n",
    );
    for i in 0..families {
        let _ = writeln!(
            t,
            "  - {{ path: /r{i}, methods: [GET, POST], scopes: [\"r{i}:{{action}}\"] }}"
        );
        let _ = writeln!(
            t,
            "  - {{ path: \"/r{i}/{{id}}\", scopes: [\"r{i}:{{action}}\"], require: {{ id: {{ in: [role:projects] }} }}, bypass_roles: [admin] }}"
        );
        let _ = writeln!(
            t,
            "  - {{ path: \"/r{i}/{{id}}/refund\", methods: [POST], any_scopes: [[r{i}:write], [r{i}:delete]] }}"
        );
        let _ = writeln!(
            t,
            "  - {{ path: \"/r{i}/{{id}}/files/{{*rest}}\", methods: [GET], scopes: [r{i}:read], roles: [writer, admin] }}"
        );
    }
    t
}

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
