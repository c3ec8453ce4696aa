//! The contract every [`ApprovalStore`] must keep, as checks to run in an
//! implementation's tests (feature `conformance`).
//!
//! Each check is an `async fn` taking the store under test; it panics with a
//! message saying what broke. Checks create their own approvals (fresh ids,
//! fingerprints of their own) and look only at those, so they may share one
//! store, and one database. Stores may keep times to the millisecond, as
//! the approval JSON does; the checks build their requests that way.
//!
//! [`conformance_tests!`](crate::conformance_tests) expands to one
//! `#[tokio::test]` per check; [`run_all`] runs them one after another on a
//! single store:
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use airlock_approval::{conformance, MemoryApprovalStore};
//!
//! conformance::run_all(Arc::new(MemoryApprovalStore::new())).await;
//! # });
//! ```
//!
//! This module is for tests: it unwraps and panics freely.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlock_core::{
    ApprovalWait, Approvers, Operation, Plane, Principal, PrincipalKind, ResourceScope,
};

use crate::{
    ApprovalError, ApprovalId, ApprovalRequest, ApprovalState, ApprovalStore, ApproverDecision,
    Execution, FinalAnswer, Fingerprint, RequestedOperation, Requester, SealedRequest, Tracking,
};

/// How long a check waits for something that should happen at once.
const WAIT: Duration = Duration::from_secs(10);

/// The rule every check's approvals come from.
pub const RULE: &str = "storage-needs-approval";

const SCOPE: &str =
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa";

/// Expands to one `#[tokio::test]` per conformance check, each on a store
/// from `$fixture`: an `async fn() -> (G, Arc<dyn ApprovalStore>)`, where
/// `G` is whatever must outlive the store (a temporary directory, or `()`).
/// The calling crate needs `tokio` (with `macros` and `rt-multi-thread`).
///
/// ```
/// use std::sync::Arc;
/// use airlock_approval::{ApprovalStore, MemoryApprovalStore};
///
/// async fn memory() -> ((), Arc<dyn ApprovalStore>) {
///     ((), Arc::new(MemoryApprovalStore::new()))
/// }
///
/// airlock_approval::conformance_tests!(memory);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($fixture:path) => {
        // The same list as `conformance::run_all`.
        $crate::conformance_tests!(@each $fixture;
            get_round_trips_every_field,
            list_filters_by_state_oldest_first,
            the_requester_can_never_decide_their_own_request,
            the_user_an_agent_acts_for_confirms_only_where_the_rule_says,
            only_approvers_decide,
            min_approvals_needs_distinct_approvers,
            a_reveal_quorum_is_needed_too,
            any_denial_denies,
            an_expired_request_cannot_be_decided,
            expire_due_expires_what_is_due_once,
            consume_hands_out_the_sealed_request_once,
            concurrent_retries_get_one_grant_exactly_once,
            consume_grant_never_uses_an_async_approval,
            consume_grant_uses_the_grant_expiring_first,
            mark_only_ends_a_pending_request,
            subscribe_sees_a_later_decision,
            create_refuses_a_duplicate_id,
            unknown_ids_are_not_found,
        );
    };
    (@each $fixture:path; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let (_keep, store) = $fixture().await;
                $crate::conformance::$check(store).await;
            }
        )+
    };
}

/// Runs every check, one after another, on `store`.
pub async fn run_all(store: Arc<dyn ApprovalStore>) {
    // The same list as `conformance_tests!`.
    get_round_trips_every_field(store.clone()).await;
    list_filters_by_state_oldest_first(store.clone()).await;
    the_requester_can_never_decide_their_own_request(store.clone()).await;
    the_user_an_agent_acts_for_confirms_only_where_the_rule_says(store.clone()).await;
    only_approvers_decide(store.clone()).await;
    min_approvals_needs_distinct_approvers(store.clone()).await;
    a_reveal_quorum_is_needed_too(store.clone()).await;
    any_denial_denies(store.clone()).await;
    an_expired_request_cannot_be_decided(store.clone()).await;
    expire_due_expires_what_is_due_once(store.clone()).await;
    consume_hands_out_the_sealed_request_once(store.clone()).await;
    concurrent_retries_get_one_grant_exactly_once(store.clone()).await;
    consume_grant_never_uses_an_async_approval(store.clone()).await;
    consume_grant_uses_the_grant_expiring_first(store.clone()).await;
    mark_only_ends_a_pending_request(store.clone()).await;
    subscribe_sees_a_later_decision(store.clone()).await;
    create_refuses_a_duplicate_id(store.clone()).await;
    unknown_ids_are_not_found(store).await;
}

