//! The approval layer end to end over the in-memory store, with real timing
//! (short holds) and no sleeps used as assertions.

// Tests unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_approval::{
    ApprovalError, ApprovalEvent, ApprovalId, ApprovalLayer, ApprovalRequest, ApprovalState,
    ApprovalStore, Fingerprint, MemoryApprovalStore, PendingLimits, RecordingNotifier,
    RequestSealer,
};
use airlock_core::{
    AirlockBody, ApprovalWait, Approvers, AuditDraft, Decision, Operation, Plane, Principal,
    PrincipalKind, ResourceScope, full,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::{Layer, ServiceExt};

const SCOPE: &str =
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa";
const WAIT: Duration = Duration::from_secs(10);

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

fn operation() -> Operation {
    Operation::new(
        "Microsoft.Storage/storageAccounts/write",
        Plane::Management,
        ResourceScope::new(SCOPE),
    )
}

fn require(min_approvals: u32, justification_required: bool, hold: Duration) -> Decision {
    Decision::RequireApproval {
        rule: "storage-needs-approval".into(),
        approvers: Approvers {
            groups: vec!["approvers".into()],
            ids: vec!["carol".into()],
            acting_user: false,
        },
        min_approvals,
        justification_required,
        hold,
        ttl: Duration::from_secs(600),
        wait: ApprovalWait::Hold,
        elevate_to: None,
    }
}

/// What the inner (upstream) service saw.
#[derive(Clone, Debug)]
struct Seen {
    decision: Option<Decision>,
    elevation: Option<airlock_core::Elevation>,
    body: bytes::Bytes,
}

struct Harness {
    store: Arc<MemoryApprovalStore>,
    notifier: Arc<RecordingNotifier>,
    seen: Arc<Mutex<Vec<Seen>>>,
    layer: ApprovalLayer,
}

impl Harness {
    fn new() -> Self {
        Self::with(|layer| layer)
    }

    /// With the layer configured further by `configure`.
    fn with(configure: impl FnOnce(ApprovalLayer) -> ApprovalLayer) -> Self {
        let store = Arc::new(MemoryApprovalStore::new());
        let notifier = Arc::new(RecordingNotifier::new());
        let layer = configure(
            ApprovalLayer::new(store.clone(), notifier.clone())
                .status_url_base("https://airlock.example/api/approvals/"),
        );
        Self {
            store,
            notifier,
            seen: Arc::default(),
            layer,
        }
    }

    fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Sends one request through the layer to a recording upstream.
    fn send(
        &self,
        request: Request<AirlockBody>,
    ) -> airlock_core::BoxFuture<'static, Response<AirlockBody>> {
        let seen = self.seen.clone();
        let upstream = tower::service_fn(move |request: Request<AirlockBody>| {
            let seen = seen.clone();
            async move {
                let decision = request.extensions().get::<Decision>().cloned();
                let elevation = request
                    .extensions()
                    .get::<airlock_core::Elevation>()
                    .cloned();
                let body = request.into_body().collect().await.unwrap().to_bytes();
                seen.lock().unwrap().push(Seen {
                    decision,
                    elevation,
                    body,
                });
                Ok::<_, Infallible>(Response::new(full("created")))
            }
        });
        let service = self.layer.layer(upstream);
        // Boxed outside an async block, where `Send` can be proven.
        let response: airlock_core::BoxFuture<'static, Result<_, Infallible>> =
            Box::pin(service.oneshot(request));
        Box::pin(async move { response.await.unwrap() })
    }

    /// The `n`-th (1-based) approval the layer announced.
    async fn nth_new(&self, n: usize) -> ApprovalRequest {
        let events = self
            .notifier
            .wait_for(WAIT, |events| {
                events
                    .iter()
                    .filter(|e| matches!(e, ApprovalEvent::New(_)))
                    .count()
                    >= n
            })
            .await
            .expect("the layer announces the approval");
        events
            .into_iter()
            .filter_map(|e| match e {
                ApprovalEvent::New(r) => Some(r),
                _ => None,
            })
            .nth(n - 1)
            .unwrap()
    }

    async fn state(&self, id: ApprovalId) -> ApprovalState {
        self.store.get(id).await.unwrap().unwrap().state
    }
}

