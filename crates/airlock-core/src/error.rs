//! The one mapping from Airlock's errors to ARM-shaped HTTP responses.
//!
//! Azure SDKs and the Azure CLI print ARM error envelopes well, and an agent
//! can act on the machine-readable `airlock` object:
//!
//! ```json
//! {"error": {"code": "AirlockUpstreamTimeout",
//!            "message": "Azure did not answer within 30s; ...",
//!            "airlock": {"requestId": "...", "operation": null, "rule": null,
//!                        "approvalId": null, "retryable": true}}}
//! ```
//!
//! No Airlock error carries `Retry-After`: Azure SDKs retry any error that
//! does, which would turn a denial into a retry loop.

use std::time::Duration;

use http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{HeaderMap, Request, Response, StatusCode};
use serde_json::json;

use crate::{AirlockBody, Decision, Operation, full};

/// The header that carries Airlock's request id, on requests and responses.
pub const REQUEST_ID_HEADER: &str = "x-airlock-request-id";

/// [`REQUEST_ID_HEADER`] as a `HeaderName`, for lookups on every request: a
/// name given as text is parsed again on each one.
pub const REQUEST_ID: http::HeaderName = http::HeaderName::from_static(REQUEST_ID_HEADER);

/// The header Azure, and Airlock, name an error's code in.
pub const ERROR_CODE: http::HeaderName = http::HeaderName::from_static("x-ms-error-code");

