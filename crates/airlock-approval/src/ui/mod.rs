//! The approvers' page, `/ui/approvals`: server-rendered HTML, a little plain
//! JavaScript served by the binary (no build step, no CDN), and a live queue
//! over server-sent events.
//!
//! The page is only another client of the [`ApprovalApi`](crate::ApprovalApi):
//! its buttons `POST /api/approvals/{id}/approve|deny` with the session's
//! CSRF token, and the API applies the same rules to a signed-in person as to
//! a bearer token (no self-approval, the rule's approvers, minimum approvals).
//! It reads the person from the request extensions: a
//! [`Principal`] and a [`BrowserSession`], which a sign-in layer
//! (`airlock-signin`) puts there.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /ui/approvals` | the page: pending approvals as cards, then the decided ones |
//! | `GET /ui/approvals/{id}` | a 303 to the approval's card on the page (notifications link here) |
//! | `GET /ui/approvals/events` | `text/event-stream`: `approval` events (`{id, state, card, history}`: the HTML to show), `resync` when the page fell behind |
//! | `GET /ui/approvals/{id}/fragment` | the same JSON for one approval, after a decision |
//! | `GET /ui/approvals/{id}/changes` | what its request will change (an HTML fragment; see [`ChangePreview`]) |
//! | `GET /ui/assets/airlock.css`, `/ui/assets/approvals.js` | the assets, shared with the session replay page |

mod feed;
mod render;
mod words;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use airlock_core::{BrowserSession, Principal};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::broadcast::error::RecvError;

pub use feed::ApprovalFeed;
pub use words::{operation_in_words, scope_steps};

use crate::{ApprovalId, ApprovalRequest, ApprovalStore, ChangePreview, Preview};

/// The stylesheet of Airlock's pages.
pub const STYLESHEET: &str = include_str!("assets/airlock.css");
/// The approval page's script.
const SCRIPT: &str = include_str!("assets/approvals.js");

/// The pages' Content-Security-Policy: their own scripts, styles and
/// connections only, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

type ApproverCheck = dyn Fn(&Principal) -> bool + Send + Sync;

/// The approvers' page; see the [module docs](self).
#[derive(Clone)]
pub struct ApprovalPage {
    store: Arc<dyn ApprovalStore>,
    feed: ApprovalFeed,
    is_approver: Arc<ApproverCheck>,
    sign_in_path: Option<String>,
    sign_out_path: Option<String>,
    changes: Option<Previews>,
}

/// Previews of what approvals will change, each kept for a while: a page
/// reload does not ask Azure again.
#[derive(Clone)]
struct Previews {
    source: Arc<dyn ChangePreview>,
    kept: Arc<std::sync::Mutex<HashMap<ApprovalId, (Instant, Preview)>>>,
}

/// How often an event stream checks that its session is still live.
const SESSION_CHECK: Duration = Duration::from_secs(1);

/// How long a preview is reused.
const PREVIEW_TTL: Duration = Duration::from_secs(30);
/// The most previews kept at once.
const MAX_PREVIEWS: usize = 1000;

impl Previews {
    async fn get(&self, approval: &ApprovalRequest) -> Preview {
        let cached = {
            let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            kept.get(&approval.id)
                .filter(|(at, _)| at.elapsed() < PREVIEW_TTL)
                .map(|(_, preview)| preview.clone())
        };
        if let Some(preview) = cached {
            return preview;
        }
        let preview = self.source.preview(approval).await;
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.retain(|_, (at, _)| at.elapsed() < PREVIEW_TTL);
        if kept.len() < MAX_PREVIEWS {
            kept.insert(approval.id, (Instant::now(), preview.clone()));
        }
        preview
    }
}

impl std::fmt::Debug for ApprovalPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalPage")
            .field("sign_in_path", &self.sign_in_path)
            .finish_non_exhaustive()
    }
}

