//! The `voucher-ledger` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ledger_server::settings::{LogFormat, Overrides, Settings};

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

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Serve the gRPC API (defaults: 127.0.0.1:50051, data in ./data).
    Serve {
        /// A configuration file, applied over config/default.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on, such as 127.0.0.1:50051 (port 0 picks a free port).
        #[arg(long)]
        listen: Option<String>,
        /// Folder of the embedded store.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Use the demo configuration: known tokens and pseudonym key, loopback only.
        #[arg(long)]
        demo: bool,
    },
    /// Simulate a year of the scheme through the API of an in-process demo server, reproducing
    /// the year's published figures exactly, and print the year's report.
    Simulate {
        /// The year to simulate; only 2024, whose published figures are the targets.
        #[arg(long)]
        year: i32,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        CliCommand::Serve {
            config,
            listen,
            data,
            demo,
        } => serve(Overrides {
            config_file: config,
            listen,
            data_dir: data,
            demo,
        }),
        CliCommand::Simulate {
            year,
            data,
            seed,
            scale,
        } => simulate(ledger_server::simulate::Options {
            year,
            data_dir: data,
            seed,
            scale,
        }),
    }
}

fn serve(overrides: Overrides) -> ExitCode {
    let settings = match Settings::load(&overrides) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("voucher-ledger: {error}");
            return ExitCode::from(2);
        }
    };
    init_tracing(settings.log_format, "info");
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(ledger_server::serve::serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "voucher-ledger stopped on an error");
            eprintln!("voucher-ledger: {error}");
            ExitCode::FAILURE
        }
    }
}

fn simulate(options: ledger_server::simulate::Options) -> ExitCode {
    use ledger_server::simulate::{SimulateError, SIMULATED_YEARS};
    if !SIMULATED_YEARS.contains(&options.year) {
        eprintln!(
            "voucher-ledger: {}",
            SimulateError::YearNotSupported(options.year)
        );
        return ExitCode::from(2);
    }
    let overrides = Overrides {
        config_file: None,
        listen: Some("127.0.0.1:0".to_owned()),
        data_dir: Some(options.data_dir.clone()),
        demo: true,
    };
    let settings = match Settings::load(&overrides) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("voucher-ledger: {error}");
            return ExitCode::from(2);
        }
    };
    // The in-process server logs every command at info; a simulated year is a few hundred
    // thousand of them, so only warnings and errors unless VOUCHER_LEDGER_LOG asks for more.
    init_tracing(settings.log_format, "warn");
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let report = match runtime.block_on(ledger_server::simulate::simulate(options, settings)) {
        Ok(report) => report,
        Err(error @ SimulateError::DataDirNotEmpty(_)) => {
            eprintln!("voucher-ledger: {error}");
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("voucher-ledger: simulation stopped: {error}");
            return ExitCode::FAILURE;
        }
    };
    print!("{report}");
    match report.check() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
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

fn init_tracing(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VOUCHER_LEDGER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
