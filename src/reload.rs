//! Hot reload of the policy and API-key files: a directory watch, SIGHUP, and a
//! content-hash poll, all feeding one reload thread.
//!
//! Watching the *directory* (not the file) is what sees editor rename-writes, files
//! replaced by a new inode, and Kubernetes ConfigMap updates (the kubelet swaps a
//! `..data` symlink beside the file). Symlinks are re-resolved on every attempt, and a
//! target outside the watched directory gets its own directory watched too. Events are
//! debounced so a burst of writes is one attempt. Parsing and compiling run on the
//! reload thread, never on the request path; a new policy is swapped in only once
//! fully compiled (see [`attempt`]), and the one it replaced is freed there too, once
//! the last request deciding on it is done (see [`retire`]).

mod attempt;
mod diff;
mod retire;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use notify_debouncer_full::notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, new_debouncer};

pub use attempt::Trigger;
pub use diff::{Changes, Summary};

use crate::auth::Authenticator;
use crate::config::{Config, ReloadConfig};
use crate::policy::{LivePolicy, Policy};
use attempt::Watched;
use retire::Retired;

/// How long after a change event the files are looked at again, by content hash.
const SETTLE: Duration = Duration::from_millis(400);

/// Events closer together than this are one reload attempt.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// How often a replaced policy still held by requests is looked at again.
const RETIRE_CHECK: Duration = Duration::from_millis(50);

/// Why hot reload could not be started (the gateway still serves the policy it has).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot listen for SIGHUP: {0}")]
    Signal(#[source] std::io::Error),
    #[error("cannot start the reload thread: {0}")]
    Thread(#[source] std::io::Error),
}

#[derive(Debug, PartialEq)]
enum Msg {
    /// Paths the watcher saw change.
    Changed(Vec<PathBuf>),
    /// The watcher may have missed changes (its event queue overflowed, or it failed):
    /// look at every file again, by content hash.
    Rescan,
    Signal,
    Stop,
}

/// What the reload thread hears of a batch of debounced watch events.
fn message(res: DebounceEventResult) -> Msg {
    match res {
        Ok(events) if events.iter().any(|e| e.need_rescan()) => Msg::Rescan,
        Ok(events) => Msg::Changed(events.into_iter().flat_map(|e| e.event.paths).collect()),
        Err(errors) => {
            for e in errors {
                tracing::warn!(error = %e, "file watch error; looking at the files again");
            }
            Msg::Rescan
        }
    }
}

/// The files to reload and where they go.
pub struct Reloader {
    live: Arc<LivePolicy>,
    auth: Arc<Authenticator>,
    policy: Watched,
    keys: Option<Watched>,
    retired: Retired<Policy>,
}

impl Reloader {
    /// Reloads `config.policy` into `live` and `config.auth.api_keys.file` into `auth`.
    /// Both are assumed to be in force already with the files' current content.
    pub fn new(config: &Config, live: Arc<LivePolicy>, auth: Arc<Authenticator>) -> Reloader {
        let version = live.load().version.clone();
        let keys = config.auth.api_keys.as_ref().map(|k| {
            let path = absolute(&k.file);
            let seen = std::fs::read(&path).ok().map(|b| crate::hex::sha256(&b));
            Watched::new(path, seen)
        });
        Reloader {
            live,
            auth,
            policy: Watched::new(absolute(&config.policy), Some(version)),
            keys,
            retired: Retired::default(),
        }
    }

    /// One attempt on both files.
    pub fn reload(&mut self, trigger: Trigger) {
        self.reload_keys(trigger);
        self.reload_policy(trigger);
    }

    fn reload_policy(&mut self, trigger: Trigger) {
        attempt::policy(&mut self.policy, &self.live, &mut self.retired, trigger);
    }

    fn reload_keys(&mut self, trigger: Trigger) {
        if let Some(keys) = &mut self.keys {
            attempt::api_keys(keys, &self.auth, trigger);
        }
    }

    /// The directories to watch: each file's own, plus its symlink target's when that
    /// lies elsewhere.
    fn dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for file in self.files() {
            let dir = parent(file);
            if let Ok(target) = std::fs::canonicalize(file) {
                let target_dir = parent(&target);
                let inside = std::fs::canonicalize(&dir).is_ok_and(|d| target_dir.starts_with(d));
                if !inside {
                    out.push(target_dir);
                }
            }
            out.push(dir);
        }
        out
    }

    fn files(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.policy.path.as_path())
            .chain(self.keys.iter().map(|k| k.path.as_path()))
    }

    /// True when a changed path can mean a change to `file`: the file itself, its
    /// current symlink target, or a Kubernetes `..data`-style entry beside it.
    fn concerns(file: &Path, changed: &Path) -> bool {
        if changed == file {
            return true;
        }
        if changed
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".."))
            && changed.parent() == file.parent()
        {
            return true;
        }
        std::fs::canonicalize(file).is_ok_and(|t| t == changed)
    }
}

