//! Roles: name resolution, inheritance (with cycle detection), deny, attributes.
//!
//! A role's rights are its own scopes plus the rights of the roles it inherits (each
//! already minus that role's own `deny`), minus its own `deny`. Each right is kept as
//! (allowed pattern, denies collected on the way down), so a check is a short scan.

use std::collections::{BTreeMap, HashMap};

use serde_saphyr::Spanned;

use super::{Cx, Vocabulary};
use crate::policy::raw::RawRole;
use crate::policy::{Role, RoleId, Term, scope};

pub(super) struct Roles {
    pub roles: Vec<Role>,
    pub ids: HashMap<Box<str>, RoleId>,
    /// Literal (non-wildcard) scopes named by roles, for a policy without a catalog.
    pub literals: Vec<Box<str>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Visit {
    New,
    InProgress,
    Done,
}

pub(super) fn compile(
    cx: &mut Cx,
    raw_roles: Option<&BTreeMap<String, Spanned<RawRole>>>,
    vocab: &Vocabulary,
) -> Roles {
    let Some(raw_roles) = raw_roles else {
        return Roles {
            roles: Vec::new(),
            ids: HashMap::new(),
            literals: Vec::new(),
        };
    };
    let names: Vec<&String> = raw_roles.keys().collect();
    let ids: HashMap<Box<str>, RoleId> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str().into(), i))
        .collect();
    let mut literals = Vec::new();
    let mut parents: Vec<Vec<RoleId>> = Vec::with_capacity(names.len());
    for (name, role) in raw_roles {
        check_scopes(cx, name, &role.value, vocab, &mut literals);
        let mut ps = Vec::new();
        for parent in &role.value.inherits {
            match ids.get(parent.value.as_str()) {
                Some(&p) => ps.push(p),
                None => cx.at(
                    parent,
                    format!("roles.{name}.inherits: unknown role `{}`", parent.value),
                ),
            }
        }
        parents.push(ps);
    }
    let mut state = vec![Visit::New; names.len()];
    let mut built: Vec<Option<Role>> = (0..names.len()).map(|_| None).collect();
    for id in 0..names.len() {
        let mut stack = Vec::new();
        build(
            cx, id, raw_roles, &names, &parents, &mut state, &mut built, &mut stack,
        );
    }
    let roles = built
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| empty_role(names[i])))
        .collect();
    Roles {
        roles,
        ids,
        literals,
    }
}

fn check_scopes(
    cx: &mut Cx,
    name: &str,
    role: &RawRole,
    vocab: &Vocabulary,
    literals: &mut Vec<Box<str>>,
) {
    for (field, list) in [("scopes", &role.scopes), ("deny", &role.deny)] {
        for s in list {
            if let Err(e) = scope::check_pattern(&s.value) {
                cx.at(s, format!("roles.{name}.{field}: `{}`: {e}", s.value));
            } else if scope::is_wildcard(&s.value) {
                continue;
            } else if !vocab.in_catalog(&s.value) {
                cx.at(
                    s,
                    format!(
                        "roles.{name}.{field}: scope `{}` is not in the catalog",
                        s.value
                    ),
                );
            } else if field == "scopes" {
                literals.push(s.value.as_str().into());
            }
        }
    }
}

/// Depth-first build so parents are compiled before children; a role met again while
/// still in progress closes a cycle.
#[allow(clippy::too_many_arguments)]
fn build(
    cx: &mut Cx,
    id: RoleId,
    raw_roles: &BTreeMap<String, Spanned<RawRole>>,
    names: &[&String],
    parents: &[Vec<RoleId>],
    state: &mut [Visit],
    built: &mut [Option<Role>],
    stack: &mut Vec<RoleId>,
) {
    match state[id] {
        Visit::Done => return,
        Visit::InProgress => {
            let start = stack.iter().position(|&r| r == id).unwrap_or(0);
            let cycle: Vec<&str> = stack[start..]
                .iter()
                .chain(std::iter::once(&id))
                .map(|&r| names[r].as_str())
                .collect();
            let role = &raw_roles[names[id]];
            cx.at(
                role,
                format!("roles: inheritance cycle {}", cycle.join(" -> ")),
            );
            return;
        }
        Visit::New => {}
    }
    state[id] = Visit::InProgress;
    stack.push(id);
    for &p in &parents[id] {
        build(cx, p, raw_roles, names, parents, state, built, stack);
    }
    stack.pop();
    state[id] = Visit::Done;

    let raw = &raw_roles[names[id]].value;
    let own_deny: Vec<Box<str>> = raw.deny.iter().map(|d| d.value.as_str().into()).collect();
    let mut terms: Vec<Term> = raw
        .scopes
        .iter()
        .map(|s| Term {
            allow: s.value.as_str().into(),
            deny: own_deny.clone(),
        })
        .collect();
    let mut is_a = vec![id];
    let mut attributes = raw.attributes.clone();
    for &p in &parents[id] {
        // A parent inside a cycle was never built: the cycle is already an error.
        let Some(parent) = built[p].as_ref() else {
            continue;
        };
        for t in &parent.terms {
            let mut deny = t.deny.clone();
            deny.extend(own_deny.iter().cloned());
            terms.push(Term {
                allow: t.allow.clone(),
                deny,
            });
        }
        is_a.extend(parent.is_a.iter().copied());
        for (k, vs) in &parent.attributes {
            let list = attributes.entry(k.clone()).or_default();
            for v in vs {
                if !list.contains(v) {
                    list.push(v.clone());
                }
            }
        }
    }
    is_a.sort_unstable();
    is_a.dedup();
    built[id] = Some(Role {
        name: names[id].as_str().into(),
        inherits: raw
            .inherits
            .iter()
            .map(|p| p.value.as_str().into())
            .collect(),
        own_scopes: raw.scopes.iter().map(|s| s.value.as_str().into()).collect(),
        deny: own_deny,
        terms,
        is_a,
        attributes,
    });
}

fn empty_role(name: &str) -> Role {
    Role {
        name: name.into(),
        inherits: Vec::new(),
        own_scopes: Vec::new(),
        deny: Vec::new(),
        terms: Vec::new(),
        is_a: Vec::new(),
        attributes: BTreeMap::new(),
    }
}
