//! `airlock-sim`: the simulated Azure as a process, for benchmarks and manual runs.
//!
//! Prints one line, `airlock-sim listening on http://127.0.0.1:PORT`, then
//! serves until SIGTERM or Ctrl-C. Logs go to stderr (`RUST_LOG`).
//!
//! With `--issuer-file FILE` it also runs the development token issuer and,
//! before that line, writes `{"issuer", "tenant", "agent_token"}` to FILE:
//! what a gateway needs to trust the issuer, and a token for the demo agent.

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;

use airlock_sim::{DevIssuer, SimAzure, TokenSpec};
use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// A simulated Azure (ARM + Key Vault subset) on a local port.
#[derive(Debug, Parser)]
#[command(name = "airlock-sim", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Accept only this bearer token (default: any non-empty bearer token).
    #[arg(long, env = "AIRLOCK_SIM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Items per page of paged lists.
    #[arg(long, default_value_t = 2)]
    page_size: usize,
    /// Polls answered `InProgress` before a long-running operation completes.
    #[arg(long, default_value_t = 1)]
    lro_polls: u32,
    /// Record requests in memory (grows without bound under load).
    #[arg(long)]
    record: bool,
    /// Also run the development token issuer; write its issuer URL, tenant
    /// and a demo agent token (JSON) to this file.
    #[arg(long)]
    issuer_file: Option<std::path::PathBuf>,
    /// Where the issuer listens (with `--issuer-file`; default a free loopback port).
    #[arg(long, default_value = "127.0.0.1:0")]
    issuer_listen: SocketAddr,
    /// The base URL the issuer names itself by, when clients reach it by
    /// another name than its address (e.g. `http://sim:8090` in compose).
    #[arg(long)]
    issuer_url: Option<String>,
    /// With `--issuer-file`: also write this many tokens of distinct agents
    /// (managed identities in the agents group, each its own object id),
    /// one `Bearer …` header value per line, to `--agent-tokens-file`. For
    /// loading a gateway with many identities (its token cache's working set).
    #[arg(long, default_value_t = 0, requires = "agent_tokens_file")]
    agent_tokens: usize,
    /// Where `--agent-tokens` go.
    #[arg(long, requires = "issuer_file")]
    agent_tokens_file: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let mut builder = SimAzure::builder()
        .listen(args.listen)
        .page_size(args.page_size)
        .lro_polls(args.lro_polls)
        .record_requests(args.record);
    if let Some(token) = args.token {
        builder = builder.expected_token(token);
    }
    let sim = builder
        .start()
        .await
        .with_context(|| format!("binding {}", args.listen))?;

    let issuer = match &args.issuer_file {
        Some(path) => {
            let issuer = DevIssuer::start_on(
                airlock_sim::TENANT_ID,
                args.issuer_listen,
                args.issuer_url.as_deref(),
            )
            .await
            .context("starting the development token issuer")?;
            let about = serde_json::json!({
                "issuer": issuer.issuer(),
                "tenant": issuer.tenant_id(),
                "agent_token": issuer.mint(&TokenSpec::agent().lifetime(std::time::Duration::from_secs(24 * 3600))),
            });
            std::fs::write(path, about.to_string())
                .with_context(|| format!("writing {}", path.display()))?;
            if let Some(tokens_path) = &args.agent_tokens_file {
                let lines: String = (0..args.agent_tokens)
                    .map(|i| format!("Bearer {}\n", issuer.mint(&numbered_agent(i))))
                    .collect();
                std::fs::write(tokens_path, lines)
                    .with_context(|| format!("writing {}", tokens_path.display()))?;
            }
            Some(issuer)
        }
        None => None,
    };

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "airlock-sim listening on {}", sim.arm_url())?;
    stdout.flush()?;
    drop(stdout);

    stop_signal().await?;
    tracing::info!("shutting down");
    sim.shutdown().await;
    if let Some(issuer) = issuer {
        issuer.shutdown().await;
    }
    Ok(())
}

/// The demo agent's `i`th sibling: its own name and object id, a day's token.
fn numbered_agent(i: usize) -> TokenSpec {
    TokenSpec::agent()
        .name(format!("bench-agent-{i}"))
        .object_id(format!("00000000-0000-4000-8000-{i:012}"))
        .lifetime(std::time::Duration::from_secs(24 * 3600))
}

/// Resolves on Ctrl-C, or SIGTERM on Unix.
async fn stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
