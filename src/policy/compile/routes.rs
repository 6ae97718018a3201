//! Routes: path patterns into the matchit router, per-method rules with templates
//! expanded, role gates and `require` constraints resolved to ids.
//!
//! Each raw route is dropped as soon as it is compiled, so the parse tree and the
//! compiled policy are not both held in full.

mod rules;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use http::{HeaderValue, Method};
use serde_saphyr::Spanned;

use super::intern::FastMap;
use super::{Cx, Vocabulary};
use crate::policy::raw::{RawRequire, RawRoute};
use crate::policy::{Constraint, MethodRule, PathEntry, RoleId, Route, Source};
use rules::{Shared, method_rule, methods};

pub(super) struct Routes {
    pub router: matchit::Router<usize>,
    pub paths: Box<[PathEntry]>,
    pub routes: Box<[Route]>,
}

/// Names a route in messages, `routes[3] (/orders/{id})`; formatted only for an error.
#[derive(Clone, Copy)]
struct Where<'a> {
    index: usize,
    path: &'a str,
}

impl fmt::Display for Where<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "routes[{}] ({})", self.index, self.path)
    }
}

/// A rule waiting to be placed on its path, with where it was written.
struct Pending {
    rule: MethodRule,
    implied: bool,
}

/// One path pattern and the rules written for it so far.
struct Slot {
    pattern: Arc<str>,
    pending: Vec<Pending>,
}

/// Compiles the routes, consuming them; also returns every concrete scope they require.
pub(super) fn compile(
    cx: &mut Cx,
    raw_routes: Vec<Spanned<RawRoute>>,
    vocab: &Vocabulary,
    role_ids: &HashMap<Box<str>, RoleId>,
) -> (Routes, Vec<Box<str>>) {
    let mut routes = Vec::with_capacity(raw_routes.len());
    let mut slots: Vec<Slot> = Vec::new();
    let mut slot_of: FastMap<Arc<str>, usize> = FastMap::default();
    // Filled in file order of first appearance, as before; matchit's conflicts depend on it.
    let mut router = matchit::Router::new();
    let mut shared = Shared::default();

    for (index, spanned) in raw_routes.into_iter().enumerate() {
        let r = &spanned.value;
        let where_ = Where {
            index,
            path: &r.path.value,
        };
        let params = check_path(cx, &r.path, where_);
        let slot = match slot_of.get(r.path.value.as_str()) {
            Some(&slot) => slot,
            None => {
                let pattern: Arc<str> = r.path.value.as_str().into();
                if let Err(e) = router.insert(r.path.value.as_str(), slots.len()) {
                    cx.at(&r.path, format!("path `{pattern}`: {e}"));
                }
                slot_of.insert(pattern.clone(), slots.len());
                slots.push(Slot {
                    pattern,
                    pending: Vec::new(),
                });
                slots.len() - 1
            }
        };
        if r.public
            && (!r.scopes.is_empty()
                || !r.any_scopes.is_empty()
                || !r.roles.is_empty()
                || !r.require.is_empty())
        {
            cx.at(
                &spanned,
                format!(
                    "{where_}: a public route cannot also require scopes, roles or constraints"
                ),
            );
        }
        for (method, implied) in methods(cx, r, vocab, where_) {
            let rule = method_rule(cx, r, vocab, &method, index, where_, &mut shared);
            let pending = &mut slots[slot].pending;
            if let Some(other) = pending
                .iter()
                .find(|p| p.rule.method == method && !p.implied && !implied)
            {
                let other_route = other.rule.route;
                cx.at(
                    &spanned,
                    format!(
                        "{where_}: duplicate route for {method} {} (also routes[{other_route}])",
                        r.path.value
                    ),
                );
                continue;
            }
            pending.push(Pending { rule, implied });
        }
        routes.push(Route {
            index,
            pattern: slots[slot].pattern.clone(),
            public: r.public,
            mode: r.mode,
            roles: resolve_roles(cx, &r.roles, role_ids, where_, "roles"),
            require: constraints(cx, &r.require, &params, where_),
            bypass_roles: resolve_roles(cx, &r.bypass_roles, role_ids, where_, "bypass_roles"),
        });
    }

    let mut allow_headers = FastMap::default();
    let paths = slots
        .into_iter()
        .map(|slot| {
            // An implied HEAD yields to a route that names HEAD itself.
            let explicit_head = slot
                .pending
                .iter()
                .any(|p| p.rule.method == Method::HEAD && !p.implied);
            let mut rules: Vec<MethodRule> = slot
                .pending
                .into_iter()
                .filter(|p| !(p.implied && explicit_head))
                .map(|p| p.rule)
                .collect();
            rules.sort_by(|a, b| method_rank(&a.method).cmp(&method_rank(&b.method)));
            let allow = allow_header(&rules, &mut allow_headers);
            PathEntry {
                pattern: slot.pattern,
                rules: rules.into_boxed_slice(),
                allow,
                metrics: Default::default(),
            }
        })
        .collect();
    let routes = Routes {
        // matchit grows its nodes' vectors by doubling; a copy is allocated to their
        // lengths (10,000 routes: 8.1 MiB as built, 2.7 MiB copied).
        router: router.clone(),
        paths,
        routes: routes.into_boxed_slice(),
    };
    (routes, shared.into_required())
}

