//! Just-in-time approval end to end: agents and approvers speak real HTTP to
//! a gateway in front of the simulated Azure, with approvals kept in a real
//! SQLite file. The agent's long-running operations are followed the way an
//! Azure SDK follows them (`AgentClient::long_running`), knowing nothing of
//! Airlock.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use airlock_sim::{AGENTS_GROUP, APPROVERS_GROUP, TokenSpec};
use airlock_tests::{Harness, Options, assert_airlock_error, rg_path};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::Value;

pub(crate) const WAIT: Duration = Duration::from_secs(30);

pub(crate) fn policy() -> String {
    format!(
        r#"
[[rule]]
name = "agents-read"
effect = "allow"
actions = ["*/read"]
[rule.principals]
groups = ["{AGENTS_GROUP}"]

[[rule]]
name = "agents-manage"
effect = "allow"
actions = ["Microsoft.Storage/*", "Microsoft.Compute/*"]
[rule.principals]
groups = ["{AGENTS_GROUP}"]

[[rule]]
name = "storage-writes-need-approval"
effect = "approve"
actions = ["Microsoft.Storage/storageAccounts/write"]
[rule.approval]
groups = ["{APPROVERS_GROUP}"]
justification = true

[[rule]]
name = "vm-deletes-need-approval"
effect = "approve"
actions = ["Microsoft.Compute/virtualMachines/delete"]
[rule.approval]
groups = ["{APPROVERS_GROUP}"]
hold = "1s"
ttl = "3s"

[[rule]]
name = "list-keys-is-held"
effect = "approve"
actions = ["Microsoft.Storage/storageAccounts/listKeys/action"]
[rule.approval]
groups = ["{APPROVERS_GROUP}"]
hold = "3s"
"#
    )
}

async fn harness() -> Harness {
    harness_with(false).await
}

/// Over TLS the agent's client speaks HTTP/2 (no `Host` header, `:authority`).
async fn harness_with(tls: bool) -> Harness {
    Harness::start_with(Options {
        tls,
        policy: Some(policy()),
        approval_toml: "sweep_interval = \"1s\"".into(),
        ..Options::default()
    })
    .await
}

pub(crate) fn account_path(name: &str) -> String {
    format!(
        "{}/providers/Microsoft.Storage/storageAccounts/{name}?api-version=2023-05-01",
        rg_path()
    )
}

pub(crate) fn vm_path(name: &str) -> String {
    format!(
        "{}/providers/Microsoft.Compute/virtualMachines/{name}?api-version=2024-07-01",
        rg_path()
    )
}

fn list_keys_path() -> String {
    format!(
        "{}/providers/Microsoft.Storage/storageAccounts/{}/listKeys?api-version=2023-05-01",
        rg_path(),
        airlock_sim::STORAGE_ACCOUNT
    )
}

const SECRET_KEY: &str = "c2VjcmV0LWtleS1tYXRlcmlhbC1mb3ItdGVzdHMtb25seQ==";
pub(crate) const NEW_ACCOUNT: &[u8] =
    br#"{"location":"westeurope","sku":{"name":"Standard_LRS"},"kind":"StorageV2"}"#;
pub(crate) const WHY: (&str, &str) = (
    "x-airlock-justification",
    "ticket OPS-42: a bucket for build logs",
);

