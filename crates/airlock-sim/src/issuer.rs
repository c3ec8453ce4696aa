//! A development token issuer: an OpenID Connect provider shaped like Entra ID
//! for one tenant, minting RS256 access tokens.
//!
//! It serves, on a loopback port:
//! - `GET /{tenant}/v2.0/.well-known/openid-configuration` (discovery),
//! - `GET /{tenant}/discovery/v2.0/keys` (JWKS; also `/{tenant}/discovery/keys`),
//! - `POST /{tenant}/oauth2/v2.0/token` (client credentials for the clients
//!   registered with [`IssuerHandle::register_client`]: a wrong secret is
//!   401 `invalid_client` (AADSTS7000215), an unknown client 400
//!   `unauthorized_client` (AADSTS700016), as Entra answers;
//!   `scope={audience}/.default`), and authorization codes;
//! - `GET`/`POST /{tenant}/oauth2/v2.0/authorize`: people signing in to a web
//!   application with the authorization-code flow and PKCE, picking one of
//!   the users registered with [`IssuerHandle::register_user`] (see the
//!   `sign_in` module).
//!
//! [`IssuerHandle::verifier`] checks the tokens it minted the way ARM and Key
//! Vault do (signature, audience, expiry), so the simulated Azure can accept
//! the gateway's real, expiring credentials instead of one fixed string.
//!
//! Keys are RSA 2048, generated when the issuer starts or rotates; none is
//! ever written to disk.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use airlock_core::PrincipalKind;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::routing::query_pairs;
use crate::timestamp::unix_seconds;
use crate::token_spec::TokenSpec;

/// The development token issuer; see [`DevIssuer::start`].
#[derive(Debug)]
pub struct DevIssuer;

impl DevIssuer {
    /// Generates a signing key and serves discovery, JWKS and a token endpoint
    /// for `tenant_id` on `127.0.0.1` (a free port).
    ///
    /// # Errors
    ///
    /// When the port cannot be bound or the key cannot be generated.
    pub async fn start(tenant_id: &str) -> io::Result<IssuerHandle> {
        Self::start_on(tenant_id, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), None).await
    }

    /// [`start`](Self::start) on `listen`, naming itself `public_url`
    /// (default `http://{bound address}`) in its issuer, discovery and
    /// tokens: for other hosts (containers) to reach it by name.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound or the key cannot be generated.
    pub async fn start_on(
        tenant_id: &str,
        listen: SocketAddr,
        public_url: Option<&str>,
    ) -> io::Result<IssuerHandle> {
        let key = tokio::task::spawn_blocking(SigningKey::generate)
            .await
            .map_err(io::Error::other)??;
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(IssuerState {
            tenant_id: tenant_id.to_owned(),
            base_url: public_url.map_or_else(
                || format!("http://{addr}"),
                |url| url.trim_end_matches('/').to_owned(),
            ),
            keys: Mutex::new(vec![Arc::new(key)]),
            foreign_key: Mutex::new(None),
            available: AtomicBool::new(true),
            jwks_requests: AtomicUsize::new(0),
            clients: Mutex::default(),
            app_id_uris: Mutex::default(),
            federated: Mutex::default(),
            certificates: Mutex::default(),
            app_token_lifetime: Mutex::new(Duration::from_secs(3600)),
            tokens_issued: AtomicUsize::new(0),
            managed_identities: Mutex::default(),
            identity_header: uuid::Uuid::new_v4().to_string(),
            identity_requests: AtomicUsize::new(0),
            failing_identity_requests: AtomicUsize::new(0),
            identity_failure: Mutex::new(StatusCode::TOO_MANY_REQUESTS),
            sign_ins: crate::sign_in::SignIns::default(),
        });
        let app = Router::new()
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(discovery),
            )
            .route("/{tenant}/discovery/v2.0/keys", get(jwks))
            .route("/{tenant}/discovery/keys", get(jwks))
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route(
                "/{tenant}/oauth2/v2.0/authorize",
                get(crate::sign_in::authorize).post(crate::sign_in::pick),
            )
            .route(
                "/metadata/identity/oauth2/token",
                get(crate::managed_identity::imds),
            )
            .route("/msi/token", get(crate::managed_identity::app_service))
            .with_state(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // Also ends when the handle is dropped (the sender goes away).
            let signal = async move {
                let _ = stopped.await;
            };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await
            {
                tracing::warn!(%error, "the development issuer stopped serving");
            }
        });
        tracing::info!(%addr, tenant_id, "development token issuer listening");
        Ok(IssuerHandle {
            addr,
            state,
            stop,
            task,
        })
    }
}

