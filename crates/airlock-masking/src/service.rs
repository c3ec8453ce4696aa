//! [`MaskingService`]: the per-request work of the masking layer.

use std::any::Any;
use std::sync::Arc;
use std::task::{Context, Poll};

use airlock_core::{
    AirlockBody, AirlockError, AuditDraft, BodyError, BoxError, BoxFuture, ErrorContext,
    MemoryBudget, Operation, Principal, REVEALED_HEADER, RevealGrant, Uncollected, collect_limited,
    full,
};
use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use tower::Service;

use crate::encoding::{Encoding, GunzipError, content_encoding, gunzip};
use crate::excerpt::{excerpt, request_excerpt};
use crate::layer::Shared;
use crate::media_type::{is_json, is_text};
use crate::reveal::{Revealing, difference};
use crate::{MaskContext, MaskOutcome};

pub use airlock_core::MASKED_HEADER;

/// The masking middleware; see [`MaskingLayer`](crate::MaskingLayer).
#[derive(Clone)]
pub struct MaskingService<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for MaskingService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskingService").finish_non_exhaustive()
    }
}

impl<S, ResBody> Service<Request<AirlockBody>> for MaskingService<S>
where
    S: Service<Request<AirlockBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<AirlockBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<AirlockBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        let context = ErrorContext::from_request(&request);
        let Some(operation) = request.extensions().get::<Operation>().cloned() else {
            // Classification is missing from the stack: refuse.
            tracing::error!(
                "masking: the request has no Operation; the classify layer must come before the masking layer"
            );
            let response = refuse(AirlockError::NotDecided, &context);
            return Box::pin(async move { Ok(response) });
        };
        let principal = request.extensions().get::<Principal>().cloned();
        let revealing = principal.as_ref().and_then(|principal| {
            match request.extensions().get::<RevealGrant>() {
                // An approved reveal: the rule it was asked under decides how much.
                Some(grant) => shared.reveal.granted(grant, principal, &operation),
                None => shared.reveal.by_rule(principal, &operation),
            }
        });
        Box::pin(async move {
            let must_mask = shared.masker.must_mask(&operation);
            let (mut parts, body) = request.into_parts();
            let draft = parts.extensions.get::<AuditDraft>().cloned();
            let head = parts.method == Method::HEAD;
            // Bodies must come back readable: no compression.
            parts.headers.remove(ACCEPT_ENCODING);
            parts
                .headers
                .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
            let body = match &draft {
                // Nobody records the request: pass its body on unread.
                None => body,
                Some(draft) => {
                    let bytes =
                        match collect_request(body, &parts.headers, shared.max_body_bytes).await {
                            Ok(bytes) => bytes,
                            Err(BodyError::TooLarge { limit }) => {
                                let error = AirlockError::PayloadTooLarge { limit };
                                return Ok(refuse(error, &context));
                            }
                            Err(BodyError::Read(error)) => {
                                let error = AirlockError::BadRequest {
                                    code: "InvalidRequestContent",
                                    message: format!("the request body could not be read: {error}"),
                                };
                                return Ok(refuse(error, &context));
                            }
                        };
                    let context = MaskContext::new(&operation)
                        .principal(principal.as_ref())
                        .content_type(header_str(&parts.headers, CONTENT_TYPE));
                    let copy =
                        request_excerpt(&*shared.masker, &context, &bytes, shared.excerpt_bytes);
                    draft.update(|record| record.request_excerpt = copy);
                    // The original bytes go upstream; only the copy is masked.
                    full(bytes)
                }
            };
            // Boxed here so the future's `Send` is checked where it is made.
            let forwarded: BoxFuture<'static, Result<Response<ResBody>, S::Error>> =
                Box::pin(inner.call(Request::from_parts(parts, body)));
            let response = forwarded.await?;
            let exchange = Exchange {
                shared: &shared,
                operation: &operation,
                principal: principal.as_ref(),
                must_mask,
                draft: draft.as_ref(),
                context: &context,
                revealing: revealing.as_ref(),
            };
            Ok(exchange.respond(response, head).await)
        })
    }
}

/// What one request's response is masked with.
struct Exchange<'a> {
    shared: &'a Shared,
    operation: &'a Operation,
    principal: Option<&'a Principal>,
    must_mask: bool,
    draft: Option<&'a AuditDraft>,
    context: &'a ErrorContext,
    /// A reveal rule or approval lets this answer through in clear.
    revealing: Option<&'a Revealing>,
}

