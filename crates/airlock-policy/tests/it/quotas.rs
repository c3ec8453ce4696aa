//! `[[quota]]` and `[[answer]]`: how the policy file states them (and refuses malformed
//! ones), and the `QuotaLayer` on a fake clock: the sixth of five stops,
//! the window slides, batches count each operation, approvals instead of
//! refusals, answer bytes.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use airlock_core::{
    AirlockBody, AirlockError, Decision, ErrorContext, Operation, Plane, Principal, PrincipalKind,
    ResourceScope, empty, full,
};
use airlock_policy::{Limit, MemoryQuotaStore, Per, Policy, QuotaLayer, QuotaMetrics, QuotaStore};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::{Layer, ServiceExt, service_fn};

const GET_SECRET: &str = "Microsoft.KeyVault/vaults/secrets/getSecret/action";

fn policy(text: &str) -> Arc<Policy> {
    Arc::new(Policy::parse(text, "policy.toml").unwrap())
}

fn refused(text: &str) -> String {
    Policy::parse(text, "policy.toml").unwrap_err().to_string()
}

fn secret(name: &str) -> Operation {
    Operation::new(
        GET_SECRET,
        Plane::Data,
        ResourceScope::new(format!(
            "/providers/Microsoft.KeyVault/vaults/kv/secrets/{name}"
        )),
    )
}

#[test]
fn quotas_are_read_and_malformed_ones_refused() {
    let read = policy(
        r#"
        [[quota]]
        name = "team-downloads"
        operations = ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"]
        principals = { groups = ["team"] }
        max_bytes = 52428800
        window = "1d"
        per = "group"
        on_exceed = "approve"
        approval = { groups = ["sec"] }
        "#,
    );
    let quota = &read.quotas()[0];
    assert_eq!(quota.limit(), Limit::Bytes(52_428_800));
    assert_eq!(quota.window(), Duration::from_secs(86_400));
    assert_eq!(quota.per(), Per::Group);
    let member = Principal::builder("m1", PrincipalKind::User)
        .groups(["TEAM"])
        .build();
    assert_eq!(quota.subject(&member).as_deref(), Some("group:team"));
    assert!(matches!(
        quota.exceeded(),
        Some(Decision::RequireApproval { rule, .. }) if rule == "quota:team-downloads"
    ));
    // Its approvers may use the approval page.
    let approver = Principal::builder("s1", PrincipalKind::User)
        .groups(["sec"])
        .build();
    assert!(read.is_approver(&approver));

    let base = "[[quota]]\nname = \"q\"\nwindow = \"1h\"\n";
    for (text, says) in [
        (
            format!("{base}operations = []\nmax_requests = 1\n"),
            "names no operations",
        ),
        (
            format!("{base}operations = [\"*\"]\nmax_requests = 1\nmax_bytes = 2\n"),
            "exactly one of max_requests",
        ),
        (
            format!("{base}operations = [\"*\"]\n"),
            "exactly one of max_requests",
        ),
        (
            format!("{base}operations = [\"*\"]\nmax_requests = 0\n"),
            "allows nothing",
        ),
        (
            format!("{base}operations = [\"*\"]\nmax_requests = 1\nper = \"group\"\n"),
            "lists none",
        ),
        (
            format!("{base}operations = [\"*\"]\nmax_requests = 1\non_exceed = \"approve\"\n"),
            "needs [quota.approval]",
        ),
        (
            format!(
                "{base}operations = [\"*\"]\nmax_requests = 1\napproval = {{ ids = [\"a\"] }}\n"
            ),
            "only belongs to quotas with on_exceed",
        ),
        (
            "[[quota]]\nname = \"q\"\noperations = [\"*\"]\nmax_requests = 1\nwindow = \"soon\"\n"
                .to_owned(),
            "policy.toml:5: invalid value: string \"soon\", expected a duration",
        ),
        (
            format!(
                "{base}operations = [\"*\"]\nmax_requests = 1\n{base}operations = [\"*\"]\nmax_requests = 1\n"
            ),
            "name of its own",
        ),
    ] {
        let error = refused(&text);
        assert!(error.contains(says), "{says}: {error}");
    }
}

/// A fake clock the test moves.
#[derive(Clone)]
struct Clock(Arc<Mutex<SystemTime>>);

impl Clock {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )))
    }
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

/// The layer over a stand-in for Azure answering `answer_bytes` bytes.
fn service(
    policy: Arc<Policy>,
    clock: Clock,
    answer_bytes: usize,
    store: Arc<MemoryQuotaStore>,
) -> impl tower::Service<
    Request<AirlockBody>,
    Response = Response<AirlockBody>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    QuotaLayer::new(move || policy.quotas(), store)
        .clock(move || clock.now())
        .layer(service_fn(
            move |request: Request<AirlockBody>| async move {
                // Echo the decision the request went on with.
                let decision = request.extensions().get::<Decision>().cloned();
                let mut response = Response::new(full(vec![b'x'; answer_bytes]));
                response.extensions_mut().insert(decision);
                Ok::<_, Infallible>(response)
            },
        ))
}

