//! `voucher-ledger-sim bench`: how fast durable redemptions go on this machine, and how far that is
//! from what the machine's storage allows.
//!
//! One run measures, on one machine, in one process:
//! - (a) the raw store ceiling: sled inserts of records the size of an encoded redemption event,
//!   grouped the way the engine groups commands (N concurrent writers feeding one flusher thread
//!   that applies a batch, flushes and `fdatasync`s per group). Nothing can be durable faster.
//! - (b) durable redemptions over gRPC against a server started in this process on a fresh
//!   temporary folder: from N concurrent clients, each waiting for its answer before sending the
//!   next (unary); from one client alone (the latency of a lone caller); and from N clients each
//!   sending `RedeemHoursBatch` calls of B items (batched). The ceiling of the batched phase is
//!   measured too, with each store writer handing B records at a time.
//! - (c) a full rebuild of the projections from the log (b) wrote, after stopping the server,
//!   and the process's peak resident memory.
//!
//! It prints each throughput with its latency percentiles and as a ratio to (a): on a shared or
//! noisy machine the ratios mean more than the absolute figures.
//!
//! With `--store postgres` (issue 19), (d): the phases of (b) again, on a server whose event log
//! is in PostgreSQL: a primary and one synchronous standby that the bench starts on 127.0.0.1
//! from the Debian packages (`ledger_store_pg::cluster`), or an empty database named by
//! `--postgres-connection`. Each throughput is printed as a ratio to (b) on sled, of the same
//! run, on the same machine.
//!
//! With `--history N`, the folder of (b) first receives N simulated years (from 2016 on, through
//! the driver of `simulate --years`), so that (b) runs on a ledger with a history; the run then
//! also measures the data folder, a restart of the server on it, and year reports `as_of`
//! earlier positions. The process's peak memory is reset after the preload (when Linux allows),
//! so that the peak printed after (b) is the server's while serving, not the planner's.
//!
//! (e), with `--history`: the restart is of the server alone, in a process of its own (this
//! binary's hidden `serve-alone` command, the same server code as `voucher-ledger serve`), so
//! that its peak memory is the server's and nothing else's: once it answers, the `as_of`
//! reports and a unary phase of `--seconds` run against it, and its peak resident memory while
//! starting and while serving are read from `/proc/PID/status`.
//!
//! What it is not: a test of the rules (every request is planned to be accepted; a refusal stops
//! the run), nor a benchmark of reads.

pub mod thread_cpu;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ledger_codec::{
    encode_date, encode_eur, legal_form_to_proto, region_to_proto, theme_to_proto,
    trainee_status_to_proto, voucher_type_to_proto,
};
use ledger_domain::{LegalForm, Region, Theme, TraineeStatus, VoucherType};
use ledger_engine::{EngineHandle, GroupStats, BATCH_LEN_MAX, GROUP_LEN_MAX};
use ledger_proto::v1 as api;
use ledger_proto::v1::administration_service_client::AdministrationServiceClient;
use ledger_proto::v1::audit_service_client::AuditServiceClient;
use ledger_proto::v1::operator_service_client::OperatorServiceClient;
use ledger_proto::v1::provider_service_client::ProviderServiceClient;
use ledger_proto::v1::report_service_client::ReportServiceClient;
use rust_decimal::Decimal;
use tokio::task::JoinSet;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;
use uuid::Uuid;

use ledger_server::serve::{bind, serve_with_engine, ServeError};
use ledger_server::settings::{Overrides, Settings, SettingsError, StoreSetting};
use ledger_store::LogBackend;
use ledger_store_pg::cluster::TestCluster;
use ledger_store_pg::{PgError, PgLog};

use crate::client::{
    authorized, bearer, refused, Refused, DEMO_ADMINISTRATION_TOKEN, DEMO_AUDITOR_TOKEN,
    DEMO_OPERATOR_TOKEN, DEMO_PROVIDERS,
};
use crate::simulate::years::{
    folder_bytes, simulate_years, year_line, RangeOptions, RangeReport, YearRange,
};
use crate::simulate::SimulateError;

/// General vouchers a year of a company of 201 to 250 FTE (config/policy.toml): each bench
/// company is one of those, and each redemption uses one voucher (one hour).
const VOUCHERS_PER_COMPANY: u64 = 800;
/// Vouchers issued ahead of a timed run of `--seconds`: per second, above the issue's target of
/// 25 000 redemptions a second, so that a run never starves for vouchers.
const VOUCHERS_PER_SECOND_MAX: u64 = 30_000;
/// The same for the batched phase, above its target of 100 000 redemptions a second.
const BATCHED_VOUCHERS_PER_SECOND_MAX: u64 = 150_000;
/// The provider of `config/demo.toml` whose token the bench plays.
const PROVIDER_ID: &str = DEMO_PROVIDERS[0].0;
const PROVIDER_TOKEN: &str = DEMO_PROVIDERS[0].1;
const ADMINISTRATION_TOKEN: &str = DEMO_ADMINISTRATION_TOKEN;
const OPERATOR_TOKEN: &str = DEMO_OPERATOR_TOKEN;
const AUDITOR_TOKEN: &str = DEMO_AUDITOR_TOKEN;
const MODULE_ID: &str = "BENCH-0001";
/// The year of the registrations, payments and training dates, unless a preloaded history
/// reaches it: then the year after the history's last, so that the bench's budget and
/// registrations are new.
const YEAR: i32 = 2025;
/// The first year of a preloaded history: `--history 10` is 2016–2025, the ten years of issue 12.
const HISTORY_YEAR_FIRST: i32 = 2016;
/// The seed of the preloaded history's plans.
const HISTORY_SEED: u64 = 1;
/// Where the `as_of` reports look back to, in percent of the head.
const AS_OF_PERCENTS: [u64; 3] = [25, 50, 90];
/// Longest wait for the restarted server to answer, far above the issue's target of 2 s.
const RESTART_WAIT_MS_MAX: u64 = 120_000;
/// Pause between two attempts to reach the restarting server.
const RESTART_POLL_MS: u64 = 2;
/// The hidden command of this binary that runs the server alone (see the module's (e)).
pub const SERVE_ALONE_COMMAND: &str = "serve-alone";
/// What the server prints once it listens, followed by its address.
const LISTENING_PREFIX: &str = "voucher-ledger listening on ";
/// Longest wait for the server alone to stop after SIGTERM before it is killed.
const SERVE_ALONE_STOP_WAIT_MS_MAX: u64 = 60_000;
/// Setup requests (registrations, issuances) in flight at once.
const SETUP_IN_FLIGHT_MAX: usize = 64;
/// Latencies are recorded from 1 µs to 60 s with 3 significant digits (0.1 % error).
const LATENCY_US_MAX: u64 = 60_000_000;

#[derive(Clone, Debug)]
pub struct Options {
    /// Concurrent clients (and concurrent writers of the store ceiling).
    pub clients: usize,
    /// How long each timed phase runs, unless `requests` is given.
    pub seconds: u64,
    /// Requests of each timed phase, instead of a duration (items, for the batched phase).
    pub requests: Option<u64>,
    /// Items of each `RedeemHoursBatch` call of the batched phase, 1 to [`BATCH_LEN_MAX`].
    pub batch_len: usize,
    /// Simulated years preloaded before (b), from [`HISTORY_YEAR_FIRST`] on.
    pub history: Option<u32>,
    /// Divides the volume of each preloaded year.
    pub history_scale: u32,
    /// Concurrent clients of the batched phase; `None`: [`Options::clients`].
    pub batch_clients: Option<usize>,
    /// Also runs (d), the phases of (b) on PostgreSQL.
    pub postgres: Option<PostgresTarget>,
}

impl Options {
    fn batch_clients(&self) -> usize {
        self.batch_clients.unwrap_or(self.clients)
    }
}