/// A user principal in tenant `tenant-1`, named `id` in upper case.
pub fn principal(id: &str, groups: &[&str]) -> Principal {
    Principal::builder(id, PrincipalKind::User)
        .tenant_id("tenant-1")
        .display_name(id.to_uppercase())
        .groups(groups.iter().copied())
        .build()
}

/// A pending approval of [`RULE`] by `requester`, not yet stored: approvers
/// are group `approvers` and id `carol`, one approval needed, expiring and
/// granting for ten minutes, with a fingerprint of its own.
pub fn pending_request(requester: &Principal, wait: ApprovalWait) -> ApprovalRequest {
    let id = ApprovalId::new();
    let now = now_millis();
    let operation = Operation::new(
        "Microsoft.Storage/storageAccounts/write",
        Plane::Management,
        ResourceScope::new(SCOPE),
    );
    ApprovalRequest {
        request: None,
        id,
        requester: Requester::from_principal(requester),
        operation: RequestedOperation::from_operation(&operation),
        rule: RULE.into(),
        approvers: Approvers {
            groups: vec!["approvers".into()],
            ids: vec!["carol".into()],
            acting_user: false,
        },
        min_approvals: 1,
        justification_required: false,
        justification: None,
        body_preview: Some(r#"{"location":"westeurope"}"#.into()),
        body: Some(r#"{"location":"westeurope"}"#.into()),
        // The id as the body: no other check's retry matches it.
        fingerprint: Fingerprint::of(
            requester,
            &http::Request::put(SCOPE)
                .body(())
                .unwrap_or_default()
                .into_parts()
                .0,
            &operation,
            id.to_string().as_bytes(),
        ),
        wait,
        created_at: now,
        expires_at: now + Duration::from_secs(600),
        grant_ttl: Duration::from_secs(600),
        grant_expires_at: None,
        decisions: Vec::new(),
        state: ApprovalState::Pending,
        execution: None,
        // Kept by every store: approvers saw it, the grant uses it.
        elevate_to: Some("contributor".into()),
        reveal: false,
        reveal_quorum: None,
        answer: None,
    }
}

/// Now, to the millisecond.
fn now_millis() -> SystemTime {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    UNIX_EPOCH + Duration::from_millis(u64::try_from(since_epoch.as_millis()).unwrap())
}

fn agent() -> Principal {
    principal("agent", &["agents"])
}

fn alice() -> Principal {
    principal("alice", &["approvers"])
}

async fn stored(store: &dyn ApprovalStore, id: ApprovalId) -> ApprovalRequest {
    store
        .get(id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("approval {id} is not in the store"))
}

async fn create(store: &dyn ApprovalStore, request: &ApprovalRequest) {
    store.create(request.clone(), None).await.unwrap();
}

/// Creates a held approval and approves it.
async fn approved(store: &dyn ApprovalStore, request: ApprovalRequest) -> ApprovalRequest {
    store.create(request.clone(), None).await.unwrap();
    let after = store
        .decide(request.id, &alice(), true, None)
        .await
        .unwrap();
    assert_eq!(after.state, ApprovalState::Approved);
    after
}

/// `get` returns every field as created, and as changed by `decide` and
/// `record_execution`; what those return is what `get` returns after.
pub async fn get_round_trips_every_field(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    let requester = Principal::builder("agent", PrincipalKind::ManagedIdentity)
        .tenant_id("tenant-1")
        .display_name("Build agent")
        .groups(["agents", "ci"])
        .build();
    let mut request = pending_request(&requester, ApprovalWait::Async);
    request.operation.children = vec![
        "Microsoft.Resources/deployments/write".into(),
        "Microsoft.Compute/virtualMachines/delete".into(),
    ];
    request.approvers.ids.push("dave".into());
    request.approvers.acting_user = true;
    request.min_approvals = 2;
    request.justification_required = true;
    request.justification = Some("rotate the CI key — ünïcode too".into());
    request.grant_ttl = Duration::from_millis(90_500);
    request.decisions.push(ApproverDecision {
        approver: "erin".into(),
        approver_name: Some("Erin".into()),
        approve: true,
        comment: Some("looks fine".into()),
        confirmation: false,
        for_reveal: true,
        reveal_only: false,
        at: request.created_at + Duration::from_millis(7),
    });
    request.reveal = true;
    request.reveal_quorum = Some(airlock_core::RevealQuorum {
        rule: "pipeline-secrets".into(),
        approvers: airlock_core::Approvers {
            groups: vec!["secret-keepers".into()],
            ..airlock_core::Approvers::default()
        },
        min_approvals: 1,
    });

    request.execution = Some(Execution {
        at: request.created_at,
        status: 0,
        tracking: Some(Tracking::Location("/before".into())),
        error_code: Some("Earlier".into()),
        error_message: None,
        answer: None,
    });
    store
        .create(
            request.clone(),
            Some(SealedRequest::from_bytes(vec![0, 1, 2, 255])),
        )
        .await
        .unwrap();
    assert_eq!(stored(store, request.id).await, request, "get after create");

    let decided = store
        .decide(request.id, &alice(), true, Some("ok".into()))
        .await
        .unwrap();
    assert_eq!(
        decided.state,
        ApprovalState::Approved,
        "erin and alice approved"
    );
    assert!(decided.grant_expires_at.is_some());
    assert_eq!(decided.decisions.len(), 2);
    assert_eq!(decided.decisions[1].approver, "alice");
    assert_eq!(decided.decisions[1].approver_name.as_deref(), Some("ALICE"));
    assert_eq!(decided.decisions[1].comment.as_deref(), Some("ok"));
    assert_eq!(stored(store, request.id).await, decided, "get after decide");

    for tracking in [
        Tracking::AsyncOperation("/subscriptions/s/providers/op/1?api-version=1".into()),
        Tracking::Location("/subscriptions/s/providers/loc/1".into()),
    ] {
        let execution = Execution {
            at: now_millis(),
            status: 202,
            tracking: Some(tracking),
            error_code: Some("Conflict".into()),
            error_message: Some("another operation is in progress".into()),
            answer: Some(FinalAnswer {
                content_type: Some("application/json".into()),
                body: r#"{"keys":[{"value":"***MASKED:0badf00d***"}]}"#.into(),
            }),
        };
        let recorded = store
            .record_execution(request.id, execution.clone())
            .await
            .unwrap();
        assert_eq!(recorded.execution, Some(execution));
        assert_eq!(recorded.state, ApprovalState::Approved);
        assert_eq!(
            stored(store, request.id).await,
            recorded,
            "get after record_execution"
        );
    }
}

/// `list(None)` returns everything and `list(Some(state))` only that state,
/// oldest first.
pub async fn list_filters_by_state_oldest_first(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    let oldest = now_millis() - Duration::from_secs(3600);
    let mut ours = Vec::new();
    for minutes in [0, 1, 2, 3] {
        let mut request = pending_request(&agent(), ApprovalWait::Hold);
        request.created_at = oldest + Duration::from_secs(60 * minutes);
        ours.push(request);
    }
    // Created out of order.
    for i in [2, 0, 3, 1] {
        create(store, &ours[i]).await;
    }
    store
        .decide(ours[1].id, &alice(), true, None)
        .await
        .unwrap();
    store
        .mark(ours[3].id, ApprovalState::Abandoned)
        .await
        .unwrap();

    let ids = |list: &[ApprovalRequest]| -> Vec<ApprovalId> {
        list.iter()
            .map(|r| r.id)
            .filter(|id| ours.iter().any(|o| o.id == *id))
            .collect()
    };
    let all = store.list(None).await.unwrap();
    assert!(
        all.windows(2).all(|w| w[0].created_at <= w[1].created_at),
        "list(None) is oldest first"
    );
    assert_eq!(
        ids(&all),
        ours.iter().map(|r| r.id).collect::<Vec<_>>(),
        "list(None) has all, oldest first"
    );
    for (state, expected) in [
        (ApprovalState::Pending, vec![ours[0].id, ours[2].id]),
        (ApprovalState::Approved, vec![ours[1].id]),
        (ApprovalState::Abandoned, vec![ours[3].id]),
        (ApprovalState::Denied, vec![]),
    ] {
        let listed = store.list(Some(state)).await.unwrap();
        assert!(
            listed.iter().all(|r| r.state == state),
            "list({state}) holds only {state}"
        );
        assert!(
            listed
                .windows(2)
                .all(|w| w[0].created_at <= w[1].created_at),
            "list({state}) is oldest first"
        );
        assert_eq!(ids(&listed), expected, "list({state})");
    }
}

/// The requester never decides their own request, even when in the
/// approver group, named by id, or spelled in other case in another tenant.
pub async fn the_requester_can_never_decide_their_own_request(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    // The requester is in the approver group and even named by id.
    let carol = principal("carol", &["approvers"]);
    let request = pending_request(&carol, ApprovalWait::Hold);
    create(store, &request).await;
    let elsewhere = Principal::builder("CAROL", PrincipalKind::User)
        .tenant_id("tenant-2")
        .groups(["approvers"])
        .build();
    for who in [&carol, &elsewhere] {
        for approve in [true, false] {
            let err = store
                .decide(request.id, who, approve, None)
                .await
                .unwrap_err();
            assert!(
                matches!(err, ApprovalError::SelfApproval(id) if id == request.id),
                "{who} deciding their own request: {err:?}"
            );
        }
    }
    let after = stored(store, request.id).await;
    assert_eq!(after.state, ApprovalState::Pending);
    assert!(
        after.decisions.is_empty(),
        "a refused decision leaves no trace"
    );
}

/// An agent acting for Carol (an approver): neither Carol nor her agent can
/// approve it as an approver. Where the rule says `confirm_by =
/// "acting_user"`, Carol herself (a user token, not her agent's) confirms
/// or rejects it: recorded as a confirmation, which approves at once and is
/// no approver's approval.
pub async fn the_user_an_agent_acts_for_confirms_only_where_the_rule_says(
    store: Arc<dyn ApprovalStore>,
) {
    let store = &*store;
    let carol = principal("carol", &["approvers"]);
    let her_agent = Principal::builder("carol", PrincipalKind::AgentForUser)
        .tenant_id("tenant-1")
        .app_id("bot-app")
        .groups(["approvers"])
        .agent(airlock_core::Agent::new("bot-app"))
        .build();
    let approvers_only = pending_request(&her_agent, ApprovalWait::Hold);
    create(store, &approvers_only).await;
    for who in [&carol, &her_agent] {
        let err = store
            .decide(approvers_only.id, who, true, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ApprovalError::SelfApproval(_)),
            "{who}: {err:?}"
        );
    }

    let mut confirmable = pending_request(&her_agent, ApprovalWait::Hold);
    confirmable.approvers.acting_user = true;
    create(store, &confirmable).await;
    assert!(confirmable.can_confirm(&carol) && !confirmable.can_confirm(&her_agent));
    let err = store
        .decide(confirmable.id, &her_agent, true, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApprovalError::SelfApproval(_)),
        "her agent: {err:?}"
    );
    let err = store
        .decide(confirmable.id, &principal("dave", &[]), true, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApprovalError::NotAnApprover { .. }),
        "{err:?}"
    );
    let after = store
        .decide(
            confirmable.id,
            &carol,
            true,
            Some("yes, I asked for it".into()),
        )
        .await
        .unwrap();
    assert_eq!(after.state, ApprovalState::Approved);
    assert!(after.grant_expires_at.is_some());
    assert!(
        after.approved_by().is_empty(),
        "a confirmation is no approval"
    );
    let confirmation = after.confirmation().expect("recorded as a confirmation");
    assert_eq!(confirmation.approver, "carol");
    assert_eq!(stored(store, confirmable.id).await, after);

    let mut rejected = pending_request(&her_agent, ApprovalWait::Hold);
    rejected.approvers.acting_user = true;
    create(store, &rejected).await;
    let after = store
        .decide(rejected.id, &carol, false, Some("not what I asked".into()))
        .await
        .unwrap();
    assert_eq!(after.state, ApprovalState::Denied);
    assert!(after.denial().is_some_and(|d| d.confirmation));
}

