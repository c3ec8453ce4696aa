//! Load generators for the bench: `wrk` if installed, else `oha`, else the
//! in-repo `loadgen` bin. Each run is reduced to the same [`LoadResult`].

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::ValueEnum;
use serde_json::Value;

use crate::duration;
use crate::process::pinned;

/// Which generator `cargo xtask bench --generator` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GeneratorChoice {
    /// `wrk` if on PATH, else `oha` if on PATH, else the in-repo `loadgen`.
    Auto,
    /// `wrk` (must be on PATH).
    Wrk,
    /// `oha` (must be on PATH).
    Oha,
    /// The in-repo `loadgen` bin (package airlock-bench, in `xtask/bench`).
    Loadgen,
}

/// Which tool sends the load.
#[derive(Debug, Clone)]
pub(crate) enum Generator {
    Wrk(PathBuf),
    Oha {
        program: PathBuf,
        /// `--output-format json` in oha 1.5 and later, `-j` before.
        json_args: Vec<&'static str>,
    },
    Loadgen(PathBuf),
}

/// One load run: where, how hard, how long, with which credential.
#[derive(Debug, Clone)]
pub(crate) struct LoadSpec {
    pub(crate) url: String,
    pub(crate) connections: u32,
    pub(crate) duration: Duration,
    pub(crate) authorization: String,
    /// The CA an `https://` URL is verified against (`loadgen` only).
    pub(crate) ca: Option<PathBuf>,
    /// A forward proxy to tunnel through with `CONNECT` (`loadgen` only).
    pub(crate) proxy: Option<String>,
    /// A new connection for every request (`loadgen` only).
    pub(crate) connection_per_request: bool,
    /// A second server answering the same request (another replica): see
    /// [`Generator::run_split`].
    pub(crate) also: Option<String>,
    /// The CPUs the generator is pinned to (`taskset -c`); pinned, `wrk`
    /// runs one thread.
    pub(crate) cpus: Option<String>,
    /// How long one request may take before the generator counts it as an
    /// error (`wrk --timeout`; its default is 2 s).
    pub(crate) timeout: Option<Duration>,
    /// Open-loop at this many requests a second in all (`loadgen` only).
    pub(crate) rate: Option<f64>,
    /// A file of `Authorization` values, one per line, sent in turn
    /// instead of `authorization` (many identities; `wrk` runs a Lua
    /// script for it, which costs the generator a little per request).
    pub(crate) authorizations: Option<PathBuf>,
}

impl LoadSpec {
    /// `GET {base}{REQUEST_PATH}` with `authorization`; the rest set by the caller.
    pub(crate) fn new(base: &str, authorization: String) -> Self {
        Self {
            url: format!("{base}{}", crate::bench::REQUEST_PATH),
            connections: 1,
            duration: Duration::ZERO,
            authorization,
            ca: None,
            proxy: None,
            connection_per_request: false,
            also: None,
            cpus: None,
            timeout: None,
            rate: None,
            authorizations: None,
        }
    }
}

/// What every generator's output is reduced to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LoadResult {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) requests_per_second: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
}

impl LoadResult {
    /// Two loads run at the same time, as one: requests, errors and rates
    /// add up; of the latencies, the worse of each is kept.
    pub(crate) fn combined(&self, other: &LoadResult) -> LoadResult {
        LoadResult {
            requests: self.requests + other.requests,
            errors: self.errors + other.errors,
            requests_per_second: self.requests_per_second + other.requests_per_second,
            p50_ms: self.p50_ms.max(other.p50_ms),
            p99_ms: self.p99_ms.max(other.p99_ms),
        }
    }
}

