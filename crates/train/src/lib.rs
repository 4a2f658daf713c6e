//! The `train` worker.
//!
//! Reads `features/train` of the run date and
//!
//! 1. **measures the procedure**: splits the anchors into out-of-time windows
//!    ([`repurchase_model::split::Windows`]), fits target encoders and the GBDT on the training
//!    window for each candidate tree depth with early stopping on the validation window, keeps
//!    the depth with the lowest validation log loss, and scores the held-out test window with it
//!    (`evaluation_model.json`; `calibrate` reports on it);
//! 2. **cross-fits**: fits the chosen configuration (depth, number of trees) once per fold of
//!    the latest labelled months on the anchors settled before that fold, and predicts the fold
//!    (`cross_fit.json`: what the served model's calibrator and threshold are fitted on);
//! 3. **refits for serving**: fits the chosen configuration on every labelled anchor
//!    (`model.json`, what `score` uses), so the outcomes of the last months reach the model that
//!    scores today.
//!
//! `model_card.json` states the evaluated and the served model's training windows side by side;
//! `reference.json` summarises the newest fold's features and the served model's scores of them in
//! fixed bins, the reference `score` measures each day's drift against
//! ([`repurchase_model::drift`]).
//!
//! With `--negative-rate R < 1` the training window keeps every repurchase and a deterministic
//! share `R` of the other anchors (chosen by a hash of the anchor's order id and the seed, so a
//! rerun keeps the same rows whatever their order), each kept negative weighing `1/R` in the
//! booster's loss and in the target encoders: the model is fitted on far fewer rows but on the
//! original base rate. Validation and test windows are never sampled (early stopping, depth
//! choice, the calibrator and the reported metrics see every anchor).

#![warn(missing_docs, unreachable_pub)]

use std::collections::BTreeMap;

use bytes::Bytes;
use clap::Args as ClapArgs;
use rayon::prelude::*;
use repurchase_contracts::params::{FeaturesParams, ModelParams, read_params, to_value};
use repurchase_contracts::{Candidate, ModelCard, SamplingCard, ServedModel, WindowStats, files};
use repurchase_core::cli::CommonArgs;
use repurchase_core::hash::mix64;
use repurchase_core::layout::Dataset;
use repurchase_core::logging::StepTimer;
use repurchase_core::manifest::sha256_hex;
use repurchase_core::publish::{PartitionWriter, Provenance};
use repurchase_core::run_date::format_micros;
use repurchase_core::{Classify, CoreError, DataRoot, ErrorClass, RunDate};
use repurchase_model::crossfit::{CrossFit, FoldStats};
use repurchase_model::drift;
use repurchase_model::io::load_features;
use repurchase_model::metrics::{Summary, roc_auc, summary};
use repurchase_model::split::{Fold, Windows};
use repurchase_model::table::FeatureTable;
use repurchase_model::{BoosterParams, ModelArtifact, ModelError};
use serde::Serialize;
use tracing::info;

/// The stage name in logs, locks and manifests.
pub const STAGE: &str = "train";
/// The `--help` summary of the `train` binary.
pub const ABOUT: &str = "Trains the repurchase model for a run date on out-of-time windows and writes model + model card.";

/// Default of `--valid-days`.
pub const DEFAULT_VALID_DAYS: u32 = 240;
/// Default of `--test-days`.
pub const DEFAULT_TEST_DAYS: u32 = 120;
/// Cross-fitting folds of one horizon each: 3 × 60 days give the served calibrator several
/// hundred repurchases at TheLook's scale.
pub const DEFAULT_CALIBRATION_FOLDS: u32 = 3;

/// Tree depths tried when none is given; shallow trees suit a few thousand repurchases best.
pub const DEPTH_CANDIDATES: [usize; 3] = [2, 3, 4];

/// Fewest rows (and positives) a window needs for the model and its metrics to mean anything.
const MIN_ROWS: usize = 50;
const MIN_POSITIVES: usize = 5;

