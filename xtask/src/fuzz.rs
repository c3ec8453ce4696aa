//! `cargo xtask fuzz`: runs the cargo-fuzz target `token` (bearer tokens
//! through `IdentityLayer` and `JwtValidator::validate`, `fuzz/`) for a fixed
//! time, with AddressSanitizer, on the stable toolchain.
//!
//! cargo-fuzz passes nightly-only `-Z` flags (`-Zsanitizer=address`), which
//! stable rustc accepts with `RUSTC_BOOTSTRAP=1`; the sanitizer runtimes ship
//! with every toolchain. New inputs are kept in `fuzz/corpus/token` (ignored
//! by git), so each run starts where the last one stopped; `fuzz/seeds/token`
//! and `fuzz/token.dict` give it a head start. A crash is saved under
//! `fuzz/artifacts/token/` and fails the command.

use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use xshell::{Shell, cmd};

use crate::format_elapsed;

/// The one target so far.
const TARGET: &str = "token";

#[derive(Debug, Args)]
pub(crate) struct FuzzArgs {
    /// How long to fuzz, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
}

pub(crate) fn run(sh: &Shell, args: &FuzzArgs) -> anyhow::Result<()> {
    if !cargo_fuzz_installed(sh) {
        println!(
            "cargo-fuzz is not installed: installing it with `cargo install cargo-fuzz --locked`"
        );
        let started = Instant::now();
        cmd!(sh, "cargo install cargo-fuzz --locked")
            .run()
            .context("installing cargo-fuzz failed")?;
        println!(
            "installed cargo-fuzz in {}",
            format_elapsed(started.elapsed())
        );
    }
    let corpus = format!("fuzz/corpus/{TARGET}");
    let seeds = format!("fuzz/seeds/{TARGET}");
    sh.create_dir(&corpus)?;
    let time_limit = format!("-max_total_time={}", args.seconds);
    let started = Instant::now();
    cmd!(
        sh,
        "cargo fuzz run {TARGET} {corpus} {seeds} -- {time_limit} -dict=fuzz/token.dict"
    )
    .env("RUSTC_BOOTSTRAP", "1")
    .run()
    .with_context(|| {
        format!(
            "`cargo fuzz run {TARGET}` failed; a crashing input, if any, is under fuzz/artifacts/{TARGET}/"
        )
    })?;
    println!(
        "xtask fuzz: `{TARGET}` ran {} with no failure; corpus in {corpus}",
        format_elapsed(started.elapsed())
    );
    Ok(())
}

/// Whether `cargo fuzz` exists, asked without printing anything.
fn cargo_fuzz_installed(sh: &Shell) -> bool {
    cmd!(sh, "cargo fuzz --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}
