//! Scope names and wildcard patterns.
//!
//! A pattern ending in `*` matches by prefix (`orders:*`, `*`); any other pattern matches
//! exactly. Patterns appear in role rights, in `deny` and in token scopes alike, so one
//! matcher serves all three and matching never allocates.

/// True when `pattern` (exact, or a prefix ending in `*`) covers `scope`.
#[inline]
pub fn covers(pattern: &str, scope: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => scope.starts_with(prefix),
        None => pattern == scope,
    }
}

/// True when the pattern is a wildcard rather than one scope.
#[inline]
pub fn is_wildcard(pattern: &str) -> bool {
    pattern.ends_with('*')
}

/// Why a scope name or pattern is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScopeSyntax {
    #[error("empty scope")]
    Empty,
    #[error("scopes may not contain white space (tokens list scopes space-separated)")]
    WhiteSpace,
    #[error("`*` may only end a scope pattern")]
    InnerStar,
    #[error("a route requires concrete scopes, not wildcards")]
    WildcardRequired,
    #[error("unknown placeholder: only `{{action}}` may appear in a scope")]
    Placeholder,
}

/// Checks a pattern written in a role's `scopes`/`deny`.
pub fn check_pattern(pattern: &str) -> Result<(), ScopeSyntax> {
    check_chars(pattern)?;
    if pattern.contains('{') || pattern.contains('}') {
        return Err(ScopeSyntax::Placeholder);
    }
    match pattern.find('*') {
        Some(i) if i + 1 != pattern.len() => Err(ScopeSyntax::InnerStar),
        _ => Ok(()),
    }
}

/// Checks a scope a route requires: concrete, maybe with `{action}` placeholders.
pub fn check_required(template: &str) -> Result<(), ScopeSyntax> {
    check_chars(template)?;
    if template.contains('*') {
        return Err(ScopeSyntax::WildcardRequired);
    }
    // Every brace must open an `{action}`; searched by hand, as this runs for every rule.
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        match rest[i..].strip_prefix(ACTION) {
            Some(after) => rest = after,
            None => return Err(ScopeSyntax::Placeholder),
        }
    }
    Ok(())
}

/// The placeholder replaced by the method's action word.
pub const ACTION: &str = "{action}";

/// Fills `{action}` in a required scope; `None` when it has a placeholder but the
/// method has no action word to fill it with.
pub fn expand(template: &str, action: Option<&str>) -> Option<String> {
    if !template.contains(ACTION) {
        return Some(template.to_string());
    }
    action.map(|a| template.replace(ACTION, a))
}

/// Like [`expand`] with an action word, into a reused buffer: the compiler expands a
/// template for every method of every templated route.
pub fn expand_into(out: &mut String, template: &str, action: &str) {
    out.clear();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        match rest[i..].strip_prefix(ACTION) {
            Some(after) => {
                out.push_str(action);
                rest = after;
            }
            None => {
                out.push('{');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
}

fn check_chars(s: &str) -> Result<(), ScopeSyntax> {
    if s.is_empty() {
        return Err(ScopeSyntax::Empty);
    }
    if s.chars().any(char::is_whitespace) {
        return Err(ScopeSyntax::WhiteSpace);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The hand-written searches agree with their plain definitions.
        #[test]
        fn placeholders_are_found_as_by_replace(t in "[{}actio:nx]{0,24}") {
            let by_replace = t.replace(ACTION, "").contains(['{', '}']);
            let checked = check_required(&t);
            if !t.is_empty() {
                prop_assert_eq!(checked == Err(ScopeSyntax::Placeholder), by_replace);
            }
            let mut out = String::new();
            expand_into(&mut out, &t, "read");
            prop_assert_eq!(out, t.replace(ACTION, "read"));
        }
    }

    #[test]
    fn patterns_cover_by_prefix_or_exactly() {
        assert!(covers("*", "orders:read"));
        assert!(covers("orders:*", "orders:read"));
        assert!(!covers("orders:*", "ordersx:read"));
        assert!(!covers("orders:*", "orders"));
        assert!(covers("orders:read", "orders:read"));
        assert!(!covers("orders:read", "orders:readx"));
        assert!(!covers("orders:rea", "orders:read"));
    }

    #[test]
    fn syntax_is_checked() {
        assert_eq!(check_pattern("a*b"), Err(ScopeSyntax::InnerStar));
        assert_eq!(check_pattern("a b"), Err(ScopeSyntax::WhiteSpace));
        assert_eq!(check_pattern(""), Err(ScopeSyntax::Empty));
        assert_eq!(check_pattern("x:{action}"), Err(ScopeSyntax::Placeholder));
        assert_eq!(check_pattern("orders:*"), Ok(()));
        assert_eq!(
            check_required("orders:*"),
            Err(ScopeSyntax::WildcardRequired)
        );
        assert_eq!(
            check_required("orders:{verb}"),
            Err(ScopeSyntax::Placeholder)
        );
        assert_eq!(check_required("orders:{action}"), Ok(()));
        assert_eq!(check_required("o:{action}}"), Err(ScopeSyntax::Placeholder));
        assert_eq!(
            check_required("o:{act{action}ion}"),
            Err(ScopeSyntax::Placeholder)
        );
    }

    #[test]
    fn templates_expand_with_the_action_word() {
        assert_eq!(
            expand("orders:{action}", Some("read")),
            Some("orders:read".into())
        );
        assert_eq!(expand("orders:read", None), Some("orders:read".into()));
        assert_eq!(expand("orders:{action}", None), None);
        let mut out = String::from("stale");
        for template in ["{action}:o:{action}", "o:{act", "{{action}}", "o", ""] {
            expand_into(&mut out, template, "read");
            assert_eq!(
                Some(out.clone()),
                expand(template, Some("read")),
                "{template}"
            );
        }
    }
}
