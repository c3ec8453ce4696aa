//! [`runtime`]: the tokio runtime the gateway runs best on, for the CPUs
//! this process may use.

use tokio::runtime::{Builder, Runtime};

/// Tokio's variable for the multi-thread runtime's worker count.
const WORKER_THREADS: &str = "TOKIO_WORKER_THREADS";

/// Builds the runtime for a gateway process: tokio's current-thread
/// scheduler when the process may use one CPU (its affinity, e.g.
/// `taskset -c 0`, or its cgroup's quota, e.g. a container's `cpus: 1`),
/// the multi-thread scheduler otherwise, or whenever `TOKIO_WORKER_THREADS`
/// is set (tokio then starts that many workers).
///
/// On one CPU a multi-thread runtime only adds work: its one worker
/// thread and the thread that accepts connections take turns on the CPU,
/// and every wake-up between them goes through the scheduler's shared
/// queues. The current-thread scheduler runs every task on the thread
/// that drives the runtime; blocking work (SQLite's appends) still goes
/// to tokio's blocking threads. Measured on one CPU (BENCHMARKS.md's
/// notes, eighth session): the gateway serves ~6% more requests, a bare
/// hyper proxy ~2% more.
///
/// ```
/// let runtime = airlock_gateway::runtime().unwrap();
/// assert_eq!(runtime.block_on(async { 1 + 1 }), 2);
/// ```
///
/// # Errors
///
/// The operating system's, when tokio cannot start its threads or its
/// I/O driver.
pub fn runtime() -> std::io::Result<Runtime> {
    let one_cpu = std::env::var_os(WORKER_THREADS).is_none()
        && std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if one_cpu {
        Builder::new_current_thread()
    } else {
        Builder::new_multi_thread()
    };
    builder.enable_all().build()
}