fn request(
    who: &Principal,
    body: &'static str,
    decision: Decision,
    justification: Option<&str>,
) -> Request<AirlockBody> {
    let mut builder = Request::put(format!("https://airlock.example{SCOPE}"))
        .extension(who.clone())
        .extension(operation())
        .extension(decision);
    if let Some(j) = justification {
        builder = builder.header("x-airlock-justification", j);
    }
    builder.body(full(body)).unwrap()
}

/// Checks an Airlock refusal: status, code, and never `Retry-After`.
async fn refusal(
    response: Response<AirlockBody>,
    status: StatusCode,
    code: &str,
) -> serde_json::Value {
    assert_eq!(response.status(), status);
    for name in ["retry-after", "retry-after-ms", "x-ms-retry-after-ms"] {
        assert!(
            response.headers().get(name).is_none(),
            "{name} on a refusal"
        );
    }
    assert_eq!(response.headers()["x-ms-error-code"], code);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["error"]["code"], code);
    json
}

async fn ok_body(response: Response<AirlockBody>) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The rule's `elevate_to` is shown to approvers and granted to the approved
/// request alone; an elevation that did not come from an approval is taken out.
#[tokio::test]
async fn only_an_approval_grants_its_elevation_and_only_to_its_request() {
    let h = Harness::new();
    let mut decision = require(1, false, WAIT);
    if let Decision::RequireApproval { elevate_to, .. } = &mut decision {
        *elevate_to = Some("contributor".into());
    }
    let held = tokio::spawn(h.send(request(&agent(), "{}", decision, None)));
    let approval = h.nth_new(1).await;
    assert_eq!(approval.elevate_to.as_deref(), Some("contributor"));
    let alice = principal("alice", &["approvers"]);
    h.store
        .decide(approval.id, &alice, true, None)
        .await
        .unwrap();
    assert_eq!(ok_body(held.await.unwrap()).await, "created");

    // A rule without elevate_to; something before the layer tried to elevate.
    let mut smuggled = request(&agent(), "{\"b\":1}", require(1, false, WAIT), None);
    smuggled.extensions_mut().insert(airlock_core::Elevation {
        identity: "owner".into(),
        approval_id: "forged".into(),
    });
    let held = tokio::spawn(h.send(smuggled));
    let plain = h.nth_new(2).await;
    assert_eq!(plain.elevate_to, None);
    h.store.decide(plain.id, &alice, true, None).await.unwrap();
    assert_eq!(ok_body(held.await.unwrap()).await, "created");

    let seen = h.seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].elevation,
        Some(airlock_core::Elevation {
            identity: "contributor".into(),
            approval_id: approval.id.to_string(),
        })
    );
    assert_eq!(seen[1].elevation, None);
}

#[tokio::test]
async fn hold_then_approve_forwards_the_held_request_once() {
    let h = Harness::new();
    let draft = AuditDraft::default();
    let mut req = request(
        &agent(),
        r#"{"sku":"Standard_LRS"}"#,
        require(1, false, WAIT),
        None,
    );
    req.extensions_mut().insert(draft.clone());
    let held = tokio::spawn(h.send(req));

    let approval = h.nth_new(1).await;
    assert_eq!(approval.state, ApprovalState::Pending);
    assert_eq!(approval.requester.id, "agent");
    assert_eq!(
        approval.operation.name,
        "Microsoft.Storage/storageAccounts/write"
    );
    assert_eq!(h.calls(), 0, "nothing goes upstream while held");

    let alice = principal("alice", &["approvers"]);
    let decided = h
        .store
        .decide(approval.id, &alice, true, Some("ok".into()))
        .await
        .unwrap();
    assert_eq!(decided.state, ApprovalState::Approved);

    let response = held.await.unwrap();
    assert_eq!(ok_body(response).await, "created");
    let seen = h.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].body, r#"{"sku":"Standard_LRS"}"#,
        "the body is passed on intact"
    );
    assert_eq!(
        seen[0].decision,
        Some(Decision::Allow {
            rule: format!("approved:{}", approval.id)
        })
    );
    assert_eq!(h.state(approval.id).await, ApprovalState::Consumed);
    let record = draft.snapshot();
    assert_eq!(record.approval_id, Some(approval.id.to_string()));
    assert_eq!(record.approvers, vec!["alice".to_owned()]);
    // The layer announced the new approval; the decision is announced by
    // whoever made it (the API), not again by every waiter.
    let events = h.notifier.events();
    assert_eq!(events.len(), 1);
    assert!(matches!(&events[0], ApprovalEvent::New(r) if r.id == approval.id));
}

