//! The header classes of the bypass corpus: duplicated credentials, spoofed identity and
//! target-override headers, and a cached token reused across routes.

use super::{Expect::Forwarded, Expect::Refused, check, customer};
use crate::common::{Harness, raw_request};

/// Envoy CVE-2026-26308: duplicate headers were joined with commas, so the gateway and the
/// upstream read different credentials. Two `Authorization` headers (in any case) and a
/// comma-folded one are all `invalid_token`.
#[tokio::test]
async fn envoy_cve_2026_26308_duplicate_headers_joined() {
    let h = Harness::orders().await;
    let weak = customer(&h);
    let strong = h.token(&["admin"], &["*"], "root", &[]);
    let admin = format!("Authorization: Bearer {strong}");
    // Control: the strong token alone does reach /admin.
    check(&h, "control", "/admin/x", &[&admin], Forwarded("/admin/x")).await;
    let cases: [Vec<String>; 5] = [
        vec![format!("Authorization: Bearer {weak}"), admin.clone()],
        vec![admin.clone(), format!("authorization: Bearer {weak}")],
        vec![admin.clone(), admin.clone()],
        vec![format!("Authorization: Bearer {weak}, Bearer {strong}")],
        vec![format!("Authorization: Bearer {strong},Bearer {weak}")],
    ];
    for headers in &cases {
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        for target in ["/admin/x", "/orders/7"] {
            let resp = check(&h, "CVE-2026-26308", target, &headers, Refused(401)).await;
            assert_eq!(resp.json()["reason"], "invalid_token", "{headers:?}");
        }
    }
    h.stop().await;
}

/// oauth2-proxy CVE-2025-64484: `X_Forwarded_User`-style underscore spellings of identity
/// headers were passed on, and servers that fold `_` into `-` believed them.
#[tokio::test]
async fn oauth2_proxy_cve_2025_64484_underscore_identity_headers() {
    let h = Harness::orders().await;
    let auth = format!("Authorization: Bearer {}", customer(&h));
    let spoofs = [
        "X_Auth_Subject: root",
        "X_AUTH_ROLES: admin",
        "x-auth_scopes: *",
        "X-Auth-Subject: root",
        "X_Forwarded_For: 10.0.0.1",
        "X_Forwarded_Host: admin.internal",
        "X_HTTP_Method_Override: DELETE",
    ];
    let mut headers = vec![auth.as_str()];
    headers.extend(spoofs);
    let echo = check(
        &h,
        "CVE-2025-64484",
        "/orders/7",
        &headers,
        Forwarded("/orders/7"),
    )
    .await
    .echo();
    assert_eq!(echo.spellings_of("x-auth-subject"), ["x-auth-subject"]);
    assert_eq!(echo.header("x-auth-subject"), Some("u1"));
    assert_eq!(echo.spellings_of("x-auth-roles"), ["x-auth-roles"]);
    assert_eq!(echo.header("x-auth-roles"), Some("customer"));
    assert_eq!(echo.spellings_of("x-auth-scopes"), ["x-auth-scopes"]);
    assert_eq!(
        echo.header("x-auth-scopes"),
        Some("orders:read orders:write")
    );
    assert_eq!(echo.spellings_of("x-forwarded-for"), ["x-forwarded-for"]);
    assert_eq!(echo.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(echo.spellings_of("x-forwarded-host"), ["x-forwarded-host"]);
    assert!(echo.spellings_of("x-http-method-override").is_empty());
    assert_eq!(echo.method, "GET");

    // Without credentials on a public route nothing of the spoofed identity survives.
    let mut headers = vec![];
    headers.extend(spoofs);
    let echo = check(
        &h,
        "CVE-2025-64484 public",
        "/health",
        &headers,
        Forwarded("/health"),
    )
    .await
    .echo();
    for name in ["x-auth-subject", "x-auth-roles", "x-auth-scopes"] {
        assert!(
            echo.spellings_of(name).is_empty(),
            "{name}: {:?}",
            echo.headers
        );
    }
    h.stop().await;
}

/// oauth2-proxy CVE-2026-40575: a client-sent `X-Forwarded-Uri` was trusted as the
/// request's path. The gateway decides on the request line and strips every
/// target-override header (`X-Original-URL`, `X-Rewrite-URL`, ...) in any spelling.
#[tokio::test]
async fn oauth2_proxy_cve_2026_40575_spoofed_forwarded_uri() {
    let h = Harness::orders().await;
    let auth = format!("Authorization: Bearer {}", customer(&h));
    let overrides = [
        "X-Forwarded-Uri: /admin/x",
        "X-Original-URL: /admin/x",
        "X-Rewrite-URL: /admin/x",
        "X-Original-URI: /admin/x",
        "X-Forwarded-Path: /admin/x",
        "X-Envoy-Original-Path: /admin/x",
        "X_Original_URL: /admin/x",
        "x_forwarded_uri: /admin/x",
    ];
    let mut headers = vec![auth.as_str()];
    headers.extend(overrides);
    let echo = check(
        &h,
        "CVE-2026-40575",
        "/orders/7",
        &headers,
        Forwarded("/orders/7"),
    )
    .await
    .echo();
    for name in [
        "x-forwarded-uri",
        "x-original-url",
        "x-rewrite-url",
        "x-original-uri",
        "x-forwarded-path",
        "x-envoy-original-path",
    ] {
        assert!(
            echo.spellings_of(name).is_empty(),
            "{name}: {:?}",
            echo.headers
        );
    }
    // Pointing the override at an allowed path does not open a denied one either.
    let headers = [auth.as_str(), "X-Original-URL: /orders/7"];
    check(&h, "CVE-2026-40575", "/admin/x", &headers, Refused(403)).await;
    h.stop().await;
}

/// Ory Oathkeeper CVE-2021-32701: a cached token result was reused for a request needing
/// other scopes. The cache here holds authentication only; every request is decided on
/// its own route, with the same token string each time.
#[tokio::test]
async fn oathkeeper_cve_2021_32701_cached_token_decided_per_route() {
    let h = Harness::orders().await;
    let reader = h.token(&["customer"], &["orders:read"], "u1", &[]);
    let auth = format!("Authorization: Bearer {reader}");
    let send = |method: &'static str, target: &'static str| {
        let auth = auth.clone();
        let h = &h;
        async move {
            h.raw_ok(raw_request(method, target, &[&auth]).as_bytes())
                .await
        }
    };
    for round in 0..3 {
        let ok = send("GET", "/orders/7").await;
        assert_eq!(ok.status, 200, "round {round}: {}", ok.brief());
        let before = h.upstream_bytes();
        for (method, target, reason) in [
            ("POST", "/orders/7", "insufficient_scope"),
            ("DELETE", "/orders/7", "insufficient_scope"),
            ("GET", "/admin/x", "role_not_permitted"),
            ("POST", "/orders/7/refund", "insufficient_scope"),
        ] {
            let resp = send(method, target).await;
            assert_eq!(resp.status, 403, "round {round}: {method} {target}");
            assert_eq!(resp.json()["reason"], reason, "{method} {target}");
        }
        assert_eq!(h.upstream_bytes(), before, "round {round}");
    }
    h.stop().await;
}
