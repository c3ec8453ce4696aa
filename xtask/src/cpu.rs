//! The CPU time a server spent, read from `/proc/<pid>/stat`: divided by the
//! requests of a load, it is the server's own cost per request, which drifts
//! far less than throughput does (the upstream's share and the scheduler's
//! mood are not in it).

use std::sync::OnceLock;

/// User plus system CPU seconds `pids` have used so far (every thread of
/// each); `None` when one of them cannot be read (not Linux, or it exited).
pub(crate) fn seconds(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    let mut ticks = 0_u64;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        ticks += ticks_of(&stat)?;
    }
    #[allow(clippy::cast_precision_loss)]
    Some(ticks as f64 / ticks_per_second())
}

/// `utime + stime` of one `/proc/<pid>/stat` line.
fn ticks_of(stat: &str) -> Option<u64> {
    let (utime, stime) = user_system_ticks(stat)?;
    Some(utime + stime)
}

/// `(utime, stime)` of one `/proc/<pid>/stat` line. The command name (field
/// 2) is in parentheses and may hold spaces: fields are counted after it.
fn user_system_ticks(stat: &str) -> Option<(u64, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name: state (3), …, utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 when unknown).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// What one thread of a server has used so far: CPU time, the bytes its
/// `read`/`write` system calls moved (sockets and files alike) and how
/// often it left the CPU.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ThreadUse {
    /// The thread's id.
    pub(crate) tid: u32,
    /// Its name (`comm`), e.g. `tokio-rt-worker`.
    pub(crate) name: String,
    /// User CPU seconds.
    pub(crate) user: f64,
    /// System CPU seconds.
    pub(crate) system: f64,
    /// `rchar`: bytes read.
    pub(crate) read: u64,
    /// `wchar`: bytes written.
    pub(crate) written: u64,
    /// Context switches it asked for (it waited: a lock, I/O, a park).
    pub(crate) voluntary: u64,
    /// Context switches forced on it (preempted by another runnable task).
    pub(crate) involuntary: u64,
}

/// Every thread of `pids` (`/proc/<pid>/task/*`); threads that cannot be
/// read (gone since the listing) are left out.
pub(crate) fn threads(pids: &[u32]) -> Vec<ThreadUse> {
    let mut found = Vec::new();
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let dir = task.path();
            let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
            let (Some(stat), Some(io), Some(status)) = (read("stat"), read("io"), read("status"))
            else {
                continue;
            };
            if let Some(used) = thread_use(&stat, &io, &status) {
                found.push(used);
            }
        }
    }
    found
}

/// One thread's [`ThreadUse`] from its `stat`, `io` and `status` files.
fn thread_use(stat: &str, io: &str, status: &str) -> Option<ThreadUse> {
    let tid = stat.split_whitespace().next()?.parse().ok()?;
    let name = stat.get(stat.find('(')? + 1..stat.rfind(')')?)?.to_owned();
    let (user, system) = user_system_ticks(stat)?;
    let counter = |file: &str, key: &str| {
        file.lines()
            .find_map(|line| line.strip_prefix(key)?.trim().parse::<u64>().ok())
    };
    #[allow(clippy::cast_precision_loss)]
    Some(ThreadUse {
        tid,
        name,
        user: user as f64 / ticks_per_second(),
        system: system as f64 / ticks_per_second(),
        read: counter(io, "rchar:")?,
        written: counter(io, "wchar:")?,
        voluntary: counter(status, "voluntary_ctxt_switches:")?,
        involuntary: counter(status, "nonvoluntary_ctxt_switches:")?,
    })
}

/// `a` and `b` summed thread by thread (by id).
pub(crate) fn add(a: &[ThreadUse], b: &[ThreadUse]) -> Vec<ThreadUse> {
    let mut sum = a.to_vec();
    for thread in b {
        match sum.iter_mut().find(|t| t.tid == thread.tid) {
            Some(t) => {
                t.user += thread.user;
                t.system += thread.system;
                t.read += thread.read;
                t.written += thread.written;
                t.voluntary += thread.voluntary;
                t.involuntary += thread.involuntary;
            }
            None => sum.push(thread.clone()),
        }
    }
    sum
}

