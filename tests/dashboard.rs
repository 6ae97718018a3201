//! The Grafana dashboard and the Prometheus alert rules only name metric families that
//! the gateway really exports: a real gateway serves some traffic (allowed, refused,
//! and an upstream that is down), its `/metrics` output is read, and every metric name
//! in every PromQL expression of `deploy/grafana/scopegate.json` and
//! `deploy/prometheus/alerts.yml` must be a sample name in that output (so a histogram
//! is only ever queried through its `_bucket`, `_sum` or `_count` series).
//!
//! One gateway test only: the metrics recorder is process-wide.

mod common;
mod idp;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{Harness, Setup, UpstreamKind, bearer};
use scopegate::telemetry;
use serde_json::Value;

/// Families the dashboard or the alerts use that this build does not export yet, with
/// the issue whose work adds them. Keep this tiny; the test fails once an entry shows up
/// in `/metrics` so that it gets removed.
const NOT_YET_EXPORTED: &[(&str, &str)] = &[];

/// Histogram series suffixes in the Prometheus text format.
const HISTOGRAM_SUFFIXES: &[&str] = &["_bucket", "_sum", "_count"];

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every PromQL expression in the dashboard: panel targets (`expr`) and template
/// variable queries (`query`, `definition`), wherever they are nested.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr" | "query" | "definition", Value::String(s)) => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    // The datasource variable's `query` is a plugin type, not PromQL.
    out.retain(|q| q != "prometheus");
    out
}

/// Every `expr` of the alerting rules.
fn alert_queries(rules: &Value) -> Vec<String> {
    rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules"))
        .map(|r| r["expr"].as_str().expect("expr").to_string())
        .collect()
}

/// The metric names a PromQL expression selects, limited to scopegate's own
/// (`scopegate_` prefix; `up` and the like belong to Prometheus). String literals are
/// skipped, so label values never count as names.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut chars = expr.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c == '"' || c == '\'' || c == '`' {
            let mut escaped = false;
            for (_, d) in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if d == '\\' && c != '`' {
                    escaped = true;
                } else if d == c {
                    break;
                }
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let mut end = start + c.len_utf8();
            while let Some(&(i, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                    end = i + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let word = &expr[start..end];
            if word.starts_with("scopegate_") {
                names.insert(word.to_string());
            }
        } else if c.is_ascii_digit() {
            // A number or a duration (`5m`, `1e3`): never a name.
            while chars
                .peek()
                .is_some_and(|&(_, d)| d.is_ascii_alphanumeric() || d == '.')
            {
                chars.next();
            }
        }
    }
    names
}

/// The exporter's output: family name -> type (from `# TYPE`), and every sample name.
struct Exported {
    types: BTreeMap<String, String>,
    samples: BTreeSet<String>,
}

fn exported(text: &str) -> Exported {
    let mut types = BTreeMap::new();
    let mut samples = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            types.insert(name.to_string(), kind.to_string());
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).expect("sample line");
            samples.insert(line[..end].to_string());
        }
    }
    Exported { types, samples }
}