#[allow(missing_docs)] // clap reads doc comments here as --help text: the flags carry theirs
#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Days of anchors in the validation window (early stopping, tree depth, calibration,
    /// threshold). 240 days gives the calibrator a few hundred repurchases at TheLook's scale.
    #[arg(long, env = "REPURCHASE_VALID_DAYS", default_value_t = DEFAULT_VALID_DAYS)]
    pub valid_days: u32,

    /// Days of anchors in the held-out test window (the reported metrics).
    #[arg(long, env = "REPURCHASE_TEST_DAYS", default_value_t = DEFAULT_TEST_DAYS)]
    pub test_days: u32,

    /// Upper bound on boosting rounds, 1 to 100000; early stopping usually ends sooner.
    #[arg(long, env = "REPURCHASE_MAX_ITERATIONS", default_value_t = 1000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_ITERATIONS))]
    pub max_iterations: usize,

    /// Learning rate (shrinkage) of each tree, in (0, 1].
    #[arg(long, env = "REPURCHASE_LEARNING_RATE", default_value_t = BoosterParams::default().learning_rate, value_parser = parse_share_f32)]
    pub learning_rate: f32,

    /// Maximum depth of each tree, 1 to 16. Default: the best of 2, 3 and 4 by validation log loss.
    #[arg(long, env = "REPURCHASE_MAX_DEPTH", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_DEPTH))]
    pub max_depth: Option<usize>,

    /// Minimum hessian weight in a leaf, finite and ≥ 0 (larger: smoother trees).
    #[arg(long, env = "REPURCHASE_MIN_LEAF_WEIGHT", default_value_t = BoosterParams::default().min_leaf_weight, value_parser = parse_non_negative_f32)]
    pub min_leaf_weight: f32,

    /// L2 regularisation of leaf values, finite and ≥ 0.
    #[arg(long, env = "REPURCHASE_L2", default_value_t = BoosterParams::default().l2, value_parser = parse_non_negative_f32)]
    pub l2: f32,

    /// Share of rows each tree is fitted on, in (0, 1].
    #[arg(long, env = "REPURCHASE_SUBSAMPLE", default_value_t = BoosterParams::default().subsample, value_parser = parse_share_f32)]
    pub subsample: f32,

    /// Share of features each tree may use, in (0, 1].
    #[arg(long, env = "REPURCHASE_COLSAMPLE", default_value_t = BoosterParams::default().colsample_bytree, value_parser = parse_share_f64)]
    pub colsample: f64,

    /// Seed for anything random in training.
    #[arg(long, env = "REPURCHASE_SEED", default_value_t = 0)]
    pub seed: u64,

    /// Share of the training window's non-repurchases kept (every repurchase is kept; kept rows
    /// weigh 1/rate, so the model stays on the original base rate). 1.0: no sampling. Validation
    /// and test windows are never sampled.
    #[arg(long, env = "REPURCHASE_NEGATIVE_RATE", default_value_t = 1.0, value_parser = parse_negative_rate)]
    pub negative_rate: f64,

    /// Cross-fitting folds (one horizon of anchors each, newest labelled first) whose fold-model
    /// predictions calibrate the served model.
    #[arg(long, env = "REPURCHASE_CALIBRATION_FOLDS", default_value_t = DEFAULT_CALIBRATION_FOLDS, value_parser = clap::value_parser!(u32).range(1..=24))]
    pub calibration_folds: u32,
}

impl repurchase_core::cli::WorkerArgs for Args {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

/// Everything that decides what `train` fits, beyond the data.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Days of anchors in the validation window.
    pub valid_days: u32,
    /// Days of anchors in the test window.
    pub test_days: u32,
    /// Booster parameters; `max_depth` is replaced by each of `depths` in turn.
    pub params: BoosterParams,
    /// Tree depths tried on the validation window.
    pub depths: Vec<usize>,
    /// Negative downsampling of the training window.
    pub sampling: Sampling,
    /// Cross-fitting folds that calibrate the served model.
    pub calibration_folds: u32,
}

impl TrainConfig {
    /// The defaults of the command line with the given windows and parameters, one depth.
    pub fn new(valid_days: u32, test_days: u32, params: &BoosterParams) -> TrainConfig {
        TrainConfig {
            valid_days,
            test_days,
            params: params.clone(),
            depths: vec![params.max_depth],
            sampling: Sampling::default(),
            calibration_folds: DEFAULT_CALIBRATION_FOLDS,
        }
    }
}

/// Most boosting rounds `--max-iterations` accepts: 100 times the default, which early stopping
/// usually cuts far shorter; the bound keeps a typo from running for days.
pub const MAX_ITERATIONS: u64 = 100_000;

/// Deepest tree `--max-depth` accepts: 2^16 leaves is already more than a window's repurchases
/// (a few thousand at TheLook's scale), so deeper trees only memorise, and the booster's memory
/// and time grow with 2^depth.
pub const MAX_DEPTH: u64 = 16;

/// Parses a float flag as its own type `T` (so that a value too small for f32, such as 1e-50, is
/// refused as the 0 it becomes rather than passed as a positive number) and keeps it when `valid`
/// holds; `range` is named in the refusal, next to the flag clap names. NaN fails every
/// comparison, so `valid` refuses it as written.
fn parse_float<T>(s: &str, valid: fn(f64) -> bool, range: &str) -> std::result::Result<T, String>
where
    T: std::str::FromStr + Into<f64> + Copy,
{
    match s.trim().parse::<T>() {
        Ok(v) if valid(v.into()) => Ok(v),
        _ => Err(format!("{s:?} is not a number in {range}")),
    }
}

