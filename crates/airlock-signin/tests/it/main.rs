//! The whole sign-in, over real HTTP: the gateway's routes on a loopback
//! port, airlock-sim's issuer as the identity provider (account picker,
//! authorization codes with PKCE, RS256 ID tokens).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use airlock_core::{HttpClient, Principal};
use airlock_identity::{JwtValidator, KeySource};
use airlock_signin::{BrowserSession, CSRF_HEADER, SignIn};
use airlock_sim::{DevIssuer, IssuerHandle, LoopbackClient, TokenSpec};
use axum::Router;
use axum::extract::Extension;
use axum::routing::{get, post};
use bytes::Bytes;
use http::header::{COOKIE, LOCATION, SET_COOKIE};
use http::{Request, Response, StatusCode};

const CLIENT_ID: &str = "00000000-0000-0000-0000-00000000c0de";
const SECRET: &str = "approver-app-secret";

struct Site {
    base: String,
    issuer: IssuerHandle,
    http: Arc<dyn HttpClient>,
}

/// Who the protected routes see: the principal, kind and CSRF token.
async fn whoami(
    principal: Option<Extension<Principal>>,
    session: Option<Extension<BrowserSession>>,
) -> String {
    match (principal, session) {
        (Some(Extension(p)), Some(Extension(s))) => format!(
            "{}|{}|{}",
            p.display_name().unwrap_or(p.id()),
            p.kind(),
            s.csrf_token
        ),
        _ => "nobody".to_owned(),
    }
}

async fn site() -> Site {
    let issuer = DevIssuer::start(airlock_sim::TENANT_ID).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let callback = format!("{base}/ui/signin/callback");
    issuer.register_sign_in_client(CLIENT_ID, SECRET, &[&callback]);
    issuer.register_user(TokenSpec::approver());
    let http: Arc<dyn HttpClient> = Arc::new(LoopbackClient::new());
    let id_tokens = JwtValidator::builder()
        .tenant(issuer.tenant_id())
        .audience(CLIENT_ID)
        .keys(KeySource::Discovery(issuer.issuer()))
        .http_client(http.clone())
        .build()
        .await
        .unwrap();
    let sign_in = SignIn::builder(
        issuer.issuer(),
        CLIENT_ID,
        SECRET,
        callback,
        http.clone(),
        Arc::new(id_tokens),
    )
    .landing("/whoami")
    .build()
    .await
    .unwrap();
    let protected = Router::new()
        .route("/whoami", get(whoami))
        .route("/change", post(|| async { "changed" }))
        .layer(sign_in.layer(tower::layer::util::Identity::new()));
    let app = sign_in.routes().merge(protected);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Site { base, issuer, http }
}

impl Site {
    async fn send(&self, request: Request<Bytes>) -> Response<Bytes> {
        self.http.send(request).await.unwrap()
    }

    async fn get(&self, url: &str, cookie: Option<&str>) -> Response<Bytes> {
        let mut request = Request::get(url);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        self.send(request.body(Bytes::new()).unwrap()).await
    }

    /// Starts a sign-in: the provider URL and the flow cookie.
    async fn start(&self) -> (String, String) {
        let started = self
            .get(&format!("{}/ui/signin?return_to=/whoami", self.base), None)
            .await;
        assert_eq!(started.status(), StatusCode::FOUND);
        (location(&started), set_cookie(&started, "airlock_signin"))
    }

    /// Picks the first user on the provider's page: the callback URL.
    async fn pick(&self, authorize_url: &str) -> String {
        let page = self.get(authorize_url, None).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = String::from_utf8_lossy(page.body()).into_owned();
        let request_id = html
            .split("name=\"request\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the picker names its request");
        let picked = self
            .send(
                Request::post(authorize_url.split('?').next().unwrap())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Bytes::from(format!("request={request_id}&user=0")))
                    .unwrap(),
            )
            .await;
        assert_eq!(picked.status(), StatusCode::FOUND);
        location(&picked)
    }

    /// Signs in all the way: the session cookie.
    async fn sign_in(&self) -> String {
        let (authorize, flow) = self.start().await;
        let callback = self.pick(&authorize).await;
        let done = self.get(&callback, Some(&flow)).await;
        assert_eq!(done.status(), StatusCode::OK, "{:?}", done.body());
        set_cookie(&done, "airlock_session")
    }
}

