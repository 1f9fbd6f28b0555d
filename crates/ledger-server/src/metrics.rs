//! `GET /metrics`: the server's metrics in the Prometheus text format (version 0.0.4), on a
//! listener of its own, off unless `metrics_listen` is set (see `settings`).
//!
//! The registry and its encoder are `prometheus-client`'s. What it holds:
//!
//! - the writer's group commit, read at each scrape from the engine's relaxed counters
//!   ([`EngineHandle::stats`]) and the stored head through the [`ledger_store::LogReader`]: a
//!   scrape never queues behind the writer, so a busy or stalled writer is exactly what it
//!   shows rather than what it waits for;
//! - every gRPC call, by method and code, and every refusal by its `ErrorInfo` reason
//!   ([`calls`], a tower layer around the services);
//! - the process: resident memory, CPU seconds, open files, start time, read from `/proc`
//!   ([`process`]);
//! - the build: version and git commit.
//!
//! Counters count since the process started; rates and quantiles are Prometheus's to derive
//! (README, "Metrics").
//!
//! The listener is plain HTTP/1.1 without authentication: it answers `GET /metrics` and
//! nothing else (another path 404, another method 405), never reads a request body, serves a
//! few connections at a time and drops a client that does not send its headers in time.

pub mod calls;
pub mod process;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use ledger_engine::stats::{FLUSH_BUCKET_BOUNDS_NANOS, GROUP_LEN_BUCKET_BOUNDS};
use ledger_engine::{EngineHandle, GroupStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

pub use calls::{CallMetrics, CallMetricsLayer};

/// The content type of the Prometheus text exposition format.
pub const CONTENT_TYPE_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The git commit the binary was built from (`build.rs`), or `unknown` outside a git checkout.
pub const GIT_COMMIT: &str = env!("VOUCHER_LEDGER_GIT_COMMIT");

/// Connections served at once. A scraper or two, and someone with curl, need a handful; more
/// is someone holding sockets open, and is closed at once.
pub const METRICS_CONNECTIONS_MAX: usize = 16;

/// Longest wait for a request's headers; a client that sends nothing does not keep a slot.
pub const METRICS_HEADER_READ_TIMEOUT_MS: u64 = 10_000;

/// Request line and headers held per connection: hyper's minimum; a scrape is a few hundred
/// bytes.
const METRICS_REQUEST_BUFFER_BYTES_MAX: usize = 8 * 1024;

/// Longest wait, at a graceful stop, for scrapes under way to finish.
pub const METRICS_STOP_WAIT_MS: u64 = 2_000;

/// Pause after a failed `accept` (out of file descriptors, say), so the loop does not spin.
const ACCEPT_RETRY_MS: u64 = 50;

/// The metrics listener, running on the runtime until [`MetricsServer::stop`].
#[derive(Debug)]
pub struct MetricsServer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Stops a [`MetricsServer`] from elsewhere (the gRPC server's shutdown future).
#[derive(Clone, Debug)]
pub struct MetricsStop(watch::Sender<bool>);

impl MetricsStop {
    /// Stops accepting connections and closes idle ones; idempotent.
    pub fn stop(&self) {
        // Nobody left to receive means the server is already gone.
        let _ = self.0.send(true);
    }
}

impl MetricsServer {
    /// Serves `GET /metrics` of `metrics` on `listener` until stopped.
    pub fn start(listener: TcpListener, metrics: Metrics) -> MetricsServer {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, metrics, stopped));
        MetricsServer { stop, task }
    }

    pub fn stopper(&self) -> MetricsStop {
        MetricsStop(self.stop.clone())
    }

    /// Stops accepting, lets scrapes under way finish (at most [`METRICS_STOP_WAIT_MS`]) and
    /// waits for the listener to close.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "metrics listener task failed");
        }
    }
}

