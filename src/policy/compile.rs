//! Validation and compilation: `RawPolicy` → `Policy`.
//!
//! Every rule of the policy format is checked here, and every problem is reported (not
//! just the first) with the `file:line:col` of the item at fault. Nothing that fails
//! here ever reaches the request path.

mod intern;
mod roles;
mod routes;

use std::collections::BTreeMap;
use std::path::Path;

use http::Method;
use serde_saphyr::Spanned;

use super::raw::RawPolicy;
use super::{Policy, scope};
use crate::yaml::{self, Located, Pos};

/// Collects errors while compiling, so one run reports them all.
struct Cx<'f> {
    file: &'f Path,
    errors: Vec<Located>,
}

impl Cx<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(Located::new(self.file, pos, message));
    }

    fn at<T>(&mut self, spanned: &Spanned<T>, message: impl Into<String>) {
        self.error(Pos::of(spanned), message);
    }
}

/// The catalog and the action words: what routes and roles are checked against.
struct Vocabulary {
    actions: Vec<(Method, String)>,
    catalog: Option<BTreeMap<String, String>>,
}

impl Vocabulary {
    fn action(&self, method: &Method) -> Option<&str> {
        self.actions
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, a)| a.as_str())
    }

    fn in_catalog(&self, scope: &str) -> bool {
        self.catalog.as_ref().is_none_or(|c| c.contains_key(scope))
    }
}

/// The methods `actions` maps when a policy does not say.
const DEFAULT_ACTIONS: [(&str, &str); 6] = [
    ("GET", "read"),
    ("HEAD", "read"),
    ("POST", "write"),
    ("PUT", "write"),
    ("PATCH", "write"),
    ("DELETE", "delete"),
];

pub(super) fn compile(file: &Path, bytes: &[u8]) -> Result<Policy, Vec<Located>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        vec![Located::new(
            file,
            Pos::default(),
            format!("not UTF-8 (byte {})", e.valid_up_to()),
        )]
    })?;
    let RawPolicy {
        version,
        mode,
        actions,
        scopes,
        default_role,
        roles: raw_roles,
        routes: raw_routes,
        unmatched,
    } = yaml::from_str(file, text).map_err(|e| vec![e])?;
    let mut cx = Cx {
        file,
        errors: Vec::new(),
    };
    if version.value != 1 {
        cx.at(
            &version,
            "unsupported version (this scopegate reads `version: 1`)",
        );
    }
    let vocab = vocabulary(&mut cx, actions.as_ref(), scopes);
    let roles = roles::compile(&mut cx, raw_roles.as_ref(), &vocab);
    drop(raw_roles);
    let default_role = default_role.as_ref().and_then(|d| {
        let id = roles.ids.get(d.value.as_str()).copied();
        if id.is_none() {
            cx.at(d, format!("default_role: unknown role `{}`", d.value));
        }
        id
    });
    let (routes, required) = routes::compile(&mut cx, raw_routes, &vocab, &roles.ids);
    if !cx.errors.is_empty() {
        cx.errors.sort_by(|a, b| {
            (a.pos.line, a.pos.col, &a.message).cmp(&(b.pos.line, b.pos.col, &b.message))
        });
        // A literal scope is checked once per method; say it once.
        cx.errors.dedup();
        return Err(cx.errors);
    }
    let known_scopes = match &vocab.catalog {
        Some(c) => c.keys().map(|s| s.as_str().into()).collect(),
        None => {
            let mut all: Vec<Box<str>> = required.into_iter().chain(roles.literals).collect();
            all.sort_unstable();
            all.dedup();
            all.into_boxed_slice()
        }
    };
    Ok(Policy {
        mode,
        unmatched,
        version: crate::hex::sha256(bytes),
        file: file.to_path_buf(),
        router: routes.router,
        paths: routes.paths,
        routes: routes.routes,
        roles: roles.roles,
        role_ids: roles.ids,
        default_role,
        catalog: vocab.catalog,
        known_scopes,
    })
}

/// Checks `actions` and the catalog; the catalog's entries are moved, not copied.
fn vocabulary(
    cx: &mut Cx,
    raw_actions: Option<&BTreeMap<String, Spanned<String>>>,
    raw_scopes: Option<BTreeMap<String, Spanned<String>>>,
) -> Vocabulary {
    let mut actions = Vec::new();
    match raw_actions {
        Some(map) => {
            for (method, word) in map {
                match Method::from_bytes(method.as_bytes()) {
                    Ok(m) if method.bytes().all(|b| b.is_ascii_uppercase()) => {
                        if scope::check_pattern(&word.value).is_err() || word.value.contains('*') {
                            cx.at(
                                word,
                                format!(
                                    "actions.{method}: `{}` is not a usable scope word",
                                    word.value
                                ),
                            );
                        }
                        actions.push((m, word.value.clone()));
                    }
                    _ => cx.at(
                        word,
                        format!("actions: `{method}` is not an upper-case HTTP method"),
                    ),
                }
            }
        }
        None => {
            for (m, w) in DEFAULT_ACTIONS {
                if let Ok(m) = Method::from_bytes(m.as_bytes()) {
                    actions.push((m, w.to_string()));
                }
            }
        }
    }
    let catalog = raw_scopes.map(|scopes| {
        for (name, description) in &scopes {
            if let Err(e) = scope::check_required(name) {
                cx.at(description, format!("scopes: `{name}`: {e}"));
            } else if name.contains(scope::ACTION) {
                cx.at(
                    description,
                    format!("scopes: `{name}`: the catalog lists concrete scopes"),
                );
            }
        }
        // Collected from sorted entries, the map is built with full nodes.
        scopes
            .into_iter()
            .map(|(name, description)| (name, description.value))
            .collect()
    });
    Vocabulary { actions, catalog }
}

#[cfg(test)]
mod tests;
