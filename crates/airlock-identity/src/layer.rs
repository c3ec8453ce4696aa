//! [`IdentityLayer`]: configuration shared by every [`Identity`] service.

use std::sync::Arc;

use tower::Layer;

use crate::{Identity, TokenValidator};

/// Requires a valid bearer token on every request and puts the caller's
/// [`Principal`](airlock_core::Principal) in the request's extensions.
#[derive(Clone)]
pub struct IdentityLayer {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) validator: Arc<dyn TokenValidator>,
    /// Extra `WWW-Authenticate` parameters (`authorization`, `resource`).
    pub(crate) challenge: Vec<(String, String)>,
    pub(crate) max_token_bytes: usize,
}

impl std::fmt::Debug for IdentityLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityLayer")
            .field("challenge", &self.shared.challenge)
            .finish_non_exhaustive()
    }
}

impl IdentityLayer {
    /// Validates tokens with `validator`.
    pub fn new(validator: impl TokenValidator) -> Self {
        Self::from_arc(Arc::new(validator))
    }

    /// Validates tokens with a shared validator.
    pub fn from_arc(validator: Arc<dyn TokenValidator>) -> Self {
        Self {
            shared: Arc::new(Shared {
                validator,
                challenge: Vec::new(),
                max_token_bytes: 16 * 1024,
            }),
        }
    }

    /// Tells clients where to get a token: every 401's `WWW-Authenticate`
    /// carries `authorization="{authority}/{tenant}", resource="{resource}"`,
    /// the challenge Azure Key Vault sends, which Azure SDKs answer by asking
    /// that tenant for a token for `resource`.
    #[must_use]
    pub fn challenge(self, authority: &str, tenant: &str, resource: &str) -> Self {
        self.with(|s| {
            s.challenge = vec![
                (
                    "authorization".into(),
                    format!("{}/{tenant}", authority.trim_end_matches('/')),
                ),
                ("resource".into(), resource.to_owned()),
            ];
        })
    }

    /// The longest `Authorization` value read (default 16 KiB); longer is a 401.
    #[must_use]
    pub fn max_token_bytes(self, limit: usize) -> Self {
        self.with(|s| s.max_token_bytes = limit)
    }

    fn with(self, change: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Shared {
            validator: self.shared.validator.clone(),
            challenge: self.shared.challenge.clone(),
            max_token_bytes: self.shared.max_token_bytes,
        };
        change(&mut shared);
        Self {
            shared: Arc::new(shared),
        }
    }
}

impl<S> Layer<S> for IdentityLayer {
    type Service = Identity<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Identity {
            inner,
            shared: self.shared.clone(),
        }
    }
}