#[tokio::test]
async fn hold_then_deny_answers_403_naming_approver_and_reason() {
    let h = Harness::new();
    let held = tokio::spawn(h.send(request(&agent(), "{}", require(1, false, WAIT), None)));
    let approval = h.nth_new(1).await;
    let alice = principal("alice", &["approvers"]);
    h.store
        .decide(approval.id, &alice, false, Some("not in prod".into()))
        .await
        .unwrap();

    let json = refusal(
        held.await.unwrap(),
        StatusCode::FORBIDDEN,
        "AirlockApprovalDenied",
    )
    .await;
    assert_eq!(
        json["error"]["message"],
        format!("approval {} was denied by ALICE: not in prod", approval.id)
    );
    assert_eq!(
        json["error"]["airlock"]["approvalId"],
        approval.id.to_string()
    );
    assert_eq!(json["error"]["airlock"]["retryable"], false);
    assert_eq!(h.calls(), 0);
    assert_eq!(h.state(approval.id).await, ApprovalState::Denied);
}

#[tokio::test]
async fn hold_timeout_then_approval_admits_exactly_one_retry() {
    let h = Harness::new();
    let hold = Duration::from_millis(200);
    let first = h
        .send(request(&agent(), "{}", require(1, false, hold), None))
        .await;
    let json = refusal(first, StatusCode::FORBIDDEN, "AirlockApprovalPending").await;
    let approval = h.nth_new(1).await;
    assert_eq!(
        json["error"]["airlock"]["approvalId"],
        approval.id.to_string()
    );
    assert_eq!(json["error"]["airlock"]["retryable"], true);
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "https://airlock.example/api/approvals/{}",
            approval.id
        )),
        "{message}"
    );
    assert_eq!(
        h.state(approval.id).await,
        ApprovalState::Pending,
        "a hold running out leaves the approval pending"
    );

    h.store
        .decide(approval.id, &principal("alice", &["approvers"]), true, None)
        .await
        .unwrap();

    // The agent simply retries: admitted at once, no new approval.
    let retry = h
        .send(request(&agent(), "{}", require(1, false, hold), None))
        .await;
    assert_eq!(ok_body(retry).await, "created");
    assert_eq!(h.calls(), 1);
    assert_eq!(h.state(approval.id).await, ApprovalState::Consumed);

    // The grant is used up: a second retry is held again, as a new approval.
    let again = h
        .send(request(&agent(), "{}", require(1, false, hold), None))
        .await;
    let json = refusal(again, StatusCode::FORBIDDEN, "AirlockApprovalPending").await;
    let second = h.nth_new(2).await;
    assert_ne!(second.id, approval.id);
    assert_eq!(
        json["error"]["airlock"]["approvalId"],
        second.id.to_string()
    );
    assert_eq!(h.calls(), 1);
}

