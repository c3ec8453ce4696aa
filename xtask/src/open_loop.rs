//! The open-loop latency probe of `cargo xtask bench`: the bare proxy,
//! nginx and the gateway each loaded at one fixed rate, half the bare
//! proxy's saturation, in interleaved rounds, and their p99 compared round
//! by round (the goal: the gateway adds at most 1 ms; one round's p99 moves
//! by milliseconds with this VM's hiccups). Closed-loop generators (wrk)
//! hide a stall by sending less; `loadgen --rate` charges every request
//! from when it was due.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context as _;

use crate::load::{Generator, LoadResult, LoadSpec};
use crate::report::Spread;

/// One target's loads at the probe's rate, one per round.
#[derive(Debug)]
pub(crate) struct AtRate {
    pub(crate) label: &'static str,
    pub(crate) rounds: Vec<LoadResult>,
}

impl AtRate {
    /// The median and range over rounds of `value`.
    fn spread(&self, value: fn(&LoadResult) -> f64) -> Option<Spread> {
        Spread::of(&self.rounds.iter().map(value).collect::<Vec<_>>())
    }
}

/// What the probe measured.
#[derive(Debug)]
pub(crate) struct OpenLoop {
    pub(crate) rate: f64,
    /// Whose saturation the rate is half of: [`Basis::Bare`] is the
    /// performance goal's load; [`Basis::Gateway`] shows the latency the
    /// gateway adds when it is not overloaded.
    pub(crate) basis: Basis,
    pub(crate) targets: Vec<AtRate>,
}

/// The throughput an open-loop rate is half of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basis {
    /// The bare proxy's median throughput: the goal's load.
    Bare,
    /// The gateway's own median throughput: below its saturation.
    Gateway,
    /// A rate given on the command line (`--rate`).
    Asked,
}

impl OpenLoop {
    pub(crate) fn describe(&self) -> String {
        let why = match self.basis {
            Basis::Bare => "half the bare proxy's median throughput above",
            Basis::Gateway => "half the gateway's median throughput above",
            Basis::Asked => "the rate asked for",
        };
        let rounds = self.targets.first().map_or(0, |t| t.rounds.len());
        let mut text = format!(
            "Open-loop at {:.0} requests/s ({why}), `loadgen --rate`, latency charged from each request's scheduled time; {rounds} interleaved round(s), medians and (for p99) the range over rounds:\n\n| target | served/s | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|\n",
            self.rate
        );
        for target in &self.targets {
            let median = |value| target.spread(value).map_or(0.0, |s| s.median);
            let p99 = target
                .spread(|r| r.p99_ms)
                .map_or_else(String::new, |s| milliseconds(s, "–"));
            let _ = writeln!(
                text,
                "| {} | {:.0} | {:.2} | {p99} | {} |",
                target.label,
                median(|r| r.requests_per_second),
                median(|r| r.p50_ms),
                target.rounds.iter().map(|r| r.errors).sum::<u64>()
            );
        }
        let find = |label: &str| self.targets.iter().find(|t| t.label == label);
        if let (Some(bare), Some(gateway)) =
            (find(crate::report::BARE_PROXY), find("airlock gateway"))
        {
            // Round by round, as the throughput ratios are taken.
            let added: Vec<f64> = gateway
                .rounds
                .iter()
                .zip(&bare.rounds)
                .map(|(g, b)| g.p99_ms - b.p99_ms)
                .collect();
            if let Some(added) = Spread::of(&added) {
                let said = milliseconds(added, " to ");
                let _ = match self.basis {
                    Basis::Bare => write!(
                        text,
                        "\nThe gateway adds {said} ms at p99 over the bare proxy (goal ≤ 1 ms: {}).",
                        if added.median <= 1.0 {
                            "met"
                        } else {
                            "**missed**"
                        }
                    ),
                    Basis::Gateway => write!(
                        text,
                        "\nBelow its own saturation, the gateway adds {said} ms at p99 over the bare proxy at the same rate (the goal is set at the bare proxy's load above)."
                    ),
                    Basis::Asked => write!(
                        text,
                        "\nThe gateway adds {said} ms at p99 over the bare proxy at this rate."
                    ),
                };
            }
        }
        text
    }
}

