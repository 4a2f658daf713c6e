//! `models/run_date=D/calibration/promotion.json`: which calibrated model is champion, and the
//! lookups of the champion in force on a date (what `score` serves, what `calibrate` competes
//! against). The decision itself is `calibrate`'s.

use repurchase_core::layout::Dataset;
use repurchase_core::manifest::InputRef;
use repurchase_core::{CoreError, DataRoot, Result, RunDate};
use repurchase_model::io::read_json_artifact;
use repurchase_model::metrics::PairedDelta;
use serde::{Deserialize, Serialize};

use crate::files;

/// How the challenger fared against one past champion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Shown within the margins: the AUC interval's lower end above −margin and the Brier
    /// interval's upper end below the allowance.
    NonInferior,
    /// Shown worse: the AUC interval entirely below 0 and reaching below −margin, or the Brier
    /// interval entirely above 0 and reaching above the allowance.
    Inferior,
    /// Neither: an interval reaches beyond its margin but also across 0, so the data cannot tell
    /// the two apart. Promotes (the fresher model is served) unless
    /// the policy asks to keep the champion when inconclusive.
    Inconclusive,
    /// Too few shared rows or repurchases to tell; not counted either way.
    NotComparable,
}

/// The challenger against one past champion, on the rows both never saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The past champion.
    pub champion: ModelRef,
    /// Calibration whose decision named it.
    pub decided_by: RunDate,
    /// Rows neither model was fitted or calibrated on.
    pub rows: u64,
    /// Of those, rows followed by a repurchase.
    pub positives: u64,
    /// The challenger's calibrated ROC-AUC on those rows.
    pub challenger_auc: Option<f64>,
    /// The champion's calibrated ROC-AUC on those rows.
    pub champion_auc: Option<f64>,
    /// The challenger's Brier score on those rows.
    pub challenger_brier: f64,
    /// The champion's Brier score on those rows.
    pub champion_brier: f64,
    /// 95% paired bootstrap intervals of challenger − champion.
    pub delta: Option<PairedDelta>,
    /// What the intervals show.
    pub verdict: Verdict,
    /// The verdict in words, with the figures.
    pub reason: String,
}

/// A calibrated model, by the run date it was trained for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    /// Run date of the training (`models/run_date=D/`).
    pub model_date: RunDate,
    /// Version of its served model.
    pub model_version: String,
}

/// `promotion.json`: the decision of one calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    /// The model this calibration calibrated.
    pub challenger: ModelRef,
    /// Champion before this decision; `None` for the first calibrated model.
    pub previous_champion: Option<ModelRef>,
    /// Calibration that named `previous_champion`.
    pub previous_decision: Option<RunDate>,
    /// ROC-AUC the challenger may lose and still be non-inferior (`--promotion-margin`).
    pub margin: f64,
    /// Rows both models were compared on, and how many of them repurchased.
    pub compared_rows: u64,
    /// Of those, rows followed by a repurchase.
    pub compared_positives: u64,
    /// Against the current champion (on the whole test window for the first model).
    pub challenger_auc: Option<f64>,
    /// The current champion's ROC-AUC on the same rows.
    pub champion_auc: Option<f64>,
    /// Against each of the last champions, newest first.
    pub comparisons: Vec<Comparison>,
    /// Whether the challenger became champion.
    pub promoted: bool,
    /// Champion from this run date on: the model `score` uses.
    pub champion: ModelRef,
    /// The decision in words, with the figures.
    pub reason: String,
}

/// The champion named by the calibration of `decision_date`, with that calibration's manifest.
pub async fn decision_at(root: &DataRoot, decision_date: RunDate) -> Result<(ModelRef, InputRef)> {
    let (p, input): (Promotion, _) =
        read_json_artifact(root, Dataset::Calibration, decision_date, files::PROMOTION).await?;
    Ok((p.champion, input))
}

/// Latest run date before (or, with `inclusive`, at) `run_date` that has a published calibration.
pub async fn latest_calibration(
    root: &DataRoot,
    run_date: RunDate,
    inclusive: bool,
) -> Result<Option<RunDate>> {
    for d in model_dates_newest_first(root, run_date, inclusive).await? {
        if root.exists(&Dataset::Calibration.manifest_path(d)).await? {
            return Ok(Some(d));
        }
    }
    Ok(None)
}

/// Run dates with a model partition before (or, with `inclusive`, at) `run_date`, newest first:
/// the candidates for a calibration (whose manifest the caller checks, one date at a time).
pub async fn model_dates_newest_first(
    root: &DataRoot,
    run_date: RunDate,
    inclusive: bool,
) -> Result<Vec<RunDate>> {
    let mut dates: Vec<RunDate> = root
        .list_dirs("models")
        .await?
        .iter()
        .filter_map(|n| Dataset::parse_partition_dir(n))
        .filter(|d| *d < run_date || (inclusive && *d == run_date))
        .collect();
    dates.sort_unstable_by(|a, b| b.cmp(a));
    Ok(dates)
}

/// The champion in force on `run_date` (decided by the latest calibration at or before it), the
/// date of that decision and its manifest: what `score` serves by default.
pub async fn champion_on(root: &DataRoot, run_date: RunDate) -> Result<(ModelRef, InputRef)> {
    let decided = latest_calibration(root, run_date, true)
        .await?
        .ok_or_else(|| CoreError::NotPublished {
            path: root.url("models/run_date=*/calibration"),
            run_date: run_date.to_string(),
        })?;
    decision_at(root, decided).await
}