#[tokio::test]
async fn a_grant_admits_no_request_with_another_body_or_principal() {
    let h = Harness::new();
    let hold = Duration::from_millis(200);
    let first = h
        .send(request(
            &agent(),
            r#"{"sku":"a"}"#,
            require(1, false, hold),
            None,
        ))
        .await;
    refusal(first, StatusCode::FORBIDDEN, "AirlockApprovalPending").await;
    let approval = h.nth_new(1).await;
    h.store
        .decide(approval.id, &principal("alice", &["approvers"]), true, None)
        .await
        .unwrap();

    // Same principal, other body.
    let other_body = h
        .send(request(
            &agent(),
            r#"{"sku":"b"}"#,
            require(1, false, hold),
            None,
        ))
        .await;
    refusal(other_body, StatusCode::FORBIDDEN, "AirlockApprovalPending").await;
    // Same body, another principal (same groups, other object id).
    let twin = principal("agent-2", &["agents"]);
    let other_principal = h
        .send(request(
            &twin,
            r#"{"sku":"a"}"#,
            require(1, false, hold),
            None,
        ))
        .await;
    refusal(
        other_principal,
        StatusCode::FORBIDDEN,
        "AirlockApprovalPending",
    )
    .await;
    assert_eq!(h.calls(), 0);
    assert_eq!(h.state(approval.id).await, ApprovalState::Approved);

    // The request that was approved still gets through.
    let retry = h
        .send(request(
            &agent(),
            r#"{"sku":"a"}"#,
            require(1, false, hold),
            None,
        ))
        .await;
    assert_eq!(ok_body(retry).await, "created");
    assert_eq!(h.seen.lock().unwrap()[0].body, r#"{"sku":"a"}"#);
}

/// The head of a request: `method` to `uri`, with `headers`.
fn head(method: &Method, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).unwrap().into_parts().0
}

/// A PUT with `api-version=1` and `body`, fingerprinted for `principal`.
fn put(principal: &Principal, operation: &Operation, body: &[u8]) -> Fingerprint {
    Fingerprint::of(
        principal,
        &head(&Method::PUT, "/sa?api-version=1", &[]),
        operation,
        body,
    )
}

#[test]
fn fingerprints_differ_by_tenant_scope_child_and_body() {
    let agent = agent();
    let base = put(&agent, &operation(), b"{}");
    let other_tenant = Principal::builder("agent", PrincipalKind::User)
        .tenant_id("tenant-2")
        .build();
    assert_ne!(base, put(&other_tenant, &operation(), b"{}"));
    let other_scope = Operation::new(
        "Microsoft.Storage/storageAccounts/write",
        Plane::Management,
        ResourceScope::new(format!("{SCOPE}2")),
    );
    assert_ne!(base, put(&agent, &other_scope, b"{}"));
    let with_child = operation().with_child(Operation::new(
        "Microsoft.Compute/virtualMachines/delete",
        Plane::Management,
        ResourceScope::new("/subscriptions/s"),
    ));
    assert_ne!(base, put(&agent, &with_child, b"{}"));
    assert_eq!(base.to_hex().len(), 64);
    assert_eq!(base, put(&agent, &operation(), b"{}"));
}

/// The review's finding: a grant for one method and query was spent by
/// another (`PATCH` for `PUT`; `api-version=2019-06-01&$expand=kerb` for
/// `api-version=2023-05-01`). The fingerprint binds both; the same
/// parameters reordered or encoded differently are still the same request.
#[test]
fn fingerprints_bind_the_method_and_the_whole_query() {
    let agent = agent();
    let op = operation();
    let of = |method: &Method, query: Option<&str>| {
        let uri = query.map_or_else(|| "/sa".to_owned(), |q| format!("/sa?{q}"));
        Fingerprint::of(&agent, &head(method, &uri, &[]), &op, b"{}")
    };
    let approved = of(&Method::POST, Some("api-version=2023-05-01"));
    assert_ne!(approved, of(&Method::PUT, Some("api-version=2023-05-01")));
    assert_ne!(
        approved,
        of(&Method::POST, Some("api-version=2019-06-01&$expand=kerb"))
    );
    assert_ne!(
        approved,
        of(&Method::POST, Some("api-version=2023-05-01&$expand=kerb"))
    );
    assert_ne!(approved, of(&Method::POST, None));
    assert_eq!(
        of(&Method::POST, Some("$expand=kerb&api-version=2023-05-01")),
        of(&Method::POST, Some("API-Version=2023-05-01&%24expand=kerb")),
    );
    assert_ne!(
        of(&Method::POST, Some("skipShutdown=false")),
        of(&Method::POST, Some("skipShutdown=true")),
    );
    // `+` is a space, as Azure reads a query: not the `+` of `%2B`.
    assert_ne!(
        of(&Method::POST, Some("$filter=a+b")),
        of(&Method::POST, Some("$filter=a%2Bb")),
    );
    assert_eq!(
        of(&Method::POST, Some("$filter=a+b")),
        of(&Method::POST, Some("$filter=a%20b")),
    );
}

