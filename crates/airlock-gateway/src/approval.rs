//! The approval layer, its store and its expiry sweeper, built from `[approval]`.

use std::sync::Arc;

use airlock_approval::{
    ApprovalLayer, ApprovalStore, ExpirySweeper, LogNotifier, MemoryApprovalStore, Notifier,
    PendingLimits, RequestSealer,
};
use airlock_masking::{JsonMasker, MaskContext, TokenKey, request_excerpt};

use crate::config::{Config, StoreKind};

/// What the key for sealing stored requests is derived under (see [`TokenKey::derive`]).
const SEALING_PURPOSE: &[u8] = b"airlock-approval-sealing-v1";

/// The approval pieces the listeners share.
#[derive(Clone)]
pub(crate) struct Approvals {
    pub(crate) store: Arc<dyn ApprovalStore>,
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) layer: ApprovalLayer,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

/// Opens the store and builds the layer: held requests are answered before
/// the request timeout cuts them off; long-running operations wait as
/// operations on `public_url`; pending answers point at `admin_url`;
/// approvers see request bodies as `masker` masks them.
pub(crate) fn build(
    config: &Config,
    key: &TokenKey,
    masker: Arc<JsonMasker>,
    database: &airlock_store::SqliteStore,
    public_url: &str,
    admin_url: &str,
) -> Approvals {
    let store: Arc<dyn ApprovalStore> = match config.approval.store {
        StoreKind::Memory => Arc::new(MemoryApprovalStore::new()),
        StoreKind::Sqlite => Arc::new(database.clone()),
    };
    let notifier: Arc<dyn Notifier> = Arc::new(LogNotifier);
    // Answer a held request a little before the request timeout would cut it.
    let timeout = config.limits.request_timeout;
    let max_hold = timeout
        .saturating_sub(timeout / 10)
        .max(std::time::Duration::from_secs(1));
    let layer = ApprovalLayer::new(store.clone(), notifier.clone())
        .max_body_bytes(config.limits.max_request_body_bytes)
        .max_stored_body_bytes(config.approval.max_stored_body_bytes)
        .pending_limits(PendingLimits {
            per_principal: config.approval.max_pending_per_principal,
            total: config.approval.max_pending,
        })
        .max_hold(max_hold)
        .status_url_base(format!("{admin_url}/api/approvals"))
        .async_operations(public_url, RequestSealer::new(&key.derive(SEALING_PURPOSE)))
        .poll_interval(config.approval.poll_interval)
        // Approvers see the whole body, masked as the audit record masks it.
        .body_preview(move |operation, requester, content_type, body| {
            let context = MaskContext::new(operation)
                .principal(Some(requester))
                .content_type(content_type);
            request_excerpt(&*masker, &context, body, usize::MAX)
        });
    Approvals {
        store,
        notifier,
        layer,
    }
}

/// Expires due approvals every `interval` until the sweeper is dropped.
pub(crate) fn spawn_sweeper(approvals: &Approvals, interval: std::time::Duration) -> ExpirySweeper {
    ExpirySweeper::spawn(
        approvals.store.clone(),
        approvals.notifier.clone(),
        interval,
    )
}
