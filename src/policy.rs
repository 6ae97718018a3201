//! The compiled policy: plain runtime types that the decision reads on the hot path.
//!
//! A policy file goes `raw` (serde) → `compile` (validation, template expansion,
//! inheritance) → [`Policy`]. Nothing here parses or allocates per request; route labels
//! are `Arc<str>` fixed at compile time so metrics never format a label per request.
//!
//! The compiled form is kept small because a 10,000-route policy lives in every gateway
//! (and twice during a reload): what many rules have alike (a method, a scope list, an
//! `Allow` header) is stored once and shared, and every list is allocated to its length.

mod compile;
mod live;
mod method;
pub mod raw;
pub mod scope;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::{HeaderValue, Method};

use crate::yaml::Located;
pub use live::{LivePolicy, PolicyStatus};
pub use method::RuleMethod;
pub use raw::{Mode, Unmatched};

/// Index of a role in [`Policy::roles`].
pub type RoleId = usize;

/// A policy that failed to load: every problem found, each `file:line:col: message`.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", join(.0))]
    Invalid(Vec<Located>),
}

fn join(errors: &[Located]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// A compiled, validated policy. Immutable: a reload builds a new one.
#[derive(Debug)]
pub struct Policy {
    pub mode: Mode,
    pub unmatched: Unmatched,
    /// Lower-case hex SHA-256 of the file's bytes: what `/v1/policy` calls the version.
    pub version: String,
    pub file: PathBuf,
    router: matchit::Router<usize>,
    paths: Box<[PathEntry]>,
    routes: Box<[Route]>,
    roles: Vec<Role>,
    role_ids: HashMap<Box<str>, RoleId>,
    default_role: Option<RoleId>,
    catalog: Option<BTreeMap<String, String>>,
    known_scopes: Box<[Box<str>]>,
}

/// All routes written for one path pattern, by method.
#[derive(Debug)]
pub struct PathEntry {
    pub pattern: Arc<str>,
    pub rules: Box<[MethodRule]>,
    /// The `Allow` header for a 405 on this path; paths with the same methods share its bytes.
    pub allow: HeaderValue,
    /// Metric handles of requests on this path, registered on first use.
    pub metrics: crate::telemetry::RouteMetrics,
}

/// A list of scopes a rule requires, shared by every rule requiring the same list.
pub type ScopeList = Arc<[Box<str>]>;

/// The groups of an `any_scopes` requirement, shared like [`ScopeList`].
pub type ScopeGroups = Arc<[Box<[Box<str>]>]>;

/// What one method on one path requires. Rules that require the same scopes share one
/// list (a templated route's GET and HEAD, the many routes of one resource).
#[derive(Debug)]
pub struct MethodRule {
    pub method: RuleMethod,
    /// Index into the policy's routes.
    pub route: usize,
    /// All of these (`scopes`), templates already expanded for this method.
    pub all: ScopeList,
    /// Any one group, all of the group (`any_scopes`); empty means no such requirement.
    pub any: ScopeGroups,
}

/// A route's method-independent parts.
#[derive(Debug)]
pub struct Route {
    /// Position in the file's `routes` list, for messages and traces.
    pub index: usize,
    pub pattern: Arc<str>,
    pub public: bool,
    pub mode: Option<Mode>,
    /// Role gate: the caller must hold one of these (directly or through `inherits`).
    pub roles: Box<[RoleId]>,
    pub require: Box<[Constraint]>,
    pub bypass_roles: Box<[RoleId]>,
}

/// `require: {param: {in: [...]}}`: the path value must be listed in one of the sources.
#[derive(Debug)]
pub struct Constraint {
    pub param: Box<str>,
    pub sources: Vec<Source>,
    /// `equals` (one source, no `*` wildcard) rather than `in`.
    pub exact: bool,
}

/// Where a constraint looks for allowed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `role:<attribute>`: the union of the caller's roles' attribute lists.
    RoleAttribute(Box<str>),
    /// `claim:<dotted.path>`: a claim of the verified token (string or array).
    Claim(Box<str>),
}