/// Learning rate and subsample: 0 fits every tree with no effect or on no rows (a constant model
/// that would still pass as a trained one); above 1 is not a share (or overshoots every step).
fn parse_share_f32(s: &str) -> std::result::Result<f32, String> {
    parse_float(s, |x| x > 0.0 && x <= 1.0, "(0, 1]")
}

/// Column sample: as [`parse_share_f32`]; 0 leaves each tree no feature to split on.
fn parse_share_f64(s: &str) -> std::result::Result<f64, String> {
    parse_float(s, |x| x > 0.0 && x <= 1.0, "(0, 1]")
}

/// Minimum leaf weight and L2: below 0 they mean nothing (a negative L2 can even zero a leaf's
/// denominator); an infinite weight forbids every split, an infinite L2 zeroes every leaf.
fn parse_non_negative_f32(s: &str) -> std::result::Result<f32, String> {
    parse_float(s, |x| x.is_finite() && x >= 0.0, "[0, ∞) (finite)")
}

fn parse_negative_rate(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(format!(
            "{s:?} is not a negative sampling rate in (0, 1] (1 keeps every row)"
        )),
    }
}

/// Downsampling of the training window's negatives (anchors without a repurchase).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Share of negatives kept, in (0, 1]; 1 disables sampling (and weights) altogether.
    pub negative_rate: f64,
    /// Seeds the choice of rows together with each anchor's order id.
    pub seed: u64,
    /// Kept negatives weigh `1/negative_rate` (always, outside tests). `false` fits the sampled
    /// rows unweighted, which inflates the predicted rate: only to show what the weights correct.
    pub reweight: bool,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            negative_rate: 1.0,
            seed: 0,
            reweight: true,
        }
    }
}

impl Sampling {
    /// Keep `negative_rate` of the negatives (drawn with `seed`), reweighted.
    pub fn new(negative_rate: f64, seed: u64) -> Sampling {
        Sampling {
            negative_rate,
            seed,
            reweight: true,
        }
    }

    /// Whether any negative is left out.
    pub fn is_active(&self) -> bool {
        self.negative_rate < 1.0
    }

    /// Whether a negative anchor with this order id is kept: a hash of the order id and the seed
    /// against the rate, independent of row order and of every other row.
    pub fn keeps_negative(&self, order_id: i64) -> bool {
        if !self.is_active() {
            return true;
        }
        let h = mix64(mix64(self.seed) ^ order_id as u64);
        let u = (h >> 11) as f64 / (1u64 << 53) as f64;
        u < self.negative_rate
    }

    /// Weight of a kept negative.
    pub fn negative_weight(&self) -> f64 {
        if self.reweight {
            1.0 / self.negative_rate
        } else {
            1.0
        }
    }
}

/// What `train` fails with.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Reading the features or publishing the model (storage, manifests, the model library).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The feature table or the booster refused (a model library error).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A window has too few labelled anchors or repurchases to fit or judge a model on.
    #[error(
        "the {window} window ({start} .. {end}) has {rows} labelled anchors with {positives} repurchases; at least {MIN_ROWS} rows and {MIN_POSITIVES} repurchases (and some non-repurchases) are needed: use a later run date, more history, or different --valid-days/--test-days/--calibration-folds"
    )]
    ThinWindow {
        /// The window (`training`, `validation`, a cross-fitting fold's).
        window: String,
        /// Its first anchor time (or "the beginning").
        start: String,
        /// Its exclusive end.
        end: String,
        /// Labelled anchors in it.
        rows: u64,
        /// Repurchases among them.
        positives: u64,
    },
    /// A setting that training cannot run with.
    #[error("{0}")]
    Settings(String),
    /// The feature partition lacks what training needs (a partition of another version).
    #[error("features/train for {run_date} has no {column} column; rerun build-features")]
    MissingColumn {
        /// Run date of the partition.
        run_date: RunDate,
        /// The column it lacks.
        column: &'static str,
    },
    /// A broken invariant of the trainer (exit 70).
    #[error("bug in train: {0}")]
    Bug(String),
}

impl Classify for TrainError {
    fn class(&self) -> ErrorClass {
        match self {
            TrainError::Core(e) => e.class(),
            TrainError::Model(e) => e.class(),
            TrainError::ThinWindow { .. }
            | TrainError::Settings(_)
            | TrainError::MissingColumn { .. } => ErrorClass::BadInput,
            TrainError::Bug(_) => ErrorClass::Bug,
        }
    }
}

