//! `cargo xtask fuzz`: runs the cargo-fuzz targets in `fuzz/` one after the
//! other, each for a fixed time, with AddressSanitizer, on the stable
//! toolchain:
//!
//! - `token`: bearer tokens through `IdentityLayer` and `JwtValidator::validate`;
//! - `classify_path`: request paths through the classifier and `ClassifyLayer`;
//! - `batch_body`: `/batch`, deployment and move bodies;
//! - `json_masker`: response bodies through `JsonMasker` (JSON and text).
//!
//! cargo-fuzz passes nightly-only `-Z` flags (`-Zsanitizer=address`), which
//! stable rustc accepts with `RUSTC_BOOTSTRAP=1`; the sanitizer runtimes ship
//! with every toolchain. New inputs are kept in `fuzz/corpus/<target>`
//! (ignored by git), so each run starts where the last one stopped;
//! `fuzz/seeds/<target>` (and `fuzz/token.dict`) give it a head start. A
//! crash is saved under `fuzz/artifacts/<target>/` and fails the command.

use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use xshell::{Shell, cmd};

use crate::format_elapsed;

/// Every target, in the order they run.
const TARGETS: [&str; 4] = ["token", "classify_path", "batch_body", "json_masker"];

#[derive(Debug, Args)]
pub(crate) struct FuzzArgs {
    /// How long to fuzz each target, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
    /// Run only this target.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(TARGETS))]
    target: Option<String>,
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
    let targets: Vec<&str> = match &args.target {
        Some(target) => vec![target.as_str()],
        None => TARGETS.to_vec(),
    };
    for target in targets {
        run_target(sh, target, args.seconds)?;
    }
    Ok(())
}

fn run_target(sh: &Shell, target: &str, seconds: u64) -> anyhow::Result<()> {
    let corpus = format!("fuzz/corpus/{target}");
    let seeds = format!("fuzz/seeds/{target}");
    sh.create_dir(&corpus)?;
    let mut options = vec![format!("-max_total_time={seconds}")];
    if target == "token" {
        options.push("-dict=fuzz/token.dict".to_owned());
    }
    let started = Instant::now();
    cmd!(sh, "cargo fuzz run {target} {corpus} {seeds} -- {options...}")
        .env("RUSTC_BOOTSTRAP", "1")
        .run()
        .with_context(|| {
            format!(
                "`cargo fuzz run {target}` failed; a crashing input, if any, is under fuzz/artifacts/{target}/"
            )
        })?;
    println!(
        "xtask fuzz: `{target}` ran {} with no failure; corpus in {corpus}",
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
