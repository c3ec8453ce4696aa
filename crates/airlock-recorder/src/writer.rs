//! The writer task: the one place events are placed in sessions, linked into
//! the chain and handed to the sink.
//!
//! It takes whatever is queued (up to `max_batch`) per
//! [`AuditSink::append`] call, after letting the tasks already runnable
//! queue theirs (again, for a few rounds, while they keep doing so), so a
//! busy gateway writes in large batches (one commit for many events: on
//! SQLite a commit costs as much as a few dozen events) and an idle one
//! writes each event at once. When an append fails:
//!
//! - everyone waiting for those events hears the error, and the events are
//!   lost (counted in `dropped`): they are not re-linked or retried, so the
//!   chain head stays where the sink's chain ends;
//! - the recorder reports itself unhealthy, and the writer backs off (100 ms,
//!   doubling up to 5 s) before it tries again. It then asks the sink whether
//!   it is ready ([`AuditSink::ready`]: a full disk is not) and for its
//!   head ([`AuditSink::head`]): if the sink answers, the recorder admits
//!   requests again (continuing from the sink's head, should an append that
//!   "failed" have been stored after all), and the next successful append
//!   confirms it. While the sink does not answer, the backoff grows.
//!
//! A panicking sink counts as a failing one; the writer itself never panics.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::queue::{Ack, Entry, WriterStatus};
use crate::sessions::Sessions;
use crate::{AuditSink, ChainHead, ChainedEvent, RecorderError};

/// The first pause after a failed append.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The most scheduler rounds a batch waits for more events.
const GATHER_ROUNDS: usize = 8;

pub(crate) struct Writer {
    pub(crate) receiver: mpsc::Receiver<Entry>,
    pub(crate) sink: Arc<dyn AuditSink>,
    pub(crate) status: Arc<WriterStatus>,
    pub(crate) head: ChainHead,
    pub(crate) sessions: Sessions,
    pub(crate) max_batch: usize,
    pub(crate) shutdown: Arc<Notify>,
}

/// Where the writer stands after failures.
struct Retry {
    /// Don't touch the sink before this.
    at: Instant,
    /// The pause after the next failure.
    backoff: Duration,
    /// Whether the sink answered a probe since the last failure: the next
    /// append decides.
    probed: bool,
}

