//! People signing in: the OIDC authorization-code flow with PKCE, as Entra
//! serves it to a web application, with an account picker in place of a
//! password page.
//!
//! - `GET /{tenant}/oauth2/v2.0/authorize?client_id&response_type=code&redirect_uri&scope=openid…&state&nonce&code_challenge&code_challenge_method=S256`
//!   shows a page listing the users registered with
//!   [`IssuerHandle::register_user`](crate::IssuerHandle::register_user);
//!   an unknown client or an unregistered redirect URI is an error page
//!   (AADSTS700016, AADSTS50011), never a redirect, as Entra does; other
//!   mistakes go back to the redirect URI as `?error=…&error_description=…&state=…`.
//! - `POST /{tenant}/oauth2/v2.0/authorize` (`request`, `user`: the
//!   picker's form) redirects to `{redirect_uri}?code=…&state=…`.
//! - The token endpoint redeems a code once, within 10 minutes, for the
//!   client and redirect URI it was issued to, with the client's secret and
//!   the PKCE verifier (AADSTS54005, AADSTS70008, AADSTS501481 otherwise),
//!   answering an `id_token` (audience: the client; the `nonce`; no `scp`
//!   or `idtyp`, as Entra's ID tokens) and an access token for Graph.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use airlock_core::escape_html;
use axum::extract::{Path, RawQuery, State};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::StatusCode;
use http::header::{CACHE_CONTROL, HeaderValue, LOCATION};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::issuer::{IssuerState, json_response, lock, oauth_error, refuse};
use crate::routing::{query_pairs, query_value};
use crate::token_spec::TokenSpec;

/// How long a code may wait to be redeemed (Entra: 10 minutes).
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// A web application registered for sign-in.
#[derive(Clone)]
pub(crate) struct SignInClient {
    pub(crate) secret: String,
    pub(crate) redirect_uris: Vec<String>,
}

/// What `/authorize` was asked, kept while the picker is shown.
#[derive(Clone)]
pub(crate) struct Authorization {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
}

/// An issued code.
pub(crate) struct Code {
    authorization: Authorization,
    user: TokenSpec,
    issued: SystemTime,
    redeemed: bool,
}

/// The sign-in part of the issuer's state.
#[derive(Default)]
pub(crate) struct SignIns {
    pub(crate) clients: std::sync::Mutex<HashMap<String, SignInClient>>,
    pub(crate) users: std::sync::Mutex<Vec<TokenSpec>>,
    pending: std::sync::Mutex<HashMap<String, Authorization>>,
    codes: std::sync::Mutex<HashMap<String, Code>>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

/// Entra's error page: shown in the browser, not sent to the application.
fn error_page(message: &str) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in error</title></head>\
         <body><h1>Sorry, but we're having trouble signing you in.</h1><p id=\"error\">{}</p></body></html>",
        escape_html(message)
    );
    (StatusCode::BAD_REQUEST, Html(page)).into_response()
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn with_query(uri: &str, pairs: &[(&str, Option<&str>)]) -> String {
    let mut url = uri.to_owned();
    let mut separator = if uri.contains('?') { '&' } else { '?' };
    for (name, value) in pairs {
        if let Some(value) = value {
            let _ = write!(url, "{separator}{name}={}", encode(value));
            separator = '&';
        }
    }
    url
}