async fn accept_loop(listener: TcpListener, metrics: Metrics, mut stopped: watch::Receiver<bool>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = std::sync::Arc::new(Semaphore::new(METRICS_CONNECTIONS_MAX));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(METRICS_HEADER_READ_TIMEOUT_MS))
        .max_buf_size(METRICS_REQUEST_BUFFER_BYTES_MAX);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            // A stop, or the server dropped without one: either way, no more scrapes.
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "metrics listener cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                continue;
            }
        };
        let Ok(slot) = std::sync::Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, limit = METRICS_CONNECTIONS_MAX, "metrics connection refused: too many open");
            continue;
        };
        // One small answer per request; do not let Nagle hold its last segment back.
        let _ = stream.set_nodelay(true);
        let metrics = metrics.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let answer = answer(&request, &metrics);
            async move { Ok::<_, Infallible>(answer) }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "metrics connection ended on an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_millis(METRICS_STOP_WAIT_MS)) => {
            tracing::warn!("metrics connections still open at stop; dropped");
        }
    }
    tracing::info!("metrics listener stopped");
}

/// The answer to one request. The body of the request is never read.
fn answer(request: &Request<Incoming>, metrics: &Metrics) -> Response<String> {
    if request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: the only path is /metrics\n",
        );
    }
    if request.method() != Method::GET {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: use GET\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    let mut response = Response::new(metrics.render());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT));
    response
}

fn plain(status: StatusCode, body: &str) -> Response<String> {
    let mut response = Response::new(body.to_owned());
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Every metric of one server: a registry built once at start, encoded at each scrape.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
}

impl Metrics {
    /// The metrics of the server running `engine`, whose calls `calls` counts.
    pub fn new(engine: EngineHandle, calls: &CallMetrics) -> Metrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(EngineCollector::Live(engine)));
        calls.register(&mut registry);
        registry.register_collector(Box::new(process::ProcessCollector));
        register_build_info(&mut registry);
        Metrics {
            registry: Arc::new(registry),
        }
    }

    /// The exposition, in the Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        encode(&self.registry)
    }
}

fn encode(registry: &Registry) -> String {
    let mut out = String::with_capacity(16 * 1024);
    if let Err(error) = prometheus_client::encoding::prometheus_text::encode(&mut out, registry) {
        // Only a failed write to a String, or a collector's: the scrape shows what came before.
        tracing::warn!(%error, "metrics cannot be encoded in full");
    }
    out
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    git_commit: &'static str,
}

/// `voucher_ledger_build_info{version, git_commit} 1`: which binary answers, for dashboards
/// and alerts across an upgrade.
fn register_build_info(registry: &mut Registry) {
    registry.register(
        "voucher_ledger_build",
        "The version and git commit of the running binary (value 1)",
        Info::new(BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            git_commit: GIT_COMMIT,
        }),
    );
}

/// The writer's group-commit figures, read at each scrape.
#[derive(Debug)]
enum EngineCollector {
    Live(EngineHandle),
    /// Fixed figures, for the format's unit tests.
    #[cfg(test)]
    Fixed(Box<GroupStats>, Option<u64>),
}

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (stats, head_position) = match self {
            EngineCollector::Live(engine) => {
                // One sled read of a hot key, off the writer's thread: the head as last made
                // durable.
                let head_position = match engine.reader().head() {
                    Ok(head) => Some(head.position),
                    Err(error) => {
                        // The counters are still worth a scrape; the missing gauge shows the
                        // failure.
                        tracing::warn!(%error, "metrics scrape cannot read the head");
                        None
                    }
                };
                (engine.stats(), head_position)
            }
            #[cfg(test)]
            EngineCollector::Fixed(stats, head_position) => (**stats, *head_position),
        };
        encode_engine(&mut encoder, &stats, head_position)
    }
}

