//! `models/run_date=D/model_card.json`: what a reviewer, `calibrate` and `score` need to know
//! about a trained model.

use repurchase_core::layout::Dataset;
use repurchase_core::{DataRoot, Result, RunDate};
use repurchase_model::BoosterParams;
use repurchase_model::crossfit::FoldStats;
use repurchase_model::io::read_json_artifact;
use repurchase_model::metrics::Summary;
use repurchase_model::split::Windows;
use repurchase_model::table::FeatureSpec;
use serde::{Deserialize, Serialize};

use crate::{AnchorMode, files};

/// The model card's record of the training window's negative sampling (absent when none).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SamplingCard {
    /// Share of the training window's negatives kept (`--negative-rate`).
    pub negative_rate: f64,
    /// Seed of the sampling draw: a rerun keeps the same rows.
    pub seed: u64,
    /// Weight of each kept negative in the loss and the target encoders (positives weigh 1).
    pub negative_weight: f64,
    /// The training window before sampling (= the card's `train`) and the rows actually fitted.
    pub rows_before: u64,
    /// Repurchases in the training window (all kept).
    pub positives_before: u64,
    /// Rows fitted after sampling.
    pub rows_after: u64,
    /// Repurchases among the rows fitted.
    pub positives_after: u64,
}

/// Size of one window of labelled anchors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowStats {
    /// Labelled anchors in the window.
    pub rows: u64,
    /// Of those, anchors followed by a repurchase.
    pub positives: u64,
}

/// The model `score` serves: the chosen configuration refitted on every labelled anchor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServedModel {
    /// Exclusive end of the anchors it was fitted on (the labelled end), readable.
    pub train_end: String,
    /// Every labelled anchor it was fitted on.
    pub train: WindowStats,
    /// Rows actually fitted, when negatives were sampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled_rows: Option<u64>,
    /// Tree depth (the one chosen on the validation window).
    pub max_depth: usize,
    /// Boosting rounds.
    pub iterations: usize,
    /// The folds whose predictions calibrate it ([`repurchase_model::crossfit`]).
    pub cross_fit: Vec<FoldStats>,
    /// Raw ROC-AUC of the fold models over all fold rows.
    pub cross_fit_raw_auc: Option<f64>,
}

/// What a reviewer needs to know about a model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    /// Version of the served model (`model.json`).
    pub model_version: String,
    /// Version of the evaluated model (`evaluation_model.json`), whose windows and figures the
    /// rest of the card describes.
    pub evaluated_model_version: String,
    /// The model `score` serves.
    pub served: ServedModel,
    /// Run date of the training.
    pub run_date: RunDate,
    /// Anchor definition of the features it was trained on.
    pub anchor: AnchorMode,
    /// The out-of-time train, validation and test windows.
    pub windows: Windows,
    /// The whole training window (before any negative sampling; see `sampling`).
    pub train: WindowStats,
    /// Negative downsampling of the training window, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<SamplingCard>,
    /// The validation window (early stopping, the depth, the evaluated model's calibration).
    pub validation: WindowStats,
    /// The held-out test window.
    pub test: WindowStats,
    /// Booster settings, with the depth kept.
    pub params: BoosterParams,
    /// Every depth tried, with its validation figures; `params.max_depth` is the one kept.
    pub candidates: Vec<Candidate>,
    /// Boosting rounds of the evaluated model (its best validation iteration).
    pub iterations: usize,
    /// The model's inputs, in the order it reads them.
    pub features: Vec<FeatureSpec>,
    /// Total gain per feature, largest first.
    pub feature_importance: Vec<(String, f64)>,
    /// Uncalibrated model on the validation and test windows; calibrated figures are in
    /// `calibration/metrics.json`.
    pub raw_validation: Summary,
    /// Uncalibrated model on the test window.
    pub raw_test: Summary,
    /// Caveats for a reviewer (thin windows, sampling).
    pub notes: Vec<String>,
}

/// One tree depth tried in training.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    /// The depth.
    pub max_depth: usize,
    /// Its best iteration on the validation window.
    pub iterations: usize,
    /// Validation log-loss at that iteration (what the choice minimises).
    pub validation_log_loss: f64,
    /// Validation ROC-AUC at that iteration.
    pub validation_auc: Option<f64>,
}

/// Reads the model card of a published model partition.
pub async fn read_card(root: &DataRoot, run_date: RunDate) -> Result<ModelCard> {
    read_json_artifact(root, Dataset::Model, run_date, files::MODEL_CARD)
        .await
        .map(|(card, _)| card)
}
