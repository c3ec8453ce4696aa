//! `airlock audit verify|export|prune|checkpoint` and `airlock sessions
//! list|show|export`: the audit trail, read straight from the database file
//! (no running gateway needed; WAL mode lets them run beside one).
//!
//! The file is `--database FILE`, else `[store].database` of `--config
//! airlock.toml`, else `airlock.db`.
//!
//! Exit codes: 0 done (for `verify`: the trail is intact); 1 `verify` found
//! tampering, or the command failed.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use airlock_recorder::ChainedEvent;
use airlock_store::SqliteStore;
use airlock_store::audit::{
    AuditVerification, Checkpoint, SessionSummary, TrustedCheckpoints,
    load_or_generate_signing_key, parse_public_key,
};
use anyhow::{Context, bail};
use serde::Deserialize as _;

use crate::config::StoreConfig;

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
    /// The database file these options name.
    pub fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.database {
            return Ok(path.clone());
        }
        let Some(config) = &self.config else {
            return Ok(StoreConfig::default().database);
        };
        // Only `[store]` matters here: the rest of the file (and the
        // secrets it may need from the environment) is not required.
        let text = std::fs::read_to_string(config)
            .with_context(|| format!("cannot read config file {}", config.display()))?;
        let table: toml::Table =
            toml::from_str(&text).with_context(|| format!("{}", config.display()))?;
        match table.get("store") {
            Some(store) => {
                let store = StoreConfig::deserialize(store.clone())
                    .with_context(|| format!("{}: [store]", config.display()))?;
                Ok(store.database)
            }
            None => Ok(StoreConfig::default().database),
        }
    }

    /// Opens the database, which must exist.
    async fn open(&self) -> anyhow::Result<SqliteStore> {
        let path = self.path()?;
        if !path.exists() {
            bail!(
                "no database at {}: give --database FILE, or --config with the gateway's configuration",
                path.display()
            );
        }
        Ok(SqliteStore::open(&path).await?)
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
            let report = store
                .verify_against(TrustedCheckpoints {
                    public_key,
                    checkpoints,
                })
                .await?;
            print!("{}", render_verification(store.path(), &report));
            Ok(if report.is_ok() {
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
            let checkpoint = store.checkpoint(&key).await?;
            let public_key = checkpoint.public_key.clone().unwrap_or_default();
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
            println!(
                "checkpoint  event {} hash {}",
                checkpoint.seq, checkpoint.hash
            );
            println!(
                "signature   {}",
                checkpoint.signature.as_deref().unwrap_or_default()
            );
            println!("public key  {public_key}");
            println!(
                "keep these elsewhere; check later with: airlock audit verify --public-key FILE --checkpoint {}:{}",
                checkpoint.seq, checkpoint.hash
            );
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

async fn session(store: &SqliteStore, id: &str) -> anyhow::Result<Vec<ChainedEvent>> {
    let events = store.session_events(id).await?;
    if events.is_empty() {
        bail!(
            "no session {id:?} in {}; `airlock sessions list` shows the recent ones",
            store.path().display()
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
fn parse_since(text: &str, now: SystemTime) -> anyhow::Result<SystemTime> {
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

pub(crate) fn render_verification(path: &Path, report: &AuditVerification) -> String {
    let mut out = String::new();
    let from = if report.start.seq == 0 {
        "from genesis".to_owned()
    } else {
        format!("from the pruning checkpoint at event {}", report.start.seq)
    };
    match &report.problem {
        None => {
            let _ = writeln!(
                out,
                "{}: ok: {} checked ({from}), head event {} hash {}",
                path.display(),
                events(report.events_checked),
                report.head.seq,
                report.head.hash
            );
        }
        Some(problem) => {
            let _ = writeln!(
                out,
                "{}: TAMPERED at event {}: {problem}",
                path.display(),
                problem.seq()
            );
            let _ = writeln!(
                out,
                "{} verified ({from}) before it, up to event {}",
                events(report.events_checked),
                report.head.seq
            );
        }
    }
    if report.checkpoints_checked > 0 || report.checkpoints_pruned > 0 {
        let _ = writeln!(
            out,
            "checkpoints: {} on the chain, {} older than the retained events",
            report.checkpoints_checked, report.checkpoints_pruned
        );
    }
    out
}

/// `1 event`, `2 events`.
fn events(count: u64) -> String {
    match count {
        1 => "1 event".to_owned(),
        n => format!("{n} events"),
    }
}

fn time(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

fn render_sessions(sessions: &[SessionSummary]) -> String {
    if sessions.is_empty() {
        return "no sessions recorded\n".to_owned();
    }
    let header = [
        "SESSION",
        "PRINCIPAL",
        "FIRST",
        "LAST",
        "EVENTS",
        "DENIED",
        "APPROVALS",
    ]
    .map(str::to_owned);
    let rows: Vec<[String; 7]> = sessions
        .iter()
        .map(|s| {
            let principal = match (&s.principal_name, &s.principal_id) {
                (Some(name), _) => name.clone(),
                (None, Some(id)) => id.clone(),
                (None, None) => "-".to_owned(),
            };
            let approvals = if s.approvals.is_empty() {
                "-".to_owned()
            } else {
                s.approvals.join(",")
            };
            [
                s.session_id.clone(),
                principal,
                time(s.first_time),
                time(s.last_time),
                s.events.to_string(),
                s.denied.to_string(),
                approvals,
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// One line per request: `#seq time principal METHOD path -> status decision …`.
pub(crate) fn render_timeline_compact(id: &str, events: &[ChainedEvent]) -> String {
    let mut out = format!("session {id}, {} requests\n", events.len());
    for chained in events {
        let e = &chained.event;
        let decision = match (&e.decision, &e.rule) {
            (Some(decision), Some(rule)) => format!("{decision} ({rule})"),
            (Some(decision), None) => decision.clone(),
            (None, _) => "-".to_owned(),
        };
        let mut extra = String::new();
        if let Some(code) = &e.error_code {
            let _ = write!(extra, " {code}");
        }
        if let Some(approval) = &e.approval_id {
            let _ = write!(extra, " approval {}", &approval[..approval.len().min(8)]);
        }
        if e.masked_count > 0 {
            let _ = write!(extra, " masked {}", e.masked_count);
        }
        let time = humantime::format_rfc3339_millis(e.time).to_string();
        let _ = writeln!(
            out,
            "  #{:<3} {} {:<6} {} -> {} {decision}{extra}",
            chained.seq,
            time.get(11..23).unwrap_or(&time),
            e.method,
            short_path(&e.path),
            e.status,
        );
    }
    out
}

/// The path with the subscription and resource group abbreviated.
fn short_path(path: &str) -> String {
    let mut parts: Vec<&str> = path.split('/').collect();
    for i in 0..parts.len() {
        if i > 0
            && (parts[i - 1].eq_ignore_ascii_case("subscriptions")
                || parts[i - 1].eq_ignore_ascii_case("resourceGroups"))
            && parts[i].len() > 12
        {
            parts[i] = "…";
        }
    }
    parts.join("/")
}

fn render_timeline(id: &str, events: &[ChainedEvent]) -> String {
    let mut out = String::new();
    let who = events
        .iter()
        .find_map(|e| e.event.principal.as_ref())
        .map_or("an unverified caller".to_owned(), |p| {
            match &p.display_name {
                Some(name) => format!("{name} ({})", p.id),
                None => p.id.clone(),
            }
        });
    let _ = writeln!(out, "session {id}: {who}, {} requests", events.len());
    for chained in events {
        let event = &chained.event;
        let _ = writeln!(out);
        let principal = event
            .principal
            .as_ref()
            .map_or("-", |p| p.display_name.as_deref().unwrap_or(&p.id));
        let _ = writeln!(
            out,
            "{}  #{}  {principal}",
            humantime::format_rfc3339_millis(event.time),
            chained.seq
        );
        let _ = writeln!(
            out,
            "    {} {} -> {} ({} ms)",
            event.method, event.path, event.status, event.duration_ms
        );
        if let Some(operation) = event.operations.first() {
            let more = match event.operations.len() {
                1 => String::new(),
                n => format!(" (+{} inside)", n - 1),
            };
            let _ = writeln!(out, "    operation  {operation}{more}");
        }
        let decision = match (&event.decision, &event.rule) {
            (Some(decision), Some(rule)) => format!("{decision} by rule '{rule}'"),
            (Some(decision), None) => decision.clone(),
            (None, _) => "none".to_owned(),
        };
        let error = event
            .error_code
            .as_ref()
            .map(|code| format!(" ({code})"))
            .unwrap_or_default();
        let _ = writeln!(out, "    decision   {decision}{error}");
        if let Some(approval) = &event.approval_id {
            let by = if event.approvers.is_empty() {
                String::new()
            } else {
                format!(", approved by {}", event.approvers.join(", "))
            };
            let _ = writeln!(out, "    approval   {approval}{by}");
        }
        if event.masked_count > 0 {
            let _ = writeln!(
                out,
                "    masked     {} values ({})",
                event.masked_count,
                event.masked_paths.join(", ")
            );
        }
    }
    out
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
