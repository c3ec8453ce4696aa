//! The shared vocabulary of Airlock's layers.
//!
//! Every Airlock middleware annotates a request's extensions with one of the
//! types defined here, and every error it returns goes through the one mapping
//! in [`error`], so that clients always see the same ARM-shaped envelope:
//!
//! ```
//! use airlock_core::{AirlockError, ErrorContext};
//!
//! let response = AirlockError::HostNotAllowed { host: "evil.example".into() }
//!     .into_response(&ErrorContext::default().request_id("req-1"));
//! assert_eq!(response.status(), 403);
//! assert_eq!(response.headers()["x-airlock-request-id"], "req-1");
//! ```
//!
//! This crate does no I/O: it holds types, the error mapping and body helpers.

pub mod agent;
pub mod audit;
pub mod body;
pub mod browser;
pub mod decision;
pub mod error;
pub mod html;
pub mod http_client;
pub mod log_capture;
pub mod memory_budget;
pub mod operation;
pub mod operation_pattern;
pub mod origin;
pub mod principal;
pub mod principal_selector;
pub mod reveal;
pub mod scope_pattern;
pub mod serde_time;
pub mod span;
pub mod token;

pub use agent::{Agent, describe_requester};
pub use audit::{AuditDraft, AuditRecord};
pub use body::{
    AirlockBody, BodyError, BoxError, boxed, collect_limited, declared_length, empty, full,
};
pub use browser::{BrowserSession, CSRF_HEADER};
pub use decision::{ApprovalWait, Approvers, Decision, Elevation, QUOTA_RULE_PREFIX};
pub use error::{
    AirlockError, AnsweredByAirlock, ERROR_CODE, ErrorContext, REQUEST_ID, REQUEST_ID_HEADER,
};
pub use html::escape_html;
pub use http_client::{HttpClient, HttpClientError};
pub use log_capture::LogCapture;
pub use memory_budget::{MemoryBudget, Share, Uncollected};
pub use operation::{Operation, Plane, ResourceScope, normalize_id};
pub use operation_pattern::{OperationPattern, PatternError};
pub use origin::ClientOrigin;
pub use principal::{Principal, PrincipalBuilder, PrincipalKind};
pub use principal_selector::{OnBehalfOf, PrincipalSelector};
pub use reveal::{
    MASKED_HEADER, REVEAL_HEADER, REVEALED_HEADER, RevealAsked, RevealGrant, RevealQuorum,
};
pub use scope_pattern::ScopePattern;
pub use span::record_in_current_span;
pub use token::{
    AccessToken, BoxFuture, CallerToken, StaticTokenProvider, TokenError, TokenExchange,
    TokenProvider,
};
