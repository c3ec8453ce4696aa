//! A real issuer, a validator that finds its keys by discovery over HTTP,
//! token crafting, and a tower service to put behind the identity layer.

use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use airlock_core::Principal;
use airlock_identity::{
    AuthError, IdentityLayer, JwtValidator, JwtValidatorBuilder, KeySource, TokenValidator,
};
use airlock_sim::{DevIssuer, IssuerHandle, LoopbackClient};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Map, Value};
use tower::{Layer as _, ServiceExt as _, service_fn};

/// The tenant the issuer serves and the validator allows.
pub(crate) const TENANT: &str = airlock_sim::TENANT_ID;
/// The gateway's app ID URI: the audience tokens must be issued for.
pub(crate) const AUDIENCE: &str = "api://airlock";

/// A development issuer for [`TENANT`] on a free loopback port.
pub(crate) async fn issuer() -> IssuerHandle {
    DevIssuer::start(TENANT).await.unwrap()
}

/// A validator configuration for `issuer`: the tenant, the audience, keys by
/// OIDC discovery of the issuer's v2 URL, plain HTTP on loopback.
pub(crate) fn builder(issuer: &IssuerHandle) -> JwtValidatorBuilder {
    JwtValidator::builder()
        .tenant(TENANT)
        .audience(AUDIENCE)
        .keys(KeySource::Discovery(issuer.issuer()))
        .http_client(Arc::new(LoopbackClient::new()))
}

/// An issuer and a validator with the default settings.
pub(crate) async fn start() -> (IssuerHandle, JwtValidator) {
    let issuer = issuer().await;
    let validator = builder(&issuer).build().await.unwrap();
    (issuer, validator)
}

/// The error `validator` refuses `token` with.
pub(crate) async fn refusal(validator: &JwtValidator, token: &str) -> AuthError {
    match validator.validate(token).await {
        Ok(principal) => panic!("the token was accepted as {principal}"),
        Err(error) => error,
    }
}

/// The principal `validator` accepts `token` as.
pub(crate) async fn accepted(validator: &JwtValidator, token: &str) -> Principal {
    validator
        .validate(token)
        .await
        .unwrap_or_else(|error| panic!("the token was refused: {error}"))
}

/// The claims of a token, read without verifying it.
pub(crate) fn claims_of(token: &str) -> Map<String, Value> {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A JSON value as a JWT segment (base64url, no padding).
pub(crate) fn segment(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// `{alg: RS256, typ: JWT}` with `kid` if given.
pub(crate) fn rs256(kid: Option<&str>) -> Header {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    header
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

/// A `kid` no issuer publishes, different on every call.
pub(crate) fn random_kid() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:016x}", RandomState::new().hash_one(nanos))
}

/// Asks `attempt` until it answers `Some`, at most until `within` has passed.
pub(crate) async fn eventually<T, F, Fut>(what: &str, within: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        // Polling interval, not a timing assumption: the deadline decides.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the service behind the identity layer received.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) headers: HeaderMap,
    pub(crate) principal: Option<Principal>,
    /// The verified `Proxy-Authorization` of a `CONNECT`.
    pub(crate) tunnel: Option<airlock_identity::TunnelToken>,
}

/// A response from the layer, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// `Some` when the request reached the inner service.
    pub(crate) seen: Option<Seen>,
}

impl Answer {
    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The `WWW-Authenticate` header, if any.
    pub(crate) fn challenge(&self) -> Option<&str> {
        self.headers
            .get(http::header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap())
    }

    /// Asserts a refusal: `status`, and the ARM error envelope with `code`
    /// and `message`; the request never reached the inner service.
    pub(crate) fn assert_refused(&self, status: StatusCode, code: &str, message: &str) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert!(self.seen.is_none(), "the inner service was called");
        let body = self.json();
        assert_eq!(body["error"]["code"], code);
        assert_eq!(body["error"]["message"], message);
        assert_eq!(self.headers["x-ms-error-code"], code);
        assert_eq!(
            self.headers["content-type"],
            "application/json; charset=utf-8"
        );
    }

    /// Asserts that neither the body nor any header quotes `token`, whole or
    /// any of its segments.
    pub(crate) fn assert_does_not_echo(&self, token: &str) {
        let body = String::from_utf8_lossy(&self.body);
        let mut pieces = vec![token];
        pieces.extend(token.split('.').filter(|s| s.len() >= 8));
        for piece in pieces {
            assert!(!body.contains(piece), "the body quotes the token: {body}");
            for (name, value) in &self.headers {
                let value = String::from_utf8_lossy(value.as_bytes());
                assert!(!value.contains(piece), "{name} quotes the token: {value}");
            }
        }
    }
}

/// A request with one header per `Authorization` value.
pub(crate) fn request(authorization: &[&str]) -> Request<()> {
    let mut builder = Request::get("/subscriptions?api-version=2022-12-01")
        .header("x-ms-client-request-id", "client-1");
    for value in authorization {
        builder = builder.header(http::header::AUTHORIZATION, *value);
    }
    builder.body(()).unwrap()
}

/// Sends `request` through `layer` in front of a service that records what it
/// received and answers 200 `from the service`.
pub(crate) async fn through(layer: &IdentityLayer, request: Request<()>) -> Answer {
    let seen: Arc<Mutex<Option<Seen>>> = Arc::default();
    let record = seen.clone();
    let inner = service_fn(move |request: Request<()>| {
        let record = record.clone();
        async move {
            *record.lock().unwrap() = Some(Seen {
                headers: request.headers().clone(),
                principal: request.extensions().get::<Principal>().cloned(),
                tunnel: request.extensions().get().cloned(),
            });
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                b"from the service",
            ))))
        }
    });
    let response = layer.layer(inner).oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let seen = seen.lock().unwrap().take();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
        seen,
    }
}
