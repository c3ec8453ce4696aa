//! `cargo xtask bench --instructions`: what each request costs the gateway
//! in instructions, counted by callgrind rather than timed.
//!
//! Throughput on a shared loopback drifts by 10% between rounds, so a change
//! worth 5% cannot be seen in requests per second; the instructions a
//! request costs repeat to about 1%. Each gateway runs under
//! `valgrind --tool=callgrind` with counting off until a warm-up has passed;
//! then the counters are zeroed, a load of `--duration` runs, and the dump's
//! total divided by the requests served is the figure. It counts user space
//! only (no kernel, no cache misses), and valgrind's CPU has no SHA
//! extensions, so the audit chain's SHA-256 runs in software there: that
//! share is printed apart, as it is much smaller on the real CPU. The
//! layered stacks (Airlock's layers without the gateway's own wrappers)
//! are counted beside the gateway, so what the wrappers cost shows too.
//! The servers are pinned to the CPUs the report gives them, so each runs
//! the runtime it runs there.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use xshell::Shell;

use crate::apt;
use crate::bench::{
    BenchArgs, Extra, Mode, Store, Target, start_bare_proxy_under, start_gateway, start_layered,
    start_sim,
};
use crate::load::{Generator, LoadSpec};
use crate::process::Children;

/// Load before counting: pools, caches and the allocator settle.
const WARM_UP: Duration = Duration::from_secs(3);

/// The symbols of the SHA-256 block function (`sha2`'s software and
/// SHA-NI paths alike).
const SHA256: &str = "sha2::sha256::compress256";

/// One server to count.
struct Counted {
    label: String,
    server: Server,
}

enum Server {
    /// The bare proxy: the floor, what any proxy in Rust on hyper costs.
    Bare,
    /// Airlock's layers stacked by hand (`layered`), none of the gateway's
    /// own: with the gateway beside it, what its own wrappers cost.
    Layered(Target),
    /// An `airlock` binary, recording or not.
    Airlock { binary: PathBuf, record: bool },
}

/// Counts the gateway's instructions per request, recording on and off, and
/// the `baseline` binary's alike; prints a table.
pub(crate) fn run(
    sh: &Shell,
    bin_dir: &Path,
    args: &BenchArgs,
    server_cpus: Option<String>,
    generator: &Generator,
) -> anyhow::Result<()> {
    let (baseline, keep_dumps) = (args.baseline.as_deref(), args.keep_dumps.as_deref());
    let (connections, duration) = (args.connections, args.duration);
    if apt::find_program("valgrind").is_none() {
        apt::install(sh, &["valgrind"])?;
    }
    let airlock = bin_dir.join("airlock");
    let mut gateways = vec![
        Counted {
            label: "bare proxy".into(),
            server: Server::Bare,
        },
        Counted {
            label: "layers: + masking".into(),
            server: Server::Layered(Target::LayeredMasking),
        },
        Counted {
            label: "layers: + recording".into(),
            server: Server::Layered(Target::LayeredRecording),
        },
        Counted {
            label: "gateway".into(),
            server: Server::Airlock {
                binary: airlock.clone(),
                record: true,
            },
        },
        Counted {
            label: "gateway, no recording".into(),
            server: Server::Airlock {
                binary: airlock,
                record: false,
            },
        },
    ];
    if let Some(baseline) = baseline {
        for (label, record) in [("baseline", true), ("baseline, no recording", false)] {
            gateways.push(Counted {
                label: label.into(),
                server: Server::Airlock {
                    binary: baseline.to_path_buf(),
                    record,
                },
            });
        }
    }
    println!(
        "instructions per request (callgrind), {connections} connections, {} of load after {} of warm-up",
        crate::duration::describe(duration),
        crate::duration::describe(WARM_UP)
    );
    let work_dir = sh.create_temp_dir()?;
    // Pinned as the report pins them, so each server picks the runtime it
    // runs on there (`airlock_gateway::runtime`: one CPU, current-thread).
    let mut children = Children::default();
    children.cpus = server_cpus;
    let (sim_url, issuer) = start_sim(&mut children, bin_dir, work_dir.path(), &[])?;
    let authorization = format!("Bearer {}", issuer.agent_token);
    let mut rows = Vec::new();
    for (n, gateway) in gateways.iter().enumerate() {
        let dir = work_dir.path().join(format!("counted-{n}"));
        std::fs::create_dir_all(&dir)?;
        let out = dir.join("callgrind.out");
        let launcher = [
            String::from("valgrind"),
            String::from("--tool=callgrind"),
            String::from("--instr-atstart=no"),
            format!("--callgrind-out-file={}", out.display()),
        ];
        println!("counting {} ...", gateway.label);
        let (name, url) = match &gateway.server {
            Server::Bare => (
                "bare-proxy",
                start_bare_proxy_under(&mut children, bin_dir, &dir, &sim_url, &launcher)?,
            ),
            Server::Layered(target) => (
                "layered",
                start_layered(
                    &mut children,
                    bin_dir,
                    &dir,
                    &sim_url,
                    &issuer,
                    *target,
                    &launcher,
                )?,
            ),
            Server::Airlock { binary, record } => {
                let started = start_gateway(
                    &mut children,
                    binary,
                    &dir,
                    bin_dir,
                    &sim_url,
                    &issuer,
                    *record,
                    Mode::Plain,
                    &Store::Sqlite,
                    &Extra {
                        launcher: &launcher,
                        ..Extra::default()
                    },
                )?;
                ("airlock", started.url)
            }
        };
        let pid = children
            .last_pid(name)
            .ok_or_else(|| anyhow!("{name} did not start"))?
            .to_string();
        let load = |duration| {
            let mut spec = LoadSpec::new(&url, authorization.clone());
            spec.connections = connections;
            spec.duration = duration;
            // Valgrind slows the gateway some 50 times.
            spec.timeout = Some(Duration::from_secs(10));
            generator.run(&spec)
        };
        callgrind_control(&["--instr=on", &pid])?;
        load(WARM_UP)?;
        callgrind_control(&["--zero", &pid])?;
        let measured = load(duration)?;
        callgrind_control(&["--dump", &pid])?;
        children.stop_last(name)?;
        anyhow::ensure!(
            measured.errors == 0 && measured.requests > 0,
            "{}: {} of {} requests failed",
            gateway.label,
            measured.errors,
            measured.requests
        );
        let dump = Dump::read(&dir)?;
        if let Some(keep) = keep_dumps {
            let kept = keep.join(format!("{}.callgrind.out", file_stem(&gateway.label)));
            std::fs::create_dir_all(keep)
                .and_then(|()| std::fs::copy(&dump.path, &kept))
                .with_context(|| format!("cannot keep the dump as {}", kept.display()))?;
            println!("kept {}", kept.display());
        }
        rows.push((gateway.label.clone(), measured.requests, dump));
    }
    println!();
    println!(
        "{:<26} {:>9} {:>22} {:>18} {:>22}",
        "target", "requests", "instructions/request", "of which SHA-256", "without SHA-256"
    );
    for (label, requests, dump) in &rows {
        let per = |count: u64| count / requests;
        println!(
            "{label:<26} {requests:>9} {:>22} {:>18} {:>22}",
            per(dump.total),
            per(dump.sha256),
            per(dump.total - dump.sha256)
        );
    }
    Ok(())
}

