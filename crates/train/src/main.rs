//! `train` binary: the worker behind the binary edge (flags, lock, exit code).

use repurchase_core::cli;
use repurchase_train as worker;

fn main() -> std::process::ExitCode {
    let args = cli::parse_args(worker::STAGE, worker::ABOUT);
    cli::run_args(worker::STAGE, args, worker::run)
}
