//! `score` binary: parses flags and runs the worker.

use clap::Parser;
use repurchase_score::{Args, run};

/// Scores the run date's open anchors with a calibrated model and writes probabilities and deciles.
#[derive(Debug, Parser)]
#[command(name = "score", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let common = cli.args.common.clone();
    let lock = cli.args.lock_name();
    repurchase_core::cli::run_worker("score", &lock, &common, run(cli.args))
}
