//! [`ClassifyLayer`]: configuration shared by every [`Classify`] service.

use std::sync::Arc;

use airlock_core::{AirlockError, BoxError};
use http::{HeaderMap, Uri};
use tower::Layer;

use crate::{AzureEndpoint, Classify};

/// Decides which Azure API a request is for, from its URI and headers (the
/// gateway passes its host allowlist here). An error refuses the request
/// with that error's response, typically [`AirlockError::HostNotAllowed`].
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
    /// Classifies requests for the endpoints `resolver` allows.
    pub fn new(resolver: EndpointResolver) -> Self {
        Self {
            shared: Arc::new(Shared {
                resolver,
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                body_error: None,
            }),
        }
    }

    /// The largest request body read (default [`DEFAULT_MAX_BODY_BYTES`]);
    /// a larger one is answered `413`.
    #[must_use]
    pub fn max_body_bytes(self, limit: u64) -> Self {
        self.with(|shared| shared.max_body_bytes = limit)
    }

    /// How body read errors are answered; see [`BodyErrorMap`].
    #[must_use]
    pub fn map_body_error(self, map: BodyErrorMap) -> Self {
        self.with(|shared| shared.body_error = Some(map))
    }

    fn with(self, change: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Shared::clone(&self.shared);
        change(&mut shared);
        Self {
            shared: Arc::new(shared),
        }
    }
}

impl<S> Layer<S> for ClassifyLayer {
    type Service = Classify<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Classify {
            inner,
            shared: self.shared.clone(),
        }
    }
}
