//! `airlock audit verify|export|prune|checkpoint` and `airlock sessions
//! list|show|export`: the audit trail, read straight from the database (no
//! running gateway needed; SQLite's WAL mode lets them run beside one).
//!
//! The database is `--database FILE`, else the `[store]` of `--config
//! airlock.toml` (its SQLite file, or its PostgreSQL `url`, every replica's
//! chain), else `airlock.db`.
//!
//! Exit codes: 0 done (for `verify`: the trail is intact); 1 `verify` found
//! tampering, or the command failed.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use airlock_recorder::ChainedEvent;
use airlock_store::Store;
use airlock_store::audit::text::{events, render_sessions, render_timeline, render_verifications};
use airlock_store::audit::{
    Checkpoint, TrustedCheckpoints, load_or_generate_signing_key, parse_public_key, public_key_hex,
};
use anyhow::{Context, bail};
use serde::Deserialize as _;

use airlock_gateway::config::StoreConfig;

/// Which database file: options every `audit` and `sessions` subcommand takes.
#[derive(Debug, clap::Args)]
pub struct DatabaseArgs {
    /// The database file.
    #[arg(long, global = true, conflicts_with = "config")]
    pub database: Option<PathBuf>,
    /// The gateway configuration whose `[store].database` to use.
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
}

/// `airlock audit …`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Which database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// The `audit` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Walk the whole hash chain and every checkpoint; exit 1 at the first break.
    Verify {
        /// A file holding the trusted public key (hex, as `audit checkpoint`
        /// printed): every signed checkpoint must be signed with it.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// A checkpoint kept elsewhere, `SEQ:HASH`, that the chain must pass
        /// through (repeatable).
        #[arg(long = "checkpoint", value_name = "SEQ:HASH")]
        checkpoints: Vec<String>,
    },
    /// Print events as JSON, one chained event per line.
    Export {
        /// From when: an RFC 3339 time (`2026-11-25T00:00:00Z`) or a
        /// duration back from now (`24h`, `7d`).
        #[arg(long)]
        since: String,
        /// The output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
    },
    /// Delete the oldest whole sessions (a prefix of the chain).
    #[command(group = clap::ArgGroup::new("limit").required(true).multiple(true))]
    Prune {
        /// Keep sessions with a request younger than this (`90d`).
        #[arg(long, group = "limit")]
        max_age: Option<String>,
        /// Keep at most about this many bytes of events.
        #[arg(long, group = "limit")]
        max_bytes: Option<u64>,
    },
    /// Sign the current head with an Ed25519 key (created, 0600, if missing).
    Checkpoint {
        /// The PKCS#8 signing key file.
        #[arg(long)]
        signing_key: PathBuf,
    },
}

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
}

/// `airlock sessions …`.
#[derive(Debug, clap::Args)]
pub struct SessionsArgs {
    /// Which database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: SessionsCommand,
}

/// The `sessions` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SessionsCommand {
    /// The most recently active sessions, newest first.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One session as a timeline.
    Show {
        /// The session id (as `sessions list` shows it).
        id: String,
    },
    /// One session as a file.
    Export {
        /// The session id.
        id: String,
        /// As HAR 1.2 (HTTP Archive), for browser devtools and HAR viewers.
        #[arg(long, required = true)]
        har: bool,
    },
}

impl DatabaseArgs {
    /// The `[store]` these options name: `--database FILE`, else the
    /// configuration's, else the default.
    fn store_config(&self) -> anyhow::Result<StoreConfig> {
        if let Some(path) = &self.database {
            return Ok(StoreConfig {
                database: path.clone(),
                ..StoreConfig::default()
            });
        }
        let Some(config) = &self.config else {
            return Ok(StoreConfig::default());
        };
        // Only `[store]` matters here: the rest of the file (and the
        // secrets it may need from the environment) is not required.
        let text = std::fs::read_to_string(config)
            .with_context(|| format!("cannot read config file {}", config.display()))?;
        let table: toml::Table =
            toml::from_str(&text).with_context(|| format!("{}", config.display()))?;
        match table.get("store") {
            Some(store) => StoreConfig::deserialize(store.clone())
                .with_context(|| format!("{}: [store]", config.display())),
            None => Ok(StoreConfig::default()),
        }
    }

