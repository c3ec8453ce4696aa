//! [`ApprovalStore`] for [`PostgresStore`]: table `approvals`, each change
//! one transaction that locks the row, applies the [`rules`], writes it back
//! and notifies the other replicas on commit.

use std::time::SystemTime;

use airlock_approval::{
    ApprovalError, ApprovalId, ApprovalRequest, ApprovalState, ApprovalStore, Execution,
    Fingerprint, Grant, SealedRequest, rules,
};
use airlock_core::{BoxFuture, Principal};
use deadpool_postgres::GenericClient;
use tokio::sync::watch;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use super::listen::CHANNEL;
use crate::StoreError;
use crate::approval_row::{self, Row, millis, now, open_states, use_grant};

const SELECT: &str = "SELECT id, doc, sealed FROM approvals";

const INSERT: &str = "INSERT INTO approvals
    (id, state, wait, fingerprint, created_at, expires_at, grant_expires_at, doc, sealed)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (id) DO NOTHING";

const UPDATE: &str = "UPDATE approvals SET
    state = $2, wait = $3, fingerprint = $4, created_at = $5, expires_at = $6,
    grant_expires_at = $7, doc = $8, sealed = $9
    WHERE id = $1";

impl ApprovalStore for PostgresStore {
    fn create(
        &self,
        request: ApprovalRequest,
        sealed: Option<SealedRequest>,
    ) -> BoxFuture<'_, Result<(), ApprovalError>> {
        Box::pin(async move {
            let id = request.id;
            let row = Row::new(request, sealed);
            let client = self.client().await?;
            match self.write(&client, INSERT, &row).await? {
                0 => Err(ApprovalError::AlreadyExists(id)),
                _ => {
                    // For other replicas' approval pages; nobody waits on a
                    // new approval, so a lost notice costs only a reload.
                    let payload = self.notice(id, ApprovalState::Pending);
                    if let Err(error) = client
                        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                        .await
                    {
                        tracing::debug!(%error, "cannot announce a new approval");
                    }
                    Ok(())
                }
            }
        })
    }

    fn get(&self, id: ApprovalId) -> BoxFuture<'_, Result<Option<ApprovalRequest>, ApprovalError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let mut rows = self
                .select(&client, "WHERE id = $1", &[&id.to_string()])
                .await?;
            Ok(rows.pop().map(|row| row.request))
        })
    }

    fn list(
        &self,
        state: Option<ApprovalState>,
    ) -> BoxFuture<'_, Result<Vec<ApprovalRequest>, ApprovalError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let rows = match state {
                Some(state) => {
                    self.select(
                        &client,
                        "WHERE state = $1 ORDER BY created_at, position",
                        &[&state.as_str()],
                    )
                    .await?
                }
                None => {
                    self.select(&client, "ORDER BY created_at, position", &[])
                        .await?
                }
            };
            Ok(rows.into_iter().map(|row| row.request).collect())
        })
    }

    fn decide<'a>(
        &'a self,
        id: ApprovalId,
        approver: &'a Principal,
        approve: bool,
        comment: Option<String>,
    ) -> BoxFuture<'a, Result<ApprovalRequest, ApprovalError>> {
        Box::pin(async move {
            let ((), request) = self
                .changed(id, |row, now| {
                    rules::decide(&mut row.request, approver, approve, comment, now)
                })
                .await?;
            Ok(request)
        })
    }

    fn consume_grant<'a>(
        &'a self,
        fingerprint: &'a Fingerprint,
    ) -> BoxFuture<'a, Result<Option<ApprovalId>, ApprovalError>> {
        Box::pin(async move {
            let now = now();
            let mut client = self.client().await?;
            let transaction = client.transaction().await.map_err(|e| self.failed(e))?;
            // Locked: a concurrent call waits, then no longer finds the row
            // approved (PostgreSQL re-checks the condition on the new version).
            let chosen = self
                .select(
                    &transaction,
                    "WHERE fingerprint = $1 AND state = $2 FOR UPDATE",
                    &[&fingerprint.to_hex(), &ApprovalState::Approved.as_str()],
                )
                .await?
                .into_iter()
                .filter(|row| rules::grant_usable_by_retry(&row.request, now))
                .min_by_key(|row| row.request.grant_expires_at);
            let Some(mut row) = chosen else {
                return Ok(None);
            };
            let grant = self
                .apply(&transaction, &mut row, |row| use_grant(row, now))
                .await?;
            transaction.commit().await.map_err(|e| self.failed(e))?;
            self.watchers.publish(row.request.id, row.request.state);
            Ok(grant.map(|grant| grant.id))
        })
    }

    fn consume(&self, id: ApprovalId) -> BoxFuture<'_, Result<Option<Grant>, ApprovalError>> {
        Box::pin(async move {
            let (grant, _) = self.changed(id, |row, now| Ok(use_grant(row, now))).await?;
            Ok(grant)
        })
    }

    fn record_execution(
        &self,
        id: ApprovalId,
        execution: Execution,
    ) -> BoxFuture<'_, Result<ApprovalRequest, ApprovalError>> {
        Box::pin(async move {
            let ((), request) = self
                .changed(id, |row, _| {
                    row.request.execution = Some(execution);
                    Ok(())
                })
                .await?;
            Ok(request)
        })
    }

    fn mark(
        &self,
        id: ApprovalId,
        state: ApprovalState,
    ) -> BoxFuture<'_, Result<ApprovalRequest, ApprovalError>> {
        Box::pin(async move {
            let ((), request) = self
                .changed(id, |row, _| rules::mark(&mut row.request, state))
                .await?;
            Ok(request)
        })
    }

    fn expire_due(&self) -> BoxFuture<'_, Result<Vec<ApprovalRequest>, ApprovalError>> {
        Box::pin(async move {
            let now = now();
            let mut client = self.client().await?;
            let transaction = client.transaction().await.map_err(|e| self.failed(e))?;
            let open: Vec<&str> = open_states().map(ApprovalState::as_str).collect();
            let rows = self
                .select(
                    &transaction,
                    "WHERE state = ANY($1) ORDER BY created_at, position FOR UPDATE",
                    &[&open],
                )
                .await?;
            let mut expired = Vec::new();
            for mut row in rows {
                if self
                    .apply(&transaction, &mut row, |row| {
                        rules::expire_if_due(&mut row.request, now)
                    })
                    .await?
                {
                    expired.push(row.request);
                }
            }
            transaction.commit().await.map_err(|e| self.failed(e))?;
            for request in &expired {
                self.watchers.publish(request.id, request.state);
            }
            Ok(expired)
        })
    }

    fn subscribe(
        &self,
        id: ApprovalId,
    ) -> BoxFuture<'_, Result<watch::Receiver<ApprovalState>, ApprovalError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let state = self
                .state_of(&client, id)
                .await?
                .ok_or(ApprovalError::NotFound(id))?;
            let receiver = self.watchers.subscribe(id, state);
            // A change committed between the read and the registration was
            // announced to nobody: read again now that the channel exists.
            if let Some(now) = self.state_of(&client, id).await?
                && now != state
            {
                self.watchers.publish(id, now);
            }
            Ok(receiver)
        })
    }
}