/// Only the rule's approvers decide (by group or by id); the refusal names
/// the principal and the rule.
pub async fn only_approvers_decide(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    let request = pending_request(&agent(), ApprovalWait::Hold);
    create(store, &request).await;
    for outsider in [principal("eve", &["agents"]), principal("carol-2", &[])] {
        let err = store
            .decide(request.id, &outsider, true, None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ApprovalError::NotAnApprover { id, principal, rule }
                if *id == request.id && principal.contains(outsider.id()) && rule == RULE),
            "{err:?}"
        );
        assert!(err.to_string().contains(RULE), "{err}");
    }
    let after = stored(store, request.id).await;
    assert_eq!(after.state, ApprovalState::Pending);
    assert!(after.decisions.is_empty());

    // An approver by id, in no approver group, may approve.
    let after = store
        .decide(request.id, &principal("Carol", &[]), true, None)
        .await
        .unwrap();
    assert_eq!(after.state, ApprovalState::Approved);
}

/// `min_approvals: 2` needs two distinct approvers: the same one twice
/// (in any case) counts once. A decided request cannot be decided again.
pub async fn min_approvals_needs_distinct_approvers(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    let mut request = pending_request(&agent(), ApprovalWait::Hold);
    request.min_approvals = 2;
    create(store, &request).await;
    for alice in [alice(), principal("ALICE", &["approvers"])] {
        let after = store.decide(request.id, &alice, true, None).await.unwrap();
        assert_eq!(
            after.state,
            ApprovalState::Pending,
            "the same approver counts once"
        );
        assert_eq!(after.approved_by().len(), 1);
        assert!(after.grant_expires_at.is_none());
    }
    let bob = principal("bob", &["approvers"]);
    let after = store.decide(request.id, &bob, true, None).await.unwrap();
    assert_eq!(after.state, ApprovalState::Approved);
    assert_eq!(after.approved_by().len(), 2);
    let grant_expires_at = after.grant_expires_at.unwrap();
    assert!(grant_expires_at > SystemTime::now() + Duration::from_secs(500));
    assert_eq!(stored(store, request.id).await, after);

    let err = store
        .decide(request.id, &principal("dave", &["approvers"]), false, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApprovalError::NotPending { id, state: ApprovalState::Approved } if id == request.id),
        "{err:?}"
    );
}

