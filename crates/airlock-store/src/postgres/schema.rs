//! The PostgreSQL schema and its migrations, applied at connect.
//!
//! `airlock_schema` records each version applied. Replicas starting together
//! take a transaction-scoped advisory lock first, so one migrates and the
//! others find the work done. A database a newer Airlock wrote is refused,
//! nothing changed.

use deadpool_postgres::Pool;

use crate::StoreError;

/// The schema, one migration per version: `MIGRATIONS[n]` takes the database
/// from version `n` to `n + 1`. Append only; never edit one that shipped.
const MIGRATIONS: &[&str] = &[
    // 1: approvals and the audit trail, as in SQLite, with the audit chain
    // named (one per replica) and a position to keep insertion order.
    "CREATE TABLE approvals (
        id text PRIMARY KEY,
        position bigint GENERATED ALWAYS AS IDENTITY,
        state text NOT NULL,
        wait text NOT NULL,
        fingerprint text NOT NULL,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        grant_expires_at bigint,
        doc text NOT NULL,
        sealed bytea
    );
    CREATE INDEX approvals_by_state ON approvals (state, created_at, position);
    CREATE INDEX approvals_by_fingerprint ON approvals (fingerprint, state);
    CREATE TABLE audit_events (
        chain text NOT NULL,
        seq bigint NOT NULL CHECK (seq > 0),
        id text NOT NULL,
        time_ms bigint NOT NULL,
        session_id text NOT NULL,
        principal_id text,
        request_id text,
        status integer NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL,
        doc text NOT NULL,
        PRIMARY KEY (chain, seq)
    );
    CREATE INDEX audit_events_by_session ON audit_events (session_id, time_ms);
    CREATE INDEX audit_events_by_time ON audit_events (time_ms);
    CREATE TABLE audit_checkpoints (
        position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        chain text NOT NULL,
        seq bigint NOT NULL,
        hash text NOT NULL,
        created_ms bigint NOT NULL,
        kind text NOT NULL CHECK (kind IN ('pruned', 'signed')),
        signature text,
        public_key text
    );
    CREATE INDEX audit_checkpoints_by_chain ON audit_checkpoints (chain, kind, seq);",
    // 2: quota use, as in SQLite; replicas share the counts.
    "CREATE TABLE quota_uses (
        quota text NOT NULL,
        subject text NOT NULL,
        at_ms bigint NOT NULL,
        amount bigint NOT NULL
    );
    CREATE INDEX quota_uses_by_key ON quota_uses (quota, subject, at_ms);",
];

/// The advisory lock migrations run under (any constant; "airlock" in ASCII).
const MIGRATION_LOCK: i64 = 0x0061_6972_6c6f_636b;

/// The schema version this build writes, and the newest it can read.
fn known_version() -> u32 {
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

/// Brings the database's schema up to date, in one transaction.
pub(super) async fn migrate(pool: &Pool, database: &str) -> Result<(), StoreError> {
    let failed = |error| super::failed(database, error);
    let mut client = super::pooled(pool, database).await?;
    let transaction = client.transaction().await.map_err(failed)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(failed)?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS airlock_schema (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(failed)?;
    let found: i32 = transaction
        .query_one("SELECT COALESCE(MAX(version), 0) FROM airlock_schema", &[])
        .await
        .map_err(failed)?
        .get(0);
    let found = u32::try_from(found).unwrap_or(0);
    if found > known_version() {
        return Err(StoreError::TooNew {
            path: database.into(),
            found,
            known: known_version(),
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        let step = async {
            transaction.batch_execute(migration).await?;
            transaction
                .execute(
                    "INSERT INTO airlock_schema (version) VALUES ($1)",
                    &[&version],
                )
                .await
        };
        step.await.map_err(|error| StoreError::PostgresMigrate {
            database: database.to_owned(),
            version: version.unsigned_abs(),
            source: error,
        })?;
    }
    transaction.commit().await.map_err(failed)?;
    if found < known_version() {
        tracing::info!(
            database,
            from = found,
            to = known_version(),
            "database schema migrated"
        );
    }
    Ok(())
}
