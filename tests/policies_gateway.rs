//! The example policies behind the real gateway: what `scopegate test` predicts is what
//! a client and the upstream actually see.

mod common;

use common::{Harness, assert_denial, bearer};
use scopegate::auth::Principal;
use scopegate::normalize::NormalizeOptions;
use scopegate::policy::Policy;
use scopegate::tooling::policy_test::{CaseRequest, evaluate};

fn example(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policies")
        .join(format!("{name}.yaml"));
    std::fs::read_to_string(path).unwrap()
}

/// OneLogin's API errors are `{"message","statusCode","name"}`; the gateway's own
/// refusals under the OneLogin policy have that shape (plus scopegate's extra fields).
#[tokio::test]
async fn onelogin_refusals_have_onelogin_error_shape() {
    let h = Harness::start(&example("onelogin"), "").await;
    let target = "/api/2/api_authorizations/42/scopes";

    let resp = h.request("POST", target, &[]).await;
    let v = assert_denial(&resp, 401, "UnauthorizedError", "missing_credentials");
    assert!(v["message"].is_string() && v["statusCode"] == 401, "{v}");

    let token = h.token(&[], &["read_all"], "cred-1", &[]);
    let (k, auth) = bearer(&token);
    let resp = h.request("POST", target, &[(k, &auth)]).await;
    let v = assert_denial(&resp, 403, "ForbiddenError", "insufficient_scope");
    assert_eq!(v["missingScopes"], serde_json::json!(["manage_all"]), "{v}");
    assert_eq!(h.upstream_bytes(), 0, "nothing reached the upstream");

    // The same request with the right access level is forwarded.
    let token = h.token(&[], &["manage_all"], "cred-1", &[]);
    let (k, auth) = bearer(&token);
    let resp = h.request("POST", target, &[(k, &auth)]).await;
    assert_eq!(resp.status.as_u16(), 200, "{}", resp.brief());
    assert!(resp.is_from_upstream());
    h.stop().await;
}

/// The identity headers `scopegate test` expects (`identityHeaders`) are the ones the
/// proxy sets: checked on a default role (EVRYTHNG) and on a token narrowing a role
/// (mittwald).
#[tokio::test]
async fn identity_headers_match_what_policy_tests_predict() {
    for (policy, method, path, roles, scopes, want_roles) in [
        (
            "evrythng",
            "GET",
            "/thngs/UhpHrg39QCy9dsSddN8xhwnb",
            &[][..],
            &[][..],
            "base_app_user",
        ),
        (
            "mittwald",
            "GET",
            "/v2/projects/p-1",
            &["member"][..],
            &["project:read", "app:*", "mail:write"][..],
            "member",
        ),
    ] {
        let text = example(policy);
        let h = Harness::start(&text, "").await;
        let token = h.token(roles, scopes, "u-1", &[]);
        let (k, auth) = bearer(&token);
        let resp = h.request(method, path, &[(k, &auth)]).await;
        assert_eq!(resp.status.as_u16(), 200, "{policy}: {}", resp.brief());
        let echo = resp.echo();

        let compiled = Policy::from_bytes(std::path::Path::new("p.yaml"), text.as_bytes()).unwrap();
        let principal = Principal {
            subject: Some("u-1".into()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            scopes: (!scopes.is_empty()).then(|| scopes.iter().map(|s| s.to_string()).collect()),
            claims: Default::default(),
        };
        let predicted = evaluate(
            &compiled,
            &CaseRequest {
                method: method.into(),
                path: path.into(),
            },
            Some(Ok(&principal)),
            NormalizeOptions::default(),
            &mut Vec::new(),
        )
        .identity
        .expect("forwarded with identity");
        assert_eq!(predicted.roles, want_roles, "{policy}");
        if policy == "mittwald" {
            // The role's rights narrowed by the token: no mail:write (the role lacks it).
            assert_eq!(
                predicted.scopes,
                "app:delete app:read app:write project:read"
            );
        }
        assert_eq!(
            echo.header("x-auth-subject"),
            predicted.subject.as_deref(),
            "{policy}"
        );
        assert_eq!(
            echo.header("x-auth-roles"),
            Some(predicted.roles.as_str()),
            "{policy}"
        );
        assert_eq!(
            echo.header("x-auth-scopes"),
            Some(predicted.scopes.as_str()),
            "{policy}"
        );
        h.stop().await;
    }
}