/// Where (d) keeps its event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostgresTarget {
    /// A primary and one synchronous standby that the bench starts on 127.0.0.1 and removes
    /// after the run (`ledger_store_pg::cluster::TestCluster::start_synchronous_pair`).
    OwnPair,
    /// An empty database (no ledger in it yet), a libpq connection string; the ledger the
    /// bench writes there stays.
    Connection(String),
}

/// (d): the phases of (b) on PostgreSQL.
#[derive(Debug)]
pub struct PostgresFigures {
    /// What (d) ran on, without a password.
    pub target: String,
    pub setup_elapsed: Duration,
    pub unary: Phase,
    pub single: Phase,
    pub batched: Phase,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("--clients must be at least 1")]
    NoClients,
    #[error("--batch-len must be between 1 and {BATCH_LEN_MAX}")]
    BatchLen,
    #[error("settings: {0}")]
    Settings(#[from] SettingsError),
    #[error("temporary folder {path}: {source}")]
    TempDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("in-process server: {0}")]
    Serve(#[from] ServeError),
    #[error("in-process server stopped before it was ready")]
    ServerGone,
    #[error("cannot connect to the in-process server: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("a task failed: {0}")]
    Task(String),
    #[error("store: {0}")]
    Store(#[from] ledger_store::StoreError),
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("rebuild: {0}")]
    Rebuild(#[from] ledger_engine::StartError),
    #[error("history: {0}")]
    History(#[from] SimulateError),
    #[error(
        "--history {years} is too long: the bench's own training date {training} would be after \
         today ({today})"
    )]
    HistoryTooLong {
        years: u32,
        training: chrono::NaiveDate,
        today: chrono::NaiveDate,
    },
    #[error("the restarted server did not answer GetHead within {RESTART_WAIT_MS_MAX} ms")]
    RestartTimeout,
    #[error("the server alone (serve-alone) did not start: {why}; its stderr:\n{stderr}")]
    ServeAlone { why: String, stderr: String },
    #[error("--store postgres cannot start its own primary and standby: {0}")]
    PostgresCluster(#[from] ledger_store_pg::cluster::ClusterError),
    #[error("--postgres-connection: {0}")]
    Postgres(#[from] ledger_store_pg::PgError),
    #[error(
        "--postgres-connection names {target}, which already holds a ledger (head at position \
         {position}): the bench needs an empty database"
    )]
    PostgresNotEmpty { target: String, position: u64 },
}

/// One timed phase: how many, how long, and the latency of each call.
#[derive(Debug)]
pub struct Throughput {
    /// Durable writes: requests, or the items of batch calls.
    pub requests: u64,
    pub elapsed: Duration,
    /// The latency of each call (a batch call counts once).
    pub latency_us: Histogram<u64>,
}

impl Throughput {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Everything a run measured.
#[derive(Debug)]
pub struct Report {
    pub options: Options,
    pub event_bytes: usize,
    pub store_ceiling: Throughput,
    /// The store ceiling when each writer hands `batch_len` records at a time.
    pub store_ceiling_batched: Throughput,
    /// (b) with `clients` clients, one call at a time each, and the writer meanwhile.
    pub unary: Phase,
    /// (b) with one client.
    pub single: Phase,
    /// (b) with `clients` clients sending batch calls.
    pub batched: Phase,
    pub rebuild_events: u64,
    pub rebuild_elapsed: Duration,
    pub setup_elapsed: Duration,
    /// The process's peak resident memory when the server had stopped: the server with the
    /// state of every phase of (b), and the clients (same process).
    pub server_peak_resident_kib: Option<u64>,
    /// The same after the rebuild of (c); the store ceiling runs after, and is not counted.
    pub peak_resident_kib: Option<u64>,
    /// With `--history`: the preload and what was measured on top of it.
    pub history: Option<HistoryFigures>,
    /// With `--store postgres`: (d).
    pub postgres: Option<PostgresFigures>,
}

/// The preloaded history, and the measures that only mean something on a long log.
#[derive(Debug)]
pub struct HistoryFigures {
    pub years: YearRange,
    pub scale: u32,
    /// Events of the log after the preload, and how long the preload took.
    pub events: u64,
    pub elapsed: Duration,
    /// Bytes of the data folder after the preload.
    pub data_bytes: u64,
    /// Peak memory of the preload (planner, server and driver in one process).
    pub peak_resident_kib: Option<u64>,
    /// Whether the peak was reset after the preload (Linux's /proc/self/clear_refs).
    pub peak_reset: bool,
    /// Bytes of the data folder and events of the log after (b).
    pub data_bytes_after: u64,
    pub events_after: u64,
    /// From starting the server alone (a process of its own) on the folder after (b) until it
    /// answered GetHead.
    pub restart: Duration,
    /// The server alone: its peak memory and a unary phase against it (e).
    pub alone: ServedAlone,
    /// Each `as_of` report: the position, the year reported, and how long the call took.
    pub as_of: Vec<(u64, i32, Duration)>,
}

/// (e): the server alone in its own process, after its restart on the folder after (b).
#[derive(Debug)]
pub struct ServedAlone {
    /// Its peak resident memory (VmHWM) from its start until it answered GetHead.
    pub start_peak_resident_kib: Option<u64>,
    /// Its peak resident memory while serving the `as_of` reports and the unary phase, the
    /// peak reset once it answered (when Linux allows); else its peak since its start.
    pub serving_peak_resident_kib: Option<u64>,
    pub peak_reset: bool,
    /// Unary redemptions from `clients` clients against it.
    pub unary: Throughput,
}

/// The history once preloaded, with what (b) and the later measures need of it.
struct Preloaded {
    report: RangeReport,
    elapsed: Duration,
    peak_resident_kib: Option<u64>,
    peak_reset: bool,
}

/// Runs the three measurements in a fresh temporary folder, removed at the end.
pub async fn bench(options: Options) -> Result<Report, BenchError> {
    if options.clients == 0 {
        return Err(BenchError::NoClients);
    }
    if !(1..=BATCH_LEN_MAX).contains(&options.batch_len) {
        return Err(BenchError::BatchLen);
    }
    if options.batch_clients == Some(0) {
        return Err(BenchError::NoClients);
    }
    let root = std::env::temp_dir().join(format!("voucher-ledger-bench-{}", Uuid::new_v4()));
    let outcome = bench_in(&root, options).await;
    // Best effort: a leftover temporary folder is not worth failing a finished run for.
    let _ = std::fs::remove_dir_all(&root);
    outcome
}

async fn bench_in(root: &Path, options: Options) -> Result<Report, BenchError> {
    let data_dir = root.join("ledger");
    std::fs::create_dir_all(&data_dir).map_err(|source| BenchError::TempDir {
        path: data_dir.clone(),
        source,
    })?;
    let settings = Settings::load(&Overrides {
        config_file: None,
        listen: Some("127.0.0.1:0".to_owned()),
        data_dir: Some(data_dir.clone()),
        demo: true,
        standby: false,
    })?;
    let capacity = Capacity::of(&options);
    let preloaded = match options.history {
        Some(years) => Some(preload(&data_dir, &settings, years, options.history_scale).await?),
        None => None,
    };
    let year = bench_year(
        preloaded
            .as_ref()
            .map(|preloaded| preloaded.report.options.years),
    );
    let training = chrono::NaiveDate::from_ymd_opt(year, 6, 16).unwrap_or(chrono::NaiveDate::MAX);
    let today = ledger_engine::business_today(chrono::Utc::now());
    if training > today {
        return Err(BenchError::HistoryTooLong {
            years: options.history.unwrap_or(0),
            training,
            today,
        });
    }
    // The history approved the bench's provider already, open-ended, from before 2016.
    let approve_provider = preloaded.is_none();

    // (b) the server, set up then driven.
    let (setup_elapsed, [unary, single, batched]) = serve_and_drive(
        settings.clone(),
        &options,
        capacity,
        Ledger {
            year,
            approve_provider,
        },
    )
    .await?;
    let history = match preloaded {
        Some(preloaded) => Some(
            on_history(
                &data_dir,
                root,
                preloaded,
                year,
                &options,
                capacity.ranges()[3].clone(),
            )
            .await?,
        ),
        None => None,
    };
    // VmHWM only grows: read now, it is the server's peak; after (c), the rebuild's. The
    // store ceiling comes last so that its own sled caches are in neither figure.
    let server_peak_resident_kib = peak_resident_kib();

    // The size of one encoded redemption event: the last event of the log is one.
    let event_bytes = {
        let store = ledger_store::Store::open(&data_dir)?;
        let head = store.head().position;
        let events = store.read_range(head, 1)?;
        events.first().map_or(0, |event| event.event_bytes.len())
    };

    // (c) a full rebuild of the projections.
    let rebuilt = tokio::task::spawn_blocking({
        let data_dir = data_dir.clone();
        move || ledger_engine::rebuild(&data_dir)
    })
    .await
    .map_err(|error| BenchError::Task(error.to_string()))??;

    let rebuild_peak_resident_kib = peak_resident_kib();

    // (a) the raw store ceiling, with records of that size.
    let ceiling_dir = root.join("ceiling");
    let ceiling = tokio::task::spawn_blocking({
        let options = options.clone();
        move || store_ceiling(&ceiling_dir, event_bytes.max(1), &options, 1)
    })
    .await
    .map_err(|error| BenchError::Task(error.to_string()))??;
    let ceiling_dir = root.join("ceiling-batched");
    let store_ceiling_batched = tokio::task::spawn_blocking({
        let options = options.clone();
        move || {
            store_ceiling(
                &ceiling_dir,
                event_bytes.max(1),
                &options,
                options.batch_len,
            )
        }
    })
    .await
    .map_err(|error| BenchError::Task(error.to_string()))??;

    // (d) the phases of (b) again, on PostgreSQL: last, so that nothing of it is in the
    // figures above.
    let postgres = match options.postgres.clone() {
        Some(target) => Some(on_postgres(root, &settings, target, &options, capacity, year).await?),
        None => None,
    };

    Ok(Report {
        options,
        event_bytes,
        store_ceiling: ceiling,
        store_ceiling_batched,
        unary,
        single,
        batched,
        rebuild_events: rebuilt.events,
        rebuild_elapsed: rebuilt.elapsed,
        setup_elapsed,
        server_peak_resident_kib,
        peak_resident_kib: rebuild_peak_resident_kib,
        history,
        postgres,
    })
}

/// Starts a server on `settings`, sets the ledger up, runs the three phases of (b), stops it.
async fn serve_and_drive(
    settings: Settings,
    options: &Options,
    capacity: Capacity,
    ledger: Ledger,
) -> Result<(Duration, [Phase; 3]), BenchError> {
    let listener = bind(settings.listen).await?;
    let (ready_sender, ready) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with_engine(
        settings,
        listener,
        async {
            let _ = stopped.await;
        },
        move |address, engine| {
            let _ = ready_sender.send((address, engine));
        },
    ));
    let outcome = match ready.await {
        Ok((address, engine)) => drive(address, engine, options, capacity, ledger).await,
        Err(_) => Err(BenchError::ServerGone),
    };
    let _ = stop.send(());
    let served = server
        .await
        .map_err(|error| BenchError::Task(error.to_string()))?;
    let outcome = outcome?;
    served?;
    Ok(outcome)
}

