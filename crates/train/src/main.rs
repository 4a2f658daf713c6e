//! `train` binary: parses flags and runs the worker.

use clap::Parser;
use repurchase_train::{Args, run};

/// Trains the repurchase model for a run date on out-of-time windows and writes model + model card.
#[derive(Debug, Parser)]
#[command(name = "train", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let common = cli.args.common.clone();
    repurchase_core::cli::run_worker("train", "train", &common, run(cli.args))
}