/// An approval that reveals under a [`RevealQuorum`](airlock_core::RevealQuorum)
/// (the operation needed approval too) is approved only when both quorums
/// are met: the operation's approvers alone, or the reveal's alone, leave it
/// pending; one person entitled to both counts for both; anyone else is
/// refused; the reveal's approver's denial denies.
pub async fn a_reveal_quorum_is_needed_too(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    let with_quorum = || {
        let mut request = pending_request(&agent(), ApprovalWait::Hold);
        request.reveal = true;
        request.reveal_quorum = Some(airlock_core::RevealQuorum {
            rule: "secrets-by-approval".into(),
            approvers: Approvers {
                groups: vec!["secret-keepers".into()],
                ids: vec![],
                acting_user: false,
            },
            min_approvals: 1,
        });
        request
    };
    let keeper = principal("kim", &["secret-keepers"]);

    let request = with_quorum();
    create(store, &request).await;
    let after = store
        .decide(request.id, &alice(), true, None)
        .await
        .unwrap();
    assert_eq!(
        after.state,
        ApprovalState::Pending,
        "the reveal's approvers have not approved"
    );
    assert_eq!(
        (after.operation_approvals(), after.reveal_approvals()),
        (1, 0)
    );
    let err = store
        .decide(request.id, &principal("mallory", &["others"]), true, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApprovalError::NotAnApprover { .. }),
        "{err:?}"
    );
    let after = store.decide(request.id, &keeper, true, None).await.unwrap();
    assert_eq!(after.state, ApprovalState::Approved);
    assert_eq!(
        (after.operation_approvals(), after.reveal_approvals()),
        (1, 1)
    );
    assert_eq!(stored(store, request.id).await, after);

    // The reveal's approver first: it does not count for the operation.
    let request = with_quorum();
    create(store, &request).await;
    let after = store.decide(request.id, &keeper, true, None).await.unwrap();
    assert_eq!(
        after.state,
        ApprovalState::Pending,
        "the operation's approvers have not approved"
    );
    assert_eq!(
        (after.operation_approvals(), after.reveal_approvals()),
        (0, 1)
    );
    assert!(after.visible_to(&keeper) && after.can_decide(&keeper, SystemTime::now()));

    // One person in both groups meets both at once.
    let request = with_quorum();
    create(store, &request).await;
    let both = principal("bo", &["approvers", "secret-keepers"]);
    let after = store.decide(request.id, &both, true, None).await.unwrap();
    assert_eq!(after.state, ApprovalState::Approved);

    // A denial by the reveal's approver denies the whole request.
    let request = with_quorum();
    create(store, &request).await;
    let after = store
        .decide(request.id, &keeper, false, None)
        .await
        .unwrap();
    assert_eq!(after.state, ApprovalState::Denied);
}

