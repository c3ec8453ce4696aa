//! `PostgresStore` on a real PostgreSQL server of its own per test
//! (`airlock_store::testing`): the `ApprovalStore` conformance suite, two
//! replicas on one database (decisions reach the other's waiters, with and
//! without the notification connection; a grant is used once), one audit
//! chain per replica (verified, merged for reading, tampering found), the
//! schema's migrations, TLS, and the database going away and coming back.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use airlock_approval::conformance::{pending_request, principal};
use airlock_approval::{ApprovalError, ApprovalState, ApprovalStore};
use airlock_core::ApprovalWait;
use airlock_http::TrustRoots;
use airlock_recorder::chain::EXAMPLE_EVENT;
use airlock_recorder::{AuditEvent, AuditSink, ChainHead, ChainedEvent};
use airlock_store::audit::{AuditProblem, generate_signing_key};
use airlock_store::testing::PostgresServer;
use airlock_store::{PostgresOptions, PostgresStore, StoreError};

/// A new server, a database on it, and a store (replica `a`) on that.
async fn started() -> (PostgresServer, String, PostgresStore) {
    let server = tokio::task::spawn_blocking(PostgresServer::start)
        .await
        .unwrap()
        .unwrap();
    let url = server.create_database("airlock").await.unwrap();
    let store = replica(&url, "a").await;
    (server, url, store)
}

async fn replica(url: &str, id: &str) -> PostgresStore {
    PostgresStore::connect(
        PostgresOptions::new(url)
            .password(PostgresServer::PASSWORD)
            .replica(id),
    )
    .await
    .unwrap()
}

async fn postgres() -> (PostgresServer, Arc<dyn ApprovalStore>) {
    let (server, _, store) = started().await;
    (server, Arc::new(store))
}

airlock_approval::conformance_tests!(postgres);

/// Raw SQL on the test database, as an operator (or an attacker) has it.
async fn sql(url: &str, statement: &str) {
    let url = url.replacen(
        "airlock@",
        &format!("airlock:{}@", PostgresServer::PASSWORD),
        1,
    );
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.batch_execute(statement).await.unwrap();
}

