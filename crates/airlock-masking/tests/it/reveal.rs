//! Reveal rules in the masking layer and the reveal step in front of
//! approval: who gets what in clear, what the record keeps, and what is
//! refused.

use std::convert::Infallible;
use std::time::Duration;

use airlock_core::{
    AirlockBody, Approvers, AuditDraft, Decision, Operation, Plane, Principal, PrincipalKind,
    PrincipalSelector, REVEAL_HEADER, REVEALED_HEADER, ResourceScope, RevealAsked, RevealGrant,
    empty,
};
use airlock_masking::{
    JsonMasker, MASKED_HEADER, MaskRule, MaskingLayer, RevealApproval, RevealRule, TokenKey,
};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::{Layer, ServiceExt, service_fn};

const GET_SECRET: &str = "Microsoft.KeyVault/vaults/secrets/getSecret/action";
const SECRET: &str = "hunter2-but-longer";
/// A storage connection string: the detectors' find, in a tag.
const CONNECTION: &str = "DefaultEndpointsProtocol=https;AccountName=st;AccountKey=RCCCPP3m8cJrMPkOx90B5Ih1NKIPCw0Ew27YDnHg/XewdnDrlAvVM1+XParYYZuR/8kR9XzO1Fi7vyzgN1PJvQ==;EndpointSuffix=core.windows.net";

fn get_secret() -> Operation {
    Operation::new(
        GET_SECRET,
        Plane::Data,
        ResourceScope::new("/providers/Microsoft.KeyVault/vaults/kv/secrets/db"),
    )
}

fn principal(id: &str) -> Principal {
    Principal::builder(id, PrincipalKind::Application).build()
}

fn rule(name: &str) -> RevealRule {
    RevealRule::new(name, [GET_SECRET])
        .unwrap()
        .principals(PrincipalSelector {
            ids: vec!["pipeline".into()],
            ..PrincipalSelector::default()
        })
        .unwrap()
}

fn masking(rules: Vec<RevealRule>) -> MaskingLayer {
    let masker = JsonMasker::builder(TokenKey::new([7u8; 32]).unwrap())
        .rule(MaskRule::new([GET_SECRET], ["$.value"]).unwrap())
        .build();
    MaskingLayer::new(masker).reveal(rules)
}

/// What the client got and the audit draft kept, for `who` reading the secret.
async fn read(
    layer: &MaskingLayer,
    who: &str,
    grant: Option<RevealGrant>,
) -> (Response<AirlockBody>, Value, AuditDraft) {
    let service = layer.layer(service_fn(|_: Request<AirlockBody>| async {
        let body = json!({ "value": SECRET, "tags": { "conn": CONNECTION } }).to_string();
        Ok::<_, Infallible>(
            Response::builder()
                .header("content-type", "application/json")
                .body(body)
                .unwrap(),
        )
    }));
    let draft = AuditDraft::default();
    let mut request = Request::get("/secrets/db").body(empty()).unwrap();
    request.extensions_mut().insert(get_secret());
    request.extensions_mut().insert(principal(who));
    request.extensions_mut().insert(draft.clone());
    if let Some(grant) = grant {
        request.extensions_mut().insert(grant);
    }
    let response = service.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap();
    (Response::from_parts(parts, empty()), json, draft)
}

#[tokio::test]
async fn a_rule_reveals_selected_values_to_its_principals_only_and_the_record_stays_masked() {
    let layer = masking(vec![rule("pipeline-db")]);
    let (response, json, draft) = read(&layer, "PIPELINE", None).await;
    assert_eq!(json["value"], SECRET, "ids compare case-insensitively");
    // The detectors' find elsewhere stays masked: the rule reveals what
    // masking rules select, not every secret shape in the answer.
    assert!(!json["tags"]["conn"].as_str().unwrap().contains("RCCCPP"));
    assert_eq!(response.headers()[REVEALED_HEADER], "1");
    assert_eq!(response.headers()[MASKED_HEADER], "1");
    let record = draft.snapshot();
    assert_eq!(record.revealed, ["$.value"]);
    assert_eq!(record.revealed_by.as_deref(), Some("rule 'pipeline-db'"));
    assert_eq!(record.masked_paths, ["$.tags.conn (AccountKey)"]);
    let excerpt = record.response_excerpt.unwrap();
    assert!(
        !excerpt.contains(SECRET) && !excerpt.contains("RCCCPP"),
        "{excerpt}"
    );

    let (response, json, draft) = read(&layer, "someone-else", None).await;
    assert_ne!(json["value"], SECRET);
    assert!(response.headers().get(REVEALED_HEADER).is_none());
    assert!(draft.snapshot().revealed.is_empty());
}

#[tokio::test]
async fn with_detectors_the_whole_answer_is_revealed() {
    let layer = masking(vec![rule("pipeline-all").detectors(true)]);
    let (response, json, draft) = read(&layer, "pipeline", None).await;
    assert_eq!(json["value"], SECRET);
    assert_eq!(json["tags"]["conn"], CONNECTION);
    assert_eq!(response.headers()[REVEALED_HEADER], "2");
    assert_eq!(response.headers()[MASKED_HEADER], "0");
    let record = draft.snapshot();
    assert_eq!(record.revealed.len(), 2);
    assert!(!record.response_excerpt.unwrap().contains(SECRET));
}

