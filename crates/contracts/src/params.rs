//! The `parameters` of each stage's manifests, typed.
//!
//! Writers build these structs and publish them through
//! [`PartitionWriter::commit`](repurchase_core::publish::PartitionWriter::commit); readers go
//! through [`read_params`], so a partition written without a field, or with a field of another
//! type, is refused with the partition and the field named instead of read as a default.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use repurchase_core::manifest::Manifest;
use repurchase_core::{CoreError, DataRoot, Result, RunDate};
use repurchase_model::BoosterParams;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Which completed orders are anchors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AnchorMode {
    /// Each customer's first completed order (the product's definition of repurchase).
    #[default]
    FirstOrder,
    /// Every completed order (what the original analysis did).
    EveryOrder,
}

impl FromStr for AnchorMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "first-order" => Ok(AnchorMode::FirstOrder),
            "every-order" => Ok(AnchorMode::EveryOrder),
            other => Err(format!(
                "unknown anchor mode {other:?}: use first-order or every-order"
            )),
        }
    }
}

impl fmt::Display for AnchorMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AnchorMode::FirstOrder => "first-order",
            AnchorMode::EveryOrder => "every-order",
        })
    }
}

/// `features/train` and `features/score`: how the anchors and labels were defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeaturesParams {
    /// Which completed orders are anchors.
    pub anchor: AnchorMode,
    /// Label horizon in days.
    pub horizon_days: u32,
    /// Days after a window closes before its anchor is labelled.
    pub settle_days: u32,
    /// Anchors before this moment are labelled (readable UTC).
    pub labelled_before: String,
    /// Delivery and return lags of the raw orders (`delivery_lag_*`, `return_lag_*` counters),
    /// the evidence for `settle_days`.
    pub order_lags: BTreeMap<String, u64>,
    /// Exclusive end of the run date, RFC 3339.
    pub run_end: String,
    /// The feature query that produced the partition (`features/anchors.sql`, …).
    pub sql: String,
}

/// `models/`: the served and the evaluated model and how they were fitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelParams {
    /// Version of the served model (`model.json`).
    pub model_version: String,
    /// Version of the evaluated model (`evaluation_model.json`).
    pub evaluated_model_version: String,
    /// Days of the validation window (`--valid-days`).
    pub valid_days: u32,
    /// Days of the test window (`--test-days`).
    pub test_days: u32,
    /// Label horizon of the features it was trained on.
    pub horizon_days: u32,
    /// Settle days of the features it was trained on.
    pub settle_days: u32,
    /// Folds of the cross-fitting that calibrates the served model (`--calibration-folds`).
    pub calibration_folds: u32,
    /// Booster settings, with the depth kept.
    pub booster: BoosterParams,
    /// Share of the training negatives kept, when negatives were sampled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negative_rate: Option<f64>,
    /// Weight of each kept negative, when negatives were sampled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negative_weight: Option<f64>,
}

/// `models/…/calibration/`: the calibrators chosen and the promotion policy applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationParams {
    /// Version of the served model calibrated.
    pub model_version: String,
    /// Version of the evaluated model calibrated.
    pub evaluated_model_version: String,
    /// Calibration method of the served model.
    pub method: String,
    /// Calibration method of the evaluated model.
    pub evaluation_method: String,
    /// ROC-AUC non-inferiority margin (`--promotion-margin`).
    pub promotion_margin: f64,
    /// Brier allowance as a share of the champion's (`--promotion-brier-margin`).
    pub promotion_brier_margin: f64,
    /// Past champions compared with (`--promotion-history`).
    pub promotion_history: u64,
    /// ROC-AUC below which nothing is promoted (`--promotion-auc-floor`).
    pub promotion_auc_floor: f64,
    /// Whether a champion that cannot score the features was set aside
    /// (`--accept-incomparable-champion`).
    pub accept_incomparable_champion: bool,
    /// Whether an inconclusive comparison keeps the champion
    /// (`--promotion-keep-when-inconclusive`).
    pub promotion_keep_when_inconclusive: bool,
}

