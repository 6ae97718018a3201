//! The admin listener (SPEC §5): every endpoint over real HTTP against a running gateway.

mod common;

use common::{Harness, ORDERS_POLICY, hex};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn health_and_readiness() {
    let h = Harness::orders().await;
    let r = h.admin_get("/healthz").await;
    assert_eq!(r.status, 200);
    let r = h.admin_get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.brief());
    assert_eq!(h.admin_get("/nope").await.status, 404);
    let r = h.admin("DELETE", "/healthz", "").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    h.stop().await;
}

#[tokio::test]
async fn admin_endpoints_are_not_reachable_through_the_proxy_port() {
    let h = Harness::orders().await;
    for path in [
        "/metrics",
        "/healthz",
        "/readyz",
        "/v1/policy",
        "/v1/scopes",
    ] {
        let r = h.request("GET", path, &[]).await;
        assert!(!r.body.starts_with(b"# "), "{path}: {}", r.brief());
        assert_ne!(r.status, 200, "{path} answered on the proxy port");
    }
    h.stop().await;
}

#[tokio::test]
async fn policy_status_names_the_file_version() {
    let h = Harness::orders().await;
    let r = h.admin_get("/v1/policy").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let v = r.json();
    let want = hex(&Sha256::digest(ORDERS_POLICY.as_bytes()));
    assert_eq!(v["version"], want.as_str());
    assert_eq!(v["routes"], 9);
    assert_eq!(v["mode"], "enforce");
    assert_eq!(v["lastError"], Value::Null);
    let at = v["loadedAt"].as_str().unwrap();
    // RFC 3339 in UTC: 2026-01-02T03:04:05Z
    assert_eq!(at.len(), 20, "{at}");
    assert!(at.ends_with('Z') && at.as_bytes()[10] == b'T', "{at}");
    h.stop().await;
}

#[tokio::test]
async fn scopes_list_the_catalog_sorted() {
    let h = Harness::orders().await;
    let v = h.admin_get("/v1/scopes").await.json();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 16);
    let names: Vec<&str> = list.iter().map(|s| s["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(list.contains(&json!({"name": "orders:read", "description": "Read orders"})));
    h.stop().await;
}

#[tokio::test]
async fn scopes_without_a_catalog_are_the_required_ones() {
    let policy = "version: 1\nroutes:\n  - path: /a\n    scopes: [b:read, a:write]\n";
    let h = Harness::start(policy, "").await;
    let v = h.admin_get("/v1/scopes").await.json();
    assert_eq!(
        v,
        json!([{"name": "a:write", "description": ""}, {"name": "b:read", "description": ""}])
    );
    h.stop().await;
}

#[tokio::test]
async fn roles_show_effective_scopes_after_inheritance_and_deny() {
    let h = Harness::orders().await;
    let r = h.admin_get("/v1/roles/support").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"name": "support", "inherits": [], "scopes": ["orders:read", "orders:write"],
               "deny": ["orders:delete"], "attributes": {}})
    );
    let admin = h.admin_get("/v1/roles/admin").await.json();
    assert_eq!(admin["inherits"], json!(["support"]));
    assert_eq!(admin["scopes"].as_array().unwrap().len(), 16, "{admin}");
    assert!(
        admin["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("orders:delete"))
    );
    assert_eq!(admin["attributes"], json!({"projects": ["*"]}));

    let all = h.admin_get("/v1/roles").await.json();
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "customer", "none", "partner", "support"]);
    let none = &all.as_array().unwrap()[2];
    assert_eq!(none["scopes"], json!([]));

    let missing = h.admin_get("/v1/roles/nobody").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["statusCode"], 404);
    assert!(
        missing.json()["message"]
            .as_str()
            .unwrap()
            .contains("nobody")
    );
    h.stop().await;
}

#[tokio::test]
async fn explain_with_a_principal() {
    let h = Harness::orders().await;
    let body = json!({"method": "DELETE", "path": "/orders/7", "roles": ["support"],
                      "scopes": ["orders:read", "orders:delete"]});
    let r = h.admin("POST", "/v1/explain", &body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.brief());
    let v = r.json();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["status"], 403);
    assert_eq!(v["reason"], "insufficient_scope");
    assert_eq!(v["route"], "/orders/{id}");
    assert_eq!(v["requiredScopes"], json!(["orders:delete"]));
    assert_eq!(v["missingScopes"], json!(["orders:delete"]));
    assert_eq!(v["effectiveScopes"], json!(["orders:read"]));
    assert!(v["trace"].as_array().unwrap().len() >= 3, "{v}");
    h.stop().await;
}

#[tokio::test]
async fn explain_with_a_token_and_without_credentials() {
    let h = Harness::orders().await;
    let token = h.token(&["customer"], &["orders:read"], "u1", &[]);
    let body = json!({"method": "get", "path": "/orders/7", "token": token});
    let v = h
        .admin("POST", "/v1/explain", &body.to_string())
        .await
        .json();
    assert_eq!(v["decision"], "allow", "{v}");
    assert_eq!(v["status"], 200);
    assert_eq!(v["reason"], Value::Null);

    let body = json!({"method": "GET", "path": "/orders"});
    let v = h
        .admin("POST", "/v1/explain", &body.to_string())
        .await
        .json();
    assert_eq!(v["status"], 401);
    assert_eq!(v["reason"], "missing_credentials");

    let body = json!({"method": "GET", "path": "/orders", "token": "not-a-jwt"});
    let v = h
        .admin("POST", "/v1/explain", &body.to_string())
        .await
        .json();
    assert_eq!(v["reason"], "invalid_token");
    h.stop().await;
}

#[tokio::test]
async fn explain_refuses_bad_requests_with_json_errors() {
    let h = Harness::orders().await;
    for body in [
        "not json".to_string(),
        json!({"path": "/orders"}).to_string(),
        json!({"method": "GET", "path": "/x", "token": "t", "roles": ["admin"]}).to_string(),
        json!({"method": "GET", "path": "/x", "extra": 1}).to_string(),
    ] {
        let r = h.admin("POST", "/v1/explain", &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.brief());
        assert_eq!(r.json()["name"], "BadRequestError");
    }
    assert_eq!(h.admin("GET", "/v1/explain", "").await.status, 405);
    h.stop().await;
}
