//! `voucher-ledger serve`: start the engine, serve gRPC (over TLS when configured) and, when
//! `metrics_listen` is set, Prometheus metrics on a listener of their own, until SIGTERM or
//! ctrl-c, then finish the commands in flight, flush and stop.
//!
//! [`serve_with`] is the same server on a listener bound by the caller and stopped by the
//! caller's future; `simulate` uses it to run a server in its own process. It serves no
//! metrics: `bench` reads the engine's counters directly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use ledger_engine::{Clock, Engine, EngineConfig, SystemClock};
use ledger_proto::v1::administration_service_server::AdministrationServiceServer;
use ledger_proto::v1::audit_service_server::AuditServiceServer;
use ledger_proto::v1::company_service_server::CompanyServiceServer;
use ledger_proto::v1::operator_service_server::OperatorServiceServer;
use ledger_proto::v1::provider_service_server::ProviderServiceServer;
use ledger_proto::v1::query_service_server::QueryServiceServer;
use ledger_proto::v1::report_service_server::ReportServiceServer;

use crate::auth::Authentication;
use crate::edge::Edge;
use crate::services::Ledger;
use crate::settings::{Settings, StoreSetting};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("data folder {path} cannot be created: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("data folder {path} is locked by another process: is a server running on it? (a server holds its folder's lock until it stops; run one server per folder)")]
    DataDirLocked { path: std::path::PathBuf },
    #[error("data folder {path} cannot be opened: permission denied ({source}); the server's user must be able to read and write the folder and its files")]
    DataDirPermission {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Start(#[from] ledger_engine::StartError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection service cannot be built: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("grpc server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("engine start was interrupted")]
    Join(#[from] tokio::task::JoinError),
}

pub async fn serve(settings: Settings) -> Result<(), ServeError> {
    let listener = bind(settings.listen).await?;
    let metrics = match settings.metrics_listen {
        Some(address) => {
            let listener = bind(address).await?;
            let bound = listener
                .local_addr()
                .map_err(|source| ServeError::Bind { address, source })?;
            Some((listener, bound))
        }
        None => None,
    };
    let metrics_address = metrics.as_ref().map(|(_, bound)| *bound);
    serve_inner(
        settings,
        listener,
        metrics.map(|(listener, _)| listener),
        shutdown_signal(),
        move |address, _| {
            // Scripts and tests read the bound addresses (useful with port 0) from these lines;
            // the metrics line comes first, so a reader may stop at "listening on".
            if let Some(metrics_address) = metrics_address {
                println!("voucher-ledger metrics on http://{metrics_address}/metrics");
            }
            println!("voucher-ledger listening on {address}");
        },
    )
    .await
}

/// What is wrong with a data folder that a start (or an offline rebuild) could not open.
#[derive(Debug)]
pub(crate) enum DataDirProblem {
    /// Another process holds sled's file lock: a server, most likely.
    Locked,
    /// The process's user may not read or write it.
    PermissionDenied(std::io::Error),
}

/// The data folder's problem behind `error`, if that is what stopped the start: sled reports
/// its file lock taken by another process as an I/O error of kind `Other` whose text names
/// `WouldBlock` (what `ledger_store`'s reopen logic also reads), and a folder the user may not
/// write as a bare `PermissionDenied` without the path.
pub(crate) fn data_dir_problem(error: &ledger_engine::StartError) -> Option<DataDirProblem> {
    use ledger_engine::StartError;
    use ledger_store::StoreError;
    let io_error = match error {
        StartError::Store(StoreError::Sled(sled::Error::Io(io_error))) => io_error,
        StartError::Store(StoreError::Io { source, .. }) => source,
        _ => return None,
    };
    let text = io_error.to_string();
    if io_error.kind() == std::io::ErrorKind::WouldBlock
        || (text.contains("could not acquire lock") && text.contains("WouldBlock"))
    {
        return Some(DataDirProblem::Locked);
    }
    (io_error.kind() == std::io::ErrorKind::PermissionDenied)
        .then(|| DataDirProblem::PermissionDenied(std::io::Error::new(io_error.kind(), text)))
}

/// A start that failed on the data folder itself, said in the operator's terms with the path
/// (absolute, whatever the working folder was).
fn explain_start_error(error: ledger_engine::StartError, data_dir: &std::path::Path) -> ServeError {
    let path = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    match data_dir_problem(&error) {
        Some(DataDirProblem::Locked) => ServeError::DataDirLocked { path },
        Some(DataDirProblem::PermissionDenied(source)) => {
            ServeError::DataDirPermission { path, source }
        }
        None => ServeError::Start(error),
    }
}

/// Starts the engine on the store the settings name: sled in the data folder, or the
/// PostgreSQL database as its writer (issue 19), the data folder then keeping only this
/// process's checkpoint and retained snapshots; with `standby`, a hot standby that follows the
/// writer (see [`crate::standby`]). The writer records `advertised`, where it serves, for the
/// standbys to name. Blocking.
fn start_engine(
    store: &StoreSetting,
    mut engine_config: EngineConfig,
    advertised: Option<String>,
    reconnect_deadline: std::time::Duration,
    clock: Arc<dyn Clock>,
) -> Result<Engine, ledger_engine::StartError> {
    if let StoreSetting::Postgres { connection, .. } = store {
        // A writer, or a standby once it writes, reconnects after losing its connection.
        if !reconnect_deadline.is_zero() {
            engine_config.reconnect = Some(ledger_engine::reconnect::Reconnect {
                reopen: Arc::new(PgReopen {
                    connection: connection.clone(),
                    data_dir: engine_config.data_dir.clone(),
                    advertised: advertised.clone(),
                }),
                deadline: reconnect_deadline,
            });
        }
    }
    match store {
        StoreSetting::Sled => Engine::start(engine_config, clock),
        StoreSetting::Postgres {
            connection,
            standby: true,
        } => crate::standby::start_standby(connection, engine_config, advertised),
        StoreSetting::Postgres {
            connection,
            standby: false,
        } => {
            let log =
                ledger_store_pg::PgLog::open_writer(connection, ledger_store_pg::WhenLocked::Fail)
                    .map_err(ledger_store::StoreError::from)?;
            if let Some(address) = &advertised {
                log.advertise(address)
                    .map_err(ledger_store::StoreError::from)?;
            }
            let store = ledger_store::Store::open_backend(
                log.into_backend(),
                &engine_config.data_dir,
                Engine::store_options(),
            )?;
            Engine::start_on(store, engine_config, clock)
        }
    }
}

/// How a writer on PostgreSQL opens its log again after losing its connection (see
/// `ledger_engine::reconnect`): as at its start, with the same connection string (naming
/// every host, with `target_session_attrs=read-write`, it finds a promoted standby), and
/// advertising the same address.
struct PgReopen {
    connection: String,
    data_dir: std::path::PathBuf,
    advertised: Option<String>,
}

impl ledger_engine::reconnect::ReopenWriter for PgReopen {
    fn reopen(&self) -> Result<ledger_store::Store, ledger_engine::reconnect::ReopenError> {
        use ledger_engine::reconnect::ReopenError;
        let log = match ledger_store_pg::PgLog::open_writer(
            &self.connection,
            ledger_store_pg::WhenLocked::Fail,
        ) {
            Ok(log) => log,
            Err(error @ ledger_store_pg::PgError::WriterLockHeld { .. }) => {
                return Err(ReopenError::LockHeld(error.into()))
            }
            Err(error) => return Err(ReopenError::Unreachable(error.into())),
        };
        if let Some(address) = &self.advertised {
            log.advertise(address)
                .map_err(ledger_store::StoreError::from)?;
        }
        Ok(ledger_store::Store::open_backend(
            log.into_backend(),
            &self.data_dir,
            Engine::store_options(),
        )?)
    }
}

/// Binds `address` (port 0 picks a free port).
pub async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Bind { address, source })
}

/// Starts the engine on `settings.data_dir`, calls `ready` with the listener's address once
/// the engine has replayed the log, serves on `listener` until `shutdown` completes, then
/// answers the requests in flight, lets the writer finish its queue and flush, and returns.
/// `settings.listen` is not used: the listener is already bound.
pub async fn serve_with(
    settings: Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    serve_with_engine(settings, listener, shutdown, |address, _| ready(address)).await
}

/// [`serve_with`], whose `ready` also gets a handle on the engine (for `bench` to read the
/// writer's group-commit counters while the server runs).
pub async fn serve_with_engine(
    settings: Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(SocketAddr, ledger_engine::EngineHandle),
) -> Result<(), ServeError> {
    serve_inner(settings, listener, None, shutdown, ready).await
}

/// [`serve_with`] on `clock` instead of the system's: `simulate` sets the day of each phase
/// of a simulated year, so that a filing falls within its usage code's grace of "today" as it
/// would have in that year. Recorded times then follow the simulated days.
pub async fn serve_with_clock(
    settings: Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(SocketAddr),
    clock: Arc<dyn Clock>,
) -> Result<(), ServeError> {
    serve_on_clock(
        settings,
        listener,
        None,
        shutdown,
        |address, _| ready(address),
        clock,
    )
    .await
}

/// [`serve_with_engine`], with the metrics served on `metrics` when given: from when the
/// engine has started until the graceful stop begins.
async fn serve_inner(
    settings: Settings,
    listener: tokio::net::TcpListener,
    metrics: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(SocketAddr, ledger_engine::EngineHandle),
) -> Result<(), ServeError> {
    let clock = Arc::new(SystemClock);
    serve_on_clock(settings, listener, metrics, shutdown, ready, clock).await
}

/// [`serve_inner`] on `clock`.
async fn serve_on_clock(
    settings: Settings,
    listener: tokio::net::TcpListener,
    metrics: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(SocketAddr, ledger_engine::EngineHandle),
    clock: Arc<dyn Clock>,
) -> Result<(), ServeError> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|source| ServeError::DataDir {
        path: settings.data_dir.clone(),
        source,
    })?;
    let mut engine_config = EngineConfig::new(&settings.data_dir, settings.policy.clone());
    engine_config.checkpoint_interval_events = settings.checkpoint_interval_events;
    engine_config.segment_len_events = settings.segment_len_events;
    // Opening and replaying the log is blocking work; keep it off the async workers.
    let store = settings.store.clone();
    // Where standbys send writers' clients: the setting, or where this process is bound.
    let advertised = settings.advertise_address.clone().or_else(|| {
        listener
            .local_addr()
            .ok()
            .map(|address| address.to_string())
    });
    let reconnect_deadline = settings.postgres_reconnect_deadline;
    let engine = tokio::task::spawn_blocking(move || {
        start_engine(&store, engine_config, advertised, reconnect_deadline, clock)
    })
    .await?
    .map_err(|error| explain_start_error(error, &settings.data_dir))?;

    let ledger = Ledger::new(
        engine.handle(),
        Authentication::from_settings(&settings),
        settings.pseudonym_key.clone(),
        settings.request_bytes_max,
    );
    // tonic refuses anything beyond this before decoding (the edge answers it as the services
    // do); between request_bytes_max and it, the services refuse after decoding. Both answer
    // INVALID_ARGUMENT / REQUEST_TOO_LARGE with the limit.
    let decoding_bytes_max = settings.request_bytes_max * 4;
    // The operator's and the provider's services take batch calls too, up to a megabyte (the
    // services refuse one of up to twice that with a reason).
    let batch_decoding_bytes_max =
        decoding_bytes_max.max(2 * crate::services::BATCH_REQUEST_BYTES_MAX);

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<AdministrationServiceServer<Ledger>>()
        .await;
    health_reporter
        .set_serving::<OperatorServiceServer<Ledger>>()
        .await;
    health_reporter
        .set_serving::<ProviderServiceServer<Ledger>>()
        .await;
    health_reporter
        .set_serving::<ReportServiceServer<Ledger>>()
        .await;
    health_reporter
        .set_serving::<CompanyServiceServer<Ledger>>()
        .await;
    health_reporter
        .set_serving::<AuditServiceServer<Ledger>>()
        .await;
    health_reporter
        .set_serving::<QueryServiceServer<Ledger>>()
        .await;
    // Server reflection in both versions clients speak: grpcurl and recent tools ask
    // `grpc.reflection.v1`, Python's grpcio-reflection and older tools only `v1alpha`. It also
    // describes the error details every refusal carries (`google.rpc.ErrorInfo`,
    // `BadRequest`), so that generic tools can decode `grpc-status-details-bin`; the API's own
    // copy of `google/rpc/status.proto` is registered first and wins.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(ledger_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder().build_v1()?;
    let reflection_v1alpha = reflection_builder().build_v1alpha()?;

    let streams = ledger.clone();
    let address = listener.local_addr().map_err(|source| ServeError::Bind {
        address: settings.listen,
        source,
    })?;
    // Connection limits, and TLS when configured (see `transport`); every call counted, timed
    // and logged with its latency (see `metrics::calls`), whether or not metrics are served.
    let calls = ledger.call_metrics().clone();
    let mut server = crate::transport::server_builder(settings.tls.as_ref())?
        .layer(crate::metrics::CallMetricsLayer::new(calls.clone()));
    let metrics = metrics.map(|listener| {
        if let Ok(metrics_address) = listener.local_addr() {
            tracing::info!(%metrics_address, "metrics serving on /metrics");
        }
        crate::metrics::MetricsServer::start(
            listener,
            crate::metrics::Metrics::new(engine.handle(), &calls),
        )
    });
    let metrics_stop = metrics.as_ref().map(crate::metrics::MetricsServer::stopper);
    tracing::info!(%address, demo = settings.demo, auth_mode = %settings.auth_mode, tls = settings.tls.is_some(), data_dir = %settings.data_dir.display(), "voucher-ledger serving");
    ready(address, engine.handle());

    let served = server
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        // Every API service sits behind the edge: authentication before the body is read, and
        // the API's reasons for tonic's own refusals of a body (see `edge`).
        .add_service(Edge::new(
            AdministrationServiceServer::new(ledger.clone())
                .max_decoding_message_size(decoding_bytes_max),
            ledger.clone(),
        ))
        .add_service(Edge::new(
            OperatorServiceServer::new(ledger.clone())
                .max_decoding_message_size(batch_decoding_bytes_max),
            ledger.clone(),
        ))
        .add_service(Edge::new(
            ProviderServiceServer::new(ledger.clone())
                .max_decoding_message_size(batch_decoding_bytes_max),
            ledger.clone(),
        ))
        .add_service(Edge::new(
            ReportServiceServer::new(ledger.clone()).max_decoding_message_size(decoding_bytes_max),
            ledger.clone(),
        ))
        .add_service(Edge::new(
            CompanyServiceServer::new(ledger.clone()).max_decoding_message_size(decoding_bytes_max),
            ledger.clone(),
        ))
        .add_service(Edge::new(
            AuditServiceServer::new(ledger.clone()).max_decoding_message_size(decoding_bytes_max),
            ledger.clone(),
        ))
        .add_service(Edge::new(
            QueryServiceServer::new(ledger.clone()).max_decoding_message_size(decoding_bytes_max),
            ledger,
        ))
        // TCP_NODELAY: a unary answer is a few small HTTP/2 frames; with Nagle's algorithm the
        // last one waits for the client's delayed ACK (40 ms on Linux) before leaving.
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move {
                shutdown.await;
                // A graceful stop waits for every open call: end the audit streams, or a
                // subscriber would keep the server up.
                streams.close_streams();
                // Scrapes stop with the API: a stopping ledger has nothing more to report.
                if let Some(metrics_stop) = metrics_stop {
                    metrics_stop.stop();
                }
            },
        )
        .await;
    // Also when the gRPC server failed: the listener must not outlive it.
    if let Some(metrics) = metrics {
        metrics.stop().await;
    }
    served?;

    // Requests in flight have been answered; the writer finishes its queue and flushes.
    let head = engine.shutdown().await;
    if head.is_some() && matches!(settings.store, StoreSetting::Sled) {
        rewrite_db_after_seal(&settings.data_dir, settings.db_rewrite_bytes_min).await;
    }
    if head.is_some() {
        thin_retained_snapshots(&settings.data_dir).await;
    }
    tracing::info!(
        head_position = head.map(|head| head.position),
        "voucher-ledger stopped"
    );
    Ok(())
}

