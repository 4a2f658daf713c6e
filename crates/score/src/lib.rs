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
//! The model is by default the champion in force on the run date: the one named by the latest
//! calibration at or before it ([`repurchase_contracts::champion`]), so a retrained model that
//! scored worse than the champion on held-out data is never served. `--model-date` overrides
//! this with any published model not after the run date.

#![warn(missing_docs, unreachable_pub)]

mod merge;
mod rank;
mod shard;
mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use clap::Args as ClapArgs;
use repurchase_contracts::FlagRule;
use repurchase_contracts::ScoresParams;
use repurchase_contracts::params::to_value;
use repurchase_core::cli::{CommonArgs, parse_run_date};
use repurchase_core::layout::Dataset;
use repurchase_core::manifest::InputRef;
use repurchase_core::publish::{PartitionWriter, Provenance};
use repurchase_core::schema::ts_type;
use repurchase_core::{Classify, CoreError, DataRoot, ErrorClass, RunDate};
use repurchase_model::ModelError;
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
}

impl Classify for ScoreError {
    fn class(&self) -> ErrorClass {
        match self {
            ScoreError::Core(e) => e.class(),
            ScoreError::Model(e) => e.class(),
            ScoreError::ModelFromTheFuture { .. }
            | ScoreError::VersionMismatch(_)
            | ScoreError::ShardsDiffer(_) => ErrorClass::BadInput,
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

/// Which model scores and how the flag is raised.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScoreOptions {
    /// Score with the model of this run date instead of the champion in force on the run date.
    pub model_date: Option<RunDate>,
    /// Flag the top share of the open customers (a fixed budget) instead of those at or above
    /// the model's threshold.
    pub flag_top_share: Option<f64>,
    /// Leave the reason columns empty (no Shapley values computed).
    pub no_reasons: bool,
}

/// `score` as its binary runs it: the flags resolved, then [`score`] or [`score_shard`].
pub async fn run(args: Args) -> Result<Outcome> {
    let root = args.common.open_root()?;
    let d = args.common.run_date;
    let options = ScoreOptions {
        model_date: args.model_date,
        flag_top_share: args.flag_top_share,
        no_reasons: args.no_reasons,
    };
    match (args.shard, args.merge_shards) {
        (Some(shard), _) => score_shard(&root, d, shard, &options).await,
        (None, Some(n)) => merge_shards(&root, d, n).await,
        (None, None) => score(&root, d, &options).await,
    }
}

/// Scores every open anchor of `run_date` into `scores/` with the served model.
pub async fn score(root: &DataRoot, run_date: RunDate, options: &ScoreOptions) -> Result<Outcome> {
    let mut scored = stream::score_rows(root, run_date, None, Variant::Served, options).await?;
    scored.batch = rank::finish(&scored.batch, scored.flag)?;
    publish(root, Dataset::Scores, run_date, scored).await
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
    let scored = stream::score_rows(root, run_date, None, variant, options).await?;
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
        stream::score_rows(root, run_date, Some(shard), Variant::Served, options).await?;
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
