//! The exfiltration guard: an `[[answer]]` rule holds a large blob download
//! for a human. Released, it reaches the agent byte for byte without Azure
//! being asked again; denied, it is erased from the store.

use std::time::Duration;

use airlock_demo::AgentClient;
use airlock_sim::{APPROVERS_GROUP, STORAGE_ACCOUNT};
use airlock_tests::{Harness, Options, assert_airlock_error};
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::approval::{decide, pending};
use crate::storage::{BLOCK_BLOB, VERSION, blobs, client_secret};

/// 1.5 MiB of a pattern no other answer has.
fn big_blob() -> Bytes {
    (0..1_572_864u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into()
}

async fn harness(hold: &str) -> Harness {
    let policy = format!(
        "{}\n[[answer]]\nname = \"big-downloads\"\noperations = [\"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read\"]\nmin_bytes = 1048576\napproval = {{ groups = [\"{APPROVERS_GROUP}\"], hold = \"{hold}\" }}\n",
        crate::storage::policy()
    );
    Harness::start_with(Options {
        policy: Some(policy),
        credential: Some(client_secret),
        ..Options::default()
    })
    .await
}

/// Uploads the big blob and a small one.
async fn upload(agent: &AgentClient) {
    let created = agent
        .send(Method::PUT, "/logs?restype=container", &[VERSION], None)
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    for (name, body) in [
        ("big.bin", big_blob()),
        ("small.txt", Bytes::from_static(b"ok")),
    ] {
        let put = agent
            .send(
                Method::PUT,
                &format!("/logs/{name}"),
                &[
                    VERSION,
                    BLOCK_BLOB,
                    ("content-type", "application/octet-stream"),
                ],
                Some(body),
            )
            .await
            .unwrap();
        assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    }
}

fn downloads(h: &Harness) -> usize {
    h.sim
        .requests()
        .iter()
        .filter(|r| r.method == Method::GET && r.uri.path().ends_with("/big.bin"))
        .count()
}

/// The `sealed` column of approval `id`.
fn sealed(h: &Harness, id: &str) -> Option<Vec<u8>> {
    let db = rusqlite::Connection::open(&h.database).unwrap();
    db.query_row("SELECT sealed FROM approvals WHERE id = ?1", [id], |row| {
        row.get::<_, Option<Vec<u8>>>(0)
    })
    .unwrap()
}

#[tokio::test]
async fn a_large_download_is_held_then_released_byte_for_byte_and_a_denied_one_is_erased() {
    let h = harness("1s").await;
    let agent = blobs(&h, STORAGE_ACCOUNT);
    upload(&agent).await;
    let small = agent
        .send(Method::GET, "/logs/small.txt", &[VERSION], None)
        .await
        .unwrap();
    assert_eq!(small.status, StatusCode::OK, "small answers leave freely");

    let first = agent
        .send(Method::GET, "/logs/big.bin", &[VERSION], None)
        .await
        .unwrap();
    let error = assert_airlock_error(&first, StatusCode::CONFLICT, "AirlockAnswerHeld");
    let id = error["error"]["airlock"]["approvalId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Send the same request again once it is approved"),
        "{error}"
    );
    // Approvers see what the answer is, not what it says.
    let approval = pending(&h, 1).await.remove(0);
    assert_eq!(approval["id"], id.as_str());
    assert_eq!(approval["rule"], "big-downloads");
    assert_eq!(approval["answer"]["bytes"], 1_572_864);
    assert_eq!(approval["answer"]["status"], 200);
    // Sealed at rest: the stored copy is not the plaintext.
    let stored = sealed(&h, &id).expect("the held answer is stored");
    let start = big_blob().slice(..64);
    assert!(!stored.windows(64).any(|w| w == &start[..]));
    assert_eq!(downloads(&h), 1);

    decide(&h, &id, "approve", "release the backup").await;
    let released = agent
        .send(Method::GET, "/logs/big.bin", &[VERSION], None)
        .await
        .unwrap();
    assert_eq!(released.status, StatusCode::OK);
    assert_eq!(released.body, big_blob(), "byte for byte");
    assert_eq!(
        approval["answer"]["contentType"].as_str(),
        released.header("content-type"),
        "approvers saw the answer's media type"
    );
    assert_eq!(downloads(&h), 1, "Azure was not asked again");
    assert_eq!(sealed(&h, &id), None, "a released answer leaves the store");

    // Once: the next download is a new answer, held again; denied, it is erased.
    let again = agent
        .send(Method::GET, "/logs/big.bin", &[VERSION], None)
        .await
        .unwrap();
    let error = assert_airlock_error(&again, StatusCode::CONFLICT, "AirlockAnswerHeld");
    let second = error["error"]["airlock"]["approvalId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, id);
    assert!(sealed(&h, &second).is_some());
    decide(&h, &second, "deny", "no bulk copies").await;
    assert_eq!(sealed(&h, &second), None, "a denied answer is erased");
    let after = agent
        .send(Method::GET, "/logs/big.bin", &[VERSION], None)
        .await
        .unwrap();
    assert_airlock_error(&after, StatusCode::CONFLICT, "AirlockAnswerHeld");
    assert_eq!(downloads(&h), 3);

    // The audit trail has each held and released answer.
    let trail = h.audit_trail().await;
    let big: Vec<_> = trail
        .iter()
        .map(|c| &c.event)
        .filter(|e| e.method == "GET" && e.path.ends_with("/big.bin"))
        .collect();
    let seen: Vec<_> = big
        .iter()
        .map(|e| (e.status, e.approval_id.clone(), e.error_code.clone()))
        .collect();
    assert_eq!(
        seen[..3],
        [
            (409, Some(id.clone()), Some("AirlockAnswerHeld".to_owned())),
            (200, Some(id.clone()), None),
            (
                409,
                Some(second.clone()),
                Some("AirlockAnswerHeld".to_owned())
            ),
        ],
        "{seen:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn an_answer_approved_during_the_hold_goes_out_at_once() {
    let h = harness("30s").await;
    let agent = blobs(&h, STORAGE_ACCOUNT);
    upload(&agent).await;
    let waiting = {
        let agent = agent.clone();
        tokio::spawn(async move {
            agent
                .send(Method::GET, "/logs/big.bin", &[VERSION], None)
                .await
                .unwrap()
        })
    };
    let approval = pending(&h, 1).await.remove(0);
    let id = approval["id"].as_str().unwrap().to_owned();
    // The waiting request counts as held (from just after the approval is
    // stored), the approval by its kind.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.metrics().await["airlock_approvals_held"] != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the held answer's request is not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = h.metrics().await;
    assert_eq!(
        metrics[r#"airlock_approvals_total{event="requested",kind="answer"}"#],
        1
    );
    decide(&h, &id, "approve", "fine").await;
    let answer = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, big_blob());
    assert_eq!(sealed(&h, &id), None);
    assert_eq!(h.metrics().await["airlock_approvals_held"], 0);
    h.shutdown().await;
}

#[tokio::test]
async fn an_answer_too_large_to_hold_is_refused_never_sent() {
    let policy = format!(
        "{}\n[[answer]]\nname = \"big-downloads\"\noperations = [\"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read\"]\nmin_bytes = 1024\napproval = {{ groups = [\"{APPROVERS_GROUP}\"], hold = \"1s\" }}\n",
        crate::storage::policy()
    );
    let h = Harness::start_with(Options {
        policy: Some(policy),
        credential: Some(client_secret),
        approval_toml: "max_held_answer_bytes = 1048576\n".into(),
        ..Options::default()
    })
    .await;
    let agent = blobs(&h, STORAGE_ACCOUNT);
    upload(&agent).await;
    let refused = agent
        .send(Method::GET, "/logs/big.bin", &[VERSION], None)
        .await
        .unwrap();
    let error = assert_airlock_error(
        &refused,
        StatusCode::FORBIDDEN,
        "AirlockAnswerTooLargeToHold",
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than the 1048576 bytes Airlock holds"),
        "{error}"
    );
    let start = big_blob().slice(..64);
    assert!(
        !refused.body.windows(64).any(|w| w == &start[..]),
        "nothing of the answer was sent"
    );
    h.shutdown().await;
}