/// (d): the phases of (b) on a server whose log is in PostgreSQL, with a data folder of its
/// own (its checkpoint), on a fresh ledger: the same setup and redemptions as (b).
async fn on_postgres(
    root: &Path,
    settings: &Settings,
    target: PostgresTarget,
    options: &Options,
    capacity: Capacity,
    year: i32,
) -> Result<PostgresFigures, BenchError> {
    let data_dir = root.join("ledger-postgres");
    std::fs::create_dir_all(&data_dir).map_err(|source| BenchError::TempDir {
        path: data_dir.clone(),
        source,
    })?;
    // Held until (d) is over: dropping the pair stops both servers and removes their folders.
    let (own_pair, connection, described) = match target {
        PostgresTarget::OwnPair => {
            let (primary, standby) =
                tokio::task::spawn_blocking(TestCluster::start_synchronous_pair)
                    .await
                    .map_err(|error| BenchError::Task(error.to_string()))??;
            let connection = primary.connection();
            let described = format!(
                "a primary and one synchronous standby started by the bench on 127.0.0.1 \
                 (ports {} and {}, synchronous_commit = on)",
                primary.port, standby.port
            );
            (Some((primary, standby)), connection, described)
        }
        PostgresTarget::Connection(connection) => {
            let described = tokio::task::spawn_blocking({
                let connection = connection.clone();
                move || empty_database(&connection)
            })
            .await
            .map_err(|error| BenchError::Task(error.to_string()))??;
            (None, connection, described)
        }
    };
    let mut settings = settings.clone();
    settings.data_dir = data_dir;
    settings.store = StoreSetting::Postgres {
        connection,
        standby: false,
    };
    let outcome = serve_and_drive(
        settings,
        options,
        capacity,
        Ledger {
            year,
            approve_provider: true,
        },
    )
    .await;
    if let Some(pair) = own_pair {
        // `pg_ctl stop` blocks: off the async workers.
        let _ = tokio::task::spawn_blocking(move || drop(pair)).await;
    }
    let (setup_elapsed, [unary, single, batched]) = outcome?;
    Ok(PostgresFigures {
        target: described,
        setup_elapsed,
        unary,
        single,
        batched,
    })
}

/// Checks that `connection` names a database without a ledger (the bench's setup would be
/// refused on one: its companies exist); describes it without its password.
fn empty_database(connection: &str) -> Result<String, BenchError> {
    match PgLog::open_reader(connection) {
        Err(PgError::SchemaMissing { target }) => Ok(target),
        Err(error) => Err(error.into()),
        Ok(log) => {
            let target = log.target().to_owned();
            let position = log.stored_head()?.map_or(0, |head| head.position);
            if position > 0 {
                return Err(BenchError::PostgresNotEmpty { target, position });
            }
            Ok(target)
        }
    }
}

/// The bench's year: [`YEAR`], or the year after a history that reaches it.
fn bench_year(history: Option<YearRange>) -> i32 {
    match history {
        Some(years) if years.last >= YEAR => years.last + 1,
        _ => YEAR,
    }
}

/// Simulates `years` years from [`HISTORY_YEAR_FIRST`] into the empty `data_dir`, then resets
/// the peak memory so that the next peak read is the server's.
async fn preload(
    data_dir: &Path,
    settings: &Settings,
    years: u32,
    scale: u32,
) -> Result<Preloaded, BenchError> {
    let last = i32::try_from(years)
        .ok()
        .and_then(|years| HISTORY_YEAR_FIRST.checked_add(years - 1))
        .unwrap_or(i32::MAX);
    let started = Instant::now();
    let report = simulate_years(
        RangeOptions {
            years: YearRange {
                first: HISTORY_YEAR_FIRST,
                last,
            },
            data_dir: data_dir.to_owned(),
            seed: HISTORY_SEED,
            scale,
        },
        settings.clone(),
        |report, events| eprintln!("history: {}", year_line(report, events)),
    )
    .await?;
    let elapsed = started.elapsed();
    let peak_resident_kib = peak_resident_kib();
    Ok(Preloaded {
        report,
        elapsed,
        peak_resident_kib,
        peak_reset: reset_peak_resident(),
    })
}

