//! Overlapping path patterns: which one wins a path both match, and what that costs the
//! other. The router itself decides a representative path of each overlap, so the
//! warnings follow the gateway's real precedence rather than a re-implementation of it.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::Kind;
use crate::policy::{Lookup, MethodRule, Policy, Route};

/// A finding about one route.
pub struct Finding {
    pub kind: Kind,
    /// Index of the route the warning is about.
    pub route: usize,
    pub message: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Seg<'a> {
    Static(&'a str),
    Param,
    Rest,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    A,
    B,
}

fn segs(pattern: &str) -> Vec<Seg<'_>> {
    pattern
        .split('/')
        .skip(1)
        .map(|s| {
            if s.starts_with("{*") {
                Seg::Rest
            } else if s.starts_with('{') {
                Seg::Param
            } else {
                Seg::Static(s)
            }
        })
        .collect()
}

/// A path both patterns match, with parameters set to `fresh` (a value no static
/// segment has), and which pattern the router prefers for it; `None` when no path
/// matches both or neither is preferred (same shape).
fn overlap(a: &[Seg], b: &[Seg], fresh: &str) -> Option<(String, Side)> {
    // Without a catch-all only patterns of one length can overlap: the common case,
    // decided before any work.
    if a.len() != b.len() && a.last() != Some(&Seg::Rest) && b.last() != Some(&Seg::Rest) {
        return None;
    }
    let mut path: Vec<&str> = Vec::new();
    let mut winner: Option<Side> = None;
    let mut i = 0;
    loop {
        match (a.get(i), b.get(i)) {
            (None, None) => break,
            (Some(Seg::Rest), Some(Seg::Rest)) => {
                path.push(fresh);
                break;
            }
            (Some(Seg::Rest), Some(_)) => {
                rest_of(&b[i..], fresh, &mut path)?;
                winner.get_or_insert(Side::B);
                break;
            }
            (Some(_), Some(Seg::Rest)) => {
                rest_of(&a[i..], fresh, &mut path)?;
                winner.get_or_insert(Side::A);
                break;
            }
            (None, Some(_)) | (Some(_), None) => return None,
            (Some(Seg::Static(s)), Some(Seg::Static(t))) if s == t => path.push(s),
            (Some(Seg::Static(_)), Some(Seg::Static(_))) => return None,
            (Some(Seg::Static(s)), Some(Seg::Param)) if !s.is_empty() => {
                path.push(s);
                winner.get_or_insert(Side::A);
            }
            (Some(Seg::Param), Some(Seg::Static(t))) if !t.is_empty() => {
                path.push(t);
                winner.get_or_insert(Side::B);
            }
            (Some(Seg::Param), Some(Seg::Param)) => path.push(fresh),
            _ => return None,
        }
        i += 1;
    }
    Some((format!("/{}", path.join("/")), winner?))
}

/// The segments a catch-all absorbs from the other pattern: any non-empty rest.
fn rest_of<'a>(rest: &[Seg<'a>], fresh: &'a str, path: &mut Vec<&'a str>) -> Option<()> {
    if rest == [Seg::Static("")] {
        return None;
    }
    for s in rest {
        path.push(match s {
            Seg::Static(s) => s,
            Seg::Param | Seg::Rest => fresh,
        });
    }
    Some(())
}

/// True when every path `specific` matches is matched by `general` too.
fn within(specific: &[Seg], general: &[Seg]) -> bool {
    for (i, g) in general.iter().enumerate() {
        match (specific.get(i), g) {
            (Some(_), Seg::Rest) => return specific[i..] != [Seg::Static("")],
            (Some(Seg::Static(s)), Seg::Static(t)) if s == t => {}
            (Some(Seg::Static(s)), Seg::Param) if !s.is_empty() => {}
            (Some(Seg::Param), Seg::Param) => {}
            _ => return false,
        }
    }
    specific.len() == general.len()
}

/// A parameter value that equals no static segment of the policy.
fn fresh_value(policy: &Policy) -> String {
    let statics: HashSet<&str> = policy
        .paths()
        .iter()
        .flat_map(|p| p.pattern.split('/'))
        .collect();
    (0..)
        .map(|n| format!("x{n}"))
        .find(|v| !statics.contains(v.as_str()))
        .unwrap_or_default()
}

