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
//!
//! - **Record what was served**: once outcomes have arrived, `realised.json` judges the scores
//!   published `horizon + settle` days before (the latest within a week) against the labels of the
//!   run date: ROC-AUC, calibration and the flag of what customers were actually given
//!   ([`repurchase_contracts::backtest`]).

#![warn(missing_docs, unreachable_pub)]

pub mod champion;

use std::collections::BTreeMap;

use bytes::Bytes;
use clap::Args as ClapArgs;
use repurchase_contracts::backtest::{Backtest, judge};
use repurchase_contracts::card::read_card;
use repurchase_contracts::params::{CalibrationParams, to_value};
use repurchase_contracts::{
    CalibratedCard, ElapsedCheck, Metrics, ModelCard, ModelRef, ServedCalibration, WindowStats,
    files,
};
use repurchase_core::cli::{CommonArgs, parse_run_date};
use repurchase_core::layout::Dataset;
use repurchase_core::logging::StepTimer;
use repurchase_core::manifest::InputRef;
use repurchase_core::publish::{PartitionWriter, Provenance};
use repurchase_core::{Classify, CoreError, DataRoot, ErrorClass, RunDate};
use repurchase_model::calibration::{Calibrator, choose_calibrator};
use repurchase_model::crossfit::CrossFit;
use repurchase_model::explain::global;
use repurchase_model::io::{load_features, read_artifact, read_json_artifact};
use repurchase_model::metrics::{
    bootstrap_auc_ci, confusion_at, deciles, f1_optimal_threshold, summary, top_k_confusion,
};
use repurchase_model::report::{BEESWARM_FEATURES, ReportInput, render};
use repurchase_model::timing::{RepurchaseTiming, open_snapshots};
use repurchase_model::{ModelArtifact, ModelError};

use crate::champion::{Challenger, ChampionPolicy};
use serde::Serialize;
use tracing::info;

/// The stage's name: the binary's, its lock's and its partitions' provenance.
pub const STAGE: &str = "calibrate";
/// The `--help` summary of the `calibrate` binary.
pub const ABOUT: &str =
    "Calibrates the run date's model on its validation window and writes held-out metrics.";

/// Share of customers a campaign with a fixed budget contacts: the top 10% by probability.
pub const TOP_K_FRACTION: f64 = 0.10;
/// Elapsed days at which the conditional probabilities are checked on the test window.
const ELAPSED_CHECKS: [f64; 4] = [0.0, 15.0, 30.0, 45.0];
const BOOTSTRAP_RESAMPLES: usize = 1000;
/// Test rows drawn in the report's Shapley beeswarm (the mean |value| uses every row).
const BEESWARM_POINTS: usize = 300;

#[allow(missing_docs)] // clap turns doc comments here into --help text
#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// Run date, data root and the other flags every worker takes.
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

impl repurchase_core::cli::WorkerArgs for Args {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn parse_margin(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(m) if (0.0..=1.0).contains(&m) => Ok(m),
        _ => Err(format!("{s:?} is not a number between 0 and 1")),
    }
}

/// What `calibrate` fails with.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    /// Reading the model and features or publishing the calibration.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The model, its predictions or the feature table refused (a model library error).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The run's partitions do not belong together (features rebuilt after training, a column
    /// of another version): rerun the stage named.
    #[error("{0}")]
    Mismatch(String),
    /// `--champion-from` names a calibration that cannot decide this run's champion.
    #[error(
        "--champion-from {champion_from} is not before the run date {run_date}: the champion must be decided by an earlier calibration"
    )]
    ChampionFromTheFuture {
        /// The date `--champion-from` names.
        champion_from: RunDate,
        /// The run date, which it must precede.
        run_date: RunDate,
    },
    /// A past champion cannot score today's features, and that was not accepted.
    #[error(
        "champion {champion} (decided by the calibration of {decided_by}) cannot score the current features of {run_date}: {reason}. If the features changed on purpose, rerun calibrate with --accept-incomparable-champion"
    )]
    IncomparableChampion {
        /// The past champion's model version.
        champion: String,
        /// Run date of the calibration that made it champion.
        decided_by: RunDate,
        /// The run date whose features it cannot score.
        run_date: RunDate,
        /// Why it cannot score them.
        reason: String,
    },
}

