//! Secrets out of Azure's responses, before an agent sees them.
//!
//! [`MaskingLayer`] asks a [`Masker`] about every response. Values that
//! rules select (`$.keys[*].value` of `listKeys`) become tokens,
//! `***MASKED:<8 hex>***`, an HMAC under a per-deployment [`TokenKey`] keyed
//! by who read the value, from which resource and in which field: the same
//! principal reading the same key twice gets the same token (so it can tell
//! two keys apart, or see one was rotated, without seeing either), and no
//! value the agent writes elsewhere can ever produce it. Secret shapes the
//! detectors find in any text (connection strings, SAS signatures, JWTs, PEM
//! private keys, storage keys) become [`REDACTED`], `***MASKED***`: that
//! text may be the agent's own (a tag, a URL echoed in an error), so it gets
//! nothing a guess could be compared with.
//!
//! ```
//! use std::convert::Infallible;
//!
//! use airlock_core::{AirlockBody, Operation, Plane, ResourceScope, empty};
//! use airlock_masking::{JsonMasker, MaskRule, MaskingLayer, TokenKey};
//! use http::{Request, Response};
//! use http_body_util::BodyExt;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let masker = JsonMasker::builder(TokenKey::generate().unwrap())
//!     .rule(MaskRule::new(["Microsoft.Storage/storageAccounts/listKeys/action"], ["$.keys[*].value"]).unwrap())
//!     .build();
//! let list_keys = Operation::new(
//!     "Microsoft.Storage/storageAccounts/listKeys/action",
//!     Plane::Management,
//!     ResourceScope::new("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st"),
//! );
//! let service = ServiceBuilder::new()
//!     // In the gateway, the classify layer puts the operation there.
//!     .map_request(move |mut request: Request<AirlockBody>| {
//!         request.extensions_mut().insert(list_keys.clone());
//!         request
//!     })
//!     .layer(MaskingLayer::new(masker))
//!     .service(service_fn(|request: Request<AirlockBody>| async move {
//!         // Azure is asked for an uncompressed body.
//!         assert_eq!(request.headers()["accept-encoding"], "identity");
//!         let body = r#"{"keys":[{"keyName":"key1","value":"c2VjcmV0LWtleS0x","permissions":"FULL"}]}"#;
//!         Ok::<_, Infallible>(
//!             Response::builder().header("content-type", "application/json").body(body.to_owned()).unwrap(),
//!         )
//!     }));
//!
//! let request = Request::post("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st/listKeys")
//!     .header("accept-encoding", "gzip, br")
//!     .body(empty())
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.headers()["x-airlock-masked"], "1");
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! let body = std::str::from_utf8(&body).unwrap();
//! assert!(body.starts_with(r#"{"keys":[{"keyName":"key1","value":"***MASKED:"#), "{body}");
//! assert!(!body.contains("c2VjcmV0LWtleS0x"));
//! # });
//! ```
//!
//! Per request, the layer:
//!
//! - asks Azure for `Accept-Encoding: identity` (the client's preference
//!   is dropped) and forwards the request body unchanged; when an
//!   [`AuditDraft`](airlock_core::AuditDraft) is present, it records a
//!   masked, size-capped copy of the request body in it;
//! - passes `HEAD` responses, `204` and `304` untouched, and streams binary
//!   responses (neither JSON nor `text/*`) no rule covers without buffering;
//! - reads every other response within a limit (16 MiB by default), decodes
//!   gzip, masks it, drops `Content-Length` and `Content-Encoding` when it
//!   rewrote the body, adds [`x-airlock-masked: <count>`](MASKED_HEADER) and
//!   records the count, the paths and a masked excerpt in the audit draft.
//!
//! [`RevealRule`]s let named principals have named operations' answers in
//! clear, by themselves or, with [`RevealRule::by_approval`], once a human
//! approved the one request the agent sent with `x-airlock-reveal: <why>`
//! (the [`RevealLayer`], before the approval layer, turns the header into
//! that approval). The audit draft keeps the masked excerpt either way, and
//! records where values were revealed and by what.
//!
//! It fails closed: a response it had to inspect and could not (larger than
//! the limit, compressed other than gzip, not JSON when a rule says it must
//! be masked) is withheld with `502 AirlockMaskingFailed`, in the ARM error
//! shape, never passed through. That holds for JSON and text responses no
//! rule covers too: the detectors could not run on them, and a secret may
//! sit in any response (an ARM deployment's outputs, an app's settings).
//! Logs carry counts and paths, never values.

mod detectors;
mod encoding;
mod error;
mod excerpt;
mod json_masker;
mod json_path;
mod json_scan;
mod key_file;
mod layer;
mod masker;
mod media_type;
mod metadata;
mod metrics;
mod reveal;
mod reveal_layer;
mod rule;
mod rule_index;
mod service;
mod splice;
mod token;
mod xml;

pub use error::MaskError;
pub use excerpt::{DEFAULT_EXCERPT_BYTES, request_excerpt};
pub use json_masker::{JsonMasker, JsonMaskerBuilder};
pub use key_file::KeyFileError;
pub use layer::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BUFFERED_BYTES, MaskingLayer};
pub use masker::{MaskContext, MaskOutcome, Masker};
pub use metrics::MaskingMetrics;
pub use reveal::{RevealApproval, RevealRule};
pub use reveal_layer::{RevealLayer, RevealService};
pub use rule::MaskRule;
pub use service::{MASKED_HEADER, MaskingService};
pub use token::{REDACTED, TOKEN_PREFIX, TokenKey, TokenScope, is_masked_token};
