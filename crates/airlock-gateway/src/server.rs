//! The listener: TLS or plain, HTTP/1.1 and HTTP/2, health endpoints, and a
//! graceful shutdown that drains in-flight requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use airlock_core::{HttpClient, TokenProvider};
use airlock_identity::ProxyAuthorization;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::util::BoxCloneSyncService;

use airlock_approval::ExpirySweeper;
use airlock_policy::{PolicyFile, PolicyLayer, QuotaLayer};
use airlock_recorder::{Recorder, RecorderConfig, RecorderStats};

use airlock_http::{ClientBuilder, HttpsClient, TrustRoots};
use airlock_upstream::Upstream;

use crate::config::PolicyMode;
use crate::connections::{ConnectionLimits, Listened};
use crate::forward_proxy::{ConnectLayer, Minter, ProxyContext, Targets};
use crate::health::Health;
use crate::preview;
use crate::stack::{App, Layers};
use crate::{
    Config, StartError, admin, approval, classify, credential, identity, masking, stack, tls,
};

/// Starts gateways.
#[derive(Debug)]
pub struct Gateway;

impl Gateway {
    /// Binds the listener and serves with the credential configured in
    /// `upstream.credential` (a static token, or a source that signs in,
    /// behind a refresh-ahead cache).
    pub async fn start(config: Config) -> Result<RunningGateway, StartError> {
        Self::start_inner(config, None).await
    }

    /// Binds the listener and serves, asking `tokens` for the gateway's Azure credential.
    pub async fn start_with(
        config: Config,
        tokens: Arc<dyn TokenProvider>,
    ) -> Result<RunningGateway, StartError> {
        Self::start_inner(config, Some(tokens)).await
    }

