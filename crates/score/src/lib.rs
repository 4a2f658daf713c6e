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
//! calibration at or before it ([`repurchase_calibrate::champion`]), so a retrained model that
//! scored worse than the champion on held-out data is never served. `--model-date` overrides
//! this with any published model not after the run date.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use clap::Args as ClapArgs;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use repurchase_calibrate::champion::champion_on;
use repurchase_core::cli::{CommonArgs, parse_run_date};
use repurchase_core::hash::{mix64, tie_break};
use repurchase_core::layout::Dataset;
use repurchase_core::logging::StepTimer;
use repurchase_core::manifest::{InputRef, Manifest};
use repurchase_core::parquet_io::register_partition;
use repurchase_core::publish::PartitionWriter;
use repurchase_core::run_date::DAY_US;
use repurchase_core::schema::ts_type;
use repurchase_core::{CoreError, DataRoot, Result, RunDate};
use repurchase_model::ModelArtifact;
use repurchase_model::booster::Predictor;
use repurchase_model::calibration::Calibrator;
use repurchase_model::io::{read_artifact, read_json_artifact};
use repurchase_model::timing::RepurchaseTiming;
use serde::{Deserialize, Serialize};
use tracing::info;

pub const STAGE: &str = "score";

/// Most shards a run may be split into.
pub const MAX_SHARDS: u32 = 4096;

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
}

impl Args {
    /// Name of this run's lock: shards of one date run side by side, each under its own lock;
    /// whole-date scoring and the merge both write `scores/` and share `score`.
    pub fn lock_name(&self) -> String {
        match self.shard {
            Some(Shard { index, count }) => format!("{STAGE}/shard={index:04}-of-{count:04}"),
            None => STAGE.to_string(),
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

/// Which open customers `predicted_repurchase` flags.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum FlagRule {
    /// `probability` at or above the served model's threshold.
    Threshold { threshold: f64 },
    /// The top `share` of the open customers by `probability` (at least one when any is open).
    TopShare { share: f64 },
}

/// One hash shard of the customers: those with `shard_of(user_id, count) == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a shard I/N with 0 <= I < N <= {MAX_SHARDS}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || count > MAX_SHARDS || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    fn dataset(self) -> Dataset {
        Dataset::ScoreShard {
            index: self.index,
            count: self.count,
        }
    }
}

/// Shard of a customer: a fixed mix of its id ([`repurchase_core::hash::mix64`]), so a customer
/// stays in the same shard for ever.
pub fn shard_of(user_id: i64, count: u32) -> u32 {
    (mix64(user_id as u64) % u64::from(count.max(1))) as u32
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub model_version: String,
    pub scored: u64,
    pub already_repurchased: u64,
    pub repurchase_pending: u64,
}

pub fn output_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
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
    ]))
}

pub async fn run(args: Args) -> Result<Outcome> {
    let root = args.common.open_root()?;
    let d = args.common.run_date;
    let top = args.flag_top_share;
    match (args.shard, args.merge_shards) {
        (Some(shard), _) => score_shard(&root, d, args.model_date, shard, top).await,
        (None, Some(n)) => merge_shards(&root, d, n).await,
        (None, None) => score_with(&root, d, args.model_date, top).await,
    }
}

/// Scores every open anchor of `run_date` into `scores/`, flagging at the model's threshold.
pub async fn score(
    root: &DataRoot,
    run_date: RunDate,
    model_date: Option<RunDate>,
) -> Result<Outcome> {
    score_with(root, run_date, model_date, None).await
}

/// [`score`], flagging the top `flag_top_share` of the open customers when given.
pub async fn score_with(
    root: &DataRoot,
    run_date: RunDate,
    model_date: Option<RunDate>,
    flag_top_share: Option<f64>,
) -> Result<Outcome> {
    let mut scored = score_rows(
        root,
        run_date,
        model_date,
        None,
        flag_top_share,
        Variant::Served,
    )
    .await?;
    scored.batch = finish(&scored.batch, scored.flag)?;
    publish(root, Dataset::Scores, run_date, scored).await
}

