//! The authoring commands as a user runs them: the real `scopegate` binary on files in
//! a temporary directory, checking exit codes and what is printed.

use std::path::Path;
use std::process::{Command, Output};

const POLICY: &str = "\
version: 1
scopes:
  orders:read: Read orders
  orders:delete: Delete orders
roles:
  customer:
    scopes: [orders:read]
routes:
  - path: /orders/{id}
    methods: [GET, DELETE]
    scopes: [\"orders:{action}\"]
";

fn scopegate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(args)
        .current_dir(dir)
        .env_remove("SCOPEGATE_CONFIG")
        .output()
        .expect("run scopegate")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A temporary directory holding `files` (name, content), for a command to run in.
fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}

#[test]
fn test_reports_a_failing_case_with_its_trace_and_exits_1() {
    let dir = workspace(&[
        ("orders.yaml", POLICY),
        (
            "orders.tests.yaml",
            "policy: orders.yaml\ncases:\n\
         \x20 - name: customers read orders\n\
         \x20   request: { method: GET, path: /orders/7 }\n\
         \x20   principal: { roles: [customer] }\n\
         \x20   expect: { status: 200 }\n\
         \x20 - name: customers delete orders (wrong on purpose)\n\
         \x20   request: { method: DELETE, path: /orders/7 }\n\
         \x20   principal: { roles: [customer], scopes: [orders:delete] }\n\
         \x20   expect: { status: 200 }\n",
        ),
    ]);
    let out = scopegate(dir.path(), &["test", "orders.tests.yaml"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL orders.tests.yaml: customers delete orders (wrong on purpose)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("status 403, expected 200"),
        "the mismatch is printed: {stdout}"
    );
    // The decision trace of the failing case, step by step.
    assert!(
        stdout.contains("2. route: routes[0] DELETE /orders/{id}"),
        "{stdout}"
    );
    assert!(
        stdout.contains("8. scopes: missing orders:delete"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("customers read orders"),
        "passing cases are not listed: {stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("1 passed, 1 failed"));
}

#[test]
fn test_exits_0_when_every_case_passes() {
    let dir = workspace(&[
        ("orders.yaml", POLICY),
        (
            "ok.tests.yaml",
            "policy: orders.yaml\ncases:\n\
         \x20 - name: no credentials\n\
         \x20   request: { method: GET, path: /orders/7 }\n\
         \x20   expect: { status: 401, reason: missing_credentials }\n",
        ),
    ]);
    let out = scopegate(dir.path(), &["test", "ok.tests.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout).lines().last(), Some("1 passed, 0 failed"));
}

#[test]
fn test_verifies_token_principals_with_the_configs_issuers() {
    let dir = workspace(&[
        ("orders.yaml", POLICY),
        (
            "scopegate.yaml",
            "upstream: { url: \"http://127.0.0.1:9\" }\npolicy: orders.yaml\n\
         auth:\n  jwt:\n    issuers:\n      - issuer: scopegate\n        \
         keys: [{ alg: HS256, secret_env: CLI_TEST_SECRET }]\n        algorithms: [HS256]\n",
        ),
    ]);
    let secret = "cli-test-secret-of-thirty-two-b!";
    let token = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args([
            "token", "--secret", secret, "--sub", "u9", "--role", "customer",
        ])
        .output()
        .unwrap();
    let token = text(&token.stdout).trim().to_string();
    std::fs::write(
        dir.path().join("t.tests.yaml"),
        format!(
            "cases:\n\
             \x20 - name: a real token\n\
             \x20   request: {{ method: GET, path: /orders/7 }}\n\
             \x20   principal: {{ token: {token} }}\n\
             \x20   expect: {{ status: 200, identityHeaders: {{ subject: u9, roles: customer, scopes: orders:read }} }}\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["test", "-c", "scopegate.yaml", "t.tests.yaml"])
        .current_dir(dir.path())
        .env("CLI_TEST_SECRET", secret)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.lines().last(), Some("1 passed, 0 failed"));
}

/// The policy's routes as written: (path, methods, scopes, any_scopes, public).
type RouteShape = (String, Vec<String>, Vec<String>, Vec<Vec<String>>, bool);

fn route_shapes(file: &Path, text: &str) -> (Vec<RouteShape>, Vec<(String, String)>) {
    let raw: scopegate::policy::raw::RawPolicy =
        scopegate::yaml::from_str(file, text).unwrap_or_else(|e| panic!("{e}"));
    let values = |v: &[serde_saphyr::Spanned<String>]| -> Vec<String> {
        v.iter().map(|s| s.value.clone()).collect()
    };
    let routes = raw
        .routes
        .iter()
        .map(|r| {
            let r = &r.value;
            (
                r.path.value.clone(),
                r.methods.as_deref().map(values).unwrap_or_default(),
                values(&r.scopes),
                r.any_scopes.iter().map(|g| values(g)).collect(),
                r.public,
            )
        })
        .collect();
    let catalog = raw
        .scopes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.value))
        .collect();
    (routes, catalog)
}

/// `policies/mittwald.openapi.yaml` regenerates mittwald.yaml's routes and catalog; the
/// one hand-added line (`mode: shadow` on the container stacks) has no OpenAPI spelling
/// and is not compared.
#[test]
fn openapi_regenerates_the_mittwald_routes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = scopegate(
        root,
        &[
            "openapi",
            "policies/mittwald.openapi.yaml",
            "--actions",
            "read-write-delete",
        ],
    );
    let generated = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("warning"),
        "nothing is left out: {}",
        text(&out.stderr)
    );
    // It is a valid policy on its own.
    scopegate::policy::Policy::from_bytes(Path::new("generated.yaml"), generated.as_bytes())
        .unwrap_or_else(|e| panic!("{e}\n{generated}"));
    let (got_routes, got_catalog) = route_shapes(Path::new("generated.yaml"), &generated);
    let hand = std::fs::read_to_string(root.join("policies/mittwald.yaml")).unwrap();
    let (want_routes, want_catalog) = route_shapes(Path::new("mittwald.yaml"), &hand);
    assert_eq!(got_routes, want_routes);
    assert_eq!(got_catalog, want_catalog);
}

#[test]
fn openapi_refuses_a_swagger_2_document() {
    let dir = workspace(&[("s.json", "{\"swagger\": \"2.0\", \"paths\": {}}")]);
    let out = scopegate(dir.path(), &["openapi", "s.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("s.json: not an OpenAPI 3.0 or 3.1 document"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn check_prints_warnings_and_still_exits_0() {
    let dir = workspace(&[(
        "p.yaml",
        &format!("{POLICY}  - {{ path: /orders/new, methods: [POST], scopes: [orders:delete] }}\n"),
    )]);
    let out = scopegate(dir.path(), &["check", "--policy", "p.yaml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "p.yaml:9:5: warning: routes[0] (/orders/{id}) is shadowed for GET, HEAD, DELETE"
        ),
        "{stderr}"
    );
    assert!(
        text(&out.stdout).starts_with("ok: p.yaml (2 routes"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).trim_end().ends_with("), 1 warning"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn check_exits_1_with_located_errors() {
    let dir = workspace(&[(
        "p.yaml",
        &POLICY.replace("scopes: [orders:read]", "scopes: [orders:raed]"),
    )]);
    let out = scopegate(dir.path(), &["check", "--policy", "p.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(
            "p.yaml:7:14: roles.customer.scopes: scope `orders:raed` is not in the catalog"
        ),
        "{}",
        text(&out.stderr)
    );
}

/// `scopegate explain` as run from a shell: its last lines, its exit code (0 allowed,
/// 1 denied, 2 error) and its JSON form.
#[test]
fn explain_prints_the_decision_and_exits_by_verdict() {
    let dir = workspace(&[
        ("orders.yaml", POLICY),
        (
            "scopegate.yaml",
            "upstream: { url: \"http://127.0.0.1:9\" }\npolicy: orders.yaml\n",
        ),
    ]);
    let explain = |args: &[&str]| {
        let mut all = vec!["explain", "-c", "scopegate.yaml"];
        all.extend_from_slice(args);
        let out = scopegate(dir.path(), &all);
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };

    let (code, stdout, stderr) = explain(&["GET", "/orders/7", "--role", "customer"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("GET /orders/7 -> 200 allow\n"), "{stdout}");

    let (code, stdout, _) = explain(&["delete", "/orders/7", "--role", "customer"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("DELETE /orders/7 -> 403 deny (insufficient_scope)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("missing scopes: orders:delete\n"),
        "{stdout}"
    );

    let (code, stdout, _) = explain(&["GET", "/orders/7", "--json"]);
    assert_eq!(code, Some(1), "{stdout}");
    let answer: serde_json::Value = serde_json::from_str(&stdout).expect("JSON answer");
    assert_eq!(answer["decision"], "deny", "{stdout}");
    assert_eq!(answer["status"], 401, "{stdout}");

    std::fs::write(dir.path().join("orders.yaml"), "version: 1\nroutes: [").unwrap();
    let (code, stdout, stderr) = explain(&["GET", "/orders/7", "--role", "customer"]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("orders.yaml:"), "{stderr}");
}