/// One RSA key pair and its public JWK.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
    public_pem: String,
}

impl SigningKey {
    /// A fresh RSA 2048 key; its `kid` is the JWK thumbprint (RFC 7638).
    fn generate() -> io::Result<Self> {
        let pair =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).map_err(io::Error::other)?;
        let encoding =
            EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).map_err(io::Error::other)?;
        let mut jwk =
            Jwk::from_encoding_key(&encoding, Algorithm::RS256).map_err(io::Error::other)?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(io::Error::other)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            kid,
            encoding,
            jwk,
            public_pem: pair.public_key_pem(),
        })
    }

    /// Generates a key where an error return is not possible.
    ///
    /// # Panics
    ///
    /// If the platform cannot generate RSA keys (aws-lc-rs always can).
    fn generate_or_panic() -> Self {
        Self::generate()
            .unwrap_or_else(|error| panic!("generating an RSA 2048 key failed: {error}"))
    }

    /// Signs `claims` under `header`.
    ///
    /// # Panics
    ///
    /// If `header.alg` is not an RSA algorithm.
    fn sign(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding).unwrap_or_else(|error| {
            panic!(
                "the development issuer signs with RSA keys only; {:?} cannot be used: {error}",
                header.alg
            )
        })
    }
}

pub(crate) struct IssuerState {
    tenant_id: String,
    base_url: String,
    /// Published keys; the last one signs.
    keys: Mutex<Vec<Arc<SigningKey>>>,
    /// Made on first use: a key that is never published.
    foreign_key: Mutex<Option<Arc<SigningKey>>>,
    available: AtomicBool,
    jwks_requests: AtomicUsize,
    /// Registered app registrations: client id → secret.
    pub(crate) clients: Mutex<HashMap<String, String>>,
    /// App ID URIs of registered apps, which users' tokens for them may
    /// carry as `aud` (the on-behalf-of grant's assertion).
    pub(crate) app_id_uris: Mutex<HashMap<String, Vec<String>>>,
    /// Certificate credentials: client id → the certificate's public key.
    certificates: Mutex<HashMap<String, CertificateCredential>>,
    /// Federated credentials: client id → the subject its assertions must carry
    /// (tokens this issuer signed, acting as the cluster's OIDC issuer).
    federated: Mutex<HashMap<String, String>>,
    /// How long client-credential and managed-identity tokens live.
    pub(crate) app_token_lifetime: Mutex<Duration>,
    /// Token requests answered with a token.
    pub(crate) tokens_issued: AtomicUsize,
    /// Managed identities; the first is the system-assigned one.
    pub(crate) managed_identities: Mutex<Vec<crate::managed_identity::Identity>>,
    /// The App Service endpoint's `X-IDENTITY-HEADER` secret.
    pub(crate) identity_header: String,
    /// Requests to the managed-identity endpoints.
    pub(crate) identity_requests: AtomicUsize,
    /// How many of the next managed-identity requests fail, and how.
    pub(crate) failing_identity_requests: AtomicUsize,
    pub(crate) identity_failure: Mutex<StatusCode>,
    /// People signing in to web applications (authorization-code flow).
    pub(crate) sign_ins: crate::sign_in::SignIns,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl IssuerState {
    fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.base_url, self.tenant_id)
    }

    fn current_key(&self) -> Arc<SigningKey> {
        let keys = lock(&self.keys);
        match keys.last() {
            Some(key) => key.clone(),
            None => unreachable!("the issuer always holds its current key"),
        }
    }

    pub(crate) fn mint(&self, spec: &TokenSpec) -> String {
        let now = i64::try_from(unix_seconds(SystemTime::now())).unwrap_or(i64::MAX);
        self.sign_claims(&Value::Object(spec.claims(
            &self.base_url,
            &self.tenant_id,
            now,
        )))
    }

    /// `claims`, signed RS256 with the current key, its `kid` in the header.
    pub(crate) fn sign_claims(&self, claims: &Value) -> String {
        let key = self.current_key();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        key.sign(&header, claims)
    }
}