/// The rows [`score_with`] would publish, scored by `variant` of the champion (or of
/// `model_date`), returned instead of written: the rolling backtest's view of a procedure that
/// production no longer runs.
pub async fn score_in_memory(
    root: &DataRoot,
    run_date: RunDate,
    model_date: Option<RunDate>,
    variant: Variant,
    flag_top_share: Option<f64>,
) -> Result<RecordBatch> {
    let scored = score_rows(root, run_date, model_date, None, flag_top_share, variant).await?;
    finish(&scored.batch, scored.flag)
}

/// Scores the open anchors of one hash shard of the customers into `score_shards/`, without
/// deciles and flags (both need the whole population; the merge adds them).
pub async fn score_shard(
    root: &DataRoot,
    run_date: RunDate,
    model_date: Option<RunDate>,
    shard: Shard,
    flag_top_share: Option<f64>,
) -> Result<Outcome> {
    let mut scored = score_rows(
        root,
        run_date,
        model_date,
        Some(shard),
        flag_top_share,
        Variant::Served,
    )
    .await?;
    scored.params["shard"] = serde_json::json!(shard.to_string());
    publish(root, shard.dataset(), run_date, scored).await
}

/// Scores and what produced them, before publication.
struct Scored {
    /// The output rows, as published.
    batch: RecordBatch,
    params: serde_json::Value,
    inputs: Vec<InputRef>,
    model_version: String,
    counters: BTreeMap<String, u64>,
    flag: FlagRule,
}

async fn score_rows(
    root: &DataRoot,
    run_date: RunDate,
    model_date: Option<RunDate>,
    shard: Option<Shard>,
    flag_top_share: Option<f64>,
    variant: Variant,
) -> Result<Scored> {
    let (model_date, decision_input, named) = match model_date {
        Some(d) if d > run_date => {
            return Err(CoreError::Invalid(format!(
                "--model-date {d} is after the run date {run_date}: a model cannot come from the future"
            )));
        }
        Some(d) => (d, None, None),
        None => {
            let (champion, decision) = champion_on(root, run_date).await?;
            (
                champion.model_date,
                Some(decision.clone()),
                Some((champion.model_version, decision)),
            )
        }
    };
    let timer = StepTimer::start("score");
    let model_file = match variant {
        Variant::Served => "model.json",
        Variant::Evaluated => "evaluation_model.json",
    };
    let (model_bytes, model_manifest, model_input) =
        read_artifact(root, Dataset::Model, model_date, model_file).await?;
    let model = ModelArtifact::from_bytes(&model_bytes)?;
    let predictor = model.predictor()?;
    let (mut cal, metrics, cal_input) =
        repurchase_calibrate::read_calibration(root, model_date).await?;
    check_versions(
        root,
        model_date,
        &model_manifest,
        &metrics.model_version,
        named.as_ref(),
    )?;
    let (model_version, threshold) = match variant {
        Variant::Served => (metrics.model_version.clone(), metrics.threshold),
        Variant::Evaluated => {
            cal = read_json_artifact(
                root,
                Dataset::Calibration,
                model_date,
                repurchase_calibrate::EVALUATION_CALIBRATOR_FILE,
            )
            .await?
            .0;
            (
                metrics.evaluated_model_version.clone(),
                metrics.threshold_at_anchor,
            )
        }
    };
    let timing = repurchase_calibrate::read_timing(root, model_date).await?;

    let ctx = SessionContext::new();
    let (_, features_input) =
        register_partition(&ctx, root, Dataset::FeaturesScore, run_date, "features").await?;
    let features = ctx
        .table("features")
        .await
        .map_err(|e| CoreError::query("read features/score", e))?;
    predictor.check_schema(features.schema().as_arrow())?;
    // Only the columns the trees split on are read and decoded, with what each row reports.
    let mut columns: Vec<&str> = [
        "user_id",
        "order_id",
        "anchor_time",
        "repurchased_so_far",
        "repurchase_pending",
    ]
    .into_iter()
    .filter(|c| features.schema().has_column_with_unqualified_name(c))
    .collect();
    columns.extend(predictor.input_columns());
    let stream = features
        .select_columns(&columns)
        .map_err(|e| CoreError::query("read features/score", e))?
        .execute_stream()
        .await
        .map_err(|e| CoreError::query("read features/score", e))?;

    let scorer = Arc::new(BatchScorer {
        predictor,
        cal,
        timing,
        run_end: run_date.end_exclusive_micros(),
        shard,
    });
    // Decoding runs on the runtime's workers; predicting on the blocking pool, one batch per core
    // at a time. Rows are sorted at the end, so the order parts arrive in does not matter.
    let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut parts = stream
        .map(|batch| {
            let scorer = scorer.clone();
            async move {
                let batch = batch.map_err(|e| CoreError::query("read features/score", e))?;
                tokio::task::spawn_blocking(move || scorer.score(&batch))
                    .await
                    .map_err(|e| CoreError::Invalid(format!("scoring task failed: {e}")))?
            }
        })
        .buffered(parallel);
    let mut rows = Rows::default();
    let mut rows_in = 0u64;
    while let Some(part) = parts.next().await {
        let (n_in, part) = part?;
        rows_in += n_in;
        rows.extend(part);
    }
    let count = |status: Status| rows.status.iter().filter(|s| **s == status).count() as u64;
    let counters = BTreeMap::from([
        ("scored".to_string(), count(Status::Open)),
        (
            "already_repurchased".to_string(),
            count(Status::AlreadyRepurchased),
        ),
        ("repurchase_pending".to_string(), count(Status::Pending)),
    ]);
    let scored = count(Status::Open);
    let batch = rows.into_batch(&model_version)?;
    timer.finish(rows_in, scored);
    let flag = match flag_top_share {
        Some(share) => FlagRule::TopShare { share },
        None => FlagRule::Threshold { threshold },
    };
    let params = serde_json::json!({
        "model_date": model_date.to_string(),
        "model_version": model_version,
        "threshold": threshold,
        "flag": flag,
    });
    let mut inputs = vec![features_input, model_input];
    // The decision naming the champion, when it is not the champion's own calibration.
    inputs.extend(decision_input.filter(|d| *d != cal_input));
    inputs.push(cal_input);
    Ok(Scored {
        batch,
        params,
        inputs,
        model_version,
        counters,
        flag,
    })
}

