//! `IdentityLayer` in front of a tower service: the 401s a client sees, and
//! what reaches the service when the token is good.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use airlock_core::{Principal, PrincipalKind};
use airlock_identity::IdentityLayer;
use airlock_sim::TokenSpec;
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;
use tower::{Layer as _, Service, ServiceExt as _};

use crate::support::{TENANT, request, start, through};

const UNAUTHENTICATED: &str = "AirlockUnauthenticated";
const NO_TOKEN: &str = "no bearer token: send 'Authorization: Bearer <access token>' with an Entra ID token issued for api://airlock";
const EXPIRED: &str = "the token has expired; request a new token";
const DUPLICATE: &str =
    "more than one Authorization header: send exactly one 'Authorization: Bearer <token>'";
const NOT_BEARER: &str =
    "the Authorization header must use the Bearer scheme ('Authorization: Bearer <token>')";

async fn layer() -> (airlock_sim::IssuerHandle, IdentityLayer) {
    let (issuer, validator) = start().await;
    (issuer, IdentityLayer::new(validator))
}

fn expired(issuer: &airlock_sim::IssuerHandle) -> String {
    issuer.mint(
        &TokenSpec::agent()
            .not_before_offset_secs(-7200)
            .lifetime(Duration::from_secs(3600)),
    )
}

#[tokio::test]
async fn valid_token_reaches_the_service_as_a_principal_without_the_header() {
    let (issuer, layer) = layer().await;
    let token = issuer.mint(&TokenSpec::agent());

    let answer = through(&layer, request(&[&format!("Bearer {token}")])).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "from the service");
    let seen = answer.seen.unwrap();
    assert!(
        seen.headers.get(AUTHORIZATION).is_none(),
        "the client's credential went past the layer"
    );
    assert_eq!(seen.headers["x-ms-client-request-id"], "client-1");
    let principal = seen.principal.expect("no Principal extension");
    assert_eq!(principal.id(), "00000000-0000-0000-0000-0000000000a1");
    assert_eq!(principal.kind(), PrincipalKind::ManagedIdentity);
    assert_eq!(principal.tenant_id(), TENANT);
}

#[tokio::test]
async fn no_token_is_401_with_a_bare_bearer_challenge() {
    let (_issuer, layer) = layer().await;

    let answer = through(&layer, request(&[])).await;

    answer.assert_refused(StatusCode::UNAUTHORIZED, UNAUTHENTICATED, NO_TOKEN);
    assert_eq!(answer.challenge(), Some("Bearer"));
    assert_eq!(answer.json()["error"]["airlock"]["retryable"], json!(false));
}

/// The Key Vault-style challenge: where to get a token, for what resource,
/// and (no credential was sent) no `error` parameter.
#[tokio::test]
async fn no_token_with_a_configured_challenge_names_authority_and_resource() {
    let (issuer, layer) = layer().await;
    let layer = layer.challenge("https://login.windows.net", TENANT, "api://airlock");

    let answer = through(&layer, request(&[])).await;

    answer.assert_refused(StatusCode::UNAUTHORIZED, UNAUTHENTICATED, NO_TOKEN);
    assert_eq!(
        answer.challenge().unwrap(),
        format!(
            r#"Bearer authorization="https://login.windows.net/{TENANT}", resource="api://airlock""#
        )
    );

    // A bad token gets the same parameters plus the error.
    let token = expired(&issuer);
    let answer = through(&layer, request(&[&format!("Bearer {token}")])).await;
    answer.assert_refused(StatusCode::UNAUTHORIZED, UNAUTHENTICATED, EXPIRED);
    assert_eq!(
        answer.challenge().unwrap(),
        format!(
            r#"Bearer authorization="https://login.windows.net/{TENANT}", resource="api://airlock", error="invalid_token", error_description="{EXPIRED}""#
        )
    );
}

