//! Optional OpenTelemetry trace export over OTLP/gRPC: one span per gRPC call (opened by the
//! call metrics layer, `metrics::calls`, with the service, method and gRPC code), with the
//! log events of the call inside it, sent to a collector.
//!
//! Off by default twice over: the binary has it only when built with the cargo feature `otlp`
//! (its crates are many and most deployments do without), and a binary that has it exports
//! only when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set
//! (the OpenTelemetry SDK's own variables, which also name the service, `OTEL_SERVICE_NAME`,
//! and the timeout; `OTEL_SDK_DISABLED=true` turns it off again). A binary without the
//! feature says so on stderr when those variables ask for it, and serves all the same.
//!
//! The log lines are not affected: the spans are at debug level, which only the exporter's
//! own filter lets through.

/// A layer of the tracing subscriber, on top of the registry.
pub type OtlpLayer =
    Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[cfg(feature = "otlp")]
    #[error("otlp exporter cannot be built: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// Whether the environment asks for trace export.
pub fn requested() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED")
        .is_ok_and(|value| value.trim().eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The exporter running; [`Otlp::shutdown`] sends what is left before the process exits.
#[derive(Debug)]
pub struct Otlp {
    #[cfg(feature = "otlp")]
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
}

impl Otlp {
    /// Sends the spans still buffered and stops the exporter.
    pub fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "otlp exporter did not flush at shutdown");
        }
    }
}

/// The export layer and its handle when the environment asks for it, else `None`. Call it
/// inside the runtime that serves (`Runtime::enter`): the exporter's gRPC client runs on it.
#[cfg(feature = "otlp")]
pub fn start() -> Result<Option<(OtlpLayer, Otlp)>, OtlpError> {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::Layer as _;

    if !requested() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(
            std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "voucher-ledger".to_owned()),
        )
        .build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("voucher-ledger");
    // The call spans (debug, `metrics::calls`) and the events at info and above inside them.
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(tracing::Level::INFO)
        .with_target("ledger_server::metrics::calls", tracing::Level::DEBUG);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(filter)
        .boxed();
    Ok(Some((layer, Otlp { provider })))
}

/// Without the `otlp` feature: nothing to start; says so when the environment asks for it.
#[cfg(not(feature = "otlp"))]
pub fn start() -> Result<Option<(OtlpLayer, Otlp)>, OtlpError> {
    if requested() {
        eprintln!("voucher-ledger: OTEL_EXPORTER_OTLP_ENDPOINT is set but this binary was built without trace export (cargo feature otlp); no traces are sent");
    }
    Ok(None)
}