impl Exchange<'_> {
    async fn respond<ResBody>(
        &self,
        mut response: Response<ResBody>,
        head: bool,
    ) -> Response<AirlockBody>
    where
        ResBody: Body<Data = Bytes> + Send + 'static,
        ResBody::Error: Into<BoxError>,
    {
        // Metadata headers come with every answer, bodies or not.
        let in_headers = crate::metadata::mask_metadata(response.headers_mut());
        let header_count = u32::try_from(in_headers.len()).unwrap_or(u32::MAX);
        if header_count > 0 {
            tracing::info!(masked = header_count, paths = ?in_headers, "response headers masked");
            response
                .headers_mut()
                .insert(MASKED_HEADER, HeaderValue::from(header_count));
            if let Some(draft) = self.draft {
                draft.update(|record| {
                    record.masked_count = record.masked_count.saturating_add(header_count);
                    record.masked_paths.extend(in_headers);
                });
            }
        }
        let status = response.status();
        if head
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || status.is_informational()
        {
            return response.map(AirlockBody::new);
        }
        let content_type = header_str(response.headers(), CONTENT_TYPE).map(str::to_owned);
        let content_type = content_type.as_deref();
        if !(self.must_mask || is_json(content_type) || is_text(content_type)) {
            // Binary content no rule covers: streamed through, never buffered.
            return response.map(AirlockBody::new);
        }
        let (mut parts, mut body) = response.into_parts();
        let limit = self.shared.max_body_bytes;
        let budget = &self.shared.budget;
        // An answer already in memory (the upstream read it to rewrite its
        // links) comes with its share: kept with the masked answer.
        let inherited = (&mut body as &mut dyn Any)
            .downcast_mut::<AirlockBody>()
            .filter(|body| body.buffered().is_some())
            .and_then(AirlockBody::take_hold);
        let (collected, mut share) = if inherited.is_some() {
            (
                collect_limited(body, &parts.headers, limit).await,
                MemoryBudget::empty(),
            )
        } else {
            match budget.collect(body, &parts.headers, limit).await {
                Ok((bytes, share)) => (Ok(bytes), share),
                Err(Uncollected::Body(error)) => (Err(error), MemoryBudget::empty()),
                Err(Uncollected::Busy) => {
                    return self.refuse(AirlockError::MemoryBusy {
                        budget: budget.bytes(),
                    });
                }
            }
        };
        let bytes = match collected {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge { .. }) => {
                return self.refuse(AirlockError::MaskingFailed(format!(
                    "it exceeds the {limit}-byte limit Airlock reads to mask responses, so its secrets could not be looked for; narrow the request (e.g. with $top) or raise the masking limit"
                )));
            }
            Err(BodyError::Read(error)) => {
                return self.refuse(AirlockError::UpstreamUnavailable(format!(
                    "the response body could not be read: {error}"
                )));
            }
        };
        let (bytes, decoded) = match content_encoding(&parts.headers) {
            Encoding::Identity => (bytes, false),
            Encoding::Gzip => match gunzip(&bytes, limit) {
                Ok(plain) if budget.grow(&mut share, (bytes.len() + plain.len()) as u64) => {
                    (Bytes::from(plain), true)
                }
                Ok(_) => {
                    return self.refuse(AirlockError::MemoryBusy {
                        budget: budget.bytes(),
                    });
                }
                Err(GunzipError::TooLarge) => {
                    return self.refuse(AirlockError::MaskingFailed(format!(
                        "it inflates beyond the {limit}-byte limit Airlock reads to mask responses"
                    )));
                }
                Err(GunzipError::Corrupt) => {
                    return self.refuse(AirlockError::MaskingFailed(
                        "it is marked Content-Encoding: gzip but is not valid gzip".into(),
                    ));
                }
            },
            Encoding::Unsupported(coding) => {
                return self.refuse(AirlockError::MaskingFailed(format!(
                    "it is encoded with '{coding}', which Airlock cannot decode (it asks Azure for 'identity'), so its secrets could not be looked for"
                )));
            }
        };
        let context = MaskContext::new(self.operation)
            .principal(self.principal)
            .content_type(content_type);
        let outcome = match self.shared.masker.mask(&context, &bytes) {
            Ok(outcome) => outcome,
            Err(error) => return self.refuse(AirlockError::MaskingFailed(error.to_string())),
        };
        // The record always keeps the fully masked body.
        let recorded = outcome.body.clone().unwrap_or_else(|| bytes.clone());
        let (sent, revealed) = match self.revealing {
            Some(revealing) if outcome.count > 0 => {
                match self.reveal(revealing, &context, &bytes, &outcome) {
                    Ok(sent) => sent,
                    Err(error) => {
                        return self.refuse(AirlockError::MaskingFailed(error.to_string()));
                    }
                }
            }
            _ => (outcome, Vec::new()),
        };
        let rewritten = sent.body.is_some() || decoded;
        let body = sent.body.unwrap_or(bytes);
        if rewritten {
            parts.headers.remove(CONTENT_LENGTH);
            parts.headers.remove(CONTENT_ENCODING);
        }
        parts.headers.insert(
            MASKED_HEADER,
            HeaderValue::from(sent.count.saturating_add(header_count)),
        );
        if let Some(metrics) = &self.shared.metrics {
            metrics.inspected(&sent.paths);
            metrics.revealed(revealed.len(), self.revealing);
        }
        if !revealed.is_empty() {
            parts
                .headers
                .insert(REVEALED_HEADER, HeaderValue::from(revealed.len()));
            let by = self.revealing.map(|r| r.by.as_str()).unwrap_or_default();
            tracing::warn!(revealed = revealed.len(), paths = ?revealed, by, "response revealed in clear");
        }
        if sent.count > 0 {
            tracing::info!(masked = sent.count, paths = ?sent.paths, "response masked");
        } else {
            tracing::debug!(masked = 0, "response inspected, nothing to mask");
        }
        if let Some(draft) = self.draft {
            let copy = excerpt(&recorded, self.shared.excerpt_bytes);
            let by = self
                .revealing
                .filter(|_| !revealed.is_empty())
                .map(|r| r.by.clone());
            draft.update(|record| {
                record.masked_count = record.masked_count.saturating_add(sent.count);
                record.masked_paths.extend(sent.paths);
                record.response_excerpt = Some(copy);
                record.revealed.extend(revealed);
                if by.is_some() {
                    record.revealed_by = by;
                }
            });
        }
        // The share is returned once the answer has been sent.
        Response::from_parts(parts, full(body).hold((inherited, share)))
    }

    /// What the client gets of an answer a reveal applies to, and where
    /// values were revealed: the original when the detectors' finds are
    /// revealed too, else the body masked once more leaving rule-selected
    /// values in clear.
    fn reveal(
        &self,
        revealing: &Revealing,
        context: &MaskContext<'_>,
        bytes: &Bytes,
        masked: &MaskOutcome,
    ) -> Result<(MaskOutcome, Vec<String>), crate::MaskError> {
        let sent = if revealing.detectors {
            MaskOutcome::unchanged()
        } else {
            self.shared.masker.mask(&context.revealing(true), bytes)?
        };
        let revealed = difference(&masked.paths, &sent.paths);
        Ok((sent, revealed))
    }

    fn refuse(&self, error: AirlockError) -> Response<AirlockBody> {
        if let (Some(metrics), AirlockError::MaskingFailed(_)) = (&self.shared.metrics, &error) {
            metrics.withheld();
        }
        refuse(error, self.context)
    }
}

/// Answers `error` in the ARM shape (the recorder reads its code from the
/// response's `x-ms-error-code`).
fn refuse(error: AirlockError, context: &ErrorContext) -> Response<AirlockBody> {
    tracing::warn!(code = error.code(), reason = %error, "masking refused the exchange");
    error.into_response(context)
}

/// Reads the request body. Boxed here, with its concrete type, so the
/// future's `Send` is checked where it is made (inside the `async` block it
/// trips a rustc limitation with the boxed body's trait-object lifetime).
fn collect_request(
    body: AirlockBody,
    headers: &HeaderMap,
    limit: u64,
) -> BoxFuture<'_, Result<Bytes, BodyError>> {
    Box::pin(collect_limited(body, headers, limit))
}

fn header_str(headers: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}
