//! Observe mode through a real gateway process: a rule in observe mode,
//! then the whole policy, lets a request it would refuse through and
//! records what it would have done (audit event, `sessions show`,
//! `/metrics`, a warning at start).

use airlock_demo::AgentClient;
use airlock_sim::TokenSpec;
use airlock_store::SqliteStore;
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::support::Stack;

const UPSTREAM_TOKEN: &str = "observe-test-upstream-token";
const OBSERVED_RULE: &str = "[[rule]]\nname = \"no-new-groups\"\neffect = \"deny\"\nmode = \"observe\"\nactions = [\"Microsoft.Resources/subscriptions/resourceGroups/write\"]\n\n[[rule]]\nname = \"allow-all\"\neffect = \"allow\"\nactions = [\"*\"]\n";
const READS_ONLY: &str = "[[rule]]\nname = \"reads\"\neffect = \"allow\"\nactions = [\"*/read\"]\n";

/// What one gateway run recorded, per request in order: (method, status,
/// would_have, would_have_rule); the `sessions show` text; `/metrics`; the log.
struct Run {
    events: Vec<(String, u16, Option<String>, Option<String>)>,
    shown: String,
    metrics: String,
    log: String,
}

/// Starts a gateway with `policy` (and `[policy] mode = "observe"` when
/// `observe_all`), reads the groups, creates one, and collects the evidence.
async fn run(policy: &str, observe_all: bool) -> Run {
    let mut stack = Stack::start(UPSTREAM_TOKEN, policy, |config| {
        if observe_all {
            config.replacen("[policy]\n", "[policy]\nmode = \"observe\"\n", 1)
        } else {
            config
        }
    })
    .await;
    let url = stack.url.clone();

    let agent = AgentClient::new(&url, None)
        .unwrap()
        .with_token(stack.issuer.mint(&TokenSpec::agent()));
    let groups = format!(
        "/subscriptions/{}/resourcegroups",
        airlock_sim::SUBSCRIPTION_ID
    );
    let list = agent
        .get(&format!("{groups}?api-version=2021-04-01"))
        .await
        .unwrap();
    assert_eq!(list.status, StatusCode::OK);
    let created = agent
        .send(
            Method::PUT,
            &format!("{groups}/observed?api-version=2021-04-01"),
            &[],
            Some(Bytes::from_static(br#"{"location":"westeurope"}"#)),
        )
        .await
        .unwrap();
    assert!(
        created.status.is_success(),
        "observe mode let it through: {} {}",
        created.status,
        String::from_utf8_lossy(&created.body)
    );
    let metrics = AgentClient::new(&stack.admin_url, None)
        .unwrap()
        .get("/metrics")
        .await
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    stack.kill_gateway();

    let store = SqliteStore::open(stack.file("airlock.db")).await.unwrap();
    let mut pages = store.events_since(std::time::UNIX_EPOCH);
    let mut events = Vec::new();
    let mut session = String::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        for chained in page {
            let e = chained.event;
            session.clone_from(&e.session_id);
            events.push((e.method, e.status, e.would_have, e.would_have_rule));
        }
    }
    drop(store);
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["sessions", "show", &session, "--config"])
        .arg(stack.file("airlock.toml"))
        .output()
        .unwrap();
    assert!(shown.status.success(), "{shown:?}");
    let log = std::fs::read_to_string(stack.file("airlock.log")).unwrap_or_default();
    stack.shutdown().await;
    Run {
        events,
        shown: String::from_utf8_lossy(&shown.stdout).into_owned(),
        metrics,
        log,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observe_mode_rule_lets_the_request_through_and_records_what_it_would_have_done() {
    let run = run(OBSERVED_RULE, false).await;
    assert_eq!(
        run.events,
        vec![
            ("GET".into(), 200, None, None),
            (
                "PUT".into(),
                run.events[1].1,
                Some("deny".into()),
                Some("no-new-groups".into())
            ),
        ]
    );
    assert!(
        run.shown.contains(
            "OBSERVED   would have been deny by rule 'no-new-groups' (observe mode: not enforced)"
        ),
        "{}",
        run.shown
    );
    assert!(
        run.metrics
            .contains(r#"airlock_policy_observed_total{would_have="deny"} 1"#),
        "{}",
        run.metrics
    );
    assert!(
        run.log.contains("rule 'no-new-groups': in observe mode"),
        "{}",
        run.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_policy_in_observe_mode_allows_everything_and_records_the_rest() {
    let run = run(READS_ONLY, true).await;
    assert_eq!(run.events.len(), 2);
    assert_eq!(
        run.events[0].2, None,
        "the read was allowed by the rules too"
    );
    assert_eq!(
        (run.events[1].2.as_deref(), run.events[1].3.as_deref()),
        (Some("deny"), Some("no-matching-rule"))
    );
    assert!(
        run.log.contains("the whole policy is in observe mode"),
        "{}",
        run.log
    );
    assert!(
        run.shown.contains("allow by rule 'observe mode'"),
        "{}",
        run.shown
    );
}