/// The champion is resolved by version: the model of `model_date` must still be the one the
/// decision in force names (`named`: version and decision), and its calibration must be of that
/// same model. A retrain of the champion's date since then (with or without a recalibration)
/// would otherwise be served under the old decision, or with another model's calibrator.
fn check_versions(
    root: &DataRoot,
    model_date: RunDate,
    model_manifest: &Manifest,
    calibrated_version: &str,
    named: Option<&(String, InputRef)>,
) -> Result<()> {
    let published = model_manifest
        .parameters
        .get("model_version")
        .and_then(|v| v.as_str())
        .ok_or_else(|| CoreError::BadManifest {
            path: root.url(&Dataset::Model.manifest_path(model_date)),
            reason: "parameters name no model_version".into(),
        })?;
    if let Some((version, decision)) = named
        && version != published
    {
        return Err(CoreError::Invalid(format!(
            "the decision in force ({} of {}) names champion {version}, but \
             models/run_date={model_date} now holds {published}: that date was retrained since. \
             Recalibrate to decide again, or score with --model-date",
            decision.dataset, decision.run_date
        )));
    }
    if calibrated_version != published {
        return Err(CoreError::Invalid(format!(
            "models/run_date={model_date} holds {published}, but its calibration is of \
             {calibrated_version}: recalibrate {model_date} before scoring with it"
        )));
    }
    Ok(())
}

/// Where an anchor stands on the run date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// No order inside the window that completed or is on its way: scored.
    Open,
    /// An order inside the window was created but is not complete yet (Processing, Shipped).
    Pending,
    AlreadyRepurchased,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Pending => "repurchase_pending",
            Status::AlreadyRepurchased => "already_repurchased",
        }
    }
}

/// Per-anchor results, a few numbers each, accumulated across batches.
#[derive(Default)]
struct Rows {
    user_id: Vec<i64>,
    order_id: Vec<i64>,
    anchor_us: Vec<i64>,
    status: Vec<Status>,
    elapsed: Vec<f64>,
    prob: Vec<Option<f64>>,
    at_anchor: Vec<Option<f64>>,
}

