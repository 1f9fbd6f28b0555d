//! The Prometheus endpoint of the real `voucher-ledger serve`: off by default, and with
//! `--metrics-listen` a `GET /metrics` whose counters follow the writes done over gRPC.
//!
//! Servers run with the demo configuration on 127.0.0.1:0 and folders of their own; the
//! metrics listener too is on port 0, its address read from the line `serve` prints.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ledger_proto::v1 as api;
use ledger_proto::v1::administration_service_client::AdministrationServiceClient;
use ledger_proto::v1::audit_service_client::AuditServiceClient;
use tonic::transport::Channel;
use tonic::Request;

use ledger_testkit::bearer as with_token;
use ledger_testkit::tokens::{ADMINISTRATION, AUDITOR};
use ledger_testkit::Process;

const METRICS_PREFIX: &str = "voucher-ledger metrics on http://";

/// Longest wait for a metrics answer: generous, for a 2-core machine busy with other builds.
const WAIT_MAX: Duration = Duration::from_secs(120);

/// `voucher-ledger ARGS` with a clean environment.
fn voucher_ledger(args: &[&str]) -> Command {
    ledger_testkit::command(env!("CARGO_BIN_EXE_voucher-ledger"), args)
}

/// User and system CPU seconds of process `pid` as the kernel counts them (`/proc/PID/stat`,
/// fields 14 and 15, in ticks of 1/100 s).
fn cpu_seconds_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server's stat");
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    // Field 3 (state) is the first after the name: fields 14 and 15 are at 11 and 12.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / 100.0
}

/// A running `voucher-ledger serve --demo`, with what it printed before it was ready.
struct Server {
    process: Process,
    channel: Channel,
    /// `host:port` of the metrics listener, when `serve` announced one.
    metrics: Option<String>,
}

impl Server {
    /// With `extra` arguments after the usual ones, and `env` added to the environment.
    async fn start(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = voucher_ledger(&["serve", "--demo", "--listen", "127.0.0.1:0"]);
        command
            .arg("--data")
            .arg(data)
            .args(extra)
            .envs(env.iter().copied());
        let process = Process::started(&mut command, &data.with_extension("server.log")).await;
        let metrics = process
            .announced_after(METRICS_PREFIX)
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .map(str::to_owned);
        let channel = Channel::from_shared(process.uri())
            .expect("a valid uri")
            .connect()
            .await
            .expect("the server accepts a connection");
        Server {
            process,
            channel,
            metrics,
        }
    }

    /// With metrics on a port of its own, data in `home`'s `data` folder.
    async fn with_metrics(home: &tempfile::TempDir) -> Server {
        Server::start(
            &home.path().join("data"),
            &["--metrics-listen", "127.0.0.1:0"],
            &[],
        )
        .await
    }

    fn metrics_address(&self) -> &str {
        self.metrics
            .as_deref()
            .expect("serve announced its metrics address")
    }

    /// SIGTERM, then waits for a clean exit.
    async fn stop(self) {
        self.process.stop().await;
    }
}

/// An HTTP/1.1 answer: status code, headers (names lowercase), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }
}

/// `METHOD PATH` on a connection of its own, closed after the answer, read to its end.
async fn http(address: &str, method: &str, path: &str) -> Answer {
    let address = address.to_owned();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&address).expect("the metrics listener accepts");
        stream
            .set_read_timeout(Some(WAIT_MAX))
            .expect("a read timeout");
        stream.write_all(request.as_bytes()).expect("request sent");
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).expect("answer read");
        let text = String::from_utf8(bytes).expect("an utf-8 answer");
        let (head, body) = text.split_once("\r\n\r\n").expect("headers then body");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("a status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("a status code in {status_line:?}"));
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').expect("name: value");
                (name.trim().to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        Answer {
            status,
            headers,
            body: body.to_owned(),
        }
    })
    .await
    .expect("the request does not panic")
}

/// The exposition's samples, each line checked to be `name{labels} value`, and the families
/// declared by `# HELP` and `# TYPE`.
struct Exposition {
    samples: Vec<(String, f64)>,
    help: Vec<String>,
    types: Vec<(String, String)>,
}

