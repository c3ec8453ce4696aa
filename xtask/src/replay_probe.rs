//! The replay probe of `cargo xtask bench`: `airlock policy replay` over a
//! synthetic trail of a million events (written by the `trail` program),
//! timed, with its peak RSS, to show that a long trail streams through in
//! bounded memory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::memory::status_mib;

/// What the probe measured.
#[derive(Debug)]
pub(crate) struct ReplayProbe {
    pub(crate) events: u64,
    pub(crate) written_in: String,
    pub(crate) seconds: f64,
    pub(crate) peak_rss_mib: f64,
    pub(crate) changed: u64,
}

impl ReplayProbe {
    pub(crate) fn events_per_second(&self) -> f64 {
        self.events as f64 / self.seconds.max(f64::EPSILON)
    }

    /// For the report.
    pub(crate) fn describe(&self) -> String {
        format!(
            "`airlock policy replay` over a SQLite trail of {} events (50 agents, four kinds of request; `trail` {}) under a candidate that denies one of the four operations: {:.1} s, {:.0} events/s, peak RSS {:.0} MiB (VmHWM, read while it ran); {} requests would change, as expected a quarter of them.",
            self.events,
            self.written_in,
            self.seconds,
            self.events_per_second(),
            self.peak_rss_mib,
            self.changed
        )
    }
}

const CANDIDATE: &str = r#"[[rule]]
name = "no-list-keys"
effect = "deny"
actions = ["Microsoft.Storage/storageAccounts/listKeys/action"]

[[rule]]
name = "agents"
effect = "allow"
actions = ["*"]
data_actions = ["*"]
"#;

/// Writes a trail of `events` in `work_dir`, replays it, and measures.
pub(crate) fn probe(bin_dir: &Path, work_dir: &Path, events: u64) -> anyhow::Result<ReplayProbe> {
    std::fs::create_dir_all(work_dir)?;
    let database = work_dir.join("trail.db");
    let written = Command::new(bin_dir.join("trail"))
        .arg("--database")
        .arg(&database)
        .args(["--events", &events.to_string()])
        .output()
        .context("cannot run trail")?;
    if !written.status.success() {
        bail!("trail failed: {}", String::from_utf8_lossy(&written.stderr));
    }
    let written_in = String::from_utf8_lossy(&written.stdout)
        .trim()
        .trim_start_matches(&format!("wrote {events} events "))
        .to_owned();
    let config = work_dir.join("airlock.toml");
    std::fs::write(
        &config,
        format!("[store]\ndatabase = {:?}\n", database.display().to_string()),
    )?;
    let candidate = work_dir.join("candidate.toml");
    std::fs::write(&candidate, CANDIDATE)?;
    let began = Instant::now();
    let mut child = Command::new(bin_dir.join("airlock"))
        .args(["policy", "replay", "--format", "json", "--config"])
        .arg(&config)
        .arg("--policy")
        .arg(&candidate)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run airlock policy replay")?;
    // VmHWM only grows: the last reading before the process exits is its peak.
    let mut peak_rss_mib: f64 = 0.0;
    while child.try_wait()?.is_none() {
        if let Ok(hwm) = status_mib(child.id(), "VmHWM:") {
            peak_rss_mib = peak_rss_mib.max(hwm);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let seconds = began.elapsed().as_secs_f64();
    let output = child.wait_with_output()?;
    // Exit 1: something would change, as this candidate must.
    if output.status.code() != Some(1) {
        bail!(
            "airlock policy replay: {} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("the replay's JSON report")?;
    let replayed = report["replayed"].as_u64().unwrap_or_default();
    anyhow::ensure!(
        replayed == events,
        "the replay read {replayed} of {events} events"
    );
    let changed = report["changes"]
        .as_array()
        .map(|changes| changes.iter().filter_map(|c| c["count"].as_u64()).sum())
        .unwrap_or_default();
    anyhow::ensure!(
        changed == events / 4,
        "the replay found {changed} changes, not a quarter of {events}"
    );
    Ok(ReplayProbe {
        events,
        written_in,
        seconds,
        peak_rss_mib,
        changed,
    })
}