/// Everything Airlock itself refuses or fails with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AirlockError {
    /// The request is malformed or ambiguous.
    #[error("{message}")]
    BadRequest {
        /// ARM-style error code, e.g. `InvalidRequestUri`.
        code: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Nothing here has that name, or the caller may not see it.
    #[error("{message}")]
    NotFound {
        /// ARM-style error code, e.g. `AirlockApprovalNotFound`.
        code: &'static str,
        /// What was not found.
        message: String,
    },
    /// The caller is known but may not do this (outside policy decisions).
    #[error("{message}")]
    Forbidden {
        /// ARM-style error code, e.g. `AirlockSelfApproval`.
        code: &'static str,
        /// Why, and what would be allowed.
        message: String,
    },
    /// The request conflicts with the current state of what it acts on.
    #[error("{message}")]
    Conflict {
        /// ARM-style error code, e.g. `AirlockApprovalNotPending`.
        code: &'static str,
        /// What the state is.
        message: String,
    },
    /// The caller could not be authenticated.
    #[error("{description}")]
    Unauthenticated {
        /// RFC 6750 error code (`invalid_token`, or `None` when no token was sent).
        oauth_error: Option<&'static str>,
        /// Why, never echoing the token.
        description: String,
        /// The `WWW-Authenticate` challenge parameters (`authorization_uri`, `resource`, …).
        challenge: Vec<(String, String)>,
    },
    /// Policy denied the request.
    #[error("{reason}")]
    PolicyDenied {
        /// Why, naming the operation and the rule.
        reason: String,
    },
    /// The rule asks for a justification and the request carries none.
    #[error(
        "{operation} needs a justification by rule '{rule}': add the header `x-airlock-justification: <why>` to the request, saying why it is needed, and send it again"
    )]
    JustificationRequired {
        /// The operation.
        operation: String,
        /// The rule asking for the justification.
        rule: String,
    },
    /// An approver denied the approval the request waited for.
    #[error("approval {approval_id} was denied by {approver}: {}", reason.as_deref().unwrap_or("no reason given"))]
    ApprovalDenied {
        /// The approval request.
        approval_id: String,
        /// Who denied it.
        approver: String,
        /// Why, if the approver said.
        reason: Option<String>,
    },
    /// The request needs approval, and none was given while it was held.
    ///
    /// Retryable, but answered without `Retry-After`: the agent retries the
    /// same request once a human approved it, not on an SDK's timer.
    #[error(
        "approval {approval_id} is pending; send the same request again once it is approved{}",
        status_url.as_deref().map(|u| format!(" (check it at {u})")).unwrap_or_default()
    )]
    ApprovalPending {
        /// The approval request.
        approval_id: String,
        /// Where its state can be checked, if the gateway publishes one.
        status_url: Option<String>,
    },
    /// Policy requires approval, and no approval layer is in the stack.
    #[error(
        "{operation} needs approval by rule '{rule}', and approvals are not enabled in this gateway; ask the Airlock operator"
    )]
    ApprovalUnavailable {
        /// The operation.
        operation: String,
        /// The rule asking for approval.
        rule: String,
    },
    /// The token is valid but the principal's groups could not be determined
    /// (group overage with no resolver, or the resolver failed): Airlock
    /// refuses rather than decide on an empty group list.
    #[error("{0}")]
    GroupsUnresolved(String),
    /// Airlock has no signing keys to verify tokens with (the identity provider
    /// has been unreachable since start).
    #[error("Airlock cannot verify tokens right now: {0}")]
    IdentityUnavailable(String),
    /// The request targets a host Airlock does not forward to.
    #[error(
        "host '{host}' is not an allowed upstream; Airlock forwards only to the configured ARM endpoint, Key Vault vaults and storage accounts (add the vault to [upstream.key_vault].vaults, or the account to [upstream.storage].accounts, to allow it)"
    )]
    HostNotAllowed {
        /// The host that was asked for.
        host: String,
    },
    /// No policy decision allows the request: a layer is missing or misordered.
    #[error(
        "no policy decision allows this request; Airlock refuses what it has not decided (fail closed)"
    )]
    NotDecided,
    /// The request body is larger than allowed.
    #[error(
        "request body exceeds the limit of {limit} bytes; send a smaller body or raise [limits].max_request_body"
    )]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The client took too long to send its request.
    #[error("the request was not received within {0:?}; retry the request")]
    RequestTimeout(Duration),
    /// Azure did not answer in time.
    #[error(
        "Azure did not answer within {0:?}; the operation may still complete, check its state before retrying"
    )]
    UpstreamTimeout(Duration),
    /// Azure could not be reached or answered with a broken response.
    #[error("Azure could not be reached: {0}")]
    UpstreamUnavailable(String),
    /// Azure's response was too large to inspect.
    #[error(
        "Azure's response exceeds the {limit}-byte limit Airlock inspects; narrow the request (e.g. $top) or raise [limits].max_response_rewrite_bytes"
    )]
    UpstreamResponseTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// A response that must be masked could not be (unparseable, too large,
    /// compressed in a way Airlock cannot read): it is withheld, not passed on.
    #[error("Azure's response could not be masked, so it is withheld: {0}")]
    MaskingFailed(String),
    /// Answers read whole (to rewrite links, to mask) already use all the
    /// memory allowed for them at once, and this answer (of undeclared
    /// length) cannot wait for a share without risking a deadlock: retry.
    #[error(
        "Airlock reads Azure's answers whole (to rewrite their links and mask their secrets) within {budget} bytes of memory at once, and that budget is in use; retry shortly, or ask for less (e.g. with $top). The operator can raise [masking].max_buffered_bytes"
    )]
    MemoryBusy {
        /// The budget in bytes.
        budget: u64,
    },
    /// The gateway could not obtain its own Azure credential.
    #[error("Airlock could not obtain its Azure credential: {0}")]
    UpstreamCredential(String),
    /// The audit trail cannot take the request's event (the sink is failing,
    /// the audit queue is full, or the recorder has shut down), and audit is
    /// fail-closed: Airlock refuses rather than act unrecorded.
    #[error(
        "Airlock cannot record requests right now ({0}), so it refuses them rather than act unaudited; retry later. The Airlock operator must fix the audit sink"
    )]
    AuditUnavailable(String),
    /// Something inside Airlock failed.
    #[error("internal error in Airlock: {0}")]
    Internal(String),
    /// A refusal of a layer outside Airlock, with its own status and code,
    /// answered in the same envelope: see [`AirlockError::custom`].
    #[error("{message}")]
    Custom {
        /// The HTTP status.
        status: StatusCode,
        /// The ARM-style error code.
        code: String,
        /// What happened, and what to do about it.
        message: String,
        /// Whether the same request may succeed if sent again unchanged.
        retryable: bool,
    },
}