async fn wait_for_state(
    receiver: &mut tokio::sync::watch::Receiver<ApprovalState>,
    within: Duration,
) -> ApprovalState {
    tokio::time::timeout(
        within,
        receiver.wait_for(|state| *state != ApprovalState::Pending),
    )
    .await
    .expect("the decision reached the other replica's waiter in time")
    .map(|state| *state)
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_through_one_replica_releases_a_waiter_on_another_within_a_second() {
    let (_server, url, a) = started().await;
    let b = replica(&url, "b").await;
    let alice = principal("alice", &["approvers"]);

    let held = pending_request(&principal("agent", &[]), ApprovalWait::Hold);
    a.create(held.clone(), None).await.unwrap();
    let mut waiting = a.subscribe(held.id).await.unwrap();
    b.decide(held.id, &alice, true, None).await.unwrap();
    assert_eq!(
        wait_for_state(&mut waiting, Duration::from_secs(1)).await,
        ApprovalState::Approved
    );

    // The notification connection is cut (as a failover or an idle-killer
    // would): the waiter still learns of the next decision within a second,
    // by polling and then by the connection coming back.
    let denied = pending_request(&principal("agent", &[]), ApprovalWait::Hold);
    a.create(denied.clone(), None).await.unwrap();
    let mut waiting = a.subscribe(denied.id).await.unwrap();
    sql(
        &url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'",
    )
    .await;
    b.decide(denied.id, &alice, false, None).await.unwrap();
    assert_eq!(
        wait_for_state(&mut waiting, Duration::from_secs(1)).await,
        ApprovalState::Denied
    );
}

/// What replica `b` asks for, decides and expires reaches `a`'s forwarded
/// notifier (its approval page) as events; `a`'s own changes do not come
/// back to it (it announced those itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replicas_approval_events_reach_this_replicas_page() {
    use airlock_approval::{ApprovalEvent, RecordingNotifier};

    let (_server, url, a) = started().await;
    let b = replica(&url, "b").await;
    let page = Arc::new(RecordingNotifier::new());
    let _forwarding = a.forward_events(page.clone());
    let alice = principal("alice", &["approvers"]);
    let agent = principal("agent", &[]);

    let mine = pending_request(&agent, ApprovalWait::Hold);
    a.create(mine.clone(), None).await.unwrap();
    a.decide(mine.id, &alice, false, None).await.unwrap();
    let theirs = pending_request(&agent, ApprovalWait::Hold);
    b.create(theirs.clone(), None).await.unwrap();
    // Each event carries the request as read when its notification
    // arrives, so wait for the first before deciding: deciding at once
    // could (rightly) show the new request already approved.
    let events = page
        .wait_for(Duration::from_secs(2), |events| !events.is_empty())
        .await
        .expect("b's new request reaches a");
    assert!(
        matches!(&events[0], ApprovalEvent::New(r) if r.id == theirs.id && r.state == ApprovalState::Pending),
        "{events:?}"
    );
    b.decide(theirs.id, &alice, true, Some("ok".into()))
        .await
        .unwrap();
    let events = page
        .wait_for(Duration::from_secs(2), |events| events.len() >= 2)
        .await
        .expect("b's decision reaches a");
    assert!(
        matches!(&events[1], ApprovalEvent::Decided(r) if r.id == theirs.id && r.state == ApprovalState::Approved),
        "{events:?}"
    );
    // Nothing of `a`'s own, even after a moment more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        page.events().iter().all(|e| e.request().id == theirs.id),
        "{:?}",
        page.events()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_racing_for_one_grant_use_it_exactly_once() {
    let (_server, url, a) = started().await;
    let b = replica(&url, "b").await;
    let replicas: [Arc<dyn ApprovalStore>; 2] = [Arc::new(a), Arc::new(b)];
    for _round in 0..3 {
        let held = pending_request(&principal("agent", &[]), ApprovalWait::Hold);
        replicas[0].create(held.clone(), None).await.unwrap();
        replicas[1]
            .decide(held.id, &principal("alice", &["approvers"]), true, None)
            .await
            .unwrap();
        let retries: Vec<_> = (0..16)
            .map(|i| {
                let store = replicas[i % 2].clone();
                tokio::spawn(async move { store.consume_grant(&held.fingerprint).await.unwrap() })
            })
            .collect();
        let mut admitted = Vec::new();
        for task in retries {
            admitted.extend(task.await.unwrap());
        }
        assert_eq!(admitted, vec![held.id], "one retry, on one replica, got it");
    }
}

/// An event of `session` at `time`, numbered `n`.
fn event(session: &str, time: SystemTime, n: usize) -> AuditEvent {
    let mut event: AuditEvent = serde_json::from_str(EXAMPLE_EVENT).unwrap();
    event.id = format!("00000000-0000-0000-0000-{n:012}");
    event.session_id = session.into();
    event.time = time;
    event.path = format!("/subscriptions/s/resourceGroups/rg-{n}");
    event
}

fn link(head: &mut ChainHead, events: Vec<AuditEvent>) -> Vec<ChainedEvent> {
    events.into_iter().map(|event| head.link(event)).collect()
}

#[tokio::test]
async fn each_replica_appends_its_own_chain_and_readers_merge_them_by_time() {
    let (_server, url, a) = started().await;
    let b = replica(&url, "b").await;
    let start = SystemTime::now() - Duration::from_secs(60);
    let at = |s: u64| start + Duration::from_secs(s);

    // One session's requests reach both replicas, interleaved in time.
    let mut head_a = a.head().await.unwrap().unwrap();
    let mut head_b = b.head().await.unwrap().unwrap();
    assert_eq!(
        (&head_a, &head_b),
        (&ChainHead::default(), &ChainHead::default())
    );
    let mut denied = event("s1", at(3), 3);
    denied.decision = Some("deny".into());
    a.append(&link(&mut head_a, vec![event("s1", at(1), 1), denied]))
        .await
        .unwrap();
    let mut approved = event("s1", at(2), 2);
    approved.approval_id = Some("appr-1".into());
    b.append(&link(&mut head_b, vec![approved, event("s2", at(9), 9)]))
        .await
        .unwrap();
    assert_eq!(a.head().await.unwrap(), Some(head_a.clone()));
    assert_eq!(b.head().await.unwrap(), Some(head_b.clone()));

    let reports = a.verify().await.unwrap();
    let chains: Vec<(&str, u64, bool)> = reports
        .iter()
        .map(|c| (c.chain.as_str(), c.report.events_checked, c.report.is_ok()))
        .collect();
    assert_eq!(chains, [("a", 2, true), ("b", 2, true)]);

    let sessions = b.sessions(10).await.unwrap();
    let ids: Vec<&str> = sessions.iter().map(|s| s.session_id.as_str()).collect();
    assert_eq!(ids, ["s2", "s1"], "newest activity first");
    assert_eq!((sessions[1].events, sessions[1].denied), (3, 1));
    assert_eq!(sessions[1].approvals, ["appr-1"]);
    let paths: Vec<String> = a
        .session_events("s1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.path)
        .collect();
    assert!(
        paths[0].ends_with("rg-1") && paths[1].ends_with("rg-2") && paths[2].ends_with("rg-3"),
        "by time across replicas: {paths:?}"
    );

    let mut pages = a.events_since(at(2));
    let mut exported = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        exported.extend(page.into_iter().map(|e| e.event.path));
    }
    assert_eq!(exported.len(), 3, "rg-2, rg-3 and rg-9: {exported:?}");

    // Another process started with replica id `a` cannot fork a's chain.
    let impostor = replica(&url, "a").await;
    let mut stale = ChainHead::default();
    let refused = impostor
        .append(&link(&mut stale, vec![event("s3", at(10), 10)]))
        .await
        .unwrap_err();
    assert!(refused.0.contains("do not continue"), "{refused}");
    assert!(a.verify().await.unwrap().iter().all(|c| c.report.is_ok()));

    // An event edited in the database is found, in its chain.
    sql(
        &url,
        "UPDATE audit_events SET doc = replace(doc, 'rg-9', 'rg-x') WHERE chain = 'b'",
    )
    .await;
    let reports = a.verify().await.unwrap();
    assert!(reports[0].report.is_ok());
    assert!(
        matches!(reports[1].report.problem, Some(AuditProblem::Break(_))),
        "{reports:?}"
    );
}

#[tokio::test]
async fn signed_checkpoints_cover_every_chain_and_catch_a_rewritten_one() {
    let (_server, url, a) = started().await;
    let b = replica(&url, "b").await;
    let now = SystemTime::now();
    for (store, n) in [(&a, 1), (&b, 10)] {
        let mut head = store.head().await.unwrap().unwrap();
        store
            .append(&link(
                &mut head,
                (n..n + 3).map(|i| event("s", now, i)).collect(),
            ))
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let key = generate_signing_key(&dir.path().join("signing.key")).unwrap();
    let made = a.checkpoint(&key).await.unwrap();
    let chains: Vec<&str> = made.iter().map(|(chain, _)| chain.as_str()).collect();
    assert_eq!(chains, ["a", "b"]);
    assert_eq!(a.checkpoints(Some("b")).await.unwrap().len(), 1);
    assert!(a.verify().await.unwrap().iter().all(|c| c.report.is_ok()));

    // b's chain rewritten from genesis, consistently: its checkpoint no longer lies on it.
    sql(&url, "DELETE FROM audit_events WHERE chain = 'b'").await;
    let rewritten = PostgresStore::connect(
        PostgresOptions::new(&url)
            .password(PostgresServer::PASSWORD)
            .replica("b"),
    )
    .await
    .unwrap();
    let mut head = ChainHead::default();
    rewritten
        .append(&link(
            &mut head,
            (20..23).map(|i| event("s", now, i)).collect(),
        ))
        .await
        .unwrap();
    let reports = a.verify().await.unwrap();
    assert!(reports[0].report.is_ok());
    assert!(
        matches!(
            reports[1].report.problem,
            Some(AuditProblem::CheckpointNotOnChain { seq: 3, .. })
        ),
        "{reports:?}"
    );
}

#[tokio::test]
async fn replicas_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let server = tokio::task::spawn_blocking(PostgresServer::start)
        .await
        .unwrap()
        .unwrap();
    let url = server.create_database("airlock").await.unwrap();
    let starts: Vec<_> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|id| {
            let url = url.clone();
            tokio::spawn(async move { replica(&url, id).await })
        })
        .collect();
    for start in starts {
        start.await.unwrap();
    }
    sql(&url, "INSERT INTO airlock_schema (version) VALUES (99)").await;
    let refused =
        PostgresStore::connect(PostgresOptions::new(&url).password(PostgresServer::PASSWORD))
            .await
            .unwrap_err();
    assert!(
        matches!(refused, StoreError::TooNew { found: 99, .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("upgrade Airlock"), "{refused}");
}

#[tokio::test]
async fn a_wrong_password_or_a_bad_url_is_refused_with_what_to_fix() {
    let (server, url, _store) = started().await;
    let wrong = PostgresStore::connect(PostgresOptions::new(&url).password("not-it"))
        .await
        .unwrap_err();
    let message = wrong.to_string();
    assert!(message.contains("password"), "{message}");
    assert!(!message.contains(PostgresServer::PASSWORD));
    let bad = PostgresStore::connect(PostgresOptions::new("postgres://a@b:notaport/x"))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("postgres://USER@HOST"), "{bad}");
    drop(server);
}

#[tokio::test]
async fn tls_to_the_database_is_verified_against_the_given_ca() {
    let server = tokio::task::spawn_blocking(PostgresServer::start_with_tls)
        .await
        .unwrap()
        .unwrap();
    let url = server.create_database("airlock").await.unwrap();
    let url = format!("{url}?sslmode=require");
    let ca = server.ca_pem().unwrap().to_owned();
    let store = PostgresStore::connect(
        PostgresOptions::new(&url)
            .password(PostgresServer::PASSWORD)
            .roots(TrustRoots::none().with_ca_pem(ca)),
    )
    .await
    .unwrap();
    assert!(store.list(None).await.unwrap().is_empty());
    // A certificate the roots do not vouch for is refused.
    let untrusted = PostgresStore::connect(
        PostgresOptions::new(&url)
            .password(PostgresServer::PASSWORD)
            .roots(TrustRoots::system()),
    )
    .await
    .unwrap_err();
    assert!(
        untrusted.to_string().to_lowercase().contains("certificate"),
        "{untrusted}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_fails_closed_and_the_store_recovers_when_it_returns() {
    let (server, _url, store) = started().await;
    let agent = principal("agent", &[]);
    store
        .create(pending_request(&agent, ApprovalWait::Hold), None)
        .await
        .unwrap();

    server.stop().unwrap();
    let refused = store
        .create(pending_request(&agent, ApprovalWait::Hold), None)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ApprovalError::Unavailable(_)),
        "{refused:?}"
    );
    let refused = store.ready().await.unwrap_err();
    assert!(refused.0.contains("unavailable"), "{refused}");
    let mut head = ChainHead::default();
    assert!(
        store
            .append(&link(&mut head, vec![event("s", SystemTime::now(), 1)]))
            .await
            .is_err()
    );

    server.start_again().unwrap();
    // The same store, no restart: the pool makes new connections.
    store.ready().await.unwrap();
    store
        .create(pending_request(&agent, ApprovalWait::Hold), None)
        .await
        .unwrap();
    assert_eq!(store.list(None).await.unwrap().len(), 2);
}
