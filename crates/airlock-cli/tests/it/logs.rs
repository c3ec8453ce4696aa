//! `[log]`: `format = "json"` writes one JSON object per log line on
//! standard error, for a log pipeline, and text lines carry colours only
//! on a terminal; `otlp_endpoint` exports request
//! spans to an OpenTelemetry collector (feature `otel`), and a binary
//! built without that feature refuses to start rather than drop them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use airlock_demo::{AgentClient, LocalConfig};
use airlock_sim::{DevIssuer, IssuerHandle, SimAzure, SimHandle};
use http::StatusCode;

/// An `airlock serve` process in front of the simulated Azure, with
/// `[log]` set to `log`; its standard error goes to `log_file`.
struct Served {
    sim: SimHandle,
    issuer: IssuerHandle,
    gateway: Gateway,
    url: String,
    log_file: PathBuf,
    _dir: tempfile::TempDir,
}

use crate::support::{Gateway, Launch, free_port};

impl Served {
    async fn start(log: &str) -> Self {
        Self::launch(log, Launch::Plain).await
    }

    /// As [`Served::start`], the gateway launched as `launch` says.
    async fn launch(log: &str, launch: Launch) -> Self {
        let sim = SimAzure::builder().start().await.unwrap();
        let issuer = DevIssuer::start(airlock_sim::TENANT_ID).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("policy.toml"),
            "[[rule]]\nname = \"read\"\neffect = \"allow\"\nactions = [\"*/read\"]\n",
        )
        .unwrap();
        let port = free_port();
        let config = LocalConfig::new(&sim, &issuer, dir.path(), "token")
            .listen(format!("127.0.0.1:{port}"))
            .extra_toml(format!("[log]\n{log}\n"))
            .render();
        let file = dir.path().join("airlock.toml");
        std::fs::write(&file, config).unwrap();
        let log_file = dir.path().join("airlock.log");
        let gateway = Gateway(
            launch
                .command()
                .args(["serve", "--config"])
                .arg(&file)
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log_file).unwrap())
                .spawn()
                .unwrap(),
        );
        Self {
            sim,
            issuer,
            gateway,
            url: format!("http://127.0.0.1:{port}"),
            log_file,
            _dir: dir,
        }
    }

    /// Waits until `/readyz` answers 200.
    async fn ready(&self) {
        let probe = AgentClient::new(&self.url, None).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !probe
            .get("/readyz")
            .await
            .is_ok_and(|ready| ready.status == StatusCode::OK)
        {
            assert!(Instant::now() < deadline, "not ready: {}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap()
    }

    async fn shutdown(self) {
        self.sim.shutdown().await;
        self.issuer.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let mut served = Served::start("format = \"json\"").await;
    served.ready().await;
    served.gateway.0.kill().unwrap();
    served.gateway.0.wait().unwrap();
    let text = served.log();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(!lines.is_empty(), "the gateway logged at start");
    assert!(
        lines
            .iter()
            .all(|line| line["level"].is_string() && line["timestamp"].is_string()),
        "{text}"
    );
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_to_a_file_are_plain_and_name_the_request() {
    let mut served = Served::start("format = \"text\"").await;
    served.ready().await;
    // No token: refused, and logged inside the request's span.
    let agent = AgentClient::new(&served.url, None).unwrap();
    let refused = agent
        .get("/subscriptions?api-version=2022-12-01")
        .await
        .unwrap();
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    served.gateway.0.kill().unwrap();
    served.gateway.0.wait().unwrap();
    let text = served.log();
    let line = text
        .lines()
        .find(|line| line.contains("request refused"))
        .unwrap_or_else(|| panic!("no refusal logged: {text}"));
    // The span's fields as `name=value`, as the default formatter writes them.
    assert!(
        line.contains("request{method=GET path=/subscriptions request_id="),
        "{line}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in a log file: {text:?}"
    );
    served.shutdown().await;
}

#[cfg(not(feature = "otel"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_export_without_the_otel_feature_refuses_to_start() {
    let mut served = Served::start("otlp_endpoint = \"http://127.0.0.1:4318/v1/traces\"").await;
    let status = served.gateway.0.wait().unwrap();
    assert!(!status.success());
    let text = served.log();
    assert!(
        text.contains("built without OpenTelemetry") && text.contains("--features otel"),
        "{text}"
    );
    served.shutdown().await;
}

/// A request through a gateway built with `otel` reaches a collector as a
/// `request` span with its method and request id, flushed at shutdown;
/// nothing of the caller's token travels with it.
#[cfg(feature = "otel")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_reach_an_otlp_collector() {
    spans_reach_a_collector(Launch::Plain).await;
}

/// The same on one CPU, where the gateway's runtime is the current-thread
/// one: the last batch is still exported at shutdown.
#[cfg(feature = "otel")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_one_cpu_request_spans_reach_an_otlp_collector() {
    spans_reach_a_collector(Launch::OneCpu).await;
}