fn location(response: &Response<Bytes>) -> String {
    response.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// `name=value` of the `Set-Cookie` for `name`, after checking its attributes.
fn set_cookie(response: &Response<Bytes>, name: &str) -> String {
    let header = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie set"));
    assert!(
        header.contains("; HttpOnly") && header.contains("; Secure"),
        "{header}"
    );
    header.split(';').next().unwrap().to_owned()
}

fn text(response: &Response<Bytes>) -> String {
    String::from_utf8_lossy(response.body()).into_owned()
}

#[tokio::test]
async fn an_approver_signs_in_with_pkce_and_changes_only_with_the_csrf_token() {
    let site = site().await;
    let (authorize, _) = site.start().await;
    // The provider is asked for a code, with state, nonce and an S256 challenge.
    for part in [
        "response_type=code",
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "scope=openid",
    ] {
        assert!(authorize.contains(part), "{part} missing from {authorize}");
    }

    let session = site.sign_in().await;
    let me = text(
        &site
            .get(&format!("{}/whoami", site.base), Some(&session))
            .await,
    );
    let mut fields = me.split('|');
    assert_eq!(fields.next(), Some("Alice Approver"));
    // An ID token carries no `scp`: still a person.
    assert_eq!(fields.next(), Some("user"));
    let csrf = fields.next().unwrap().to_owned();
    assert!(csrf.len() >= 40);

    let change = |csrf: Option<&str>| {
        let mut request = Request::post(format!("{}/change", site.base)).header(COOKIE, &session);
        if let Some(csrf) = csrf {
            request = request.header(CSRF_HEADER, csrf);
        }
        request.body(Bytes::new()).unwrap()
    };
    for wrong in [None, Some("not-the-token")] {
        let refused = site.send(change(wrong)).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            refused.headers()["x-ms-error-code"],
            "AirlockCsrfTokenInvalid"
        );
    }
    let changed = site.send(change(Some(&csrf))).await;
    assert_eq!(
        (changed.status(), text(&changed).as_str()),
        (StatusCode::OK, "changed")
    );

    // Nobody else's cookie works, and without one nobody is signed in.
    assert_eq!(
        text(
            &site
                .get(
                    &format!("{}/whoami", site.base),
                    Some("airlock_session=forged")
                )
                .await
        ),
        "nobody"
    );
    assert_eq!(
        text(&site.get(&format!("{}/whoami", site.base), None).await),
        "nobody"
    );

    // Signing out needs the CSRF token too, then the session is gone.
    let sign_out = |body: String| {
        Request::post(format!("{}/ui/signout", site.base))
            .header(COOKIE, &session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Bytes::from(body))
            .unwrap()
    };
    assert_eq!(
        site.send(sign_out(String::new())).await.status(),
        StatusCode::FORBIDDEN
    );
    let out = site.send(sign_out(format!("csrf={csrf}"))).await;
    assert_eq!(out.status(), StatusCode::OK);
    assert!(
        out.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        text(
            &site
                .get(&format!("{}/whoami", site.base), Some(&session))
                .await
        ),
        "nobody"
    );
}

#[tokio::test]
async fn a_callback_is_refused_in_another_browser_or_twice() {
    let site = site().await;
    // Another browser (no flow cookie, or someone else's): login CSRF refused.
    let mut flow = String::new();
    let mut callback = String::new();
    for cookie in [None, Some("airlock_signin=someone-elses")] {
        let (authorize, started) = site.start().await;
        (flow, callback) = (started, site.pick(&authorize).await);
        let refused = site.get(&callback, cookie).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert!(
            text(&refused).contains("another browser"),
            "{}",
            text(&refused)
        );
        assert!(refused.headers().get(SET_COOKIE).is_none());
    }
    // The refusal used the flow up: the right browser cannot finish it either.
    let used = site.get(&callback, Some(&flow)).await;
    assert_eq!(used.status(), StatusCode::BAD_REQUEST);
    assert!(text(&used).contains("sign in again"));

    // The provider's own refusal is shown, not a session.
    let (authorize, _) = site.start().await;
    let state = authorize
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let denied = site
        .get(
            &format!("{}/ui/signin/callback?error=access_denied&error_description=AADSTS65004&state={state}", site.base),
            Some(&flow),
        )
        .await;
    assert_eq!(denied.status(), StatusCode::BAD_REQUEST);
    assert!(text(&denied).contains("access_denied"));

    // `return_to` never leaves the origin.
    let started = site
        .get(
            &format!("{}/ui/signin?return_to=//evil.example/", site.base),
            None,
        )
        .await;
    assert_eq!(started.status(), StatusCode::FOUND);
    let session = {
        let flow = set_cookie(&started, "airlock_signin");
        let callback = site.pick(&location(&started)).await;
        let done = site.get(&callback, Some(&flow)).await;
        assert!(text(&done).contains("url=/whoami"), "{}", text(&done));
        set_cookie(&done, "airlock_session")
    };
    assert!(session.starts_with("airlock_session="));
}

#[tokio::test]
async fn the_issuer_redeems_a_code_once_and_only_with_its_verifier() {
    let site = site().await;
    let token = |code: &str, verifier: &str| {
        Request::post(site.issuer.token_endpoint())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Bytes::from(format!(
                "grant_type=authorization_code&client_id={CLIENT_ID}&client_secret={SECRET}&code={code}&code_verifier={verifier}&redirect_uri={}",
                percent_encoding::utf8_percent_encode(&format!("{}/ui/signin/callback", site.base), percent_encoding::NON_ALPHANUMERIC)
            )))
            .unwrap()
    };
    let code_of = |url: &str| {
        url.split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned()
    };
    let (authorize, _) = site.start().await;
    let code = code_of(&site.pick(&authorize).await);
    let wrong = site
        .send(token(
            &code,
            "not-the-verifier-but-long-enough-to-look-like-one-1234",
        ))
        .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert!(text(&wrong).contains("AADSTS501481"), "{}", text(&wrong));
    let again = site.send(token(&code, "anything")).await;
    assert!(text(&again).contains("AADSTS54005"), "{}", text(&again));

    // An unregistered redirect URI is an error page at the provider, not a redirect.
    let elsewhere = authorize.replace("redirect_uri=", "redirect_uri=http%3A%2F%2Fevil.example%2F");
    let page = site.get(&elsewhere, None).await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(text(&page).contains("AADSTS50011"));
}
