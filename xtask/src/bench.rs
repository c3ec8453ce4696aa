//! `cargo xtask bench`: one loopback run that puts the same load on
//! (a) `airlock-sim` directly, (b) `bare-proxy` in front of it, (c) nginx
//! `proxy_pass` in front of it, and (d) the Airlock gateway in front of it,
//! in interleaved rounds, with the load generator and the servers pinned to
//! separate CPUs; then prints a table and the ratios (the cost of the
//! gateway over the least any proxy must do, and over nginx) and writes
//! `BENCHMARKS.md`. `--quick` is CI's smoke test: every target starts and
//! serves, nothing is timed.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::{Args, ValueEnum};
use serde_json::Value;
use xshell::{Shell, cmd};

use crate::curves;
use crate::load::{Generator, GeneratorChoice, LoadSpec};
use crate::open_loop::Basis;
use crate::process::{Children, free_loopback_port};
use crate::report::{self, Comparison, Measured, RunInfo};
use crate::{
    apt, azure_limits, cpu, duration, footprint, memory, open_loop, project_root, replay_probe,
};

/// The request every target is asked, the same for all three.
pub(crate) const REQUEST_PATH: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/demo-rg/providers/Microsoft.Storage/storageAccounts/demostore?api-version=2023-05-01";
/// The credential the simulated Azure accepts; proxies inject it upstream.
pub(crate) const UPSTREAM_TOKEN: &str = "bench-upstream-token";
/// The gateway's policy under load: reads allowed (the request is a read),
/// and a realistic handful of other rules to look through.
const BENCH_POLICY: &str = r#"
[[rule]]
name = "reads"
effect = "allow"
actions = ["*/read"]

[[rule]]
name = "storage-writes-need-approval"
effect = "approve"
actions = ["Microsoft.Storage/storageAccounts/write"]
[rule.approval]
groups = ["00000000-0000-0000-0000-0000000000c2"]

[[rule]]
name = "no-vm-delete"
effect = "deny"
actions = ["Microsoft.Compute/virtualMachines/delete"]
"#;

/// Each target gets this much load first, unmeasured, so connection pools
/// and caches are warm for all alike.
const WARM_UP: Duration = Duration::from_secs(1);

/// `--quick`: the replay probe's trail (every replay path, in seconds).
const QUICK_REPLAY_EVENTS: u64 = 20_000;

/// `--quick`: how long each target is loaded (and warmed up) in CI's smoke run.
const QUICK: Duration = Duration::from_millis(500);

