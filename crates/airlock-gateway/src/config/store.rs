//! `[store]`: the database approvals and the audit trail live in: an SQLite
//! file (the embedded default) or PostgreSQL shared by replicas.

use std::path::{Path, PathBuf};

use airlock_http::TrustRoots;
use airlock_store::{PostgresOptions, PostgresStore, SqliteStore, Store};
use serde::Deserialize;

use super::{ConfigError, invalid};

/// `[store]`.
///
/// ```toml
/// [store]
/// database = "/var/lib/airlock/airlock.db"   # SQLite (the default)
///
/// # or PostgreSQL, shared by every replica:
/// url = "postgres://airlock@db.internal:5432/airlock?sslmode=require"
/// password_env = "AIRLOCK_DB_PASSWORD"        # or password_file
/// replica = "gateway-1"                        # default: the host name
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite file (created, with its directory's permissions, on first
    /// start; WAL mode, so `airlock.db-wal` and `-shm` sit beside it).
    /// Ignored when `url` is set.
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// The disk guard (SQLite): while the database's file system has this
    /// many bytes free or fewer, new approvals are refused (503
    /// `AirlockApprovalStoreFull`), keeping the rest for the audit trail;
    /// reads and decisions go on. Default 64 MiB; 0 turns it off.
    #[serde(default = "default_min_free_bytes")]
    pub min_free_bytes: u64,
    /// A PostgreSQL database instead of the SQLite file:
    /// `postgres://USER@HOST:PORT/DATABASE`, with `?sslmode=require` for
    /// TLS (the server's certificate is always verified). No password in
    /// it: use `password_env` or `password_file`.
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable holding the database password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// A file holding the database password (a mounted secret).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A PEM file of CA certificates the database's certificate may chain
    /// to, besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// This replica's id: the name of its audit chain, written into each of
    /// its events. Each replica on one database needs its own, stable
    /// across restarts. Default: the host name (a container's is unique).
    #[serde(default)]
    pub replica: Option<String>,
    /// The most database connections this replica opens (default 10).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            database: default_database(),
            min_free_bytes: default_min_free_bytes(),
            url: None,
            password_env: None,
            password_file: None,
            ca_file: None,
            replica: None,
            pool_size: default_pool_size(),
        }
    }
}

fn default_min_free_bytes() -> u64 {
    64 * 1024 * 1024
}

fn default_database() -> PathBuf {
    "airlock.db".into()
}

fn default_pool_size() -> usize {
    10
}

impl StoreConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let Some(url) = &self.url else {
            return Ok(());
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid(
                "store.url",
                "is not a postgres:// URL",
                "write it as postgres://USER@HOST:PORT/DATABASE, or remove it to use the SQLite file",
            ));
        }
        // `postgres://user:password@host`: a colon in the part before `@`.
        let authority = url.split_once("://").map_or("", |(_, rest)| rest);
        let userinfo = authority
            .split(['/', '?'])
            .next()
            .and_then(|host| host.rsplit_once('@'))
            .map_or("", |(userinfo, _)| userinfo);
        if userinfo.contains(':') {
            return Err(invalid(
                "store.url",
                "holds a password",
                "take the password out of the URL (configuration files get copied and logged) and put it in store.password_env or store.password_file",
            ));
        }
        if self.password_env.is_some() && self.password_file.is_some() {
            return Err(invalid(
                "store.password_file",
                "both password_file and password_env are set",
                "keep one of them",
            ));
        }
        if !(1..=1000).contains(&self.pool_size) {
            return Err(invalid(
                "store.pool_size",
                format!("{} is out of range", self.pool_size),
                "give a number of connections between 1 and 1000 (default 10)",
            ));
        }
        if let Some(replica) = &self.replica
            && (replica.is_empty()
                || replica.len() > 64
                || !replica
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
        {
            return Err(invalid(
                "store.replica",
                format!("{replica:?} is not a usable replica id"),
                "use 1 to 64 letters, digits, '-', '_' or '.', different on each replica",
            ));
        }
        Ok(())
    }

    /// This replica's id: `replica`, else the host name, else `default`.
    pub fn replica_id(&self) -> String {
        self.replica.clone().unwrap_or_else(|| {
            let name = rustix::system::uname();
            let host = name.nodename().to_string_lossy();
            if host.is_empty() {
                "default".to_owned()
            } else {
                host.into_owned()
            }
        })
    }

    /// Opens the store: connects to PostgreSQL (migrating it) when `url`
    /// is set, else opens (creating) the SQLite file.
    ///
    /// # Errors
    ///
    /// The password cannot be read, or the database cannot be opened.
    pub async fn open(&self, env: impl Fn(&str) -> Option<String>) -> Result<Store, ConfigError> {
        let Some(url) = &self.url else {
            let store =
                SqliteStore::open(&self.database)
                    .await
                    .map_err(|error| ConfigError::Invalid {
                        key: "store.database",
                        problem: error.to_string(),
                        fix: "point store.database at a writable path".into(),
                    })?;
            return Ok(store.min_free_bytes(self.min_free_bytes).into());
        };
        let mut options = PostgresOptions::new(url.clone())
            .replica(self.replica_id())
            .pool_size(self.pool_size)
            .roots(TrustRoots::system().with_optional_ca_file(self.ca_file.as_deref()));
        if let Some(password) = self.password(env)? {
            options = options.password(password);
        }
        let store = PostgresStore::connect(options)
            .await
            .map_err(|error| ConfigError::Invalid {
                key: "store.url",
                problem: error.to_string(),
                fix: "check that the database is up and reachable, and the user, password and TLS settings".into(),
            })?;
        Ok(store.into())
    }

    fn password(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, ConfigError> {
        let password = match (&self.password_file, &self.password_env) {
            (Some(path), _) => read_password_file(path)?,
            (None, Some(name)) => env(name).ok_or_else(|| {
                invalid(
                    "store.password_env",
                    format!("the environment variable {name} is not set"),
                    format!("export {name} with the database password"),
                )
            })?,
            (None, None) => return Ok(None),
        };
        Ok(Some(password.trim_end_matches(['\r', '\n']).to_owned()))
    }
}

