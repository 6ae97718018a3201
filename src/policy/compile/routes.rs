//! Routes: path patterns into the matchit router, per-method rules with templates
//! expanded, role gates and `require` constraints resolved to ids.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderValue, Method};
use serde_saphyr::Spanned;

use super::{Cx, Vocabulary};
use crate::policy::raw::{RawPolicy, RawRequire, RawRoute};
use crate::policy::{Constraint, MethodRule, PathEntry, RoleId, Route, Source, scope};

pub(super) struct Routes {
    pub router: matchit::Router<usize>,
    pub paths: Vec<PathEntry>,
    pub routes: Vec<Route>,
    /// Every concrete scope some route requires.
    pub required: Vec<Box<str>>,
}

/// A rule waiting to be placed on its path, with where it was written.
struct Pending {
    rule: MethodRule,
    implied: bool,
}

pub(super) fn compile(
    cx: &mut Cx,
    raw: &RawPolicy,
    vocab: &Vocabulary,
    role_ids: &HashMap<Box<str>, RoleId>,
) -> Routes {
    let mut routes = Vec::with_capacity(raw.routes.len());
    let mut by_path: Vec<(Arc<str>, &Spanned<String>, Vec<Pending>)> = Vec::new();
    let mut path_index: HashMap<&str, usize> = HashMap::new();
    let mut required = Vec::new();

    for (index, spanned) in raw.routes.iter().enumerate() {
        let r = &spanned.value;
        let where_ = format!("routes[{index}] ({})", r.path.value);
        let params = check_path(cx, &r.path, &where_);
        let pattern: Arc<str> = r.path.value.as_str().into();
        let slot = *path_index.entry(r.path.value.as_str()).or_insert_with(|| {
            by_path.push((pattern.clone(), &r.path, Vec::new()));
            by_path.len() - 1
        });
        if r.public
            && (!r.scopes.is_empty()
                || !r.any_scopes.is_empty()
                || !r.roles.is_empty()
                || !r.require.is_empty())
        {
            cx.at(
                spanned,
                format!(
                    "{where_}: a public route cannot also require scopes, roles or constraints"
                ),
            );
        }
        for (method, implied) in methods(cx, r, vocab, &where_) {
            let rule = method_rule(cx, r, vocab, &method, index, &where_);
            required.extend(rule.all.iter().cloned());
            required.extend(rule.any.iter().flatten().cloned());
            let pending = &mut by_path[slot].2;
            if let Some(other) = pending
                .iter()
                .find(|p| p.rule.method == method && !p.implied && !implied)
            {
                let other_route = other.rule.route;
                cx.at(
                    spanned,
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
            pattern,
            public: r.public,
            mode: r.mode,
            roles: resolve_roles(cx, &r.roles, role_ids, &where_, "roles"),
            require: constraints(cx, &r.require, &params, &where_),
            bypass_roles: resolve_roles(cx, &r.bypass_roles, role_ids, &where_, "bypass_roles"),
        });
    }

    let mut router = matchit::Router::new();
    let mut paths = Vec::with_capacity(by_path.len());
    for (pattern, at, pending) in by_path {
        // An implied HEAD yields to a route that names HEAD itself.
        let explicit_head = pending
            .iter()
            .any(|p| p.rule.method == Method::HEAD && !p.implied);
        let mut rules: Vec<MethodRule> = pending
            .into_iter()
            .filter(|p| !(p.implied && explicit_head))
            .map(|p| p.rule)
            .collect();
        rules.sort_by_key(|r| method_rank(&r.method));
        if let Err(e) = router.insert(pattern.to_string(), paths.len()) {
            cx.at(at, format!("path `{pattern}`: {e}"));
        }
        let allow = allow_header(&rules);
        paths.push(PathEntry {
            pattern,
            rules,
            allow,
            metrics: Default::default(),
        });
    }
    required.sort();
    required.dedup();
    Routes {
        router,
        paths,
        routes,
        required,
    }
}

/// Checks the pattern's shape and returns its parameter names. A pattern must already
/// be in the form the normalizer produces, or no request could ever match it.
fn check_path(cx: &mut Cx, path: &Spanned<String>, where_: &str) -> Vec<String> {
    let p = &path.value;
    if !p.starts_with('/') {
        cx.at(path, format!("{where_}: a path starts with `/`"));
        return Vec::new();
    }
    let mut params = Vec::new();
    let mut probe = Vec::new();
    for segment in p.split('/') {
        if let Some(inner) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            params.push(inner.trim_start_matches('*').to_string());
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
    let probe = probe.join("/");
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

/// The methods a route applies to; `true` marks a HEAD implied by GET.
fn methods(cx: &mut Cx, r: &RawRoute, vocab: &Vocabulary, where_: &str) -> Vec<(Method, bool)> {
    let mut out: Vec<(Method, bool)> = match &r.methods {
        None => vocab
            .actions
            .iter()
            .map(|(m, _)| (m.clone(), false))
            .collect(),
        Some(list) => list
            .iter()
            .filter_map(|m| match Method::from_bytes(m.value.as_bytes()) {
                Ok(method) if m.value.bytes().all(|b| b.is_ascii_uppercase()) => {
                    Some((method, false))
                }
                _ => {
                    cx.at(
                        m,
                        format!("{where_}: `{}` is not an upper-case HTTP method", m.value),
                    );
                    None
                }
            })
            .collect(),
    };
    let has = |out: &[(Method, bool)], m: &Method| out.iter().any(|(x, _)| x == m);
    if has(&out, &Method::GET) && !has(&out, &Method::HEAD) {
        out.push((Method::HEAD, true));
    }
    out
}

fn method_rule(
    cx: &mut Cx,
    r: &RawRoute,
    vocab: &Vocabulary,
    method: &Method,
    route: usize,
    where_: &str,
) -> MethodRule {
    // HEAD is read like GET when `actions` has no word of its own for it.
    let action = vocab.action(method).or_else(|| {
        (*method == Method::HEAD)
            .then(|| vocab.action(&Method::GET))
            .flatten()
    });
    let mut expand = |s: &Spanned<String>| -> Option<Box<str>> {
        if let Err(e) = scope::check_required(&s.value) {
            cx.at(s, format!("{where_}: `{}`: {e}", s.value));
            return None;
        }
        let Some(concrete) = scope::expand(&s.value, action) else {
            cx.at(
                s,
                format!(
                    "{where_}: `{}` needs an action for {method}, which `actions` does not map",
                    s.value
                ),
            );
            return None;
        };
        if !vocab.in_catalog(&concrete) {
            let why = if s.value.contains(scope::ACTION) {
                format!(" ({method})")
            } else {
                String::new()
            };
            cx.at(
                s,
                format!("{where_}: scope `{concrete}`{why} is not in the catalog"),
            );
            return None;
        }
        Some(concrete.into())
    };
    let all = r.scopes.iter().filter_map(&mut expand).collect();
    let any = r
        .any_scopes
        .iter()
        .map(|group| group.iter().filter_map(&mut expand).collect())
        .collect();
    MethodRule {
        method: method.clone(),
        route,
        all,
        any,
    }
}

fn resolve_roles(
    cx: &mut Cx,
    names: &[Spanned<String>],
    ids: &HashMap<Box<str>, RoleId>,
    where_: &str,
    field: &str,
) -> Vec<RoleId> {
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
    params: &[String],
    where_: &str,
) -> Vec<Constraint> {
    let mut out = Vec::new();
    for (param, req) in require {
        if !params.iter().any(|p| p == param) {
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
        let sources = sources
            .into_iter()
            .filter_map(|s| match parse_source(&s.value) {
                Some(src) => Some(src),
                None => {
                    cx.at(s, format!("{where_}: require.{param}: `{}` is not `role:<attribute>` or `claim:<name>`", s.value));
                    None
                }
            })
            .collect();
        out.push(Constraint {
            param: param.as_str().into(),
            sources,
            exact,
        });
    }
    out
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
fn method_rank(m: &Method) -> (usize, String) {
    const ORDER: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    ];
    let rank = ORDER
        .iter()
        .position(|o| *o == m.as_str())
        .unwrap_or(ORDER.len());
    (rank, m.as_str().to_string())
}

fn allow_header(rules: &[MethodRule]) -> HeaderValue {
    let list: Vec<&str> = rules.iter().map(|r| r.method.as_str()).collect();
    HeaderValue::from_str(&list.join(", ")).unwrap_or_else(|_| HeaderValue::from_static(""))
}
