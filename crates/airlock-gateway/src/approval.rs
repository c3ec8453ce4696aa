//! The approval layer, its store and its expiry sweeper, built from `[approval]`.

use std::sync::Arc;

use airlock_approval::{
    ApprovalFeed, ApprovalLayer, ApprovalMetrics, ApprovalStore, Delivery, DeliveryStats,
    ExpirySweeper, LogNotifier, MemoryApprovalStore, Notifier, Notifiers, PendingLimits,
    RequestSealer, Retry, WebhookFormat, WebhookNotifier,
};
use airlock_core::HttpClient;
use airlock_masking::{JsonMasker, MaskContext, TokenKey, request_excerpt};

use crate::ConfigError;
use crate::config::{Config, NotifyConfig, NotifyKind, StoreKind};

/// What the key for sealing stored requests is derived under (see [`TokenKey::derive`]).
const SEALING_PURPOSE: &[u8] = b"airlock-approval-sealing-v1";

/// The approval pieces the listeners share.
#[derive(Clone)]
pub(crate) struct Approvals {
    pub(crate) store: Arc<dyn ApprovalStore>,
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) layer: ApprovalLayer,
    /// Every event, for the approval page's live queue.
    pub(crate) feed: ApprovalFeed,
    /// What notifications came to (`/metrics`), when any receiver is configured.
    pub(crate) notifications: NotificationStats,
    /// Approvals requested and decided, requests held (`/metrics`).
    pub(crate) metrics: Arc<ApprovalMetrics>,
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
#[allow(
    clippy::too_many_arguments,
    reason = "each is one piece the gateway built before"
)]
pub(crate) fn build(
    config: &Config,
    key: &TokenKey,
    masker: Arc<JsonMasker>,
    database: &airlock_store::Store,
    public_url: &str,
    admin_url: &str,
    outbound: Arc<dyn HttpClient>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Approvals, ConfigError> {
    let store: Arc<dyn ApprovalStore> = match config.approval.store {
        StoreKind::Memory => Arc::new(MemoryApprovalStore::new()),
        StoreKind::Database => database.approvals(),
    };
    let feed = ApprovalFeed::new();
    let metrics = ApprovalMetrics::new();
    let (notifier, notifications) = notifiers(config, admin_url, &feed, &metrics, outbound, env)?;
    // Answer a held request a little before the request timeout would cut it.
    let timeout = config.limits.request_timeout;
    let max_hold = timeout
        .saturating_sub(timeout / 10)
        .max(std::time::Duration::from_secs(1));
    let layer = ApprovalLayer::new(store.clone(), notifier.clone())
        .max_body_bytes(config.limits.max_request_body_bytes)
        .max_stored_body_bytes(config.approval.max_stored_body_bytes)
        .max_held_answer_bytes(config.approval.max_held_answer_bytes)
        .pending_limits(PendingLimits {
            per_principal: config.approval.max_pending_per_principal,
            total: config.approval.max_pending,
        })
        .max_hold(max_hold)
        .status_url_base(format!("{admin_url}/api/approvals"))
        .metrics(metrics.clone())
        .async_operations(public_url, RequestSealer::new(&key.derive(SEALING_PURPOSE)))
        .poll_interval(config.approval.poll_interval)
        // Approvers see the whole body, masked as the audit record masks it.
        .body_preview(move |operation, requester, content_type, body| {
            let context = MaskContext::new(operation)
                .principal(Some(requester))
                .content_type(content_type);
            request_excerpt(&*masker, &context, body, usize::MAX)
        });
    Ok(Approvals {
        store,
        notifier,
        layer,
        feed,
        notifications,
        metrics,
    })
}

/// What the notification receivers' deliveries came to, if there are any.
type NotificationStats = Option<Arc<DeliveryStats>>;

/// The log, the approval page's feed, the metrics, and every `[[approval.notify]]`
/// receiver (delivered in the background through one queue); their messages
/// link to the approval on the page when approvers sign in to it, else on
/// the approval API.
fn notifiers(
    config: &Config,
    admin_url: &str,
    feed: &ApprovalFeed,
    metrics: &Arc<ApprovalMetrics>,
    outbound: Arc<dyn HttpClient>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Arc<dyn Notifier>, NotificationStats), ConfigError> {
    let mut all: Vec<Arc<dyn Notifier>> = vec![
        Arc::new(LogNotifier),
        Arc::new(feed.clone()),
        metrics.clone(),
    ];
    if config.approval.notify.is_empty() {
        return Ok((Arc::new(Notifiers::new(all)), None));
    }
    let links = if config.admin.sign_in.is_some() {
        format!("{admin_url}/ui/approvals")
    } else {
        format!("{admin_url}/api/approvals")
    };
    let delivery = Delivery::start(outbound, Retry::default());
    for receiver in &config.approval.notify {
        let url = receiver_url(receiver, config.upstream.allow_insecure_http, &env)?;
        let format = match receiver.kind {
            NotifyKind::Webhook => WebhookFormat::Json {
                secret: webhook_secret(receiver, &env)?,
            },
            NotifyKind::Slack => WebhookFormat::Slack,
            NotifyKind::Teams => WebhookFormat::Teams,
        };
        let mut notifier = WebhookNotifier::new(url, format, links.clone(), delivery.clone());
        if let Some(rules) = &receiver.rules {
            notifier = notifier.rules(rules.iter().cloned());
        }
        all.push(Arc::new(notifier));
    }
    Ok((Arc::new(Notifiers::new(all)), Some(delivery.stats())))
}

fn receiver_url(
    receiver: &NotifyConfig,
    allow_http: bool,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<http::Uri, ConfigError> {
    const KEY: &str = "approval.notify";
    let text = match (&receiver.url, &receiver.url_env) {
        (Some(url), _) => url.clone(),
        (None, Some(name)) => env(name).ok_or_else(|| ConfigError::Invalid {
            key: KEY,
            problem: format!("url_env names {name}, which is not set"),
            fix: format!("export {name}=https://… before starting the gateway"),
        })?,
        (None, None) => unreachable!("validated: one of url and url_env"),
    };
    let url: http::Uri = text.trim().parse().map_err(|_| ConfigError::Invalid {
        key: KEY,
        problem: "the receiver's URL is not a URL".into(),
        fix: "give an absolute https:// URL".into(),
    })?;
    match url.scheme_str() {
        Some("https") if url.host().is_some() => Ok(url),
        Some("http") if allow_http && url.host().is_some() => Ok(url),
        _ => Err(ConfigError::Invalid {
            key: KEY,
            problem: "the receiver's URL must be https:// (notifications name who asked for what)"
                .into(),
            fix: "give an https:// URL (http:// is accepted only with upstream.allow_insecure_http, for local tests)".into(),
        }),
    }
}

fn webhook_secret(
    receiver: &NotifyConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<u8>, ConfigError> {
    const KEY: &str = "approval.notify";
    let secret = match (&receiver.secret_file, &receiver.secret_env) {
        (Some(file), _) => crate::config::read_file(KEY, file)?,
        (None, Some(name)) => env(name).ok_or_else(|| ConfigError::Invalid {
            key: KEY,
            problem: format!("secret_env names {name}, which is not set"),
            fix: format!("export {name}=<a random secret> before starting the gateway"),
        })?,
        (None, None) => unreachable!("validated: a webhook has one of secret_file and secret_env"),
    };
    let secret = secret.trim();
    if secret.len() < 16 {
        return Err(ConfigError::Invalid {
            key: KEY,
            problem: "the webhook secret is shorter than 16 characters".into(),
            fix: "use a random secret of 32 bytes or more (openssl rand -hex 32)".into(),
        });
    }
    Ok(secret.as_bytes().to_vec())
}

/// Expires due approvals every `interval` until the sweeper is dropped.
pub(crate) fn spawn_sweeper(approvals: &Approvals, interval: std::time::Duration) -> ExpirySweeper {
    ExpirySweeper::spawn_counting(
        approvals.store.clone(),
        approvals.notifier.clone(),
        interval,
        approvals.metrics.clone(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn receiver(toml: &str) -> NotifyConfig {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn receiver_urls_are_https_from_the_config_or_the_environment() {
        let env =
            |name: &str| (name == "SLACK_URL").then(|| "https://hooks.slack.com/x".to_owned());
        let slack = receiver("kind = \"slack\"\nurl_env = \"SLACK_URL\"");
        assert_eq!(
            receiver_url(&slack, false, &env).unwrap().host(),
            Some("hooks.slack.com")
        );
        let unset = receiver("kind = \"slack\"\nurl_env = \"OTHER\"");
        let message = receiver_url(&unset, false, &env).unwrap_err().to_string();
        assert!(message.contains("OTHER, which is not set"), "{message}");
        let plain = receiver("kind = \"teams\"\nurl = \"http://127.0.0.1:9/hook\"");
        let message = receiver_url(&plain, false, &env).unwrap_err().to_string();
        assert!(message.contains("must be https://"), "{message}");
        assert!(receiver_url(&plain, true, &env).is_ok(), "local tests");
    }

    #[test]
    fn a_webhook_secret_must_be_long_enough() {
        let env = |name: &str| match name {
            "SHORT" => Some("tooshort".to_owned()),
            "GOOD" => Some("0123456789abcdef0123456789abcdef".to_owned()),
            _ => None,
        };
        let short = receiver("kind = \"webhook\"\nurl = \"https://x\"\nsecret_env = \"SHORT\"");
        let message = webhook_secret(&short, &env).unwrap_err().to_string();
        assert!(message.contains("shorter than 16"), "{message}");
        let good = receiver("kind = \"webhook\"\nurl = \"https://x\"\nsecret_env = \"GOOD\"");
        assert_eq!(webhook_secret(&good, &env).unwrap().len(), 32);
    }
}
