//! `scopegate check`'s warnings: a policy that compiles but probably does not say what
//! its author meant. Warnings never fail the check (exit 0); errors do.
//!
//! What is reported, and exactly when:
//! - **shadowed route**: a route's method on some paths it matches never reaches it,
//!   because a more specific pattern (static segments win over parameters, parameters
//!   over catch-alls) takes those paths and has no rule for that method, so they get
//!   405. Found per pair of overlapping patterns on a representative path of their
//!   overlap, decided by the real router.
//! - **redundant route**: a more specific route takes some of another route's paths
//!   and, for a method, requires exactly what the other would (same scopes, roles,
//!   constraints, public flag and mode): it could be removed without changing a
//!   decision on those paths.
//! - **unused scope**: a catalog scope that no route requires.
//! - **dead wildcard**: a wildcard in a role's `scopes` or `deny` that covers no scope
//!   the policy knows (the catalog, or without one the scopes routes and roles name).
//! - **unprovided attribute**: a `require` source `role:<attr>` that no role's
//!   `attributes` provide, so that source never allows anything (the constraint can
//!   then only be met through its other sources, or by a `bypass_roles` role).
//!
//! Not reported: a route hidden entirely by several more specific ones together (each
//! `{param}` matches infinitely many values, so only catch-alls could be, and working
//! that out is not worth its false alarms).

mod shadow;

use std::collections::HashSet;
use std::path::Path;

use serde_saphyr::Spanned;

use crate::policy::raw::RawPolicy;
use crate::policy::{Policy, Source, scope};
use crate::yaml::{self, Located, Pos};

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ShadowedRoute,
    RedundantRoute,
    UnusedScope,
    DeadWildcard,
    UnprovidedAttribute,
}

/// One warning, located in the policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub kind: Kind,
    pub at: Located,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = &self.at;
        write!(
            f,
            "{}:{}:{}: warning: {}",
            a.file.display(),
            a.pos.line,
            a.pos.col,
            a.message
        )
    }
}

/// Lints a compiled policy; `text` is the file it was compiled from (for positions).
pub fn lint(policy: &Policy, file: &Path, text: &str) -> Vec<Warning> {
    // The policy compiled, so this parses; without it warnings are merely unlocated.
    let raw: Option<RawPolicy> = yaml::from_str(file, text).ok();
    let mut out = Lints {
        file,
        warnings: Vec::new(),
    };
    let route_pos = |index: usize| -> Pos {
        raw.as_ref()
            .and_then(|r| r.routes.get(index))
            .map(Pos::of)
            .unwrap_or_default()
    };
    for s in shadow::find(policy) {
        out.push(s.kind, route_pos(s.route), s.message);
    }
    unused_scopes(policy, raw.as_ref(), &mut out);
    dead_wildcards(policy, raw.as_ref(), &mut out);
    unprovided_attributes(policy, raw.as_ref(), &route_pos, &mut out);
    out.warnings.sort_by_key(|w| (w.at.pos.line, w.at.pos.col));
    out.warnings
}

struct Lints<'f> {
    file: &'f Path,
    warnings: Vec<Warning>,
}

impl Lints<'_> {
    fn push(&mut self, kind: Kind, pos: Pos, message: String) {
        self.warnings.push(Warning {
            kind,
            at: Located::new(self.file, pos, message),
        });
    }
}

fn unused_scopes(policy: &Policy, raw: Option<&RawPolicy>, out: &mut Lints) {
    let Some(catalog) = policy.catalog() else {
        return;
    };
    let required: HashSet<&str> = policy
        .paths()
        .iter()
        .flat_map(|p| &p.rules)
        .flat_map(|r| r.all.iter().chain(r.any.iter().flatten()))
        .map(|s| &**s)
        .collect();
    for name in catalog.keys().filter(|s| !required.contains(s.as_str())) {
        let pos = raw
            .and_then(|r| r.scopes.as_ref())
            .and_then(|c| c.get(name))
            .map(Pos::of)
            .unwrap_or_default();
        out.push(
            Kind::UnusedScope,
            pos,
            format!("scopes: `{name}` is in the catalog but no route requires it"),
        );
    }
}

fn dead_wildcards(policy: &Policy, raw: Option<&RawPolicy>, out: &mut Lints) {
    let known = policy.known_scopes();
    let what = if policy.catalog().is_some() {
        "no catalog scope"
    } else {
        "no scope that a route or role names"
    };
    for role in policy.roles() {
        let raw_role = raw
            .and_then(|r| r.roles.as_ref())
            .and_then(|roles| roles.get(&*role.name));
        for (field, patterns) in [("scopes", &role.own_scopes), ("deny", &role.deny)] {
            for (i, p) in patterns.iter().enumerate() {
                if !scope::is_wildcard(p) || known.iter().any(|k| scope::covers(p, k)) {
                    continue;
                }
                let pos = raw_role
                    .map(|r| match field {
                        "scopes" => &r.value.scopes,
                        _ => &r.value.deny,
                    })
                    .and_then(|list: &Vec<Spanned<String>>| list.get(i))
                    .map(Pos::of)
                    .unwrap_or_default();
                out.push(
                    Kind::DeadWildcard,
                    pos,
                    format!("roles.{}.{field}: `{p}` matches {what}", role.name),
                );
            }
        }
    }
}

fn unprovided_attributes(
    policy: &Policy,
    raw: Option<&RawPolicy>,
    route_pos: &dyn Fn(usize) -> Pos,
    out: &mut Lints,
) {
    for route in policy.routes() {
        for c in &route.require {
            for source in &c.sources {
                let Source::RoleAttribute(attr) = source else {
                    continue;
                };
                if policy
                    .roles()
                    .iter()
                    .any(|r| r.attributes.contains_key(&**attr))
                {
                    continue;
                }
                let pos = raw
                    .and_then(|r| r.routes.get(route.index))
                    .and_then(|r| r.value.require.get(&*c.param))
                    .map(Pos::of)
                    .unwrap_or_else(|| route_pos(route.index));
                out.push(
                    Kind::UnprovidedAttribute,
                    pos,
                    format!(
                        "routes[{}] ({}): require.{}: no role has the attribute `{attr}`, so `role:{attr}` never allows anything",
                        route.index, route.pattern, c.param
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
