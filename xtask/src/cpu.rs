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

/// `utime + stime` of one `/proc/<pid>/stat` line. The command name (field
/// 2) is in parentheses and may hold spaces: fields are counted after it.
fn ticks_of(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name: state (3), …, utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
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

#[cfg(test)]
mod tests {
    use super::*;

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
