//! Metric names, the Prometheus recorder and the access log.
//!
//! Every metric is recorded through the `metrics` facade under one of the names below
//! (described once, when the recorder is installed) and rendered by the admin listener.
//! Label values are bounded and never formatted per request: they are `&'static str`
//! or the compiled policy's `Arc<str>` route patterns.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};
use metrics::{
    Counter, Histogram, SharedString, Unit, describe_counter, describe_gauge, describe_histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

/// `{route,method,decision,reason}`: every request the public listener answered.
pub const REQUESTS_TOTAL: &str = "scopegate_requests_total";
/// `{route,decision}`: arrival to response headers.
pub const REQUEST_DURATION: &str = "scopegate_request_duration_seconds";
/// Normalize + authenticate + decide, without the upstream.
pub const DECISION_DURATION: &str = "scopegate_decision_duration_seconds";
/// `{status_class}`: answers the upstream gave.
pub const UPSTREAM_RESPONSES_TOTAL: &str = "scopegate_upstream_responses_total";
/// `{kind}`: requests the upstream never answered.
pub const UPSTREAM_ERRORS_TOTAL: &str = "scopegate_upstream_errors_total";
/// `{result}`: policy reload attempts (`success`, `failure`, `unchanged`).
pub const POLICY_RELOADS_TOTAL: &str = "scopegate_policy_reloads_total";
/// `{version}` = 1 for the policy in force.
pub const POLICY_INFO: &str = "scopegate_policy_info";
/// 1 when the last reload attempt succeeded (or changed nothing), 0 when it failed.
pub const POLICY_LAST_RELOAD_SUCCESS: &str = "scopegate_policy_last_reload_success";
/// Unix time of the last reload attempt.
pub const POLICY_LAST_RELOAD_TIMESTAMP: &str = "scopegate_policy_last_reload_timestamp_seconds";
/// `{issuer,result}`: JWKS fetches.
pub const JWKS_REFRESHES_TOTAL: &str = "scopegate_jwks_refreshes_total";
/// Verified-token cache hits.
pub const TOKEN_CACHE_HITS_TOTAL: &str = "scopegate_token_cache_hits_total";
/// Verified-token cache misses.
pub const TOKEN_CACHE_MISSES_TOTAL: &str = "scopegate_token_cache_misses_total";
/// Open connections on the public listener.
pub const CONNECTIONS_ACTIVE: &str = "scopegate_connections_active";

/// The `tracing` target of the one-line-per-request access log.
pub const ACCESS_LOG_TARGET: &str = "scopegate::access";

/// Buckets for the decision: it takes microseconds, so the buckets do too (1 µs-25 ms).
const DECISION_BUCKETS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
];
/// Buckets for whole requests, which include the upstream: 0.5 ms-30 s.
const REQUEST_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How long a gauge nobody sets stays in `/metrics` (see [`refresh_gauges`]).
pub const GAUGE_IDLE: Duration = Duration::from_secs(60);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls return the same
/// handle) and describes every metric. The admin listener renders from the handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE))
                .set_buckets_for_metric(Matcher::Full(DECISION_DURATION.into()), DECISION_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(REQUEST_DURATION.into()),
                        REQUEST_BUCKETS,
                    )
                })
                .expect("the bucket lists are constant and non-empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
            }
            describe();
            let _ = FIXED.set(register_fixed());
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        REQUESTS_TOTAL,
        "Requests answered, by route pattern, method, decision and reason"
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time from request arrival to response headers"
    );
    describe_histogram!(
        DECISION_DURATION,
        Unit::Seconds,
        "Time to normalize, authenticate and decide"
    );
    describe_counter!(
        UPSTREAM_RESPONSES_TOTAL,
        "Upstream responses by status class"
    );
    describe_counter!(UPSTREAM_ERRORS_TOTAL, "Upstream failures by kind");
    describe_counter!(POLICY_RELOADS_TOTAL, "Policy reload attempts by result");
    describe_gauge!(
        POLICY_INFO,
        "The policy in force (version = SHA-256 of its file)"
    );
    describe_gauge!(
        POLICY_LAST_RELOAD_SUCCESS,
        "1 if the last reload attempt succeeded, else 0"
    );
    describe_gauge!(
        POLICY_LAST_RELOAD_TIMESTAMP,
        Unit::Seconds,
        "Unix time of the last reload attempt"
    );
    describe_counter!(JWKS_REFRESHES_TOTAL, "JWKS fetches by issuer and result");
    describe_counter!(
        TOKEN_CACHE_HITS_TOTAL,
        "Tokens found in the verified-token cache"
    );
    describe_counter!(
        TOKEN_CACHE_MISSES_TOTAL,
        "Tokens verified because they were not cached"
    );
    describe_gauge!(
        CONNECTIONS_ACTIVE,
        "Open connections on the public listener"
    );
}