/// Keeps hot reload running; dropping it stops the reload thread, its watcher and the
/// SIGHUP listener.
pub struct ReloadHandle {
    tx: Sender<Msg>,
    sighup: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for ReloadHandle {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(task) = self.sighup.take() {
            task.abort();
        }
    }
}

/// Starts hot reload per `config`: the directory watch (`watch`), SIGHUP, and the poll.
/// Must be called within a tokio runtime (the SIGHUP listener is a task).
pub fn start(config: &ReloadConfig, reloader: Reloader) -> Result<ReloadHandle, ReloadError> {
    let (tx, rx) = std::sync::mpsc::channel();
    #[cfg(not(unix))]
    let sighup = None;
    #[cfg(unix)]
    let sighup = {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).map_err(ReloadError::Signal)?;
        let hup_tx = tx.clone();
        Some(tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading");
                if hup_tx.send(Msg::Signal).is_err() {
                    break;
                }
            }
        }))
    };
    let watcher_tx = config.watch.then(|| tx.clone());
    let poll = config.poll_interval;
    let (armed_tx, armed) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("scopegate-reload".into())
        .spawn(move || run(reloader, rx, watcher_tx, poll, armed_tx))
        .map_err(ReloadError::Thread)?;
    // Return only once the directories are watched, so a change made right after the
    // gateway starts serving is never missed (it would wait for the poll otherwise).
    let _ = armed.recv_timeout(Duration::from_secs(5));
    Ok(ReloadHandle { tx, sighup })
}

/// The reload thread: one attempt at a time, in the order the triggers came.
fn run(
    mut r: Reloader,
    rx: Receiver<Msg>,
    watcher_tx: Option<Sender<Msg>>,
    poll: Duration,
    armed: std::sync::mpsc::SyncSender<()>,
) {
    let mut debouncer = watcher_tx.and_then(|tx| {
        let handler = move |res: DebounceEventResult| {
            let _ = tx.send(message(res));
        };
        match new_debouncer(DEBOUNCE, None, handler) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch files; relying on SIGHUP and the poll");
                None
            }
        }
    });
    let mut watched: HashSet<PathBuf> = HashSet::new();
    let mut rewatch = |r: &Reloader| {
        let Some(d) = debouncer.as_mut() else { return };
        for dir in r.dirs() {
            if watched.contains(&dir) {
                continue;
            }
            match d.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::debug!(dir = %dir.display(), "watching");
                    watched.insert(dir);
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory")
                }
            }
        }
    };
    rewatch(&r);
    let _ = armed.send(());
    let polling = !poll.is_zero();
    let mut next_poll = Instant::now() + poll;
    // A writer may still be writing when a change event's attempt reads the file
    // (truncate, then write): look again shortly after, by content hash.
    let mut settle: Option<Instant> = None;
    loop {
        let mut due = if polling {
            next_poll
        } else {
            Instant::now() + Duration::from_secs(3600)
        };
        if let Some(at) = settle {
            due = due.min(at);
        }
        if r.retired.waiting() {
            due = due.min(Instant::now() + RETIRE_CHECK);
        }
        match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(Msg::Changed(paths)) => {
                let policy = paths.iter().any(|p| Reloader::concerns(&r.policy.path, p));
                let keys = r
                    .keys
                    .as_ref()
                    .is_some_and(|k| paths.iter().any(|p| Reloader::concerns(&k.path, p)));
                // Keys first: an attempt on either is over before a later one begins,
                // so whoever sees the policy change knows the keys were looked at too.
                if keys {
                    r.reload_keys(Trigger::Watch);
                }
                if policy {
                    r.reload_policy(Trigger::Watch);
                }
                if keys || policy {
                    settle = Some(Instant::now() + SETTLE);
                }
            }
            Ok(Msg::Rescan) => r.reload(Trigger::Poll),
            Ok(Msg::Signal) => r.reload(Trigger::Signal),
            Err(RecvTimeoutError::Timeout) => {
                if settle.is_some_and(|at| at <= Instant::now()) {
                    settle = None;
                    r.reload(Trigger::Poll);
                }
                if polling && next_poll <= Instant::now() {
                    r.reload(Trigger::Poll);
                    next_poll = Instant::now() + poll;
                }
            }
        }
        rewatch(&r);
        r.retired.release();
    }
    tracing::debug!("reload thread stopped");
}

fn parent(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The path made absolute without resolving symlinks (they are re-resolved per attempt).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests;
