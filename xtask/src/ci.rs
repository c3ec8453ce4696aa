//! `cargo xtask ci`: the one test command. Each step runs in order; the first
//! failure stops the run with a message naming the step.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use xshell::{Shell, cmd};

use crate::{apt, format_elapsed, project_root};

/// One CI step: a name for messages and the work it does.
struct Step {
    name: &'static str,
    run: fn(&Shell) -> anyhow::Result<()>,
}

const STEPS: &[Step] = &[
    Step {
        name: "fmt",
        run: fmt,
    },
    Step {
        name: "clippy",
        run: clippy,
    },
    Step {
        name: "test tools",
        run: test_tools,
    },
    Step {
        name: "tests",
        run: tests,
    },
    Step {
        name: "docs",
        run: doc_tests,
    },
    Step {
        name: "examples",
        run: examples,
    },
    Step {
        name: "bench smoke",
        run: bench_smoke,
    },
    Step {
        name: "cargo-deny",
        run: deny,
    },
];

/// Every example, run to the end: each checks its own outcome and fails loudly.
const EXAMPLES: [&str; 5] = [
    "custom_token_provider",
    "identity_on_axum",
    "custom_layer",
    "custom_masker",
    "custom_audit_sink",
];

pub(crate) fn run(sh: &Shell) -> anyhow::Result<()> {
    let total = Instant::now();
    let mut timings = Vec::new();
    for (index, step) in STEPS.iter().enumerate() {
        println!("==> [{}/{}] {}", index + 1, STEPS.len(), step.name);
        let started = Instant::now();
        let outcome = (step.run)(sh);
        let elapsed = format_elapsed(started.elapsed());
        if let Err(error) = outcome {
            println!("<== {} FAILED after {elapsed}", step.name);
            return Err(error.context(format!("xtask ci: step `{}` failed", step.name)));
        }
        println!("<== {} ok in {elapsed}", step.name);
        timings.push((step.name, elapsed));
    }
    println!();
    println!(
        "xtask ci: all {} steps passed in {}",
        STEPS.len(),
        format_elapsed(total.elapsed())
    );
    for (name, elapsed) in timings {
        println!("  {name:<12} {elapsed:>8}");
    }
    Ok(())
}

fn fmt(sh: &Shell) -> anyhow::Result<()> {
    cmd!(sh, "cargo fmt --all -- --check").run()?;
    Ok(())
}

fn clippy(sh: &Shell) -> anyhow::Result<()> {
    cmd!(
        sh,
        "cargo clippy --workspace --all-targets --locked -- -D warnings"
    )
    .run()?;
    // The binary's optional OpenTelemetry export, which the default build leaves out.
    cmd!(
        sh,
        "cargo clippy -p airlock-cli --features otel --all-targets --locked -- -D warnings"
    )
    .run()?;
    Ok(())
}

/// The system tools the tests use, Debian's packages installed when missing
/// ([`apt::install`]): Chromium, for the session replay and approval pages;
/// PostgreSQL's server, for the scale-out store (each test starts a
/// throwaway cluster of its own: `airlock_store::testing`); nginx and wrk,
/// for the bench's smoke run (`cargo xtask bench --quick`).
fn test_tools(sh: &Shell) -> anyhow::Result<()> {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .any(|path| std::path::Path::new(path).exists());
    let postgres = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .any(|version| version.path().join("bin/initdb").exists());
    let nginx = apt::find_program("nginx").is_some();
    let wrk = apt::find_program("wrk").is_some();
    let missing: Vec<&str> = [
        (!chromium, "chromium"),
        (!postgres, "postgresql"),
        (!nginx, "nginx"),
        (!wrk, "wrk"),
    ]
    .into_iter()
    .filter_map(|(missing, package)| missing.then_some(package))
    .collect();
    apt::install(sh, &missing)?;
    cmd!(sh, "chromium --version").run()?;
    python_sdk(sh)
}

/// The Python environments the real-client tests run, each cached under
/// `target/ci-cache/<name>` and rebuilt when its requirements file changes:
/// the Azure SDK (`python`, about 10 s the first time) and the Azure CLI
/// (`azure-cli`, about two minutes; kept apart because it pins its own
/// `azure-core`).
fn python_sdk(sh: &Shell) -> anyhow::Result<()> {
    venv(sh, "python", "requirements.txt", "the Python Azure SDK")?;
    venv(sh, "azure-cli", "azure-cli.txt", "the Azure CLI")
}

