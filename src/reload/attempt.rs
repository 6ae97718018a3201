//! One reload attempt of one file: read, compare, parse + validate + compile in full,
//! swap only on success. A file that fails leaves what is in force untouched.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diff::Summary;
use super::retire::Retired;
use crate::auth::{ApiKeys, Authenticator};
use crate::policy::{LivePolicy, Policy};
use crate::telemetry::{self, ReloadResult};

/// Why an attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The watcher saw the file (or its directory's `..data` link) change.
    Watch,
    /// SIGHUP: always attempt, even if the bytes look the same as last time.
    Signal,
    /// The poll timer: attempt only if the content hash differs from the last one seen.
    Poll,
}

/// A watched file and the fingerprint of what was last read from it (or failed to be).
pub(super) struct Watched {
    pub path: PathBuf,
    last_seen: Option<String>,
    /// The fingerprint of the content in force (API keys; the policy has its version).
    in_force: Option<String>,
}

impl Watched {
    /// `in_force`: the fingerprint of what was loaded at start.
    pub fn new(path: PathBuf, in_force: Option<String>) -> Watched {
        Watched {
            path,
            last_seen: in_force.clone(),
            in_force,
        }
    }

    /// Reads the file; `None` when a poll finds nothing new since the last attempt.
    fn read(&mut self, trigger: Trigger) -> Option<(String, std::io::Result<Vec<u8>>)> {
        let read = std::fs::read(&self.path);
        let fingerprint = match &read {
            Ok(bytes) => crate::hex::sha256(bytes),
            Err(e) => format!("unreadable: {:?}", e.kind()),
        };
        if trigger == Trigger::Poll && self.last_seen.as_deref() == Some(fingerprint.as_str()) {
            return None;
        }
        self.last_seen = Some(fingerprint.clone());
        Some((fingerprint, read))
    }
}

/// Reloads the policy file into `live`, the replaced policy into `retired`; `None` when a
/// poll found nothing new.
pub(super) fn policy(
    file: &mut Watched,
    live: &LivePolicy,
    retired: &mut Retired<Policy>,
    trigger: Trigger,
) -> Option<ReloadResult> {
    let (fingerprint, read) = file.read(trigger)?;
    let current = live.load();
    let result = match read {
        Err(e) => fail(live, &file.path, &format!("{}: {e}", file.path.display())),
        Ok(_) if fingerprint == current.version => {
            live.clear_error();
            tracing::debug!(version = %current.version, "policy file unchanged");
            ReloadResult::Unchanged
        }
        Ok(bytes) => match Policy::from_bytes(&file.path, &bytes) {
            Ok(new) => {
                let summary = Summary::between(&current, &new);
                tracing::info!(
                    version = %new.version,
                    previous = %current.version,
                    routes = new.route_count(),
                    changes = %summary,
                    "policy reloaded"
                );
                retired.keep(live.store(new));
                ReloadResult::Success
            }
            Err(e) => fail(live, &file.path, &e.to_string()),
        },
    };
    telemetry::record_reload(result, &live.load().version);
    Some(result)
}

fn fail(live: &LivePolicy, path: &Path, error: &str) -> ReloadResult {
    tracing::warn!(
        file = %path.display(),
        error,
        version = %live.load().version,
        "policy reload failed; the policy in force stays"
    );
    live.record_failure(error.to_string());
    ReloadResult::Failure
}

/// Reloads the API-key file into `auth`, under the same rules as the policy. The file
/// holds only hashes, and no message repeats one.
pub(super) fn api_keys(
    file: &mut Watched,
    auth: &Arc<Authenticator>,
    trigger: Trigger,
) -> Option<ReloadResult> {
    let (fingerprint, read) = file.read(trigger)?;
    let text = read.and_then(|b| {
        String::from_utf8(b).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    });
    if text.is_ok() && file.in_force.as_deref() == Some(fingerprint.as_str()) {
        return Some(ReloadResult::Unchanged);
    }
    let result = match text.map(|t| ApiKeys::from_yaml_str(&file.path, &t)) {
        Err(e) => {
            tracing::warn!(file = %file.path.display(), error = %e, "API key file unreadable; the keys in force stay");
            ReloadResult::Failure
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "API key file refused; the keys in force stay");
            ReloadResult::Failure
        }
        Ok(Ok(keys)) => {
            auth.set_api_keys(keys);
            file.in_force = Some(fingerprint.clone());
            tracing::info!(file = %file.path.display(), version = %fingerprint, "API keys reloaded");
            ReloadResult::Success
        }
    };
    Some(result)
}
