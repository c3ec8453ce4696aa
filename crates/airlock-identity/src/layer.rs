//! [`IdentityLayer`]: configuration shared by every [`IdentityService`].

use std::sync::Arc;

use tower::Layer;

use crate::{IdentityService, TokenValidator};

/// Requires a valid bearer token on every request and puts the caller's
/// [`Principal`](airlock_core::Principal) in the request's extensions.
#[derive(Clone)]
pub struct IdentityLayer {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) validator: Arc<dyn TokenValidator>,
    /// Extra `WWW-Authenticate` parameters (`authorization`, `resource`).
    pub(crate) challenge: Vec<(String, String)>,
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
            }),
        }
    }

    /// Tells clients where to get a token: every 401's `WWW-Authenticate`
    /// carries `authorization="{authority}/{tenant}", resource="{resource}"`,
    /// the challenge Azure Key Vault sends, which Azure SDKs answer by asking
    /// that tenant for a token for `resource`.
    #[must_use]
    pub fn challenge(mut self, authority: &str, tenant: &str, resource: &str) -> Self {
        Arc::make_mut(&mut self.shared).challenge = vec![
            (
                "authorization".into(),
                format!("{}/{tenant}", authority.trim_end_matches('/')),
            ),
            ("resource".into(), resource.to_owned()),
        ];
        self
    }
}

impl<S> Layer<S> for IdentityLayer {
    type Service = IdentityService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IdentityService {
            inner,
            shared: self.shared.clone(),
        }
    }
}