/// Waits until the approver sees `count` pending approvals; returns them.
pub(crate) async fn pending(h: &Harness, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let listed = h
            .approver()
            .get("/api/approvals?state=pending")
            .await
            .unwrap();
        assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
        let items = listed.json()["value"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if items.len() >= count {
            return items;
        }
        assert!(Instant::now() < deadline, "no pending approval appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn decide(h: &Harness, id: &str, verb: &str, comment: &str) -> Value {
    let answer = h
        .approver()
        .send(
            Method::POST,
            &format!("/api/approvals/{id}/{verb}"),
            &[],
            Some(Bytes::from(
                serde_json::json!({ "comment": comment }).to_string(),
            )),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.json()
}

pub(crate) fn sim_calls(h: &Harness, method: &Method, path_part: &str) -> usize {
    h.sim
        .requests()
        .iter()
        .filter(|r| r.method == *method && r.uri.path().contains(path_part))
        .count()
}

/// The `sealed` column of one approval in the gateway's SQLite file.
fn stored_request_bytes(h: &Harness, id: &str) -> Option<Vec<u8>> {
    let db = rusqlite::Connection::open(h.dir.path().join("airlock.db")).unwrap();
    db.query_row("SELECT sealed FROM approvals WHERE id = ?1", [id], |row| {
        row.get::<_, Option<Vec<u8>>>(0)
    })
    .unwrap()
}

#[tokio::test]
async fn a_storage_account_create_waits_as_an_operation_and_is_created_once_approved() {
    let h = harness_with(true).await;
    let agent = h.agent.clone();
    let path = account_path("approvedacct");
    let run = tokio::spawn(async move {
        agent
            .long_running(
                Method::PUT,
                &path,
                &[WHY],
                Some(Bytes::from_static(NEW_ACCOUNT)),
                WAIT,
            )
            .await
    });
    let approval = pending(&h, 1).await.remove(0);
    let id = approval["id"].as_str().unwrap().to_owned();
    assert_eq!(
        approval["operation"]["name"],
        "Microsoft.Storage/storageAccounts/write"
    );
    assert_eq!(approval["justification"], WHY.1);
    assert_eq!(
        approval["bodyPreview"].as_str().unwrap().as_bytes(),
        NEW_ACCOUNT
    );
    assert_eq!(approval["wait"], "async");
    assert_eq!(approval["canDecide"], true);
    // What will run, exactly: the method, the path with its query, the body's size.
    assert_eq!(approval["request"]["method"], "PUT");
    let target = approval["request"]["target"].as_str().unwrap();
    assert!(
        target.ends_with("/storageAccounts/approvedacct?api-version=2023-05-01"),
        "{target}"
    );
    assert_eq!(approval["request"]["bodyBytes"], NEW_ACCOUNT.len());
    // The request waits, encrypted at rest: the body is not in the file.
    let sealed = stored_request_bytes(&h, &id).expect("stored while pending");
    assert!(!sealed.windows(10).any(|w| w == b"westeurope"));
    // Approval comes a while later; the client keeps polling meanwhile.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        sim_calls(&h, &Method::PUT, "approvedacct"),
        0,
        "nothing sent before approval"
    );
    let decided = decide(&h, &id, "approve", "fine for build logs").await;
    assert_eq!(decided["state"], "approved");

    let run = run.await.unwrap().unwrap();
    assert_eq!(run.initial.status, StatusCode::ACCEPTED);
    assert_eq!(run.initial.version, http::Version::HTTP_2);
    let status_url = run.initial.header("azure-asyncoperation").unwrap();
    assert!(status_url.starts_with(h.gateway.url()), "{status_url}");
    assert!(run.initial.header("retry-after").is_some());
    assert!(
        run.polls.len() >= 2,
        "polled while pending: {}",
        run.polls.len()
    );
    assert_eq!(run.polls[0].json()["status"], "InProgress");
    assert!(run.succeeded(), "{:?}", run.error);
    let result = run.result.expect("the SDK's final GET");
    assert_eq!(result.status, StatusCode::OK);
    assert_eq!(
        result.json()["properties"]["provisioningState"],
        "Succeeded"
    );
    assert_eq!(
        sim_calls(&h, &Method::PUT, "approvedacct"),
        1,
        "sent exactly once"
    );
    let sent = h
        .sim
        .requests()
        .into_iter()
        .find(|r| r.method == Method::PUT)
        .unwrap();
    assert_eq!(sent.body.as_ref(), NEW_ACCOUNT);
    // Executed: the stored request is erased, and the approval says what Azure answered.
    assert_eq!(stored_request_bytes(&h, &id), None);
    let shown = h
        .approver()
        .get(&format!("/api/approvals/{id}"))
        .await
        .unwrap()
        .json();
    assert_eq!(shown["state"], "consumed");
    assert_eq!(shown["execution"]["status"], 202);

    // The audit trail: the request answered 202 while it waited, and the
    // poll that sent it, carrying the operation, its approvers and Azure's ids.
    let trail = h.audit_trail().await;
    let events: Vec<_> = trail.iter().map(|chained| &chained.event).collect();
    let asked: Vec<_> = events
        .iter()
        .filter(|e| e.path.contains("approvedacct") && e.method == "PUT")
        .collect();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        (
            asked[0].status,
            asked[0].decision.as_deref(),
            asked[0].upstream_status
        ),
        (202, Some("requireApproval"), None)
    );
    assert_eq!(asked[0].approval_id.as_deref(), Some(id.as_str()));
    let sent: Vec<_> = events
        .iter()
        .filter(|e| e.upstream_status == Some(202) && e.approval_id.as_deref() == Some(&id))
        .collect();
    assert_eq!(sent.len(), 1, "exactly one event sends it");
    let sent = sent[0];
    assert_eq!(sent.path, format!("/airlock/operations/{id}"));
    assert_eq!(sent.operations, ["Microsoft.Storage/storageAccounts/write"]);
    assert_eq!(
        sent.approvers,
        [shown["decisions"][0]["approver"].as_str().unwrap()]
    );
    assert_eq!(sent.justification.as_deref(), Some(WHY.1));
    assert!(sent.upstream_request_id.is_some());
    // The review's finding: the polls after it, which follow Azure's own
    // operation, were recorded with no operation, decision or upstream
    // status. Each names what it asked Azure now.
    let followed: Vec<_> = events
        .iter()
        .filter(|e| {
            e.path == format!("/airlock/operations/{id}")
                && e.upstream_status.is_some()
                && e.upstream_status != Some(202)
        })
        .collect();
    assert!(!followed.is_empty(), "{events:#?}");
    for follow in followed {
        assert!(!follow.operations.is_empty(), "{follow:?}");
        assert_eq!(follow.decision.as_deref(), Some("allow"), "{follow:?}");
        assert!(follow.upstream_request_id.is_some(), "{follow:?}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_vm_delete_waits_and_runs_on_approval_and_other_callers_cannot_poll_it() {
    let h = harness().await;
    let vm = airlock_sim::VIRTUAL_MACHINES[0];
    let agent = h.agent.clone();
    let run = tokio::spawn(async move {
        agent
            .long_running(Method::DELETE, &vm_path(vm), &[], None, WAIT)
            .await
    });
    let approval = pending(&h, 1).await.remove(0);
    let id = approval["id"].as_str().unwrap().to_owned();
    let status_url = format!("{}/airlock/operations/{id}", h.gateway.url());
    // Another principal cannot see or drive the operation.
    let other = h.client(Some(&h.issuer.mint(&TokenSpec::approver())));
    let peek = other.get(&status_url).await.unwrap();
    assert_airlock_error(&peek, StatusCode::NOT_FOUND, "AirlockOperationNotFound");
    let anonymous = h.client(None).get(&status_url).await.unwrap();
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    decide(&h, &id, "approve", "decommissioning").await;
    let run = run.await.unwrap().unwrap();
    assert!(run.succeeded(), "{:?}", run.error);
    assert_eq!(sim_calls(&h, &Method::DELETE, vm), 1);
    let gone = h.agent.get(&vm_path(vm)).await.unwrap();
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{:?}", gone.body);
    h.shutdown().await;
}

#[tokio::test]
async fn a_denied_operation_fails_with_the_approver_and_reason_and_nothing_is_sent() {
    let h = harness().await;
    let agent = h.agent.clone();
    // A secret in the body: approvers see it masked.
    let body = format!(
        r#"{{"location":"westeurope","tags":{{"conn":"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={SECRET_KEY}"}}}}"#
    );
    let run = tokio::spawn(async move {
        agent
            .long_running(
                Method::PUT,
                &account_path("deniedacct"),
                &[WHY],
                Some(Bytes::from(body)),
                WAIT,
            )
            .await
    });
    let approval = pending(&h, 1).await.remove(0);
    let id = approval["id"].as_str().unwrap().to_owned();
    let preview = approval["bodyPreview"].as_str().unwrap();
    assert!(preview.contains("AccountKey=***MASKED***"), "{preview}");
    assert!(!preview.contains(SECRET_KEY), "{preview}");
    let listed = h.approver().get("/api/approvals").await.unwrap();
    assert!(!String::from_utf8_lossy(&listed.body).contains(SECRET_KEY));
    // The whole body, masked, on its own URL; listings carry its length.
    let whole = h
        .approver()
        .get(&format!("/api/approvals/{id}/body"))
        .await
        .unwrap();
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.header("content-type"), Some("application/json"));
    let text = String::from_utf8_lossy(&whole.body).into_owned();
    assert!(text.starts_with(r#"{"location":"westeurope""#), "{text}");
    assert!(
        text.contains("AccountKey=***MASKED***") && !text.contains(SECRET_KEY),
        "{text}"
    );
    assert!(approval.get("body").is_none(), "not in listings");
    assert_eq!(approval["maskedBodyBytes"], text.len());
    // Only the rule's approvers read it.
    let peek = h
        .agent
        .get(&format!(
            "{}/api/approvals/{id}/body",
            h.gateway.admin_url()
        ))
        .await
        .unwrap();
    assert_eq!(peek.status, StatusCode::FORBIDDEN);
    decide(&h, &id, "deny", "use the shared logs account").await;
    let run = run.await.unwrap().unwrap();
    assert_eq!(run.status, "Failed");
    let (code, message) = run.error.unwrap();
    assert_eq!(code, "AirlockApprovalDenied");
    assert!(message.contains("Alice Approver"), "{message}");
    assert!(message.contains("use the shared logs account"), "{message}");
    assert_eq!(sim_calls(&h, &Method::PUT, "deniedacct"), 0);
    assert_eq!(stored_request_bytes(&h, &id), None, "erased on denial");
    h.shutdown().await;
}

#[tokio::test]
async fn an_operation_nobody_approves_expires_and_its_request_is_erased() {
    let h = harness().await;
    let vm = airlock_sim::VIRTUAL_MACHINES[1];
    // The rule's hold is 1 s and ttl 3 s: the approval expires after 3 s.
    let run = h
        .agent
        .long_running(Method::DELETE, &vm_path(vm), &[], None, WAIT)
        .await
        .unwrap();
    assert_eq!(run.status, "Failed");
    let (code, message) = run.error.unwrap();
    assert_eq!(code, "AirlockApprovalDenied");
    assert!(message.contains("expired"), "{message}");
    let id = run
        .initial
        .header("x-airlock-approval-id")
        .unwrap()
        .to_owned();
    assert_eq!(stored_request_bytes(&h, &id), None);
    assert_eq!(sim_calls(&h, &Method::DELETE, vm), 0);
    h.shutdown().await;
}

#[tokio::test]
async fn a_missing_justification_is_428_naming_the_header() {
    let h = harness().await;
    let answer = h
        .agent
        .send(
            Method::PUT,
            &account_path("nojustification"),
            &[],
            Some(Bytes::from_static(NEW_ACCOUNT)),
        )
        .await
        .unwrap();
    let json = assert_airlock_error(
        &answer,
        StatusCode::PRECONDITION_REQUIRED,
        "AirlockJustificationRequired",
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-airlock-justification")
    );
    assert!(pending(&h, 0).await.is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn a_held_request_proceeds_when_approved_during_the_hold() {
    let h = harness().await;
    let agent = h.agent.clone();
    let held =
        tokio::spawn(async move { agent.send(Method::POST, &list_keys_path(), &[], None).await });
    let id = pending(&h, 1).await[0]["id"].as_str().unwrap().to_owned();
    decide(&h, &id, "approve", "rotating").await;
    let answer = held.await.unwrap().unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    // Still masked: approval does not bypass masking.
    let keys = answer.json()["keys"].clone();
    assert!(
        keys[0]["value"].as_str().unwrap().starts_with("***MASKED:"),
        "{keys}"
    );
    // /metrics: the approval asked for and approved, nothing held any more,
    // the two keys masked by the listKeys rule.
    let metrics = h.metrics().await;
    assert_eq!(
        metrics[r#"airlock_approvals_total{event="requested",kind="request"}"#],
        1
    );
    assert_eq!(
        metrics[r#"airlock_approvals_total{event="approved",kind="request"}"#],
        1
    );
    assert_eq!(metrics["airlock_approvals_held"], 0);
    assert_eq!(
        metrics[r#"airlock_masked_values_total{detector="rule"}"#],
        2
    );
    h.shutdown().await;
}

#[tokio::test]
async fn after_a_hold_times_out_an_approval_admits_exactly_one_identical_retry() {
    let h = harness().await;
    let first = h
        .agent
        .send(Method::POST, &list_keys_path(), &[], None)
        .await
        .unwrap();
    let json = assert_airlock_error(&first, StatusCode::FORBIDDEN, "AirlockApprovalPending");
    let id = json["error"]["airlock"]["approvalId"]
        .as_str()
        .unwrap()
        .to_owned();
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{}/api/approvals/{id}", h.gateway.admin_url())),
        "{message}"
    );
    decide(&h, &id, "approve", "ok").await;

    // Another principal's identical request does not ride on the approval.
    let mut spec = TokenSpec::agent().object_id("00000000-0000-0000-0000-0000000000a9");
    spec = spec.name("other-agent");
    let other = h.client(Some(&h.issuer.mint(&spec)));
    let foreign = other
        .send(Method::POST, &list_keys_path(), &[], None)
        .await
        .unwrap();
    assert_airlock_error(&foreign, StatusCode::FORBIDDEN, "AirlockApprovalPending");

    let retry = h
        .agent
        .send(Method::POST, &list_keys_path(), &[], None)
        .await
        .unwrap();
    assert_eq!(retry.status, StatusCode::OK, "{:?}", retry.body);
    let again = h
        .agent
        .send(Method::POST, &list_keys_path(), &[], None)
        .await
        .unwrap();
    assert_airlock_error(&again, StatusCode::FORBIDDEN, "AirlockApprovalPending");
    assert_eq!(sim_calls(&h, &Method::POST, "listKeys"), 1);
    h.shutdown().await;
}

/// A `listKeys` held past its hold, then approved: its approval id.
async fn list_keys_approved_after_its_hold(h: &Harness) -> String {
    let first = h
        .agent
        .send(Method::POST, &list_keys_path(), &[], None)
        .await
        .unwrap();
    let json = assert_airlock_error(&first, StatusCode::FORBIDDEN, "AirlockApprovalPending");
    let id = json["error"]["airlock"]["approvalId"]
        .as_str()
        .unwrap()
        .to_owned();
    decide(h, &id, "approve", "ok").await;
    id
}

/// The review's finding: a grant for `listKeys?api-version=2023-05-01` was
/// spent by `listKeys?api-version=2019-06-01&$expand=kerb`. Now a retry with
/// another query is a new request waiting for its own approval, and the
/// grant still admits the very request it was given for.
#[tokio::test]
async fn a_grant_is_not_spent_by_the_same_operation_with_another_query() {
    let h = harness().await;
    let id = list_keys_approved_after_its_hold(&h).await;

    let other_query = list_keys_path().replace(
        "api-version=2023-05-01",
        "api-version=2019-06-01&$expand=kerb",
    );
    let smuggled = h
        .agent
        .send(Method::POST, &other_query, &[], None)
        .await
        .unwrap();
    let json = assert_airlock_error(&smuggled, StatusCode::FORBIDDEN, "AirlockApprovalPending");
    assert_ne!(
        json["error"]["airlock"]["approvalId"].as_str(),
        Some(id.as_str()),
        "the other query must wait for an approval of its own"
    );
    assert_eq!(sim_calls(&h, &Method::POST, "listKeys"), 0);

    let exact = h
        .agent
        .send(Method::POST, &list_keys_path(), &[], None)
        .await
        .unwrap();
    assert_eq!(exact.status, StatusCode::OK, "{:?}", exact.body);
    assert_eq!(sim_calls(&h, &Method::POST, "listKeys"), 1);
    h.shutdown().await;
}

/// The second review's finding: a grant was spent by the same request with
/// an `x-ms-*` header that changes what Azure does. The grant binds those
/// headers, and approvers see them.
#[tokio::test]
async fn a_grant_is_not_spent_by_the_same_request_with_another_azure_header() {
    let h = harness().await;
    let id = list_keys_approved_after_its_hold(&h).await;

    let header = ("x-ms-delete-snapshots", "include");
    let other = h
        .agent
        .send(Method::POST, &list_keys_path(), &[header], None)
        .await
        .unwrap();
    let json = assert_airlock_error(&other, StatusCode::FORBIDDEN, "AirlockApprovalPending");
    let other_id = json["error"]["airlock"]["approvalId"].as_str().unwrap();
    assert_ne!(other_id, id, "another header, another approval");
    assert_eq!(sim_calls(&h, &Method::POST, "listKeys"), 0);
    let listed = pending(&h, 1).await;
    let asked = listed.iter().find(|a| a["id"] == other_id).unwrap();
    assert_eq!(
        asked["request"]["headers"],
        serde_json::json!([["x-ms-delete-snapshots", "include"]]),
        "{asked}"
    );

    // A per-call id differs on every retry and changes nothing: the grant holds.
    let exact = h
        .agent
        .send(
            Method::POST,
            &list_keys_path(),
            &[("x-ms-client-request-id", "retry-1")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(exact.status, StatusCode::OK, "{:?}", exact.body);
    assert_eq!(sim_calls(&h, &Method::POST, "listKeys"), 1);
    h.shutdown().await;
}

/// The review's finding: 150 identical held requests made 150 approvals.
/// The same request from the same principal while its approval is pending
/// joins it: one approval (and, async, one stored request and one
/// operation URL), however often it is sent; held twins wait on it, and its
/// one grant admits one of them.
#[tokio::test]
async fn identical_requests_join_their_pending_approval() {
    let h = harness().await;
    let path = account_path("joinedacct");
    let mut operation_urls = Vec::new();
    for _ in 0..3 {
        let answer = h
            .agent
            .send(
                Method::PUT,
                &path,
                &[WHY],
                Some(Bytes::from_static(NEW_ACCOUNT)),
            )
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
        operation_urls.push(answer.header("azure-asyncoperation").unwrap().to_owned());
    }
    assert!(
        operation_urls.iter().all(|url| *url == operation_urls[0]),
        "{operation_urls:?}"
    );
    // Another body is another request: an approval of its own.
    let other = h
        .agent
        .send(
            Method::PUT,
            &path,
            &[WHY],
            Some(Bytes::from_static(br#"{"location":"northeurope"}"#)),
        )
        .await
        .unwrap();
    assert_eq!(other.status, StatusCode::ACCEPTED);
    assert_ne!(
        other.header("azure-asyncoperation"),
        Some(operation_urls[0].as_str())
    );
    assert_eq!(pending(&h, 2).await.len(), 2);

    // Held twins: the same listKeys again while its approval is pending
    // (the first's hold ran out) waits on that approval, and runs once it is
    // approved: still three approvals, not four.
    let first = h
        .agent
        .send(Method::POST, &list_keys_path(), &[], None)
        .await
        .unwrap();
    assert_airlock_error(&first, StatusCode::FORBIDDEN, "AirlockApprovalPending");
    let held = pending(&h, 3).await;
    let id = held
        .iter()
        .find(|a| a["operation"]["name"] == "Microsoft.Storage/storageAccounts/listKeys/action")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = tokio::spawn({
        let agent = h.agent.clone();
        async move { agent.send(Method::POST, &list_keys_path(), &[], None).await }
    });
    // Time for the twin to arrive and wait (it is held for 3 s); arriving
    // later still, it would take the grant as a retry: the checks hold.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        pending(&h, 3).await.len(),
        3,
        "the twin opened an approval of its own"
    );
    decide(&h, &id, "approve", "ok").await;
    let second = second.await.unwrap().unwrap();
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.body);
    assert_eq!(sim_calls(&h, &Method::POST, "listKeys"), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn a_pending_approval_survives_a_restart_and_is_still_approvable() {
    let mut h = harness().await;
    let started = h
        .agent
        .send(
            Method::PUT,
            &account_path("restartacct"),
            &[WHY],
            Some(Bytes::from_static(NEW_ACCOUNT)),
        )
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::ACCEPTED);
    let status_path = started
        .header("azure-asyncoperation")
        .unwrap()
        .replace(h.gateway.url(), "");
    let id = pending(&h, 1).await[0]["id"].as_str().unwrap().to_owned();

    h.restart_gateway().await;
    let listed = pending(&h, 1).await;
    assert_eq!(listed[0]["id"], id.as_str());
    decide(&h, &id, "approve", "after the restart").await;
    // The SDK keeps polling the same operation (on the restarted gateway).
    let deadline = Instant::now() + WAIT;
    loop {
        let poll = h.agent.get(&status_path).await.unwrap();
        assert_eq!(poll.status, StatusCode::OK, "{:?}", poll.body);
        if poll.json()["status"] == "Succeeded" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never succeeded: {:?}",
            poll.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(sim_calls(&h, &Method::PUT, "restartacct"), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn the_api_admits_approvers_only_and_never_the_requester() {
    let h = harness().await;
    // A principal that is both agent and approver asks for something.
    let both = TokenSpec::agent()
        .object_id("00000000-0000-0000-0000-0000000000d1")
        .name("agent-and-approver")
        .groups([AGENTS_GROUP, APPROVERS_GROUP]);
    let token = h.issuer.mint(&both);
    let started = h
        .client(Some(&token))
        .send(
            Method::PUT,
            &account_path("selfacct"),
            &[WHY],
            Some(Bytes::from_static(NEW_ACCOUNT)),
        )
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::ACCEPTED);
    let approval = pending(&h, 1).await.remove(0);
    let id = approval["id"].as_str().unwrap();
    let url = format!("/api/approvals/{id}/approve");

    let anonymous = h
        .admin(None)
        .send(Method::POST, &url, &[], None)
        .await
        .unwrap();
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let agent = h
        .admin(Some(&h.agent_token))
        .send(Method::POST, &url, &[], None)
        .await
        .unwrap();
    assert_airlock_error(&agent, StatusCode::FORBIDDEN, "AirlockNotAnApprover");
    let listed_by_agent = h
        .admin(Some(&h.agent_token))
        .get("/api/approvals")
        .await
        .unwrap();
    assert_airlock_error(
        &listed_by_agent,
        StatusCode::FORBIDDEN,
        "AirlockNotAnApprover",
    );
    let own = h
        .admin(Some(&token))
        .send(Method::POST, &url, &[], None)
        .await
        .unwrap();
    assert_airlock_error(&own, StatusCode::FORBIDDEN, "AirlockSelfApproval");
    let seen_by_requester = h
        .admin(Some(&token))
        .get(&format!("/api/approvals/{id}"))
        .await
        .unwrap();
    assert_eq!(seen_by_requester.json()["canDecide"], false);

    // Two approvers at once: exactly one decision takes it.
    let alice = h.approver();
    let bob = h.admin(Some(&h.issuer.mint(
        &TokenSpec::approver().object_id("00000000-0000-0000-0000-0000000000b9"),
    )));
    let (a, b) = tokio::join!(
        alice.send(Method::POST, &url, &[], None),
        bob.send(Method::POST, &url, &[], None)
    );
    let mut statuses = [a.unwrap().status, b.unwrap().status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    h.shutdown().await;
}

/// A synchronous `POST` approved as an operation (issue 24, finding 7):
/// once it ran, the operation's `Location` returns Azure's answer, masked,
/// as an Azure SDK fetches it after `Succeeded`.
#[tokio::test]
async fn a_post_approved_as_an_operation_returns_azures_answer_masked() {
    let held = policy();
    let others = &held[..held.find("[[rule]]\nname = \"list-keys-is-held\"").unwrap()];
    let policy = format!(
        "{others}\n[[rule]]\nname = \"list-keys-waits\"\neffect = \"approve\"\nactions = [\"Microsoft.Storage/storageAccounts/listKeys/action\"]\n[rule.approval]\ngroups = [\"{APPROVERS_GROUP}\"]\nwait = \"async\"\n"
    );
    let h = Harness::start_with(Options {
        policy: Some(policy),
        ..Options::default()
    })
    .await;
    let agent = h.agent.clone();
    let run = tokio::spawn(async move {
        agent
            .long_running(Method::POST, &list_keys_path(), &[], None, WAIT)
            .await
    });
    let approval = pending(&h, 1).await.remove(0);
    assert_eq!(approval["rule"], "list-keys-waits");
    let id = approval["id"].as_str().unwrap().to_owned();
    decide(&h, &id, "approve", "rotating the app's settings").await;
    let run = run.await.unwrap().unwrap();
    assert_eq!(run.initial.status, StatusCode::ACCEPTED);
    assert!(run.succeeded(), "{:?}", run.error);
    let result = run.result.expect("the SDK fetches the Location");
    assert_eq!(result.status, StatusCode::OK, "{:?}", result.body);
    let keys = result.json()["keys"].as_array().cloned().unwrap();
    assert_eq!(keys.len(), 2);
    for key in &keys {
        let value = key["value"].as_str().unwrap();
        assert!(airlock_masking::is_masked_token(value), "{value}");
    }
    assert_eq!(sim_calls(&h, &Method::POST, "listKeys"), 1);
    h.shutdown().await;
}

/// What a receiver was posted: headers and body, as sent.
pub(crate) type Posted = std::sync::Arc<std::sync::Mutex<Vec<(http::HeaderMap, Bytes)>>>;

/// A loopback receiver of notifications.
pub(crate) async fn receiver() -> (String, Posted) {
    let got: Posted = std::sync::Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: http::HeaderMap, body: Bytes| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push((headers, body));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

/// Waits until `got` holds `count` posts: headers, body as sent, body as JSON.
pub(crate) async fn posts(got: &Posted, count: usize) -> Vec<(http::HeaderMap, Bytes, Value)> {
    let seen = airlock_tests::eventually("the notifications", WAIT, || async {
        let seen = got.lock().unwrap().clone();
        (seen.len() >= count).then_some(seen)
    })
    .await;
    seen.into_iter()
        .map(|(headers, body)| {
            let json = serde_json::from_slice(&body).unwrap();
            (headers, body, json)
        })
        .collect()
}

/// `[[approval.notify]]`: Slack hears of every approval; a signed webhook
/// only of the rule it asked for; both of the decision, linking to the
/// approval on the approval API; `/metrics` counts the deliveries.
#[tokio::test]
async fn approvers_are_told_by_chat_and_by_a_signed_webhook() {
    let (slack_url, slack) = receiver().await;
    let (hook_url, hook) = receiver().await;
    let secret = "0123456789abcdef0123456789abcdef";
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("webhook-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let h = Harness::start_with(Options {
        policy: Some(policy()),
        approval_toml: "sweep_interval = \"1s\"".into(),
        extra_toml: format!(
            "[[approval.notify]]\nkind = \"slack\"\nurl = \"{slack_url}\"\n\n[[approval.notify]]\nkind = \"webhook\"\nurl = \"{hook_url}\"\nsecret_file = \"{}\"\nrules = [\"vm-deletes-need-approval\"]\n",
            secret_file.display()
        ),
        ..Options::default()
    })
    .await;
    // Not the webhook's rule: Slack only. (Held, then left pending.)
    let held = h
        .agent
        .send(Method::POST, &list_keys_path(), &[], None)
        .await
        .unwrap();
    assert_airlock_error(&held, StatusCode::FORBIDDEN, "AirlockApprovalPending");
    // The webhook's rule.
    let vm = airlock_sim::VIRTUAL_MACHINES[0];
    let agent = h.agent.clone();
    let run = tokio::spawn(async move {
        agent
            .long_running(Method::DELETE, &vm_path(vm), &[], None, WAIT)
            .await
    });
    let approvals = pending(&h, 2).await;
    let vm_approval = approvals
        .iter()
        .find(|a| a["rule"] == "vm-deletes-need-approval")
        .unwrap();
    let id = vm_approval["id"].as_str().unwrap().to_owned();
    decide(&h, &id, "approve", "decommissioning").await;
    assert!(run.await.unwrap().unwrap().succeeded());

    let webhook = posts(&hook, 2).await;
    let types: Vec<&str> = webhook
        .iter()
        .map(|(_, _, body)| body["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["approval.new", "approval.decided"]);
    for (headers, sent, body) in &webhook {
        assert_eq!(body["approval"]["id"], id.as_str());
        assert_eq!(
            body["url"],
            format!("{}/api/approvals/{id}", h.gateway.admin_url())
        );
        // The receiver checks the signature over "<t>.<body as sent>".
        let header = headers[airlock_approval::SIGNATURE_HEADER]
            .to_str()
            .unwrap();
        let seconds: u64 = header[2..header.find(',').unwrap()].parse().unwrap();
        assert_eq!(
            header,
            airlock_approval::webhook_signature(secret.as_bytes(), seconds, sent)
        );
    }
    // Slack: both approvals, then the decision.
    let chat = posts(&slack, 3).await;
    assert!(chat.iter().all(|(_, _, body)| body["blocks"].is_array()));
    assert!(chat.iter().any(|(_, _, body)| {
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("Approval approved")
    }));
    let metrics = h.metrics().await;
    assert!(metrics["airlock_approval_notifications_sent_total"] >= 5);
    assert_eq!(metrics["airlock_approval_notifications_failed_total"], 0);
    h.shutdown().await;
}

/// A loopback receiver that takes each notification in and never answers;
/// it counts the ones that arrived.
async fn hanging_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let arrived = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = arrived.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::future::pending::<StatusCode>()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, arrived)
}

/// The median latency of `count` storage-account creates (each answered
/// 202 at once, each announcing a new approval to the configured receiver).
async fn median_create(h: &Harness, count: usize) -> Duration {
    let mut latencies = Vec::with_capacity(count);
    for n in 0..count {
        let started = Instant::now();
        let answer = h
            .agent
            .send(
                Method::PUT,
                &account_path(&format!("latency{n}")),
                &[WHY],
                Some(Bytes::from_static(NEW_ACCOUNT)),
            )
            .await
            .unwrap();
        latencies.push(started.elapsed());
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
    }
    latencies.sort();
    latencies[count / 2]
}

/// A Slack receiver that never answers does not slow the requests that
/// notify it: their latency stays in the range of the same requests
/// notifying a receiver that answers at once (measured side by side in this
/// test; a notifier on the request path would add its 10 s timeout to each).
#[tokio::test]
async fn a_hanging_receiver_does_not_slow_requests_down() {
    let (answering_url, answering) = receiver().await;
    let (hanging_url, arrived) = hanging_receiver().await;
    let start = |url: String| {
        Harness::start_with(Options {
            policy: Some(policy()),
            extra_toml: format!("[[approval.notify]]\nkind = \"slack\"\nurl = \"{url}\"\n"),
            ..Options::default()
        })
    };
    let normal = start(answering_url).await;
    let hanging = start(hanging_url).await;
    const REQUESTS: usize = 8;
    let baseline = median_create(&normal, REQUESTS).await;
    let with_hanging = median_create(&hanging, REQUESTS).await;
    posts(&answering, REQUESTS).await;
    // The hanging receiver was really being notified meanwhile.
    airlock_tests::eventually("a notification at the hanging receiver", WAIT, || async {
        (arrived.load(std::sync::atomic::Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    assert!(
        with_hanging <= baseline * 10,
        "with a hanging receiver the median request took {with_hanging:?}, against {baseline:?} normally"
    );
    normal.shutdown().await;
    hanging.shutdown().await;
}
