//! The `score` worker.
//!
//! Scores `features/score` of the run date: every anchor whose 60-day window is still open on the
//! run date. Features are those of the anchor moment; `days_elapsed` days of the window have
//! passed by the end of the run date. Two probabilities are written:
//!
//! - `probability_at_anchor`: the calibrated chance of another completed order within 60 days,
//!   as it stood at the anchor (what the model was trained and evaluated for);
//! - `probability`: the chance of a repurchase in the rest of the window given that none has
//!   happened in the `days_elapsed` days so far ([`repurchase_model::timing`]). This is the one to
//!   act on; it equals the first on the day the window opens.
//!
//! "No repurchase yet" means what the timing `F(e)` was estimated from: no order created inside
//! the window that completed or is on its way. Anchors that already repurchased are reported with
//! `status = already_repurchased`, those with an order created but not yet complete (Processing or
//! Shipped on the run date) with `status = repurchase_pending`; neither gets a probability (nor is
//! decayed as open). `decile` (1 = highest tenth; equal probabilities ordered by a hash of the
//! anchor order) and `predicted_repurchase` are of `probability`: the flag is raised at the
//! served model's threshold, which was chosen for this conditional probability
//! (`calibrate`), or, with `--flag-top-share S`, for the top share `S` of the open customers
//! (a fixed campaign budget, whatever the day).
//!
//! Scoring streams the feature partition batch by batch (memory is one batch of features plus a
//! few numbers per anchor), so the population can grow. With `--shard I/N` a task scores only the
//! customers whose stable hash falls in shard I of N, into `score_shards/`; `--merge-shards N`
//! then joins the N shards into `scores/`, adding the deciles and flags (which need the whole
//! population).
//! The merged partition is byte-identical to an unsharded run, so the DAG can fan out at will.
//!
//! Every run is monitored: while scoring, the population (every anchor, open or not, at its
//! anchor) is counted into the bins of the served model's drift reference; `score` (or the merge)
//! compares it with the reference and with the previous run, publishes
//! `monitoring/run_date=D/drift.json`, and refuses the run (exit 65, no scores) when a figure
//! fails against the reference ([`repurchase_model::drift`]).
//!
//! The model is by default the champion in force on the run date: the one named by the latest
//! calibration at or before it ([`repurchase_contracts::champion`]), so a retrained model that
//! scored worse than the champion on held-out data is never served. `--model-date` overrides
//! this with any published model not after the run date.

#![warn(missing_docs, unreachable_pub)]

mod merge;
mod monitor;
mod rank;
mod shard;
mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use clap::Args as ClapArgs;
use monitor::Monitored;
use repurchase_contracts::ScoresParams;
use repurchase_contracts::params::to_value;
use repurchase_contracts::{FlagRule, files};
use repurchase_core::cli::{CommonArgs, parse_run_date};
use repurchase_core::layout::Dataset;
use repurchase_core::manifest::InputRef;
use repurchase_core::publish::{PartitionWriter, Provenance};
use repurchase_core::schema::ts_type;
use repurchase_core::{Classify, CoreError, DataRoot, ErrorClass, RunDate};
use repurchase_model::ModelError;
use repurchase_model::drift::{Level, Thresholds};
use serde::Serialize;
use tracing::info;

pub use merge::merge_shards;
pub use shard::{MAX_SHARDS, Shard, shard_of};

/// The stage name in logs, locks and manifests.
pub const STAGE: &str = "score";
/// The `--help` summary of the `score` binary.
pub const ABOUT: &str = "Scores the run date's open anchors with a calibrated model and writes probabilities and deciles.";

