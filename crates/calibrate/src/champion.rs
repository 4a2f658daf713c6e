//! Champion/challenger: which calibrated model `score` serves.
//!
//! Every calibration decides, in its `promotion.json`, which model is champion from its run date
//! on. The model just calibrated (the challenger) replaces the current champion only if its
//! held-out ROC-AUC is not worse than the champion's by more than a margin, both measured on the
//! same rows: the challenger's test window, restricted to anchors the champion never saw (at or
//! after the start of the champion's own test window, so neither its trees, its early stopping,
//! its calibrator nor its threshold were fitted on them). A retrain on a bad week therefore
//! cannot silently replace a good model; the report and the decision say why.
//!
//! The current champion is the one named by the latest calibration before the run date (or by an
//! explicitly given one). Decisions chain, so calibrations must run in date order; the DAG's
//! `max_active_runs=1` keeps them so, and a backfill that runs dates concurrently can pin the
//! predecessor with `--champion-from`.

use repurchase_core::layout::Dataset;
use repurchase_core::manifest::{InputRef, Manifest};
use repurchase_core::{CoreError, DataRoot, Result, RunDate};
use repurchase_model::ModelArtifact;
use repurchase_model::io::{read_artifact, read_json_artifact};
use repurchase_model::metrics::roc_auc;
use repurchase_model::table::FeatureTable;
use serde::{Deserialize, Serialize};

pub const PROMOTION_FILE: &str = "promotion.json";
/// Default tolerated AUC loss: a challenger up to 0.01 below the champion is still promoted,
/// so that the served model keeps up with the data rather than chasing test-window noise.
pub const DEFAULT_MARGIN: f64 = 0.01;

/// How a calibration decides promotion.
#[derive(Debug, Clone, PartialEq)]
pub struct ChampionPolicy {
    /// Largest held-out AUC loss against the champion that still promotes the challenger.
    pub margin: f64,
    /// Calibration whose decision names the current champion; default the latest one before
    /// the run date.
    pub champion_from: Option<RunDate>,
}

impl Default for ChampionPolicy {
    fn default() -> Self {
        ChampionPolicy {
            margin: DEFAULT_MARGIN,
            champion_from: None,
        }
    }
}

/// A calibrated model, by the run date it was trained for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    pub model_date: RunDate,
    pub model_version: String,
}

/// `promotion.json`: the decision of one calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    pub challenger: ModelRef,
    /// Champion before this decision; `None` for the first calibrated model.
    pub previous_champion: Option<ModelRef>,
    /// Calibration that named `previous_champion`.
    pub previous_decision: Option<RunDate>,
    pub margin: f64,
    /// Rows both models were compared on, and how many of them repurchased.
    pub compared_rows: u64,
    pub compared_positives: u64,
    pub challenger_auc: Option<f64>,
    pub champion_auc: Option<f64>,
    pub promoted: bool,
    /// Champion from this run date on: the model `score` uses.
    pub champion: ModelRef,
    pub reason: String,
}

/// The champion named by the calibration of `decision_date`, with that calibration's manifest.
pub async fn decision_at(root: &DataRoot, decision_date: RunDate) -> Result<(ModelRef, InputRef)> {
    let (manifest, input) = Manifest::read(root, Dataset::Calibration, decision_date).await?;
    if manifest.file(PROMOTION_FILE).is_some() {
        let (p, input): (Promotion, _) =
            read_json_artifact(root, Dataset::Calibration, decision_date, PROMOTION_FILE).await?;
        return Ok((p.champion, input));
    }
    // Calibrations written before promotion existed served their own model.
    let (metrics, _): (crate::Metrics, _) =
        read_json_artifact(root, Dataset::Calibration, decision_date, "metrics.json").await?;
    Ok((
        ModelRef {
            model_date: decision_date,
            model_version: metrics.model_version,
        },
        input,
    ))
}

/// Latest run date before (or, with `inclusive`, at) `run_date` that has a published calibration.
pub async fn latest_calibration(
    root: &DataRoot,
    run_date: RunDate,
    inclusive: bool,
) -> Result<Option<RunDate>> {
    let mut dates: Vec<RunDate> = root
        .list_dirs("models")
        .await?
        .iter()
        .filter_map(|n| Dataset::parse_partition_dir(n))
        .filter(|d| *d < run_date || (inclusive && *d == run_date))
        .collect();
    dates.sort();
    for d in dates.into_iter().rev() {
        if root.exists(&Dataset::Calibration.manifest_path(d)).await? {
            return Ok(Some(d));
        }
    }
    Ok(None)
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

/// The champion a calibration of `run_date` competes against, and the manifest naming it.
pub async fn current_champion(
    root: &DataRoot,
    run_date: RunDate,
    policy: &ChampionPolicy,
) -> Result<Option<(RunDate, ModelRef, InputRef)>> {
    let decided = match policy.champion_from {
        Some(d) if d >= run_date => {
            return Err(CoreError::Invalid(format!(
                "--champion-from {d} is not before the run date {run_date}: the champion must be decided by an earlier calibration"
            )));
        }
        Some(d) => Some(d),
        None => latest_calibration(root, run_date, false).await?,
    };
    let Some(decided) = decided else {
        return Ok(None);
    };
    let (champion, input) = decision_at(root, decided).await?;
    Ok(Some((decided, champion, input)))
}

/// The challenger's calibrated test-window predictions, for the comparison.
pub struct Challenger<'a> {
    pub model: ModelRef,
    pub test: &'a FeatureTable,
    pub probs: &'a [f64],
    pub labels: &'a [bool],
}