/// `label` as a file name: `layers: + masking` → `layers-masking`.
fn file_stem(label: &str) -> String {
    label
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn callgrind_control(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("callgrind_control")
        .args(args)
        .output()
        .context("cannot run callgrind_control (valgrind)")?;
    anyhow::ensure!(
        output.status.success(),
        "callgrind_control {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// What one `callgrind_control --dump` wrote.
struct Dump {
    /// Instructions in all.
    total: u64,
    /// Instructions in the SHA-256 block function itself.
    sha256: u64,
    /// The file it was read from.
    path: PathBuf,
}

impl Dump {
    /// The dump file in `dir` (the one a dump request wrote, not the one
    /// written at exit).
    fn read(dir: &Path) -> anyhow::Result<Self> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let is_output = path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("callgrind.out"));
            if !is_output {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if text.lines().any(|line| line == "desc: Trigger: dump") {
                let parsed =
                    Self::parse(&text).with_context(|| format!("in {}", path.display()))?;
                return Ok(Self { path, ..parsed });
            }
        }
        Err(anyhow!("callgrind wrote no dump in {}", dir.display()))
    }

    /// The `summary:` total, and the self cost of the functions named
    /// [`SHA256`]: the cost lines under their `fn=`, except those that
    /// follow a `calls=` line (those are a callee's inclusive cost).
    fn parse(text: &str) -> anyhow::Result<Self> {
        let mut total = None;
        let mut sha256 = 0;
        // Compressed names: `(id) name` the first time, `(id)` after.
        let mut names = std::collections::HashMap::new();
        let mut in_sha = false;
        let mut after_calls = false;
        for line in text.lines() {
            if let Some(value) = line.strip_prefix("summary: ") {
                total = Some(value.trim().parse::<u64>()?);
            } else if let Some(function) = line.strip_prefix("fn=") {
                let name = match function.split_once(") ") {
                    Some((id, name)) => {
                        names.insert(id.to_owned(), name.to_owned());
                        name
                    }
                    None => names
                        .get(function.trim_end_matches(')'))
                        .map_or(function, String::as_str),
                };
                in_sha = name.contains(SHA256);
            } else if let Some(callee) = line.strip_prefix("cfn=") {
                if let Some((id, name)) = callee.split_once(") ") {
                    names.insert(id.to_owned(), name.to_owned());
                }
            } else if line.starts_with("calls=") {
                after_calls = true;
            } else if line
                .starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '-' || c == '*')
            {
                if in_sha && !after_calls {
                    let cost = line.split_whitespace().nth(1).unwrap_or("0");
                    sha256 += cost.parse::<u64>().unwrap_or(0);
                }
                after_calls = false;
            }
        }
        let total = total.ok_or_else(|| anyhow!("no summary line"))?;
        Ok(Self {
            total,
            sha256,
            path: PathBuf::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_names_are_the_labels_words() {
        assert_eq!(file_stem("layers: + masking"), "layers-masking");
        assert_eq!(file_stem("gateway, no recording"), "gateway-no-recording");
    }

    #[test]
    fn self_cost_of_sha256_excludes_what_it_calls() {
        // main calls compress256, named first as a callee; compress256
        // calls something else.
        let text = "events: Ir\nfn=(1) main\n0 10\ncfn=(2) sha2::sha256::compress256\ncalls=1 0\n0 500\nfn=(2)\n0 400\n+1 20\ncfn=(3) memcpy\ncalls=1 0\n0 70\nfn=(1)\n0 5\nsummary: 1005\n";
        let dump = Dump::parse(text).unwrap();
        assert_eq!((dump.total, dump.sha256), (1005, 420));
    }
}