/// A running development issuer. Dropping it stops the server too; prefer
/// [`IssuerHandle::shutdown`], which waits for it.
pub struct IssuerHandle {
    addr: SocketAddr,
    state: Arc<IssuerState>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl fmt::Debug for IssuerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerHandle")
            .field("issuer", &self.issuer())
            .finish_non_exhaustive()
    }
}

impl IssuerHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The v2 issuer: `http://127.0.0.1:PORT/{tenant}/v2.0`.
    pub fn issuer(&self) -> String {
        self.state.issuer()
    }

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer())
    }

    /// `http://127.0.0.1:PORT/{tenant}/discovery/v2.0/keys`.
    pub fn jwks_uri(&self) -> String {
        format!(
            "{}/{}/discovery/v2.0/keys",
            self.state.base_url, self.state.tenant_id
        )
    }

    /// `http://127.0.0.1:PORT/{tenant}/oauth2/v2.0/token` (client credentials).
    pub fn token_endpoint(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.state.base_url, self.state.tenant_id
        )
    }

    /// The tenant the issuer serves.
    pub fn tenant_id(&self) -> &str {
        &self.state.tenant_id
    }

    /// An RS256 access token for `spec`, header `{alg: RS256, typ: JWT, kid}`,
    /// signed with the current key.
    pub fn mint(&self, spec: &TokenSpec) -> String {
        self.state.mint(spec)
    }

    /// Signs any header and claims with the current key, as given (a missing
    /// `kid` stays missing): for crafting tokens a validator must refuse.
    ///
    /// # Panics
    ///
    /// If `header.alg` is not an RSA algorithm (RS256/384/512, PS256/384/512).
    pub fn sign(&self, header: &Header, claims: &Value) -> String {
        self.state.current_key().sign(header, claims)
    }

    /// Signs with an RSA key that is not in the JWKS; a header without `kid`
    /// gets the current key's `kid`, so only the signature gives it away.
    ///
    /// # Panics
    ///
    /// If `header.alg` is not an RSA algorithm.
    pub fn sign_with_foreign_key(&self, header: &Header, claims: &Value) -> String {
        let foreign = lock(&self.state.foreign_key)
            .get_or_insert_with(|| Arc::new(SigningKey::generate_or_panic()))
            .clone();
        let mut header = header.clone();
        if header.kid.is_none() {
            header.kid = Some(self.current_kid());
        }
        foreign.sign(&header, claims)
    }

    /// The current signing key's public key, PEM (SPKI).
    pub fn public_key_pem(&self) -> String {
        self.state.current_key().public_pem.clone()
    }

    /// The current signing key's `kid`.
    pub fn current_kid(&self) -> String {
        self.state.current_key().kid.clone()
    }

    /// Generates a new key pair, which signs from now on and is published
    /// alongside the old ones; returns its `kid`. Blocks while generating.
    pub fn rotate_key(&self) -> String {
        let key = Arc::new(SigningKey::generate_or_panic());
        let kid = key.kid.clone();
        lock(&self.state.keys).push(key);
        kid
    }

    /// Publishes only the current key.
    pub fn retire_old_keys(&self) {
        let mut keys = lock(&self.state.keys);
        let keep = keys.len().saturating_sub(1);
        keys.drain(..keep);
    }

    /// `false` makes discovery, JWKS and the token endpoint answer 503 (the IdP is down).
    pub fn set_available(&self, up: bool) {
        self.state.available.store(up, Ordering::SeqCst);
    }

    /// How many JWKS requests arrived, including those answered 503 while unavailable.
    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }

    /// Registers an app registration that may sign in with client
    /// credentials using `secret`.
    pub fn register_client(&self, client_id: &str, secret: &str) {
        lock(&self.state.clients).insert(client_id.to_owned(), secret.to_owned());
    }

    /// Registers a confidential client (`client_id`, `secret`) whose users'
    /// tokens carry `app_id_uri` as their audience, for the on-behalf-of
    /// grant: it may trade such a token for the same user's token for
    /// another resource.
    pub fn register_on_behalf_of_client(&self, client_id: &str, secret: &str, app_id_uri: &str) {
        self.register_client(client_id, secret);
        lock(&self.state.app_id_uris)
            .entry(client_id.to_owned())
            .or_default()
            .push(app_id_uri.to_owned());
    }

    /// Registers a web application people sign in to (authorization-code
    /// flow): its secret and the redirect URIs it may use.
    pub fn register_sign_in_client(&self, client_id: &str, secret: &str, redirect_uris: &[&str]) {
        lock(&self.state.sign_ins.clients).insert(
            client_id.to_owned(),
            crate::sign_in::SignInClient {
                secret: secret.to_owned(),
                redirect_uris: redirect_uris.iter().map(|&u| u.to_owned()).collect(),
            },
        );
    }

    /// Adds a user to the sign-in page's account picker (a user
    /// [`TokenSpec`], such as [`TokenSpec::approver`]).
    pub fn register_user(&self, user: TokenSpec) {
        lock(&self.state.sign_ins.users).push(user);
    }

    /// `http://127.0.0.1:PORT/{tenant}/oauth2/v2.0/authorize` (sign-in).
    pub fn authorization_endpoint(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/authorize",
            self.state.base_url, self.state.tenant_id
        )
    }

    /// Registers an app registration with a certificate credential: its
    /// public key (PEM), its `x5t#S256` thumbprint, and whether it has
    /// expired (Entra then refuses with AADSTS700027).
    pub fn register_certificate_client(
        &self,
        client_id: &str,
        public_key_pem: &str,
        x5t_s256: &str,
        expired: bool,
    ) {
        lock(&self.state.clients)
            .entry(client_id.to_owned())
            .or_insert_with(|| uuid::Uuid::new_v4().to_string());
        lock(&self.state.certificates).insert(
            client_id.to_owned(),
            CertificateCredential {
                public_key_pem: public_key_pem.to_owned(),
                x5t_s256: x5t_s256.to_owned(),
                expired,
            },
        );
    }

    /// Registers an app registration that trusts federated tokens (workload
    /// identity): assertions signed by this issuer, for audience
    /// [`FEDERATED_AUDIENCE`], with subject `subject` (e.g.
    /// `system:serviceaccount:airlock:gateway`).
    pub fn register_federated_client(&self, client_id: &str, subject: &str) {
        lock(&self.state.clients)
            .entry(client_id.to_owned())
            .or_insert_with(|| uuid::Uuid::new_v4().to_string());
        lock(&self.state.federated).insert(client_id.to_owned(), subject.to_owned());
    }

    /// A federated token for `subject`, as a Kubernetes cluster's OIDC
    /// issuer projects it into `AZURE_FEDERATED_TOKEN_FILE`, valid for `lifetime`.
    pub fn federated_token(&self, subject: &str, lifetime: Duration) -> String {
        let now = unix_seconds(SystemTime::now());
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.current_kid());
        self.sign(
            &header,
            &json!({
                "iss": self.issuer(),
                "sub": subject,
                "aud": FEDERATED_AUDIENCE,
                "iat": now,
                "nbf": now,
                "exp": now + lifetime.as_secs(),
                "jti": uuid::Uuid::new_v4().to_string(),
            }),
        )
    }

    /// How long client-credential tokens live from now on (default an
    /// hour, as Entra's): short lifetimes make refreshes visible.
    pub fn set_app_token_lifetime(&self, lifetime: Duration) {
        *lock(&self.state.app_token_lifetime) = lifetime;
    }

    /// Registers a managed identity the IMDS and App Service endpoints issue
    /// tokens for; the first registered is the system-assigned one.
    pub fn register_managed_identity(&self, client_id: &str, object_id: &str, resource_id: &str) {
        lock(&self.state.managed_identities).push(crate::managed_identity::Identity {
            client_id: client_id.to_owned(),
            object_id: object_id.to_owned(),
            resource_id: resource_id.to_owned(),
        });
    }

    /// The IMDS token endpoint, as `http://169.254.169.254/metadata/identity/oauth2/token` is reached on Azure.
    pub fn imds_endpoint(&self) -> String {
        format!("{}/metadata/identity/oauth2/token", self.state.base_url)
    }

    /// The App Service identity endpoint (`IDENTITY_ENDPOINT`) and its secret (`IDENTITY_HEADER`).
    pub fn app_service_identity(&self) -> (String, String) {
        (
            format!("{}/msi/token", self.state.base_url),
            self.state.identity_header.clone(),
        )
    }

    /// The next `count` managed-identity requests fail with `status` (IMDS answers 429 when throttled).
    pub fn fail_identity_requests(&self, count: usize, status: StatusCode) {
        *lock(&self.state.identity_failure) = status;
        self.state
            .failing_identity_requests
            .store(count, Ordering::SeqCst);
    }

    /// Requests to the managed-identity endpoints, failed ones included.
    pub fn identity_requests(&self) -> usize {
        self.state.identity_requests.load(Ordering::SeqCst)
    }

    /// How many client-credential and managed-identity tokens were issued.
    pub fn tokens_issued(&self) -> usize {
        self.state.tokens_issued.load(Ordering::SeqCst)
    }

    /// Checks tokens this issuer minted as ARM and Key Vault do; give it to
    /// [`SimBuilder::trust_issuer`](crate::SimBuilder::trust_issuer).
    pub fn verifier(&self) -> TokenVerifier {
        TokenVerifier {
            state: self.state.clone(),
        }
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "the development issuer's task failed");
        }
    }
}

