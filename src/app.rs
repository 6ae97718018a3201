//! Assembly: config → live policy + authenticator + gateway, ready to serve.
//!
//! Everything is validated here before any port is bound, so a bad config or policy
//! stops the process at start instead of serving with a half-built state.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;

use crate::admin::{self, Admin};
use crate::auth::{self, Authenticator};
use crate::config::Config;
use crate::normalize::NormalizeOptions;
use crate::policy::{LivePolicy, Policy, PolicyError};
use crate::proxy::{Gateway, SetupError, server};
use crate::reload::{self, Reloader};
use crate::telemetry;
use crate::tls::{self, CertReloader, TlsError};

/// Why the gateway could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("auth: {0}")]
    Auth(#[from] auth::AuthSetupError),
    #[error("api keys: {0}")]
    ApiKeys(#[from] auth::ApiKeyFileError),
    #[error("{0}")]
    Setup(#[from] SetupError),
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
}

/// A gateway ready to serve, with handles to its live parts.
pub struct App {
    pub config: Config,
    pub gateway: Gateway,
    /// The live policy: a reload stores a new one here.
    pub policy: Arc<LivePolicy>,
    pub auth: Arc<Authenticator>,
    /// The listener's TLS config and the certificate it serves, when `tls:` is set.
    pub tls: Option<(Arc<rustls::ServerConfig>, Arc<CertReloader>)>,
}

impl App {
    /// Loads the policy and keys the config names; `env` reads environment variables.
    pub fn build(config: Config, env: &dyn Fn(&str) -> Option<String>) -> Result<App, AppError> {
        let policy = Policy::load(&config.policy)?;
        App::with_policy(config, policy, env)
    }

    /// Like [`App::build`] with an already compiled policy (the demo bundles its own).
    pub fn with_policy(
        config: Config,
        policy: Policy,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<App, AppError> {
        let auth = Authenticator::new(
            &config.auth,
            config.limits.max_token_bytes,
            config.base_dir(),
            env,
        )?;
        if let Some(keys) = &config.auth.api_keys {
            auth.set_api_keys(auth::load_api_keys(&keys.file)?);
        }
        let auth = Arc::new(auth);
        telemetry::install();
        telemetry::policy_loaded(&policy.version);
        let policy = Arc::new(LivePolicy::new(policy));
        let gateway = Gateway::new(&config, policy.clone(), auth.clone())?;
        let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
        Ok(App {
            config,
            gateway,
            policy,
            auth,
            tls,
        })
    }

    /// Serves on `listener` until `shutdown` resolves, then drains within the grace period.
    /// With TLS, the certificate files are watched for as long as this runs. No admin
    /// listener: see [`App::run`] for the whole gateway. Identity-provider keys are
    /// fetched and refreshed for as long as it serves.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let _refresh = self.auth.spawn_key_refresh();
        let (tls, watch) = match self.tls {
            Some((config, reloader)) => (
                Some(config),
                Some(tokio::spawn(reloader.watch(tls::RELOAD_INTERVAL))),
            ),
            None => (None, None),
        };
        server::serve(listener, self.gateway, &self.config.limits, tls, shutdown).await;
        if let Some(watch) = watch {
            watch.abort();
        }
    }

    /// The admin endpoints of this gateway; `/readyz` turns 503 once `draining` is set.
    pub fn admin(&self, draining: Arc<AtomicBool>) -> Admin {
        Admin::new(
            self.policy.clone(),
            self.auth.clone(),
            telemetry::install(),
            NormalizeOptions {
                allow_semicolons: self.config.paths.allow_semicolons,
            },
            draining,
        )
    }

    /// Runs the gateway and its admin listener until `shutdown` resolves. Then `/readyz`
    /// answers 503 at once, the public listener stops accepting, requests in flight get
    /// up to `limits.shutdown_grace` to finish, and the admin listener closes last.
    /// The policy and API-key files are hot-reloaded meanwhile (see [`crate::reload`]).
    pub async fn run(self, listeners: Listeners, shutdown: impl Future<Output = ()>) {
        let reloader = Reloader::new(&self.config, self.policy.clone(), self.auth.clone());
        let reload = match reload::start(&self.config.reload, reloader) {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!(error = %e, "hot reload is off");
                None
            }
        };
        let draining = Arc::new(AtomicBool::new(false));
        let admin = self.admin(draining.clone());
        let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin_task = tokio::spawn(admin::serve(listeners.admin, admin, async {
            let _ = admin_stopped.await;
        }));
        let shutdown = async {
            shutdown.await;
            draining.store(true, Ordering::SeqCst);
        };
        self.serve(listeners.public, shutdown).await;
        let _ = stop_admin.send(());
        let _ = admin_task.await;
        drop(reload);
    }
}

/// The two listeners a gateway serves on (bound by the caller, so tests can use port 0).
pub struct Listeners {
    /// The proxy port.
    pub public: TcpListener,
    /// `/metrics`, `/healthz`, `/readyz`, `/v1/*`.
    pub admin: TcpListener,
}
