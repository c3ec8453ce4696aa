//! A forward proxy's `CONNECT`: identified by `Proxy-Authorization` (Bearer,
//! or the password of Basic), 407 when that is wrong or required and
//! missing, and the requests inside the tunnel run as its principal.

use std::time::Duration;

use airlock_identity::{IdentityLayer, ProxyAuthorization, TunnelToken};
use airlock_sim::TokenSpec;
use base64::Engine as _;
use http::header::{AUTHORIZATION, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION};
use http::{Method, Request, StatusCode};

use crate::support::{Answer, builder, eventually, issuer, request, start, through};

const PROXY_REFUSED: &str = "AirlockProxyAuthenticationRequired";

fn connect(proxy_authorization: Option<&str>) -> Request<()> {
    let mut builder = Request::builder()
        .method(Method::CONNECT)
        .uri("management.azure.com:443");
    if let Some(value) = proxy_authorization {
        builder = builder.header(PROXY_AUTHORIZATION, value);
    }
    builder.body(()).unwrap()
}

/// The token of a `CONNECT` that `token` identifies, as the proxy gets it.
async fn open_tunnel(layer: &IdentityLayer, token: &str) -> TunnelToken {
    through(layer, connect(Some(&format!("Bearer {token}"))))
        .await
        .seen
        .unwrap()
        .tunnel
        .unwrap()
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

fn assert_proxy_refused(answer: &Answer, message_part: &str) {
    assert_eq!(answer.status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    assert!(answer.seen.is_none(), "the CONNECT went on");
    let body = answer.json();
    assert_eq!(body["error"]["code"], PROXY_REFUSED);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(message_part), "{message}");
    let challenges: Vec<_> = answer
        .headers
        .get_all(PROXY_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        challenges,
        ["Bearer realm=\"airlock\"", "Basic realm=\"airlock\""]
    );
}

/// Not a forward proxy (the default): a `CONNECT` is an ordinary request,
/// refused without a token, so nothing unidentified gets past the layer.
#[tokio::test]
async fn a_connect_is_an_ordinary_request_unless_the_service_is_a_proxy() {
    let (_issuer, validator) = start().await;
    let layer = IdentityLayer::new(validator);
    let answer = through(&layer, connect(None)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.seen.is_none());
}

#[tokio::test]
async fn a_connect_without_proxy_authorization_goes_on_unidentified_unless_it_is_required() {
    let (_issuer, validator) = start().await;
    let layer = IdentityLayer::new(validator).proxy_authorization(ProxyAuthorization::Optional);
    let answer = through(&layer, connect(None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let seen = answer.seen.unwrap();
    assert!(seen.principal.is_none() && seen.tunnel.is_none());

    let required = layer.proxy_authorization(ProxyAuthorization::Required);
    let answer = through(&required, connect(None)).await;
    assert_proxy_refused(
        &answer,
        "send 'Proxy-Authorization: Bearer <token>' on CONNECT with an Entra ID token issued for api://airlock",
    );
}

#[tokio::test]
async fn bearer_or_the_password_of_basic_identifies_the_tunnel() {
    let (issuer, validator) = start().await;
    let layer = IdentityLayer::new(validator).proxy_authorization(ProxyAuthorization::Required);
    let token = issuer.mint(&TokenSpec::agent());
    for value in [format!("Bearer {token}"), basic("agent", &token)] {
        let answer = through(&layer, connect(Some(&value))).await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        let seen = answer.seen.unwrap();
        assert_eq!(
            seen.principal.unwrap().id(),
            "00000000-0000-0000-0000-0000000000a1"
        );
        assert!(seen.tunnel.is_some());
        assert!(
            seen.headers.get(PROXY_AUTHORIZATION).is_none(),
            "the proxy credential went past the layer"
        );
    }
}

#[tokio::test]
async fn a_wrong_proxy_token_is_407_naming_the_problem_and_never_echoing_it() {
    let (issuer, validator) = start().await;
    // Refused whether or not proxy authorization is required: a token sent is checked.
    let layer = IdentityLayer::new(validator).proxy_authorization(ProxyAuthorization::Optional);
    let wrong_audience = issuer.mint(&TokenSpec::agent().audience("https://example.com"));
    let answer = through(&layer, connect(Some(&format!("Bearer {wrong_audience}")))).await;
    assert_proxy_refused(&answer, "the Proxy-Authorization token was not accepted: ");
    answer.assert_does_not_echo(&wrong_audience);
    let answer = through(&layer, connect(Some("Negotiate abc"))).await;
    assert_proxy_refused(&answer, "must use the Bearer or Basic scheme");
    let answer = through(&layer, connect(Some(&basic("agent", "")))).await;
    assert_proxy_refused(&answer, "the Bearer value is empty");
}

/// The tunnel's token identifies every request inside it: the tool's own
/// `Authorization` (here not even a token) is neither used nor passed on.
#[tokio::test]
async fn requests_inside_a_tunnel_run_as_its_principal() {
    let (issuer, validator) = start().await;
    let layer = IdentityLayer::new(validator).proxy_authorization(ProxyAuthorization::Optional);
    let tunnel = open_tunnel(&layer, &issuer.mint(&TokenSpec::agent())).await;
    let mut inner = request(&["Bearer not-a-token"]);
    inner.extensions_mut().insert(tunnel);
    let answer = through(&layer, inner).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let seen = answer.seen.unwrap();
    assert_eq!(
        seen.principal.unwrap().id(),
        "00000000-0000-0000-0000-0000000000a1"
    );
    assert!(seen.headers.get(AUTHORIZATION).is_none());
}

/// Each request inside is verified again: a tunnel that outlives its token
/// stops working, and the refusal says to open a new connection.
#[tokio::test]
async fn a_tunnel_outliving_its_token_is_refused_with_the_fix() {
    let issuer = issuer().await;
    let validator = builder(&issuer)
        .leeway(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let layer = IdentityLayer::new(validator).proxy_authorization(ProxyAuthorization::Optional);
    let token = issuer.mint(&TokenSpec::agent().lifetime(Duration::from_secs(2)));
    let tunnel = open_tunnel(&layer, &token).await;
    let answer = eventually(
        "the tunnel's token expires",
        Duration::from_secs(15),
        || {
            let mut inner = request(&[]);
            inner.extensions_mut().insert(tunnel.clone());
            let layer = layer.clone();
            async move {
                let answer = through(&layer, inner).await;
                (answer.status != StatusCode::OK).then_some(answer)
            }
        },
    )
    .await;
    answer.assert_refused(
        StatusCode::UNAUTHORIZED,
        "AirlockUnauthenticated",
        "the token sent as Proxy-Authorization when this tunnel was opened: the token has expired; request a new token; open a new connection with a fresh token",
    );
}