/// `GET …/authorize`: checks the request and shows the account picker.
pub(crate) async fn authorize(
    State(state): State<Arc<IssuerState>>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(refused) = refuse(&state, &tenant) {
        return refused;
    }
    let pairs = query_pairs(query.as_deref());
    let field = |name: &str| {
        query_value(&pairs, name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let Some(client_id) = field("client_id") else {
        return error_page(
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        );
    };
    let client = lock(&state.sign_ins.clients).get(&client_id).cloned();
    let Some(client) = client else {
        return error_page(&format!(
            "AADSTS700016: Application with identifier '{client_id}' was not found in the directory '{tenant}'."
        ));
    };
    let redirect_uri = field("redirect_uri").unwrap_or_default();
    if !client.redirect_uris.contains(&redirect_uri) {
        return error_page(&format!(
            "AADSTS50011: The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."
        ));
    }
    let authorization = Authorization {
        client_id,
        redirect_uri,
        state: field("state"),
        nonce: field("nonce"),
        code_challenge: field("code_challenge"),
    };
    let fail = |error: &str, description: &str| {
        redirect(&with_query(
            &authorization.redirect_uri,
            &[
                ("error", Some(error)),
                ("error_description", Some(description)),
                ("state", authorization.state.as_deref()),
            ],
        ))
    };
    if field("response_type").as_deref() != Some("code") {
        return fail(
            "unsupported_response_type",
            "AADSTS700054: response_type must be 'code': this development issuer serves the authorization-code flow only.",
        );
    }
    let scopes = field("scope").unwrap_or_default();
    if !scopes.split(' ').any(|s| s == "openid") {
        return fail(
            "invalid_scope",
            "AADSTS70011: The provided request must include an 'openid' scope to sign a user in.",
        );
    }
    if authorization.code_challenge.is_some()
        && field("code_challenge_method").as_deref() != Some("S256")
    {
        return fail(
            "invalid_request",
            "AADSTS501491: code_challenge_method must be S256 (this development issuer accepts no plain challenges).",
        );
    }
    let users = lock(&state.sign_ins.users).clone();
    let request = random_token();
    lock(&state.sign_ins.pending).insert(request.clone(), authorization);
    let mut page = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Pick an account</title>\
         <style>body{font:15px system-ui,sans-serif;margin:3rem auto;max-width:26rem}button{display:block;width:100%;margin:.4rem 0;padding:.6rem;text-align:left;font:inherit}</style>\
         </head><body><h1>Pick an account</h1><p>Development sign-in (airlock-sim): no password.</p>",
    );
    for (index, user) in users.iter().enumerate() {
        let username = user.username.as_deref().unwrap_or("");
        let _ = write!(
            page,
            "<form method=\"post\"><input type=\"hidden\" name=\"request\" value=\"{request}\">\
             <input type=\"hidden\" name=\"user\" value=\"{index}\">\
             <button type=\"submit\" data-username=\"{}\">{}<br><small>{}</small></button></form>",
            escape_html(username),
            escape_html(&user.name),
            escape_html(username)
        );
    }
    if users.is_empty() {
        page.push_str("<p id=\"error\">No users are registered with this development issuer.</p>");
    }
    page.push_str("</body></html>");
    let mut response = Html(page).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST …/authorize`: the picked account; redirects back with a code.
pub(crate) async fn pick(
    State(state): State<Arc<IssuerState>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(refused) = refuse(&state, &tenant) {
        return refused;
    }
    let form = query_pairs(Some(&String::from_utf8_lossy(&body)));
    let field = |name: &str| query_value(&form, name);
    let authorization = field("request").and_then(|r| lock(&state.sign_ins.pending).remove(r));
    let Some(authorization) = authorization else {
        return error_page(
            "AADSTS90015: The sign-in request was not found or was already used; start signing in again.",
        );
    };
    let user = field("user")
        .and_then(|u| u.parse::<usize>().ok())
        .and_then(|index| lock(&state.sign_ins.users).get(index).cloned());
    let Some(user) = user else {
        return error_page("AADSTS50034: The user account does not exist in this directory.");
    };
    let code = random_token();
    let location = with_query(
        &authorization.redirect_uri,
        &[
            ("code", Some(&code)),
            ("state", authorization.state.as_deref()),
        ],
    );
    lock(&state.sign_ins.codes).insert(
        code,
        Code {
            authorization,
            user,
            issued: SystemTime::now(),
            redeemed: false,
        },
    );
    redirect(&location)
}

/// `grant_type=authorization_code` at the token endpoint.
pub(crate) fn redeem(state: &IssuerState, form: &[(String, String)]) -> Response {
    let field = |name: &str| query_value(form, name).filter(|v| !v.is_empty());
    let invalid_grant =
        |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
    let client_id = field("client_id").unwrap_or_default();
    let client = lock(&state.sign_ins.clients).get(client_id).cloned();
    let Some(client) = client else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!(
                "AADSTS700016: Application with identifier '{client_id}' was not found in the directory."
            ),
        );
    };
    match field("client_secret") {
        None => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        }
        Some(secret) if secret != client.secret => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                &format!("AADSTS7000215: Invalid client secret provided for app '{client_id}'."),
            );
        }
        Some(_) => {}
    }
    let mut codes = lock(&state.sign_ins.codes);
    let Some(code) = field("code").and_then(|c| codes.get_mut(c)) else {
        return invalid_grant(
            "AADSTS70000: The provided value for the 'code' parameter is not valid.",
        );
    };
    if code.redeemed {
        return invalid_grant(
            "AADSTS54005: OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        );
    }
    code.redeemed = true;
    let authorization = code.authorization.clone();
    let user = code.user.clone();
    let age = code.issued.elapsed().unwrap_or_default();
    drop(codes);
    if age > CODE_LIFETIME {
        return invalid_grant(
            "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        );
    }
    if authorization.client_id != client_id
        || field("redirect_uri") != Some(authorization.redirect_uri.as_str())
    {
        return invalid_grant(
            "AADSTS70000: The code was issued to another client or redirect URI.",
        );
    }
    if let Some(challenge) = &authorization.code_challenge {
        let verifier = field("code_verifier").unwrap_or_default();
        if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier)) != *challenge {
            return invalid_grant(
                "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            );
        }
    }
    let mut id_token = user
        .clone()
        .audience(client_id)
        .app_id(client_id)
        .without_claim("scp")
        .without_claim("idtyp")
        .without_claim("azp")
        .without_claim("azpacr");
    if let Some(nonce) = &authorization.nonce {
        id_token = id_token.claim("nonce", Value::from(nonce.as_str()));
    }
    let access_token = user
        .app_id(client_id)
        .audience("https://graph.microsoft.com");
    let lifetime = access_token.lifetime.as_secs();
    state
        .tokens_issued
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    json_response(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "scope": "openid profile email",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": state.mint(&access_token),
            "id_token": state.mint(&id_token),
        }),
    )
}
