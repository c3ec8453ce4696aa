//! The memory probe of `cargo xtask bench`: the gateway's peak RSS while
//! every connection reads an 8 MiB JSON list that the masker must read
//! whole (the goal: 64 connections, at most 256 MiB).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};

use crate::bench::{Extra, Mode, Store, UPSTREAM_TOKEN, start_gateway, start_sim};
use crate::load::{Generator, LoadResult, LoadSpec};
use crate::process::Children;

/// The subscription of the simulated Azure.
pub(crate) const SUBSCRIPTION: &str = "11111111-1111-1111-1111-111111111111";
/// Tags on the probe's resource group: this many values of [`TAG_BYTES`].
const TAGS: usize = 8 * 1024;
const TAG_BYTES: usize = 1024;

/// What the probe measured.
#[derive(Debug)]
pub(crate) struct MemoryProbe {
    pub(crate) answer_bytes: usize,
    pub(crate) connections: u32,
    pub(crate) idle_rss_mib: f64,
    pub(crate) peak_rss_mib: f64,
    pub(crate) load: LoadResult,
}

impl MemoryProbe {
    /// For the report.
    pub(crate) fn describe(&self) -> String {
        format!(
            "The gateway (recording, masking as shipped: `[masking] max_buffered_bytes` 64 MiB) in front of a simulated Azure whose resource-group list is one {:.1} MiB JSON answer, {} connections reading it for the run: peak RSS {:.0} MiB (VmHWM; {:.0} MiB idle before the load; goal ≤ 256 MiB), {} answers served, {} refused or failed, p99 {:.0} ms.",
            self.answer_bytes as f64 / 1_048_576.0,
            self.connections,
            self.peak_rss_mib,
            self.idle_rss_mib,
            self.load.requests - self.load.errors,
            self.load.errors,
            self.load.p99_ms
        )
    }
}

/// Starts its own sim (one resource group carrying [`TAGS`] tags) and
/// gateway in `work_dir`, loads the list through the gateway, and reads
/// the gateway's peak RSS. `AIRLOCK_BENCH_PROBE_BINARY` names another
/// `airlock` binary to probe (e.g. one built before a change).
pub(crate) fn probe(
    children: &mut Children,
    bin_dir: &Path,
    work_dir: &Path,
    generator: &Generator,
    connections: u32,
    duration: Duration,
    cpus: Option<String>,
) -> anyhow::Result<MemoryProbe> {
    std::fs::create_dir_all(work_dir)?;
    let (sim_url, issuer) = start_sim(children, bin_dir, work_dir, &[])?;
    let answer_bytes = put_group(&sim_url, "big", TAGS * TAG_BYTES)?;
    let gateway = start_gateway(
        children,
        &std::env::var_os("AIRLOCK_BENCH_PROBE_BINARY")
            .map_or_else(|| bin_dir.join("airlock"), std::path::PathBuf::from),
        &work_dir.join("gateway"),
        bin_dir,
        &sim_url,
        &issuer,
        true,
        Mode::Plain,
        &Store::Sqlite,
        &Extra::default(),
    )?;
    let pid = children
        .last_pid("airlock")
        .ok_or_else(|| anyhow!("the probe's gateway has no process id"))?;
    let idle_rss_mib = status_mib(pid, "VmRSS:")?;
    let mut spec = LoadSpec::new(&gateway.url, format!("Bearer {}", issuer.agent_token));
    spec.url = format!(
        "{}/subscriptions/{SUBSCRIPTION}/resourcegroups?api-version=2021-04-01",
        gateway.url
    );
    spec.connections = connections;
    spec.duration = duration;
    // Answers wait for their share of the budget: a slow answer is not an error.
    spec.timeout = Some(Duration::from_secs(60));
    spec.cpus = cpus;
    let load = generator
        .run(&spec)
        .context("the memory probe's load failed")?;
    children.check_all_running()?;
    Ok(MemoryProbe {
        answer_bytes,
        connections,
        idle_rss_mib,
        peak_rss_mib: status_mib(pid, "VmHWM:")?,
        load,
    })
}

/// PUTs the resource group `name` straight to the sim, with tags of
/// [`TAG_BYTES`] (fewer for less) adding up to about `bytes`; returns how
/// large its JSON is, about what a `GET` of it or a list holding it answers.
pub(crate) fn put_group(sim_url: &str, name: &str, bytes: usize) -> anyhow::Result<usize> {
    let value = "v".repeat(TAG_BYTES.min(bytes.saturating_sub(128)).max(1));
    let count = bytes.div_ceil(TAG_BYTES);
    let tags: serde_json::Map<String, serde_json::Value> = (0..count)
        .map(|i| {
            (
                format!("tag{i:05}"),
                serde_json::Value::String(value.clone()),
            )
        })
        .collect();
    let body = serde_json::json!({"location": "westeurope", "tags": tags}).to_string();
    let address = sim_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address)
        .with_context(|| format!("cannot reach the sim at {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "PUT /subscriptions/{SUBSCRIPTION}/resourcegroups/{name}?api-version=2021-04-01 HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {UPSTREAM_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer.split_whitespace().nth(1).unwrap_or_default();
    if !matches!(status, "200" | "201") {
        bail!(
            "the sim refused the probe's resource group: {}",
            answer.lines().next().unwrap_or_default()
        );
    }
    Ok(body.len())
}

/// A `/proc/{pid}/status` line in kB, as MiB.
pub(crate) fn status_mib(pid: u32, key: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    kib_field(&status, key)
        .map(|kib| kib / 1024.0)
        .ok_or_else(|| anyhow!("no {key} in /proc/{pid}/status"))
}

/// The value of a `Key:   1234 kB` line of a `/proc` file, in KiB.
pub(crate) fn kib_field(text: &str, key: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields_of_proc_files() {
        let status = "Name:\tairlock\nVmHWM:\t  123456 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(kib_field(status, "VmRSS:"), Some(20_480.0));
        assert_eq!(kib_field(status, "VmHWM:"), Some(123_456.0));
        assert_eq!(kib_field(status, "VmSwap:"), None);
    }
}