/// The group-commit families. Counter names are given without `_total`: the encoder adds it.
fn encode_engine(
    encoder: &mut DescriptorEncoder,
    stats: &GroupStats,
    head_position: Option<u64>,
) -> Result<(), std::fmt::Error> {
    let counters = [
        (
            "voucher_ledger_groups",
            "Groups of commands the writer made durable, one batch, flush and fdatasync each, since start.",
            stats.groups,
        ),
        (
            "voucher_ledger_commands",
            "Commands decided by the writer (accepted, replayed or refused), since start.",
            stats.commands,
        ),
        (
            "voucher_ledger_events_appended",
            "Events appended to the log, since start.",
            stats.events,
        ),
        (
            "voucher_ledger_checkpoint_copies",
            "Snapshots of the state and the projections the writer took for checkpoints, since start.",
            stats.checkpoint_copies,
        ),
    ];
    for (name, help, value) in counters {
        ConstCounter::new(value).encode(encoder.encode_descriptor(
            name,
            help,
            None,
            MetricType::Counter,
        )?)?;
    }
    ConstCounter::new(stats.flush_total.as_secs_f64()).encode(encoder.encode_descriptor(
        "voucher_ledger_flush_seconds",
        "Time spent appending, flushing and syncing groups, all groups together, since start.",
        None,
        MetricType::Counter,
    )?)?;
    ConstGauge::new(stats.flush_max.as_secs_f64()).encode(encoder.encode_descriptor(
        "voucher_ledger_flush_seconds_max",
        "Longest append, flush and sync of one group since start.",
        None,
        MetricType::Gauge,
    )?)?;
    ConstCounter::new(stats.checkpoint_copy_total.as_secs_f64()).encode(
        encoder.encode_descriptor(
            "voucher_ledger_checkpoint_copy_seconds",
            "Time the writer spent taking snapshots for checkpoints, no group decided meanwhile, since start.",
            None,
            MetricType::Counter,
        )?,
    )?;
    ConstGauge::new(stats.checkpoint_copy_max.as_secs_f64()).encode(encoder.encode_descriptor(
        "voucher_ledger_checkpoint_copy_seconds_max",
        "Longest snapshot for a checkpoint the writer took since start.",
        None,
        MetricType::Gauge,
    )?)?;
    ConstGauge::new(stats.group_len_max).encode(encoder.encode_descriptor(
        "voucher_ledger_group_commands_max",
        "Most commands in one group since start.",
        None,
        MetricType::Gauge,
    )?)?;
    ConstGauge::new(stats.queue_len).encode(encoder.encode_descriptor(
        "voucher_ledger_queue_length",
        "Commands and reads waiting for the writer now.",
        None,
        MetricType::Gauge,
    )?)?;
    if let Some(position) = head_position {
        ConstGauge::new(position).encode(encoder.encode_descriptor(
            "voucher_ledger_head_position",
            "Position of the last durable event of the log.",
            None,
            MetricType::Gauge,
        )?)?;
    }
    // The engine keeps counts per bucket, not cumulative, the last above every bound: the
    // encoder sums them up and ends with `+Inf`, equal to `_count`.
    let flush_buckets: Vec<(f64, u64)> = FLUSH_BUCKET_BOUNDS_NANOS
        .iter()
        .map(|nanos| *nanos as f64 / 1e9)
        .chain([f64::INFINITY])
        .zip(stats.flush_buckets)
        .collect();
    encoder
        .encode_descriptor(
            "voucher_ledger_group_flush_seconds",
            "Append, flush and sync time of one group.",
            None,
            MetricType::Histogram,
        )?
        .encode_histogram::<NoLabelSet>(
            stats.flush_total.as_secs_f64(),
            // The buckets' own total, so that `+Inf` equals `_count` even when a group lands
            // between the reads of two relaxed counters.
            stats.flush_buckets.iter().sum(),
            &flush_buckets,
            None,
        )?;
    let group_buckets: Vec<(f64, u64)> = GROUP_LEN_BUCKET_BOUNDS
        .iter()
        .map(|bound| *bound as f64)
        .chain([f64::INFINITY])
        .zip(stats.group_len_buckets)
        .collect();
    encoder
        .encode_descriptor(
            "voucher_ledger_group_commands",
            "Commands in one group (one flush).",
            None,
            MetricType::Histogram,
        )?
        .encode_histogram::<NoLabelSet>(
            stats.commands as f64,
            stats.group_len_buckets.iter().sum(),
            &group_buckets,
            None,
        )?;
    Ok(())
}

