//! `airlock policy replay`: every recorded request decided again under a
//! candidate policy, and what would change (see
//! [`airlock_policy::replay`]). Reads the audit trail from the store the
//! gateway configuration names (SQLite or PostgreSQL), page by page, so a
//! long trail replays in bounded memory; sends nothing anywhere.
//!
//! Exit codes, for a policy repository's CI: 0 nothing would change, 1
//! something would, 2 the replay could not run (bad policy, no database).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use airlock_policy::Policy;
use airlock_policy::replay::{Replay, ReplayReport, Verdict};
use airlock_recorder::AuditEvent;
use anyhow::Context as _;

use crate::audit::{DatabaseArgs, parse_since};

/// `airlock policy replay …`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The gateway configuration: its `[store]` holds the recorded trail.
    #[arg(long, short, default_value = "airlock.toml")]
    pub config: PathBuf,
    /// The candidate policy file to decide the recorded requests under.
    #[arg(long)]
    pub policy: PathBuf,
    /// Only requests since then: an RFC 3339 time or a duration back (`7d`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only this principal's requests: an object id, or `group:ID` for the
    /// requests of a group's members.
    #[arg(long)]
    pub principal: Option<String>,
    /// Only this session's requests.
    #[arg(long)]
    pub session: Option<String>,
    /// `text` for people, `json` for machines.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Paragraphs.
    Text,
    /// One JSON object ([`ReplayReport`]).
    Json,
}

/// Runs the replay and prints its report; see the module for exit codes.
pub async fn run(args: ReplayArgs) -> ExitCode {
    match replay(&args).await {
        Ok(report) => {
            match args.format {
                Format::Text => print!("{}", report.render_text()),
                Format::Json => match serde_json::to_string_pretty(&report) {
                    Ok(json) => println!("{json}"),
                    Err(error) => {
                        eprintln!("error: cannot encode the report: {error}");
                        return ExitCode::from(2);
                    }
                },
            }
            if report.changes.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("error: {}", crate::error_text(error.as_ref()));
            ExitCode::from(2)
        }
    }
}

/// Reads the trail and decides each selected request again.
async fn replay(args: &ReplayArgs) -> anyhow::Result<ReplayReport> {
    let candidate = Policy::load(&args.policy)
        .with_context(|| format!("the candidate policy {}", args.policy.display()))?;
    let since = match &args.since {
        Some(text) => parse_since(text, SystemTime::now())?,
        None => SystemTime::UNIX_EPOCH,
    };
    let store = DatabaseArgs {
        database: None,
        config: Some(args.config.clone()),
    }
    .open()
    .await?;
    let mut replay = Replay::new(&candidate);
    let mut pages = store.events_since(since);
    while let Some(page) = pages.next_page().await? {
        for chained in page {
            let event = &chained.event;
            if selected(args, event) {
                add(&mut replay, event);
            }
        }
    }
    Ok(replay.finish())
}

/// Whether `--principal` and `--session` select `event`.
fn selected(args: &ReplayArgs, event: &AuditEvent) -> bool {
    if args
        .session
        .as_ref()
        .is_some_and(|s| *s != event.session_id)
    {
        return false;
    }
    args.principal
        .as_deref()
        .is_none_or(|wanted| principal_matches(wanted, event))
}

/// Whether `event`'s caller is `wanted`: an object id, or `group:ID` for
/// any member of that group.
pub(crate) fn principal_matches(wanted: &str, event: &AuditEvent) -> bool {
    let Some(principal) = &event.principal else {
        return false;
    };
    match wanted.strip_prefix("group:") {
        Some(group) => principal
            .groups
            .iter()
            .any(|g| g.eq_ignore_ascii_case(group)),
        None => principal.id.eq_ignore_ascii_case(wanted),
    }
}

/// Decides `event` again, or counts why it cannot be.
fn add(replay: &mut Replay<'_, Policy>, event: &AuditEvent) {
    let Some(recorded) = event.decision.as_deref() else {
        return replay.skip("refused before policy decided (e.g. no valid token)");
    };
    let Some(recorded) = Verdict::parse(recorded) else {
        return replay.skip("with a decision this build does not know");
    };
    let Some((principal, operation)) = event.decided_request() else {
        return replay.skip("recorded without their classified operations (older events)");
    };
    replay.add(&principal, &operation, recorded, || example(event));
}

/// `GET /subscriptions/… at 2026-12-04T10:00:00.000Z (session …)`.
fn example(event: &AuditEvent) -> String {
    format!(
        "{} {} at {} (session {}{})",
        event.method,
        event.path,
        humantime::format_rfc3339_millis(event.time),
        event.session_id,
        event
            .request_id
            .as_deref()
            .map(|id| format!(", request {id}"))
            .unwrap_or_default()
    )
}
