//! `extract` binary: parses flags and runs the worker.

use clap::Parser;
use repurchase_extract::{Args, run};

/// Validates the seven TheLook tables from a source and writes typed raw partitions for a run date.
#[derive(Debug, Parser)]
#[command(name = "extract", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let common = cli.args.common.clone();
    repurchase_core::cli::run_worker("extract", "extract", &common, run(cli.args))
}