    async fn start_inner(
        mut config: Config,
        tokens: Option<Arc<dyn TokenProvider>>,
    ) -> Result<RunningGateway, StartError> {
        let tls = match &config.listen.tls {
            Some(files) => Some(TlsAcceptor::from(tls::server_config(
                &files.cert_file,
                &files.key_file,
            )?)),
            None => None,
        };
        let listener = bind(&mut config.listen.address).await?;
        let admin_listener = bind(&mut config.admin.address).await?;
        let public_url = config
            .public_url()?
            .to_string()
            .trim_end_matches('/')
            .to_owned();
        if tls.is_none() {
            tracing::warn!(
                "listening without TLS: Azure SDKs refuse to send bearer tokens over plain HTTP; configure [listen.tls]"
            );
        }
        let admin_url = admin::public_url(&config)?;
        // One pool for everything the gateway sends: Azure, and its own
        // calls (discovery, JWKS, Graph) through the same trust store.
        let client = ClientBuilder::new(
            TrustRoots::system().with_optional_ca_file(config.upstream.ca_file.as_deref()),
        )
        .allow_http(config.upstream.allow_insecure_http)
        .connect_timeout(config.upstream.connect_timeout)
        .build()?;
        let outbound: Arc<dyn HttpClient> = Arc::new(HttpsClient::new(
            client.clone(),
            config.upstream.read_timeout,
        ));
        // Every component's counters, served on the admin listener's /metrics.
        let metrics = Metrics::new();
        let tokens = match tokens {
            Some(tokens) => tokens,
            None => {
                credential::provider(
                    &config.upstream.credential,
                    &config.upstream.arm_audience,
                    outbound.clone(),
                    &metrics.credentials,
                )
                .await?
            }
        };
        let identities = credential::identities(
            &config.upstream,
            tokens.clone(),
            &outbound,
            &metrics.credentials,
        )
        .await?;
        let shared_keys = credential::shared_keys(&config.upstream)?;
        // Every elevate_to must name one the gateway holds, now and in each
        // reload (an on-behalf-of identity is the caller: no elevation).
        let keep_caller_token = identities.needs_caller_token();
        let policy = {
            let known = identities.clone();
            PolicyFile::load_checked(&config.policy.file, move |policy| {
                policy.check_elevations(|name| known.is_gateway_held(name))
            })
            .map_err(StartError::Policy)?
        };
        let policy = match config.policy.mode {
            PolicyMode::Enforce => policy,
            PolicyMode::Observe => policy.observing_all(),
        };
        policy.watch(config.policy.reload_interval);
        let routes = config.routes()?;
        // Keys from the identity provider first: a start that fails there
        // leaves no key file or database behind.
        let notify_client = outbound.clone();
        let sign_in =
            identity::sign_in(&config, &admin_url, outbound.clone(), tokens.clone()).await?;
        let identity = identity::layer(
            &config.identity,
            outbound,
            tokens.clone(),
            &config.upstream.azure_audiences(),
            metrics.identity.clone(),
        )
        .await?;
        let key = masking::token_key(&config.masking, |name| std::env::var(name).ok())?;
        let masker = masking::masker(&config.masking, key.clone())?;
        let database = config.store.open(|name| std::env::var(name).ok()).await?;
        let recorder = Recorder::start(database.audit_sink(), recorder_config(&config))
            .await
            .map_err(|e| StartError::Audit(e.to_string()))?;
        if !config.audit.enabled {
            tracing::warn!(
                "[audit] enabled = false: requests are NOT recorded; use this only for benchmarks"
            );
        }
        let approvals = approval::build(
            &config,
            &key,
            masker.clone(),
            &database,
            &public_url,
            &admin_url,
            notify_client,
            |name| std::env::var(name).ok(),
        )?;
        // The page served here also shows what happens through other replicas.
        let replica_events = database.forward_events(Arc::new(approvals.feed.clone()));
        let health = Health::new(recorder.monitor(), config.audit.enabled)
            .notifications(approvals.notifications.clone())
            .store(database.audit_sink())
            .registry(metrics.registry(&approvals.metrics));
        // One bound on the answers read whole, by the upstream (links) and
        // masking alike.
        let memory = airlock_core::MemoryBudget::new(config.masking.max_buffered_bytes);
        let upstream = Upstream::new(routes.clone(), client, tokens)
            .memory_budget(memory.clone())
            .identities(identities)
            .shared_keys(shared_keys)
            .read_timeout(config.upstream.read_timeout)
            .body_timeout(config.limits.request_body_timeout)
            .max_request_body_bytes(config.limits.max_request_body_bytes)
            .max_response_rewrite_bytes(config.limits.max_response_rewrite_bytes);
        let changes = config.approval.show_changes.then(|| {
            Arc::new(preview::ArmPreview::new(
                BoxCloneSyncService::new(upstream.clone()),
                masker.clone(),
            )) as Arc<dyn airlock_approval::ChangePreview>
        });
        let reveal = masking::reveal_rules(&config.masking)?;
        let reveal_approvers = reveal
            .iter()
            .filter_map(|rule| rule.approvers().cloned())
            .collect();
        let admin_app = admin::router(
            &approvals,
            &database,
            &policy,
            identity.clone(),
            sign_in.as_ref(),
            changes,
            reveal_approvers,
        )
        .merge(health.admin_routes());
        let connect = ConnectLayer::new(connect_targets(&config, routes.clone()));
        let masking = masking::layer(&config.masking, masker, config.audit.max_body_chars, reveal)
            .memory_budget(memory)
            .metrics(metrics.masking.clone());
        let layers = Layers {
            recorder: config.audit.enabled.then(|| recorder.layer()),
            identity: identity
                .proxy_authorization(match &config.forward_proxy {
                    proxy if !proxy.enabled => ProxyAuthorization::Off,
                    proxy if proxy.proxy_auth == crate::config::ProxyAuth::Required => {
                        ProxyAuthorization::Required
                    }
                    _ => ProxyAuthorization::Optional,
                })
                .keep_caller_token(keep_caller_token),
            classify: classify::layer(&config, routes.clone()),
            policy: PolicyLayer::new(policy.clone()),
            quota: {
                let policy = policy.clone();
                QuotaLayer::new(move || policy.current().quotas(), database.quotas())
                    .metrics(metrics.quotas.clone())
            },
            approval: approvals.layer.clone(),
            answer: {
                let policy = policy.clone();
                approvals
                    .layer
                    .answer_layer(move || policy.current().answer_rules())
            },
            masking: masking.clone(),
            reveal: masking.reveal_layer(),
            connect,
            metrics: airlock_metrics::MetricsLayer::new(metrics.requests.clone()),
        };
        if config.upstream.allow_insecure_http {
            tracing::warn!(
                "upstream.allow_insecure_http = true: the gateway's Azure token may travel over plain HTTP; use this only with a local test double"
            );
        }
        let app = health.probes(stack::build(&config, layers, upstream));
        let limits = ConnectionLimits::new(&config.limits);
        let proxy = forward_proxy_context(&config, &app, &limits.builder())?;
        let (stop, stopped) = watch::channel(false);
        let sweeper = approval::spawn_sweeper(&approvals, config.approval.sweep_interval);
        let drain_timeout = config.limits.request_timeout;
        let local_addr = config.listen.address;
        tracing::info!(%local_addr, %public_url, tls = tls.is_some(), "airlock gateway listening");
        tracing::info!(address = %config.admin.address, %admin_url, "approval API listening");
        let admin_task = tokio::spawn(accept_loop(
            admin_listener,
            tls.clone(),
            admin_app,
            None,
            ConnectionLimits::new(&config.limits),
            stopped.clone(),
            drain_timeout,
        ));
        let task = tokio::spawn(async move {
            accept_loop(listener, tls, app, proxy, limits, stopped, drain_timeout).await;
            let _ = admin_task.await;
        });
        Ok(RunningGateway {
            local_addr,
            public_url,
            admin_url,
            policy,
            recorder,
            health,
            sweeper,
            feed: approvals.feed.clone(),
            _replica_events: replica_events,
            stop,
            task,
        })
    }
}