/// The comparisons the report states, with the performance goals' least
/// throughput ratios.
const COMPARISONS: &[Comparison] = &[
    Comparison {
        numerator: Target::Nginx.label(),
        denominator: Target::Bare.label(),
        label: "nginx / bare",
        goal: None,
    },
    Comparison {
        numerator: Target::LayeredIdentity.label(),
        denominator: Target::Bare.label(),
        label: "layers: identity / bare",
        goal: None,
    },
    Comparison {
        numerator: Target::LayeredPolicy.label(),
        denominator: Target::Bare.label(),
        label: "layers: + policy / bare",
        goal: None,
    },
    Comparison {
        numerator: Target::LayeredMasking.label(),
        denominator: Target::Bare.label(),
        label: "layers: + masking / bare",
        goal: None,
    },
    Comparison {
        numerator: Target::LayeredRecording.label(),
        denominator: Target::Bare.label(),
        label: "layers: + recording / bare",
        goal: None,
    },
    // One layer at a time: each row's CPU added is that layer's cost.
    Comparison {
        numerator: Target::LayeredPolicy.label(),
        denominator: Target::LayeredIdentity.label(),
        label: "layers: + policy / identity",
        goal: None,
    },
    Comparison {
        numerator: Target::LayeredMasking.label(),
        denominator: Target::LayeredPolicy.label(),
        label: "layers: + masking / + policy",
        goal: None,
    },
    Comparison {
        numerator: Target::LayeredRecording.label(),
        denominator: Target::LayeredMasking.label(),
        label: "layers: + recording / + masking",
        goal: None,
    },
    Comparison {
        numerator: Target::GatewayUnrecorded.label(),
        denominator: Target::LayeredMasking.label(),
        label: "no recording / layers: + masking",
        goal: None,
    },
    Comparison {
        numerator: Target::Gateway.label(),
        denominator: Target::LayeredRecording.label(),
        label: "gateway / layers: + recording",
        goal: None,
    },
    Comparison {
        numerator: Target::Gateway.label(),
        denominator: Target::Bare.label(),
        label: "gateway / bare",
        goal: Some(0.8),
    },
    Comparison {
        numerator: Target::Gateway.label(),
        denominator: Target::Nginx.label(),
        label: "gateway / nginx",
        goal: Some(1.0),
    },
    Comparison {
        numerator: Target::GatewayUnrecorded.label(),
        denominator: Target::Bare.label(),
        label: "no recording / bare",
        goal: Some(0.9),
    },
    Comparison {
        numerator: Target::Gateway.label(),
        denominator: Target::GatewayUnrecorded.label(),
        label: "recording on / off",
        goal: Some(0.85),
    },
    Comparison {
        numerator: Target::GatewayTunnel.label(),
        denominator: Target::GatewayTls.label(),
        label: "tunnel / base URL, TLS",
        goal: None,
    },
    Comparison {
        numerator: Target::GatewayPg.label(),
        denominator: Target::Gateway.label(),
        label: "PostgreSQL / SQLite",
        goal: None,
    },
    Comparison {
        numerator: Target::GatewayPgPair.label(),
        denominator: Target::GatewayPg.label(),
        label: "2 replicas / 1",
        goal: None,
    },
    Comparison {
        numerator: Target::Baseline.label(),
        denominator: Target::Bare.label(),
        label: "baseline / bare",
        goal: None,
    },
    Comparison {
        numerator: Target::Gateway.label(),
        denominator: Target::Baseline.label(),
        label: "gateway / baseline",
        goal: None,
    },
    Comparison {
        numerator: Target::GatewayUnrecorded.label(),
        denominator: Target::Baseline.label(),
        label: "no recording / baseline",
        goal: None,
    },
];

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// How long to load each target: `10s`, `500ms`, `1m`.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub(crate) duration: Duration,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) connections: u32,
    /// Which targets to load, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sim,bare,nginx,layered-identity,layered-policy,layered-masking,layered-recording,gateway,gateway-unrecorded,gateway-tls,gateway-tunnel"
    )]
    targets: Vec<Target>,
    /// Interleaved rounds: every target once per round, so drift between
    /// targets shows as spread instead of as a difference.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Let the load generator and the servers share every CPU (by default
    /// the generator runs on CPU 0 and the servers on the others).
    #[arg(long)]
    no_pin: bool,
    /// CI's smoke test: dev-profile binaries, one short round per target,
    /// each must serve without errors; nothing is timed or written.
    #[arg(long)]
    quick: bool,
    /// Where the report goes (its chart in `docs/bench/` beside it); not
    /// written by `--quick` runs.
    #[arg(long, default_value = "BENCHMARKS.md")]
    report: PathBuf,
    /// Use the release binaries already in the target directory instead of
    /// building them first.
    #[arg(long)]
    no_build: bool,
    /// The load generator.
    #[arg(long, value_enum, default_value = "auto")]
    generator: GeneratorChoice,
    /// Another `airlock` binary (e.g. built from main before a change),
    /// loaded in the same run with the same configuration as `gateway`:
    /// the report then shows the change's effect beside the bare proxy.
    #[arg(long)]
    pub(crate) baseline: Option<PathBuf>,
    /// Events in the trail `airlock policy replay` reads in the replay probe.
    #[arg(long, default_value_t = 1_000_000)]
    replay_events: u64,
    /// Skip the curves of how cost grows (concurrency, answer size, policy
    /// size, identities).
    #[arg(long)]
    no_curves: bool,
    /// Run the `--baseline` binary with `[audit] enabled = false`, to set
    /// it beside `gateway-unrecorded` instead of `gateway`.
    #[arg(long, requires = "baseline")]
    baseline_unrecorded: bool,
    /// Load the targets and print their numbers and ratios, nothing else:
    /// no probes, no curves, no report (to weigh one change quickly).
    #[arg(long, conflicts_with = "quick")]
    throughput_only: bool,
    /// Count the instructions each request costs the gateway, recording on
    /// and off (and the `--baseline` binary), under callgrind instead of
    /// timing it: deterministic to about 1%, where throughput on loopback
    /// drifts by 10% (valgrind is installed when missing). Prints a table;
    /// no report.
    #[arg(long, conflicts_with_all = ["quick", "throughput_only"])]
    instructions: bool,
    /// With `--throughput-only`: after the table, load every target
    /// open-loop at this many requests a second (`loadgen --rate`), once
    /// per round, and print their p50 and p99 (to weigh a change's latency
    /// below saturation).
    #[arg(long, requires = "throughput_only")]
    rate: Option<f64>,
    /// After the table, each target's threads: CPU (user and system), the
    /// bytes their `read`/`write` calls moved and their context switches
    /// (waits, preemptions), per request, summed over the rounds (where a
    /// cost lands: workers, the database's threads, the kernel, the
    /// scheduler).
    #[arg(long)]
    threads: bool,
    /// With `--instructions`: copy each target's callgrind dump into this
    /// directory (`<label>.callgrind.out`), to read with `callgrind_annotate`.
    #[arg(long, requires = "instructions")]
    pub(crate) keep_dumps: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum Target {
    /// `airlock-sim` directly: the upstream's own cost.
    Sim,
    /// `bare-proxy` in front of the sim: the least any proxy must do.
    Bare,
    /// nginx `proxy_pass` in front of the sim, keep-alive to the upstream.
    Nginx,
    /// `layered --layers identity`: token verification only, by hand.
    LayeredIdentity,
    /// `layered --layers policy`: + classification and policy.
    LayeredPolicy,
    /// `layered --layers masking`: + masking.
    LayeredMasking,
    /// `layered --layers recording`: + recording on SQLite, fail-closed.
    LayeredRecording,
    /// The Airlock gateway in front of the sim, recording every request
    /// (SQLite, fail-closed: no response finishes before its event is stored).
    Gateway,
    /// The same gateway with `[audit] enabled = false`: the recorder's cost.
    GatewayUnrecorded,
    /// The gateway (recording) in base-URL mode behind its TLS listener,
    /// loaded over HTTPS by `loadgen`: what the tunnel is compared with.
    GatewayTls,
    /// The gateway (recording) as a forward proxy: `loadgen` keeps one
    /// `CONNECT` tunnel per connection open to `management.azure.com` and
    /// speaks HTTPS to the minted certificate inside it.
    GatewayTunnel,
    /// The gateway (recording) on PostgreSQL instead of SQLite: one
    /// replica, its `[store] url` a throwaway cluster `pg-server` starts.
    GatewayPg,
    /// Two gateway replicas on that one PostgreSQL, each loaded with half
    /// the connections at the same time: their sum is the pair's throughput.
    GatewayPgPair,
    /// The `--baseline` binary, recording like `gateway` (added by that option).
    #[value(skip)]
    Baseline,
}

