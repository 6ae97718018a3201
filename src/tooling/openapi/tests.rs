use std::path::Path;

use http::Method;

use super::*;
use crate::policy::{Lookup, Policy};

fn derive_yaml(doc: &str, actions: Actions) -> Output {
    from_text(Path::new("api.yaml"), doc, actions).unwrap_or_else(|e| panic!("{e}"))
}

fn compiled(out: &Output) -> Policy {
    Policy::from_bytes(Path::new("gen.yaml"), out.yaml.as_bytes())
        .unwrap_or_else(|e| panic!("{e}\n{}", out.yaml))
}

/// What `method path` requires in the generated policy: (public, all-of, any-of).
fn needs(p: &Policy, method: &str, path: &str) -> (bool, Vec<String>, Vec<Vec<String>>) {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    match p.lookup(&m, path) {
        Lookup::Matched { rule, route, .. } => (
            route.public,
            rule.all.iter().map(|s| s.to_string()).collect(),
            rule.any
                .iter()
                .map(|g| g.iter().map(|s| s.to_string()).collect())
                .collect(),
        ),
        other => panic!("{method} {path}: {other:?}"),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const OAUTH: &str = r#"
openapi: 3.0.3
info: { title: Orders, version: "1" }
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://idp.example/token
          scopes:
            orders:read: Read orders
            orders:write: Change orders
            admin: Administer everything
    key:
      type: apiKey
      in: header
      name: X-API-Key
security:
  - oauth: [orders:read]
paths:
  /orders:
    get:
      operationId: listOrders
      responses: { 200: { description: ok } }
    post:
      security:
        - oauth: [orders:write]
      responses: { 201: { description: created } }
  /orders/{orderId}/refund:
    post:
      security:
        - oauth: [orders:write, payments:write]
        - oauth: [admin]
      responses: { 200: { description: ok } }
  /status:
    get:
      security: []
      responses: { 200: { description: ok } }
"#;

#[test]
fn operation_scopes_override_the_global_security() {
    let p = compiled(&derive_yaml(OAUTH, Actions::default()));
    assert_eq!(
        needs(&p, "GET", "/orders"),
        (false, strings(&["orders:read"]), vec![])
    );
    assert_eq!(
        needs(&p, "POST", "/orders"),
        (false, strings(&["orders:write"]), vec![])
    );
}

#[test]
fn several_requirement_objects_become_any_scopes() {
    let p = compiled(&derive_yaml(OAUTH, Actions::default()));
    assert_eq!(
        needs(&p, "POST", "/orders/o-1/refund"),
        (
            false,
            vec![],
            vec![
                strings(&["orders:write", "payments:write"]),
                strings(&["admin"])
            ]
        )
    );
}

#[test]
fn empty_security_is_public() {
    let out = derive_yaml(OAUTH, Actions::default());
    assert!(
        out.yaml
            .contains("  - path: /status\n    methods: [GET]\n    public: true\n"),
        "{}",
        out.yaml
    );
    assert!(needs(&compiled(&out), "GET", "/status").0);
}

#[test]
fn the_catalog_has_the_schemes_descriptions_and_undescribed_scopes() {
    let out = derive_yaml(OAUTH, Actions::default());
    let p = compiled(&out);
    let catalog = p.catalog().unwrap();
    assert_eq!(catalog["orders:read"], "Read orders");
    assert_eq!(catalog["admin"], "Administer everything");
    assert_eq!(
        catalog["payments:write"],
        "payments:write (not described in the document)"
    );
    // Path templates carry over unchanged.
    assert!(
        out.yaml.contains("  - path: /orders/{orderId}/refund\n"),
        "{}",
        out.yaml
    );
}

const DERIVED: &str = r#"
openapi: 3.1.0
info: { title: Projects, version: "2" }
paths:
  /v2/projects/{projectId}:
    get:
      tags: [Project]
      operationId: project-get-project
    delete:
      tags: [Project]
    patch:
      tags: [Cron Jobs]
  /v2/apps:
    get:
      operationId: app-list-apps
    post:
      operationId: app-create-app
  /v2/misc:
    options:
      tags: [Misc]
    get: {}
"#;

#[test]
fn scopes_derive_from_the_first_tag_and_the_method() {
    let out = derive_yaml(DERIVED, Actions::ReadWriteDelete);
    let p = compiled(&out);
    assert_eq!(
        needs(&p, "GET", "/v2/projects/p1").1,
        strings(&["project:read"])
    );
    assert_eq!(
        needs(&p, "DELETE", "/v2/projects/p1").1,
        strings(&["project:delete"])
    );
    // Tags become lower-case kebab.
    assert_eq!(
        needs(&p, "PATCH", "/v2/projects/p1").1,
        strings(&["cron-jobs:write"])
    );
    // Methods with one requirement share one route with an `{action}` template.
    assert!(
        out.yaml.contains("  - path: /v2/projects/{projectId}\n    methods: [GET, DELETE]\n    scopes: [\"project:{action}\"]\n"),
        "{}",
        out.yaml
    );
    assert_eq!(p.catalog().unwrap()["project:read"], "read project");
}

#[test]
fn without_a_tag_the_operation_id_prefix_is_the_domain() {
    let p = compiled(&derive_yaml(DERIVED, Actions::default()));
    assert_eq!(needs(&p, "GET", "/v2/apps").1, strings(&["app:read"]));
    assert_eq!(needs(&p, "POST", "/v2/apps").1, strings(&["app:write"]));
}

#[test]
fn operations_that_cannot_be_expressed_are_left_out_with_a_note() {
    let out = derive_yaml(DERIVED, Actions::default());
    assert!(
        out.notes
            .iter()
            .any(|n| n.starts_with("GET /v2/misc: skipped: no OAuth2 scopes, no tag")),
        "{:?}",
        out.notes
    );
    assert!(
        out.notes.iter().any(|n| n.contains(
            "OPTIONS /v2/misc: skipped: the `read-write-delete` actions have no word for OPTIONS"
        )),
        "{:?}",
        out.notes
    );
    assert!(out.yaml.contains("# note: GET /v2/misc: skipped"));
    // Left out means unmatched, and unmatched is denied.
    let p = compiled(&out);
    assert!(matches!(
        p.lookup(&Method::GET, "/v2/misc"),
        Lookup::NoRoute
    ));
}

#[test]
fn the_presets_choose_the_action_words() {
    let p = compiled(&derive_yaml(DERIVED, Actions::ReadWrite));
    assert_eq!(
        needs(&p, "DELETE", "/v2/projects/p1").1,
        strings(&["project:write"])
    );
    let p = compiled(&derive_yaml(DERIVED, Actions::Crud));
    assert_eq!(
        needs(&p, "DELETE", "/v2/projects/p1").1,
        strings(&["project:delete"])
    );
    assert_eq!(needs(&p, "POST", "/v2/apps").1, strings(&["app:create"]));
    assert_eq!(
        needs(&p, "PATCH", "/v2/projects/p1").1,
        strings(&["cron-jobs:update"])
    );
}

#[test]
fn json_documents_are_read_too() {
    let doc = r#"{"openapi": "3.1.0", "info": {"title": "J", "version": "1"},
      "paths": {"/things/{id}": {"get": {"tags": ["Things"]}, "put": {"tags": ["Things"], "security": []}}}}"#;
    let out = from_text(Path::new("api.json"), doc, Actions::default()).unwrap();
    let p = compiled(&out);
    assert_eq!(needs(&p, "GET", "/things/1").1, strings(&["things:read"]));
    assert!(needs(&p, "PUT", "/things/1").0);
}

#[test]
fn swagger_2_and_broken_files_are_refused_with_a_reason() {
    let e = from_text(
        Path::new("s.yaml"),
        "swagger: \"2.0\"\npaths: {}\n",
        Actions::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "s.yaml: not an OpenAPI 3.0 or 3.1 document (`openapi: missing`)"
    );
    let e = from_text(Path::new("s.json"), "{\"openapi\": ", Actions::default()).unwrap_err();
    assert!(e.to_string().starts_with("s.json:1:"), "{e}");
    let e = from_text(
        Path::new("s.yaml"),
        "openapi: 3.0.0\nopenapi: 3.1.0\n",
        Actions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("s.yaml:2:"), "{e}");
}

#[test]
fn partial_segment_parameters_are_left_out() {
    let doc = "openapi: 3.0.0\npaths:\n  /files/{name}.json:\n    get: { tags: [files] }\n  /files/{name}:\n    get: { tags: [files] }\n";
    let out = derive_yaml(doc, Actions::default());
    assert!(
        out.notes
            .iter()
            .any(|n| n.starts_with("/files/{name}.json: skipped"))
    );
    compiled(&out);
}

#[test]
fn differently_named_parameters_at_one_position_still_compile() {
    let doc = "openapi: 3.0.0\npaths:\n  /a/{id}:\n    get: { tags: [a] }\n  /a/{name}/b:\n    get: { tags: [a] }\n";
    compiled(&derive_yaml(doc, Actions::default()));
}

#[test]
fn scalars_are_quoted_only_when_needed() {
    assert_eq!(emit::scalar("orders:read"), "orders:read");
    assert_eq!(emit::scalar("/v2/apps"), "/v2/apps");
    assert_eq!(emit::scalar("yes"), "\"yes\"");
    assert_eq!(emit::scalar("a b"), "\"a b\"");
    assert_eq!(emit::scalar("https://x/y"), "\"https://x/y\"");
    assert_eq!(emit::scalar("/a/{id}"), "\"/a/{id}\"");
    assert_eq!(emit::path("/a/{id}"), "/a/{id}");
    assert_eq!(emit::path("/a b/{id}"), "\"/a b/{id}\"");
}

#[test]
fn the_servers_base_path_prefixes_every_route() {
    let doc = "openapi: 3.0.0\nservers:\n  - url: https://api.example.com/v1/\n  - url: http://localhost:8080/v1\npaths:\n  /things:\n    get: { tags: [things] }\n";
    let out = derive_yaml(doc, Actions::default());
    assert!(
        out.notes.iter().any(|n| n.contains("base path `/v1`")),
        "{:?}",
        out.notes
    );
    assert_eq!(
        needs(&compiled(&out), "GET", "/v1/things").1,
        strings(&["things:read"])
    );
    let doc = "openapi: 3.0.0\nservers:\n  - url: https://a.example/v1\n  - url: https://b.example/v2\npaths:\n  /things:\n    get: { tags: [things] }\n";
    let out = derive_yaml(doc, Actions::default());
    assert!(out.notes.iter().any(|n| n.contains("different paths")));
    assert!(matches!(
        compiled(&out).lookup(&Method::GET, "/things"),
        Lookup::Matched { .. }
    ));
}

#[test]
fn local_references_are_followed() {
    let doc = r##"
openapi: 3.1.0
components:
  securitySchemes:
    oauth: { $ref: "#/components/x-schemes/oauth" }
  x-schemes:
    oauth:
      type: oauth2
      flows: { implicit: { authorizationUrl: "https://idp/a", scopes: { "pets:read": Read pets } } }
  pathItems:
    pets:
      get:
        security: [{ oauth: ["pets:read"] }]
paths:
  /pets: { $ref: "#/components/pathItems/pets" }
  /broken: { $ref: "other.yaml#/x" }
"##;
    let out = derive_yaml(doc, Actions::default());
    let p = compiled(&out);
    assert_eq!(needs(&p, "GET", "/pets").1, strings(&["pets:read"]));
    assert_eq!(p.catalog().unwrap()["pets:read"], "Read pets");
    assert!(
        out.notes
            .iter()
            .any(|n| n.starts_with("/broken: skipped: `$ref: other.yaml#/x`")),
        "{:?}",
        out.notes
    );
}

#[test]
fn kebab_case_domains() {
    assert_eq!(derive::kebab("SSH/SFTP User"), "ssh-sftp-user");
    assert_eq!(derive::kebab("  Cron Jobs "), "cron-jobs");
    assert_eq!(derive::kebab("CronJob"), "cronjob");
    assert_eq!(derive::kebab("--"), "");
}

#[test]
fn an_unquoted_version_number_is_accepted() {
    let doc = "openapi: 3.0\npaths:\n  /a:\n    get: { tags: [a] }\n";
    compiled(&derive_yaml(doc, Actions::default()));
}
