//! `airlock roles suggest`: a least-privilege Azure custom role for one
//! principal (or a group's members), drafted from what its recorded
//! requests actually used, with the evidence for every permission, the
//! same grant as Airlock rules, and optionally how a current role's
//! permissions were used (see [`airlock_policy::suggest`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use airlock_policy::replay::Verdict;
use airlock_policy::suggest::{Evidence, PermissionUse, RoleDefinition, Suggestion};
use anyhow::{Context as _, bail};
use serde::Serialize;

use crate::audit::{DatabaseArgs, parse_since};
use crate::replay::principal_matches;

/// `airlock roles …`.
#[derive(Debug, clap::Args)]
pub struct RolesArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: RolesCommand,
}

/// The `roles` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RolesCommand {
    /// Draft a custom role covering exactly what a principal used.
    Suggest(SuggestArgs),
}

/// `airlock roles suggest …`.
#[derive(Debug, clap::Args)]
pub struct SuggestArgs {
    /// The gateway configuration: its `[store]` holds the recorded trail.
    #[arg(long, short, default_value = "airlock.toml")]
    pub config: PathBuf,
    /// Whose requests: an object id, or `group:ID` for a group's members.
    #[arg(long)]
    pub principal: String,
    /// The window: an RFC 3339 time or a duration back.
    #[arg(long, default_value = "30d")]
    pub since: String,
    /// A current role to compare with: a built-in name (`Reader`,
    /// `Contributor`, …) or a JSON file as `az role definition list` prints
    /// one; its permissions never used in the window are listed.
    #[arg(long)]
    pub against: Option<String>,
    /// The suggested role's name.
    #[arg(long)]
    pub name: Option<String>,
    /// Assignable scopes instead of the derived ones (repeatable).
    #[arg(long)]
    pub scope: Vec<String>,
    /// `text` for people, `json` for machines.
    #[arg(long, value_enum, default_value_t = crate::replay::Format::Text)]
    pub format: crate::replay::Format,
}

/// Runs `airlock roles …`.
pub async fn run(args: RolesArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        RolesCommand::Suggest(args) => suggest(&args).await,
    }
}

/// Everything `suggest` prints, for `--format json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    principal: &'a str,
    #[serde(with = "airlock_core::serde_time::rfc3339")]
    since: SystemTime,
    #[serde(with = "airlock_core::serde_time::rfc3339")]
    until: SystemTime,
    requests: u64,
    sessions: usize,
    unclassified: u64,
    not_allowed: u64,
    unreadable: u64,
    role: &'a RoleDefinition,
    permissions: &'a [PermissionUse],
    rules: String,
    vaults: Vec<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    against: Option<Against<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Against<'a> {
    role: &'a str,
    permissions: Vec<PermissionUse>,
}