/// Which open customers `predicted_repurchase` flags.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum FlagRule {
    /// `probability` at or above the served model's threshold.
    Threshold {
        /// The threshold.
        threshold: f64,
    },
    /// The top `share` of the open customers by `probability` (at least one when any is open).
    TopShare {
        /// Share of the open customers flagged, in (0, 1].
        share: f64,
    },
}

/// `scores/` and `score_shards/`: the model served and the flag rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoresParams {
    /// Run date of the model served.
    pub model_date: RunDate,
    /// Version of the model served.
    pub model_version: String,
    /// The served model's threshold (from its calibration).
    pub threshold: f64,
    /// The rule that set `predicted_repurchase`.
    pub flag: FlagRule,
    /// `I/N` for a shard of `score_shards/`; absent in `scores/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

/// Reads a manifest's parameters as `T`: a field that is missing or of another type is a
/// [`CoreError::BadManifest`] naming the partition and the field.
pub fn read_params<T: DeserializeOwned>(root: &DataRoot, manifest: &Manifest) -> Result<T> {
    T::deserialize(&manifest.parameters).map_err(|e| CoreError::BadManifest {
        path: root.url(&format!(
            "{}/run_date={}/_manifest.json",
            manifest.dataset, manifest.run_date
        )),
        reason: format!("parameters: {e}; rerun the stage that writes it"),
    })
}

/// `params` as the manifest's `parameters` value (keys sorted, as every manifest writes them).
pub fn to_value<T: Serialize>(params: &T) -> Result<serde_json::Value> {
    serde_json::to_value(params).map_err(|e| CoreError::Bug {
        what: "manifest parameters".into(),
        reason: format!("do not serialise: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use repurchase_core::StoreConfig;

    fn manifest(parameters: serde_json::Value) -> Manifest {
        serde_json::from_value(serde_json::json!({
            "format_version": 1,
            "dataset": "features/train",
            "run_date": "2025-06-30",
            "stage": "build-features",
            "code_version": "test",
            "parameters": parameters,
            "files": [],
            "row_count": 0,
            "schema": [],
            "inputs": [],
            "counters": {},
        }))
        .unwrap()
    }

    fn features() -> FeaturesParams {
        FeaturesParams {
            anchor: AnchorMode::EveryOrder,
            horizon_days: 60,
            settle_days: 14,
            labelled_before: "2025-04-17 00:00:00".into(),
            order_lags: BTreeMap::from([("delivery_lag_p99_days".into(), 9)]),
            run_end: "2025-07-01T00:00:00+00:00".into(),
            sql: "features/anchors.sql".into(),
        }
    }

    #[test]
    fn params_round_trip_through_a_manifest() {
        let root = DataRoot::open("memory://contracts/lake", &StoreConfig::default()).unwrap();
        let m = manifest(to_value(&features()).unwrap());
        let back: FeaturesParams = read_params(&root, &m).unwrap();
        assert_eq!(back, features());
        assert_eq!(m.parameters["anchor"], "every-order");
    }

    #[test]
    fn a_missing_or_mistyped_field_is_named_not_defaulted() {
        let root = DataRoot::open("memory://contracts/lake", &StoreConfig::default()).unwrap();
        let mut value = to_value(&features()).unwrap();
        value.as_object_mut().unwrap().remove("horizon_days");
        let err = read_params::<FeaturesParams>(&root, &manifest(value)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("missing field `horizon_days`"), "{text}");
        assert!(
            text.contains("features/train/run_date=2025-06-30/_manifest.json"),
            "{text}"
        );
        assert_eq!(err.class(), repurchase_core::ErrorClass::BadInput);

        let mut value = to_value(&features()).unwrap();
        value["anchor"] = serde_json::json!("every-week");
        let text = read_params::<FeaturesParams>(&root, &manifest(value))
            .unwrap_err()
            .to_string();
        assert!(text.contains("every-week"), "{text}");
    }

    #[test]
    fn anchor_modes_parse_and_print_alike() {
        for m in [AnchorMode::FirstOrder, AnchorMode::EveryOrder] {
            assert_eq!(m.to_string().parse::<AnchorMode>(), Ok(m));
        }
        assert!("weekly".parse::<AnchorMode>().is_err());
    }
}