/// Any approver's denial denies, even after approvals; its reason is kept,
/// and the grant can never be used.
pub async fn any_denial_denies(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    let mut request = pending_request(&agent(), ApprovalWait::Async);
    request.min_approvals = 2;
    store
        .create(
            request.clone(),
            Some(SealedRequest::from_bytes(b"sealed".to_vec())),
        )
        .await
        .unwrap();
    store
        .decide(request.id, &alice(), true, None)
        .await
        .unwrap();
    let bob = principal("bob", &["approvers"]);
    let after = store
        .decide(request.id, &bob, false, Some("not in prod".into()))
        .await
        .unwrap();
    assert_eq!(after.state, ApprovalState::Denied);
    let denial = after.denial().unwrap();
    assert_eq!(denial.approver, "bob");
    assert_eq!(denial.comment.as_deref(), Some("not in prod"));
    assert_eq!(stored(store, request.id).await, after);

    let err = store
        .decide(request.id, &principal("carol", &[]), true, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ApprovalError::NotPending {
                state: ApprovalState::Denied,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(store.consume(request.id).await.unwrap().is_none());
    assert!(
        store
            .consume_grant(&request.fingerprint)
            .await
            .unwrap()
            .is_none()
    );
}

/// A pending request past its expiry cannot be decided, and deciding it
/// leaves it expired.
pub async fn an_expired_request_cannot_be_decided(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    let mut request = pending_request(&agent(), ApprovalWait::Hold);
    request.expires_at = now_millis() - Duration::from_secs(1);
    create(store, &request).await;
    let err = store
        .decide(request.id, &alice(), true, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApprovalError::NotPending { id, state: ApprovalState::Expired } if id == request.id),
        "{err:?}"
    );
    let after = stored(store, request.id).await;
    assert_eq!(after.state, ApprovalState::Expired);
    assert!(after.decisions.is_empty());
    let expired = store.list(Some(ApprovalState::Expired)).await.unwrap();
    assert!(expired.iter().any(|r| r.id == request.id));
    let pending = store.list(Some(ApprovalState::Pending)).await.unwrap();
    assert!(pending.iter().all(|r| r.id != request.id));
}

/// `expire_due` expires pending requests past their expiry and approved ones
/// whose grant ran out, returns them (once), and leaves the rest alone.
pub async fn expire_due_expires_what_is_due_once(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    let past = now_millis() - Duration::from_secs(1);
    let sealed = || Some(SealedRequest::from_bytes(b"sealed".to_vec()));

    let mut overdue = pending_request(&agent(), ApprovalWait::Async);
    overdue.expires_at = past;
    store.create(overdue.clone(), sealed()).await.unwrap();
    let mut ran_out = pending_request(&agent(), ApprovalWait::Async);
    ran_out.state = ApprovalState::Approved;
    ran_out.grant_expires_at = Some(past);
    store.create(ran_out.clone(), sealed()).await.unwrap();
    let waiting = pending_request(&agent(), ApprovalWait::Hold);
    create(store, &waiting).await;
    let usable = approved(store, pending_request(&agent(), ApprovalWait::Hold)).await;
    let mut states = store.subscribe(overdue.id).await.unwrap();

    let expired = store.expire_due().await.unwrap();
    for due in [&overdue, &ran_out] {
        let returned = expired
            .iter()
            .find(|r| r.id == due.id)
            .unwrap_or_else(|| panic!("expire_due returns {} ({})", due.id, due.state));
        assert_eq!(returned.state, ApprovalState::Expired);
        assert_eq!(stored(store, due.id).await, *returned);
        assert!(store.consume(due.id).await.unwrap().is_none());
    }
    for untouched in [&waiting, &usable] {
        assert!(expired.iter().all(|r| r.id != untouched.id));
        assert_eq!(stored(store, untouched.id).await.state, untouched.state);
    }
    tokio::time::timeout(WAIT, states.wait_for(|s| *s == ApprovalState::Expired))
        .await
        .expect("a subscriber sees the expiry")
        .unwrap();

    let again = store.expire_due().await.unwrap();
    assert!(
        again
            .iter()
            .all(|r| r.id != overdue.id && r.id != ran_out.id),
        "a second expire_due returns nothing already expired"
    );
}

/// `consume(id)` of an approved async approval hands out its sealed request
/// exactly once; of a held one, a grant without a request; of a pending
/// one, nothing.
pub async fn consume_hands_out_the_sealed_request_once(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    let request = pending_request(&agent(), ApprovalWait::Async);
    let sealed = SealedRequest::from_bytes(b"\x00nonce and ciphertext\xff".to_vec());
    store
        .create(request.clone(), Some(sealed.clone()))
        .await
        .unwrap();
    assert!(
        store.consume(request.id).await.unwrap().is_none(),
        "nothing to consume while pending"
    );
    store
        .decide(request.id, &alice(), true, None)
        .await
        .unwrap();

    let grant = store.consume(request.id).await.unwrap().unwrap();
    assert_eq!(grant.id, request.id);
    assert_eq!(grant.request, Some(sealed));
    assert_eq!(
        stored(store, request.id).await.state,
        ApprovalState::Consumed
    );
    assert!(
        store.consume(request.id).await.unwrap().is_none(),
        "a grant is used once"
    );

    let held = approved(store, pending_request(&agent(), ApprovalWait::Hold)).await;
    let grant = store.consume(held.id).await.unwrap().unwrap();
    assert_eq!(grant.id, held.id);
    assert!(grant.request.is_none());
}

/// Of 16 concurrent retries with the same fingerprint, exactly one gets
/// the grant.
pub async fn concurrent_retries_get_one_grant_exactly_once(store: Arc<dyn ApprovalStore>) {
    let request = approved(&*store, pending_request(&agent(), ApprovalWait::Hold)).await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            let fingerprint = request.fingerprint;
            tokio::spawn(async move { store.consume_grant(&fingerprint).await.unwrap() })
        })
        .collect();
    let mut admitted = Vec::new();
    for task in tasks {
        if let Some(id) = task.await.unwrap() {
            admitted.push(id);
        }
    }
    assert_eq!(admitted, vec![request.id], "exactly one retry is admitted");
    assert_eq!(
        stored(&*store, request.id).await.state,
        ApprovalState::Consumed
    );
    assert!(store.consume(request.id).await.unwrap().is_none());
    assert!(
        store
            .consume_grant(&request.fingerprint)
            .await
            .unwrap()
            .is_none()
    );
}

