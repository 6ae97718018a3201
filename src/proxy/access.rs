//! The end of every request: its metrics and its one access-log line.
//!
//! Nothing here sees a credential: the line carries the subject the decision ran on,
//! never a token, an API key or an `Authorization` value.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, StatusCode};

use crate::telemetry::{self, ACCESS_LOG_TARGET};

/// What is known about a request by the time it is answered.
pub(super) struct Access<'a> {
    pub start: Instant,
    pub request_id: &'a HeaderValue,
    pub method: &'static str,
    /// The normalized path (or, when normalizing refused it, the path as sent).
    pub path: &'a str,
    pub route: Option<&'a Arc<str>>,
    /// That route's metric handles ([`telemetry::NO_ROUTE`] when none matched).
    pub handles: &'a telemetry::RouteMetrics,
    pub decision: &'static str,
    pub reason: &'static str,
    pub subject: &'a str,
    /// Why credentials were refused (a fixed word, never the credential).
    pub auth_error: &'static str,
    pub decision_time: Duration,
    pub upstream_status: Option<u16>,
}

impl Access<'_> {
    /// Records the request's metrics and writes its access-log line.
    pub fn finish(&self, status: StatusCode) {
        let total = self.start.elapsed();
        telemetry::record_request(&telemetry::RequestOutcome {
            route: self.route,
            method: self.method,
            decision: self.decision,
            reason: self.reason,
            total,
            decision_time: self.decision_time,
            handles: self.handles,
        });
        tracing::info!(
            target: ACCESS_LOG_TARGET,
            request_id = self.request_id.to_str().unwrap_or(""),
            method = self.method,
            route = self.route.map_or("", |r| &**r),
            path = self.path,
            status = status.as_u16(),
            decision = self.decision,
            reason = self.reason,
            subject = self.subject,
            auth_error = self.auth_error,
            upstream_status = self.upstream_status,
            duration_ms = total.as_secs_f64() * 1e3,
            decision_us = self.decision_time.as_secs_f64() * 1e6,
            "request"
        );
    }
}
