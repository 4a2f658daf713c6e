//! `calibrate` binary: parses flags and runs the worker.

use clap::Parser;
use repurchase_calibrate::{Args, run};

/// Calibrates the run date's model on its validation window and writes held-out metrics.
#[derive(Debug, Parser)]
#[command(name = "calibrate", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let common = cli.args.common.clone();
    repurchase_core::cli::run_worker("calibrate", "calibrate", &common, run(cli.args))
}
