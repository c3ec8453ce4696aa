//! The approval page's routes, called as the gateway calls them: through the
//! router, with the signed-in person's principal and browser session in the
//! request extensions. (The browser tests in `tests/` drive it in Chromium.)

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use airlock_approval::{
    ApprovalEvent, ApprovalFeed, ApprovalPage, ApprovalRequest, ApprovalStore, MemoryApprovalStore,
    Notifier,
};
use airlock_core::{ApprovalWait, Approvers, BrowserSession, Principal, PrincipalKind};
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;

fn person(id: &str, name: &str, groups: &[&str]) -> Principal {
    Principal::builder(id, PrincipalKind::User)
        .display_name(name)
        .groups(groups.iter().copied())
        .build()
}

fn session() -> BrowserSession {
    BrowserSession::new(
        "csrf-token-of-the-session",
        SystemTime::now() + Duration::from_secs(600),
    )
}

struct Page {
    store: Arc<MemoryApprovalStore>,
    feed: ApprovalFeed,
    router: axum::Router,
}

fn page(sign_in: bool) -> Page {
    let store = Arc::new(MemoryApprovalStore::new());
    let feed = ApprovalFeed::new();
    let mut page = ApprovalPage::new(store.clone(), feed.clone(), |p: &Principal| {
        p.in_group("approvers")
    });
    if sign_in {
        page = page.sign_in("/ui/signin", "/ui/signout");
    }
    Page {
        store,
        feed,
        router: page.into_router(),
    }
}

