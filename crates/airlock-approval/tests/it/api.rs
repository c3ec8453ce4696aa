//! The approvers' REST API, called as the gateway calls it: through the
//! router, with the verified principal in the request extensions.

// Tests unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use airlock_approval::{
    ApprovalApi, ApprovalEvent, ApprovalId, ApprovalRequest, ApprovalState, ApprovalStore,
    MemoryApprovalStore, RecordingNotifier,
};
use airlock_core::{ApprovalWait, Approvers, Principal, PrincipalKind};
use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

fn principal(id: &str, groups: &[&str]) -> Principal {
    Principal::builder(id, PrincipalKind::User)
        .tenant_id("tenant-1")
        .display_name(id.to_uppercase())
        .groups(groups.iter().copied())
        .build()
}

fn agent() -> Principal {
    principal("agent", &["agents"])
}

/// In the approver group of the storage rule.
fn dave() -> Principal {
    principal("dave", &["approvers"])
}

/// Named by id in the storage rule.
fn carol() -> Principal {
    principal("carol", &[])
}

/// An approver, but only of the network rule.
fn nina() -> Principal {
    principal("nina", &["netops"])
}

fn storage_approvers() -> Approvers {
    Approvers {
        groups: vec!["approvers".into()],
        ids: vec!["carol".into()],
        acting_user: false,
    }
}

fn network_approvers() -> Approvers {
    Approvers {
        groups: vec!["netops".into()],
        ids: vec![],
        acting_user: false,
    }
}

/// Stores a pending approval asked for by `requester` (the conformance
/// suite's fixture, with these approvers and a justification).
async fn pending(
    store: &MemoryApprovalStore,
    requester: &Principal,
    approvers: Approvers,
    min_approvals: u32,
) -> ApprovalRequest {
    let mut request = airlock_approval::conformance::pending_request(requester, ApprovalWait::Hold);
    request.approvers = approvers;
    request.min_approvals = min_approvals;
    request.justification_required = true;
    request.justification = Some("rotate the account for the release".into());
    // Full precision, so the list's oldest-first order is the creation order.
    request.created_at = std::time::SystemTime::now();
    store.create(request.clone(), None).await.unwrap();
    request
}

struct Harness {
    store: Arc<MemoryApprovalStore>,
    notifier: Arc<RecordingNotifier>,
    router: axum::Router,
}

impl Harness {
    fn new() -> Self {
        let store = Arc::new(MemoryApprovalStore::new());
        let notifier = Arc::new(RecordingNotifier::new());
        // As the policy's `is_approver`: anyone some rule's approval names.
        let router = ApprovalApi::new(store.clone(), notifier.clone(), |p: &Principal| {
            storage_approvers().admits(p) || network_approvers().admits(p)
        })
        .into_router();
        Self {
            store,
            notifier,
            router,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        caller: Option<&Principal>,
        body: &str,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("x-airlock-request-id", "rid-1");
        if let Some(caller) = caller {
            request = request.extension(caller.clone());
        }
        let request = request.body(Body::from(body.to_owned())).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let error_code = response
            .headers()
            .get("x-ms-error-code")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {bytes:?}"));
        if let Some(code) = error_code {
            assert_eq!(json["error"]["code"], code.as_str(), "{json}");
            assert_eq!(json["error"]["airlock"]["requestId"], "rid-1", "{json}");
        }
        (status, json)
    }

    async fn get(&self, path: &str, caller: &Principal) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(caller), "").await
    }

    async fn post(&self, path: &str, caller: &Principal, body: &str) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(caller), body).await
    }

    fn decided_events(&self) -> Vec<ApprovalRequest> {
        self.notifier
            .events()
            .into_iter()
            .filter_map(|e| match e {
                ApprovalEvent::Decided(r) => Some(r),
                _ => None,
            })
            .collect()
    }
}

fn code(json: &Value) -> &str {
    json["error"]["code"].as_str().unwrap_or_default()
}

fn message(json: &Value) -> &str {
    json["error"]["message"].as_str().unwrap_or_default()
}

