//! [`IdentityService`]: the per-request work of the identity layer.

use std::sync::Arc;
use std::task::{Context, Poll};

use airlock_core::{
    AirlockBody, AirlockError, AuditDraft, BoxError, BoxFuture, CallerToken, Principal,
};
use bytes::Bytes;
use http::header::{AUTHORIZATION, PROXY_AUTHORIZATION};
use http::{Method, Request, Response};
use http_body::Body;
use tower::Service;

use crate::AuthError;
use crate::bearer::bearer_token;
use crate::layer::Shared;
use crate::proxy::{self, ProxyAuthorization, TunnelToken};

/// The identity middleware; see [`IdentityLayer`](crate::IdentityLayer).
#[derive(Clone)]
pub struct IdentityService<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for IdentityService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService").finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Service<Request<B>> for IdentityService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<AirlockBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if let Some((principal, caller)) = self.known(&request) {
            // Admitted at once: the stack below (ready, see `poll_ready`)
            // is called now, not cloned to be called after a wait.
            let called = self.inner.call(admitted(request, principal, caller));
            return Box::pin(async move { Ok(called.await?.map(AirlockBody::new)) });
        }
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        if request.method() == Method::CONNECT
            && shared.proxy_authorization != ProxyAuthorization::Off
        {
            return Box::pin(connect(inner, shared, request));
        }
        Box::pin(async move {
            let audience = shared.validator.audience().unwrap_or("this gateway");
            // Inside a tunnel opened with Proxy-Authorization, its token
            // identifies every request.
            let tunnel = request.extensions().get::<TunnelToken>().cloned();
            // The caller's token, kept for an upstream identity that acts
            // on the caller's behalf, and only then.
            let keep = |token: &str| shared.keep_caller_token.then(|| CallerToken::new(token));
            let verified = match &tunnel {
                Some(token) => shared
                    .validator
                    .validate(token.as_str())
                    .await
                    .map(|principal| (principal, keep(token.as_str()))),
                None => match bearer_token(
                    request.headers(),
                    shared.validator.max_token_bytes(),
                    audience,
                ) {
                    Ok(token) => shared
                        .validator
                        .validate(token)
                        .await
                        .map(|principal| (principal, keep(token))),
                    Err(error) => Err(error),
                },
            };
            match verified {
                Ok((principal, caller)) => admit(inner, request, principal, caller).await,
                Err(error) => {
                    let error = refusal(error, &shared, &request);
                    let error = if tunnel.is_some() {
                        proxy::from_tunnel(error)
                    } else {
                        error
                    };
                    Ok(error.into_response_for(&request))
                }
            }
        })
    }
}

/// A `CONNECT`: identified by its `Proxy-Authorization` (407 when that is
/// wrong, or missing and required), or passed on unidentified.
async fn connect<S, B, ResBody>(
    mut inner: S,
    shared: Arc<Shared>,
    mut request: Request<B>,
) -> Result<Response<AirlockBody>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let audience = shared.validator.audience().unwrap_or("this gateway");
    let token = match proxy::proxy_token(request.headers(), shared.validator.max_token_bytes()) {
        Ok(Some(token)) => token,
        Ok(None) if shared.proxy_authorization == ProxyAuthorization::Optional => {
            return Ok(inner.call(request).await?.map(AirlockBody::new));
        }
        Ok(None) => return Ok(proxy::proxy_refusal(None, audience, &request)),
        Err(error) => return Ok(proxy::proxy_refusal(Some(&error), audience, &request)),
    };
    match shared.validator.validate(token.as_str()).await {
        Ok(principal) => {
            request.headers_mut().remove(PROXY_AUTHORIZATION);
            request.extensions_mut().insert(token);
            admit(inner, request, principal, None).await
        }
        Err(error @ (AuthError::GroupsUnresolved { .. } | AuthError::KeysUnavailable(_))) => {
            Ok(refusal(error, &shared, &request).into_response_for(&request))
        }
        Err(error) => {
            tracing::info!(reason = %error, "CONNECT refused: proxy token not accepted");
            Ok(proxy::proxy_refusal(Some(&error), audience, &request))
        }
    }
}

impl<S> IdentityService<S> {
    /// The principal of a request whose bearer token the validator knows
    /// without waiting, and the caller's token when it is kept. Not for a
    /// `CONNECT` or a request inside a tunnel (their tokens come from
    /// elsewhere), nor for a token that is not well-formed: those take the
    /// waiting path, which refuses them as it always did.
    fn known<B>(&self, request: &Request<B>) -> Option<(Principal, Option<CallerToken>)> {
        if request.method() == Method::CONNECT
            || request.extensions().get::<TunnelToken>().is_some()
        {
            return None;
        }
        let validator = &self.shared.validator;
        let token = bearer_token(request.headers(), validator.max_token_bytes(), "").ok()?;
        let principal = validator.known(token)?;
        let caller = self
            .shared
            .keep_caller_token
            .then(|| CallerToken::new(token));
        Some((principal, caller))
    }
}

/// Passes the request on as `principal`, its credential removed.
async fn admit<S, B, ResBody>(
    mut inner: S,
    request: Request<B>,
    principal: Principal,
    caller: Option<CallerToken>,
) -> Result<Response<AirlockBody>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let response = inner.call(admitted(request, principal, caller)).await?;
    Ok(response.map(AirlockBody::new))
}

/// `request` as `principal` sends it on: its credential removed, the
/// principal (and the caller's token, when kept) in its extensions, the
/// span and the audit draft told who it is.
fn admitted<B>(
    mut request: Request<B>,
    principal: Principal,
    caller: Option<CallerToken>,
) -> Request<B> {
    if let Some(caller) = caller {
        request.extensions_mut().insert(caller);
    }
    // The client's credential stops here: nothing further in (or beyond)
    // the stack sees it.
    request.headers_mut().remove(AUTHORIZATION);
    airlock_core::record_in_current_span("principal", &tracing::field::display(principal.id()));
    if let Some(draft) = request.extensions().get::<AuditDraft>() {
        draft.update(|record| record.principal = Some(principal.clone()));
    }
    request.extensions_mut().insert(principal);
    request
}

/// The error a refused token is answered with, its challenge naming the
/// resource for the request's host.
fn refusal<B>(error: AuthError, shared: &Shared, request: &Request<B>) -> AirlockError {
    tracing::info!(reason = %error, "request refused: token not accepted");
    // A valid token whose groups are unknown: the refusal is still recorded
    // against who sent it.
    if let AuthError::GroupsUnresolved { principal, .. } = &error
        && let Some(draft) = request.extensions().get::<AuditDraft>()
    {
        draft.update(|record| record.principal = Some((**principal).clone()));
    }
    let host = request
        .uri()
        .host()
        .map(str::to_owned)
        .or_else(|| {
            let host = request.headers().get(http::header::HOST)?.to_str().ok()?;
            Some(
                host.rsplit_once(':')
                    .map_or(host, |(name, _)| name)
                    .to_owned(),
            )
        })
        .map(|h| h.trim_end_matches('.').to_ascii_lowercase());
    error.into_airlock(&shared.challenge_for(host.as_deref()))
}
