//! `trail`: writes a synthetic audit trail into a new SQLite file, for the
//! replay probe of `cargo xtask bench` (`airlock policy replay` over a
//! million events). Fifty agents, each reading storage accounts, listing
//! resource groups, listing storage keys and reading secrets, in sessions
//! of a hundred requests, one second apart; every event chained and stored
//! as the gateway stores them (batches of 1 000).
//!
//! Prints one line: `wrote N events in S s`.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use airlock_recorder::chain::EXAMPLE_EVENT;
use airlock_recorder::{AuditEvent, AuditSink as _, ChainHead, EventPrincipal, RecordedOperation};
use anyhow::Context as _;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "trail",
    about = "Writes a synthetic audit trail to a new SQLite file."
)]
struct Args {
    /// The database file to create.
    #[arg(long)]
    database: PathBuf,
    /// How many events.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
}

const SUBSCRIPTION: &str = "/subscriptions/11111111-1111-1111-1111-111111111111";

/// What the agents do, in turn: (method, operation, data plane, scope under the subscription).
const REQUESTS: [(&str, &str, bool, &str); 4] = [
    (
        "GET",
        "Microsoft.Storage/storageAccounts/read",
        false,
        "/resourceGroups/demo-rg/providers/Microsoft.Storage/storageAccounts/demostore",
    ),
    (
        "GET",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        false,
        "",
    ),
    (
        "POST",
        "Microsoft.Storage/storageAccounts/listKeys/action",
        false,
        "/resourceGroups/demo-rg/providers/Microsoft.Storage/storageAccounts/demostore",
    ),
    (
        "GET",
        "Microsoft.KeyVault/vaults/secrets/getSecret/action",
        true,
        "",
    ),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        !args.database.exists(),
        "{} exists: the trail goes to a new file",
        args.database.display()
    );
    let store = airlock_store::SqliteStore::open(&args.database)
        .await
        .with_context(|| format!("cannot create {}", args.database.display()))?;
    let template: AuditEvent = serde_json::from_str(EXAMPLE_EVENT)?;
    let start = SystemTime::now() - Duration::from_secs(args.events);
    let began = Instant::now();
    let mut head = ChainHead::default();
    let mut batch = Vec::with_capacity(1_000);
    for n in 0..args.events {
        batch.push(head.link(event(&template, n, start)));
        if batch.len() == 1_000 || n + 1 == args.events {
            store
                .append(&batch)
                .await
                .map_err(|e| anyhow::anyhow!("storing events: {e}"))?;
            batch.clear();
        }
    }
    println!(
        "wrote {} events in {:.1} s",
        args.events,
        began.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The `n`th event: agent `n % 50`, request kind `n % 4`, session per 100.
fn event(template: &AuditEvent, n: u64, start: SystemTime) -> AuditEvent {
    let agent = n % 50;
    let (method, operation, data, scope) = REQUESTS[usize::try_from(n % 4).unwrap_or(0)];
    let scope = if data {
        format!("/providers/Microsoft.KeyVault/vaults/vault-{agent}/secrets/db-password")
    } else {
        format!("{SUBSCRIPTION}{scope}")
    };
    let mut event = template.clone();
    event.id = format!("00000000-0000-4000-8000-{n:012}");
    event.time = start + Duration::from_secs(n);
    event.session_id = format!("session-{agent}-{}", n / 5_000);
    event.request_id = Some(format!("request-{n}"));
    event.method = method.to_owned();
    event.path = scope.clone();
    event.principal = Some(EventPrincipal {
        id: format!("00000000-0000-4000-9000-{agent:012}"),
        tenant_id: "22222222-2222-2222-2222-222222222222".into(),
        kind: "managed_identity".into(),
        display_name: Some(format!("agent-{agent}")),
        app_id: None,
        agent: None,
        groups: vec!["00000000-0000-0000-0000-0000000000c1".into()],
        roles: Vec::new(),
    });
    event.operations = vec![operation.to_owned()];
    event.scope = Some(scope.clone());
    event.classified = vec![RecordedOperation {
        name: operation.to_owned(),
        data,
        scope,
        unknown: false,
    }];
    event.decision = Some("allow".into());
    event.rule = Some("agents".into());
    event
}
