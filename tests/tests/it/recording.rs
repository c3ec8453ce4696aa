//! Recording end to end: every request through a real gateway leaves exactly
//! one event in its SQLite file, the chain verifies, nothing secret is kept,
//! and a session replays on the admin page in a real (headless) Chromium.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_recorder::ChainedEvent;
use airlock_sim::{AGENTS_GROUP, APPROVERS_GROUP, TokenSpec};
use airlock_store::SqliteStore;
use airlock_tests::{Harness, Options, UPSTREAM_TOKEN, rg_path};
use http::{Method, StatusCode};
use tokio::io::AsyncWriteExt;

const WAIT: Duration = Duration::from_secs(30);

fn policy() -> String {
    format!(
        r#"
[[rule]]
name = "agents-read"
effect = "allow"
actions = ["*/read"]
data_actions = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
[rule.principals]
groups = ["{AGENTS_GROUP}"]

[[rule]]
name = "list-keys-is-held"
effect = "approve"
actions = ["Microsoft.Storage/storageAccounts/listKeys/action"]
[rule.approval]
groups = ["{APPROVERS_GROUP}"]
hold = "1s"

[[rule]]
name = "no-vm-delete"
effect = "deny"
actions = ["Microsoft.Compute/virtualMachines/delete"]
reason = "not delegated"
"#
    )
}

async fn harness(policy: Option<String>) -> Harness {
    Harness::start_with(Options {
        policy,
        ..Options::default()
    })
    .await
}

/// A request the test policy allows.
fn list_resource_groups() -> String {
    format!(
        "/subscriptions/{}/resourcegroups?api-version=2021-04-01",
        airlock_sim::SUBSCRIPTION_ID
    )
}

