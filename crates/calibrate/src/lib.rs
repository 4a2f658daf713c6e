//! The `calibrate` worker.
//!
//! Loads the run date's model and the same `features/train` partition it was trained on, predicts
//! the validation and test windows, chooses isotonic or Platt calibration by cross-fitted Brier on
//! the validation window (the test window is never used to choose anything), and reports on the
//! held-out test window: ROC-AUC, PR-AUC, Brier, log loss, calibration error, the F1-optimal
//! threshold (chosen on validation), the top-10% budget, lift and gains by decile, and how well the
//! elapsed-time adjustment ([`repurchase_model::timing`]) holds part-way through the window.
//! Writes `models/run_date=D/calibration/`: `calibrator.json`, `timing.json`, `metrics.json`,
//! `model_card.json` (the trainer's card plus calibration, threshold and held-out metrics),
//! `promotion.json` (whether this model becomes the champion `score` serves; [`champion`]) and a
//! self-contained `report.html`.

pub mod champion;

use std::collections::BTreeMap;

use bytes::Bytes;
use clap::Args as ClapArgs;
use repurchase_core::cli::{CommonArgs, parse_run_date};
use repurchase_core::layout::Dataset;
use repurchase_core::logging::StepTimer;
use repurchase_core::publish::PartitionWriter;
use repurchase_core::{CoreError, DataRoot, Result, RunDate};
use repurchase_model::ModelArtifact;
use repurchase_model::calibration::{CalibrationChoice, Calibrator, choose_calibrator};
use repurchase_model::io::{load_features, read_artifact, read_json_artifact};
use repurchase_model::metrics::{
    Confusion, DecileRow, Summary, bootstrap_auc_ci, confusion_at, deciles, f1_optimal_threshold,
    summary, top_k_confusion,
};
use repurchase_model::report::{ReportInput, render};
use repurchase_model::timing::RepurchaseTiming;
use repurchase_train::ModelCard;

use crate::champion::{Challenger, ChampionPolicy, ModelRef, Promotion};
use serde::{Deserialize, Serialize};
use tracing::info;

pub const STAGE: &str = "calibrate";

/// Share of customers a campaign with a fixed budget contacts: the top 10% by probability.
pub const TOP_K_FRACTION: f64 = 0.10;
/// Elapsed days at which the conditional probabilities are checked on the test window.
const ELAPSED_CHECKS: [f64; 4] = [0.0, 15.0, 30.0, 45.0];
const BOOTSTRAP_RESAMPLES: usize = 1000;

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Promote the new model to champion unless its held-out ROC-AUC is below the champion's
    /// (on the same rows) by more than this.
    #[arg(long, env = "REPURCHASE_PROMOTION_MARGIN", default_value_t = champion::DEFAULT_MARGIN, value_parser = parse_margin)]
    pub promotion_margin: f64,

    /// Compare with the champion named by this earlier calibration. Default: the latest
    /// calibration before the run date.
    #[arg(long, env = "REPURCHASE_CHAMPION_FROM", value_parser = parse_run_date)]
    pub champion_from: Option<RunDate>,
}

fn parse_margin(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(m) if (0.0..=1.0).contains(&m) => Ok(m),
        _ => Err(format!("{s:?} is not an AUC margin between 0 and 1")),
    }
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
    /// Bootstrap 95% interval of the calibrated test ROC-AUC (1000 resamples, fixed seed).
    pub test_auc_ci: Option<(f64, f64)>,
    /// Contacting the top [`TOP_K_FRACTION`] of the test window.
    pub top_k_fraction: f64,
    pub test_at_top_k: Confusion,
    pub test_deciles: Vec<DecileRow>,
    /// Test anchors still without a repurchase `elapsed_days` into their window, scored with the
    /// conditional probability `score` would give them that day.
    pub test_by_elapsed: Vec<ElapsedCheck>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ElapsedCheck {
    pub elapsed_days: f64,
    pub mean_predicted: f64,
    #[serde(flatten)]
    pub summary: Summary,
}

/// The trainer's model card completed by calibration: what a reviewer signs off.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CalibratedCard {
    #[serde(flatten)]
    pub model: ModelCard,
    pub calibration: String,
    /// Probability at or above which `score` predicts a repurchase (F1-optimal on validation).
    pub threshold: f64,
    /// Calibrated metrics on the held-out test window (`test` holds its row counts).
    pub test_metrics: Summary,
    pub test_auc_ci: Option<(f64, f64)>,
    pub test_at_threshold: Confusion,
    pub test_at_top_k: Confusion,
    pub timing: RepurchaseTiming,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub model_version: String,
    pub method: &'static str,
    pub test_auc: Option<f64>,
    pub test_brier: f64,
    pub promoted: bool,
    pub champion: String,
}

pub async fn run(args: Args) -> Result<Outcome> {
    let root = args.common.open_root()?;
    let policy = ChampionPolicy {
        margin: args.promotion_margin,
        champion_from: args.champion_from,
    };
    calibrate_with(&root, args.common.run_date, &policy).await
}

