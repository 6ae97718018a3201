//! Operations → routes, by the rules of SPEC §7.
//!
//! Per operation: OAuth2 (or OpenID Connect) scopes from its `security` (or the
//! document's global `security`) are its scopes, one requirement object giving
//! `scopes`, several giving `any_scopes`; `security: []` makes it public; otherwise its
//! scope is `<domain>:{action}`, the domain being its first tag or its `operationId`
//! up to the first `-`, in lower-case kebab. Operations of one path with the same
//! requirement become one route listing their methods.

use std::collections::BTreeMap;

use super::document::Node;
use super::{Actions, Generated, Requirement, Route};

/// OpenAPI's operation keys, in the order routes list their methods.
const METHODS: [&str; 8] = [
    "get", "head", "post", "put", "patch", "delete", "options", "trace",
];

/// What the document's security schemes say.
struct Schemes {
    /// Names of the schemes whose requirement lists are scopes (oauth2, openIdConnect).
    scoped: Vec<String>,
    /// Every other scheme name (API keys, HTTP auth): no scopes to take.
    other: Vec<String>,
}

/// Builds the policy model of `root`; `notes` collects what was skipped and why.
pub fn derive(root: &Node, actions: Actions) -> Generated {
    let mut out = Generated {
        title: root
            .get("info")
            .and_then(|i| i.get("title"))
            .and_then(Node::as_str)
            .map(String::from),
        actions,
        catalog: BTreeMap::new(),
        routes: Vec::new(),
        notes: Vec::new(),
    };
    let schemes = schemes(root, &mut out);
    let global = root.get("security");
    let base = base_path(root, &mut out.notes);
    for (path, item) in root.get("paths").map(Node::entries).unwrap_or_default() {
        let item = match item.resolve(root) {
            Ok(i) => i,
            Err(e) => {
                out.notes.push(format!("{path}: skipped: {e}"));
                continue;
            }
        };
        if !whole_segment_params(path) {
            out.notes.push(format!(
                "{path}: skipped: a path parameter must be a whole segment, like `{{id}}`"
            ));
            continue;
        }
        let mut groups: Vec<(Requirement, Vec<String>)> = Vec::new();
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let upper = method.to_ascii_uppercase();
            let Some(req) = requirement(op, global, &schemes, actions, &upper, path, &mut out)
            else {
                continue;
            };
            match groups.iter_mut().find(|(r, _)| *r == req) {
                Some((_, methods)) => methods.push(upper),
                None => groups.push((req, vec![upper])),
            }
        }
        for (requirement, methods) in groups {
            out.routes.push(Route {
                path: format!("{base}{path}"),
                methods,
                requirement,
            });
        }
    }
    out
}

fn schemes(root: &Node, out: &mut Generated) -> Schemes {
    let mut s = Schemes {
        scoped: Vec::new(),
        other: Vec::new(),
    };
    let defined = root
        .get("components")
        .and_then(|c| c.get("securitySchemes"))
        .map(Node::entries)
        .unwrap_or_default();
    for (name, scheme) in defined {
        let scheme = match scheme.resolve(root) {
            Ok(s) => s,
            Err(e) => {
                out.notes
                    .push(format!("securitySchemes.{name}: ignored: {e}"));
                continue;
            }
        };
        match scheme.get("type").and_then(Node::as_str) {
            Some("oauth2") => {
                s.scoped.push(name.clone());
                for (_, flow) in scheme.get("flows").map(Node::entries).unwrap_or_default() {
                    for (scope, description) in
                        flow.get("scopes").map(Node::entries).unwrap_or_default()
                    {
                        let text = description.as_str().unwrap_or_default().trim();
                        out.catalog
                            .entry(scope.clone())
                            .or_insert_with(|| describe(text, scope));
                    }
                }
            }
            Some("openIdConnect") => s.scoped.push(name.clone()),
            _ => s.other.push(name.clone()),
        }
    }
    s
}

/// The path of the `servers` URLs (`https://api.example.com/v1` → `/v1`), which the
/// gateway sees in front of every documented path; empty when the servers name none
/// or disagree (with a note then).
fn base_path(root: &Node, notes: &mut Vec<String>) -> String {
    let paths: Vec<&str> = root
        .get("servers")
        .and_then(Node::as_seq)
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.get("url").and_then(Node::as_str))
        .map(|url| match url.find("://") {
            Some(i) => url[i + 3..].find('/').map_or("", |j| &url[i + 3 + j..]),
            None => url,
        })
        .map(|p| p.trim_end_matches('/'))
        .collect();
    let Some(first) = paths.first() else {
        return String::new();
    };
    if paths.iter().any(|p| p != first) {
        notes.push(
            "servers: their URLs have different paths, so routes are not prefixed with one".into(),
        );
        return String::new();
    }
    if first.contains(['{', '}']) {
        notes.push(format!(
            "servers: the URL path `{first}` has variables, so routes are not prefixed with it"
        ));
        return String::new();
    }
    if !first.is_empty() {
        notes.push(format!(
            "servers: every path is prefixed with the servers' base path `{first}`"
        ));
    }
    first.to_string()
}

