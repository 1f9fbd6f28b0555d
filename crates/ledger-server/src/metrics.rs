//! `GET /metrics`: the writer's group commit in the Prometheus text format (version 0.0.4), on
//! a listener of its own, off unless `metrics_listen` is set (see `settings`).
//!
//! A scrape reads the engine's relaxed counters ([`EngineHandle::stats`]) and the stored head
//! through the [`ledger_store::LogReader`]: it never queues behind the writer, so a busy or
//! stalled writer is exactly what it shows rather than what it waits for. Counters count since
//! the process started; rates, commands per flush and mean flush time are Prometheus's to
//! derive (README, "Metrics").
//!
//! The listener is plain HTTP/1.1 without authentication: it answers `GET /metrics` and
//! nothing else (another path 404, another method 405), never reads a request body, serves a
//! few connections at a time and drops a client that does not send its headers in time.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use ledger_engine::stats::{FLUSH_BUCKET_BOUNDS_NANOS, GROUP_LEN_BUCKET_BOUNDS};
use ledger_engine::{EngineHandle, GroupStats};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

/// The content type of the Prometheus text exposition format.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

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
    /// Serves `GET /metrics` of `engine` on `listener` until stopped.
    pub fn start(listener: TcpListener, engine: EngineHandle) -> MetricsServer {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, engine, stopped));
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

async fn accept_loop(
    listener: TcpListener,
    engine: EngineHandle,
    mut stopped: watch::Receiver<bool>,
) {
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
        let engine = engine.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let answer = answer(&request, &engine);
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
fn answer(request: &Request<Incoming>, engine: &EngineHandle) -> Response<String> {
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
    // One sled read of a hot key, off the writer's thread: the head as last made durable.
    let head_position = match engine.reader().head() {
        Ok(head) => Some(head.position),
        Err(error) => {
            // The counters are still worth a scrape; the missing gauge shows the failure.
            tracing::warn!(%error, "metrics scrape cannot read the head");
            None
        }
    };
    let mut response = Response::new(render(&engine.stats(), head_position));
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

/// The exposition of `stats` (and of the head, when it could be read), in the Prometheus text
/// format 0.0.4: for each metric a `# HELP` and a `# TYPE` line, then its samples.
pub fn render(stats: &GroupStats, head_position: Option<u64>) -> String {
    let mut out = String::with_capacity(4096);
    counter(
        &mut out,
        "voucher_ledger_groups_total",
        "Groups of commands the writer made durable, one batch, flush and fdatasync each, since start.",
        stats.groups.to_string(),
    );
    counter(
        &mut out,
        "voucher_ledger_commands_total",
        "Commands decided by the writer (accepted, replayed or refused), since start.",
        stats.commands.to_string(),
    );
    counter(
        &mut out,
        "voucher_ledger_events_appended_total",
        "Events appended to the log, since start.",
        stats.events.to_string(),
    );
    counter(
        &mut out,
        "voucher_ledger_flush_seconds_total",
        "Time spent appending, flushing and syncing groups, all groups together, since start.",
        stats.flush_total.as_secs_f64().to_string(),
    );
    gauge(
        &mut out,
        "voucher_ledger_flush_seconds_max",
        "Longest append, flush and sync of one group since start.",
        stats.flush_max.as_secs_f64().to_string(),
    );
    gauge(
        &mut out,
        "voucher_ledger_group_commands_max",
        "Most commands in one group since start.",
        stats.group_len_max.to_string(),
    );
    gauge(
        &mut out,
        "voucher_ledger_queue_length",
        "Commands and reads waiting for the writer now.",
        stats.queue_len.to_string(),
    );
    if let Some(position) = head_position {
        gauge(
            &mut out,
            "voucher_ledger_head_position",
            "Position of the last durable event of the log.",
            position.to_string(),
        );
    }
    let flush_bounds: Vec<String> = FLUSH_BUCKET_BOUNDS_NANOS
        .iter()
        .map(|nanos| (*nanos as f64 / 1e9).to_string())
        .collect();
    histogram(
        &mut out,
        "voucher_ledger_group_flush_seconds",
        "Append, flush and sync time of one group.",
        &flush_bounds,
        &stats.flush_buckets,
        stats.flush_total.as_secs_f64().to_string(),
    );
    let group_bounds: Vec<String> = GROUP_LEN_BUCKET_BOUNDS.iter().map(u64::to_string).collect();
    histogram(
        &mut out,
        "voucher_ledger_group_commands",
        "Commands in one group (one flush).",
        &group_bounds,
        &stats.group_len_buckets,
        stats.commands.to_string(),
    );
    out
}

fn counter(out: &mut String, name: &str, help: &str, value: String) {
    family(out, name, help, "counter");
    let _ = writeln!(out, "{name} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: String) {
    family(out, name, help, "gauge");
    let _ = writeln!(out, "{name} {value}");
}

/// `counts` per bucket, not cumulative, one more than `bounds` (the last above every bound);
/// Prometheus wants cumulative `_bucket` samples, the `+Inf` one equal to `_count`.
fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    bounds: &[String],
    counts: &[u64],
    sum: String,
) {
    family(out, name, help, "histogram");
    let mut cumulative = 0u64;
    for (index, count) in counts.iter().enumerate() {
        cumulative = cumulative.saturating_add(*count);
        let le = bounds.get(index).map_or("+Inf", String::as_str);
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {cumulative}");
}

fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
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
        assert_eq!(declared.len(), 10);
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

    #[test]
    fn floats_never_use_an_exponent() {
        let text = render(
            &GroupStats {
                flush_total: Duration::from_nanos(7),
                flush_max: Duration::from_nanos(7),
                ..GroupStats::default()
            },
            None,
        );
        assert!(text.contains("voucher_ledger_flush_seconds_total 0.000000007\n"));
        assert!(text.contains("le=\"0.0001\""));
        assert!(text.contains("le=\"0.00025\""));
    }
}