#[allow(missing_docs)] // clap reads doc comments here as --help text: the flags carry theirs
#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Run date of the model to use. Default: the champion named by the latest calibration at or
    /// before the run date.
    #[arg(long, env = "REPURCHASE_MODEL_DATE", value_parser = parse_run_date)]
    pub model_date: Option<RunDate>,

    /// Score only hash shard I of N of the customers (0-based), into score_shards/; merge the N
    /// shards with --merge-shards N.
    #[arg(long, value_name = "I/N", conflicts_with = "merge_shards")]
    pub shard: Option<Shard>,

    /// Join the N published shards of the run date into scores/ (adds the deciles and flags).
    #[arg(long, value_name = "N", conflicts_with = "model_date", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_SHARDS)))]
    pub merge_shards: Option<u32>,

    /// Flag the top share S of the open customers by probability (a fixed budget) instead of
    /// those at or above the model's threshold.
    #[arg(long, value_name = "S", env = "REPURCHASE_FLAG_TOP_SHARE", value_parser = parse_share)]
    pub flag_top_share: Option<f64>,

    /// Skip the reasons: leave the reason_* columns empty instead of computing each open
    /// customer's Shapley values, which cost far more per row than the score itself.
    #[arg(long, env = "REPURCHASE_NO_REASONS")]
    pub no_reasons: bool,

    /// PSI of a feature or of the score, against the model's reference or the previous run, at
    /// or above which monitoring/ warns.
    #[arg(long, env = "REPURCHASE_DRIFT_PSI_WARN", default_value_t = Thresholds::default().psi_warn, value_parser = parse_threshold)]
    pub drift_psi_warn: f64,

    /// PSI against the model's reference at or above which the run is refused (exit 65, no
    /// scores published; `off` never refuses).
    #[arg(long, env = "REPURCHASE_DRIFT_PSI_FAIL", default_value_t = Thresholds::default().psi_fail, value_parser = parse_threshold)]
    pub drift_psi_fail: f64,

    /// Rise in the share of a category the model does not know, over the reference's, at or
    /// above which monitoring/ warns.
    #[arg(long, env = "REPURCHASE_DRIFT_UNKNOWN_WARN", default_value_t = Thresholds::default().unknown_warn, value_parser = parse_threshold)]
    pub drift_unknown_warn: f64,

    /// The same rise at or above which the run is refused (`off`: never).
    #[arg(long, env = "REPURCHASE_DRIFT_UNKNOWN_FAIL", default_value_t = Thresholds::default().unknown_fail, value_parser = parse_threshold)]
    pub drift_unknown_fail: f64,

    /// Features reported but never judged, comma-separated (calendar features, whose values move
    /// with the date by construction).
    #[arg(
        long,
        env = "REPURCHASE_DRIFT_EXEMPT",
        value_delimiter = ',',
        default_value = "anchor_month"
    )]
    pub drift_exempt: Vec<String>,

    /// Compare with the drift report of this earlier date instead of the latest one before the
    /// run date (a backfill run out of order).
    #[arg(long, env = "REPURCHASE_DRIFT_PREVIOUS", value_parser = parse_run_date)]
    pub drift_previous: Option<RunDate>,

    /// Fewest rows, in the reference and in the day's population, for drift to be judged (the
    /// figures are always reported).
    #[arg(long, env = "REPURCHASE_DRIFT_MIN_ROWS", default_value_t = Thresholds::default().min_rows)]
    pub drift_min_rows: u64,
}

impl repurchase_core::cli::WorkerArgs for Args {
    fn common(&self) -> &CommonArgs {
        &self.common
    }

    /// Shards of one date run side by side, each under its own lock; whole-date scoring and the
    /// merge both write `scores/` and share the stage's.
    fn lock_name(&self, stage: &str) -> String {
        match self.shard {
            Some(Shard { index, count }) => format!("{stage}/shard={index:04}-of-{count:04}"),
            None => stage.to_string(),
        }
    }
}

/// A drift threshold: a finite number of 0 or more, or `off` (never reached; the largest finite
/// number, so the report stays valid JSON).
fn parse_threshold(s: &str) -> std::result::Result<f64, String> {
    match s.trim() {
        "off" => Ok(f64::MAX),
        t => match t.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => Err(format!(
                "{s:?} is not a threshold: a number of 0 or more, or off"
            )),
        },
    }
}