impl Target {
    const fn label(self) -> &'static str {
        match self {
            Target::Sim => "airlock-sim (direct)",
            Target::Bare => report::BARE_PROXY,
            Target::Nginx => "nginx proxy_pass",
            Target::LayeredIdentity => "layers: identity",
            Target::LayeredPolicy => "layers: + classify, policy",
            Target::LayeredMasking => "layers: + masking",
            Target::LayeredRecording => "layers: + recording",
            Target::Gateway => "airlock gateway",
            Target::GatewayUnrecorded => "gateway, no recording",
            Target::GatewayTls => "gateway, base URL, TLS",
            Target::GatewayTunnel => "gateway, CONNECT tunnel",
            Target::GatewayPg => "gateway, PostgreSQL",
            Target::GatewayPgPair => "2 replicas, PostgreSQL",
            Target::Baseline => "baseline gateway",
        }
    }

    /// What the target is, for the report.
    fn about(self) -> &'static str {
        match self {
            Target::Sim => "the simulated Azure answering directly: the upstream's own cost",
            Target::Bare => {
                "a hyper-util pass-through proxy (`xtask/bench/src/bin/bare-proxy.rs`) that swaps the credential: the least any proxy must do"
            }
            Target::Nginx => {
                "nginx `proxy_pass` with keep-alive to the upstream (no connection closed after 1 000 requests, on either side), one process (`master_process off`), access log off, swapping the `Authorization` header"
            }
            Target::LayeredIdentity => {
                "Airlock's layers stacked by hand in front of airlock-upstream (`xtask/bench/src/bin/layered.rs`), none of the gateway's own: the identity layer only (token verified, cached)"
            }
            Target::LayeredPolicy => "the same, + the classify and policy layers",
            Target::LayeredMasking => "the same, + the masking layer (the answer is JSON: scanned)",
            Target::LayeredRecording => {
                "the same, + the recorder on SQLite, fail-closed; the shipped gateway adds request ids, tracing, timeouts, ARM-shaped errors and metrics to this"
            }
            Target::Gateway => {
                "`airlock serve` as shipped: identity (cached token), classification, policy, masking (the answer is JSON), URL rewriting, recording on SQLite, fail-closed (no response completes before its event is stored), logging at its default level (`info`: a span per request, no line per request)"
            }
            Target::GatewayUnrecorded => "the same gateway with `[audit] enabled = false`",
            Target::GatewayTls => "the gateway, recording, behind its TLS listener (HTTPS load)",
            Target::GatewayTunnel => {
                "the gateway, recording, as a forward proxy: one `CONNECT` tunnel per connection, HTTPS inside"
            }
            Target::GatewayPg => "the gateway, recording on PostgreSQL",
            Target::GatewayPgPair => {
                "two gateway replicas on one PostgreSQL, half the connections each"
            }
            Target::Baseline => {
                "another `airlock` binary (`--baseline`), configured like `gateway`"
            }
        }
    }
}