impl PostgresStore {
    /// Runs `change` on approval `id` in one transaction holding its row
    /// lock, writes the row back (also when `change` refused: deciding an
    /// expired request leaves it expired), commits, and tells the waiters.
    async fn changed<T>(
        &self,
        id: ApprovalId,
        change: impl FnOnce(&mut Row, SystemTime) -> Result<T, ApprovalError>,
    ) -> Result<(T, ApprovalRequest), ApprovalError> {
        let now = now();
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(|e| self.failed(e))?;
        let mut row = self
            .select(&transaction, "WHERE id = $1 FOR UPDATE", &[&id.to_string()])
            .await?
            .pop()
            .ok_or(ApprovalError::NotFound(id))?;
        let before = row.request.state;
        let result = self
            .apply(&transaction, &mut row, |row| change(row, now))
            .await?;
        transaction.commit().await.map_err(|e| self.failed(e))?;
        if row.request.state != before {
            self.watchers.publish(id, row.request.state);
        }
        Ok((result?, row.request))
    }

    /// Runs `change` ([`approval_row::apply`]) and, if the row changed,
    /// writes it and queues the notification (sent when the transaction commits).
    async fn apply<T>(
        &self,
        transaction: &deadpool_postgres::Transaction<'_>,
        row: &mut Row,
        change: impl FnOnce(&mut Row) -> T,
    ) -> Result<T, StoreError> {
        let before = row.request.state;
        let (result, changed) = approval_row::apply(row, change);
        if changed {
            self.write(transaction, UPDATE, row).await?;
        }
        if row.request.state != before {
            let payload = self.notice(row.request.id, row.request.state);
            transaction
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                .await
                .map_err(|e| self.failed(e))?;
        }
        Ok(result)
    }

