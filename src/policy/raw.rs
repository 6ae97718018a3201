//! How a policy is *written*: serde types of the policy file, nothing more.
//!
//! Every struct denies unknown fields, because a misspelled key in a security policy
//! (`scope:` for `scopes:`) must not silently widen access. Positions are kept
//! (`Spanned`) wherever a later validation error needs to point at the file.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// `enforce` blocks what is denied; `shadow` only logs and counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Shadow,
}

/// What happens to a request no route matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmatched {
    #[default]
    Deny,
    Allow,
}

/// The policy file's top level.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub version: Spanned<u32>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub actions: Option<BTreeMap<String, Spanned<String>>>,
    #[serde(default)]
    pub scopes: Option<BTreeMap<String, Spanned<String>>>,
    #[serde(default)]
    pub default_role: Option<Spanned<String>>,
    #[serde(default)]
    pub roles: Option<BTreeMap<String, Spanned<RawRole>>>,
    #[serde(default)]
    pub routes: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    pub unmatched: Unmatched,
}

/// A role as written: its own scopes, what it inherits, what it is denied.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    #[serde(default)]
    pub scopes: Vec<Spanned<String>>,
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
    #[serde(default)]
    pub inherits: Vec<Spanned<String>>,
    #[serde(default)]
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// A route as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub path: Spanned<String>,
    #[serde(default)]
    pub methods: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub scopes: Vec<Spanned<String>>,
    #[serde(default)]
    pub any_scopes: Vec<Vec<Spanned<String>>>,
    #[serde(default)]
    pub roles: Vec<Spanned<String>>,
    #[serde(default)]
    pub require: BTreeMap<String, Spanned<RawRequire>>,
    #[serde(default)]
    pub bypass_roles: Vec<Spanned<String>>,
    #[serde(default)]
    pub mode: Option<Mode>,
}

/// A constraint on one path parameter: its value must be found in a source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequire {
    #[serde(default, rename = "in")]
    pub in_: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub equals: Option<Spanned<String>>,
}
