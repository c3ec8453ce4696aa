//! [`IdentityService`]: the per-request work of the identity layer.

use std::sync::Arc;
use std::task::{Context, Poll};

use airlock_core::{AirlockBody, AuditDraft, BoxError, BoxFuture};
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response};
use http_body::Body;
use tower::Service;

use crate::AuthError;
use crate::bearer::bearer_token;
use crate::layer::Shared;

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

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let audience = shared.validator.audience().unwrap_or("this gateway");
            let verified = match bearer_token(
                request.headers(),
                shared.validator.max_token_bytes(),
                audience,
            ) {
                Ok(token) => shared.validator.validate(token).await,
                Err(error) => Err(error),
            };
            match verified {
                Ok(principal) => {
                    // The client's credential stops here: nothing further in
                    // (or beyond) the stack sees it.
                    request.headers_mut().remove(AUTHORIZATION);
                    tracing::Span::current()
                        .record("principal", tracing::field::display(principal.id()));
                    if let Some(draft) = request.extensions().get::<AuditDraft>() {
                        draft.update(|record| record.principal = Some(principal.clone()));
                    }
                    request.extensions_mut().insert(principal);
                    let response = inner.call(request).await?;
                    Ok(response.map(AirlockBody::new))
                }
                Err(error) => {
                    tracing::info!(reason = %error, "request refused: token not accepted");
                    // A valid token whose groups are unknown: the refusal is
                    // still recorded against who sent it.
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
                    Ok(error
                        .into_airlock(&shared.challenge_for(host.as_deref()))
                        .into_response_for(&request))
                }
            }
        })
    }
}
