//! The `calibrate` worker.
//!
//! Loads the run date's model and the same `features/train` partition it was trained on, predicts
//! the validation and test windows, chooses isotonic or Platt calibration by cross-fitted Brier on
//! the validation window (the test window is never used to choose anything), and reports on the
//! held-out test window: ROC-AUC, PR-AUC, Brier, log loss, calibration error, the F1-optimal
//! threshold (chosen on validation) and deciles. Writes `models/run_date=D/calibration/`.

use std::collections::BTreeMap;

use bytes::Bytes;
use clap::Args as ClapArgs;
use repurchase_core::cli::CommonArgs;
use repurchase_core::layout::Dataset;
use repurchase_core::logging::StepTimer;
use repurchase_core::publish::PartitionWriter;
use repurchase_core::{CoreError, DataRoot, Result, RunDate};
use repurchase_model::ModelArtifact;
use repurchase_model::calibration::{CalibrationChoice, Calibrator, choose_calibrator};
use repurchase_model::io::{load_features, read_artifact};
use repurchase_model::metrics::{
    Confusion, DecileRow, Summary, confusion_at, deciles, f1_optimal_threshold, summary,
};
use serde::{Deserialize, Serialize};
use tracing::info;

pub const STAGE: &str = "calibrate";

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `metrics.json`: held-out evaluation of the calibrated model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metrics {
    pub model_version: String,
    pub calibration: CalibrationChoice,
    /// Test window, uncalibrated and calibrated.
    pub test_raw: Summary,
    pub test: Summary,
    /// Validation window, calibrated (in-sample for the calibrator).
    pub validation: Summary,
    /// Threshold maximising F1 on the validation window, and its confusion matrix on the test window.
    pub threshold: f64,
    pub test_at_threshold: Confusion,
    pub test_deciles: Vec<DecileRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub model_version: String,
    pub method: &'static str,
    pub test_auc: Option<f64>,
    pub test_brier: f64,
}

pub async fn run(args: Args) -> Result<Outcome> {
    let root = args.common.open_root()?;
    calibrate(&root, args.common.run_date).await
}

pub async fn calibrate(root: &DataRoot, run_date: RunDate) -> Result<Outcome> {
    let timer = StepTimer::start("calibrate");
    let card = repurchase_train::read_card(root, run_date).await?;
    let (model_bytes, model_manifest, model_input) =
        read_artifact(root, Dataset::Model, run_date, "model.json").await?;
    let model = ModelArtifact::from_bytes(&model_bytes)?;
    let (table, _, features_input) = load_features(root, Dataset::FeaturesTrain, run_date).await?;
    // The calibrator must see the model's own validation rows: refuse features rebuilt since.
    if !model_manifest
        .inputs
        .iter()
        .any(|i| i.manifest_sha256 == features_input.manifest_sha256)
    {
        return Err(CoreError::Invalid(format!(
            "features/train for {run_date} changed after the model was trained; rerun train before calibrate"
        )));
    }
    let (_, va, te) = card.windows.indices(&table.anchor_us);
    let (valid, test) = (table.take(&va), table.take(&te));
    let (y_valid, y_test) = (valid.labels()?, test.labels()?);
    let raw_valid = model.predict(&valid)?;
    let raw_test = model.predict(&test)?;

    let choice = choose_calibrator(&raw_valid, y_valid);
    let cal: &Calibrator = &choice.chosen;
    let p_valid = cal.predict_all(&raw_valid);
    let p_test = cal.predict_all(&raw_test);
    let best = f1_optimal_threshold(&p_valid, y_valid);
    let metrics = Metrics {
        model_version: card.model_version.clone(),
        calibration: choice.clone(),
        test_raw: summary(&raw_test, y_test),
        test: summary(&p_test, y_test),
        validation: summary(&p_valid, y_valid),
        threshold: best.threshold,
        test_at_threshold: confusion_at(&p_test, y_test, best.threshold),
        test_deciles: deciles(&p_test, y_test),
    };
    timer.finish((valid.len() + test.len()) as u64, test.len() as u64);
    info!(method = cal.name(), test_auc = ?metrics.test.roc_auc, test_brier = metrics.test.brier, test_ece = metrics.test.ece, threshold = metrics.threshold, "calibrated");

    let mut w = PartitionWriter::begin(root, Dataset::Calibration, run_date).await?;
    let mut cal_bytes =
        serde_json::to_vec_pretty(cal).map_err(|e| CoreError::Invalid(e.to_string()))?;
    cal_bytes.push(b'\n');
    w.write_bytes("calibrator.json", Bytes::from(cal_bytes))
        .await?;
    let mut metrics_bytes =
        serde_json::to_vec_pretty(&metrics).map_err(|e| CoreError::Invalid(e.to_string()))?;
    metrics_bytes.push(b'\n');
    w.write_bytes("metrics.json", Bytes::from(metrics_bytes))
        .await?;
    let counters = BTreeMap::from([
        ("validation_rows".to_string(), valid.len() as u64),
        ("test_rows".to_string(), test.len() as u64),
    ]);
    let params = serde_json::json!({"model_version": card.model_version, "method": cal.name()});
    w.commit(
        STAGE,
        params,
        None,
        vec![model_input, features_input],
        counters,
    )
    .await?;
    Ok(Outcome {
        model_version: card.model_version,
        method: cal.name(),
        test_auc: metrics.test.roc_auc,
        test_brier: metrics.test.brier,
    })
}

/// Reads the calibrator and metrics of a published calibration partition.
pub async fn read_calibration(
    root: &DataRoot,
    run_date: RunDate,
) -> Result<(Calibrator, Metrics, repurchase_core::manifest::InputRef)> {
    let (cal_bytes, _, input) =
        read_artifact(root, Dataset::Calibration, run_date, "calibrator.json").await?;
    let (metrics_bytes, _, _) =
        read_artifact(root, Dataset::Calibration, run_date, "metrics.json").await?;
    let bad = |e: serde_json::Error| CoreError::BadManifest {
        path: Dataset::Calibration.partition(run_date),
        reason: e.to_string(),
    };
    Ok((
        serde_json::from_slice(&cal_bytes).map_err(bad)?,
        serde_json::from_slice(&metrics_bytes).map_err(bad)?,
        input,
    ))
}
