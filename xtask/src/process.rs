//! Child processes for the bench: started, waited on until ready (polling
//! with a deadline, never a fixed sleep), and always killed at the end.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};

/// How long a server may take to come up.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Owns every child the bench starts; dropping it kills and reaps them all,
/// on success, on error and on panic alike.
#[derive(Debug, Default)]
pub(crate) struct Children {
    running: Vec<Running>,
    /// The CPUs every child is pinned to (`taskset -c`), if any.
    pub(crate) cpus: Option<String>,
}

/// One started child, with the log its output goes to.
#[derive(Debug)]
struct Running {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Children {
    /// Starts `command`, logging its stderr to `stderr_log`, and waits up to
    /// [`READY_TIMEOUT`] for a stdout line containing `marker`; returns that
    /// line. The rest of stdout is drained in the background.
    pub(crate) fn spawn_and_read_line(
        &mut self,
        name: &str,
        command: Command,
        stderr_log: &Path,
        marker: &str,
    ) -> anyhow::Result<String> {
        let log = File::create(stderr_log)
            .with_context(|| format!("cannot create {}", stderr_log.display()))?;
        let mut command = pinned(command, self.cpus.as_deref());
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name}: {command:?}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("{name}: no stdout pipe"))?;
        self.running.push(Running {
            name: name.to_owned(),
            child,
            log: stderr_log.to_owned(),
        });

        let (lines_tx, lines_rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|read| read > 0) {
                // The receiver may be gone: keep draining so the child never
                // blocks on a full pipe.
                let _ = lines_tx.send(std::mem::take(&mut line));
            }
        });

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(remaining.min(Duration::from_millis(200))) {
                Ok(line) if line.contains(marker) => return Ok(line.trim().to_owned()),
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.exit_status(name);
                    bail!(
                        "{name} closed its stdout before printing `{marker}` ({status}); its log:\n{}",
                        log_tail(stderr_log)
                    );
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "{name} did not print `{marker}` within {}s; its log:\n{}",
                    READY_TIMEOUT.as_secs(),
                    log_tail(stderr_log)
                );
            }
        }
    }

    /// How many children have been started and are still held.
    pub(crate) fn count(&self) -> usize {
        self.running.len()
    }

    /// The process ids of the children started after the first `count`.
    pub(crate) fn pids_since(&self, count: usize) -> Vec<u32> {
        self.running
            .iter()
            .skip(count)
            .map(|running| running.child.id())
            .collect()
    }

    /// The process id of the child last started as `name`.
    pub(crate) fn last_pid(&self, name: &str) -> Option<u32> {
        self.running
            .iter()
            .rev()
            .find(|running| running.name == name)
            .map(|running| running.child.id())
    }

    /// Stops the child last started as `name`, as dropping all of them
    /// would, before the run goes on.
    pub(crate) fn stop_last(&mut self, name: &str) -> anyhow::Result<()> {
        let index = self
            .running
            .iter()
            .rposition(|running| running.name == name)
            .ok_or_else(|| anyhow::anyhow!("no child named {name} to stop"))?;
        let mut stopped = self.running.remove(index);
        stop(std::slice::from_mut(&mut stopped));
        Ok(())
    }

    /// Starts `command` with stdout and stderr both going to `log`.
    pub(crate) fn spawn_logged(
        &mut self,
        name: &str,
        command: Command,
        log: &Path,
    ) -> anyhow::Result<()> {
        let stdout =
            File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let stderr = stdout.try_clone()?;
        let mut command = pinned(command, self.cpus.as_deref());
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name}: {command:?}"))?;
        self.running.push(Running {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        });
        Ok(())
    }

    /// Polls `GET http://{address}{path}` until it answers 200, the child
    /// `name` exits, or [`READY_TIMEOUT`] passes.
    pub(crate) fn wait_for_http_ok(
        &mut self,
        name: &str,
        address: SocketAddr,
        path: &str,
        log: &Path,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last_problem = String::from("no attempt yet");
        while Instant::now() < deadline {
            if let Some(status) = self.exited(name) {
                bail!(
                    "{name} exited ({status}) before it was ready; its log:\n{}",
                    log_tail(log)
                );
            }
            match http_get_status(address, path) {
                Ok(200) => return Ok(()),
                Ok(status) => last_problem = format!("GET {path} answered {status}"),
                Err(error) => last_problem = format!("GET {path}: {error}"),
            }
            // Short: the bench times start-up by this wait.
            thread::sleep(Duration::from_millis(2));
        }
        bail!(
            "{name} was not ready within {}s (last: {last_problem}); its log:\n{}",
            READY_TIMEOUT.as_secs(),
            log_tail(log)
        )
    }

    /// Waits until `log` (where `name` writes) has a line containing `marker`.
    pub(crate) fn wait_for_log_line(
        &mut self,
        name: &str,
        log: &Path,
        marker: &str,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.exited(name) {
                bail!(
                    "{name} exited ({status}) before it was ready; its log:\n{}",
                    log_tail(log)
                );
            }
            if std::fs::read_to_string(log).is_ok_and(|text| text.contains(marker)) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{name} did not log `{marker}` within {}s; its log:\n{}",
            READY_TIMEOUT.as_secs(),
            log_tail(log)
        )
    }

    /// Fails if any child has exited: a server that died mid-run would make
    /// every later number meaningless.
    pub(crate) fn check_all_running(&mut self) -> anyhow::Result<()> {
        for running in &mut self.running {
            if let Ok(Some(status)) = running.child.try_wait() {
                bail!(
                    "{} exited during the run ({status}); its log:\n{}",
                    running.name,
                    log_tail(&running.log)
                );
            }
        }
        Ok(())
    }

    /// The exit status of the child `name` started last, if it has exited
    /// (several targets run a binary of one name: the one being waited on
    /// is the newest).
    fn exited(&mut self, name: &str) -> Option<std::process::ExitStatus> {
        let running = self
            .running
            .iter_mut()
            .rev()
            .find(|running| running.name == name)?;
        running.child.try_wait().ok().flatten()
    }

    fn exit_status(&mut self, name: &str) -> String {
        match self.exited(name) {
            Some(status) => status.to_string(),
            None => String::from("still running"),
        }
    }
}

