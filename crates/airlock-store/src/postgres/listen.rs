//! Other replicas' approval changes: `LISTEN airlock_approvals` on a
//! connection of its own, each notification (`"{id} {state} {replica}"`)
//! handed to the waiters, and those another replica made to [`Changes`]
//! (what the approval pages follow). While that connection is down, the
//! waiters' approvals are polled every [`POLL_INTERVAL`] until it is back (and once more when it
//! is, for what changed in between), so a held request is still released
//! within about half a second.

use std::sync::Arc;
use std::time::Duration;

use airlock_approval::{ApprovalId, ApprovalState, StateWatchers};
use deadpool_postgres::Pool;
use futures_util::StreamExt as _;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The channel approval changes are announced on.
pub(crate) const CHANNEL: &str = "airlock_approvals";

/// How often waiters' approvals are polled while notifications are down.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How long to wait between attempts to get the connection back.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// An approval that another replica created or changed, and its state now.
pub(crate) type Change = (ApprovalId, ApprovalState);

/// Where other replicas' changes are announced in this process.
pub(crate) type Changes = broadcast::Sender<Change>;

/// How many changes a slow follower may fall behind.
pub(crate) const CHANGES_CAPACITY: usize = 256;

/// The listening task; stopped when dropped.
pub(super) struct Listener {
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the task needs.
struct Context {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    pool: Pool,
    watchers: Arc<StateWatchers>,
    database: Arc<str>,
    /// This replica's id: its own notices are not [`Changes`].
    replica: Arc<str>,
    changes: Changes,
}

impl Listener {
    pub(super) fn start(
        config: tokio_postgres::Config,
        tls: MakeRustlsConnect,
        pool: Pool,
        watchers: Arc<StateWatchers>,
        database: Arc<str>,
        replica: Arc<str>,
        changes: Changes,
    ) -> Self {
        let context = Context {
            config,
            tls,
            pool,
            watchers,
            database,
            replica,
            changes,
        };
        Self {
            task: tokio::spawn(run(context)),
        }
    }
}

async fn run(context: Context) {
    let mut polling = false;
    loop {
        // Connect (retrying), polling meanwhile if notifications were lost.
        let (client, mut notifications) = {
            let connecting = connect(&context);
            tokio::pin!(connecting);
            loop {
                tokio::select! {
                    connected = &mut connecting => break connected,
                    () = tokio::time::sleep(POLL_INTERVAL), if polling => poll(&context).await,
                }
            }
        };
        if polling {
            tracing::info!(
                database = %context.database,
                "approval notifications are back"
            );
        }
        // What changed while nobody listened.
        poll(&context).await;
        while let Some(payload) = notifications.recv().await {
            handle(&context, &payload);
        }
        drop(client);
        tracing::warn!(
            database = %context.database,
            "the approval notification connection to the database was lost: polling the \
             approvals requests wait on every 500 ms until it is back"
        );
        polling = true;
    }
}

/// A listening connection, retried every [`RECONNECT_DELAY`] until one works.
async fn connect(context: &Context) -> (tokio_postgres::Client, mpsc::UnboundedReceiver<String>) {
    let mut logged = false;
    loop {
        match listen(context).await {
            Ok(connected) => return connected,
            Err(error) => {
                if !logged {
                    tracing::warn!(
                        database = %context.database,
                        %error,
                        "cannot listen for approval changes; retrying every second"
                    );
                    logged = true;
                }
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        }
    }
}

/// Connects, drives the connection on a task of its own (which forwards
/// notifications and ends with the connection), and `LISTEN`s.
async fn listen(
    context: &Context,
) -> Result<(tokio_postgres::Client, mpsc::UnboundedReceiver<String>), tokio_postgres::Error> {
    let (client, mut connection) = context.config.connect(context.tls.clone()).await?;
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(notification)) => {
                    if sender.send(notification.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%error, "approval notification connection failed");
                    break;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok((client, receiver))
}

/// Tells the waiters of one notification's approval and, when another
/// replica made the change, the followers of [`Changes`].
fn handle(context: &Context, payload: &str) {
    let mut parts = payload.splitn(3, ' ');
    let parsed = (|| {
        Some((
            parts.next()?.parse::<ApprovalId>().ok()?,
            parts.next()?.parse::<ApprovalState>().ok()?,
            // Absent from an older replica's notices: someone else's.
            parts.next().unwrap_or_default(),
        ))
    })();
    match parsed {
        Some((id, state, replica)) => {
            context.watchers.publish(id, state);
            if replica != &*context.replica {
                // Nobody following is fine.
                let _ = context.changes.send((id, state));
            }
        }
        None => tracing::warn!(payload, "an approval notification that does not read"),
    }
}

/// Reads the states of the approvals somebody waits on, and tells the
/// waiters of those that changed. A failure (the database is down) is
/// tried again at the next poll.
async fn poll(context: &Context) {
    let watched = context.watchers.watched();
    if watched.is_empty() {
        return;
    }
    let ids: Vec<String> = watched.iter().map(|(id, _)| id.to_string()).collect();
    let rows = match context.pool.get().await {
        Ok(client) => {
            client
                .query(
                    "SELECT id, state FROM approvals WHERE id = ANY($1)",
                    &[&ids],
                )
                .await
        }
        Err(error) => {
            tracing::debug!(%error, "cannot poll approval states");
            return;
        }
    };
    let Ok(rows) = rows else {
        return;
    };
    for row in rows {
        let id: String = row.get(0);
        let state: String = row.get(1);
        handle_changed(&context.watchers, &watched, &id, &state);
    }
}

/// Publishes `state` for `id` if it differs from what its waiters saw.
fn handle_changed(
    watchers: &StateWatchers,
    watched: &[(ApprovalId, ApprovalState)],
    id: &str,
    state: &str,
) {
    let (Ok(id), Ok(state)) = (id.parse::<ApprovalId>(), state.parse::<ApprovalState>()) else {
        return;
    };
    if watched.iter().any(|&(w, seen)| w == id && seen != state) {
        watchers.publish(id, state);
    }
}