/// The second review's findings: a grant was spent by the same request
/// with a header that changes what Azure does (`x-ms-delete-snapshots`),
/// by another version of a secret (its path), and by an ARM path spelling
/// the vault's own operation (its plane). Per-call ids still do not count.
#[test]
fn fingerprints_bind_the_path_the_plane_and_the_headers_azure_acts_on() {
    let agent = agent();
    let op = operation();
    let delete = |headers: &[(&str, &str)]| {
        Fingerprint::of(&agent, &head(&Method::DELETE, "/c/b", headers), &op, b"")
    };
    let approved = delete(&[("x-ms-version", "2023-11-03")]);
    assert_ne!(
        approved,
        delete(&[
            ("x-ms-version", "2023-11-03"),
            ("x-ms-delete-snapshots", "include")
        ])
    );
    assert_ne!(
        approved,
        delete(&[
            ("x-ms-version", "2023-11-03"),
            ("content-type", "text/plain")
        ])
    );
    assert_eq!(
        approved,
        delete(&[
            ("x-ms-client-request-id", "a"),
            ("x-ms-version", "2023-11-03"),
            ("x-ms-date", "Sat, 05 Dec 2026 20:00:00 GMT")
        ])
    );
    let secret = Operation::new(
        "Microsoft.KeyVault/vaults/secrets/getSecret/action",
        Plane::Data,
        ResourceScope::new("/providers/Microsoft.KeyVault/vaults/kv1/secrets/db"),
    );
    let get = |path: &str, op: &Operation| {
        Fingerprint::of(&agent, &head(&Method::GET, path, &[]), op, b"")
    };
    assert_ne!(
        get("/secrets/db/0123abcd?api-version=7.4", &secret),
        get("/secrets/db?api-version=7.4", &secret)
    );
    let spelled_on_arm = Operation::new(
        "Microsoft.KeyVault/vaults/secrets/getSecret/action",
        Plane::Management,
        ResourceScope::new("/providers/Microsoft.KeyVault/vaults/kv1/secrets/db"),
    );
    assert_ne!(
        get("/secrets/db?api-version=7.4", &secret),
        get("/secrets/db?api-version=7.4", &spelled_on_arm)
    );
}

// The store's own rules (no self-approval, distinct approvers, one use of a
// grant, expiry) are checked for every store by `airlock_approval::conformance`
// (tests/conformance.rs here, and airlock-store's tests); these tests check
// what the layer makes of them.

#[tokio::test]
async fn a_self_approval_does_not_release_a_held_request() {
    let h = Harness::new();
    let mallory = principal("mallory", &["approvers"]);
    let held = tokio::spawn(h.send(request(&mallory, "{}", require(1, false, WAIT), None)));
    let approval = h.nth_new(1).await;
    let err = h
        .store
        .decide(approval.id, &mallory, true, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ApprovalError::SelfApproval(_)), "{err:?}");
    let err = h
        .store
        .decide(approval.id, &principal("carol-2", &[]), true, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApprovalError::NotAnApprover { .. }),
        "{err:?}"
    );
    assert_eq!(h.calls(), 0);
    // An approver by id (in no approver group) releases it.
    h.store
        .decide(approval.id, &principal("carol", &[]), true, None)
        .await
        .unwrap();
    assert_eq!(ok_body(held.await.unwrap()).await, "created");
}