impl ApprovalPage {
    /// The page over `store`, live through `feed` (add the feed to the
    /// notifiers the layer and the API announce to); `is_approver` as for
    /// [`ApprovalApi::new`](crate::ApprovalApi::new).
    pub fn new(
        store: Arc<dyn ApprovalStore>,
        feed: ApprovalFeed,
        is_approver: impl Fn(&Principal) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            store,
            feed,
            is_approver: Arc::new(is_approver),
            sign_in_path: None,
            sign_out_path: None,
            changes: None,
        }
    }

    /// Shows on each pending card what its request will change, as
    /// `source` works it out (asked when a card is shown, kept 30 s).
    #[must_use]
    pub fn changes(mut self, source: Arc<dyn ChangePreview>) -> Self {
        self.changes = Some(Previews {
            source,
            kept: Arc::default(),
        });
        self
    }

    /// Where visitors who are not signed in are sent
    /// (`{path}?return_to=/ui/approvals`), and where the page's sign-out
    /// button posts.
    #[must_use]
    pub fn sign_in(mut self, sign_in_path: &str, sign_out_path: &str) -> Self {
        self.sign_in_path = Some(sign_in_path.to_owned());
        self.sign_out_path = Some(sign_out_path.to_owned());
        self
    }

    /// The page's routes (put a sign-in layer in front of them).
    pub fn into_router(self) -> Router {
        Router::new()
            .route("/ui/approvals", get(page))
            .route("/ui/approvals/events", get(events))
            .route("/ui/approvals/{id}", get(link))
            .route("/ui/approvals/{id}/fragment", get(fragment))
            .route("/ui/approvals/{id}/changes", get(changes))
            .with_state(Arc::new(self))
    }
}

/// `/ui/assets/…`: the stylesheet and script, served by the binary. Mount
/// once, beside the pages (no sign-in needed: they hold nothing private).
pub fn assets() -> Router {
    let asset = |content_type: &'static str, body: &'static str| {
        move || async move {
            let mut response = body.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
    };
    Router::new()
        .route(
            "/ui/assets/airlock.css",
            get(asset("text/css; charset=utf-8", STYLESHEET)),
        )
        .route(
            "/ui/assets/approvals.js",
            get(asset("text/javascript; charset=utf-8", SCRIPT)),
        )
}

/// The headers every page answer carries: the CSP, no caching, no referrer.
pub fn page_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

type Shared = Arc<ApprovalPage>;

/// The signed-in viewer: a principal with a browser session.
fn viewer(request: &axum::extract::Request) -> Option<(Principal, BrowserSession)> {
    let extensions = request.extensions();
    Some((
        extensions.get::<Principal>()?.clone(),
        extensions.get::<BrowserSession>()?.clone(),
    ))
}

/// The answer for a visitor who is not signed in: off to sign in, or why not.
fn not_signed_in(page: &ApprovalPage) -> Response {
    match &page.sign_in_path {
        Some(path) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("{path}?return_to=/ui/approvals"))
            {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        None => {
            let mut response = (
                    StatusCode::UNAUTHORIZED,
                    Html(
                        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in is not configured</title>\
                         <link rel=\"stylesheet\" href=\"/ui/assets/airlock.css\"></head><body><main class=\"narrow\">\
                         <h1>Sign-in is not configured</h1><p>This page needs approvers to sign in: configure <code>[admin.sign_in]</code> \
                         (see the README), or decide with <code>airlock approvals</code>.</p></main></body></html>",
                    ),
                )
                    .into_response();
            page_headers(&mut response);
            response
        }
    }
}

async fn page(State(page): State<Shared>, request: axum::extract::Request) -> Response {
    let Some((viewer, session)) = viewer(&request) else {
        return not_signed_in(&page);
    };
    let approvals = if (page.is_approver)(&viewer) {
        match page.store.list(None).await {
            Ok(all) => Some(
                all.into_iter()
                    .filter(|a| a.visible_to(&viewer))
                    .collect::<Vec<_>>(),
            ),
            Err(error) => {
                tracing::error!(%error, "approval page: the approval store failed");
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The approval store cannot be read just now; reload in a moment.",
                )
                    .into_response();
                page_headers(&mut response);
                return response;
            }
        }
    } else {
        None
    };
    let html = render::page(&render::PageView {
        viewer: &viewer,
        csrf_token: &session.csrf_token,
        sign_out_path: page.sign_out_path.as_deref(),
        approvals: approvals.as_deref(),
        now: SystemTime::now(),
        show_changes: page.changes.is_some(),
    });
    let mut response = Html(html).into_response();
    page_headers(&mut response);
    response
}

