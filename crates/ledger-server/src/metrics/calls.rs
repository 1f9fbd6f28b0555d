//! Every gRPC call, counted and timed by method and gRPC code, and every refusal counted by its
//! `google.rpc.ErrorInfo` reason: a tower layer around all the services (the API's behind the
//! edge, health and reflection), so that authentication refusals, tonic's own answers and
//! unknown methods are counted too. The same layer writes the request log: one line per call
//! with its latency (`latency_ms`).
//!
//! A call's code is read where gRPC puts it: in the response headers of a trailers-only answer
//! (every refusal of a unary call), otherwise in the trailers that end the body, which the
//! layer watches; a call whose body is dropped before its trailers (the client went away) is
//! counted as `CANCELLED`. A stream is timed to its end.
//!
//! Labels stay bounded whatever the clients send: the method labels are those of the services
//! the server has (read from their descriptor sets), and any other path is `unknown`. Reasons
//! are the server's own constants.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body::{Body as HttpBody, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use prost::Message;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use tracing::Instrument;

/// Upper bounds of the call latency histogram, in seconds: from a read answered from memory
/// (well under a millisecond) to a write waiting behind a slow `fdatasync` or a large batch;
/// streams that run longer land in `+Inf`.
const CALL_SECONDS_BOUNDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The label of a path that names no method of this server.
const UNKNOWN: &str = "unknown";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: String,
    method: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    service: String,
    method: String,
    reason: String,
}

/// The per-call metrics of one server; clones share them.
#[derive(Clone, Debug)]
pub struct CallMetrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `/package.Service/Method` → (`package.Service`, `Method`), for every method served.
    methods: HashMap<String, (String, String)>,
    requests: Family<CallLabels, Counter>,
    durations: Family<CallLabels, Histogram, fn() -> Histogram>,
    refusals: Family<RefusalLabels, Counter>,
}

fn call_histogram() -> Histogram {
    Histogram::new(CALL_SECONDS_BOUNDS)
}

impl Default for CallMetrics {
    fn default() -> Self {
        CallMetrics::new()
    }
}

