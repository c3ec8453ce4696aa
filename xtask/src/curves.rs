//! How cost grows, for `cargo xtask bench`: throughput and p99 of the
//! shipped gateway (and, where the proxy's own share moves too, the bare
//! proxy) against concurrency, answer size, policy size and the number of
//! distinct identities. Each curve is one chart and one table in
//! `BENCHMARKS.md`; `--quick` runs the two smallest points of each, as a
//! smoke test, and writes nothing.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use crate::bench::{Extra, Issuer, Mode, Store, start_bare_proxy, start_gateway, start_sim};
use crate::chart::{self, Panel, Series};
use crate::load::{Generator, LoadResult, LoadSpec};
use crate::memory::{SUBSCRIPTION, put_group};
use crate::process::Children;

/// One curve: a load's size on the x axis, one line per target.
#[derive(Debug)]
pub(crate) struct Curve {
    /// File name part: `docs/bench/growth-{slug}.svg`.
    pub(crate) slug: &'static str,
    pub(crate) title: &'static str,
    pub(crate) x_label: &'static str,
    /// What is varied, and how, for the report.
    pub(crate) about: String,
    /// The x values and how the axis names them.
    pub(crate) points: Vec<(f64, String)>,
    /// Per target, one result per point.
    pub(crate) series: Vec<(&'static str, Vec<LoadResult>)>,
}

impl Curve {
    /// The chart: throughput and p99 side by side.
    pub(crate) fn svg(&self) -> String {
        let panel = |y_label: &str, value: fn(&LoadResult) -> f64| Panel {
            y_label: y_label.to_owned(),
            series: self
                .series
                .iter()
                .map(|(label, results)| Series {
                    label: (*label).to_owned(),
                    points: self
                        .points
                        .iter()
                        .zip(results)
                        .map(|((x, _), result)| (*x, value(result)))
                        .collect(),
                })
                .collect(),
        };
        chart::lines(
            self.title,
            self.x_label,
            &self.points,
            &[
                panel("requests/s", |r| r.requests_per_second),
                panel("p99 ms", |r| r.p99_ms),
            ],
        )
    }

    /// The table, one row per point.
    pub(crate) fn table(&self) -> String {
        let mut md = format!("| {} |", self.x_label);
        let mut rule = String::from("|---:|");
        for (label, _) in &self.series {
            let _ = write!(md, " {label} req/s | p99 ms | errors |");
            rule.push_str("---:|---:|---:|");
        }
        let _ = writeln!(md, "\n{rule}");
        for (index, (_, name)) in self.points.iter().enumerate() {
            let _ = write!(md, "| {name} |");
            for (_, results) in &self.series {
                if let Some(r) = results.get(index) {
                    let _ = write!(
                        md,
                        " {:.0} | {:.2} | {} |",
                        r.requests_per_second, r.p99_ms, r.errors
                    );
                }
            }
            md.push('\n');
        }
        md
    }