fn routes(id: ApprovalId) -> [(Method, String); 4] {
    [
        (Method::GET, "/api/approvals".to_owned()),
        (Method::GET, format!("/api/approvals/{id}")),
        (Method::POST, format!("/api/approvals/{id}/approve")),
        (Method::POST, format!("/api/approvals/{id}/deny")),
    ]
}

#[tokio::test]
async fn without_a_verified_principal_every_route_is_401() {
    let h = Harness::new();
    let approval = pending(&h.store, &agent(), storage_approvers(), 1).await;
    for (method, path) in routes(approval.id) {
        let (status, json) = h.call(method, &path, None, "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(code(&json), "AirlockUnauthenticated");
        assert!(message(&json).contains("Authorization: Bearer"), "{json}");
    }
    assert_eq!(
        h.store.get(approval.id).await.unwrap().unwrap().state,
        ApprovalState::Pending
    );
}

#[tokio::test]
async fn a_principal_who_approves_nothing_is_403_on_every_route() {
    let h = Harness::new();
    let approval = pending(&h.store, &dave(), storage_approvers(), 1).await;
    // The agent asked for nothing here, and approves nothing.
    for (method, path) in routes(approval.id) {
        let (status, json) = h.call(method, &path, Some(&agent()), "").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(code(&json), "AirlockNotAnApprover");
        assert!(
            message(&json).contains("is not an approver")
                && message(&json).contains("[rule.approval]"),
            "{json}"
        );
    }
    assert!(
        h.store
            .get(approval.id)
            .await
            .unwrap()
            .unwrap()
            .decisions
            .is_empty()
    );
    assert!(h.notifier.events().is_empty());
}

#[tokio::test]
async fn an_approver_lists_the_pending_approvals_they_may_see() {
    let h = Harness::new();
    let mine = pending(&h.store, &dave(), storage_approvers(), 1).await;
    let theirs = pending(&h.store, &agent(), storage_approvers(), 1).await;
    let network = pending(&h.store, &agent(), network_approvers(), 1).await;
    let denied = pending(&h.store, &agent(), storage_approvers(), 1).await;
    h.store
        .decide(denied.id, &carol(), false, None)
        .await
        .unwrap();

    let (status, json) = h.get("/api/approvals?state=pending", &dave()).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let items = json["value"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [mine.id.to_string(), theirs.id.to_string()]);
    // Dave asked for the first himself: he may not decide it.
    assert_eq!(items[0]["canDecide"], false);
    assert_eq!(items[1]["canDecide"], true);
    assert_eq!(items[1]["state"], "pending");
    assert_eq!(items[1]["requester"]["id"], "agent");
    assert_eq!(
        items[1]["justification"],
        "rotate the account for the release"
    );

    // Every state: the denied one too, which nobody can decide any more.
    let (_, json) = h.get("/api/approvals", &dave()).await;
    let all = json["value"].as_array().unwrap();
    assert_eq!(all.len(), 3);
    let (_, json) = h.get("/api/approvals?state=all", &dave()).await;
    assert_eq!(json["value"].as_array().unwrap().len(), 3);
    let (_, json) = h.get("/api/approvals?state=Denied", &dave()).await;
    let items = json["value"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["canDecide"], false);

    // Nina approves network changes only.
    let (_, json) = h.get("/api/approvals?state=pending", &nina()).await;
    let items = json["value"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], network.id.to_string());
    assert_eq!(items[0]["canDecide"], true);
}

