//! One day's scores judged against the labels a later run date's data reveals
//! (`sql/evaluation/backtest.sql`): what `repurchase backtest` publishes and what `calibrate`
//! records as the served model's realised performance.
//!
//! The conditional `probability` (given no repurchase in the days already elapsed) is what a
//! marketer acts on, so it is the one judged; `probability_at_anchor` is shown beside it to make the
//! effect of the elapsed-time adjustment visible.

use arrow::array::{Array, BooleanArray, Float64Array, Int64Array};
use datafusion::prelude::SessionContext;
use repurchase_core::layout::Dataset;
use repurchase_core::manifest::InputRef;
use repurchase_core::parquet_io::register_partition;
use repurchase_core::{CoreError, DataRoot, Result, RunDate, sql_file};
use repurchase_model::metrics::{Confusion, Summary, reliability_curve, summary};
use serde::{Deserialize, Serialize};

use crate::ScoresParams;
use crate::params::read_params;

/// Elapsed-day bands the report breaks the comparison into.
const BANDS: [(f64, f64); 4] = [(0.0, 15.0), (15.0, 30.0), (30.0, 45.0), (45.0, 61.0)];

/// The scored rows whose anchor was `from_days` to `to_days` old on the score date.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Band {
    /// Days since the anchor, from (inclusive).
    pub from_days: f64,
    /// Days since the anchor, to (exclusive).
    pub to_days: f64,
    /// Resolved rows in the band.
    pub rows: u64,
    /// Their mean conditional probability (what `score` served).
    pub mean_probability: f64,
    /// Their mean probability at the anchor (nothing elapsed).
    pub mean_probability_at_anchor: f64,
    /// The share of them that repurchased.
    pub observed_rate: f64,
}

/// One day's scores judged against the settled labels of a later date (`backtests/`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Backtest {
    /// The day scored.
    pub score_date: RunDate,
    /// The day whose labels judge it.
    pub outcome_date: RunDate,
    /// The model that scored it.
    pub model_version: String,
    /// Anchors scored on the score date (status open).
    pub scored: u64,
    /// Of those, anchors whose window had closed by the outcome date.
    pub resolved: u64,
    /// Window still open on the outcome date, or the anchor order returned after the score date
    /// (it no longer anchors a window).
    pub unresolved: u64,
    /// The conditional probability against the outcomes.
    pub probability: Summary,
    /// The at-anchor probability against the same outcomes.
    pub probability_at_anchor: Summary,
    /// Mean conditional probability of the resolved rows.
    pub mean_probability: f64,
    /// Mean at-anchor probability of the resolved rows.
    pub mean_probability_at_anchor: f64,
    /// The scores' `predicted_repurchase` flag against the outcomes: its precision and recall.
    pub flag: Confusion,
    /// The comparison by days elapsed since the anchor.
    pub by_elapsed_days: Vec<Band>,
    /// Predicted against observed by bins of the conditional probability.
    pub reliability: Vec<repurchase_model::metrics::ReliabilityBin>,
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn column<'a, T: 'static>(b: &'a arrow::array::RecordBatch, name: &str) -> Result<&'a T> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| CoreError::BadTable {
            table: "backtest query".into(),
            message: format!("column {name} missing"),
        })
}

/// Confusion of a boolean flag against the outcomes (the threshold field is unused: 0.5).
pub fn flag_confusion(flagged: &[bool], labels: &[bool]) -> Confusion {
    let as_prob: Vec<f64> = flagged.iter().map(|&f| f64::from(u8::from(f))).collect();
    repurchase_model::metrics::confusion_at(&as_prob, labels, 0.5)
}

/// The scores of `score_date` against the outcomes known on `outcome_date` (which must be
/// later), with the two partitions read and the query's name.
pub async fn judge(
    root: &DataRoot,
    score_date: RunDate,
    outcome_date: RunDate,
) -> Result<(Backtest, Vec<InputRef>, &'static str)> {
    let ctx = SessionContext::new();
    let (scores_manifest, scores_input) =
        register_partition(&ctx, root, Dataset::Scores, score_date, "scores").await?;
    let (_, outcomes_input) =
        register_partition(&ctx, root, Dataset::FeaturesTrain, outcome_date, "outcomes").await?;
    let sql = sql_file!("evaluation/backtest.sql");
    let batches = sql
        .dataframe(&ctx, vec![])
        .await?
        .collect()
        .await
        .map_err(|e| CoreError::query(sql.name, e))?;

    let (mut p, mut p0, mut y, mut elapsed) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut flagged = Vec::new();
    let (mut scored, mut unresolved) = (0u64, 0u64);
    for b in &batches {
        let prob = column::<Float64Array>(b, "probability")?;
        let prob0 = column::<Float64Array>(b, "probability_at_anchor")?;
        let days = column::<Float64Array>(b, "days_elapsed")?;
        let resolved = column::<BooleanArray>(b, "resolved")?;
        let label = column::<Int64Array>(b, "label")?;
        let flag = column::<BooleanArray>(b, "predicted_repurchase")?;
        for i in 0..b.num_rows() {
            scored += 1;
            if !resolved.value(i) || label.is_null(i) {
                unresolved += 1;
                continue;
            }
            p.push(prob.value(i));
            p0.push(prob0.value(i));
            y.push(label.value(i) == 1);
            elapsed.push(days.value(i));
            flagged.push(flag.is_valid(i) && flag.value(i));
        }
    }
    let by_elapsed_days = BANDS
        .iter()
        .map(|&(from, to)| {
            let idx: Vec<usize> = (0..p.len())
                .filter(|&i| elapsed[i] >= from && elapsed[i] < to)
                .collect();
            let pick = |v: &[f64]| idx.iter().map(|&i| v[i]).collect::<Vec<_>>();
            Band {
                from_days: from,
                to_days: to,
                rows: idx.len() as u64,
                mean_probability: mean(&pick(&p)),
                mean_probability_at_anchor: mean(&pick(&p0)),
                observed_rate: if idx.is_empty() {
                    0.0
                } else {
                    idx.iter().filter(|&&i| y[i]).count() as f64 / idx.len() as f64
                },
            }
        })
        .collect();
    let model_version = read_params::<ScoresParams>(root, &scores_manifest)?.model_version;
    let report = Backtest {
        score_date,
        outcome_date,
        model_version,
        scored,
        resolved: p.len() as u64,
        unresolved,
        probability: summary(&p, &y),
        probability_at_anchor: summary(&p0, &y),
        mean_probability: mean(&p),
        mean_probability_at_anchor: mean(&p0),
        flag: flag_confusion(&flagged, &y),
        by_elapsed_days,
        reliability: reliability_curve(&p, &y, 10),
    };

    Ok((report, vec![scores_input, outcomes_input], sql.name))
}