/// Checks the pattern's shape and returns its parameter names. A pattern must already
/// be in the form the normalizer produces, or no request could ever match it.
fn check_path<'p>(cx: &mut Cx, path: &'p Spanned<String>, where_: Where) -> Vec<&'p str> {
    let p = &path.value;
    if !p.starts_with('/') {
        cx.at(path, format!("{where_}: a path starts with `/`"));
        return Vec::new();
    }
    let mut params = Vec::new();
    // The path with each parameter as a plain segment; most paths have none.
    let probe = if p.contains(['{', '}']) {
        let mut probe = Vec::new();
        for segment in p.split('/') {
            if let Some(inner) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                params.push(inner.trim_start_matches('*'));
                probe.push("x");
            } else if segment.contains(['{', '}']) {
                cx.at(
                    path,
                    format!("{where_}: a parameter must be a whole segment, like `{{id}}`"),
                );
            } else {
                probe.push(segment);
            }
        }
        Cow::Owned(probe.join("/"))
    } else {
        Cow::Borrowed(p.as_str())
    };
    let options = crate::normalize::NormalizeOptions {
        allow_semicolons: true,
    };
    match crate::normalize::normalize_path(&probe, options) {
        Ok(n) if n == probe => {}
        Ok(_) => cx.at(path, format!(
            "{where_}: not in normal form (`//`, `.` or `..` segments, or encoded unreserved characters), so no request could match it"
        )),
        Err(e) => cx.at(path, format!("{where_}: no request could match it: {e}")),
    }
    params
}

fn resolve_roles(
    cx: &mut Cx,
    names: &[Spanned<String>],
    ids: &HashMap<Box<str>, RoleId>,
    where_: Where,
    field: &str,
) -> Box<[RoleId]> {
    names
        .iter()
        .filter_map(|n| {
            let id = ids.get(n.value.as_str()).copied();
            if id.is_none() {
                cx.at(n, format!("{where_}: {field}: unknown role `{}`", n.value));
            }
            id
        })
        .collect()
}

fn constraints(
    cx: &mut Cx,
    require: &std::collections::BTreeMap<String, Spanned<RawRequire>>,
    params: &[&str],
    where_: Where,
) -> Box<[Constraint]> {
    let mut out = Vec::new();
    for (param, req) in require {
        if !params.contains(&param.as_str()) {
            cx.at(
                req,
                format!("{where_}: require: the path has no parameter `{param}`"),
            );
            continue;
        }
        let (sources, exact) = match (&req.value.in_, &req.value.equals) {
            (Some(list), None) if !list.is_empty() => (list.iter().collect::<Vec<_>>(), false),
            (None, Some(one)) => (vec![one], true),
            _ => {
                cx.at(req, format!("{where_}: require.{param}: give exactly one of `in: [sources]` or `equals: source`"));
                continue;
            }
        };
        let mut sources: Vec<Source> = sources
            .into_iter()
            .filter_map(|s| match parse_source(&s.value) {
                Some(src) => Some(src),
                None => {
                    cx.at(s, format!("{where_}: require.{param}: `{}` is not `role:<attribute>` or `claim:<name>`", s.value));
                    None
                }
            })
            .collect();
        sources.shrink_to_fit();
        out.push(Constraint {
            param: param.as_str().into(),
            sources,
            exact,
        });
    }
    out.into_boxed_slice()
}

fn parse_source(s: &str) -> Option<Source> {
    if let Some(attr) = s.strip_prefix("role:").filter(|a| !a.is_empty()) {
        Some(Source::RoleAttribute(attr.into()))
    } else {
        s.strip_prefix("claim:")
            .filter(|c| !c.is_empty())
            .map(|c| Source::Claim(c.into()))
    }
}

/// Orders methods as people expect to read them in `Allow`.
fn method_rank(m: &Method) -> (usize, &str) {
    const ORDER: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    ];
    let rank = ORDER
        .iter()
        .position(|o| *o == m.as_str())
        .unwrap_or(ORDER.len());
    (rank, m.as_str())
}

/// The `Allow` header of these rules; paths with the same methods share one header's bytes.
fn allow_header(rules: &[MethodRule], known: &mut FastMap<String, HeaderValue>) -> HeaderValue {
    let list: Vec<&str> = rules.iter().map(|r| r.method.as_str()).collect();
    let list = list.join(", ");
    if let Some(header) = known.get(&list) {
        return header.clone();
    }
    let header = HeaderValue::from_str(&list).unwrap_or_else(|_| HeaderValue::from_static(""));
    known.insert(list, header.clone());
    header
}
