//! What a reload changed: routes, roles and scopes added, removed or changed, for the
//! one log line each successful reload writes.

use std::collections::BTreeMap;
use std::fmt;

use crate::policy::Policy;

/// How many names of each kind a summary spells out before it says "and N more".
const NAMES_SHOWN: usize = 5;

/// Added, removed and changed names of one kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

/// The difference between two policies.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Keyed `METHOD pattern`.
    pub routes: Changes,
    pub roles: Changes,
    pub scopes: Changes,
}

impl Summary {
    /// Compares the policy in force with the one replacing it.
    pub fn between(old: &Policy, new: &Policy) -> Summary {
        Summary {
            routes: changes(&routes(old), &routes(new)),
            roles: changes(&roles(old), &roles(new)),
            scopes: changes(&scopes(old), &scopes(new)),
        }
    }
}

/// Each `METHOD pattern` with a rendering of everything that decides it.
fn routes(p: &Policy) -> BTreeMap<String, String> {
    let name = |id: &usize| p.roles()[*id].name.to_string();
    let mut out = BTreeMap::new();
    for entry in p.paths() {
        for rule in &entry.rules {
            // HEAD rides along with GET; naming both would say one change twice.
            let implied_head = rule.method == http::Method::HEAD
                && entry
                    .rules
                    .iter()
                    .any(|r| r.method == http::Method::GET && r.route == rule.route);
            if implied_head {
                continue;
            }
            let route = &p.routes()[rule.route];
            let gate: Vec<String> = route.roles.iter().map(name).collect();
            let bypass: Vec<String> = route.bypass_roles.iter().map(name).collect();
            let what = format!(
                "{:?}",
                (
                    &rule.all,
                    &rule.any,
                    route.public,
                    route.mode,
                    gate,
                    bypass,
                    &route.require
                )
            );
            out.insert(format!("{} {}", rule.method, entry.pattern), what);
        }
    }
    out
}

fn roles(p: &Policy) -> BTreeMap<String, String> {
    p.roles()
        .iter()
        .map(|r| {
            let what = format!(
                "{:?}",
                (&r.inherits, &r.deny, p.role_scopes(r), &r.attributes)
            );
            (r.name.to_string(), what)
        })
        .collect()
}

fn scopes(p: &Policy) -> BTreeMap<String, String> {
    p.known_scopes()
        .iter()
        .map(|s| {
            let description = p.catalog().and_then(|c| c.get(&**s)).cloned();
            (s.to_string(), description.unwrap_or_default())
        })
        .collect()
}

fn changes(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Changes {
    let mut c = Changes::default();
    for (k, v) in new {
        match old.get(k) {
            None => c.added.push(k.clone()),
            Some(was) if was != v => c.changed.push(k.clone()),
            Some(_) => {}
        }
    }
    c.removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    c
}

impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (sign, names) in [
            ("+", &self.added),
            ("-", &self.removed),
            ("~", &self.changed),
        ] {
            if names.is_empty() {
                continue;
            }
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{sign}{}", names.len())?;
            let shown: Vec<&str> = names.iter().take(NAMES_SHOWN).map(String::as_str).collect();
            write!(f, " [{}", shown.join(", "))?;
            if names.len() > NAMES_SHOWN {
                write!(f, ", and {} more", names.len() - NAMES_SHOWN)?;
            }
            f.write_str("]")?;
        }
        if first {
            f.write_str("unchanged")?;
        }
        Ok(())
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "routes: {}; roles: {}; scopes: {}",
            self.routes, self.roles, self.scopes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn policy(text: &str) -> Policy {
        Policy::from_bytes(Path::new("p.yaml"), text.as_bytes()).unwrap()
    }

    #[test]
    fn names_what_was_added_removed_and_changed() {
        let old = policy(
            "version: 1\nroles:\n  a: { scopes: [x:read] }\n  b: {}\nroutes:\n  \
             - { path: /x, methods: [GET], scopes: [x:read] }\n  \
             - { path: /y, methods: [GET], scopes: [y:read] }\n",
        );
        let new = policy(
            "version: 1\nroles:\n  a: { scopes: [x:read, z:read] }\n  c: {}\nroutes:\n  \
             - { path: /x, methods: [GET], scopes: [x:read, z:read] }\n  \
             - { path: /z, methods: [GET], scopes: [z:read] }\n",
        );
        let s = Summary::between(&old, &new);
        assert_eq!(s.routes.added, ["GET /z"]);
        assert_eq!(s.routes.removed, ["GET /y"]);
        assert_eq!(s.routes.changed, ["GET /x"]);
        assert_eq!(s.roles.added, ["c"]);
        assert_eq!(s.roles.removed, ["b"]);
        assert_eq!(s.roles.changed, ["a"]);
        assert_eq!(s.scopes.added, ["z:read"]);
        assert_eq!(s.scopes.removed, ["y:read"]);
        assert_eq!(
            s.to_string(),
            "routes: +1 [GET /z] -1 [GET /y] ~1 [GET /x]; roles: +1 [c] -1 [b] ~1 [a]; \
             scopes: +1 [z:read] -1 [y:read]"
        );
        assert_eq!(Summary::between(&old, &old), Summary::default());
    }
}
