use std::path::Path;

use super::*;

fn warnings(text: &str) -> Vec<Warning> {
    let policy = Policy::from_bytes(Path::new("p.yaml"), text.as_bytes())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    lint(&policy, Path::new("p.yaml"), text)
}

fn lines(ws: &[Warning]) -> Vec<String> {
    ws.iter().map(ToString::to_string).collect()
}

const CATALOG: &str = "version: 1\nscopes:\n  a:read: r\n  a:write: w\n  a:delete: d\n";

#[test]
fn a_static_path_without_the_method_shadows_the_parameter_route() {
    let text = format!(
        "{CATALOG}routes:\n\
         \x20 - path: /a/{{id}}\n    methods: [GET, DELETE]\n    scopes: [\"a:{{action}}\"]\n\
         \x20 - path: /a/new\n    methods: [POST]\n    scopes: [a:write]\n"
    );
    let ws = warnings(&text);
    assert_eq!(
        lines(&ws),
        [
            "p.yaml:7:5: warning: routes[0] (/a/{id}) is shadowed for GET, HEAD, DELETE: paths it shares with /a/new go to that more specific path, which has no rule for GET, HEAD, DELETE, so they get 405"
        ]
    );
    assert_eq!(ws[0].kind, Kind::ShadowedRoute);
}

#[test]
fn a_catch_all_is_shadowed_by_a_static_route_lacking_the_method() {
    let text = format!(
        "{CATALOG}routes:\n\
         \x20 - {{ path: \"/files/{{*rest}}\", methods: [GET, DELETE], scopes: [\"a:{{action}}\"] }}\n\
         \x20 - {{ path: /files/docs/readme, methods: [GET], scopes: [a:write] }}\n"
    );
    let ws = warnings(&text);
    assert_eq!(ws.len(), 1, "{:?}", lines(&ws));
    assert_eq!(ws[0].kind, Kind::ShadowedRoute);
    assert!(
        ws[0].at.message.contains("shadowed for DELETE"),
        "{}",
        ws[0]
    );
}

#[test]
fn a_more_specific_route_with_the_same_requirements_is_redundant() {
    let text = format!(
        "{CATALOG}routes:\n\
         \x20 - {{ path: \"/a/{{id}}\", methods: [GET], scopes: [a:read] }}\n\
         \x20 - {{ path: /a/special, methods: [GET], scopes: [a:read] }}\n\
         \x20 - {{ path: /a/other, methods: [GET], scopes: [a:write] }}\n\
         \x20 - {{ path: /b, methods: [DELETE], scopes: [a:delete] }}\n"
    );
    let ws = warnings(&text);
    assert_eq!(ws.len(), 1, "{:?}", lines(&ws));
    assert_eq!(ws[0].kind, Kind::RedundantRoute);
    assert_eq!(
        ws[0].to_string(),
        "p.yaml:8:5: warning: routes[1] (/a/special) is redundant for GET, HEAD: /a/{id} would decide its paths with exactly the same requirements"
    );
}

#[test]
fn specialising_routes_are_not_warned_about() {
    // A static sibling with every method and its own requirements, and disjoint
    // patterns: the ordinary way to write a policy.
    let text = format!(
        "{CATALOG}roles:\n  r: {{ scopes: [\"a:*\"] }}\nroutes:\n\
         \x20 - {{ path: \"/a/{{id}}\", methods: [GET, DELETE], scopes: [\"a:{{action}}\"] }}\n\
         \x20 - {{ path: /a/new, methods: [GET, DELETE], scopes: [a:write] }}\n\
         \x20 - {{ path: \"/a/{{id}}/x\", methods: [POST], scopes: [a:write] }}\n"
    );
    assert_eq!(lines(&warnings(&text)), Vec::<String>::new());
}

#[test]
fn catalog_scopes_no_route_requires() {
    let text = format!(
        "{CATALOG}routes:\n  - {{ path: /a, methods: [GET, POST], scopes: [\"a:{{action}}\"] }}\n"
    );
    let ws = warnings(&text);
    assert_eq!(
        lines(&ws),
        ["p.yaml:5:13: warning: scopes: `a:delete` is in the catalog but no route requires it"]
    );
    assert_eq!(ws[0].kind, Kind::UnusedScope);
}

#[test]
fn wildcards_that_match_no_catalog_scope() {
    let text = format!(
        "{CATALOG}roles:\n  r:\n    scopes: [\"a:*\", \"b:*\", \"*\"]\n    deny: [\"ab*\"]\nroutes:\n  - {{ path: /a, scopes: [\"a:{{action}}\"] }}\n"
    );
    let ws = warnings(&text);
    assert_eq!(
        lines(&ws),
        [
            "p.yaml:8:21: warning: roles.r.scopes: `b:*` matches no catalog scope",
            "p.yaml:9:12: warning: roles.r.deny: `ab*` matches no catalog scope",
        ]
    );
    assert!(ws.iter().all(|w| w.kind == Kind::DeadWildcard));
}

#[test]
fn role_attribute_sources_that_no_role_provides() {
    let text = format!(
        "{CATALOG}roles:\n  r: {{ scopes: [\"a:*\"], attributes: {{ projects: [p1] }} }}\nroutes:\n\
         \x20 - path: \"/p/{{projectId}}/{{teamId}}\"\n    scopes: [\"a:{{action}}\"]\n    require:\n\
         \x20     projectId: {{ in: [role:projects] }}\n\
         \x20     teamId: {{ in: [role:teams, claim:teams] }}\n"
    );
    let ws = warnings(&text);
    assert_eq!(
        lines(&ws),
        [
            "p.yaml:13:15: warning: routes[0] (/p/{projectId}/{teamId}): require.teamId: no role has the attribute `teams`, so `role:teams` never allows anything"
        ]
    );
    assert_eq!(ws[0].kind, Kind::UnprovidedAttribute);
}

#[test]
fn partly_overlapping_patterns_are_decided_by_the_router() {
    // `/a/c/b` matches both; the static `c` comes first, so the first route never
    // sees DELETE /a/c/b.
    let text = format!(
        "{CATALOG}routes:\n\
         \x20 - {{ path: \"/a/{{x}}/b\", methods: [GET, DELETE], scopes: [\"a:{{action}}\"] }}\n\
         \x20 - {{ path: \"/a/c/{{y}}\", methods: [GET], scopes: [a:write] }}\n"
    );
    let ws = warnings(&text);
    assert_eq!(ws.len(), 1, "{:?}", lines(&ws));
    assert!(
        ws[0].at.message.starts_with(
            "routes[0] (/a/{x}/b) is shadowed for DELETE: paths it shares with /a/c/{y}"
        ),
        "{}",
        ws[0]
    );
}

#[test]
fn the_example_policies_have_no_warnings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for name in [
        "orders", "make", "mittwald", "keygen", "evrythng", "onelogin",
    ] {
        let path = dir.join(format!("{name}.yaml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let policy = Policy::from_bytes(&path, text.as_bytes()).unwrap();
        assert_eq!(
            lines(&lint(&policy, &path, &text)),
            Vec::<String>::new(),
            "{name}"
        );
    }
}
