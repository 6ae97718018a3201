//! The gateway over real sockets on 127.0.0.1: what the client gets (SPEC §3 decision
//! order, §4 on the wire) and what the upstream receives, seen by a real echo server.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use http_body_util::Empty;
use scopegate::tooling::echo::pattern_sha256;

const CUSTOMER_SCOPES: &[&str] = &["orders:read", "orders:write"];

fn customer(h: &Harness) -> String {
    h.token(&["customer"], CUSTOMER_SCOPES, "u1", &[])
}

fn auth(token: &str) -> String {
    format!("Bearer {token}")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Asserts that nothing at all reached the upstream yet (fresh harness per test).
fn assert_upstream_untouched(h: &Harness) {
    assert_eq!(h.upstream_bytes(), 0, "the upstream received bytes");
    assert_eq!(
        h.upstream_connections(),
        0,
        "the gateway connected upstream"
    );
}

fn shadow_policy() -> String {
    let p = ORDERS_POLICY.replacen("\nmode: enforce", "\nmode: shadow", 1);
    assert_ne!(p, ORDERS_POLICY, "policy-wide mode not found");
    p
}

fn unmatched_allow_policy() -> String {
    let p = ORDERS_POLICY.replacen("\nunmatched: deny", "\nunmatched: allow", 1);
    assert_ne!(p, ORDERS_POLICY, "`unmatched:` not found");
    p
}

// ---- step 1: bad_request ---------------------------------------------------------------------

#[tokio::test]
async fn bad_request_for_dot_segments_climbing_above_root() {
    let h = Harness::orders().await;
    let t = customer(&h);
    for target in [
        "/orders/%2e%2e/%2e%2e/x",
        "/orders/../../x",
        "/..",
        "/orders/%2E%2E/%2e%2E/%2e.",
    ] {
        // Raw, so no client library resolves the dots first.
        let resp = h
            .raw_get(target, &[&format!("Authorization: Bearer {t}")])
            .await;
        let v = assert_denial(&resp, 400, "BadRequestError", "bad_request");
        assert!(v.get("requiredScopes").is_none(), "{v}");
    }
    // Through a client library too (it keeps the encoded dots as they are).
    let resp = h
        .request(
            "GET",
            "/orders/%2e%2e/%2e%2e/x",
            &[("authorization", &auth(&t))],
        )
        .await;
    assert_denial(&resp, 400, "BadRequestError", "bad_request");
    assert_upstream_untouched(&h);
}

#[tokio::test]
async fn bad_request_for_encoded_slash() {
    let h = Harness::orders().await;
    let t = customer(&h);
    for target in ["/orders/7%2Fx", "/orders/7%2fx", "/orders%2F7"] {
        let resp = h
            .request("GET", target, &[("authorization", &auth(&t))])
            .await;
        assert_denial(&resp, 400, "BadRequestError", "bad_request");
    }
    assert_upstream_untouched(&h);
}

#[tokio::test]
async fn bad_request_for_semicolon_path_parameters() {
    let h = Harness::orders().await;
    let t = customer(&h);
    for target in ["/orders/7;x=1", "/orders;jsessionid=1/7", "/orders/7%3B"] {
        let resp = h
            .request("GET", target, &[("authorization", &auth(&t))])
            .await;
        assert_denial(&resp, 400, "BadRequestError", "bad_request");
    }
    assert_upstream_untouched(&h);
}

#[tokio::test]
async fn semicolons_pass_when_allowed_by_config() {
    let h = Harness::start(ORDERS_POLICY, "paths:\n  allow_semicolons: true\n").await;
    let t = customer(&h);
    let resp = h
        .raw_get(
            "/orders/7;v=1?q=1",
            &[&format!("Authorization: Bearer {t}")],
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.brief());
    let echo = resp.echo();
    assert_eq!(echo.path, "/orders/7;v=1");
    assert_eq!(echo.query.as_deref(), Some("q=1"));
}

#[tokio::test]
async fn bad_request_for_raw_and_encoded_backslash() {
    let h = Harness::orders().await;
    let t = customer(&h);
    let authz = format!("Authorization: Bearer {t}");
    // A raw backslash: no client library would send it.
    for target in ["/orders\\7", "/orders/7\\..\\..\\admin", "\\orders/7"] {
        match h
            .raw(raw_request("GET", target, &[&authz]).as_bytes())
            .await
        {
            Some(resp) if target.starts_with('/') => {
                assert_denial(&resp, 400, "BadRequestError", "bad_request");
            }
            // Not even origin-form: the HTTP parser may refuse it before the gateway.
            Some(resp) => assert_eq!(resp.status, 400, "{target}"),
            None => panic!("{target}: connection closed without an answer"),
        }
    }
    let resp = h
        .request("GET", "/orders/7%5C..", &[("authorization", &auth(&t))])
        .await;
    assert_denial(&resp, 400, "BadRequestError", "bad_request");
    assert_upstream_untouched(&h);
}

#[tokio::test]
async fn bad_request_for_nul_encoded_hash_and_invalid_utf8() {
    let h = Harness::orders().await;
    let t = customer(&h);
    for target in [
        "/orders/7%00",
        "/orders/7%23x",
        "/orders/%C3%28",
        "/orders/%zz",
    ] {
        let resp = h
            .request("GET", target, &[("authorization", &auth(&t))])
            .await;
        assert_denial(&resp, 400, "BadRequestError", "bad_request");
    }
    assert_upstream_untouched(&h);
}

/// The HTTP parser (the `http` crate) cuts a raw `#` and what follows off the target
/// before the gateway sees it, so it cannot be refused as SPEC §3 asks; what matters is
/// that the cut path is both what is decided on and what is forwarded (no bypass).
#[tokio::test]
async fn raw_hash_in_target_is_cut_and_the_decided_path_is_forwarded() {
    let h = Harness::orders().await;
    let t = customer(&h);
    let resp = h
        .raw_get(
            "/orders/7#/../../admin/x",
            &[&format!("Authorization: Bearer {t}")],
        )
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.echo().path, "/orders/7");
}

// ---- step 2: no_matching_route, method_not_allowed -------------------------------------------

