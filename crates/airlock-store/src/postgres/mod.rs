//! [`PostgresStore`]: approvals and the audit trail in PostgreSQL, shared by
//! every replica of a gateway.
//!
//! - Connections come from a pool ([`deadpool_postgres`]); TLS is rustls
//!   with the system roots plus an optional CA file, as the URL's `sslmode`
//!   asks (`disable`, `prefer`, `require`; with rustls the server's
//!   certificate is always verified, name included).
//! - The schema is versioned in table `airlock_schema` and migrated at
//!   connect, under an advisory lock so that replicas starting together
//!   migrate once ([`schema`]).
//! - Approvals ([`approvals`]): each change is one transaction that locks the
//!   row (`SELECT … FOR UPDATE`), applies the
//!   [rules](airlock_approval::rules) and sends `NOTIFY airlock_approvals`
//!   on commit. Every replica `LISTEN`s on a connection of its own and
//!   tells its waiters ([`listen`]), so a request held on one replica is
//!   released when another records the decision; while that connection is
//!   down, the replica polls the states its waiters wait on.
//! - The audit trail ([`audit`]): one hash chain per replica (column `chain`,
//!   the replica's id), so replicas append without waiting for each other,
//!   and each chain verifies on its own.
//!
//! Clones share the pool and the notification connection.

mod approvals;
mod audit;
mod events;
mod listen;
mod quotas;
mod schema;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use airlock_approval::StateWatchers;
use airlock_http::TrustRoots;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::Host;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;

pub use audit::ChainVerification;
pub use events::EventForwarding;

/// How long a request waits for a connection, or for a new one to be made,
/// before the store answers that the database is unavailable.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach the database, and who this replica is.
///
/// ```
/// use airlock_store::PostgresOptions;
///
/// let options = PostgresOptions::new("postgres://airlock@db.internal:5432/airlock?sslmode=require")
///     .password("from-a-secret-store")
///     .replica("gateway-1");
/// assert_eq!(options.replica_id(), "gateway-1");
/// ```
#[derive(Clone)]
pub struct PostgresOptions {
    url: String,
    password: Option<String>,
    roots: TrustRoots,
    replica: String,
    pool_size: usize,
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the password nor the URL (which may hold one).
        f.debug_struct("PostgresOptions")
            .field("replica", &self.replica)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl PostgresOptions {
    /// A `postgres://` URL (or `key=value` connection string), as
    /// [`tokio_postgres::Config`] reads it. Replica id `default`, ten
    /// connections, the system's roots.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            password: None,
            roots: TrustRoots::system(),
            replica: "default".to_owned(),
            pool_size: 10,
        }
    }

    /// The password (it overrides one in the URL). Keep it out of the URL,
    /// which ends up in configuration files and process listings.
    #[must_use]
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The roots the server's certificate is checked against (default: the system's).
    #[must_use]
    pub fn roots(mut self, roots: TrustRoots) -> Self {
        self.roots = roots;
        self
    }

    /// This replica's id: its audit chain's name. Each replica writing to one
    /// database needs its own, stable across restarts (so its chain goes on).
    #[must_use]
    pub fn replica(mut self, replica: impl Into<String>) -> Self {
        self.replica = replica.into();
        self
    }

    /// The most connections the pool opens (default 10), besides the
    /// notification connection.
    #[must_use]
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// This replica's id.
    pub fn replica_id(&self) -> &str {
        &self.replica
    }
}

