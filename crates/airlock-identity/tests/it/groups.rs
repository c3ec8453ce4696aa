//! Group overage: a token whose groups did not fit, resolved through a
//! Microsoft Graph stub over HTTP, or refused.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use airlock_core::StaticTokenProvider;
use airlock_identity::{AuthError, GraphGroupResolver, IdentityLayer, JwtValidator};
use airlock_sim::{IssuerHandle, LoopbackClient, TokenSpec};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::post;
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::{TENANT, accepted, builder, issuer, refusal, request, through};

const AGENT_OID: &str = "00000000-0000-0000-0000-0000000000a1";

const NO_RESOLVER: &str = "the token has too many groups to carry them (group overage) and no group resolver is configured, so Airlock cannot tell which groups this principal is in; configure [identity.groups] resolver = \"graph\"";

/// The agent, with its groups left out of the token as Entra ID does when
/// there are too many (`_claim_names` points at a `_claim_sources` entry).
fn overage(spec: TokenSpec) -> TokenSpec {
    spec.groups(Vec::<String>::new())
        .claim("_claim_names", json!({"groups": "src1"}))
        .claim(
            "_claim_sources",
            json!({"src1": {"endpoint": format!(
                "https://graph.windows.net/{TENANT}/users/{AGENT_OID}/getMemberObjects"
            )}}),
        )
}

/// One request the stub received.
#[derive(Debug, Clone)]
struct GraphCall {
    object_id: String,
    authorization: Option<String>,
    body: Value,
}

/// A stand-in for Microsoft Graph's `getMemberGroups`, on a loopback port.
struct Graph {
    addr: SocketAddr,
    state: Arc<GraphState>,
}

struct GraphState {
    status: StatusCode,
    calls: Mutex<Vec<GraphCall>>,
    count: AtomicUsize,
}

