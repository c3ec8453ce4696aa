//! What a bench run found, summarised over its rounds: the console table,
//! the ratios against the bare proxy and nginx, the goals of the
//! performance issue, and `BENCHMARKS.md` with its charts.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::chart::{self, Bar};
use crate::curves::Curve;
use crate::load::LoadResult;

/// The bare hyper-util pass-through's label: the least any proxy must do.
/// The budget table measures what a goal leaves beyond it.
pub(crate) const BARE_PROXY: &str = "bare-proxy";

/// One target's rounds.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    /// The name in tables and charts.
    pub(crate) label: &'static str,
    /// What the target is, for the report.
    pub(crate) about: &'static str,
    /// One result per round, in order.
    pub(crate) rounds: Vec<LoadResult>,
    /// The server's own CPU microseconds per request, per round (the
    /// upstream's not included); empty when it could not be read.
    pub(crate) cpu_us: Vec<f64>,
    /// The simulated Azure's CPU microseconds per request over the same
    /// rounds (it shares the server's CPU); empty when not read.
    pub(crate) upstream_cpu_us: Vec<f64>,
}

/// A target's rounds summarised: medians, and the range of throughput.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    pub(crate) rps: f64,
    pub(crate) rps_low: f64,
    pub(crate) rps_high: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    /// Median of [`Measured::cpu_us`].
    pub(crate) cpu_us: Option<f64>,
}

impl Measured {
    pub(crate) fn summary(&self) -> Summary {
        let rps: Vec<f64> = self.rounds.iter().map(|r| r.requests_per_second).collect();
        Summary {
            rps: median(&rps),
            rps_low: rps.iter().copied().fold(f64::INFINITY, f64::min),
            rps_high: rps.iter().copied().fold(0.0, f64::max),
            p50_ms: median(&self.rounds.iter().map(|r| r.p50_ms).collect::<Vec<_>>()),
            p99_ms: median(&self.rounds.iter().map(|r| r.p99_ms).collect::<Vec<_>>()),
            requests: self.rounds.iter().map(|r| r.requests).sum(),
            errors: self.rounds.iter().map(|r| r.errors).sum(),
            cpu_us: (!self.cpu_us.is_empty()).then(|| median(&self.cpu_us)),
        }
    }
}

/// A CPU-per-request cell: microseconds, or a dash when not measured.
fn cpu_cell(cpu_us: Option<f64>) -> String {
    cpu_us.map_or_else(|| "–".to_owned(), |us| format!("{us:.1}"))
}

/// The median and range of a value taken round by round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) low: f64,
    pub(crate) high: f64,
}

impl Spread {
    /// `None` for no values.
    pub(crate) fn of(values: &[f64]) -> Option<Spread> {
        (!values.is_empty()).then(|| Spread {
            median: median(values),
            low: values.iter().copied().fold(f64::INFINITY, f64::min),
            high: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// `12.3 (11.0–14.1)`, or `12.3` when the rounds agree.
impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1}", self.median)?;
        if self.high > self.low {
            write!(f, " ({:.1}–{:.1})", self.low, self.high)?;
        }
        Ok(())
    }
}

/// A ratio of two targets taken round by round (each pair loaded minutes
/// apart at most, so drift cancels): `0.50x (0.48–0.52)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ratio(pub(crate) Spread);

impl Ratio {
    /// `numerator`'s value over `denominator`'s, round by round, of `value`.
    pub(crate) fn of(
        numerator: &Measured,
        denominator: &Measured,
        value: fn(&LoadResult) -> f64,
    ) -> Option<Ratio> {
        let ratios: Vec<f64> = numerator
            .rounds
            .iter()
            .zip(&denominator.rounds)
            .filter(|(_, b)| value(b) > 0.0)
            .map(|(a, b)| value(a) / value(b))
            .collect();
        Spread::of(&ratios).map(Ratio)
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Spread { median, low, high } = self.0;
        if high > low {
            write!(f, "{median:.2}x ({low:.2}–{high:.2})")
        } else {
            write!(f, "{median:.2}x")
        }
    }
}

/// What one target's server spends per request over another's, in CPU
/// microseconds, round by round: where the two differ by one layer, that
/// layer's cost. `+3.8 (+3.1 to +4.0)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CpuAdded(pub(crate) Spread);

impl CpuAdded {
    /// `None` unless both targets' CPU was measured in every round (a
    /// round without a figure would pair the others with the wrong rounds).
    pub(crate) fn of(numerator: &Measured, denominator: &Measured) -> Option<CpuAdded> {
        let every_round = |target: &Measured| target.cpu_us.len() == target.rounds.len();
        if !(every_round(numerator) && every_round(denominator)) {
            return None;
        }
        let added: Vec<f64> = numerator
            .cpu_us
            .iter()
            .zip(&denominator.cpu_us)
            .map(|(a, b)| a - b)
            .collect();
        Spread::of(&added).map(CpuAdded)
    }
}

impl std::fmt::Display for CpuAdded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Spread { median, low, high } = self.0;
        write!(f, "{median:+.1}")?;
        if high > low {
            write!(f, " ({low:+.1} to {high:+.1})")?;
        }
        Ok(())
    }
}