    /// What the numbers say, first point to last, per target.
    pub(crate) fn summary(&self) -> String {
        let (Some((_, first)), Some((_, last))) = (self.points.first(), self.points.last()) else {
            return String::new();
        };
        self.series
            .iter()
            .filter_map(|(label, results)| {
                let (a, b) = (results.first()?, results.last()?);
                Some(format!(
                    "{label}: {:.0} → {:.0} req/s ({}), p99 {:.2} → {:.2} ms from {first} to {last}.",
                    a.requests_per_second,
                    b.requests_per_second,
                    change(a.requests_per_second, b.requests_per_second),
                    a.p99_ms,
                    b.p99_ms
                ))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `-42%`, `+3%`.
fn change(from: f64, to: f64) -> String {
    if from > 0.0 {
        format!("{:+.0}%", (to / from - 1.0) * 100.0)
    } else {
        String::from("n/a")
    }
}

/// What every curve's loads share.
pub(crate) struct Bench<'a> {
    pub(crate) bin_dir: &'a Path,
    pub(crate) work_dir: &'a Path,
    pub(crate) generator: &'a Generator,
    pub(crate) cpus: Option<String>,
    pub(crate) warm_up: Duration,
    pub(crate) duration: Duration,
    /// Two points per curve, and every load must be served without errors.
    pub(crate) quick: bool,
}

impl Bench<'_> {
    /// The points of a curve: all of them, or the two smallest in a smoke run.
    fn points<T: Copy>(&self, all: &[T]) -> Vec<T> {
        let n = if self.quick {
            2.min(all.len())
        } else {
            all.len()
        };
        all[..n].to_vec()
    }

    /// One point: a warm-up, then the measured load.
    fn load(&self, label: &str, mut spec: LoadSpec) -> anyhow::Result<LoadResult> {
        spec.cpus.clone_from(&self.cpus);
        spec.duration = self.warm_up;
        self.generator
            .run(&spec)
            .with_context(|| format!("warm-up of {label} failed"))?;
        spec.duration = self.duration;
        let result = self
            .generator
            .run(&spec)
            .with_context(|| format!("load on {label} failed"))?;
        println!(
            "  {label}: {:.0} req/s, p99 {:.2} ms, {} errors",
            result.requests_per_second, result.p99_ms, result.errors
        );
        if self.quick {
            anyhow::ensure!(
                result.requests > 0 && result.errors == 0,
                "{label} did not serve: {} requests, {} errors",
                result.requests,
                result.errors
            );
        }
        Ok(result)
    }
}

/// Runs every curve with its own sim and servers, in `bench.work_dir`.
pub(crate) fn run(children: &mut Children, bench: &Bench<'_>) -> anyhow::Result<Vec<Curve>> {
    Ok(vec![
        concurrency(children, bench)?,
        answer_size(children, bench)?,
        policy_size(children, bench)?,
        identities(children, bench)?,
    ])
}

const GATEWAY: &str = "airlock gateway";
const BARE: &str = crate::report::BARE_PROXY;

/// A sim, the bare proxy and a gateway (recording, as shipped) in front of
/// it, started in `dir`; `extra` is added to the gateway.
fn sim_bare_gateway(
    children: &mut Children,
    bench: &Bench<'_>,
    dir: &Path,
    extra: &Extra<'_>,
) -> anyhow::Result<(String, Issuer, String, String)> {
    std::fs::create_dir_all(dir)?;
    let (sim_url, issuer) = start_sim(children, bench.bin_dir, dir, &[])?;
    let bare = start_bare_proxy(children, bench.bin_dir, dir, &sim_url)?;
    let gateway = recording_gateway(
        children,
        bench,
        &dir.join("gateway"),
        &sim_url,
        &issuer,
        extra,
    )?;
    Ok((sim_url, issuer, bare, gateway))
}

/// A gateway (recording, as shipped) in front of `sim_url`, started in
/// `dir` with `extra`; its base URL.
fn recording_gateway(
    children: &mut Children,
    bench: &Bench<'_>,
    dir: &Path,
    sim_url: &str,
    issuer: &Issuer,
    extra: &Extra<'_>,
) -> anyhow::Result<String> {
    Ok(start_gateway(
        children,
        &bench.bin_dir.join("airlock"),
        dir,
        bench.bin_dir,
        sim_url,
        issuer,
        true,
        Mode::Plain,
        &Store::Sqlite,
        extra,
    )?
    .url)
}

fn concurrency(children: &mut Children, bench: &Bench<'_>) -> anyhow::Result<Curve> {
    println!("curve: concurrency");
    let dir = bench.work_dir.join("concurrency");
    let (_, issuer, bare, gateway) = sim_bare_gateway(
        children,
        bench,
        &dir,
        &Extra {
            config: "[limits]\nmax_connections_per_client = 2048\n",
            ..Extra::default()
        },
    )?;
    let authorization = format!("Bearer {}", issuer.agent_token);
    let levels = bench.points(&[1_u32, 16, 64, 256, 1024]);
    let mut series = vec![(BARE, Vec::new()), (GATEWAY, Vec::new())];
    for &connections in &levels {
        for (label, url) in [(BARE, &bare), (GATEWAY, &gateway)] {
            let mut spec = LoadSpec::new(url, authorization.clone());
            spec.connections = connections;
            spec.timeout = Some(Duration::from_secs(10));
            let result = bench.load(&format!("{label}, {connections} connections"), spec)?;
            push(&mut series, label, result);
        }
    }
    Ok(Curve {
        slug: "concurrency",
        title: "Against concurrency (small ARM GET)",
        x_label: "connections",
        about: String::from(
            "The benchmark's small ARM GET at 1 to 1 024 keep-alive connections; the gateway's `[limits] max_connections_per_client` is raised to 2 048, as every connection comes from 127.0.0.1.",
        ),
        points: levels
            .iter()
            .map(|&c| (f64::from(c), c.to_string()))
            .collect(),
        series,
    })
}

fn answer_size(children: &mut Children, bench: &Bench<'_>) -> anyhow::Result<Curve> {
    println!("curve: answer size");
    let dir = bench.work_dir.join("answer-size");
    let (sim_url, issuer, bare, gateway) =
        sim_bare_gateway(children, bench, &dir, &Extra::default())?;
    let authorization = format!("Bearer {}", issuer.agent_token);
    const KIB: usize = 1024;
    let sizes = bench.points(&[KIB, 16 * KIB, 256 * KIB, 1024 * KIB, 8 * 1024 * KIB]);
    let mut series = vec![(BARE, Vec::new()), (GATEWAY, Vec::new())];
    let mut points = Vec::new();
    for &size in &sizes {
        let name = format!("size-{}k", size / KIB);
        let bytes = put_group(&sim_url, &name, size)?;
        points.push((bytes as f64, size_label(size)));
        for (label, url) in [(BARE, &bare), (GATEWAY, &gateway)] {
            let mut spec = LoadSpec::new(url, authorization.clone());
            spec.url = format!(
                "{url}/subscriptions/{SUBSCRIPTION}/resourcegroups/{name}?api-version=2021-04-01"
            );
            spec.connections = 64;
            // Large answers wait for their share of the masker's budget.
            spec.timeout = Some(Duration::from_secs(60));
            let result = bench.load(&format!("{label}, {}", size_label(size)), spec)?;
            push(&mut series, label, result);
        }
    }
    Ok(Curve {
        slug: "answer-size",
        title: "Against answer size (one resource group, JSON)",
        x_label: "answer size",
        about: String::from(
            "`GET` of one resource group whose tags make its JSON answer about the size shown, 64 connections; the gateway masks it (it reads the answer whole, within `[masking] max_buffered_bytes`, 64 MiB as shipped) and records it.",
        ),
        points,
        series,
    })
}

/// The policy-size curve's two shapes of policy.
const POLICY_SHAPES: [(&str, Shape); 2] = [
    ("gateway, every rule on */read", Shape::SameOperation),
    ("gateway, rules of other providers", Shape::OtherProviders),
];

fn policy_size(children: &mut Children, bench: &Bench<'_>) -> anyhow::Result<Curve> {
    println!("curve: policy size");
    let dir = bench.work_dir.join("policy-size");
    std::fs::create_dir_all(&dir)?;
    let (sim_url, issuer) = start_sim(children, bench.bin_dir, &dir, &[])?;
    let authorization = format!("Bearer {}", issuer.agent_token);
    let sizes = bench.points(&[10_usize, 100, 1_000, 10_000]);
    let mut series: Vec<_> = POLICY_SHAPES
        .iter()
        .map(|(label, _)| (*label, Vec::new()))
        .collect();
    for &rules in &sizes {
        for (label, shape) in POLICY_SHAPES {
            let policy = policy_of(rules, shape);
            let gateway = recording_gateway(
                children,
                bench,
                &dir.join(format!("rules-{rules}-{shape:?}")),
                &sim_url,
                &issuer,
                &Extra {
                    policy: Some(&policy),
                    ..Extra::default()
                },
            )?;
            let mut spec = LoadSpec::new(&gateway, authorization.clone());
            spec.connections = 64;
            let result = bench.load(&format!("{label}, {rules} rules"), spec)?;
            push(&mut series, label, result);
            children.stop_last("airlock")?;
        }
    }
    Ok(Curve {
        slug: "policy-size",
        title: "Against policy size",
        x_label: "rules",
        about: String::from(
            "The small ARM GET, 64 connections, through a gateway (one per point) whose policy has this many rules; the last allows reads, the others deny to another principal (by object id) either `*/read` (every rule matches the request's operation, none its principal: the index by object id skips them) or a read of a provider of their own (`Microsoft.Bench{n}/things/read`: the namespace index skips them). The bare proxy has no policy.",
        ),
        points: sizes.iter().map(|&n| (n as f64, n.to_string())).collect(),
        series,
    })
}

fn identities(children: &mut Children, bench: &Bench<'_>) -> anyhow::Result<Curve> {
    println!("curve: identities");
    let dir = bench.work_dir.join("identities");
    std::fs::create_dir_all(&dir)?;
    let counts = bench.points(&[1_usize, 100, 1_000, 10_000]);
    let most = counts.last().copied().unwrap_or(1);
    let all_tokens = dir.join("all-tokens.txt");
    let (sim_url, issuer) = start_sim(
        children,
        bench.bin_dir,
        &dir,
        &[
            "--agent-tokens",
            &most.to_string(),
            "--agent-tokens-file",
            &all_tokens.display().to_string(),
        ],
    )?;
    let gateway = recording_gateway(
        children,
        bench,
        &dir.join("gateway"),
        &sim_url,
        &issuer,
        &Extra::default(),
    )?;
    let tokens = std::fs::read_to_string(&all_tokens)
        .with_context(|| format!("airlock-sim wrote no {}", all_tokens.display()))?;
    let mut series = vec![(GATEWAY, Vec::new())];
    for &count in &counts {
        let file = dir.join(format!("tokens-{count}.txt"));
        let lines: Vec<&str> = tokens.lines().take(count).collect();
        anyhow::ensure!(
            lines.len() == count,
            "airlock-sim minted {} tokens, not {count}",
            lines.len()
        );
        std::fs::write(&file, lines.join("\n") + "\n")?;
        let mut spec = LoadSpec::new(&gateway, String::new());
        spec.authorizations = Some(file);
        spec.connections = 64;
        let result = bench.load(&format!("{GATEWAY}, {count} identities"), spec)?;
        push(&mut series, GATEWAY, result);
    }
    Ok(Curve {
        slug: "identities",
        title: "Against distinct identities",
        x_label: "agents",
        about: String::from(
            "The small ARM GET, 64 connections, each request with the next of this many distinct agents' tokens (round robin, a `wrk` Lua script): the token cache's working set (`[identity] token_cache_size`, 10 000 as shipped). The first pass over the tokens verifies each signature; the warm-up makes that pass for up to a few thousand.",
        ),
        points: counts.iter().map(|&n| (n as f64, n.to_string())).collect(),
        series,
    })
}

fn push(series: &mut [(&'static str, Vec<LoadResult>)], label: &str, result: LoadResult) {
    if let Some((_, results)) = series.iter_mut().find(|(l, _)| *l == label) {
        results.push(result);
    }
}

/// `1 KiB`, `8 MiB`.
fn size_label(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

/// What the policy-size curve's filler rules name.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `*/read`: every rule is a candidate for the request.
    SameOperation,
    /// A provider namespace of their own each: no rule is.
    OtherProviders,
}

/// A policy of `rules` rules: `rules - 1` that deny reads to other
/// principals, shaped as `shape` says, then the one that allows reads.
fn policy_of(rules: usize, shape: Shape) -> String {
    let mut policy = String::new();
    for i in 1..rules {
        let action = match shape {
            Shape::SameOperation => String::from("*/read"),
            Shape::OtherProviders => format!("Microsoft.Bench{i}/things/read"),
        };
        let _ = writeln!(
            policy,
            "[[rule]]\nname = \"deny-reads-{i}\"\neffect = \"deny\"\nactions = [\"{action}\"]\n[rule.principals]\nids = [\"00000000-0000-4000-9000-{i:012}\"]\n"
        );
    }
    policy.push_str("[[rule]]\nname = \"reads\"\neffect = \"allow\"\nactions = [\"*/read\"]\n");
    policy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(rps: f64, p99_ms: f64) -> LoadResult {
        LoadResult {
            requests: 1,
            errors: 0,
            requests_per_second: rps,
            p50_ms: p99_ms / 2.0,
            p99_ms,
        }
    }

    #[test]
    fn policies_have_the_asked_number_of_rules_the_last_allowing() {
        for rules in [1, 10, 1_000] {
            let text = policy_of(rules, Shape::SameOperation);
            assert_eq!(text.matches("[[rule]]").count(), rules);
            assert_eq!(text.matches("effect = \"deny\"").count(), rules - 1);
            assert!(
                text.trim_end().ends_with("actions = [\"*/read\"]"),
                "{text}"
            );
            let other = policy_of(rules, Shape::OtherProviders);
            assert_eq!(other.matches("*/read").count(), 1, "{other}");
            assert_eq!(other.matches("[[rule]]").count(), rules);
        }
    }

    #[test]
    fn summarises_and_tabulates_each_target_first_to_last() {
        let curve = Curve {
            slug: "c",
            title: "t",
            x_label: "connections",
            about: String::new(),
            points: vec![(1.0, "1".into()), (64.0, "64".into())],
            series: vec![
                (BARE, vec![result(1000.0, 1.0), result(2000.0, 4.0)]),
                (GATEWAY, vec![result(500.0, 2.0), result(250.0, 9.0)]),
            ],
        };
        let summary = curve.summary();
        assert!(
            summary.contains("bare-proxy: 1000 → 2000 req/s (+100%)"),
            "{summary}"
        );
        assert!(
            summary.contains(
                "airlock gateway: 500 → 250 req/s (-50%), p99 2.00 → 9.00 ms from 1 to 64."
            ),
            "{summary}"
        );
        let table = curve.table();
        assert_eq!(table.lines().count(), 4, "{table}");
        assert!(
            table.contains("| 64 | 2000 | 4.00 | 0 | 250 | 9.00 | 0 |"),
            "{table}"
        );
        assert!(curve.svg().contains("<polyline"));
    }

    #[test]
    fn sizes_read_as_binary_units() {
        assert_eq!(size_label(1024), "1 KiB");
        assert_eq!(size_label(8 * 1024 * 1024), "8 MiB");
    }
}