/// After (b), on the stopped server's folder: its size, then (e): the server alone started on it
/// in a process of its own, the time until it answers GetHead, a year report `as_of` each of
/// [`AS_OF_PERCENTS`] of the head, a unary phase on `alone_range`'s vouchers, and its peak
/// memory while starting and while serving.
async fn on_history(
    data_dir: &Path,
    root: &Path,
    preloaded: Preloaded,
    year: i32,
    options: &Options,
    alone_range: std::ops::Range<u64>,
) -> Result<HistoryFigures, BenchError> {
    let data_bytes_after = folder_bytes(data_dir).map_err(|source| BenchError::TempDir {
        path: data_dir.to_owned(),
        source,
    })?;
    let auditor = bearer(AUDITOR_TOKEN);

    let started = Instant::now();
    let server = AloneServer::start(data_dir, &root.join("serve-alone.log")).await?;
    let measured = async {
        let (restart, events_after, as_of, channel) =
            restarted(server.address, &auditor, started, &preloaded.report, year).await?;
        // The peak so far is the start's (the checkpoint read, the tail replayed).
        let start_peak_resident_kib = server.peak_resident_kib();
        let peak_reset = server.reset_peak_resident();
        let seconds = options.requests.is_none().then_some(options.seconds);
        let unary = redeem(&channel, options.clients, 1, alone_range, seconds, year).await?;
        let alone = ServedAlone {
            start_peak_resident_kib,
            serving_peak_resident_kib: server.peak_resident_kib(),
            peak_reset,
            unary,
        };
        Ok::<_, BenchError>((restart, events_after, as_of, alone))
    }
    .await;
    let stopped = server.stop().await;
    let (restart, events_after, as_of, alone) = measured?;
    stopped?;
    Ok(HistoryFigures {
        years: preloaded.report.options.years,
        scale: preloaded.report.options.scale,
        events: preloaded.report.head_position,
        elapsed: preloaded.elapsed,
        data_bytes: preloaded.report.data_bytes,
        peak_resident_kib: preloaded.peak_resident_kib,
        peak_reset: preloaded.peak_reset,
        data_bytes_after,
        events_after,
        restart,
        alone,
        as_of,
    })
}

/// The server alone: this binary's `serve-alone` command on a data folder, in a process of its
/// own, so that what it uses is the server's alone.
struct AloneServer {
    child: std::process::Child,
    address: std::net::SocketAddr,
    log_path: PathBuf,
}

impl AloneServer {
    /// Starts it and waits until it prints the address it listens on.
    async fn start(data_dir: &Path, log_path: &Path) -> Result<AloneServer, BenchError> {
        let failed = |why: String| BenchError::ServeAlone {
            why,
            stderr: std::fs::read_to_string(log_path).unwrap_or_default(),
        };
        let executable = std::env::current_exe()
            .map_err(|error| failed(format!("this binary's path is unknown: {error}")))?;
        let log = std::fs::File::create(log_path)
            .map_err(|error| failed(format!("{}: {error}", log_path.display())))?;
        let mut child = std::process::Command::new(executable)
            .arg(SERVE_ALONE_COMMAND)
            .arg("--data")
            .arg(data_dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|error| failed(format!("cannot start it: {error}")))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(failed("its stdout is not piped".to_owned()));
        };
        // Its stdout is read to the end on a thread of its own, so that it never blocks on a
        // full pipe; the first `listening on` line gives its address.
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut sender = Some(sender);
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(address) = line.strip_prefix(LISTENING_PREFIX) {
                    if let Some(sender) = sender.take() {
                        let _ = sender.send(address.trim().to_owned());
                    }
                }
            }
        });
        let announced = tokio::task::spawn_blocking(move || {
            receiver.recv_timeout(Duration::from_millis(RESTART_WAIT_MS_MAX))
        })
        .await
        .map_err(|error| BenchError::Task(error.to_string()))?;
        let address = match announced.map(|text| text.parse::<std::net::SocketAddr>()) {
            Ok(Ok(address)) => address,
            Ok(Err(error)) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "it printed an address that does not parse: {error}"
                )));
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                return Err(failed(format!(
                    "it printed no address within {RESTART_WAIT_MS_MAX} ms (exit: {status:?})"
                )));
            }
        };
        Ok(AloneServer {
            child,
            address,
            log_path: log_path.to_owned(),
        })
    }

    /// Its peak resident memory (VmHWM), in KiB.
    fn peak_resident_kib(&self) -> Option<u64> {
        peak_resident_kib_of(&format!("/proc/{}/status", self.child.id()))
    }

    /// Resets its peak resident memory to its current resident memory; false where Linux does
    /// not allow it.
    fn reset_peak_resident(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), b"5").is_ok()
    }

    /// Stops it with SIGTERM (the `kill` command: the workspace forbids unsafe code and has no
    /// signal crate), as an operator would, and waits for it; killed after
    /// [`SERVE_ALONE_STOP_WAIT_MS_MAX`].
    async fn stop(mut self) -> Result<(), BenchError> {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let log_path = self.log_path.clone();
        let waited = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_millis(SERVE_ALONE_STOP_WAIT_MS_MAX);
            loop {
                match self.child.try_wait() {
                    Ok(Some(status)) => return Ok(status),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(RESTART_POLL_MS * 10));
                    }
                    Ok(None) => {
                        let _ = self.child.kill();
                        let _ = self.child.wait();
                        return Err(format!(
                            "it did not stop within {SERVE_ALONE_STOP_WAIT_MS_MAX} ms of SIGTERM"
                        ));
                    }
                    Err(error) => return Err(format!("cannot wait for it: {error}")),
                }
            }
        })
        .await
        .map_err(|error| BenchError::Task(error.to_string()))?;
        match waited {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!("it stopped with {status}")),
            Err(why) => Err(why),
        }
        .map_err(|why| BenchError::ServeAlone {
            why,
            stderr: std::fs::read_to_string(&log_path).unwrap_or_default(),
        })
    }
}

/// The restart time (GetHead answered, counted from `started`), the head, and the `as_of`
/// reports.
async fn restarted(
    address: std::net::SocketAddr,
    auditor: &MetadataValue<Ascii>,
    started: Instant,
    history: &RangeReport,
    year: i32,
) -> Result<(Duration, u64, Vec<(u64, i32, Duration)>, Channel), BenchError> {
    let endpoint = Endpoint::from_shared(format!("http://{address}"))?;
    let deadline = started + Duration::from_millis(RESTART_WAIT_MS_MAX);
    // The server is ready once its engine has started; the first GetHead also pays for the
    // connection, as a client of a restarted server would.
    let (channel, head) = loop {
        let answered = match endpoint.connect().await {
            Ok(channel) => AuditServiceClient::new(channel.clone())
                .get_head(authorized(api::GetHeadRequest {}, auditor))
                .await
                .ok()
                .map(|head| (channel, head.into_inner())),
            Err(_) => None,
        };
        if let Some(answered) = answered {
            break answered;
        }
        if Instant::now() >= deadline {
            return Err(BenchError::RestartTimeout);
        }
        tokio::time::sleep(Duration::from_millis(RESTART_POLL_MS)).await;
    };
    let restart = started.elapsed();

    let mut reports = ReportServiceClient::new(channel.clone());
    let mut as_of = Vec::with_capacity(AS_OF_PERCENTS.len());
    for percent in AS_OF_PERCENTS {
        let position = (head.position * percent / 100).max(1);
        let reported = history.year_at(position).unwrap_or(year);
        let sent = Instant::now();
        reports
            .get_year_summary(authorized(
                api::GetYearSummaryRequest {
                    year: reported,
                    as_of: Some(api::AsOf {
                        point: Some(api::as_of::Point::Position(position)),
                    }),
                },
                auditor,
            ))
            .await
            .map_err(|status| refused("GetYearSummary as_of", &status))?;
        as_of.push((position, reported, sent.elapsed()));
    }
    Ok((restart, head.position, as_of, channel))
}

