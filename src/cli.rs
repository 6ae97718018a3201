//! The commands behind the CLI; each returns what `main` turns into an exit code.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use http::Method;
use scopegate::app::{App, Listeners};
use scopegate::auth::{AuthFailure, Authenticator, Principal};
use scopegate::config::Config;
use scopegate::normalize::NormalizeOptions;
use scopegate::policy::Policy;
use scopegate::tooling::{demo::Demo, explain, lint, openapi, policy_test, token};

/// Reads a process environment variable (HMAC secrets by `secret_env`).
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `scopegate run`.
pub async fn run(config: Config) -> Result<()> {
    let (listen, admin_listen) = (config.listen, config.admin.listen);
    let app = App::build(config, &env)?;
    let public = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let admin = tokio::net::TcpListener::bind(admin_listen)
        .await
        .with_context(|| format!("binding the admin listener {admin_listen}"))?;
    tracing::info!(
        addr = %public.local_addr()?,
        admin = %admin.local_addr()?,
        policy = %app.config.policy.display(),
        "scopegate listening"
    );
    let grace = app.config.limits.shutdown_grace;
    let first_signal = watch_signals()?;
    let shutdown = async move {
        let _ = first_signal.await;
        tracing::info!(grace = ?grace, "shutting down: finishing requests in flight");
    };
    app.run(Listeners { public, admin }, shutdown).await;
    tracing::info!("stopped");
    Ok(())
}

/// The first SIGTERM/SIGINT resolves the returned receiver (a graceful drain); a second
/// one means "now" and exits at once, skipping the rest of the drain.
fn watch_signals() -> Result<tokio::sync::oneshot::Receiver<()>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        tokio::spawn(async move {
            let mut first = Some(tx);
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                match first.take() {
                    Some(tx) => {
                        let _ = tx.send(());
                    }
                    None => {
                        tracing::warn!(
                            "second signal: exiting without waiting for requests in flight"
                        );
                        std::process::exit(1);
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = tx.send(());
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(1);
    });
    Ok(rx)
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

/// `scopegate check`: the config, its policy and its auth setup (or, with `--policy`,
/// one policy file alone); errors exit 1, lint warnings are printed and exit 0.
pub fn check(config_path: &Path, policy_only: Option<&Path>) -> Result<ExitCode> {
    let policy_path = match policy_only {
        Some(p) => p.to_path_buf(),
        None => {
            let config = match Config::load(config_path) {
                Ok(c) => c,
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
            // The certificate, key and CA files are read now, as `run` would read them.
            if let Some(tls) = &config.tls
                && let Err(e) = scopegate::tls::server_config(tls)
            {
                eprintln!("{}: tls: {e}", config_path.display());
                return Ok(ExitCode::FAILURE);
            }
            if let Err(e) = scopegate::proxy::Upstream::new(&config.upstream) {
                eprintln!("{}: upstream: {e}", config_path.display());
                return Ok(ExitCode::FAILURE);
            }
            config.policy
        }
    };
    let bytes = match std::fs::read(&policy_path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: {e}", policy_path.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let policy = match Policy::from_bytes(&policy_path, &bytes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let warnings = lint::lint(&policy, &policy_path, &String::from_utf8_lossy(&bytes));
    for w in &warnings {
        eprintln!("{w}");
    }
    println!(
        "ok: {} ({} routes, {} roles, {} scopes{}, mode {:?}, version {}){}",
        policy_path.display(),
        policy.route_count(),
        policy.roles().len(),
        policy.known_scopes().len(),
        if policy.catalog().is_some() {
            " in the catalog"
        } else {
            " required"
        },
        policy.mode,
        &policy.version[..12],
        match warnings.len() {
            0 => String::new(),
            1 => ", 1 warning".to_string(),
            n => format!(", {n} warnings"),
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `-c/--config`: the gateway config file, shared by the commands that read one.
#[derive(Args)]
pub struct ConfigPath {
    /// Gateway config file.
    #[arg(
        id = "config",
        short = 'c',
        long = "config",
        env = "SCOPEGATE_CONFIG",
        default_value = "scopegate.yaml"
    )]
    pub path: PathBuf,
}

/// Flags of `scopegate explain`.
#[derive(Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    config: ConfigPath,
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
    let config = Config::load(&args.config.path)?;
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

/// `scopegate test`: with `-c`, the config's policy is the fallback, its issuers verify
/// `token` principals and its path options apply.
pub fn test(config: Option<&Path>, files: &[PathBuf]) -> Result<ExitCode> {
    let config = config.map(Config::load).transpose()?;
    let authenticator = match &config {
        Some(c) => Some(
            Authenticator::new(&c.auth, c.limits.max_token_bytes, c.base_dir(), &env)
                .context("auth")?,
        ),
        None => None,
    };
    let setup = policy_test::Setup {
        fallback_policy: config.as_ref().map(|c| c.policy.as_path()),
        authenticator: authenticator.as_ref(),
        normalize: NormalizeOptions {
            allow_semicolons: config.as_ref().is_some_and(|c| c.paths.allow_semicolons),
        },
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in files {
        let outcomes = match policy_test::run_file(file, &setup) {
            Ok(o) => o,
            Err(e) => {
                println!("FAIL {}: {e}", file.display());
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

/// `--actions` of `scopegate openapi`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ActionsPreset {
    /// GET/HEAD read; POST, PUT, PATCH, DELETE write (Make style).
    ReadWrite,
    /// GET/HEAD read; POST, PUT, PATCH write; DELETE delete (mittwald style).
    ReadWriteDelete,
    /// GET/HEAD read; POST create; PUT, PATCH update; DELETE delete (Keygen style).
    Crud,
}

/// `scopegate openapi`: the policy on stdout, notes about what was left out on stderr.
pub fn openapi(spec: &Path, preset: ActionsPreset) -> Result<ExitCode> {
    let actions = match preset {
        ActionsPreset::ReadWrite => openapi::Actions::ReadWrite,
        ActionsPreset::ReadWriteDelete => openapi::Actions::ReadWriteDelete,
        ActionsPreset::Crud => openapi::Actions::Crud,
    };
    let out = openapi::generate(spec, actions)?;
    for note in &out.notes {
        eprintln!("warning: {note}");
    }
    print!("{}", out.yaml);
    Ok(ExitCode::SUCCESS)
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
