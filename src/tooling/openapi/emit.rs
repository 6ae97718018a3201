//! The derived policy as YAML text, written by hand: stable order (catalog by name,
//! routes in document order, methods in the usual order), quoting only where YAML needs
//! it, and comments saying where the policy came from and what was left out.

use std::fmt::Write;

use super::{Generated, Requirement};

/// The whole policy file.
pub fn emit(g: &Generated, source: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Derived by `scopegate openapi --actions {}` from {}{}.",
        g.actions.name(),
        if source.is_empty() {
            "an OpenAPI document"
        } else {
            source
        },
        g.title
            .as_deref()
            .map(|t| format!(" ({})", one_line(t)))
            .unwrap_or_default()
    );
    out.push_str(
        "# No roles: every authenticated caller holds every scope its token grants.\n\
         # Add roles, role gates and `require` constraints by hand.\n",
    );
    for note in &g.notes {
        let _ = writeln!(out, "# note: {}", one_line(note));
    }
    out.push_str("version: 1\n\nactions:\n");
    for (method, word) in g.actions.map() {
        let _ = writeln!(out, "  {method}: {word}");
    }
    out.push_str("\nscopes:\n");
    if g.catalog.is_empty() {
        out.push_str("  {}\n");
    }
    for (name, description) in &g.catalog {
        let _ = writeln!(out, "  {}: {}", scalar(name), quoted(description));
    }
    out.push_str("\nroutes:\n");
    if g.routes.is_empty() {
        out.push_str("  []\n");
    }
    for r in &g.routes {
        let _ = writeln!(out, "  - path: {}", path(&r.path));
        let _ = writeln!(out, "    methods: [{}]", r.methods.join(", "));
        match &r.requirement {
            Requirement::Public => out.push_str("    public: true\n"),
            Requirement::Template(domain) => {
                let _ = writeln!(
                    out,
                    "    scopes: [{}]",
                    scalar(&format!("{domain}:{{action}}"))
                );
            }
            Requirement::Scopes(all) => {
                let _ = writeln!(out, "    scopes: {}", list(all));
            }
            Requirement::AnyScopes(groups) => {
                let groups: Vec<String> = groups.iter().map(|g| list(g)).collect();
                let _ = writeln!(out, "    any_scopes: [{}]", groups.join(", "));
            }
        }
    }
    out.push_str("\nunmatched: deny\n");
    out
}

fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| scalar(s)).collect();
    format!("[{}]", items.join(", "))
}

/// A scalar plain when YAML reads it back as the same string, double-quoted otherwise.
pub fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | ':'))
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/')
        && !s.ends_with(':')
        && !s.contains("://")
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain { s.to_string() } else { quoted(s) }
}

/// A path template: plain in block context (where `{` and `}` inside a scalar are
/// ordinary characters) when it is made of path characters only.
pub fn path(p: &str) -> String {
    let plain = p.starts_with('/')
        && p.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '{' | '}' | '~')
        });
    if plain { p.to_string() } else { quoted(p) }
}

/// A double-quoted scalar; JSON's escapes are valid YAML escapes.
pub fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