fn venv(sh: &Shell, name: &str, requirements: &str, what: &str) -> anyhow::Result<()> {
    let root = project_root();
    let venv = root.join("target/ci-cache").join(name);
    let requirements = root.join("tests/python").join(requirements);
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let stamp = venv.join("requirements.installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        println!("{what} is cached in {}", venv.display());
        return Ok(());
    }
    println!("installing {what} into {}", venv.display());
    cmd!(sh, "python3 -m venv --clear {venv}")
        .run()
        .context("python3 -m venv failed; install python3 and python3-venv")?;
    let pip = venv.join("bin/pip");
    cmd!(
        sh,
        "{pip} install --quiet --disable-pip-version-check -r {requirements}"
    )
    .run()
    .with_context(|| format!("pip could not install {}", requirements.display()))?;
    std::fs::write(stamp, wanted)?;
    Ok(())
}

fn tests(sh: &Shell) -> anyhow::Result<()> {
    if has_cargo_subcommand(sh, "nextest") {
        cmd!(sh, "cargo nextest run --workspace --locked --no-fail-fast").run()?;
        // The binary built with `otel`: its logging tests, span export included.
        cmd!(
            sh,
            "cargo nextest run -p airlock-cli --features otel --locked -E test(/^logs::/)"
        )
        .run()?;
    } else {
        println!("cargo-nextest is not installed: falling back to `cargo test`");
        cmd!(sh, "cargo test --workspace --locked --no-fail-fast").run()?;
        cmd!(
            sh,
            "cargo test -p airlock-cli --features otel --locked --test it logs::"
        )
        .run()?;
    }
    Ok(())
}

/// The API docs build without warnings (a broken or private intra-doc link
/// fails), and their examples run.
fn doc_tests(sh: &Shell) -> anyhow::Result<()> {
    cmd!(sh, "cargo doc --workspace --no-deps --locked")
        .env("RUSTDOCFLAGS", "-D warnings")
        .run()?;
    cmd!(sh, "cargo test --workspace --doc --locked").run()?;
    Ok(())
}

fn examples(sh: &Shell) -> anyhow::Result<()> {
    for example in EXAMPLES {
        cmd!(
            sh,
            "cargo run --quiet --locked -p airlock-examples --example {example}"
        )
        .run()?;
    }
    Ok(())
}

/// `cargo xtask bench --quick`: every bench target (nginx included) starts
/// and serves without errors. Nothing is timed: CI machines are shared.
fn bench_smoke(sh: &Shell) -> anyhow::Result<()> {
    cmd!(sh, "cargo xtask bench --quick").run()?;
    Ok(())
}

fn deny(sh: &Shell) -> anyhow::Result<()> {
    if !has_cargo_subcommand(sh, "deny") {
        println!(
            "cargo-deny is not installed: installing it with `cargo install cargo-deny --locked` (this takes a few minutes)"
        );
        let started = Instant::now();
        cmd!(sh, "cargo install cargo-deny --locked")
            .run()
            .context("installing cargo-deny failed")?;
        println!(
            "installed cargo-deny in {}",
            format_elapsed(started.elapsed())
        );
    }
    cmd!(sh, "cargo deny --version").run()?;
    match offline_advisory_db(sh) {
        Some(db) => {
            println!(
                "advisories: checking against the offline database in {}",
                db.display()
            );
            // cargo-deny before 0.19 had `check --disable-fetch`; later ones
            // have the global `--offline`, which also never fetches the db.
            let check_help = cmd!(sh, "cargo deny check --help")
                .quiet()
                .ignore_stderr()
                .read()
                .unwrap_or_default();
            if check_help.contains("--disable-fetch") {
                cmd!(
                    sh,
                    "cargo deny --locked check --disable-fetch licenses bans sources advisories"
                )
                .run()?;
            } else {
                cmd!(
                    sh,
                    "cargo deny --locked --offline check licenses bans sources advisories"
                )
                .run()?;
            }
        }
        None => {
            println!(
                "advisories: SKIPPED: no offline advisory database is available (none under $CARGO_HOME/advisory-dbs)"
            );
            cmd!(sh, "cargo deny --locked check licenses bans sources").run()?;
        }
    }
    Ok(())
}

/// Whether `cargo NAME` exists, asked without printing anything.
fn has_cargo_subcommand(sh: &Shell, name: &str) -> bool {
    cmd!(sh, "cargo {name} --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}

/// cargo-deny's default advisory database location,
/// `$CARGO_HOME/advisory-dbs/<one directory per database>`, when a database
/// has already been fetched there.
fn offline_advisory_db(sh: &Shell) -> Option<PathBuf> {
    let cargo_home = match sh.var("CARGO_HOME") {
        Ok(home) if !home.is_empty() => PathBuf::from(home),
        _ => PathBuf::from(sh.var("HOME").ok()?).join(".cargo"),
    };
    let dbs = cargo_home.join("advisory-dbs");
    let entries = sh.read_dir(&dbs).ok()?;
    let has_database = entries
        .iter()
        .any(|entry| entry.is_dir() && sh.read_dir(entry).is_ok_and(|inside| !inside.is_empty()));
    if has_database { Some(dbs) } else { None }
}
