//! Browser sign-in for approvers: the OpenID Connect authorization-code flow
//! with PKCE against Entra ID (or any OpenID provider), server-side
//! sessions, and CSRF tokens.
//!
//! - [`SignIn::routes`] serves [`SIGN_IN_PATH`] (to the provider, with
//!   `state`, `nonce` and an S256 code challenge; a `SameSite=Lax` flow
//!   cookie binds the sign-in to the browser), [`CALLBACK_PATH`] (redeems
//!   the code with the PKCE verifier and the client secret, verifies the
//!   ID token with a [`TokenValidator`](airlock_identity::TokenValidator)
//!   and its nonce, and sets the session cookie `airlock_session`:
//!   `HttpOnly; Secure; SameSite=Strict`) and [`SIGN_OUT_PATH`].
//! - [`SignIn::layer`] puts a signed-in person's
//!   [`Principal`](airlock_core::Principal) and [`BrowserSession`] on their
//!   requests, and refuses their changes (anything but `GET`, `HEAD`,
//!   `OPTIONS`) without the session's CSRF token in [`CSRF_HEADER`].
//!   Requests without a session take the layer it wraps (the identity layer).
//!
//! What a signed-in person may do is not decided here: the services behind
//! the layer apply the same rules to them as to a bearer token's principal.
//!
//! Sessions live in the process: a restart signs everyone out, and replicas
//! each keep their own (sticky sessions, or one admin replica).
//!
//! ```no_run
//! use std::sync::Arc;
//! use airlock_identity::{IdentityLayer, JwtValidator, KeySource};
//! use airlock_signin::SignIn;
//!
//! # async fn run(
//! #     http: Arc<dyn airlock_core::HttpClient>,
//! #     api: axum::Router,
//! #     agents: JwtValidator,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = "https://login.microsoftonline.com/<tenant>/v2.0";
//! let id_tokens = JwtValidator::builder()
//!     .tenant("<tenant>")
//!     .audience("<approver app client id>")
//!     .keys(KeySource::Discovery(issuer.into()))
//!     .build()
//!     .await?;
//! let sign_in = SignIn::builder(
//!     issuer,
//!     "<approver app client id>",
//!     std::env::var("APPROVER_APP_SECRET")?,
//!     "https://airlock-admin.example.com/ui/signin/callback",
//!     http,
//!     Arc::new(id_tokens),
//! )
//! .landing("/ui/approvals")
//! .build()
//! .await?;
//! // Browsers with a session, or API clients with a bearer token (`agents`
//! // verifies those, as the identity layer in front of the agents' API does).
//! let app = sign_in
//!     .routes()
//!     .merge(api.layer(sign_in.layer(IdentityLayer::new(agents))));
//! # Ok(()) }
//! ```

mod error;
mod flow;
mod layer;
mod routes;
mod sessions;

pub use airlock_core::{BrowserSession, CSRF_HEADER};
pub use error::SignInError;
pub use flow::{DEFAULT_SESSION_TTL, SignIn, SignInBuilder};
pub use layer::{SignInLayer, SignInService};
pub use routes::{CALLBACK_PATH, SIGN_IN_PATH, SIGN_OUT_PATH};
pub use sessions::SESSION_COOKIE;
