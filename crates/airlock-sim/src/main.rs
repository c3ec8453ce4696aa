//! `airlock-sim`: the simulated Azure as a process, for benchmarks and manual runs.
//!
//! Prints one line, `airlock-sim listening on http://127.0.0.1:PORT`, then
//! serves until SIGTERM or Ctrl-C. Logs go to stderr (`RUST_LOG`).

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;

use airlock_sim::SimAzure;
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

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "airlock-sim listening on {}", sim.arm_url())?;
    stdout.flush()?;
    drop(stdout);

    stop_signal().await?;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
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