/// Entra-style error bodies (`{"error":"…","error_description":"AADSTS…"}`).
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({ "error": error, "error_description": description }),
    )
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    response
}

/// 503 while unavailable, 400 for another tenant.
pub(crate) fn refuse(state: &IssuerState, tenant: &str) -> Option<Response> {
    if !state.available.load(Ordering::SeqCst) {
        return Some(oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "AADSTS90033: A transient error has occurred. The development issuer is set unavailable.",
        ));
    }
    if tenant != state.tenant_id {
        return Some(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            &format!(
                "AADSTS90002: Tenant '{tenant}' not found. This development issuer serves '{}'.",
                state.tenant_id
            ),
        ));
    }
    None
}

async fn discovery(State(state): State<Arc<IssuerState>>, Path(tenant): Path<String>) -> Response {
    if let Some(refused) = refuse(&state, &tenant) {
        return refused;
    }
    let base = format!("{}/{}", state.base_url, state.tenant_id);
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": state.issuer(),
            "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
            "token_endpoint": format!("{base}/oauth2/v2.0/token"),
            "jwks_uri": format!("{base}/discovery/v2.0/keys"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "nbf", "name", "preferred_username", "oid", "tid", "ver", "azp", "roles", "groups"
            ],
            "request_uri_parameter_supported": false,
            "tenant_region_scope": "EU",
        }),
    )
}