#[tokio::test]
async fn show_answers_404_for_unknown_and_foreign_approvals() {
    let h = Harness::new();
    let network = pending(&h.store, &agent(), network_approvers(), 1).await;

    let (status, json) = h
        .get(&format!("/api/approvals/{}", network.id), &nina())
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["id"], network.id.to_string());
    assert_eq!(json["canDecide"], true);

    let unknown = ApprovalId::new();
    let (status, json) = h.get(&format!("/api/approvals/{unknown}"), &dave()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&json), "AirlockApprovalNotFound");
    let unknown_message = message(&json).replace(&unknown.to_string(), "ID");

    // Dave approves storage changes: the network approval is not his to see,
    // and the answer does not tell it apart from an unknown one.
    for path in [
        format!("/api/approvals/{}", network.id),
        format!("/api/approvals/{}/approve", network.id),
        format!("/api/approvals/{}/deny", network.id),
    ] {
        let (status, json) = if path.ends_with(&network.id.to_string()) {
            h.get(&path, &dave()).await
        } else {
            h.post(&path, &dave(), "").await
        };
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(code(&json), "AirlockApprovalNotFound");
        assert_eq!(
            message(&json).replace(&network.id.to_string(), "ID"),
            unknown_message
        );
    }
    assert_eq!(
        h.store.get(network.id).await.unwrap().unwrap().state,
        ApprovalState::Pending
    );
}

#[tokio::test]
async fn malformed_ids_states_and_bodies_are_400_saying_what_is_expected() {
    let h = Harness::new();
    let approval = pending(&h.store, &agent(), storage_approvers(), 1).await;

    let (status, json) = h.get("/api/approvals/not-a-uuid", &dave()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&json), "InvalidRequestUri");
    assert!(
        message(&json).contains("'not-a-uuid' is not an approval id")
            && message(&json).contains("UUID"),
        "{json}"
    );
    let (status, _) = h.post("/api/approvals/42/approve", &dave(), "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, json) = h.get("/api/approvals?state=waiting", &dave()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&json), "InvalidQueryParameterValue");
    assert!(
        message(&json).contains("unknown approval state 'waiting'")
            && message(&json).contains("pending, approved, denied"),
        "{json}"
    );
    let (status, json) = h.get("/api/approvals?status=pending", &dave()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&json).contains("`?state=`"), "{json}");

    let approve = format!("/api/approvals/{}/approve", approval.id);
    for (body, expected) in [
        ("{\"comment\": ", "not a decision"),
        ("\"ok\"", "not a decision"),
        ("{\"reason\": \"why\"}", "unknown field `reason`"),
        ("{\"comment\": 7}", "not a decision"),
    ] {
        let (status, json) = h.post(&approve, &dave(), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(code(&json), "InvalidRequestContent");
        assert!(
            message(&json).contains(expected)
                && message(&json).contains("{\"comment\": \"<text>\"}"),
            "{body}: {json}"
        );
    }
    let long = serde_json::json!({ "comment": "x".repeat(2001) }).to_string();
    let (status, json) = h.post(&approve, &dave(), &long).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message(&json).contains("2001 characters") && message(&json).contains("at most 2000"),
        "{json}"
    );
    let huge = serde_json::json!({ "comment": "x".repeat(100_000) }).to_string();
    let (status, json) = h.post(&approve, &dave(), &huge).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&json).contains("exceeds"), "{json}");

    // Nothing was decided by any of it.
    let stored = h.store.get(approval.id).await.unwrap().unwrap();
    assert_eq!(stored.state, ApprovalState::Pending);
    assert!(stored.decisions.is_empty());

    // A comment of exactly the limit, and an empty body, are fine.
    let (status, json) = h
        .post(
            &format!("/api/approvals/{}/deny", approval.id),
            &carol(),
            &serde_json::json!({ "comment": "y".repeat(2000) }).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let other = pending(&h.store, &agent(), storage_approvers(), 1).await;
    let (status, json) = h
        .post(&format!("/api/approvals/{}/approve", other.id), &dave(), "")
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["state"], "approved");
}

#[tokio::test]
async fn the_requester_cannot_approve_even_as_an_approver() {
    let h = Harness::new();
    // Dave is in the approver group, and asked for it himself.
    let approval = pending(&h.store, &dave(), storage_approvers(), 1).await;
    for action in ["approve", "deny"] {
        let (status, json) = h
            .post(
                &format!("/api/approvals/{}/{action}", approval.id),
                &dave(),
                "",
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}");
        assert_eq!(code(&json), "AirlockSelfApproval");
        assert_eq!(
            json["error"]["airlock"]["approvalId"],
            approval.id.to_string()
        );
        assert!(
            message(&json).contains("can never approve or deny their own request")
                && message(&json).contains("another approver must"),
            "{json}"
        );
    }
    let stored = h.store.get(approval.id).await.unwrap().unwrap();
    assert_eq!(stored.state, ApprovalState::Pending);
    assert!(stored.decisions.is_empty());
    assert!(h.notifier.events().is_empty());
}