#[tokio::test]
async fn an_approval_rule_reveals_only_with_its_grant() {
    let approval = RevealApproval {
        approvers: Approvers {
            groups: vec!["sec".into()],
            ..Approvers::default()
        },
        min_approvals: 1,
        hold: Duration::from_secs(30),
        ttl: Duration::from_secs(60),
    };
    let layer = masking(vec![rule("by-approval").by_approval(approval)]);
    let (_, json, _) = read(&layer, "pipeline", None).await;
    assert_ne!(json["value"], SECRET, "no grant, no reveal");
    let grant = |rule: &str| RevealGrant {
        approval_id: "a-1".into(),
        rule: rule.into(),
    };
    let (_, json, draft) = read(&layer, "pipeline", Some(grant("by-approval"))).await;
    assert_eq!(json["value"], SECRET);
    assert_eq!(
        draft.snapshot().revealed_by.as_deref(),
        Some("approval a-1 (rule 'by-approval')")
    );
    // A grant under a rule that does not exist (or does not cover the
    // request) reveals nothing.
    let (_, json, _) = read(&layer, "pipeline", Some(grant("other"))).await;
    assert_ne!(json["value"], SECRET);
}

/// The reveal step's answer to `who` asking with `header`, after policy decided `decision`.
async fn ask(
    layer: &MaskingLayer,
    who: &str,
    header: &str,
    decision: Decision,
) -> (
    StatusCode,
    Option<Value>,
    Option<Decision>,
    Option<RevealAsked>,
) {
    let service =
        layer
            .reveal_layer()
            .layer(service_fn(|request: Request<AirlockBody>| async move {
                let seen = (
                    request.extensions().get::<Decision>().cloned(),
                    request.extensions().get::<RevealAsked>().cloned(),
                );
                let mut response = Response::new(empty());
                response.extensions_mut().insert(seen);
                Ok::<_, Infallible>(response)
            }));
    let mut request = Request::get("/secrets/db")
        .header(REVEAL_HEADER, header)
        .body(empty())
        .unwrap();
    request.extensions_mut().insert(get_secret());
    request.extensions_mut().insert(principal(who));
    request.extensions_mut().insert(decision);
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let seen = response
        .extensions()
        .get::<(Option<Decision>, Option<RevealAsked>)>()
        .cloned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let error = serde_json::from_slice(&body).ok();
    let (decision, asked) = seen.unwrap_or((None, None));
    (status, error, decision, asked)
}

#[tokio::test]
async fn the_reveal_header_becomes_an_approval_or_is_refused() {
    let approval = RevealApproval {
        approvers: Approvers {
            ids: vec!["carol".into()],
            ..Approvers::default()
        },
        min_approvals: 1,
        hold: Duration::from_secs(30),
        ttl: Duration::from_secs(60),
    };
    let layer = masking(vec![rule("by-approval").by_approval(approval)]);
    let allow = Decision::Allow {
        rule: "readers".into(),
    };

    let (status, _, decision, asked) = ask(&layer, "pipeline", "CHG-7", allow.clone()).await;
    assert_eq!(status, StatusCode::OK);
    match decision {
        Some(Decision::RequireApproval {
            rule,
            approvers,
            justification_required,
            ..
        }) => {
            assert_eq!(rule, "by-approval");
            assert_eq!(approvers.ids, ["carol"]);
            assert!(justification_required);
        }
        other => panic!("not held for approval: {other:?}"),
    }
    assert_eq!(asked.unwrap().justification, "CHG-7");

    // Nobody's rule: refused, naming the fix.
    let (status, error, ..) = ask(&layer, "stranger", "please", allow.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let error = error.unwrap();
    assert_eq!(error["error"]["code"], "AirlockRevealNotAllowed");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("without x-airlock-reveal")
    );

    // No justification.
    let (status, error, ..) = ask(&layer, "pipeline", "  ", allow).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error.unwrap()["error"]["code"],
        "AirlockRevealJustificationMissing"
    );

    // Already held by policy, as an operation to poll: the decision stays
    // the operation's, but held (a polled operation's answer is stored),
    // and the reveal rule's approvers become a second quorum.
    let held = Decision::RequireApproval {
        rule: "secrets-need-approval".into(),
        approvers: Approvers::default(),
        min_approvals: 1,
        justification_required: false,
        hold: Duration::from_secs(1),
        ttl: Duration::from_secs(1),
        wait: airlock_core::ApprovalWait::Async,
        elevate_to: None,
    };
    let (status, _, decision, asked) = ask(&layer, "pipeline", "CHG-7", held).await;
    assert_eq!(status, StatusCode::OK);
    match decision {
        Some(Decision::RequireApproval { rule, wait, .. }) => {
            assert_eq!(rule, "secrets-need-approval");
            assert_eq!(wait, airlock_core::ApprovalWait::Hold);
        }
        other => panic!("not the operation's approval: {other:?}"),
    }
    let quorum = asked.unwrap().quorum.expect("the reveal's approvers");
    assert_eq!(quorum.rule, "by-approval");
    assert_eq!(quorum.approvers.ids, ["carol"]);
}