impl Rows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        user_id: i64,
        order_id: i64,
        anchor_us: i64,
        status: Status,
        elapsed: f64,
        prob: Option<f64>,
        at_anchor: Option<f64>,
    ) {
        self.user_id.push(user_id);
        self.order_id.push(order_id);
        self.anchor_us.push(anchor_us);
        self.status.push(status);
        self.elapsed.push(elapsed);
        self.prob.push(prob);
        self.at_anchor.push(at_anchor);
    }

    fn extend(&mut self, other: Rows) {
        self.user_id.extend(other.user_id);
        self.order_id.extend(other.order_id);
        self.anchor_us.extend(other.anchor_us);
        self.status.extend(other.status);
        self.elapsed.extend(other.elapsed);
        self.prob.extend(other.prob);
        self.at_anchor.extend(other.at_anchor);
    }

    /// The output batch without deciles and flags, sorted by anchor time then anchor order
    /// (DataFusion may read files and row groups in any order).
    fn into_batch(self, model_version: &str) -> Result<RecordBatch> {
        let n = self.user_id.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(self.user_id)),
            Arc::new(Int64Array::from(self.order_id)),
            Arc::new(TimestampMicrosecondArray::from(self.anchor_us).with_timezone("UTC")),
            Arc::new(StringArray::from_iter_values(
                self.status.iter().map(|s| s.as_str()),
            )),
            Arc::new(Float64Array::from(self.elapsed)),
            Arc::new(Float64Array::from(self.prob)),
            Arc::new(Float64Array::from(self.at_anchor)),
            Arc::new(UInt32Array::from(vec![None::<u32>; n])),
            Arc::new(BooleanArray::from(vec![None::<bool>; n])),
            Arc::new(StringArray::from(vec![model_version; n])),
        ];
        let batch = RecordBatch::try_new(output_schema(), columns)
            .map_err(|e| CoreError::arrow("scores", e))?;
        sorted(&batch)
    }
}

/// Everything needed to score one batch of features, shared by the scoring tasks.
struct BatchScorer {
    predictor: Predictor,
    cal: Calibrator,
    timing: RepurchaseTiming,
    run_end: i64,
    shard: Option<Shard>,
}

impl BatchScorer {
    /// Rows read and the scored rows of one feature batch (of this shard's customers).
    fn score(&self, batch: &RecordBatch) -> Result<(u64, Rows)> {
        let rows_in = batch.num_rows() as u64;
        let mut rows = Rows::default();
        let batch = match self.shard {
            Some(s) => {
                let users = int64(batch, "user_id")?;
                let keep: BooleanArray = users
                    .iter()
                    .map(|u| Some(u.is_some_and(|u| shard_of(u, s.count) == s.index)))
                    .collect();
                arrow::compute::filter_record_batch(batch, &keep)
                    .map_err(|e| CoreError::arrow("shard filter", e))?
            }
            None => batch.clone(),
        };
        if batch.num_rows() == 0 {
            return Ok((rows_in, rows));
        }
        // Anchors that already repurchased, or have a repurchase on its way, are reported, not
        // predicted.
        let flag = |name: &str| -> Result<Vec<bool>> {
            match batch.column_by_name(name) {
                Some(c) => Ok(c
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .ok_or_else(|| bad(&format!("{name} is not an integer")))?
                    .iter()
                    .map(|v| v == Some(1))
                    .collect()),
                None => Ok(vec![false; batch.num_rows()]),
            }
        };
        let (done, pending) = (flag("repurchased_so_far")?, flag("repurchase_pending")?);
        let status: Vec<Status> = done
            .iter()
            .zip(&pending)
            .map(|(&d, &p)| match (d, p) {
                (true, _) => Status::AlreadyRepurchased,
                (false, true) => Status::Pending,
                (false, false) => Status::Open,
            })
            .collect();
        let open_mask = BooleanArray::from(
            status
                .iter()
                .map(|s| *s == Status::Open)
                .collect::<Vec<_>>(),
        );
        let open = arrow::compute::filter_record_batch(&batch, &open_mask)
            .map_err(|e| CoreError::arrow("open anchors", e))?;
        let mut raw = self.predictor.predict_batch(&open)?.into_iter();
        let users = int64(&batch, "user_id")?;
        let orders = int64(&batch, "order_id")?;
        let anchors = batch
            .column_by_name("anchor_time")
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .ok_or_else(|| bad("anchor_time missing or not a timestamp"))?;
        for (i, &st) in status.iter().enumerate() {
            let anchor_us = anchors.value(i);
            let elapsed = (self.run_end - anchor_us) as f64 / DAY_US as f64;
            let (at_anchor, prob) = if st == Status::Open {
                let p = self
                    .cal
                    .predict(raw.next().ok_or_else(|| bad("prediction count"))?);
                (Some(p), Some(self.timing.conditional(p, elapsed)))
            } else {
                (None, None)
            };
            rows.push(
                users.value(i),
                orders.value(i),
                anchor_us,
                st,
                elapsed,
                prob,
                at_anchor,
            );
        }
        Ok((rows_in, rows))
    }
}