/// Resets the process's peak resident memory (VmHWM) to its current resident memory; false
/// where Linux does not allow it.
fn reset_peak_resident() -> bool {
    // "5" resets the peak resident set size (proc(5), /proc/pid/clear_refs, Linux 4.0 on).
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

/// A date of the bench's year (checked at the start to be a year the ledger accepts).
fn date(year: i32, month: u32, day: u32) -> String {
    encode_date(chrono::NaiveDate::from_ymd_opt(year, month, day).unwrap_or(chrono::NaiveDate::MIN))
}

/// What the bench's own set-up depends on: its year, and whether its provider is approved
/// already (by a preloaded history).
#[derive(Clone, Copy, Debug)]
struct Ledger {
    year: i32,
    approve_provider: bool,
}

/// A valid BCE/KBO number for the `index`th company: eight digits, then `97 - (them mod 97)`.
fn enterprise_number(index: u64) -> String {
    let body = 2_000_000 + index;
    format!("{body:08}{:02}", 97 - body % 97)
}

/// A valid national register number, distinct for each `index` below 13 million: born
/// 1960–1999 (two-digit year, month, day up to 28), then a sequence number from 1 to 997.
fn national_number(index: u64) -> String {
    let sequence = 1 + index % 997;
    let day = 1 + (index / 997) % 28;
    let month = 1 + (index / (997 * 28)) % 12;
    let year = 60 + (index / (997 * 28 * 12)) % 40;
    let body = year * 10_000_000 + month * 100_000 + day * 1_000 + sequence;
    format!("{body:09}{:02}", 97 - body % 97)
}

/// The writer's group commit during a timed phase.
#[derive(Clone, Copy, Debug)]
pub struct WriterFigures {
    pub groups: GroupStats,
    /// Most commands seen waiting for the writer, sampled every [`QUEUE_SAMPLE_MS`].
    pub queue_len_max: u64,
    /// CPU per redemption of the writer thread, the committer thread and every other thread
    /// during the phase; `None` without `/proc/self/task`.
    pub cpu: Option<thread_cpu::CpuPerItem>,
}

/// How often the queue's length is sampled during a timed phase.
const QUEUE_SAMPLE_MS: u64 = 5;

/// Redemptions (and vouchers set up for them) of each timed phase. Each phase redeems its own
/// range of vouchers, so that every redemption of a run is accepted.
#[derive(Clone, Copy, Debug)]
struct Capacity {
    unary: u64,
    single: u64,
    batched: u64,
    /// The unary phase of (e) against the server alone: with `--history` only.
    alone: u64,
}

impl Capacity {
    fn of(options: &Options) -> Capacity {
        let seconds = options.seconds.max(1);
        match options.requests {
            Some(requests) => Capacity {
                unary: requests,
                single: requests,
                batched: requests,
                alone: if options.history.is_some() {
                    requests
                } else {
                    0
                },
            },
            None => Capacity {
                unary: seconds * VOUCHERS_PER_SECOND_MAX,
                single: seconds * VOUCHERS_PER_SECOND_MAX,
                batched: seconds * BATCHED_VOUCHERS_PER_SECOND_MAX,
                alone: if options.history.is_some() {
                    seconds * VOUCHERS_PER_SECOND_MAX
                } else {
                    0
                },
            },
        }
    }

    fn total(&self) -> u64 {
        self.ranges().last().map_or(0, |range| {
            range.start + Capacity::whole(range.end - range.start)
        })
    }

    /// Each phase's vouchers, by index: unary, one client, batched, the server alone. Whole
    /// companies per phase, so that no company is shared by two phases.
    fn ranges(&self) -> [std::ops::Range<u64>; 4] {
        let mut first = 0;
        [self.unary, self.single, self.batched, self.alone].map(|len| {
            let start = first;
            first += Capacity::whole(len);
            start..start + len
        })
    }

    fn whole(len: u64) -> u64 {
        len.div_ceil(VOUCHERS_PER_COMPANY) * VOUCHERS_PER_COMPANY
    }
}

/// One timed phase of (b): the throughput, and the writer's group commit meanwhile.
#[derive(Debug)]
pub struct Phase {
    pub throughput: Throughput,
    pub writer: WriterFigures,
}

/// Sets the ledger up for every phase's redemptions, then runs the three phases of (b) in
/// turn: unary from every client, unary from one client, batched from every client.
async fn drive(
    address: std::net::SocketAddr,
    engine: EngineHandle,
    options: &Options,
    capacity: Capacity,
    ledger: Ledger,
) -> Result<(Duration, [Phase; 3]), BenchError> {
    let setup_started = Instant::now();
    let channel = Endpoint::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    setup(&channel, capacity.total(), ledger).await?;
    let setup_elapsed = setup_started.elapsed();
    let seconds = options.requests.is_none().then_some(options.seconds);
    let [unary_range, single_range, batched_range, _] = capacity.ranges();
    let unary = timed(
        &engine,
        redeem(
            &channel,
            options.clients,
            1,
            unary_range,
            seconds,
            ledger.year,
        ),
    )
    .await?;
    let single = timed(
        &engine,
        redeem(&channel, 1, 1, single_range, seconds, ledger.year),
    )
    .await?;
    let batched = timed(
        &engine,
        redeem(
            &channel,
            options.batch_clients(),
            options.batch_len,
            batched_range,
            seconds,
            ledger.year,
        ),
    )
    .await?;
    Ok((setup_elapsed, [unary, single, batched]))
}

/// Runs `phase`, sampling the writer's queue meanwhile, and its counters before and after.
async fn timed(
    engine: &EngineHandle,
    phase: impl std::future::Future<Output = Result<Throughput, BenchError>>,
) -> Result<Phase, BenchError> {
    let before = engine.stats();
    let cpu_before = thread_cpu::ticks_by_thread();
    let queue_len_max = Arc::new(AtomicU64::new(0));
    let sampler = {
        let engine = engine.clone();
        let queue_len_max = Arc::clone(&queue_len_max);
        tokio::spawn(async move {
            loop {
                queue_len_max.fetch_max(engine.stats().queue_len, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(QUEUE_SAMPLE_MS)).await;
            }
        })
    };
    let throughput = phase.await;
    let cpu_after = thread_cpu::ticks_by_thread();
    sampler.abort();
    let groups = engine.stats().since(&before);
    let throughput = throughput?;
    let cpu = cpu_before.zip(cpu_after).and_then(|(before, after)| {
        thread_cpu::CpuPerItem::between(&before, &after, throughput.requests)
    });
    Ok(Phase {
        throughput,
        writer: WriterFigures {
            groups,
            queue_len_max: queue_len_max.load(Ordering::Relaxed),
            cpu,
        },
    })
}

async fn setup(channel: &Channel, capacity: u64, ledger: Ledger) -> Result<(), BenchError> {
    let Ledger {
        year,
        approve_provider,
    } = ledger;
    let administration = bearer(ADMINISTRATION_TOKEN);
    let operator = bearer(OPERATOR_TOKEN);
    let mut admin = AdministrationServiceClient::new(channel.clone());
    let region_share_eur = Decimal::from(15);
    admin
        .open_budget(authorized(
            api::OpenBudgetRequest {
                request_id: Uuid::new_v4().to_string(),
                year,
                // Far more than the run uses: the budget never refuses a bench redemption.
                allocated_eur: encode_eur(region_share_eur * Decimal::from(capacity * 10 + 1_000)),
            },
            &administration,
        ))
        .await
        .map_err(|status| refused("OpenBudget", &status))?;
    if approve_provider {
        admin
            .approve_provider(authorized(
                api::ApproveProviderRequest {
                    request_id: Uuid::new_v4().to_string(),
                    provider_id: PROVIDER_ID.to_owned(),
                    name: "Bench Formation".to_owned(),
                    approved_from: date(year, 1, 1),
                    approved_until: String::new(),
                },
                &administration,
            ))
            .await
            .map_err(|status| refused("ApproveProvider", &status))?;
    }
    admin
        .approve_module(authorized(
            api::ApproveModuleRequest {
                request_id: Uuid::new_v4().to_string(),
                module_id: MODULE_ID.to_owned(),
                provider_id: PROVIDER_ID.to_owned(),
                title: "Bench module".to_owned(),
                hours_max: 2_000,
                accepted_voucher_types: vec![voucher_type_to_proto(VoucherType::General) as i32],
                themes: vec![theme_to_proto(Theme::Digital) as i32],
                approved_from: date(year, 1, 1),
                approved_until: String::new(),
            },
            &administration,
        ))
        .await
        .map_err(|status| refused("ApproveModule", &status))?;

    let companies = capacity.div_ceil(VOUCHERS_PER_COMPANY);
    let mut in_flight = JoinSet::new();
    for company in 0..companies {
        if in_flight.len() >= SETUP_IN_FLIGHT_MAX {
            joined(in_flight.join_next().await)?;
        }
        let mut client = OperatorServiceClient::new(channel.clone());
        let operator = operator.clone();
        in_flight.spawn(async move {
            let enterprise_number = enterprise_number(company);
            client
                .register_company(authorized(
                    api::RegisterCompanyRequest {
                        request_id: Uuid::new_v4().to_string(),
                        enterprise_number: enterprise_number.clone(),
                        year,
                        name: format!("Bench company {company}"),
                        legal_form: legal_form_to_proto(LegalForm::CommercialCompany) as i32,
                        region: region_to_proto(Region::WalloniaFrenchSpeaking) as i32,
                        fte: "220".to_owned(),
                        turnover_eur: encode_eur(Decimal::from(20_000_000)),
                        balance_sheet_total_eur: encode_eur(Decimal::from(15_000_000)),
                        autonomous: true,
                        secondary_activity_months: 0,
                        nace_sector: "62.01".to_owned(),
                        registered_on: date(year, 1, 1),
                    },
                    &operator,
                ))
                .await
                .map_err(|status| refused("RegisterCompany", &status))?;
            client
                .issue_vouchers(authorized(
                    api::IssueVouchersRequest {
                        request_id: Uuid::new_v4().to_string(),
                        enterprise_number,
                        voucher_type: voucher_type_to_proto(VoucherType::General) as i32,
                        quantity: u32::try_from(VOUCHERS_PER_COMPANY)
                            .expect("800 vouchers fit in u32"),
                        paid_amount_eur: encode_eur(
                            Decimal::from(15) * Decimal::from(VOUCHERS_PER_COMPANY),
                        ),
                        payment_date: date(year, 1, 2),
                        payment_reference: format!("BENCH-{company}"),
                    },
                    &operator,
                ))
                .await
                .map_err(|status| refused("IssueVouchers", &status))?;
            Ok(())
        });
    }
    while let Some(result) = in_flight.join_next().await {
        joined(Some(result))?;
    }
    Ok(())
}

fn joined(
    result: Option<Result<Result<(), BenchError>, tokio::task::JoinError>>,
) -> Result<(), BenchError> {
    match result {
        Some(Ok(outcome)) => outcome,
        Some(Err(error)) => Err(BenchError::Task(error.to_string())),
        None => Ok(()),
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("fixed, valid histogram bounds")
}

fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.clamp(1, LATENCY_US_MAX));
}

