//! [`QuotaStore`] for [`SqliteStore`]: one row per use in table
//! `quota_uses`; each take is one `BEGIN IMMEDIATE` transaction, so
//! processes sharing the file never overshoot a limit together.

use std::path::Path;
use std::time::{Duration, SystemTime};

use airlock_core::BoxFuture;
use airlock_policy::{QuotaError, QuotaKey, QuotaStore, Take, Taken, Usage, granted};
use rusqlite::{Connection, TransactionBehavior, params};

use crate::approval_row::millis;
use crate::approvals::sqlite;
use crate::{SqliteStore, StoreError};

impl QuotaStore for SqliteStore {
    fn take<'a>(&'a self, take: Take<'a>) -> BoxFuture<'a, Result<Taken, QuotaError>> {
        let key = take.key.clone();
        let (amount, limit, window, now) = (take.amount, take.limit, take.window, take.now);
        Box::pin(async move {
            let taken = self
                .db
                .call(move |connection, path| {
                    let transaction = connection
                        .transaction_with_behavior(TransactionBehavior::Immediate)
                        .map_err(sqlite(path))?;
                    let (used, oldest) = within(&transaction, path, &key, window, now)?;
                    let granted = granted(used, amount, limit);
                    let usage = if granted && amount > 0 {
                        insert(&transaction, path, &key, amount, now)?;
                        Usage {
                            subject: key.subject.clone(),
                            used: used.saturating_add(amount),
                            oldest: oldest.or(Some(now)),
                        }
                    } else {
                        Usage {
                            subject: key.subject.clone(),
                            used,
                            oldest,
                        }
                    };
                    transaction.commit().map_err(sqlite(path))?;
                    Ok::<_, StoreError>(Taken { granted, usage })
                })
                .await?;
            Ok(taken)
        })
    }

    fn add<'a>(
        &'a self,
        key: &'a QuotaKey,
        amount: u64,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<(), QuotaError>> {
        let key = key.clone();
        Box::pin(async move {
            self.db
                .call(move |connection, path| insert(connection, path, &key, amount, now))
                .await?;
            Ok(())
        })
    }

    fn give_back<'a>(
        &'a self,
        key: &'a QuotaKey,
        amount: u64,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<(), QuotaError>> {
        let key = key.clone();
        Box::pin(async move {
            self.db
                .call(move |connection, path| {
                    connection
                        .execute(
                            "DELETE FROM quota_uses WHERE rowid = (SELECT rowid FROM quota_uses
                             WHERE quota = ?1 AND subject = ?2 AND at_ms = ?3 AND amount = ?4 LIMIT 1)",
                            params![
                                key.quota,
                                key.subject,
                                millis(at),
                                i64::try_from(amount).unwrap_or(i64::MAX)
                            ],
                        )
                        .map_err(sqlite(path))
                })
                .await?;
            Ok(())
        })
    }

    fn usage<'a>(
        &'a self,
        quota: &'a str,
        window: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<Usage>, QuotaError>> {
        let quota = quota.to_owned();
        Box::pin(async move {
            let found = self
                .db
                .call(move |connection, path| {
                    let start = millis(now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH));
                    let mut statement = connection
                        .prepare(
                            "SELECT subject, SUM(amount), MIN(at_ms) FROM quota_uses
                             WHERE quota = ?1 AND at_ms > ?2 GROUP BY subject ORDER BY subject",
                        )
                        .map_err(sqlite(path))?;
                    let rows = statement
                        .query_map(params![quota, start], |row| {
                            Ok(Usage {
                                subject: row.get(0)?,
                                used: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                                oldest: Some(from_millis(row.get(2)?)),
                            })
                        })
                        .map_err(sqlite(path))?;
                    rows.collect::<Result<Vec<_>, _>>().map_err(sqlite(path))
                })
                .await?;
            Ok(found)
        })
    }
}

/// The key's use within `window` before `now` (sum, oldest), deleting its
/// older rows first.
fn within(
    connection: &Connection,
    path: &Path,
    key: &QuotaKey,
    window: Duration,
    now: SystemTime,
) -> Result<(u64, Option<SystemTime>), StoreError> {
    let start = millis(now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH));
    connection
        .execute(
            "DELETE FROM quota_uses WHERE quota = ?1 AND subject = ?2 AND at_ms <= ?3",
            params![key.quota, key.subject, start],
        )
        .map_err(sqlite(path))?;
    connection
        .query_row(
            "SELECT COALESCE(SUM(amount), 0), MIN(at_ms) FROM quota_uses
             WHERE quota = ?1 AND subject = ?2 AND at_ms > ?3",
            params![key.quota, key.subject, start],
            |row| {
                let used = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0);
                let oldest = row.get::<_, Option<i64>>(1)?.map(from_millis);
                Ok((used, oldest))
            },
        )
        .map_err(sqlite(path))
}

fn insert(
    connection: &Connection,
    path: &Path,
    key: &QuotaKey,
    amount: u64,
    now: SystemTime,
) -> Result<(), StoreError> {
    connection
        .execute(
            "INSERT INTO quota_uses (quota, subject, at_ms, amount) VALUES (?1, ?2, ?3, ?4)",
            params![
                key.quota,
                key.subject,
                millis(now),
                i64::try_from(amount).unwrap_or(i64::MAX)
            ],
        )
        .map_err(sqlite(path))?;
    Ok(())
}

pub(crate) fn from_millis(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