/// After a clean stop, rewrites sled's database with its live records when entries were sealed
/// into segments since it was last rewritten: sled 0.34 never gives back the space of what a
/// seal removed, and with nothing served and nothing holding the log open this is the moment
/// that stalls no one (see `ledger_store::rewrite_db_if_sealed`). A failure leaves the folder
/// as it was, only larger.
async fn rewrite_db_after_seal(data_dir: &std::path::Path, db_bytes_min: u64) {
    let data_dir = data_dir.to_path_buf();
    let rewritten = tokio::task::spawn_blocking(move || {
        ledger_store::rewrite_db_if_sealed(&data_dir, db_bytes_min)
    })
    .await;
    match rewritten {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(%error, "sled's database not rewritten after a seal"),
        Err(error) => tracing::warn!(%error, "sled's database not rewritten after a seal"),
    }
}

/// Snapshots of the projections older than the newest retained interval are kept one per
/// `ledger_engine::RETAINED_COARSE_INTERVALS` retained intervals: each is the whole projections, so one per
/// interval made the folder grow with the square of the log (587 MB of the 2 GB folder after
/// ten years). A report as of an old position then replays at most about that many intervals.
/// A failure leaves the snapshots as they were.
async fn thin_retained_snapshots(data_dir: &std::path::Path) {
    let retained = ledger_store::RetainedSnapshots::in_data_dir(data_dir);
    let thinned = tokio::task::spawn_blocking(move || {
        let spacing = ledger_engine::recovery::RetainedSpacing::SERVICE;
        retained.thin(spacing.recent_events, spacing.past_interval_events)
    })
    .await;
    match thinned {
        Ok(Ok(removed)) if !removed.is_empty() => {
            tracing::info!(removed = removed.len(), "older retained snapshots thinned");
        }
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(%error, "retained snapshots not thinned"),
        Err(error) => tracing::warn!(%error, "retained snapshots not thinned"),
    }
}

/// Registers the ctrl-c (SIGINT) and SIGTERM handlers now, not when the server first polls
/// its shutdown future: `serve` announces its address before that, and a signal in between
/// (a script or a test stopping the server as soon as it reads the address) would otherwise
/// meet the default action and kill the process without a graceful stop. A signal during the
/// engine's start is kept, and stops the server gracefully as soon as it serves.
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let interrupt = async {
            match interrupt {
                Ok(mut interrupt) => {
                    interrupt.recv().await;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot listen for ctrl-c");
                    std::future::pending::<()>().await;
                }
            }
        };
        let terminate = async {
            match terminate {
                Ok(mut terminate) => {
                    terminate.recv().await;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot listen for sigterm");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            () = interrupt => tracing::info!("ctrl-c received; stopping"),
            () = terminate => tracing::info!("sigterm received; stopping"),
        }
    }
}
