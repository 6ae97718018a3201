//! `scopegate demo`: the gateway on the bundled example policy in front of a built-in
//! echo upstream, with a throw-away HS256 key and ready-to-run requests for several
//! roles. Needs no files and no other services.

use std::net::SocketAddr;
use std::path::Path;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::echo::EchoServer;
use super::token::{TokenSpec, mint};
use crate::app::{App, AppError};
use crate::config::{Config, ConfigError};
use crate::policy::{Policy, PolicyError};

/// The example policy the demo serves (the reference policy of the policy format).
pub const POLICY: &str = include_str!("../../policies/orders.yaml");

const SECRET_ENV: &str = "SCOPEGATE_DEMO_SECRET";

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("{0}")]
    App(#[from] AppError),
    #[error("{0}")]
    Token(#[from] super::token::TokenError),
}

/// One request to try, and the status the demo policy gives it.
#[derive(Debug, Clone)]
pub struct Example {
    pub what: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub token: Option<String>,
    pub expect: u16,
}

impl Example {
    /// The request as a curl command against `addr`.
    pub fn curl(&self, addr: SocketAddr) -> String {
        let method = if self.method == "GET" {
            String::new()
        } else {
            format!(" -X {}", self.method)
        };
        let auth = self
            .token
            .as_ref()
            .map(|t| format!(" -H 'Authorization: Bearer {t}'"))
            .unwrap_or_default();
        format!(
            "curl -s -o /dev/null -w '%{{http_code}}\\n'{method}{auth} http://{addr}{}",
            self.path
        )
    }
}

/// A running demo: the gateway, its upstream, and the examples to try.
pub struct Demo {
    pub addr: SocketAddr,
    pub upstream: SocketAddr,
    pub examples: Vec<Example>,
    stop: oneshot::Sender<()>,
    echo: EchoServer,
    serving: tokio::task::JoinHandle<()>,
}

impl Demo {
    /// Starts the echo upstream and the gateway on `listen` (or any free loopback port if
    /// that one is taken).
    pub async fn start(listen: SocketAddr) -> Result<Demo, DemoError> {
        let echo = EchoServer::start().await?;
        let secret = format!("{:032x}", rand::random::<u128>());
        let config_text = format!(
            "listen: {listen}\nupstream: {{ url: \"http://{}\" }}\npolicy: demo-policy.yaml\n\
             auth:\n  jwt:\n    issuers:\n      - issuer: scopegate\n        algorithms: [HS256]\n        keys: [{{ alg: HS256, secret_env: {SECRET_ENV} }}]\n",
            echo.addr
        );
        let config = Config::from_str(Path::new("demo.yaml"), &config_text)?;
        let policy = Policy::from_bytes(Path::new("policies/orders.yaml"), POLICY.as_bytes())?;
        let env_secret = secret.clone();
        let app = App::with_policy(config, policy, &move |name| {
            (name == SECRET_ENV).then(|| env_secret.clone())
        })?;
        let listener = match TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(_) => TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?,
        };
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(app.serve(listener, async {
            let _ = stopped.await;
        }));
        Ok(Demo {
            addr,
            upstream: echo.addr,
            examples: examples(secret.as_bytes())?,
            stop,
            echo,
            serving,
        })
    }

    /// Stops the gateway and the upstream.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.serving.await;
        self.echo.shutdown().await;
    }
}

fn examples(secret: &[u8]) -> Result<Vec<Example>, DemoError> {
    let tok = |sub: &str, roles: &[&str], scopes: &[&str]| {
        mint(
            secret,
            &TokenSpec {
                sub: Some(sub.into()),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
        )
        .map(Some)
    };
    let customer = tok("alice", &["customer"], &["orders:read", "orders:write"])?;
    let sneaky = tok("mallory", &["customer"], &["admin:read"])?;
    let admin = tok("root", &["admin"], &[])?;
    let partner = tok("acme", &["partner"], &["orders:read"])?;
    let ex = |what, method, path, token: &Option<String>, expect| Example {
        what,
        method,
        path,
        token: token.clone(),
        expect,
    };
    Ok(vec![
        ex(
            "public health check, no token",
            "GET",
            "/health",
            &None,
            200,
        ),
        ex(
            "no token on a protected route",
            "GET",
            "/orders",
            &None,
            401,
        ),
        ex(
            "customer reads an order",
            "GET",
            "/orders/7",
            &customer,
            200,
        ),
        ex(
            "customer may not delete (insufficient_scope)",
            "DELETE",
            "/orders/7",
            &customer,
            403,
        ),
        ex(
            "admin deletes (holds orders:delete through *)",
            "DELETE",
            "/orders/7",
            &admin,
            200,
        ),
        ex(
            "admin scope on a customer's token (role_not_permitted)",
            "GET",
            "/admin/settings",
            &sneaky,
            403,
        ),
        ex(
            "admin reads settings",
            "GET",
            "/admin/settings",
            &admin,
            200,
        ),
        ex(
            "partner reads a project it belongs to",
            "GET",
            "/partner/projects/p1/orders",
            &partner,
            200,
        ),
        ex(
            "partner on another project (constraint_failed)",
            "GET",
            "/partner/projects/p3/orders",
            &partner,
            403,
        ),
        ex(
            "shadow route: would deny, forwards anyway",
            "GET",
            "/reports/q1",
            &customer,
            200,
        ),
        ex(
            "method not allowed on /orders",
            "PUT",
            "/orders",
            &customer,
            405,
        ),
        ex(
            "dot segments are resolved before deciding",
            "GET",
            "/health/../orders",
            &None,
            401,
        ),
    ])
}
