//! The bypass corpus: authorization bypasses that shipped in comparable gateways, each
//! replayed as raw bytes over TCP (so no client library tidies the request first) against
//! the real gateway in front of the echo upstream.
//!
//! Every case must end one of two ways: refused by the gateway with nothing reaching the
//! upstream, or forwarded with the upstream receiving exactly the path the decision was
//! made on. Each test is named after the CVE or class it reproduces; the JWT classics are
//! in `bypass/jwt.rs`, the header classes in `bypass/headers.rs`, the path classes over
//! HTTP/2 in `bypass/http2.rs`.

mod common;
#[path = "bypass/headers.rs"]
mod headers;
#[path = "bypass/http2.rs"]
mod http2;
#[path = "bypass/jwt.rs"]
mod jwt;

use common::{Harness, Resp, raw_request};

/// What a case must come to.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Answered by the gateway with this status; the upstream saw no byte of it.
    Refused(u16),
    /// Reached the upstream with exactly this path (the normalized one decided on).
    Forwarded(&'static str),
}
use Expect::{Forwarded, Refused};

/// A customer: roles [customer], scopes orders:read orders:write, sub u1. Never admin.
fn customer(h: &Harness) -> String {
    h.token(&["customer"], &["orders:read", "orders:write"], "u1", &[])
}

/// Sends `GET target` raw with `headers` and checks it against `expect`.
async fn check(h: &Harness, case: &str, target: &str, headers: &[&str], expect: Expect) -> Resp {
    let before = h.upstream_bytes();
    let resp = h
        .raw_ok(raw_request("GET", target, headers).as_bytes())
        .await;
    match expect {
        Refused(status) => {
            assert_eq!(
                resp.status.as_u16(),
                status,
                "{case}: GET {target:?} -> {}",
                resp.brief()
            );
            assert!(
                !resp.is_from_upstream(),
                "{case}: {target:?} reached upstream"
            );
            assert_eq!(
                h.upstream_bytes(),
                before,
                "{case}: {target:?} sent bytes upstream"
            );
        }
        Forwarded(path) => {
            assert_eq!(
                resp.status.as_u16(),
                200,
                "{case}: GET {target:?} -> {}",
                resp.brief()
            );
            assert_eq!(resp.echo().path, path, "{case}: {target:?}");
        }
    }
    resp
}

/// Runs a table of (target, expectation) with the customer's token.
async fn table(case: &str, rows: &[(&str, Expect)]) {
    let h = Harness::orders().await;
    let auth = format!("Authorization: Bearer {}", customer(&h));
    // The attack target itself is refused for this caller: the rows are not vacuous.
    check(&h, case, "/admin/x", &[&auth], Refused(403)).await;
    for (target, expect) in rows {
        check(&h, case, target, &[&auth], *expect).await;
    }
    h.stop().await;
}

// ---- path confusion ---------------------------------------------------------------------

/// Envoy CVE-2019-9901: dot segments were not resolved before matching, so
/// `/orders/../admin` matched an `/orders` rule and the upstream served `/admin`.
#[tokio::test]
async fn envoy_cve_2019_9901_dot_segments() {
    table(
        "CVE-2019-9901",
        &[
            ("/orders/../admin/x", Refused(403)),
            ("/orders/7/../../admin/x", Refused(403)),
            ("/orders/7/./../../admin/./x", Refused(403)),
            ("/orders/%2e%2e/admin/x", Refused(403)),
            ("/orders/.%2E/admin/x", Refused(403)),
            ("/orders/%2E./admin/x", Refused(403)),
            ("/../admin/x", Refused(400)),
            ("/orders/7/../../../admin/x", Refused(400)),
            ("/orders/./7", Forwarded("/orders/7")),
            ("/orders/x/../7", Forwarded("/orders/7")),
            // `/orders/7/` (trailing slash kept, RFC 3986) is a different path: no route.
            ("/orders/7/%2e", Refused(403)),
            ("/orders/8/%2e%2e/7", Forwarded("/orders/7")),
        ],
    )
    .await;
}