pub(crate) fn run(sh: &Shell, args: &BenchArgs) -> anyhow::Result<()> {
    let mut targets = args.targets.clone();
    if let Some(baseline) = &args.baseline {
        if !baseline.is_file() {
            anyhow::bail!("--baseline {}: no such binary", baseline.display());
        }
        targets.push(Target::Baseline);
    }
    targets.sort_unstable();
    targets.dedup();

    let mut packages = vec!["-p", "airlock-sim", "-p", "airlock-bench"];
    if targets
        .iter()
        .any(|t| !matches!(t, Target::Sim | Target::Bare))
    {
        packages.extend(["-p", "airlock-cli"]);
    }
    // The smoke run uses the dev profile, which the tests have built already.
    let (profile, release): (&str, &[&str]) = if args.quick {
        ("debug", &[])
    } else {
        ("release", &["--release"])
    };
    if args.no_build {
        println!("--no-build: using the {profile} binaries already built");
    } else {
        cmd!(sh, "cargo build {release...} --locked {packages...} --bins")
            .run()
            .with_context(|| format!("building the {profile} binaries failed"))?;
    }
    let bin_dir = target_dir(sh)?.join(profile);
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let (generator_cpus, server_cpus) = if args.no_pin || cpus < 2 {
        (None, None)
    } else {
        anyhow::ensure!(
            apt::find_program("taskset").is_some(),
            "taskset (util-linux) is not installed: install it, or pass --no-pin"
        );
        let servers = if cpus == 2 {
            String::from("1")
        } else {
            format!("1-{}", cpus - 1)
        };
        (Some(String::from("0")), Some(servers))
    };
    let pinning = match (&generator_cpus, &server_cpus) {
        (Some(generator), Some(servers)) => format!(
            "load generator on CPU {generator} (one wrk thread), every server on CPU {servers} (`taskset -c`); on one CPU the bare proxy, the layered stacks and the gateway run tokio's current-thread scheduler (`airlock_gateway::runtime`)"
        ),
        _ => format!("none: the load generator and the servers share {cpus} CPUs"),
    };
    if args.instructions {
        let generator = Generator::choose(args.generator, &bin_dir)?;
        return crate::instructions::run(sh, &bin_dir, args, server_cpus, &generator);
    }
    let nginx = if targets.contains(&Target::Nginx) {
        if apt::find_program("nginx").is_none() {
            apt::install(sh, &["nginx"])?;
        }
        Some(apt::find_program("nginx").ok_or_else(|| anyhow!("nginx is not installed"))?)
    } else {
        None
    };

    let (warm_up, duration, rounds) = if args.quick {
        (QUICK, QUICK, 1)
    } else {
        (WARM_UP, args.duration, args.rounds)
    };

    let generator = Generator::choose(args.generator, &bin_dir)?;
    // HTTPS and CONNECT: only the in-repo generator speaks both alike.
    let loadgen = Generator::choose(GeneratorChoice::Loadgen, &bin_dir)?;
    println!("load generator: {}", generator.describe());
    println!("pinning: {pinning}");
    let load = format!(
        "`GET {REQUEST_PATH}` with a real token from the development issuer, {} keep-alive connections, {rounds} interleaved round(s) of {} per target after a {} warm-up, plain HTTP on loopback unless the target says otherwise",
        args.connections,
        duration::describe(duration),
        duration::describe(warm_up)
    );
    println!("load: {load}");

    // Declared before `children` so it is removed after they are killed.
    let work_dir = sh.create_temp_dir()?;
    let mut children = Children::default();
    children.cpus = server_cpus;

    let (sim_url, issuer) = start_sim(&mut children, &bin_dir, work_dir.path(), &[])?;
    // The simulated Azure shares the servers' CPU: its CPU per request
    // behind each target is what the goals' budgets subtract.
    let upstream_pids: Vec<u32> = children.last_pid("airlock-sim").into_iter().collect();
    let postgres = if targets
        .iter()
        .any(|t| matches!(t, Target::GatewayPg | Target::GatewayPgPair))
    {
        Some(start_postgres(&mut children, &bin_dir, work_dir.path())?)
    } else {
        None
    };
    // What an agent presents to the gateway (and, unchecked, to the bare proxy):
    // a real token from the development issuer, verified by the gateway.
    let client_authorization = format!("Bearer {}", issuer.agent_token);
    let mut endpoints = Vec::new();
    // Each target's own server processes, for its CPU per request.
    let mut server_pids: Vec<Vec<u32>> = Vec::new();
    let (work_path, bin_dir_ref, sim_url_ref, issuer_ref) =
        (work_dir.path(), &bin_dir, &sim_url, &issuer);
    for &target in &targets {
        let started_before = children.count();
        let on = |store: Store| {
            move |children: &mut Children, mode: Mode, record: bool, binary: PathBuf| {
                let name = match &store {
                    Store::Sqlite => format!("{target:?}"),
                    Store::Postgres { replica, .. } => format!("{target:?}-{replica}"),
                };
                start_gateway(
                    children,
                    &binary,
                    &work_path.join(name),
                    bin_dir_ref,
                    sim_url_ref,
                    issuer_ref,
                    record,
                    mode,
                    &store,
                    &Extra::default(),
                )
            }
        };
        let gateway = on(Store::Sqlite);
        let replica = |name: &str| -> anyhow::Result<Store> {
            let (url, password) = postgres
                .clone()
                .ok_or_else(|| anyhow!("no PostgreSQL was started"))?;
            Ok(Store::Postgres {
                url,
                password,
                replica: name.to_owned(),
            })
        };
        let airlock = bin_dir.join("airlock");
        let spec = match target {
            Target::Sim => LoadSpec::new(&sim_url, format!("Bearer {UPSTREAM_TOKEN}")),
            Target::Bare => LoadSpec::new(
                &start_bare_proxy(&mut children, &bin_dir, work_dir.path(), &sim_url)?,
                client_authorization.clone(),
            ),
            Target::LayeredIdentity
            | Target::LayeredPolicy
            | Target::LayeredMasking
            | Target::LayeredRecording => LoadSpec::new(
                &start_layered(
                    &mut children,
                    &bin_dir,
                    &work_dir.path().join(format!("{target:?}")),
                    &sim_url,
                    &issuer,
                    target,
                    &[],
                )?,
                client_authorization.clone(),
            ),
            Target::Nginx => LoadSpec::new(
                &start_nginx(
                    &mut children,
                    nginx
                        .as_deref()
                        .ok_or_else(|| anyhow!("nginx was not found"))?,
                    &work_dir.path().join("nginx"),
                    &sim_url,
                )?,
                client_authorization.clone(),
            ),
            Target::Gateway => LoadSpec::new(
                &gateway(&mut children, Mode::Plain, true, airlock)?.url,
                client_authorization.clone(),
            ),
            Target::GatewayUnrecorded => LoadSpec::new(
                &gateway(&mut children, Mode::Plain, false, airlock)?.url,
                client_authorization.clone(),
            ),
            Target::Baseline => LoadSpec::new(
                &gateway(
                    &mut children,
                    Mode::Plain,
                    !args.baseline_unrecorded,
                    args.baseline.clone().unwrap_or(airlock),
                )?
                .url,
                client_authorization.clone(),
            ),
            Target::GatewayTls => {
                let started = gateway(&mut children, Mode::Tls, true, airlock)?;
                LoadSpec {
                    ca: started.ca,
                    ..LoadSpec::new(&started.url, client_authorization.clone())
                }
            }
            Target::GatewayTunnel => {
                let started = gateway(&mut children, Mode::ForwardProxy, true, airlock)?;
                LoadSpec {
                    ca: started.ca,
                    proxy: Some(started.url),
                    ..LoadSpec::new("https://management.azure.com", client_authorization.clone())
                }
            }
            Target::GatewayPg => LoadSpec::new(
                &on(replica("solo")?)(&mut children, Mode::Plain, true, airlock)?.url,
                client_authorization.clone(),
            ),
            Target::GatewayPgPair => {
                let a = on(replica("a")?)(&mut children, Mode::Plain, true, airlock.clone())?;
                let b = on(replica("b")?)(&mut children, Mode::Plain, true, airlock)?;
                LoadSpec {
                    also: Some(format!("{}{REQUEST_PATH}", b.url)),
                    ..LoadSpec::new(&a.url, client_authorization.clone())
                }
            }
        };
        println!(
            "{:<24} {}{}",
            target.label(),
            spec.url.trim_end_matches(REQUEST_PATH),
            spec.also
                .as_deref()
                .map(|also| format!(" and {}", also.trim_end_matches(REQUEST_PATH)))
                .unwrap_or_default()
                + &spec
                    .proxy
                    .as_deref()
                    .map(|proxy| format!(" through {proxy}"))
                    .unwrap_or_default()
        );
        server_pids.push(if target == Target::Sim {
            children.last_pid("airlock-sim").into_iter().collect()
        } else {
            children.pids_since(started_before)
        });
        endpoints.push((target, spec));
    }

    let pick = |spec: &LoadSpec| {
        if spec.ca.is_some() {
            &loadgen
        } else {
            &generator
        }
    };
    let mut measured: Vec<Measured> = endpoints
        .iter()
        .map(|(target, _)| Measured {
            label: target.label(),
            about: target.about(),
            rounds: Vec::new(),
            cpu_us: Vec::new(),
            upstream_cpu_us: Vec::new(),
        })
        .collect();
    for (target, spec) in &mut endpoints {
        spec.connections = args.connections;
        spec.cpus.clone_from(&generator_cpus);
        spec.duration = warm_up;
        println!("warming up {} ...", target.label());
        pick(spec)
            .run_split(spec)
            .with_context(|| format!("warm-up of {} failed", target.label()))?;
    }
    // Per target: each thread's use over the rounds, and the requests served.
    let mut thread_use: Vec<(Vec<cpu::ThreadUse>, u64)> = vec![(Vec::new(), 0); endpoints.len()];
    for round in 1..=rounds {
        for ((((target, spec), measured), pids), threads) in endpoints
            .iter_mut()
            .zip(&mut measured)
            .zip(&server_pids)
            .zip(&mut thread_use)
        {
            spec.duration = duration;
            println!("round {round}/{rounds}: loading {} ...", target.label());
            let threads_before = if args.threads {
                cpu::threads(pids)
            } else {
                Vec::new()
            };
            // The simulated Azure's CPU behind the target (none when it is the target).
            let upstream: &[u32] = if *target == Target::Sim {
                &[]
            } else {
                &upstream_pids
            };
            let cpu_before = (cpu::seconds(pids), cpu::seconds(upstream));
            let result = pick(spec)
                .run_split(spec)
                .with_context(|| format!("load on {} failed", target.label()))?;
            #[allow(clippy::cast_precision_loss)]
            let per_request = |before: Option<f64>, after: Option<f64>| {
                before
                    .zip(after)
                    .filter(|_| result.requests > 0)
                    .map(|(before, after)| (after - before) * 1e6 / result.requests as f64)
            };
            measured
                .cpu_us
                .extend(per_request(cpu_before.0, cpu::seconds(pids)));
            measured
                .upstream_cpu_us
                .extend(per_request(cpu_before.1, cpu::seconds(upstream)));
            if args.threads {
                let used = cpu::used_between(&threads_before, &cpu::threads(pids));
                threads.0 = cpu::add(&threads.0, &used);
                threads.1 += result.requests;
            }
            children.check_all_running()?;
            if args.quick {
                anyhow::ensure!(
                    result.requests > 0 && result.errors == 0,
                    "{} did not serve: {} requests, {} errors",
                    target.label(),
                    result.requests,
                    result.errors
                );
            }
            measured.rounds.push(result);
        }
    }

    // The smoke run's numbers mean nothing: no ratios, no goals.
    report::print(&measured, if args.quick { &[] } else { COMPARISONS });
    if args.threads {
        for ((target, _), (threads, requests)) in endpoints.iter().zip(&thread_use) {
            print_threads(target.label(), threads, *requests);
        }
    }
    if args.throughput_only {
        if let Some(rate) = args.rate {
            let targets: Vec<(&'static str, LoadSpec)> = endpoints
                .iter()
                .filter(|(_, spec)| spec.ca.is_none())
                .map(|(target, spec)| (target.label(), spec.clone()))
                .collect();
            let probe =
                open_loop::probe(&loadgen, &targets, (rate, Basis::Asked), duration, rounds)?;
            println!("{}", probe.describe());
        }
        return Ok(());
    }
    let curve_dir = work_dir.path().join("curves");
    let curve_bench = curves::Bench {
        bin_dir: &bin_dir,
        work_dir: &curve_dir,
        generator: &generator,
        cpus: generator_cpus.clone(),
        warm_up,
        duration,
        quick: args.quick,
    };
    if args.quick {
        if !args.no_curves {
            curves::run(&mut children, &curve_bench)?;
        }
        let replay = replay_probe::probe(
            &bin_dir,
            &work_dir.path().join("replay"),
            QUICK_REPLAY_EVENTS,
        )?;
        println!("{}", replay.describe());
        println!("--quick: every target started and served; nothing timed, no report written");
        return Ok(());
    }
    if let Some((_, tunnel)) = endpoints
        .iter()
        .find(|(target, _)| *target == Target::GatewayTunnel)
    {
        mint_probe(&loadgen, tunnel)?;
    }
    let median_rps = |target: Target| {
        measured
            .iter()
            .find(|m| m.label == target.label())
            .map(|m| m.summary().rps)
            .filter(|rps| *rps > 0.0)
    };
    let at_rate = |targets: &[Target]| -> Vec<(&'static str, LoadSpec)> {
        endpoints
            .iter()
            .filter(|(target, spec)| targets.contains(target) && spec.ca.is_none())
            .map(|(target, spec)| (target.label(), spec.clone()))
            .collect()
    };
    let open_loop = match median_rps(Target::Bare) {
        Some(rps) => {
            let targets = at_rate(&[Target::Bare, Target::Nginx, Target::Gateway]);
            let probe = open_loop::probe(
                &loadgen,
                &targets,
                (rps / 2.0, Basis::Bare),
                duration,
                rounds,
            )?;
            println!("{}", probe.describe());
            Some(probe)
        }
        None => None,
    };
    // The same question below the gateway's own saturation, where its queue
    // does not set the latency: what it adds per request.
    let unsaturated = match (median_rps(Target::Bare), median_rps(Target::Gateway)) {
        (Some(_), Some(rps)) => {
            let targets = at_rate(&[Target::Bare, Target::Gateway, Target::GatewayUnrecorded]);
            let basis = (rps / 2.0, Basis::Gateway);
            let probe = open_loop::probe(&loadgen, &targets, basis, duration, rounds)?;
            println!("{}", probe.describe());
            Some(probe)
        }
        _ => None,
    };
    println!(
        "memory probe: {} connections reading an 8 MiB list through the masker ...",
        args.connections
    );
    let memory = memory::probe(
        &mut children,
        &bin_dir,
        &work_dir.path().join("memory"),
        &generator,
        args.connections,
        duration,
        generator_cpus.clone(),
    )?;
    println!("{}", memory.describe());
    println!(
        "footprint probe: start-up time, and {} idle connections ...",
        1_000
    );
    let footprint = footprint::probe(
        &mut children,
        &bin_dir,
        &work_dir.path().join("footprint"),
        &sim_url,
        &issuer,
    )?;
    println!("{}", footprint.describe());
    println!(
        "replay probe: airlock policy replay over {} events ...",
        args.replay_events
    );
    let replay = replay_probe::probe(
        &bin_dir,
        &work_dir.path().join("replay"),
        args.replay_events,
    )?;
    println!("{}", replay.describe());
    let curves = if args.no_curves {
        Vec::new()
    } else {
        curves::run(&mut children, &curve_bench)?
    };
    let info = RunInfo {
        command: format!(
            "cargo xtask {}",
            std::env::args().skip(1).collect::<Vec<_>>().join(" ")
        ),
        date: cmd!(sh, "date -u +%Y-%m-%d").quiet().read()?,
        machine: machine(),
        generator: format!(
            "{} (HTTPS and CONNECT targets: the in-repo loadgen)",
            generator.describe()
        ),
        pinning,
        load,
    };
    let report = project_root().join(&args.report);
    report::write(
        &report,
        &info,
        &measured,
        COMPARISONS,
        &[
            (
                "Latency at half the bare proxy's saturation",
                open_loop.map_or_else(
                    || String::from("Not measured: the bare proxy was not among the targets."),
                    |probe| probe.describe(),
                ),
            ),
            (
                "Latency below the gateway's saturation",
                unsaturated.map_or_else(
                    || String::from("Not measured: the bare proxy and the gateway were not both among the targets."),
                    |probe| probe.describe(),
                ),
            ),
            (
                "What one CPU carries against Azure's own limits",
                measured
                    .iter()
                    .find(|m| m.label == Target::Gateway.label())
                    .map_or_else(
                        || String::from("Not measured: the gateway was not among the targets."),
                        |gateway| azure_limits::describe(&gateway.summary()),
                    ),
            ),
            ("Memory under large answers", memory.describe()),
            ("Start-up and idle connections", footprint.describe()),
            ("Replaying a long trail", replay.describe()),
        ],
        &curves,
    )
}

/// The CPU model, CPU count, memory and kernel, read from `/proc`.
fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| String::from("unknown CPU"));
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let memory_gib = memory::kib_field(&read("/proc/meminfo"), "MemTotal:")
        .map_or_else(String::new, |kib| {
            format!(", {:.0} GiB memory", kib / 1_048_576.0)
        });
    format!(
        "{model}, {cpus} CPUs{memory_gib}, Linux {}",
        read("/proc/sys/kernel/osrelease").trim()
    )
}