/// The counters of each layer and of the gateway's own credentials.
struct Metrics {
    requests: Arc<airlock_metrics::RequestMetrics>,
    identity: Arc<airlock_identity::IdentityMetrics>,
    credentials: Arc<airlock_credentials::CredentialMetrics>,
    masking: Arc<airlock_masking::MaskingMetrics>,
    quotas: Arc<airlock_policy::QuotaMetrics>,
}

impl Metrics {
    fn new() -> Self {
        Self {
            requests: airlock_metrics::RequestMetrics::new(),
            identity: airlock_identity::IdentityMetrics::new(),
            credentials: airlock_credentials::CredentialMetrics::new(),
            masking: airlock_masking::MaskingMetrics::new(),
            quotas: airlock_policy::QuotaMetrics::new(),
        }
    }

    /// One registry holding them all, and the approvals'.
    fn registry(&self, approvals: &airlock_approval::ApprovalMetrics) -> Registry {
        let mut registry = Registry::default();
        self.requests.register(&mut registry);
        self.identity.register(&mut registry);
        self.credentials.register(&mut registry);
        self.masking.register(&mut registry);
        self.quotas.register(&mut registry);
        approvals.register(&mut registry);
        registry
    }
}

/// What `CONNECT` may reach: the Azure hosts `routes` routes, and the
/// sign-in hosts (default: the cloud's Entra authority).
fn connect_targets(config: &Config, routes: airlock_upstream::Routes) -> Targets {
    let proxy = &config.forward_proxy;
    let tunnel_hosts = proxy.tunnel_hosts.clone().unwrap_or_else(|| {
        let authority = config.upstream.cloud.authority_host();
        vec![authority.trim_start_matches("https://").to_owned()]
    });
    Targets {
        enabled: proxy.enabled,
        routes,
        tunnel_hosts: tunnel_hosts
            .iter()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect(),
        resolve: proxy
            .resolve
            .iter()
            .map(|(host, address)| (host.to_ascii_lowercase(), *address))
            .collect(),
    }
}

