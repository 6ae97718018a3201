//! The gateway config file (`scopegate.yaml`): serde types, defaults, loading.
//!
//! Read once at start (restart to change it); only the policy, API-key and TLS files it
//! names are watched. Relative paths are resolved against the config file's directory.

pub mod auth;
pub mod units;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::yaml::{self, Located, Pos};

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(#[from] Located),
}

/// The whole gateway config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub admin: AdminConfig,
    pub upstream: UpstreamConfig,
    #[serde(default)]
    pub auth: auth::AuthConfig,
    pub policy: PathBuf,
    #[serde(default)]
    pub identity_headers: IdentityHeaders,
    #[serde(default)]
    pub forwarded: ForwardedConfig,
    #[serde(default)]
    pub paths: PathsConfig,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub reload: ReloadConfig,
    /// Where the file was read from; relative paths above are already resolved against it.
    #[serde(skip)]
    pub source: PathBuf,
}

/// HTTPS on the public listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// The admin listener (metrics, health, `/v1/*`), never on the public port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: default_admin_listen(),
        }
    }
}

/// The API behind the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub url: String,
    #[serde(default)]
    pub ca: Option<PathBuf>,
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "units::duration"
    )]
    pub connect_timeout: Duration,
    #[serde(
        default = "default_upstream_timeout",
        deserialize_with = "units::duration"
    )]
    pub timeout: Duration,
    #[serde(default)]
    pub http2: bool,
    /// Idle upstream connections kept for reuse; more are closed once their response is
    /// done. A burst of concurrent requests opens one connection each, and without a cap
    /// every one of them would stay open (and hold its buffers) until the idle timeout.
    #[serde(default = "default_max_idle_connections")]
    pub max_idle_connections: usize,
}

/// Names of the headers that carry the caller's identity upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityHeaders {
    #[serde(default = "default_subject_header")]
    pub subject: String,
    #[serde(default = "default_roles_header")]
    pub roles: String,
    #[serde(default = "default_scopes_header")]
    pub scopes: String,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        IdentityHeaders {
            subject: default_subject_header(),
            roles: default_roles_header(),
            scopes: default_scopes_header(),
        }
    }
}

/// Which peers' `X-Forwarded-*` headers are believed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardedConfig {
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Path handling switches.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsConfig {
    #[serde(default)]
    pub allow_semicolons: bool,
}

/// How changes to the policy and API-key files are noticed (not in the SPEC's example:
/// an addition, documented in the README (Operating)).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadConfig {
    /// Watch the files' directories (inotify and the like).
    #[serde(default = "default_true")]
    pub watch: bool,
    /// Also re-read the files this often and reload when their content hash changed,
    /// for filesystems where watching sees nothing (some network filesystems); `0s` = never.
    #[serde(
        default = "default_poll_interval",
        deserialize_with = "units::duration"
    )]
    pub poll_interval: Duration,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig {
            watch: true,
            poll_interval: default_poll_interval(),
        }
    }
}

/// Resource limits on the public listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(
        default = "default_header_read_timeout",
        deserialize_with = "units::duration"
    )]
    pub header_read_timeout: Duration,
    #[serde(default = "default_max_header_bytes", deserialize_with = "units::size")]
    pub max_header_bytes: usize,
    #[serde(default = "default_max_token_bytes", deserialize_with = "units::size")]
    pub max_token_bytes: usize,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(
        default = "default_shutdown_grace",
        deserialize_with = "units::duration"
    )]
    pub shutdown_grace: Duration,
    /// Threads running connections; 0 means one per CPU the process may use (cgroup
    /// quotas count). A sidecar sharing a small node with its app often does better
    /// with fewer threads than cores.
    #[serde(default)]
    pub worker_threads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: default_header_read_timeout(),
            max_header_bytes: default_max_header_bytes(),
            max_token_bytes: default_max_token_bytes(),
            max_connections: default_max_connections(),
            shutdown_grace: default_shutdown_grace(),
            worker_threads: 0,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}
fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9901))
}
fn default_max_idle_connections() -> usize {
    64
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_upstream_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_subject_header() -> String {
    "X-Auth-Subject".into()
}
fn default_roles_header() -> String {
    "X-Auth-Roles".into()
}
fn default_scopes_header() -> String {
    "X-Auth-Scopes".into()
}
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_header_bytes() -> usize {
    16 * 1024
}
fn default_max_token_bytes() -> usize {
    8 * 1024
}
fn default_max_connections() -> usize {
    10_000
}
fn default_true() -> bool {
    true
}
/// One second: even when a file watch misses an event, a change is seen within the
/// 2 s the contract promises (a hash of a small file per second costs nothing).
fn default_poll_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(30)
}

impl Config {
    /// Reads a config file and resolves its relative paths against its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_str(path, &text)
    }

    /// Parses config text; `path` locates it (messages, relative paths).
    pub fn from_str(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = yaml::from_str(path, text)?;
        config.source = path.to_path_buf();
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.check(path)?;
        Ok(config)
    }

    /// The directory relative paths were resolved against.
    pub fn base_dir(&self) -> &Path {
        self.source.parent().unwrap_or(Path::new("."))
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.policy);
        if let Some(tls) = &mut self.tls {
            fix(&mut tls.cert);
            fix(&mut tls.key);
            if let Some(ca) = &mut tls.client_ca {
                fix(ca);
            }
        }
        if let Some(ca) = &mut self.upstream.ca {
            fix(ca);
        }
        self.auth.resolve_paths(base);
    }

    /// Checks what serde cannot: values that parse but cannot work.
    fn check(&self, path: &Path) -> Result<(), Located> {
        let bad = |m: String| Located::new(path, Pos::default(), m);
        let url: http::Uri = self
            .upstream
            .url
            .parse()
            .map_err(|e| bad(format!("upstream.url `{}`: {e}", self.upstream.url)))?;
        let https = match url.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(bad(format!(
                    "upstream.url `{}` must be http://host:port or https://host:port",
                    self.upstream.url
                )));
            }
        };
        if url.authority().is_none() {
            return Err(bad(format!(
                "upstream.url `{}` has no host",
                self.upstream.url
            )));
        }
        // A CA for a plain-http upstream would verify nothing: say so instead of ignoring it.
        if !https && self.upstream.ca.is_some() {
            return Err(bad(
                "upstream.ca is only used with an https upstream.url".into()
            ));
        }
        for (name, value) in [
            ("subject", &self.identity_headers.subject),
            ("roles", &self.identity_headers.roles),
            ("scopes", &self.identity_headers.scopes),
        ] {
            http::HeaderName::from_bytes(value.as_bytes()).map_err(|_| {
                bad(format!(
                    "identity_headers.{name}: `{value}` is not a header name"
                ))
            })?;
        }
        // hyper's HTTP/1 read buffer cannot be smaller than 8 KiB, so a smaller limit
        // could not be enforced: refuse it rather than pretend.
        if self.limits.max_header_bytes < 8192 {
            return Err(bad("limits.max_header_bytes must be at least 8KiB".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