/// What a throughput goal leaves a target to spend. At saturation the CPU
/// that runs the target also runs the simulated Azure and is busy
/// throughout, so a target serves 1 / (its CPU per request + the
/// simulator's behind it) requests a second; `numerator ≥ goal ×
/// denominator` then allows the numerator (the denominator's CPU + the
/// simulator's behind it) / goal − the simulator's behind the numerator,
/// in server CPU µs per request. Taken round by round, like the ratios.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Budget {
    /// What the numerator may spend.
    pub(crate) allowed: Spread,
    /// What it spends.
    pub(crate) spent: Spread,
    /// What it may spend beyond the bare proxy's own CPU in the same round:
    /// what the goal leaves for everything the gateway does over the least
    /// any proxy must do (below zero: less than the bare proxy spends).
    pub(crate) beyond_bare: Option<Spread>,
    /// How busy the shared CPU was under each target (server and
    /// simulator CPU × throughput; the model holds near 100%).
    pub(crate) busy: [f64; 2],
}

impl Budget {
    /// `None` unless both targets' and the simulator's CPU were measured
    /// in every round; `beyond_bare` only when `bare`'s CPU was too.
    pub(crate) fn of(
        numerator: &Measured,
        denominator: &Measured,
        goal: f64,
        bare: Option<&Measured>,
    ) -> Option<Budget> {
        let complete = |target: &Measured| {
            target.cpu_us.len() == target.rounds.len()
                && target.upstream_cpu_us.len() == target.rounds.len()
        };
        if !(complete(numerator) && complete(denominator)) || goal <= 0.0 {
            return None;
        }
        let total =
            |target: &Measured, round: usize| target.cpu_us[round] + target.upstream_cpu_us[round];
        let rounds = numerator.rounds.len().min(denominator.rounds.len());
        let allowed: Vec<f64> = (0..rounds)
            .map(|round| total(denominator, round) / goal - numerator.upstream_cpu_us[round])
            .collect();
        let busy = |target: &Measured| {
            let busy: Vec<f64> = (0..target.rounds.len())
                .map(|round| target.rounds[round].requests_per_second * total(target, round) / 1e6)
                .collect();
            median(&busy)
        };
        let beyond_bare = bare
            .filter(|bare| bare.cpu_us.len() >= rounds)
            .and_then(|bare| {
                let beyond: Vec<f64> = (0..rounds)
                    .map(|round| allowed[round] - bare.cpu_us[round])
                    .collect();
                Spread::of(&beyond)
            });
        Some(Budget {
            allowed: Spread::of(&allowed)?,
            spent: Spread::of(&numerator.cpu_us[..rounds])?,
            beyond_bare,
            busy: [busy(numerator), busy(denominator)],
        })
    }
}