/// Whether the timed phase is over for the request of index `index`.
fn over(index: u64, limit: u64, started: Instant, seconds: Option<u64>) -> bool {
    index >= limit
        || seconds.is_some_and(|seconds| started.elapsed() >= Duration::from_secs(seconds))
}

/// The redemption of voucher `index`: one hour, by a worker of its own, from the company that
/// holds that voucher.
fn redemption(index: u64, year: i32) -> api::RedeemHoursRequest {
    api::RedeemHoursRequest {
        request_id: Uuid::new_v4().to_string(),
        provider_id: PROVIDER_ID.to_owned(),
        module_id: MODULE_ID.to_owned(),
        enterprise_number: enterprise_number(index / VOUCHERS_PER_COMPANY),
        national_number: national_number(index),
        trainee_status: trainee_status_to_proto(TraineeStatus::Employee) as i32,
        voucher_type: voucher_type_to_proto(VoucherType::General) as i32,
        hours: "1".to_owned(),
        training_date: date(year, 6, 16),
        usage_code: String::new(),
    }
}

/// `clients` clients on one connection, each sending one call at a time and waiting for its
/// answer: `RedeemHours` when `batch_len` is 1, else `RedeemHoursBatch` calls of `batch_len`
/// items. Together they redeem the vouchers of `range`, in order, until the range or the
/// `seconds` are over; every redemption must be accepted.
async fn redeem(
    channel: &Channel,
    clients: usize,
    batch_len: usize,
    range: std::ops::Range<u64>,
    seconds: Option<u64>,
    year: i32,
) -> Result<Throughput, BenchError> {
    let next = Arc::new(AtomicU64::new(range.start));
    let provider = bearer(PROVIDER_TOKEN);
    let step = u64::try_from(batch_len.max(1)).unwrap_or(1);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let mut client = ProviderServiceClient::new(channel.clone());
        let next = Arc::clone(&next);
        let provider = provider.clone();
        let end = range.end;
        tasks.spawn(async move {
            let mut histogram = new_histogram();
            let mut redeemed = 0_u64;
            loop {
                let first = next.fetch_add(step, Ordering::Relaxed);
                if over(first, end, started, seconds) {
                    return Ok::<_, BenchError>((histogram, redeemed));
                }
                let indexes = first..(first + step).min(end);
                let sent = Instant::now();
                if step == 1 {
                    client
                        .redeem_hours(authorized(redemption(first, year), &provider))
                        .await
                        .map_err(|status| refused("RedeemHours", &status))?;
                } else {
                    let items = indexes
                        .clone()
                        .map(|index| redemption(index, year))
                        .collect();
                    let answer = client
                        .redeem_hours_batch(authorized(
                            api::RedeemHoursBatchRequest { items },
                            &provider,
                        ))
                        .await
                        .map_err(|status| refused("RedeemHoursBatch", &status))?
                        .into_inner();
                    for result in answer.results {
                        if let Some(api::batch_item_result::Result::Refused(status)) = result.result
                        {
                            let status = tonic::Status::with_details(
                                Code::from_i32(status.code),
                                status.message.clone(),
                                prost::Message::encode_to_vec(&status).into(),
                            );
                            return Err(refused("RedeemHoursBatch item", &status).into());
                        }
                    }
                }
                record(&mut histogram, sent.elapsed());
                redeemed += indexes.end - indexes.start;
            }
        });
    }
    let mut latency_us = new_histogram();
    let mut requests = 0;
    while let Some(result) = tasks.join_next().await {
        let (histogram, redeemed) =
            result.map_err(|error| BenchError::Task(error.to_string()))??;
        requests += redeemed;
        latency_us
            .add(&histogram)
            .map_err(|error| BenchError::Task(error.to_string()))?;
    }
    let elapsed = started.elapsed();
    Ok(Throughput {
        requests,
        elapsed,
        latency_us,
    })
}

/// Records for the flusher, and where to say they are durable.
struct Pending {
    records: Vec<Vec<u8>>,
    durable: mpsc::SyncSender<()>,
}