/// Envoy CVE-2021-29492 / Istio CVE-2021-31920: `%2F` and `%5C` were matched as plain
/// characters but decoded into separators by the upstream.
#[tokio::test]
async fn envoy_cve_2021_29492_istio_cve_2021_31920_encoded_separators() {
    table(
        "CVE-2021-29492/CVE-2021-31920",
        &[
            ("/orders/7%2F..%2F..%2Fadmin%2Fx", Refused(400)),
            ("/orders/7%2f..%2f..%2fadmin%2fx", Refused(400)),
            ("/orders%2F7", Refused(400)),
            ("/orders/7%5C..%5C..%5Cadmin%5Cx", Refused(400)),
            ("/orders/7%5c..%5c..%5cadmin", Refused(400)),
            ("/orders/7\\..\\..\\admin\\x", Refused(400)),
            (
                "/orders/7%252F..%252Fadmin",
                Forwarded("/orders/7%252F..%252Fadmin"),
            ),
        ],
    )
    .await;
}

/// Istio CVE-2021-31920 (the `//` half): repeated slashes matched no rule, or the wrong
/// one, while upstreams merge them.
#[tokio::test]
async fn istio_cve_2021_31920_repeated_slashes() {
    table(
        "CVE-2021-31920 //",
        &[
            ("/admin//x", Refused(403)),
            ("///admin/x", Refused(403)),
            ("/orders//..//admin/x", Refused(403)),
            ("/orders//7", Forwarded("/orders/7")),
            ("/orders///7", Forwarded("/orders/7")),
        ],
    )
    .await;
}

/// OPA-Envoy GHSA-9f29-v6mm-pw6w: a target starting `//` was parsed as an authority
/// (`//admin/x` = host `admin`, path `/x`), so the policy saw a different path.
#[tokio::test]
async fn opa_envoy_ghsa_9f29_v6mm_pw6w_double_slash_authority() {
    table(
        "GHSA-9f29-v6mm-pw6w",
        &[
            ("//admin/x", Refused(403)),
            ("//orders/../admin/x", Refused(403)),
            ("//evil.example/admin/x", Refused(403)),
            ("//orders", Forwarded("/orders")),
            ("//orders/7", Forwarded("/orders/7")),
        ],
    )
    .await;
}

/// Envoy CVE-2021-32779: `#fragment` in the target was matched (or not) differently than
/// the upstream read it. The `http` crate cuts a raw `#` and all after it before the
/// gateway sees the target, so the cut path is both decided and forwarded; an encoded
/// `%23` is refused.
#[tokio::test]
async fn envoy_cve_2021_32779_fragment() {
    table(
        "CVE-2021-32779",
        &[
            ("/orders/7#/../../admin/x", Forwarded("/orders/7")),
            ("/orders#/admin", Forwarded("/orders")),
            ("/admin/x#/../../orders/7", Refused(403)),
            ("/orders/7%23/../../admin/x", Refused(400)),
            ("/orders/7%23", Refused(400)),
        ],
    )
    .await;
}

/// Traefik CVE-2025-66490: encoded reserved characters were decoded before routing, so a
/// path matched one rule but reached the upstream as another. Unreserved escapes are
/// decoded (the decision and the upstream see the same plain path); `%3F`, `%20` etc.
/// stay encoded in both; `%3B` is refused.
#[tokio::test]
async fn traefik_cve_2025_66490_encoded_reserved_characters() {
    table(
        "CVE-2025-66490",
        &[
            ("/%61dmin/x", Refused(403)),
            ("/%41dmin/x", Refused(403)), // `/Admin/x`: no route (matching is case-sensitive)
            ("/orders/7%3F/../../admin/x", Refused(403)),
            ("/orders/7%3B/../../admin/x", Refused(400)),
            ("/orders/7;/../../admin/x", Refused(400)),
            ("/orders/%37", Forwarded("/orders/7")),
            ("/%6Frders/7", Forwarded("/orders/7")),
            ("/orders/7%3Fx=1", Forwarded("/orders/7%3Fx=1")),
            ("/orders/7%3f", Forwarded("/orders/7%3F")),
            ("/orders/a%20b", Forwarded("/orders/a%20b")),
        ],
    )
    .await;
}

/// Traefik CVE-2026-40912: `/./admin` slipped past a prefix rule and was resolved by the
/// upstream after the prefix was stripped.
#[tokio::test]
async fn traefik_cve_2026_40912_dot_segment_after_prefix() {
    table(
        "CVE-2026-40912",
        &[
            ("/./admin/x", Refused(403)),
            ("/health/./../admin/x", Refused(403)),
            ("/orders/./../admin/x", Refused(403)),
            ("/./orders", Forwarded("/orders")),
            ("/health/../orders", Forwarded("/orders")),
        ],
    )
    .await;
}