/// Decides promotion; returns the decision and the inputs it read (the champion's model and
/// calibration manifests) for the calibration's manifest.
pub async fn decide(
    root: &DataRoot,
    challenger: Challenger<'_>,
    previous: Option<(RunDate, ModelRef, InputRef)>,
    margin: f64,
) -> Result<(Promotion, Vec<InputRef>)> {
    let Some((decided, champion, decision_input)) = previous else {
        let auc = roc_auc(challenger.probs, challenger.labels);
        return Ok((
            Promotion {
                challenger: challenger.model.clone(),
                previous_champion: None,
                previous_decision: None,
                margin,
                compared_rows: challenger.labels.len() as u64,
                compared_positives: challenger.labels.iter().filter(|y| **y).count() as u64,
                challenger_auc: auc,
                champion_auc: None,
                promoted: true,
                champion: challenger.model,
                reason: "first calibrated model: no champion to compare with".into(),
            },
            vec![],
        ));
    };
    let mut inputs = vec![decision_input];
    let card = repurchase_train::read_card(root, champion.model_date).await?;
    let (model_bytes, _, model_input) =
        read_artifact(root, Dataset::Model, champion.model_date, "model.json").await?;
    let (cal, _, cal_input) = crate::read_calibration(root, champion.model_date).await?;
    if cal_input != inputs[0] {
        inputs.push(cal_input);
    }
    inputs.push(model_input);
    let model = ModelArtifact::from_bytes(&model_bytes)?;

    // Rows the champion never saw in any fitting step.
    let unseen: Vec<usize> = (0..challenger.test.len())
        .filter(|&i| challenger.test.anchor_us[i] >= card.windows.test_start_us)
        .collect();
    let rows = challenger.test.take(&unseen);
    let labels: Vec<bool> = unseen.iter().map(|&i| challenger.labels[i]).collect();
    let ours: Vec<f64> = unseen.iter().map(|&i| challenger.probs[i]).collect();
    let challenger_auc = roc_auc(&ours, &labels);
    let positives = labels.iter().filter(|y| **y).count() as u64;
    let base = Promotion {
        challenger: challenger.model.clone(),
        previous_champion: Some(champion.clone()),
        previous_decision: Some(decided),
        margin,
        compared_rows: labels.len() as u64,
        compared_positives: positives,
        challenger_auc,
        champion_auc: None,
        promoted: true,
        champion: challenger.model.clone(),
        reason: String::new(),
    };
    let champion_probs = match model.predict(&rows) {
        Ok(raw) => cal.predict_all(&raw),
        Err(e) => {
            return Ok((
                Promotion {
                    reason: format!(
                        "promoted: the champion {} cannot score the current features ({e})",
                        champion.model_version
                    ),
                    ..base
                },
                inputs,
            ));
        }
    };
    let champion_auc = roc_auc(&champion_probs, &labels);
    let decision = match (challenger_auc, champion_auc) {
        (Some(new), Some(old)) if new >= old - margin => Promotion {
            champion_auc,
            reason: format!(
                "promoted: held-out AUC {new:.4} vs champion {} {old:.4} on {} anchors ({positives} repurchased), margin {margin}",
                champion.model_version,
                labels.len()
            ),
            ..base
        },
        (Some(new), Some(old)) => Promotion {
            champion_auc,
            promoted: false,
            champion: champion.clone(),
            reason: format!(
                "kept champion {}: challenger's held-out AUC {new:.4} is more than {margin} below the champion's {old:.4} on {} anchors ({positives} repurchased)",
                champion.model_version,
                labels.len()
            ),
            ..base
        },
        _ => Promotion {
            champion_auc,
            promoted: false,
            champion: champion.clone(),
            reason: format!(
                "kept champion {}: AUC undefined on the {} comparable anchors ({positives} repurchased)",
                champion.model_version,
                labels.len()
            ),
            ..base
        },
    };
    Ok((decision, inputs))
}