/// Waits until the database holds `count` events.
async fn wait_for_events(h: &Harness, count: usize) -> Vec<ChainedEvent> {
    let deadline = Instant::now() + WAIT;
    loop {
        let all = h.audit_trail().await;
        if all.len() >= count || Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn by_request_id(events: &[ChainedEvent]) -> HashMap<String, Vec<&ChainedEvent>> {
    let mut map: HashMap<String, Vec<&ChainedEvent>> = HashMap::new();
    for e in events {
        map.entry(e.event.request_id.clone().unwrap_or_default())
            .or_default()
            .push(e);
    }
    map
}

#[tokio::test]
async fn every_kind_of_request_is_recorded_exactly_once() {
    let h = harness(Some(policy())).await;
    let sub = airlock_sim::SUBSCRIPTION_ID;
    let allowed = h
        .agent
        .get(&format!(
            "/subscriptions/{sub}/resourcegroups?api-version=2021-04-01"
        ))
        .await
        .unwrap();
    let denied = h
        .agent
        .send(
            Method::DELETE,
            &format!(
                "{}/providers/Microsoft.Compute/virtualMachines/vm1?api-version=2024-07-01",
                rg_path()
            ),
            &[],
            None,
        )
        .await
        .unwrap();
    let anonymous = h
        .client(None)
        .get(&format!(
            "/subscriptions/{sub}/resourcegroups?api-version=2021-04-01"
        ))
        .await
        .unwrap();
    let held = h
        .agent
        .send(
            Method::POST,
            &format!(
                "{}/providers/Microsoft.Storage/storageAccounts/{}/listKeys?api-version=2023-05-01",
                rg_path(),
                airlock_sim::STORAGE_ACCOUNT
            ),
            &[],
            None,
        )
        .await
        .unwrap();
    let upstream_error = h
        .agent
        .get(&format!(
            "{}/providers/Microsoft.Storage/storageAccounts/nosuchaccount?api-version=2023-05-01",
            rg_path()
        ))
        .await
        .unwrap();
    assert_eq!(
        [
            allowed.status,
            denied.status,
            anonymous.status,
            held.status,
            upstream_error.status
        ],
        [
            StatusCode::OK,
            StatusCode::FORBIDDEN,
            StatusCode::UNAUTHORIZED,
            StatusCode::FORBIDDEN,
            StatusCode::NOT_FOUND
        ]
    );
    // A client that goes away while Azure is still answering.
    h.sim.set_response_delay(Duration::from_secs(2));
    let mut stream = tokio::net::TcpStream::connect(h.gateway.local_addr())
        .await
        .unwrap();
    let request = format!(
        "GET /subscriptions/{sub}/resourcegroups?api-version=2021-04-01 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\r\n",
        h.agent_token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);

    let all = wait_for_events(&h, 6).await;
    assert_eq!(
        all.len(),
        6,
        "one event per request: {:#?}",
        all.iter()
            .map(|e| (&e.event.method, &e.event.path, e.event.status))
            .collect::<Vec<_>>()
    );
    let ids = by_request_id(&all);
    let one = |response: &airlock_demo::AgentResponse| {
        let id = response.header("x-airlock-request-id").unwrap();
        let found = &ids[id];
        assert_eq!(
            found.len(),
            1,
            "request {id} recorded {} times",
            found.len()
        );
        found[0].event.clone()
    };
    let e = one(&allowed);
    assert_eq!(
        (e.status, e.decision.as_deref(), e.rule.as_deref()),
        (200, Some("allow"), Some("agents-read"))
    );
    assert_eq!(
        e.principal.as_ref().unwrap().id,
        "00000000-0000-0000-0000-0000000000a1"
    );
    assert_eq!(e.upstream_status, Some(200));
    assert!(
        e.upstream_request_id.is_some(),
        "Azure's request id is kept to join the Activity Log"
    );
    // So is the client request id Azure got (its `clientRequestId`).
    let sent = h.sim.requests()[0].headers["x-ms-client-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(e.upstream_client_request_id, Some(sent));
    assert_eq!(e.request_body_sha256, None, "a GET has no body");
    let e = one(&denied);
    assert_eq!(
        (e.status, e.decision.as_deref(), e.rule.as_deref()),
        (403, Some("deny"), Some("no-vm-delete"))
    );
    assert_eq!(
        e.operations,
        vec!["Microsoft.Compute/virtualMachines/delete"]
    );
    assert_eq!(e.upstream_status, None, "nothing went upstream");
    let e = one(&anonymous);
    assert_eq!((e.status, e.principal.is_none()), (401, true));
    assert_eq!(e.error_code.as_deref(), Some("AirlockUnauthenticated"));
    let e = one(&held);
    assert_eq!(e.decision.as_deref(), Some("requireApproval"));
    assert_eq!(e.error_code.as_deref(), Some("AirlockApprovalPending"));
    assert!(e.approval_id.is_some());
    let e = one(&upstream_error);
    assert_eq!((e.status, e.upstream_status), (404, Some(404)));
    let gone: Vec<_> = all
        .iter()
        .filter(|e| e.event.outcome == airlock_recorder::Outcome::ClientGone)
        .collect();
    assert_eq!(gone.len(), 1, "the client that went away");
    // One session for the agent's requests; the chain verifies.
    let store = SqliteStore::open(h.dir.path().join("airlock.db"))
        .await
        .unwrap();
    assert!(store.verify().await.unwrap().is_ok());
    h.shutdown().await;
}

/// The request id an event is filed under is the gateway's: one an agent
/// sends is replaced, so no agent chooses (or repeats) the id of its own
/// audit event.
#[tokio::test]
async fn the_request_id_is_the_gateways_not_the_agents() {
    let h = harness(Some(policy())).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let answer = h
            .agent
            .send(
                Method::GET,
                &list_resource_groups(),
                &[("x-airlock-request-id", "chosen-by-the-agent")],
                None,
            )
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        let id = answer.header("x-airlock-request-id").unwrap().to_owned();
        assert!(
            id.len() == 36 && id.matches('-').count() == 4,
            "a UUID the gateway minted: {id}"
        );
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
    let events = wait_for_events(&h, 2).await;
    let recorded: Vec<_> = events
        .iter()
        .map(|e| e.event.request_id.clone().unwrap())
        .collect();
    assert_eq!(recorded, ids);
    h.shutdown().await;
}

/// A request's body is recorded by the SHA-256 of all of it: the excerpt
/// is capped and masked, the digest names the exact body Azure got.
#[tokio::test]
async fn a_request_body_is_recorded_by_its_digest() {
    let h = harness(Some(format!(
        "{}\n[[rule]]\nname = \"groups-write\"\neffect = \"allow\"\nactions = [\"Microsoft.Resources/subscriptions/resourceGroups/write\"]\n",
        policy()
    )))
    .await;
    let body = format!(
        r#"{{"location":"westeurope","tags":{{"note":"{}"}}}}"#,
        "x".repeat(20_000)
    );
    let created = h
        .agent
        .send(
            Method::PUT,
            &format!("{}?api-version=2021-04-01", rg_path()),
            &[("content-type", "application/json")],
            Some(body.clone().into()),
        )
        .await
        .unwrap();
    assert!(created.status.is_success(), "{:?}", created.body);
    let events = wait_for_events(&h, 1).await;
    let e = &events.last().unwrap().event;
    assert_eq!(e.method, "PUT");
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(body.as_bytes()));
    assert_eq!(e.request_body_sha256.as_deref(), Some(digest.as_str()));
    assert!(
        e.request_body.as_deref().unwrap().len() < body.len(),
        "the excerpt is capped; the digest covers the whole body"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn no_token_or_secret_is_ever_stored() {
    let h = harness(Some(policy())).await;
    let secret = h.agent.get(&h.secret_url()).await.unwrap();
    assert_eq!(secret.status, StatusCode::OK);
    assert!(!String::from_utf8_lossy(&secret.body).contains(airlock_sim::SECRET_VALUE));
    let _ = h
        .agent
        .get(&format!(
            "{}/resources?api-version=2021-04-01&sig=c2VjcmV0LXNpZ25hdHVyZQ",
            rg_path()
        ))
        .await
        .unwrap();
    h.client(Some("not-a-real.token.value"))
        .get("/subscriptions?api-version=2022-12-01")
        .await
        .unwrap();
    let all = wait_for_events(&h, 3).await;
    assert_eq!(all.len(), 3);
    drop(all);
    let db = std::fs::read(h.dir.path().join("airlock.db")).unwrap();
    let wal = std::fs::read(h.dir.path().join("airlock.db-wal")).unwrap_or_default();
    let signature = h.agent_token.rsplit('.').next().unwrap();
    for file in [&db, &wal] {
        for needle in [
            airlock_sim::SECRET_VALUE,
            signature,
            UPSTREAM_TOKEN,
            "not-a-real.token.value",
            "c2VjcmV0LXNpZ25hdHVyZQ",
        ] {
            assert!(
                !file.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "'{needle}' reached the audit database"
            );
        }
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_soak_of_20000_requests_leaves_exactly_20000_verifiable_events() {
    let h = harness(None).await;
    let path = list_resource_groups();
    let agent = Arc::new(h.agent.clone());
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (agent, path, sent) = (agent.clone(), path.clone(), sent.clone());
            tokio::spawn(async move {
                while sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 20_000 {
                    let answer = agent.get(&path).await.unwrap();
                    assert_eq!(answer.status, StatusCode::OK);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    // Fail-closed, every finished response's event is stored already.
    let metrics = h.metrics().await;
    assert_eq!(metrics["airlock_audit_events_recorded_total"], 20_000);
    assert_eq!(metrics["airlock_audit_events_dropped_total"], 0);
    let database = h.dir.path().join("airlock.db");
    // Shutting down flushes whatever is still queued.
    let Harness {
        gateway,
        sim,
        issuer,
        dir,
        ..
    } = h;
    let stats = gateway.shutdown().await;
    assert_eq!(stats.recorded, 20_000, "{stats:?}");
    assert_eq!(stats.dropped, 0);
    let store = SqliteStore::open(&database).await.unwrap();
    let report = store.verify().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events_checked, 20_000);
    sim.shutdown().await;
    issuer.shutdown().await;
    drop(dir);
}

/// Operators scrape the recorder's counters from the admin listener without
/// a token; on the agents' listener `/metrics` is just another request,
/// refused and recorded. Both listeners report ready.
#[tokio::test]
async fn recorder_metrics_are_scraped_from_the_admin_listener_only() {
    let h = harness(None).await;
    let path = list_resource_groups();
    for _ in 0..3 {
        assert_eq!(h.agent.get(&path).await.unwrap().status, StatusCode::OK);
    }
    let metrics = h.metrics().await;
    assert_eq!(metrics["airlock_audit_events_recorded_total"], 3);
    assert_eq!(metrics["airlock_audit_enabled"], 1);
    assert_eq!(metrics["airlock_audit_healthy"], 1);
    assert_eq!(metrics["airlock_ready"], 1);
    // What the gateway decided, by provider and status class, and how fast.
    let allowed = r#"airlock_requests_total{decision="allow",provider="Microsoft.Resources",status_class="2xx"}"#;
    assert_eq!(metrics[allowed], 3, "{metrics:?}");
    assert_eq!(
        metrics[r#"airlock_request_duration_seconds_count{decision="allow"}"#],
        3
    );
    assert_eq!(metrics["airlock_upstream_duration_seconds_count"], 3);
    // One agent token: verified once, then answered from the cache.
    assert_eq!(
        metrics[r#"airlock_token_validations_total{result="verified"}"#],
        1
    );
    assert_eq!(
        metrics[r#"airlock_token_validations_total{result="cached"}"#],
        2
    );
    // Each listing was inspected for secrets and had none.
    assert_eq!(
        metrics[r#"airlock_masking_responses_total{result="clean"}"#],
        3
    );
    let batches = metrics["airlock_audit_batches_stored_total"];
    assert!((1..=3).contains(&batches), "{batches}");

    let hidden = h.agent.get("/metrics").await.unwrap();
    assert_ne!(hidden.status, StatusCode::OK);
    let body = String::from_utf8_lossy(&hidden.body);
    assert!(!body.contains("airlock_audit"), "{body}");
    let metrics = h.metrics().await;
    assert_eq!(metrics["airlock_audit_events_recorded_total"], 4);
    // Refused before policy: no decision, no provider; never a path as a label.
    assert!(
        metrics
            .iter()
            .any(|(name, n)| name.contains(r#"decision="none""#) && *n == 1),
        "{metrics:?}"
    );
    assert!(metrics.keys().all(|name| !name.contains("/metrics")));

    for client in [h.client(None), h.admin(None)] {
        let ready = client.get("/readyz").await.unwrap();
        assert_eq!(
            (ready.status, &ready.body[..]),
            (StatusCode::OK, &b"ready"[..])
        );
    }
    h.shutdown().await;
}

/// The replay page, rendered by headless Chromium (Debian's `chromium`,
/// which `.ci/run` installs): the script fetches the session with the
/// approver's token from the URL fragment and renders it as text.
#[tokio::test]
async fn a_session_replays_as_a_timeline_in_a_browser() {
    let h = harness(Some(policy())).await;
    let sub = airlock_sim::SUBSCRIPTION_ID;
    // A display name that would be markup if the page inserted HTML.
    let spec = TokenSpec::new(
        "<img src=x onerror=alert(1)>",
        "00000000-0000-0000-0000-0000000000e1",
        airlock_core::PrincipalKind::User,
        "00000000-0000-0000-0000-0000000000e2",
    )
    .groups([AGENTS_GROUP]);
    let agent = h.client(Some(&h.issuer.mint(&spec)));
    let session = [("x-airlock-session", "replay-1")];
    agent
        .send(
            Method::GET,
            &format!("/subscriptions/{sub}/resourcegroups?api-version=2021-04-01"),
            &session,
            None,
        )
        .await
        .unwrap();
    agent
        .send(
            Method::DELETE,
            &format!(
                "{}/providers/Microsoft.Compute/virtualMachines/vm1?api-version=2024-07-01",
                rg_path()
            ),
            &session,
            None,
        )
        .await
        .unwrap();
    let all = wait_for_events(&h, 2).await;
    let session_id = all[0].event.session_id.clone();
    assert_eq!(all[1].event.session_id, session_id);
    assert!(session_id.ends_with("replay-1"), "{session_id}");

    let url = format!(
        "{}/sessions/{}#token={}",
        h.gateway.admin_url(),
        session_id,
        h.issuer.mint(&TokenSpec::approver())
    );
    let dom = chromium_dump_dom(&url).await;
    assert!(
        dom.contains(r#"data-loaded="true""#),
        "the page did not load the session:\n{dom}"
    );
    assert!(dom.contains("2 requests, 1 denied"), "{dom}");
    assert!(dom.contains("deny (no-vm-delete)"), "{dom}");
    assert!(
        dom.contains("Microsoft.Compute/virtualMachines/delete"),
        "{dom}"
    );
    assert!(
        dom.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "names are text, not markup:\n{dom}"
    );
    assert!(!dom.contains("<img src=\"x\""), "{dom}");

    // Without a token, or as the agent, the page shows the refusal and no data.
    let as_agent = format!(
        "{}/sessions/{}#token={}",
        h.gateway.admin_url(),
        session_id,
        h.agent_token
    );
    let dom = chromium_dump_dom(&as_agent).await;
    assert!(dom.contains("AirlockNotAnAuditReader"), "{dom}");
    assert!(!dom.contains("no-vm-delete"), "{dom}");
    h.shutdown().await;
}

async fn chromium_dump_dom(url: &str) -> String {
    let chromium = airlock_tests::browser::chromium();
    let profile = tempfile::tempdir().unwrap();
    let url = url.to_owned();
    let profile_arg = format!("--user-data-dir={}", profile.path().display());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(chromium)
            .args(airlock_tests::browser::HEADLESS)
            .args([
                "--virtual-time-budget=10000",
                &profile_arg,
                "--dump-dom",
                &url,
            ])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
