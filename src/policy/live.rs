//! The live policy: the compiled policy requests are decided on, swapped atomically by
//! reloads, plus what the last load attempt said (for `/v1/policy` and metrics).

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use super::{Mode, Policy};

/// What `/v1/policy` reports.
#[derive(Debug, Clone)]
pub struct PolicyStatus {
    /// SHA-256 of the live policy file's bytes.
    pub version: String,
    pub loaded_at: SystemTime,
    pub routes: usize,
    pub mode: Mode,
    /// The last failed attempt's `file:line:col: message`; cleared by a success.
    pub last_error: Option<String>,
}

/// The policy in force and its status. Requests take a snapshot with [`LivePolicy::load`]
/// and keep it to the end; a swap never blocks them.
#[derive(Debug)]
pub struct LivePolicy {
    policy: ArcSwap<Policy>,
    status: ArcSwap<PolicyStatus>,
}

impl LivePolicy {
    /// Starts with a policy that has already been validated.
    pub fn new(policy: Policy) -> LivePolicy {
        let status = status_of(&policy, None);
        LivePolicy {
            policy: ArcSwap::from_pointee(policy),
            status: ArcSwap::from_pointee(status),
        }
    }

    /// The policy in force now: one atomic load, no lock.
    pub fn load(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// Puts a new, fully compiled policy in force and clears the last error. Returns the
    /// replaced policy, so the caller decides where its memory is freed.
    pub fn store(&self, policy: Policy) -> Arc<Policy> {
        self.status.store(Arc::new(status_of(&policy, None)));
        self.policy.swap(Arc::new(policy))
    }

    /// Records a failed load; the policy in force stays.
    pub fn record_failure(&self, error: String) {
        let mut status = PolicyStatus::clone(&self.status.load());
        status.last_error = Some(error);
        self.status.store(Arc::new(status));
    }

    /// The file on disk is the policy in force again (an edit was reverted): the last
    /// failure no longer describes it.
    pub fn clear_error(&self) {
        let status = self.status.load();
        if status.last_error.is_some() {
            let mut status = PolicyStatus::clone(&status);
            status.last_error = None;
            self.status.store(Arc::new(status));
        }
    }

    /// What `/v1/policy` shows.
    pub fn status(&self) -> Arc<PolicyStatus> {
        self.status.load_full()
    }
}

fn status_of(policy: &Policy, last_error: Option<String>) -> PolicyStatus {
    PolicyStatus {
        version: policy.version.clone(),
        loaded_at: SystemTime::now(),
        routes: policy.route_count(),
        mode: policy.mode,
        last_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_failure_keeps_the_policy_and_a_success_clears_the_error() {
        let a = Policy::from_bytes(Path::new("a.yaml"), b"version: 1\n").unwrap();
        let b = Policy::from_bytes(Path::new("b.yaml"), b"version: 1\nmode: shadow\n").unwrap();
        let live = LivePolicy::new(a);
        let before = live.load();
        live.record_failure("b.yaml:1:1: nope".into());
        assert!(Arc::ptr_eq(&before, &live.load()));
        assert_eq!(
            live.status().last_error.as_deref(),
            Some("b.yaml:1:1: nope")
        );
        drop(live.store(b));
        assert_eq!(live.load().mode, Mode::Shadow);
        assert_eq!(live.status().last_error, None);
        // The old snapshot is still whole for whoever holds it.
        assert_eq!(before.mode, Mode::Enforce);
    }

    #[test]
    fn an_old_snapshot_is_freed_once_the_last_request_drops_it() {
        let a = Policy::from_bytes(Path::new("a.yaml"), b"version: 1\n").unwrap();
        let b = Policy::from_bytes(Path::new("b.yaml"), b"version: 1\nmode: shadow\n").unwrap();
        let live = LivePolicy::new(a);
        let in_flight = live.load();
        let old = Arc::downgrade(&in_flight);
        drop(live.store(b));
        assert!(old.upgrade().is_some(), "a request still holds it");
        drop(in_flight);
        assert!(old.upgrade().is_none(), "nobody holds it: freed");
    }
}
