//! The HTTP method of a compiled rule.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use http::Method;

/// A rule's method, shared by every rule of the policy that has it: a rule holds one
/// pointer instead of a 24-byte [`Method`] (a 10,000-route policy has ~30,000 rules).
/// Reads as the `Method` it points to.
#[derive(Clone, PartialEq, Eq)]
pub struct RuleMethod(Arc<Method>);

impl RuleMethod {
    /// The shared method equal to `method`, added to `known` when it is not there yet.
    pub(crate) fn intern(known: &mut Vec<RuleMethod>, method: &Method) -> RuleMethod {
        if let Some(m) = known.iter().find(|m| *m.0 == *method) {
            return m.clone();
        }
        let m = RuleMethod(Arc::new(method.clone()));
        known.push(m.clone());
        m
    }
}

impl Deref for RuleMethod {
    type Target = Method;

    #[inline]
    fn deref(&self) -> &Method {
        &self.0
    }
}

impl PartialEq<Method> for RuleMethod {
    #[inline]
    fn eq(&self, other: &Method) -> bool {
        *self.0 == *other
    }
}

impl fmt::Display for RuleMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl fmt::Debug for RuleMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}
