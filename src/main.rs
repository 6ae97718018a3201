//! The `scopegate` command: parses the CLI, sets up logging, validates config and policy
//! before binding anything, and runs the chosen command.

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use scopegate::config::Config;

/// Proxying allocates a few small buffers per request and frees them on another worker
/// thread; mimalloc's per-thread free lists make that markedly cheaper than glibc's
/// malloc (see the README's Performance section).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "scopegate",
    version,
    about = "An authorization gateway: JWT / API-key authentication and scope policies in front of an HTTP API"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "human")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        #[command(flatten)]
        config: cli::ConfigPath,
    },
    /// Run a self-contained demo: echo upstream + example policy + throw-away key.
    Demo {
        /// Where the demo gateway listens (another free port is used if this one is taken).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
    /// Validate the config and its policy; exit 1 with file:line:col errors, print
    /// warnings (exit 0) for policies that probably do not say what was meant.
    Check {
        #[command(flatten)]
        config: cli::ConfigPath,
        /// Check this policy file alone, without a gateway config (wins over -c).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Show the decision for one request, step by step (exit 0 allowed, 1 denied, 2 error).
    Explain(cli::ExplainArgs),
    /// Run policy test files (exit 1 on any failure).
    Test {
        /// Config whose policy is tested when a test file names none.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a policy derived from an OpenAPI 3.0/3.1 document (YAML or JSON).
    Openapi {
        /// The OpenAPI document.
        spec: PathBuf,
        /// Action words for `<domain>:<action>` scopes.
        #[arg(long, value_enum, default_value = "read-write-delete")]
        actions: cli::ActionsPreset,
    },
    /// Mint a development HS256 token.
    Token(cli::TokenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    scopegate::tls::install_provider();
    let result = match cli.command {
        Command::Run { config } => run(&config.path).map(|()| ExitCode::SUCCESS),
        Command::Demo { listen } => runtime(0)
            .and_then(|rt| rt.block_on(cli::demo(listen)))
            .map(|()| ExitCode::SUCCESS),
        Command::Check { config, policy } => cli::check(&config.path, policy.as_deref()),
        Command::Explain(args) => cli::explain(&args).or_else(|e| {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(2))
        }),
        Command::Test { config, files } => cli::test(config.as_deref(), &files),
        Command::Openapi { spec, actions } => cli::openapi(&spec, actions),
        Command::Token(args) => cli::token(&args).map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

/// `scopegate run`: the config is read before the runtime starts because it sizes it.
fn run(path: &Path) -> Result<()> {
    let config = Config::load(path)?;
    runtime(config.limits.worker_threads)?.block_on(cli::run(config))
}

/// The multi-threaded runtime; `workers` 0 leaves tokio's default (one per CPU).
fn runtime(workers: usize) -> Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if workers > 0 {
        builder.worker_threads(workers);
    }
    builder
        .thread_name("scopegate-worker")
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCOPEGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Parses `1h`-style durations for clap.
fn parse_duration(s: &str) -> Result<Duration, String> {
    scopegate::config::units::parse_duration(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks every subcommand's arguments for clashes (e.g. two named `path`) only
    /// when that subcommand is parsed; this checks all of them at once.
    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