#[tokio::test]
async fn a_held_request_waits_for_min_approvals_distinct_approvers() {
    let h = Harness::new();
    let held = tokio::spawn(h.send(request(&agent(), "{}", require(2, false, WAIT), None)));
    let approval = h.nth_new(1).await;
    let alice = principal("alice", &["approvers"]);
    for _ in 0..2 {
        let after = h
            .store
            .decide(approval.id, &alice, true, None)
            .await
            .unwrap();
        assert_eq!(
            after.state,
            ApprovalState::Pending,
            "the same approver counts once"
        );
        assert_eq!(after.approved_by().len(), 1);
    }
    assert_eq!(h.calls(), 0);
    let bob = principal("bob", &["approvers"]);
    let after = h.store.decide(approval.id, &bob, true, None).await.unwrap();
    assert_eq!(after.state, ApprovalState::Approved);
    assert_eq!(after.approved_by().len(), 2);
    assert_eq!(ok_body(held.await.unwrap()).await, "created");
    assert_eq!(h.calls(), 1);
    // Decided: nobody can decide it again.
    let err = h
        .store
        .decide(approval.id, &principal("dave", &["approvers"]), false, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ApprovalError::NotPending {
                state: ApprovalState::Consumed,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn missing_justification_is_428_naming_the_header() {
    let h = Harness::new();
    let response = h
        .send(request(&agent(), "{}", require(1, true, WAIT), None))
        .await;
    let json = refusal(
        response,
        StatusCode::PRECONDITION_REQUIRED,
        "AirlockJustificationRequired",
    )
    .await;
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("x-airlock-justification: <why>"),
        "{message}"
    );
    assert_eq!(json["error"]["airlock"]["rule"], "storage-needs-approval");
    assert_eq!(h.calls(), 0);
    assert!(
        h.store.list(None).await.unwrap().is_empty(),
        "no approval without a justification"
    );

    // With the header, the approval is created and carries it.
    let hold = Duration::from_millis(100);
    let response = h
        .send(request(
            &agent(),
            "{}",
            require(1, true, hold),
            Some("rotate the CI key"),
        ))
        .await;
    refusal(response, StatusCode::FORBIDDEN, "AirlockApprovalPending").await;
    let approval = h.nth_new(1).await;
    assert_eq!(approval.justification.as_deref(), Some("rotate the CI key"));
}

#[tokio::test]
async fn a_client_that_goes_away_leaves_the_approval_abandoned() {
    let h = Harness::new();
    let held = tokio::spawn(h.send(request(&agent(), "{}", require(1, false, WAIT), None)));
    let approval = h.nth_new(1).await;
    held.abort();
    assert!(held.await.unwrap_err().is_cancelled());

    let deadline = Instant::now() + WAIT;
    let mut states = h.store.subscribe(approval.id).await.unwrap();
    tokio::time::timeout_at(
        deadline.into(),
        states.wait_for(|s| *s == ApprovalState::Abandoned),
    )
    .await
    .expect("marked abandoned")
    .unwrap();
    let err = h
        .store
        .decide(approval.id, &principal("alice", &["approvers"]), true, None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ApprovalError::NotPending {
            state: ApprovalState::Abandoned,
            ..
        }
    ));
    assert_eq!(h.calls(), 0);
}

#[tokio::test]
async fn other_decisions_pass_through_untouched() {
    let h = Harness::new();
    let allow = Decision::Allow {
        rule: "reads".into(),
    };
    let deny = Decision::Deny {
        rule: "no".into(),
        reason: "no".into(),
    };
    for decision in [Some(allow), Some(deny), None] {
        let mut req = request(&agent(), "payload", require(1, true, WAIT), None);
        match &decision {
            Some(d) => {
                req.extensions_mut().insert(d.clone());
            }
            None => {
                req.extensions_mut().remove::<Decision>();
            }
        }
        assert_eq!(ok_body(h.send(req).await).await, "created");
        let seen = h.seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(seen.decision, decision);
        assert_eq!(seen.body, "payload");
    }
    assert!(h.store.list(None).await.unwrap().is_empty());
    assert!(h.notifier.events().is_empty());
}

#[tokio::test]
async fn a_request_without_principal_is_refused_not_held() {
    let h = Harness::new();
    let mut req = request(&agent(), "{}", require(1, false, WAIT), None);
    req.extensions_mut().remove::<Principal>();
    refusal(
        h.send(req).await,
        StatusCode::FORBIDDEN,
        "AirlockNotDecided",
    )
    .await;
    assert_eq!(h.calls(), 0);
}

/// A request whose hold runs out at once: its approval stays pending.
fn briefly_held(who: &Principal, body: &'static str) -> Request<AirlockBody> {
    request(
        who,
        body,
        require(1, false, Duration::from_millis(20)),
        None,
    )
}

async fn pending_count(h: &Harness) -> usize {
    h.store
        .list(Some(ApprovalState::Pending))
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn pending_approvals_are_capped_per_principal_and_in_all() {
    let h = Harness::with(|layer| {
        layer.pending_limits(PendingLimits {
            per_principal: 2,
            total: 3,
        })
    });
    let agent = agent();
    for body in ["a", "b"] {
        let answer = h.send(briefly_held(&agent, body)).await;
        refusal(answer, StatusCode::FORBIDDEN, "AirlockApprovalPending").await;
    }
    let third = h.send(briefly_held(&agent, "c")).await;
    let json = refusal(
        third,
        StatusCode::TOO_MANY_REQUESTS,
        "AirlockTooManyPendingApprovals",
    )
    .await;
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("you have 2 approvals pending")
            && message.contains("max_pending_per_principal = 2"),
        "{message}"
    );
    // The same request again joins its approval: never refused by the cap.
    let again = h.send(briefly_held(&agent, "a")).await;
    refusal(again, StatusCode::FORBIDDEN, "AirlockApprovalPending").await;
    assert_eq!(pending_count(&h).await, 2);

    // Another principal has a cap of its own, within the total.
    let bob = principal("bob", &["agents"]);
    let answer = h.send(briefly_held(&bob, "x")).await;
    refusal(answer, StatusCode::FORBIDDEN, "AirlockApprovalPending").await;
    let over = h.send(briefly_held(&bob, "y")).await;
    let json = refusal(
        over,
        StatusCode::TOO_MANY_REQUESTS,
        "AirlockTooManyPendingApprovals",
    )
    .await;
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("the gateway has 3") && message.contains("max_pending = 3"),
        "{message}"
    );

    // A decision frees a place.
    let first = h.nth_new(1).await;
    h.store
        .decide(first.id, &principal("carol", &[]), false, None)
        .await
        .unwrap();
    let answer = h.send(briefly_held(&agent, "c")).await;
    refusal(answer, StatusCode::FORBIDDEN, "AirlockApprovalPending").await;
    assert_eq!(h.calls(), 0, "nothing was forwarded");
}

