//! Per-method rules: the methods a route applies to, and what each of them requires
//! with `{action}` filled in, checked against the catalog and shared through the interner.

use http::Method;
use serde_saphyr::Spanned;

use super::super::intern::Interner;
use super::super::{Cx, Vocabulary};
use super::Where;
use crate::policy::raw::RawRoute;
use crate::policy::{MethodRule, RuleMethod, scope};

/// What the rules of all routes share while they are built.
#[derive(Default)]
pub(super) struct Shared {
    intern: Interner,
    methods: Vec<RuleMethod>,
    /// Scratch for scope ids, reused by every rule.
    ids: Vec<usize>,
    /// Scratch for a scope being expanded.
    expanded: String,
}

impl Shared {
    /// Every concrete scope the rules require (that the catalog lists), unordered.
    pub(super) fn into_required(self) -> Vec<Box<str>> {
        self.intern.into_required()
    }
}

/// The methods a route applies to; `true` marks a HEAD implied by GET.
pub(super) fn methods(
    cx: &mut Cx,
    r: &RawRoute,
    vocab: &Vocabulary,
    where_: Where,
) -> Vec<(Method, bool)> {
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

pub(super) fn method_rule(
    cx: &mut Cx,
    r: &RawRoute,
    vocab: &Vocabulary,
    method: &Method,
    route: usize,
    where_: Where,
    shared: &mut Shared,
) -> MethodRule {
    // HEAD is read like GET when `actions` has no word of its own for it.
    let action = vocab.action(method).or_else(|| {
        (*method == Method::HEAD)
            .then(|| vocab.action(&Method::GET))
            .flatten()
    });
    let mut ids = std::mem::take(&mut shared.ids);
    ids.clear();
    let at = |cx: &mut Cx, shared: &mut Shared, s: &Spanned<String>| {
        required_scope(cx, s, action, method, where_, vocab, shared)
    };
    for s in &r.scopes {
        ids.extend(at(cx, shared, s));
    }
    let all = shared.intern.all(&ids);
    ids.clear();
    for group in &r.any_scopes {
        for s in group {
            ids.extend(at(cx, shared, s));
        }
        Interner::end_group(&mut ids);
    }
    let any = shared.intern.any(&ids);
    shared.ids = ids;
    MethodRule {
        method: RuleMethod::intern(&mut shared.methods, method),
        route,
        all,
        any,
    }
}

/// The id of the concrete scope `s` stands for under `method`; `None` (reported) when it
/// is malformed, needs an action word the method lacks, or is not in the catalog.
fn required_scope(
    cx: &mut Cx,
    s: &Spanned<String>,
    action: Option<&str>,
    method: &Method,
    where_: Where,
    vocab: &Vocabulary,
    shared: &mut Shared,
) -> Option<usize> {
    if let Err(e) = scope::check_required(&s.value) {
        cx.at(s, format!("{where_}: `{}`: {e}", s.value));
        return None;
    }
    // Checked above: any brace belongs to an `{action}` (and `contains` on a char is fast).
    let templated = s.value.contains('{');
    let concrete = if templated {
        let Some(action) = action else {
            cx.at(
                s,
                format!(
                    "{where_}: `{}` needs an action for {method}, which `actions` does not map",
                    s.value
                ),
            );
            return None;
        };
        scope::expand_into(&mut shared.expanded, &s.value, action);
        shared.expanded.as_str()
    } else {
        s.value.as_str()
    };
    let id = shared.intern.scope(concrete, |c| vocab.in_catalog(c));
    if id.is_none() {
        let why = if templated {
            format!(" ({method})")
        } else {
            String::new()
        };
        cx.at(
            s,
            format!("{where_}: scope `{concrete}`{why} is not in the catalog"),
        );
    }
    id
}
