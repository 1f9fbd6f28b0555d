//! The `voucher-ledger` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ledger_server::settings::{LogFormat, Overrides, Settings};

/// The writer allocates and frees small objects for every command (events, encodings, answers),
/// and a start decodes millions of them: jemalloc serves as fast as mimalloc did, 30 % faster
/// than glibc's malloc, and unlike mimalloc gives a start's garbage back at once (see the
/// workspace's Cargo.toml and BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "voucher-ledger",
    version,
    about = "System of record of Wallonia's training-voucher scheme"
)]
struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

/// The options of `serve`, which `config print` takes too.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// A configuration file, applied over the built-in defaults (config/default.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on, such as 127.0.0.1:50051 or localhost:50051 (port 0 picks a free
    /// port).
    #[arg(long)]
    listen: Option<String>,
    /// Folder of the embedded store.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Use the demo configuration: known tokens and pseudonym key, loopback only.
    #[arg(long)]
    demo: bool,
    /// Serve Prometheus metrics on GET /metrics at this address, such as 127.0.0.1:9464
    /// (port 0 picks a free port; loopback only unless metrics_allow_non_loopback).
    #[arg(long, value_name = "ADDRESS")]
    metrics_listen: Option<String>,
    /// With store = "postgres": start as a hot standby, which follows the writer's log and
    /// answers reads (writes: NOT_THE_WRITER) until the writer's lock is free (the writer died
    /// or stopped), then writes on from its own head.
    #[arg(long)]
    standby: bool,
}

