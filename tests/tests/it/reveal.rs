//! Reveal: a secret reaches an agent in clear only because a rule names it
//! or a human approved that one answer, and the clear value is never
//! written to the database, the logs or the audit trail.

use airlock_core::{REVEAL_HEADER, REVEALED_HEADER};
use airlock_masking::{MASKED_HEADER, is_masked_token};
use airlock_sim::{APPROVERS_GROUP, SECRET_VALUE, TokenSpec};
use airlock_tests::{Harness, Options, assert_airlock_error};
use http::StatusCode;

use crate::approval::{decide, pending};
use crate::logs::{captured_logs, logged};

/// The deployment pipeline's object id: the one principal a reveal rule names.
const PIPELINE: &str = "00000000-0000-0000-0000-0000000000d1";

fn pipeline() -> TokenSpec {
    TokenSpec::agent()
        .object_id(PIPELINE)
        .name("deploy-pipeline")
}

async fn harness(reveal: &str) -> Harness {
    Harness::start_with(Options {
        extra_toml: reveal.to_owned(),
        ..Options::default()
    })
    .await
}

/// The clear secret appears nowhere the gateway writes: its database (and
/// WAL), its logs, the audit trail.
async fn assert_never_written(h: &Harness) {
    for suffix in ["", "-wal"] {
        let file = format!("{}{suffix}", h.database.display());
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !bytes
                .windows(SECRET_VALUE.len())
                .any(|w| w == SECRET_VALUE.as_bytes()),
            "the clear secret is in {file}"
        );
    }
    assert!(
        !logged().contains(SECRET_VALUE),
        "the clear secret was logged"
    );
    let trail = serde_json::to_string(
        &h.audit_trail()
            .await
            .into_iter()
            .map(|chained| chained.event)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(!trail.contains(SECRET_VALUE), "{trail}");
}

/// The recorded exchanges whose answers went out with values in clear.
async fn revealed_events(h: &Harness) -> Vec<airlock_recorder::ChainedEvent> {
    h.audit_trail()
        .await
        .into_iter()
        .filter(|chained| !chained.event.revealed.is_empty())
        .collect()
}

