//! The `voucherctl` binary: the command-line gRPC client of voucher-ledger. Parsing errors exit
//! with status 2 (clap's); everything else is in the library, `voucherctl::run`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    voucherctl::run(voucherctl::cli::Cli::parse())
}