/// The exposition of the group-commit families alone, for the format's unit tests.
#[cfg(test)]
fn render(stats: &GroupStats, head_position: Option<u64>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(EngineCollector::Fixed(
        Box::new(*stats),
        head_position,
    )));
    encode(&registry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_engine::stats::{FLUSH_BUCKETS, GROUP_LEN_BUCKETS};

    fn stats() -> GroupStats {
        let mut flush_buckets = [0; FLUSH_BUCKETS];
        flush_buckets[0] = 2; // ≤ 100 µs
        flush_buckets[4] = 1; // ≤ 2.5 ms
        flush_buckets[FLUSH_BUCKETS - 1] = 1; // > 2.5 s
        let mut group_len_buckets = [0; GROUP_LEN_BUCKETS];
        group_len_buckets[0] = 3; // one command
        group_len_buckets[7] = 1; // 65 to 128 commands
        GroupStats {
            groups: 4,
            commands: 103,
            events: 110,
            group_len_max: 100,
            flush_total: Duration::from_micros(3_002_150),
            flush_max: Duration::from_secs(3),
            queue_len: 5,
            flush_buckets,
            group_len_buckets,
            checkpoint_copies: 2,
            checkpoint_copy_total: Duration::from_micros(750),
            checkpoint_copy_max: Duration::from_micros(500),
        }
    }

    /// The samples: name with labels → value.
    fn samples(text: &str) -> Vec<(String, f64)> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| {
                let (name, value) = line.rsplit_once(' ').expect("name and value");
                let value = match value {
                    "+Inf" => f64::INFINITY,
                    value => value.parse().expect("a number"),
                };
                (name.to_owned(), value)
            })
            .collect()
    }

    fn sample(text: &str, name: &str) -> f64 {
        samples(text)
            .into_iter()
            .find(|(sample, _)| sample == name)
            .unwrap_or_else(|| panic!("no sample {name}"))
            .1
    }

    #[test]
    fn every_counter_and_gauge_has_its_value() {
        let text = render(&stats(), Some(110));
        assert_eq!(sample(&text, "voucher_ledger_groups_total"), 4.0);
        assert_eq!(sample(&text, "voucher_ledger_commands_total"), 103.0);
        assert_eq!(sample(&text, "voucher_ledger_events_appended_total"), 110.0);
        assert_eq!(sample(&text, "voucher_ledger_flush_seconds_total"), 3.00215);
        assert_eq!(sample(&text, "voucher_ledger_flush_seconds_max"), 3.0);
        assert_eq!(sample(&text, "voucher_ledger_group_commands_max"), 100.0);
        assert_eq!(sample(&text, "voucher_ledger_queue_length"), 5.0);
        assert_eq!(sample(&text, "voucher_ledger_head_position"), 110.0);
        assert_eq!(sample(&text, "voucher_ledger_checkpoint_copies_total"), 2.0);
        assert_eq!(
            sample(&text, "voucher_ledger_checkpoint_copy_seconds_total"),
            0.00075
        );
        assert_eq!(
            sample(&text, "voucher_ledger_checkpoint_copy_seconds_max"),
            0.0005
        );
    }

    #[test]
    fn histograms_are_cumulative_and_end_in_inf_equal_to_count() {
        let text = render(&stats(), None);
        let flush = "voucher_ledger_group_flush_seconds";
        assert_eq!(
            sample(&text, &format!("{flush}_bucket{{le=\"0.0001\"}}")),
            2.0
        );
        assert_eq!(
            sample(&text, &format!("{flush}_bucket{{le=\"0.001\"}}")),
            2.0
        );
        assert_eq!(
            sample(&text, &format!("{flush}_bucket{{le=\"0.0025\"}}")),
            3.0
        );
        assert_eq!(sample(&text, &format!("{flush}_bucket{{le=\"2.5\"}}")), 3.0);
        assert_eq!(
            sample(&text, &format!("{flush}_bucket{{le=\"+Inf\"}}")),
            4.0
        );
        assert_eq!(sample(&text, &format!("{flush}_count")), 4.0);
        assert_eq!(sample(&text, &format!("{flush}_sum")), 3.00215);

        let commands = "voucher_ledger_group_commands";
        assert_eq!(
            sample(&text, &format!("{commands}_bucket{{le=\"1\"}}")),
            3.0
        );
        assert_eq!(
            sample(&text, &format!("{commands}_bucket{{le=\"64\"}}")),
            3.0
        );
        assert_eq!(
            sample(&text, &format!("{commands}_bucket{{le=\"128\"}}")),
            4.0
        );
        assert_eq!(
            sample(&text, &format!("{commands}_bucket{{le=\"1024\"}}")),
            4.0
        );
        assert_eq!(
            sample(&text, &format!("{commands}_bucket{{le=\"+Inf\"}}")),
            4.0
        );
        assert_eq!(sample(&text, &format!("{commands}_count")), 4.0);
        assert_eq!(sample(&text, &format!("{commands}_sum")), 103.0);

        let bounds: Vec<f64> = samples(&text)
            .into_iter()
            .filter_map(|(name, _)| {
                let le = name.strip_prefix(&format!("{flush}_bucket{{le=\""))?;
                let le = le.strip_suffix("\"}")?;
                Some(if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("a bound")
                })
            })
            .collect();
        assert_eq!(bounds.len(), FLUSH_BUCKETS);
        assert!(bounds.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let text = render(&stats(), Some(1));
        let mut declared: Vec<(String, String)> = Vec::new();
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("a name and a text");
                assert!(!help.is_empty());
                let kind = lines
                    .next()
                    .and_then(|line| line.strip_prefix(&format!("# TYPE {name} ")))
                    .expect("TYPE follows HELP");
                assert!(["counter", "gauge", "histogram"].contains(&kind));
                declared.push((name.to_owned(), kind.to_owned()));
                continue;
            }
            let (name, _) = line.rsplit_once(' ').expect("a sample");
            let bare = name.split('{').next().expect("a name");
            let (family, kind) = declared.last().expect("a family declared first");
            match kind.as_str() {
                "histogram" => assert!(
                    [
                        format!("{family}_bucket"),
                        format!("{family}_sum"),
                        format!("{family}_count")
                    ]
                    .contains(&bare.to_owned()),
                    "{line}"
                ),
                _ => assert_eq!(bare, family, "{line}"),
            }
            assert!(bare
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        }
        assert_eq!(declared.len(), 13);
        for (name, kind) in &declared {
            assert_eq!(
                name.ends_with("_total"),
                kind == "counter",
                "{name}: counters and only counters end in _total"
            );
        }
    }

    #[test]
    fn without_a_head_there_is_no_head_gauge() {
        let text = render(&GroupStats::default(), None);
        assert!(!text.contains("voucher_ledger_head_position"));
        assert_eq!(sample(&text, "voucher_ledger_groups_total"), 0.0);
        assert_eq!(
            sample(
                &text,
                "voucher_ledger_group_flush_seconds_bucket{le=\"+Inf\"}"
            ),
            0.0
        );
    }

    /// Adapted to prometheus-client: the hand-written encoder never used an exponent; the
    /// crate writes a sample as `dtoa` does (7 ns is `7e-9`, which the format allows and
    /// Prometheus reads) and bucket bounds as Go's `%g` does, as the Go client would.
    #[test]
    fn small_floats_keep_their_value_and_bounds_are_written_as_go_writes_them() {
        let text = render(
            &GroupStats {
                flush_total: Duration::from_nanos(7),
                flush_max: Duration::from_nanos(7),
                ..GroupStats::default()
            },
            None,
        );
        assert_eq!(sample(&text, "voucher_ledger_flush_seconds_total"), 7e-9);
        assert_eq!(sample(&text, "voucher_ledger_flush_seconds_max"), 7e-9);
        assert!(text.contains("le=\"0.0001\""));
        assert!(text.contains("le=\"0.00025\""));
        assert!(text.contains("le=\"2.5\""));
    }
}