impl AirlockError {
    /// A refusal of your own layer, in Airlock's ARM-shaped envelope, so
    /// Azure SDKs and agents read it like every other Airlock answer. Not
    /// retryable; say [`retryable`](Self::retryable) otherwise with
    /// [`AirlockError::Custom`] directly.
    ///
    /// ```
    /// use airlock_core::{AirlockError, ErrorContext};
    /// use http::StatusCode;
    ///
    /// let error = AirlockError::custom(
    ///     StatusCode::TOO_MANY_REQUESTS,
    ///     "ContosoQuotaExceeded",
    ///     "this agent used its 100 writes for today; ask the platform team for more",
    /// );
    /// let response = error.into_response(&ErrorContext::default());
    /// assert_eq!(response.status(), 429);
    /// assert_eq!(response.headers()["x-ms-error-code"], "ContosoQuotaExceeded");
    /// ```
    pub fn custom(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        AirlockError::Custom {
            status,
            code: code.into(),
            message: message.into(),
            retryable: false,
        }
    }

    /// The ARM-shaped response to `request`: its request id, and the
    /// operation and rule its extensions carry, fill the `airlock` object.
    /// Every Airlock layer refuses through this.
    pub fn into_response_for<B>(self, request: &Request<B>) -> Response<AirlockBody> {
        self.into_response(&ErrorContext::from_request(request))
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            AirlockError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AirlockError::NotFound { .. } => StatusCode::NOT_FOUND,
            AirlockError::Conflict { .. } => StatusCode::CONFLICT,
            AirlockError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            AirlockError::HostNotAllowed { .. }
            | AirlockError::Forbidden { .. }
            | AirlockError::NotDecided
            | AirlockError::GroupsUnresolved(_)
            | AirlockError::PolicyDenied { .. }
            | AirlockError::ApprovalDenied { .. }
            | AirlockError::ApprovalPending { .. }
            | AirlockError::ApprovalUnavailable { .. } => StatusCode::FORBIDDEN,
            AirlockError::JustificationRequired { .. } => StatusCode::PRECONDITION_REQUIRED,
            AirlockError::IdentityUnavailable(_)
            | AirlockError::AuditUnavailable(_)
            | AirlockError::MemoryBusy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AirlockError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AirlockError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            AirlockError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            AirlockError::UpstreamUnavailable(_)
            | AirlockError::MaskingFailed(_)
            | AirlockError::UpstreamCredential(_)
            | AirlockError::UpstreamResponseTooLarge { .. } => StatusCode::BAD_GATEWAY,
            AirlockError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AirlockError::Custom { status, .. } => *status,
        }
    }

    /// The ARM-style error code.
    pub fn code(&self) -> &str {
        match self {
            AirlockError::BadRequest { code, .. }
            | AirlockError::NotFound { code, .. }
            | AirlockError::Forbidden { code, .. }
            | AirlockError::Conflict { code, .. } => code,
            AirlockError::Unauthenticated { .. } => "AirlockUnauthenticated",
            AirlockError::GroupsUnresolved(_) => "AirlockGroupsUnresolved",
            AirlockError::PolicyDenied { .. } => "AirlockPolicyDenied",
            AirlockError::ApprovalUnavailable { .. } => "AirlockApprovalUnavailable",
            AirlockError::JustificationRequired { .. } => "AirlockJustificationRequired",
            AirlockError::ApprovalDenied { .. } => "AirlockApprovalDenied",
            AirlockError::ApprovalPending { .. } => "AirlockApprovalPending",
            AirlockError::IdentityUnavailable(_) => "AirlockIdentityUnavailable",
            AirlockError::AuditUnavailable(_) => "AirlockAuditUnavailable",
            AirlockError::HostNotAllowed { .. } => "AirlockHostNotAllowed",
            AirlockError::NotDecided => "AirlockNotDecided",
            AirlockError::PayloadTooLarge { .. } => "AirlockRequestTooLarge",
            AirlockError::RequestTimeout(_) => "AirlockRequestTimeout",
            AirlockError::UpstreamTimeout(_) => "AirlockUpstreamTimeout",
            AirlockError::UpstreamUnavailable(_) => "AirlockUpstreamUnavailable",
            AirlockError::UpstreamCredential(_) => "AirlockUpstreamCredentialFailed",
            AirlockError::MaskingFailed(_) => "AirlockMaskingFailed",
            AirlockError::MemoryBusy { .. } => "AirlockMemoryBusy",
            AirlockError::UpstreamResponseTooLarge { .. } => "AirlockUpstreamResponseTooLarge",
            AirlockError::Internal(_) => "AirlockInternalError",
            AirlockError::Custom { code, .. } => code,
        }
    }

    /// Whether the same request may succeed if sent again unchanged.
    pub fn retryable(&self) -> bool {
        if let AirlockError::Custom { retryable, .. } = self {
            return *retryable;
        }
        matches!(
            self,
            AirlockError::RequestTimeout(_)
                | AirlockError::IdentityUnavailable(_)
                | AirlockError::AuditUnavailable(_)
                | AirlockError::MemoryBusy { .. }
                | AirlockError::UpstreamTimeout(_)
                | AirlockError::UpstreamUnavailable(_)
                | AirlockError::UpstreamCredential(_)
                | AirlockError::ApprovalPending { .. }
        )
    }

    /// Turns the error into the ARM-shaped response clients see, marked
    /// [`AnsweredByAirlock`].
    pub fn into_response(self, ctx: &ErrorContext) -> Response<AirlockBody> {
        let approval_id = match &self {
            AirlockError::ApprovalDenied { approval_id, .. }
            | AirlockError::ApprovalPending { approval_id, .. } => Some(approval_id.as_str()),
            _ => None,
        }
        .or(ctx.approval_id.as_deref());
        let body = json!({
            "error": {
                "code": self.code(),
                "message": self.to_string(),
                "airlock": {
                    "requestId": ctx.request_id_text(),
                    "operation": ctx.operation.as_ref().map(OperationName::as_str),
                    "rule": ctx.rule,
                    "approvalId": approval_id,
                    "retryable": self.retryable(),
                }
            }
        });
        let mut response = Response::new(full(body.to_string()));
        *response.status_mut() = self.status();
        response.extensions_mut().insert(AnsweredByAirlock);
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if let Ok(code) = HeaderValue::from_str(self.code()) {
            headers.insert(ERROR_CODE, code);
        }
        if let Some(id) = &ctx.request_id {
            headers.insert(REQUEST_ID, id.clone());
        }
        if let AirlockError::Unauthenticated {
            oauth_error,
            description,
            challenge,
        } = &self
        {
            headers.insert(
                WWW_AUTHENTICATE,
                bearer_challenge(*oauth_error, description, challenge),
            );
        }
        response
    }
}

