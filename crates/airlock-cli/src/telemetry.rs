//! The binary's logging: `tracing` lines on standard error (`[log] format`)
//! and, with the `otel` feature, request spans exported to an OpenTelemetry
//! collector (`[log] otlp_endpoint`).

use std::io::IsTerminal as _;

use airlock_gateway::config::{LogConfig, LogFormat};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, Registry};

/// What must be flushed before the process exits.
pub(crate) struct Telemetry {
    #[cfg(feature = "otel")]
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered (bounded by the exporter's timeout).
    pub(crate) fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(traces) = self.traces
            && let Err(error) = traces.shutdown()
        {
            eprintln!("warning: not every trace span could be exported: {error}");
        }
    }
}

pub(crate) type BoxedLayer = Box<dyn tracing_subscriber::Layer<Registry> + Send + Sync>;

/// Installs the global subscriber: `filter`, log lines in `config.format`,
/// and span export when `config.otlp_endpoint` is set. Span export runs its
/// requests on `runtime`.
///
/// # Errors
///
/// An endpoint set in a binary built without the `otel` feature (the
/// configuration asks for something this build cannot do), or an exporter
/// that cannot be built.
pub(crate) fn init(
    filter: EnvFilter,
    config: &LogConfig,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<Telemetry> {
    // Colours only for a terminal: a log file or journal gets plain text,
    // and a request's span costs about half as much to format without the
    // escape codes around each field name (callgrind, at `info`: ~13k
    // instructions per request with them, ~7k without).
    let terminal = std::io::stderr().is_terminal();
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(terminal);
    let lines: BoxedLayer = match config.format {
        LogFormat::Json => lines.json().flatten_event(true).boxed(),
        LogFormat::Text if terminal => lines.boxed(),
        LogFormat::Text => lines.fmt_fields(plain_fields()).boxed(),
    };
    let mut layers = vec![lines];
    let telemetry = spans(config, runtime, &mut layers)?;
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .init();
    Ok(telemetry)
}

/// Fields as `name=value`, the message bare, as the default formatter
/// writes them without colours, but without painting each name and `=`
/// with an empty style first: ten formatter calls per request at `info`,
/// 3k instructions (callgrind), 2.4% of an unrecorded request.
fn plain_fields() -> impl for<'writer> tracing_subscriber::fmt::FormatFields<'writer> {
    use tracing_subscriber::field::MakeExt as _;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        if field.name() == "message" {
            write!(writer, "{value:?}")
        } else {
            write!(writer, "{field}={value:?}")
        }
    })
    .delimited(" ")
}

#[cfg(not(feature = "otel"))]
fn spans(
    config: &LogConfig,
    _runtime: &tokio::runtime::Handle,
    _layers: &mut Vec<BoxedLayer>,
) -> anyhow::Result<Telemetry> {
    match &config.otlp_endpoint {
        Some(_) => anyhow::bail!(
            "[log] otlp_endpoint is set, but this airlock was built without OpenTelemetry; build it with `cargo build --release -p airlock-cli --features otel`, or remove otlp_endpoint"
        ),
        None => Ok(Telemetry {}),
    }
}

#[cfg(feature = "otel")]
fn spans(
    config: &LogConfig,
    runtime: &tokio::runtime::Handle,
    layers: &mut Vec<BoxedLayer>,
) -> anyhow::Result<Telemetry> {
    let Some(endpoint) = &config.otlp_endpoint else {
        return Ok(Telemetry { traces: None });
    };
    let traces = crate::otel::provider(endpoint, runtime.clone())?;
    layers.push(crate::otel::layer(&traces));
    Ok(Telemetry {
        traces: Some(traces),
    })
}
