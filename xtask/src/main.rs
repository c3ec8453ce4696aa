//! Project automation, run as `cargo xtask <command>` (alias in
//! `.cargo/config.toml`):
//!
//! - `ci`: every check CI runs, in order, stopping at the first failure;
//! - `bench`: loopback load against the simulated Azure directly, a bare
//!   pass-through proxy, nginx and the Airlock gateway, in pinned,
//!   interleaved rounds; writes `BENCHMARKS.md` (`--quick`: CI's smoke test);
//! - `fuzz`: the cargo-fuzz target in `fuzz/`, on stable, for a fixed time;
//! - `demo`: `airlock demo`, built in release mode.

mod apt;
mod azure_limits;
mod bench;
mod chart;
mod ci;
mod cpu;
mod curves;
mod duration;
mod footprint;
mod fuzz;
mod instructions;
mod load;
mod memory;
mod open_loop;
mod process;
mod replay_probe;
mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};
use xshell::{Shell, cmd};

#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "Airlock project automation."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every CI check: fmt, clippy, tests, docs (no rustdoc warnings; doc tests), examples, bench smoke, cargo-deny.
    Ci,
    /// Compare throughput and latency: simulated Azure, bare proxy, nginx, gateway.
    Bench(bench::BenchArgs),
    /// Fuzz the bearer-token path (cargo-fuzz, stable with RUSTC_BOOTSTRAP=1).
    Fuzz(fuzz::FuzzArgs),
    /// Run `airlock demo` (release build); extra arguments go to the demo.
    Demo {
        /// Passed through to `airlock demo`, e.g. `-- --serve`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match cli.command {
        Command::Ci => ci::run(&sh),
        Command::Bench(args) => bench::run(&sh, &args),
        Command::Fuzz(args) => fuzz::run(&sh, &args),
        Command::Demo { args } => {
            cmd!(sh, "cargo run --release -p airlock-cli -- demo {args...}").run()?;
            Ok(())
        }
    }
}

/// The workspace root: the parent of this crate's directory.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `12.3s`, or `2m 05s` past a minute, for step timings.
fn format_elapsed(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        let whole = elapsed.as_secs();
        format!("{}m {:02}s", whole / 60, whole % 60)
    }
}
