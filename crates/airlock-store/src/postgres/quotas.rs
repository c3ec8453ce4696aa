//! [`QuotaStore`] for [`PostgresStore`]: table `quota_uses`, shared by
//! every replica. A take locks its key (a transaction-scoped advisory lock
//! on the quota and subject), so replicas taking at once never overshoot
//! a limit together.

use std::time::{Duration, SystemTime};

use airlock_core::BoxFuture;
use airlock_policy::{QuotaError, QuotaKey, QuotaStore, Take, Taken, Usage, granted};
use deadpool_postgres::GenericClient;

use super::PostgresStore;
use crate::approval_row::millis;
use crate::quotas::from_millis;

const INSERT: &str =
    "INSERT INTO quota_uses (quota, subject, at_ms, amount) VALUES ($1, $2, $3, $4)";

fn start_of(window: Duration, now: SystemTime) -> i64 {
    millis(now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH))
}

fn amount(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl QuotaStore for PostgresStore {
    fn take<'a>(&'a self, take: Take<'a>) -> BoxFuture<'a, Result<Taken, QuotaError>> {
        Box::pin(async move {
            let key = take.key;
            let mut client = self.client().await?;
            let transaction = client.transaction().await.map_err(|e| self.failed(e))?;
            transaction
                .execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(10) || $2, 0))",
                    &[&key.quota, &key.subject],
                )
                .await
                .map_err(|e| self.failed(e))?;
            let start = start_of(take.window, take.now);
            transaction
                .execute(
                    "DELETE FROM quota_uses WHERE quota = $1 AND subject = $2 AND at_ms <= $3",
                    &[&key.quota, &key.subject, &start],
                )
                .await
                .map_err(|e| self.failed(e))?;
            let row = transaction
                .query_one(
                    "SELECT COALESCE(SUM(amount), 0)::bigint, MIN(at_ms) FROM quota_uses
                     WHERE quota = $1 AND subject = $2 AND at_ms > $3",
                    &[&key.quota, &key.subject, &start],
                )
                .await
                .map_err(|e| self.failed(e))?;
            let used = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
            let oldest = row.get::<_, Option<i64>>(1).map(from_millis);
            let granted = granted(used, take.amount, take.limit);
            let usage = if granted && take.amount > 0 {
                transaction
                    .execute(
                        INSERT,
                        &[
                            &key.quota,
                            &key.subject,
                            &millis(take.now),
                            &amount(take.amount),
                        ],
                    )
                    .await
                    .map_err(|e| self.failed(e))?;
                Usage {
                    subject: key.subject.clone(),
                    used: used.saturating_add(take.amount),
                    oldest: oldest.or(Some(take.now)),
                }
            } else {
                Usage {
                    subject: key.subject.clone(),
                    used,
                    oldest,
                }
            };
            transaction.commit().await.map_err(|e| self.failed(e))?;
            Ok(Taken { granted, usage })
        })
    }

    fn add<'a>(
        &'a self,
        key: &'a QuotaKey,
        used: u64,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<(), QuotaError>> {
        Box::pin(async move {
            let client = self.client().await?;
            client
                .execute(
                    INSERT,
                    &[&key.quota, &key.subject, &millis(now), &amount(used)],
                )
                .await
                .map_err(|e| self.failed(e))?;
            Ok(())
        })
    }

    fn give_back<'a>(
        &'a self,
        key: &'a QuotaKey,
        used: u64,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<(), QuotaError>> {
        Box::pin(async move {
            let client = self.client().await?;
            client
                .execute(
                    "DELETE FROM quota_uses WHERE ctid = (SELECT ctid FROM quota_uses
                     WHERE quota = $1 AND subject = $2 AND at_ms = $3 AND amount = $4 LIMIT 1)",
                    &[&key.quota, &key.subject, &millis(at), &amount(used)],
                )
                .await
                .map_err(|e| self.failed(e))?;
            Ok(())
        })
    }

    fn usage<'a>(
        &'a self,
        quota: &'a str,
        window: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<Usage>, QuotaError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT subject, SUM(amount)::bigint, MIN(at_ms) FROM quota_uses
                     WHERE quota = $1 AND at_ms > $2 GROUP BY subject ORDER BY subject",
                    &[&quota, &start_of(window, now)],
                )
                .await
                .map_err(|e| self.failed(e))?;
            Ok(rows
                .iter()
                .map(|row| Usage {
                    subject: row.get(0),
                    used: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
                    oldest: Some(from_millis(row.get(2))),
                })
                .collect())
        })
    }
}
