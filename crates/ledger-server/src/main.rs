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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        CliCommand::Serve {
            config,
            listen,
            data,
            demo,
        } => {
            let overrides = Overrides {
                config_file: config,
                listen,
                data_dir: data,
                demo,
            };
            let settings = match Settings::load(&overrides) {
                Ok(settings) => settings,
                Err(error) => {
                    eprintln!("voucher-ledger: {error}");
                    return ExitCode::from(2);
                }
            };
            init_tracing(settings.log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("voucher-ledger: cannot start the async runtime: {error}");
                    return ExitCode::FAILURE;
                }
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
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VOUCHER_LEDGER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