async fn member_groups(
    State(state): State<Arc<GraphState>>,
    Path(object_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    state.count.fetch_add(1, Ordering::SeqCst);
    let authorization = headers
        .get(AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_owned());
    state.calls.lock().unwrap().push(GraphCall {
        object_id,
        authorization: authorization.clone(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    if authorization.as_deref() != Some("Bearer graph-token") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": "InvalidAuthenticationToken"}})),
        );
    }
    if state.status != StatusCode::OK {
        return (
            state.status,
            Json(json!({"error": {"code": "generalException"}})),
        );
    }
    (StatusCode::OK, Json(json!({"value": ["g1", "g2"]})))
}

impl Graph {
    /// Serves `POST /v1.0/directoryObjects/{oid}/getMemberGroups`, answering
    /// `status` (and `{"value":["g1","g2"]}` when 200).
    async fn start(status: StatusCode) -> Self {
        let state = Arc::new(GraphState {
            status,
            calls: Mutex::default(),
            count: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route(
                "/v1.0/directoryObjects/{oid}/getMemberGroups",
                post(member_groups),
            )
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn calls(&self) -> Vec<GraphCall> {
        self.state.calls.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.state.count.load(Ordering::SeqCst)
    }

    fn resolver(&self) -> GraphGroupResolver {
        GraphGroupResolver::new(
            Arc::new(LoopbackClient::new()),
            Arc::new(StaticTokenProvider::new("graph-token")),
            self.url(),
        )
    }
}

async fn validator_with(issuer: &IssuerHandle, graph: &Graph) -> JwtValidator {
    builder(issuer)
        .group_resolver(Arc::new(graph.resolver()))
        .build()
        .await
        .unwrap()
}

/// Never "no groups": a policy on groups would silently see an empty list.
#[tokio::test]
async fn overage_without_a_resolver_is_refused() {
    let issuer = issuer().await;
    let validator = builder(&issuer).build().await.unwrap();
    let token = issuer.mint(&overage(TokenSpec::agent()));

    let error = refusal(&validator, &token).await;

    let AuthError::GroupsUnresolved { reason, principal } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(reason, NO_RESOLVER);
    assert_eq!(principal.id(), TokenSpec::agent().object_id);
    assert!(principal.groups().is_empty());
    assert_eq!(error.to_string(), NO_RESOLVER);

    // `hasgroups: true` (the implicit-flow form of overage) too.
    let hasgroups = TokenSpec::agent()
        .groups(Vec::<String>::new())
        .claim("hasgroups", json!(true));
    assert_eq!(
        refusal(&validator, &issuer.mint(&hasgroups))
            .await
            .to_string(),
        NO_RESOLVER
    );
}

#[tokio::test]
async fn overage_without_a_resolver_is_403_through_the_layer() {
    let issuer = issuer().await;
    let validator = builder(&issuer).build().await.unwrap();
    let token = issuer.mint(&overage(TokenSpec::agent()));
    let layer = IdentityLayer::new(validator);

    let answer = through(&layer, request(&[&format!("Bearer {token}")])).await;

    answer.assert_refused(
        StatusCode::FORBIDDEN,
        "AirlockGroupsUnresolved",
        NO_RESOLVER,
    );
    assert_eq!(answer.json()["error"]["airlock"]["retryable"], false);
    assert_eq!(answer.challenge(), None, "the token is valid: no challenge");
    answer.assert_does_not_echo(&token);
}

#[tokio::test]
async fn overage_is_resolved_through_graph_and_cached_per_principal() {
    let issuer = issuer().await;
    let graph = Graph::start(StatusCode::OK).await;
    let validator = validator_with(&issuer, &graph).await;
    // Two different tokens (different `uti`, different roles) of one principal.
    let first = issuer.mint(&overage(TokenSpec::agent()));
    let second = issuer.mint(&overage(TokenSpec::agent().roles(["Reader"])));
    assert_ne!(first, second);

    let agent = accepted(&validator, &first).await;
    let again = accepted(&validator, &second).await;

    assert_eq!(agent.groups(), ["g1", "g2"]);
    assert_eq!(again.groups(), ["g1", "g2"]);
    assert_eq!(again.roles(), ["Reader"]);
    assert_eq!(agent.display_name(), Some("build-agent"));
    assert_eq!(
        graph.count(),
        1,
        "the second token's groups came from the cache"
    );
    let calls = graph.calls();
    assert_eq!(calls[0].object_id, AGENT_OID);
    assert_eq!(
        calls[0].authorization.as_deref(),
        Some("Bearer graph-token")
    );
    assert_eq!(calls[0].body, json!({"securityEnabledOnly": false}));
}

#[tokio::test]
async fn overage_is_resolved_through_the_layer() {
    let issuer = issuer().await;
    let graph = Graph::start(StatusCode::OK).await;
    let layer = IdentityLayer::new(validator_with(&issuer, &graph).await);
    let token = issuer.mint(&overage(TokenSpec::agent()));

    let answer = through(&layer, request(&[&format!("Bearer {token}")])).await;

    assert_eq!(answer.status, StatusCode::OK);
    let seen = answer.seen.unwrap();
    assert_eq!(seen.principal.unwrap().groups(), ["g1", "g2"]);
    assert!(seen.headers.get(AUTHORIZATION).is_none());
}

#[tokio::test]
async fn graph_failing_is_groups_unresolved() {
    let issuer = issuer().await;
    let graph = Graph::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let validator = validator_with(&issuer, &graph).await;
    let token = issuer.mint(&overage(TokenSpec::agent()));

    let error = refusal(&validator, &token).await;

    assert_eq!(
        error.to_string(),
        "the token's groups (group overage) could not be resolved: Microsoft Graph answered 500 Internal Server Error to getMemberGroups"
    );
    assert_eq!(graph.count(), 1);
    // A failure is not cached: the next request asks Graph again.
    refusal(&validator, &token).await;
    assert_eq!(graph.count(), 2);
}

/// A Graph that is not there at all: refused, naming why.
#[tokio::test]
async fn graph_unreachable_is_groups_unresolved() {
    let issuer = issuer().await;
    // A port that was free a moment ago and is closed now.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let resolver = GraphGroupResolver::new(
        Arc::new(LoopbackClient::new()),
        Arc::new(StaticTokenProvider::new("graph-token")),
        format!("http://{closed}"),
    );
    let validator = builder(&issuer)
        .group_resolver(Arc::new(resolver))
        .build()
        .await
        .unwrap();

    let error = refusal(&validator, &issuer.mint(&overage(TokenSpec::agent()))).await;

    let AuthError::GroupsUnresolved { reason, .. } = &error else {
        panic!("{error:?}");
    };
    assert!(
        reason.starts_with(
            "the token's groups (group overage) could not be resolved: Microsoft Graph could not be reached: "
        ),
        "{reason}"
    );
}