async fn jwks(State(state): State<Arc<IssuerState>>, Path(tenant): Path<String>) -> Response {
    state.jwks_requests.fetch_add(1, Ordering::SeqCst);
    if let Some(refused) = refuse(&state, &tenant) {
        return refused;
    }
    let set = JwkSet {
        keys: lock(&state.keys)
            .iter()
            .map(|key| key.jwk.clone())
            .collect(),
    };
    match serde_json::to_value(&set) {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(error) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            &error.to_string(),
        ),
    }
}

/// Client credentials: `grant_type=client_credentials&client_id=…&client_secret=…&scope={aud}/.default`.
async fn token(
    State(state): State<Arc<IssuerState>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(refused) = refuse(&state, &tenant) {
        return refused;
    }
    let form = query_pairs(Some(&String::from_utf8_lossy(&body)));
    let field = |name: &str| {
        form.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    match field("grant_type") {
        Some("client_credentials") => {}
        Some("authorization_code") => return crate::sign_in::redeem(&state, &form),
        Some(crate::obo::JWT_BEARER) => return crate::obo::exchange(&state, &form),
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "AADSTS70003: The app requested an unsupported grant type; this development issuer supports client_credentials, authorization_code and on-behalf-of (jwt-bearer).",
            );
        }
    }
    let Some(client_id) = field("client_id") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        );
    };
    if field("client_secret").is_none() && field("client_assertion").is_none() {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        );
    }
    let registered = lock(&state.clients).get(client_id).cloned();
    let Some(secret) = registered else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!(
                "AADSTS700016: Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant."
            ),
        );
    };
    if field("client_secret").is_none() {
        let assertion = field("client_assertion").unwrap_or_default();
        let certificate = lock(&state.certificates).get(client_id).cloned();
        let checked = match certificate {
            Some(certificate) => {
                let audience = format!("{}/{}/oauth2/v2.0/token", state.base_url, tenant);
                certificate.check(assertion, client_id, &audience)
            }
            None => {
                let subject = lock(&state.federated).get(client_id).cloned();
                check_federated(&state, assertion, subject.as_deref())
                    .map_err(|refusal| (StatusCode::BAD_REQUEST, refusal))
            }
        };
        if let Err((status, refusal)) = checked {
            return oauth_error(status, "invalid_client", &refusal);
        }
    }
    if let Some(sent) = field("client_secret")
        && sent != secret
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            &format!(
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        );
    }
    let scope = field("scope").unwrap_or_default();
    let Some(audience) = scope
        .strip_suffix("/.default")
        .filter(|a| !a.is_empty() && !a.contains(' '))
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!(
                "AADSTS1002012: The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    };
    let digest = Sha256::digest(format!("airlock-sim/service-principal/{client_id}"));
    let object_id =
        uuid::Builder::from_random_bytes(digest[..16].try_into().unwrap_or_default()).into_uuid();
    let spec = TokenSpec::new(
        client_id,
        object_id.to_string(),
        PrincipalKind::Application,
        client_id,
    )
    .audience(audience)
    .lifetime(*lock(&state.app_token_lifetime));
    let lifetime = spec.lifetime.as_secs();
    state.tokens_issued.fetch_add(1, Ordering::SeqCst);
    json_response(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": state.mint(&spec),
        }),
    )
}

