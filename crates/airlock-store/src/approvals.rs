//! [`ApprovalStore`] for [`SqliteStore`]: one row per approval in table
//! `approvals`, each change one `BEGIN IMMEDIATE` transaction that reads the
//! row, applies the [`rules`] and writes it back.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use airlock_approval::{
    ApprovalError, ApprovalId, ApprovalRequest, ApprovalState, ApprovalStore, Execution,
    Fingerprint, Grant, SealedRequest, rules,
};
use airlock_core::{BoxFuture, Principal};
use rusqlite::{Connection, OptionalExtension, Params, Transaction, TransactionBehavior, params};
use tokio::sync::watch;

use crate::approval_row::{self, Row, millis, now, open_states, use_grant};
use crate::{SqliteStore, StoreError};

const SELECT: &str = "SELECT id, doc, sealed FROM approvals";

const INSERT: &str = "INSERT INTO approvals
    (id, state, wait, fingerprint, created_at, expires_at, grant_expires_at, doc, sealed)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
    ON CONFLICT (id) DO NOTHING";

const UPDATE: &str = "UPDATE approvals SET
    state = ?2, wait = ?3, fingerprint = ?4, created_at = ?5, expires_at = ?6,
    grant_expires_at = ?7, doc = ?8, sealed = ?9
    WHERE id = ?1";