impl Classify for CalibrateError {
    fn class(&self) -> ErrorClass {
        match self {
            CalibrateError::Core(e) => e.class(),
            CalibrateError::Model(e) => e.class(),
            CalibrateError::Mismatch(_)
            | CalibrateError::ChampionFromTheFuture { .. }
            | CalibrateError::IncomparableChampion { .. } => ErrorClass::BadInput,
        }
    }
}

/// `calibrate`'s results.
pub type Result<T, E = CalibrateError> = std::result::Result<T, E>;

/// What `calibrate` published.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The served model calibrated.
    pub model_version: String,
    /// Its calibration method.
    pub method: &'static str,
    /// Calibrated ROC-AUC of the evaluated procedure on the test window.
    pub test_auc: Option<f64>,
    /// Its Brier score there.
    pub test_brier: f64,
    /// Whether the model became champion.
    pub promoted: bool,
    /// The champion from this date on.
    pub champion: String,
    /// ROC-AUC of the scores served `horizon + settle` days ago against what happened, when
    /// there were such scores.
    pub realised_auc: Option<f64>,
}

/// Runs the worker on its flags: builds the [`ChampionPolicy`] from them and [`calibrate`]s the
/// run date's model.
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
    calibrate(&root, args.common.run_date, &policy).await
}

