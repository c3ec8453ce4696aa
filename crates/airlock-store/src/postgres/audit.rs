//! The audit trail in PostgreSQL: one hash chain per replica.
//!
//! Several replicas share the database, and a hash chain has one writer:
//! each replica appends to its own chain (column `chain`, the replica id,
//! which the recorder also writes into each event, under the hash), so
//! appends never wait for another replica and each chain verifies on its
//! own. A replica started with the id of one that is still running cannot
//! fork its chain: appends of one chain are serialized by an advisory lock,
//! and a batch that does not continue the stored head is refused. Readers
//! (sessions, exports, the replay page) merge the chains by time.

use std::path::Path;
use std::time::SystemTime;

use airlock_core::BoxFuture;
use airlock_recorder::{AuditSink, ChainHead, ChainedEvent, SinkError};
use aws_lc_rs::signature::Ed25519KeyPair;
use deadpool_postgres::GenericClient;
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use crate::StoreError;
use crate::approval_row::{from_millis, millis};
use crate::audit::{
    AuditVerification, Checkpoint, CheckpointKind, EventPages, PAGE, SessionSummary, StoredEvent,
    TrustedCheckpoints, Walk, check_links,
};

/// The columns [`stored_event`] reads, in its order.
const EVENT_COLUMNS: &str =
    "seq, id, time_ms, session_id, principal_id, request_id, status, prev_hash, hash, doc";

/// One chain's verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainVerification {
    /// The chain: the id of the replica that wrote it.
    pub chain: String,
    /// What its walk found.
    pub report: AuditVerification,
}

impl AuditSink for PostgresStore {
    /// Stores the batch on this replica's chain in one transaction, or
    /// refuses it (nothing stored) when it does not continue the chain.
    fn append<'a>(&'a self, events: &'a [ChainedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(());
            }
            let rows = events
                .iter()
                .map(|chained| StoredEvent::new(chained, self.label()))
                .collect::<Result<Vec<_>, _>>()?;
            self.append_rows(&rows).await.map_err(SinkError::from)
        })
    }

    /// The last event of this replica's chain; after pruning emptied it,
    /// the last event pruned; [`ChainHead::default`] for a new chain.
    fn head(&self) -> BoxFuture<'_, Result<Option<ChainHead>, SinkError>> {
        Box::pin(async move {
            let client = self.client().await?;
            Ok(Some(self.chain_head(&client, &self.chain).await?))
        })
    }

    /// Ready when the database answers.
    fn ready(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let client = self.client().await?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| self.failed(e))?;
            Ok(())
        })
    }
}

impl PostgresStore {
    /// The database's label as a path, for the errors shared with SQLite.
    fn label(&self) -> &Path {
        Path::new(&*self.database)
    }

