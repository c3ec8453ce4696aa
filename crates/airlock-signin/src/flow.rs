//! The OIDC authorization-code flow with PKCE, with `openidconnect`'s
//! client over Airlock's one [`HttpClient`]; the ID token is verified by a
//! [`TokenValidator`] (the same code that verifies agents' tokens).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use airlock_core::{HttpClient, HttpClientError, Principal, PrincipalKind};
use airlock_identity::TokenValidator;
use bytes::Bytes;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient};
use openidconnect::url;
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse as _,
};

use crate::SignInError;
use crate::sessions::{Session, Sessions, random_token, same};

type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How long a browser may take between leaving for the identity provider and
/// coming back.
const FLOW_LIFETIME: Duration = Duration::from_secs(600);

/// The most sign-ins under way at once (each costs a table entry before
/// anyone is known): beyond it, new ones are refused until some finish or expire.
const MAX_FLOWS: usize = 10_000;

/// One sign-in under way, keyed by its `state`.
struct Flow {
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    /// The browser's flow cookie: the callback must come from the browser
    /// that started the sign-in (no login CSRF).
    binding: String,
    return_to: String,
    started: SystemTime,
}

/// A sign-in just started: send the browser to `url` with the flow cookie.
pub(crate) struct Started {
    pub(crate) url: String,
    pub(crate) binding: String,
}

/// Browser sign-in for approvers: see the [crate docs](crate).
#[derive(Clone)]
pub struct SignIn {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    client: OidcClient,
    http: Arc<dyn HttpClient>,
    id_tokens: Arc<dyn TokenValidator>,
    scopes: Vec<String>,
    pub(crate) sessions: Sessions,
    flows: Mutex<HashMap<String, Flow>>,
    pub(crate) session_ttl: Duration,
    pub(crate) landing: String,
}

impl fmt::Debug for SignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignIn")
            .field("client_id", &self.inner.client.client_id().as_str())
            .field("session_ttl", &self.inner.session_ttl)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SignIn`]; see [`SignIn::builder`].
pub struct SignInBuilder {
    issuer: String,
    client_id: String,
    client_secret: String,
    redirect_url: String,
    http: Arc<dyn HttpClient>,
    id_tokens: Arc<dyn TokenValidator>,
    scopes: Vec<String>,
    session_ttl: Duration,
    landing: String,
}

impl fmt::Debug for SignInBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignInBuilder")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .finish_non_exhaustive()
    }
}

/// The default session lifetime: a working day.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

impl SignIn {
    /// Sign-in with the app registration `client_id` (a web application
    /// whose redirect URI is `redirect_url`, which must end in
    /// [`CALLBACK_PATH`](crate::CALLBACK_PATH)) at the OpenID provider
    /// `issuer` (Entra: `https://login.microsoftonline.com/{tenant}/v2.0`).
    /// `id_tokens` verifies the ID tokens: a validator for audience `client_id`.
    pub fn builder(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        redirect_url: impl Into<String>,
        http: Arc<dyn HttpClient>,
        id_tokens: Arc<dyn TokenValidator>,
    ) -> SignInBuilder {
        SignInBuilder {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_url: redirect_url.into(),
            http,
            id_tokens,
            scopes: vec!["profile".to_owned(), "email".to_owned()],
            session_ttl: DEFAULT_SESSION_TTL,
            landing: "/".to_owned(),
        }
    }

    /// How many people are signed in to this process now.
    pub fn signed_in(&self) -> usize {
        self.inner.sessions.len()
    }
}

impl SignInBuilder {
    /// How long a session lasts (default [`DEFAULT_SESSION_TTL`]).
    #[must_use]
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// Where a browser goes after signing in or out, unless it asked for a
    /// page of this origin (default `/`).
    #[must_use]
    pub fn landing(mut self, path: impl Into<String>) -> Self {
        self.landing = path.into();
        self
    }