/// `batch` sorted by anchor time, then anchor order (a plain key sort: arrow's generic lexsort
/// compared through dynamic comparators and took a tenth of scoring time at 2M rows).
fn sorted(batch: &RecordBatch) -> Result<RecordBatch> {
    let anchors = batch
        .column_by_name("anchor_time")
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
        .ok_or_else(|| bad("anchor_time missing or not a timestamp"))?;
    let orders = int64(batch, "anchor_order_id")?;
    let mut keys: Vec<(i64, i64, u32)> = anchors
        .values()
        .iter()
        .zip(orders.values().iter())
        .zip(0u32..)
        .map(|((&a, &o), i)| (a, o, i))
        .collect();
    // A stable (run-adaptive) sort: each feature file arrives already in anchor order.
    keys.sort();
    let idx = UInt32Array::from_iter_values(keys.into_iter().map(|k| k.2));
    take_record_batch(batch, &idx).map_err(|e| CoreError::arrow("sort scores", e))
}

/// Fills `decile` (1 = highest tenth of `probability` among open anchors; ties by a hash of the
/// anchor order) and `predicted_repurchase` by `flag`: both need the whole population.
fn finish(batch: &RecordBatch, flag: FlagRule) -> Result<RecordBatch> {
    let probs = batch
        .column_by_name("probability")
        .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
        .ok_or_else(|| bad("probability missing"))?;
    let orders = int64(batch, "anchor_order_id")?;
    let keys: Vec<(f64, i64, usize)> = (0..batch.num_rows())
        .filter(|&i| probs.is_valid(i))
        .map(|i| (probs.value(i), orders.value(i), i))
        .collect();
    let mut decile = vec![None; batch.num_rows()];
    let mut flagged: Vec<Option<bool>> = (0..batch.num_rows())
        .map(|i| probs.is_valid(i).then_some(false))
        .collect();
    match flag {
        FlagRule::Threshold { threshold } => {
            for &(p, _, i) in &keys {
                flagged[i] = Some(p >= threshold);
            }
        }
        FlagRule::TopShare { share } => {
            for i in top_share(&keys, share) {
                flagged[i] = Some(true);
            }
        }
    }
    for (&(_, _, i), d) in keys.iter().zip(deciles(&keys)) {
        decile[i] = Some(d);
    }
    let schema = output_schema();
    let index = |name: &str| {
        schema
            .index_of(name)
            .map_err(|e| CoreError::arrow("scores", e))
    };
    let mut columns = batch.columns().to_vec();
    columns[index("decile")?] = Arc::new(UInt32Array::from(decile));
    columns[index("predicted_repurchase")?] = Arc::new(BooleanArray::from(flagged));
    RecordBatch::try_new(batch.schema(), columns).map_err(|e| CoreError::arrow("deciles", e))
}

/// Row indices of the first `ceil(share · n)` keys by [`rank_order`] (the budget's customers).
fn top_share(keys: &[(f64, i64, usize)], share: f64) -> Vec<usize> {
    let n = keys.len();
    let k = ((share * n as f64) - 1e-9).ceil().clamp(0.0, n as f64) as usize;
    let k = if n > 0 { k.max(1) } else { 0 };
    let mut work = keys.to_vec();
    if k < n {
        work.select_nth_unstable_by(k, rank_order);
    }
    work[..k].iter().map(|key| key.2).collect()
}