impl Writer {
    pub(crate) async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut closing = false;
        let mut retry: Option<Retry> = None;
        loop {
            if let Some(pending) = &mut retry
                && !pending.probed
                && !closing
            {
                tokio::select! {
                    biased;
                    () = self.shutdown.notified() => {
                        self.receiver.close();
                        closing = true;
                    }
                    () = tokio::time::sleep_until(pending.at) => {}
                }
                if !closing {
                    if self.probe().await {
                        pending.probed = true;
                    } else {
                        pending.at = Instant::now() + pending.backoff;
                        pending.backoff = (pending.backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
            let first = tokio::select! {
                biased;
                () = self.shutdown.notified(), if !closing => {
                    // No new events; those queued are still written.
                    self.receiver.close();
                    closing = true;
                    continue;
                }
                entry = self.receiver.recv() => match entry {
                    Some(entry) => entry,
                    // Closed and drained, or every sender is gone.
                    None => break,
                },
            };
            batch.push(first);
            self.gather(&mut batch).await;
            if self.write(&mut batch).await {
                retry = None;
            } else {
                let backoff = retry.as_ref().map_or(FIRST_BACKOFF, |r| r.backoff);
                retry = Some(Retry {
                    at: Instant::now() + backoff,
                    backoff: (backoff * 2).min(MAX_BACKOFF),
                    probed: false,
                });
            }
        }
        tracing::debug!(head = self.head.seq, "audit writer stopped");
    }

    /// Adds to `batch` the events queued while the tasks already runnable
    /// (responses about to end) run, and again while each such round
    /// brings more (up to [`GATHER_ROUNDS`] rounds and `max_batch` events):
    /// one commit for all of them, and a commit's fixed cost is most of
    /// what a small batch costs. An idle gateway writes after one round,
    /// which costs nothing when nothing else is runnable.
    async fn gather(&mut self, batch: &mut Vec<Entry>) {
        for _ in 0..GATHER_ROUNDS {
            tokio::task::yield_now().await;
            let before = batch.len();
            while batch.len() < self.max_batch {
                match self.receiver.try_recv() {
                    Ok(entry) => batch.push(entry),
                    Err(_) => break,
                }
            }
            if batch.len() == before || batch.len() >= self.max_batch {
                return;
            }
        }
    }

    /// Links and appends `batch` (emptying it), answers its waiters, and
    /// says whether the sink stored it.
    async fn write(&mut self, batch: &mut Vec<Entry>) -> bool {
        let count = batch.len();
        let mut next = self.head.clone();
        let mut acks: Vec<Ack> = Vec::with_capacity(count);
        let mut chained: Vec<ChainedEvent> = Vec::with_capacity(count);
        for entry in batch.drain(..) {
            let mut event = entry.event;
            event.session_id = self.sessions.assign(
                entry.principal.as_deref(),
                entry.session_header.as_deref(),
                entry.arrived,
            );
            chained.push(next.link(event));
            acks.extend(entry.ack);
        }
        let sink = Arc::clone(&self.sink);
        // In a task of its own, so a panicking sink cannot take the writer down.
        let appended = tokio::spawn(async move { sink.append(&chained).await }).await;
        let outcome = match appended {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("the audit sink panicked".to_owned()),
        };
        match outcome {
            Ok(()) => {
                self.head = next;
                self.status.counters.recorded(count);
                self.status.set_sink_ok(true);
                for ack in acks {
                    let _ = ack.send(Ok(()));
                }
                true
            }
            Err(error) => {
                self.status.counters.failed_batch();
                self.status.counters.dropped(count);
                self.status.set_sink_ok(false);
                tracing::error!(
                    %error,
                    events = count,
                    head = self.head.seq,
                    "audit sink failed to store a batch; its events are lost"
                );
                for ack in acks {
                    let _ = ack.send(Err(RecorderError::SinkFailing));
                }
                false
            }
        }
    }

    /// Asks the sink for its head after failures; says whether it answered.
    async fn probe(&mut self) -> bool {
        let sink = Arc::clone(&self.sink);
        let asked = tokio::spawn(async move {
            sink.ready().await?;
            sink.head().await
        });
        match asked.await {
            Ok(Ok(head)) => {
                if let Some(head) = head
                    && head != self.head
                {
                    tracing::warn!(
                        recorder = self.head.seq,
                        sink = head.seq,
                        "the audit sink's chain ends elsewhere than expected; continuing from the sink's head"
                    );
                    self.head = head;
                }
                self.status.set_sink_ok(true);
                true
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "audit sink is still failing");
                false
            }
            Err(_) => {
                tracing::warn!("audit sink panicked while asked for its head");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::EXAMPLE_EVENT;
    use crate::queue::Queue;
    use crate::{MemorySink, RecorderConfig};

    fn entry() -> Entry {
        Entry {
            event: serde_json::from_str(EXAMPLE_EVENT).unwrap(),
            principal: None,
            session_header: None,
            arrived: std::time::Instant::now(),
            ack: None,
        }
    }

    /// A writer over a channel the test sends into, taking `max_batch`.
    fn new_writer(max_batch: usize) -> (Writer, mpsc::Sender<Entry>) {
        let (queue, _) = Queue::new(RecorderConfig::default());
        let (sender, receiver) = mpsc::channel(1024);
        let writer = Writer {
            receiver,
            sink: Arc::new(MemorySink::new()),
            status: Arc::clone(&queue.status),
            head: ChainHead::default(),
            sessions: Sessions::new(Duration::from_secs(60)),
            max_batch,
            shutdown: Arc::new(Notify::new()),
        };
        (writer, sender)
    }

    /// Queues one event per scheduler round, `rounds` times (forever if `None`).
    fn producer(sender: mpsc::Sender<Entry>, rounds: Option<usize>) {
        tokio::spawn(async move {
            let mut sent = 0;
            while rounds.is_none_or(|rounds| sent < rounds) {
                if sender.send(entry()).await.is_err() {
                    return;
                }
                sent += 1;
                tokio::task::yield_now().await;
            }
        });
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_idle_writer_writes_the_first_event_after_one_round() {
        let (mut writer, _sender) = new_writer(512);
        let mut batch = vec![entry()];
        writer.gather(&mut batch).await;
        assert_eq!(batch.len(), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_batch_gathers_events_for_as_long_as_each_round_brings_more() {
        let (mut writer, sender) = new_writer(512);
        producer(sender, Some(5));
        let mut batch = vec![entry()];
        writer.gather(&mut batch).await;
        assert_eq!(batch.len(), 6);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn gathering_stops_after_its_rounds_or_at_max_batch() {
        let (mut writer, sender) = new_writer(512);
        producer(sender, None);
        let mut batch = vec![entry()];
        writer.gather(&mut batch).await;
        assert_eq!(batch.len(), 1 + GATHER_ROUNDS);

        let (mut writer, sender) = new_writer(3);
        for _ in 0..10 {
            sender.try_send(entry()).unwrap();
        }
        let mut batch = vec![entry()];
        writer.gather(&mut batch).await;
        assert_eq!(batch.len(), 3);
    }
}
