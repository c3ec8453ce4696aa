//! AI agents as first-class identities (Entra Agent ID, AZURE.md §5b): tokens
//! minted the way Entra mints them for an agent alone and for an agent
//! acting for a user go through the gateway; policy decides them as agents,
//! the audit trail and approvals say which agent acted for whom, and an
//! approver cannot approve what their own agent asked for.

#![allow(clippy::unwrap_used)]

use airlock_sim::{APPROVERS_GROUP, TokenSpec, TokenVersion};
use airlock_tests::{Harness, Options, assert_airlock_error, rg_path};
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::approval::{NEW_ACCOUNT, WAIT, WHY, account_path, sim_calls, vm_path};

const BOT_APP: &str = "7d1c0000-0000-0000-0000-0000000000c2";
const BOT_OID: &str = "7d1c0000-0000-0000-0000-0000000000c3";
const BLUEPRINT: &str = "b1000000-0000-0000-0000-0000000000b1";
const BOB: &str = "00000000-0000-0000-0000-0000000000b7";

/// The release bot may read anything; for a user it may also create storage
/// accounts, with approval, and delete VMs the user confirms; Alice (the
/// approver) and Bob may use storage and delete VMs.
fn policy() -> String {
    let alice = TokenSpec::approver().object_id;
    format!(
        r#"
[[rule]]
name = "bot-reads"
effect = "allow"
actions = ["*/read"]
[rule.principals]
agents = ["{BOT_APP}"]

[[rule]]
name = "bot-writes-for-people"
effect = "approve"
actions = ["Microsoft.Storage/storageAccounts/write"]
[rule.principals]
agents = ["{BOT_APP}"]
kinds = ["agent_for_user"]
[rule.approval]
groups = ["{APPROVERS_GROUP}"]
justification = true

[[rule]]
name = "bot-deletes-vms-the-user-confirms"
effect = "approve"
actions = ["Microsoft.Compute/virtualMachines/delete"]
[rule.principals]
kinds = ["agent_for_user"]
[rule.approval]
confirm_by = "acting_user"

[[rule]]
name = "people-read"
effect = "allow"
actions = ["*/read", "Microsoft.Storage/*", "Microsoft.Compute/virtualMachines/delete"]
[rule.principals]
ids = ["{alice}", "{BOB}"]

[[rule]]
name = "no-resource-group-deletes"
effect = "deny"
actions = ["Microsoft.Resources/subscriptions/resourceGroups/delete"]
[rule.principals]
ids = ["{BOB}"]
"#
    )
}

/// A v1 token, which names the agent (`app_displayname`); v2 tokens do not.
fn bot_alone() -> TokenSpec {
    TokenSpec::agent_identity("release-bot", BOT_OID, BOT_APP)
        .blueprint(BLUEPRINT)
        .version(TokenVersion::V1)
}

fn bot_for(user: TokenSpec) -> TokenSpec {
    TokenSpec::agent_for_user(user, BOT_APP).blueprint(BLUEPRINT)
}

fn bob() -> TokenSpec {
    TokenSpec::new(
        "Bob Onlooker",
        BOB,
        airlock_core::PrincipalKind::User,
        "00000000-0000-0000-0000-0000000000b8",
    )
}

