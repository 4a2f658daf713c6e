//! `models/run_date=D/calibration/`: the calibrators, their held-out metrics, the repurchase
//! timing and the calibrated model card, with the readers `score` and `calibrate` use.

use repurchase_core::layout::Dataset;
use repurchase_core::manifest::{InputRef, Manifest};
use repurchase_core::{DataRoot, Result, RunDate};
use repurchase_model::calibration::{CalibrationChoice, Calibrator};
use repurchase_model::io::read_json_artifact;
use repurchase_model::metrics::{Confusion, DecileRow, Summary};
use repurchase_model::timing::RepurchaseTiming;
use serde::{Deserialize, Serialize};

use crate::backtest::Backtest;
use crate::champion::Promotion;
use crate::{ModelCard, files};

/// `metrics.json`: held-out evaluation of the procedure, and how the served model was calibrated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metrics {
    /// The served model (`model.json`), which `score` uses.
    pub model_version: String,
    /// The evaluated model (`evaluation_model.json`), which the figures below describe.
    pub evaluated_model_version: String,
    /// The evaluated model's calibrator, chosen on the validation window.
    pub calibration: CalibrationChoice,
    /// Test window, uncalibrated and calibrated.
    pub test_raw: Summary,
    /// Test window, calibrated.
    pub test: Summary,
    /// Validation window, calibrated (in-sample for the calibrator).
    pub validation: Summary,
    /// Probability at or above which `score` flags an open customer, applied to the conditional
    /// probability (`scores.probability`): F1-optimal on the served model's cross-fitted
    /// predictions of the customers open on a day of scoring.
    pub threshold: f64,
    /// The same rule for the evaluated procedure: a threshold chosen on the validation window's
    /// open customers, and the flag's confusion on the test window's.
    pub evaluation_threshold: f64,
    /// The evaluated procedure's flag on the test window's open customers.
    pub test_open_flag: Confusion,
    /// At the anchor (nothing elapsed): the F1-optimal threshold on the validation window's
    /// probabilities and its confusion matrix on the test window (the report's operating point).
    pub threshold_at_anchor: f64,
    /// Confusion matrix at [`Metrics::threshold_at_anchor`] on the test window.
    pub test_at_threshold: Confusion,
    /// Bootstrap 95% interval of the calibrated test ROC-AUC (1000 resamples, fixed seed).
    pub test_auc_ci: Option<(f64, f64)>,
    /// Share of the test window contacted when contacting the highest-scored first.
    pub top_k_fraction: f64,
    /// Confusion matrix of contacting that top share.
    pub test_at_top_k: Confusion,
    /// Test anchors in ten equal groups by calibrated probability, highest first.
    pub test_deciles: Vec<DecileRow>,
    /// Test anchors still without a repurchase `elapsed_days` into their window, scored with the
    /// conditional probability `score` would give them that day.
    pub test_by_elapsed: Vec<ElapsedCheck>,
    /// How the served model was calibrated.
    pub served: ServedCalibration,
}

/// How the served model's probabilities and flag were calibrated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServedCalibration {
    /// Calibrator chosen and fitted on the cross-fitted predictions.
    pub calibration: CalibrationChoice,
    /// Cross-fitted predictions, uncalibrated and calibrated (in-sample for the calibrator).
    pub cross_fit_raw: Summary,
    /// Cross-fitted predictions, calibrated.
    pub cross_fit: Summary,
    /// The flag at [`Metrics::threshold`] on the cross-fitted open customers.
    pub cross_fit_open_flag: Confusion,
    /// Labelled repurchases the served timing was estimated from.
    pub timing_repurchases: u64,
}

/// The conditional probability checked part-way through the window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ElapsedCheck {
    /// Days since the anchor.
    pub elapsed_days: f64,
    /// Mean conditional probability of the anchors still open then.
    pub mean_predicted: f64,
    /// Their figures against the outcome (written inline).
    #[serde(flatten)]
    pub summary: Summary,
}

/// The trainer's model card completed by calibration: what a reviewer signs off.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CalibratedCard {
    /// The trainer's card (written inline).
    #[serde(flatten)]
    pub model: ModelCard,
    /// The served model's calibration method.
    pub calibration: String,
    /// Conditional probability at or above which `score` flags a repurchase ([`Metrics::threshold`]).
    pub threshold: f64,
    /// Calibrated metrics on the held-out test window (`test` holds its row counts).
    pub test_metrics: Summary,
    /// Bootstrap 95% interval of the calibrated test ROC-AUC.
    pub test_auc_ci: Option<(f64, f64)>,
    /// Confusion matrix at the threshold on the test window.
    pub test_at_threshold: Confusion,
    /// Confusion matrix of contacting the top share of the test window.
    pub test_at_top_k: Confusion,
    /// When repurchases happen inside the window (for the conditional probability).
    pub timing: RepurchaseTiming,
}

/// Reads the champion decision of a published calibration partition.
pub async fn read_promotion(root: &DataRoot, run_date: RunDate) -> Result<Promotion> {
    read_json_artifact(root, Dataset::Calibration, run_date, files::PROMOTION)
        .await
        .map(|(p, _)| p)
}

/// Reads the realised performance a published calibration recorded (`realised.json`): `None`
/// when it recorded none (no scores were yet old enough to be judged).
pub async fn read_realised(
    root: &DataRoot,
    run_date: RunDate,
) -> Result<Option<(Backtest, InputRef)>> {
    let (manifest, _) = Manifest::read(root, Dataset::Calibration, run_date).await?;
    if manifest.file(files::REALISED).is_none() {
        return Ok(None);
    }
    read_json_artifact(root, Dataset::Calibration, run_date, files::REALISED)
        .await
        .map(Some)
}

/// Reads the repurchase timing of a published calibration partition.
pub async fn read_timing(root: &DataRoot, run_date: RunDate) -> Result<RepurchaseTiming> {
    read_json_artifact(root, Dataset::Calibration, run_date, files::TIMING)
        .await
        .map(|(timing, _)| timing)
}

/// Reads the served calibrator and the metrics of a published calibration partition, with the
/// calibrator's manifest reference.
pub async fn read_calibration(
    root: &DataRoot,
    run_date: RunDate,
) -> Result<(Calibrator, Metrics, InputRef)> {
    let (cal, input) =
        read_json_artifact(root, Dataset::Calibration, run_date, files::CALIBRATOR).await?;
    let (metrics, _) =
        read_json_artifact(root, Dataset::Calibration, run_date, files::METRICS).await?;
    Ok((cal, metrics, input))
}
