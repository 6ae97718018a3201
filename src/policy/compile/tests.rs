//! Every validation rule of the policy format, each with the position it reports.

use std::path::Path;

use crate::policy::Policy;

/// The errors of a policy that must not compile, as `line:col: message` strings.
fn errors(text: &str) -> Vec<String> {
    match Policy::from_bytes(Path::new("p.yaml"), text.as_bytes()) {
        Ok(_) => panic!("compiled, but should not have:\n{text}"),
        Err(crate::policy::PolicyError::Invalid(errs)) => errs
            .iter()
            .map(|e| format!("{}:{}: {}", e.pos.line, e.pos.col, e.message))
            .collect(),
        Err(e) => panic!("unexpected {e}"),
    }
}

fn assert_error(text: &str, at: &str, contains: &str) {
    let errs = errors(text);
    assert!(
        errs.iter()
            .any(|e| e.starts_with(at) && e.contains(contains)),
        "wanted `{at} ..{contains}..`, got {errs:#?}"
    );
}

const HEAD: &str = "version: 1\nscopes: { a:read: r, a:write: w, a:delete: d }\n";

#[test]
fn yaml_syntax_errors_are_located() {
    assert_error("version: 1\nroutes: [\n", "", "");
    let e = errors("version: 1\nroutes: [\n");
    assert!(e[0].starts_with("2:") || e[0].starts_with("3:"), "{e:?}");
}

#[test]
fn unknown_and_duplicate_keys_are_refused() {
    assert_error(
        "version: 1\nroutes:\n  - path: /a\n    scope: [a:read]\n",
        "4:5",
        "unknown field `scope`",
    );
    assert_error("version: 1\nversion: 1\n", "2:1", "duplicate mapping key");
}

#[test]
fn unsupported_version() {
    assert_error("version: 2\n", "1:10", "unsupported version");
}

#[test]
fn duplicate_path_and_method() {
    let text = format!(
        "{HEAD}routes:\n  - {{ path: /a, methods: [GET], scopes: [a:read] }}\n  - {{ path: /a, methods: [POST, GET], scopes: [a:read] }}\n"
    );
    assert_error(&text, "5:5", "duplicate route for GET /a (also routes[0])");
}

#[test]
fn the_same_path_with_other_methods_is_fine() {
    let text = format!(
        "{HEAD}routes:\n  - {{ path: /a, methods: [GET], scopes: [a:read] }}\n  - {{ path: /a, methods: [POST], scopes: [a:write] }}\n"
    );
    assert!(Policy::from_bytes(Path::new("p.yaml"), text.as_bytes()).is_ok());
}

#[test]
fn conflicting_path_patterns() {
    let text = format!(
        "{HEAD}routes:\n  - {{ path: \"/a/{{id}}\", scopes: [a:read], methods: [GET] }}\n  - {{ path: \"/a/{{name}}\", scopes: [a:read], methods: [GET] }}\n"
    );
    assert_error(&text, "5:13", "path `/a/{name}`");
}

#[test]
fn scopes_outside_the_catalog() {
    let text = format!("{HEAD}routes:\n  - {{ path: /a, methods: [GET], scopes: [b:read] }}\n");
    assert_error(&text, "4:42", "scope `b:read` is not in the catalog");
    let text = format!("{HEAD}roles:\n  r: {{ scopes: [c:read] }}\n");
    assert_error(
        &text,
        "4:17",
        "roles.r.scopes: scope `c:read` is not in the catalog",
    );
}

#[test]
fn template_expansions_must_be_in_the_catalog() {
    let text =
        "version: 1\nscopes: { a:read: r }\nroutes:\n  - { path: /a, scopes: [\"a:{action}\"] }\n";
    assert_error(text, "4:26", "scope `a:write` (POST) is not in the catalog");
}

#[test]
fn templates_need_an_action_word() {
    let text = "version: 1\nactions: { GET: read }\nroutes:\n  - { path: /a, methods: [GET, OPTIONS], scopes: [\"a:{action}\"] }\n";
    assert_error(text, "4:", "needs an action for OPTIONS");
}

#[test]
fn unknown_roles_everywhere() {
    let text = format!(
        "{HEAD}default_role: ghost\nroles:\n  r: {{ inherits: [phantom] }}\nroutes:\n  - {{ path: /a, roles: [spectre], bypass_roles: [wraith], methods: [GET] }}\n"
    );
    let errs = errors(&text);
    for name in ["ghost", "phantom", "spectre", "wraith"] {
        assert!(
            errs.iter()
                .any(|e| e.contains(&format!("unknown role `{name}`"))),
            "{name}: {errs:#?}"
        );
    }
}

#[test]
fn inheritance_cycles() {
    let text = "version: 1\nroles:\n  a: { inherits: [b] }\n  b: { inherits: [c] }\n  c: { inherits: [a] }\n";
    assert_error(text, "3:", "inheritance cycle a -> b -> c -> a");
}

#[test]
fn require_on_a_missing_parameter() {
    let text =
        "version: 1\nroutes:\n  - path: /a/{id}\n    require: { user: { equals: claim:sub } }\n";
    assert_error(text, "4:", "the path has no parameter `user`");
}

#[test]
fn require_sources_must_be_known() {
    let text = "version: 1\nroutes:\n  - path: /a/{id}\n    require: { id: { in: [header:x] } }\n";
    assert_error(
        text,
        "4:",
        "`header:x` is not `role:<attribute>` or `claim:<name>`",
    );
}

#[test]
fn paths_that_could_never_match_are_refused() {
    for (path, msg) in [
        ("/a//b", "not in normal form"),
        ("/a/./b", "not in normal form"),
        ("/a/%7Eb", "not in normal form"),
        ("/a/%2Fb", "no request could match it"),
        ("a/b", "a path starts with `/`"),
        ("/a/x{id}", "a parameter must be a whole segment"),
    ] {
        let text = format!("version: 1\nroutes:\n  - {{ path: \"{path}\" }}\n");
        assert_error(&text, "3:", msg);
    }
}

#[test]
fn public_routes_cannot_require_anything() {
    let text = "version: 1\nroutes:\n  - { path: /a, public: true, scopes: [x] }\n";
    assert_error(text, "3:", "a public route cannot also require");
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let text = format!(
        "{HEAD}routes:\n  - {{ path: /a, methods: [GET], scopes: [x:y] }}\n  - {{ path: /b, methods: [GET], scopes: [z:w] }}\n"
    );
    assert_eq!(errors(&text).len(), 2);
}

#[test]
fn head_follows_get_and_allow_lists_it() {
    let text =
        format!("{HEAD}routes:\n  - {{ path: /a, methods: [GET, POST], scopes: [a:read] }}\n");
    let p = Policy::from_bytes(Path::new("p.yaml"), text.as_bytes()).unwrap();
    let crate::policy::Lookup::MethodNotAllowed(entry) = p.lookup(&http::Method::PUT, "/a") else {
        panic!("PUT should be 405");
    };
    assert_eq!(entry.allow, "GET, HEAD, POST");
}

#[test]
fn version_is_the_sha256_of_the_bytes() {
    let p = Policy::from_bytes(Path::new("p.yaml"), b"version: 1\n").unwrap();
    assert_eq!(
        p.version,
        "09bfcc6a14b83e2192b8673677725c84883ee9cd0c70e45c9ec09daa8f2b2847"
    );
}
