//! `calibrate` binary: the worker behind the binary edge (flags, lock, exit code).

use repurchase_calibrate as worker;
use repurchase_core::cli;

fn main() -> std::process::ExitCode {
    let args = cli::parse_args(worker::STAGE, worker::ABOUT);
    cli::run_args(worker::STAGE, args, worker::run)
}
