//! Azure knowledge: what each request to Azure does, in the RBAC vocabulary.
//!
//! [`ClassifyLayer`] reads a request (its method, endpoint, path, query and,
//! within a bound, its body) once, names the Azure RBAC operation it performs
//! ([`Operation`](airlock_core::Operation): name, plane, scope, api-version,
//! and the operations it carries as children) and puts it in the request's
//! extensions, with the [`AzureEndpoint`] it resolved; the body goes on
//! buffered ([`AirlockBody::buffered`](airlock_core::AirlockBody::buffered)),
//! so no later layer reads it again. Policy, approval and masking layers
//! then read the extensions; none re-parses the request:
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//!
//! use airlock_azure::{AzureEndpoint, ClassifyLayer};
//! use airlock_core::{AirlockBody, Operation, empty};
//! use http::{Request, Response, StatusCode};
//! use http_body_util::BodyExt;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let service = ServiceBuilder::new()
//!     .layer(ClassifyLayer::new(|_uri: &http::Uri, _headers: &http::HeaderMap| {
//!         Ok(AzureEndpoint::Arm)
//!     }))
//!     .service(service_fn(|request: Request<AirlockBody>| async move {
//!         let op = request.extensions().get::<Operation>().unwrap();
//!         assert_eq!(request.extensions().get::<AzureEndpoint>(), Some(&AzureEndpoint::Arm));
//!         assert!(request.body().buffered().is_some());
//!         Ok::<_, Infallible>(Response::new(format!("{} on {}", op.name(), op.scope())))
//!     }));
//!
//! let request = Request::delete(
//!     "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1?api-version=2024-07-01",
//! )
//! .body(empty())
//! .unwrap();
//! let response = service.clone().oneshot(request).await.unwrap();
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(
//!     body,
//!     "Microsoft.Compute/virtualMachines/delete on /subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
//! );
//!
//! // A request that could be read two ways is refused before it goes further.
//! let request = Request::get("/subscriptions/s1/resourceGroups/a%2Fb?api-version=2022-09-01")
//!     .body(empty())
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::BAD_REQUEST);
//! assert_eq!(response.headers()["x-ms-error-code"], "InvalidRequestUri");
//! # });
//! ```
//!
//! [`classify`] is the pure function underneath, for tests and tools
//! (`airlock policy explain`). It covers:
//!
//! - **ARM** (`management.azure.com`): `{scope}/providers/{Namespace}/{type}/{name}[/{type}/{name}…][/{action}]`
//!   to `Namespace/type[/type…]/read|write|delete` or `…/{action}/action`,
//!   under any scope (extension resources such as role assignments), plus
//!   subscriptions, resource groups, tags and provider registration;
//! - **Key Vault** (`{vault}.vault.azure.net`): secrets, keys and
//!   certificates to data actions (`Microsoft.KeyVault/vaults/secrets/getSecret/action`),
//!   scoped `/providers/Microsoft.KeyVault/vaults/{vault}/…` (a synthetic id:
//!   a vault's host does not say which subscription holds it);
//! - **requests that carry others**: `/batch` (every inner request a child),
//!   deployments (every template resource a `{type}/write` child, `Complete`
//!   mode a `*/delete` child, linked templates an unknown child), resource
//!   group delete (`*/delete` inside it) and move (delete at the source,
//!   write at the target).
//!
//! Names compare case-insensitively (ARM's rule); paths are percent-decoded
//! once; anything two parsers could read differently (encoded separators,
//! dot segments, `//`, method overrides, a repeated `api-version`…) is
//! refused with a `400` that names the problem and the fix. A shape Airlock
//! does not know becomes an unknown operation, which policy denies unless a
//! rule names it: never an error, never a weaker operation.

mod arm_path;
mod batch;
mod blob;
mod classify;
mod deployment;
mod endpoint;
mod error;
mod hygiene;
mod json;
mod key_vault;
mod layer;
mod resource_group;
mod secret_responses;
mod service;

pub use batch::{ARM_HOSTS, BATCH_OPERATION};
pub use classify::{ClassifyRequest, classify};
pub use endpoint::AzureEndpoint;
pub use error::ClassifyError;
pub use layer::{BodyErrorMap, ClassifyLayer, DEFAULT_MAX_BODY_BYTES, EndpointResolver};
pub use secret_responses::{SECRET_RESPONSE_FALLBACKS, SECRET_RESPONSES, SecretResponse};
pub use service::ClassifyService;