async fn link(Path(id): Path<String>) -> Response {
    match id.parse::<ApprovalId>() {
        Ok(id) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/ui/approvals#approval-{id}")) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Approval `id`, if `viewer` is one of its approvers (else, as for the
/// API, nobody learns it exists).
async fn visible(page: &ApprovalPage, viewer: &Principal, id: &str) -> Option<ApprovalRequest> {
    let id = id.parse::<ApprovalId>().ok()?;
    if !(page.is_approver)(viewer) {
        return None;
    }
    let approval = page.store.get(id).await.ok().flatten()?;
    approval.visible_to(viewer).then_some(approval)
}

async fn changes(
    State(page): State<Shared>,
    Path(id): Path<String>,
    request: axum::extract::Request,
) -> Response {
    let Some((viewer, _)) = viewer(&request) else {
        return not_signed_in(&page);
    };
    let approval = visible(&page, &viewer, &id).await;
    let (Some(approval), Some(previews)) = (approval, &page.changes) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let html = render::preview(&previews.get(&approval).await);
    let mut response = Html(html).into_response();
    page_headers(&mut response);
    response
}

async fn fragment(
    State(page): State<Shared>,
    Path(id): Path<String>,
    request: axum::extract::Request,
) -> Response {
    let Some((viewer, _)) = viewer(&request) else {
        return not_signed_in(&page);
    };
    let approval = visible(&page, &viewer, &id).await;
    match approval {
        Some(approval) => {
            let mut response = axum::Json(render::fragment(
                &approval,
                &viewer,
                SystemTime::now(),
                page.changes.is_some(),
            ))
            .into_response();
            page_headers(&mut response);
            response
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn events(State(page): State<Shared>, request: axum::extract::Request) -> Response {
    let Some((viewer, session)) = viewer(&request) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    if !(page.is_approver)(&viewer) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let receiver = page.feed.subscribe();
    let show_changes = page.changes.is_some();
    let closed = Box::pin(page.feed.closed());
    // The stream ends with the session: a signed-out browser hears nothing more.
    let ends = tokio::time::Instant::now()
        + session
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
    let ready = futures_util::stream::once(async {
        Ok::<_, Infallible>(Event::default().event("ready").data("live"))
    });
    // Signing out ends the session's streams within a second.
    let check = tokio::time::interval(SESSION_CHECK);
    let updates = futures_util::stream::unfold(
        (receiver, viewer, closed, check, session),
        move |(mut receiver, viewer, mut closed, mut check, session)| async move {
            loop {
                let received = tokio::select! {
                    received = receiver.recv() => received,
                    () = tokio::time::sleep_until(ends) => return None,
                    () = &mut closed => return None,
                    _ = check.tick() => {
                        if session.is_live() {
                            continue;
                        }
                        return None;
                    }
                };
                let event = match received {
                    Ok(event) => event,
                    Err(RecvError::Lagged(_)) => {
                        let resync = Event::default().event("resync").data("reload");
                        return Some((Ok(resync), (receiver, viewer, closed, check, session)));
                    }
                    Err(RecvError::Closed) => return None,
                };
                let approval = event.request();
                if !approval.visible_to(&viewer) {
                    continue;
                }
                let data = render::fragment(approval, &viewer, SystemTime::now(), show_changes)
                    .to_string();
                let event = Event::default().event("approval").data(data);
                return Some((Ok(event), (receiver, viewer, closed, check, session)));
            }
        },
    );
    let mut response = Sse::new(futures_util::StreamExt::chain(ready, updates))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