    /// Scopes asked for besides `openid` (default `profile email`).
    #[must_use]
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Discovers the provider's endpoints.
    ///
    /// # Errors
    ///
    /// [`SignInError::Config`] for a bad redirect URL or secret,
    /// [`SignInError::Provider`] when discovery fails.
    pub async fn build(self) -> Result<SignIn, SignInError> {
        let redirect = RedirectUrl::new(self.redirect_url.clone()).map_err(|e| {
            SignInError::Config(format!(
                "redirect URL '{}' is not a URL ({e}); use the admin listener's public URL followed by {}",
                self.redirect_url,
                crate::CALLBACK_PATH
            ))
        })?;
        if !redirect.url().path().ends_with(crate::CALLBACK_PATH) {
            return Err(SignInError::Config(format!(
                "redirect URL '{}' must end in {}: that is where the gateway answers the identity provider",
                self.redirect_url,
                crate::CALLBACK_PATH
            )));
        }
        let secure_cookies = redirect.url().scheme() == "https";
        if !secure_cookies && !is_loopback(redirect.url()) {
            return Err(SignInError::Config(format!(
                "redirect URL '{}' is plain HTTP on a non-loopback host: the session cookie would travel in clear; serve the admin listener over TLS",
                self.redirect_url
            )));
        }
        if self.client_secret.trim().is_empty() {
            return Err(SignInError::Config(
                "the client secret is empty: create one in the app registration's Certificates & secrets".into(),
            ));
        }
        let metadata = airlock_identity::provider_metadata(&self.http, &self.issuer)
            .await
            .map_err(SignInError::Provider)?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.client_id),
            Some(ClientSecret::new(self.client_secret)),
        )
        .set_redirect_uri(redirect)
        .set_auth_type(AuthType::RequestBody);
        Ok(SignIn {
            inner: Arc::new(Inner {
                client,
                http: self.http,
                id_tokens: self.id_tokens,
                scopes: self.scopes,
                sessions: Sessions::default(),
                flows: Mutex::default(),
                session_ttl: self.session_ttl,
                landing: self.landing,
            }),
        })
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl Inner {
    /// A new sign-in: the provider's authorization URL (state, nonce, PKCE
    /// S256 challenge) and the flow cookie binding it to this browser.
    pub(crate) fn start(&self, return_to: String) -> Result<Started, SignInError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &self.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let binding = random_token().map_err(|_| SignInError::Random)?;
        let mut flows = self.flows.lock().unwrap_or_else(PoisonError::into_inner);
        let now = SystemTime::now();
        flows.retain(|_, flow| {
            now.duration_since(flow.started)
                .is_ok_and(|age| age < FLOW_LIFETIME)
        });
        if flows.len() >= MAX_FLOWS {
            return Err(SignInError::Busy);
        }
        flows.insert(
            state.secret().clone(),
            Flow {
                verifier,
                nonce,
                binding: binding.clone(),
                return_to,
                started: now,
            },
        );
        Ok(Started {
            url: url.to_string(),
            binding,
        })
    }

    /// The provider sent the browser back with `code` for `state`: redeems
    /// it (with the PKCE verifier), verifies the ID token and its nonce, and
    /// starts a session. Returns the session id and where to go next.
    pub(crate) async fn finish(
        &self,
        state: &str,
        code: String,
        binding: Option<&str>,
    ) -> Result<(String, Session, String), SignInError> {
        let flow = self
            .flows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(state)
            .ok_or(SignInError::UnknownState)?;
        if !binding.is_some_and(|b| same(b, &flow.binding)) {
            return Err(SignInError::OtherBrowser);
        }
        if flow
            .started
            .elapsed()
            .map_or(true, |age| age > FLOW_LIFETIME)
        {
            return Err(SignInError::UnknownState);
        }
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| SignInError::Provider(e.to_string()))?
            .set_pkce_verifier(flow.verifier)
            .request_async(&Transport(&self.http))
            .await
            .map_err(|e| SignInError::Token(token_error(&e)))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| SignInError::Token("the provider answered no id_token".into()))?
            .to_string();
        let verified = self
            .id_tokens
            .validate(&id_token)
            .await
            .map_err(|e| SignInError::IdToken(e.to_string()))?;
        let nonce = verified.raw_claims().get("nonce").and_then(|n| n.as_str());
        if !nonce.is_some_and(|n| same(n, flow.nonce.secret())) {
            return Err(SignInError::IdToken(
                "its nonce is not the one this sign-in sent (a replayed ID token)".into(),
            ));
        }
        let principal = person(&verified);
        let (id, session) = self
            .sessions
            .start(principal, self.session_ttl)
            .map_err(|_| SignInError::Random)?;
        tracing::info!(
            principal = session.principal.id(),
            name = session.principal.display_name().unwrap_or(""),
            "approver signed in"
        );
        Ok((id, session, flow.return_to))
    }
}

/// ID tokens belong to people: the principal is a user, whatever claims an
/// access token would have needed to say so (Entra's ID tokens carry neither
/// `scp` nor `idtyp`).
fn person(verified: &Principal) -> Principal {
    let mut builder = Principal::builder(verified.id(), PrincipalKind::User)
        .tenant_id(verified.tenant_id())
        .groups(verified.groups().iter().cloned())
        .roles(verified.roles().iter().cloned())
        .raw_claims(verified.raw_claims().clone());
    if let Some(name) = verified.display_name() {
        builder = builder.display_name(name);
    }
    if let Some(app) = verified.app_id() {
        builder = builder.app_id(app);
    }
    builder.build()
}

/// The provider's own words, where it gave any (never the code or secret).
fn token_error<RE: std::error::Error + 'static>(
    error: &openidconnect::RequestTokenError<
        RE,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> String {
    match error {
        openidconnect::RequestTokenError::ServerResponse(response) => {
            let description = response.error_description().map_or("", String::as_str);
            format!(
                "the provider refused the code: {} {description}",
                response.error()
            )
        }
        other => format!("the token request failed: {other}"),
    }
}

/// `openidconnect`'s HTTP over Airlock's [`HttpClient`] (a named type with a
/// boxed `Send` future, so the exchange can run inside an axum handler).
struct Transport<'a>(&'a Arc<dyn HttpClient>);

impl<'c> openidconnect::AsyncHttpClient<'c> for Transport<'_> {
    type Error = HttpClientError;
    type Future = airlock_core::BoxFuture<'c, Result<openidconnect::HttpResponse, HttpClientError>>;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let response = self
                .0
                .send(http::Request::from_parts(parts, Bytes::from(body)))
                .await?;
            let (parts, body) = response.into_parts();
            Ok(http::Response::from_parts(parts, body.to_vec()))
        })
    }
}
