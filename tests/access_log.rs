//! The access log: one JSON line per request at target `scopegate::access`, with the
//! fields operators filter on, and never a token, an API key or an `Authorization` value.
//!
//! One test only: the log subscriber is process-wide.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{Harness, Setup, bearer};
use serde_json::Value;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_per_request_and_no_credentials_in_any_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        // Everything the gateway logs, not only the access log, must be free of secrets.
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .init();

    let h = Harness::start_with(Setup {
        policy: common::ORDERS_POLICY,
        api_keys: true,
        ..Setup::default()
    })
    .await;
    let token = h.token(&["customer"], &["orders:read"], "user-17", &[]);
    let expired_like = format!("{token}x"); // a bad signature: refused as invalid_token
    let auth = bearer(&token);
    let bad = bearer(&expired_like);

    let ok = h
        .request("GET", "/orders?page=2", &[(auth.0, &auth.1)])
        .await;
    assert_eq!(ok.status, 200);
    let denied = h.request("DELETE", "/orders/7", &[(auth.0, &auth.1)]).await;
    assert_eq!(denied.status, 403);
    let invalid = h.request("GET", "/orders", &[(bad.0, &bad.1)]).await;
    assert_eq!(invalid.status, 401);
    let key = h
        .request("GET", "/orders", &[("X-API-Key", "test-api-key-1")])
        .await;
    assert_eq!(key.status, 200);
    let unknown_key = h
        .request("GET", "/orders", &[("X-API-Key", "secret-key-zzz")])
        .await;
    assert_eq!(unknown_key.status, 401);
    h.stop().await;

    let text = captured.text();
    for secret in [
        token.as_str(),
        // Even a piece of the token (its signature) must not appear.
        token.rsplit('.').next().unwrap(),
        "test-api-key-1",
        "secret-key-zzz",
        "Bearer ",
    ] {
        assert!(!text.contains(secret), "log contains {secret:?}:\n{text}");
    }

    let access: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON log line"))
        .filter(|v| v["target"] == "scopegate::access")
        .collect();
    assert_eq!(access.len(), 5, "one access line per request:\n{text}");
    for line in &access {
        assert_eq!(line["level"], "INFO");
    }
    let f = |i: usize| &access[i]["fields"];
    let responses = [&ok, &denied, &invalid, &key, &unknown_key];
    // Lines appear in request order (each request finished before the next began).
    for (i, resp) in responses.iter().enumerate() {
        assert_eq!(f(i)["request_id"], resp.request_id(), "{}", f(i));
        assert_eq!(f(i)["status"], resp.status.as_u16(), "{}", f(i));
    }
    let first = f(0);
    assert_eq!(first["method"], "GET");
    assert_eq!(first["route"], "/orders");
    assert_eq!(first["path"], "/orders");
    assert_eq!(first["decision"], "allow");
    assert_eq!(first["reason"], "");
    assert_eq!(first["subject"], "user-17");
    assert_eq!(first["upstream_status"], 200);
    assert!(first["duration_ms"].as_f64().unwrap() > 0.0);
    assert!(first["decision_us"].as_f64().unwrap() > 0.0);

    assert_eq!(f(1)["route"], "/orders/{id}");
    assert_eq!(f(1)["path"], "/orders/7");
    assert_eq!(f(1)["decision"], "deny");
    assert_eq!(f(1)["reason"], "insufficient_scope");
    assert!(f(1).get("upstream_status").is_none(), "{}", f(1));
    assert_eq!(f(2)["reason"], "invalid_token");
    assert_eq!(f(2)["auth_error"], "bad_signature");
    assert_eq!(f(3)["subject"], "ci-bot");
    assert_eq!(f(4)["auth_error"], "unknown_api_key");
}