impl ApprovalStore for SqliteStore {
    fn create(
        &self,
        request: ApprovalRequest,
        sealed: Option<SealedRequest>,
    ) -> BoxFuture<'_, Result<(), ApprovalError>> {
        let floor = self.min_free_bytes;
        Box::pin(self.db.call(move |connection, path| {
            guard_disk(path, floor)?;
            let id = request.id;
            let row = Row::new(request, sealed);
            match write(connection, path, INSERT, &row) {
                Ok(0) => Err(ApprovalError::AlreadyExists(id)),
                Ok(_) => Ok(()),
                Err(StoreError::Sqlite { source, .. })
                    if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) =>
                {
                    Err(no_space(path, floor))
                }
                Err(error) => Err(error.into()),
            }
        }))
    }

    fn get(&self, id: ApprovalId) -> BoxFuture<'_, Result<Option<ApprovalRequest>, ApprovalError>> {
        Box::pin(
            self.db.call(move |connection, path| {
                Ok(load(connection, path, id)?.map(|row| row.request))
            }),
        )
    }

    fn list(
        &self,
        state: Option<ApprovalState>,
    ) -> BoxFuture<'_, Result<Vec<ApprovalRequest>, ApprovalError>> {
        Box::pin(self.db.call(move |connection, path| {
            let rows = match state {
                Some(state) => select(
                    connection,
                    path,
                    "WHERE state = ?1 ORDER BY created_at, rowid",
                    [state.as_str()],
                )?,
                None => select(connection, path, "ORDER BY created_at, rowid", [])?,
            };
            Ok(rows.into_iter().map(|row| row.request).collect())
        }))
    }

    fn decide<'a>(
        &'a self,
        id: ApprovalId,
        approver: &'a Principal,
        approve: bool,
        comment: Option<String>,
    ) -> BoxFuture<'a, Result<ApprovalRequest, ApprovalError>> {
        let approver = approver.clone();
        self.change(id, move |row, now| {
            rules::decide(&mut row.request, &approver, approve, comment, now)
        })
    }

    fn consume_grant<'a>(
        &'a self,
        fingerprint: &'a Fingerprint,
    ) -> BoxFuture<'a, Result<Option<ApprovalId>, ApprovalError>> {
        let fingerprint = fingerprint.to_hex();
        let watchers = Arc::clone(&self.approval_watchers);
        Box::pin(self.db.call(move |connection, path| {
            let now = now();
            let transaction = begin(connection, path)?;
            // Narrowed by the index; the rule decides.
            let chosen = select(
                &transaction,
                path,
                "WHERE fingerprint = ?1 AND state = ?2",
                [fingerprint.as_str(), ApprovalState::Approved.as_str()],
            )?
            .into_iter()
            .filter(|row| rules::grant_usable_by_retry(&row.request, now))
            .min_by_key(|row| row.request.grant_expires_at);
            let Some(mut row) = chosen else {
                return Ok(None);
            };
            let grant = apply(&transaction, path, &mut row, |row| use_grant(row, now))?;
            transaction.commit().map_err(sqlite(path))?;
            watchers.publish(row.request.id, row.request.state);
            Ok(grant.map(|grant| grant.id))
        }))
    }

    fn consume(&self, id: ApprovalId) -> BoxFuture<'_, Result<Option<Grant>, ApprovalError>> {
        Box::pin(async move {
            let (grant, _) = self
                .changed(id, move |row, now| Ok(use_grant(row, now)))
                .await?;
            Ok(grant)
        })
    }

    fn record_execution(
        &self,
        id: ApprovalId,
        execution: Execution,
    ) -> BoxFuture<'_, Result<ApprovalRequest, ApprovalError>> {
        self.change(id, move |row, _| {
            row.request.execution = Some(execution);
            Ok(())
        })
    }

    fn mark(
        &self,
        id: ApprovalId,
        state: ApprovalState,
    ) -> BoxFuture<'_, Result<ApprovalRequest, ApprovalError>> {
        self.change(id, move |row, _| rules::mark(&mut row.request, state))
    }

    fn expire_due(&self) -> BoxFuture<'_, Result<Vec<ApprovalRequest>, ApprovalError>> {
        let watchers = Arc::clone(&self.approval_watchers);
        Box::pin(self.db.call(move |connection, path| {
            let now = now();
            let transaction = begin(connection, path)?;
            let mut expired = Vec::new();
            // Only a request that can still change can be due.
            for state in open_states() {
                let rows = select(
                    &transaction,
                    path,
                    "WHERE state = ?1 ORDER BY created_at, rowid",
                    [state.as_str()],
                )?;
                for mut row in rows {
                    if apply(&transaction, path, &mut row, |row| {
                        rules::expire_if_due(&mut row.request, now)
                    })? {
                        expired.push(row.request);
                    }
                }
            }
            transaction.commit().map_err(sqlite(path))?;
            for request in &expired {
                watchers.publish(request.id, request.state);
            }
            Ok(expired)
        }))
    }

    fn subscribe(
        &self,
        id: ApprovalId,
    ) -> BoxFuture<'_, Result<watch::Receiver<ApprovalState>, ApprovalError>> {
        let watchers = Arc::clone(&self.approval_watchers);
        // Read and registered under the connection's lock, which every
        // change of this handle holds until it has published: none is missed.
        Box::pin(self.db.call(move |connection, path| {
            let state: Option<String> = connection
                .prepare_cached("SELECT state FROM approvals WHERE id = ?1")
                .and_then(|mut statement| {
                    statement
                        .query_row([id.to_string()], |row| row.get(0))
                        .optional()
                })
                .map_err(sqlite(path))?;
            let state = state.ok_or(ApprovalError::NotFound(id))?;
            let state = state
                .parse()
                .map_err(|reason: String| corrupt(path, &id.to_string(), &reason))?;
            Ok(watchers.subscribe(id, state))
        }))
    }
}

impl SqliteStore {
    /// [`changed`](Self::changed), for the calls that answer with the request.
    fn change(
        &self,
        id: ApprovalId,
        change: impl FnOnce(&mut Row, SystemTime) -> Result<(), ApprovalError> + Send + 'static,
    ) -> BoxFuture<'_, Result<ApprovalRequest, ApprovalError>> {
        Box::pin(async move {
            let ((), request) = self.changed(id, change).await?;
            Ok(request)
        })
    }

    /// Runs `change` on approval `id` in one `BEGIN IMMEDIATE` transaction,
    /// writes the row back (also when `change` refused: deciding an expired
    /// request leaves it expired), commits, and tells this handle's waiters.
    async fn changed<T: Send + 'static>(
        &self,
        id: ApprovalId,
        change: impl FnOnce(&mut Row, SystemTime) -> Result<T, ApprovalError> + Send + 'static,
    ) -> Result<(T, ApprovalRequest), ApprovalError> {
        let watchers = Arc::clone(&self.approval_watchers);
        self.db
            .call(move |connection, path| {
                let now = now();
                let transaction = begin(connection, path)?;
                let mut row = load(&transaction, path, id)?.ok_or(ApprovalError::NotFound(id))?;
                let before = row.request.state;
                let result = apply(&transaction, path, &mut row, |row| change(row, now))?;
                transaction.commit().map_err(sqlite(path))?;
                if row.request.state != before {
                    watchers.publish(id, row.request.state);
                }
                Ok((result?, row.request))
            })
            .await
    }
}