async fn harness() -> Harness {
    Harness::start_with(Options {
        policy: Some(policy()),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn an_agent_alone_is_decided_and_recorded_as_that_agent() {
    let h = harness().await;
    let bot = h.client(Some(&h.issuer.mint(&bot_alone())));
    let rg = format!("{}?api-version=2021-04-01", rg_path());

    let read = bot.get(&rg).await.unwrap();
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    // Writing is only for an agent acting for someone.
    let write = bot
        .send(
            Method::PUT,
            &account_path("botacct"),
            &[WHY],
            Some(Bytes::from_static(NEW_ACCOUNT)),
        )
        .await
        .unwrap();
    assert_airlock_error(&write, StatusCode::FORBIDDEN, "AirlockPolicyDenied");

    let trail = h.audit_trail().await;
    let principal = trail[0].event.principal.as_ref().unwrap();
    assert_eq!(
        (principal.kind.as_str(), principal.id.as_str()),
        ("agent", BOT_OID)
    );
    let agent = principal.agent.as_ref().expect("the agent is recorded");
    assert_eq!(
        (agent.app_id(), agent.blueprint_id()),
        (BOT_APP, Some(BLUEPRINT))
    );
    assert_eq!(
        principal.label(),
        format!("agent release-bot (blueprint {BLUEPRINT})")
    );
    assert_eq!(trail[0].event.rule.as_deref(), Some("bot-reads"));
    h.shutdown().await;
}

#[tokio::test]
async fn an_agent_for_a_user_gets_only_what_both_are_allowed() {
    let h = harness().await;
    let rg = format!("{}?api-version=2021-04-01", rg_path());
    let for_bob = h.client(Some(&h.issuer.mint(&bot_for(bob()))));

    // Both the bot and Bob may read: allowed by both rules.
    let read = for_bob.get(&rg).await.unwrap();
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    // Bob's own deny stops his agent too, and says it was Bob's rule.
    let delete = for_bob.send(Method::DELETE, &rg, &[], None).await.unwrap();
    let json = assert_airlock_error(&delete, StatusCode::FORBIDDEN, "AirlockPolicyDenied");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no-resource-group-deletes") && message.contains("acts for"),
        "{message}"
    );
    // A user no rule names gets nothing through the bot, though the bot may read.
    let stranger = TokenSpec::new(
        "Mallory",
        "00000000-0000-0000-0000-0000000000e1",
        airlock_core::PrincipalKind::User,
        "00000000-0000-0000-0000-0000000000e2",
    );
    let for_stranger = h.client(Some(&h.issuer.mint(&bot_for(stranger))));
    let refused = for_stranger.get(&rg).await.unwrap();
    assert_airlock_error(&refused, StatusCode::FORBIDDEN, "AirlockPolicyDenied");
    assert_eq!(
        h.sim
            .requests()
            .iter()
            .filter(|r| r.method == Method::GET)
            .count(),
        1,
        "only the read both were allowed reached Azure"
    );

    let trail = h.audit_trail().await;
    let first = &trail[0].event;
    assert_eq!(first.rule.as_deref(), Some("bot-reads + people-read"));
    let principal = first.principal.as_ref().unwrap();
    assert_eq!(
        (principal.kind.as_str(), principal.id.as_str()),
        ("agent_for_user", BOB)
    );
    assert_eq!(
        principal.label(),
        format!("agent {BOT_APP} (blueprint {BLUEPRINT}) acting for Bob Onlooker")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn an_approver_cannot_approve_what_their_own_agent_asked_for() {
    let h = harness().await;
    let alice = TokenSpec::approver();
    let for_alice = h.client(Some(&h.issuer.mint(&bot_for(alice.clone()))));
    let started = for_alice
        .send(
            Method::PUT,
            &account_path("foralice"),
            &[WHY],
            Some(Bytes::from_static(NEW_ACCOUNT)),
        )
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);

    let bob_admin = h.admin(Some(&h.issuer.mint(&bob().groups([APPROVERS_GROUP]))));
    let listed = bob_admin.get("/api/approvals?state=pending").await.unwrap();
    let approval = listed.json()["value"][0].clone();
    let id = approval["id"].as_str().unwrap().to_owned();
    let requester = &approval["requester"];
    assert_eq!(requester["kind"], "agent_for_user");
    assert_eq!(requester["id"], alice.object_id);
    assert_eq!(requester["agent"]["appId"], BOT_APP);
    assert_eq!(requester["agent"]["blueprint"], BLUEPRINT);
    let url = format!("/api/approvals/{id}/approve");

    // Alice is an approver, but this is her agent acting for her.
    let own = h
        .approver()
        .send(Method::POST, &url, &[], None)
        .await
        .unwrap();
    assert_airlock_error(&own, StatusCode::FORBIDDEN, "AirlockSelfApproval");
    // The agent itself, with Alice's groups in its token, decides nothing.
    let by_agent = h
        .admin(Some(&h.issuer.mint(&bot_for(alice))))
        .send(Method::POST, &url, &[], None)
        .await
        .unwrap();
    assert_airlock_error(&by_agent, StatusCode::FORBIDDEN, "AirlockNotAnApprover");
    // Another approver may.
    let approved = bob_admin
        .send(
            Method::POST,
            &url,
            &[],
            Some(Bytes::from_static(br#"{"comment":"ok"}"#)),
        )
        .await
        .unwrap();
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    h.shutdown().await;
}

#[tokio::test]
async fn the_user_an_agent_acts_for_confirms_its_request_and_it_runs_once() {
    let h = harness().await;
    let vm = airlock_sim::VIRTUAL_MACHINES[0];
    let for_bob = h.client(Some(&h.issuer.mint(&bot_for(bob()))));
    let run = tokio::spawn(async move {
        for_bob
            .long_running(Method::DELETE, &vm_path(vm), &[], None, WAIT)
            .await
    });

    // Bob is no approver, yet he sees (only) what his agent asked for.
    let bob_admin = h.admin(Some(&h.issuer.mint(&bob())));
    let approval = airlock_tests::eventually("Bob sees his agent's request", WAIT, || {
        let bob_admin = bob_admin.clone();
        async move {
            let listed = bob_admin.get("/api/approvals?state=pending").await.ok()?;
            listed.json()["value"].as_array()?.first().cloned()
        }
    })
    .await;
    assert_eq!(approval["canDecide"], true);
    assert_eq!(approval["approvers"]["actingUser"], true);
    let id = approval["id"].as_str().unwrap().to_owned();
    // Bob's agent cannot confirm for him, nor can Bob's sessions be read.
    let by_agent = h
        .admin(Some(&h.issuer.mint(&bot_for(bob()))))
        .send(
            Method::POST,
            &format!("/api/approvals/{id}/approve"),
            &[],
            None,
        )
        .await
        .unwrap();
    assert_airlock_error(&by_agent, StatusCode::FORBIDDEN, "AirlockNotAnApprover");
    let sessions = bob_admin.get("/api/sessions").await.unwrap();
    assert_airlock_error(&sessions, StatusCode::FORBIDDEN, "AirlockNotAnAuditReader");

    let confirmed = bob_admin
        .send(
            Method::POST,
            &format!("/api/approvals/{id}/approve"),
            &[],
            Some(Bytes::from_static(br#"{"comment":"yes, I asked for it"}"#)),
        )
        .await
        .unwrap();
    assert_eq!(confirmed.status, StatusCode::OK, "{:?}", confirmed.body);
    let confirmed = confirmed.json();
    assert_eq!(confirmed["state"], "approved");
    assert_eq!(confirmed["decisions"][0]["confirmation"], true);

    let run = run.await.unwrap().unwrap();
    assert!(run.succeeded(), "{:?}", run.error);
    assert_eq!(sim_calls(&h, &Method::DELETE, vm), 1, "sent exactly once");
    let trail = h.audit_trail().await;
    let sent = trail
        .iter()
        .map(|chained| &chained.event)
        .find(|e| e.confirmed_by.is_some())
        .expect("the request that ran records the confirmation");
    assert_eq!(sent.confirmed_by.as_deref(), Some(BOB));
    assert!(sent.approvers.is_empty(), "a confirmation is no approval");
    h.shutdown().await;
}
