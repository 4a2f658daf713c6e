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
//! Anchors that already repurchased inside their window are reported with
//! `status = already_repurchased` and no probability. `decile` (1 = highest tenth) and
//! `predicted_repurchase` (at the model card's threshold) are of `probability`.
//!
//! The model is by default the champion in force on the run date: the one named by the latest
//! calibration at or before it ([`repurchase_calibrate::champion`]), so a retrained model that
//! scored worse than the champion on held-out data is never served. `--model-date` overrides
//! this with any published model not after the run date.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use clap::Args as ClapArgs;
use repurchase_calibrate::champion::champion_on;
use repurchase_core::cli::{CommonArgs, parse_run_date};
use repurchase_core::layout::Dataset;
use repurchase_core::logging::StepTimer;
use repurchase_core::publish::PartitionWriter;
use repurchase_core::schema::ts_type;
use repurchase_core::{CoreError, DataRoot, Result, RunDate};
use repurchase_model::ModelArtifact;
use repurchase_model::io::{load_features, read_artifact};
use repurchase_model::metrics::decile_of;
use serde::Serialize;
use tracing::info;

pub const STAGE: &str = "score";

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Run date of the model to use. Default: the champion named by the latest calibration at or
    /// before the run date.
    #[arg(long, env = "REPURCHASE_MODEL_DATE", value_parser = parse_run_date)]
    pub model_date: Option<RunDate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub model_version: String,
    pub scored: u64,
    pub already_repurchased: u64,
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
    score(&root, args.common.run_date, args.model_date).await
}

pub async fn score(
    root: &DataRoot,
    run_date: RunDate,
    model_date: Option<RunDate>,
) -> Result<Outcome> {
    let (model_date, decision_input) = match model_date {
        Some(d) if d > run_date => {
            return Err(CoreError::Invalid(format!(
                "--model-date {d} is after the run date {run_date}: a model cannot come from the future"
            )));
        }
        Some(d) => (d, None),
        None => {
            let (champion, decision) = champion_on(root, run_date).await?;
            (champion.model_date, Some(decision))
        }
    };
    let timer = StepTimer::start("score");
    let (model_bytes, _, model_input) =
        read_artifact(root, Dataset::Model, model_date, "model.json").await?;
    let model = ModelArtifact::from_bytes(&model_bytes)?;
    let (cal, metrics, cal_input) =
        repurchase_calibrate::read_calibration(root, model_date).await?;
    let timing = repurchase_calibrate::read_timing(root, model_date).await?;
    let (table, _, features_input) = load_features(root, Dataset::FeaturesScore, run_date).await?;
    let run_end = run_date.end_exclusive_micros();
    let elapsed: Vec<f64> = table
        .anchor_us
        .iter()
        .map(|a| (run_end - a) as f64 / 86_400_000_000.0)
        .collect();

    let already: Vec<bool> = table
        .repurchased_so_far
        .clone()
        .unwrap_or_else(|| vec![false; table.len()]);
    let open_idx: Vec<usize> = (0..table.len()).filter(|i| !already[*i]).collect();
    let open = table.take(&open_idx);
    let at_anchor = cal.predict_all(&model.predict(&open)?);
    let probs: Vec<f64> = open_idx
        .iter()
        .zip(&at_anchor)
        .map(|(&i, &p)| timing.conditional(p, elapsed[i]))
        .collect();

    // Rank open anchors by probability (ties by anchor order) for deciles.
    let mut order: Vec<usize> = (0..open.len()).collect();
    order.sort_by(|&a, &b| {
        probs[b]
            .total_cmp(&probs[a])
            .then(open.order_id[a].cmp(&open.order_id[b]))
    });
    let mut decile = vec![0u32; open.len()];
    for (rank, &i) in order.iter().enumerate() {
        decile[i] = decile_of(rank, open.len());
    }
    let mut prob_full: Vec<Option<f64>> = vec![None; table.len()];
    let mut at_anchor_full: Vec<Option<f64>> = vec![None; table.len()];
    let mut decile_full: Vec<Option<u32>> = vec![None; table.len()];
    for (k, &i) in open_idx.iter().enumerate() {
        prob_full[i] = Some(probs[k]);
        at_anchor_full[i] = Some(at_anchor[k]);
        decile_full[i] = Some(decile[k]);
    }
    let n = table.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(table.user_id.clone())),
        Arc::new(Int64Array::from(table.order_id.clone())),
        Arc::new(TimestampMicrosecondArray::from(table.anchor_us.clone()).with_timezone("UTC")),
        Arc::new(StringArray::from_iter_values(
            already
                .iter()
                .map(|a| if *a { "already_repurchased" } else { "open" }),
        )),
        Arc::new(Float64Array::from(elapsed)),
        Arc::new(Float64Array::from(prob_full.clone())),
        Arc::new(Float64Array::from(at_anchor_full)),
        Arc::new(UInt32Array::from(decile_full)),
        Arc::new(BooleanArray::from(
            prob_full
                .iter()
                .map(|p| p.map(|p| p >= metrics.threshold))
                .collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(vec![metrics.model_version.clone(); n])),
    ];
    let schema = output_schema();
    let batch =
        RecordBatch::try_new(schema.clone(), columns).map_err(|e| CoreError::arrow("scores", e))?;
    let scored = open.len() as u64;
    let already_n = (n - open.len()) as u64;
    timer.finish(n as u64, scored);

    let mut w = PartitionWriter::begin(root, Dataset::Scores, run_date).await?;
    w.write_parquet("part-00000.parquet", schema.clone(), &[batch])
        .await?;
    let params = serde_json::json!({
        "model_date": model_date.to_string(),
        "model_version": metrics.model_version,
        "threshold": metrics.threshold,
    });
    let counters = BTreeMap::from([
        ("scored".to_string(), scored),
        ("already_repurchased".to_string(), already_n),
    ]);
    let mut inputs = vec![features_input, model_input];
    // The decision naming the champion, when it is not the champion's own calibration.
    inputs.extend(decision_input.filter(|d| *d != cal_input));
    inputs.push(cal_input);
    w.commit(STAGE, params, Some(&schema), inputs, counters)
        .await?;
    info!(scored, already_repurchased = already_n, model_version = %metrics.model_version, "scores written");
    Ok(Outcome {
        model_version: metrics.model_version,
        scored,
        already_repurchased: already_n,
    })
}
