//! `repurchase`: the umbrella command for people at a terminal.
//!
//! `generate` writes TheLook-schema data, `demo` runs everything end to end on local disk, and
//! each worker is also a subcommand running exactly the code of its own binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use repurchase_cli::demo::{DemoConfig, run_demo};
use repurchase_cli::error::CliError;
use repurchase_cli::rolling::{RollingConfig, rolling_backtest};
use repurchase_core::cli::{exit_code, parse_run_date, report_failure, run_args, run_worker};
use repurchase_core::logging::{self, LogFormat};
use repurchase_core::{Classify, CoreError, DataRoot, ErrorClass, RunDate, StoreConfig};
use repurchase_datagen::{GenConfig, OutputFormat, Profile};
use repurchase_features::AnchorMode;

#[derive(Debug, Parser)]
#[command(name = "repurchase", version, about = "Predicts which TheLook customers buy again within 60 days.", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the seven TheLook tables (and the ground truth) as a CSV or Parquet export.
    Generate(GenerateArgs),
    /// Generate data and run extract → build-features → train → calibrate → score on local disk.
    Demo(DemoArgs),
    /// The extract worker.
    Extract(repurchase_extract::Args),
    /// The build-features worker.
    BuildFeatures(repurchase_features::Args),
    /// The train worker.
    Train(repurchase_train::Args),
    /// The calibrate worker.
    Calibrate(repurchase_calibrate::Args),
    /// The score worker.
    Score(repurchase_score::Args),
    /// Compare the scores of --run-date with the outcomes known on a later --outcome-date; with
    /// --origins N, first replay the whole procedure from --run-date on over N weekly origins.
    Backtest(BacktestArgs),
    /// Put the drift reports of the last --days run dates on one page
    /// (monitoring_pages/run_date=D/monitoring.html).
    Monitor(MonitorArgs),
    /// The business figures of --run-date's raw data (orders, status mix, traffic sources, items
    /// per order, funnel, repurchase rate by month and segment) in diagnostics/run_date=D/, with a
    /// page (diagnostics.html).
    Diagnose(DiagnoseArgs),
}

#[derive(Debug, Args)]
struct DiagnoseArgs {
    /// --run-date is the day whose raw partitions (extract's output) are read.
    #[command(flatten)]
    common: repurchase_core::cli::CommonArgs,
    /// Label horizon in days: a repurchase is another completed order within this many days.
    #[arg(long, env = "REPURCHASE_HORIZON_DAYS", default_value_t = repurchase_cli::diagnose::DEFAULT_HORIZON_DAYS, value_parser = clap::value_parser!(u32).range(1..=365))]
    horizon_days: u32,
}

#[derive(Debug, Args)]
struct MonitorArgs {
    /// --run-date is the last day shown.
    #[command(flatten)]
    common: repurchase_core::cli::CommonArgs,
    /// Run dates shown, ending at --run-date.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3660))]
    days: u32,
}