fn parse_share(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("{s:?} is not a share in (0, 1]")),
    }
}

/// Which of a calibrated run's two models scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// What production serves: the refit on every labelled anchor (`model.json`), its
    /// cross-fitted calibrator and the threshold chosen for the conditional probability.
    Served,
    /// The procedure as it was before the refit: the evaluated model (`evaluation_model.json`,
    /// trained on anchors before the validation window), the calibrator fitted on its validation
    /// window and the F1 threshold chosen at the anchor. Only the rolling backtest uses it, to
    /// measure what the refit changed.
    Evaluated,
}

/// What `score` fails with.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// Reading the features, the model or the shards, or publishing the scores.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The model or the feature batch refused (a model library error).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// `--model-date` after the run date.
    #[error(
        "--model-date {model_date} is after the run date {run_date}: a model cannot come from the future"
    )]
    ModelFromTheFuture {
        /// The model date asked for.
        model_date: RunDate,
        /// The run date.
        run_date: RunDate,
    },
    /// The model, its calibration and the decision naming it are not of one version (a date
    /// retrained since): recalibrate, or name the model.
    #[error("{0}")]
    VersionMismatch(String),
    /// The shards to merge were scored with other inputs or models.
    #[error("{0}")]
    ShardsDiffer(String),
    /// Thresholds that cannot be applied.
    #[error("{0}")]
    Settings(String),
    /// The scored population moved past a failing threshold against the served model's
    /// reference: no scores were published.
    #[error(
        "drift: the population scored on {run_date} moved away from the reference of model {model_version}: {}; no scores published. The figures are in monitoring/run_date={run_date}/drift.json: check the features' inputs, or retrain, or raise --drift-psi-fail / --drift-unknown-fail to score anyway",
        failed.join("; ")
    )]
    Drift {
        /// The run date.
        run_date: RunDate,
        /// The served model.
        model_version: String,
        /// Each failed figure, naming the feature.
        failed: Vec<String>,
    },
}

impl Classify for ScoreError {
    fn class(&self) -> ErrorClass {
        match self {
            ScoreError::Core(e) => e.class(),
            ScoreError::Model(e) => e.class(),
            ScoreError::ModelFromTheFuture { .. }
            | ScoreError::VersionMismatch(_)
            | ScoreError::ShardsDiffer(_)
            | ScoreError::Settings(_) => ErrorClass::BadInput,
            ScoreError::Drift { .. } => ErrorClass::DataRefused,
        }
    }
}

/// `score`'s results.
pub type Result<T, E = ScoreError> = std::result::Result<T, E>;

/// What `score` published.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The model served.
    pub model_version: String,
    /// Open customers given a probability.
    pub scored: u64,
    /// Rows of customers who already repurchased inside the window (no probability).
    pub already_repurchased: u64,
    /// Rows of customers with a repurchase on its way, created but not complete (no probability).
    pub repurchase_pending: u64,
    /// The drift report's level, when the run was monitored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<Level>,
}

/// Schema of `scores/` and `score_shards/`.
pub fn output_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new("anchor_order_id", DataType::Int64, false),
        Field::new("anchor_time", ts_type(), false),
        Field::new("status", DataType::Utf8, false),
        Field::new("days_elapsed", DataType::Float64, false),
        Field::new("probability", DataType::Float64, true),
        Field::new("probability_at_anchor", DataType::Float64, true),
        Field::new("decile", DataType::UInt32, true),
        Field::new("predicted_repurchase", DataType::Boolean, true),
        Field::new("model_version", DataType::Utf8, false),
        Field::new("log_odds", DataType::Float64, true),
    ];
    for slot in REASON_SLOTS {
        fields.extend([
            Field::new(slot, DataType::Utf8, true),
            Field::new(format!("{slot}_value"), DataType::Utf8, true),
            Field::new(format!("{slot}_log_odds"), DataType::Float64, true),
        ]);
    }
    Arc::new(Schema::new(fields))
}