/// How much a new host costs a forward proxy: one request at a time, each
/// on a new tunnel, to a vault host never seen (a certificate is minted)
/// and to one already seen (the cached certificate), in the same run.
fn mint_probe(loadgen: &Generator, tunnel: &LoadSpec) -> anyhow::Result<()> {
    let probe = |host: &str| {
        loadgen.run(&LoadSpec {
            url: format!("https://{host}/secrets/probe?api-version=7.4"),
            connections: 1,
            duration: Duration::from_secs(2),
            connection_per_request: true,
            ..tunnel.clone()
        })
    };
    let seen = probe("kv0.vault.azure.net")?;
    let new = probe("kv{n}.vault.azure.net")?;
    println!();
    println!("a new tunnel per request, one at a time (the policy refuses the read: no upstream):");
    for (label, result) in [("host seen before", &seen), ("host never seen", &new)] {
        println!(
            "  {label:<18} p50 {:.3} ms, p99 {:.3} ms, {} requests",
            result.p50_ms, result.p99_ms, result.requests
        );
    }
    println!(
        "  first request to a new host (minting its certificate) / to a host seen: p50 {}, p99 {}",
        ratio(new.p50_ms, seen.p50_ms),
        ratio(new.p99_ms, seen.p99_ms)
    );
    Ok(())
}

