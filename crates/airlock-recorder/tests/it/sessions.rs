//! Sessions: named by the client (within its own namespace), else one per
//! principal until it pauses longer than the idle gap.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use airlock_core::{Principal, PrincipalKind, full};
use airlock_recorder::RecorderConfig;
use http::{Request, Response};

use crate::support::*;

/// A gateway whose "identity layer" takes the principal from `x-agent`.
fn with_agents(recorder: &airlock_recorder::Recorder) -> Gateway {
    gateway(recorder, |request: InnerRequest| async move {
        if let Some(agent) = request.headers().get("x-agent") {
            let agent = agent.to_str().unwrap().to_owned();
            draft(&request).update(|r| {
                r.principal = Some(Principal::builder(agent, PrincipalKind::Application).build());
            });
        }
        Ok(Response::new(full("{}")))
    })
}

fn request(agent: Option<&str>, session: Option<&str>) -> Request<airlock_core::AirlockBody> {
    let mut builder = Request::get("/x");
    if let Some(agent) = agent {
        builder = builder.header("x-agent", agent);
    }
    if let Some(session) = session {
        builder = builder.header("x-airlock-session", session);
    }
    builder.body(full("")).unwrap()
}

async fn session_of(
    gateway: &Gateway,
    sink: &airlock_recorder::MemorySink,
    agent: Option<&str>,
    session: Option<&str>,
) -> String {
    let before = sink.len();
    let (status, _) = send(gateway, request(agent, session)).await;
    assert_eq!(status, 200);
    events(sink, before + 1).await[before].session_id.clone()
}

#[tokio::test]
async fn a_session_header_names_the_session_within_the_callers_namespace() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    let gateway = with_agents(&recorder);
    assert_eq!(
        session_of(&gateway, &sink, Some("agent-a"), Some("task-42")).await,
        "agent-a:task-42"
    );
    // Another agent naming the same session gets its own.
    assert_eq!(
        session_of(&gateway, &sink, Some("agent-b"), Some("task-42")).await,
        "agent-b:task-42"
    );
    assert_eq!(
        session_of(&gateway, &sink, None, Some("task-42")).await,
        "anonymous:task-42"
    );
    // An invalid name is ignored: the principal's own session is used.
    let derived = session_of(&gateway, &sink, Some("agent-a"), None).await;
    assert!(uuid::Uuid::parse_str(&derived).is_ok(), "{derived}");
    assert_eq!(
        session_of(&gateway, &sink, Some("agent-a"), Some("not/valid")).await,
        derived
    );
    let too_long = "x".repeat(129);
    assert_eq!(
        session_of(&gateway, &sink, Some("agent-a"), Some(&too_long)).await,
        derived
    );
}

#[tokio::test]
async fn without_a_header_a_session_lasts_until_the_principal_pauses_longer_than_the_idle_gap() {
    let config = RecorderConfig {
        session_idle: Duration::from_millis(200),
        ..RecorderConfig::default()
    };
    let (sink, recorder) = start(config).await;
    let gateway = with_agents(&recorder);
    let first = session_of(&gateway, &sink, Some("agent-a"), None).await;
    assert_eq!(
        session_of(&gateway, &sink, Some("agent-a"), None).await,
        first
    );
    let other = session_of(&gateway, &sink, Some("agent-b"), None).await;
    assert_ne!(other, first);
    let anonymous = session_of(&gateway, &sink, None, None).await;
    assert_ne!(anonymous, first);
    assert_ne!(anonymous, other);

    // The pause is the condition under test, not a wait for something.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = session_of(&gateway, &sink, Some("agent-a"), None).await;
    assert_ne!(second, first);
    assert_eq!(
        session_of(&gateway, &sink, Some("agent-a"), None).await,
        second
    );
}
