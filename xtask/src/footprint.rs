//! The footprint probes of `cargo xtask bench`: how long a gateway takes
//! from its start to its first served request, and its memory with 1 000
//! idle keep-alive connections (the goals: 100 ms, 64 MiB).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};

use crate::bench::{Extra, Issuer, Mode, REQUEST_PATH, Store, start_gateway};
use crate::memory::status_mib;
use crate::process::Children;
use crate::report::median;

/// Gateways started to time start-up; the median is reported.
const STARTS: usize = 5;
/// Idle keep-alive connections held open.
const IDLE: usize = 1_000;

/// What the probes measured.
#[derive(Debug)]
pub(crate) struct Footprint {
    /// Spawn to the first `200` of an ARM GET through the gateway, each start.
    pub(crate) starts_ms: Vec<f64>,
    pub(crate) rss_before_mib: f64,
    pub(crate) rss_idle_mib: f64,
}

impl Footprint {
    pub(crate) fn describe(&self) -> String {
        let low = self.starts_ms.iter().copied().fold(f64::INFINITY, f64::min);
        let high = self.starts_ms.iter().copied().fold(0.0, f64::max);
        format!(
            "Start-up to the first served request (an ARM GET with a token, through identity, policy, masking and recording; a new SQLite file, the keys fetched from the development issuer): median {:.0} ms of {} starts ({:.0}–{:.0} ms; goal ≤ 100 ms). With {IDLE} keep-alive connections idle after one request each: RSS {:.0} MiB ({:.0} MiB before they opened; goal ≤ 64 MiB; `[limits] max_connections_per_client` raised to 2000, as every connection comes from 127.0.0.1).",
            median(&self.starts_ms),
            self.starts_ms.len(),
            low,
            high,
            self.rss_idle_mib,
            self.rss_before_mib
        )
    }
}

/// Starts [`STARTS`] gateways in front of `sim_url`, timing each, and holds
/// [`IDLE`] connections open to the last.
pub(crate) fn probe(
    children: &mut Children,
    bin_dir: &Path,
    work_dir: &Path,
    sim_url: &str,
    issuer: &Issuer,
) -> anyhow::Result<Footprint> {
    let authorization = format!("Bearer {}", issuer.agent_token);
    let mut starts_ms = Vec::with_capacity(STARTS);
    let mut last = None;
    for start in 0..STARTS {
        let began = Instant::now();
        let gateway = start_gateway(
            children,
            &bin_dir.join("airlock"),
            &work_dir.join(format!("start-{start}")),
            bin_dir,
            sim_url,
            issuer,
            true,
            Mode::Plain,
            &Store::Sqlite,
            &Extra {
                config: "[limits]\nmax_connections_per_client = 2000\n",
                ..Extra::default()
            },
        )?;
        let address: SocketAddr = gateway
            .url
            .trim_start_matches("http://")
            .parse()
            .context("the gateway's address")?;
        let mut stream = TcpStream::connect(address)?;
        let status = get(&mut stream, address, &authorization)?;
        starts_ms.push(began.elapsed().as_secs_f64() * 1_000.0);
        if status != 200 {
            bail!("the first request through a new gateway answered {status}");
        }
        last = Some(address);
    }
    let address = last.ok_or_else(|| anyhow!("no gateway started"))?;
    let pid = children
        .last_pid("airlock")
        .ok_or_else(|| anyhow!("the gateway has no process id"))?;
    let rss_before_mib = status_mib(pid, "VmRSS:")?;
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        let mut stream = TcpStream::connect(address)?;
        let status = get(&mut stream, address, &authorization)?;
        if status != 200 {
            bail!(
                "a request on idle connection {} answered {status}",
                idle.len() + 1
            );
        }
        idle.push(stream);
    }
    let rss_idle_mib = status_mib(pid, "VmRSS:")?;
    drop(idle);
    Ok(Footprint {
        starts_ms,
        rss_before_mib,
        rss_idle_mib,
    })
}

/// One keep-alive `GET` of the bench's request on `stream`; reads the whole
/// answer (by its `Content-Length`) and returns its status.
fn get(stream: &mut TcpStream, address: SocketAddr, authorization: &str) -> anyhow::Result<u16> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {REQUEST_PATH} HTTP/1.1\r\nHost: {address}\r\nAuthorization: {authorization}\r\n\r\n"
    )?;
    let mut reader = BufReader::new(&*stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP status line: {line:?}"))?;
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(status)
}