/// (a): `options.clients` threads each insert `records_per_write` records at a time and wait
/// until they are durable; one flusher thread takes whatever is waiting (up to
/// [`GROUP_LEN_MAX`] records, never splitting one writer's records, as the engine never splits
/// a batch), applies it as one sled batch, flushes, `fdatasync`s sled's data file, then answers
/// them all. This is the engine's group commit without deciding, hashing or encoding anything.
fn store_ceiling(
    dir: &Path,
    record_bytes: usize,
    options: &Options,
    records_per_write: usize,
) -> Result<Throughput, BenchError> {
    let db = sled::Config::new().path(dir).open()?;
    let data_path = dir.join("db");
    let data_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&data_path)
        .map_err(|source| BenchError::TempDir {
            path: data_path.clone(),
            source,
        })?;
    let (sender, receiver) = mpsc::sync_channel::<Pending>(ledger_engine::QUEUE_LEN_MAX);
    let flusher = std::thread::spawn(move || -> Result<(), BenchError> {
        let mut key = 0_u64;
        let mut held: Option<Pending> = None;
        loop {
            let first = match held.take() {
                Some(first) => first,
                None => match receiver.recv() {
                    Ok(first) => first,
                    Err(_) => break,
                },
            };
            let mut records = first.records.len();
            let mut group = vec![first];
            while records < GROUP_LEN_MAX {
                match receiver.try_recv() {
                    Ok(next) if records + next.records.len() <= GROUP_LEN_MAX => {
                        records += next.records.len();
                        group.push(next);
                    }
                    Ok(next) => {
                        held = Some(next);
                        break;
                    }
                    Err(_) => break,
                }
            }
            let mut batch = sled::Batch::default();
            for record in group.iter().flat_map(|pending| &pending.records) {
                key += 1;
                batch.insert(&key.to_be_bytes(), record.as_slice());
            }
            db.apply_batch(batch)?;
            db.flush()?;
            data_file
                .sync_data()
                .map_err(|source| BenchError::TempDir {
                    path: data_path.clone(),
                    source,
                })?;
            for pending in group {
                let _ = pending.durable.send(());
            }
        }
        Ok(())
    });

    let limit = options.requests.unwrap_or(u64::MAX);
    let seconds = options.requests.is_none().then_some(options.seconds);
    let step = u64::try_from(records_per_write.max(1)).unwrap_or(1);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let writers: Vec<_> = (0..options.clients)
        .map(|_| {
            let sender = sender.clone();
            let next = Arc::clone(&next);
            std::thread::spawn(move || {
                let mut histogram = new_histogram();
                let mut written = 0_u64;
                let (durable, wait) = mpsc::sync_channel(1);
                loop {
                    let first = next.fetch_add(step, Ordering::Relaxed);
                    if over(first, limit, started, seconds) {
                        return (histogram, written);
                    }
                    let records: Vec<Vec<u8>> = (first..(first + step).min(limit))
                        .map(|index| {
                            let mut bytes = vec![0x5a_u8; record_bytes];
                            let prefix = 8.min(record_bytes);
                            bytes[..prefix].copy_from_slice(&index.to_be_bytes()[..prefix]);
                            bytes
                        })
                        .collect();
                    let count = records.len() as u64;
                    let sent = Instant::now();
                    let pending = Pending {
                        records,
                        durable: durable.clone(),
                    };
                    if sender.send(pending).is_err() || wait.recv().is_err() {
                        // The flusher stopped on an error, which its join reports.
                        return (histogram, written);
                    }
                    record(&mut histogram, sent.elapsed());
                    written += count;
                }
            })
        })
        .collect();
    drop(sender);
    let mut latency_us = new_histogram();
    let mut requests = 0;
    for writer in writers {
        let (histogram, written) = writer
            .join()
            .map_err(|_| BenchError::Task("a store writer panicked".to_owned()))?;
        requests += written;
        latency_us
            .add(&histogram)
            .map_err(|error| BenchError::Task(error.to_string()))?;
    }
    let elapsed = started.elapsed();
    flusher
        .join()
        .map_err(|_| BenchError::Task("the store flusher panicked".to_owned()))??;
    Ok(Throughput {
        requests,
        elapsed,
        latency_us,
    })
}

/// The process's peak resident memory (VmHWM), in KiB; `None` off Linux.
pub fn peak_resident_kib() -> Option<u64> {
    peak_resident_kib_of("/proc/self/status")
}

/// The peak resident memory (VmHWM) in a `/proc/PID/status` file, in KiB.
fn peak_resident_kib_of(status_path: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_path).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn milliseconds(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1_000.0
}

fn throughput_line(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    throughput: &Throughput,
    ceiling: f64,
) -> fmt::Result {
    let per_second = throughput.per_second();
    writeln!(
        f,
        "{name:<24} {:>10.0} /s  p50 {:>7.2} ms  p99 {:>7.2} ms  p999 {:>7.2} ms  \
         ({} in {:.2} s; {:.3} of the store ceiling)",
        per_second,
        milliseconds(&throughput.latency_us, 0.5),
        milliseconds(&throughput.latency_us, 0.99),
        milliseconds(&throughput.latency_us, 0.999),
        throughput.requests,
        throughput.elapsed.as_secs_f64(),
        per_second / ceiling.max(1e-9),
    )
}

/// One line of the writer's group commit during a phase.
fn writer_line(f: &mut fmt::Formatter<'_>, name: &str, phase: &Phase) -> fmt::Result {
    let groups = &phase.writer.groups;
    let seconds = phase.throughput.elapsed.as_secs_f64().max(1e-9);
    writeln!(
        f,
        "{name:<24} {} groups, {:.1} commands per flush (max {}), flush mean {:.2} ms \
         (max {:.2} ms), {:.0} commands/s, queue max {}, {} checkpoint copies ({:.2} ms in all, \
         longest since start {:.2} ms)",
        groups.groups,
        groups.commands_per_group(),
        groups.group_len_max,
        groups.flush_mean().as_secs_f64() * 1_000.0,
        groups.flush_max.as_secs_f64() * 1_000.0,
        groups.commands as f64 / seconds,
        phase.writer.queue_len_max,
        groups.checkpoint_copies,
        groups.checkpoint_copy_total.as_secs_f64() * 1_000.0,
        groups.checkpoint_copy_max.as_secs_f64() * 1_000.0,
    )?;
    match phase.writer.cpu {
        Some(cpu) => writeln!(
            f,
            "{:<24} writer {:.1} µs, committer {:.1} µs, other threads {:.1} µs, whole process \
             {:.1} µs (utime + stime from /proc/self/task and /proc/self/stat, per item)",
            "  CPU per redemption", cpu.writer_us, cpu.committer_us, cpu.other_us, cpu.process_us,
        ),
        None => writeln!(
            f,
            "{:<24} unknown (no /proc/self/task)",
            "  CPU per redemption"
        ),
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ceiling = self.store_ceiling.per_second();
        let ceiling_batched = self.store_ceiling_batched.per_second();
        let batch_len = self.options.batch_len;
        writeln!(
            f,
            "voucher-ledger-sim bench: {} clients ({} batching), batches of {batch_len}, {}; \
             encoded redemption event {} bytes",
            self.options.clients,
            self.options.batch_clients(),
            match self.options.requests {
                Some(requests) => format!("{requests} requests per phase"),
                None => format!("{} s per phase", self.options.seconds),
            },
            self.event_bytes,
        )?;
        writeln!(
            f,
            "(latencies are per call; a batch call is one call; ratios are to the ceiling of \
             the same shape)"
        )?;
        throughput_line(f, "store ceiling (a)", &self.store_ceiling, ceiling)?;
        throughput_line(
            f,
            &format!("store ceiling ×{batch_len} (a)"),
            &self.store_ceiling_batched,
            ceiling_batched,
        )?;
        throughput_line(f, "unary redemptions (b)", &self.unary.throughput, ceiling)?;
        throughput_line(f, "1 client, unary (b)", &self.single.throughput, ceiling)?;
        throughput_line(
            f,
            &format!("batched ×{batch_len} (b)"),
            &self.batched.throughput,
            ceiling_batched,
        )?;
        let rebuild_per_second =
            self.rebuild_events as f64 / self.rebuild_elapsed.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "{:<24} {:>10.0} events/s  ({} events in {:.3} s)",
            "rebuild (c)",
            rebuild_per_second,
            self.rebuild_events,
            self.rebuild_elapsed.as_secs_f64(),
        )?;
        writer_line(f, "writer, unary", &self.unary)?;
        writer_line(f, "writer, 1 client", &self.single)?;
        writer_line(f, "writer, batched", &self.batched)?;
        writeln!(
            f,
            "{:<24} {:.2} s (budget, provider, module, companies and vouchers)",
            "setup",
            self.setup_elapsed.as_secs_f64(),
        )?;
        if let Some(history) = &self.history {
            history.lines(f)?;
        }
        if let Some(postgres) = &self.postgres {
            postgres.lines(f, self)?;
        }
        match (self.server_peak_resident_kib, self.peak_resident_kib) {
            (Some(server), Some(rebuild)) => writeln!(
                f,
                "{:<24} {:.1} MiB after (b), server and clients; {:.1} MiB after (c), the \
                 rebuild (VmHWM, one process; {} events in the log)",
                "peak memory",
                server as f64 / 1024.0,
                rebuild as f64 / 1024.0,
                self.rebuild_events,
            ),
            _ => writeln!(f, "{:<24} unknown (no /proc/self/status)", "peak memory"),
        }?;
        if let Some(history) = &self.history {
            writeln!(
                f,
                "{:<24} {}",
                "",
                if history.peak_reset {
                    "(VmHWM reset after the history preload: the figure after (b) is the peak \
                     while serving)"
                } else {
                    "(no /proc/self/clear_refs: the figure after (b) includes the history \
                     preload)"
                },
            )?;
        }
        Ok(())
    }
}