impl Generator {
    /// The generator `choice` names; for `auto`, `wrk` on PATH, else `oha`
    /// on PATH, else `loadgen` from `bin_dir`.
    pub(crate) fn choose(choice: GeneratorChoice, bin_dir: &Path) -> anyhow::Result<Generator> {
        let loadgen = || Generator::Loadgen(bin_dir.join("loadgen"));
        let wrk = || find_on_path("wrk").map(Generator::Wrk);
        let oha = || find_on_path("oha").map(oha_generator);
        match choice {
            GeneratorChoice::Auto => Ok(wrk().or_else(oha).unwrap_or_else(loadgen)),
            GeneratorChoice::Wrk => {
                wrk().ok_or_else(|| anyhow!("--generator wrk: wrk is not on PATH"))
            }
            GeneratorChoice::Oha => {
                oha().ok_or_else(|| anyhow!("--generator oha: oha is not on PATH"))
            }
            GeneratorChoice::Loadgen => Ok(loadgen()),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Generator::Wrk(path) => format!("wrk ({})", path.display()),
            Generator::Oha { program, .. } => format!("oha ({})", program.display()),
            Generator::Loadgen(path) => {
                format!("in-repo loadgen ({})", path.display())
            }
        }
    }

    /// Runs one load and parses what the tool printed.
    /// Runs `spec`; with a second server (`spec.also`), loads both at once,
    /// each with half the connections, and adds their results up.
    pub(crate) fn run_split(&self, spec: &LoadSpec) -> anyhow::Result<LoadResult> {
        let Some(also) = &spec.also else {
            return self.run(spec);
        };
        let half = |url: &str| LoadSpec {
            url: url.to_owned(),
            connections: spec.connections.div_ceil(2),
            also: None,
            ..spec.clone()
        };
        let (first, second) = (half(&spec.url), half(also));
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| self.run(&first));
            let b = self.run(&second);
            (a.join(), b)
        });
        let a = a.map_err(|_| anyhow::anyhow!("the load generator thread panicked"))??;
        Ok(a.combined(&b?))
    }

    pub(crate) fn run(&self, spec: &LoadSpec) -> anyhow::Result<LoadResult> {
        let authorization = format!("Authorization: {}", spec.authorization);
        let connections = spec.connections.to_string();
        let command = match self {
            Generator::Wrk(program) => {
                let mut command = Command::new(program);
                let threads = if spec.cpus.is_some() {
                    String::from("1")
                } else {
                    spec.connections.clamp(1, 2).to_string()
                };
                command.args(["-t", &threads, "-c", &connections]).args([
                    "-d",
                    &duration::to_wrk_arg(spec.duration),
                    "--latency",
                ]);
                if let Some(timeout) = spec.timeout {
                    command.args(["--timeout", &duration::to_wrk_arg(timeout)]);
                }
                match &spec.authorizations {
                    Some(file) => {
                        let script = file.with_extension("lua");
                        std::fs::write(&script, WRK_ROTATE_AUTHORIZATION)
                            .with_context(|| format!("cannot write {}", script.display()))?;
                        command
                            .arg("-s")
                            .arg(script)
                            .arg(&spec.url)
                            .arg("--")
                            .arg(file);
                    }
                    None => {
                        command.args(["-H", &authorization, &spec.url]);
                    }
                }
                command
            }
            Generator::Oha { .. } if spec.authorizations.is_some() => {
                bail!("oha cannot send a different Authorization per request: use wrk or loadgen")
            }
            Generator::Oha { program, json_args } => {
                let mut command = Command::new(program);
                command
                    .args([
                        "-z",
                        &duration::to_millis_arg(spec.duration),
                        "-c",
                        &connections,
                    ])
                    .arg("--no-tui")
                    .args(json_args)
                    .args(["-H", &authorization, &spec.url]);
                command
            }
            Generator::Loadgen(program) => {
                let mut command = Command::new(program);
                command
                    .args(["--url", &spec.url, "--connections", &connections])
                    .args(["--duration", &duration::to_millis_arg(spec.duration)]);
                match &spec.authorizations {
                    Some(file) => command.arg("--authorization-file").arg(file),
                    None => command.args(["--header", &authorization]),
                };
                if let Some(ca) = &spec.ca {
                    command.arg("--ca").arg(ca);
                }
                if let Some(proxy) = &spec.proxy {
                    command.args(["--proxy", proxy]);
                }
                if spec.connection_per_request {
                    command.arg("--connection-per-request");
                }
                if let Some(rate) = spec.rate {
                    command.args(["--rate", &format!("{rate:.0}")]);
                }
                command
            }
        };
        let mut command = pinned(command, spec.cpus.as_deref());
        let output = command
            .output()
            .with_context(|| format!("cannot run {command:?}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "{command:?} failed ({}):\n{stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let parsed = match self {
            Generator::Wrk(_) => parse_wrk(&stdout),
            Generator::Oha { .. } => parse_oha(&stdout),
            Generator::Loadgen(_) => parse_loadgen(&stdout),
        };
        parsed.with_context(|| format!("cannot read the output of {command:?}:\n{stdout}"))
    }
}

/// `wrk -s`: the file named after `--` holds one `Authorization` value per
/// line; each thread starts at its own line and sends them in turn.
const WRK_ROTATE_AUTHORIZATION: &str = r#"local values = {}
local next_value = 1
function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then values[#values + 1] = line end
  end
  if #values == 0 then error("no Authorization values in " .. args[1]) end
  next_value = math.random(#values)
end
function request()
  next_value = next_value % #values + 1
  return wrk.format(nil, nil, { ["Authorization"] = values[next_value] })
end
"#;

/// oha 1.5 and later take `--output-format json`, earlier ones `-j`.
fn oha_generator(program: PathBuf) -> Generator {
    let help = Command::new(&program).arg("--help").output();
    let modern = help
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("--output-format"));
    let json_args = if modern {
        vec!["--output-format", "json"]
    } else {
        vec!["-j"]
    };
    Generator::Oha { program, json_args }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Reads `wrk --latency` output: the latency distribution, the request
/// count, socket errors, non-2xx/3xx responses, and Requests/sec.
fn parse_wrk(output: &str) -> anyhow::Result<LoadResult> {
    let mut requests = None;
    let mut requests_per_second = None;
    let mut p50_ms = None;
    let mut p99_ms = None;
    let mut errors = 0;
    for line in output.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", latency] => p50_ms = Some(wrk_time_ms(latency)?),
            ["99%", latency] => p99_ms = Some(wrk_time_ms(latency)?),
            [count, "requests", "in", ..] => requests = Some(count.parse()?),
            ["Requests/sec:", rate] => requests_per_second = Some(rate.parse()?),
            ["Non-2xx", "or", "3xx", "responses:", count] => errors += count.parse::<u64>()?,
            ["Socket", "errors:", counts @ ..] => {
                // `connect 0, read 0, write 0, timeout 0`
                for count in counts.iter().skip(1).step_by(2) {
                    errors += count.trim_end_matches(',').parse::<u64>()?;
                }
            }
            _ => {}
        }
    }
    Ok(LoadResult {
        requests: requests.ok_or_else(|| anyhow!("no `N requests in` line"))?,
        errors,
        requests_per_second: requests_per_second.ok_or_else(|| anyhow!("no Requests/sec line"))?,
        p50_ms: p50_ms.ok_or_else(|| anyhow!("no 50% latency line (was --latency given?)"))?,
        p99_ms: p99_ms.ok_or_else(|| anyhow!("no 99% latency line"))?,
    })
}

/// `635.91us`, `1.04ms`, `2.00s`, `1.50m` as milliseconds.
fn wrk_time_ms(text: &str) -> anyhow::Result<f64> {
    let units = [
        ("us", 0.001),
        ("ms", 1.0),
        ("s", 1_000.0),
        ("m", 60_000.0),
        ("h", 3_600_000.0),
    ];
    for (suffix, factor) in units {
        if let Some(number) = text.strip_suffix(suffix) {
            return Ok(number.parse::<f64>()? * factor);
        }
    }
    bail!("`{text}` is not a wrk time")
}

/// Reads `oha` JSON output. Requests still in flight at the deadline
/// ("aborted due to deadline") are not errors, as with wrk and loadgen.
fn parse_oha(output: &str) -> anyhow::Result<LoadResult> {
    let json: Value = serde_json::from_str(output.trim())?;
    let number = |pointer: &str| {
        json.pointer(pointer)
            .and_then(Value::as_f64)
            .ok_or_else(|| anyhow!("no number at {pointer}"))
    };
    let mut requests = 0;
    let mut errors = 0;
    if let Some(statuses) = json
        .get("statusCodeDistribution")
        .and_then(Value::as_object)
    {
        for (status, count) in statuses {
            let count = count.as_u64().unwrap_or(0);
            requests += count;
            if !status.starts_with('2') {
                errors += count;
            }
        }
    }
    if let Some(failures) = json.get("errorDistribution").and_then(Value::as_object) {
        for (failure, count) in failures {
            if !failure.contains("deadline") {
                errors += count.as_u64().unwrap_or(0);
            }
        }
    }
    Ok(LoadResult {
        requests,
        errors,
        requests_per_second: number("/summary/requestsPerSec")?,
        p50_ms: number("/latencyPercentiles/p50")? * 1_000.0,
        p99_ms: number("/latencyPercentiles/p99")? * 1_000.0,
    })
}

/// Reads the one JSON line `loadgen` prints.
fn parse_loadgen(output: &str) -> anyhow::Result<LoadResult> {
    let line = output
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default();
    let json: Value = serde_json::from_str(line)?;
    let number = |key: &str| {
        json.get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| anyhow!("no `{key}`"))
    };
    let count = |key: &str| {
        json.get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("no `{key}`"))
    };
    Ok(LoadResult {
        requests: count("requests")?,
        errors: count("errors")?,
        requests_per_second: number("rps")?,
        p50_ms: number("p50_ms")?,
        p99_ms: number("p99_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_OUTPUT: &str = "\
Running 3s test @ http://127.0.0.1:41234/subscriptions/x
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   710.12us  300.45us   8.02ms   90.12%
    Req/Sec    45.10k     2.01k   50.00k    70.00%
  Latency Distribution
     50%  635.91us
     75%  712.00us
     90%    1.04ms
     99%    2.02ms
  269012 requests in 3.00s, 61.57MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  89670.67
Transfer/sec:     20.52MB
";

    #[test]
    fn reads_wrk_latency_distribution_and_errors() -> anyhow::Result<()> {
        let result = parse_wrk(WRK_OUTPUT)?;
        assert_eq!(result.requests, 269_012);
        assert_eq!(result.errors, 7);
        assert!((result.requests_per_second - 89_670.67).abs() < 1e-6);
        assert!((result.p50_ms - 0.635_91).abs() < 1e-9);
        assert!((result.p99_ms - 2.02).abs() < 1e-9);
        Ok(())
    }

    #[test]
    fn wrk_output_without_latency_is_refused() {
        let without = WRK_OUTPUT.replace("99%", "98%");
        assert!(parse_wrk(&without).is_err());
    }

    #[test]
    fn reads_oha_json() -> anyhow::Result<()> {
        let output = r#"{"summary":{"successRate":1.0,"requestsPerSec":1234.5},
            "latencyPercentiles":{"p50":0.0012,"p99":0.0051},
            "statusCodeDistribution":{"200":1000,"401":3},
            "errorDistribution":{"aborted due to deadline":64,"connection closed":2}}"#;
        let result = parse_oha(output)?;
        assert_eq!(result.requests, 1003);
        assert_eq!(result.errors, 5);
        assert!((result.p50_ms - 1.2).abs() < 1e-9);
        assert!((result.p99_ms - 5.1).abs() < 1e-9);
        Ok(())
    }

    #[test]
    fn reads_loadgen_json_line() -> anyhow::Result<()> {
        let output =
            r#"{"requests":500,"errors":1,"duration_s":2.0,"rps":250.0,"p50_ms":0.5,"p99_ms":2.5}"#;
        let result = parse_loadgen(&format!("{output}\n"))?;
        assert_eq!(
            result,
            LoadResult {
                requests: 500,
                errors: 1,
                requests_per_second: 250.0,
                p50_ms: 0.5,
                p99_ms: 2.5
            }
        );
        Ok(())
    }
}