#[tokio::test]
async fn no_matching_route_is_403_with_or_without_credentials() {
    let h = Harness::orders().await;
    let t = h.token(&["admin"], &["*"], "root", &[]);
    for headers in [vec![], vec![("authorization", auth(&t))]] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for target in ["/nope", "/orders/", "/Orders/7", "/orders/7/..", "/"] {
            let resp = h.request("GET", target, &headers).await;
            let v = assert_denial(&resp, 403, "ForbiddenError", "no_matching_route");
            assert!(resp.header("www-authenticate").is_none(), "{target}: {v}");
        }
    }
    assert_upstream_untouched(&h);
}

#[tokio::test]
async fn method_not_allowed_lists_the_allowed_methods() {
    let h = Harness::orders().await;
    let t = customer(&h);
    // With credentials.
    let resp = h
        .request("POST", "/orders", &[("authorization", &auth(&t))])
        .await;
    assert_denial(&resp, 405, "MethodNotAllowedError", "method_not_allowed");
    assert_eq!(resp.header("allow"), Some("GET, HEAD"));
    // Decided before authentication: no credentials, still 405 (not 401).
    let resp = h.request("DELETE", "/orders", &[]).await;
    assert_denial(&resp, 405, "MethodNotAllowedError", "method_not_allowed");
    assert_eq!(resp.header("allow"), Some("GET, HEAD"));
    let resp = h.request("PUT", "/health", &[]).await;
    assert_denial(&resp, 405, "MethodNotAllowedError", "method_not_allowed");
    assert_eq!(resp.header("allow"), Some("GET, HEAD"));
    let resp = h
        .request("GET", "/orders/7/refund", &[("authorization", &auth(&t))])
        .await;
    assert_denial(&resp, 405, "MethodNotAllowedError", "method_not_allowed");
    assert_eq!(resp.header("allow"), Some("POST"));
    // A route without `methods` allows every method of the `actions` map, and no other.
    let resp = h
        .request("OPTIONS", "/orders/7", &[("authorization", &auth(&t))])
        .await;
    assert_denial(&resp, 405, "MethodNotAllowedError", "method_not_allowed");
    assert_eq!(
        resp.header("allow"),
        Some("GET, HEAD, POST, PUT, PATCH, DELETE")
    );
    assert_upstream_untouched(&h);

    // HEAD is allowed wherever GET is.
    let resp = h
        .request("HEAD", "/orders", &[("authorization", &auth(&t))])
        .await;
    assert_eq!(resp.status, 200);
    assert!(resp.is_from_upstream());
}

// ---- step 4: credentials -------------------------------------------------------------------