/// `train`'s results.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What `train` published.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Version of the served model.
    pub model_version: String,
    /// Anchors of the evaluated model's training window.
    pub train_rows: u64,
    /// Anchors the served model was fitted on.
    pub served_train_rows: u64,
    /// Training rows actually fitted, when negatives were sampled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampled_train_rows: Option<u64>,
    /// Boosting rounds of the evaluated model.
    pub iterations: usize,
    /// Raw ROC-AUC of the evaluated model on the test window.
    pub test_auc: Option<f64>,
}

/// `train` as its binary runs it: the flags resolved, then [`train`].
pub async fn run(args: Args) -> Result<Outcome> {
    let root = args.common.open_root()?;
    let params = BoosterParams {
        max_iterations: args.max_iterations,
        learning_rate: args.learning_rate,
        max_depth: args.max_depth.unwrap_or(BoosterParams::default().max_depth),
        min_leaf_weight: args.min_leaf_weight,
        l2: args.l2,
        subsample: args.subsample,
        colsample_bytree: args.colsample,
        seed: args.seed,
        ..BoosterParams::default()
    };
    let depths = match args.max_depth {
        Some(d) => vec![d],
        None => DEPTH_CANDIDATES.to_vec(),
    };
    let cfg = TrainConfig {
        valid_days: args.valid_days,
        test_days: args.test_days,
        params,
        depths,
        sampling: Sampling::new(args.negative_rate, args.seed),
        calibration_folds: args.calibration_folds,
    };
    train(&root, args.common.run_date, &cfg).await
}

fn stats(t: &FeatureTable) -> Result<WindowStats> {
    Ok(WindowStats {
        rows: t.len() as u64,
        positives: t.labels()?.iter().filter(|l| **l).count() as u64,
    })
}

/// [`stats`] of the rows `rows` of `t`, without copying them out.
fn stats_of(t: &FeatureTable, rows: &[usize]) -> Result<WindowStats> {
    let labels = t.labels()?;
    Ok(WindowStats {
        rows: rows.len() as u64,
        positives: rows.iter().filter(|&&i| labels[i]).count() as u64,
    })
}

fn check_window(name: &str, s: &WindowStats, start: &str, end: &str) -> Result<()> {
    if (s.rows as usize) < MIN_ROWS
        || (s.positives as usize) < MIN_POSITIVES
        || s.positives == s.rows
    {
        return Err(TrainError::ThinWindow {
            window: name.to_string(),
            start: start.to_string(),
            end: end.to_string(),
            rows: s.rows,
            positives: s.positives,
        });
    }
    Ok(())
}

/// The training rows of `t` after negative sampling, with their weights (`None` unsampled).
fn sampled(t: FeatureTable, sampling: &Sampling) -> Result<(FeatureTable, Option<Vec<f64>>)> {
    if !sampling.is_active() {
        return Ok((t, None));
    }
    let labels = t.labels()?;
    let keep: Vec<usize> = (0..t.len())
        .filter(|&i| labels[i] || sampling.keeps_negative(t.order_id[i]))
        .collect();
    let kept = t.take(&keep);
    let w = sampling.negative_weight();
    let weights = kept
        .labels()?
        .iter()
        .map(|&y| if y { 1.0 } else { w })
        .collect();
    Ok((kept, Some(weights)))
}

/// One fixed-size fit of the chosen configuration: the served refit or a cross-fitting fold.
/// Rows are indices into the feature table, taken out only while the fit runs, so that no more
/// copies of the table are alive than fits run at once.
struct FixedFit {
    /// `None` for the served refit.
    fold: Option<Fold>,
    /// The rows fitted on, before negative sampling.
    train_rows: Vec<usize>,
    /// `train_rows`' counts.
    train_stats: WindowStats,
    /// The fold's rows to predict (none for the refit).
    predict_rows: Vec<usize>,
}

/// A [`FixedFit`] fitted: the model and its raw predictions of the fold's rows.
struct Refit {
    fold: Option<Fold>,
    train_stats: WindowStats,
    /// Rows fitted on, after negative sampling.
    fitted_rows: u64,
    predict: FeatureTable,
    model: ModelArtifact,
    raw: Vec<f64>,
}