/// A certificate credential of an app registration.
#[derive(Clone)]
struct CertificateCredential {
    public_key_pem: String,
    x5t_s256: String,
    expired: bool,
}

impl CertificateCredential {
    /// Checks a client assertion as Entra does: the registered certificate
    /// (by `x5t#S256`), its signature (RS256 or PS256), `aud` = the token
    /// URL, `iss` = `sub` = the client, at most 10 minutes of validity.
    fn check(
        &self,
        assertion: &str,
        client_id: &str,
        token_url: &str,
    ) -> Result<(), (StatusCode, String)> {
        let invalid = |message: &str| (StatusCode::UNAUTHORIZED, message.to_owned());
        let header = jsonwebtoken::decode_header(assertion)
            .map_err(|_| invalid("AADSTS50027: JWT token is invalid or malformed."))?;
        if header.x5t_s256.as_deref() != Some(self.x5t_s256.as_str()) {
            return Err(invalid(
                "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application.",
            ));
        }
        if self.expired {
            return Err(invalid(
                "AADSTS700027: The certificate with identifier used to sign the client assertion is expired on application.",
            ));
        }
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
            return Err(invalid(
                "AADSTS5002730: Invalid JWT token. Unsupported key for the signing algorithm.",
            ));
        }
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(self.public_key_pem.as_bytes())
            .map_err(|_| invalid("AADSTS700027: Client assertion failed signature validation."))?;
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_audience(&[token_url]);
        validation.set_issuer(&[client_id]);
        validation.leeway = 0;
        let data =
            jsonwebtoken::decode::<Value>(assertion, &key, &validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => invalid(
                        "AADSTS700024: Client assertion is not within its valid time range.",
                    ),
                    jsonwebtoken::errors::ErrorKind::InvalidAudience => invalid(
                        "AADSTS700016: The client assertion's audience must be the token endpoint.",
                    ),
                    _ => invalid("AADSTS700027: Client assertion failed signature validation."),
                }
            })?;
        let claims = data.claims;
        let lifetime = claims["exp"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(claims["nbf"].as_u64().unwrap_or(0));
        if claims["sub"] != client_id || lifetime > 600 {
            return Err(invalid(
                "AADSTS700023: The client assertion's subject or lifetime is invalid.",
            ));
        }
        Ok(())
    }
}

