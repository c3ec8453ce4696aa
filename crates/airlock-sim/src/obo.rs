//! Entra's on-behalf-of grant (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
//! `requested_token_use=on_behalf_of`): a confidential client trades a
//! user's token issued *to it* for a token for another resource, still the
//! user's (and, for an agent acting for a user, still that agent's).

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::response::Response;
use http::StatusCode;
use serde_json::Value;

use crate::issuer::{IssuerState, TokenRejection, json_response, lock, oauth_error};

/// The grant type of the on-behalf-of flow.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Answers an on-behalf-of request: the client's secret, the user's token
/// (`assertion`: signed by this issuer, unexpired, issued to the client or
/// its App ID URI, delegated: `scp`), and a `{resource}/.default` scope.
pub(crate) fn exchange(state: &IssuerState, form: &[(String, String)]) -> Response {
    let field = |name: &str| {
        form.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let bad =
        |error: &str, description: &str| oauth_error(StatusCode::BAD_REQUEST, error, description);
    if field("requested_token_use") != Some("on_behalf_of") {
        return bad(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'requested_token_use' (on_behalf_of).",
        );
    }
    let (Some(client_id), Some(assertion)) = (field("client_id"), field("assertion")) else {
        return bad(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameters: 'client_id' and 'assertion'.",
        );
    };
    let secret = lock(&state.clients).get(client_id).cloned();
    if secret.is_none() || field("client_secret") != secret.as_deref() {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            &format!("AADSTS7000215: Invalid client secret provided for app '{client_id}'."),
        );
    }
    let Some(resource) = field("scope")
        .and_then(|s| s.strip_suffix("/.default"))
        .filter(|r| !r.is_empty() && !r.contains(' '))
    else {
        return bad(
            "invalid_scope",
            "AADSTS70011: The provided value for the input parameter 'scope' is not valid: use {resource}/.default.",
        );
    };
    let audiences = lock(&state.app_id_uris)
        .get(client_id)
        .cloned()
        .unwrap_or_default();
    let mut claims = None;
    for audience in std::iter::once(client_id).chain(audiences.iter().map(String::as_str)) {
        match state.verify(assertion, audience) {
            Ok(verified) => {
                claims = Some(verified);
                break;
            }
            Err(TokenRejection::WrongAudience) => {}
            Err(TokenRejection::Expired) => {
                return bad(
                    "invalid_grant",
                    "AADSTS500133: Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token.",
                );
            }
            Err(TokenRejection::Invalid) => {
                return bad(
                    "invalid_grant",
                    "AADSTS50013: Assertion failed signature validation.",
                );
            }
        }
    }
    let Some(Value::Object(mut claims)) = claims else {
        return bad(
            "invalid_grant",
            &format!(
                "AADSTS50013: Assertion audience does not match the Client app presenting the assertion '{client_id}'."
            ),
        );
    };
    if !claims.contains_key("scp") {
        return bad(
            "invalid_grant",
            "AADSTS50013: Assertion is not a delegated (user) token: the on-behalf-of flow needs one.",
        );
    }
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
    .unwrap_or(i64::MAX);
    let lifetime = lock(&state.app_token_lifetime).as_secs();
    let expires = now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX));
    // The user's token for the resource: the same subject (and agent facets),
    // issued to the resource, the exchanging client in `azp`'s place only
    // when no agent acted (an agent stays the actor).
    claims.insert("aud".into(), resource.into());
    claims.insert("iat".into(), now.into());
    claims.insert("nbf".into(), now.into());
    claims.insert("exp".into(), expires.into());
    claims.insert("uti".into(), uuid::Uuid::new_v4().to_string().into());
    if !claims.contains_key("xms_act_fct") {
        claims.insert("azp".into(), client_id.into());
    }
    let token = state.sign_claims(&Value::Object(claims));
    state.tokens_issued.fetch_add(1, Ordering::SeqCst);
    json_response(
        StatusCode::OK,
        &serde_json::json!({
            "token_type": "Bearer",
            "scope": format!("{resource}/.default"),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }),
    )
}
