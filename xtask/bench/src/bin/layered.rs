//! `layered`: Airlock's layers stacked by hand in front of
//! `airlock-upstream`, the way an embedder would, with the layers chosen on
//! the command line, so `cargo xtask bench` can show what each one adds
//! over the bare proxy: `identity`, then `policy` (classify and policy),
//! then `masking`, then `recording` (SQLite, fail-closed). None of the
//! gateway's other layers (request id, trace, timeouts, ARM-shaped errors,
//! metrics) are here: the shipped gateway is the next step up.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use airlock_azure::ClassifyLayer;
use airlock_core::{AirlockBody, Decision, StaticTokenProvider};
use airlock_identity::http::{ClientBuilder, HttpsClient, TrustRoots};
use airlock_identity::{IdentityLayer, JwtValidator, KeySource};
use airlock_masking::{JsonMasker, MaskingLayer, TokenKey};
use airlock_policy::{Policy, PolicyLayer};
use airlock_recorder::{Recorder, RecorderConfig};
use airlock_store::SqliteStore;
use airlock_upstream::{Endpoint, GatewayHosts, Routes, Upstream, UpstreamConfig};
use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use http::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tower::util::BoxCloneSyncService;
use tower::{Layer as _, ServiceBuilder, ServiceExt as _};

/// Command line of the layered proxy.
#[derive(Debug, Parser)]
#[command(
    name = "layered",
    about = "Airlock's layers, chosen one by one, in front of an upstream."
)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The upstream (ARM) base URL, `http://host:port`.
    #[arg(long)]
    upstream: String,
    /// The bearer token sent upstream.
    #[arg(long)]
    token: String,
    /// The token issuer's OpenID discovery URL.
    #[arg(long)]
    issuer: String,
    /// The tenant tokens must come from.
    #[arg(long)]
    tenant: String,
    /// The policy (TOML).
    #[arg(long)]
    policy: PathBuf,
    /// The SQLite file recorded to (`recording`).
    #[arg(long)]
    database: PathBuf,
    /// How far up the stack to go; each step includes the ones before.
    #[arg(long, value_enum)]
    layers: Layers,
}

/// Each step adds to the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Layers {
    /// Token verification only (every verified request allowed).
    Identity,
    /// + classification and the policy.
    Policy,
    /// + masking of the answer.
    Masking,
    /// + recording on SQLite, fail-closed.
    Recording,
}

type Service = BoxCloneSyncService<Request<AirlockBody>, Response<AirlockBody>, Infallible>;

/// The `airlock` binary's allocator, so the rows add up to the gateway.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// On the runtime the `airlock` binary picks for the CPUs it may use
/// ([`airlock_gateway::runtime`]), so that it is compared on equal terms.
fn main() -> anyhow::Result<()> {
    airlock_gateway::runtime()?.block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    let service = stack(&args, local).await?;
    println!("layered ({:?}) listening on http://{local}", args.layers);

    let server = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (server, service) = (server.clone(), service.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    service.clone().oneshot(request.map(AirlockBody::new))
                });
            let _ = server.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// The layers `args` asks for, outermost first, in front of the upstream.
async fn stack(args: &Args, local: SocketAddr) -> anyhow::Result<Service> {
    let config: UpstreamConfig = toml::from_str(&format!(
        "arm_url = \"{}\"\nallow_insecure_http = true\ncredential = {{ kind = \"static\", token = \"unused\" }}",
        args.upstream
    ))?;
    let routes = Routes::new(
        &config,
        &GatewayHosts::new(Endpoint::parse(&format!("http://{local}"))?).listen_ip(local.ip()),
    )?;
    let client = ClientBuilder::new(TrustRoots::none())
        .allow_http(true)
        .build()?;
    let upstream = Upstream::new(
        routes.clone(),
        client.clone(),
        Arc::new(StaticTokenProvider::new(args.token.clone())),
    );
    let mut service: Service = BoxCloneSyncService::new(upstream);
    if args.layers >= Layers::Masking {
        let rules = airlock_gateway::default_rules()?;
        let masker = JsonMasker::builder(TokenKey::generate()?)
            .rules(rules)
            .build();
        service = BoxCloneSyncService::new(MaskingLayer::new(masker).layer(service));
    }
    if args.layers >= Layers::Policy {
        let policy = Policy::load(&args.policy)?;
        service = BoxCloneSyncService::new(
            ServiceBuilder::new()
                .layer(ClassifyLayer::new(
                    move |uri: &http::Uri, headers: &http::HeaderMap| routes.resolve(uri, headers),
                ))
                .layer(PolicyLayer::new(policy))
                .service(service),
        );
    } else {
        // Nothing decides: every verified request is allowed.
        service =
            BoxCloneSyncService::new(service.map_request(|mut request: Request<AirlockBody>| {
                request.extensions_mut().insert(Decision::Allow {
                    rule: "layered-bench".into(),
                });
                request
            }));
    }
    let validator = JwtValidator::builder()
        .tenant(&args.tenant)
        .audience("api://airlock")
        .keys(KeySource::Discovery(args.issuer.clone()))
        .http_client(Arc::new(HttpsClient::new(client, Duration::from_secs(10))))
        .build()
        .await?;
    service = BoxCloneSyncService::new(IdentityLayer::new(validator).layer(service));
    if args.layers >= Layers::Recording {
        let store = SqliteStore::open(&args.database).await?;
        let recorder = Recorder::start(Arc::new(store), RecorderConfig::default()).await?;
        service = BoxCloneSyncService::new(
            ServiceBuilder::new()
                .layer(recorder.layer())
                .map_request(|request: Request<_>| request.map(airlock_core::boxed))
                .service(service),
        );
        // Kept running for the life of the process.
        std::mem::forget(recorder);
    }
    Ok(service)
}