#[cfg(feature = "otel")]
async fn spans_reach_a_collector(launch: Launch) {
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use prost::Message as _;

    // The collector: OTLP/HTTP protobuf on /v1/traces, as a real one takes it.
    let received: Arc<Mutex<Vec<ExportTraceServiceRequest>>> = Arc::default();
    let kept = received.clone();
    let collector = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(
            move |headers: http::HeaderMap, body: axum::body::Bytes| async move {
                assert_eq!(headers["content-type"], "application/x-protobuf");
                let export = ExportTraceServiceRequest::decode(body).unwrap();
                kept.lock().unwrap().push(export);
                StatusCode::OK
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let served = Served::launch(&format!("otlp_endpoint = \"{endpoint}\""), launch).await;
    served.ready().await;
    let token = served.issuer.mint(&airlock_sim::TokenSpec::agent());
    let agent = AgentClient::new(&served.url, None)
        .unwrap()
        .with_token(token.clone());
    let groups = format!(
        "/subscriptions/{}/resourcegroups?api-version=2021-04-01",
        airlock_sim::SUBSCRIPTION_ID
    );
    let answer = agent.get(&groups).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    let request_id = answer.headers[airlock_core::REQUEST_ID_HEADER]
        .to_str()
        .unwrap()
        .to_owned();

    // A graceful stop flushes the batch.
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &served.gateway.0.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let mut served = served;
    assert!(
        served.gateway.0.wait().unwrap().success(),
        "{}",
        served.log()
    );

    let exports = received.lock().unwrap().clone();
    let resource = exports[0].resource_spans[0].resource.clone().unwrap();
    assert!(
        resource.attributes.iter().any(|a| a.key == "service.name"
            && a.value.as_ref().and_then(|v| v.value.clone())
                == Some(Value::StringValue("airlock".into()))),
        "{resource:?}"
    );
    let spans: Vec<_> = exports
        .iter()
        .flat_map(|e| &e.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let attribute = |span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str| {
        span.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.clone()?.value)
    };
    let request = spans
        .iter()
        .find(|span| {
            span.name == "request"
                && attribute(span, "request_id") == Some(Value::StringValue(request_id.clone()))
        })
        .unwrap_or_else(|| panic!("no request span for {request_id} in {spans:#?}"));
    assert_eq!(
        attribute(request, "method"),
        Some(Value::StringValue("GET".into()))
    );
    // The principal the identity layer verified, recorded into the span.
    assert!(
        matches!(attribute(request, "principal"), Some(Value::StringValue(p)) if !p.is_empty()),
        "{request:#?}"
    );
    assert!(request.end_time_unix_nano > request.start_time_unix_nano);
    let everything = format!("{exports:?}");
    assert!(
        !everything.contains(&token),
        "the agent's token was exported"
    );
    served.shutdown().await;
}