/// Calibrates the model of `run_date`, evaluates it on its test window and decides, by
/// `policy`, whether it becomes the champion.
pub async fn calibrate(
    root: &DataRoot,
    run_date: RunDate,
    policy: &ChampionPolicy,
) -> Result<Outcome> {
    let timer = StepTimer::start("calibrate");
    let card = read_card(root, run_date).await?;
    let previous = champion::current_champion(root, run_date, policy).await?;
    let (eval_bytes, model_manifest, model_input) =
        read_artifact(root, Dataset::Model, run_date, files::EVALUATION_MODEL).await?;
    let model = ModelArtifact::from_bytes(&eval_bytes)?;
    let (cross_fit, _): (CrossFit, _) =
        read_json_artifact(root, Dataset::Model, run_date, files::CROSS_FIT).await?;
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
        return Err(CalibrateError::Mismatch(format!(
            "features/train for {run_date} changed after the model was trained; rerun train before calibrate"
        )));
    }
    let horizon = card.windows.horizon_days;
    let (tr, va, te) = card.windows.indices(&table.anchor_us);
    let (valid, test) = (table.take(&va), table.take(&te));
    let days = table.days_to_repurchase.as_deref().ok_or_else(|| {
        CalibrateError::Mismatch(format!(
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
    // Global explanations of the evaluated model on the test window, for the report.
    let (shapley, x_test) = model.contributions(&test)?;
    let effects = global(
        &model.feature_names(),
        &shapley,
        &x_test,
        &test.order_id,
        BEESWARM_FEATURES,
        BEESWARM_POINTS,
    );
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
        effects: &effects,
        auc_ci: metrics.test_auc_ci,
        notes: report_notes(&card, &metrics),
    });
    timer.finish(
        (valid.len() + test.len() + cross_fit.len()) as u64,
        test.len() as u64,
    );
    info!(method = cal.name(), test_auc = ?metrics.test.roc_auc, test_brier = metrics.test.brier, test_ece = metrics.test.ece, served_method = served_choice.chosen.name(), threshold = metrics.threshold, "calibrated");

    let realised = realised(
        root,
        run_date,
        card.windows.horizon_days,
        card.windows.settle_days,
    )
    .await?;
    let mut w = PartitionWriter::begin(root, Dataset::Calibration, run_date).await?;
    w.write_json(files::CALIBRATOR, &served_choice.chosen)
        .await?;
    w.write_json(files::EVALUATION_CALIBRATOR, cal).await?;
    w.write_json(files::METRICS, &metrics).await?;
    w.write_json(files::TIMING, &served_timing).await?;
    w.write_json(files::MODEL_CARD, &calibrated_card).await?;
    w.write_json(files::PROMOTION, &promotion).await?;
    w.write_bytes(files::REPORT, Bytes::from(report.into_bytes()))
        .await?;
    let counters = BTreeMap::from([
        ("validation_rows".to_string(), valid.len() as u64),
        ("test_rows".to_string(), test.len() as u64),
        ("cross_fit_rows".to_string(), cross_fit.len() as u64),
    ]);
    let params = CalibrationParams {
        model_version: card.model_version.clone(),
        evaluated_model_version: card.evaluated_model_version.clone(),
        method: served_choice.chosen.name().to_string(),
        evaluation_method: cal.name().to_string(),
        promotion_margin: policy.margin,
        promotion_brier_margin: policy.brier_margin,
        promotion_history: policy.history as u64,
        promotion_auc_floor: policy.auc_floor,
        accept_incomparable_champion: policy.accept_incomparable,
        promotion_keep_when_inconclusive: policy.keep_when_inconclusive,
    };
    let mut inputs = vec![model_input, features_input];
    inputs.extend(champion_inputs);
    let mut counters = counters;
    let realised_auc = match &realised {
        Some((r, realised_inputs)) => {
            w.write_json(files::REALISED, r).await?;
            counters.insert("realised_resolved".to_string(), r.resolved);
            inputs.extend(realised_inputs.iter().cloned());
            r.probability.roc_auc
        }
        None => None,
    };
    w.commit(Provenance {
        stage: STAGE,
        parameters: to_value(&params)?,
        schema: None,
        inputs,
        counters,
    })
    .await?;
    Ok(Outcome {
        model_version: card.model_version,
        method: served_choice.chosen.name(),
        test_auc: metrics.test.roc_auc,
        test_brier: metrics.test.brier,
        promoted: promotion.promoted,
        champion: promotion.champion.model_version,
        realised_auc,
    })
}

/// Days before the latest settled score date searched for a scores partition: the DAG scores
/// daily, a lake scored weekly still finds one.
const REALISED_SEARCH_DAYS: i64 = 7;

/// The realised performance of what was served: the latest scores published at least
/// `horizon + settle` days before `run_date` (so every window they scored has closed and settled),
/// no more than [`REALISED_SEARCH_DAYS`] earlier, judged against `run_date`'s labels; none when no
/// such scores exist.
async fn realised(
    root: &DataRoot,
    run_date: RunDate,
    horizon_days: u32,
    settle_days: u32,
) -> Result<Option<(Backtest, Vec<InputRef>)>> {
    let latest = run_date.plus_days(-i64::from(horizon_days + settle_days));
    let earliest = latest.plus_days(-REALISED_SEARCH_DAYS);
    let mut dates: Vec<RunDate> = root
        .list_dirs(&Dataset::Scores.dir())
        .await?
        .iter()
        .filter_map(|name| Dataset::parse_partition_dir(name))
        .filter(|d| *d > earliest && *d <= latest)
        .collect();
    dates.sort_unstable_by(|a, b| b.cmp(a));
    for d in dates {
        if root.exists(&Dataset::Scores.manifest_path(d)).await? {
            let (report, inputs, _) = judge(root, d, run_date).await?;
            info!(score_date = %d, resolved = report.resolved, auc = ?report.probability.roc_auc, mean_probability = report.mean_probability, observed = report.probability.positive_rate, "realised performance");
            return Ok(Some((report, inputs)));
        }
    }
    info!(from = %earliest.plus_days(1), to = %latest, "no scores old enough to judge yet");
    Ok(None)
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
    let rows = |s: &WindowStats| {
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
        ("Anchors".into(), card.anchor.to_string()),
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