/// What each thread used between two readings of [`threads`] (threads
/// started in between count from zero).
pub(crate) fn used_between(before: &[ThreadUse], after: &[ThreadUse]) -> Vec<ThreadUse> {
    after
        .iter()
        .map(|now| {
            let then = before.iter().find(|t| t.tid == now.tid);
            ThreadUse {
                tid: now.tid,
                name: now.name.clone(),
                user: now.user - then.map_or(0.0, |t| t.user),
                system: now.system - then.map_or(0.0, |t| t.system),
                read: now.read.saturating_sub(then.map_or(0, |t| t.read)),
                written: now.written.saturating_sub(then.map_or(0, |t| t.written)),
                voluntary: now
                    .voluntary
                    .saturating_sub(then.map_or(0, |t| t.voluntary)),
                involuntary: now
                    .involuntary
                    .saturating_sub(then.map_or(0, |t| t.involuntary)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_threads_cpu_and_bytes() {
        let stat =
            "77 (airlock-store-c) S 1 4242 4242 0 -1 4194560 900 0 0 0 12 345 0 0 20 0 3 0 100 0 0";
        let io = "rchar: 1000\nwchar: 2000\nsyscr: 3\nsyscw: 4\nread_bytes: 0\nwrite_bytes: 8192\n";
        let status = "Name:\tairlock-store-c\nvoluntary_ctxt_switches:\t41\nnonvoluntary_ctxt_switches:\t7\n";
        let used = thread_use(stat, io, status).unwrap();
        assert_eq!((used.tid, used.name.as_str()), (77, "airlock-store-c"));
        assert_eq!((used.read, used.written), (1000, 2000));
        assert_eq!((used.voluntary, used.involuntary), (41, 7));
        assert_eq!(thread_use(stat, io, "Name:\tx\n"), None);
        let tick = 1.0 / ticks_per_second();
        assert!(
            (used.user - 12.0 * tick).abs() < 1e-9 && (used.system - 345.0 * tick).abs() < 1e-9
        );
    }

    #[test]
    fn use_between_readings_is_the_difference_and_sums_by_thread() {
        let at = |tid, cpu: f64, bytes| ThreadUse {
            tid,
            name: format!("t{tid}"),
            user: cpu,
            system: 0.0,
            read: bytes,
            written: bytes,
            voluntary: bytes / 10,
            involuntary: 1,
        };
        let before = [at(1, 1.0, 100), at(2, 1.0, 100)];
        let after = [at(1, 1.5, 150), at(2, 3.0, 400), at(3, 0.25, 10)];
        let used = used_between(&before, &after);
        let tids: Vec<u32> = used.iter().map(|t| t.tid).collect();
        assert_eq!(tids, [1, 2, 3]);
        assert_eq!((used[1].user, used[1].written), (2.0, 300));
        assert_eq!((used[2].user, used[2].read), (0.25, 10));
        assert_eq!((used[1].voluntary, used[1].involuntary), (30, 0));
        let twice = add(&used, &used[1..]);
        assert_eq!(twice.len(), 3);
        assert_eq!(
            (twice[0].user, twice[1].user, twice[1].written),
            (0.5, 4.0, 600)
        );
    }

    #[test]
    fn reads_utime_and_stime_past_a_name_with_spaces() {
        let stat =
            "4242 (tokio rt) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 56 0 0 20 0 3 0 100 0 0";
        assert_eq!(ticks_of(stat), Some(1234 + 56));
    }

    #[test]
    fn the_reading_grows_with_the_cpu_this_process_burns() {
        let me = [std::process::id()];
        let before = seconds(&me).expect("our own /proc entry");
        // Spin until the kernel has charged at least two clock ticks more
        // (20 ms at 100 Hz); a reading of the wrong fields would not move.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut spent = 0_u64;
        let after = loop {
            spent = spent.wrapping_add(std::hint::black_box(spent) | 1);
            let now = seconds(&me).expect("our own /proc entry");
            if now >= before + 2.0 / ticks_per_second() {
                break now;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "10 s of spinning was not charged to this process: {before} s, then {now} s"
            );
        };
        assert!(after > before);
        assert_eq!(seconds(&[]), None);
    }
}