/// The CA and what tunnels are served with, when forward-proxy mode is on.
fn forward_proxy_context(
    config: &Config,
    app: &App,
    builder: &hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
) -> Result<Option<Arc<ProxyContext>>, StartError> {
    let proxy = &config.forward_proxy;
    let (true, Some(cert_file), Some(key_file)) =
        (proxy.enabled, &proxy.ca_cert_file, &proxy.ca_key_file)
    else {
        return Ok(None);
    };
    let minter = Minter::new(
        &crate::config::read_file("forward_proxy.ca_cert_file", cert_file)?,
        &crate::config::read_file("forward_proxy.ca_key_file", key_file)?,
        proxy.leaf_lifetime,
    )
    .map_err(|problem| crate::ConfigError::Invalid {
        key: "forward_proxy.ca_cert_file",
        problem,
        fix: "give a PEM CA certificate and its private key (`airlock ca init` writes a pair)"
            .into(),
    })?;
    tracing::info!("forward-proxy mode: CONNECT served on the agents' listener");
    Ok(Some(Arc::new(ProxyContext {
        minter,
        app: app.clone(),
        builder: builder.clone(),
        handshake_timeout: config.limits.tls_handshake_timeout,
        connect_timeout: config.upstream.connect_timeout,
    })))
}

fn recorder_config(config: &Config) -> RecorderConfig {
    let audit = &config.audit;
    RecorderConfig {
        queue_capacity: audit.queue_capacity,
        fail_closed: audit.fail_closed,
        session_idle: audit.session_idle,
        max_body_chars: audit.max_body_chars,
        // Several replicas on one database: each event names its writer
        // (and chain). One SQLite file has one writer: no name needed.
        replica: config
            .store
            .url
            .is_some()
            .then(|| config.store.replica_id()),
        ..RecorderConfig::default()
    }
}

/// Binds `address`; with port 0 the real port is known only now, and URLs
/// derive from it, so `address` is updated.
async fn bind(address: &mut SocketAddr) -> Result<TcpListener, StartError> {
    let listener = TcpListener::bind(*address)
        .await
        .map_err(|source| StartError::Bind {
            address: *address,
            source,
        })?;
    *address = listener.local_addr().map_err(|source| StartError::Bind {
        address: *address,
        source,
    })?;
    Ok(listener)
}

async fn accept_loop<A: Listened>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: A,
    proxy: Option<Arc<ProxyContext>>,
    limits: ConnectionLimits,
    mut stopped: watch::Receiver<bool>,
    drain_timeout: Duration,
) {
    let graceful = GracefulShutdown::new();
    let builder = limits.builder();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        tokio::spawn(limits.clone().serve(
            stream,
            peer,
            tls.clone(),
            app.clone(),
            proxy.clone(),
            builder.clone(),
            // One for the connection, one for the tunnel it may become.
            [graceful.watcher(), graceful.watcher()],
            stopped.clone(),
        ));
    }
    drop(listener);
    if tokio::time::timeout(drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?drain_timeout,
            "in-flight requests did not finish in time; closing"
        );
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct RunningGateway {
    local_addr: SocketAddr,
    public_url: String,
    admin_url: String,
    policy: PolicyFile,
    recorder: Recorder,
    health: Health,
    sweeper: ExpirySweeper,
    /// The approval page's live feed: closed at shutdown, ending its streams.
    feed: airlock_approval::ApprovalFeed,
    /// Other replicas' approval events into the feed (PostgreSQL only).
    _replica_events: Option<airlock_store::EventForwarding>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningGateway {
    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
    /// The URL clients use, without trailing slash (`https://localhost:8443`).
    pub fn url(&self) -> &str {
        &self.public_url
    }
    /// The approval API's URL, without trailing slash (`https://localhost:8444`).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }
    /// Reads the policy file again (what SIGHUP does); an invalid file keeps
    /// the running policy and is returned as the error.
    pub fn reload_policy(&self) -> Result<(), airlock_policy::PolicyError> {
        self.policy.reload()
    }

    /// What the recorder did so far.
    pub fn audit_stats(&self) -> RecorderStats {
        self.recorder.stats()
    }

    /// Stops accepting, reports not-ready, waits for in-flight requests to
    /// finish, then writes every audit event still queued.
    pub async fn shutdown(self) -> RecorderStats {
        self.health.drain();
        self.feed.close();
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.sweeper.stop();
        self.recorder.shutdown().await
    }
}