/// A retry never uses an async approval's grant: that belongs to its
/// operation, which sends the stored request itself.
pub async fn consume_grant_never_uses_an_async_approval(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    let request = pending_request(&agent(), ApprovalWait::Async);
    store
        .create(
            request.clone(),
            Some(SealedRequest::from_bytes(b"sealed".to_vec())),
        )
        .await
        .unwrap();
    store
        .decide(request.id, &alice(), true, None)
        .await
        .unwrap();
    assert_eq!(
        store.consume_grant(&request.fingerprint).await.unwrap(),
        None
    );
    assert_eq!(
        stored(store, request.id).await.state,
        ApprovalState::Approved
    );
    let grant = store.consume(request.id).await.unwrap().unwrap();
    assert!(
        grant.request.is_some(),
        "the operation still gets its request"
    );
}

/// Of several held grants for one fingerprint, a retry uses the one that
/// expires first; pending, expired and unrelated ones are never used.
pub async fn consume_grant_uses_the_grant_expiring_first(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    let base = pending_request(&agent(), ApprovalWait::Hold);
    let same = |grant_ttl_secs: u64| {
        let mut request = pending_request(&agent(), ApprovalWait::Hold);
        request.fingerprint = base.fingerprint;
        request.grant_ttl = Duration::from_secs(grant_ttl_secs);
        request
    };
    let later = approved(store, same(900)).await;
    let sooner = approved(store, same(300)).await;
    let still_pending = same(60);
    create(store, &still_pending).await;
    let mut ran_out = same(60);
    ran_out.state = ApprovalState::Approved;
    ran_out.grant_expires_at = Some(now_millis() - Duration::from_secs(1));
    create(store, &ran_out).await;
    let other = approved(store, pending_request(&agent(), ApprovalWait::Hold)).await;

    assert_eq!(
        store.consume_grant(&base.fingerprint).await.unwrap(),
        Some(sooner.id)
    );
    assert_eq!(
        store.consume_grant(&base.fingerprint).await.unwrap(),
        Some(later.id)
    );
    assert_eq!(store.consume_grant(&base.fingerprint).await.unwrap(), None);
    assert_eq!(
        stored(store, still_pending.id).await.state,
        ApprovalState::Pending
    );
    assert_eq!(stored(store, other.id).await.state, ApprovalState::Approved);
}

