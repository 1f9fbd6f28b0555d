//! voucherctl: the command-line gRPC client of voucher-ledger, for the administration, the
//! operator, training providers and auditors. One subcommand per operation of the
//! `voucherledger.v1` API, flags named after the request fields, a readable summary or `--json`.
//!
//! It holds no state and no rules: the server decides, voucherctl builds a request, shows the
//! answer and turns errors into exit statuses (1 refused, 2 bad command line, 3 unreachable).
//! It never prints a worker's national register number (NISS): the server never sends one back,
//! and nothing here echoes what was typed.

pub mod cli;
pub mod client;
pub mod failure;
pub mod output;
pub mod tls;

use std::io::Write;
use std::process::ExitCode;

use cli::Cli;

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
    let plan = cli.plan();
    let request_id = plan.request_id.map(|request_id| request_id.id.to_string());
    if let Some(generated) = plan.request_id.filter(|request_id| request_id.generated) {
        // On stderr, so that `--json` output stays one object; printed before the call, so that
        // a write whose answer is lost can be retried with the same id.
        eprintln!(
            "request id {} (generated; to retry this write, pass it with --request-id)",
            generated.id
        );
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
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