/// `Bearer k="v", …` with quotes and backslashes escaped (RFC 7235 quoted-string).
fn bearer_challenge(
    oauth_error: Option<&str>,
    description: &str,
    challenge: &[(String, String)],
) -> HeaderValue {
    let mut params: Vec<(&str, &str)> = challenge
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Some(error) = oauth_error {
        params.push(("error", error));
        params.push(("error_description", description));
    }
    let rendered: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            let v: String = v.chars().filter(|c| !c.is_control()).collect();
            format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
        })
        .collect();
    let value = if rendered.is_empty() {
        "Bearer".to_owned()
    } else {
        format!("Bearer {}", rendered.join(", "))
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// What Airlock knows about the request an error answers, for the `airlock` object.
///
/// Cheap to build, as every layer builds one per request in case it must
/// answer with an error: the request id is the header's own (shared) value
/// and the operation a handle to the request's [`Operation`].
#[derive(Clone, Debug, Default)]
pub struct ErrorContext {
    request_id: Option<HeaderValue>,
    operation: Option<OperationName>,
    rule: Option<String>,
    approval_id: Option<String>,
}

/// The operation an error names: the request's, or one given by name.
#[derive(Clone, Debug)]
enum OperationName {
    Of(Operation),
    Named(String),
}

impl OperationName {
    fn as_str(&self) -> &str {
        match self {
            Self::Of(operation) => operation.name(),
            Self::Named(name) => name,
        }
    }
}

impl ErrorContext {
    /// Reads the request id header and the [`Operation`] and [`Decision`] extensions.
    pub fn from_request<B>(request: &Request<B>) -> Self {
        let mut ctx = Self::from_headers(request.headers());
        let ext = request.extensions();
        ctx.operation = ext.get::<Operation>().cloned().map(OperationName::Of);
        ctx.rule = ext.get::<Decision>().map(|d| d.rule().to_owned());
        ctx
    }
    /// Reads only the request id header (when it is visible ASCII).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let request_id = headers
            .get(REQUEST_ID)
            .filter(|v| v.to_str().is_ok())
            .cloned();
        Self {
            request_id,
            ..Self::default()
        }
    }
    /// Sets the request id (ignored unless it is visible ASCII, as a header
    /// must be).
    #[must_use]
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = HeaderValue::try_from(id.into())
            .ok()
            .filter(|v| v.to_str().is_ok());
        self
    }
    /// Sets the operation name.
    #[must_use]
    pub fn operation(mut self, name: impl Into<String>) -> Self {
        self.operation = Some(OperationName::Named(name.into()));
        self
    }
    /// Sets the rule.
    #[must_use]
    pub fn rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }
    /// Sets the approval id.
    #[must_use]
    pub fn approval_id(mut self, id: impl Into<String>) -> Self {
        self.approval_id = Some(id.into());
        self
    }
    /// The request id, as text.
    fn request_id_text(&self) -> Option<&str> {
        self.request_id.as_ref().and_then(|v| v.to_str().ok())
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;
    use crate::{Plane, ResourceScope};

    async fn json_body(response: Response<AirlockBody>) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn arm_envelope_with_airlock_details() {
        let request = Request::builder()
            .header(REQUEST_ID_HEADER, "rid-7")
            .extension(Operation::new(
                "Microsoft.Compute/virtualMachines/delete",
                Plane::Management,
                ResourceScope::new("/s"),
            ))
            .extension(Decision::Deny {
                rule: "no-vm-delete".into(),
                reason: "no".into(),
            })
            .body(())
            .unwrap();
        let response =
            AirlockError::NotDecided.into_response(&ErrorContext::from_request(&request));
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "rid-7");
        assert_eq!(response.headers()["x-ms-error-code"], "AirlockNotDecided");
        assert!(response.headers().get("retry-after").is_none());
        let body = json_body(response).await;
        assert_eq!(body["error"]["code"], "AirlockNotDecided");
        assert_eq!(body["error"]["airlock"]["requestId"], "rid-7");
        assert_eq!(
            body["error"]["airlock"]["operation"],
            "Microsoft.Compute/virtualMachines/delete"
        );
        assert_eq!(body["error"]["airlock"]["rule"], "no-vm-delete");
        assert_eq!(body["error"]["airlock"]["retryable"], false);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("fail closed")
        );
    }

    #[tokio::test]
    async fn statuses_and_retryability() {
        let cases: Vec<(AirlockError, u16, bool)> = vec![
            (
                AirlockError::BadRequest {
                    code: "InvalidRequestUri",
                    message: "x".into(),
                },
                400,
                false,
            ),
            (
                AirlockError::HostNotAllowed { host: "h".into() },
                403,
                false,
            ),
            (
                AirlockError::NotFound {
                    code: "AirlockApprovalNotFound",
                    message: "x".into(),
                },
                404,
                false,
            ),
            (
                AirlockError::Forbidden {
                    code: "AirlockSelfApproval",
                    message: "x".into(),
                },
                403,
                false,
            ),
            (
                AirlockError::Conflict {
                    code: "AirlockApprovalNotPending",
                    message: "x".into(),
                },
                409,
                false,
            ),
            (AirlockError::PayloadTooLarge { limit: 10 }, 413, false),
            (AirlockError::MemoryBusy { budget: 10 }, 503, true),
            (
                AirlockError::RequestTimeout(Duration::from_secs(1)),
                408,
                true,
            ),
            (
                AirlockError::UpstreamTimeout(Duration::from_secs(1)),
                504,
                true,
            ),
            (
                AirlockError::UpstreamUnavailable("refused".into()),
                502,
                true,
            ),
            (
                AirlockError::AuditUnavailable("the audit sink is failing".into()),
                503,
                true,
            ),
            (AirlockError::Internal("bug".into()), 500, false),
        ];
        for (error, status, retryable) in cases {
            assert_eq!(error.retryable(), retryable, "{error:?}");
            let response = error.into_response(&ErrorContext::default());
            assert_eq!(response.status().as_u16(), status);
            assert!(response.headers().get(REQUEST_ID_HEADER).is_none());
        }
    }

    #[tokio::test]
    async fn audit_unavailable_names_the_problem_and_the_fix() {
        let error = AirlockError::AuditUnavailable("the audit sink is failing".into());
        let response = error.into_response(&ErrorContext::default());
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()["x-ms-error-code"],
            "AirlockAuditUnavailable"
        );
        assert!(response.headers().get("retry-after").is_none());
        let body = json_body(response).await;
        assert_eq!(body["error"]["code"], "AirlockAuditUnavailable");
        assert_eq!(body["error"]["airlock"]["retryable"], true);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("the audit sink is failing"), "{message}");
        assert!(
            message.contains("operator must fix the audit sink"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn approval_errors_name_the_approval_and_never_ask_for_retry_after() {
        let pending = AirlockError::ApprovalPending {
            approval_id: "a-1".into(),
            status_url: Some("https://gw/api/approvals/a-1".into()),
        };
        assert_eq!(pending.status(), StatusCode::FORBIDDEN);
        assert!(pending.retryable());
        let response = pending.into_response(&ErrorContext::default());
        assert!(response.headers().get("retry-after").is_none());
        assert_eq!(
            response.headers()["x-ms-error-code"],
            "AirlockApprovalPending"
        );
        let body = json_body(response).await;
        assert_eq!(body["error"]["airlock"]["approvalId"], "a-1");
        assert_eq!(body["error"]["airlock"]["retryable"], true);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("a-1 is pending"), "{message}");
        assert!(
            message.contains("https://gw/api/approvals/a-1"),
            "{message}"
        );

        let denied = AirlockError::ApprovalDenied {
            approval_id: "a-2".into(),
            approver: "alice".into(),
            reason: Some("not today".into()),
        };
        assert_eq!(denied.status(), StatusCode::FORBIDDEN);
        assert!(!denied.retryable());
        let response = denied.into_response(&ErrorContext::default());
        assert!(response.headers().get("retry-after").is_none());
        let body = json_body(response).await;
        assert_eq!(body["error"]["code"], "AirlockApprovalDenied");
        assert_eq!(body["error"]["airlock"]["approvalId"], "a-2");
        assert_eq!(
            body["error"]["message"],
            "approval a-2 was denied by alice: not today"
        );
        let no_reason = AirlockError::ApprovalDenied {
            approval_id: "a-3".into(),
            approver: "bob".into(),
            reason: None,
        };
        assert!(no_reason.to_string().ends_with("no reason given"));
    }

    #[tokio::test]
    async fn missing_justification_is_428_naming_the_header() {
        let error = AirlockError::JustificationRequired {
            operation: "Microsoft.Storage/storageAccounts/write".into(),
            rule: "storage-needs-approval".into(),
        };
        assert_eq!(error.status().as_u16(), 428);
        assert!(!error.retryable());
        let response = error.into_response(&ErrorContext::default());
        assert!(response.headers().get("retry-after").is_none());
        let body = json_body(response).await;
        assert_eq!(body["error"]["code"], "AirlockJustificationRequired");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("x-airlock-justification: <why>")
        );
    }

    #[test]
    fn challenge_escapes_quotes_and_drops_control_characters() {
        let value = bearer_challenge(
            Some("invalid_token"),
            "bad \"aud\"\r\n",
            &[("authorization_uri".into(), "https://login.example/t".into())],
        );
        assert_eq!(
            value.to_str().unwrap(),
            r#"Bearer authorization_uri="https://login.example/t", error="invalid_token", error_description="bad \"aud\"""#
        );
        assert_eq!(bearer_challenge(None, "", &[]).to_str().unwrap(), "Bearer");
    }
}

/// In the extensions of a response that Airlock gave instead of Azure's
/// answer to this request: every [`AirlockError`] response (a refusal, a
/// request held for approval or denied, an answer held, Azure unreachable)
/// and an approval's `202 Accepted` (the request runs later, as its own
/// request). Layers above read it to tell uses apart: the quota layer gives
/// back what it counted for a request that got no answer from Azure.
/// Extensions never cross the wire, so no upstream can forge it.
///
/// ```
/// use airlock_core::{AirlockError, AnsweredByAirlock, ErrorContext};
/// let refused = AirlockError::NotDecided.into_response(&ErrorContext::default());
/// assert!(refused.extensions().get::<AnsweredByAirlock>().is_some());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnsweredByAirlock;
