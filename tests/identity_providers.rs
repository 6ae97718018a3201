//! Keys from an identity provider: a real gateway in front of the echo upstream takes its
//! keys from a loopback IdP (tests/idp) by `jwks_uri` or OpenID discovery, over HTTP and
//! HTTPS, and follows it through rotation, removal, outages and floods of unknown kids.

mod common;
mod idp;

use std::time::Duration;

use common::{Harness, ORDERS_POLICY, Resp, Setup, assert_denial, bearer};
use idp::{EC256, ED25519, ISSUER, Idp, RSA1, RSA2, wait_until};
use serde_json::json;

/// A gateway on the reference policy trusting the harness's HS256 issuer plus the IdP
/// at `source` (`jwks_uri: ...` or `discovery: ...`) with `settings` (more issuer keys).
async fn gateway(source: &str, settings: &str) -> Harness {
    let issuers = format!(
        "- issuer: {ISSUER}\n  {source}\n  audiences: [orders-api]\n  \
         algorithms: [RS256, ES256, EdDSA]\n{}",
        settings
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
    );
    Harness::start_with(Setup {
        policy: ORDERS_POLICY,
        issuers: &issuers,
        ..Setup::default()
    })
    .await
}

/// A counter's value as the gateway's own Prometheus exporter shows it on `/metrics`
/// (0 when the series does not exist yet). The recorder is process-wide and tests run
/// concurrently, so assertions on it compare before and after.
async fn counter(h: &Harness, name: &str, labels: &str) -> f64 {
    let resp = h.admin_get("/metrics").await;
    let text = String::from_utf8_lossy(&resp.body).into_owned();
    let prefix = format!("{name}{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter(|l| labels.split(',').all(|kv| l.contains(kv)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn ready(h: &Harness) {
    wait_until("the gateway to have every issuer's keys", || {
        h.auth.is_ready()
    })
    .await;
}

async fn get_orders(h: &Harness, token: &str) -> Resp {
    let (name, value) = bearer(token);
    h.request("GET", "/orders", &[(name, &value)]).await
}

/// `GET /orders` with `token` on a connection of its own; the status only.
async fn status_of(addr: std::net::SocketAddr, token: &str) -> u16 {
    use http_body_util::Empty;
    use hyper_util::rt::TokioIo;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/orders")
        .header("host", "gateway.test")
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = tokio::time::timeout(common::IO_TIMEOUT, sender.send_request(req))
        .await
        .expect("in time")
        .unwrap();
    resp.status().as_u16()
}

fn assert_allowed(resp: &Resp, sub: &str) {
    assert_eq!(resp.status, 200, "{}", resp.brief());
    let echo = resp.echo();
    assert_eq!(echo.header("x-auth-subject"), Some(sub), "{}", resp.brief());
}

fn assert_invalid_token(resp: &Resp) {
    assert_denial(resp, 401, "UnauthorizedError", "invalid_token");
}

#[tokio::test]
async fn keys_by_jwks_uri_verify_tokens_and_scopes_are_enforced() {
    let idp = Idp::start(&[RSA1, EC256]).await;
    let h = gateway(&format!("jwks_uri: {}", idp.jwks_uri()), "").await;
    ready(&h).await;
    assert_eq!(idp.discovery_fetches(), 0);

    assert_allowed(
        &get_orders(&h, &RSA1.token("alice", "orders:read")).await,
        "alice",
    );
    assert_allowed(
        &get_orders(&h, &EC256.token("bob", "orders:read")).await,
        "bob",
    );
    let denied = get_orders(&h, &RSA1.token("carol", "orders:write")).await;
    let v = assert_denial(&denied, 403, "ForbiddenError", "insufficient_scope");
    assert_eq!(v["missingScopes"], json!(["orders:read"]));
    // A key the IdP does not publish, under a published kid: a forgery.
    assert_invalid_token(
        &get_orders(&h, &RSA2.token_with_kid("rsa-1", "mallory", "orders:read")).await,
    );
    // The harness's own HS256 issuer keeps working beside the IdP.
    let hs = h.token(&[], &["orders:read"], "hs-user", &[]);
    assert_allowed(&get_orders(&h, &hs).await, "hs-user");
    h.stop().await;
}

#[tokio::test]
async fn keys_by_discovery_over_https_with_a_private_ca() {
    let idp = Idp::start_tls(&[ED25519, RSA1]).await;
    let ca = idp::fixture("idp-tls/ca.pem");
    let h = gateway(
        &format!("discovery: {}", idp.discovery_url()),
        &format!("ca: {}", ca.display()),
    )
    .await;
    ready(&h).await;
    assert_eq!(idp.discovery_fetches(), 1);
    assert_eq!(idp.jwks_fetches(), 1);
    assert!(idp.base().starts_with("https://"));
    assert_allowed(
        &get_orders(&h, &ED25519.token("dana", "orders:read")).await,
        "dana",
    );
    assert_allowed(
        &get_orders(&h, &RSA1.token("erin", "orders:read")).await,
        "erin",
    );
    h.stop().await;
}

#[tokio::test]
async fn https_without_the_right_ca_never_loads_keys() {
    let idp = Idp::start_tls(&[RSA1]).await;
    // A CA that did not issue the IdP's certificate: the handshake fails.
    let other = idp::fixture("idp-tls/other-ca.pem");
    let h = gateway(
        &format!("jwks_uri: {}", idp.jwks_uri()),
        &format!("ca: {}", other.display()),
    )
    .await;
    // The unknown kid makes the gateway try at once (beside its background attempt).
    assert_invalid_token(&get_orders(&h, &RSA1.token("x", "orders:read")).await);
    assert!(idp.connections() > 0, "the gateway did connect");
    assert!(!h.auth.is_ready());
    assert_eq!(idp.jwks_fetches(), 0, "no request ever got past TLS");
    h.stop().await;
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let idp = Idp::start(&[RSA1]).await;
    idp.set_discovery_issuer("http://evil.test/");
    let h = gateway(&format!("discovery: {}", idp.discovery_url()), "").await;
    wait_until("a discovery attempt", || idp.discovery_fetches() > 0).await;
    assert_invalid_token(&get_orders(&h, &RSA1.token("x", "orders:read")).await);
    assert!(!h.auth.is_ready());
    assert_eq!(idp.jwks_fetches(), 0, "its jwks_uri is never followed");
    h.stop().await;
}

#[tokio::test]
async fn a_rotated_in_key_verifies_after_the_unknown_kid_refetch() {
    let idp = Idp::start(&[RSA1]).await;
    let h = gateway(&format!("jwks_uri: {}", idp.jwks_uri()), "").await;
    ready(&h).await;
    assert_eq!(idp.jwks_fetches(), 1);
    assert_allowed(
        &get_orders(&h, &RSA1.token("old", "orders:read")).await,
        "old",
    );

    idp.set_keys(&[RSA1, EC256]);
    // The very first token under the new kid succeeds: it triggers the refetch itself.
    assert_allowed(
        &get_orders(&h, &EC256.token("new", "orders:read")).await,
        "new",
    );
    assert_eq!(idp.jwks_fetches(), 2);
    assert_allowed(
        &get_orders(&h, &RSA1.token("old", "orders:read")).await,
        "old",
    );
    h.stop().await;
}

#[tokio::test]
async fn a_removed_key_stops_verifying_after_the_background_refresh() {
    let idp = Idp::start(&[RSA1, RSA2]).await;
    let h = gateway(
        &format!("jwks_uri: {}", idp.jwks_uri()),
        "refresh: { min: 1s, max: 1s }",
    )
    .await;
    ready(&h).await;
    let token = RSA1.token("leaving", "orders:read");
    // Verified once, then served from the cache.
    assert_allowed(&get_orders(&h, &token).await, "leaving");
    assert_allowed(&get_orders(&h, &token).await, "leaving");

    idp.set_keys(&[RSA2]);
    let seen = idp.jwks_fetches();
    idp.wait_for_jwks_fetches_over(seen).await;
    // The fetch is counted when the request arrives; wait for the swap to follow.
    let mut refused = false;
    for _ in 0..200 {
        if get_orders(&h, &token).await.status == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        refused,
        "the cached token must stop verifying once its key is gone"
    );
    assert_invalid_token(&get_orders(&h, &token).await);
    assert_allowed(
        &get_orders(&h, &RSA2.token("staying", "orders:read")).await,
        "staying",
    );
    h.stop().await;
}

#[tokio::test]
async fn idp_down_at_start_keeps_the_gateway_unready_until_it_comes_up() {
    let idp = Idp::start(&[RSA1]).await;
    idp.set_up(false);
    let h = gateway(
        &format!("jwks_uri: {}", idp.jwks_uri()),
        "refresh: { min: 1s, max: 1s }",
    )
    .await;
    wait_until("a failed fetch", || idp.jwks_fetches() > 0).await;
    assert!(!h.auth.is_ready());
    assert_invalid_token(&get_orders(&h, &RSA1.token("early", "orders:read")).await);
    assert!(!h.auth.is_ready());

    let issuer = format!("issuer=\"{ISSUER}\"");
    let failures = counter(
        &h,
        "scopegate_jwks_refreshes_total",
        &format!("{issuer},result=\"failure\""),
    )
    .await;
    assert!(failures > 0.0, "failed fetches are counted");
    let successes = counter(
        &h,
        "scopegate_jwks_refreshes_total",
        &format!("{issuer},result=\"success\""),
    )
    .await;
    idp.set_up(true);
    ready(&h).await;
    assert!(
        counter(
            &h,
            "scopegate_jwks_refreshes_total",
            &format!("{issuer},result=\"success\"")
        )
        .await
            > successes,
        "successful fetches are counted"
    );
    assert_allowed(
        &get_orders(&h, &RSA1.token("later", "orders:read")).await,
        "later",
    );

    // Down again: refreshes fail, the last good keys stay, and so does readiness.
    idp.set_up(false);
    let seen = idp.jwks_fetches();
    idp.wait_for_jwks_fetches_over(seen + 1).await;
    assert!(h.auth.is_ready());
    assert_allowed(
        &get_orders(&h, &RSA1.token("during", "orders:read")).await,
        "during",
    );
    h.stop().await;
}

#[tokio::test]
async fn a_flood_of_unknown_kids_refetches_at_most_once() {
    let idp = Idp::start(&[RSA1]).await;
    let h = gateway(&format!("jwks_uri: {}", idp.jwks_uri()), "").await;
    ready(&h).await;
    assert_eq!(idp.jwks_fetches(), 1);

    let mut tasks = Vec::new();
    for i in 0..40 {
        let token = RSA1.token_with_kid(&format!("made-up-{i}"), "flood", "orders:read");
        let addr = h.addr;
        tasks.push(tokio::spawn(async move { status_of(addr, &token).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 401);
    }
    for i in 0..20 {
        let token = RSA1.token_with_kid(&format!("later-{i}"), "flood", "orders:read");
        assert_invalid_token(&get_orders(&h, &token).await);
    }
    assert_eq!(idp.jwks_fetches(), 2, "one refetch for the whole flood");
    // Known kids are unaffected throughout.
    assert_allowed(
        &get_orders(&h, &RSA1.token("fine", "orders:read")).await,
        "fine",
    );
    h.stop().await;
}

#[tokio::test]
async fn cache_control_max_age_sets_the_refresh_within_bounds() {
    let idp = Idp::start(&[RSA1]).await;
    // A day of max-age, clamped to a one-second maximum: refreshes keep coming.
    idp.set_cache_control(Some("public, max-age=86400"));
    let h = gateway(
        &format!("jwks_uri: {}", idp.jwks_uri()),
        "refresh: { min: 1s, max: 1s }",
    )
    .await;
    idp.wait_for_jwks_fetches_over(2).await;
    h.stop().await;

    // Without a max-age the minimum applies; with a long one, no refetch follows soon.
    let idp = Idp::start(&[RSA1]).await;
    idp.set_cache_control(Some("max-age=3600"));
    let h = gateway(
        &format!("jwks_uri: {}", idp.jwks_uri()),
        "refresh: { min: 1s, max: 1h }",
    )
    .await;
    ready(&h).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        idp.jwks_fetches(),
        1,
        "max-age=3600 within [1s, 1h] holds off refreshes"
    );
    h.stop().await;
}

#[tokio::test]
async fn keys_the_issuer_may_not_use_are_ignored() {
    let idp = Idp::start(&[]).await;
    let mut enc = RSA2.jwk();
    enc["use"] = json!("enc");
    let secret = json!({ "kty": "oct", "kid": "hs", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0" });
    idp.set_raw_keys(vec![RSA1.jwk(), enc, secret]);
    let h = gateway(&format!("jwks_uri: {}", idp.jwks_uri()), "").await;
    ready(&h).await;
    assert_allowed(
        &get_orders(&h, &RSA1.token("ok", "orders:read")).await,
        "ok",
    );
    assert_invalid_token(&get_orders(&h, &RSA2.token("enc-key", "orders:read")).await);
    h.stop().await;
}
