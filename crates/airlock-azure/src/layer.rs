//! [`ClassifyLayer`]: configuration shared by every [`Classify`] service.

use std::sync::Arc;

use airlock_core::{AirlockError, BoxError};
use http::{HeaderMap, Uri};
use tower::Layer;

use crate::{AzureEndpoint, ClassifyService};

/// Decides which Azure API a request is for, from its URI and headers (the
/// gateway passes its host allowlist here). An error refuses the request
/// with that error's response, typically [`AirlockError::HostNotAllowed`].
/// A request that already carries an [`AzureEndpoint`] in its extensions
/// (resolved by an earlier layer) is not resolved again.
pub type EndpointResolver =
    Arc<dyn Fn(&Uri, &HeaderMap) -> Result<AzureEndpoint, AirlockError> + Send + Sync>;

/// Turns an error met while reading a request body into the answer, for
/// errors only the surrounding stack understands (a body timeout → 408).
/// Without one, an unreadable body is a 400.
pub type BodyErrorMap = Arc<dyn Fn(&BoxError) -> AirlockError + Send + Sync>;

/// The default bound on a request body: 4 MiB (ARM bodies are small;
/// templates are limited to a few MiB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 4 * 1024 * 1024;

/// Names the operation of every request and puts it, with the
/// [`AzureEndpoint`] the request is for, in the request's extensions; the
/// body goes on buffered.
#[derive(Clone)]
pub struct ClassifyLayer {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) resolver: EndpointResolver,
    pub(crate) max_body_bytes: u64,
    pub(crate) body_error: Option<BodyErrorMap>,
}

impl std::fmt::Debug for ClassifyLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassifyLayer")
            .field("max_body_bytes", &self.shared.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl ClassifyLayer {
    /// Classifies requests for the endpoints `resolver` allows (see
    /// [`EndpointResolver`]).
    pub fn new(
        resolver: impl Fn(&Uri, &HeaderMap) -> Result<AzureEndpoint, AirlockError>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                resolver: Arc::new(resolver),
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                body_error: None,
            }),
        }
    }

    /// The largest request body read (default [`DEFAULT_MAX_BODY_BYTES`]);
    /// a larger one is answered `413`.
    #[must_use]
    pub fn max_body_bytes(mut self, limit: u64) -> Self {
        Arc::make_mut(&mut self.shared).max_body_bytes = limit;
        self
    }

    /// How body read errors are answered; see [`BodyErrorMap`].
    #[must_use]
    pub fn map_body_error(
        mut self,
        map: impl Fn(&BoxError) -> AirlockError + Send + Sync + 'static,
    ) -> Self {
        Arc::make_mut(&mut self.shared).body_error = Some(Arc::new(map));
        self
    }
}

impl<S> Layer<S> for ClassifyLayer {
    type Service = ClassifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClassifyService {
            inner,
            shared: self.shared.clone(),
        }
    }
}