/// Forward-proxy clients call Azure's own hosts; Key Vault SDKs check that
/// the challenge's resource belongs to the host they called, so requests to
/// `*.vault.azure.net` are challenged for `https://vault.azure.net`.
#[tokio::test]
async fn a_host_can_be_challenged_for_azures_own_audience() {
    let (_issuer, layer) = layer().await;
    let layer = layer
        .challenge("https://login.windows.net", TENANT, "api://airlock")
        .challenge_resource_for("vault.azure.net", "https://vault.azure.net");
    let to = |host: &str| {
        let mut request = request(&[]);
        request
            .headers_mut()
            .insert(http::header::HOST, host.parse().unwrap());
        request
    };
    let vault = through(&layer, to("KV1.vault.azure.net:443")).await;
    assert_eq!(
        vault.challenge().unwrap(),
        format!(
            r#"Bearer authorization="https://login.windows.net/{TENANT}", resource="https://vault.azure.net""#
        )
    );
    for other in [
        "airlock.example",
        "vault.azure.net.evil.example",
        "evilvault.azure.net",
    ] {
        let answer = through(&layer, to(other)).await;
        assert!(
            answer
                .challenge()
                .unwrap()
                .contains(r#"resource="api://airlock""#),
            "{other}"
        );
    }
}

#[tokio::test]
async fn bad_token_is_401_invalid_token() {
    let (issuer, layer) = layer().await;
    let token = expired(&issuer);

    let answer = through(&layer, request(&[&format!("Bearer {token}")])).await;

    answer.assert_refused(StatusCode::UNAUTHORIZED, UNAUTHENTICATED, EXPIRED);
    assert_eq!(
        answer.challenge(),
        Some(format!(r#"Bearer error="invalid_token", error_description="{EXPIRED}""#).as_str())
    );
    answer.assert_does_not_echo(&token);
}

#[tokio::test]
async fn two_authorization_headers_are_401_invalid_request() {
    let (issuer, layer) = layer().await;
    let good = issuer.mint(&TokenSpec::agent());
    let other = issuer.mint(&TokenSpec::approver());

    let answer = through(
        &layer,
        request(&[&format!("Bearer {good}"), &format!("Bearer {other}")]),
    )
    .await;

    answer.assert_refused(StatusCode::UNAUTHORIZED, UNAUTHENTICATED, DUPLICATE);
    assert_eq!(
        answer.challenge(),
        Some(
            format!(r#"Bearer error="invalid_request", error_description="{DUPLICATE}""#).as_str()
        )
    );
    answer.assert_does_not_echo(&good);
    answer.assert_does_not_echo(&other);
}

/// RFC 7235 §2.1: the auth-scheme is a case-insensitive token, so `bearer`
/// is the Bearer scheme; some clients (and proxies) send it in lower case.
#[tokio::test]
async fn lower_case_bearer_scheme_is_accepted() {
    let (issuer, layer) = layer().await;
    let token = issuer.mint(&TokenSpec::approver());

    for scheme in ["bearer", "BEARER"] {
        let answer = through(&layer, request(&[&format!("{scheme} {token}")])).await;

        assert_eq!(answer.status, StatusCode::OK, "{scheme}: {:?}", answer.body);
        let seen = answer.seen.unwrap();
        assert!(seen.headers.get(AUTHORIZATION).is_none());
        assert_eq!(
            seen.principal.unwrap().display_name(),
            Some("Alice Approver")
        );
    }
}

#[tokio::test]
async fn other_schemes_are_401_invalid_request() {
    let (_issuer, layer) = layer().await;

    for value in [
        "Basic dXNlcjpwYXNz",
        "Negotiate YIIGhgYGKwYBBQUCoIIGejCCBnag",
        // The scheme with no credential at all.
        "Bearer",
    ] {
        let answer = through(&layer, request(&[value])).await;

        answer.assert_refused(StatusCode::UNAUTHORIZED, UNAUTHENTICATED, NOT_BEARER);
        assert_eq!(
            answer.challenge(),
            Some(
                format!(r#"Bearer error="invalid_request", error_description="{NOT_BEARER}""#)
                    .as_str()
            ),
            "{value}"
        );
        if let Some((_, credential)) = value.split_once(' ') {
            answer.assert_does_not_echo(credential);
        }
    }
}

/// Whatever is wrong with a token, the answer says what, never the token.
#[tokio::test]
async fn refusals_never_echo_the_token() {
    let (issuer, layer) = layer().await;
    let mut header = crate::support::rs256(Some(&issuer.current_kid()));
    header.typ = Some("JWS".into());
    let claims: serde_json::Value =
        crate::support::claims_of(&issuer.mint(&TokenSpec::agent())).into();
    let tokens = [
        expired(&issuer),
        issuer.mint(&TokenSpec::agent().audience("https://vault.azure.net")),
        issuer.mint(&TokenSpec::agent().tenant_id("other")),
        issuer.sign_with_foreign_key(&crate::support::rs256(None), &claims),
        issuer.sign(&header, &claims),
        issuer.mint(&TokenSpec::agent().claim("padding", json!("x".repeat(17 * 1024)))),
    ];

    for token in &tokens {
        let answer = through(&layer, request(&[&format!("Bearer {token}")])).await;

        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(answer.seen.is_none());
        assert!(
            answer
                .challenge()
                .unwrap()
                .starts_with(r#"Bearer error="invalid_token""#)
        );
        answer.assert_does_not_echo(token);
    }
}

#[tokio::test]
async fn oversized_authorization_is_401_too_large() {
    let (issuer, layer) = layer().await;
    let token = issuer.mint(&TokenSpec::agent().claim("padding", json!("x".repeat(17 * 1024))));
    let message = "the token is longer than 16384 bytes; send an access token, not a document";

    let answer = through(&layer, request(&[&format!("Bearer {token}")])).await;

    answer.assert_refused(StatusCode::UNAUTHORIZED, UNAUTHENTICATED, message);
    assert_eq!(
        answer.challenge(),
        Some(format!(r#"Bearer error="invalid_token", error_description="{message}""#).as_str())
    );

    // The validator's own limit applies, read by the layer before it asks.
    struct Small(airlock_identity::JwtValidator);
    impl airlock_identity::TokenValidator for Small {
        fn validate<'a>(
            &'a self,
            token: &'a str,
        ) -> airlock_core::BoxFuture<'a, Result<airlock_core::Principal, airlock_identity::AuthError>>
        {
            self.0.validate(token)
        }
        fn max_token_bytes(&self) -> usize {
            512
        }
    }
    let (issuer, validator) = start().await;
    let small = IdentityLayer::new(Small(validator));
    let normal = issuer.mint(&TokenSpec::agent());
    let answer = through(&small, request(&[&format!("Bearer {normal}")])).await;
    answer.assert_refused(
        StatusCode::UNAUTHORIZED,
        UNAUTHENTICATED,
        "the token is longer than 512 bytes; send an access token, not a document",
    );
}

/// Characters no token has are refused before anything parses them.
#[tokio::test]
async fn bearer_value_with_foreign_characters_is_401() {
    let (_issuer, layer) = layer().await;

    let answer = through(&layer, request(&["Bearer a.b,c"])).await;

    answer.assert_refused(
        StatusCode::UNAUTHORIZED,
        UNAUTHENTICATED,
        "the token is not a well-formed JWT: the Bearer value contains characters a token cannot have",
    );
}

/// What reached [`Counted`]: the principal, and whether the client's
/// `Authorization` header came along.
#[derive(Clone)]
struct Reached {
    principal: Option<Principal>,
    credential: bool,
}

/// A service that answers 200, keeps what reached it, and counts its clones.
#[derive(Default)]
struct Counted {
    clones: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Reached>>>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Self {
            clones: Arc::clone(&self.clones),
            seen: Arc::clone(&self.seen),
        }
    }
}

impl Service<Request<()>> for Counted {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        self.seen.lock().unwrap().push(Reached {
            principal: request.extensions().get::<Principal>().cloned(),
            credential: request.headers().contains_key(AUTHORIZATION),
        });
        std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"ok")))))
    }
}

/// A token verified before is admitted at once, as it was the first time,
/// without the stack below being cloned to wait on the verification.
#[tokio::test]
async fn a_known_token_is_admitted_at_once_as_it_was_when_verified() {
    let (issuer, layer) = layer().await;
    let token = issuer.mint(&TokenSpec::agent());
    let inner = Counted::default();
    let (clones, seen) = (Arc::clone(&inner.clones), Arc::clone(&inner.seen));
    let mut service = layer.layer(inner);
    for _ in 0..2 {
        let request = request(&[&format!("Bearer {token}")]);
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for reached in &seen {
        assert_eq!(
            reached.principal.as_ref().map(Principal::id),
            Some("00000000-0000-0000-0000-0000000000a1")
        );
        assert!(
            !reached.credential,
            "the client's credential went past the layer"
        );
    }
    // Verified once, waiting for the keys: one clone; then known: none.
    assert_eq!(clones.load(Ordering::SeqCst), 1);

    // A token never seen waits again.
    let other = issuer.mint(&TokenSpec::approver());
    let request = request(&[&format!("Bearer {other}")]);
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(clones.load(Ordering::SeqCst), 2);
}