/// The method label: a fixed set, so a client cannot grow the label space.
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// The `status_class` label.
pub fn status_class(s: StatusCode) -> &'static str {
    match s.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// What one request came to, for its metrics (the access log is written by the caller).
pub struct RequestOutcome<'a> {
    /// The matched path's pattern; `None` when no route matched.
    pub route: Option<&'a Arc<str>>,
    pub method: &'static str,
    pub decision: &'static str,
    pub reason: &'static str,
    pub total: Duration,
    pub decision_time: Duration,
    /// The cached handles of that route ([`NO_ROUTE`] when none matched).
    pub handles: &'a RouteMetrics,
}

/// Records `scopegate_requests_total` and both durations.
pub fn record_request(o: &RequestOutcome<'_>) {
    let handles = o.handles.get();
    let i = label_index(o.method, o.decision, o.reason);
    match (handles, i) {
        (Some(h), Some((i, d))) => {
            h.requests[i]
                .get_or_init(|| requests_counter(o.route, o.method, o.decision, o.reason))
                .increment(1);
            h.durations[d]
                .get_or_init(|| duration_histogram(o.route, o.decision))
                .record(o.total.as_secs_f64());
        }
        _ => {
            requests_counter(o.route, o.method, o.decision, o.reason).increment(1);
            duration_histogram(o.route, o.decision).record(o.total.as_secs_f64());
        }
    }
    let decision = o.decision_time.as_secs_f64();
    match FIXED.get() {
        Some(f) => f.decision.record(decision),
        None => metrics::histogram!(DECISION_DURATION).record(decision),
    }
}

fn route_label(route: Option<&Arc<str>>) -> SharedString {
    route.map_or(SharedString::const_str(""), |r| {
        SharedString::from(r.clone())
    })
}

fn requests_counter(
    route: Option<&Arc<str>>,
    method: &'static str,
    decision: &'static str,
    reason: &'static str,
) -> Counter {
    metrics::counter!(
        REQUESTS_TOTAL,
        "route" => route_label(route),
        "method" => method,
        "decision" => decision,
        "reason" => reason
    )
}

fn duration_histogram(route: Option<&Arc<str>>, decision: &'static str) -> Histogram {
    metrics::histogram!(REQUEST_DURATION, "route" => route_label(route), "decision" => decision)
}

/// Every value the method, decision and reason labels can take, so a request's handles
/// sit at a fixed index.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER",
];
const DECISIONS: [&str; 3] = ["allow", "deny", "shadow_deny"];
const REASONS: [&str; 12] = [
    "",
    "bad_request",
    "no_matching_route",
    "method_not_allowed",
    "missing_credentials",
    "invalid_token",
    "expired_token",
    "role_not_permitted",
    "insufficient_scope",
    "constraint_failed",
    "upstream_unavailable",
    "upstream_timeout",
];
const SLOTS: usize = METHODS.len() * DECISIONS.len() * REASONS.len();

/// (index into the request counters, index into the duration histograms).
fn label_index(method: &str, decision: &str, reason: &str) -> Option<(usize, usize)> {
    let m = METHODS.iter().position(|x| *x == method)?;
    let d = DECISIONS.iter().position(|x| *x == decision)?;
    let r = REASONS.iter().position(|x| *x == reason)?;
    Some(((m * DECISIONS.len() + d) * REASONS.len() + r, d))
}

/// The per-request metric handles of one route (or of "no route"), registered with the
/// recorder on first use. Later requests record through them directly: no registry
/// look-up, no lock, no label allocation. Allocated only for routes that see traffic.
#[derive(Default)]
pub struct RouteMetrics(OnceLock<Box<RouteHandles>>);

/// The handles behind [`RouteMetrics`].
pub struct RouteHandles {
    requests: Box<[OnceLock<Counter>]>,
    durations: [OnceLock<Histogram>; 3],
}

impl RouteMetrics {
    /// The handles of `route`; `None` when no recorder is installed yet (then the
    /// registry is asked, as it would be without a cache).
    fn get(&self) -> Option<&RouteHandles> {
        FIXED.get()?;
        Some(self.0.get_or_init(|| {
            Box::new(RouteHandles {
                requests: (0..SLOTS).map(|_| OnceLock::new()).collect(),
                durations: Default::default(),
            })
        }))
    }
}

impl std::fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouteMetrics")
    }
}

