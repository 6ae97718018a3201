//! Placeholder until the authentication module lands.
use std::sync::Arc;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Principal {
    pub subject: Option<String>,
    pub roles: Vec<String>,
    pub scopes: Option<Vec<String>>,
    pub claims: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no credentials")]
    Missing,
    #[error("expired")]
    Expired,
    #[error("invalid")]
    Invalid(InvalidReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidReason {
    Malformed,
}
impl InvalidReason {
    pub fn as_str(&self) -> &'static str {
        "malformed"
    }
}

pub mod claims {
    use serde_json::{Map, Value};
    pub fn lookup<'a>(claims: &'a Map<String, Value>, dotted: &str) -> Option<&'a Value> {
        claims.get(dotted)
    }
}
pub fn _unused(_: Arc<Principal>) {}
