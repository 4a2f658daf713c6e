//! The `calibrate` worker.
//!
//! Two jobs, on the partitions `train` wrote for the run date:
//!
//! - **Measure** the procedure: the evaluated model predicts the validation and test windows of
//!   the same `features/train` partition it was trained on; isotonic, Platt or no calibration is
//!   chosen by cross-fitted Brier on the validation window (the test window is never used to
//!   choose anything), and the held-out test window gets ROC-AUC, PR-AUC, Brier, log loss,
//!   calibration error, the F1-optimal threshold (chosen on validation), the top-10% budget, lift
//!   and gains by decile, and how well the elapsed-time adjustment ([`repurchase_model::timing`])
//!   holds part-way through the window.
//! - **Calibrate what is served**: the served model's calibrator is chosen and fitted the same way
//!   on the cross-fitted fold predictions ([`repurchase_model::crossfit`]), its repurchase timing
//!   on every labelled repurchase, and the threshold of `score`'s flag on the quantity it is
//!   applied to: the conditional probability of the customers still open on a day of scoring
//!   ([`repurchase_model::timing::open_snapshots`]).
//!
//! Writes `models/run_date=D/calibration/`: `calibrator.json`, `timing.json` (both for the served
//! model), `evaluation_calibrator.json`, `metrics.json`, `model_card.json` (the trainer's card plus
//! calibration, thresholds and held-out metrics), `promotion.json` (whether this model becomes the
//! champion `score` serves; [`champion`]) and a self-contained `report.html`.

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
use repurchase_model::crossfit::{self, CrossFit};
use repurchase_model::io::{load_features, read_artifact, read_json_artifact};
use repurchase_model::metrics::{
    Confusion, DecileRow, Summary, bootstrap_auc_ci, confusion_at, deciles, f1_optimal_threshold,
    summary, top_k_confusion,
};
use repurchase_model::report::{ReportInput, render};
use repurchase_model::timing::{RepurchaseTiming, open_snapshots};
use repurchase_train::{EVALUATION_MODEL_FILE, ModelCard};

use crate::champion::{Challenger, ChampionPolicy, ModelRef, Promotion};
use serde::{Deserialize, Serialize};
use tracing::info;

pub const STAGE: &str = "calibrate";

/// File names of the calibration partition.
pub const CALIBRATOR_FILE: &str = "calibrator.json";
pub const EVALUATION_CALIBRATOR_FILE: &str = "evaluation_calibrator.json";
pub const TIMING_FILE: &str = "timing.json";
pub const METRICS_FILE: &str = "metrics.json";

/// Share of customers a campaign with a fixed budget contacts: the top 10% by probability.
pub const TOP_K_FRACTION: f64 = 0.10;
/// Elapsed days at which the conditional probabilities are checked on the test window.
const ELAPSED_CHECKS: [f64; 4] = [0.0, 15.0, 30.0, 45.0];
const BOOTSTRAP_RESAMPLES: usize = 1000;

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Non-inferiority margin: the new model is kept out when the 95% paired bootstrap interval
    /// of its held-out ROC-AUC minus a past champion's (on the same rows) reaches below −margin.
    #[arg(long, env = "REPURCHASE_PROMOTION_MARGIN", default_value_t = champion::DEFAULT_MARGIN, value_parser = parse_margin)]
    pub promotion_margin: f64,

    /// Kept out as well when the interval of its Brier score minus a past champion's reaches
    /// above this share of the champion's Brier score.
    #[arg(long, env = "REPURCHASE_PROMOTION_BRIER_MARGIN", default_value_t = champion::DEFAULT_BRIER_MARGIN, value_parser = parse_margin)]
    pub promotion_brier_margin: f64,

    /// Past champions the new model must be non-inferior to (the current one and those before).
    #[arg(long, env = "REPURCHASE_PROMOTION_HISTORY", default_value_t = champion::DEFAULT_HISTORY, value_parser = clap::value_parser!(u32).range(1..=52))]
    pub promotion_history: u32,

    /// Held-out ROC-AUC below which a model is never promoted.
    #[arg(long, env = "REPURCHASE_PROMOTION_AUC_FLOOR", default_value_t = champion::DEFAULT_AUC_FLOOR, value_parser = parse_margin)]
    pub promotion_auc_floor: f64,

    /// Keep the champion when a comparison is inconclusive (an interval reaches beyond its
    /// margin and across 0): non-inferiority must then be shown. Default: the fresher model is
    /// served unless it is shown worse.
    #[arg(long, env = "REPURCHASE_PROMOTION_KEEP_WHEN_INCONCLUSIVE")]
    pub promotion_keep_when_inconclusive: bool,

    /// Decide even when a past champion cannot score the current features (after a deliberate
    /// change of the features); without it such a calibration stops with exit 2.
    #[arg(long, env = "REPURCHASE_ACCEPT_INCOMPARABLE_CHAMPION")]
    pub accept_incomparable_champion: bool,

    /// Compare with the champion named by this earlier calibration. Default: the latest
    /// calibration before the run date.
    #[arg(long, env = "REPURCHASE_CHAMPION_FROM", value_parser = parse_run_date)]
    pub champion_from: Option<RunDate>,
}

