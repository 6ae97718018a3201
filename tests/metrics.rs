//! `/metrics` after a mix of allowed, denied, shadowed and failed traffic: every family of
//! SPEC §5 with the expected label values, counters that add up to the requests sent, and
//! output that `promtool check metrics` accepts.
//!
//! One test only: the metrics recorder is process-wide, so a second test in this binary
//! would add to the same counters.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use common::{Harness, Setup, UpstreamKind, bearer};

/// (name, labels as `k="v",...` sorted) -> value.
type Samples = BTreeMap<(String, String), f64>;

fn parse(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                let inner = rest.strip_suffix('}').expect("closing brace");
                let mut pairs: Vec<String> = inner
                    .split("\",")
                    .map(|p| {
                        let (k, v) = p.split_once('=').expect("label k=v");
                        format!("{k}={}", v.trim_matches('"'))
                    })
                    .collect();
                pairs.sort();
                (n.to_string(), pairs.join(","))
            }
            None => (series.to_string(), String::new()),
        };
        out.insert((name, labels), value);
    }
    out
}

fn get(s: &Samples, name: &str, labels: &str) -> f64 {
    s.get(&(name.to_string(), labels.to_string()))
        .copied()
        .unwrap_or_else(|| {
            let near: Vec<_> = s.keys().filter(|(n, _)| n == name).collect();
            panic!("no sample {name}{{{labels}}}; have {near:#?}")
        })
}

fn sum(s: &Samples, name: &str) -> f64 {
    s.iter()
        .filter(|((n, _), _)| n == name)
        .map(|(_, v)| v)
        .sum()
}

fn requests(route: &str, method: &str, decision: &str, reason: &str) -> String {
    format!("decision={decision},method={method},reason={reason},route={route}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_request_with_bounded_labels() {
    let h = Harness::orders().await;
    let customer = h.token(&["customer"], &["orders:read", "orders:write"], "u1", &[]);
    let auth = bearer(&customer);
    let auth = [(auth.0, auth.1.as_str())];
    let mut sent = 0;
    for _ in 0..3 {
        assert_eq!(h.request("GET", "/orders", &auth).await.status, 200);
        sent += 1;
    }
    for _ in 0..2 {
        assert_eq!(h.request("GET", "/orders", &[]).await.status, 401);
        sent += 1;
    }
    // Two different raw paths of one route share its pattern label.
    assert_eq!(h.request("DELETE", "/orders/7", &auth).await.status, 403);
    assert_eq!(h.request("DELETE", "/orders/8", &auth).await.status, 403);
    sent += 2;
    assert_eq!(h.request("GET", "/nowhere/42", &auth).await.status, 403);
    assert_eq!(h.request("GET", "/a/%2F/b", &[]).await.status, 400);
    sent += 2;
    // The reports route is in shadow mode: forwarded, counted as shadow_deny.
    assert_eq!(h.request("GET", "/reports/q1", &auth).await.status, 200);
    sent += 1;
    // A method outside every label value is "OTHER".
    assert_eq!(h.request("PROPFIND", "/orders", &auth).await.status, 405);
    sent += 1;

    let down = Harness::start_with(Setup {
        policy: common::ORDERS_POLICY,
        upstream: UpstreamKind::Closed,
        ..Setup::default()
    })
    .await;
    assert_eq!(down.request("GET", "/health", &[]).await.status, 502);
    sent += 1;

    let r = h.admin_get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    let s = parse(&text);

    let total = "scopegate_requests_total";
    assert_eq!(sum(&s, total), sent as f64, "{text}");
    assert_eq!(
        get(&s, total, &requests("/orders", "GET", "allow", "")),
        3.0
    );
    assert_eq!(
        get(
            &s,
            total,
            &requests("/orders", "GET", "deny", "missing_credentials")
        ),
        2.0
    );
    assert_eq!(
        get(
            &s,
            total,
            &requests("/orders/{id}", "DELETE", "deny", "insufficient_scope")
        ),
        2.0
    );
    assert_eq!(
        get(&s, total, &requests("", "GET", "deny", "no_matching_route")),
        1.0
    );
    assert_eq!(
        get(&s, total, &requests("", "GET", "deny", "bad_request")),
        1.0
    );
    assert_eq!(
        get(
            &s,
            total,
            &requests(
                "/reports/{*rest}",
                "GET",
                "shadow_deny",
                "insufficient_scope"
            )
        ),
        1.0
    );
    assert_eq!(
        get(
            &s,
            total,
            &requests("/orders", "OTHER", "deny", "method_not_allowed")
        ),
        1.0
    );
    assert_eq!(
        get(&s, total, &requests("/health", "GET", "allow", "")),
        1.0
    );
    // No raw path ever becomes a label.
    assert!(
        !text.contains("/orders/7") && !text.contains("/nowhere"),
        "{text}"
    );

    let count = |name: &str| sum(&s, name);
    assert_eq!(
        count("scopegate_request_duration_seconds_count"),
        sent as f64
    );
    assert_eq!(
        count("scopegate_decision_duration_seconds_count"),
        sent as f64
    );
    assert_eq!(
        get(
            &s,
            "scopegate_request_duration_seconds_count",
            "decision=allow,route=/orders"
        ),
        3.0
    );
    // Decision buckets are fine-grained (microseconds), request buckets reach 30 s.
    get(
        &s,
        "scopegate_decision_duration_seconds_bucket",
        "le=0.000005",
    );
    get(
        &s,
        "scopegate_request_duration_seconds_bucket",
        "decision=allow,le=30,route=/orders",
    );

    // 3 allowed + 1 shadowed answered by the echo upstream; one refused connection.
    assert_eq!(
        get(&s, "scopegate_upstream_responses_total", "status_class=2xx"),
        4.0
    );
    assert_eq!(
        get(&s, "scopegate_upstream_errors_total", "kind=connect"),
        1.0
    );
    assert!(get(&s, "scopegate_connections_active", "") >= 0.0);
    // One token throughout: verified once, then answered from the cache.
    assert_eq!(get(&s, "scopegate_token_cache_misses_total", ""), 1.0);
    assert!(get(&s, "scopegate_token_cache_hits_total", "") >= 5.0);

    let version = common::hex(&sha2::Digest::finalize(
        <sha2::Sha256 as sha2::Digest>::new_with_prefix(common::ORDERS_POLICY),
    ));
    assert_eq!(
        get(&s, "scopegate_policy_info", &format!("version={version}")),
        1.0
    );
    assert_eq!(get(&s, "scopegate_policy_last_reload_success", ""), 1.0);
    assert!(get(&s, "scopegate_policy_last_reload_timestamp_seconds", "") > 1.7e9);
    promtool_check(&text);
    down.stop().await;
    h.stop().await;
}

/// Runs `promtool check metrics` on the output. CI sets `SCOPEGATE_REQUIRE_PROMTOOL=1`
/// (after installing the `prometheus` package), so there a missing promtool fails.
fn promtool_check(text: &str) {
    let required = std::env::var_os("SCOPEGATE_REQUIRE_PROMTOOL").is_some_and(|v| v == "1");
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if !required => {
            eprintln!("promtool not found ({e}); skipped (CI requires it)");
            return;
        }
        Err(e) => panic!("SCOPEGATE_REQUIRE_PROMTOOL=1 but promtool cannot run: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics refused the output:\n{}{}\n---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