/// The handles of requests that matched no route.
pub static NO_ROUTE: RouteMetrics = RouteMetrics(OnceLock::new());

/// Handles of the per-request metrics whose labels are all fixed, registered once when
/// the recorder is installed, so recording them skips the registry lookup.
struct Fixed {
    decision: Histogram,
    /// By status class: 1xx..5xx.
    upstream: [Counter; 5],
}

static FIXED: OnceLock<Fixed> = OnceLock::new();

fn register_fixed() -> Fixed {
    let class = |c: &'static str| metrics::counter!(UPSTREAM_RESPONSES_TOTAL, "status_class" => c);
    Fixed {
        decision: metrics::histogram!(DECISION_DURATION),
        upstream: [
            class("1xx"),
            class("2xx"),
            class("3xx"),
            class("4xx"),
            class("5xx"),
        ],
    }
}

/// Counts an upstream answer by status class.
pub fn record_upstream_response(status: StatusCode) {
    match FIXED.get() {
        Some(f) => {
            let i = usize::from((status.as_u16() / 100).clamp(1, 5) - 1);
            f.upstream[i].increment(1);
        }
        None => {
            metrics::counter!(UPSTREAM_RESPONSES_TOTAL, "status_class" => status_class(status))
                .increment(1);
        }
    }
}

/// Counts an upstream failure by kind (`connect`, `timeout`, `reset`, `protocol`).
pub fn record_upstream_error(kind: &'static str) {
    metrics::counter!(UPSTREAM_ERRORS_TOTAL, "kind" => kind).increment(1);
}

/// Open public connections, kept here so [`refresh_gauges`] can re-set the gauge.
static CONNECTIONS: AtomicI64 = AtomicI64::new(0);

/// One more open public connection.
pub fn connection_opened() {
    let n = CONNECTIONS.fetch_add(1, Ordering::Relaxed) + 1;
    metrics::gauge!(CONNECTIONS_ACTIVE).set(n as f64);
}

/// One fewer open public connection.
pub fn connection_closed() {
    let n = CONNECTIONS.fetch_sub(1, Ordering::Relaxed) - 1;
    metrics::gauge!(CONNECTIONS_ACTIVE).set(n as f64);
}

/// The outcome of a policy (or API-key file) reload attempt: the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    Success,
    Failure,
    /// The bytes equal the live file's: nothing changed.
    Unchanged,
}

impl ReloadResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Success => "success",
            ReloadResult::Failure => "failure",
            ReloadResult::Unchanged => "unchanged",
        }
    }
}

/// The policy gauges' current values; only reloads and the upkeep tick touch them.
struct PolicyGauges {
    version: SharedString,
    success: bool,
    at: f64,
}

static POLICY: Mutex<Option<PolicyGauges>> = Mutex::new(None);

/// The policy in force at start: `policy_info{version}`, last reload a success, now.
pub fn policy_loaded(version: &str) {
    set_policy_gauges(version, true);
}

/// Counts a reload attempt and updates the policy gauges. `version` is the policy in
/// force afterwards (the old one after a failure).
pub fn record_reload(result: ReloadResult, version: &str) {
    metrics::counter!(POLICY_RELOADS_TOTAL, "result" => result.as_str()).increment(1);
    set_policy_gauges(version, result != ReloadResult::Failure);
}

fn set_policy_gauges(version: &str, success: bool) {
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut g = POLICY.lock().unwrap_or_else(|e| e.into_inner());
    *g = Some(PolicyGauges {
        version: SharedString::from(version.to_string()),
        success,
        at,
    });
    drop(g);
    refresh_gauges();
}

/// Re-sets every gauge to its current value. Run by the admin listener's upkeep tick:
/// gauges not set for [`GAUGE_IDLE`] are dropped from `/metrics`, which is how the
/// `policy_info` series of a replaced version goes away instead of piling up.
pub fn refresh_gauges() {
    metrics::gauge!(CONNECTIONS_ACTIVE).set(CONNECTIONS.load(Ordering::Relaxed) as f64);
    let g = POLICY.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = &*g {
        metrics::gauge!(POLICY_INFO, "version" => p.version.clone()).set(1.0);
        metrics::gauge!(POLICY_LAST_RELOAD_SUCCESS).set(if p.success { 1.0 } else { 0.0 });
        metrics::gauge!(POLICY_LAST_RELOAD_TIMESTAMP).set(p.at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        let m = Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(method_label(&m), "OTHER");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(StatusCode::OK), "2xx");
        assert_eq!(status_class(StatusCode::NOT_FOUND), "4xx");
        assert_eq!(status_class(StatusCode::BAD_GATEWAY), "5xx");
    }
}