/// One comparison the report states: `numerator / denominator`, with the
/// goal it is held to, if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Comparison {
    pub(crate) numerator: &'static str,
    pub(crate) denominator: &'static str,
    pub(crate) label: &'static str,
    /// The least throughput ratio the performance goals ask for.
    pub(crate) goal: Option<f64>,
}

impl Comparison {
    /// The numerator's and the denominator's measurements, if both were loaded.
    fn targets<'a>(&self, measured: &'a [Measured]) -> Option<(&'a Measured, &'a Measured)> {
        let find = |label: &str| measured.iter().find(|m| m.label == label);
        Some((find(self.numerator)?, find(self.denominator)?))
    }
}

/// The median of `values` (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]),
    }
}

/// The console table and ratios.
pub(crate) fn print(measured: &[Measured], comparisons: &[Comparison]) {
    println!();
    println!(
        "{:<26} {:>11} {:>17} {:>9} {:>9} {:>7} {:>12}",
        "target", "requests/s", "rounds (low-high)", "p50 ms", "p99 ms", "errors", "CPU µs/req"
    );
    for target in measured {
        let s = target.summary();
        println!(
            "{:<26} {:>11.0} {:>17} {:>9.3} {:>9.3} {:>7} {:>12}",
            target.label,
            s.rps,
            format!("{:.0}-{:.0}", s.rps_low, s.rps_high),
            s.p50_ms,
            s.p99_ms,
            s.errors,
            cpu_cell(s.cpu_us)
        );
        if s.errors > 0 {
            println!(
                "  warning: {} errors in {} requests (non-2xx or failed): not all the success path",
                s.errors, s.requests
            );
        }
    }
    println!();
    for (comparison, throughput, p99, cpu) in ratios(measured, comparisons) {
        let goal = comparison
            .goal
            .map(|goal| {
                let met = if throughput.0.median >= goal {
                    "met"
                } else {
                    "MISSED"
                };
                format!(" [goal >= {goal:.2}x: {met}]")
            })
            .unwrap_or_default();
        let cpu = cpu
            .map(|cpu| format!(", CPU {cpu} µs/req"))
            .unwrap_or_default();
        println!(
            "{:<34} throughput {throughput}, p99 {:.2}x{cpu}{goal}",
            comparison.label, p99.0.median
        );
    }
    for (comparison, goal, budget) in budgets(measured, comparisons) {
        let beyond = budget
            .beyond_bare
            .map(|beyond| format!(" ({:+.1} beyond the bare proxy's own)", beyond.median))
            .unwrap_or_default();
        println!(
            "{:<34} at >= {goal:.2}x may spend {:.1} µs/req{beyond}, spends {:.1}",
            comparison.label, budget.allowed.median, budget.spent.median
        );
    }
}