/// The development issuer the sim runs beside it (`--issuer-file`).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Issuer {
    issuer: String,
    tenant: String,
    pub(crate) agent_token: String,
}

/// Starts the simulated Azure and its token issuer; returns the sim's base URL and the issuer.
pub(crate) fn start_sim(
    children: &mut Children,
    bin_dir: &Path,
    work_dir: &Path,
    extra_args: &[&str],
) -> anyhow::Result<(String, Issuer)> {
    let issuer_file = work_dir.join("issuer.json");
    let mut command = Command::new(bin_dir.join("airlock-sim"));
    command
        .args(["--listen", "127.0.0.1:0", "--token", UPSTREAM_TOKEN])
        .arg("--issuer-file")
        .arg(&issuer_file)
        .args(extra_args)
        .env("RUST_LOG", "warn");
    let line = children.spawn_and_read_line(
        "airlock-sim",
        command,
        &work_dir.join("airlock-sim.log"),
        "listening on",
    )?;
    let text = std::fs::read_to_string(&issuer_file)
        .with_context(|| format!("airlock-sim wrote no {}", issuer_file.display()))?;
    let issuer = serde_json::from_str(&text).context("airlock-sim's issuer file")?;
    Ok((url_in_line(&line)?, issuer))
}

/// Starts a throwaway PostgreSQL (`pg-server`); returns its database's URL
/// (without the password) and the password.
fn start_postgres(
    children: &mut Children,
    bin_dir: &Path,
    work_dir: &Path,
) -> anyhow::Result<(String, String)> {
    let line = children.spawn_and_read_line(
        "pg-server",
        Command::new(bin_dir.join("pg-server")),
        &work_dir.join("pg-server.log"),
        "pg-server ready:",
    )?;
    let mut words = line
        .split_whitespace()
        .skip_while(|w| !w.starts_with("postgres://"));
    match (words.next(), words.next(), words.next()) {
        (Some(url), Some("password"), Some(password)) => Ok((url.to_owned(), password.to_owned())),
        _ => Err(anyhow!("pg-server printed no URL and password: {line:?}")),
    }
}

/// Where a bench gateway keeps approvals and audit events.
#[derive(Clone, Debug)]
pub(crate) enum Store {
    /// Its own SQLite file (the default).
    Sqlite,
    /// A shared PostgreSQL database, as one named replica.
    Postgres {
        url: String,
        password: String,
        replica: String,
    },
}

/// Starts the bare proxy in front of the sim; returns its base URL.
pub(crate) fn start_bare_proxy(
    children: &mut Children,
    bin_dir: &Path,
    work_dir: &Path,
    sim_url: &str,
) -> anyhow::Result<String> {
    start_bare_proxy_under(children, bin_dir, work_dir, sim_url, &[])
}

/// [`start_bare_proxy`], run under `launcher` (see [`Extra::launcher`]).
pub(crate) fn start_bare_proxy_under(
    children: &mut Children,
    bin_dir: &Path,
    work_dir: &Path,
    sim_url: &str,
    launcher: &[String],
) -> anyhow::Result<String> {
    let mut command = launched(&bin_dir.join("bare-proxy"), launcher);
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        sim_url,
        "--token",
        UPSTREAM_TOKEN,
    ]);
    let line = children.spawn_and_read_line(
        "bare-proxy",
        command,
        &work_dir.join("bare-proxy.log"),
        "listening on",
    )?;
    url_in_line(&line)
}