/// `mark` only ends a pending request, as expired or abandoned.
pub async fn mark_only_ends_a_pending_request(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    let request = pending_request(&agent(), ApprovalWait::Hold);
    create(store, &request).await;
    for state in [
        ApprovalState::Pending,
        ApprovalState::Approved,
        ApprovalState::Denied,
        ApprovalState::Consumed,
    ] {
        let err = store.mark(request.id, state).await.unwrap_err();
        assert!(
            matches!(err, ApprovalError::InvalidTransition { id, state: s } if id == request.id && s == state),
            "mark {state}: {err:?}"
        );
    }
    assert_eq!(
        stored(store, request.id).await.state,
        ApprovalState::Pending
    );
    let after = store
        .mark(request.id, ApprovalState::Abandoned)
        .await
        .unwrap();
    assert_eq!(after.state, ApprovalState::Abandoned);
    assert_eq!(stored(store, request.id).await, after);
    let err = store
        .mark(request.id, ApprovalState::Expired)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ApprovalError::NotPending {
                state: ApprovalState::Abandoned,
                ..
            }
        ),
        "{err:?}"
    );

    let expiring = pending_request(&agent(), ApprovalWait::Hold);
    create(store, &expiring).await;
    let after = store
        .mark(expiring.id, ApprovalState::Expired)
        .await
        .unwrap();
    assert_eq!(after.state, ApprovalState::Expired);
    let err = store
        .decide(expiring.id, &alice(), true, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ApprovalError::NotPending { .. }), "{err:?}");
}

