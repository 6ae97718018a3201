//! A broken policy file never takes effect: a YAML syntax error and a semantic error
//! (a scope outside the catalog) each keep the policy in force, show up as `lastError`
//! with `file:line:col`, and are counted; a good file afterwards clears the error.
//!
//! Its own test binary: it checks process-wide metric gauges.

mod common;

use std::time::Instant;

use common::Harness;
use common::reload::{CLOSED, OPEN, rename_write, version_of};
use serde_json::Value;

fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn metrics(h: &Harness) -> String {
    String::from_utf8(h.admin_get("/metrics").await.body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_files_keep_the_policy_in_force_and_are_reported() {
    let h = Harness::start(OPEN, "").await;
    assert_eq!(h.flip().await, 200);
    let failures = "scopegate_policy_reloads_total{result=\"failure\"}";
    let before = sample(&metrics(&h).await, failures);

    // 1. YAML syntax error.
    let t = Instant::now();
    rename_write(
        &h.policy_path(),
        "version: 1\nroutes:\n  - path: /flip\n    methods: [GET\n",
    );
    let v = h
        .await_policy_status(t, "syntax error reported", |v| !v["lastError"].is_null())
        .await;
    let err = v["lastError"].as_str().unwrap();
    let path = h.policy_path().display().to_string();
    assert!(err.starts_with(&format!("{path}:")), "{err}");
    let loc: Vec<&str> = err[path.len() + 1..].splitn(3, ':').collect();
    assert!(
        loc.len() == 3 && loc[0].parse::<u32>().is_ok() && loc[1].parse::<u32>().is_ok(),
        "file:line:col: message, got {err}"
    );
    assert_eq!(v["version"], version_of(OPEN), "the old policy is in force");
    assert_eq!(h.flip().await, 200, "the old decision stands");
    let m = metrics(&h).await;
    assert_eq!(sample(&m, failures), before + 1.0, "{m}");
    assert_eq!(sample(&m, "scopegate_policy_last_reload_success"), 0.0);
    assert!(m.contains(&format!(
        "scopegate_policy_info{{version=\"{}\"}} 1",
        version_of(OPEN)
    )));

    // 2. A good file clears the error.
    let t = Instant::now();
    rename_write(&h.policy_path(), CLOSED);
    h.await_flip(401, t).await;
    let v = h.admin_get("/v1/policy").await.json();
    assert_eq!(v["lastError"], Value::Null);
    let m = metrics(&h).await;
    assert_eq!(sample(&m, "scopegate_policy_last_reload_success"), 1.0);
    assert!(sample(&m, "scopegate_policy_reloads_total{result=\"success\"}") >= 1.0);
    assert!(m.contains(&format!(
        "scopegate_policy_info{{version=\"{}\"}} 1",
        version_of(CLOSED)
    )));

    // 3. Semantic error: a scope outside the catalog.
    let unknown = CLOSED.replace("scopes: [x:read]", "scopes: [y:write]");
    let t = Instant::now();
    rename_write(&h.policy_path(), &unknown);
    let v = h
        .await_policy_status(t, "unknown scope reported", |v| !v["lastError"].is_null())
        .await;
    let err = v["lastError"].as_str().unwrap();
    assert!(
        err.starts_with(&format!("{path}:")) && err.contains("y:write"),
        "{err}"
    );
    assert_eq!(v["version"], version_of(CLOSED));
    assert_eq!(h.flip().await, 401, "the old decision stands");
    assert_eq!(sample(&metrics(&h).await, failures), before + 2.0);

    // 4. Writing the bytes in force again changes nothing and counts as unchanged.
    let unchanged = "scopegate_policy_reloads_total{result=\"unchanged\"}";
    let before_unchanged = sample(&metrics(&h).await, unchanged);
    let t = Instant::now();
    rename_write(&h.policy_path(), CLOSED);
    h.await_policy_status(t, "error cleared by the file in force", |v| {
        v["lastError"].is_null()
    })
    .await;
    let m = metrics(&h).await;
    assert_eq!(sample(&m, unchanged), before_unchanged + 1.0, "{m}");
    assert_eq!(h.flip().await, 401);
    h.stop().await;
}