fn read_password_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|error| {
        invalid(
            "store.password_file",
            format!("cannot read {}: {error}", path.display()),
            "point it at a readable file holding the database password",
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn store(toml: &str) -> StoreConfig {
        toml::from_str(toml).unwrap()
    }

    fn refusal(toml: &str) -> String {
        store(toml).validate().unwrap_err().to_string()
    }

    #[test]
    fn a_url_with_a_password_or_of_another_scheme_is_refused_with_the_fix() {
        let message = refusal("url = \"postgres://airlock:hunter2@db:5432/airlock\"");
        assert!(
            message.contains("store.url") && message.contains("password_env"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
        let message = refusal("url = \"mysql://db/airlock\"");
        assert!(message.contains("postgres://USER@HOST"), "{message}");
        let message = refusal(
            "url = \"postgres://a@db/x\"\npassword_env = \"P\"\npassword_file = \"/run/p\"",
        );
        assert!(message.contains("keep one"), "{message}");
        let message = refusal("url = \"postgres://a@db/x\"\nreplica = \"a b\"");
        assert!(message.contains("store.replica"), "{message}");
        let message = refusal("url = \"postgres://a@db/x\"\npool_size = 0");
        assert!(message.contains("store.pool_size"), "{message}");
        // `@` in the path or query is no password.
        store("url = \"postgres://airlock@db:5432/airlock?application_name=a:b\"")
            .validate()
            .unwrap();
    }

    #[test]
    fn the_password_comes_from_the_environment_or_a_file_and_the_replica_from_the_host() {
        let config = store("url = \"postgres://a@db/x\"\npassword_env = \"DB_PASSWORD\"");
        let password = config
            .password(|name| (name == "DB_PASSWORD").then(|| "s3cret".to_owned()))
            .unwrap();
        assert_eq!(password.as_deref(), Some("s3cret"));
        let missing = config.password(|_| None).unwrap_err().to_string();
        assert!(missing.contains("DB_PASSWORD is not set"), "{missing}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "from-a-file\n").unwrap();
        let config = StoreConfig {
            password_file: Some(file),
            ..store("url = \"postgres://a@db/x\"")
        };
        assert_eq!(
            config.password(|_| None).unwrap().as_deref(),
            Some("from-a-file")
        );
        assert!(!config.replica_id().is_empty());
        assert_eq!(store("replica = \"gw-1\"").replica_id(), "gw-1");
    }
}

/// The compose quick start's files (`examples/compose`) are what this build
/// reads: its configuration validates, its policy loads.
#[cfg(test)]
mod compose_example {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn the_compose_configuration_and_policy_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/compose");
        let config = crate::Config::parse(
            &std::fs::read_to_string(dir.join("airlock.toml")).unwrap(),
            "airlock.toml",
            |name| (name == "AIRLOCK_MASKING_KEY").then(|| "00".repeat(32)),
        )
        .unwrap();
        let store = &config.store;
        assert!(
            store
                .url
                .as_deref()
                .unwrap()
                .starts_with("postgres://airlock@postgres")
        );
        assert_eq!(store.password_env.as_deref(), Some("AIRLOCK_DB_PASSWORD"));
        assert_eq!(store.replica, None, "each replica takes its host name");
        airlock_policy::Policy::load(&dir.join("policy.toml")).unwrap();
    }
}
