//! Helpers for the hot-reload tests: writing policy files the ways operators do, and
//! waiting (by polling the gateway, never by sleeping blindly) for a change to apply.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Harness;

/// How long a change may take to apply (issue 3: "within 3 s").
pub const APPLY_WITHIN: Duration = Duration::from_secs(3);

/// `/flip` is public: a request without credentials is forwarded (200).
pub const OPEN: &str = "version: 1\nscopes:\n  x:read: Read x\nroutes:\n  - path: /flip\n    methods: [GET]\n    public: true\n";
/// `/flip` needs `x:read`: a request without credentials gets 401.
pub const CLOSED: &str = "version: 1\nscopes:\n  x:read: Read x\nroutes:\n  - path: /flip\n    methods: [GET]\n    scopes: [x:read]\n";

impl Harness {
    /// The policy file the gateway's config names.
    pub fn policy_path(&self) -> PathBuf {
        self.dir.path().join("policy.yaml")
    }

    /// The status of `GET /flip` without credentials.
    pub async fn flip(&self) -> u16 {
        self.request("GET", "/flip", &[]).await.status.as_u16()
    }

    /// Polls `GET /flip` until it answers `want`; panics after [`APPLY_WITHIN`].
    pub async fn await_flip(&self, want: u16, since: Instant) -> Duration {
        loop {
            let got = self.flip().await;
            if got == want {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < APPLY_WITHIN,
                "/flip still answers {got} {:?} after the change (wanted {want})",
                since.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `/v1/policy` until `pred` holds on it; panics after [`APPLY_WITHIN`].
    pub async fn await_policy_status(
        &self,
        since: Instant,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        loop {
            let v = self.admin_get("/v1/policy").await.json();
            if pred(&v) {
                return v;
            }
            assert!(since.elapsed() < APPLY_WITHIN, "{what}: /v1/policy is {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Writes `text` beside `path` and renames it over `path`, as editors and deploy tools do.
pub fn rename_write(path: &Path, text: &str) {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, text).expect("write temp file");
    std::fs::rename(&tmp, path).expect("rename over the file");
}

/// Lower-case hex SHA-256 of `text`: the version `/v1/policy` reports for it.
pub fn version_of(text: &str) -> String {
    scopegate::hex::sha256(text.as_bytes())
}