fn parse(text: &str) -> Exposition {
    let mut exposition = Exposition {
        samples: Vec::new(),
        help: Vec::new(),
        types: Vec::new(),
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("# HELP name text");
            assert!(!help.trim().is_empty(), "{line}");
            exposition.help.push(name.to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            exposition.types.push((name.to_owned(), kind.to_owned()));
            continue;
        }
        assert!(
            !line.starts_with('#'),
            "only HELP and TYPE comments: {line}"
        );
        let (series, value) = line.rsplit_once(' ').expect("a name and a value");
        let name_end = series.find('{').unwrap_or(series.len());
        let (name, labels) = series.split_at(name_end);
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "a metric name: {line}"
        );
        if !labels.is_empty() {
            let inner = labels
                .strip_prefix('{')
                .and_then(|labels| labels.strip_suffix('}'))
                .unwrap_or_else(|| panic!("labels in braces: {line}"));
            for label in inner.split(',') {
                let (label, value) = label.split_once('=').expect("label=value");
                assert!(
                    label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                assert!(
                    value.len() >= 2 && value.starts_with('"') && value.ends_with('"'),
                    "a quoted label value: {line}"
                );
            }
        }
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            value => value.parse().unwrap_or_else(|_| panic!("a number: {line}")),
        };
        exposition.samples.push((series.to_owned(), value));
    }
    exposition
}

impl Exposition {
    fn value(&self, series: &str) -> f64 {
        self.samples
            .iter()
            .find(|(name, _)| name == series)
            .unwrap_or_else(|| panic!("no sample {series}"))
            .1
    }

    fn kind(&self, family: &str) -> &str {
        self.types
            .iter()
            .find(|(name, _)| name == family)
            .map(|(_, kind)| kind.as_str())
            .unwrap_or_else(|| panic!("no # TYPE of {family}"))
    }
}

async fn scrape(server: &Server) -> Exposition {
    let answer = http(server.metrics_address(), "GET", "/metrics").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(&answer.body)
}