fn parse_margin(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(m) if (0.0..=1.0).contains(&m) => Ok(m),
        _ => Err(format!("{s:?} is not a number between 0 and 1")),
    }
}

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
    pub test_open_flag: Confusion,
    /// At the anchor (nothing elapsed): the F1-optimal threshold on the validation window's
    /// probabilities and its confusion matrix on the test window (the report's operating point).
    pub threshold_at_anchor: f64,
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
    pub served: ServedCalibration,
}

/// How the served model's probabilities and flag were calibrated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServedCalibration {
    /// Calibrator chosen and fitted on the cross-fitted predictions.
    pub calibration: CalibrationChoice,
    /// Cross-fitted predictions, uncalibrated and calibrated (in-sample for the calibrator).
    pub cross_fit_raw: Summary,
    pub cross_fit: Summary,
    /// The flag at [`Metrics::threshold`] on the cross-fitted open customers.
    pub cross_fit_open_flag: Confusion,
    /// Labelled repurchases the served timing was estimated from.
    pub timing_repurchases: u64,
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
    /// The served model's calibration method.
    pub calibration: String,
    /// Conditional probability at or above which `score` flags a repurchase ([`Metrics::threshold`]).
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
        brier_margin: args.promotion_brier_margin,
        history: args.promotion_history as usize,
        auc_floor: args.promotion_auc_floor,
        accept_incomparable: args.accept_incomparable_champion,
        keep_when_inconclusive: args.promotion_keep_when_inconclusive,
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
    let (eval_bytes, model_manifest, model_input) =
        read_artifact(root, Dataset::Model, run_date, EVALUATION_MODEL_FILE).await?;
    let model = ModelArtifact::from_bytes(&eval_bytes)?;
    let (cross_fit, _): (CrossFit, _) =
        read_json_artifact(root, Dataset::Model, run_date, crossfit::FILE).await?;
    cross_fit.check().map_err(|reason| CoreError::BadManifest {
        path: root.url(&Dataset::Model.manifest_path(run_date)),
        reason,
    })?;
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
    let horizon = card.windows.horizon_days;
    let (tr, va, te) = card.windows.indices(&table.anchor_us);
    let (valid, test) = (table.take(&va), table.take(&te));
    let days = table.days_to_repurchase.as_deref().ok_or_else(|| {
        CoreError::Invalid(format!(
            "features/train for {run_date} has no days_to_repurchase column; rerun build-features"
        ))
    })?;
    // Timing of repurchases: for measuring, from the training and validation windows only; for
    // serving, from every labelled repurchase.
    let known: Vec<f64> = tr.iter().chain(&va).map(|&i| days[i]).collect();
    let timing = RepurchaseTiming::fit(&known, horizon);
    let labelled: Vec<f64> = (0..table.len())
        .filter(|&i| table.anchor_us[i] < card.windows.labelled_end_us())
        .map(|i| days[i])
        .collect();
    let served_timing = RepurchaseTiming::fit(&labelled, horizon);

    // The evaluated procedure on the held-out test window.
    let (y_valid, y_test) = (valid.labels()?, test.labels()?);
    let raw_valid = model.predict(&valid)?;
    let raw_test = model.predict(&test)?;
    let choice = choose_calibrator(&raw_valid, y_valid);
    let cal: &Calibrator = &choice.chosen;
    let p_valid = cal.predict_all(&raw_valid);
    let p_test = cal.predict_all(&raw_test);
    let at_anchor = f1_optimal_threshold(&p_valid, y_valid);
    let valid_days_to = valid.days_to_repurchase.as_deref().unwrap_or_default();
    let test_days = test.days_to_repurchase.as_deref().unwrap_or_default();
    let (q_valid, o_valid) = open_snapshots(&timing, &p_valid, y_valid, valid_days_to);
    let (q_test, o_test) = open_snapshots(&timing, &p_test, y_test, test_days);
    let evaluation_threshold = f1_optimal_threshold(&q_valid, &o_valid).threshold;
    let test_by_elapsed = ELAPSED_CHECKS
        .iter()
        .map(|&e| elapsed_check(&timing, &p_test, y_test, test_days, e))
        .collect();

    // The served model: calibrator and flag from the cross-fitted predictions.
    let served_choice = choose_calibrator(&cross_fit.raw, &cross_fit.label);
    let p_cross = served_choice.chosen.predict_all(&cross_fit.raw);
    let (q_cross, o_cross) = open_snapshots(
        &served_timing,
        &p_cross,
        &cross_fit.label,
        &cross_fit.days(),
    );
    let served_flag = f1_optimal_threshold(&q_cross, &o_cross);
    let served = ServedCalibration {
        calibration: served_choice.clone(),
        cross_fit_raw: summary(&cross_fit.raw, &cross_fit.label),
        cross_fit: summary(&p_cross, &cross_fit.label),
        cross_fit_open_flag: served_flag.clone(),
        timing_repurchases: served_timing.repurchases,
    };
    let metrics = Metrics {
        model_version: card.model_version.clone(),
        evaluated_model_version: card.evaluated_model_version.clone(),
        calibration: choice.clone(),
        test_raw: summary(&raw_test, y_test),
        test: summary(&p_test, y_test),
        validation: summary(&p_valid, y_valid),
        threshold: served_flag.threshold,
        evaluation_threshold,
        test_open_flag: confusion_at(&q_test, &o_test, evaluation_threshold),
        threshold_at_anchor: at_anchor.threshold,
        test_at_threshold: confusion_at(&p_test, y_test, at_anchor.threshold),
        test_auc_ci: bootstrap_auc_ci(&p_test, y_test, &test.user_id, BOOTSTRAP_RESAMPLES, 0),
        top_k_fraction: TOP_K_FRACTION,
        test_at_top_k: top_k_confusion(&p_test, y_test, TOP_K_FRACTION),
        test_deciles: deciles(&p_test, y_test, &test.order_id),
        test_by_elapsed,
        served,
    };
    let calibrated_card = CalibratedCard {
        model: card.clone(),
        calibration: served_choice.chosen.name().to_string(),
        threshold: metrics.threshold,
        test_metrics: metrics.test.clone(),
        test_auc_ci: metrics.test_auc_ci,
        test_at_threshold: metrics.test_at_threshold.clone(),
        test_at_top_k: metrics.test_at_top_k.clone(),
        timing: served_timing.clone(),
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
            auc_ci: metrics.test_auc_ci,
        },
        previous,
        policy,
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
        keys: &test.order_id,
        threshold: metrics.threshold_at_anchor,
        top_k_fraction: TOP_K_FRACTION,
        importance: &card.feature_importance,
        auc_ci: metrics.test_auc_ci,
        notes: report_notes(&card, &metrics),
    });
    timer.finish(
        (valid.len() + test.len() + cross_fit.len()) as u64,
        test.len() as u64,
    );
    info!(method = cal.name(), test_auc = ?metrics.test.roc_auc, test_brier = metrics.test.brier, test_ece = metrics.test.ece, served_method = served_choice.chosen.name(), threshold = metrics.threshold, "calibrated");

    let mut w = PartitionWriter::begin(root, Dataset::Calibration, run_date).await?;
    w.write_json(CALIBRATOR_FILE, &served_choice.chosen).await?;
    w.write_json(EVALUATION_CALIBRATOR_FILE, cal).await?;
    w.write_json(METRICS_FILE, &metrics).await?;
    w.write_json(TIMING_FILE, &served_timing).await?;
    w.write_json("model_card.json", &calibrated_card).await?;
    w.write_json(champion::PROMOTION_FILE, &promotion).await?;
    w.write_bytes("report.html", Bytes::from(report.into_bytes()))
        .await?;
    let counters = BTreeMap::from([
        ("validation_rows".to_string(), valid.len() as u64),
        ("test_rows".to_string(), test.len() as u64),
        ("cross_fit_rows".to_string(), cross_fit.len() as u64),
    ]);
    let params = serde_json::json!({
        "model_version": card.model_version,
        "evaluated_model_version": card.evaluated_model_version,
        "method": served_choice.chosen.name(),
        "evaluation_method": cal.name(),
        "promotion_margin": policy.margin,
        "promotion_brier_margin": policy.brier_margin,
        "promotion_history": policy.history,
        "promotion_auc_floor": policy.auc_floor,
        "accept_incomparable_champion": policy.accept_incomparable,
        "promotion_keep_when_inconclusive": policy.keep_when_inconclusive,
    });
    let mut inputs = vec![model_input, features_input];
    inputs.extend(champion_inputs);
    w.commit(STAGE, params, None, inputs, counters).await?;
    Ok(Outcome {
        model_version: card.model_version,
        method: served_choice.chosen.name(),
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
            "Served model".into(),
            format!(
                "refitted on all {} labelled anchors before {} ({} repurchased); calibrated ({}) on {} cross-fitted predictions (raw ROC-AUC {})",
                card.served.train.rows,
                card.served.train_end,
                card.served.train.positives,
                m.served.calibration.chosen.name(),
                m.served.cross_fit.rows,
                m.served
                    .cross_fit_raw
                    .roc_auc
                    .map_or("n/a".to_string(), |a| format!("{a:.3}"))
            ),
        ),
        (
            "Threshold".into(),
            format!(
                "{:.4} at the anchor (F1-optimal on validation); scores flag open customers at {:.4} of the conditional probability (precision {:.2}, recall {:.2} on the test window's open customers)",
                m.threshold_at_anchor,
                m.threshold,
                m.test_open_flag.precision,
                m.test_open_flag.recall
            ),
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
    read_json_artifact(root, Dataset::Calibration, run_date, TIMING_FILE)
        .await
        .map(|(timing, _)| timing)
}

/// Reads the calibrator and metrics of a published calibration partition.
pub async fn read_calibration(
    root: &DataRoot,
    run_date: RunDate,
) -> Result<(Calibrator, Metrics, repurchase_core::manifest::InputRef)> {
    let (cal, input) =
        read_json_artifact(root, Dataset::Calibration, run_date, CALIBRATOR_FILE).await?;
    let (metrics, _) =
        read_json_artifact(root, Dataset::Calibration, run_date, METRICS_FILE).await?;
    Ok((cal, metrics, input))
}
