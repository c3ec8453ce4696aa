//! [`PolicyLayer`]: the engine shared by every [`PolicyService`](crate::PolicyService).

use std::sync::Arc;

use tower::Layer;

use crate::{PolicyEngine, PolicyService};

/// Decides every request with a [`PolicyEngine`]: the [`Decision`](airlock_core::Decision)
/// goes into the request's extensions; a denial is answered 403
/// `AirlockPolicyDenied` naming the operation and the rule.
///
/// It needs the [`Principal`](airlock_core::Principal) and the
/// [`Operation`](airlock_core::Operation) of earlier layers; a request without
/// them is refused (a missing layer fails closed).
#[derive(Clone)]
pub struct PolicyLayer {
    engine: Arc<dyn PolicyEngine>,
}

impl std::fmt::Debug for PolicyLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyLayer").finish_non_exhaustive()
    }
}

impl PolicyLayer {
    /// Decides with `engine`.
    pub fn new(engine: impl PolicyEngine) -> Self {
        Self {
            engine: Arc::new(engine),
        }
    }
}

impl<S> Layer<S> for PolicyLayer {
    type Service = PolicyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PolicyService {
            inner,
            engine: self.engine.clone(),
        }
    }
}
