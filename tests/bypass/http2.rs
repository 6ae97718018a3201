//! The path classes over HTTP/2 (cleartext, prior knowledge): `:path` goes through the
//! same normalization as an HTTP/1.1 request line, and the same duplicate-credential rule
//! applies to repeated `authorization` fields.

use bytes::Bytes;

use crate::common::{Harness, assert_denial};

#[tokio::test]
async fn http2_path_confusion_is_decided_like_http1() {
    let h = Harness::orders().await;
    let t = h.token(&["customer"], &["orders:read", "orders:write"], "u1", &[]);
    let auth = format!("Bearer {t}");
    let headers = [("authorization", auth.as_str())];
    for (path, status, reason) in [
        ("/orders/../admin/x", 403, "role_not_permitted"),
        ("/orders/%2e%2e/admin/x", 403, "role_not_permitted"),
        ("//admin/x", 403, "role_not_permitted"),
        ("/orders/7%2F..%2F..%2Fadmin", 400, "bad_request"),
        ("/orders/7%5C..", 400, "bad_request"),
        ("/orders/7%23", 400, "bad_request"),
        ("/orders/7;x", 400, "bad_request"),
    ] {
        let before = h.upstream_bytes();
        let resp = h.h2_request("GET", path, &headers, Bytes::new()).await;
        let name = if status == 400 {
            "BadRequestError"
        } else {
            "ForbiddenError"
        };
        assert_denial(&resp, status, name, reason);
        assert_eq!(h.upstream_bytes(), before, "{path}");
    }
    for (path, forwarded) in [
        ("/orders//7", "/orders/7"),
        ("/orders/./x/../%37", "/orders/7"),
    ] {
        let resp = h.h2_request("GET", path, &headers, Bytes::new()).await;
        assert_eq!(resp.status, 200, "{path}: {}", resp.brief());
        assert_eq!(resp.echo().path, forwarded, "{path}");
    }
    let admin = format!("Bearer {}", h.token(&["admin"], &["*"], "root", &[]));
    let two = [
        ("authorization", auth.as_str()),
        ("authorization", admin.as_str()),
    ];
    let resp = h.h2_request("GET", "/admin/x", &two, Bytes::new()).await;
    assert_denial(&resp, 401, "UnauthorizedError", "invalid_token");
    h.stop().await;
}
