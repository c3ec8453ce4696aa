//! Azure's error envelope, `{"error":{"code":…,"message":…}}`, shared by ARM
//! and Key Vault, and the errors the simulator answers with.

use http::header::{ALLOW, HeaderName, WWW_AUTHENTICATE};
use http::{Method, StatusCode};
use serde_json::json;

use crate::TENANT_ID;
use crate::reply::Reply;

/// An Azure error answer.
#[derive(Debug)]
pub(crate) struct ArmError {
    status: StatusCode,
    code: String,
    message: String,
    headers: Vec<(HeaderName, String)>,
}

impl ArmError {
    /// An error with an ARM code and message.
    pub(crate) fn new(
        status: StatusCode,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a response header.
    #[must_use]
    pub(crate) fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The error code, for logs.
    pub(crate) fn code(&self) -> &str {
        &self.code
    }

    /// The status.
    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    #[cfg(test)]
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The answer clients see.
    pub(crate) fn into_reply(self) -> Reply {
        let mut reply = Reply::json(
            self.status,
            json!({"error": {"code": self.code, "message": self.message}}),
        );
        for (name, value) in &self.headers {
            reply = reply.header(name.clone(), value);
        }
        reply
    }

    /// 400 `MissingApiVersionParameter`.
    pub(crate) fn missing_api_version() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    }

    /// 401 `AuthenticationFailed`: no `Authorization` header.
    pub(crate) fn missing_authorization() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        )
        .header(
            WWW_AUTHENTICATE,
            arm_challenge("The authentication failed because of missing 'Authorization' header."),
        )
    }

    /// 401 `AuthenticationFailed`: an `Authorization` header that is not `Bearer <token>`.
    pub(crate) fn malformed_authorization() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        )
        .header(
            WWW_AUTHENTICATE,
            arm_challenge(
                "The authentication failed because of invalid 'Authorization' header format.",
            ),
        )
    }

    /// 401 `InvalidAuthenticationToken`: a bearer token other than the expected one.
    pub(crate) fn invalid_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        )
        .header(
            WWW_AUTHENTICATE,
            arm_challenge("The access token is invalid."),
        )
    }

    /// ARM's 401 for a token that was refused.
    pub(crate) fn rejected_token(why: crate::issuer::TokenRejection) -> Self {
        use crate::issuer::TokenRejection;
        let (code, message) = match why {
            TokenRejection::Expired => (
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.",
            ),
            TokenRejection::WrongAudience => (
                "InvalidAuthenticationTokenAudience",
                "The access token has been obtained for wrong audience or resource. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'.",
            ),
            TokenRejection::Invalid => return Self::invalid_token(),
        };
        Self::new(StatusCode::UNAUTHORIZED, code, message)
            .header(WWW_AUTHENTICATE, arm_challenge(message))
    }

    /// 404 `SubscriptionNotFound`.
    pub(crate) fn subscription_not_found(subscription: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{subscription}' could not be found."),
        )
    }

    /// 404 `ResourceGroupNotFound`.
    pub(crate) fn resource_group_not_found(group: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            format!("Resource group '{group}' could not be found."),
        )
    }

    /// 404 `ResourceNotFound` for `Namespace/type/name` in `group`.
    pub(crate) fn resource_not_found(resource_type: &str, name: &str, group: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource '{resource_type}/{name}' under resource group '{group}' was not found. \
                 For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        )
    }

    /// 400 `InvalidRequestContent`: a body that does not parse.
    pub(crate) fn invalid_content(reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: '{reason}'."),
        )
    }

    /// 405 for a method the path does not support.
    pub(crate) fn method_not_allowed(method: &Method, allowed: &[Method]) -> Self {
        let allow: Vec<&str> = allowed.iter().map(Method::as_str).collect();
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("The requested resource does not support http method '{method}'."),
        )
        .header(ALLOW, allow.join(", "))
    }
}

/// The `WWW-Authenticate` value ARM sends with its 401s.
fn arm_challenge(description: &str) -> String {
    format!(
        "Bearer authorization_uri=\"https://login.windows.net/{TENANT_ID}\", error=\"invalid_token\", error_description=\"{description}\""
    )
}