    /// The SQLite file these options name (when they name no PostgreSQL URL).
    pub fn path(&self) -> anyhow::Result<PathBuf> {
        Ok(self.store_config()?.database)
    }

    /// Opens the database: PostgreSQL when the configuration's `[store]`
    /// has a `url` (its password from the environment or file it names),
    /// else the SQLite file, which must exist.
    pub(crate) async fn open(&self) -> anyhow::Result<Store> {
        let config = self.store_config()?;
        if config.url.is_none() && !config.database.exists() {
            bail!(
                "no database at {}: give --database FILE, or --config with the gateway's configuration",
                config.database.display()
            );
        }
        Ok(config.open(|name| std::env::var(name).ok()).await?)
    }
}

/// Runs `airlock audit …`.
pub async fn run_audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AuditCommand::Verify {
            public_key,
            checkpoints,
        } => {
            let public_key = match public_key {
                Some(file) => {
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("cannot read {}", file.display()))?;
                    let key = parse_public_key(&text)
                        .map_err(|reason| anyhow::anyhow!("{}: {reason}", file.display()))?;
                    Some(key)
                }
                None => None,
            };
            let checkpoints = checkpoints
                .iter()
                .map(|text| parse_checkpoint(text))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let store = args.database.open().await?;
            let reports = store
                .verify_against(&TrustedCheckpoints {
                    public_key,
                    checkpoints,
                })
                .await?;
            print!("{}", render_verifications(&store.name(), &reports));
            Ok(if reports.iter().all(|chain| chain.report.is_ok()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditCommand::Export { since, format } => {
            let ExportFormat::Jsonl = format;
            let since = parse_since(&since, SystemTime::now())?;
            let store = args.database.open().await?;
            let mut pages = store.events_since(since);
            let mut buffer = Vec::new();
            while let Some(page) = pages.next_page().await? {
                buffer.clear();
                for chained in &page {
                    serde_json::to_writer(&mut buffer, chained)?;
                    buffer.push(b'\n');
                }
                std::io::stdout().lock().write_all(&buffer)?;
            }
            std::io::stdout().flush()?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Prune { max_age, max_bytes } => {
            let max_age = max_age
                .map(|text| {
                    humantime::parse_duration(&text)
                        .with_context(|| format!("--max-age {text:?}: give a duration such as 90d"))
                })
                .transpose()?;
            let store = args.database.open().await?;
            let pruned = store.prune(max_age, max_bytes).await?;
            match pruned.through {
                Some(through) => println!(
                    "pruned {} in {} sessions ({} bytes), through event {} ({})",
                    events(pruned.events),
                    pruned.sessions,
                    pruned.bytes,
                    through.seq,
                    through.hash
                ),
                None => println!("nothing to prune"),
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Checkpoint { signing_key } => {
            let store = args.database.open().await?;
            let (key, created) = load_or_generate_signing_key(&signing_key)?;
            let made = store.checkpoint(&key).await?;
            let public_key = public_key_hex(&key);
            if created {
                let public_file = public_key_file(&signing_key);
                std::fs::write(&public_file, format!("{public_key}\n"))
                    .with_context(|| format!("cannot write {}", public_file.display()))?;
                println!(
                    "created signing key {} (keep it private); public key in {}",
                    signing_key.display(),
                    public_file.display()
                );
            }
            for (chain, checkpoint) in &made {
                if !chain.is_empty() {
                    println!("chain       {chain}");
                }
                println!(
                    "checkpoint  event {} hash {}",
                    checkpoint.seq, checkpoint.hash
                );
                println!(
                    "signature   {}",
                    checkpoint.signature.as_deref().unwrap_or_default()
                );
            }
            println!("public key  {public_key}");
            match made.as_slice() {
                [(chain, checkpoint)] if chain.is_empty() => println!(
                    "keep these elsewhere; check later with: airlock audit verify --public-key FILE --checkpoint {}:{}",
                    checkpoint.seq, checkpoint.hash
                ),
                _ => println!(
                    "keep these elsewhere; check later with: airlock audit verify --public-key FILE"
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `airlock sessions …`.
pub async fn run_sessions(args: SessionsArgs) -> anyhow::Result<ExitCode> {
    let store = args.database.open().await?;
    match args.command {
        SessionsCommand::List { limit } => {
            let sessions = store.sessions(limit).await?;
            print!("{}", render_sessions(&sessions));
        }
        SessionsCommand::Show { id } => {
            let events = session(&store, &id).await?;
            print!("{}", render_timeline(&id, &events));
        }
        SessionsCommand::Export { id, har: _ } => {
            let events = session(&store, &id).await?;
            let har = airlock_store::har::session_har(&events);
            println!("{}", serde_json::to_string_pretty(&har)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn session(store: &Store, id: &str) -> anyhow::Result<Vec<ChainedEvent>> {
    let events = store.session_events(id).await?;
    if events.is_empty() {
        bail!(
            "no session {id:?} in {}; `airlock sessions list` shows the recent ones",
            store.name()
        );
    }
    Ok(events)
}

/// `SEQ:HASH`.
fn parse_checkpoint(text: &str) -> anyhow::Result<Checkpoint> {
    let parsed = text.split_once(':').and_then(|(seq, hash)| {
        let hash = hash.trim();
        let hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        Some((seq.trim().parse::<u64>().ok()?, hash)).filter(|_| hex)
    });
    match parsed {
        Some((seq, hash)) => Ok(Checkpoint::anchor(seq, hash.to_ascii_lowercase())),
        None => bail!(
            "--checkpoint {text:?}: give SEQ:HASH as `airlock audit checkpoint` printed it \
             (a number, a colon, 64 hex digits)"
        ),
    }
}

/// An RFC 3339 time, or a duration back from `now`.
pub(crate) fn parse_since(text: &str, now: SystemTime) -> anyhow::Result<SystemTime> {
    if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        return Ok(time);
    }
    match humantime::parse_duration(text) {
        Ok(back) => now.checked_sub(back).context("--since: too far back"),
        Err(_) => bail!(
            "--since {text:?}: give an RFC 3339 time (2026-11-25T00:00:00Z) or a duration (24h, 7d)"
        ),
    }
}

/// `key.pem` -> `key.pem.pub`.
fn public_key_file(signing_key: &Path) -> PathBuf {
    let mut name = signing_key.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    #[test]
    fn since_takes_a_time_or_a_duration() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(
            parse_since("24h", now).unwrap(),
            now - Duration::from_secs(86_400)
        );
        assert_eq!(
            parse_since("2001-09-09T01:46:40Z", now).unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000)
        );
        let error = parse_since("yesterday", now).unwrap_err().to_string();
        assert!(error.contains("RFC 3339"), "{error}");
    }

    #[test]
    fn checkpoints_are_seq_colon_hash() {
        let hash = "ab".repeat(32);
        let checkpoint = parse_checkpoint(&format!("12:{hash}")).unwrap();
        assert_eq!((checkpoint.seq, checkpoint.hash), (12, hash));
        assert!(parse_checkpoint("12").is_err());
        assert!(parse_checkpoint("x:00").is_err());
    }

    #[test]
    fn the_database_comes_from_the_option_the_config_or_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("airlock.toml");
        std::fs::write(
            &config,
            "[listen]\naddress = \"x\"\n[store]\ndatabase = \"/var/lib/airlock/a.db\"\n",
        )
        .unwrap();
        let args = |database: Option<&str>, config: Option<&Path>| DatabaseArgs {
            database: database.map(PathBuf::from),
            config: config.map(Path::to_path_buf),
        };
        assert_eq!(
            args(None, Some(&config)).path().unwrap(),
            PathBuf::from("/var/lib/airlock/a.db")
        );
        assert_eq!(
            args(Some("b.db"), None).path().unwrap(),
            PathBuf::from("b.db")
        );
        assert_eq!(
            args(None, None).path().unwrap(),
            PathBuf::from("airlock.db")
        );
        std::fs::write(&config, "[store]\ndatbase = \"typo\"\n").unwrap();
        let error = format!("{:#}", args(None, Some(&config)).path().unwrap_err());
        assert!(error.contains("unknown field `datbase`"), "{error}");
    }
}