/// Runs `change` on `row` ([`approval_row::apply`]) and writes it back if
/// anything changed.
fn apply<T>(
    transaction: &Transaction<'_>,
    path: &Path,
    row: &mut Row,
    change: impl FnOnce(&mut Row) -> T,
) -> Result<T, StoreError> {
    let (result, changed) = approval_row::apply(row, change);
    if changed {
        write(transaction, path, UPDATE, row)?;
    }
    Ok(result)
}

fn begin<'c>(connection: &'c mut Connection, path: &Path) -> Result<Transaction<'c>, StoreError> {
    connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite(path))
}

fn load(connection: &Connection, path: &Path, id: ApprovalId) -> Result<Option<Row>, StoreError> {
    let mut rows = select(connection, path, "WHERE id = ?1", [id.to_string()])?;
    Ok(rows.pop())
}

/// The rows `SELECT … {clause}` finds.
fn select(
    connection: &Connection,
    path: &Path,
    clause: &str,
    params: impl Params,
) -> Result<Vec<Row>, StoreError> {
    let mut statement = connection
        .prepare_cached(&format!("{SELECT} {clause}"))
        .map_err(sqlite(path))?;
    let raw = statement
        .query_map(params, |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<Vec<u8>>>(2)?,
            ))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(sqlite(path))?;
    raw.into_iter()
        .map(|(id, doc, sealed)| {
            let request = serde_json::from_str(&doc).map_err(|e| corrupt(path, &id, &e))?;
            Ok(Row { request, sealed })
        })
        .collect()
}

/// Runs `sql` (`INSERT` or `UPDATE`) with the row's columns, all taken from
/// the request, so the indexed ones always agree with `doc`.
/// The disk guard of `create`: refuses when the database's file system has
/// `floor` bytes free or fewer (a `floor` of 0 is off).
fn guard_disk(path: &Path, floor: u64) -> Result<(), ApprovalError> {
    if floor == 0 {
        return Ok(());
    }
    let free = crate::disk::free_bytes(path).map_err(|error| {
        ApprovalError::Store(format!(
            "cannot read the free space of {}: {error}",
            path.display()
        ))
    })?;
    if free <= floor {
        return Err(ApprovalError::NoSpace { free, floor });
    }
    Ok(())
}

/// `NoSpace` for a write SQLite refused with `SQLITE_FULL`.
fn no_space(path: &Path, floor: u64) -> ApprovalError {
    let free = crate::disk::free_bytes(path).unwrap_or(0);
    ApprovalError::NoSpace { free, floor }
}

fn write(connection: &Connection, path: &Path, sql: &str, row: &Row) -> Result<usize, StoreError> {
    let request = &row.request;
    let id = request.id.to_string();
    let doc = serde_json::to_string(request).map_err(|e| corrupt(path, &id, &e))?;
    let wait = row
        .wait_name()
        .ok_or_else(|| corrupt(path, &id, &"its wait mode has no name"))?;
    connection
        .prepare_cached(sql)
        .and_then(|mut statement| {
            statement.execute(params![
                id,
                request.state.as_str(),
                wait,
                request.fingerprint.to_hex(),
                millis(request.created_at),
                millis(request.expires_at),
                request.grant_expires_at.map(millis),
                doc,
                row.sealed,
            ])
        })
        .map_err(sqlite(path))
}

pub(crate) fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, id: &str, reason: &dyn std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        id: id.to_owned(),
        reason: reason.to_string(),
    }
}
