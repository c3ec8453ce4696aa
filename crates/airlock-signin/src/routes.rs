//! The sign-in pages: start, callback, sign-out.

use airlock_core::escape_html;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, HeaderValue, LOCATION, SET_COOKIE};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::sessions::{SESSION_COOKIE, cookie, same};
use crate::{SignIn, SignInError};

/// Where a browser starts signing in (`?return_to=/local/path` optional).
pub const SIGN_IN_PATH: &str = "/ui/signin";
/// Where the identity provider sends the browser back: the redirect URI to
/// register, after the admin listener's public URL.
pub const CALLBACK_PATH: &str = "/ui/signin/callback";
/// Where a signed-in page posts to sign out (form field `csrf`).
pub const SIGN_OUT_PATH: &str = "/ui/signout";

/// The cookie binding a sign-in under way to the browser that started it.
const FLOW_COOKIE: &str = "airlock_signin";

impl SignIn {
    /// The sign-in routes: [`SIGN_IN_PATH`], [`CALLBACK_PATH`], [`SIGN_OUT_PATH`].
    pub fn routes(&self) -> Router {
        Router::new()
            .route(SIGN_IN_PATH, get(start))
            .route(CALLBACK_PATH, get(callback))
            .route(SIGN_OUT_PATH, post(sign_out))
            .with_state(self.clone())
    }
}

#[derive(Deserialize)]
struct StartQuery {
    return_to: Option<String>,
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// A path of this origin, or nothing: never `//host`, `/\host` or a URL
/// (no open redirect through `return_to`).
fn local_path(path: Option<String>) -> Option<String> {
    path.filter(|p| {
        p.starts_with('/')
            && !p.starts_with("//")
            && !p.contains('\\')
            && !p.chars().any(char::is_control)
    })
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

/// A small page: the outcome in words, and where to go.
fn page(status: StatusCode, title: &str, message: &str, link: (&str, &str)) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"/ui/assets/airlock.css\"></head><body><main class=\"narrow\">\
         <h1>{title}</h1><p id=\"message\">{message}</p><p><a href=\"{href}\">{label}</a></p></main></body></html>",
        title = escape_html(title),
        message = escape_html(message),
        href = escape_html(link.0),
        label = escape_html(link.1),
    );
    no_store((status, Html(body)).into_response())
}

fn failure(sign_in: &SignIn, error: &SignInError) -> Response {
    let status = match error {
        SignInError::Provider(_) | SignInError::Random => StatusCode::BAD_GATEWAY,
        SignInError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    tracing::warn!(%error, "sign-in failed");
    let again = format!(
        "{SIGN_IN_PATH}?return_to={}",
        percent_encoding::utf8_percent_encode(
            &sign_in.inner.landing,
            percent_encoding::NON_ALPHANUMERIC
        )
    );
    page(
        status,
        "Sign-in failed",
        &error.to_string(),
        (&again, "Sign in again"),
    )
}

async fn start(
    State(sign_in): State<SignIn>,
    query: Result<Query<StartQuery>, QueryRejection>,
) -> Response {
    let return_to = local_path(query.ok().and_then(|Query(q)| q.return_to))
        .unwrap_or_else(|| sign_in.inner.landing.clone());
    match sign_in.inner.start(return_to) {
        Ok(started) => {
            let mut response = StatusCode::FOUND.into_response();
            if let Ok(location) = HeaderValue::from_str(&started.url) {
                response.headers_mut().insert(LOCATION, location);
            }
            // Lax, not Strict: it must come back with the provider's
            // cross-site redirect to the callback.
            set_cookie(
                &mut response,
                &format!(
                    "{FLOW_COOKIE}={}; Path={SIGN_IN_PATH}; HttpOnly; Secure; SameSite=Lax; Max-Age=600",
                    started.binding
                ),
            );
            no_store(response)
        }
        Err(error) => failure(&sign_in, &error),
    }
}

async fn callback(
    State(sign_in): State<SignIn>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return failure(&sign_in, &SignInError::UnknownState);
    };
    if let Some(error) = query.error {
        let description = query.error_description.unwrap_or_default();
        return failure(
            &sign_in,
            &SignInError::Refused(format!("{error}: {description}")),
        );
    }
    let (Some(code), Some(state)) = (query.code, query.state) else {
        return failure(&sign_in, &SignInError::UnknownState);
    };
    let binding = cookie(&headers, FLOW_COOKIE);
    match sign_in.inner.finish(&state, code, binding.as_deref()).await {
        Ok((id, session, return_to)) => {
            let name = session
                .principal
                .display_name()
                .unwrap_or(session.principal.id())
                .to_owned();
            // A page, not a redirect: the browser's next request is then
            // same-site, so the SameSite=Strict session cookie goes with it.
            let body = format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signed in</title>\
                 <meta http-equiv=\"refresh\" content=\"0;url={href}\"><link rel=\"stylesheet\" href=\"/ui/assets/airlock.css\"></head>\
                 <body><main class=\"narrow\"><p>Signed in as {name}. <a href=\"{href}\">Continue</a></p></main></body></html>",
                href = escape_html(&return_to),
                name = escape_html(&name),
            );
            let mut response = no_store(Html(body).into_response());
            let ttl = sign_in.inner.session_ttl.as_secs();
            set_cookie(
                &mut response,
                &format!(
                    "{SESSION_COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={ttl}"
                ),
            );
            set_cookie(
                &mut response,
                &format!(
                    "{FLOW_COOKIE}=; Path={SIGN_IN_PATH}; HttpOnly; Secure; SameSite=Lax; Max-Age=0"
                ),
            );
            response
        }
        Err(error) => failure(&sign_in, &error),
    }
}

async fn sign_out(State(sign_in): State<SignIn>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(session) = sign_in.inner.sessions.find(&headers) else {
        return page(
            StatusCode::OK,
            "Signed out",
            "You are signed out.",
            (SIGN_IN_PATH, "Sign in"),
        );
    };
    let sent = form_field(&body, "csrf");
    if !sent.is_some_and(|token| same(&token, &session.browser.csrf_token)) {
        return page(
            StatusCode::FORBIDDEN,
            "Not signed out",
            "The sign-out form came without this page's CSRF token; reload the page and sign out from it.",
            (&sign_in.inner.landing, "Back"),
        );
    }
    sign_in.inner.sessions.end(&headers);
    tracing::info!(principal = session.principal.id(), "approver signed out");
    let mut response = page(
        StatusCode::OK,
        "Signed out",
        "You are signed out.",
        (SIGN_IN_PATH, "Sign in again"),
    );
    set_cookie(
        &mut response,
        &format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0"),
    );
    response
}

/// One field of an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8()
                .ok()
                .map(std::borrow::Cow::into_owned)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_is_a_local_path_only() {
        let local = |p: &str| local_path(Some(p.to_owned()));
        assert_eq!(local("/ui/approvals").as_deref(), Some("/ui/approvals"));
        for outside in [
            "//evil.example/x",
            "/\\evil.example",
            "https://evil.example",
            "ui",
            "/a\nb",
        ] {
            assert_eq!(local(outside), None, "{outside}");
        }
    }

    #[test]
    fn form_fields_are_decoded() {
        assert_eq!(
            form_field(b"a=1&csrf=x%2By+z", "csrf").as_deref(),
            Some("x+y z")
        );
        assert_eq!(form_field(b"a=1", "csrf"), None);
    }
}
