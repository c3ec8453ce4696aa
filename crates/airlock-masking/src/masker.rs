//! [`Masker`]: the extension point the masking layer asks.

use std::sync::Arc;

use airlock_core::{Operation, Principal};
use bytes::Bytes;

use crate::MaskError;

/// Decides which responses must be masked, and masks bodies.
///
/// [`JsonMasker`](crate::JsonMasker) is the built-in one (rules by operation
/// and JSON path, plus detectors). Implement it to mask differently; the
/// [`MaskingLayer`](crate::MaskingLayer) does the HTTP work (buffering within
/// a limit, decoding, headers, audit copies, refusing what cannot be masked).
/// Masking runs on every response the layer inspects, so it must not block.
///
/// ```
/// use airlock_core::{Operation, Plane, ResourceScope};
/// use airlock_masking::{MaskContext, MaskError, MaskOutcome, Masker};
///
/// /// Withholds every value of Key Vault secrets, whatever the body.
/// struct NoSecrets;
///
/// impl Masker for NoSecrets {
///     fn must_mask(&self, operation: &Operation) -> bool {
///         operation.flatten().iter().any(|op| op.name().contains("/secrets/"))
///     }
///     fn mask(&self, context: &MaskContext<'_>, body: &[u8]) -> Result<MaskOutcome, MaskError> {
///         if !self.must_mask(context.operation) || body.is_empty() {
///             return Ok(MaskOutcome::unchanged());
///         }
///         Ok(MaskOutcome {
///             body: Some(r#"{"value":"***"}"#.into()),
///             count: 1,
///             paths: vec!["$.value".into()],
///         })
///     }
/// }
///
/// let get = Operation::new(
///     "Microsoft.KeyVault/vaults/secrets/getSecret/action",
///     Plane::Data,
///     ResourceScope::new("/providers/Microsoft.KeyVault/vaults/v1/secrets/db"),
/// );
/// let context = MaskContext::new(&get).content_type(Some("application/json"));
/// let outcome = NoSecrets.mask(&context, br#"{"value":"hunter2"}"#).unwrap();
/// assert_eq!(outcome.count, 1);
/// assert_eq!(outcome.body.unwrap(), r#"{"value":"***"}"#);
/// ```
pub trait Masker: Send + Sync + 'static {
    /// Whether responses to `operation` (or any operation it carries) must
    /// be masked: if so the body must be read, parsed and masked, and any
    /// failure refuses (502) rather than passes through.
    fn must_mask(&self, operation: &Operation) -> bool;

    /// Masks one whole body, read or sent for `context`.
    /// `Ok(outcome)` with `outcome.body == None` means unchanged.
    ///
    /// # Errors
    ///
    /// Why the body cannot be masked (never quoting it).
    fn mask(&self, context: &MaskContext<'_>, body: &[u8]) -> Result<MaskOutcome, MaskError>;
}

impl<M: Masker + ?Sized> Masker for Arc<M> {
    fn must_mask(&self, operation: &Operation) -> bool {
        (**self).must_mask(operation)
    }
    fn mask(&self, context: &MaskContext<'_>, body: &[u8]) -> Result<MaskOutcome, MaskError> {
        (**self).mask(context, body)
    }
}

/// What a body is masked for: the operation, who asked, the media type.
///
/// ```
/// use airlock_core::{Operation, Plane, Principal, PrincipalKind, ResourceScope};
/// use airlock_masking::MaskContext;
///
/// let op = Operation::new("Microsoft.Resources/subscriptions/read", Plane::Management, ResourceScope::new("/subscriptions/s"));
/// let agent = Principal::builder("oid-agent", PrincipalKind::Application).build();
/// let context = MaskContext::new(&op).principal(Some(&agent)).content_type(Some("application/json"));
/// assert_eq!(context.principal.map(Principal::id), Some("oid-agent"));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MaskContext<'a> {
    /// The operation the body belongs to (its request or its answer).
    pub operation: &'a Operation,
    /// Who asked, when known: tokens are never comparable across principals.
    pub principal: Option<&'a Principal>,
    /// The body's media type (`Content-Type`), when given.
    pub content_type: Option<&'a str>,
    /// A reveal rule or approval lets the client have the values the
    /// masker's rules select in clear: leave them (and only them) as they
    /// are. The layer masks the body a second time without this for the
    /// audit trail, and takes what differs as revealed, so a masker that
    /// ignores it reveals nothing.
    pub reveal: bool,
    /// The body is a request's, which a client sends (kept, masked, in the
    /// audit trail and shown to approvers): members named like a password
    /// or secret (`adminPassword`, `clientSecret`, `pwd`) are masked whole,
    /// whatever their value looks like.
    pub request: bool,
}

impl<'a> MaskContext<'a> {
    /// For a body of `operation`, nobody identified, no media type.
    pub fn new(operation: &'a Operation) -> Self {
        Self {
            operation,
            principal: None,
            content_type: None,
            reveal: false,
            request: false,
        }
    }

    /// Who asked.
    #[must_use]
    pub fn principal(mut self, principal: Option<&'a Principal>) -> Self {
        self.principal = principal;
        self
    }

    /// The body's media type.
    #[must_use]
    pub fn content_type(mut self, content_type: Option<&'a str>) -> Self {
        self.content_type = content_type;
        self
    }

    /// A request's body (see [`request`](Self::request)).
    #[must_use]
    pub fn request_body(mut self) -> Self {
        self.request = true;
        self
    }

    /// Leave rule-selected values in clear (see [`reveal`](Self::reveal)).
    #[must_use]
    pub fn revealing(mut self, reveal: bool) -> Self {
        self.reveal = reveal;
        self
    }
}

/// What masking one body did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MaskOutcome {
    /// The masked body, or `None` when it is unchanged.
    pub body: Option<Bytes>,
    /// How many values were masked.
    pub count: u32,
    /// Where, one entry per masked value: `$.keys[0].value`, or
    /// `$.properties.connectionString (AccountKey)` for a detector's hit
    /// inside a string (`$ (…)` for a text body). Never values.
    pub paths: Vec<String>,
}

impl MaskOutcome {
    /// Nothing masked.
    pub fn unchanged() -> Self {
        Self::default()
    }
}