/// Every comparison with a goal whose budget could be measured.
fn budgets<'a>(
    measured: &'a [Measured],
    comparisons: &'a [Comparison],
) -> impl Iterator<Item = (&'a Comparison, f64, Budget)> + 'a {
    comparisons.iter().filter_map(move |comparison| {
        let goal = comparison.goal?;
        let (a, b) = comparison.targets(measured)?;
        let bare = measured.iter().find(|m| m.label == BARE_PROXY);
        Some((comparison, goal, Budget::of(a, b, goal, bare)?))
    })
}

/// Every comparison whose two targets were both loaded: throughput and p99
/// ratios, and the server CPU per request the numerator adds.
fn ratios<'a>(
    measured: &'a [Measured],
    comparisons: &'a [Comparison],
) -> impl Iterator<Item = (&'a Comparison, Ratio, Ratio, Option<CpuAdded>)> + 'a {
    comparisons.iter().filter_map(move |comparison| {
        let (a, b) = comparison.targets(measured)?;
        Some((
            comparison,
            Ratio::of(a, b, |r| r.requests_per_second)?,
            Ratio::of(a, b, |r| r.p99_ms)?,
            CpuAdded::of(a, b),
        ))
    })
}

/// How the run was made, for the report's head.
#[derive(Debug)]
pub(crate) struct RunInfo {
    pub(crate) command: String,
    pub(crate) date: String,
    pub(crate) machine: String,
    pub(crate) generator: String,
    pub(crate) pinning: String,
    pub(crate) load: String,
}

/// Writes `BENCHMARKS.md` at `path`, its chart beside it in `docs/bench/`,
/// and the hand-written analysis from `docs/bench/notes.md` (if present)
/// at its end.
pub(crate) fn write(
    path: &Path,
    info: &RunInfo,
    measured: &[Measured],
    comparisons: &[Comparison],
    sections: &[(&str, String)],
    curves: &[Curve],
) -> anyhow::Result<()> {
    let root = path.parent().unwrap_or_else(|| Path::new("."));
    let charts = root.join("docs/bench");
    std::fs::create_dir_all(&charts)
        .with_context(|| format!("cannot create {}", charts.display()))?;
    let bars: Vec<Bar> = measured
        .iter()
        .map(|target| {
            let s = target.summary();
            Bar {
                label: target.label.to_owned(),
                value: s.rps,
                low: s.rps_low,
                high: s.rps_high,
            }
        })
        .collect();
    let chart = charts.join("throughput.svg");
    std::fs::write(
        &chart,
        chart::bars("Throughput, median of rounds", "requests/s", &bars),
    )
    .with_context(|| format!("cannot write {}", chart.display()))?;

    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `{}` on {}. Every number below comes from that one run; run it again rather than editing this file (the analysis at the end is `docs/bench/notes.md`).\n",
        info.command, info.date
    );
    let _ = writeln!(md, "- **Machine**: {}", info.machine);
    let _ = writeln!(md, "- **Load generator**: {}", info.generator);
    let _ = writeln!(md, "- **Pinning**: {}", info.pinning);
    let _ = writeln!(md, "- **Load**: {}\n", info.load);
    let _ = writeln!(md, "## Targets\n");
    for target in measured {
        let _ = writeln!(md, "- **{}**: {}", target.label, target.about);
    }
    let _ = writeln!(md, "\n## Results\n");
    let _ = writeln!(
        md,
        "| target | requests/s (median) | rounds, low–high | p50 ms | p99 ms | errors | server CPU µs/request |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    for target in measured {
        let s = target.summary();
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0}–{:.0} | {:.2} | {:.2} | {} | {} |",
            target.label,
            s.rps,
            s.rps_low,
            s.rps_high,
            s.p50_ms,
            s.p99_ms,
            s.errors,
            cpu_cell(s.cpu_us)
        );
    }
    let _ = writeln!(
        md,
        "\nServer CPU per request: the user and system CPU time of the target's own process (not the simulated Azure's) over a round, divided by the requests it served; the median of rounds. It drifts much less than throughput, and it is what a change to the gateway's code moves."
    );
    let _ = writeln!(
        md,
        "\n![throughput per target](docs/bench/throughput.svg)\n"
    );
    let _ = writeln!(md, "## Ratios\n");
    let _ = writeln!(
        md,
        "Taken round by round (the two targets of a pair were loaded within one round), then the median and the range over rounds. CPU added: the first target's server CPU per request minus the second's; where the two differ by one layer, that layer's cost.\n"
    );
    let _ = writeln!(
        md,
        "| comparison | throughput | p99 | CPU µs/request added | goal |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---|");
    for (comparison, throughput, p99, cpu) in ratios(measured, comparisons) {
        let goal = comparison.goal.map_or_else(String::new, |goal| {
            let met = if throughput.0.median >= goal {
                "met"
            } else {
                "**missed**"
            };
            format!("≥ {goal:.2}x: {met}")
        });
        let cpu = cpu.map_or_else(|| "–".to_owned(), |cpu| cpu.to_string());
        let _ = writeln!(
            md,
            "| {} | {throughput} | {:.2}x | {cpu} | {goal} |",
            comparison.label, p99.0.median
        );
    }
    let budgets: Vec<_> = budgets(measured, comparisons).collect();
    if !budgets.is_empty() {
        let _ = writeln!(md, "\n## What each goal leaves to spend\n");
        let _ = writeln!(
            md,
            "At saturation one CPU runs both the target and the simulated Azure and is busy throughout (the last column: server and simulator CPU per request × throughput), so a target serves 1 / (its CPU per request + the simulator's behind it) requests a second. A goal `first ≥ g × second` then leaves the first target (the second's CPU + the simulator's behind it) / g − the simulator's behind the first, in server CPU per request: what a change must bring it under. The third column takes the bare proxy's own CPU in the same round from that: what the goal leaves for everything the first target does beyond the least any proxy must do (hyper serving the request, hyper's client forwarding it, one header swapped); below zero, the goal asks the first target to spend less than that pass-through. Round by round, medians and ranges.\n"
        );
        let _ = writeln!(
            md,
            "| goal | may spend, µs/request | of it beyond the bare proxy's own | spends | over by | CPU busy (first, second) |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
        for (comparison, goal, budget) in budgets {
            let beyond = budget
                .beyond_bare
                .map_or_else(|| "–".to_owned(), |beyond| CpuAdded(beyond).to_string());
            let _ = writeln!(
                md,
                "| {} ≥ {goal:.2}x | {} | {beyond} | {} | {:.2}x | {:.0}%, {:.0}% |",
                comparison.label,
                budget.allowed,
                budget.spent,
                budget.spent.median / budget.allowed.median,
                budget.busy[0] * 100.0,
                budget.busy[1] * 100.0
            );
        }
    }
    for (title, text) in sections {
        let _ = writeln!(md, "\n## {title}\n\n{text}");
    }
    if !curves.is_empty() {
        let _ = writeln!(
            md,
            "\n## How cost grows\n\nEach point is one load of the run's length after a warm-up, the targets loaded one after the other; what bends each curve is discussed at the end."
        );
    }
    for curve in curves {
        let file = format!("growth-{}.svg", curve.slug);
        std::fs::write(charts.join(&file), curve.svg())
            .with_context(|| format!("cannot write {}", charts.join(&file).display()))?;
        let _ = writeln!(
            md,
            "\n### {}\n\n{}\n\n![{}](docs/bench/{file})\n\n{}\n{}",
            curve.title,
            curve.about,
            curve.title.to_lowercase(),
            curve.table(),
            curve.summary()
        );
    }
    let notes = root.join("docs/bench/notes.md");
    if let Ok(text) = std::fs::read_to_string(&notes) {
        let _ = writeln!(md, "\n{}", text.trim_end());
    }
    std::fs::write(path, md).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {} and {}", path.display(), chart.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(rps: f64, p99_ms: f64) -> LoadResult {
        LoadResult {
            requests: 10,
            errors: 0,
            requests_per_second: rps,
            p50_ms: p99_ms / 2.0,
            p99_ms,
        }
    }

    fn target(label: &'static str, rounds: &[(f64, f64)]) -> Measured {
        Measured {
            label,
            about: "a target",
            rounds: rounds.iter().map(|&(rps, p99)| result(rps, p99)).collect(),
            cpu_us: Vec::new(),
            upstream_cpu_us: Vec::new(),
        }
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < 1e-12);
        assert!((median(&[4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-12);
        assert!(median(&[]).abs() < 1e-12);
    }

    #[test]
    fn ratios_are_taken_round_by_round() {
        // Drift: both halve in round 2; per-round ratios stay 0.5.
        let bare = target("bare", &[(1000.0, 2.0), (500.0, 4.0), (1000.0, 2.0)]);
        let gateway = target("gateway", &[(500.0, 4.0), (250.0, 8.0), (500.0, 4.0)]);
        let ratio = Ratio::of(&gateway, &bare, |r| r.requests_per_second).unwrap();
        assert!((ratio.0.median - 0.5).abs() < 1e-12);
        assert!((ratio.0.low - 0.5).abs() < 1e-12 && (ratio.0.high - 0.5).abs() < 1e-12);
        assert_eq!(ratio.to_string(), "0.50x");
        let summary = gateway.summary();
        assert!((summary.rps - 500.0).abs() < 1e-12);
        assert!((summary.rps_low - 250.0).abs() < 1e-12);
        assert_eq!(summary.requests, 30);
    }

    #[test]
    fn cpu_added_is_taken_round_by_round() {
        let mut bare = target("bare", &[(1000.0, 2.0), (900.0, 2.0), (950.0, 2.0)]);
        let mut gateway = target("gateway", &[(500.0, 4.0), (450.0, 4.0), (480.0, 4.0)]);
        assert_eq!(CpuAdded::of(&gateway, &bare), None, "not measured");
        bare.cpu_us = vec![15.0, 17.0, 16.0];
        gateway.cpu_us = vec![45.0, 46.0, 48.0];
        let added = CpuAdded::of(&gateway, &bare).unwrap();
        // Round by round: 30, 29, 32.
        assert!((added.0.median - 30.0).abs() < 1e-12);
        assert!((added.0.low - 29.0).abs() < 1e-12 && (added.0.high - 32.0).abs() < 1e-12);
        assert_eq!(added.to_string(), "+30.0 (+29.0 to +32.0)");
        assert_eq!(CpuAdded::of(&bare, &gateway).unwrap().0.median, -30.0);
        gateway.cpu_us.remove(1);
        assert_eq!(
            CpuAdded::of(&gateway, &bare),
            None,
            "a round without a figure"
        );
    }

    #[test]
    fn a_goal_leaves_the_denominator_and_simulator_cpu_over_the_goal_less_the_simulators() {
        // The bare proxy: 15 + 13 µs a request on a busy CPU (35 714/s).
        let mut bare = target("bare", &[(35_714.0, 2.0), (35_714.0, 2.0)]);
        let mut gateway = target("gateway", &[(16_129.0, 4.0), (15_625.0, 4.0)]);
        assert_eq!(Budget::of(&gateway, &bare, 0.8, None), None, "not measured");
        bare.cpu_us = vec![15.0, 15.0];
        bare.upstream_cpu_us = vec![13.0, 13.0];
        gateway.cpu_us = vec![46.0, 48.0];
        gateway.upstream_cpu_us = vec![16.0, 16.0];
        let budget = Budget::of(&gateway, &bare, 0.8, Some(&bare)).unwrap();
        // 28 / 0.8 = 35 µs for both, of which the simulator takes 16; 4 of
        // the 19 left are beyond what the bare proxy spends.
        assert!((budget.allowed.median - 19.0).abs() < 1e-9);
        assert!((budget.beyond_bare.unwrap().median - 4.0).abs() < 1e-9);
        assert!((budget.spent.median - 47.0).abs() < 1e-9);
        assert!((budget.busy[0] - 1.0).abs() < 0.01 && (budget.busy[1] - 1.0).abs() < 0.01);
        // nginx at 13 + 13 µs: matching it leaves the gateway 10, 5 less
        // than the bare proxy's own.
        let mut nginx = target("nginx", &[(38_462.0, 2.0), (38_462.0, 2.0)]);
        nginx.cpu_us = vec![13.0, 13.0];
        nginx.upstream_cpu_us = vec![13.0, 13.0];
        let budget = Budget::of(&gateway, &nginx, 1.0, Some(&bare)).unwrap();
        assert!((budget.allowed.median - 10.0).abs() < 1e-9);
        assert_eq!(CpuAdded(budget.beyond_bare.unwrap()).to_string(), "-5.0");
        assert_eq!(
            Budget::of(&gateway, &nginx, 1.0, None).unwrap().beyond_bare,
            None,
            "no bare proxy loaded"
        );
        gateway.upstream_cpu_us.pop();
        assert_eq!(
            Budget::of(&gateway, &bare, 0.8, Some(&bare)),
            None,
            "a round without a figure"
        );
    }

    #[test]
    fn writes_the_report_with_goals_and_the_chart() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("xtask-report-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("docs/bench"))?;
        std::fs::write(dir.join("docs/bench/notes.md"), "## Notes\n\nProfiled.\n")?;
        let mut measured = [
            target(BARE_PROXY, &[(1000.0, 2.0), (900.0, 2.0)]),
            target("gateway", &[(850.0, 3.0), (700.0, 3.0)]),
        ];
        measured[0].cpu_us = vec![15.0, 16.0];
        measured[1].cpu_us = vec![20.0, 22.0];
        measured[0].upstream_cpu_us = vec![985.0, 1095.0];
        measured[1].upstream_cpu_us = vec![1000.0, 1200.0];
        let comparisons = [Comparison {
            numerator: "gateway",
            denominator: BARE_PROXY,
            label: "gateway / bare",
            goal: Some(0.8),
        }];
        let info = RunInfo {
            command: "cargo xtask bench".into(),
            date: "2026-12-04".into(),
            machine: "2 CPUs".into(),
            generator: "wrk".into(),
            pinning: "none".into(),
            load: "64 connections".into(),
        };
        let path = dir.join("BENCHMARKS.md");
        write(
            &path,
            &info,
            &measured,
            &comparisons,
            &[("Memory", "Bounded.".into())],
            &[Curve {
                slug: "concurrency",
                title: "Against concurrency",
                x_label: "connections",
                about: "More connections.".into(),
                points: vec![(1.0, "1".into()), (16.0, "16".into())],
                series: vec![("gateway", vec![result(100.0, 1.0), result(400.0, 2.0)])],
            }],
        )?;
        let md = std::fs::read_to_string(&path)?;
        let svg = std::fs::read_to_string(dir.join("docs/bench/growth-concurrency.svg"))?;
        std::fs::remove_dir_all(&dir)?;
        assert!(svg.contains("<polyline"), "{svg}");
        assert!(
            md.contains("### Against concurrency\n\nMore connections.\n\n![against concurrency](docs/bench/growth-concurrency.svg)"),
            "{md}"
        );
        assert!(md.contains("| 16 | 400 | 2.00 | 0 |"), "{md}");
        assert!(md.contains("gateway: 100 → 400 req/s (+300%)"), "{md}");
        assert!(
            md.contains("| gateway | 775 | 700–850 | 1.50 | 3.00 | 0 | 21.0 |"),
            "{md}"
        );
        // Round ratios 0.85 and 0.78: median 0.81, the goal met.
        assert!(
            md.contains("| gateway / bare | 0.81x (0.78–0.85) | 1.50x | +5.5 (+5.0 to +6.0) | ≥ 0.80x: met |"),
            "{md}"
        );
        // (15 + 985) / 0.8 - 1000 = 250 and (16 + 1095) / 0.8 - 1200 =
        // 188.75, 235 and 172.75 beyond the bare proxy's 15 and 16; the
        // gateway spends 20 and 22.
        assert!(
            md.contains("| gateway / bare ≥ 0.80x | 219.4 (188.8–250.0) | +203.9 (+172.8 to +235.0) | 21.0 (20.0–22.0) | 0.10x | 86%, 100% |"),
            "{md}"
        );
        assert!(md.contains("![throughput per target](docs/bench/throughput.svg)"));
        assert!(md.contains("## Memory\n\nBounded.\n"), "{md}");
        assert!(md.trim_end().ends_with("Profiled."));
        Ok(())
    }
}