fn request(who: &str, operation: Operation) -> Request<AirlockBody> {
    let mut request = Request::get("/x").body(empty()).unwrap();
    request
        .extensions_mut()
        .insert(Principal::builder(who, PrincipalKind::ManagedIdentity).build());
    request.extensions_mut().insert(operation);
    request.extensions_mut().insert(Decision::Allow {
        rule: "reads".into(),
    });
    request
}

async fn send<S>(service: &S, request: Request<AirlockBody>) -> (StatusCode, String)
where
    S: tower::Service<Request<AirlockBody>, Response = Response<AirlockBody>, Error = Infallible>
        + Clone,
{
    let response = service.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

const FIVE_READS: &str = r#"
    [[quota]]
    name = "secret-reads"
    operations = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
    max_requests = 5
    window = "1h"
"#;

#[tokio::test]
async fn the_sixth_read_is_refused_until_the_window_slides() {
    let clock = Clock::new();
    let service = service(policy(FIVE_READS), clock.clone(), 10, Arc::default());
    for i in 0..5 {
        let (status, _) = send(&service, request("agent", secret(&format!("s{i}")))).await;
        assert_eq!(status, StatusCode::OK, "read {i}");
        clock.advance(Duration::from_secs(60));
    }
    let (status, body) = send(&service, request("agent", secret("s5"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "AirlockQuotaExceeded");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("quota 'secret-reads' (5 operations per 1h per principal)"),
        "{message}"
    );
    assert!(message.contains("5 of 5"), "{message}");
    // The first read (at 0 s) leaves the window at 1 h; it is now 5 min.
    assert!(message.contains("room again in 55m 1s"), "{message}");
    assert_eq!(error["error"]["airlock"]["rule"], "quota:secret-reads");
    // Another agent has its own count.
    assert_eq!(
        send(&service, request("other", secret("s"))).await.0,
        StatusCode::OK
    );
    // Once the first read leaves the window, one more fits, and only one.
    clock.advance(Duration::from_secs(55 * 60 + 1));
    assert_eq!(
        send(&service, request("agent", secret("s6"))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&service, request("agent", secret("s7"))).await.0,
        StatusCode::FORBIDDEN
    );
    // Denied requests and other operations are not counted.
    let mut denied = request("agent", secret("s8"));
    denied.extensions_mut().insert(Decision::Deny {
        rule: "r".into(),
        reason: "no".into(),
    });
    assert_eq!(
        send(&service, denied).await.0,
        StatusCode::OK,
        "passed untouched"
    );
    let list = Operation::new(
        "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        Plane::Data,
        ResourceScope::new("/providers/Microsoft.KeyVault/vaults/kv"),
    );
    assert_eq!(
        send(&service, request("agent", list)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_batch_counts_every_read_it_carries() {
    let clock = Clock::new();
    let service = service(policy(FIVE_READS), clock.clone(), 10, Arc::default());
    let batch = |n: usize| {
        (0..n).fold(
            Operation::new(
                "Microsoft.Resources/batch/action",
                Plane::Management,
                ResourceScope::new("/"),
            ),
            |batch, i| batch.with_child(secret(&format!("b{i}"))),
        )
    };
    assert_eq!(
        send(&service, request("agent", batch(6))).await.0,
        StatusCode::FORBIDDEN,
        "six reads in one request"
    );
    assert_eq!(
        send(&service, request("agent", batch(4))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&service, request("agent", batch(2))).await.0,
        StatusCode::FORBIDDEN,
        "4 + 2 > 5"
    );
    assert_eq!(
        send(&service, request("agent", batch(1))).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn past_the_limit_an_approve_quota_asks_for_approval_instead() {
    let clock = Clock::new();
    let policy = policy(
        r#"
        [[quota]]
        name = "reads-then-ask"
        operations = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
        max_requests = 1
        window = "1h"
        on_exceed = "approve"
        approval = { groups = ["sec"], hold = "30s" }
        "#,
    );
    let service = service(policy, clock.clone(), 10, Arc::default());
    let decision_of = |response: &Response<AirlockBody>| {
        response
            .extensions()
            .get::<Option<Decision>>()
            .cloned()
            .flatten()
    };
    let first = service
        .clone()
        .oneshot(request("agent", secret("a")))
        .await
        .unwrap();
    assert!(matches!(decision_of(&first), Some(Decision::Allow { .. })));
    let second = service
        .clone()
        .oneshot(request("agent", secret("b")))
        .await
        .unwrap();
    match decision_of(&second) {
        Some(Decision::RequireApproval {
            rule,
            approvers,
            hold,
            ..
        }) => {
            assert_eq!(rule, "quota:reads-then-ask");
            assert_eq!(approvers.groups, ["sec"]);
            assert_eq!(hold, Duration::from_secs(30));
        }
        other => panic!("not held for approval: {other:?}"),
    }
}

/// A request counts only when Azure answers it: what Airlock answers
/// instead (a refusal further in, an approval denied or still pending, an
/// answer held) gives its operations back, and so does a refusal by a
/// second quota; a request an approval lets through past the limit counts.
#[tokio::test]
async fn only_requests_azure_answers_count() {
    let clock = Clock::new();
    let policy = policy(
        r#"
        [[quota]]
        name = "secret-reads"
        operations = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
        max_requests = 2
        window = "1h"
        on_exceed = "approve"
        approval = { groups = ["sec"] }

        [[quota]]
        name = "db-reads"
        operations = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
        scopes = ["/providers/Microsoft.KeyVault/vaults/kv/secrets/db"]
        max_requests = 1
        window = "1h"
        "#,
    );
    let store = Arc::new(MemoryQuotaStore::default());
    let quotas = policy.clone();
    let metrics = QuotaMetrics::new();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let service = QuotaLayer::new(move || quotas.quotas(), store.clone())
        .metrics(metrics)
        .clock({
            let clock = clock.clone();
            move || clock.now()
        })
        .layer(service_fn(|request: Request<AirlockBody>| async move {
            // Airlock answers instead of Azure when the test says so.
            if request.headers().contains_key("x-test-airlock-answers") {
                let refusal = AirlockError::ApprovalDenied {
                    approval_id: "a-1".into(),
                    approver: "sec".into(),
                    reason: None,
                };
                return Ok::<_, Infallible>(refusal.into_response(&ErrorContext::default()));
            }
            Ok(Response::new(full("azure")))
        }));
    let used = |quota: &'static str| {
        let store = store.clone();
        let now = clock.now();
        async move {
            store
                .usage(quota, Duration::from_secs(3_600), now)
                .await
                .unwrap()
                .first()
                .map_or(0, |usage| usage.used)
        }
    };
    let airlock_answers = |name: &str| {
        let mut request = request("agent", secret(name));
        request.headers_mut().insert(
            "x-test-airlock-answers",
            http::HeaderValue::from_static("1"),
        );
        request
    };
    for _ in 0..3 {
        let (status, _) = send(&service, airlock_answers("a")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    assert_eq!(
        used("secret-reads").await,
        0,
        "no answer from Azure, no use"
    );
    // One read of `db` fills db-reads; a second is refused by it, and the
    // secret-reads use it took first is given back.
    assert_eq!(
        send(&service, request("agent", secret("db"))).await.0,
        StatusCode::OK
    );
    assert_eq!((used("secret-reads").await, used("db-reads").await), (1, 1));
    let (status, body) = send(&service, request("agent", secret("db"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("db-reads"), "{body}");
    assert_eq!(
        used("secret-reads").await,
        1,
        "the refused read was given back"
    );
    // Fill secret-reads; past it, a read held for approval and denied does
    // not count, one let through (Azure answers) does: 3 of 2.
    assert_eq!(
        send(&service, request("agent", secret("b"))).await.0,
        StatusCode::OK
    );
    assert_eq!(used("secret-reads").await, 2);
    assert_eq!(
        send(&service, airlock_answers("c")).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(used("secret-reads").await, 2);
    assert_eq!(
        send(&service, request("agent", secret("c"))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        used("secret-reads").await,
        3,
        "an approved read past the limit counts"
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for series in [
        r#"airlock_quota_exceeded_total{quota="db-reads",outcome="refused"} 1"#,
        r#"airlock_quota_exceeded_total{quota="secret-reads",outcome="approval"} 2"#,
        "airlock_quota_unavailable_total 0",
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }
}

#[tokio::test]
async fn answer_bytes_count_once_sent_and_the_next_request_waits() {
    let clock = Clock::new();
    let policy = policy(
        r#"
        [[quota]]
        name = "downloads"
        operations = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
        max_bytes = 1000
        window = "1h"
        "#,
    );
    let store = Arc::new(MemoryQuotaStore::default());
    let service = service(policy, clock.clone(), 600, store.clone());
    let used = || async {
        let usage = store
            .usage("downloads", Duration::from_secs(3600), clock.now())
            .await
            .unwrap();
        usage.first().map_or(0, |u| u.used)
    };
    assert_eq!(
        send(&service, request("agent", secret("a"))).await.0,
        StatusCode::OK
    );
    // Counted once the body was sent, by a task of its own.
    for _ in 0..10_000 {
        if used().await >= 600 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(used().await, 600, "the answer's bytes were counted");
    assert_eq!(
        send(&service, request("agent", secret("b"))).await.0,
        StatusCode::OK,
        "600 of 1000 used: room left"
    );
    for _ in 0..10_000 {
        if used().await >= 1200 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(used().await, 1200);
    let (status, body) = send(&service, request("agent", secret("c"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "1200 of 1000 used");
    assert!(body.contains("1200 of 1000 bytes"), "{body}");
}

#[test]
fn answer_rules_are_read_and_malformed_ones_refused() {
    use airlock_policy::AnswerFacts;
    let read = policy(
        r#"
        [[answer]]
        name = "bulk-secret-lists"
        operations = ["Microsoft.KeyVault/vaults/secrets/readMetadata/action"]
        min_items = 100
        content_types = ["application/json"]
        approval = { groups = ["sec"] }
        "#,
    );
    let rule = &read.answer_rules()[0];
    let list = |items, content_type: &str| AnswerFacts {
        bytes: 10,
        items: Some(items),
        masked: 0,
        revealed: 0,
        content_type: Some(content_type.into()),
    };
    assert!(rule.holds(&list(100, "application/json; charset=utf-8")));
    assert!(
        !rule.holds(&list(99, "application/json")),
        "every condition must hold"
    );
    assert!(!rule.holds(&list(500, "text/plain")));
    assert!(rule.counts_items());
    let approver = Principal::builder("s1", PrincipalKind::User)
        .groups(["sec"])
        .build();
    assert!(
        read.is_approver(&approver),
        "its approvers use the approval page"
    );

    let base = "[[answer]]\nname = \"a\"\noperations = [\"*/read\"]\n";
    for (text, says) in [
        (format!("{base}approval = {{ ids = [\"x\"] }}\n"), "names no condition"),
        (format!("{base}min_bytes = 1\n"), "needs approval"),
        (
            format!("{base}min_bytes = 1\napproval = {{ ids = [\"x\"], elevate_to = \"admin\" }}\n"),
            "elevate_to is for requests",
        ),
        (
            "[[answer]]\nname = \"a\"\noperations = []\nmin_bytes = 1\napproval = { ids = [\"x\"] }\n"
                .to_owned(),
            "names no operations",
        ),
    ] {
        let error = refused(&text);
        assert!(error.contains(says), "{says}: {error}");
    }
}

#[tokio::test]
async fn an_answer_approved_past_a_byte_quota_still_counts() {
    let clock = Clock::new();
    let policy = policy(
        r#"
        [[quota]]
        name = "downloads-then-ask"
        operations = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
        max_bytes = 500
        window = "1h"
        on_exceed = "approve"
        approval = { groups = ["sec"] }
        "#,
    );
    let store = Arc::new(MemoryQuotaStore::default());
    let service = service(policy, clock.clone(), 600, store.clone());
    let used = || async {
        let usage = store
            .usage("downloads-then-ask", Duration::from_secs(3600), clock.now())
            .await
            .unwrap();
        usage.first().map_or(0, |u| u.used)
    };
    let wait_for = |bytes: u64| async move {
        for _ in 0..10_000 {
            if used().await >= bytes {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(used().await, bytes);
    };
    send(&service, request("agent", secret("a"))).await;
    wait_for(600).await;
    // Past the limit: held for approval (here the stand-in answers), and
    // what it sends counts all the same.
    send(&service, request("agent", secret("b"))).await;
    wait_for(1200).await;
}

/// `per = "group"`: the members of each of the quota's groups share one
/// count; a principal outside them is not counted at all.
#[tokio::test]
async fn a_group_quota_is_shared_by_its_members() {
    let clock = Clock::new();
    let policy = policy(
        r#"
        [[quota]]
        name = "team-reads"
        operations = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
        principals = { groups = ["team"] }
        max_requests = 2
        window = "1h"
        per = "group"
        "#,
    );
    let service = service(policy, clock, 10, Arc::default());
    let member = |id: &str| {
        let mut request = request(id, secret("s"));
        request.extensions_mut().insert(
            Principal::builder(id, PrincipalKind::ManagedIdentity)
                .groups(["team"])
                .build(),
        );
        request
    };
    assert_eq!(send(&service, member("m1")).await.0, StatusCode::OK);
    assert_eq!(send(&service, member("m2")).await.0, StatusCode::OK);
    let (status, body) = send(&service, member("m3")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the team's two are used");
    assert!(body.contains("2 of 2"), "{body}");
    assert_eq!(
        send(&service, request("outsider", secret("s"))).await.0,
        StatusCode::OK
    );
}