/// A compiled role: its rights after inheritance and deny.
#[derive(Debug)]
pub struct Role {
    pub name: Box<str>,
    pub inherits: Vec<Box<str>>,
    pub own_scopes: Vec<Box<str>>,
    pub deny: Vec<Box<str>>,
    /// Rights as (allowed pattern, patterns denied on the way down the inheritance chain).
    terms: Vec<Term>,
    /// This role and every role it inherits from, transitively.
    pub is_a: Vec<RoleId>,
    /// Own attributes merged with inherited ones (lists appended, duplicates removed).
    pub attributes: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone)]
struct Term {
    allow: Box<str>,
    deny: Vec<Box<str>>,
}

impl Role {
    /// True when this role's rights include `scope`.
    pub fn holds(&self, scope: &str) -> bool {
        self.terms.iter().any(|t| {
            scope::covers(&t.allow, scope) && !t.deny.iter().any(|d| scope::covers(d, scope))
        })
    }
}

/// The result of finding a path and method in the policy (step 2).
#[derive(Debug)]
pub enum Lookup<'p, 'a> {
    Matched {
        entry: &'p PathEntry,
        rule: &'p MethodRule,
        route: &'p Route,
        params: matchit::Params<'p, 'a>,
    },
    MethodNotAllowed(&'p PathEntry),
    NoRoute,
}

impl Policy {
    /// Reads, validates and compiles a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let bytes = std::fs::read(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::from_bytes(path, &bytes)
    }

    /// Validates and compiles policy text; `path` names the file in messages.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Policy, PolicyError> {
        compile::compile(path, bytes).map_err(PolicyError::Invalid)
    }

    /// Step 2: the route for a normalized path and a method.
    pub fn lookup<'p, 'a>(&'p self, method: &Method, path: &'a str) -> Lookup<'p, 'a> {
        let Ok(found) = self.router.at(path) else {
            return Lookup::NoRoute;
        };
        let entry = &self.paths[*found.value];
        match entry.rules.iter().find(|r| r.method == *method) {
            Some(rule) => Lookup::Matched {
                entry,
                rule,
                route: &self.routes[rule.route],
                params: found.params,
            },
            None => Lookup::MethodNotAllowed(entry),
        }
    }

    /// The role of that name, if the policy defines it.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.role_ids.get(name).map(|&id| &self.roles[id])
    }

    /// The id of the role of that name.
    pub fn role_id(&self, name: &str) -> Option<RoleId> {
        self.role_ids.get(name).copied()
    }

    /// All roles, in name order.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// True when the policy defines roles; without them every scope is granted.
    pub fn has_roles(&self) -> bool {
        !self.roles.is_empty()
    }

    /// The role of a caller whose credential names none.
    pub fn default_role(&self) -> Option<&Role> {
        self.default_role.map(|id| &self.roles[id])
    }

    /// The scope catalog, when the policy has one.
    pub fn catalog(&self) -> Option<&BTreeMap<String, String>> {
        self.catalog.as_ref()
    }

    /// Every scope the policy knows, sorted: the catalog, or else every scope a route
    /// requires or a role names literally.
    pub fn known_scopes(&self) -> &[Box<str>] {
        &self.known_scopes
    }

    /// Every path pattern with its per-method rules (for `check`'s lint and reload summaries).
    pub fn paths(&self) -> &[PathEntry] {
        &self.paths
    }

    /// The routes as written, in file order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Number of routes as written in the file.
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    /// The effective rights of one role, sorted: the known scopes it holds, plus its own
    /// wildcard patterns when the policy has no catalog to expand them over.
    pub fn role_scopes(&self, role: &Role) -> Vec<String> {
        let mut held: Vec<String> = self
            .known_scopes
            .iter()
            .filter(|s| role.holds(s))
            .map(|s| s.to_string())
            .collect();
        if self.catalog.is_none() {
            for t in &role.terms {
                if scope::is_wildcard(&t.allow) && !held.iter().any(|h| **h == *t.allow) {
                    held.push(t.allow.to_string());
                }
            }
            held.sort();
        }
        held
    }
}