async fn suggest(args: &SuggestArgs) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now();
    let since = parse_since(&args.since, now)?;
    let current = args.against.as_deref().map(current_role).transpose()?;
    let store = DatabaseArgs {
        database: None,
        config: Some(args.config.clone()),
    }
    .open()
    .await?;
    let mut evidence = Evidence::default();
    let mut pages = store.events_since(since);
    while let Some(page) = pages.next_page().await? {
        for chained in page {
            let event = &chained.event;
            if !principal_matches(&args.principal, event) {
                continue;
            }
            let allowed =
                event.decision.as_deref().and_then(Verdict::parse) == Some(Verdict::Allow);
            match (allowed, event.decided_request()) {
                (true, Some((_, operation))) => {
                    evidence.allowed(&operation, event.time, &event.session_id);
                }
                (true, None) => evidence.allowed_unreadable(),
                (false, _) => evidence.not_allowed(),
            }
        }
    }
    let name = args.name.clone().unwrap_or_else(|| {
        format!(
            "Airlock least privilege for {}",
            args.principal.trim_start_matches("group:")
        )
    });
    let Some(suggestion) = evidence.suggest(&name, &args.scope) else {
        bail!(
            "no allowed, classified request of {} since {}: nothing to suggest (widen --since, or check --principal)",
            args.principal,
            humantime::format_rfc3339_seconds(since)
        );
    };
    let principals = match args.principal.strip_prefix("group:") {
        Some(group) => format!("groups = [{group:?}]"),
        None => format!("ids = [{:?}]", args.principal),
    };
    let rules = suggestion.rules_toml("suggested-least-privilege", &principals, evidence.vaults());
    let against = match &current {
        Some(role) => Some(Against {
            role: &role.name,
            permissions: evidence
                .against(role)
                .map_err(|e| anyhow::anyhow!("--against {}: {e}", role.name))?,
        }),
        None => None,
    };
    let report = Report {
        principal: &args.principal,
        since,
        until: now,
        requests: evidence.requests,
        sessions: evidence.sessions.len(),
        unclassified: evidence.unclassified,
        not_allowed: evidence.not_allowed,
        unreadable: evidence.unreadable,
        role: &suggestion.role,
        permissions: &suggestion.permissions,
        rules,
        vaults: evidence.vaults().iter().collect(),
        against,
    };
    match args.format {
        crate::replay::Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        crate::replay::Format::Text => print!("{}", render(&report, &suggestion)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// `--against`: a built-in role's name, else a JSON file.
fn current_role(text: &str) -> anyhow::Result<RoleDefinition> {
    if let Some(role) = RoleDefinition::builtin(text) {
        return Ok(role);
    }
    let path = std::path::Path::new(text);
    if !path.is_file() {
        bail!(
            "--against {text:?}: not a built-in role this build knows (Owner, Contributor, Reader, Key Vault Secrets User, Key Vault Secrets Officer, Storage Blob Data Reader, Storage Blob Data Contributor) nor a file; save the role with `az role definition list --name \"{text}\" --query [0] > role.json` and pass the file"
        );
    }
    let json = std::fs::read_to_string(path).with_context(|| format!("cannot read {text}"))?;
    // `az role definition list` prints the ARM shape; `create` takes the flat one.
    if let Ok(role) = serde_json::from_str::<RoleDefinition>(&json)
        && !role.name.is_empty()
    {
        return Ok(role);
    }
    from_arm(&json).with_context(|| format!("{text}: neither a role as `az role definition create` takes it (Name, Actions, …) nor as ARM returns it (properties.roleName, properties.permissions)"))
}

/// A role definition in ARM's shape (`properties.permissions[]`).
fn from_arm(json: &str) -> anyhow::Result<RoleDefinition> {
    let value: serde_json::Value = serde_json::from_str(json)?;
    let properties = value.get("properties").context("no properties")?;
    let strings = |v: Option<&serde_json::Value>| -> Vec<String> {
        v.and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut role = RoleDefinition {
        name: properties
            .get("roleName")
            .and_then(serde_json::Value::as_str)
            .context("no properties.roleName")?
            .to_owned(),
        assignable_scopes: strings(properties.get("assignableScopes")),
        ..RoleDefinition::default()
    };
    for permission in properties
        .get("permissions")
        .and_then(serde_json::Value::as_array)
        .context("no properties.permissions")?
    {
        role.actions.extend(strings(permission.get("actions")));
        role.not_actions
            .extend(strings(permission.get("notActions")));
        role.data_actions
            .extend(strings(permission.get("dataActions")));
        role.not_data_actions
            .extend(strings(permission.get("notDataActions")));
    }
    Ok(role)
}

fn render(report: &Report<'_>, suggestion: &Suggestion) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let time = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string();
    let mut out = format!(
        "Evidence: {} allowed request(s) of {} in {} session(s), {} to {}; {} the classifier did not understand (never granted); {} refused or held for approval (not counted as needed); {} recorded without their operations (older events, not read).\n",
        report.requests,
        report.principal,
        report.sessions,
        time(report.since),
        time(report.until),
        report.unclassified,
        report.not_allowed,
        report.unreadable
    );
    let _ = writeln!(
        out,
        "\nSuggested role (save as role.json; `az role definition create --role-definition role.json`):\n{}",
        serde_json::to_string_pretty(&suggestion.role)?
    );
    let _ = writeln!(out, "\nWhy each permission:");
    for permission in &suggestion.permissions {
        let _ = writeln!(out, "  {}", describe(permission, report.since));
    }
    if !report.vaults.is_empty() {
        let _ = writeln!(
            out,
            "\nKey Vault data was used in: {} (a vault's host does not name its resource group: assign the role at each vault too, or pass --scope)",
            report
                .vaults
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(out, "\nThe same grant as Airlock rules:\n{}", report.rules);
    if let Some(against) = &report.against {
        let _ = writeln!(out, "Against the current role {}:", against.role);
        for permission in &against.permissions {
            let _ = writeln!(out, "  {}", describe(permission, report.since));
        }
    }
    Ok(out)
}

/// `Microsoft.Storage/*/read (actions): 12 uses, last …; covers A (7), B (5)`,
/// or `… not used since …`.
fn describe(permission: &PermissionUse, since: SystemTime) -> String {
    let kind = if permission.data {
        "dataActions"
    } else {
        "actions"
    };
    match permission.last_used() {
        None => format!(
            "{} ({kind}): not used since {}",
            permission.permission,
            humantime::format_rfc3339_seconds(since)
        ),
        Some(last) => {
            let mut text = format!(
                "{} ({kind}): {} use(s), last {}",
                permission.permission,
                permission.count(),
                humantime::format_rfc3339_seconds(last)
            );
            if permission.covers.len() > 1
                || permission.covers[0].operation != permission.permission
            {
                let covers: Vec<String> = permission
                    .covers
                    .iter()
                    .map(|u| format!("{} ({})", u.operation, u.count))
                    .collect();
                text.push_str(&format!("; covers {}", covers.join(", ")));
            }
            text
        }
    }
}