/// `2.50 (2.40–2.70)`: a median with its range when there is one.
fn milliseconds(spread: Spread, between: &str) -> String {
    let Spread { median, low, high } = spread;
    if high > low {
        format!("{median:.2} ({low:.2}{between}{high:.2})")
    } else {
        format!("{median:.2}")
    }
}

/// Loads each of `targets` (label, spec) at `rate` for `duration` with
/// `loadgen`, in `rounds` interleaved rounds.
pub(crate) fn probe(
    loadgen: &Generator,
    targets: &[(&'static str, LoadSpec)],
    (rate, basis): (f64, Basis),
    duration: Duration,
    rounds: u32,
) -> anyhow::Result<OpenLoop> {
    let mut measured: Vec<AtRate> = targets
        .iter()
        .map(|(label, _)| AtRate {
            label,
            rounds: Vec::new(),
        })
        .collect();
    for round in 1..=rounds {
        for ((label, spec), at) in targets.iter().zip(&mut measured) {
            println!("open-loop at {rate:.0} requests/s, round {round}/{rounds}: {label} ...");
            let result = loadgen
                .run(&LoadSpec {
                    rate: Some(rate),
                    duration,
                    ..spec.clone()
                })
                .with_context(|| format!("the open-loop load on {label} failed"))?;
            at.rounds.push(result);
        }
    }
    Ok(OpenLoop {
        rate,
        basis,
        targets: measured,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_the_p99_added_over_the_bare_proxy() {
        let at = |label, p99s: &[f64]| AtRate {
            label,
            rounds: p99s
                .iter()
                .map(|&p99_ms| LoadResult {
                    requests: 100,
                    errors: 1,
                    requests_per_second: 5_000.0,
                    p50_ms: 1.0,
                    p99_ms,
                })
                .collect(),
        };
        let probe = OpenLoop {
            rate: 5_000.0,
            basis: Basis::Bare,
            targets: vec![
                at("bare-proxy", &[2.0, 9.0, 2.2]),
                at("airlock gateway", &[3.5, 3.0, 3.4]),
            ],
        };
        let text = probe.describe();
        assert!(text.contains("half the bare proxy's median"), "{text}");
        assert!(text.contains("3 interleaved round(s)"), "{text}");
        // Medians, the p99's range, and the errors of every round.
        assert!(
            text.contains("| airlock gateway | 5000 | 1.00 | 3.40 (3.00–3.50) | 3 |"),
            "{text}"
        );
        // Round by round: +1.5, -6.0, +1.2; one round's hiccup in the bare
        // proxy does not make the median.
        assert!(
            text.contains(
                "adds 1.20 (-6.00 to 1.50) ms at p99 over the bare proxy (goal ≤ 1 ms: **missed**)"
            ),
            "{text}"
        );

        let below = OpenLoop {
            basis: Basis::Gateway,
            ..probe
        };
        let text = below.describe();
        assert!(text.contains("half the gateway's median"), "{text}");
        assert!(
            text.contains(
                "Below its own saturation, the gateway adds 1.20 (-6.00 to 1.50) ms at p99"
            ),
            "{text}"
        );
        assert!(!text.contains("goal ≤ 1 ms"), "{text}");

        let asked = OpenLoop {
            basis: Basis::Asked,
            targets: vec![at("bare-proxy", &[2.0]), at("airlock gateway", &[3.5])],
            ..below
        };
        let text = asked.describe();
        assert!(text.contains("(the rate asked for)"), "{text}");
        assert!(
            text.contains("The gateway adds 1.50 ms at p99 over the bare proxy at this rate."),
            "{text}"
        );
    }
}
