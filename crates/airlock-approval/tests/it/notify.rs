//! Approval notifications to real HTTP receivers on loopback: the signed
//! JSON webhook, Slack's Block Kit and Teams' Adaptive Card, what they carry
//! and leave out, and delivery that never holds up the request path.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_approval::conformance::pending_request;
use airlock_approval::{
    ApprovalEvent, Delivery, Notifier, Retry, SIGNATURE_HEADER, WebhookFormat, WebhookNotifier,
    webhook_signature,
};
use airlock_core::{ApprovalWait, Principal, PrincipalKind};
use airlock_sim::LoopbackClient;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

const LINKS: &str = "https://airlock-admin.contoso.com/api/approvals";

/// A receiver on loopback that keeps what it got and answers `status`
/// (after `delay`).
struct Sink {
    url: http::Uri,
    got: Arc<Mutex<Vec<(HeaderMap, bytes::Bytes)>>>,
}

async fn sink(status: StatusCode, delay: Duration) -> Sink {
    let got: Arc<Mutex<Vec<(HeaderMap, bytes::Bytes)>>> = Arc::default();
    let keep = got.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: bytes::Bytes| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push((headers, body));
                tokio::time::sleep(delay).await;
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Sink { url, got }
}

impl Sink {
    /// Waits until `count` posts arrived (polling; the deadline decides).
    async fn posts(&self, count: usize) -> Vec<(HeaderMap, bytes::Bytes)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= count {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {count} posts arrived",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn event() -> ApprovalEvent {
    let agent = Principal::builder("agent-object-id", PrincipalKind::ManagedIdentity)
        .display_name("build-agent")
        .build();
    let mut request = pending_request(&agent, ApprovalWait::Hold);
    request.justification = Some("rotate <the> keys & logs".into());
    request.body = Some(r#"{"secret":"***MASKED:1234***"}"#.into());
    request.body_preview = request.body.clone();
    ApprovalEvent::New(request)
}

fn delivery(retry: Retry) -> Delivery {
    Delivery::start(Arc::new(LoopbackClient::new()), retry)
}

fn quick() -> Retry {
    Retry {
        attempts: 3,
        first_backoff: Duration::from_millis(10),
        timeout: Duration::from_millis(500),
    }
}

#[tokio::test]
async fn the_json_webhook_is_signed_and_carries_a_summary_without_the_body() {
    let receiver = sink(StatusCode::OK, Duration::ZERO).await;
    let delivery = delivery(quick());
    let notifier = WebhookNotifier::new(
        receiver.url.clone(),
        WebhookFormat::Json {
            secret: b"shared-secret".to_vec(),
        },
        LINKS,
        delivery.clone(),
    );
    let event = event();
    notifier.notify(event.clone());
    let (headers, body) = receiver.posts(1).await.remove(0);
    // The receiver recomputes the signature over "<t>.<body>".
    let header = headers[SIGNATURE_HEADER].to_str().unwrap();
    let seconds: u64 = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(header, webhook_signature(b"shared-secret", seconds, &body));
    assert_ne!(header, webhook_signature(b"another-secret", seconds, &body));
    let json: Value = serde_json::from_slice(&body).unwrap();
    let id = event.request().id.to_string();
    assert_eq!(json["type"], "approval.new");
    assert_eq!(json["url"], format!("{LINKS}/{id}"));
    assert_eq!(json["approval"]["id"], id.as_str());
    assert_eq!(json["approval"]["requester"]["displayName"], "build-agent");
    assert!(
        json["summary"]
            .as_str()
            .unwrap()
            .contains("build-agent wants")
    );
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains("MASKED") && json["approval"].get("body").is_none());
    assert_eq!(delivery.stats().sent(), 1);
}

#[tokio::test]
async fn slack_and_teams_get_their_own_shapes_with_a_link() {
    for format in [WebhookFormat::Slack, WebhookFormat::Teams] {
        let receiver = sink(StatusCode::OK, Duration::ZERO).await;
        let notifier = WebhookNotifier::new(
            receiver.url.clone(),
            format.clone(),
            LINKS,
            delivery(quick()),
        );
        let event = event();
        notifier.notify(event.clone());
        let (headers, body) = receiver.posts(1).await.remove(0);
        assert!(headers.get(SIGNATURE_HEADER).is_none());
        let json: Value = serde_json::from_slice(&body).unwrap();
        let link = format!("{LINKS}/{}", event.request().id);
        match format {
            WebhookFormat::Slack => {
                assert!(
                    json["text"]
                        .as_str()
                        .unwrap()
                        .starts_with("Approval needed")
                );
                assert_eq!(json["blocks"][0]["type"], "header");
                let fields = json["blocks"][1]["fields"].as_array().unwrap();
                assert!(
                    fields.iter().any(|f| f["text"]
                        == "*Justification*\nrotate &lt;the&gt; keys &amp; logs"),
                    "{fields:?}"
                );
                assert_eq!(json["blocks"][2]["elements"][0]["url"], link.as_str());
            }
            WebhookFormat::Teams => {
                let card = &json["attachments"][0];
                assert_eq!(
                    card["contentType"],
                    "application/vnd.microsoft.card.adaptive"
                );
                assert_eq!(card["content"]["type"], "AdaptiveCard");
                let facts = card["content"]["body"][1]["facts"].as_array().unwrap();
                assert!(facts.iter().any(|f| f["title"] == "Rule"));
                assert_eq!(card["content"]["actions"][0]["url"], link.as_str());
            }
            WebhookFormat::Json { .. } => unreachable!(),
        }
        assert!(!String::from_utf8_lossy(&body).contains("MASKED"));
    }
}

#[tokio::test]
async fn only_the_rules_asked_for_are_notified() {
    let receiver = sink(StatusCode::OK, Duration::ZERO).await;
    let event = event();
    let quiet = WebhookNotifier::new(
        receiver.url.clone(),
        WebhookFormat::Slack,
        LINKS,
        delivery(quick()),
    )
    .rules(["some-other-rule"]);
    quiet.notify(event.clone());
    let loud = WebhookNotifier::new(
        receiver.url.clone(),
        WebhookFormat::Teams,
        LINKS,
        delivery(quick()),
    )
    .rules([event.request().rule.clone()]);
    loud.notify(event);
    let posts = receiver.posts(1).await;
    assert_eq!(posts.len(), 1);
    assert!(String::from_utf8_lossy(&posts[0].1).contains("AdaptiveCard"));
}

#[tokio::test]
async fn a_failing_receiver_is_retried_then_given_up_and_counted() {
    let receiver = sink(StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO).await;
    let delivery = delivery(quick());
    let notifier = WebhookNotifier::new(
        receiver.url.clone(),
        WebhookFormat::Slack,
        LINKS,
        delivery.clone(),
    );
    notifier.notify(event());
    assert_eq!(receiver.posts(3).await.len(), 3, "three attempts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while delivery.stats().failed() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not counted as failed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((delivery.stats().sent(), delivery.stats().failed()), (0, 1));
}

/// A receiver that never answers: notifying returns at once every time;
/// past the queue's capacity notifications are dropped and counted, never
/// waited for.
#[tokio::test]
async fn a_hanging_receiver_never_holds_up_the_caller() {
    let receiver = sink(StatusCode::OK, Duration::from_secs(3600)).await;
    let delivery = delivery(Retry {
        attempts: 1,
        first_backoff: Duration::ZERO,
        timeout: Duration::from_secs(3600),
    });
    let notifier = WebhookNotifier::new(
        receiver.url.clone(),
        WebhookFormat::Slack,
        LINKS,
        delivery.clone(),
    );
    let event = event();
    // Runs on this task: had any call waited for the receiver, this test
    // would never end.
    for _ in 0..2000 {
        notifier.notify(event.clone());
    }
    receiver.posts(1).await;
    assert!(delivery.stats().dropped() > 0, "the queue is bounded");
    assert_eq!(delivery.stats().sent(), 0);
}

/// `ApprovalMetrics`, as a notifier, counts each event under its name.
#[test]
fn approval_metrics_count_each_event_under_its_name() {
    use airlock_approval::{ApprovalMetrics, ApprovalState};

    let metrics = ApprovalMetrics::new();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let agent = Principal::builder("agent", PrincipalKind::ManagedIdentity).build();
    let request = |state| {
        let mut request = pending_request(&agent, ApprovalWait::Hold);
        request.state = state;
        request
    };
    metrics.notify(ApprovalEvent::New(request(ApprovalState::Pending)));
    metrics.notify(ApprovalEvent::New(request(ApprovalState::Pending)));
    metrics.notify(ApprovalEvent::Decided(request(ApprovalState::Approved)));
    metrics.notify(ApprovalEvent::Decided(request(ApprovalState::Denied)));
    metrics.notify(ApprovalEvent::Expired(request(ApprovalState::Expired)));
    // Each kind of approval is told apart.
    let mut reveal = request(ApprovalState::Pending);
    reveal.reveal = true;
    metrics.notify(ApprovalEvent::New(reveal));
    let mut quota = request(ApprovalState::Denied);
    quota.rule = "quota:secret-reads".into();
    metrics.notify(ApprovalEvent::Decided(quota));
    for (series, value) in [
        (
            r#"airlock_approvals_total{event="requested",kind="request"}"#,
            "2",
        ),
        (
            r#"airlock_approvals_total{event="approved",kind="request"}"#,
            "1",
        ),
        (
            r#"airlock_approvals_total{event="denied",kind="request"}"#,
            "1",
        ),
        (
            r#"airlock_approvals_total{event="expired",kind="request"}"#,
            "1",
        ),
        (
            r#"airlock_approvals_total{event="requested",kind="reveal"}"#,
            "1",
        ),
        (
            r#"airlock_approvals_total{event="denied",kind="quota"}"#,
            "1",
        ),
    ] {
        assert_eq!(
            airlock_metrics::sample(&registry, series).as_deref(),
            Some(value),
            "{series}"
        );
    }
}

/// The sweeper, given the metrics, reports how many approvals wait in the
/// store after each sweep: a new one counts, a decided or expired one no
/// longer does.
#[tokio::test]
async fn the_sweeper_reports_the_approvals_pending_in_the_store() {
    use std::sync::Arc;

    use airlock_approval::{ApprovalMetrics, ApprovalStore, ExpirySweeper, MemoryApprovalStore};

    let metrics = ApprovalMetrics::new();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let store = Arc::new(MemoryApprovalStore::new());
    let _sweeper = ExpirySweeper::spawn_counting(
        store.clone(),
        metrics.clone(),
        Duration::from_millis(20),
        metrics.clone(),
    );
    let pending_becomes = |want: &'static str| {
        let registry = &registry;
        async move {
            for _ in 0..250 {
                if airlock_metrics::sample(registry, "airlock_approvals_pending").as_deref()
                    == Some(want)
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!(
                "airlock_approvals_pending never became {want}: {:?}",
                airlock_metrics::sample(registry, "airlock_approvals_pending")
            );
        }
    };
    let agent = Principal::builder("agent", PrincipalKind::ManagedIdentity).build();
    let first = pending_request(&agent, ApprovalWait::Hold);
    let second = pending_request(&agent, ApprovalWait::Async);
    store.create(first.clone(), None).await.unwrap();
    store.create(second, None).await.unwrap();
    pending_becomes("2").await;
    let carol = airlock_approval::conformance::principal("carol", &[]);
    store.decide(first.id, &carol, false, None).await.unwrap();
    pending_becomes("1").await;
}