#[tokio::test]
async fn concurrent_requests_do_not_overshoot_the_cap() {
    let h = Harness::with(|layer| {
        layer.pending_limits(PendingLimits {
            per_principal: 3,
            total: 100,
        })
    });
    let agent = agent();
    let bodies = ["1", "2", "3", "4", "5", "6", "7", "8"];
    let sent: Vec<_> = bodies
        .iter()
        .map(|body| tokio::spawn(h.send(briefly_held(&agent, body))))
        .collect();
    let mut refused = 0;
    for answer in sent {
        if answer.await.unwrap().status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert_eq!(refused, 5);
    assert_eq!(pending_count(&h).await, 3);
}

#[tokio::test]
async fn an_approval_keeps_no_body_over_its_limit() {
    let h = Harness::with(|layer| {
        layer
            .async_operations("https://airlock.example", RequestSealer::new(&[7u8; 32]))
            .max_stored_body_bytes(1024)
    });
    let agent = agent();
    let wait_async = |body: &'static str| {
        let mut decision = require(1, false, WAIT);
        if let Decision::RequireApproval { wait, .. } = &mut decision {
            *wait = ApprovalWait::Async;
        }
        request(&agent, body, decision, None)
    };
    let large: &'static str = "x".repeat(1025).leak();
    let answer = h.send(wait_async(large)).await;
    let json = refusal(
        answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "AirlockApprovalBodyTooLarge",
    )
    .await;
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("(1025 bytes)") && message.contains("max_stored_body_bytes"),
        "{message}"
    );
    assert_eq!(pending_count(&h).await, 0, "nothing stored");
    // A held request's body is kept for approvers too: the same limit.
    let held = h.send(briefly_held(&agent, large)).await;
    refusal(
        held,
        StatusCode::PAYLOAD_TOO_LARGE,
        "AirlockApprovalBodyTooLarge",
    )
    .await;
    assert_eq!(pending_count(&h).await, 0, "nothing stored");
    let fits: &'static str = "x".repeat(1024).leak();
    let answer = h.send(wait_async(fits)).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    assert_eq!(pending_count(&h).await, 1);
}

