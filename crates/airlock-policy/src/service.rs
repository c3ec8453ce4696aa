//! [`PolicyService`]: the per-request work of the policy layer.

use std::sync::Arc;
use std::task::{Context, Poll};

use airlock_core::{
    AirlockBody, AirlockError, AuditDraft, BoxError, Decision, Operation, Principal,
};
use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower::Service;

use crate::PolicyEngine;
use crate::future::ResponseFuture;

/// The policy middleware; see [`PolicyLayer`](crate::PolicyLayer).
#[derive(Clone)]
pub struct PolicyService<S> {
    pub(crate) inner: S,
    pub(crate) engine: Arc<dyn PolicyEngine>,
}

impl<S> std::fmt::Debug for PolicyService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyService").finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Service<Request<B>> for PolicyService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<AirlockBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let extensions = request.extensions();
        let (Some(principal), Some(operation)) =
            (extensions.get::<Principal>(), extensions.get::<Operation>())
        else {
            // Identity or classification is missing from the stack: refuse.
            tracing::error!(
                "policy: the request has no Principal or Operation; the identity and classify layers must come first"
            );
            return ResponseFuture::refused(AirlockError::NotDecided.into_response_for(&request));
        };
        let decision = self.engine.decide(principal, operation);
        let would_have = self.engine.observed(principal, operation, &decision);
        if let Some(would) = &would_have {
            tracing::info!(
                operation = %operation,
                rule = would.rule(),
                decided = decision.rule(),
                "observe mode: a rule would have refused or held this request; it goes on as decided"
            );
        }
        if let Some(draft) = extensions.get::<AuditDraft>() {
            draft.update(|record| {
                record.decision = Some(decision.clone());
                record.would_have = would_have;
            });
        }
        airlock_core::record_in_current_span("rule", &decision.rule());
        // Only a denial needs its text: allowed requests pay for no formatting.
        let denial = match &decision {
            Decision::Deny { reason, .. } => {
                tracing::info!(operation = %operation, rule = decision.rule(), "request denied by policy");
                Some(AirlockError::PolicyDenied {
                    reason: reason.clone(),
                })
            }
            _ => None,
        };
        request.extensions_mut().insert(decision);
        if let Some(error) = denial {
            return ResponseFuture::refused(error.into_response_for(&request));
        }
        ResponseFuture::inner(self.inner.call(request))
    }
}