/// A subscriber starts at the current state and sees a decision made after
/// it subscribed.
pub async fn subscribe_sees_a_later_decision(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    let request = pending_request(&agent(), ApprovalWait::Hold);
    create(store, &request).await;
    let mut states = store.subscribe(request.id).await.unwrap();
    assert_eq!(*states.borrow_and_update(), ApprovalState::Pending);
    store
        .decide(request.id, &alice(), true, None)
        .await
        .unwrap();
    tokio::time::timeout(WAIT, states.wait_for(|s| *s == ApprovalState::Approved))
        .await
        .expect("the subscriber sees the approval")
        .unwrap();

    // Subscribing late starts at the current state.
    let late = store.subscribe(request.id).await.unwrap();
    assert_eq!(*late.borrow(), ApprovalState::Approved);
    store.consume(request.id).await.unwrap().unwrap();
    tokio::time::timeout(WAIT, states.wait_for(|s| *s == ApprovalState::Consumed))
        .await
        .expect("the subscriber sees the grant used")
        .unwrap();
}

/// A second `create` with the same id is refused and changes nothing.
pub async fn create_refuses_a_duplicate_id(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    let request = pending_request(&agent(), ApprovalWait::Hold);
    create(store, &request).await;
    let mut twin = pending_request(&principal("mallory", &[]), ApprovalWait::Async);
    twin.id = request.id;
    let err = store
        .create(twin, Some(SealedRequest::from_bytes(b"sealed".to_vec())))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApprovalError::AlreadyExists(id) if id == request.id),
        "{err:?}"
    );
    assert!(err.to_string().contains(&request.id.to_string()), "{err}");
    assert_eq!(stored(store, request.id).await, request);
}

/// Every call on an unknown id says so (`get` answers `None`).
pub async fn unknown_ids_are_not_found(store: Arc<dyn ApprovalStore>) {
    let store = &*store;
    let id = ApprovalId::new();
    assert!(store.get(id).await.unwrap().is_none());
    let not_found = |result: Result<(), ApprovalError>, call: &str| match result {
        Err(ApprovalError::NotFound(missing)) if missing == id => {}
        other => panic!("{call} on an unknown id: {other:?}"),
    };
    not_found(
        store.decide(id, &alice(), true, None).await.map(drop),
        "decide",
    );
    not_found(store.consume(id).await.map(drop), "consume");
    let execution = Execution {
        at: now_millis(),
        status: 200,
        tracking: None,
        error_code: None,
        error_message: None,
        answer: None,
    };
    not_found(
        store.record_execution(id, execution).await.map(drop),
        "record_execution",
    );
    not_found(
        store.mark(id, ApprovalState::Abandoned).await.map(drop),
        "mark",
    );
    not_found(store.subscribe(id).await.map(drop), "subscribe");
    let err = store.decide(id, &alice(), true, None).await.unwrap_err();
    assert!(err.to_string().contains(&id.to_string()), "{err}");
}