#[tokio::test]
async fn a_reveal_rule_gives_its_principal_the_clear_secret_and_everyone_else_the_mask() {
    let _logs = captured_logs();
    let h = harness(&format!(
        "[[masking.reveal]]\nname = \"pipeline-db\"\nprincipals = {{ ids = [\"{PIPELINE}\"] }}\noperations = [\"Microsoft.KeyVault/vaults/secrets/getSecret/action\"]\n"
    ))
    .await;
    let pipeline = h.client(Some(&h.issuer.mint(&pipeline())));
    let clear = pipeline.get(&h.secret_url()).await.unwrap();
    assert_eq!(clear.status, StatusCode::OK, "{:?}", clear.body);
    assert_eq!(clear.json()["value"], SECRET_VALUE);
    assert_eq!(clear.header(REVEALED_HEADER), Some("1"));
    assert_eq!(clear.header(MASKED_HEADER), Some("0"));

    // The agent the rule does not name gets the mask, and asking for the
    // value in clear is refused, naming the fix.
    let masked = h.agent.get(&h.secret_url()).await.unwrap();
    assert!(is_masked_token(masked.json()["value"].as_str().unwrap()));
    assert_eq!(masked.header(REVEALED_HEADER), None);
    let asked = h
        .agent
        .send(
            http::Method::GET,
            &h.secret_url(),
            &[(REVEAL_HEADER, "please")],
            None,
        )
        .await
        .unwrap();
    let error = assert_airlock_error(&asked, StatusCode::FORBIDDEN, "AirlockRevealNotAllowed");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[[masking.reveal]]"),
        "{error}"
    );

    // The audit event says what was revealed and by which rule; its
    // excerpt keeps the mask.
    let revealed = revealed_events(&h).await;
    assert_eq!(revealed.len(), 1, "one answer was revealed");
    let event = &revealed[0].event;
    assert_eq!(event.principal.as_ref().unwrap().id, PIPELINE);
    assert_eq!(event.revealed, ["$.value"]);
    assert_eq!(event.revealed_by.as_deref(), Some("rule 'pipeline-db'"));
    assert!(
        event
            .response_body
            .as_deref()
            .unwrap()
            .contains("***MASKED:"),
        "{:?}",
        event.response_body
    );
    let shown =
        airlock_store::audit::text::render_timeline(&event.session_id, &[revealed[0].clone()]);
    assert!(
        shown.contains("REVEALED   1 value(s) sent in clear by rule 'pipeline-db': $.value"),
        "{shown}"
    );
    assert_eq!(
        h.metrics().await[r#"airlock_revealed_values_total{by="rule"}"#],
        1
    );
    assert_never_written(&h).await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_reveal_by_approval_gives_the_clear_value_once_and_the_mask_after() {
    let _logs = captured_logs();
    let h = harness(&format!(
        "[[masking.reveal]]\nname = \"agent-secrets-by-approval\"\nprincipals = {{ groups = [\"{}\"] }}\noperations = [\"Microsoft.KeyVault/vaults/secrets/getSecret/action\"]\napproval = {{ groups = [\"{APPROVERS_GROUP}\"], hold = \"30s\" }}\n",
        airlock_sim::AGENTS_GROUP
    ))
    .await;
    let reveal = [(REVEAL_HEADER, "rotate the db password (CHG-7)")];

    // Without the header the rule reveals nothing by itself.
    let masked = h.agent.get(&h.secret_url()).await.unwrap();
    assert!(is_masked_token(masked.json()["value"].as_str().unwrap()));

    // An empty justification is refused before anyone is asked.
    let empty = h
        .agent
        .send(
            http::Method::GET,
            &h.secret_url(),
            &[(REVEAL_HEADER, " ")],
            None,
        )
        .await
        .unwrap();
    assert_airlock_error(
        &empty,
        StatusCode::BAD_REQUEST,
        "AirlockRevealJustificationMissing",
    );

    let agent = h.agent.clone();
    let url = h.secret_url();
    let held = tokio::spawn(async move {
        agent
            .send(http::Method::GET, &url, &reveal, None)
            .await
            .unwrap()
    });
    let approval = pending(&h, 1).await.remove(0);
    assert_eq!(approval["reveal"], true, "{approval}");
    assert_eq!(approval["rule"], "agent-secrets-by-approval");
    assert_eq!(approval["justification"], "rotate the db password (CHG-7)");
    assert!(
        approval["operation"]["scope"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/secrets/{}", airlock_sim::SECRET_NAME)),
        "{approval}"
    );
    assert!(!approval.to_string().contains(SECRET_VALUE));
    let id = approval["id"].as_str().unwrap().to_owned();
    decide(&h, &id, "approve", "once, for the rotation").await;
    let clear = held.await.unwrap();
    assert_eq!(clear.status, StatusCode::OK, "{:?}", clear.body);
    assert_eq!(clear.json()["value"], SECRET_VALUE);
    assert_eq!(clear.header(REVEALED_HEADER), Some("1"));

    // Once: the same request again gets the mask, and asking again opens a
    // new approval instead of reusing the spent one.
    let after = h.agent.get(&h.secret_url()).await.unwrap();
    assert!(is_masked_token(after.json()["value"].as_str().unwrap()));
    let agent = h.agent.clone();
    let url = h.secret_url();
    let again = tokio::spawn(async move {
        agent
            .send(http::Method::GET, &url, &reveal, None)
            .await
            .unwrap()
    });
    let second = pending(&h, 1).await.remove(0);
    assert_ne!(second["id"], id.as_str());
    let second_id = second["id"].as_str().unwrap().to_owned();
    decide(&h, &second_id, "deny", "not again").await;
    let denied = again.await.unwrap();
    assert_airlock_error(&denied, StatusCode::FORBIDDEN, "AirlockApprovalDenied");

    let revealed = revealed_events(&h).await;
    assert_eq!(revealed.len(), 1, "exactly one answer went out in clear");
    assert_eq!(
        revealed[0].event.revealed_by.as_deref(),
        Some(format!("approval {id} (rule 'agent-secrets-by-approval')").as_str())
    );
    assert_eq!(revealed[0].event.approval_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        h.metrics().await[r#"airlock_revealed_values_total{by="approval"}"#],
        1
    );
    assert_never_written(&h).await;
    h.shutdown().await;
}

/// A reveal asked of an operation that policy already holds for approval:
/// one approval, which the operation's approvers and the reveal rule's must
/// both approve before the answer leaves in clear. The same request without
/// the header is another approval (a reveal's grant is never spent on it),
/// and its answer is masked.
#[tokio::test]
async fn a_reveal_of_an_operation_held_for_approval_needs_both_quorums() {
    const KEEPER: &str = "00000000-0000-0000-0000-0000000000e1";
    let _logs = captured_logs();
    let policy = format!(
        r#"
[[rule]]
name = "secret-reads-need-approval"
effect = "approve"
data_actions = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
[rule.principals]
groups = ["{agents}"]
[rule.approval]
groups = ["{APPROVERS_GROUP}"]
hold = "30s"
"#,
        agents = airlock_sim::AGENTS_GROUP
    );
    let h = Harness::start_with(Options {
        policy: Some(policy),
        extra_toml: format!(
            "[[masking.reveal]]\nname = \"secrets-by-keeper\"\nprincipals = {{ groups = [\"{}\"] }}\noperations = [\"Microsoft.KeyVault/vaults/secrets/getSecret/action\"]\napproval = {{ ids = [\"{KEEPER}\"], hold = \"30s\" }}\n",
            airlock_sim::AGENTS_GROUP
        ),
        ..Options::default()
    })
    .await;
    let keeper = h.admin(Some(
        &h.issuer.mint(
            &TokenSpec::approver()
                .object_id(KEEPER)
                .name("Kim Keeper")
                .groups(Vec::<String>::new()),
        ),
    ));

    let agent = h.agent.clone();
    let url = h.secret_url();
    let held = tokio::spawn(async move {
        agent
            .send(
                http::Method::GET,
                &url,
                &[(REVEAL_HEADER, "rotate the db password (CHG-9)")],
                None,
            )
            .await
            .unwrap()
    });
    let approval = pending(&h, 1).await.remove(0);
    assert_eq!(approval["reveal"], true, "{approval}");
    assert_eq!(approval["rule"], "secret-reads-need-approval");
    assert_eq!(approval["revealQuorum"]["rule"], "secrets-by-keeper");
    assert_eq!(approval["wait"], "hold");
    let id = approval["id"].as_str().unwrap().to_owned();

    // The operation's approver alone: still pending, nothing sent.
    let after = decide(&h, &id, "approve", "the read is fine").await;
    assert_eq!(after["state"], "pending", "{after}");
    // The keeper sees it and releases the reveal.
    let seen = keeper.get(&format!("/api/approvals/{id}")).await.unwrap();
    assert_eq!(seen.status, StatusCode::OK, "{:?}", seen.body);
    assert_eq!(seen.json()["canDecide"], true);
    let released = keeper
        .send(
            http::Method::POST,
            &format!("/api/approvals/{id}/approve"),
            &[],
            Some(bytes::Bytes::from_static(br#"{"comment":"once"}"#)),
        )
        .await
        .unwrap();
    assert_eq!(released.status, StatusCode::OK, "{:?}", released.body);
    assert_eq!(released.json()["state"], "approved");
    let clear = held.await.unwrap();
    assert_eq!(clear.status, StatusCode::OK, "{:?}", clear.body);
    assert_eq!(clear.json()["value"], SECRET_VALUE);
    assert_eq!(clear.header(REVEALED_HEADER), Some("1"));

    // Without the header: an approval of its own, that reveals nothing.
    let agent = h.agent.clone();
    let url = h.secret_url();
    let plain = tokio::spawn(async move { agent.get(&url).await.unwrap() });
    let second = pending(&h, 1).await.remove(0);
    assert_ne!(second["id"], id.as_str());
    assert!(
        second.get("reveal").is_none() && second.get("revealQuorum").is_none(),
        "{second}"
    );
    decide(
        &h,
        second["id"].as_str().unwrap(),
        "approve",
        "masked is fine",
    )
    .await;
    let masked = plain.await.unwrap();
    assert_eq!(masked.status, StatusCode::OK, "{:?}", masked.body);
    assert!(is_masked_token(masked.json()["value"].as_str().unwrap()));

    let revealed = revealed_events(&h).await;
    assert_eq!(revealed.len(), 1, "exactly one answer went out in clear");
    assert_eq!(
        revealed[0].event.revealed_by.as_deref(),
        Some(format!("approval {id} (rule 'secrets-by-keeper')").as_str())
    );
    assert_never_written(&h).await;
    h.shutdown().await;
}

/// An `[[answer]]` rule on the number of secrets in an answer counts the
/// revealed ones too: a reveal rule does not carry an answer past the
/// exfiltration guard. The masked answer of another agent is held alike.
#[tokio::test]
async fn min_masked_holds_an_answer_whether_its_secrets_are_masked_or_revealed() {
    let _logs = captured_logs();
    let policy = format!(
        "{}\n[[answer]]\nname = \"secret-answers\"\noperations = [\"Microsoft.KeyVault/vaults/secrets/getSecret/action\"]\nmin_masked = 1\napproval = {{ groups = [\"{APPROVERS_GROUP}\"], hold = \"30s\" }}\n",
        airlock_tests::ALLOW_ALL
    );
    let h = Harness::start_with(Options {
        policy: Some(policy),
        extra_toml: format!(
            "[[masking.reveal]]\nname = \"pipeline-db\"\nprincipals = {{ ids = [\"{PIPELINE}\"] }}\noperations = [\"Microsoft.KeyVault/vaults/secrets/getSecret/action\"]\n"
        ),
        ..Options::default()
    })
    .await;
    for (client, in_clear) in [
        (h.client(Some(&h.issuer.mint(&pipeline()))), true),
        (h.agent.clone(), false),
    ] {
        let url = h.secret_url();
        let held = tokio::spawn(async move { client.get(&url).await.unwrap() });
        let approval = pending(&h, 1).await.remove(0);
        assert_eq!(approval["rule"], "secret-answers", "{approval}");
        let answer = &approval["answer"];
        assert_eq!(
            (answer["masked"].as_u64(), answer["revealed"].as_u64()),
            if in_clear {
                (Some(0), Some(1))
            } else {
                (Some(1), None)
            },
            "{approval}"
        );
        assert!(!approval.to_string().contains(SECRET_VALUE));
        decide(&h, approval["id"].as_str().unwrap(), "approve", "ok").await;
        let released = held.await.unwrap();
        assert_eq!(released.status, StatusCode::OK, "{:?}", released.body);
        let value = released.json()["value"].as_str().unwrap().to_owned();
        assert_eq!(value == SECRET_VALUE, in_clear, "{value}");
    }
    assert_never_written(&h).await;
    h.shutdown().await;
}
