//! [`RevealLayer`]: turns `x-airlock-reveal: <why>` into an approval of
//! that one answer, or refuses it.

use std::sync::Arc;
use std::task::{Context, Poll};

use airlock_core::{
    AirlockBody, AirlockError, ApprovalWait, AuditDraft, BoxError, BoxFuture, Decision, Operation,
    Principal, REVEAL_HEADER, RevealAsked,
};
use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower::{Layer, Service};

use crate::reveal::RevealRules;

/// Reads the reveal request header ([`REVEAL_HEADER`]) after policy and
/// before approval; get it from [`MaskingLayer::reveal_layer`](crate::MaskingLayer::reveal_layer),
/// which shares the layer's reveal rules.
///
/// For a request that carries the header:
///
/// - an empty justification is refused (`400 AirlockRevealJustificationMissing`);
/// - a reveal rule that reveals the answer by itself: nothing to do;
/// - policy allowed it and a `by_approval` reveal rule covers it: its
///   decision becomes that rule's approval (held, justification required,
///   the header's text as justification) and [`RevealAsked`] marks it, so
///   the approval layer opens an approval *of the reveal*, whose grant lets
///   the masking layer send this one answer in clear;
/// - policy (or a quota) already holds it for approval and a `by_approval`
///   reveal rule covers it: the decision stays the operation's (its wait,
///   hold and elevation) and [`RevealAsked`] carries the reveal rule's
///   approvers as a [`RevealQuorum`](airlock_core::RevealQuorum): the one
///   approval the agent waits for needs both the operation's approvers and
///   the reveal's;
/// - no reveal rule covers it: refused (`403 AirlockRevealNotAllowed`).
///
/// Requests without the header pass untouched (Azure never sees the
/// header: the upstream drops every `x-airlock-*` header).
#[derive(Clone, Debug)]
pub struct RevealLayer {
    pub(crate) rules: Arc<RevealRules>,
}

impl<S> Layer<S> for RevealLayer {
    type Service = RevealService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RevealService {
            inner,
            rules: self.rules.clone(),
        }
    }
}

/// The reveal step; see [`RevealLayer`].
#[derive(Clone, Debug)]
pub struct RevealService<S> {
    inner: S,
    rules: Arc<RevealRules>,
}

impl<S, ResBody> Service<Request<AirlockBody>> for RevealService<S>
where
    S: Service<Request<AirlockBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<AirlockBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<AirlockBody>) -> Self::Future {
        if let Err(error) = self.ask(&mut request) {
            tracing::warn!(code = error.code(), reason = %error, "reveal refused");
            let response = error.into_response_for(&request);
            return Box::pin(async move { Ok(response) });
        }
        let called = self.inner.call(request);
        Box::pin(async move { called.await.map(|r| r.map(AirlockBody::new)) })
    }
}

impl<S> RevealService<S> {
    /// Turns the header into an approval of the reveal, or refuses it.
    fn ask(&self, request: &mut Request<AirlockBody>) -> Result<(), AirlockError> {
        const REVEAL: http::HeaderName = http::HeaderName::from_static(REVEAL_HEADER);
        let Some(value) = request.headers().get(REVEAL) else {
            return Ok(());
        };
        let justification = value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .ok_or_else(|| AirlockError::BadRequest {
                code: "AirlockRevealJustificationMissing",
                message: format!(
                    "{REVEAL_HEADER} must say, in printable text, why the value is needed in clear: `{REVEAL_HEADER}: <why>`"
                ),
            })?
            .to_owned();
        let extensions = request.extensions();
        let (Some(principal), Some(operation)) =
            (extensions.get::<Principal>(), extensions.get::<Operation>())
        else {
            // Nothing to reveal to: later layers refuse the request.
            return Ok(());
        };
        if self.rules.by_rule(principal, operation).is_some() {
            return Ok(());
        }
        let not_allowed = |why: String| AirlockError::Forbidden {
            code: "AirlockRevealNotAllowed",
            message: format!(
                "the answer of {operation} cannot be revealed to {principal}: {why}. Send the request without {REVEAL_HEADER} to get it masked"
            ),
        };
        // The operation's own approval, when policy (or a quota) asks for one.
        let operation_approval = match extensions.get::<Decision>() {
            Some(Decision::Allow { .. }) => None,
            Some(held @ Decision::RequireApproval { .. }) => Some(held.clone()),
            // Denied (answered by policy) or undecided (refused further in).
            _ => return Ok(()),
        };
        let rule = self.rules.by_approval(principal, operation).ok_or_else(|| {
            not_allowed(
                "no [[masking.reveal]] rule names this principal for it; an operator can add one (by_approval to have a human agree each time)"
                    .to_owned(),
            )
        })?;
        if let Some(mut decision) = operation_approval {
            // One approval, two quorums: the operation's decision stands,
            // but held: an approval answered as an operation to poll keeps
            // its answer in the store, where a clear one must never go.
            if let Decision::RequireApproval { wait, .. } = &mut decision {
                *wait = ApprovalWait::Hold;
            }
            tracing::info!(operation = %operation, rule = %rule.name(), "reveal asked of an operation held for approval: one approval needs both quorums");
            if let Some(draft) = extensions.get::<AuditDraft>() {
                draft.update(|record| record.decision = Some(decision.clone()));
            }
            let quorum = rule.quorum();
            let extensions = request.extensions_mut();
            extensions.insert(decision);
            extensions.insert(RevealAsked {
                justification,
                quorum,
            });
            return Ok(());
        }
        let Some(decision) = rule.approval_decision() else {
            return Err(not_allowed(format!(
                "reveal rule '{}' asks for no approval",
                rule.name()
            )));
        };
        tracing::info!(operation = %operation, rule = decision.rule(), "reveal asked: held for approval");
        if let Some(draft) = extensions.get::<AuditDraft>() {
            draft.update(|record| record.decision = Some(decision.clone()));
        }
        let extensions = request.extensions_mut();
        extensions.insert(decision);
        extensions.insert(RevealAsked {
            justification,
            quorum: None,
        });
        Ok(())
    }
}