/// The reason columns' prefixes: the three features pushing an open customer's log-odds up the
/// most, then the one pushing it down the most ([`repurchase_model::explain`]).
pub const REASON_SLOTS: [&str; 4] = ["reason_up_1", "reason_up_2", "reason_up_3", "reason_down"];
/// How many of [`REASON_SLOTS`] push up.
pub(crate) const REASONS_UP: usize = 3;

/// Which model scores, how the flag is raised and when drift refuses a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreOptions {
    /// Score with the model of this run date instead of the champion in force on the run date.
    pub model_date: Option<RunDate>,
    /// Flag the top share of the open customers (a fixed budget) instead of those at or above
    /// the model's threshold.
    pub flag_top_share: Option<f64>,
    /// Leave the reason columns empty (no Shapley values computed).
    pub no_reasons: bool,
    /// When the drift report warns and refuses, and what it compares with.
    pub drift: DriftOptions,
}

/// How a run's drift is judged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriftOptions {
    /// When a figure warns and when it refuses the run.
    pub thresholds: Thresholds,
    /// The earlier report to compare with, instead of the latest before the run date: backfills
    /// run out of order name it, so the report does not depend on which neighbour published first.
    pub previous: Option<RunDate>,
}

/// `score` as its binary runs it: the flags resolved, then [`score`] or [`score_shard`].
pub async fn run(args: Args) -> Result<Outcome> {
    let root = args.common.open_root()?;
    let d = args.common.run_date;
    let drift = Thresholds {
        psi_warn: args.drift_psi_warn,
        psi_fail: args.drift_psi_fail,
        unknown_warn: args.drift_unknown_warn,
        unknown_fail: args.drift_unknown_fail,
        exempt: args.drift_exempt,
        min_rows: args.drift_min_rows,
    };
    check_thresholds(&drift)?;
    let options = ScoreOptions {
        model_date: args.model_date,
        flag_top_share: args.flag_top_share,
        no_reasons: args.no_reasons,
        drift: DriftOptions {
            thresholds: drift,
            previous: args.drift_previous,
        },
    };
    match (args.shard, args.merge_shards) {
        (Some(shard), _) => score_shard(&root, d, shard, &options).await,
        (None, Some(n)) => merge_shards(&root, d, n, &options.drift).await,
        (None, None) => score(&root, d, &options).await,
    }
}

/// Each warning threshold at or below its failing one.
fn check_thresholds(t: &Thresholds) -> Result<()> {
    for (name, warn, fail) in [
        ("--drift-psi", t.psi_warn, t.psi_fail),
        ("--drift-unknown", t.unknown_warn, t.unknown_fail),
    ] {
        if warn > fail {
            return Err(ScoreError::Settings(format!(
                "{name}-warn {warn} is above {name}-fail {fail}: the warning must come first"
            )));
        }
    }
    Ok(())
}

/// Scores every open anchor of `run_date` into `scores/` with the served model.
pub async fn score(root: &DataRoot, run_date: RunDate, options: &ScoreOptions) -> Result<Outcome> {
    let mut scored =
        stream::score_rows(root, run_date, None, Variant::Served, options, true).await?;
    scored.batch = rank::finish(&scored.batch, scored.flag)?;
    monitor_and_publish(root, run_date, scored, &options.drift).await
}

