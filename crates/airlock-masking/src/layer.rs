//! [`MaskingLayer`]: the masker and limits shared by every [`Masking`] service.

use std::sync::Arc;

use tower::Layer;

use crate::excerpt::DEFAULT_EXCERPT_BYTES;
use crate::{Masker, MaskingService};

/// The default bound on a body the layer reads to mask: 16 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// Masks responses with a [`Masker`] before they reach the client, and puts
/// masked copies of the request and response bodies in the
/// [`AuditDraft`](airlock_core::AuditDraft).
///
/// It needs the [`Operation`](airlock_core::Operation) of the classify layer
/// (and its buffered `AirlockBody`); a request without one is refused 403
/// `AirlockNotDecided` (a misordered stack fails closed). See the
/// [crate documentation](crate) for what happens to each response.
#[derive(Clone)]
pub struct MaskingLayer {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) masker: Arc<dyn Masker>,
    pub(crate) max_body_bytes: u64,
    pub(crate) excerpt_bytes: usize,
    pub(crate) metrics: Option<Arc<crate::MaskingMetrics>>,
}

impl std::fmt::Debug for MaskingLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskingLayer")
            .field("max_body_bytes", &self.shared.max_body_bytes)
            .field("excerpt_bytes", &self.shared.excerpt_bytes)
            .finish_non_exhaustive()
    }
}

impl MaskingLayer {
    /// Masks with `masker`.
    pub fn new(masker: impl Masker) -> Self {
        Self {
            shared: Arc::new(Shared {
                masker: Arc::new(masker),
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                excerpt_bytes: DEFAULT_EXCERPT_BYTES,
                metrics: None,
            }),
        }
    }

    /// The largest body read to mask (default [`DEFAULT_MAX_BODY_BYTES`]),
    /// before and after gzip decoding. A larger response that had to be
    /// inspected is withheld (`502 AirlockMaskingFailed`).
    #[must_use]
    pub fn max_body_bytes(mut self, limit: u64) -> Self {
        Arc::make_mut(&mut self.shared).max_body_bytes = limit;
        self
    }

    /// The cap of the body excerpts in the audit record (default 8 KiB).
    #[must_use]
    pub fn excerpt_bytes(mut self, cap: usize) -> Self {
        Arc::make_mut(&mut self.shared).excerpt_bytes = cap;
        self
    }

    /// Counts what masking finds into `metrics`; see [`MaskingMetrics`](crate::MaskingMetrics).
    #[must_use]
    pub fn metrics(mut self, metrics: Arc<crate::MaskingMetrics>) -> Self {
        Arc::make_mut(&mut self.shared).metrics = Some(metrics);
        self
    }
}

impl<S> Layer<S> for MaskingLayer {
    type Service = MaskingService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MaskingService {
            inner,
            shared: self.shared.clone(),
        }
    }
}
