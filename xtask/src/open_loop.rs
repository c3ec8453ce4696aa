//! The open-loop latency probe of `cargo xtask bench`: the bare proxy,
//! nginx and the gateway each loaded at one fixed rate, half the bare
//! proxy's saturation, and their p99 compared (the goal: the gateway adds
//! at most 1 ms). Closed-loop generators (wrk) hide a stall by sending
//! less; `loadgen --rate` charges every request from when it was due.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context as _;

use crate::load::{Generator, LoadResult, LoadSpec};

/// One target's p99 at the probe's rate.
#[derive(Debug)]
pub(crate) struct AtRate {
    pub(crate) label: &'static str,
    pub(crate) result: LoadResult,
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
        let mut text = format!(
            "Open-loop at {:.0} requests/s ({why}), `loadgen --rate`, latency charged from each request's scheduled time:\n\n| target | served/s | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|\n",
            self.rate
        );
        for target in &self.targets {
            let _ = writeln!(
                text,
                "| {} | {:.0} | {:.2} | {:.2} | {} |",
                target.label,
                target.result.requests_per_second,
                target.result.p50_ms,
                target.result.p99_ms,
                target.result.errors
            );
        }
        let p99 = |label: &str| {
            self.targets
                .iter()
                .find(|t| t.label == label)
                .map(|t| t.result.p99_ms)
        };
        if let (Some(bare), Some(gateway)) = (p99("bare-proxy"), p99("airlock gateway")) {
            let added = gateway - bare;
            let _ = match self.basis {
                Basis::Bare => write!(
                    text,
                    "\nThe gateway adds {added:.2} ms at p99 over the bare proxy (goal ≤ 1 ms: {}).",
                    if added <= 1.0 { "met" } else { "**missed**" }
                ),
                Basis::Gateway => write!(
                    text,
                    "\nBelow its own saturation, the gateway adds {added:.2} ms at p99 over the bare proxy at the same rate (the goal is set at the bare proxy's load above)."
                ),
                Basis::Asked => write!(
                    text,
                    "\nThe gateway adds {added:.2} ms at p99 over the bare proxy at this rate."
                ),
            };
        }
        text
    }
}

/// Loads each of `targets` (label, spec) at `rate` for `duration` with
/// `loadgen`.
pub(crate) fn probe(
    loadgen: &Generator,
    targets: &[(&'static str, LoadSpec)],
    (rate, basis): (f64, Basis),
    duration: Duration,
) -> anyhow::Result<OpenLoop> {
    let mut measured = Vec::with_capacity(targets.len());
    for (label, spec) in targets {
        println!("open-loop at {rate:.0} requests/s: {label} ...");
        let result = loadgen
            .run(&LoadSpec {
                rate: Some(rate),
                duration,
                ..spec.clone()
            })
            .with_context(|| format!("the open-loop load on {label} failed"))?;
        measured.push(AtRate { label, result });
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
        let at = |label, p99_ms| AtRate {
            label,
            result: LoadResult {
                requests: 100,
                errors: 0,
                requests_per_second: 5_000.0,
                p50_ms: 1.0,
                p99_ms,
            },
        };
        let probe = OpenLoop {
            rate: 5_000.0,
            basis: Basis::Bare,
            targets: vec![at("bare-proxy", 2.0), at("airlock gateway", 3.5)],
        };
        let text = probe.describe();
        assert!(text.contains("half the bare proxy's median"), "{text}");
        assert!(
            text.contains("| airlock gateway | 5000 | 1.00 | 3.50 | 0 |"),
            "{text}"
        );
        assert!(
            text.contains("adds 1.50 ms at p99 over the bare proxy (goal ≤ 1 ms: **missed**)"),
            "{text}"
        );

        let below = OpenLoop {
            basis: Basis::Gateway,
            ..probe
        };
        let text = below.describe();
        assert!(text.contains("half the gateway's median"), "{text}");
        assert!(
            text.contains("Below its own saturation, the gateway adds 1.50 ms at p99"),
            "{text}"
        );
        assert!(!text.contains("goal ≤ 1 ms"), "{text}");

        let asked = OpenLoop {
            basis: Basis::Asked,
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
