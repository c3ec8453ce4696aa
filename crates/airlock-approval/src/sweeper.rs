//! [`ExpirySweeper`]: expires due approvals on an interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::{ApprovalEvent, ApprovalMetrics, ApprovalState, ApprovalStore, Notifier};

/// A background task that asks the store to expire due approvals (erasing
/// their stored requests) every interval and tells the notifier of each.
/// Stops when [`stop`](Self::stop)ped or dropped.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use airlock_approval::{ExpirySweeper, LogNotifier, MemoryApprovalStore};
///
/// let sweeper = ExpirySweeper::spawn(
///     Arc::new(MemoryApprovalStore::new()),
///     Arc::new(LogNotifier),
///     Duration::from_secs(5),
/// );
/// sweeper.stop();
/// # });
/// ```
#[derive(Debug)]
pub struct ExpirySweeper {
    task: JoinHandle<()>,
}

impl ExpirySweeper {
    /// Starts sweeping `store` every `interval` on the current runtime.
    pub fn spawn(
        store: Arc<dyn ApprovalStore>,
        notifier: Arc<dyn Notifier>,
        interval: Duration,
    ) -> Self {
        Self::start(store, notifier, interval, None)
    }

    /// Like [`spawn`](Self::spawn), and after each sweep sets `metrics`'
    /// `airlock_approvals_pending` to how many approvals in `store` wait
    /// for a decision (every replica's: replicas on one database report
    /// the same number).
    pub fn spawn_counting(
        store: Arc<dyn ApprovalStore>,
        notifier: Arc<dyn Notifier>,
        interval: Duration,
        metrics: Arc<ApprovalMetrics>,
    ) -> Self {
        Self::start(store, notifier, interval, Some(metrics))
    }

    fn start(
        store: Arc<dyn ApprovalStore>,
        notifier: Arc<dyn Notifier>,
        interval: Duration,
        metrics: Option<Arc<ApprovalMetrics>>,
    ) -> Self {
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match store.expire_due().await {
                    Ok(expired) => {
                        for approval in expired {
                            tracing::info!(approval_id = %approval.id, "approval expired");
                            notifier.notify(ApprovalEvent::Expired(approval));
                        }
                    }
                    Err(error) => tracing::warn!(%error, "expiring due approvals failed"),
                }
                if let Some(metrics) = &metrics {
                    match store.list(Some(ApprovalState::Pending)).await {
                        Ok(pending) => metrics.set_pending(pending.len()),
                        Err(error) => tracing::debug!(%error, "counting pending approvals failed"),
                    }
                }
            }
        });
        Self { task }
    }

    /// Stops sweeping.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for ExpirySweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}
