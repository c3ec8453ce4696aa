//! `airlock quota show`: every `[[quota]]` of the policy in force, and each
//! principal's (or group's) use of it in its window now, read from the
//! store the gateway counts in (SQLite, or PostgreSQL shared by replicas).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::SystemTime;

use airlock_policy::{Policy, Quota, Usage};
use anyhow::Context as _;
use serde::Serialize;

use crate::audit::DatabaseArgs;

/// `airlock quota …`.
#[derive(Debug, clap::Args)]
pub struct QuotaArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: QuotaCommand,
}

/// The `quota` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum QuotaCommand {
    /// Each quota's current use, per principal or group.
    Show {
        /// The gateway configuration: its `[store]` and `[policy] file`.
        #[arg(long, short, default_value = "airlock.toml")]
        config: PathBuf,
        /// The policy file, instead of the configuration's.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// `text` for people, `json` for machines.
        #[arg(long, value_enum, default_value_t = crate::replay::Format::Text)]
        format: crate::replay::Format,
    },
}

/// One quota's use, as `--format json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct QuotaUse {
    quota: String,
    limit: u64,
    unit: &'static str,
    window_seconds: u64,
    subjects: Vec<SubjectUse>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SubjectUse {
    subject: String,
    used: u64,
    /// When the oldest use leaves the window (RFC 3339).
    frees_at: Option<String>,
}

/// Runs `airlock quota …`.
///
/// # Errors
///
/// The configuration, the policy or the store cannot be read.
pub async fn run(args: QuotaArgs) -> anyhow::Result<()> {
    let QuotaCommand::Show {
        config,
        policy,
        format,
    } = args.command;
    let policy_path = match policy {
        Some(path) => path,
        None => policy_file(&config)?,
    };
    let policy = Policy::load(&policy_path)
        .with_context(|| format!("the policy {}", policy_path.display()))?;
    let store = DatabaseArgs {
        database: None,
        config: Some(config),
    }
    .open()
    .await?;
    let counts = store.quotas();
    let now = SystemTime::now();
    let mut uses = Vec::new();
    for quota in policy.quotas().iter() {
        let found = counts
            .usage(quota.name(), quota.window(), now)
            .await
            .with_context(|| format!("reading the use of {quota}"))?;
        uses.push(quota_use(quota, found));
    }
    match format {
        crate::replay::Format::Json => println!("{}", serde_json::to_string_pretty(&uses)?),
        crate::replay::Format::Text => print!("{}", render(&policy_path, &uses)),
    }
    Ok(())
}

/// `[policy] file` of the configuration at `config`.
fn policy_file(config: &PathBuf) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read config file {}", config.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}", config.display()))?;
    table
        .get("policy")
        .and_then(|policy| policy.get("file"))
        .and_then(toml::Value::as_str)
        .map(PathBuf::from)
        .with_context(|| {
            format!(
                "{} has no [policy] file; give --policy FILE",
                config.display()
            )
        })
}

fn quota_use(quota: &Quota, found: Vec<Usage>) -> QuotaUse {
    QuotaUse {
        quota: quota.name().to_owned(),
        limit: quota.limit().max(),
        unit: quota.limit().unit(),
        window_seconds: quota.window().as_secs(),
        subjects: found
            .into_iter()
            .map(|usage| SubjectUse {
                subject: usage.subject,
                used: usage.used,
                frees_at: usage
                    .oldest
                    .map(|at| humantime::format_rfc3339_seconds(at + quota.window()).to_string()),
            })
            .collect(),
    }
}

fn render(policy: &std::path::Path, uses: &[QuotaUse]) -> String {
    let mut out = String::new();
    if uses.is_empty() {
        let _ = writeln!(out, "{} has no [[quota]].", policy.display());
        return out;
    }
    for quota in uses {
        let _ = writeln!(
            out,
            "{}: {} {} per {} (sliding)",
            quota.quota,
            quota.limit,
            quota.unit,
            humantime::format_duration(std::time::Duration::from_secs(quota.window_seconds))
        );
        if quota.subjects.is_empty() {
            let _ = writeln!(out, "    no use in the window");
        }
        for subject in &quota.subjects {
            let full = if subject.used >= quota.limit {
                "  FULL"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    {:<44} {:>8} / {}{full}{}",
                subject.subject,
                subject.used,
                quota.limit,
                subject
                    .frees_at
                    .as_deref()
                    .map(|at| format!("  (oldest use leaves the window at {at})"))
                    .unwrap_or_default()
            );
        }
    }
    out
}
