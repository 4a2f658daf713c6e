//! Logging for workers: readable lines and progress bars at a terminal, JSON lines elsewhere.
//!
//! ECS ships a task's stderr to CloudWatch, where one JSON object per line is searchable by field;
//! people at a terminal want short lines and a progress bar. Every line carries the `stage` and
//! `run_date` of the span opened by [`stage_span`].

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tracing::{Span, info, info_span};
use tracing_subscriber::EnvFilter;

/// Log format, chosen automatically unless `REPURCHASE_LOG_FORMAT=json|text` says otherwise.
/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines, with progress bars (a terminal).
    Text,
    /// One JSON object per line (CloudWatch, files, pipes).
    Json,
}

impl LogFormat {
    /// `explicit` (`json` or `text`) when given, else text on a terminal and JSON otherwise.
    pub fn detect(explicit: Option<&str>) -> LogFormat {
        match explicit {
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            _ if std::io::stderr().is_terminal() => LogFormat::Text,
            _ => LogFormat::Json,
        }
    }
}

/// Installs the global subscriber (once; later calls are ignored, which tests rely on).
/// `RUST_LOG` overrides the default `info` level.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,datafusion=warn,object_store=warn,aws=warn,hyper=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.compact().with_target(false).try_init(),
    };
}

/// Span carrying the stage name and run date; enter it for the whole run of a worker.
pub fn stage_span(stage: &'static str, run_date: &str) -> Span {
    info_span!("stage", stage, run_date)
}

/// Measures one step and logs it with its row counts when finished.
#[derive(Debug)]
pub struct StepTimer {
    step: &'static str,
    started: Instant,
}

impl StepTimer {
    /// Starts timing `step`.
    pub fn start(step: &'static str) -> Self {
        StepTimer {
            step,
            started: Instant::now(),
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Logs the step with its rows read and written and its duration, and returns the duration.
    pub fn finish(self, rows_in: u64, rows_out: u64) -> Duration {
        let elapsed = self.started.elapsed();
        info!(
            step = self.step,
            rows_in,
            rows_out,
            duration_ms = elapsed.as_millis() as u64,
            "step finished"
        );
        elapsed
    }
}

/// A progress bar when stderr is a terminal, a hidden one otherwise (JSON logs carry the figures).
pub fn progress(len: u64, message: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}