/// The audience Entra expects of federated tokens.
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Checks a federated client assertion as Entra does for workload identity.
fn check_federated(
    state: &Arc<IssuerState>,
    assertion: &str,
    subject: Option<&str>,
) -> Result<(), String> {
    let Some(subject) = subject else {
        return Err(
            "AADSTS70021: No matching federated identity record found for presented assertion."
                .into(),
        );
    };
    let verifier = TokenVerifier {
        state: state.clone(),
    };
    let claims = verifier
        .verify(assertion, FEDERATED_AUDIENCE)
        .map_err(|why| match why {
            TokenRejection::Expired => {
                "AADSTS700024: Client assertion is not within its valid time range.".to_owned()
            }
            _ => "AADSTS700211: No matching federated identity record found for presented assertion issuer.".to_owned(),
        })?;
    let sent = claims["sub"].as_str().unwrap_or_default();
    if sent != subject {
        return Err(format!(
            "AADSTS700213: No matching federated identity record found for presented assertion subject '{sent}'."
        ));
    }
    Ok(())
}

/// Checks a bearer token the way ARM and Key Vault do: signed by one of the
/// issuer's published keys, for the expected audience, not expired. From
/// [`IssuerHandle::verifier`].
#[derive(Clone)]
pub struct TokenVerifier {
    state: Arc<IssuerState>,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.state.issuer())
            .finish()
    }
}

/// Why a token was refused, as Azure says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRejection {
    /// `ExpiredAuthenticationToken`.
    Expired,
    /// `InvalidAuthenticationToken` (signature, issuer, malformed) or
    /// `InvalidAuthenticationTokenAudience`.
    Invalid,
    /// `InvalidAuthenticationTokenAudience`.
    WrongAudience,
}

impl TokenVerifier {
    /// The token's claims if it is valid for `audience` (with or without a
    /// trailing `/`, as Azure accepts both).
    ///
    /// # Errors
    ///
    /// Why it is not.
    pub fn verify(&self, token: &str, audience: &str) -> Result<Value, TokenRejection> {
        self.state.verify(token, audience)
    }
}

impl IssuerState {
    /// A token this issuer signed, valid now, for `audience`.
    pub(crate) fn verify(&self, token: &str, audience: &str) -> Result<Value, TokenRejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Invalid)?;
        let key = lock(&self.keys)
            .iter()
            .find(|key| header.kid.as_deref() == Some(key.kid.as_str()))
            .cloned()
            .ok_or(TokenRejection::Invalid)?;
        let decoding = jsonwebtoken::DecodingKey::from_rsa_pem(key.public_pem.as_bytes())
            .map_err(|_| TokenRejection::Invalid)?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.set_issuer(&[self.issuer()]);
        validation.validate_aud = false;
        validation.leeway = 0;
        let data =
            jsonwebtoken::decode::<Value>(token, &decoding, &validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenRejection::Expired,
                    _ => TokenRejection::Invalid,
                }
            })?;
        let aud = data.claims["aud"].as_str().unwrap_or_default();
        if aud.trim_end_matches('/') != audience.trim_end_matches('/') {
            return Err(TokenRejection::WrongAudience);
        }
        Ok(data.claims)
    }
}