/// Publishes the drift report of a whole day (when the model has a reference), refusing the run
/// when it fails, then the scores.
pub(crate) async fn monitor_and_publish(
    root: &DataRoot,
    run_date: RunDate,
    mut scored: Scored,
    options: &DriftOptions,
) -> Result<Outcome> {
    let mut drift = None;
    if let Some(monitored) = scored.monitored.take() {
        let report = match monitor::publish_drift(
            root,
            run_date,
            (scored.params.model_date, &scored.model_version),
            monitored,
            scored.inputs.clone(),
            options,
        )
        .await
        {
            // A refused day has no scores: an earlier run's, from other inputs, are unpublished.
            Err(e @ ScoreError::Drift { .. }) => {
                root.delete(&Dataset::Scores.manifest_path(run_date))
                    .await?;
                return Err(e);
            }
            r => r?,
        };
        scored.counters.insert(
            "drift_alerts".to_string(),
            report.comparison.alerts.len() as u64,
        );
        drift = Some(report.comparison.level);
    }
    let mut outcome = publish(root, Dataset::Scores, run_date, scored).await?;
    outcome.drift = drift;
    Ok(outcome)
}

/// The rows [`score`] would publish, scored by `variant` of the champion (or of the model of
/// `options.model_date`), returned instead of written: the rolling backtest's view of a
/// procedure that production no longer runs.
pub async fn score_in_memory(
    root: &DataRoot,
    run_date: RunDate,
    variant: Variant,
    options: &ScoreOptions,
) -> Result<RecordBatch> {
    let scored = stream::score_rows(root, run_date, None, variant, options, false).await?;
    Ok(rank::finish(&scored.batch, scored.flag)?)
}

/// Scores the open anchors of one hash shard of the customers into `score_shards/`, without
/// deciles and flags (both need the whole population; the merge adds them).
pub async fn score_shard(
    root: &DataRoot,
    run_date: RunDate,
    shard: Shard,
    options: &ScoreOptions,
) -> Result<Outcome> {
    let mut scored =
        stream::score_rows(root, run_date, Some(shard), Variant::Served, options, true).await?;
    scored.params.shard = Some(shard.to_string());
    publish(root, shard.dataset(), run_date, scored).await
}

/// Scores and what produced them, before publication.
pub(crate) struct Scored {
    /// The output rows, as published.
    pub(crate) batch: RecordBatch,
    pub(crate) params: ScoresParams,
    pub(crate) inputs: Vec<InputRef>,
    pub(crate) model_version: String,
    pub(crate) counters: BTreeMap<String, u64>,
    pub(crate) flag: FlagRule,
    /// The population counted for drift, when the run is monitored.
    pub(crate) monitored: Option<Monitored>,
}

pub(crate) async fn publish(
    root: &DataRoot,
    dataset: Dataset,
    run_date: RunDate,
    scored: Scored,
) -> Result<Outcome> {
    let schema = output_schema();
    let mut w = PartitionWriter::begin(root, dataset, run_date).await?;
    w.write_parquet("part-00000.parquet", schema.clone(), &[scored.batch])
        .await?;
    // A shard's population, for the merge to sum and judge.
    if let Some(m) = &scored.monitored {
        w.write_json(files::POPULATION, &m.population).await?;
    }
    w.commit(Provenance {
        stage: STAGE,
        parameters: to_value(&scored.params)?,
        schema: Some(&schema),
        inputs: scored.inputs,
        counters: scored.counters.clone(),
    })
    .await?;
    let count = |k: &str| scored.counters.get(k).copied().unwrap_or(0);
    info!(dataset = %dataset, scored = count("scored"), already_repurchased = count("already_repurchased"), repurchase_pending = count("repurchase_pending"), model_version = %scored.model_version, "scores written");
    Ok(Outcome {
        scored: count("scored"),
        already_repurchased: count("already_repurchased"),
        repurchase_pending: count("repurchase_pending"),
        model_version: scored.model_version,
        drift: None,
    })
}

pub(crate) fn bad(msg: &str) -> CoreError {
    CoreError::BadTable {
        table: "features/score".into(),
        message: msg.to_string(),
    }
}

pub(crate) fn int64<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Int64Array, CoreError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .ok_or_else(|| bad(&format!("column {name} missing or not an integer")))
}