/// `--threads`: the threads of one target that used at least 1% of its CPU,
/// per request: CPU, bytes read and written, and context switches (waits:
/// the thread gave up the CPU; preempted: another task took it).
fn print_threads(label: &str, threads: &[cpu::ThreadUse], requests: u64) {
    if requests == 0 {
        return;
    }
    #[allow(clippy::cast_precision_loss)]
    let per = |value: f64| value / requests as f64;
    let mut threads = threads.to_vec();
    threads.sort_by(|a, b| (b.user + b.system).total_cmp(&(a.user + a.system)));
    let total: f64 = threads.iter().map(|t| t.user + t.system).sum();
    println!();
    println!(
        "{label}: threads (per request)   {:>9} {:>9} {:>10} {:>10} {:>6} {:>9}",
        "user µs", "system µs", "read B", "written B", "waits", "preempted"
    );
    for thread in threads
        .iter()
        .filter(|t| t.user + t.system >= total / 100.0)
    {
        #[allow(clippy::cast_precision_loss)]
        let bytes = |value: u64| per(value as f64);
        println!(
            "  {:<28} {:>9.1} {:>9.1} {:>10.0} {:>10.0} {:>6.2} {:>9.2}",
            format!("{} ({})", thread.name, thread.tid),
            per(thread.user) * 1e6,
            per(thread.system) * 1e6,
            bytes(thread.read),
            bytes(thread.written),
            bytes(thread.voluntary),
            bytes(thread.involuntary)
        );
    }
}

/// `program`, or `launcher` running it (`valgrind … program`).
fn launched(program: &Path, launcher: &[String]) -> Command {
    match launcher {
        [launcher, args @ ..] => {
            let mut command = Command::new(launcher);
            command.args(args).arg(program);
            command
        }
        [] => Command::new(program),
    }
}

/// Starts `layered` with the layers `target` names in front of the sim,
/// under `launcher` (see [`Extra::launcher`]); returns its base URL.
pub(crate) fn start_layered(
    children: &mut Children,
    bin_dir: &Path,
    work_dir: &Path,
    sim_url: &str,
    issuer: &Issuer,
    target: Target,
    launcher: &[String],
) -> anyhow::Result<String> {
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    let policy = work_dir.join("policy.toml");
    std::fs::write(&policy, BENCH_POLICY)
        .with_context(|| format!("cannot write {}", policy.display()))?;
    let layers = match target {
        Target::LayeredIdentity => "identity",
        Target::LayeredPolicy => "policy",
        Target::LayeredMasking => "masking",
        _ => "recording",
    };
    let mut command = launched(&bin_dir.join("layered"), launcher);
    command
        .args(["--listen", "127.0.0.1:0", "--upstream", sim_url])
        .args(["--token", UPSTREAM_TOKEN, "--issuer", &issuer.issuer])
        .args(["--tenant", &issuer.tenant, "--layers", layers])
        .arg("--policy")
        .arg(&policy)
        .arg("--database")
        .arg(work_dir.join("audit.db"))
        .env("RUST_LOG", "warn");
    let line = children.spawn_and_read_line(
        "layered",
        command,
        &work_dir.join("layered.log"),
        "listening on",
    )?;
    url_in_line(&line)
}

/// Starts nginx (`proxy_pass`, keep-alive to the sim) in `work_dir`;
/// returns its base URL. One process (`master_process off`), so killing it
/// leaves no worker behind; with one worker, as fast as a master and one
/// worker.
fn start_nginx(
    children: &mut Children,
    nginx: &Path,
    work_dir: &Path,
    sim_url: &str,
) -> anyhow::Result<String> {
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, free_loopback_port()?));
    let upstream = sim_url.trim_start_matches("http://");
    let temp = work_dir.display();
    let config = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {temp}/nginx.pid;
error_log {temp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    # Keep-alive connections are not closed after 1 000 requests (nginx's
    # default), on either side: the other targets never close them, and an
    # open-loop run counted each close as an error.
    keepalive_requests 1000000;
    upstream sim {{
        server {upstream};
        keepalive 128;
        keepalive_requests 1000000;
    }}
    server {{
        listen {address};
        location / {{
            proxy_pass http://sim;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer {UPSTREAM_TOKEN}";
        }}
    }}
}}
"#
    );
    let config_path = work_dir.join("nginx.conf");
    std::fs::write(&config_path, config)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let log = work_dir.join("nginx.log");
    let mut command = Command::new(nginx);
    command
        .arg("-p")
        .arg(work_dir)
        .arg("-c")
        .arg(&config_path)
        .args(["-e", "stderr"]);
    children.spawn_logged("nginx", command, &log)?;
    children.wait_for_http_ok("nginx", address, REQUEST_PATH, &log)?;
    Ok(format!("http://{address}"))
}

/// How a bench gateway listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Plain HTTP, base-URL mode.
    Plain,
    /// TLS (a throwaway CA from `dev-certs`), base-URL mode.
    Tls,
    /// Plain HTTP with `[forward_proxy]` on (its CA from `airlock ca init`).
    ForwardProxy,
}

/// A bench gateway: its URL, and the CA its clients trust (TLS and
/// forward-proxy modes).
pub(crate) struct Started {
    pub(crate) url: String,
    ca: Option<PathBuf>,
}

/// Vaults the forward-proxy gateway serves, `kv0`…: enough new hosts for
/// the mint probe.
const PROBE_VAULTS: usize = 3000;