/// Every shadowed and redundant route of the policy.
pub fn find(policy: &Policy) -> Vec<Finding> {
    let fresh = fresh_value(policy);
    let paths = policy.paths();
    let shapes: Vec<Vec<Seg>> = paths.iter().map(|p| segs(&p.pattern)).collect();
    // (kind, route the warning is about, the other path) -> methods
    let mut found: BTreeMap<(u8, usize, usize), Vec<String>> = BTreeMap::new();
    let mut trie = Trie::default();
    for (i, shape) in shapes.iter().enumerate() {
        trie.insert(shape, i);
    }
    for a in 0..paths.len() {
        let mut candidates = Vec::new();
        trie.overlapping(&shapes[a], &mut candidates);
        candidates.retain(|&b| b > a);
        candidates.sort_unstable();
        candidates.dedup();
        for b in candidates {
            let Some((example, side)) = overlap(&shapes[a], &shapes[b], &fresh) else {
                continue;
            };
            let (winner, loser) = match side {
                Side::A => (a, b),
                Side::B => (b, a),
            };
            for rule in &paths[loser].rules {
                let method = rule.method.as_str().to_string();
                match policy.lookup(&rule.method, &example) {
                    Lookup::MethodNotAllowed(entry) if entry.pattern == paths[winner].pattern => {
                        found
                            .entry((0, rule.route, winner))
                            .or_default()
                            .push(method);
                    }
                    Lookup::Matched {
                        entry,
                        rule: taken,
                        route,
                        ..
                    } if entry.pattern == paths[winner].pattern
                        && within(&shapes[winner], &shapes[loser])
                        && !between(&trie, &shapes, winner, loser, &example, &fresh)
                        && same_requirements(policy, taken, route, rule) =>
                    {
                        found
                            .entry((1, taken.route, loser))
                            .or_default()
                            .push(method);
                    }
                    _ => {}
                }
            }
        }
    }
    found
        .into_iter()
        .map(|((kind, route, other), methods)| {
            let r = &policy.routes()[route];
            let other = &paths[other];
            let methods = methods.join(", ");
            if kind == 0 {
                Finding {
                    kind: Kind::ShadowedRoute,
                    route,
                    message: format!(
                        "routes[{}] ({}) is shadowed for {methods}: paths it shares with {} go to that more specific path, which has no rule for {methods}, so they get 405",
                        r.index, r.pattern, other.pattern
                    ),
                }
            } else {
                Finding {
                    kind: Kind::RedundantRoute,
                    route,
                    message: format!(
                        "routes[{}] ({}) is redundant for {methods}: {} would decide its paths with exactly the same requirements",
                        r.index, r.pattern, other.pattern
                    ),
                }
            }
        })
        .collect()
}

/// The patterns by segment, so each pattern is compared only with those that can
/// overlap it: with thousands of routes, comparing every pair would take seconds.
#[derive(Default)]
struct Trie<'a> {
    statics: HashMap<&'a str, Trie<'a>>,
    param: Option<Box<Trie<'a>>>,
    /// Patterns ending here.
    ends: Vec<usize>,
    /// Patterns whose catch-all starts here.
    rest: Vec<usize>,
}

impl<'a> Trie<'a> {
    fn insert(&mut self, shape: &[Seg<'a>], id: usize) {
        match shape.split_first() {
            None => self.ends.push(id),
            Some((Seg::Rest, _)) => self.rest.push(id),
            Some((Seg::Param, more)) => self.param.get_or_insert_default().insert(more, id),
            Some((Seg::Static(s), more)) => self.statics.entry(s).or_default().insert(more, id),
        }
    }

    /// Every pattern that may match a path `shape` matches (a superset; [`overlap`]
    /// decides).
    fn overlapping(&self, shape: &[Seg], out: &mut Vec<usize>) {
        let Some((first, more)) = shape.split_first() else {
            out.extend(&self.ends);
            return;
        };
        if shape != [Seg::Static("")] {
            out.extend(&self.rest);
        }
        match first {
            Seg::Rest => {
                for (k, child) in &self.statics {
                    if !k.is_empty() || !child.is_leaf() {
                        child.all(out);
                    }
                }
                if let Some(p) = &self.param {
                    p.all(out);
                }
            }
            Seg::Static(s) => {
                if let Some(child) = self.statics.get(s) {
                    child.overlapping(more, out);
                }
                if let (false, Some(p)) = (s.is_empty(), &self.param) {
                    p.overlapping(more, out);
                }
            }
            Seg::Param => {
                for (k, child) in &self.statics {
                    if !k.is_empty() {
                        child.overlapping(more, out);
                    }
                }
                if let Some(p) = &self.param {
                    p.overlapping(more, out);
                }
            }
        }
    }

    fn is_leaf(&self) -> bool {
        self.statics.is_empty() && self.param.is_none() && self.rest.is_empty()
    }

    fn all(&self, out: &mut Vec<usize>) {
        out.extend(&self.ends);
        out.extend(&self.rest);
        for child in self.statics.values() {
            child.all(out);
        }
        if let Some(p) = &self.param {
            p.all(out);
        }
    }
}

/// True when some third pattern matching `example` is preferred over `loser`, so
/// removing `winner` would not hand its paths to `loser`.
fn between(
    trie: &Trie,
    shapes: &[Vec<Seg>],
    winner: usize,
    loser: usize,
    example: &str,
    fresh: &str,
) -> bool {
    let example_shape = segs(example);
    let mut candidates = Vec::new();
    trie.overlapping(&example_shape, &mut candidates);
    candidates
        .into_iter()
        .filter(|&c| c != winner && c != loser)
        .filter(|&c| within(&example_shape, &shapes[c]))
        .any(|c| {
            matches!(
                overlap(&shapes[c], &shapes[loser], fresh),
                Some((_, Side::A))
            )
        })
}

/// Same scopes, public flag, role gate, constraints, bypass roles and mode.
fn same_requirements(policy: &Policy, a: &MethodRule, a_route: &Route, b: &MethodRule) -> bool {
    let b_route = &policy.routes()[b.route];
    let sorted = |v: &[Box<str>]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let sorted_ids = |v: &[usize]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v
    };
    let constraints = |r: &Route| -> Vec<(String, Vec<crate::policy::Source>, bool)> {
        r.require
            .iter()
            .map(|c| (c.param.to_string(), c.sources.clone(), c.exact))
            .collect()
    };
    let mode = |r: &Route| r.mode.unwrap_or(policy.mode);
    sorted(&a.all) == sorted(&b.all)
        && a.any == b.any
        && a_route.public == b_route.public
        && sorted_ids(&a_route.roles) == sorted_ids(&b_route.roles)
        && sorted_ids(&a_route.bypass_roles) == sorted_ids(&b_route.bypass_roles)
        && constraints(a_route) == constraints(b_route)
        && mode(a_route) == mode(b_route)
}
