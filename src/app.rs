//! Assembly: config → live policy + authenticator + gateway, ready to serve.
//!
//! Everything is validated here before any port is bound, so a bad config or policy
//! stops the process at start instead of serving with a half-built state.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::auth::{self, Authenticator};
use crate::config::Config;
use crate::policy::{LivePolicy, Policy, PolicyError};
use crate::proxy::{Gateway, SetupError, server};

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
}

/// A gateway ready to serve, with handles to its live parts.
pub struct App {
    pub config: Config,
    pub gateway: Gateway,
    /// The live policy: a reload stores a new one here.
    pub policy: Arc<LivePolicy>,
    pub auth: Arc<Authenticator>,
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
        let policy = Arc::new(LivePolicy::new(policy));
        let gateway = Gateway::new(&config, policy.clone(), auth.clone())?;
        Ok(App {
            config,
            gateway,
            policy,
            auth,
        })
    }

    /// Serves on `listener` until `shutdown` resolves, then drains within the grace period.
    /// Identity-provider keys are fetched and refreshed for as long as it serves.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let _refresh = self.auth.spawn_key_refresh();
        server::serve(listener, self.gateway, &self.config.limits, shutdown).await;
    }
}
