//! `shadow` never changes what reaches the upstream, apart from refusals: the same
//! requests against an `enforce` and a `shadow` gateway on the same policy. Whatever
//! enforce forwards, shadow forwards identically (method, path, query, body and the
//! identity headers); whatever enforce refuses, shadow forwards too unless it is malformed
//! (400, or 401 for credentials that are present but invalid or expired).

mod common;

use common::{Echo, Harness, ORDERS_POLICY, Resp, raw_request, token_with_secret};
use scopegate::normalize::{NormalizeOptions, normalize_path};

/// What the upstream got, minus what legitimately differs per request (the generated
/// request id).
fn seen(e: &Echo) -> (String, String, Option<String>, u64, [Option<String>; 3]) {
    let h = |n: &str| e.header(n).map(str::to_string);
    (
        e.method.clone(),
        e.path.clone(),
        e.query.clone(),
        e.body_bytes,
        [h("x-auth-subject"), h("x-auth-roles"), h("x-auth-scopes")],
    )
}

async fn send(h: &Harness, method: &str, target: &str, token: Option<&str>) -> Resp {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let headers: Vec<&str> = auth.iter().map(String::as_str).collect();
    h.raw_ok(raw_request(method, target, &headers).as_bytes())
        .await
}

#[tokio::test]
async fn shadow_forwards_what_enforce_forwards_unchanged_and_refuses_only_malformed_input() {
    let shadow_policy = ORDERS_POLICY.replacen("\nmode: enforce", "\nmode: shadow", 1);
    assert_ne!(shadow_policy, ORDERS_POLICY);
    let enforce = Harness::orders().await;
    let shadow = Harness::start(&shadow_policy, "").await;

    let t = |roles: &[&str], scopes: &[&str], sub: &str| enforce.token(roles, scopes, sub, &[]);
    let expired = enforce.token(&["admin"], &["*"], "root", &[("exp", "1000")]);
    let forged = token_with_secret(b"not-the-secret", &["admin"], &["*"], "root", &[]);
    let callers: Vec<Option<String>> = vec![
        None,
        Some(t(&["customer"], &["orders:read", "orders:write"], "u1")),
        Some(t(&["customer"], &["orders:read"], "u1")),
        Some(t(&["support"], &[], "s1")),
        Some(t(&["admin"], &["*"], "root")),
        Some(t(&["partner"], &["orders:read"], "p")),
        Some(t(&["none"], &["*"], "n")),
        Some(expired),
        Some(forged),
    ];
    let requests = [
        ("GET", "/health"),
        ("GET", "/orders?page=2"),
        ("POST", "/orders"),
        ("GET", "/orders/7"),
        ("DELETE", "/orders/7"),
        ("POST", "/orders/7/refund"),
        ("GET", "/admin/settings"),
        ("GET", "/projects/p1/x"),
        ("GET", "/users/u1/profile"),
        ("GET", "/users/u2/profile"),
        ("GET", "/reports/daily"),
        ("GET", "/partner/projects/p1/orders"),
        ("GET", "/nope"),
        ("GET", "/orders/../admin/x"),
        ("GET", "/orders/%2e%2e/%2e%2e/x"),
        ("GET", "/orders%2F7"),
    ];
    let (mut forwarded, mut refused) = (0, 0);
    for caller in &callers {
        for (method, target) in requests {
            let a = send(&enforce, method, target, caller.as_deref()).await;
            let b = send(&shadow, method, target, caller.as_deref()).await;
            let what = format!("{method} {target} as {}", caller.is_some());
            if a.is_from_upstream() {
                forwarded += 1;
                assert!(b.is_from_upstream(), "{what}: shadow refused {}", b.brief());
                assert_eq!(seen(&a.echo()), seen(&b.echo()), "{what}");
                continue;
            }
            refused += 1;
            let reason = a.json()["reason"].as_str().unwrap_or_default().to_string();
            let malformed = matches!(
                reason.as_str(),
                "bad_request" | "invalid_token" | "expired_token"
            );
            // For 405 / no route enforce never looks at the credentials; shadow does.
            let unchecked = matches!(reason.as_str(), "no_matching_route" | "method_not_allowed");
            if malformed {
                assert_eq!(b.status, a.status, "{what}: {}", b.brief());
                assert!(!b.is_from_upstream(), "{what}");
            } else if b.is_from_upstream() {
                // Forwarded: on the path enforce decided on, and never with an identity
                // the caller did not prove.
                let echo = b.echo();
                let path = target.split('?').next().unwrap_or(target);
                let decided = normalize_path(path, NormalizeOptions::default()).expect("valid");
                assert_eq!(echo.path, decided, "{what}");
                if caller.is_none() {
                    assert!(!echo.has("x-auth-subject"), "{what}: {:?}", echo.headers);
                }
            } else {
                assert!(
                    unchecked && b.status == 401,
                    "{what}: shadow refused {}",
                    b.brief()
                );
            }
        }
    }
    assert!(forwarded > 20 && refused > 20, "{forwarded} / {refused}");
    enforce.stop().await;
    shadow.stop().await;
}
