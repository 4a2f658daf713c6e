//! `extract` binary: the worker behind the binary edge (flags, lock, exit code).

use repurchase_extract as worker;

fn main() -> std::process::ExitCode {
    repurchase_core::cli::worker_main(worker::STAGE, worker::ABOUT, worker::run)
}