/// [`calibrate_with`] the default promotion policy.
pub async fn calibrate(root: &DataRoot, run_date: RunDate) -> Result<Outcome> {
    calibrate_with(root, run_date, &ChampionPolicy::default()).await
}

pub async fn calibrate_with(
    root: &DataRoot,
    run_date: RunDate,
    policy: &ChampionPolicy,
) -> Result<Outcome> {
    let timer = StepTimer::start("calibrate");
    let card = repurchase_train::read_card(root, run_date).await?;
    let previous = champion::current_champion(root, run_date, policy).await?;
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
    let (tr, va, te) = card.windows.indices(&table.anchor_us);
    let (valid, test) = (table.take(&va), table.take(&te));
    // Timing of repurchases from the training and validation windows only.
    let days = table.days_to_repurchase.as_deref().ok_or_else(|| {
        CoreError::Invalid(format!(
            "features/train for {run_date} has no days_to_repurchase column; rerun build-features"
        ))
    })?;
    let known: Vec<f64> = tr.iter().chain(&va).map(|&i| days[i]).collect();
    let timing = RepurchaseTiming::fit(&known, card.windows.horizon_days);
    let (y_valid, y_test) = (valid.labels()?, test.labels()?);
    let raw_valid = model.predict(&valid)?;
    let raw_test = model.predict(&test)?;

    let choice = choose_calibrator(&raw_valid, y_valid);
    let cal: &Calibrator = &choice.chosen;
    let p_valid = cal.predict_all(&raw_valid);
    let p_test = cal.predict_all(&raw_test);
    let best = f1_optimal_threshold(&p_valid, y_valid);
    let test_days = test.days_to_repurchase.as_deref().unwrap_or_default();
    let test_by_elapsed = ELAPSED_CHECKS
        .iter()
        .map(|&e| elapsed_check(&timing, &p_test, y_test, test_days, e))
        .collect();
    let metrics = Metrics {
        model_version: card.model_version.clone(),
        calibration: choice.clone(),
        test_raw: summary(&raw_test, y_test),
        test: summary(&p_test, y_test),
        validation: summary(&p_valid, y_valid),
        threshold: best.threshold,
        test_at_threshold: confusion_at(&p_test, y_test, best.threshold),
        test_auc_ci: bootstrap_auc_ci(&p_test, y_test, BOOTSTRAP_RESAMPLES, 0),
        top_k_fraction: TOP_K_FRACTION,
        test_at_top_k: top_k_confusion(&p_test, y_test, TOP_K_FRACTION),
        test_deciles: deciles(&p_test, y_test),
        test_by_elapsed,
    };
    let calibrated_card = CalibratedCard {
        model: card.clone(),
        calibration: cal.name().to_string(),
        threshold: metrics.threshold,
        test_metrics: metrics.test.clone(),
        test_auc_ci: metrics.test_auc_ci,
        test_at_threshold: metrics.test_at_threshold.clone(),
        test_at_top_k: metrics.test_at_top_k.clone(),
        timing: timing.clone(),
    };
    let (promotion, champion_inputs) = champion::decide(
        root,
        Challenger {
            model: ModelRef {
                model_date: run_date,
                model_version: card.model_version.clone(),
            },
            test: &test,
            probs: &p_test,
            labels: y_test,
        },
        previous,
        policy.margin,
    )
    .await?;
    info!(promoted = promotion.promoted, champion = %promotion.champion.model_version, reason = %promotion.reason, "champion decided");
    let mut facts = report_facts(&card, &metrics, cal.name(), &timing);
    facts.push(("Champion".into(), promotion.reason.clone()));
    let report = render(&ReportInput {
        title: format!("Repurchase model {}", card.model_version),
        facts,
        probs: &p_test,
        raw: &raw_test,
        labels: y_test,
        threshold: metrics.threshold,
        top_k_fraction: TOP_K_FRACTION,
        importance: &card.feature_importance,
        auc_ci: metrics.test_auc_ci,
        notes: report_notes(&card, &metrics),
    });
    timer.finish((valid.len() + test.len()) as u64, test.len() as u64);
    info!(method = cal.name(), test_auc = ?metrics.test.roc_auc, test_brier = metrics.test.brier, test_ece = metrics.test.ece, threshold = metrics.threshold, "calibrated");

    let mut w = PartitionWriter::begin(root, Dataset::Calibration, run_date).await?;
    w.write_json("calibrator.json", cal).await?;
    w.write_json("metrics.json", &metrics).await?;
    w.write_json("timing.json", &timing).await?;
    w.write_json("model_card.json", &calibrated_card).await?;
    w.write_json(champion::PROMOTION_FILE, &promotion).await?;
    w.write_bytes("report.html", Bytes::from(report.into_bytes()))
        .await?;
    let counters = BTreeMap::from([
        ("validation_rows".to_string(), valid.len() as u64),
        ("test_rows".to_string(), test.len() as u64),
    ]);
    let params = serde_json::json!({
        "model_version": card.model_version,
        "method": cal.name(),
        "promotion_margin": policy.margin,
    });
    let mut inputs = vec![model_input, features_input];
    inputs.extend(champion_inputs);
    w.commit(STAGE, params, None, inputs, counters).await?;
    Ok(Outcome {
        model_version: card.model_version,
        method: cal.name(),
        test_auc: metrics.test.roc_auc,
        test_brier: metrics.test.brier,
        promoted: promotion.promoted,
        champion: promotion.champion.model_version,
    })
}