/// Approves modules `M-1` … `M-<count>` of AG-0012 (approved first), one event and one
/// command each, from `callers` concurrent callers so that the writer groups them.
async fn approve_modules(channel: &Channel, count: u32, callers: u32) {
    AdministrationServiceClient::new(channel.clone())
        .approve_provider(with_token(
            api::ApproveProviderRequest {
                request_id: uuid::Uuid::new_v4().to_string(),
                provider_id: "AG-0012".into(),
                name: "Formations Meuse".into(),
                approved_from: "2025-01-01".into(),
                approved_until: String::new(),
            },
            ADMINISTRATION,
        ))
        .await
        .expect("provider approved");
    ledger_testkit::world::approve_modules_concurrently(channel, 1, count, callers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_the_writes_done_over_grpc() {
    let home = tempfile::tempdir().expect("temp dir");
    let server = Server::with_metrics(&home).await;

    let before = scrape(&server).await;
    for (family, kind) in [
        ("voucher_ledger_groups_total", "counter"),
        ("voucher_ledger_commands_total", "counter"),
        ("voucher_ledger_events_appended_total", "counter"),
        ("voucher_ledger_flush_seconds_total", "counter"),
        ("voucher_ledger_flush_seconds_max", "gauge"),
        ("voucher_ledger_group_commands_max", "gauge"),
        ("voucher_ledger_queue_length", "gauge"),
        ("voucher_ledger_head_position", "gauge"),
        ("voucher_ledger_checkpoint_copies_total", "counter"),
        ("voucher_ledger_checkpoint_copy_seconds_total", "counter"),
        ("voucher_ledger_checkpoint_copy_seconds_max", "gauge"),
        ("voucher_ledger_group_flush_seconds", "histogram"),
        ("voucher_ledger_group_commands", "histogram"),
    ] {
        assert_eq!(before.kind(family), kind, "{family}");
        assert!(
            before.help.iter().any(|name| name == family),
            "# HELP {family}"
        );
    }
    assert_eq!(before.value("voucher_ledger_commands_total"), 0.0);
    assert_eq!(before.value("voucher_ledger_head_position"), 0.0);

    // One provider and 200 modules: 201 commands, each accepted with one event.
    let modules = 200;
    approve_modules(&server.channel, modules, 8).await;
    let written = f64::from(modules + 1);

    let after = scrape(&server).await;
    let head = AuditServiceClient::new(server.channel.clone())
        .get_head(with_token(api::GetHeadRequest {}, AUDITOR))
        .await
        .expect("an auditor reads the head")
        .into_inner();
    let commands = after.value("voucher_ledger_commands_total");
    let groups = after.value("voucher_ledger_groups_total");
    let events = after.value("voucher_ledger_events_appended_total");
    assert!(
        commands >= written,
        "{commands} commands for {written} writes"
    );
    assert_eq!(events, written);
    assert_eq!(events, after.value("voucher_ledger_head_position"));
    assert_eq!(events, head.position as f64);
    assert!(groups >= 1.0 && groups <= commands, "{groups} groups");
    assert!(after.value("voucher_ledger_group_commands_max") >= 1.0);
    assert!(after.value("voucher_ledger_flush_seconds_total") > 0.0);
    assert!(
        after.value("voucher_ledger_flush_seconds_max")
            <= after.value("voucher_ledger_flush_seconds_total")
    );
    // Every group is in one bucket of each histogram, and their sums are the totals.
    assert_eq!(
        after.value("voucher_ledger_group_flush_seconds_bucket{le=\"+Inf\"}"),
        groups
    );
    assert_eq!(
        after.value("voucher_ledger_group_flush_seconds_count"),
        groups
    );
    assert_eq!(after.value("voucher_ledger_group_commands_count"), groups);
    assert_eq!(after.value("voucher_ledger_group_commands_sum"), commands);
    assert_eq!(
        after.value("voucher_ledger_group_flush_seconds_sum"),
        after.value("voucher_ledger_flush_seconds_total")
    );
    // No command is waiting once every caller has its answer (reads are not counted as
    // commands, and the head read above was answered too).
    assert_eq!(after.value("voucher_ledger_queue_length"), 0.0);

    // Counters only grow: a scrape changes nothing.
    let again = scrape(&server).await;
    assert_eq!(again.value("voucher_ledger_commands_total"), commands);
    assert_eq!(again.value("voucher_ledger_groups_total"), groups);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_get_metrics_is_served() {
    let home = tempfile::tempdir().expect("temp dir");
    let server = Server::with_metrics(&home).await;
    let address = server.metrics_address().to_owned();

    for path in ["/", "/metric", "/metrics/", "/health"] {
        let answer = http(&address, "GET", path).await;
        assert_eq!(answer.status, 404, "{path}");
    }
    for method in ["POST", "PUT", "DELETE"] {
        let answer = http(&address, method, "/metrics").await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.header("allow"), Some("GET"));
    }
    // A query string is not part of the path.
    let answer = http(&address, "GET", "/metrics?x=1").await;
    assert_eq!(answer.status, 200);

    server.stop().await;
    // Stopped with the server.
    assert!(
        TcpStream::connect(&address).is_err(),
        "the metrics listener is closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_metrics_listen_nothing_is_served() {
    let home = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&home.path().join("data"), &[], &[]).await;
    assert_eq!(server.metrics, None, "serve announced no metrics address");
    let log = server.process.log();
    assert!(!log.contains("metrics serving"), "{log}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_turns_metrics_on_and_a_public_address_is_refused() {
    let home = tempfile::tempdir().expect("temp dir");
    // VOUCHER_LEDGER__METRICS_LISTEN, as a service manager would set it.
    let server = Server::start(
        &home.path().join("env"),
        &[],
        &[("VOUCHER_LEDGER__METRICS_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let exposition = scrape(&server).await;
    assert_eq!(exposition.value("voucher_ledger_groups_total"), 0.0);
    server.stop().await;

    // Not loopback: refused at start, before anything listens (the demo never leaves it).
    let output = voucher_ledger(&["serve", "--demo", "--listen", "127.0.0.1:0"])
        .arg("--data")
        .arg(home.path().join("public"))
        .args(["--metrics-listen", "0.0.0.0:0"])
        .stdin(Stdio::null())
        .output()
        .expect("voucher-ledger runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("metrics_listen 0.0.0.0:0 is not loopback"),
        "{stderr}"
    );
}

/// The value of `family{labels}` where `labels` are the exact label text between the braces.
fn labelled(exposition: &Exposition, family: &str, labels: &str) -> f64 {
    exposition.value(&format!("{family}{{{labels}}}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_counted_by_method_and_code_and_every_refusal_by_its_reason() {
    let home = tempfile::tempdir().expect("temp dir");
    let server = Server::with_metrics(&home).await;

    // One provider and three modules: four calls answered OK.
    approve_modules(&server.channel, 3, 1).await;
    // The same provider again: ALREADY_EXISTS / PROVIDER_ALREADY_APPROVED.
    let again = AdministrationServiceClient::new(server.channel.clone())
        .approve_provider(with_token(
            api::ApproveProviderRequest {
                request_id: uuid::Uuid::new_v4().to_string(),
                provider_id: "AG-0012".into(),
                name: "Formations Meuse".into(),
                approved_from: "2025-01-01".into(),
                approved_until: String::new(),
            },
            ADMINISTRATION,
        ))
        .await
        .expect_err("a second approval is refused");
    assert_eq!(again.code(), tonic::Code::AlreadyExists);
    // No token: refused at the edge, UNAUTHENTICATED.
    let anonymous = AuditServiceClient::new(server.channel.clone())
        .get_head(Request::new(api::GetHeadRequest {}))
        .await
        .expect_err("no token, no head");
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    // A batch whose one item has no valid request id: the call is OK, the item refused.
    let batch = ledger_proto::v1::provider_service_client::ProviderServiceClient::new(
        server.channel.clone(),
    )
    .redeem_hours_batch(with_token(
        api::RedeemHoursBatchRequest {
            items: vec![api::RedeemHoursRequest {
                request_id: "not-a-uuid".into(),
                provider_id: "AG-0012".into(),
                ..Default::default()
            }],
        },
        "demo-provider-AG-0012-token",
    ))
    .await
    .expect("a batch call is answered")
    .into_inner();
    assert_eq!(batch.results.len(), 1);
    // A health check, and a path that is no method of this server.
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel.clone());
    health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("the server is healthy");
    let mut raw = tonic::client::Grpc::new(server.channel.clone());
    raw.ready().await.expect("ready");
    let unknown: Result<tonic::Response<api::Head>, tonic::Status> = raw
        .unary(
            tonic::Request::new(api::GetHeadRequest {}),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/voucherledger.v1.MadeUpService/MadeUpMethod",
            ),
            tonic_prost::ProstCodec::default(),
        )
        .await;
    assert_eq!(
        unknown.expect_err("no such method").code(),
        tonic::Code::Unimplemented
    );

    let cpu_before = cpu_seconds_of(server.process.id());
    let exposition = scrape(&server).await;
    let cpu_after = cpu_seconds_of(server.process.id());
    let requests = "voucher_ledger_grpc_requests_total";
    let administration = "service=\"voucherledger.v1.AdministrationService\"";
    assert_eq!(exposition.kind(requests), "counter");
    assert_eq!(
        exposition.kind("voucher_ledger_grpc_request_duration_seconds"),
        "histogram"
    );
    assert_eq!(exposition.kind("voucher_ledger_refusals_total"), "counter");
    assert_eq!(
        labelled(
            &exposition,
            requests,
            &format!("{administration},method=\"ApproveModule\",code=\"OK\"")
        ),
        3.0
    );
    assert_eq!(
        labelled(
            &exposition,
            requests,
            &format!("{administration},method=\"ApproveProvider\",code=\"OK\"")
        ),
        1.0
    );
    assert_eq!(
        labelled(
            &exposition,
            requests,
            &format!("{administration},method=\"ApproveProvider\",code=\"ALREADY_EXISTS\"")
        ),
        1.0
    );
    assert_eq!(
        labelled(
            &exposition,
            "voucher_ledger_refusals_total",
            &format!(
                "{administration},method=\"ApproveProvider\",reason=\"PROVIDER_ALREADY_APPROVED\""
            )
        ),
        1.0
    );
    let audit = "service=\"voucherledger.v1.AuditService\",method=\"GetHead\"";
    assert_eq!(
        labelled(
            &exposition,
            requests,
            &format!("{audit},code=\"UNAUTHENTICATED\"")
        ),
        1.0
    );
    assert_eq!(
        labelled(
            &exposition,
            "voucher_ledger_refusals_total",
            &format!("{audit},reason=\"UNAUTHENTICATED\"")
        ),
        1.0
    );
    let batch_call = "service=\"voucherledger.v1.ProviderService\",method=\"RedeemHoursBatch\"";
    assert_eq!(
        labelled(&exposition, requests, &format!("{batch_call},code=\"OK\"")),
        1.0
    );
    assert_eq!(
        labelled(
            &exposition,
            "voucher_ledger_refusals_total",
            &format!("{batch_call},reason=\"INVALID_REQUEST_ID\"")
        ),
        1.0
    );
    assert_eq!(
        labelled(
            &exposition,
            requests,
            "service=\"grpc.health.v1.Health\",method=\"Check\",code=\"OK\""
        ),
        1.0
    );
    assert_eq!(
        labelled(
            &exposition,
            requests,
            "service=\"unknown\",method=\"unknown\",code=\"UNIMPLEMENTED\""
        ),
        1.0
    );
    // Each call is timed once: the histogram counts what the counter counts.
    let approve_module_ok = format!("{administration},method=\"ApproveModule\",code=\"OK\"");
    assert_eq!(
        labelled(
            &exposition,
            "voucher_ledger_grpc_request_duration_seconds_count",
            &approve_module_ok
        ),
        3.0
    );
    assert_eq!(
        labelled(
            &exposition,
            "voucher_ledger_grpc_request_duration_seconds_bucket",
            &format!("{approve_module_ok},le=\"+Inf\"")
        ),
        3.0
    );
    assert!(
        labelled(
            &exposition,
            "voucher_ledger_grpc_request_duration_seconds_sum",
            &approve_module_ok
        ) > 0.0
    );

    // The process and the build.
    assert!(exposition.value("process_resident_memory_bytes") > 1e6);
    assert!(exposition.value("process_open_fds") >= 3.0);
    assert!(exposition.value("process_max_fds") >= exposition.value("process_open_fds"));
    // The kernel counts CPU time in whole ticks of 10 ms, so a server that worked little may
    // show 0: the figure must be the kernel's for that process, read around the scrape.
    let cpu_seconds = exposition.value("process_cpu_seconds_total");
    assert!(
        cpu_before <= cpu_seconds && cpu_seconds <= cpu_after,
        "process_cpu_seconds_total {cpu_seconds} is the server's, between {cpu_before} and {cpu_after}"
    );
    assert!(exposition.value("process_start_time_seconds") > 1_577_836_800.0);
    assert_eq!(exposition.kind("process_cpu_seconds_total"), "counter");
    let build = exposition
        .samples
        .iter()
        .find(|(series, _)| series.starts_with("voucher_ledger_build_info{"))
        .expect("a build info sample");
    assert_eq!(build.1, 1.0);
    assert!(
        build
            .0
            .contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{}",
        build.0
    );
    assert!(build.0.contains("git_commit=\""), "{}", build.0);

    server.stop().await;
    // The request log: one line per call, with its method, code and latency in milliseconds.
    let log = std::fs::read_to_string(server_log(&home)).expect("the server's log");
    let answered: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("call answered") && line.contains("method=ApproveModule"))
        .collect();
    assert_eq!(answered.len(), 3, "{log}");
    for line in answered {
        assert!(
            line.contains("code=\"OK\"") || line.contains("code=OK"),
            "{line}"
        );
        let latency = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("latency_ms="))
            .unwrap_or_else(|| panic!("latency_ms in {line}"));
        let latency: f64 = latency.parse().expect("milliseconds");
        assert!(latency > 0.0, "{line}");
    }
}

fn server_log(home: &tempfile::TempDir) -> PathBuf {
    home.path().join("data").with_extension("server.log")
}

/// `promtool check metrics` (Prometheus's own linter) finds the exposition clean, counters,
/// histograms, process and build families alike. Skipped, saying so, where promtool is not
/// installed; `.ci/run` unpacks it from Debian's `prometheus` package and sets `PROMTOOL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_finds_the_exposition_clean() {
    let promtool = std::env::var_os("PROMTOOL").map(PathBuf::from).or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("promtool"))
                .find(|path| path.is_file())
        })
    });
    let Some(promtool) = promtool else {
        eprintln!("skipped: promtool is not installed (set PROMTOOL or put it on PATH)");
        return;
    };
    let home = tempfile::tempdir().expect("temp dir");
    let server = Server::with_metrics(&home).await;
    // Calls of several kinds, so that the labelled families have samples.
    approve_modules(&server.channel, 2, 1).await;
    let _ = AuditServiceClient::new(server.channel.clone())
        .get_head(Request::new(api::GetHeadRequest {}))
        .await;
    let answer = http(server.metrics_address(), "GET", "/metrics").await;
    assert_eq!(answer.status, 200);
    server.stop().await;

    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    check
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(answer.body.as_bytes())
        .expect("the exposition is written to promtool");
    let output = check.wait_with_output().expect("promtool ends");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool: {said}\n{}", answer.body);
    assert!(said.trim().is_empty(), "promtool: {said}");
}

/// Trace export is a cargo feature (`otlp`) that the default build leaves out: such a binary,
/// asked for it by the OpenTelemetry variables, says on stderr that it sends no traces, and
/// serves all the same.
#[cfg(not(feature = "otlp"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_asked_of_a_binary_without_it_is_said_and_the_server_serves() {
    let home = tempfile::tempdir().expect("temp dir");
    let server = Server::start(
        &home.path().join("data"),
        &[],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")],
    )
    .await;
    AuditServiceClient::new(server.channel.clone())
        .get_head(with_token(api::GetHeadRequest {}, AUDITOR))
        .await
        .expect("the server serves");
    server.stop().await;
    let log = std::fs::read_to_string(server_log(&home)).expect("the server's log");
    assert!(
        log.contains("built without trace export (cargo feature otlp); no traces are sent"),
        "{log}"
    );

    // Not asked: not a word of it.
    let quiet = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&quiet.path().join("data"), &[], &[]).await;
    server.stop().await;
    let log = std::fs::read_to_string(server_log(&quiet)).expect("the server's log");
    assert!(!log.contains("trace export"), "{log}");
}