    async fn append_rows(&self, rows: &[StoredEvent]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(|e| self.failed(e))?;
        // One writer per chain at a time, whatever the process.
        transaction
            .execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                &[&format!("airlock-audit/{}", self.chain)],
            )
            .await
            .map_err(|e| self.failed(e))?;
        let head = self.chain_head(&transaction, &self.chain).await?;
        check_links(self.label(), &head, rows)?;
        let column = |f: fn(&StoredEvent) -> String| rows.iter().map(f).collect::<Vec<_>>();
        let seqs: Vec<i64> = rows.iter().map(|row| seq_param(row.seq)).collect();
        let times: Vec<i64> = rows.iter().map(|row| row.time_ms).collect();
        let statuses: Vec<i32> = rows
            .iter()
            .map(|row| i32::try_from(row.status).unwrap_or(0))
            .collect();
        let principals: Vec<Option<String>> =
            rows.iter().map(|row| row.principal_id.clone()).collect();
        let requests: Vec<Option<String>> = rows.iter().map(|row| row.request_id.clone()).collect();
        let statement = transaction
            .prepare_cached(
                "INSERT INTO audit_events (chain, seq, id, time_ms, session_id, principal_id,
                     request_id, status, prev_hash, hash, doc)
                 SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::bigint[], $5::text[],
                     $6::text[], $7::text[], $8::integer[], $9::text[], $10::text[], $11::text[])",
            )
            .await
            .map_err(|e| self.failed(e))?;
        transaction
            .execute(
                &statement,
                &[
                    &&*self.chain,
                    &seqs,
                    &column(|row| row.id.clone()),
                    &times,
                    &column(|row| row.session_id.clone()),
                    &principals,
                    &requests,
                    &statuses,
                    &column(|row| row.prev_hash.clone()),
                    &column(|row| row.hash.clone()),
                    &column(|row| row.doc.clone()),
                ],
            )
            .await
            .map_err(|e| self.failed(e))?;
        transaction.commit().await.map_err(|e| self.failed(e))
    }

    /// A read-only transaction that sees one snapshot of the database.
    async fn snapshot<'c>(
        &self,
        client: &'c mut deadpool_postgres::Object,
    ) -> Result<deadpool_postgres::Transaction<'c>, StoreError> {
        client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| self.failed(e))
    }

    /// The last event of `chain`, else its last pruned event, else genesis.
    async fn chain_head(
        &self,
        client: &impl GenericClient,
        chain: &str,
    ) -> Result<ChainHead, StoreError> {
        let last = client
            .query_opt(
                "SELECT seq, hash FROM audit_events WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
                &[&chain],
            )
            .await
            .map_err(|e| self.failed(e))?;
        match last {
            Some(row) => Ok(head_of(&row)),
            None => Ok(self.latest_pruned(client, chain).await?.unwrap_or_default()),
        }
    }

    async fn latest_pruned(
        &self,
        client: &impl GenericClient,
        chain: &str,
    ) -> Result<Option<ChainHead>, StoreError> {
        let row = client
            .query_opt(
                "SELECT seq, hash FROM audit_checkpoints WHERE chain = $1 AND kind = 'pruned'
                 ORDER BY seq DESC LIMIT 1",
                &[&chain],
            )
            .await
            .map_err(|e| self.failed(e))?;
        Ok(row.as_ref().map(head_of))
    }

    /// The chains stored (events or checkpoints), by name.
    async fn chains(&self, client: &impl GenericClient) -> Result<Vec<String>, StoreError> {
        let rows = client
            .query(
                "SELECT chain FROM audit_events GROUP BY chain
                 UNION SELECT chain FROM audit_checkpoints ORDER BY 1",
                &[],
            )
            .await
            .map_err(|e| self.failed(e))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// The `limit` sessions with the most recent activity, newest first,
    /// across every replica's chain.
    ///
    /// # Errors
    ///
    /// The database is unavailable or failed.
    pub async fn sessions(&self, limit: usize) -> Result<Vec<SessionSummary>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT session_id, MIN(time_ms), MAX(time_ms), COUNT(*),
                     SUM(CASE WHEN doc::jsonb->>'decision' = 'deny'
                         OR (status = 403 AND doc::jsonb->>'errorCode' IS NOT NULL)
                         THEN 1 ELSE 0 END)
                 FROM audit_events GROUP BY session_id
                 ORDER BY MAX(time_ms) DESC, session_id LIMIT $1",
                &[&limit],
            )
            .await
            .map_err(|e| self.failed(e))?;
        let mut sessions = Vec::with_capacity(rows.len());
        for row in rows {
            let session_id: String = row.get(0);
            let principal = client
                .query_opt(
                    "SELECT principal_id, doc::jsonb->'principal'->>'displayName'
                     FROM audit_events WHERE session_id = $1 AND principal_id IS NOT NULL
                     ORDER BY time_ms, chain, seq LIMIT 1",
                    &[&session_id],
                )
                .await
                .map_err(|e| self.failed(e))?;
            let approvals = client
                .query(
                    "SELECT doc::jsonb->>'approvalId' AS approval FROM audit_events
                     WHERE session_id = $1 AND doc::jsonb->>'approvalId' IS NOT NULL
                     GROUP BY approval ORDER BY MIN(time_ms), approval",
                    &[&session_id],
                )
                .await
                .map_err(|e| self.failed(e))?;
            let count = |index| u64::try_from(row.get::<_, i64>(index)).unwrap_or(0);
            sessions.push(SessionSummary {
                principal_id: principal.as_ref().map(|p| p.get(0)),
                principal_name: principal.as_ref().and_then(|p| p.get(1)),
                first_time: from_millis(row.get(1)),
                last_time: from_millis(row.get(2)),
                events: count(3),
                denied: count(4),
                approvals: approvals.iter().map(|a| a.get(0)).collect(),
                session_id,
            });
        }
        Ok(sessions)
    }

    /// Every event of session `id`, by time (a session's requests may have
    /// reached several replicas); empty if there is no such session.
    ///
    /// # Errors
    ///
    /// The database is unavailable or failed, or an event does not read.
    pub async fn session_events(&self, id: &str) -> Result<Vec<ChainedEvent>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE session_id = $1 ORDER BY time_ms, chain, seq"),
                &[&id],
            )
            .await
            .map_err(|e| self.failed(e))?;
        rows.iter()
            .map(|row| stored_event(row).chained(self.label()))
            .collect()
    }

    /// Every event whose request arrived at or after `since`, chain by
    /// chain, each in chain order, in pages of a thousand, from one
    /// snapshot (see [`EventPages`]).
    pub fn events_since(&self, since: SystemTime) -> EventPages {
        let (sender, pages) = mpsc::channel(1);
        let store = self.clone();
        let reader = tokio::spawn(async move {
            if let Err(error) = store.send_pages(millis(since), &sender).await {
                // The receiver may be gone: then nobody is waiting for it.
                let _ = sender.send(Err(error)).await;
            }
        });
        EventPages::new(pages, reader, self.label().to_path_buf())
    }

    async fn send_pages(
        &self,
        since_ms: i64,
        sender: &mpsc::Sender<Result<Vec<ChainedEvent>, StoreError>>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let snapshot = self.snapshot(&mut client).await?;
        let statement = snapshot
            .prepare(&format!(
                "SELECT {EVENT_COLUMNS}, chain FROM audit_events WHERE time_ms >= $1 AND (chain, seq) > ($2, $3)
                 ORDER BY chain, seq LIMIT {PAGE}"
            ))
            .await
            .map_err(|e| self.failed(e))?;
        let mut after = (String::new(), 0_i64);
        loop {
            let rows = snapshot
                .query(&statement, &[&since_ms, &after.0, &after.1])
                .await
                .map_err(|e| self.failed(e))?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = (last.get(10), last.get(0));
            let full = rows.len() == PAGE as usize;
            let page = rows
                .iter()
                .map(|row| stored_event(row).chained(self.label()))
                .collect::<Result<Vec<_>, _>>()?;
            if sender.send(Ok(page)).await.is_err() || !full {
                return Ok(());
            }
        }
    }

    /// Verifies every chain against the checkpoints stored with it.
    ///
    /// # Errors
    ///
    /// The database is unavailable or failed.
    pub async fn verify(&self) -> Result<Vec<ChainVerification>, StoreError> {
        self.verify_against(&TrustedCheckpoints::default()).await
    }

    /// Walks every chain in order, in pages, from one snapshot: each event
    /// must continue its chain and agree with its indexed columns; every
    /// signed checkpoint stored, and every one in `trusted`, must lie on
    /// its chain and carry a valid signature. `trusted.public_key` applies
    /// to every chain; `trusted.checkpoints` (anchors hold no chain name) to
    /// every chain, so they suit a database with one.
    ///
    /// # Errors
    ///
    /// The database is unavailable or failed.
    pub async fn verify_against(
        &self,
        trusted: &TrustedCheckpoints,
    ) -> Result<Vec<ChainVerification>, StoreError> {
        let mut client = self.client().await?;
        let snapshot = self.snapshot(&mut client).await?;
        let mut reports = Vec::new();
        for chain in self.chains(&snapshot).await? {
            let start = self
                .latest_pruned(&snapshot, &chain)
                .await?
                .unwrap_or_default();
            let stored = self.stored_checkpoints(&snapshot, Some(&chain)).await?;
            let mut walk = Walk::begin(&start, stored, trusted);
            while walk.wants_more() {
                let rows = snapshot
                    .query(
                        &format!(
                            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT {PAGE}"
                        ),
                        &[&chain, &seq_param(walk.head())],
                    )
                    .await
                    .map_err(|e| self.failed(e))?;
                walk.page(rows.iter().map(|row| stored_event(row).into()).collect());
            }
            reports.push(ChainVerification {
                chain,
                report: walk.finish(),
            });
        }
        Ok(reports)
    }

    /// Signs the head of every chain with `signing_key` and stores the
    /// checkpoints (see [`SqliteStore::checkpoint`](crate::SqliteStore::checkpoint)).
    ///
    /// # Errors
    ///
    /// The database is unavailable or failed.
    pub async fn checkpoint(
        &self,
        signing_key: &Ed25519KeyPair,
    ) -> Result<Vec<(String, Checkpoint)>, StoreError> {
        let client = self.client().await?;
        let mut made = Vec::new();
        for chain in self.chains(&client).await? {
            let head = self.chain_head(&client, &chain).await?;
            // Signed here, stored after: a chain only grows at its end, so
            // the head stays on it.
            let checkpoint = Checkpoint::signed(head, signing_key);
            client
                .execute(
                    "INSERT INTO audit_checkpoints
                         (chain, seq, hash, created_ms, kind, signature, public_key)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &chain,
                        &seq_param(checkpoint.seq),
                        &checkpoint.hash,
                        &millis(checkpoint.created),
                        &checkpoint.kind.as_str(),
                        &checkpoint.signature,
                        &checkpoint.public_key,
                    ],
                )
                .await
                .map_err(|e| self.failed(e))?;
            made.push((chain, checkpoint));
        }
        Ok(made)
    }

    /// The checkpoints stored for `chain` (every chain's, when `None`), in
    /// chain order.
    ///
    /// # Errors
    ///
    /// The database is unavailable or failed.
    pub async fn checkpoints(&self, chain: Option<&str>) -> Result<Vec<Checkpoint>, StoreError> {
        let client = self.client().await?;
        self.stored_checkpoints(&client, chain).await
    }

    async fn stored_checkpoints(
        &self,
        client: &impl GenericClient,
        chain: Option<&str>,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        let params: [&(dyn ToSql + Sync); 1] = [&chain];
        let rows = client
            .query(
                "SELECT seq, hash, created_ms, kind, signature, public_key FROM audit_checkpoints
                 WHERE $1::text IS NULL OR chain = $1 ORDER BY chain, seq, position",
                &params,
            )
            .await
            .map_err(|e| self.failed(e))?;
        Ok(rows
            .iter()
            .map(|row| Checkpoint {
                seq: row.get::<_, i64>(0).unsigned_abs(),
                hash: row.get(1),
                created: from_millis(row.get(2)),
                kind: CheckpointKind::from_stored(row.get(3)),
                signature: row.get(4),
                public_key: row.get(5),
            })
            .collect())
    }
}

/// A position as a parameter (positions are at most `i64::MAX`: `check_links`
/// and the table's check refuse others).
fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn head_of(row: &tokio_postgres::Row) -> ChainHead {
    ChainHead {
        seq: row.get::<_, i64>(0).unsigned_abs(),
        hash: row.get(1),
    }
}

/// A row of [`EVENT_COLUMNS`].
fn stored_event(row: &tokio_postgres::Row) -> StoredEvent {
    StoredEvent {
        seq: row.get::<_, i64>(0).unsigned_abs(),
        id: row.get(1),
        time_ms: row.get(2),
        session_id: row.get(3),
        principal_id: row.get(4),
        request_id: row.get(5),
        status: i64::from(row.get::<_, i32>(6)),
        prev_hash: row.get(7),
        hash: row.get(8),
        doc: row.get(9),
    }
}