/// Writes the gateway's config, starts `airlock serve` and waits until it
/// serves; returns its URL.
/// What one benchmark gateway has beyond the configuration all share.
#[derive(Debug, Default)]
pub(crate) struct Extra<'a> {
    /// TOML appended to the configuration (e.g. a `[limits]` table).
    pub(crate) config: &'a str,
    /// The policy file's text instead of the benchmark's own.
    pub(crate) policy: Option<&'a str>,
    /// A program the gateway runs under, with its arguments (`valgrind …`).
    pub(crate) launcher: &'a [String],
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site per mode, all named"
)]
pub(crate) fn start_gateway(
    children: &mut Children,
    binary: &Path,
    work_dir: &Path,
    bin_dir: &Path,
    sim_url: &str,
    issuer: &Issuer,
    record: bool,
    mode: Mode,
    store: &Store,
    extra: &Extra<'_>,
) -> anyhow::Result<Started> {
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, free_loopback_port()?));
    let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, free_loopback_port()?));
    let sim_port = sim_url
        .rsplit(':')
        .next()
        .ok_or_else(|| anyhow!("no port in the sim's URL {sim_url}"))?;
    let policy_path = work_dir.join("policy.toml");
    std::fs::write(&policy_path, extra.policy.unwrap_or(BENCH_POLICY))
        .with_context(|| format!("cannot write {}", policy_path.display()))?;
    let mut vaults = vec![String::from("\"demo-vault\"")];
    let (listen_tls, forward_proxy, ca) = match mode {
        Mode::Plain => (String::new(), String::new(), None),
        Mode::Tls => {
            let status = Command::new(bin_dir.join("dev-certs"))
                .arg("--dir")
                .arg(work_dir)
                .args(["--host", "localhost"])
                .status()
                .context("cannot run dev-certs")?;
            anyhow::ensure!(status.success(), "dev-certs failed ({status})");
            (
                format!(
                    "[listen.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
                    work_dir.join("cert.pem").display(),
                    work_dir.join("key.pem").display()
                ),
                String::new(),
                Some(work_dir.join("ca.pem")),
            )
        }
        Mode::ForwardProxy => {
            let output = Command::new(binary)
                .args(["ca", "init", "--dir"])
                .arg(work_dir)
                .output()
                .context("cannot run airlock ca init")?;
            anyhow::ensure!(
                output.status.success(),
                "airlock ca init failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            vaults.extend((0..PROBE_VAULTS).map(|i| format!("\"kv{i}\"")));
            (
                String::new(),
                format!(
                    "[forward_proxy]\nenabled = true\nca_cert_file = \"{}\"\nca_key_file = \"{}\"\n",
                    work_dir.join("proxy-ca.pem").display(),
                    work_dir.join("proxy-ca-key.pem").display()
                ),
                Some(work_dir.join("proxy-ca.pem")),
            )
        }
    };
    let config = format!(
        r#"[listen]
address = "{address}"
{listen_tls}
[identity]
tenants = ["{tenant}"]
audiences = ["api://airlock"]
discovery = "{discovery}"

[policy]
file = "{policy}"

[masking]
key_file = "{masking_key}"

[store]
{store}

[audit]
enabled = {record}

[admin]
address = "{admin}"

[upstream]
arm_url = "{sim_url}"
allow_insecure_http = true

[upstream.key_vault]
endpoint = "http://{{vault}}.vault.localhost:{sim_port}"
vaults = [{vaults}]

[upstream.credential]
kind = "static"
token = "{UPSTREAM_TOKEN}"

{forward_proxy}
{extra_config}"#,
        extra_config = extra.config,
        vaults = vaults.join(", "),
        tenant = issuer.tenant,
        discovery = issuer.issuer,
        policy = policy_path.display(),
        masking_key = work_dir.join("masking.key").display(),
        store = match store {
            Store::Sqlite => format!("database = \"{}\"", work_dir.join("airlock.db").display()),
            Store::Postgres { url, replica, .. } => format!(
                "url = \"{url}\"\npassword_env = \"AIRLOCK_BENCH_DB_PASSWORD\"\nreplica = \"{replica}\""
            ),
        },
    );
    let config_path = work_dir.join("airlock.toml");
    std::fs::write(&config_path, config)
        .with_context(|| format!("cannot write {}", config_path.display()))?;

    let log = work_dir.join("airlock.log");
    let mut command = launched(binary, extra.launcher);
    command
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        // The default log level, as shipped (`info`: a span per request,
        // nothing logged per request); its "listening" line says when a TLS
        // listener serves (it cannot be probed with plain HTTP).
        .env_remove("RUST_LOG");
    if let Store::Postgres { password, .. } = store {
        command.env("AIRLOCK_BENCH_DB_PASSWORD", password);
    }
    children.spawn_logged("airlock", command, &log)?;
    if mode == Mode::Tls {
        children.wait_for_log_line("airlock", &log, "airlock gateway listening")?;
        Ok(Started {
            url: format!("https://localhost:{}", address.port()),
            ca,
        })
    } else {
        children.wait_for_http_ok("airlock", address, "/healthz", &log)?;
        Ok(Started {
            url: format!("http://{address}"),
            ca,
        })
    }
}

/// `… listening on http://127.0.0.1:PORT` -> `http://127.0.0.1:PORT`.
fn url_in_line(line: &str) -> anyhow::Result<String> {
    line.split_whitespace()
        .find(|word| word.starts_with("http://"))
        .map(|url| url.trim_end_matches('/').to_owned())
        .ok_or_else(|| anyhow!("no http:// URL in {line:?}"))
}

/// Where cargo puts build output, honouring `CARGO_TARGET_DIR` and config.
fn target_dir(sh: &Shell) -> anyhow::Result<PathBuf> {
    let metadata = cmd!(sh, "cargo metadata --format-version 1 --no-deps")
        .quiet()
        .read()?;
    let metadata: Value = serde_json::from_str(&metadata)?;
    metadata
        .get("target_directory")
        .and_then(Value::as_str)
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("`cargo metadata` names no target_directory"))
}

fn ratio(numerator: f64, denominator: f64) -> String {
    if denominator > 0.0 {
        format!("{:.2}x", numerator / denominator)
    } else {
        String::from("n/a")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_url_in_a_listening_line() -> anyhow::Result<()> {
        assert_eq!(
            url_in_line("airlock-sim listening on http://127.0.0.1:40123")?,
            "http://127.0.0.1:40123"
        );
        assert_eq!(
            url_in_line("bare-proxy listening on http://127.0.0.1:5/")?,
            "http://127.0.0.1:5"
        );
        assert!(url_in_line("ready").is_err());
        Ok(())
    }

    #[test]
    fn ratios_guard_against_zero() {
        assert_eq!(ratio(50.0, 100.0), "0.50x");
        assert_eq!(ratio(1.0, 0.0), "n/a");
    }
}