impl CallMetrics {
    /// Knows the methods of the ledger's API, health and both reflection versions.
    pub fn new() -> CallMetrics {
        let mut methods = HashMap::new();
        for encoded in [
            ledger_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            // The sets are compiled into the binary; one that does not decode is a build bug,
            // and only costs its methods their labels.
            let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
                tracing::error!("a compiled-in descriptor set does not decode; its methods are counted as unknown");
                continue;
            };
            for file in &set.file {
                for service in &file.service {
                    let service_name = match file.package() {
                        "" => service.name().to_owned(),
                        package => format!("{package}.{}", service.name()),
                    };
                    for method in &service.method {
                        methods.insert(
                            format!("/{service_name}/{}", method.name()),
                            (service_name.clone(), method.name().to_owned()),
                        );
                    }
                }
            }
        }
        CallMetrics {
            inner: Arc::new(Inner {
                methods,
                requests: Family::default(),
                durations: Family::new_with_constructor(call_histogram),
                refusals: Family::default(),
            }),
        }
    }

    /// Adds the call families to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "voucher_ledger_grpc_requests",
            "gRPC calls answered, by service, method and gRPC code, since start",
            self.inner.requests.clone(),
        );
        registry.register(
            "voucher_ledger_grpc_request_duration_seconds",
            "Time from a call's headers to its last frame (its trailers), by service, method and gRPC code",
            self.inner.durations.clone(),
        );
        registry.register(
            "voucher_ledger_refusals",
            "Refusals by their google.rpc.ErrorInfo reason, of whole calls and of batch items, by service and method, since start",
            self.inner.refusals.clone(),
        );
    }

    /// The service and method labels of `path`: its own when the server has it, else unknown.
    fn method_of(&self, path: &str) -> (String, String) {
        self.inner
            .methods
            .get(path)
            .cloned()
            .unwrap_or_else(|| (UNKNOWN.to_owned(), UNKNOWN.to_owned()))
    }

    /// Counts one refused item of a batch call at `path` (the call itself answers OK).
    pub fn count_item_refusal(&self, path: &str, reason: &str) {
        let (service, method) = self.method_of(path);
        self.count_refusal(service, method, reason);
    }

    fn count_refusal(&self, service: String, method: String, reason: &str) {
        self.inner
            .refusals
            .get_or_create(&RefusalLabels {
                service,
                method,
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Records a call that ended with `code` (and `reason`, when its status has an ErrorInfo),
    /// `latency` after it began, and writes its request log line.
    fn finish(
        &self,
        (service, method): (String, String),
        code: Code,
        reason: Option<String>,
        latency: Duration,
    ) {
        let code_name = code_name(code);
        let latency_ms = latency.as_secs_f64() * 1000.0;
        // Health checks and reflection come from probes and tools, often and many: their lines
        // are for debugging; the API's calls are the request log.
        if service.starts_with("voucherledger.") || service == UNKNOWN {
            tracing::info!(%service, %method, code = code_name, reason = reason.as_deref().unwrap_or(""), latency_ms, "call answered");
        } else {
            tracing::debug!(%service, %method, code = code_name, reason = reason.as_deref().unwrap_or(""), latency_ms, "call answered");
        }
        let labels = CallLabels {
            service,
            method,
            code: code_name,
        };
        self.inner.requests.get_or_create(&labels).inc();
        self.inner
            .durations
            .get_or_create(&labels)
            .observe(latency.as_secs_f64());
        if let Some(reason) = reason {
            self.count_refusal(labels.service, labels.method, &reason);
        }
    }
}

/// The gRPC code and ErrorInfo reason of a status in `headers` (response headers of a
/// trailers-only answer, or trailers), if they hold one.
fn status_of(headers: &http::HeaderMap) -> Option<(Code, Option<String>)> {
    headers.get("grpc-status")?;
    let status = Status::from_header_map(headers)?;
    let reason = if status.code() == Code::Ok || status.details().is_empty() {
        None
    } else {
        status
            .get_error_details()
            .error_info()
            .map(|info| info.reason.clone())
    };
    Some((status.code(), reason))
}

/// The canonical name of a gRPC code, as grpc-go and Prometheus dashboards spell it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Wraps the server's routes in [`CallMetricsService`].
#[derive(Clone, Debug)]
pub struct CallMetricsLayer {
    metrics: CallMetrics,
}

impl CallMetricsLayer {
    pub fn new(metrics: CallMetrics) -> CallMetricsLayer {
        CallMetricsLayer { metrics }
    }
}

impl<S> tower_layer::Layer<S> for CallMetricsLayer {
    type Service = CallMetricsService<S>;

    fn layer(&self, inner: S) -> CallMetricsService<S> {
        CallMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// Counts and times every call it passes to `inner`.
#[derive(Clone, Debug)]
pub struct CallMetricsService<S> {
    inner: S,
    metrics: CallMetrics,
}

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for CallMetricsService<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    RequestBody: Send + 'static,
    ResponseBody: HttpBody + Unpin + Send + 'static,
{
    type Response = http::Response<ObservedBody<ResponseBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let started = Instant::now();
        let method = self.metrics.method_of(request.uri().path());
        // The call's trace span, for the optional OTLP export (`otlp`); at debug level, so the
        // log lines do not carry it and, without export, it costs a disabled span.
        let span = tracing::debug_span!(
            "grpc call",
            otel.name = %format_args!("{}/{}", method.0, method.1),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %method.0,
            rpc.method = %method.1,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        let metrics = self.metrics.clone();
        // The service that was polled ready takes this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).instrument(span.clone()).await?;
            let mut call = Some(Call {
                metrics,
                method,
                started,
                span,
            });
            // A trailers-only answer: the status is in the headers and the body is empty.
            if let Some((code, reason)) = status_of(response.headers()) {
                if let Some(call) = call.take() {
                    call.finish(code, reason);
                }
            }
            Ok(response.map(|inner| ObservedBody { inner, call }))
        })
    }
}

/// A call under way: what its end is recorded with.
#[derive(Debug)]
struct Call {
    metrics: CallMetrics,
    method: (String, String),
    started: Instant,
    /// Ends with the call (dropped after [`Call::finish`]).
    span: tracing::Span,
}

impl Call {
    fn finish(self, code: Code, reason: Option<String>) {
        self.span.record("rpc.grpc.status_code", code as i32);
        let _inside = self.span.enter();
        self.metrics
            .finish(self.method, code, reason, self.started.elapsed());
    }
}

/// A response body that records its call when its trailers pass (or when it is dropped first).
#[derive(Debug)]
pub struct ObservedBody<B> {
    inner: B,
    call: Option<Call>,
}

impl<B: HttpBody + Unpin> HttpBody for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(context);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    if let Some(call) = this.call.take() {
                        let (code, reason) = status_of(trailers).unwrap_or((Code::Unknown, None));
                        call.finish(code, reason);
                    }
                }
            }
            // The body failed to produce its frames (tonic turns its own errors into trailers,
            // so this is the transport's).
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.call.take() {
                    call.finish(Code::Internal, None);
                }
            }
            // Ended without trailers: no status was sent.
            Poll::Ready(None) => {
                if let Some(call) = this.call.take() {
                    call.finish(Code::Unknown, None);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        // Dropped before its trailers: the client cancelled or the connection went away.
        if let Some(call) = self.call.take() {
            call.finish(Code::Cancelled, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(metrics: &CallMetrics) -> String {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).expect("encoded");
        out
    }

    #[test]
    fn the_servers_methods_have_labels_and_any_other_path_is_unknown() {
        let metrics = CallMetrics::new();
        assert_eq!(
            metrics.method_of("/voucherledger.v1.ProviderService/RedeemHours"),
            (
                "voucherledger.v1.ProviderService".to_owned(),
                "RedeemHours".to_owned()
            )
        );
        assert_eq!(metrics.method_of("/grpc.health.v1.Health/Check").1, "Check");
        assert_eq!(
            metrics
                .method_of("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
                .0,
            "grpc.reflection.v1.ServerReflection"
        );
        for made_up in [
            "/voucherledger.v1.ProviderService/DropTables",
            "/x",
            "",
            "/voucherledger.v1.ProviderService/RedeemHours/",
        ] {
            assert_eq!(
                metrics.method_of(made_up),
                (UNKNOWN.to_owned(), UNKNOWN.to_owned()),
                "{made_up}"
            );
        }
    }

    #[test]
    fn a_finished_call_is_counted_timed_and_its_reason_counted() {
        let metrics = CallMetrics::new();
        let path = "/voucherledger.v1.ProviderService/RedeemHours";
        metrics.finish(
            metrics.method_of(path),
            Code::Ok,
            None,
            Duration::from_millis(3),
        );
        metrics.finish(
            metrics.method_of(path),
            Code::FailedPrecondition,
            Some("QUOTA_EXCEEDED".to_owned()),
            Duration::from_micros(50),
        );
        metrics.count_item_refusal(path, "QUOTA_EXCEEDED");
        let text = encoded(&metrics);
        let labels = "service=\"voucherledger.v1.ProviderService\",method=\"RedeemHours\"";
        assert!(
            text.contains(&format!(
                "voucher_ledger_grpc_requests_total{{{labels},code=\"OK\"}} 1\n"
            )),
            "{text}"
        );
        assert!(text.contains(&format!(
            "voucher_ledger_grpc_requests_total{{{labels},code=\"FAILED_PRECONDITION\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "voucher_ledger_refusals_total{{{labels},reason=\"QUOTA_EXCEEDED\"}} 2\n"
        )));
        // 3 ms is above the 2.5 ms bound, below the 5 ms one.
        assert!(text.contains(&format!(
            "voucher_ledger_grpc_request_duration_seconds_bucket{{{labels},code=\"OK\",le=\"0.0025\"}} 0\n"
        )));
        assert!(text.contains(&format!(
            "voucher_ledger_grpc_request_duration_seconds_bucket{{{labels},code=\"OK\",le=\"0.005\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "voucher_ledger_grpc_request_duration_seconds_count{{{labels},code=\"OK\"}} 1\n"
        )));
    }

    #[test]
    fn the_status_and_reason_are_read_from_headers() {
        let status = crate::status::server_status(
            crate::status::ServerReason::LedgerUnavailable,
            "the ledger's writer is not running",
        );
        let response = status.into_http::<tonic::body::Body>();
        assert_eq!(
            status_of(response.headers()),
            Some((Code::Unavailable, Some("LEDGER_UNAVAILABLE".to_owned())))
        );
        let without_details =
            Status::unimplemented("no such method").into_http::<tonic::body::Body>();
        assert_eq!(
            status_of(without_details.headers()),
            Some((Code::Unimplemented, None))
        );
        assert_eq!(status_of(&http::HeaderMap::new()), None);
    }

    /// A body of one trailers frame, as tonic ends a call that has sent its messages.
    struct TrailersOnly(Option<http::HeaderMap>);

    impl HttpBody for TrailersOnly {
        type Data = &'static [u8];
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _context: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<&'static [u8]>, std::convert::Infallible>>> {
            Poll::Ready(self.0.take().map(|trailers| Ok(Frame::trailers(trailers))))
        }
    }

    fn observed(metrics: &CallMetrics, trailers: http::HeaderMap) -> ObservedBody<TrailersOnly> {
        ObservedBody {
            inner: TrailersOnly(Some(trailers)),
            call: Some(Call {
                metrics: metrics.clone(),
                method: metrics.method_of("/voucherledger.v1.AuditService/Subscribe"),
                started: Instant::now(),
                span: tracing::Span::none(),
            }),
        }
    }

    fn count(metrics: &CallMetrics, code: &'static str) -> u64 {
        metrics
            .inner
            .requests
            .get(&CallLabels {
                service: "voucherledger.v1.AuditService".to_owned(),
                method: "Subscribe".to_owned(),
                code,
            })
            .map_or(0, |counter| counter.get())
    }

    #[test]
    fn a_call_ends_with_the_code_of_its_trailers_or_cancelled_when_dropped_before_them() {
        let metrics = CallMetrics::new();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let mut body = observed(&metrics, trailers);
        let waker = std::task::Waker::noop();
        let mut context = Context::from_waker(waker);
        assert!(matches!(
            Pin::new(&mut body).poll_frame(&mut context),
            Poll::Ready(Some(Ok(_)))
        ));
        assert_eq!(count(&metrics, "OK"), 1);
        drop(body);
        // Recorded once: the drop after the trailers adds nothing.
        assert_eq!(count(&metrics, "OK"), 1);
        assert_eq!(count(&metrics, "CANCELLED"), 0);

        // A client that goes away before the trailers: the body is dropped unread.
        drop(observed(&metrics, http::HeaderMap::new()));
        assert_eq!(count(&metrics, "CANCELLED"), 1);
    }

    #[test]
    fn every_code_has_its_canonical_name() {
        for number in 0..=16 {
            let name = code_name(Code::from_i32(number));
            assert!(name.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
        }
        assert_eq!(code_name(Code::from_i32(5)), "NOT_FOUND");
    }
}