/// Rank order of the deciles: highest probability first, ties by a hash of the anchor order
/// (unrelated to time), then the order and the row (so every key is distinct and the ranks are
/// one total order).
fn rank_order(a: &(f64, i64, usize), b: &(f64, i64, usize)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0)
        .then_with(|| tie_break(a.1).cmp(&tie_break(b.1)))
        .then(a.1.cmp(&b.1))
        .then(a.2.cmp(&b.2))
}

/// `decile_of(rank, n)` of every key by [`rank_order`], without sorting them all: the keys at
/// the nine ranks where a decile starts are selected (linear time), and each key's decile is the
/// number of those starts at or before it.
fn deciles(keys: &[(f64, i64, usize)]) -> Vec<u32> {
    let n = keys.len();
    let mut work = keys.to_vec();
    let mut starts = Vec::with_capacity(9);
    let mut lo = 0;
    for d in 1..10usize {
        // The first rank r with decile_of(r, n) = d + 1: the least r with 10·r ≥ d·n.
        let r = (d * n).div_ceil(10);
        if r >= n {
            break;
        }
        if r >= lo {
            work[lo..].select_nth_unstable_by(r - lo, rank_order);
            lo = r;
        }
        starts.push(work[r]);
    }
    keys.iter()
        .map(|k| 1 + starts.iter().filter(|s| rank_order(s, k).is_le()).count() as u32)
        .collect()
}

async fn publish(
    root: &DataRoot,
    dataset: Dataset,
    run_date: RunDate,
    scored: Scored,
) -> Result<Outcome> {
    let schema = output_schema();
    let mut w = PartitionWriter::begin(root, dataset, run_date).await?;
    w.write_parquet("part-00000.parquet", schema.clone(), &[scored.batch])
        .await?;
    w.commit(
        STAGE,
        scored.params,
        Some(&schema),
        scored.inputs,
        scored.counters.clone(),
    )
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

/// Joins the `count` published shards of `run_date` into `scores/`: the same rows, order, deciles,
/// parameters and inputs as scoring unsharded.
pub async fn merge_shards(root: &DataRoot, run_date: RunDate, count: u32) -> Result<Outcome> {
    let timer = StepTimer::start("merge-shards");
    let mut batches = Vec::new();
    let mut first: Option<Manifest> = None;
    let mut counters: BTreeMap<String, u64> = BTreeMap::new();
    for index in 0..count {
        let shard = Shard { index, count };
        let ctx = SessionContext::new();
        let (manifest, _) =
            register_partition(&ctx, root, shard.dataset(), run_date, "shard").await?;
        let mut params = manifest.parameters.clone();
        if let Some(p) = params.as_object_mut() {
            p.remove("shard");
        }
        match &first {
            None => {
                first = Some(Manifest {
                    parameters: params,
                    ..manifest.clone()
                })
            }
            Some(f) if f.parameters != params || f.inputs != manifest.inputs => {
                return Err(CoreError::Invalid(format!(
                    "shard {shard} of {run_date} was scored with other inputs or model than shard 0/{count} ({} vs {}): rerun the shards",
                    manifest.parameters, f.parameters
                )));
            }
            Some(_) => {}
        }
        for (k, v) in &manifest.counters {
            *counters.entry(k.clone()).or_insert(0) += v;
        }
        let df = ctx
            .table("shard")
            .await
            .map_err(|e| CoreError::query("read score shard", e))?;
        batches.extend(
            df.collect()
                .await
                .map_err(|e| CoreError::query("read score shard", e))?,
        );
    }
    let first = first.ok_or_else(|| bad("no shard"))?;
    let schema = output_schema();
    // Parquet text comes back as string views; the output schema has plain strings.
    let batches = batches
        .iter()
        .map(|b| {
            let cols = schema
                .fields()
                .iter()
                .map(|f| {
                    let c = b
                        .column_by_name(f.name())
                        .ok_or_else(|| bad(&format!("shard lacks {}", f.name())))?;
                    arrow::compute::cast(c, f.data_type())
                        .map_err(|e| CoreError::arrow("shard column", e))
                })
                .collect::<Result<Vec<_>>>()?;
            RecordBatch::try_new(schema.clone(), cols).map_err(|e| CoreError::arrow("shard", e))
        })
        .collect::<Result<Vec<_>>>()?;
    let all = concat_batches(&schema, &batches).map_err(|e| CoreError::arrow("merge", e))?;
    let recorded = |key: &str| {
        first.parameters.get(key).cloned().ok_or_else(|| {
            CoreError::Invalid(format!(
                "the score shards of {run_date} do not record {key} in their manifests; rerun the shards"
            ))
        })
    };
    let model_version = recorded("model_version")?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| CoreError::Invalid("model_version of the shards is not text".into()))?;
    let flag: FlagRule = serde_json::from_value(recorded("flag")?)
        .map_err(|e| CoreError::Invalid(format!("the shards' flag rule is unreadable: {e}")))?;
    let batch = finish(&sorted(&all)?, flag)?;
    timer.finish(all.num_rows() as u64, all.num_rows() as u64);
    let scored = Scored {
        batch,
        params: first.parameters,
        inputs: first.inputs,
        model_version,
        counters,
        flag,
    };
    publish(root, Dataset::Scores, run_date, scored).await
}

