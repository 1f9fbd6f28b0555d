//! voucherctl: the command-line gRPC client of voucher-ledger, for the administration, the
//! operator, training providers and auditors. One subcommand per operation of the
//! `voucherledger.v1` API, flags named after the request fields, a readable summary or `--json`.
//!
//! It holds no state and no rules: the server decides, voucherctl builds a request, shows the
//! answer and turns errors into exit statuses (1 refused, 2 bad command line, 3 unreachable).
//! It never prints a worker's national register number (NISS): the server never sends one back,
//! and nothing here echoes what was typed.

pub mod batch;
pub mod cli;
pub mod client;
pub mod failure;
pub mod output;
pub mod queries;
pub mod tls;
pub mod usage_code;
pub mod wait;

use std::io::Write;
use std::process::ExitCode;

use cli::Cli;

/// The commands that are not one call: `wait`, the batch files, `completions`.
fn run_local(cli: Cli, server: &tonic::transport::Endpoint) -> ExitCode {
    use cli::Command;
    match &cli.command {
        Command::Completions(args) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let name = command.get_name().to_owned();
            clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Wait(args) => {
            let runtime = match runtime() {
                Ok(runtime) => runtime,
                Err(code) => return code,
            };
            match runtime.block_on(wait::wait(server, args)) {
                Ok(_) => {
                    println!("voucher-ledger at {} is serving", server.uri());
                    ExitCode::SUCCESS
                }
                Err(not_serving) => {
                    eprintln!("error: {not_serving}");
                    ExitCode::from(failure::EXIT_UNREACHABLE)
                }
            }
        }
        Command::IssueBatch(args) => run_batch(&cli, server, args, batch::BatchKind::Issue),
        Command::RedeemBatch(args) => run_batch(&cli, server, args, batch::BatchKind::Redeem),
        Command::RegisterBatch(args) => run_batch(&cli, server, args, batch::BatchKind::Register),
        Command::PayoutBatch(args) => run_batch(&cli, server, args, batch::BatchKind::Payout),
        Command::ReverseBatch(args) => run_batch(&cli, server, args, batch::BatchKind::Reverse),
        Command::UsageCodeBatch(args) => run_batch(&cli, server, args, batch::BatchKind::UsageCode),
        // Every other command is one call, planned by `Cli::plan`.
        _ => ExitCode::from(failure::EXIT_USAGE),
    }
}

/// A runtime on this thread: voucherctl makes its calls one after the other.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("error: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        })
}

/// Reads the whole file, sends it and prints one line per item: exit status 0 when every item
/// was accepted, 1 when any was refused, 2 for a file that cannot be sent, the failure's
/// status when a whole call failed.
fn run_batch(
    cli: &Cli,
    server: &tonic::transport::Endpoint,
    args: &batch::BatchFileArgs,
    kind: batch::BatchKind,
) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let file = match batch::read(&args.file, args.format, kind) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(failure::EXIT_USAGE);
        }
    };
    let generated = file
        .sources
        .iter()
        .filter(|source| source.generated)
        .count();
    if generated > 0 {
        eprintln!(
            "request ids generated for {generated} items without one (in the report): to retry this file safely, put them in its request-id column"
        );
    }
    let report = runtime.block_on(batch::send(server, cli.token.as_ref(), file));
    let mut stdout = std::io::stdout().lock();
    let written = if cli.json {
        writeln!(stdout, "{:#}", batch::json(&report))
    } else {
        write!(stdout, "{}", batch::human(&report))
    };
    let _ = written.and_then(|()| stdout.flush());
    if let Some(failure) = &report.failure {
        eprint!("{}", failure.report().human());
        eprintln!(
            "{} items were not answered: send the same file again (the items already written are answered as replayed, nothing is written twice)",
            report.unanswered
        );
        return failure.exit_code();
    }
    if report.refused() > 0 {
        ExitCode::from(failure::EXIT_REFUSED)
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs one parsed command line to its exit status, printing the answer on stdout and errors on
/// stderr (and, with `--json`, the error object on stdout too).
pub fn run(cli: Cli) -> ExitCode {
    // TLS options that do not fit are a bad command line, found before anything is sent.
    let tls = tls::TlsOptions {
        ca: cli.ca.clone(),
        cert: cli.cert.clone(),
        key: cli.key.clone(),
    };
    let server = match tls::configure(&cli.server, &tls) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let Some(plan) = cli.plan() else {
        return run_local(cli, &server);
    };
    let request_id = plan.request_id.map(|request_id| request_id.id.to_string());
    if let Some(generated) = plan.request_id.filter(|request_id| request_id.generated) {
        // On stderr, so that `--json` output stays one object; printed before the call, so that
        // a write whose answer is lost can be retried with the same id.
        eprintln!(
            "request id {} (generated; to retry this write, pass it with --request-id)",
            generated.id
        );
    }
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let outcome = runtime.block_on(client::execute(
        &server,
        cli.token.as_ref(),
        plan.call,
        cli.json,
    ));
    let mut stdout = std::io::stdout().lock();
    match outcome {
        // A subscription printed its messages as they came.
        Ok(output::Answer::Done) => ExitCode::SUCCESS,
        Ok(answer) => {
            let written = if cli.json {
                writeln!(stdout, "{:#}", output::json(&answer))
            } else {
                write!(stdout, "{}", output::human(&answer))
            };
            match written.and_then(|()| stdout.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
        Err(failure) => {
            let report = failure.report();
            eprint!("{}", report.human());
            if cli.json {
                // Nothing more can be said if stdout is gone; the exit status still tells.
                let _ = writeln!(stdout, "{:#}", report.json(request_id.as_deref()))
                    .and_then(|()| stdout.flush());
            }
            failure.exit_code()
        }
    }
}