impl ServeArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            config_file: self.config.clone(),
            listen: self.listen.clone(),
            data_dir: self.data.clone(),
            demo: self.demo,
            standby: self.standby,
        }
    }
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the settings `serve` would run with, given the same options and environment:
    /// every value (secrets masked) and where it came from (default, demo, file, env, flag).
    /// Exit status 2 when the configuration would not start.
    Print(ServeArgs),
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Serve the gRPC API (defaults: 127.0.0.1:50051, data in ./data).
    Serve(ServeArgs),
    /// The configuration: `config print` shows the settings in force for `serve` with the same
    /// options, secrets masked, and where each value came from.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check a stopped ledger's folder, or a backup, without trusting the service: the hash
    /// chain, gap-free positions, balanced postings, and the stored checkpoint against the
    /// projections rebuilt from position 1. Writes nothing. Exit status 0 when sound, 1 naming
    /// the first bad position, 2 when the folder holds no ledger.
    Verify {
        /// Folder of the store (the server must be stopped).
        #[arg(long)]
        data: PathBuf,
        /// A head recorded earlier, POSITION:HASH (as GetHead and `voucherctl head` print it):
        /// the log must reach that position and have that hash there. Catches a log rewritten
        /// from some point on with its later hashes recomputed.
        #[arg(long, value_name = "POSITION:HASH")]
        expect_head: Option<ledger_server::offline::ExpectedHead>,
        /// Read the log from this PostgreSQL database (a connection string) instead of the
        /// folder, which then holds only the checkpoint to check, if any.
        #[arg(long, value_name = "CONNECTION")]
        postgres: Option<String>,
    },
    /// Write the events as JSON Lines (one event per line, with prev_hash, hash and the exact
    /// bytes hashed) or the yearly reports as CSV, on stdout. Deterministic: the same log gives
    /// the same bytes. Writes nothing to the folder.
    Export {
        /// Folder of the store (the server must be stopped).
        #[arg(long)]
        data: PathBuf,
        #[arg(long, value_enum)]
        format: ledger_server::offline::ExportFormat,
        /// First position to export (JSON Lines only; default 1).
        #[arg(long, value_name = "POSITION")]
        from: Option<u64>,
        /// Last position to export, or the position the reports are rebuilt to (default: head).
        #[arg(long, value_name = "POSITION")]
        to: Option<u64>,
        /// Read the log from this PostgreSQL database (a connection string) instead of the
        /// folder.
        #[arg(long, value_name = "CONNECTION")]
        postgres: Option<String>,
    },
    /// Move a ledger between the stores (issue 19): a stopped sled folder (--data) into an
    /// empty PostgreSQL database (--to-postgres), or a PostgreSQL ledger (--postgres) into a
    /// new sled folder (--to-data). The source's chain is verified first and every hash of the
    /// copy checked against it; a target that is not empty is refused. Exit status 0 when
    /// copied, 1 when the copy stopped, 2 for a source that holds no ledger or a bad command line.
    Import {
        /// The sled folder to copy (the server stopped); with --postgres, not used.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The PostgreSQL database to copy (a connection string), into --to-data.
        #[arg(long, value_name = "CONNECTION")]
        postgres: Option<String>,
        /// The empty PostgreSQL database to copy --data into (no ledger serving on it).
        #[arg(long, value_name = "CONNECTION")]
        to_postgres: Option<String>,
        /// The new sled folder to copy --postgres into.
        #[arg(long, value_name = "FOLDER")]
        to_data: Option<PathBuf>,
    },
    /// Rebuild every projection of a stopped ledger from position 1, compare it with the stored
    /// checkpoint byte for byte, and write a fresh checkpoint at the head. Exit status 1 when
    /// the checkpoint differs from the rebuild.
    Rebuild {
        /// Folder of the store (the server must be stopped); with --postgres, the folder of the
        /// ledger process's checkpoint and retained snapshots.
        #[arg(long)]
        data: PathBuf,
        /// Rebuild from this PostgreSQL database (a connection string) instead of the sled
        /// folder; no ledger may be writing on it (the writer's lock is taken meanwhile).
        #[arg(long, value_name = "CONNINFO")]
        postgres: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        CliCommand::Serve(args) => serve(args.overrides(), args.metrics_listen.as_deref()),
        CliCommand::Config(ConfigCommand::Print(args)) => {
            config_print(&args.overrides(), args.metrics_listen.as_deref())
        }
        CliCommand::Verify {
            data,
            expect_head,
            postgres,
        } => {
            if let Err(code) = init_tracing(LogFormat::Human, "warn") {
                return code;
            }
            let verified = ledger_server::offline::open_log(&data, postgres.as_deref())
                .and_then(|log| ledger_server::offline::verify_log(&log, &data, expect_head));
            match verified {
                Ok(report) => {
                    println!("{}", report.summary());
                    match report.failure {
                        None => ExitCode::SUCCESS,
                        Some(failure) => {
                            eprintln!("voucher-ledger: {failure}");
                            ExitCode::FAILURE
                        }
                    }
                }
                Err(error) => offline_error(&error),
            }
        }
        CliCommand::Export {
            data,
            format,
            from,
            to,
            postgres,
        } => {
            if let Err(code) = init_tracing(LogFormat::Human, "warn") {
                return code;
            }
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let exported =
                ledger_server::offline::open_log(&data, postgres.as_deref()).and_then(|log| {
                    ledger_server::offline::export_log(&log, &data, format, from, to, &mut out)
                });
            match exported {
                Ok(report) => {
                    eprintln!(
                        "exported positions {} to {} ({} lines); head of the log: position {}, hash {}",
                        report.first_position,
                        report.last_position,
                        report.lines,
                        report.head.position,
                        hex::encode(report.head.hash)
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => offline_error(&error),
            }
        }
        CliCommand::Import {
            data,
            postgres,
            to_postgres,
            to_data,
        } => {
            if let Err(code) = init_tracing(LogFormat::Human, "warn") {
                return code;
            }
            import(data, postgres, to_postgres, to_data)
        }
        CliCommand::Rebuild { data, postgres } => {
            if let Err(code) = init_tracing(LogFormat::Human, "warn") {
                return code;
            }
            match ledger_server::offline::rebuild_on(&data, postgres.as_deref()) {
                Ok(outcome) => {
                    println!("{}", outcome.summary);
                    if outcome.sound {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(error) => offline_error(&error),
            }
        }
    }
}

/// An offline command that could not run: 2 when the folder holds no ledger or the arguments
/// do not fit, 1 otherwise.
fn offline_error(error: &ledger_server::offline::OfflineError) -> ExitCode {
    use ledger_server::offline::OfflineError;
    eprintln!("voucher-ledger: {error}");
    match error {
        OfflineError::Missing(_) | OfflineError::CsvFrom => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}

fn serve(overrides: Overrides, metrics_listen: Option<&str>) -> ExitCode {
    let settings = match Settings::load_with_metrics(&overrides, metrics_listen) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("voucher-ledger: {error}");
            return ExitCode::from(2);
        }
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    // --- OpenTelemetry trace export (issue 17 item 4; see `ledger_server::otlp`) ---
    // Started inside the runtime, which the exporter's gRPC client runs on; off unless the
    // binary has the `otlp` feature and OTEL_EXPORTER_OTLP_ENDPOINT is set.
    let otlp = match runtime.block_on(async { ledger_server::otlp::start() }) {
        Ok(otlp) => otlp,
        Err(error) => {
            eprintln!("voucher-ledger: {error}");
            return ExitCode::from(2);
        }
    };
    let (otlp_layer, otlp) = otlp.unzip();
    if let Err(code) = init_tracing_with(settings.log_format, "info", otlp_layer) {
        return code;
    }
    // --- end of OpenTelemetry trace export ---
    let served = runtime.block_on(ledger_server::serve::serve(settings));
    if let Some(otlp) = otlp {
        otlp.shutdown();
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "voucher-ledger stopped on an error");
            eprintln!("voucher-ledger: {error}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            eprintln!("voucher-ledger: cannot start the async runtime: {error}");
            None
        }
    }
}

fn init_tracing(format: LogFormat, default_filter: &str) -> Result<(), ExitCode> {
    init_tracing_with(format, default_filter, None)
}

/// Logs to stderr with the filter of `RUST_LOG`, or `VOUCHER_LEDGER_LOG` over it, or
/// `default_filter` (see `ledger_server::logging`), and `extra` beside it with a filter of its
/// own (the OTLP export, whose spans the log does not show); a filter that does not parse is a
/// bad command line (exit status 2), said before anything runs.
fn init_tracing_with(
    format: LogFormat,
    default_filter: &str,
    extra: Option<ledger_server::otlp::OtlpLayer>,
) -> Result<(), ExitCode> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;

    let filter = match ledger_server::logging::filter_from_environment(default_filter) {
        Ok(chosen) => chosen.filter,
        Err(error) => {
            eprintln!("voucher-ledger: {error}");
            return Err(ExitCode::from(2));
        }
    };
    // Colour codes only for a person at a terminal: a file, a pipe or journald would keep the
    // escape sequences as bytes (and `NO_COLOR`, https://no-color.org, turns them off too).
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let log = tracing_subscriber::fmt::layer()
        .with_ansi(colours)
        .with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(extra);
    match format {
        LogFormat::Human => registry.with(log.with_filter(filter)).init(),
        LogFormat::Json => registry.with(log.json().with_filter(filter)).init(),
    }
    Ok(())
}

/// `voucher-ledger config print`: every setting in force as TOML, each followed by where it
/// came from, then the log filter; exit status 2 (after printing) when the settings would not
/// start a server, 0 when they would.
fn config_print(overrides: &Overrides, metrics_listen: Option<&str>) -> ExitCode {
    use ledger_server::settings::{process_environment, Layered};
    let layered = match Layered::load(overrides, metrics_listen, &process_environment()) {
        Ok(layered) => layered,
        Err(error) => {
            eprintln!("voucher-ledger: {error}");
            return ExitCode::from(2);
        }
    };
    let entries = layered.entries();
    let width = entries
        .iter()
        .filter(|(_, value, _)| !value.contains('\n'))
        .map(|(name, value, _)| name.len() + 3 + value.len())
        .max()
        .unwrap_or(0);
    let mut text = String::from(
        "# voucher-ledger settings in force (secrets masked), each with where it came from:\n\
         # default < demo (--demo) < file (--config) < env (VOUCHER_LEDGER__*) < flag\n",
    );
    for (name, value, origin) in &entries {
        let line = format!("{name} = {value}");
        let last_line_len = line.lines().last().map_or(0, str::len);
        let padding = width.saturating_sub(last_line_len);
        text.push_str(&format!("{line}{:padding$}  # {origin}\n", ""));
    }
    match ledger_server::logging::filter_from_environment("info") {
        Ok(chosen) => text.push_str(&format!(
            "# log filter of serve: {:?} (from {}; VOUCHER_LEDGER_LOG > RUST_LOG > default)\n",
            chosen.directives, chosen.origin
        )),
        Err(error) => text.push_str(&format!("# log filter: {error}\n")),
    }
    print!("{text}");
    match layered.check() {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("voucher-ledger: this configuration would not start: {error}");
            ExitCode::from(2)
        }
    }
}