impl PostgresFigures {
    /// The lines of (d): each phase, with its throughput as a ratio to the same phase of (b)
    /// on sled.
    fn lines(&self, f: &mut fmt::Formatter<'_>, report: &Report) -> fmt::Result {
        let batch_len = report.options.batch_len;
        writeln!(f, "on postgresql (d): {}", self.target)?;
        writeln!(
            f,
            "(ratios are to the same phase of (b) on sled, in this run)"
        )?;
        for (name, postgres, sled) in [
            ("unary redemptions (d)", &self.unary, &report.unary),
            ("1 client, unary (d)", &self.single, &report.single),
            (
                &*format!("batched ×{batch_len} (d)"),
                &self.batched,
                &report.batched,
            ),
        ] {
            let per_second = postgres.throughput.per_second();
            writeln!(
                f,
                "{name:<24} {:>10.0} /s  p50 {:>7.2} ms  p99 {:>7.2} ms  p999 {:>7.2} ms  \
                 ({} in {:.2} s; {:.3} of sled's)",
                per_second,
                milliseconds(&postgres.throughput.latency_us, 0.5),
                milliseconds(&postgres.throughput.latency_us, 0.99),
                milliseconds(&postgres.throughput.latency_us, 0.999),
                postgres.throughput.requests,
                postgres.throughput.elapsed.as_secs_f64(),
                per_second / sled.throughput.per_second().max(1e-9),
            )?;
        }
        writer_line(f, "writer, unary (d)", &self.unary)?;
        writer_line(f, "writer, 1 client (d)", &self.single)?;
        writer_line(f, "writer, batched (d)", &self.batched)?;
        writeln!(
            f,
            "{:<24} {:.2} s (budget, provider, module, companies and vouchers)",
            "setup (d)",
            self.setup_elapsed.as_secs_f64(),
        )
    }
}

fn mebibytes(kib: Option<u64>) -> String {
    kib.map_or("unknown".to_owned(), |kib| {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    })
}

fn per_event(bytes: u64, events: u64) -> f64 {
    bytes as f64 / events.max(1) as f64
}

impl HistoryFigures {
    /// The lines of the measures made with `--history`.
    fn lines(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<24} {} years {} (scale {}): {} events in {:.1} s ({:.0} events/s), peak memory \
             {} while preloading",
            "history",
            self.years.len(),
            self.years,
            self.scale,
            self.events,
            self.elapsed.as_secs_f64(),
            self.events as f64 / self.elapsed.as_secs_f64().max(1e-9),
            mebibytes(self.peak_resident_kib),
        )?;
        writeln!(
            f,
            "{:<24} {} bytes after the history ({:.0} bytes per event); {} bytes after (b) \
             ({:.0} bytes per event, {} events)",
            "data folder",
            self.data_bytes,
            per_event(self.data_bytes, self.events),
            self.data_bytes_after,
            per_event(self.data_bytes_after, self.events_after),
            self.events_after,
        )?;
        writeln!(
            f,
            "{:<24} {:.3} s (the server alone started again, in a process of its own, on the \
             folder after (b), until GetHead answered; {} events)",
            "restart to serving",
            self.restart.as_secs_f64(),
            self.events_after,
        )?;
        let alone = &self.alone;
        writeln!(
            f,
            "{:<24} {:>10.0} /s  p50 {:>7.2} ms  p99 {:>7.2} ms  p999 {:>7.2} ms  ({} in {:.2} s; \
             the restarted server alone (e))",
            "unary redemptions (e)",
            alone.unary.per_second(),
            milliseconds(&alone.unary.latency_us, 0.5),
            milliseconds(&alone.unary.latency_us, 0.99),
            milliseconds(&alone.unary.latency_us, 0.999),
            alone.unary.requests,
            alone.unary.elapsed.as_secs_f64(),
        )?;
        writeln!(
            f,
            "{:<24} {} while starting; {} while serving the as_of reports and unary (e) \
             (VmHWM of the server's own process{})",
            "server alone, peak",
            mebibytes(alone.start_peak_resident_kib),
            mebibytes(alone.serving_peak_resident_kib),
            if alone.peak_reset {
                ", reset once it answered"
            } else {
                "; not reset: the figure while serving includes the start"
            },
        )?;
        let mut millis: Vec<f64> = self
            .as_of
            .iter()
            .map(|(_, _, elapsed)| elapsed.as_secs_f64() * 1_000.0)
            .collect();
        millis.sort_by(f64::total_cmp);
        let at = |index: usize| millis.get(index).copied().unwrap_or(0.0);
        let points: Vec<String> = self
            .as_of
            .iter()
            .map(|(position, year, elapsed)| {
                format!(
                    "{year} as of {position}: {:.1} ms",
                    elapsed.as_secs_f64() * 1_000.0
                )
            })
            .collect();
        writeln!(
            f,
            "{:<24} min {:.1} ms, median {:.1} ms, max {:.1} ms (GetYearSummary at {} of the \
             head: {})",
            "as_of report",
            at(0),
            at(millis.len() / 2),
            at(millis.len().saturating_sub(1)),
            AS_OF_PERCENTS
                .map(|percent| format!("{percent} %"))
                .join(", "),
            points.join("; "),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_carry_their_check_digits() {
        let number = national_number(0);
        assert_eq!(number.len(), 11);
        let body: u64 = number[..9].parse().expect("digits");
        let check: u64 = number[9..].parse().expect("digits");
        assert_eq!(check, 97 - body % 97);
        assert_ne!(national_number(1), national_number(997 * 28 * 12 * 40 - 1));
        assert_eq!(enterprise_number(0), "0200000043");
    }
}