fn bad(msg: &str) -> CoreError {
    CoreError::BadTable {
        table: "features/score".into(),
        message: msg.to_string(),
    }
}

fn int64<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Int64Array> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .ok_or_else(|| bad(&format!("column {name} missing or not an integer")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use repurchase_model::metrics::decile_of;

    #[test]
    fn deciles_by_selection_are_deciles_by_sorting() {
        for n in [0usize, 1, 2, 9, 10, 11, 19, 100, 1001, 4567] {
            // Many equal probabilities, so the tie-breaks decide.
            let keys: Vec<(f64, i64, usize)> = (0..n)
                .map(|i| (((i * 7919) % 13) as f64 / 13.0, ((i * 31) % 17) as i64, i))
                .collect();
            let mut sorted = keys.clone();
            sorted.sort_by(rank_order);
            let mut expected = vec![0; n];
            for (rank, k) in sorted.iter().enumerate() {
                expected[k.2] = decile_of(rank, n);
            }
            assert_eq!(deciles(&keys), expected, "{n} keys");
        }
    }

    #[test]
    fn the_budget_flags_a_fixed_share_of_the_open_customers() {
        // Probabilities on a coarse grid, so that the budget's edge falls inside a tie.
        let keys: Vec<(f64, i64, usize)> = (0..95)
            .map(|i| (((i * 37) % 11) as f64 / 11.0, 1000 + i as i64, i))
            .collect();
        for (share, want) in [(0.1, 10), (0.25, 24), (1.0, 95), (0.001, 1)] {
            let top = top_share(&keys, share);
            assert_eq!(top.len(), want, "share {share}");
            let lowest_in = top.iter().map(|&i| keys[i].0).fold(f64::INFINITY, f64::min);
            let highest_out = (0..95)
                .filter(|i| !top.contains(i))
                .map(|i| keys[i].0)
                .fold(f64::NEG_INFINITY, f64::max);
            assert!(lowest_in >= highest_out, "share {share}");
        }
        // Inside the tie, the hash of the anchor order decides, not the order itself.
        let tied: Vec<(f64, i64, usize)> = (0..10).map(|i| (0.5, 100 + i as i64, i)).collect();
        let mut picked = top_share(&tied, 0.3);
        picked.sort_unstable();
        assert_ne!(picked, vec![0, 1, 2]);
        assert!(top_share(&[], 0.5).is_empty());
    }

    #[test]
    fn shards_parse_and_partition_customers_stably() {
        assert_eq!("2/8".parse::<Shard>(), Ok(Shard { index: 2, count: 8 }));
        for bad in ["8/8", "1/0", "x/2", "1", "-1/2", "0/5000"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        // Fixed values: changing the hash would move customers between shards.
        assert_eq!(
            (1..=8).map(|u| shard_of(u, 4)).collect::<Vec<_>>(),
            [1, 2, 1, 2, 2, 0, 3, 2]
        );
        assert_eq!([1, 42, 99_999].map(|u| shard_of(u, 1000)), [465, 413, 454]);
        let mut sizes = [0u32; 4];
        for u in 0..100_000 {
            sizes[shard_of(u, 4) as usize] += 1;
        }
        assert!(
            sizes.iter().all(|s| (24_000..26_000).contains(s)),
            "{sizes:?}"
        );
        assert_eq!(shard_of(12345, 1), 0);
    }
}
