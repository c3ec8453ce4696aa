//! [`MaskingLayer`]: the masker and limits shared by every [`Masking`] service.

use std::sync::Arc;

use airlock_core::MemoryBudget;

use tower::Layer;

use crate::excerpt::DEFAULT_EXCERPT_BYTES;
use crate::reveal::RevealRules;
use crate::{Masker, MaskingService, RevealLayer, RevealRule};

/// The default bound on a body the layer reads to mask: 16 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// The default bound on all the answers the layer holds in memory at once
/// to mask them: 64 MiB.
pub const DEFAULT_MAX_BUFFERED_BYTES: u64 = 64 * 1024 * 1024;

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
    pub(crate) budget: MemoryBudget,
    pub(crate) excerpt_bytes: usize,
    pub(crate) metrics: Option<Arc<crate::MaskingMetrics>>,
    pub(crate) reveal: Arc<RevealRules>,
}

impl std::fmt::Debug for MaskingLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskingLayer")
            .field("max_body_bytes", &self.shared.max_body_bytes)
            .field("max_buffered_bytes", &self.shared.budget.bytes())
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
                budget: MemoryBudget::new(DEFAULT_MAX_BUFFERED_BYTES),
                excerpt_bytes: DEFAULT_EXCERPT_BYTES,
                metrics: None,
                reveal: Arc::default(),
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

    /// The most memory the answers being masked may take at once, all
    /// requests together (default [`DEFAULT_MAX_BUFFERED_BYTES`]), so memory
    /// is bounded by configuration, not by answer size times concurrency.
    /// An answer of known length waits for its share (the request timeout
    /// bounds the wait); one of unknown length is refused with
    /// `503 AirlockMemoryBusy` (retryable) when the budget is spent. Keep
    /// it at least [`max_body_bytes`](Self::max_body_bytes). An answer an
    /// inner layer already holds in memory keeps the share it came with.
    #[must_use]
    pub fn max_buffered_bytes(self, budget: u64) -> Self {
        self.memory_budget(MemoryBudget::new(budget))
    }

    /// Shares `budget` with other layers (the upstream's link rewriting),
    /// instead of a budget of its own: see [`max_buffered_bytes`](Self::max_buffered_bytes).
    #[must_use]
    pub fn memory_budget(mut self, budget: MemoryBudget) -> Self {
        Arc::make_mut(&mut self.shared).budget = budget;
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

impl MaskingLayer {
    /// Lets principals have answers in clear by these rules, in order
    /// (see [`RevealRule`]): rules without approval reveal by themselves;
    /// rules with one need the [`reveal_layer`](Self::reveal_layer) in
    /// front of the approval layer.
    #[must_use]
    pub fn reveal(mut self, rules: impl IntoIterator<Item = RevealRule>) -> Self {
        Arc::make_mut(&mut self.shared).reveal = Arc::new(RevealRules(rules.into_iter().collect()));
        self
    }

    /// The request-side step of reveals by approval, sharing this layer's
    /// reveal rules: stack it after policy and before approval.
    pub fn reveal_layer(&self) -> RevealLayer {
        RevealLayer {
            rules: self.shared.reveal.clone(),
        }
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