/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

impl Drop for Children {
    /// Asks every child to stop (SIGTERM: the gateway drains, `pg-server`
    /// stops its cluster and removes its files), waits up to [`STOP_GRACE`],
    /// then kills whatever still runs.
    fn drop(&mut self) {
        stop(&mut self.running);
    }
}

/// SIGTERM to each of `running`, up to [`STOP_GRACE`] to exit, then kill.
fn stop(running: &mut [Running]) {
    {
        for running in running.iter_mut() {
            let _ = Command::new("kill")
                .args(["-TERM", &running.child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + STOP_GRACE;
        for running in running.iter_mut() {
            while Instant::now() < deadline && matches!(running.child.try_wait(), Ok(None)) {
                thread::sleep(Duration::from_millis(20));
            }
            // Already exited is fine; anything else we can't do more about.
            let _ = running.child.kill();
            let _ = running.child.wait();
        }
    }
}

/// `command` run under `taskset -c {cpus}` (its environment and working
/// directory kept), or as it is without `cpus`.
pub(crate) fn pinned(command: Command, cpus: Option<&str>) -> Command {
    let Some(cpus) = cpus else {
        return command;
    };
    let mut wrapped = Command::new("taskset");
    wrapped
        .args(["-c", cpus])
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}

/// A loopback port that was free a moment ago (bind port 0, read the port,
/// let the listener go) and that this run has not handed out before: the
/// kernel may give a port just let go again, and a gateway given one port
/// for both its listeners refuses to start.
pub(crate) fn free_loopback_port() -> anyhow::Result<u16> {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(PoisonError::into_inner);
    for _ in 0..1000 {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind a loopback port")?;
        let port = listener.local_addr()?.port();
        if given.insert(port) {
            return Ok(port);
        }
    }
    bail!("every free loopback port offered was one this run had handed out already")
}

/// The status code of a plain HTTP/1.1 `GET`, over std's blocking TCP: the
/// xtask needs nothing more to ask `/healthz`.
fn http_get_status(address: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line)?;
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP status line: {status_line:?}"))
}

/// The last lines of a log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    const LINES: usize = 20;
    let mut text = String::new();
    if File::open(path)
        .and_then(|mut file| file.read_to_string(&mut text))
        .is_err()
    {
        return format!("  (cannot read {})", path.display());
    }
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LINES);
    if lines.is_empty() {
        return String::from("  (empty)");
    }
    lines[start..]
        .iter()
        .map(|line| format!("  | {line}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::free_loopback_port;

    #[test]
    fn no_port_is_handed_out_twice() {
        let ports: Vec<u16> = (0..200).map(|_| free_loopback_port().unwrap()).collect();
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len());
    }

    #[test]
    fn a_gateway_that_exits_is_reported_at_once_not_after_the_timeout() {
        let shell = xshell::Shell::new().unwrap();
        let dir = shell.create_temp_dir().unwrap();
        let mut children = super::Children::default();
        // An older child of the same name, still running.
        let mut sleeping = std::process::Command::new("sh");
        sleeping.args(["-c", "exec sleep 30"]);
        children
            .spawn_logged("sh", sleeping, &dir.path().join("a.log"))
            .unwrap();
        let mut failing = std::process::Command::new("sh");
        failing.args(["-c", "echo 'error: bad config' >&2; exit 3"]);
        children
            .spawn_logged("sh", failing, &dir.path().join("b.log"))
            .unwrap();
        let started = std::time::Instant::now();
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], free_loopback_port().unwrap()));
        let error = children
            .wait_for_http_ok("sh", address, "/healthz", &dir.path().join("b.log"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("exited"), "{error}");
        assert!(error.contains("bad config"), "{error}");
        assert!(started.elapsed() < super::READY_TIMEOUT / 2, "{error}");
    }
}
