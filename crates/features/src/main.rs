//! `build-features` binary: parses flags and runs the worker.

use clap::Parser;
use repurchase_features::{Args, run};

/// Builds anchors, 60-day labels and point-in-time features for a run date.
#[derive(Debug, Parser)]
#[command(name = "build-features", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let common = cli.args.common.clone();
    repurchase_core::cli::run_worker("build-features", "build-features", &common, run(cli.args))
}