/// `voucher-ledger import`: one source and the target of the other kind.
fn import(
    data: Option<PathBuf>,
    postgres: Option<String>,
    to_postgres: Option<String>,
    to_data: Option<PathBuf>,
) -> ExitCode {
    let copy = |source: ledger_store::OfflineLog, mut target: ledger_store::Store| {
        ledger_server::offline::import(&source, &mut target)
    };
    let imported = match (&data, &postgres, &to_postgres, &to_data) {
        (Some(data), None, Some(to_postgres), None) => ledger_server::offline::open_log(data, None)
            .and_then(|source| {
                let target =
                    ledger_server::offline::open_import_target(Some((to_postgres, data)), None)?;
                copy(source, target)
            }),
        // The source first: a database that holds no ledger leaves no new folder behind.
        (None, Some(postgres), None, Some(to_data)) => {
            ledger_server::offline::open_log(to_data, Some(postgres)).and_then(|source| {
                let target = ledger_server::offline::open_import_target(None, Some(to_data))?;
                copy(source, target)
            })
        }
        _ => {
            eprintln!("voucher-ledger: import takes --data FOLDER --to-postgres CONNECTION (sled to postgresql), or --postgres CONNECTION --to-data FOLDER (postgresql to sled)");
            return ExitCode::from(2);
        }
    };
    match imported {
        Ok(report) => {
            println!(
                "imported {} events of {} requests; head of the copy: position {}, hash {} (verified against the source's chain)",
                report.events,
                report.commands,
                report.head.position,
                hex::encode(report.head.hash)
            );
            ExitCode::SUCCESS
        }
        Err(error) => offline_error(&error),
    }
}