/// A pending approval whose requester's name and justification are markup.
async fn hostile(store: &MemoryApprovalStore) -> ApprovalRequest {
    let agent = person("agent", "<img src=x onerror=alert(1)>", &["agents"]);
    let mut request = airlock_approval::conformance::pending_request(&agent, ApprovalWait::Hold);
    request.approvers = Approvers {
        groups: vec!["approvers".into()],
        ids: vec![],
        acting_user: false,
    };
    request.justification = Some("</dd><script>alert(2)</script>".into());
    request.body = Some(r#"{"tags":{"x":"<b>bold</b>"},"location":"westeurope"}"#.into());
    store.create(request.clone(), None).await.unwrap();
    request
}

async fn get(
    router: &axum::Router,
    path: &str,
    who: Option<&Principal>,
) -> (StatusCode, http::HeaderMap, String) {
    let mut request = Request::get(path);
    if let Some(who) = who {
        request = request.extension(who.clone()).extension(session());
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

use tower::ServiceExt as _;

#[tokio::test]
async fn the_page_shows_everything_as_text_with_a_strict_csp() {
    let page = page(true);
    let approval = hostile(&page.store).await;
    let alice = person("alice", "Alice", &["approvers"]);
    let (status, headers, html) = get(&page.router, "/ui/approvals", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert!(html.contains("content=\"csrf-token-of-the-session\""));
    assert!(html.contains(&format!("id=\"approval-{}\"", approval.id)));
    // Markup from the request is text.
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert!(html.contains("&lt;/dd&gt;&lt;script&gt;alert(2)&lt;/script&gt;"));
    assert!(!html.contains("<script>alert") && !html.contains("<img src=x"));
    // The body is pretty-printed, its markup escaped too.
    assert!(
        html.contains("&quot;location&quot;: &quot;westeurope&quot;"),
        "{html}"
    );
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"));
    // Alice may decide: the buttons are there; the requester would see none.
    assert!(html.contains("class=\"approve\""));
    let agent = person("agent", "agent", &["agents", "approvers"]);
    let (_, _, own) = get(&page.router, "/ui/approvals", Some(&agent)).await;
    assert!(!own.contains("class=\"approve\""));
    assert!(own.contains("You asked for this"));
}

/// An agent acting for Dave asks; the rule lets Dave confirm. Dave sees only
/// that card, with Confirm and Reject; an approver sees Approve and Deny and
/// the agent named with Dave; once Dave confirms, the history says so.
#[tokio::test]
async fn the_user_an_agent_acts_for_sees_their_own_request_to_confirm() {
    let store = Arc::new(MemoryApprovalStore::new());
    let router = ApprovalPage::new(store.clone(), ApprovalFeed::new(), |p: &Principal| {
        p.in_group("approvers") || p.kind() == PrincipalKind::User
    })
    .sign_in("/ui/signin", "/ui/signout")
    .into_router();
    let for_dave = Principal::builder("dave", PrincipalKind::AgentForUser)
        .display_name("Dave")
        .app_id("bot-app")
        .agent(
            airlock_core::Agent::new("bot-app")
                .name("release-bot")
                .blueprint("bp"),
        )
        .build();
    let mut request = airlock_approval::conformance::pending_request(&for_dave, ApprovalWait::Hold);
    request.approvers.acting_user = true;
    store.create(request.clone(), None).await.unwrap();
    let someone_elses = hostile(&store).await;

    let dave = person("dave", "Dave", &[]);
    let (status, _, html) = get(&router, "/ui/approvals", Some(&dave)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("id=\"approval-{}\"", request.id)),
        "{html}"
    );
    assert!(
        !html.contains(&someone_elses.id.to_string()),
        "Dave sees only what his agent asked for"
    );
    assert!(
        html.contains(">Confirm</button>") && html.contains(">Reject</button>"),
        "{html}"
    );
    assert!(
        html.contains("agent release-bot (blueprint bp) acting for Dave"),
        "{html}"
    );

    let alice = person("alice", "Alice", &["approvers"]);
    let (_, _, approver) = get(&router, "/ui/approvals", Some(&alice)).await;
    assert!(approver.contains(">Approve</button>") && !approver.contains(">Confirm</button>"));
    assert!(approver.contains("or the confirmation of the user the agent acts for"));

    store
        .decide(request.id, &dave, true, Some("yes".into()))
        .await
        .unwrap();
    let (_, _, after) = get(&router, "/ui/approvals", Some(&alice)).await;
    assert!(after.contains("<strong>Dave</strong> confirmed"), "{after}");
}

#[tokio::test]
async fn visitors_are_sent_to_sign_in_and_non_approvers_see_nothing() {
    let with_sign_in = page(true);
    hostile(&with_sign_in.store).await;
    let (status, headers, _) = get(&with_sign_in.router, "/ui/approvals", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/ui/signin?return_to=/ui/approvals");

    let without = page(false);
    let (status, _, html) = get(&without.router, "/ui/approvals", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(html.contains("[admin.sign_in]"));

    let bob = person("bob", "Bob", &["readers"]);
    let (status, _, html) = get(&with_sign_in.router, "/ui/approvals", Some(&bob)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("is not an approver"));
    assert!(
        !html.contains("article") && !html.contains("agents"),
        "{html}"
    );
    let (status, _, _) = get(&with_sign_in.router, "/ui/approvals/events", Some(&bob)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_event_stream_carries_rendered_updates_and_ends_when_the_feed_closes() {
    let page = page(true);
    let alice = person("alice", "Alice", &["approvers"]);
    let request = Request::get("/ui/approvals/events")
        .extension(alice.clone())
        .extension(session())
        .body(Body::empty())
        .unwrap();
    let response = page.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut next = async || {
        let frame = body.frame().await?.unwrap();
        Some(String::from_utf8_lossy(frame.data_ref().unwrap()).into_owned())
    };
    assert!(next().await.unwrap().contains("event: ready"));

    // Someone else's approval is not shown; Alice's rule's is, as HTML.
    let mut other = hostile(&page.store).await;
    other.approvers = Approvers {
        groups: vec!["netops".into()],
        ids: vec![],
        acting_user: false,
    };
    page.feed.notify(ApprovalEvent::New(other));
    let mine = hostile(&page.store).await;
    page.feed.notify(ApprovalEvent::New(mine.clone()));
    let event = next().await.unwrap();
    assert!(event.starts_with("event: approval"), "{event}");
    let data: serde_json::Value = serde_json::from_str(
        event
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data["id"], mine.id.to_string());
    assert_eq!(data["state"], "pending");
    assert!(data["card"].as_str().unwrap().contains("class=\"approve\""));
    assert!(data["history"].is_null());

    page.feed.close();
    assert_eq!(next().await, None, "the stream ends when the feed closes");
}

#[tokio::test]
async fn notification_links_lead_to_the_card() {
    let page = page(true);
    let id = airlock_approval::ApprovalId::new();
    let (status, headers, _) = get(&page.router, &format!("/ui/approvals/{id}"), None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers["location"].to_str().unwrap(),
        format!("/ui/approvals#approval-{id}")
    );
    let (status, _, _) = get(&page.router, "/ui/approvals/not-an-id", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Answers one preview for every approval, counting the questions.
struct Fixed(airlock_approval::Preview, std::sync::atomic::AtomicUsize);

impl airlock_approval::ChangePreview for Fixed {
    fn preview<'a>(
        &'a self,
        _approval: &'a ApprovalRequest,
    ) -> airlock_core::BoxFuture<'a, airlock_approval::Preview> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move { self.0.clone() })
    }
}

#[tokio::test]
async fn what_will_change_is_rendered_as_text_and_asked_once_per_while() {
    use airlock_approval::{Change, ChangeKind, Preview, ResourceChange};
    let store = Arc::new(MemoryApprovalStore::new());
    let approval = hostile(&store).await;
    let source = Arc::new(Fixed(
        Preview::WhatIf(vec![ResourceChange {
            resource_id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/<b>x</b>".into(),
            change_type: "Modify".into(),
            delta: vec![Change {
                path: "tags.env".into(),
                kind: ChangeKind::Modified,
                before: Some(serde_json::json!("dev")),
                after: Some(serde_json::json!("<script>")),
            }],
        }]),
        std::sync::atomic::AtomicUsize::new(0),
    ));
    let router = ApprovalPage::new(store.clone(), ApprovalFeed::new(), |p: &Principal| {
        p.in_group("approvers")
    })
    .changes(source.clone())
    .into_router();
    let alice = person("alice", "Alice", &["approvers"]);
    let (_, _, html) = get(&router, "/ui/approvals", Some(&alice)).await;
    assert!(html.contains(&format!(
        "data-changes=\"/ui/approvals/{}/changes\"",
        approval.id
    )));
    let path = format!("/ui/approvals/{}/changes", approval.id);
    let (status, _, changes) = get(&router, &path, Some(&alice)).await;
    assert_eq!(status, StatusCode::OK, "{changes}");
    assert!(changes.contains("0 to create, 1 to modify"), "{changes}");
    assert!(
        changes.contains("&lt;b&gt;x&lt;/b&gt;") && changes.contains("&quot;&lt;script&gt;&quot;")
    );
    assert!(!changes.contains("<script>") && !changes.contains("<b>"));
    get(&router, &path, Some(&alice)).await;
    assert_eq!(
        source.1.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "kept, not asked again"
    );
    // Not for non-approvers.
    let bob = person("bob", "Bob", &["readers"]);
    assert_eq!(
        get(&router, &path, Some(&bob)).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn signing_out_ends_the_sessions_event_stream() {
    let page = page(true);
    let signed_in = session();
    let request = Request::get("/ui/approvals/events")
        .extension(person("alice", "Alice", &["approvers"]))
        .extension(signed_in.clone())
        .body(Body::empty())
        .unwrap();
    let mut body = page
        .router
        .clone()
        .oneshot(request)
        .await
        .unwrap()
        .into_body();
    let ready = body.frame().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(ready.data_ref().unwrap()).contains("event: ready"));
    signed_in.end();
    assert!(
        body.frame().await.is_none(),
        "the stream ends with the session"
    );
}

/// A reveal and a held answer say so on their cards, what they concern
/// named as text, never a value.
#[tokio::test]
async fn reveals_and_held_answers_say_what_they_release() {
    let page = page(true);
    let agent = person("agent", "agent", &["agents"]);
    let mut reveal = airlock_approval::conformance::pending_request(&agent, ApprovalWait::Hold);
    reveal.approvers.groups = vec!["approvers".into()];
    reveal.reveal = true;
    page.store.create(reveal.clone(), None).await.unwrap();
    // A reveal of an operation held for approval: both quorums shown.
    let mut both = airlock_approval::conformance::pending_request(&agent, ApprovalWait::Hold);
    both.approvers.groups = vec!["approvers".into()];
    both.reveal = true;
    both.reveal_quorum = Some(airlock_core::RevealQuorum {
        rule: "secrets-by-keeper".into(),
        approvers: airlock_core::Approvers {
            ids: vec!["kim".into()],
            ..airlock_core::Approvers::default()
        },
        min_approvals: 1,
    });
    page.store.create(both.clone(), None).await.unwrap();
    let mut held = airlock_approval::conformance::pending_request(&agent, ApprovalWait::Hold);
    held.approvers.groups = vec!["approvers".into()];
    held.answer = Some(airlock_approval::HeldAnswer {
        status: 200,
        bytes: 52_428_801,
        content_type: Some("application/json".into()),
        items: Some(3),
        names: vec!["db-password".into(), "<i>api-key</i>".into()],
        masked: 2,
        revealed: 1,
    });
    page.store.create(held.clone(), None).await.unwrap();
    let alice = person("alice", "Alice", &["approvers"]);
    let (status, _, html) = get(&page.router, "/ui/approvals", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<strong>the answer in clear</strong>"),
        "{html}"
    );
    assert!(
        html.contains("Azure&#39;s answer, not yet sent")
            || html.contains("Azure's answer, not yet sent"),
        "{html}"
    );
    assert!(html.contains("52428801 bytes of application/json, a list of 3 item(s): db-password, &lt;i&gt;api-key&lt;/i&gt;, 2 value(s) masked in it, <strong>1 in clear</strong> (revealed)"), "{html}");
    assert!(!html.contains("<i>api-key"));
    assert!(
        html.contains(
            "<code>secrets-by-keeper</code> · 0 of 1 approval so far, from its own approvers"
        ),
        "{html}"
    );
}
