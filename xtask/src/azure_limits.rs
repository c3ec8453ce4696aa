//! What the measured throughput means in use: Azure's own published
//! request limits, and how many of each the gateway's saturation rate on
//! one core covers. The ratio goals compare the gateway with proxies that
//! do nothing; this compares it with what Azure lets a caller send.

use std::fmt::Write as _;

use crate::report::Summary;

/// One documented limit on how fast a caller may talk to Azure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    /// What is limited, and per what.
    pub(crate) what: &'static str,
    /// The sustained rate allowed, requests a second.
    pub(crate) per_second: f64,
    /// Where Azure documents it.
    pub(crate) source: &'static str,
}

const ARM: &str = "https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling";
const KEY_VAULT: &str = "https://learn.microsoft.com/azure/key-vault/general/service-limits";
const STORAGE: &str =
    "https://learn.microsoft.com/azure/storage/common/scalability-targets-standard-account";

/// The limits an agent's traffic meets first, as the linked pages
/// document them.
pub(crate) const LIMITS: &[Limit] = &[
    Limit {
        what: "ARM reads, per principal, subscription and region (token bucket of 250, refilled at 25/s)",
        per_second: 25.0,
        source: ARM,
    },
    Limit {
        what: "ARM writes and deletes, per principal, subscription and region (bucket of 200, refilled at 10/s)",
        per_second: 10.0,
        source: ARM,
    },
    Limit {
        what: "Key Vault secret and vault transactions, per vault and region (4 000 in 10 s)",
        per_second: 400.0,
        source: KEY_VAULT,
    },
    Limit {
        what: "Key Vault, per subscription and region (5x a vault's)",
        per_second: 2_000.0,
        source: KEY_VAULT,
    },
    Limit {
        what: "Storage data plane, per standard account (default maximum request rate)",
        per_second: 20_000.0,
        source: STORAGE,
    },
];

/// The report's section: the shipped gateway's median saturation rate and
/// CPU per request set against [`LIMITS`].
pub(crate) fn describe(gateway: &Summary) -> String {
    let mut text = format!(
        "The shipped gateway (recording on) saturated at {:.0} requests/s in this run, on one CPU it shared with the simulated Azure",
        gateway.rps
    );
    if let Some(cpu_us) = gateway.cpu_us {
        let _ = write!(
            text,
            ", spending {cpu_us:.1} µs of its own CPU per request: 1 000 requests a second cost {:.1}% of a CPU",
            cpu_us / 10.0
        );
    }
    let _ = writeln!(
        text,
        ". Azure throttles callers long before that on most paths. How many callers, each at its documented limit, this rate of small ARM GETs would carry (other requests were not measured at saturation; the curves below show how answer size bends it):\n"
    );
    let _ = writeln!(
        text,
        "| Azure's limit | requests/s | carried at saturation |"
    );
    let _ = writeln!(text, "|---|---:|---:|");
    for limit in LIMITS {
        let _ = writeln!(
            text,
            "| [{}]({}) | {:.0} | {} |",
            limit.what,
            limit.source,
            limit.per_second,
            carried(gateway.rps / limit.per_second)
        );
    }
    let _ = write!(
        text,
        "\nEvery agent behind one gateway identity shares that identity's ARM buckets, so one gateway CPU carries ARM and Key Vault traffic with room to spare; the per-account Storage ceiling is the one limit its rate comes near. Storage traffic at that scale wants more than one CPU per gateway (the multi-thread runtime then takes every CPU the process may use) or [replicas behind one database](README.md#replicas-on-postgresql). More than one CPU per gateway is not measured here: this machine has two, and the load generator needs one."
    );
    text
}

/// `660` callers, or `0.82 of one` below one.
fn carried(times: f64) -> String {
    if times >= 1.0 {
        format!("{times:.0}")
    } else {
        format!("{times:.2} of one")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(rps: f64, cpu_us: Option<f64>) -> Summary {
        Summary {
            rps,
            rps_low: rps,
            rps_high: rps,
            p50_ms: 1.0,
            p99_ms: 2.0,
            requests: 1,
            errors: 0,
            cpu_us,
        }
    }

    #[test]
    fn each_limit_is_set_against_the_measured_rate() {
        let text = describe(&summary(16_500.0, Some(45.0)));
        assert!(text.contains("saturated at 16500 requests/s"), "{text}");
        assert!(
            text.contains("1 000 requests a second cost 4.5% of a CPU"),
            "{text}"
        );
        // 16 500 / 25, / 10, / 400, / 2 000, / 20 000.
        for carried in ["| 660 |", "| 1650 |", "| 41 |", "| 8 |", "| 0.82 of one |"] {
            assert!(text.contains(carried), "{carried} in {text}");
        }
        assert_eq!(
            text.matches("](https://learn.microsoft.com/").count(),
            LIMITS.len()
        );
    }

    #[test]
    fn without_a_cpu_figure_the_rate_alone_is_set_against_the_limits() {
        let text = describe(&summary(2_000.0, None));
        assert!(!text.contains("% of a CPU"), "{text}");
        assert!(
            text.contains("| 80 |") && text.contains("| 0.10 of one |"),
            "{text}"
        );
    }
}