/// Test anchors that are still without a repurchase `elapsed` days in, with the conditional
/// probability `score` would give them.
fn elapsed_check(
    timing: &RepurchaseTiming,
    probs: &[f64],
    labels: &[bool],
    days: &[f64],
    elapsed: f64,
) -> ElapsedCheck {
    let (mut p, mut y) = (Vec::new(), Vec::new());
    for i in 0..probs.len().min(labels.len()) {
        let alive = !labels[i] || days.get(i).is_none_or(|d| d.is_nan() || *d > elapsed);
        if alive {
            p.push(timing.conditional(probs[i], elapsed));
            y.push(labels[i]);
        }
    }
    let mean_predicted = if p.is_empty() {
        0.0
    } else {
        p.iter().sum::<f64>() / p.len() as f64
    };
    ElapsedCheck {
        elapsed_days: elapsed,
        mean_predicted,
        summary: summary(&p, &y),
    }
}

fn report_facts(
    card: &ModelCard,
    m: &Metrics,
    method: &str,
    timing: &RepurchaseTiming,
) -> Vec<(String, String)> {
    let w = &card.windows.readable;
    let window = |a: usize, b: usize| format!("{} .. {}", w[a].1, w[b].1);
    let rows = |s: &repurchase_train::WindowStats| {
        format!(
            "{} anchors, {} repurchased ({:.1}%)",
            s.rows,
            s.positives,
            100.0 * s.positives as f64 / s.rows.max(1) as f64
        )
    };
    vec![
        ("Model version".into(), card.model_version.clone()),
        ("Run date".into(), card.run_date.to_string()),
        ("Anchors".into(), card.anchor.clone()),
        (
            "Label".into(),
            format!(
                "another completed order within {} days of the anchor",
                card.windows.horizon_days
            ),
        ),
        (
            "Training window".into(),
            format!("anchors before {}: {}", w[0].1, rows(&card.train)),
        ),
        (
            "Validation window".into(),
            format!("{}: {}", window(1, 2), rows(&card.validation)),
        ),
        (
            "Test window (held out)".into(),
            format!("{}: {}", window(3, 4), rows(&card.test)),
        ),
        (
            "Features".into(),
            format!(
                "{} ({} boosting rounds)",
                card.features.len(),
                card.iterations
            ),
        ),
        ("Calibration".into(), method.to_string()),
        (
            "Threshold".into(),
            format!("{:.4} (F1-optimal on validation)", m.threshold),
        ),
        (
            "Repurchase timing".into(),
            format!(
                "{} repurchases; {:.0}% within 15 days, {:.0}% within 30",
                timing.repurchases,
                100.0 * timing.share_within(15.0),
                100.0 * timing.share_within(30.0)
            ),
        ),
    ]
}

fn report_notes(card: &ModelCard, m: &Metrics) -> Vec<String> {
    let mut notes = card.notes.clone();
    notes.push(
        "All figures are on the held-out test window, which was used for nothing else: the calibrator and the threshold were chosen on the validation window.".into(),
    );
    for c in &m.test_by_elapsed {
        notes.push(format!(
            "{:.0} days into the window without a repurchase: {} test anchors, mean predicted {:.3}, observed {:.3}, ROC-AUC {}.",
            c.elapsed_days,
            c.summary.rows,
            c.mean_predicted,
            c.summary.positive_rate,
            c.summary
                .roc_auc
                .map_or("n/a".to_string(), |a| format!("{a:.3}"))
        ));
    }
    notes
}

/// Reads the champion decision of a published calibration partition.
pub async fn read_promotion(root: &DataRoot, run_date: RunDate) -> Result<Promotion> {
    read_json_artifact(
        root,
        Dataset::Calibration,
        run_date,
        champion::PROMOTION_FILE,
    )
    .await
    .map(|(p, _)| p)
}

/// Reads the repurchase timing of a published calibration partition.
pub async fn read_timing(root: &DataRoot, run_date: RunDate) -> Result<RepurchaseTiming> {
    read_json_artifact(root, Dataset::Calibration, run_date, "timing.json")
        .await
        .map(|(timing, _)| timing)
}

/// Reads the calibrator and metrics of a published calibration partition.
pub async fn read_calibration(
    root: &DataRoot,
    run_date: RunDate,
) -> Result<(Calibrator, Metrics, repurchase_core::manifest::InputRef)> {
    let (cal, input) =
        read_json_artifact(root, Dataset::Calibration, run_date, "calibrator.json").await?;
    let (metrics, _) =
        read_json_artifact(root, Dataset::Calibration, run_date, "metrics.json").await?;
    Ok((cal, metrics, input))
}