    /// What is announced on [`CHANNEL`] when `id` becomes `state` here:
    /// `"{id} {state} {replica}"`.
    fn notice(&self, id: ApprovalId, state: ApprovalState) -> String {
        format!("{id} {} {}", state.as_str(), self.replica())
    }

    /// The rows `SELECT … {clause}` finds.
    async fn select(
        &self,
        client: &impl GenericClient,
        clause: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = client
            .prepare_cached(&format!("{SELECT} {clause}"))
            .await
            .map_err(|e| self.failed(e))?;
        let rows = client
            .query(&statement, params)
            .await
            .map_err(|e| self.failed(e))?;
        rows.into_iter()
            .map(|row| {
                let id: String = row.get(0);
                let doc: String = row.get(1);
                let request = serde_json::from_str(&doc).map_err(|e| self.corrupt(&id, &e))?;
                Ok(Row {
                    request,
                    sealed: row.get(2),
                })
            })
            .collect()
    }

    /// The state column of approval `id`.
    async fn state_of(
        &self,
        client: &impl GenericClient,
        id: ApprovalId,
    ) -> Result<Option<ApprovalState>, StoreError> {
        let row = client
            .query_opt(
                "SELECT state FROM approvals WHERE id = $1",
                &[&id.to_string()],
            )
            .await
            .map_err(|e| self.failed(e))?;
        row.map(|row| {
            let state: String = row.get(0);
            state
                .parse()
                .map_err(|reason: String| self.corrupt(&id.to_string(), &reason))
        })
        .transpose()
    }

    /// Runs `sql` (`INSERT` or `UPDATE`) with the row's columns, all taken
    /// from the request, so the indexed ones always agree with `doc`.
    async fn write(
        &self,
        client: &impl GenericClient,
        sql: &str,
        row: &Row,
    ) -> Result<u64, StoreError> {
        let request = &row.request;
        let id = request.id.to_string();
        let doc = serde_json::to_string(request).map_err(|e| self.corrupt(&id, &e))?;
        let wait = row
            .wait_name()
            .ok_or_else(|| self.corrupt(&id, &"its wait mode has no name"))?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.failed(e))?;
        client
            .execute(
                &statement,
                &[
                    &id,
                    &request.state.as_str(),
                    &wait,
                    &request.fingerprint.to_hex(),
                    &millis(request.created_at),
                    &millis(request.expires_at),
                    &request.grant_expires_at.map(millis),
                    &doc,
                    &row.sealed,
                ],
            )
            .await
            .map_err(|e| self.failed(e))
    }

    fn corrupt(&self, id: &str, reason: &dyn std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            path: (*self.database).into(),
            id: id.to_owned(),
            reason: reason.to_string(),
        }
    }
}
