//! [`SignInLayer`]: a signed-in browser's session, or the bearer path.

use std::task::{Context, Poll};

use airlock_core::{AirlockBody, AirlockError, BoxError, BoxFuture, CSRF_HEADER};
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Method, Request, Response};
use http_body::Body;
use tower::{Layer, Service, ServiceExt};

use crate::SignIn;
use crate::sessions::same;

/// Serves a request that carries a live session cookie (and no
/// `Authorization`) as its signed-in person: their
/// [`Principal`](airlock_core::Principal) and [`BrowserSession`](airlock_core::BrowserSession)
/// go in the request extensions, and every method but `GET`, `HEAD` and
/// `OPTIONS` must carry the session's CSRF token in
/// [`CSRF_HEADER`] (else 403
/// `AirlockCsrfTokenInvalid`). Any other request takes the `bearer` path:
/// the layer given (the gateway's `IdentityLayer`, so API clients keep
/// sending Entra tokens; `tower::layer::util::Identity` for pages that also
/// serve visitors who are not signed in).
///
/// A request with both a cookie and `Authorization` is judged by its token
/// alone: the cookie cannot lend a session to a request that names someone.
#[derive(Clone, Debug)]
pub struct SignInLayer<L> {
    sign_in: SignIn,
    bearer: L,
}

impl SignIn {
    /// The layer serving signed-in browsers and sending every other request
    /// through `bearer`.
    pub fn layer<L>(&self, bearer: L) -> SignInLayer<L> {
        SignInLayer {
            sign_in: self.clone(),
            bearer,
        }
    }
}

impl<S: Clone, L: Layer<S>> Layer<S> for SignInLayer<L> {
    type Service = SignInService<S, L::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        SignInService {
            sign_in: self.sign_in.clone(),
            signed_in: inner.clone(),
            bearer: self.bearer.layer(inner),
        }
    }
}

/// The service [`SignInLayer`] builds.
#[derive(Clone, Debug)]
pub struct SignInService<S, B> {
    sign_in: SignIn,
    signed_in: S,
    bearer: B,
}

impl<S, B, ReqBody, ResBody, BearerBody> Service<Request<ReqBody>> for SignInService<S, B>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Service<Request<ReqBody>, Response = Response<BearerBody>, Error = S::Error>
        + Clone
        + Send
        + 'static,
    B::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
    BearerBody: Body<Data = Bytes> + Send + 'static,
    BearerBody::Error: Into<BoxError>,
{
    type Response = Response<AirlockBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Which of the two services serves is known only from the request:
        // each is driven to readiness in `call` (`oneshot`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let session = if request.headers().contains_key(AUTHORIZATION) {
            None
        } else {
            self.sign_in.inner.sessions.find(request.headers())
        };
        let Some(session) = session else {
            let bearer = self.bearer.clone();
            return Box::pin(async move {
                let response = bearer.oneshot(request).await?;
                Ok(response.map(airlock_core::boxed))
            });
        };
        let safe = matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        );
        let csrf = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok());
        if !safe && !csrf.is_some_and(|token| same(token, &session.browser.csrf_token)) {
            tracing::warn!(
                principal = session.principal.id(),
                method = %request.method(),
                path = request.uri().path(),
                "signed-in request refused: missing or wrong CSRF token"
            );
            let response = AirlockError::Forbidden {
                code: "AirlockCsrfTokenInvalid",
                message: format!(
                    "this {} came with a session cookie but without the page's CSRF token in `{CSRF_HEADER}`; reload the page and try again (API clients send `Authorization: Bearer <token>` instead)",
                    request.method()
                ),
            }
            .into_response_for(&request);
            return Box::pin(async move { Ok(response) });
        }
        request.extensions_mut().insert(session.principal);
        request.extensions_mut().insert(session.browser);
        let signed_in = self.signed_in.clone();
        Box::pin(async move {
            let response = signed_in.oneshot(request).await?;
            Ok(response.map(airlock_core::boxed))
        })
    }
}
