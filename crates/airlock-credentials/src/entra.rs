//! Entra's v2.0 token endpoint, as the client-credentials sources ask it.

use std::time::{Duration, SystemTime};

use airlock_core::{AccessToken, HttpClient};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use serde::Deserialize;

use crate::form;
use crate::{FetchedToken, SourceError};

/// `{authority}/{tenant}/oauth2/v2.0/token`.
pub(crate) fn token_url(authority_host: &str, tenant_id: &str) -> String {
    format!(
        "{}/{tenant_id}/oauth2/v2.0/token",
        authority_host.trim_end_matches('/')
    )
}

/// `{audience}/.default`.
pub(crate) fn scope(audience: &str) -> String {
    format!("{}/.default", audience.trim_end_matches('/'))
}

/// Entra's token answer.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<Number>,
    refresh_in: Option<Number>,
}

/// Entra's (and the managed-identity endpoints') numbers: JSON numbers in
/// v2.0, strings in IMDS and older answers.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Number {
    Int(u64),
    Text(String),
}

impl Number {
    pub(crate) fn value(&self) -> Option<u64> {
        match self {
            Number::Int(n) => Some(*n),
            Number::Text(text) => text.trim().parse().ok(),
        }
    }

    fn seconds(&self) -> Option<Duration> {
        self.value().map(Duration::from_secs)
    }
}

/// An OAuth error answer (`error`, `error_description`).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ErrorAnswer {
    pub(crate) error: String,
    pub(crate) error_description: String,
}

/// POSTs `form` to `token_url`; `scrub` cuts secrets out of any message.
pub(crate) async fn request_token(
    http: &dyn HttpClient,
    token_url: &str,
    form: &[(&str, &str)],
    scrub: impl Fn(&str) -> String,
) -> Result<FetchedToken, SourceError> {
    let request = Request::post(token_url)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(Bytes::from(form::encode(form)))
        .map_err(|e| SourceError::permanent(format!("bad token URL {token_url}: {e}")))?;
    let asked_at = SystemTime::now();
    let response = http.send(request).await.map_err(|e| {
        SourceError::transient(format!(
            "the token endpoint {token_url} could not be reached: {}",
            scrub(&e.to_string())
        ))
    })?;
    let status = response.status();
    if status.is_success() {
        let answer: TokenAnswer = serde_json::from_slice(response.body()).map_err(|e| {
            SourceError::transient(format!(
                "the token endpoint {token_url} answered {status} with no token in it: {e}"
            ))
        })?;
        let expires_at = answer
            .expires_in
            .and_then(|n| n.seconds())
            .map(|lifetime| asked_at + lifetime);
        return Ok(FetchedToken {
            token: AccessToken::new(answer.access_token, expires_at),
            refresh_in: answer.refresh_in.and_then(|n| n.seconds()),
        });
    }
    let error: ErrorAnswer = serde_json::from_slice(response.body()).unwrap_or_default();
    let message = scrub(&format!(
        "the token endpoint {token_url} answered {status}: {} {}",
        error.error, error.error_description
    ));
    let transient = status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error();
    Err(SourceError {
        message: message.trim_end().to_owned(),
        transient,
    })
}
