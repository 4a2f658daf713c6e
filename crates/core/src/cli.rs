//! What every worker binary shares at its edge: the common flags, logging set-up, the tokio
//! runtime, and turning a result into a process exit code.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tracing::{Instrument, error, info};

use crate::config::StoreConfig;
use crate::error::{CoreError, ErrorClass};
use crate::lock::{LockSettings, StageLock};
use crate::logging::{self, LogFormat};
use crate::run_date::RunDate;
use crate::storage::DataRoot;

/// Flags every worker takes.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Run date to process, YYYY-MM-DD. Data created before the end of this day (UTC) is in scope.
    #[arg(long, env = "REPURCHASE_RUN_DATE", value_parser = parse_run_date)]
    pub run_date: RunDate,

    /// Root of all datasets: file:///path, a plain path, s3://bucket/prefix or memory://name.
    #[arg(long, env = "REPURCHASE_DATA_ROOT")]
    pub data_root: String,

    /// Log format: text (readable, with progress bars) or json (one object per line, for
    /// CloudWatch). Default: text on a terminal, json otherwise.
    #[arg(long, env = "REPURCHASE_LOG_FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,

    /// Who runs this stage, recorded in its lock (`_locks/<stage>/run_date=D.json`): a run with
    /// the same owner takes a leftover lock over at once, so pass the Airflow task instance (the
    /// DAG does) and its retries recover from a killed attempt. Default: this host and process.
    #[arg(long, env = "REPURCHASE_LOCK_OWNER")]
    pub lock_owner: Option<String>,

    /// Lease of the stage's lock, in seconds, renewed every fifth of it while the stage runs. A
    /// run that died holds its lock until the lease ends; a second run meanwhile exits 75.
    #[arg(long, env = "REPURCHASE_LOCK_LEASE_SECS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub lock_lease_secs: u64,
}

impl CommonArgs {
    /// Opens the data root with the object-store configuration read from the environment.
    pub fn open_root(&self) -> Result<DataRoot, CoreError> {
        DataRoot::open(&self.data_root, &StoreConfig::from_env())
    }

    pub fn lock_settings(&self) -> LockSettings {
        LockSettings::new(
            self.lock_owner.as_deref(),
            Duration::from_secs(self.lock_lease_secs),
        )
    }
}

pub fn parse_run_date(s: &str) -> Result<RunDate, String> {
    s.parse::<RunDate>().map_err(|e| e.to_string())
}

/// Exit code of a failed worker, by error class.
pub fn exit_code(class: ErrorClass) -> ExitCode {
    ExitCode::from(class.exit_code())
}

/// Runs a worker's future on a multi-threaded runtime inside its `stage` span, holding the lock
/// `lock` for the run date (see [`crate::lock`]: a second run of it meanwhile exits 75), and maps
/// the outcome to an exit code: 0, 2 (bad input), 75 (transient, retry), 70 (bug).
pub fn run_worker<F, T>(stage: &'static str, lock: &str, common: &CommonArgs, fut: F) -> ExitCode
where
    F: Future<Output = Result<T, CoreError>>,
    T: std::fmt::Debug,
{
    logging::init(LogFormat::detect(common.log_format.as_deref()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return exit_code(ErrorClass::Bug);
        }
    };
    let span = logging::stage_span(stage, &common.run_date.to_string());
    let timer = logging::StepTimer::start(stage);
    let locked = async {
        let root = common.open_root()?;
        let held =
            StageLock::acquire(&root, lock, common.run_date, &common.lock_settings()).await?;
        let spec = common.data_root.clone();
        held.hold(move || DataRoot::open(&spec, &StoreConfig::from_env()), fut)
            .await
    };
    let result = runtime.block_on(locked.instrument(span.clone()));
    let _guard = span.enter();
    match result {
        Ok(outcome) => {
            info!(duration_ms = timer.elapsed().as_millis() as u64, outcome = ?outcome, "stage succeeded");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let class = e.class();
            error!(error = %error_chain(&e), class = ?class, exit_code = class.exit_code(), "stage failed");
            exit_code(class)
        }
    }
}

/// The error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let msg = inner.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = inner.source();
    }
    s
}