#[tokio::test]
async fn missing_credentials_challenges_with_bearer_realm() {
    let h = Harness::orders().await;
    for (method, target) in [
        ("GET", "/orders"),
        ("GET", "/orders/7"),
        ("DELETE", "/orders/7"),
        ("GET", "/admin/x"),
    ] {
        let resp = h.request(method, target, &[]).await;
        assert_denial(&resp, 401, "UnauthorizedError", "missing_credentials");
        assert_eq!(
            resp.header("www-authenticate"),
            Some(r#"Bearer realm="scopegate""#)
        );
    }
    assert_upstream_untouched(&h);
}

#[tokio::test]
async fn invalid_token_for_garbage_token() {
    let h = Harness::orders().await;
    for value in [
        "Bearer abc.def.ghi",
        "Bearer not-a-jwt",
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ] {
        let resp = h
            .request("GET", "/orders", &[("authorization", value)])
            .await;
        assert_denial(&resp, 401, "UnauthorizedError", "invalid_token");
        assert_eq!(
            resp.header("www-authenticate"),
            Some(r#"Bearer realm="scopegate", error="invalid_token""#),
            "{value}"
        );
    }
    assert_upstream_untouched(&h);
}

#[tokio::test]
async fn invalid_token_for_wrong_secret() {
    let h = Harness::orders().await;
    let forged = token_with_secret(
        b"some-other-secret-0123456789abcdef0123456789abcdef",
        &["admin"],
        &["*"],
        "mallory",
        &[],
    );
    let resp = h
        .request("GET", "/orders", &[("authorization", &auth(&forged))])
        .await;
    assert_denial(&resp, 401, "UnauthorizedError", "invalid_token");
    assert_eq!(
        resp.header("www-authenticate"),
        Some(r#"Bearer realm="scopegate", error="invalid_token""#)
    );
    // A token of another issuer, signed with the right secret, is not accepted either.
    let other = h.token(&["admin"], &["*"], "mallory", &[("iss", "someone-else")]);
    let resp = h
        .request("GET", "/orders", &[("authorization", &auth(&other))])
        .await;
    assert_denial(&resp, 401, "UnauthorizedError", "invalid_token");
    assert_upstream_untouched(&h);
}

#[tokio::test]
async fn invalid_token_for_two_authorization_headers() {
    let h = Harness::orders().await;
    let t = customer(&h);
    // Both copies are the same valid token: ambiguity alone is refused.
    let req = raw_request(
        "GET",
        "/orders",
        &[
            &format!("Authorization: Bearer {t}"),
            &format!("Authorization: Bearer {t}"),
        ],
    );
    let resp = h.raw_ok(req.as_bytes()).await;
    assert_denial(&resp, 401, "UnauthorizedError", "invalid_token");
    assert_eq!(
        resp.header("www-authenticate"),
        Some(r#"Bearer realm="scopegate", error="invalid_token""#)
    );
    assert_upstream_untouched(&h);
}

#[tokio::test]
async fn token_in_query_string_is_never_read() {
    let h = Harness::orders().await;
    let t = customer(&h);
    for target in [
        format!("/orders?access_token={t}"),
        format!("/orders/7?token={t}&authorization=Bearer%20{t}"),
    ] {
        let resp = h.request("GET", &target, &[]).await;
        assert_denial(&resp, 401, "UnauthorizedError", "missing_credentials");
        assert_eq!(
            resp.header("www-authenticate"),
            Some(r#"Bearer realm="scopegate""#)
        );
    }
    assert_upstream_untouched(&h);
}

#[tokio::test]
async fn expired_token() {
    let h = Harness::orders().await;
    let past = (now() - 3600).to_string();
    let t = h.token(&["customer"], CUSTOMER_SCOPES, "u1", &[("exp", &past)]);
    let resp = h
        .request("GET", "/orders", &[("authorization", &auth(&t))])
        .await;
    assert_denial(&resp, 401, "UnauthorizedError", "expired_token");
    assert_eq!(
        resp.header("www-authenticate"),
        Some(r#"Bearer realm="scopegate", error="invalid_token""#)
    );
    // Not yet valid (`nbf` an hour ahead) is reported the same way.
    let future = (now() + 3600).to_string();
    let t = h.token(&["customer"], CUSTOMER_SCOPES, "u1", &[("nbf", &future)]);
    let resp = h
        .request("GET", "/orders", &[("authorization", &auth(&t))])
        .await;
    assert_denial(&resp, 401, "UnauthorizedError", "expired_token");
    assert_upstream_untouched(&h);
}

// ---- steps 7-9: role gate, scopes, constraints ------------------------------------------------

#[tokio::test]
async fn role_not_permitted_even_with_the_scope() {
    let h = Harness::orders().await;
    let t = h.token(&["customer"], &["admin:read"], "u1", &[]);
    let resp = h
        .request("GET", "/admin/settings", &[("authorization", &auth(&t))])
        .await;
    let v = assert_denial(&resp, 403, "ForbiddenError", "role_not_permitted");
    assert!(resp.header("www-authenticate").is_none(), "{v}");
    let t = h.token(&["support"], &["orders:read"], "s1", &[]);
    let resp = h
        .request(
            "GET",
            "/partner/projects/p1/orders",
            &[("authorization", &auth(&t))],
        )
        .await;
    assert_denial(&resp, 403, "ForbiddenError", "role_not_permitted");
    assert_upstream_untouched(&h);
}

#[tokio::test]
async fn insufficient_scope_names_required_and_missing_scopes() {
    let h = Harness::orders().await;
    // The token carries orders:delete but the customer role lacks it: scopes only limit.
    let t = h.token(
        &["customer"],
        &["orders:read", "orders:write", "orders:delete"],
        "u1",
        &[],
    );
    let resp = h
        .request("DELETE", "/orders/7", &[("authorization", &auth(&t))])
        .await;
    let v = assert_denial(&resp, 403, "ForbiddenError", "insufficient_scope");
    assert_eq!(v["requiredScopes"], serde_json::json!(["orders:delete"]));
    assert_eq!(v["missingScopes"], serde_json::json!(["orders:delete"]));
    assert_eq!(v["message"], "Missing required scope: orders:delete");
    assert_eq!(
        resp.header("www-authenticate"),
        Some(r#"Bearer realm="scopegate", error="insufficient_scope", scope="orders:delete""#)
    );

    // The role has it but the token does not.
    let t = h.token(&["customer"], &["orders:read"], "u1", &[]);
    let resp = h
        .request("PUT", "/orders/7", &[("authorization", &auth(&t))])
        .await;
    let v = assert_denial(&resp, 403, "ForbiddenError", "insufficient_scope");
    assert_eq!(v["requiredScopes"], serde_json::json!(["orders:write"]));
    assert_eq!(v["missingScopes"], serde_json::json!(["orders:write"]));

    // any_scopes: every group is required-listed, the closest group's gap is missing.
    let t = customer(&h);
    let resp = h
        .request("POST", "/orders/7/refund", &[("authorization", &auth(&t))])
        .await;
    let v = assert_denial(&resp, 403, "ForbiddenError", "insufficient_scope");
    assert_eq!(
        v["requiredScopes"],
        serde_json::json!(["orders:write", "payments:write", "admin:write"])
    );
    assert_eq!(v["missingScopes"], serde_json::json!(["payments:write"]));
    let challenge = resp.header("www-authenticate").unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains("payments:write"), "{challenge}");
    assert_upstream_untouched(&h);
}

#[tokio::test]
async fn constraint_failed_outside_the_partners_projects() {
    let h = Harness::orders().await;
    let t = h.token(&["partner"], &["orders:read"], "p-user", &[]);
    let resp = h
        .request(
            "GET",
            "/partner/projects/p3/orders",
            &[("authorization", &auth(&t))],
        )
        .await;
    let v = assert_denial(&resp, 403, "ForbiddenError", "constraint_failed");
    assert!(resp.header("www-authenticate").is_none(), "{v}");
    assert_upstream_untouched(&h);

    // Inside them, allowed; the upstream sees the caller.
    let resp = h
        .request(
            "GET",
            "/partner/projects/p1/orders",
            &[("authorization", &auth(&t))],
        )
        .await;
    assert_eq!(resp.status, 200);
    let echo = resp.echo();
    assert_eq!(echo.path, "/partner/projects/p1/orders");
    assert_eq!(echo.header("x-auth-subject"), Some("p-user"));
}

// ---- upstream failures ---------------------------------------------------------------------

#[tokio::test]
async fn upstream_unavailable_is_502() {
    let h = Harness::start_with(Setup {
        policy: ORDERS_POLICY,
        upstream: UpstreamKind::Closed,
        ..Setup::default()
    })
    .await;
    let t = customer(&h);
    let resp = h
        .request(
            "GET",
            "/orders/7",
            &[("authorization", &auth(&t)), ("x-request-id", "r-502")],
        )
        .await;
    let v = assert_denial(&resp, 502, "BadGatewayError", "upstream_unavailable");
    assert_eq!(v["requestId"], "r-502");
    // gRPC callers get grpc-status 14 (UNAVAILABLE) instead.
    let resp = h
        .request(
            "POST",
            "/orders/7",
            &[
                ("authorization", &auth(&t)),
                ("content-type", "application/grpc"),
            ],
        )
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("grpc-status"), Some("14"));
}

/// `upstream.max_idle_connections`: a burst of concurrent requests opens a connection
/// each, and once they are answered only the cap stays open for reuse.
#[tokio::test]
async fn idle_upstream_connections_beyond_the_cap_are_closed() {
    let h = Harness::start_with(Setup {
        policy: ORDERS_POLICY,
        upstream_settings: "max_idle_connections: 2",
        ..Setup::default()
    })
    .await;
    let t = customer(&h);
    let auth = auth(&t);
    let headers = [("authorization", auth.as_str())];
    let burst = (0..8).map(|_| h.request("GET", "/orders/7?delay_ms=300", &headers));
    for resp in futures_util::future::join_all(burst).await {
        assert_eq!(resp.status, 200);
    }
    assert_eq!(h.upstream_connections(), 8, "the burst was not concurrent");
    assert_eq!(h.await_upstream_open(2).await, 2);
}

/// Answered exchanges hand their upstream connection back: one after another, requests
/// with bodies of every shape (JSON, a 1 MB download, an error status, none for `HEAD`)
/// all travel on the first connection.
#[tokio::test]
async fn sequential_requests_share_one_upstream_connection() {
    let h = Harness::orders().await;
    let t = customer(&h);
    let auth = auth(&t);
    let headers = [("authorization", auth.as_str())];
    for (method, target) in [
        ("GET", "/orders/7"),
        ("GET", "/orders/7?download=1000000"),
        ("GET", "/orders/7?status=404"),
        ("HEAD", "/orders/7"),
        ("GET", "/orders/7"),
    ] {
        let resp = h.request(method, target, &headers).await;
        assert!(
            resp.is_from_upstream(),
            "{method} {target}: {}",
            resp.brief()
        );
    }
    assert_eq!(h.upstream_connections(), 1);
}

/// An idle upstream connection the upstream closed (its keep-alive timeout) is never
/// used again: the next request opens a new one and is answered, not refused with 502.
#[tokio::test]
async fn an_upstream_connection_closed_while_idle_is_replaced() {
    let h = Harness::orders().await;
    let t = customer(&h);
    let auth = auth(&t);
    let headers = [("authorization", auth.as_str())];
    assert_eq!(h.request("GET", "/orders/7", &headers).await.status, 200);
    h.cut_upstream_connections();
    assert_eq!(h.await_upstream_open(0).await, 0, "the relay did not cut");
    for _ in 0..3 {
        let resp = h.request("GET", "/orders/7", &headers).await;
        assert_eq!(resp.status, 200, "{}", resp.brief());
    }
    assert_eq!(h.upstream_connections(), 2);
}

#[tokio::test]
async fn upstream_timeout_is_504() {
    let h = Harness::start_with(Setup {
        policy: ORDERS_POLICY,
        upstream_settings: "timeout: 200ms",
        ..Setup::default()
    })
    .await;
    let t = customer(&h);
    let started = Instant::now();
    let resp = h
        .request(
            "GET",
            "/orders/7?delay_ms=2000",
            &[("authorization", &auth(&t))],
        )
        .await;
    let took = started.elapsed();
    assert_denial(&resp, 504, "GatewayTimeoutError", "upstream_timeout");
    assert!(
        took >= Duration::from_millis(190),
        "answered too early: {took:?}"
    );
    assert!(
        took < Duration::from_millis(1500),
        "answered too late: {took:?}"
    );
    // The request did reach the upstream: it is the answer that was too slow.
    assert!(h.upstream_bytes() > 0);
}

// ---- allowed requests ----------------------------------------------------------------------

#[tokio::test]
async fn allowed_request_reaches_upstream_with_a_generated_request_id() {
    let h = Harness::orders().await;
    let t = customer(&h);
    let resp = h
        .request("GET", "/orders/7?x=1", &[("authorization", &auth(&t))])
        .await;
    assert_eq!(resp.status, 200);
    let id = resp.request_id().to_string();
    assert!(
        id.len() >= 16 && id.bytes().all(|b| b.is_ascii_graphic()),
        "{id}"
    );
    let echo = resp.echo();
    assert_eq!(echo.method, "GET");
    assert_eq!(echo.path, "/orders/7");
    assert_eq!(echo.query.as_deref(), Some("x=1"));
    assert_eq!(echo.version, "HTTP/1.1");
    assert_eq!(echo.header("x-request-id"), Some(id.as_str()));
    assert_eq!(
        echo.header("host"),
        Some(h.upstream_addr.to_string().as_str())
    );

    // Each request gets its own id.
    let again = h
        .request("GET", "/orders/7", &[("authorization", &auth(&t))])
        .await;
    assert_ne!(again.request_id(), id);
}

#[tokio::test]
async fn client_request_id_is_kept_both_ways() {
    let h = Harness::orders().await;
    let t = customer(&h);
    let resp = h
        .request(
            "GET",
            "/orders/7",
            &[
                ("authorization", &auth(&t)),
                ("x-request-id", "client-req-42"),
            ],
        )
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.request_id(), "client-req-42");
    assert_eq!(resp.echo().header("x-request-id"), Some("client-req-42"));

    // Denials keep it too.
    let resp = h
        .request("GET", "/orders", &[("x-request-id", "client-req-43")])
        .await;
    let v = assert_denial(&resp, 401, "UnauthorizedError", "missing_credentials");
    assert_eq!(v["requestId"], "client-req-43");
}

#[tokio::test]
async fn bearer_scheme_matches_in_any_case() {
    let h = Harness::orders().await;
    let t = customer(&h);
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let value = format!("{scheme} {t}");
        let resp = h
            .request("GET", "/orders", &[("authorization", &value)])
            .await;
        assert_eq!(resp.status, 200, "{scheme}: {}", resp.brief());
        let echo = resp.echo();
        assert_eq!(echo.path, "/orders");
        assert_eq!(echo.header("x-auth-subject"), Some("u1"), "{scheme}");
    }
}

// ---- identity headers -------------------------------------------------------------------------

#[tokio::test]
async fn identity_headers_carry_subject_roles_and_sorted_effective_scopes() {
    let h = Harness::orders().await;
    // (token roles, token scopes, sub, expected X-Auth-Roles, expected X-Auth-Scopes)
    type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a str, &'a str, &'a str);
    let cases: [Case; 4] = [
        // Token scopes listed out of order come back sorted.
        (
            &["customer"],
            &["orders:write", "orders:read"],
            "u1",
            "customer",
            "orders:read orders:write",
        ),
        // No roles in the token: the default role; no scope claim: limited by role alone.
        (&[], &[], "u2", "customer", "orders:read orders:write"),
        // support holds orders:* minus orders:delete.
        (
            &["support", "partner"],
            &[],
            "s1",
            "support partner",
            "orders:read orders:write",
        ),
        // Only what the token asks for, within the role's "*".
        (
            &["admin"],
            &[
                "projects:write",
                "orders:read",
                "orders:delete",
                "admin:read",
            ],
            "root",
            "admin",
            "admin:read orders:delete orders:read projects:write",
        ),
    ];
    for (roles, scopes, sub, want_roles, want_scopes) in cases {
        let t = h.token(roles, scopes, sub, &[]);
        let resp = h
            .request("GET", "/orders/7", &[("authorization", &auth(&t))])
            .await;
        assert_eq!(resp.status, 200, "{roles:?} {scopes:?}");
        let echo = resp.echo();
        assert_eq!(echo.header("x-auth-subject"), Some(sub));
        assert_eq!(echo.header("x-auth-roles"), Some(want_roles), "{roles:?}");
        assert_eq!(
            echo.header("x-auth-scopes"),
            Some(want_scopes),
            "{roles:?} {scopes:?}"
        );
    }
}

const SPOOFS: [(&str, &str); 6] = [
    ("X-Auth-Subject", "admin"),
    ("x_auth_roles", "admin"),
    ("X-AUTH_SCOPES", "*"),
    ("x_auth_subject", "root"),
    ("X-Auth-Roles", "admin"),
    ("x-auth-scopes", "admin:write"),
];

fn spoof_headers<'a>(extra: &'a [(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    SPOOFS
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

#[tokio::test]
async fn client_identity_headers_never_reach_upstream_on_allowed_routes() {
    let h = Harness::orders().await;
    let t = h.token(&["customer"], &["orders:read"], "u1", &[]);
    let authz = auth(&t);
    let resp = h
        .request(
            "GET",
            "/orders/7",
            &spoof_headers(&[("authorization", &authz)]),
        )
        .await;
    assert_eq!(resp.status, 200);
    let echo = resp.echo();
    assert_eq!(echo.spellings_of("x-auth-subject"), ["x-auth-subject"]);
    assert_eq!(echo.spellings_of("x-auth-roles"), ["x-auth-roles"]);
    assert_eq!(echo.spellings_of("x-auth-scopes"), ["x-auth-scopes"]);
    assert_eq!(echo.header("x-auth-subject"), Some("u1"));
    assert_eq!(echo.header("x-auth-roles"), Some("customer"));
    assert_eq!(echo.header("x-auth-scopes"), Some("orders:read"));

    // Over raw TCP, with the spellings exactly as written.
    let mut lines: Vec<String> = SPOOFS.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    lines.push(format!("Authorization: Bearer {t}"));
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let echo = h.raw_get("/orders/7", &lines).await.echo();
    assert_eq!(echo.spellings_of("x-auth-subject"), ["x-auth-subject"]);
    assert_eq!(echo.spellings_of("x-auth-roles"), ["x-auth-roles"]);
    assert_eq!(echo.spellings_of("x-auth-scopes"), ["x-auth-scopes"]);
    assert_eq!(echo.header("x-auth-roles"), Some("customer"));
}

#[tokio::test]
async fn client_identity_headers_never_reach_upstream_on_public_routes() {
    let h = Harness::orders().await;
    // No credentials: forwarded, with no identity at all.
    let resp = h.request("GET", "/health", &spoof_headers(&[])).await;
    assert_eq!(resp.status, 200);
    let echo = resp.echo();
    assert_eq!(echo.path, "/health");
    for name in ["x-auth-subject", "x-auth-roles", "x-auth-scopes"] {
        assert!(
            echo.spellings_of(name).is_empty(),
            "{name}: {:?}",
            echo.headers
        );
    }
    // Invalid credentials on a public route: still forwarded, identity still stripped.
    let resp = h
        .request(
            "GET",
            "/health",
            &spoof_headers(&[("authorization", "Bearer junk.junk.junk")]),
        )
        .await;
    assert_eq!(resp.status, 200);
    let echo = resp.echo();
    for name in ["x-auth-subject", "x-auth-roles", "x-auth-scopes"] {
        assert!(
            echo.spellings_of(name).is_empty(),
            "{name}: {:?}",
            echo.headers
        );
    }
    // Valid credentials on a public route set the gateway's own identity headers.
    let t = h.token(&["support"], &[], "s1", &[]);
    let authz = auth(&t);
    let resp = h
        .request(
            "GET",
            "/health",
            &spoof_headers(&[("authorization", &authz)]),
        )
        .await;
    let echo = resp.echo();
    assert_eq!(echo.spellings_of("x-auth-subject"), ["x-auth-subject"]);
    assert_eq!(echo.header("x-auth-subject"), Some("s1"));
    assert_eq!(echo.header("x-auth-roles"), Some("support"));
}

#[tokio::test]
async fn client_identity_headers_never_reach_upstream_with_unmatched_allow() {
    let h = Harness::start(&unmatched_allow_policy(), "").await;
    let t = h.token(&["admin"], &["*"], "root", &[]);
    let authz = auth(&t);
    for headers in [
        spoof_headers(&[]),
        spoof_headers(&[("authorization", &authz)]),
    ] {
        let resp = h.request("GET", "/not/in/policy?k=v", &headers).await;
        assert_eq!(resp.status, 200);
        let echo = resp.echo();
        assert_eq!(echo.path, "/not/in/policy");
        // A plain pass-through: not even a valid token sets identity headers.
        for name in ["x-auth-subject", "x-auth-roles", "x-auth-scopes"] {
            assert!(
                echo.spellings_of(name).is_empty(),
                "{name}: {:?}",
                echo.headers
            );
        }
    }
    // Matched routes are still enforced.
    let resp = h.request("GET", "/orders", &[]).await;
    assert_denial(&resp, 401, "UnauthorizedError", "missing_credentials");
}

// ---- header hygiene --------------------------------------------------------------------------

#[tokio::test]
async fn method_override_headers_are_stripped() {
    let h = Harness::orders().await;
    let t = customer(&h);
    let resp = h
        .request(
            "GET",
            "/orders/7",
            &[
                ("authorization", &auth(&t)),
                ("X-HTTP-Method-Override", "DELETE"),
                ("X-Method-Override", "DELETE"),
                ("X-HTTP-Method", "DELETE"),
            ],
        )
        .await;
    assert_eq!(resp.status, 200);
    let echo = resp.echo();
    assert_eq!(echo.method, "GET");
    for name in [
        "x-http-method-override",
        "x-method-override",
        "x-http-method",
    ] {
        assert!(!echo.has(name), "{name} reached the upstream");
    }
}

#[tokio::test]
async fn hop_by_hop_and_connection_named_headers_are_stripped() {
    let h = Harness::orders().await;
    let t = customer(&h);
    let req = format!(
        "GET /orders/7 HTTP/1.1\r\n\
         Host: gateway.test\r\n\
         Authorization: Bearer {t}\r\n\
         Connection: close, X-Secret-Hop, x-other-hop\r\n\
         X-Secret-Hop: 1\r\n\
         X-Other-Hop: 2\r\n\
         Keep-Alive: timeout=5\r\n\
         Proxy-Connection: keep-alive\r\n\
         Proxy-Authorization: Basic Zm9vOmJhcg==\r\n\
         TE: trailers\r\n\
         Trailer: x-checksum\r\n\
         X-Kept: yes\r\n\
         \r\n"
    );
    let resp = h.raw_ok(req.as_bytes()).await;
    assert_eq!(resp.status, 200, "{}", resp.brief());
    let echo = resp.echo();
    for name in [
        "x-secret-hop",
        "x-other-hop",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
    ] {
        assert!(
            !echo.has(name),
            "{name} reached the upstream: {:?}",
            echo.headers
        );
    }
    if let Some(c) = echo.header("connection") {
        let c = c.to_ascii_lowercase();
        assert!(
            !c.contains("hop") && !c.contains("close"),
            "connection: {c}"
        );
    }
    assert_eq!(echo.header("x-kept"), Some("yes"));
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_are_replaced() {
    let h = Harness::orders().await;
    let t = customer(&h);
    let resp = h
        .request(
            "GET",
            "/orders/7",
            &[
                ("authorization", &auth(&t)),
                ("X-Forwarded-For", "6.6.6.6"),
                ("X-Forwarded-For", "7.7.7.7"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "evil.test"),
            ],
        )
        .await;
    assert_eq!(resp.status, 200);
    let echo = resp.echo();
    assert_eq!(echo.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(echo.header("x-forwarded-proto"), Some("http"));
    assert_eq!(
        echo.header("x-forwarded-host"),
        Some(h.addr.to_string().as_str())
    );
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_peer_is_appended_to() {
    let h = Harness::start(
        ORDERS_POLICY,
        "forwarded:\n  trusted_proxies: [127.0.0.0/8]\n",
    )
    .await;
    let t = customer(&h);
    let resp = h
        .request(
            "GET",
            "/orders/7",
            &[
                ("authorization", &auth(&t)),
                ("X-Forwarded-For", "203.0.113.7"),
                ("X-Forwarded-Proto", "https"),
            ],
        )
        .await;
    let echo = resp.echo();
    assert_eq!(
        echo.header("x-forwarded-for"),
        Some("203.0.113.7, 127.0.0.1")
    );
    assert_eq!(echo.header("x-forwarded-proto"), Some("https"));
}

// ---- step 1: what is forwarded ----------------------------------------------------------------

#[tokio::test]
async fn normalized_path_is_forwarded_with_the_query_unchanged() {
    let h = Harness::orders().await;
    let t = customer(&h);
    let authz = format!("Authorization: Bearer {t}");
    for target in [
        "/orders/./7",
        "//orders//7",
        "/orders/%37",
        "/x/../orders/7",
        "/orders/%2e/7",
        "/orders/8/../7",
        "/%6Frders/7",
    ] {
        let resp = h.raw_get(&format!("{target}?a=%2F&b=.."), &[&authz]).await;
        assert_eq!(resp.status, 200, "{target}: {}", resp.brief());
        let echo = resp.echo();
        assert_eq!(echo.path, "/orders/7", "{target}");
        assert_eq!(echo.query.as_deref(), Some("a=%2F&b=.."), "{target}");
    }
    // The query never takes part in matching: a `..` or `/admin` there changes nothing.
    let resp = h.raw_get("/orders/7?/../../admin/x", &[&authz]).await;
    let echo = resp.echo();
    assert_eq!(echo.path, "/orders/7");
    assert_eq!(echo.query.as_deref(), Some("/../../admin/x"));
    // Dot segments resolve as RFC 3986 §5.2.4: `/orders/7/..` is `/orders/` and
    // `/orders/7/.` is `/orders/7/`; neither is a route (`/x/` and `/x` differ).
    for target in ["/orders/7/..", "/orders/7/.", "/orders/7/"] {
        let resp = h.raw_get(target, &[&authz]).await;
        assert_denial(&resp, 403, "ForbiddenError", "no_matching_route");
    }
}

#[tokio::test]
async fn absolute_form_target_is_decided_on_its_path() {
    let h = Harness::orders().await;
    let t = customer(&h);
    let authz = format!("Authorization: Bearer {t}");
    let resp = h
        .raw_get("http://example.test/orders/7?q=1", &[&authz])
        .await;
    assert_eq!(resp.status, 200, "{}", resp.brief());
    let echo = resp.echo();
    assert_eq!(echo.path, "/orders/7");
    assert_eq!(echo.query.as_deref(), Some("q=1"));
    assert_eq!(
        echo.header("host"),
        Some(h.upstream_addr.to_string().as_str())
    );

    let before = h.upstream_bytes();
    let resp = h
        .raw_get("http://example.test/admin/settings", &[&authz])
        .await;
    assert_denial(&resp, 403, "ForbiddenError", "role_not_permitted");
    let resp = h
        .raw_get("http://example.test/orders/%2e%2e/%2e%2e/x", &[&authz])
        .await;
    assert_denial(&resp, 400, "BadRequestError", "bad_request");
    let resp = h.raw_get("http://orders/7", &[&authz]).await;
    assert_denial(&resp, 403, "ForbiddenError", "no_matching_route");
    assert_eq!(
        h.upstream_bytes(),
        before,
        "a denied request reached the upstream"
    );
}

// ---- streaming --------------------------------------------------------------------------------

const BIG: u64 = 20_000_000;

#[tokio::test]
async fn upload_of_20_mb_streams_through_intact() {
    let h = Harness::orders().await;
    let t = customer(&h);
    let authz = auth(&t);
    let expected = tokio::task::spawn_blocking(|| pattern_sha256(BIG));
    let resp = h
        .request_body(
            "PUT",
            "/orders/7",
            &[("authorization", &authz)],
            PatternUpload::new(BIG),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.brief());
    let echo = resp.echo();
    assert_eq!(echo.method, "PUT");
    assert_eq!(echo.body_bytes, BIG);
    assert_eq!(echo.body_sha256, expected.await.unwrap());
    assert!(h.upstream_bytes() >= BIG);
}

#[tokio::test]
async fn download_of_20_mb_streams_through_intact() {
    let h = Harness::orders().await;
    let t = customer(&h);
    let expected = tokio::task::spawn_blocking(|| pattern_sha256(BIG));
    let resp = h
        .request_streaming(
            "GET",
            &format!("/orders/7?download={BIG}"),
            &[("authorization", &auth(&t))],
            Empty::<Bytes>::new(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-echo"], "1");
    assert!(resp.headers().contains_key("x-request-id"));
    let advertised = resp.headers()["x-body-sha256"]
        .to_str()
        .unwrap()
        .to_string();
    let (len, sha) = hash_body(resp.into_body()).await;
    assert_eq!(len, BIG);
    assert_eq!(sha, advertised);
    assert_eq!(sha, expected.await.unwrap());
}

// ---- HTTP/2 ---------------------------------------------------------------------------------

#[tokio::test]
async fn http2_prior_knowledge_serves_allowed_and_denied_requests() {
    let h = Harness::orders().await;
    let t = customer(&h);
    let authz = auth(&t);
    let resp = h
        .h2_request(
            "POST",
            "/orders/7?via=h2",
            &[("authorization", &authz), ("x-request-id", "h2-1")],
            Bytes::from_static(b"over h2"),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.brief());
    assert_eq!(resp.version, http::Version::HTTP_2);
    assert_eq!(resp.request_id(), "h2-1");
    let echo = resp.echo();
    assert_eq!(
        echo.version, "HTTP/1.1",
        "the upstream is spoken to in HTTP/1.1"
    );
    assert_eq!(echo.method, "POST");
    assert_eq!(echo.path, "/orders/7");
    assert_eq!(echo.query.as_deref(), Some("via=h2"));
    assert_eq!(echo.body_bytes, 7);
    assert_eq!(echo.header("x-auth-subject"), Some("u1"));

    let before = h.upstream_bytes();
    let resp = h.h2_request("GET", "/orders", &[], Bytes::new()).await;
    assert_eq!(resp.version, http::Version::HTTP_2);
    assert_denial(&resp, 401, "UnauthorizedError", "missing_credentials");
    assert_eq!(
        resp.header("www-authenticate"),
        Some(r#"Bearer realm="scopegate""#)
    );
    let resp = h
        .h2_request(
            "DELETE",
            "/orders/7",
            &[("authorization", &authz)],
            Bytes::new(),
        )
        .await;
    assert_denial(&resp, 403, "ForbiddenError", "insufficient_scope");
    assert_eq!(
        h.upstream_bytes(),
        before,
        "a denied request reached the upstream"
    );
}

// ---- API keys -------------------------------------------------------------------------------

#[tokio::test]
async fn api_keys_authenticate_and_unknown_keys_are_invalid() {
    let h = Harness::start_with(Setup {
        policy: ORDERS_POLICY,
        api_keys: true,
        ..Setup::default()
    })
    .await;
    let resp = h
        .request("GET", "/orders", &[("X-API-Key", "test-api-key-1")])
        .await;
    assert_eq!(resp.status, 200, "{}", resp.brief());
    let echo = resp.echo();
    assert_eq!(echo.path, "/orders");
    assert_eq!(echo.header("x-auth-subject"), Some("ci-bot"));
    assert_eq!(echo.header("x-auth-roles"), Some("support"));
    assert_eq!(echo.header("x-auth-scopes"), Some("orders:read"));

    // The key's scopes limit it: orders:write is not among them.
    let resp = h
        .request("PUT", "/orders/7", &[("X-API-Key", "test-api-key-1")])
        .await;
    assert_denial(&resp, 403, "ForbiddenError", "insufficient_scope");

    // A key without `scopes` (its sha256 written in upper case) is limited by its role.
    let resp = h
        .request("PUT", "/orders/7", &[("x-api-key", "test-api-key-2")])
        .await;
    assert_eq!(resp.status, 200, "{}", resp.brief());
    let echo = resp.echo();
    assert_eq!(echo.header("x-auth-subject"), Some("reporter"));
    assert_eq!(
        echo.header("x-auth-scopes"),
        Some("orders:read orders:write")
    );

    let before = h.upstream_bytes();
    let resp = h
        .request("GET", "/orders", &[("X-API-Key", "test-api-key-3")])
        .await;
    assert_denial(&resp, 401, "UnauthorizedError", "invalid_token");
    assert_eq!(
        resp.header("www-authenticate"),
        Some(r#"Bearer realm="scopegate", error="invalid_token""#)
    );
    // A key and a bearer token together are ambiguous.
    let t = customer(&h);
    let resp = h
        .request(
            "GET",
            "/orders",
            &[
                ("X-API-Key", "test-api-key-1"),
                ("authorization", &auth(&t)),
            ],
        )
        .await;
    assert_denial(&resp, 401, "UnauthorizedError", "invalid_token");
    assert_eq!(
        h.upstream_bytes(),
        before,
        "a denied request reached the upstream"
    );
}

// ---- shadow mode ----------------------------------------------------------------------------

#[tokio::test]
async fn shadow_mode_forwards_would_be_denials_but_refuses_bad_credentials() {
    let h = Harness::start(&shadow_policy(), "").await;
    let t = customer(&h);
    let authz = auth(&t);

    // No route.
    let resp = h.request("GET", "/nope", &spoof_headers(&[])).await;
    assert_eq!(resp.status, 200);
    let echo = resp.echo();
    assert_eq!(echo.path, "/nope");
    assert!(echo.spellings_of("x-auth-subject").is_empty());
    // Insufficient scope: forwarded with the caller's real identity.
    let resp = h
        .request("DELETE", "/orders/7", &[("authorization", &authz)])
        .await;
    assert_eq!(resp.status, 200);
    let echo = resp.echo();
    assert_eq!(echo.method, "DELETE");
    assert_eq!(echo.header("x-auth-subject"), Some("u1"));
    assert_eq!(
        echo.header("x-auth-scopes"),
        Some("orders:read orders:write")
    );
    // Missing credentials: forwarded without identity.
    let resp = h.request("GET", "/orders", &spoof_headers(&[])).await;
    assert_eq!(resp.status, 200);
    let echo = resp.echo();
    for name in ["x-auth-subject", "x-auth-roles", "x-auth-scopes"] {
        assert!(
            echo.spellings_of(name).is_empty(),
            "{name}: {:?}",
            echo.headers
        );
    }
    // Method not allowed, role gate: forwarded too.
    let resp = h
        .request("POST", "/orders", &[("authorization", &authz)])
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.echo().method, "POST");
    let resp = h
        .request("GET", "/admin/settings", &[("authorization", &authz)])
        .await;
    assert_eq!(resp.echo().path, "/admin/settings");

    // Present but invalid or expired credentials, and malformed paths, are still refused.
    let before = h.upstream_bytes();
    let resp = h
        .request(
            "GET",
            "/orders",
            &[("authorization", "Bearer junk.junk.junk")],
        )
        .await;
    assert_denial(&resp, 401, "UnauthorizedError", "invalid_token");
    let resp = h
        .request(
            "GET",
            "/nope",
            &[("authorization", "Bearer junk.junk.junk")],
        )
        .await;
    assert_denial(&resp, 401, "UnauthorizedError", "invalid_token");
    let past = (now() - 3600).to_string();
    let expired = h.token(&["customer"], CUSTOMER_SCOPES, "u1", &[("exp", &past)]);
    let resp = h
        .request("GET", "/orders", &[("authorization", &auth(&expired))])
        .await;
    assert_denial(&resp, 401, "UnauthorizedError", "expired_token");
    let resp = h
        .request("GET", "/orders/7%2F..", &[("authorization", &authz)])
        .await;
    assert_denial(&resp, 400, "BadRequestError", "bad_request");
    assert_eq!(
        h.upstream_bytes(),
        before,
        "a refused request reached the upstream"
    );
}

#[tokio::test]
async fn route_level_shadow_mode_forwards_only_that_route() {
    let h = Harness::orders().await;
    let t = customer(&h);
    // /reports/{*rest} is `mode: shadow`: a customer lacks reports:read, still forwarded.
    let resp = h
        .request("GET", "/reports/q1", &[("authorization", &auth(&t))])
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.echo().header("x-auth-subject"), Some("u1"));
    let resp = h.request("GET", "/reports/q1", &[]).await;
    assert_eq!(resp.status, 200);
    assert!(!resp.echo().has("x-auth-subject"));
    // Other routes are enforced, and invalid tokens are refused even on the shadow route.
    let before = h.upstream_bytes();
    let resp = h
        .request("DELETE", "/orders/7", &[("authorization", &auth(&t))])
        .await;
    assert_denial(&resp, 403, "ForbiddenError", "insufficient_scope");
    let resp = h
        .request("GET", "/reports/q1", &[("authorization", "Bearer x.y.z")])
        .await;
    assert_denial(&resp, 401, "UnauthorizedError", "invalid_token");
    assert_eq!(h.upstream_bytes(), before);
}

// ---- limits ---------------------------------------------------------------------------------

fn padded_get(token: &str, pad: usize) -> String {
    raw_request(
        "GET",
        "/orders/7",
        &[
            &format!("Authorization: Bearer {token}"),
            &format!("X-Pad: {}", "a".repeat(pad)),
        ],
    )
}

#[tokio::test]
async fn oversized_request_head_gets_431_or_a_closed_connection() {
    let h = Harness::start(ORDERS_POLICY, "limits:\n  max_header_bytes: 8KiB\n").await;
    let t = customer(&h);
    match h.raw(padded_get(&t, 20 * 1024).as_bytes()).await {
        None => {}
        Some(resp) => assert_eq!(resp.status, 431, "{}", resp.brief()),
    }
    assert_upstream_untouched(&h);
    // A head well within the limit passes.
    let resp = h.raw_ok(padded_get(&t, 4 * 1024).as_bytes()).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.echo().header("x-pad").map(str::len), Some(4 * 1024));
}

#[tokio::test]
async fn token_over_max_token_bytes_is_invalid_token() {
    let h = Harness::start(ORDERS_POLICY, "limits:\n  max_token_bytes: 1KiB\n").await;
    let pad = "p".repeat(1500);
    // Correctly signed, just too long.
    let big = h.token(&["customer"], CUSTOMER_SCOPES, "u1", &[("pad", &pad)]);
    assert!(big.len() > 1024);
    let resp = h
        .request("GET", "/orders", &[("authorization", &auth(&big))])
        .await;
    assert_denial(&resp, 401, "UnauthorizedError", "invalid_token");
    assert_upstream_untouched(&h);
    // The same caller with a normal-sized token passes.
    let resp = h
        .request("GET", "/orders", &[("authorization", &auth(&customer(&h)))])
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.echo().header("x-auth-subject"), Some("u1"));
}

// ---- gRPC-style denials ---------------------------------------------------------------------

#[tokio::test]
async fn grpc_denials_are_http_200_with_grpc_status() {
    let h = Harness::orders().await;
    let grpc = [("content-type", "application/grpc"), ("te", "trailers")];
    // Over HTTP/2, as gRPC clients speak.
    let resp = h
        .h2_request(
            "POST",
            "/orders/7",
            &grpc,
            Bytes::from_static(b"\0\0\0\0\0"),
        )
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("grpc-status"), Some("16"));
    assert!(resp.header("grpc-message").is_some_and(|m| !m.is_empty()));
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("application/grpc")
    );
    assert!(!resp.request_id().is_empty());
    assert!(!resp.is_from_upstream());
    // Over HTTP/1.1 too, and for the other families.
    let resp = h
        .request(
            "POST",
            "/orders/7",
            &[("content-type", "application/grpc+proto")],
        )
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("grpc-status"), Some("16"));
    let t = customer(&h);
    let authz = auth(&t);
    for (method, target, code) in [
        ("DELETE", "/orders/7", "7"),
        ("POST", "/orders", "12"),
        ("GET", "/orders/%2F", "3"),
        ("GET", "/nope", "7"),
    ] {
        let resp = h
            .h2_request(
                method,
                target,
                &[grpc[0], ("authorization", &authz)],
                Bytes::new(),
            )
            .await;
        assert_eq!(resp.status, 200, "{method} {target}");
        assert_eq!(resp.header("grpc-status"), Some(code), "{method} {target}");
    }
    let resp = h
        .h2_request(
            "GET",
            "/orders",
            &[grpc[0], ("authorization", "Bearer a.b.c")],
            Bytes::new(),
        )
        .await;
    assert_eq!(resp.header("grpc-status"), Some("16"));
    assert_upstream_untouched(&h);
}
