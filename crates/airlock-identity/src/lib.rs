//! Every request tied to a verified Entra ID identity.
//!
//! [`IdentityLayer`] reads `Authorization: Bearer <token>`, has a
//! [`TokenValidator`] verify it, removes the header, and puts the caller's
//! [`Principal`](airlock_core::Principal) in the request's extensions.
//! Anything else is answered 401 with a `WWW-Authenticate` challenge and an
//! ARM-shaped body that says what was wrong (never echoing the token):
//!
//! ```
//! use airlock_core::Principal;
//! use airlock_identity::{IdentityLayer, JwtValidator, KeySource};
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let jwks = r#"{"keys":[{"kty":"RSA","kid":"k1","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}]}"#;
//! let validator = JwtValidator::builder()
//!     .tenant("72f988bf-86f1-41af-91ab-2d7cd011db47")
//!     .audience("api://airlock")
//!     .keys(KeySource::Static(jwks.to_owned()))
//!     .build()
//!     .await
//!     .unwrap();
//!
//! let service = ServiceBuilder::new()
//!     .layer(IdentityLayer::new(validator))
//!     .service(service_fn(|request: Request<()>| async move {
//!         let who = request.extensions().get::<Principal>().map(|p| p.id().to_owned());
//!         Ok::<_, std::convert::Infallible>(Response::new(who.unwrap_or_default()))
//!     }));
//!
//! let response = service.oneshot(Request::new(())).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()["www-authenticate"], "Bearer");
//! # });
//! ```
//!
//! [`JwtValidator`] is the Entra ID implementation: issuers and audiences
//! from configuration, RS256 (PS256/ES256 if configured, never `none` or
//! HMAC), `exp`/`nbf`/`iat` with a small leeway, allowed tenants, keys by
//! OIDC discovery or a JWKS URL or document (refreshed on an interval,
//! refetched on an unknown `kid` at most once per interval, the last good set
//! kept while the provider is down), and verified tokens cached until they
//! expire. Group overage goes to a [`GroupResolver`] such as
//! [`GraphGroupResolver`], or is refused: never silently "no groups".

mod bearer;
mod claims;
mod discovery;
mod error;
mod groups;
mod header;
mod jwks;
mod layer;
mod mapping;
mod metrics;
mod providers;
mod proxy;
mod service;
mod token_cache;
mod validator;

pub use discovery::provider_metadata;
pub use error::{AuthError, BuildError};
pub use groups::{GRAPH_URL, GraphGroupResolver, GroupResolver, GroupsError};
pub use jwks::KeySource;
pub use layer::IdentityLayer;
pub use mapping::ClaimMapping;
pub use metrics::IdentityMetrics;
pub use providers::IssuerRouter;
pub use proxy::{ProxyAuthorization, TunnelToken};
pub use service::IdentityService;
pub use validator::{
    DEFAULT_MAX_TOKEN_BYTES, ENTRA_ISSUERS, JwtValidator, JwtValidatorBuilder, TokenValidator,
};

/// Airlock's HTTPS client (feature `https`, on by default), re-exported so
/// an embedder needs no other crate to fetch keys over TLS.
#[cfg(feature = "https")]
pub use airlock_http as http;

/// The default client for discovery, JWKS and Graph: the system's trust
/// roots, `https://` only, 10 s to connect and 30 s per exchange. Pass your
/// own to [`JwtValidatorBuilder::http_client`] for another trust store or
/// a proxy.
///
/// # Errors
///
/// When the system has no trusted root certificates.
#[cfg(feature = "https")]
pub fn https_client()
-> Result<std::sync::Arc<dyn airlock_core::HttpClient>, airlock_http::ClientError> {
    use std::time::Duration;
    let pooled = airlock_http::ClientBuilder::new(airlock_http::TrustRoots::system())
        .connect_timeout(Duration::from_secs(10))
        .build()?;
    Ok(std::sync::Arc::new(airlock_http::HttpsClient::new(
        pooled,
        Duration::from_secs(30),
    )))
}