#[tokio::test]
async fn approvers_get_the_whole_body_and_a_preview_that_is_its_start() {
    let h = Harness::with(|layer| {
        layer
            .body_preview(|_, _, _, body| Some(format!("masked:{}", String::from_utf8_lossy(body))))
    });
    let body: &'static str = "é".repeat(10_000).leak();
    let answer = h.send(briefly_held(&agent(), body)).await;
    refusal(answer, StatusCode::FORBIDDEN, "AirlockApprovalPending").await;
    let approval = h.nth_new(1).await;
    let whole = approval.body.unwrap();
    assert_eq!(whole, format!("masked:{body}"));
    let preview = approval.body_preview.unwrap();
    assert!(preview.len() <= airlock_approval::BODY_PREVIEW_BYTES);
    assert!(
        preview.len() > airlock_approval::BODY_PREVIEW_BYTES - 2,
        "cut on a character boundary"
    );
    assert!(whole.starts_with(&preview));
    assert_eq!(approval.request.unwrap().body_bytes, body.len() as u64);
}

#[tokio::test]
async fn a_compressed_body_is_refused_not_shown_as_bytes() {
    let h = Harness::new();
    let mut request = briefly_held(&agent(), "\u{1f}\u{8b}not-really-gzip");
    request
        .headers_mut()
        .insert("content-encoding", http::HeaderValue::from_static("gzip"));
    let answer = h.send(request).await;
    let json = refusal(
        answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "AirlockApprovalBodyEncoded",
    )
    .await;
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Content-Encoding: gzip"),
        "{json}"
    );
    assert_eq!(pending_count(&h).await, 0);
    // `identity` is no encoding.
    let mut request = briefly_held(&agent(), "{}");
    request.headers_mut().insert(
        "content-encoding",
        http::HeaderValue::from_static("identity"),
    );
    let answer = h.send(request).await;
    refusal(answer, StatusCode::FORBIDDEN, "AirlockApprovalPending").await;
}

/// `ApprovalMetrics` counts a request as held while it waits, and no longer
/// once it is answered.
#[tokio::test]
async fn a_held_request_is_counted_while_it_waits() {
    let metrics = airlock_approval::ApprovalMetrics::new();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let held_now = || airlock_metrics::sample(&registry, "airlock_approvals_held").unwrap();
    let h = Harness::with(|layer| layer.metrics(metrics.clone()));
    assert_eq!(held_now(), "0");
    let held = tokio::spawn(h.send(request(&agent(), "{}", require(1, false, WAIT), None)));
    let approval = h.nth_new(1).await;
    // The layer announces the approval just before it starts to wait.
    let deadline = std::time::Instant::now() + WAIT;
    while held_now() != "1" {
        assert!(
            std::time::Instant::now() < deadline,
            "never counted as held"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let alice = principal("alice", &["approvers"]);
    h.store
        .decide(approval.id, &alice, true, None)
        .await
        .unwrap();
    assert_eq!(ok_body(held.await.unwrap()).await, "created");
    assert_eq!(held_now(), "0");
}
