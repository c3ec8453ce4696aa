//! Exactly one event per request, whatever happens to it, carrying what the
//! layers learned.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use airlock_core::{
    AirlockBody, Approvers, BoxError, Decision, Operation, Plane, Principal, PrincipalKind,
    ResourceScope, boxed, empty, full,
};
use airlock_recorder::{Outcome, RecorderConfig};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::support::*;

fn agent() -> Principal {
    Principal::builder("agent-oid-1", PrincipalKind::ManagedIdentity)
        .tenant_id("tenant-1")
        .app_id("app-1")
        .display_name("build-agent")
        .build()
}

#[tokio::test]
async fn a_completed_request_leaves_one_event_with_what_the_layers_learned() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    let gateway = gateway(&recorder, |request: InnerRequest| async move {
        let draft = draft(&request);
        // As the classify layer does.
        request.into_body().collect().await?;
        draft.update(|r| {
            r.principal = Some(agent());
            r.operation = Some(
                Operation::new(
                    "Microsoft.Resources/deployments/write",
                    Plane::Management,
                    ResourceScope::new("/subscriptions/s/resourceGroups/RG/providers/Microsoft.Resources/deployments/d1"),
                )
                .with_child(Operation::new(
                    "Microsoft.Storage/storageAccounts/write",
                    Plane::Management,
                    ResourceScope::new("/subscriptions/s/resourceGroups/RG/providers/Microsoft.Storage/storageAccounts/st"),
                )),
            );
            r.decision = Some(Decision::RequireApproval {
                rule: "deployments-need-approval".into(),
                approvers: Approvers::default(),
                min_approvals: 1,
                justification_required: true,
                hold: Duration::from_secs(30),
                ttl: Duration::from_secs(600),
                wait: airlock_core::ApprovalWait::Hold,
                elevate_to: None,
            });
            r.approval_id = Some("appr-1".into());
            r.approvers = vec!["alice".into()];
            r.justification = Some("release 1.2".into());
            r.masked_count = 2;
            r.masked_paths = vec!["$.properties.outputs.key.value".into()];
            r.request_excerpt = Some(r#"{"properties":{}}"#.into());
            r.response_excerpt = Some(r#"{"id":"d1"}"#.into());
            r.upstream_status = Some(201);
            r.upstream_request_id = Some("ms-req-1".into());
            r.upstream_correlation_id = Some("ms-corr-1".into());
        });
        Ok(Response::builder()
            .status(201)
            .body(full(r#"{"id":"d1"}"#))
            .unwrap())
    });
    let request = Request::put(
        "/subscriptions/s/resourceGroups/RG/providers/Microsoft.Resources/deployments/d1?api-version=2024-03-01&sig=SAS-SECRET",
    )
    .header("host", "management.azure.com")
    .header("x-airlock-request-id", "req-1")
    .header("authorization", "Bearer eyJ-SECRET-TOKEN")
    .body(full(r#"{"properties":{}}"#))
    .unwrap();
    let (status, body) = send(&gateway, request).await;
    assert_eq!(status, 201);
    assert_eq!(body.unwrap(), r#"{"id":"d1"}"#);

    // Fail-closed: the event is stored by the time the client has the body.
    let events: Vec<_> = sink.events().into_iter().map(|c| c.event).collect();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert!(uuid::Uuid::parse_str(&event.id).is_ok());
    assert_eq!(event.request_id.as_deref(), Some("req-1"));
    assert_eq!(event.method, "PUT");
    assert_eq!(event.host.as_deref(), Some("management.azure.com"));
    assert_eq!(
        event.path,
        "/subscriptions/s/resourceGroups/RG/providers/Microsoft.Resources/deployments/d1"
    );
    assert_eq!(event.api_version.as_deref(), Some("2024-03-01"));
    let principal = event.principal.as_ref().unwrap();
    assert_eq!(principal.id, "agent-oid-1");
    assert_eq!(principal.tenant_id, "tenant-1");
    assert_eq!(principal.kind, "managed_identity");
    assert_eq!(principal.display_name.as_deref(), Some("build-agent"));
    assert_eq!(principal.app_id.as_deref(), Some("app-1"));
    assert_eq!(
        event.operations,
        [
            "Microsoft.Resources/deployments/write",
            "Microsoft.Storage/storageAccounts/write"
        ]
    );
    assert_eq!(
        event.scope.as_deref(),
        Some("/subscriptions/s/resourceGroups/RG/providers/Microsoft.Resources/deployments/d1")
    );
    assert_eq!(event.decision.as_deref(), Some("requireApproval"));
    assert_eq!(event.rule.as_deref(), Some("deployments-need-approval"));
    assert_eq!(event.approval_id.as_deref(), Some("appr-1"));
    assert_eq!(event.approvers, ["alice"]);
    assert_eq!(event.justification.as_deref(), Some("release 1.2"));
    assert_eq!(event.masked_count, 2);
    assert_eq!(event.masked_paths, ["$.properties.outputs.key.value"]);
    assert_eq!(event.request_body.as_deref(), Some(r#"{"properties":{}}"#));
    assert_eq!(event.response_body.as_deref(), Some(r#"{"id":"d1"}"#));
    assert_eq!(event.status, 201);
    assert_eq!(event.outcome, Outcome::Completed);
    assert_eq!(event.bytes_in, 17);
    assert_eq!(event.bytes_out, 11);
    assert_eq!(event.upstream_status, Some(201));
    assert_eq!(event.upstream_request_id.as_deref(), Some("ms-req-1"));
    assert_eq!(event.upstream_correlation_id.as_deref(), Some("ms-corr-1"));
    assert_eq!(event.error_code, None);
    assert!(!event.session_id.is_empty());
    let json = serde_json::to_string(&events).unwrap();
    assert!(!json.contains("SECRET"), "{json}");
    assert_eq!(recorder.shutdown().await.recorded, 1);
}

#[tokio::test]
async fn a_401_from_an_inner_layer_is_recorded_without_a_principal() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    let gateway = gateway(&recorder, |_request: InnerRequest| async move {
        // The identity layer answers in the ARM shape, with the code header.
        Ok(Response::builder()
            .status(401)
            .header("x-ms-error-code", "AirlockUnauthenticated")
            .body(full(r#"{"error":{"code":"AirlockUnauthenticated"}}"#))
            .unwrap())
    });
    let (status, _) = send(&gateway, get("/subscriptions")).await;
    assert_eq!(status, 401);
    let events = events(&sink, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status, 401);
    assert_eq!(events[0].principal, None);
    assert_eq!(events[0].decision, None);
    assert_eq!(
        events[0].error_code.as_deref(),
        Some("AirlockUnauthenticated")
    );
    assert_eq!(events[0].outcome, Outcome::Completed);
}

#[tokio::test]
async fn a_403_denial_is_recorded_with_its_rule() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    let gateway = gateway(&recorder, |request: InnerRequest| async move {
        draft(&request).update(|r| {
            r.principal = Some(agent());
            r.decision = Some(Decision::Deny {
                rule: "no-vm-delete".into(),
                reason: "VM deletes are not for agents".into(),
            });
            r.error_code = Some("AirlockPolicyDenied".into());
        });
        Ok(Response::builder()
            .status(403)
            .header("x-ms-error-code", "SomethingElse")
            .body(full("{}"))
            .unwrap())
    });
    let (status, _) = send(&gateway, get("/vm1")).await;
    assert_eq!(status, 403);
    let events = events(&sink, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status, 403);
    assert_eq!(events[0].decision.as_deref(), Some("deny"));
    assert_eq!(events[0].rule.as_deref(), Some("no-vm-delete"));
    // The draft's code wins over the header.
    assert_eq!(events[0].error_code.as_deref(), Some("AirlockPolicyDenied"));
    assert_eq!(events[0].principal.as_ref().unwrap().id, "agent-oid-1");
}

#[tokio::test]
async fn an_inner_error_is_recorded_as_failed_with_status_500() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    let gateway = gateway(&recorder, |_request: InnerRequest| async move {
        Err::<Response<AirlockBody>, BoxError>("upstream connection reset".into())
    });
    let result = gateway.clone().oneshot(get("/x")).await;
    assert_eq!(result.unwrap_err().to_string(), "upstream connection reset");
    let events = events(&sink, 1).await;
    assert_eq!(events[0].status, 500);
    assert_eq!(events[0].outcome, Outcome::Failed);
    assert_eq!(recorder.shutdown().await.recorded, 1);
    assert_eq!(sink.len(), 1);
}

#[tokio::test]
async fn a_body_failing_mid_stream_is_recorded_as_failed() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    let (feeder, body) = fed();
    let body = std::sync::Mutex::new(Some(body));
    let body = std::sync::Arc::new(body);
    let gateway = gateway(&recorder, move |_request: InnerRequest| {
        let body = body.lock().unwrap().take().unwrap_or_else(empty);
        async move { Ok(Response::new(body)) }
    });
    let response = gateway.clone().oneshot(get("/stream")).await.unwrap();
    let mut body = response.into_body();
    feeder.send(Ok(Bytes::from_static(b"first chunk"))).unwrap();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "first chunk");
    feeder
        .send(Err(std::io::Error::other("upstream reset")))
        .unwrap();
    let error = body.frame().await.unwrap().unwrap_err();
    assert_eq!(error.to_string(), "upstream reset");
    let events = events(&sink, 1).await;
    assert_eq!(events[0].status, 200);
    assert_eq!(events[0].outcome, Outcome::Failed);
    assert_eq!(events[0].bytes_out, 11);
    drop(body);
    assert_eq!(recorder.shutdown().await.recorded, 1);
    assert_eq!(sink.len(), 1);
}

#[tokio::test]
async fn a_client_dropping_the_body_midway_is_recorded_as_client_gone() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    let (feeder, body) = fed();
    let body = std::sync::Arc::new(std::sync::Mutex::new(Some(body)));
    let gateway = gateway(&recorder, move |_request: InnerRequest| {
        let body = body.lock().unwrap().take().unwrap_or_else(empty);
        async move { Ok(Response::new(body)) }
    });
    let response = gateway.clone().oneshot(get("/stream")).await.unwrap();
    let mut body = response.into_body();
    feeder.send(Ok(Bytes::from_static(b"part"))).unwrap();
    body.frame().await.unwrap().unwrap();
    drop(body);
    let events = events(&sink, 1).await;
    assert_eq!(events[0].outcome, Outcome::ClientGone);
    assert_eq!(events[0].status, 200);
    assert_eq!(events[0].bytes_out, 4);
    assert_eq!(recorder.shutdown().await.recorded, 1);
    assert_eq!(sink.len(), 1);
}

#[tokio::test]
async fn a_client_gone_before_the_response_is_recorded_with_status_499() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    let (started, mut is_started) = tokio::sync::mpsc::unbounded_channel::<()>();
    let gateway = gateway(&recorder, move |_request: InnerRequest| {
        let started = started.clone();
        async move {
            let _ = started.send(());
            std::future::pending::<()>().await;
            Ok(Response::new(empty()))
        }
    });
    let mut call = Box::pin(gateway.clone().oneshot(get("/slow")));
    tokio::select! {
        _ = &mut call => panic!("the inner service never answers"),
        _ = is_started.recv() => {}
    }
    drop(call);
    let events = events(&sink, 1).await;
    assert_eq!(events[0].outcome, Outcome::ClientGone);
    assert_eq!(events[0].status, 499);
    assert_eq!(recorder.shutdown().await.recorded, 1);
}

#[tokio::test]
async fn request_body_bytes_are_counted() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    let gateway = gateway(&recorder, |request: InnerRequest| async move {
        let body = request.into_body().collect().await.unwrap().to_bytes();
        Ok(Response::new(full(body)))
    });
    let (feeder, body) = fed();
    feeder.send(Ok(Bytes::from_static(b"hello "))).unwrap();
    feeder.send(Ok(Bytes::from_static(b"world!"))).unwrap();
    drop(feeder);
    let request = Request::post("/echo").body(body).unwrap();
    let (status, echoed) = send(&gateway, request).await;
    assert_eq!(status, 200);
    assert_eq!(echoed.unwrap(), "hello world!");
    let events = events(&sink, 1).await;
    assert_eq!(events[0].bytes_in, 12);
    assert_eq!(events[0].bytes_out, 12);
}

#[tokio::test]
async fn excerpts_are_capped_on_a_character_boundary() {
    let config = RecorderConfig {
        max_body_chars: 4,
        ..RecorderConfig::default()
    };
    let (sink, recorder) = start(config).await;
    let gateway = gateway(&recorder, |request: InnerRequest| async move {
        draft(&request).update(|r| {
            r.request_excerpt = Some("héllo wörld".into());
            r.response_excerpt = Some("日本語テキスト".into());
        });
        Ok(Response::new(full("ok")))
    });
    let _ = send(&gateway, get("/x")).await;
    let events = events(&sink, 1).await;
    assert_eq!(events[0].request_body.as_deref(), Some("héll"));
    assert_eq!(events[0].response_body.as_deref(), Some("日本語テ"));
}

#[tokio::test]
async fn bodiless_responses_are_recorded_before_their_head_is_returned() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    sink.set_delay(Duration::from_millis(50));
    let gateway = gateway(&recorder, |request: InnerRequest| async move {
        let status = if request.method() == http::Method::HEAD {
            200
        } else {
            204
        };
        Ok(Response::builder()
            .status(status)
            .body(full("ignored"))
            .unwrap())
    });
    let response = gateway.clone().oneshot(get("/no-content")).await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(sink.len(), 1, "stored before the head is returned");
    let head = Request::head("/thing").body(empty()).unwrap();
    let response = gateway.clone().oneshot(head).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(sink.len(), 2);
    let empty_body = gateway_with_empty_body(&recorder);
    let response = empty_body.oneshot(get("/empty")).await.unwrap();
    assert!(http_body::Body::is_end_stream(response.body()));
    assert_eq!(sink.len(), 3);
    let events: Vec<_> = sink.events().into_iter().map(|c| c.event).collect();
    assert!(
        events
            .iter()
            .all(|e| e.outcome == Outcome::Completed && e.bytes_out == 0)
    );
}

fn gateway_with_empty_body(recorder: &airlock_recorder::Recorder) -> Gateway {
    gateway(recorder, |_request: InnerRequest| async move {
        Ok(Response::new(boxed(http_body_util::Empty::<Bytes>::new())))
    })
}

#[tokio::test]
async fn no_token_or_query_ever_appears_in_an_event() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    let gateway = gateway(&recorder, |request: InnerRequest| async move {
        match request.uri().path() {
            "/fail" => Err::<Response<AirlockBody>, BoxError>("boom".into()),
            "/denied" => Ok(Response::builder().status(401).body(full("{}")).unwrap()),
            _ => Ok(Response::new(full("{}"))),
        }
    });
    for path in ["/ok", "/denied", "/fail"] {
        let request = Request::get(format!("{path}?sig=QUERY-SECRET"))
            .header("authorization", "Bearer TOKEN-SECRET-123")
            .header("x-airlock-session", "Bearer TOKEN-SECRET-123")
            .body(full(""))
            .unwrap();
        let response = gateway.clone().oneshot(request).await;
        if let Ok(response) = response {
            let _ = response.into_body().collect().await;
        }
    }
    let stored = events(&sink, 3).await;
    assert_eq!(stored.len(), 3);
    let json = serde_json::to_string(&sink.events()).unwrap();
    assert!(!json.contains("TOKEN-SECRET-123"), "{json}");
    assert!(!json.contains("QUERY-SECRET"), "{json}");
}
