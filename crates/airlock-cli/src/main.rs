//! `airlock`: the gateway binary.

use std::path::PathBuf;
use std::process::ExitCode;

use airlock_gateway::config::LogConfig;
use clap::{Parser, Subcommand};
use serde::Deserialize as _;

#[cfg(feature = "otel")]
mod otel;
mod telemetry;

/// An identity-aware gateway between AI agents and Azure.
#[derive(Debug, Parser)]
#[command(name = "airlock", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// The configuration file.
        #[arg(long, short, default_value = "airlock.toml")]
        config: PathBuf,
    },
    /// Check a configuration file and exit.
    CheckConfig {
        /// The configuration file.
        #[arg(long, short, default_value = "airlock.toml")]
        config: PathBuf,
    },
    /// Check or explain a policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Run the gateway against a simulated Azure and walk a scripted agent through it.
    Demo {
        /// Keep the demo running for exploration instead of exiting.
        #[arg(long)]
        serve: bool,
    },
    /// List, show, approve or deny approvals, as an approver (admin API client).
    Approvals(airlock_cli::approvals::ApprovalsArgs),
    /// Verify, export, prune or sign the audit trail (reads the database file).
    Audit(airlock_cli::audit::AuditArgs),
    /// List, show or export recorded sessions (reads the database file).
    Sessions(airlock_cli::audit::SessionsArgs),
    /// Draft least-privilege roles from the recorded trail.
    Roles(airlock_cli::roles::RolesArgs),
    /// Show how much of each `[[quota]]` principals have used (reads the store).
    Quota(airlock_cli::quota::QuotaArgs),
    /// The CA forward-proxy mode mints certificates from.
    #[command(subcommand)]
    Ca(CaCommand),
}

#[derive(Debug, Subcommand)]
enum CaCommand {
    /// Write a new CA (`proxy-ca.pem`, and `proxy-ca-key.pem` owner-only) for `[forward_proxy]`.
    Init {
        /// Where to write the two files.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The CA's common name, as clients' trust stores will show it.
        #[arg(long, default_value = "Airlock forward-proxy CA")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate a policy file: every problem with its line and rule, and warnings.
    Check {
        /// The policy file.
        file: PathBuf,
    },
    /// Show how the gateway would classify and decide one request, rule by rule.
    Explain {
        /// The gateway configuration (its routing and policy file are used).
        #[arg(long, short, default_value = "airlock.toml")]
        config: PathBuf,
        /// Who asks: `id=…,kind=managed_identity,groups=g1|g2,roles=r,app_id=…`.
        #[arg(long)]
        principal: String,
        /// The request: `"DELETE /subscriptions/…?api-version=…"` or with an absolute URL.
        #[arg(long)]
        request: String,
        /// A file holding the request body (for `/batch`, deployments, moves).
        #[arg(long)]
        body: Option<PathBuf>,
    },
    /// Decide every recorded request again under a candidate policy and
    /// report what would change; exit 0 if nothing, 1 if something, 2 on error.
    Replay(airlock_cli::replay::ReplayArgs),
}

/// mimalloc: fewer instructions per request than glibc's malloc (see the
/// workspace `Cargo.toml`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match airlock_gateway::runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log_filter(&cli.command)));
    let telemetry = match telemetry::init(filter, &log_config(&cli.command), runtime.handle()) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {}", airlock_cli::error_text(error.as_ref()));
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", airlock_cli::error_text(error.as_ref()));
            ExitCode::FAILURE
        }
    };
    // The exporter's last batch goes out through tasks on the runtime,
    // which a current-thread runtime only runs while something blocks on
    // it: the SDK's blocking shutdown waits on a thread of its own.
    let flushed =
        runtime.block_on(async { tokio::task::spawn_blocking(move || telemetry.shutdown()).await });
    if flushed.is_err() {
        eprintln!("warning: the trace exporter's shutdown failed");
    }
    code
}

/// `[log]` of the configuration `serve` runs, read before the rest of it
/// (which is loaded, and its errors reported, once logging is set up).
/// The defaults (text, no span export) for every other command, and when
/// the file cannot be read.
fn log_config(command: &Command) -> LogConfig {
    let Command::Serve { config } = command else {
        return LogConfig::default();
    };
    std::fs::read_to_string(config)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|table| table.get("log").cloned())
        .and_then(|log| LogConfig::deserialize(log).ok())
        .unwrap_or_default()
}

fn default_log_filter(command: &Command) -> &'static str {
    match command {
        // The demo's upstream is a local plain-HTTP double: its warning is expected noise.
        Command::Demo { serve: false } => "error",
        // A client: its output is the answer, not the gateway's logs.
        Command::Approvals(_)
        | Command::Audit(_)
        | Command::Sessions(_)
        | Command::Roles(_)
        | Command::Quota(_)
        | Command::Policy(PolicyCommand::Replay(_)) => "warn",
        _ => "info",
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { config } => {
            let config = airlock_gateway::Config::load(&config)?;
            let scheduler = tokio::runtime::Handle::current().runtime_flavor();
            tracing::info!(?scheduler, "starting the gateway");
            let gateway = airlock_gateway::Gateway::start(config).await?;
            tokio::select! {
                () = shutdown_signal() => {}
                () = reload_on_sighup(&gateway) => {}
            }
            tracing::info!("shutting down: draining in-flight requests");
            gateway.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { config } => {
            let parsed = airlock_gateway::Config::load(&config)?;
            airlock_policy::Policy::load(&parsed.policy.file)
                .map_err(airlock_gateway::StartError::Policy)?;
            println!("{}: ok", config.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Check { file }) => {
            let policy = airlock_policy::Policy::load(&file)?;
            for warning in policy.warnings() {
                println!("warning: {warning}");
            }
            println!(
                "{}: ok, {} rules, {} quotas, {} answer rules",
                file.display(),
                policy.len(),
                policy.quotas().len(),
                policy.answer_rules().len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Explain {
            config,
            principal,
            request,
            body,
        }) => {
            let config = airlock_gateway::Config::load(&config)?;
            let principal = airlock_cli::explain::parse_principal(&principal)?;
            let body = match body {
                Some(path) => std::fs::read(&path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
                None => Vec::new(),
            };
            let (_, text) = airlock_cli::explain::explain(&config, &principal, &request, &body)?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Replay(args)) => Ok(airlock_cli::replay::run(args).await),
        Command::Roles(args) => airlock_cli::roles::run(args).await,
        Command::Quota(args) => airlock_cli::quota::run(args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Ca(CaCommand::Init { dir, name }) => {
            let (cert, key) = airlock_cli::ca::init(&dir, &name)?;
            println!(
                "wrote {} (give it to clients: REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS, SSL_CERT_FILE)\nwrote {} (owner-only; point [forward_proxy] ca_cert_file and ca_key_file at the two)",
                cert.display(),
                key.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { serve } => airlock_demo::run(serve, shutdown_signal()).await,
        Command::Approvals(args) => Ok(airlock_cli::approvals::run(args).await),
        Command::Audit(args) => airlock_cli::audit::run_audit(args).await,
        Command::Sessions(args) => airlock_cli::audit::run_sessions(args).await,
    }
}

/// Reloads the policy on every SIGHUP (an invalid file is logged and the
/// running policy stays). Never returns.
async fn reload_on_sighup(gateway: &airlock_gateway::RunningGateway) {
    #[cfg(unix)]
    if let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the policy");
            let _ = gateway.reload_policy();
        }
    }
    std::future::pending::<()>().await;
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return std::mem::drop(ctrl_c.await);
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