/// The query string never takes part in matching and travels unchanged: a path in it
/// cannot steer the decision.
#[tokio::test]
async fn query_string_never_steers_the_decision() {
    let h = Harness::orders().await;
    let auth = format!("Authorization: Bearer {}", customer(&h));
    let resp = check(
        &h,
        "query",
        "/orders/7?path=/admin/x&../../admin",
        &[&auth],
        Forwarded("/orders/7"),
    )
    .await;
    assert_eq!(
        resp.echo().query.as_deref(),
        Some("path=/admin/x&../../admin")
    );
    check(&h, "query", "/admin/x?/orders/7", &[&auth], Refused(403)).await;
    h.stop().await;
}

/// Smuggling-shaped heads: what the gateway's HTTP/1 parser refuses never reaches the
/// upstream, and what it accepts is forwarded as one request.
#[tokio::test]
async fn request_smuggling_shapes_never_reach_upstream_as_two_requests() {
    let h = Harness::orders().await;
    let t = customer(&h);
    let smuggled = format!(
        "POST /orders/7 HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {t}\r\n\
         Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
         0\r\n\r\nGET /admin/x HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n"
    );
    let two_lengths = format!(
        "POST /orders/7 HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {t}\r\n\
         Content-Length: 4\r\nContent-Length: 40\r\nConnection: close\r\n\r\nabcd"
    );
    let space_before_colon = format!(
        "GET /admin/x HTTP/1.1\r\nHost: g\r\nAuthorization : Bearer {t}\r\nConnection: close\r\n\r\n"
    );
    for raw in [smuggled, two_lengths, space_before_colon] {
        let before = h.upstream_bytes();
        let all = read_all(&h, raw.as_bytes()).await;
        let text = String::from_utf8_lossy(&all);
        // Whatever was accepted, the upstream never served the smuggled `/admin/x`...
        assert!(!text.contains(r#""path":"/admin/x""#), "{text}");
        // ...and every response after the first is the gateway's own refusal of it.
        for later in text.split("\r\nHTTP/1.1 ").skip(1) {
            assert!(
                later.starts_with("403") || later.starts_with("400"),
                "{text}"
            );
        }
        if all.is_empty() {
            assert_eq!(h.upstream_bytes(), before, "{raw:?}");
            continue;
        }
        let resp = common::parse_raw_response(&all);
        if resp.is_from_upstream() {
            // Accepted: then it went upstream as the one request that was decided.
            assert_eq!(resp.echo().path, "/orders/7", "{raw:?}");
        } else {
            assert!(resp.status.is_client_error(), "{}", resp.brief());
            assert_eq!(h.upstream_bytes(), before, "{raw:?}");
        }
    }
    h.stop().await;
}

/// Everything the gateway sends back on one connection until it closes it.
async fn read_all(h: &Harness, bytes: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(h.addr)
        .await
        .expect("connect");
    let _ = s.write_all(bytes).await;
    let mut all = Vec::new();
    let read = tokio::time::timeout(common::IO_TIMEOUT, s.read_to_end(&mut all)).await;
    assert!(read.is_ok(), "the gateway kept the connection open");
    all
}

#[tokio::test]
async fn absolute_form_and_asterisk_targets_are_decided_on_their_path() {
    let h = Harness::orders().await;
    let auth = format!("Authorization: Bearer {}", customer(&h));
    check(
        &h,
        "absolute-form",
        "http://orders.example/admin/x",
        &[&auth],
        Refused(403),
    )
    .await;
    check(
        &h,
        "absolute-form",
        "http://admin.example/orders/../admin/x",
        &[&auth],
        Refused(403),
    )
    .await;
    check(
        &h,
        "absolute-form",
        "http://admin.example//orders/7",
        &[&auth],
        Forwarded("/orders/7"),
    )
    .await;
    let before = h.upstream_bytes();
    if let Some(resp) = h
        .raw(raw_request("OPTIONS", "*", &[&auth]).as_bytes())
        .await
    {
        assert!(!resp.is_from_upstream(), "{}", resp.brief());
        assert!(resp.status.is_client_error(), "{}", resp.brief());
    }
    assert_eq!(h.upstream_bytes(), before);
    h.stop().await;
}