/// One operation's requirement, or `None` (with a note) when it cannot be expressed.
fn requirement(
    op: &Node,
    global: Option<&Node>,
    schemes: &Schemes,
    actions: Actions,
    method: &str,
    path: &str,
    out: &mut Generated,
) -> Option<Requirement> {
    let where_ = format!("{method} {path}");
    let security = op.get("security").or(global).and_then(Node::as_seq);
    if security.is_some_and(<[Node]>::is_empty) {
        return Some(Requirement::Public);
    }
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut unscoped = false;
    for object in security.unwrap_or_default() {
        let mut group: Vec<String> = Vec::new();
        for (scheme, scopes) in object.entries() {
            if !schemes.scoped.contains(scheme) {
                if !schemes.other.contains(scheme) {
                    out.notes.push(format!(
                        "{where_}: security scheme `{scheme}` is not defined; its scopes are ignored"
                    ));
                }
                continue;
            }
            for scope in scopes
                .as_seq()
                .unwrap_or_default()
                .iter()
                .filter_map(Node::as_str)
            {
                if !group.iter().any(|g| g == scope) {
                    group.push(scope.to_string());
                }
            }
        }
        if group.is_empty() {
            unscoped = true;
        } else if !groups.contains(&group) {
            groups.push(group);
        }
    }
    if !groups.is_empty() {
        if unscoped {
            out.notes.push(format!(
                "{where_}: security alternatives without scopes are left out, so a scope is always required"
            ));
        }
        for scope in groups.iter().flatten() {
            if !usable_scope(scope) {
                out.notes.push(format!(
                    "{where_}: skipped: `{scope}` cannot be a scopegate scope (white space, `*`, `{{` or `}}`)"
                ));
                return None;
            }
            out.catalog
                .entry(scope.clone())
                .or_insert_with(|| format!("{scope} (not described in the document)"));
        }
        return Some(if groups.len() == 1 {
            Requirement::Scopes(groups.remove(0))
        } else {
            Requirement::AnyScopes(groups)
        });
    }
    let Some(domain) = domain(op) else {
        out.notes.push(format!(
            "{where_}: skipped: no OAuth2 scopes, no tag and no operationId to derive a scope from"
        ));
        return None;
    };
    let Some(action) = actions.word(method) else {
        out.notes.push(format!(
            "{where_}: skipped: the `{}` actions have no word for {method}",
            actions.name()
        ));
        return None;
    };
    let scope = format!("{domain}:{action}");
    out.catalog
        .entry(scope)
        .or_insert_with(|| format!("{action} {domain}"));
    Some(Requirement::Template(domain))
}

/// The first tag, else the `operationId` before its first `-`, as lower-case kebab.
fn domain(op: &Node) -> Option<String> {
    let tag = op
        .get("tags")
        .and_then(Node::as_seq)
        .and_then(|t| t.first())
        .and_then(Node::as_str);
    let from_id = || {
        op.get("operationId")
            .and_then(Node::as_str)
            .map(|id| id.split('-').next().unwrap_or(id))
    };
    tag.into_iter()
        .chain(from_id())
        .map(kebab)
        .find(|d| !d.is_empty())
}

/// `Cron Jobs` → `cron-jobs`, `SSH/SFTP User` → `ssh-sftp-user`: lower-case, every
/// run of other characters one `-`. Camel case is not split (`CronJob` → `cronjob`).
pub fn kebab(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

fn describe(text: &str, scope: &str) -> String {
    if text.is_empty() {
        scope.to_string()
    } else {
        text.to_string()
    }
}

fn usable_scope(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || matches!(c, '*' | '{' | '}'))
}

/// True when every `{param}` of an OpenAPI path is a whole segment, as scopegate's
/// patterns need (`/files/{name}.json` is not).
fn whole_segment_params(path: &str) -> bool {
    path.split('/').all(|seg| {
        let inner = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
        match inner {
            Some(name) => !name.is_empty() && !name.contains(['{', '}', '*']),
            None => !seg.contains(['{', '}']),
        }
    })
}