/// Approvals and the audit trail in PostgreSQL, shared by every replica of
/// a gateway: approvals change in row-locked transactions announced with
/// `NOTIFY` (a decision on one replica releases a request held on
/// another), and each replica appends to a hash chain of its own.
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use airlock_approval::{ApprovalLayer, LogNotifier};
/// use airlock_store::{PostgresOptions, PostgresStore};
///
/// let password = std::env::var("AIRLOCK_DB_PASSWORD").unwrap();
/// let store = PostgresStore::connect(
///     PostgresOptions::new("postgres://airlock@db:5432/airlock").password(password).replica("a"),
/// )
/// .await
/// .unwrap();
/// let layer = ApprovalLayer::new(Arc::new(store), Arc::new(LogNotifier));
/// # drop(layer);
/// # });
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// `host:port/dbname`, for messages (never the password).
    database: Arc<str>,
    /// This replica's audit chain.
    chain: Arc<str>,
    watchers: Arc<StateWatchers>,
    /// Approvals other replicas created or changed.
    changes: listen::Changes,
    /// Stops the notification task when the last clone is dropped.
    _listener: Arc<listen::Listener>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.database)
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects, brings the schema up to date, and starts listening for
    /// other replicas' approval changes.
    ///
    /// # Errors
    ///
    /// The URL cannot be read, the database cannot be reached or refuses
    /// the login, or its schema was written by a newer Airlock.
    pub async fn connect(options: PostgresOptions) -> Result<Self, StoreError> {
        let mut config = tokio_postgres::Config::from_str(&options.url).map_err(|error| {
            StoreError::PostgresConfig(format!(
                "the database URL cannot be read: {error}; write it as \
                 postgres://USER@HOST:PORT/DATABASE"
            ))
        })?;
        if let Some(password) = &options.password {
            config.password(password.as_bytes());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECTION_TIMEOUT);
        }
        config.application_name("airlock");
        // A dead peer (a partition, a crashed host) is noticed in about a
        // minute rather than never.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        let database: Arc<str> = label(&config).into();
        let tls = tls(&options.roots, &database)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECTION_TIMEOUT))
            .create_timeout(Some(CONNECTION_TIMEOUT))
            .recycle_timeout(Some(CONNECTION_TIMEOUT))
            .build()
            .map_err(|error| StoreError::PostgresConfig(error.to_string()))?;
        schema::migrate(&pool, &database).await?;
        let watchers = Arc::new(StateWatchers::default());
        let chain: Arc<str> = options.replica.into();
        let changes = tokio::sync::broadcast::Sender::new(listen::CHANGES_CAPACITY);
        let listener = listen::Listener::start(
            config,
            tls,
            pool.clone(),
            Arc::clone(&watchers),
            Arc::clone(&database),
            Arc::clone(&chain),
            changes.clone(),
        );
        Ok(Self {
            pool,
            database,
            chain,
            watchers,
            changes,
            _listener: Arc::new(listener),
        })
    }

    /// This replica's id (its audit chain).
    pub fn replica(&self) -> &str {
        &self.chain
    }

    /// `host:port/dbname`, as messages name the database.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// A connection from the pool; none within the timeout is
    /// [`StoreError::Unavailable`].
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        pooled(&self.pool, &self.database).await
    }

    /// The error for a failed query: unavailable when the connection is
    /// gone (the database stopped, the network failed).
    pub(crate) fn failed(&self, error: tokio_postgres::Error) -> StoreError {
        failed(&self.database, error)
    }
}

/// A connection from `pool`: a refused login is [`StoreError::Postgres`]
/// (a setting to fix), anything else [`StoreError::Unavailable`].
pub(crate) async fn pooled(
    pool: &Pool,
    database: &str,
) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get().await.map_err(|error| match error {
        deadpool_postgres::PoolError::Backend(error) => failed(database, error),
        other => StoreError::Unavailable {
            database: database.to_owned(),
            reason: other.to_string(),
        },
    })
}

/// What went wrong, with the server's message or the underlying cause
/// (tokio-postgres alone says only "db error").
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" ({hint})"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// [`PostgresStore::failed`], for code that holds only the label.
pub(crate) fn failed(database: &str, error: tokio_postgres::Error) -> StoreError {
    // Class 08 is "connection exception", 57P01-03 the server shutting
    // down or starting; an I/O error underneath is a connection that broke.
    let unavailable = error.is_closed()
        || error
            .code()
            .is_some_and(|code| code.code().starts_with("08") || code.code().starts_with("57P"))
        || std::error::Error::source(&error)
            .is_some_and(<dyn std::error::Error + 'static>::is::<std::io::Error>);
    if unavailable {
        StoreError::Unavailable {
            database: database.to_owned(),
            reason: describe(&error),
        }
    } else {
        StoreError::Postgres {
            database: database.to_owned(),
            source: error,
        }
    }
}

/// The TLS connector: rustls, with `roots`.
fn tls(roots: &TrustRoots, database: &str) -> Result<MakeRustlsConnect, StoreError> {
    let store = match roots.store() {
        Ok(store) => store,
        // Only a TLS connection needs roots: one with sslmode=disable does not.
        Err(airlock_http::ClientError::NoRoots) => {
            tracing::warn!(
                database,
                "no trusted root certificates: a TLS connection to the database will fail; \
                 give the store a CA file"
            );
            rustls::RootCertStore::empty()
        }
        Err(error) => return Err(StoreError::PostgresConfig(error.to_string())),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| StoreError::PostgresConfig(error.to_string()))?
    .with_root_certificates(store)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// `host:port/dbname` of `config`, for messages.
fn label(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let name = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{name}")
}