#[tokio::test]
async fn two_approvals_need_two_distinct_approvers() {
    let h = Harness::new();
    let approval = pending(&h.store, &agent(), storage_approvers(), 2).await;
    let approve = format!("/api/approvals/{}/approve", approval.id);

    let (status, json) = h
        .post(&approve, &dave(), "{\"comment\": \"fine by me\"}")
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["state"], "pending");
    assert_eq!(json["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(json["canDecide"], true);

    // The same approver again counts once.
    let (status, json) = h.post(&approve, &dave(), "").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["state"], "pending");
    assert!(h.decided_events().is_empty());

    let (status, json) = h.post(&approve, &carol(), "").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["state"], "approved");
    assert_eq!(json["canDecide"], false);
    assert!(json["grantExpiresAt"].is_string(), "{json}");
    let decided = h.decided_events();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].id, approval.id);
    assert_eq!(decided[0].state, ApprovalState::Approved);

    // Approved is final for the API: a late denial conflicts.
    let (status, json) = h
        .post(&format!("/api/approvals/{}/deny", approval.id), &dave(), "")
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&json), "AirlockApprovalNotPending");
    assert_eq!(h.decided_events().len(), 1);
}

#[tokio::test]
async fn a_denial_keeps_its_comment_and_cannot_be_decided_again() {
    let h = Harness::new();
    let approval = pending(&h.store, &agent(), storage_approvers(), 1).await;
    let deny = format!("/api/approvals/{}/deny", approval.id);

    let (status, json) = h
        .post(
            &deny,
            &carol(),
            "{\"comment\": \"  not during the freeze  \"}",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["state"], "denied");
    assert_eq!(json["decisions"][0]["approver"], "carol");
    assert_eq!(json["decisions"][0]["approve"], false);
    assert_eq!(json["decisions"][0]["comment"], "not during the freeze");
    let stored = h.store.get(approval.id).await.unwrap().unwrap();
    assert_eq!(stored.state, ApprovalState::Denied);
    assert_eq!(
        stored.denial().unwrap().comment.as_deref(),
        Some("not during the freeze")
    );
    let decided = h.decided_events();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].state, ApprovalState::Denied);

    for action in ["approve", "deny"] {
        let (status, json) = h
            .post(
                &format!("/api/approvals/{}/{action}", approval.id),
                &dave(),
                "{\"comment\": null}",
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}");
        assert_eq!(code(&json), "AirlockApprovalNotPending");
        assert!(message(&json).contains("is denied, not pending"), "{json}");
    }
    assert_eq!(h.decided_events().len(), 1);
}

#[tokio::test]
async fn decisions_are_logged_by_id_and_outcome_never_with_comments_or_justifications() {
    let captured = airlock_core::LogCapture::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = Harness::new();
    let approval = pending(&h.store, &agent(), storage_approvers(), 1).await;
    let (status, _) = h
        .post(
            &format!("/api/approvals/{}/deny", approval.id),
            &carol(),
            "{\"comment\": \"the-secret-comment\"}",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h
        .post(
            &format!("/api/approvals/{}/approve", approval.id),
            &dave(),
            "{\"comment\": \"another-secret-comment\"}",
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    h.get("/api/approvals", &dave()).await;

    let logs = captured.text();
    assert!(logs.contains(&approval.id.to_string()), "{logs}");
    assert!(
        logs.contains("approver=\"carol\"") || logs.contains("approver=carol"),
        "{logs}"
    );
    assert!(logs.contains("state=denied"), "{logs}");
    assert!(logs.contains("AirlockApprovalNotPending"), "{logs}");
    for secret in ["secret-comment", "rotate the account"] {
        assert!(!logs.contains(secret), "{secret} logged:\n{logs}");
    }
}
