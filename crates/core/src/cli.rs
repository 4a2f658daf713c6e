//! What every worker binary shares at its edge: the common flags, logging set-up, the tokio
//! runtime, and turning a result into a process exit code.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tracing::{Instrument, error, info};

use crate::config::StoreConfig;
use crate::error::{Classify, CoreError, ErrorClass};
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

    /// The lock owner and lease from `--lock-owner` and `--lock-lease-secs`.
    pub fn lock_settings(&self) -> LockSettings {
        LockSettings::new(
            self.lock_owner.as_deref(),
            Duration::from_secs(self.lock_lease_secs),
        )
    }
}

/// clap's parser for run-date flags.
pub fn parse_run_date(s: &str) -> Result<RunDate, String> {
    s.parse::<RunDate>().map_err(|e| e.to_string())
}

/// Exit code of a failed worker, by error class.
pub fn exit_code(class: ErrorClass) -> ExitCode {
    ExitCode::from(class.exit_code())
}

/// What whoever runs the worker should do about a failure of `class`: the one place the exit
/// codes' retry policy is put into words (the libraries only classify).
pub fn advice(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::BadInput => {
            "exit 2: bad input or configuration; a retry fails the same way, fix it and rerun"
        }
        ErrorClass::Transient => "exit 75: transient; the DAG retries the task later",
        ErrorClass::Bug => "exit 70: a bug in this program; report it with this log",
        ErrorClass::DataRefused => {
            "exit 65: refused by a quality gate; the data's owners look before a rerun"
        }
    }
}

/// Logs a failure with its class, exit code and advice, and returns the exit code.
pub fn report_failure(e: &dyn std::error::Error, class: ErrorClass) -> ExitCode {
    error!(error = %error_chain(e), class = ?class, exit_code = class.exit_code(), advice = advice(class), "stage failed");
    exit_code(class)
}

/// A worker's flags, as the binary edge needs them beyond parsing.
pub trait WorkerArgs: clap::Args + clap::FromArgMatches {
    /// The flags every worker takes.
    fn common(&self) -> &CommonArgs;

    /// Name of this run's lock (see [`crate::lock`]): the stage's, unless runs of one stage and
    /// date may go side by side (score's shards).
    fn lock_name(&self, stage: &str) -> String {
        stage.to_string()
    }
}

/// A worker binary's flags: parses `A` from the command line under `stage` (with `about` as the
/// help's summary), exiting with clap's message and code on a usage error. A worker's `main` hands
/// them to [`run_args`].
pub fn parse_args<A: WorkerArgs>(stage: &'static str, about: &'static str) -> A {
    // The summary goes on after the flags: a flattened struct's doc comment would replace it.
    let mut command = A::augment_args(clap::Command::new(stage).version(env!("CARGO_PKG_VERSION")))
        .about(about)
        .long_about(None);
    let mut matches = command.clone().get_matches();
    A::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.format(&mut command).exit())
}

/// Runs a worker on parsed flags: its lock, its span, its exit code ([`run_worker`]).
pub fn run_args<A, F, Fut, T, E>(stage: &'static str, args: A, run: F) -> ExitCode
where
    A: WorkerArgs,
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    T: std::fmt::Debug,
    E: Classify + From<CoreError>,
{
    let common = args.common().clone();
    let lock = args.lock_name(stage);
    run_worker(stage, &lock, &common, run(args))
}

/// Runs a worker's future on a multi-threaded runtime inside its `stage` span, holding the lock
/// `lock` for the run date (see [`crate::lock`]: a second run of it meanwhile exits 75), and maps
/// the outcome to an exit code: 0, 2 (bad input), 75 (transient, retry), 70 (bug).
pub fn run_worker<F, T, E>(stage: &'static str, lock: &str, common: &CommonArgs, fut: F) -> ExitCode
where
    F: Future<Output = Result<T, E>>,
    T: std::fmt::Debug,
    E: Classify + From<CoreError>,
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
        let held = StageLock::acquire(&root, lock, common.run_date, &common.lock_settings())
            .await
            .map_err(E::from)?;
        let spec = common.data_root.clone();
        held.hold(move || DataRoot::open(&spec, &StoreConfig::from_env()), fut)
            .await
    };
    // A panic anywhere under the worker (an `expect` on a broken invariant, a rayon task) is a
    // bug: exit 70, not Rust's 101, so the scheduler's routing by exit code holds.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(locked.instrument(span.clone()))
    }))
    .unwrap_or_else(|payload| {
        Err(E::from(CoreError::Bug {
            what: stage.to_string(),
            reason: format!("panicked: {}", crate::error::panic_text(payload)),
        }))
    });
    let _guard = span.enter();
    match result {
        Ok(outcome) => {
            info!(duration_ms = timer.elapsed().as_millis() as u64, outcome = ?outcome, "stage succeeded");
            ExitCode::SUCCESS
        }
        Err(e) => report_failure(&e, e.class()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn common(root: &std::path::Path) -> CommonArgs {
        CommonArgs {
            run_date: "2025-06-30".parse().unwrap(),
            data_root: root.display().to_string(),
            log_format: Some("json".into()),
            lock_owner: Some("unit-test".into()),
            lock_lease_secs: 60,
        }
    }

    #[test]
    fn outcomes_map_to_exit_codes_and_a_panic_is_a_bug() {
        let dir = tempfile::tempdir().unwrap();
        let common = common(dir.path());
        let ok = run_worker("unit", "unit-ok", &common, async { Ok::<_, CoreError>(1) });
        assert_eq!(ok, ExitCode::SUCCESS);
        let bad = run_worker("unit", "unit-bad", &common, async {
            Err::<u8, _>(CoreError::InvalidRunDate { value: "no".into() })
        });
        assert_eq!(bad, ExitCode::from(2));
        let panicked = run_worker("unit", "unit-panic", &common, async {
            let v: Vec<u8> = Vec::new();
            Ok::<_, CoreError>(v[usize::from(v.is_empty())])
        });
        assert_eq!(panicked, ExitCode::from(70));
        let joined = run_worker("unit", "unit-join", &common, async {
            tokio::task::spawn_blocking(|| -> u8 { panic!("inside a blocking task") })
                .await
                .map_err(|e| CoreError::task("the unit test", e))
        });
        assert_eq!(joined, ExitCode::from(70));
    }

    #[test]
    fn a_join_error_names_the_task_and_the_panic() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = rt
            .block_on(async {
                tokio::task::spawn_blocking(|| -> u8 { panic!("boom {}", 7) }).await
            })
            .unwrap_err();
        let e = CoreError::task("sorting orders", e);
        assert_eq!(e.class(), ErrorClass::Bug);
        assert_eq!(
            e.to_string(),
            "bug in sorting orders: the task panicked: boom 7"
        );
    }
}