/// The family a sample name belongs to: a histogram's series map to the histogram.
fn family_of<'a>(name: &'a str, exported: &Exported) -> &'a str {
    HISTOGRAM_SUFFIXES
        .iter()
        .filter_map(|s| name.strip_suffix(s))
        .find(|base| exported.types.get(*base).is_some_and(|t| t == "histogram"))
        .unwrap_or(name)
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let names = metric_names(
        r#"sum by (le) (rate(scopegate_request_duration_seconds_bucket{job="scopegate_x", r=~'a"b'}[5m]))
           / on(job) group_left scopegate:ratio:rate5m + 1e3 * up + scopegate_policy_info"#,
    );
    let names: Vec<_> = names.iter().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "scopegate_policy_info",
            "scopegate_request_duration_seconds_bucket"
        ]
    );
    let text = "# TYPE scopegate_x_seconds histogram\nscopegate_x_seconds_bucket{le=\"1\"} 1\n\
                # TYPE scopegate_y_count counter\nscopegate_y_count 3\n";
    let e = exported(text);
    assert_eq!(
        family_of("scopegate_x_seconds_count", &e),
        "scopegate_x_seconds"
    );
    assert_eq!(family_of("scopegate_y_count", &e), "scopegate_y_count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_name_only_exported_metric_families() {
    // Traffic that fills the request, decision, upstream-response and connection series.
    let h = Harness::orders().await;
    let token = h.token(&["customer"], &["orders:read"], "u1", &[]);
    let auth = bearer(&token);
    let auth = [(auth.0, auth.1.as_str())];
    for _ in 0..3 {
        assert_eq!(h.request("GET", "/orders", &auth).await.status, 200);
    }
    assert_eq!(h.request("GET", "/orders", &[]).await.status, 401);
    assert_eq!(h.request("DELETE", "/orders/7", &auth).await.status, 403);
    // An upstream that is down fills scopegate_upstream_errors_total.
    let down = Harness::start_with(Setup {
        policy: common::ORDERS_POLICY,
        upstream: UpstreamKind::Closed,
        ..Setup::default()
    })
    .await;
    assert_eq!(down.request("GET", "/orders", &auth).await.status, 502);
    // A gateway whose issuer takes its keys from a (loopback) IdP fills
    // scopegate_jwks_refreshes_total.
    let idp = idp::Idp::start(&[idp::RSA1]).await;
    let issuers = format!(
        "- issuer: {}\n  jwks_uri: {}\n  algorithms: [RS256]\n",
        idp::ISSUER,
        idp.jwks_uri()
    );
    let fetching = Harness::start_with(Setup {
        policy: common::ORDERS_POLICY,
        issuers: &issuers,
        ..Setup::default()
    })
    .await;
    idp::wait_until("the IdP's keys", || fetching.auth.is_ready()).await;
    // SIGHUP asks every gateway in this process to reload; the same bytes count as
    // `unchanged`, which fills scopegate_policy_reloads_total.
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(hup.success());
    let deadline = std::time::Instant::now() + common::IO_TIMEOUT;
    while !String::from_utf8_lossy(&h.admin_get("/metrics").await.body)
        .contains(telemetry::POLICY_RELOADS_TOTAL)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload counted after SIGHUP"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let metrics = h.admin_get("/metrics").await;
    assert_eq!(metrics.status, 200);
    let exported = exported(std::str::from_utf8(&metrics.body).expect("UTF-8 metrics"));

    let dashboard: Value =
        serde_json::from_str(&repo_file("deploy/grafana/scopegate.json")).expect("dashboard JSON");
    let rules: Value = serde_saphyr::from_str(&repo_file("deploy/prometheus/alerts.yml"))
        .expect("alerts.yml is YAML");
    let sources = [
        (
            "deploy/grafana/scopegate.json",
            dashboard_queries(&dashboard),
        ),
        ("deploy/prometheus/alerts.yml", alert_queries(&rules)),
    ];

    let pending: BTreeMap<&str, &str> = NOT_YET_EXPORTED.iter().copied().collect();
    let mut unknown = Vec::new();
    let mut used = BTreeSet::new();
    for (file, queries) in &sources {
        assert!(!queries.is_empty(), "{file}: no queries found");
        for q in queries {
            for name in metric_names(q) {
                used.insert(name.clone());
                if exported.samples.contains(&name) {
                    continue;
                }
                let family = HISTOGRAM_SUFFIXES
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|b| pending.contains_key(b)))
                    .unwrap_or(&name);
                if pending.contains_key(family) {
                    continue;
                }
                let hint = match exported.types.get(&name) {
                    Some(t) if t == "histogram" => " (a histogram: query _bucket, _sum or _count)",
                    _ => "",
                };
                unknown.push(format!("{file}: `{name}`{hint} in: {q}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "metric names the gateway does not export:\n{}\n\nexported samples: {:#?}",
        unknown.join("\n"),
        exported.samples
    );

    // An exception that has landed must leave the list.
    for (family, why) in NOT_YET_EXPORTED {
        assert!(
            !exported.types.contains_key(*family),
            "{family} is exported now ({why}): remove it from NOT_YET_EXPORTED"
        );
        assert!(
            used.contains(*family),
            "{family} is excepted but nothing queries it"
        );
    }

    // The dashboard covers what its panels promise, through the right series.
    let families: BTreeSet<&str> = used.iter().map(|n| family_of(n, &exported)).collect();
    for family in [
        telemetry::REQUESTS_TOTAL,
        telemetry::REQUEST_DURATION,
        telemetry::DECISION_DURATION,
        telemetry::UPSTREAM_ERRORS_TOTAL,
        telemetry::POLICY_RELOADS_TOTAL,
        telemetry::TOKEN_CACHE_HITS_TOTAL,
        telemetry::TOKEN_CACHE_MISSES_TOTAL,
        telemetry::JWKS_REFRESHES_TOTAL,
        telemetry::POLICY_LAST_RELOAD_SUCCESS,
    ] {
        assert!(families.contains(family), "nothing queries {family}");
    }
    for histogram in [telemetry::REQUEST_DURATION, telemetry::DECISION_DURATION] {
        assert_eq!(
            exported.types.get(histogram).map(String::as_str),
            Some("histogram"),
            "{histogram}"
        );
        assert!(
            used.contains(&format!("{histogram}_bucket")),
            "{histogram} percentiles"
        );
    }

    down.stop().await;
    h.stop().await;
}