#[derive(Debug, Args)]
struct BacktestArgs {
    /// --run-date is the score date: the day whose scores are judged.
    #[command(flatten)]
    common: repurchase_core::cli::CommonArgs,
    /// A later run date whose extract and features already exist; at least 60 days after the
    /// score date for every scored anchor to be resolved.
    #[arg(long, env = "REPURCHASE_OUTCOME_DATE", value_parser = parse_run_date)]
    outcome_date: RunDate,
    /// Rolling-origin backtest: replay extract, build-features and score every day and train and
    /// calibrate every --origin-every-days days, over N origins from --run-date on, into
    /// --data-root (which must hold no model), then judge every day's scores (new and old
    /// procedure, and the generator's oracle when --source has a truth table).
    #[arg(long, value_name = "N", requires = "source", value_parser = clap::value_parser!(u32).range(1..=520))]
    origins: Option<u32>,
    /// The export the rolling backtest extracts from (it must reach the outcome date).
    #[arg(long, requires = "origins")]
    source: Option<String>,
    /// Days between two origins of the rolling backtest (retraining dates).
    #[arg(long, default_value_t = 7, requires = "origins", value_parser = clap::value_parser!(u32).range(1..=366))]
    origin_every_days: u32,
    /// Anchors of the rolling backtest: first-order or every-order.
    #[arg(long, default_value = "first-order", requires = "origins")]
    anchor: AnchorMode,
    /// The rolling backtest scores with `score --flag-top-share S`.
    #[arg(long, value_name = "S", requires = "origins")]
    flag_top_share: Option<f64>,
    /// `train --valid-days` in the rolling backtest.
    #[arg(long, default_value_t = repurchase_train::DEFAULT_VALID_DAYS, requires = "origins")]
    valid_days: u32,
    /// `train --test-days` in the rolling backtest.
    #[arg(long, default_value_t = repurchase_train::DEFAULT_TEST_DAYS, requires = "origins")]
    test_days: u32,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// Number of customers (TheLook has 100,000).
    #[arg(long, env = "REPURCHASE_USERS", default_value_t = 100_000)]
    users: u64,
    /// Seed: the same seed gives the same data.
    #[arg(long, env = "REPURCHASE_SEED", default_value_t = 42)]
    seed: u64,
    /// Last day of data, YYYY-MM-DD.
    #[arg(long, env = "REPURCHASE_END_DATE", value_parser = parse_run_date)]
    end_date: RunDate,
    /// Output folder: plain path, file://, s3:// or memory://.
    #[arg(long, env = "REPURCHASE_OUT")]
    out: String,
    /// signal (a learnable repurchase process, with ground truth) or thelook (TheLook's own generator).
    #[arg(long, env = "REPURCHASE_PROFILE", default_value = "signal")]
    profile: Profile,
    /// csv (like a BigQuery export) or parquet.
    #[arg(long, env = "REPURCHASE_FORMAT", default_value = "csv")]
    format: OutputFormat,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Number of customers (TheLook has 100,000).
    #[arg(long, env = "REPURCHASE_USERS", default_value_t = 100_000)]
    users: u64,
    /// Seed of the generated data.
    #[arg(long, env = "REPURCHASE_SEED", default_value_t = 42)]
    seed: u64,
    /// Run date (and last day of generated data).
    #[arg(long, env = "REPURCHASE_RUN_DATE", default_value = "2025-06-30", value_parser = parse_run_date)]
    run_date: RunDate,
    /// signal or thelook.
    #[arg(long, env = "REPURCHASE_PROFILE", default_value = "signal")]
    profile: Profile,
    /// first-order or every-order.
    #[arg(long, env = "REPURCHASE_ANCHOR", default_value = "first-order")]
    anchor: AnchorMode,
    /// Working folder; gets source/ (generated export) and lake/ (the data root).
    #[arg(long, env = "REPURCHASE_DEMO_DIR", default_value = "./demo-data")]
    dir: PathBuf,
    /// Days in the validation window.
    #[arg(long, default_value_t = repurchase_train::DEFAULT_VALID_DAYS)]
    valid_days: u32,
    /// Days in the held-out test window.
    #[arg(long, default_value_t = repurchase_train::DEFAULT_TEST_DAYS)]
    test_days: u32,
    /// Log format (text or json); default text on a terminal.
    #[arg(long, env = "REPURCHASE_LOG_FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
}

fn main() -> ExitCode {
    let command = Cli::parse().command;
    // The workers catch their own panics (`run_worker`); `generate` and `demo` are caught here,
    // so that a panic exits 70 (a bug) on every path, not Rust's 101.
    std::panic::catch_unwind(|| dispatch(command)).unwrap_or_else(|payload| {
        eprintln!(
            "repurchase: bug: {}",
            repurchase_core::error::panic_text(payload)
        );
        exit_code(ErrorClass::Bug)
    })
}

fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Extract(a) => run_args(repurchase_extract::STAGE, a, repurchase_extract::run),
        Command::BuildFeatures(a) => {
            run_args(repurchase_features::STAGE, a, repurchase_features::run)
        }
        Command::Train(a) => run_args(repurchase_train::STAGE, a, repurchase_train::run),
        Command::Calibrate(a) => {
            run_args(repurchase_calibrate::STAGE, a, repurchase_calibrate::run)
        }
        Command::Score(a) => run_args(repurchase_score::STAGE, a, repurchase_score::run),
        Command::Generate(a) => generate(a),
        Command::Demo(a) => demo(a),
        Command::Monitor(a) => {
            let common = a.common.clone();
            run_worker("monitor", "monitor", &common, async move {
                let root = a.common.open_root()?;
                let out =
                    repurchase_cli::monitor::monitor(&root, a.common.run_date, a.days).await?;
                println!("{}", pretty(&out)?);
                Ok::<_, CliError>(out.days as u64)
            })
        }
        Command::Diagnose(a) => {
            let common = a.common.clone();
            run_worker("diagnose", "diagnose", &common, async move {
                let root = a.common.open_root()?;
                let out =
                    repurchase_cli::diagnose::diagnose(&root, a.common.run_date, a.horizon_days)
                        .await?;
                println!("{}", pretty(&out)?);
                Ok::<_, CliError>(out.closed_customers)
            })
        }
        Command::Backtest(a) => {
            let common = a.common.clone();
            run_worker("backtest", "backtest", &common, async move {
                let root = a.common.open_root()?;
                if let (Some(origins), Some(source)) = (a.origins, a.source.as_deref()) {
                    let cfg = RollingConfig {
                        source: DataRoot::open(source, &StoreConfig::from_env())?,
                        lake: root,
                        first_origin: a.common.run_date,
                        origins,
                        origin_every_days: a.origin_every_days,
                        outcome_date: a.outcome_date,
                        anchor: a.anchor,
                        flag_top_share: a.flag_top_share,
                        valid_days: a.valid_days,
                        test_days: a.test_days,
                    };
                    let report = rolling_backtest(&cfg).await?;
                    println!("{}", pretty(&report)?);
                    return Ok(report.pooled.resolved);
                }
                let report =
                    repurchase_cli::backtest::backtest(&root, a.common.run_date, a.outcome_date)
                        .await?;
                println!("{}", pretty(&report)?);
                Ok::<_, CliError>(report.resolved)
            })
        }
    }
}

fn pretty<T: serde::Serialize>(value: &T) -> Result<String, CoreError> {
    serde_json::to_string_pretty(value).map_err(|e| CoreError::Bug {
        what: "printing the report".into(),
        reason: e.to_string(),
    })
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .ok()
}

fn fail(e: &CliError) -> ExitCode {
    report_failure(e, e.class())
}

fn generate(a: GenerateArgs) -> ExitCode {
    logging::init(LogFormat::detect(None));
    let Some(rt) = runtime() else {
        return exit_code(ErrorClass::Bug);
    };
    let result: Result<(), CliError> = rt.block_on(async {
        let cfg = GenConfig::new(a.users, a.seed, a.end_date.date(), a.profile);
        let root = DataRoot::open(&a.out, &StoreConfig::from_env())?;
        let summary = repurchase_datagen::generate_into(&root, &cfg, a.format).await?;
        for (table, rows) in &summary.rows {
            println!("{table:<22} {rows:>10}");
        }
        println!("written to {root}");
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report_failure(&e, e.class()),
    }
}

fn demo(a: DemoArgs) -> ExitCode {
    logging::init(LogFormat::detect(a.log_format.as_deref()));
    let Some(rt) = runtime() else {
        return exit_code(ErrorClass::Bug);
    };
    let cfg = DemoConfig {
        users: a.users,
        seed: a.seed,
        run_date: a.run_date,
        profile: a.profile,
        anchor: a.anchor,
        dir: a.dir,
        format: OutputFormat::Csv,
        valid_days: a.valid_days,
        test_days: a.test_days,
    };
    match rt.block_on(run_demo(&cfg)) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}
