//! Reading scopes, roles and the subject out of a verified claim map.
//!
//! IdPs disagree on where these live (`scope` vs `scp`, Keycloak's nested
//! `realm_access.roles`, URL-named custom claims), so claims are found by configurable
//! paths and both string and array spellings are accepted.

use serde_json::{Map, Value};

/// Finds the claim at `dotted`: the whole name first (some IdPs use dots or URLs in
/// claim names, e.g. `https://example.com/roles`), then the path split at dots through
/// nested objects. JSON `null` counts as absent.
pub fn lookup<'a>(claims: &'a Map<String, Value>, dotted: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(dotted) {
        return non_null(v);
    }
    let mut parts = dotted.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    non_null(current)
}

fn non_null(v: &Value) -> Option<&Value> {
    (!v.is_null()).then_some(v)
}

/// A claim as a list: a space-separated string (OAuth's `scope`) or an array of strings
/// (`scp`, `roles`). Any other type yields an empty list, so a malformed claim grants
/// nothing rather than failing open.
pub fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => s.split_ascii_whitespace().map(String::from).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

/// The first of `paths` present in `claims`.
pub(crate) fn first_present<'a>(
    claims: &'a Map<String, Value>,
    paths: &[String],
) -> Option<&'a Value> {
    paths.iter().find_map(|p| lookup(claims, p))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test claims are objects"),
        }
    }

    #[test]
    fn nested_and_whole_names() {
        let c = map(json!({
            "realm_access": { "roles": ["admin", "user"] },
            "https://example.com/roles": ["partner"],
            "a.b": "whole",
            "a": { "b": "nested" },
        }));
        assert_eq!(
            lookup(&c, "realm_access.roles"),
            Some(&json!(["admin", "user"]))
        );
        assert_eq!(
            lookup(&c, "https://example.com/roles"),
            Some(&json!(["partner"]))
        );
        assert_eq!(lookup(&c, "a.b"), Some(&json!("whole")), "whole key wins");
        assert_eq!(lookup(&c, "realm_access.missing"), None);
        assert_eq!(lookup(&c, "realm_access.roles.x"), None);
        assert_eq!(lookup(&c, "nope"), None);
        assert_eq!(lookup(&c, ""), None);
    }

    #[test]
    fn null_is_absent() {
        let c = map(json!({ "scope": null, "scp": ["a"] }));
        assert_eq!(lookup(&c, "scope"), None);
        let paths = ["scope".to_string(), "scp".to_string()];
        assert_eq!(first_present(&c, &paths), Some(&json!(["a"])));
    }

    #[test]
    fn strings_from_both_spellings() {
        assert_eq!(strings(&json!("a:read  b:write")), ["a:read", "b:write"]);
        assert_eq!(
            strings(&json!(["a:read", "b:write"])),
            ["a:read", "b:write"]
        );
        assert_eq!(strings(&json!("")), Vec::<String>::new());
        assert_eq!(strings(&json!(["a", 1, null, ""])), ["a"]);
        assert!(strings(&json!(42)).is_empty());
        assert!(strings(&json!({ "a": 1 })).is_empty());
        assert!(strings(&json!(true)).is_empty());
    }
}
