//! The `voucher-ledger-sim` binary: `simulate` and `bench`, each against a voucher-ledger
//! server it starts in this process (see the crate's documentation).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ledger_server::settings::{LogFormat, Overrides, Settings};
use ledger_sim::bench::PostgresTarget;
use ledger_sim::simulate::years::{RangeOptions, YearRange};
use ledger_sim::simulate::SimulateError;

/// The same allocator as the `voucher-ledger` binary, so that the in-process server of `bench`
/// runs as the real one does (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "voucher-ledger-sim",
    version,
    about = "A simulated year and the benchmark of voucher-ledger, through the API of a server \
             started in this process"
)]
struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Simulate a year of the scheme through the API of an in-process demo server, reproducing
    /// the year's published figures exactly, and print the year's report; or, with --years,
    /// a range of years in one ledger, each with the volume of 2024.
    Simulate {
        /// The year to simulate; only 2024, whose published figures are the targets.
        #[arg(long, required_unless_present = "years", conflicts_with = "years")]
        year: Option<i32>,
        /// A range of past years from 2006 on, such as 2016-2025, at most 20
        /// (SIMULATE_YEARS_LEN_MAX): each is planned with the 2024 targets moved to that year
        /// and a seed of its own, and driven through the same server, one ledger for all; each
        /// year's figures are checked against its plan.
        #[arg(long, value_name = "FIRST-LAST")]
        years: Option<YearRange>,
        /// Folder of the new store; must be empty or missing.
        #[arg(long)]
        data: PathBuf,
        /// Seed of the plan: the same seed makes the same year.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Divide the year's figures by this, for a quicker run.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        scale: u32,
    },
    /// Measure durable redemptions over gRPC against an in-process demo server on a temporary
    /// folder, the raw store ceiling of this machine, and a full rebuild (see BENCHMARKS.md).
    Bench {
        /// Concurrent clients.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
        clients: u64,
        /// Duration of each timed phase, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Requests of each timed phase, instead of a duration.
        #[arg(long, conflicts_with = "seconds")]
        requests: Option<u64>,
        /// Items of each RedeemHoursBatch call of the batched phase (1 to 1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
        batch_len: u64,
        /// Preload this many simulated years (from 2016 on, as `simulate --years` makes them)
        /// before the timed phases, then also measure the data folder, a restart and reports
        /// as_of earlier positions.
        #[arg(long, value_name = "YEARS", value_parser = clap::value_parser!(u32).range(1..))]
        history: Option<u32>,
        /// Divide the volume of each preloaded year by this, for a quicker run.
        #[arg(long, default_value_t = 1, requires = "history", value_parser = clap::value_parser!(u32).range(1..))]
        history_scale: u32,
        /// Concurrent clients of the batched phase (default: --clients).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        batch_clients: Option<u64>,
        /// Also run the phases on PostgreSQL with one synchronous standby, printed as ratios
        /// to sled's: "postgres" starts its own primary and standby on 127.0.0.1 from the
        /// Debian packages, unless --postgres-connection names an empty database.
        #[arg(long, value_enum, default_value_t = BenchStore::Sled)]
        store: BenchStore,
        /// An empty database (a libpq connection string) for the PostgreSQL phases instead of
        /// the bench's own primary and standby; implies --store postgres.
        #[arg(long, value_name = "CONNINFO")]
        postgres_connection: Option<String>,
    },
    /// The server alone in a process of its own, on the demo settings and a loopback port of
    /// its own: what `bench --history` starts again on its folder to measure a restart and the
    /// server's own memory while serving (`ledger_sim::bench::SERVE_ALONE_COMMAND`). Stops on
    /// SIGTERM.
    #[command(name = "serve-alone", hide = true)]
    ServeAlone {
        #[arg(long)]
        data: PathBuf,
    },
}

/// Where `bench` runs its phases: sled alone, or sled and PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BenchStore {
    Sled,
    Postgres,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        CliCommand::Simulate {
            year,
            years,
            data,
            seed,
            scale,
        } => match (year, years) {
            (_, Some(years)) => simulate_years(RangeOptions {
                years,
                data_dir: data,
                seed,
                scale,
            }),
            (Some(year), None) => simulate(ledger_sim::simulate::Options {
                year,
                data_dir: data,
                seed,
                scale,
            }),
            // clap requires one of them.
            (None, None) => ExitCode::from(2),
        },
        CliCommand::Bench {
            clients,
            seconds,
            requests,
            batch_len,
            history,
            history_scale,
            batch_clients,
            store,
            postgres_connection,
        } => bench(ledger_sim::bench::Options {
            clients: usize::try_from(clients).unwrap_or(usize::MAX),
            seconds,
            requests,
            batch_len: usize::try_from(batch_len).unwrap_or(usize::MAX),
            history,
            history_scale,
            batch_clients: batch_clients
                .map(|clients| usize::try_from(clients).unwrap_or(usize::MAX)),
            postgres: match (store, postgres_connection) {
                (_, Some(connection)) => Some(PostgresTarget::Connection(connection)),
                (BenchStore::Postgres, None) => Some(PostgresTarget::OwnPair),
                (BenchStore::Sled, None) => None,
            },
        }),
        CliCommand::ServeAlone { data } => serve_alone(data),
    }
}

