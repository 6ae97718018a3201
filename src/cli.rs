//! The commands behind the CLI; each returns what `main` turns into an exit code.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use http::Method;
use scopegate::app::App;
use scopegate::auth::{AuthFailure, Authenticator, Principal};
use scopegate::config::Config;
use scopegate::normalize::NormalizeOptions;
use scopegate::policy::Policy;
use scopegate::tooling::{demo::Demo, explain, policy_test, token};

/// Reads a process environment variable (HMAC secrets by `secret_env`).
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `scopegate run`.
pub async fn run(config_path: &Path) -> Result<()> {
    let config = Config::load(config_path)?;
    let listen = config.listen;
    let app = App::build(config, &env)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(addr = %listener.local_addr()?, policy = %app.config.policy.display(), "scopegate listening");
    app.serve(listener, shutdown_signal()).await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// `scopegate demo`.
pub async fn demo(listen: SocketAddr) -> Result<()> {
    let demo = Demo::start(listen).await?;
    println!(
        "scopegate demo: gateway on http://{} -> echo upstream on http://{}",
        demo.addr, demo.upstream
    );
    println!(
        "policy: the bundled policies/orders.yaml; tokens signed with a throw-away HS256 key\n"
    );
    for ex in &demo.examples {
        println!("# {} -> expect {}", ex.what, ex.expect);
        println!("{}\n", ex.curl(demo.addr));
    }
    println!("Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    demo.shutdown().await;
    Ok(())
}

/// `scopegate check`.
pub fn check(config_path: &Path) -> Result<ExitCode> {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let policy = match Policy::load(&config.policy) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Err(e) = Authenticator::new(
        &config.auth,
        config.limits.max_token_bytes,
        config.base_dir(),
        &env,
    ) {
        eprintln!("{}: auth: {e}", config_path.display());
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "ok: {} ({} routes, {} roles, {} scopes{}, mode {:?}, version {})",
        config.policy.display(),
        policy.route_count(),
        policy.roles().len(),
        policy.known_scopes().len(),
        if policy.catalog().is_some() {
            " in the catalog"
        } else {
            " required"
        },
        policy.mode,
        &policy.version[..12]
    );
    Ok(ExitCode::SUCCESS)
}

/// Flags of `scopegate explain`.
#[derive(Args)]
pub struct ExplainArgs {
    #[arg(
        short,
        long,
        env = "SCOPEGATE_CONFIG",
        default_value = "scopegate.yaml"
    )]
    config: PathBuf,
    /// HTTP method, e.g. GET.
    method: String,
    /// Request path, e.g. /orders/7.
    path: String,
    /// Decide for the caller of this JWT (verified with the config's issuers).
    #[arg(long, conflicts_with_all = ["role", "scope", "claim"])]
    token: Option<String>,
    /// Caller roles (repeatable, or space-separated).
    #[arg(long)]
    role: Vec<String>,
    /// Token scopes (repeatable, or space-separated); none given: no scope claim.
    #[arg(long)]
    scope: Vec<String>,
    /// Claims as k=v (repeatable); a JSON value is taken as JSON.
    #[arg(long)]
    claim: Vec<String>,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

/// `scopegate explain`.
pub fn explain(args: &ExplainArgs) -> Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let policy = Policy::load(&config.policy)?;
    let method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .context("not an HTTP method")?;
    let caller: Option<Result<Principal, AuthFailure>> = match &args.token {
        Some(t) => {
            let auth = Authenticator::new(
                &config.auth,
                config.limits.max_token_bytes,
                config.base_dir(),
                &env,
            )?;
            // Keys from an IdP are fetched once; an unknown kid may refetch them.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let verified = rt.block_on(async {
                auth.fetch_keys().await?;
                anyhow::Ok(auth.verify_jwt(t).await)
            })?;
            Some(verified.map(std::sync::Arc::unwrap_or_clone))
        }
        None if args.role.is_empty() && args.scope.is_empty() && args.claim.is_empty() => None,
        None => Some(Ok(principal(args)?)),
    };
    let opts = NormalizeOptions {
        allow_semicolons: config.paths.allow_semicolons,
    };
    let e = explain::explain(&policy, &method, &args.path, caller, opts);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        for line in &e.trace {
            println!("  {line}");
        }
        println!(
            "{} {} -> {} {}{}",
            method,
            args.path,
            e.status,
            e.decision,
            e.reason.map(|r| format!(" ({r})")).unwrap_or_default()
        );
        if !e.missing_scopes.is_empty() {
            println!("missing scopes: {}", e.missing_scopes.join(" "));
        }
        if !e.effective_scopes.is_empty() {
            println!("effective scopes: {}", e.effective_scopes.join(" "));
        }
    }
    Ok(if e.decision == "deny" {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn principal(args: &ExplainArgs) -> Result<Principal> {
    let mut claims = serde_json::Map::new();
    for (k, v) in parse_claims(&args.claim)? {
        claims.insert(
            k,
            serde_json::from_str(&v).unwrap_or(serde_json::Value::String(v)),
        );
    }
    Ok(Principal {
        subject: claims.get("sub").and_then(|s| s.as_str()).map(String::from),
        roles: split(&args.role),
        scopes: (!args.scope.is_empty()).then(|| split(&args.scope)),
        claims,
    })
}

/// Repeatable flags also take space-separated values.
fn split(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split_whitespace())
        .map(String::from)
        .collect()
}

fn parse_claims(values: &[String]) -> Result<Vec<(String, String)>> {
    values
        .iter()
        .flat_map(|v| v.split_whitespace())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--claim `{kv}`: expected key=value"),
        })
        .collect()
}

/// `scopegate test`.
pub fn test(config: Option<&Path>, files: &[PathBuf]) -> Result<ExitCode> {
    let fallback = match config {
        Some(c) => Some(Config::load(c)?.policy),
        None => None,
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in files {
        let outcomes = match policy_test::run_file(file, fallback.as_deref()) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("{e}");
                failed += 1;
                continue;
            }
        };
        for o in outcomes {
            if o.passed {
                passed += 1;
            } else {
                failed += 1;
                println!("FAIL {}: {}", file.display(), o.name);
                println!("  {}", o.mismatch.unwrap_or_default());
                for line in o.trace {
                    println!("    {line}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Flags of `scopegate token`.
#[derive(Args)]
pub struct TokenArgs {
    /// HMAC secret (its raw bytes).
    #[arg(long, env = "SCOPEGATE_TOKEN_SECRET")]
    secret: String,
    #[arg(long)]
    sub: Option<String>,
    /// Roles (repeatable, or space-separated).
    #[arg(long)]
    role: Vec<String>,
    /// Scopes (repeatable, or space-separated).
    #[arg(long)]
    scope: Vec<String>,
    #[arg(long)]
    iss: Option<String>,
    #[arg(long)]
    aud: Option<String>,
    /// Lifetime, e.g. 15m, 1h.
    #[arg(long, value_parser = crate::parse_duration)]
    ttl: Option<std::time::Duration>,
    /// Extra claims as k=v (repeatable); overrides any claim; JSON values are taken as JSON.
    #[arg(long)]
    claim: Vec<String>,
}

/// `scopegate token`.
pub fn token(args: &TokenArgs) -> Result<()> {
    let spec = token::TokenSpec {
        sub: args.sub.clone(),
        roles: split(&args.role),
        scopes: split(&args.scope),
        iss: args.iss.clone(),
        aud: args.aud.clone(),
        ttl: args.ttl,
        claims: parse_claims(&args.claim)?,
    };
    println!("{}", token::mint(args.secret.as_bytes(), &spec)?);
    Ok(())
}