/// Measures the procedure on the out-of-time windows, cross-fits the chosen configuration and
/// refits it on every labelled anchor (see the module docs).
pub async fn train(root: &DataRoot, run_date: RunDate, cfg: &TrainConfig) -> Result<Outcome> {
    let sampling = cfg.sampling;
    if !(sampling.negative_rate > 0.0 && sampling.negative_rate <= 1.0) {
        return Err(TrainError::Settings(format!(
            "negative sampling rate {} is not in (0, 1]",
            sampling.negative_rate
        )));
    }
    if cfg.calibration_folds == 0 {
        return Err(TrainError::Settings(
            "at least one cross-fitting fold is needed to calibrate the served model".into(),
        ));
    }
    let (valid_days, test_days) = (cfg.valid_days, cfg.test_days);
    let timer = StepTimer::start("load-features");
    let (table, features_manifest, input) =
        load_features(root, Dataset::FeaturesTrain, run_date).await?;
    timer.finish(table.len() as u64, table.len() as u64);
    let FeaturesParams {
        anchor,
        horizon_days,
        settle_days,
        ..
    } = read_params(root, &features_manifest)?;
    let windows = Windows::new(run_date, horizon_days, settle_days, valid_days, test_days);
    let (tr, va, te) = windows.indices(&table.anchor_us);
    let (train_t, valid_t, test_t) = (table.take(&tr), table.take(&va), table.take(&te));
    let (s_tr, s_va, s_te) = (stats(&train_t)?, stats(&valid_t)?, stats(&test_t)?);
    let r = &windows.readable;
    check_window("training", &s_tr, "the beginning", &r[0].1)?;
    check_window("validation", &s_va, &r[1].1, &r[2].1)?;
    check_window("test", &s_te, &r[3].1, &r[4].1)?;

    // Negative downsampling of the training window only, with weights restoring the base rate.
    let (train_t, weights, sampling_card) = if sampling.is_active() {
        let (sampled_t, weights) = sampled(train_t, &sampling)?;
        let s_sampled = stats(&sampled_t)?;
        check_window("sampled training", &s_sampled, "the beginning", &r[0].1)?;
        info!(
            negative_rate = sampling.negative_rate,
            rows_before = s_tr.rows,
            rows_after = s_sampled.rows,
            "training negatives downsampled"
        );
        let card = SamplingCard {
            negative_rate: sampling.negative_rate,
            seed: sampling.seed,
            negative_weight: sampling.negative_weight(),
            rows_before: s_tr.rows,
            positives_before: s_tr.positives,
            rows_after: s_sampled.rows,
            positives_after: s_sampled.positives,
        };
        (sampled_t, weights, Some(card))
    } else {
        (train_t, None, None)
    };

    // The served refit and the cross-fitting folds, each with the rows it is fitted on.
    let labelled_end = windows.labelled_end_us();
    let before = |end: i64| -> Vec<usize> {
        (0..table.len())
            .filter(|&i| table.anchor_us[i] < end)
            .collect()
    };
    let all = before(labelled_end);
    let served_stats = stats_of(&table, &all)?;
    check_window("served model's", &served_stats, "the beginning", &r[4].1)?;
    let mut fixed = vec![FixedFit {
        fold: None,
        train_rows: all,
        train_stats: served_stats.clone(),
        predict_rows: Vec::new(),
    }];
    let mut fold_rows = Vec::new();
    for fold in windows.cross_fit_folds(cfg.calibration_folds) {
        let fold_train = before(fold.train_end_us);
        let fs = stats_of(&table, &fold_train)?;
        let (start, end) = (format_micros(fold.start_us), format_micros(fold.end_us));
        check_window(
            &format!("cross-fitting fold {} training", fold.index),
            &fs,
            "the beginning",
            &format_micros(fold.train_end_us),
        )?;
        let rows: Vec<usize> = (0..table.len())
            .filter(|&i| fold.contains(table.anchor_us[i]))
            .collect();
        fold_rows.push((start, end, stats_of(&table, &rows)?));
        fixed.push(FixedFit {
            fold: Some(fold),
            train_rows: fold_train,
            train_stats: fs,
            predict_rows: rows,
        });
    }

    // The folds together calibrate the served model (one fold may hold few repurchases).
    let pooled = WindowStats {
        rows: fold_rows.iter().map(|(_, _, s)| s.rows).sum(),
        positives: fold_rows.iter().map(|(_, _, s)| s.positives).sum(),
    };
    if let (Some(newest), Some(oldest)) = (fold_rows.first(), fold_rows.last()) {
        check_window("cross-fitting", &pooled, &oldest.0, &newest.1)?;
    }

    let timer = StepTimer::start("fit");
    let train_rows = train_t.len() as u64;
    let base = cfg.params.clone();
    let depths = cfg.depths.clone();
    // Fitting is CPU-bound: it runs on the blocking pool, the fits side by side on rayon's pool,
    // one core each (a tree's work is too small to split well, so the cores would idle between
    // hand-offs); a single depth spreads its histograms over the cores instead. The refit and
    // the folds are always at least two fits, so each takes one core.
    let (artifact, raw_validation, candidates, refits) =
        tokio::task::spawn_blocking(move || -> Result<_> {
            let step = StepTimer::start("encode-windows");
            let prepared =
                ModelArtifact::prepare(&train_t, Some(&valid_t), &base, weights.as_deref())?;
            step.finish(train_rows, train_t.len() as u64);
            drop(train_t);
            let step = StepTimer::start("fit-depths");
            let side_by_side = depths.len() > 1;
            let fit_one = |depth: usize| -> Result<(ModelArtifact, Candidate, Summary)> {
                let p = BoosterParams {
                    max_depth: depth,
                    ..base.clone()
                };
                let a = ModelArtifact::fit_prepared(&prepared, &p, !side_by_side)?;
                let s = summary(&a.predict(&valid_t)?, valid_t.labels()?);
                let candidate = Candidate {
                    max_depth: depth,
                    iterations: a.iterations,
                    validation_log_loss: s.log_loss,
                    validation_auc: s.roc_auc,
                };
                Ok((a, candidate, s))
            };
            let fitted: Vec<Result<(ModelArtifact, Candidate, Summary)>> =
                depths.par_iter().map(|&d| fit_one(d)).collect();
            // In the order of `depths` whatever finished first; the first of equal losses wins.
            let mut best: Option<(ModelArtifact, Summary)> = None;
            let mut candidates = Vec::new();
            for f in fitted {
                let (a, c, s) = f?;
                candidates.push(c);
                if best.as_ref().is_none_or(|(_, b)| s.log_loss < b.log_loss) {
                    best = Some((a, s));
                }
            }
            let (artifact, raw_validation) =
                best.ok_or_else(|| TrainError::Bug("no tree depth to try".into()))?;
            step.finish(train_rows, candidates.len() as u64);
            // The chosen configuration, with the number of trees early stopping kept.
            let chosen = BoosterParams {
                max_iterations: artifact.iterations.max(1),
                ..artifact.params.clone()
            };
            drop(prepared);
            let step = StepTimer::start("fit-refits");
            let fits = fixed.len() as u64;
            let refits = fixed
                .into_par_iter()
                .map(|f| {
                    let (train, weights) = sampled(table.take(&f.train_rows), &sampling)?;
                    let m = ModelArtifact::fit_fixed(&train, &chosen, weights.as_deref(), false)?;
                    let fitted_rows = train.len() as u64;
                    drop(train);
                    let predict = table.take(&f.predict_rows);
                    let p = m.predict(&predict)?;
                    Ok(Refit {
                        fold: f.fold,
                        train_stats: f.train_stats,
                        fitted_rows,
                        predict,
                        model: m,
                        raw: p,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            step.finish(fits, refits.len() as u64);
            Ok((artifact, raw_validation, candidates, refits))
        })
        .await
        .map_err(|e| CoreError::task("training", e))??;
    let params = &artifact.params.clone();
    timer.finish(train_rows, artifact.iterations as u64);

    let raw_test = summary(&artifact.predict(&test_t)?, test_t.labels()?);
    let mut served = None;
    let mut cross_fit = CrossFit::default();
    let mut newest_fold = None;
    for f in refits {
        let Some(fold) = f.fold else {
            served = Some((f.model, f.fitted_rows));
            continue;
        };
        let labels = f.predict.labels()?;
        let days = f
            .predict
            .days_to_repurchase
            .as_deref()
            .ok_or(TrainError::MissingColumn {
                run_date,
                column: "days_to_repurchase",
            })?;
        cross_fit.folds.push(FoldStats {
            fold,
            train_rows: f.train_stats.rows,
            train_positives: f.train_stats.positives,
            rows: f.predict.len() as u64,
            positives: labels.iter().filter(|y| **y).count() as u64,
            raw_auc: roc_auc(&f.raw, labels),
        });
        cross_fit.user_id.extend(&f.predict.user_id);
        cross_fit.order_id.extend(&f.predict.order_id);
        cross_fit.anchor_us.extend(&f.predict.anchor_us);
        cross_fit
            .fold
            .extend(std::iter::repeat_n(fold.index, f.predict.len()));
        cross_fit.raw.extend(f.raw);
        cross_fit.label.extend(labels);
        cross_fit
            .days_to_repurchase
            .extend(days.iter().map(|d| d.is_finite().then_some(*d)));
        if fold.index == 0 {
            newest_fold = Some((fold, f.predict));
        }
    }
    cross_fit.sort();
    let (served_model, served_fitted) =
        served.ok_or_else(|| TrainError::Bug("the served refit is missing".into()))?;

    // The drift reference: the newest fold's anchors, scored by the served model itself (a fold
    // model's level differs wherever the repurchase rate moves over time, and that difference is
    // the models', not the population's).
    let (fold, fold_rows) = newest_fold
        .ok_or_else(|| TrainError::Bug("the newest cross-fitting fold is missing".into()))?;
    let reference = drift::reference(
        &fold_rows,
        &(0..fold_rows.len()).collect::<Vec<_>>(),
        &served_model.features,
        &served_model.encoders,
        &served_model.predict(&fold_rows)?,
        (format_micros(fold.start_us), format_micros(fold.end_us)),
    )?;
    drop(fold_rows);
    let labelled_end_text = r[4].1.clone();
    let evaluation_bytes = artifact.to_bytes();
    let model_bytes = served_model.to_bytes();
    let model_version = format!("{run_date}-{}", &sha256_hex(&model_bytes)[..12]);
    let evaluated_model_version = format!("{run_date}-{}", &sha256_hex(&evaluation_bytes)[..12]);
    let served_card = ServedModel {
        train_end: labelled_end_text.clone(),
        train: served_stats.clone(),
        sampled_rows: sampling.is_active().then_some(served_fitted),
        max_depth: served_model.params.max_depth,
        iterations: served_model.iterations,
        cross_fit_raw_auc: cross_fit.pooled_raw_auc(),
        cross_fit: cross_fit.folds.clone(),
    };
    let card = ModelCard {
        model_version: model_version.clone(),
        evaluated_model_version,
        served: served_card,
        run_date,
        anchor,
        windows,
        train: s_tr.clone(),
        sampling: sampling_card.clone(),
        validation: s_va,
        test: s_te,
        params: params.clone(),
        candidates,
        iterations: artifact.iterations,
        features: artifact.features.clone(),
        feature_importance: served_model.importance()?,
        raw_validation,
        raw_test: raw_test.clone(),
        notes: vec![
            "Out-of-time evaluation: each window's labels are settled before the next window starts; the test figures measure the procedure (a model fitted on the training window, early-stopped on the validation window).".into(),
            format!(
                "Served model: the chosen depth and number of trees refitted on all {} labelled anchors before {}; its calibrator and threshold come from {} time-ordered cross-fitting folds, each predicted by a model trained only on anchors settled before it.",
                served_stats.rows, labelled_end_text, cfg.calibration_folds
            ),
            "Identifiers (user, order, item, event, inventory ids, sku) are never features; see repurchase_model::table::is_identifier.".into(),
            "Categorical features are target-encoded on the training window only (out-of-fold for training rows).".into(),
        ],
    };
    let mut card = card;
    if let Some(sc) = &sampling_card {
        card.notes.push(format!(
            "Training negatives downsampled to {} ({} of {} training rows fitted, every repurchase kept); kept negatives weigh {} in the loss and the target encoders, so raw scores stay on the unsampled base rate. Validation and test windows are complete.",
            sc.negative_rate, sc.rows_after, sc.rows_before, sc.negative_weight
        ));
    }
    info!(model_version = %model_version, iterations = artifact.iterations, test_auc = ?raw_test.roc_auc, served_rows = served_stats.rows, cross_fit_auc = ?card.served.cross_fit_raw_auc, "model trained");

    let mut w = PartitionWriter::begin(root, Dataset::Model, run_date).await?;
    w.write_bytes(files::MODEL, Bytes::from(model_bytes))
        .await?;
    w.write_bytes(files::EVALUATION_MODEL, Bytes::from(evaluation_bytes))
        .await?;
    w.write_json(files::CROSS_FIT, &cross_fit).await?;
    w.write_json(files::MODEL_CARD, &card).await?;
    w.write_json(files::REFERENCE, &reference).await?;
    let mut counters = BTreeMap::from([
        ("train_rows".to_string(), card.train.rows),
        ("validation_rows".to_string(), card.validation.rows),
        ("test_rows".to_string(), card.test.rows),
        ("iterations".to_string(), artifact.iterations as u64),
        ("served_train_rows".to_string(), served_stats.rows),
        ("cross_fit_rows".to_string(), cross_fit.len() as u64),
        ("reference_rows".to_string(), reference.rows),
    ]);
    if let Some(sc) = &sampling_card {
        counters.insert("train_rows_sampled".to_string(), sc.rows_after);
    }
    let manifest_params = ModelParams {
        model_version: model_version.clone(),
        evaluated_model_version: card.evaluated_model_version.clone(),
        valid_days,
        test_days,
        horizon_days,
        settle_days,
        calibration_folds: cfg.calibration_folds,
        booster: params.clone(),
        negative_rate: sampling_card.as_ref().map(|sc| sc.negative_rate),
        negative_weight: sampling_card.as_ref().map(|sc| sc.negative_weight),
    };
    w.commit(Provenance {
        stage: STAGE,
        parameters: to_value(&manifest_params)?,
        schema: None,
        inputs: vec![input],
        counters,
    })
    .await?;
    Ok(Outcome {
        model_version,
        train_rows: card.train.rows,
        served_train_rows: served_stats.rows,
        sampled_train_rows: card.sampling.as_ref().map(|s| s.rows_after),
        iterations: artifact.iterations,
        test_auc: raw_test.roc_auc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_deterministic_and_keeps_about_the_rate() {
        let s = Sampling::new(0.2, 7);
        let kept: Vec<i64> = (0..20_000).filter(|&id| s.keeps_negative(id)).collect();
        let share = kept.len() as f64 / 20_000.0;
        assert!((share - 0.2).abs() < 0.015, "{share}");
        let again: Vec<i64> = (0..20_000)
            .rev()
            .filter(|&id| s.keeps_negative(id))
            .collect();
        assert_eq!(kept, again.into_iter().rev().collect::<Vec<_>>());
        let other_seed = Sampling::new(0.2, 8);
        assert!(kept.iter().any(|&id| !other_seed.keeps_negative(id)));
        assert!((0..1000).all(|id| Sampling::default().keeps_negative(id)));
        assert_eq!(s.negative_weight(), 5.0);
        assert!(parse_negative_rate("0").is_err() && parse_negative_rate("1.5").is_err());
        assert_eq!(parse_negative_rate("0.25"), Ok(0.25));
    }

    /// The `train` command line as its binary parses it.
    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(extra: &[&str]) -> std::result::Result<Args, clap::Error> {
        use clap::Parser;
        let base = [
            "train",
            "--run-date",
            "2025-06-30",
            "--data-root",
            "memory://t",
        ];
        Cli::try_parse_from(base.iter().chain(extra)).map(|c| c.args)
    }

    #[test]
    fn meaningless_booster_settings_are_refused_naming_flag_and_range() {
        let share = "(0, 1]";
        let non_negative = "[0, ∞)";
        for (flag, value, range) in [
            ("--subsample", "0", share),
            ("--subsample", "1.5", share),
            ("--subsample", "NaN", share),
            ("--colsample", "0", share),
            ("--colsample", "-0.5", share),
            ("--colsample", "inf", share),
            ("--learning-rate", "0", share),
            ("--learning-rate", "1e-50", share),
            ("--learning-rate", "2", share),
            ("--learning-rate", "nan", share),
            ("--max-depth", "0", "1..=16"),
            ("--max-depth", "17", "1..=16"),
            ("--max-iterations", "0", "1..=100000"),
            ("--max-iterations", "100001", "1..=100000"),
            ("--min-leaf-weight", "-1", non_negative),
            ("--min-leaf-weight", "inf", non_negative),
            ("--min-leaf-weight", "NaN", non_negative),
            ("--l2", "-0.1", non_negative),
            ("--l2", "-inf", non_negative),
            ("--l2", "NaN", non_negative),
        ] {
            let err = parse(&[&format!("{flag}={value}")]).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{flag} {value}"
            );
            // A usage error: the binary exits 2, the bad-input class of every worker.
            assert_eq!(err.exit_code(), 2, "{flag} {value}");
            let msg = err.to_string();
            assert!(
                msg.contains(flag) && msg.contains(range),
                "{flag} {value}: {msg}"
            );
        }
    }

    #[test]
    fn default_and_edge_booster_settings_parse() {
        let d = parse(&[]).unwrap();
        let p = BoosterParams::default();
        assert_eq!(
            (d.max_iterations, d.learning_rate, d.max_depth),
            (p.max_iterations, p.learning_rate, None)
        );
        assert_eq!(
            (d.min_leaf_weight, d.l2, d.subsample, d.colsample),
            (p.min_leaf_weight, p.l2, p.subsample, p.colsample_bytree)
        );
        let edge = parse(&[
            "--subsample=1",
            "--colsample=0.01",
            "--learning-rate=1",
            "--max-depth=16",
            "--max-iterations=1",
            "--min-leaf-weight=0",
            "--l2=0",
        ])
        .unwrap();
        assert_eq!(
            (edge.subsample, edge.colsample, edge.learning_rate),
            (1.0, 0.01, 1.0)
        );
        assert_eq!((edge.max_depth, edge.max_iterations), (Some(16), 1));
        assert_eq!((edge.min_leaf_weight, edge.l2), (0.0, 0.0));
    }
}