/// The demo server on `data_dir`, until SIGTERM, printing `voucher-ledger listening on ADDR`
/// as the server's binary does; warnings and errors only on stderr.
fn serve_alone(data_dir: PathBuf) -> ExitCode {
    let (settings, runtime) = match demo_start(data_dir) {
        Ok(started) => started,
        Err(code) => return code,
    };
    match runtime.block_on(ledger_server::serve::serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("voucher-ledger-sim serve-alone: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What `simulate`, `simulate --years` and `serve-alone` start with: the demo settings on
/// `data_dir` ([`demo_settings`]), logging of warnings and errors only (the server logs every
/// command at info, and a simulated year is a few hundred thousand of them, unless RUST_LOG or
/// VOUCHER_LEDGER_LOG asks for more), and the async runtime.
fn demo_start(data_dir: PathBuf) -> Result<(Settings, tokio::runtime::Runtime), ExitCode> {
    let settings = demo_settings(data_dir)?;
    init_tracing(settings.log_format, "warn")?;
    let runtime = runtime().ok_or(ExitCode::FAILURE)?;
    Ok((settings, runtime))
}

/// The demo settings of the in-process server: a loopback port of its own, the store in
/// `data_dir`; exit status 2 when they do not load (the policy table missing, say).
fn demo_settings(data_dir: PathBuf) -> Result<Settings, ExitCode> {
    let overrides = Overrides {
        config_file: None,
        listen: Some("127.0.0.1:0".to_owned()),
        data_dir: Some(data_dir),
        demo: true,
        standby: false,
    };
    Settings::load(&overrides).map_err(|error| {
        eprintln!("voucher-ledger-sim: {error}");
        ExitCode::from(2)
    })
}

fn simulate(options: ledger_sim::simulate::Options) -> ExitCode {
    use ledger_sim::simulate::SIMULATED_YEARS;
    if !SIMULATED_YEARS.contains(&options.year) {
        eprintln!(
            "voucher-ledger-sim: {}",
            SimulateError::YearNotSupported(options.year)
        );
        return ExitCode::from(2);
    }
    let (settings, runtime) = match demo_start(options.data_dir.clone()) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let report = match runtime.block_on(ledger_sim::simulate::simulate(options, settings)) {
        Ok(report) => report,
        Err(error @ SimulateError::DataDirNotEmpty(_)) => {
            eprintln!("voucher-ledger-sim: {error}");
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("voucher-ledger-sim: simulation stopped: {error}");
            return ExitCode::FAILURE;
        }
    };
    print!("{report}");
    match report.check() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("voucher-ledger-sim: {error}");
            ExitCode::FAILURE
        }
    }
}

fn simulate_years(options: RangeOptions) -> ExitCode {
    use ledger_sim::simulate::years::year_line;
    let (settings, runtime) = match demo_start(options.data_dir.clone()) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let on_year = |report: &ledger_sim::simulate::YearReport, events: u64| {
        use std::io::Write;
        println!("{}", year_line(report, events));
        // A run of many years takes long: each line shows as soon as its year is checked.
        let _ = std::io::stdout().flush();
    };
    let run = ledger_sim::simulate::years::simulate_years(options, settings, on_year);
    match runtime.block_on(run) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(
            error @ (SimulateError::DataDirNotEmpty(_)
            | SimulateError::RangeReversed { .. }
            | SimulateError::RangeTooLong { .. }
            | SimulateError::YearTooEarly(_)
            | SimulateError::YearNotOver { .. }
            | SimulateError::NoPolicy(_)
            | SimulateError::PolicyChanges(_)),
        ) => {
            eprintln!("voucher-ledger-sim: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("voucher-ledger-sim: simulation stopped: {error}");
            ExitCode::FAILURE
        }
    }
}

fn bench(options: ledger_sim::bench::Options) -> ExitCode {
    // The in-process server logs every command at info: only warnings and errors here.
    if let Err(code) = init_tracing(LogFormat::Human, "warn") {
        return code;
    }
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(ledger_sim::bench::bench(options)) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("voucher-ledger-sim: bench stopped: {error}");
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
            eprintln!("voucher-ledger-sim: cannot start the async runtime: {error}");
            None
        }
    }
}

/// Logs to stderr with the filter of `RUST_LOG`, or `VOUCHER_LEDGER_LOG` over it, or
/// `default_filter`, as the server's binary does (`ledger_server::logging`); a filter that
/// does not parse is a bad command line (exit status 2), said before anything runs.
fn init_tracing(format: LogFormat, default_filter: &str) -> Result<(), ExitCode> {
    let filter = match ledger_server::logging::filter_from_environment(default_filter) {
        Ok(chosen) => chosen.filter,
        Err(error) => {
            eprintln!("voucher-ledger-sim: {error}");
            return Err(ExitCode::from(2));
        }
    };
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => log.init(),
        LogFormat::Json => log.json().init(),
    }
    Ok(())
}
