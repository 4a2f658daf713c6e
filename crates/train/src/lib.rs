//! The `train` worker.
//!
//! Reads `features/train` of the run date, splits it into out-of-time windows
//! ([`repurchase_model::split::Windows`]), fits target encoders and the GBDT on the training
//! window with early stopping on the validation window, and writes `models/run_date=D/` with
//! `model.json` (everything `score` needs) and `model_card.json` (what a reviewer needs).
//!
//! With `--negative-rate R < 1` the training window keeps every repurchase and a deterministic
//! share `R` of the other anchors (chosen by a hash of the anchor's order id and the seed, so a
//! rerun keeps the same rows whatever their order), each kept negative weighing `1/R` in the
//! booster's loss and in the target encoders: the model is fitted on far fewer rows but on the
//! original base rate. Validation and test windows are never sampled (early stopping, depth
//! choice, the calibrator and the reported metrics see every anchor).

use std::collections::BTreeMap;

use bytes::Bytes;
use clap::Args as ClapArgs;
use repurchase_core::cli::CommonArgs;
use repurchase_core::layout::Dataset;
use repurchase_core::logging::StepTimer;
use repurchase_core::manifest::sha256_hex;
use repurchase_core::publish::PartitionWriter;
use repurchase_core::{CoreError, DataRoot, Result, RunDate};
use repurchase_model::io::load_features;
use repurchase_model::metrics::{Summary, summary};
use repurchase_model::split::Windows;
use repurchase_model::table::FeatureTable;
use repurchase_model::{BoosterParams, ModelArtifact};
use serde::{Deserialize, Serialize};
use tracing::info;

pub const STAGE: &str = "train";

pub const DEFAULT_VALID_DAYS: u32 = 240;
pub const DEFAULT_TEST_DAYS: u32 = 120;

/// Tree depths tried when none is given; shallow trees suit a few thousand repurchases best.
pub const DEPTH_CANDIDATES: [usize; 3] = [2, 3, 4];

/// Fewest rows (and positives) a window needs for the model and its metrics to mean anything.
const MIN_ROWS: usize = 50;
const MIN_POSITIVES: usize = 5;

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

    /// Upper bound on boosting rounds; early stopping usually ends sooner.
    #[arg(long, env = "REPURCHASE_MAX_ITERATIONS", default_value_t = 1000)]
    pub max_iterations: usize,

    /// Learning rate (shrinkage) of each tree.
    #[arg(long, env = "REPURCHASE_LEARNING_RATE", default_value_t = BoosterParams::default().learning_rate)]
    pub learning_rate: f32,

    /// Maximum depth of each tree. Default: the best of 2, 3 and 4 by validation log loss.
    #[arg(long, env = "REPURCHASE_MAX_DEPTH")]
    pub max_depth: Option<usize>,

    /// Minimum hessian weight in a leaf (larger: smoother trees).
    #[arg(long, env = "REPURCHASE_MIN_LEAF_WEIGHT", default_value_t = BoosterParams::default().min_leaf_weight)]
    pub min_leaf_weight: f32,

    /// L2 regularisation of leaf values.
    #[arg(long, env = "REPURCHASE_L2", default_value_t = BoosterParams::default().l2)]
    pub l2: f32,

    /// Share of rows each tree is fitted on.
    #[arg(long, env = "REPURCHASE_SUBSAMPLE", default_value_t = BoosterParams::default().subsample)]
    pub subsample: f32,

    /// Share of features each tree may use.
    #[arg(long, env = "REPURCHASE_COLSAMPLE", default_value_t = BoosterParams::default().colsample_bytree)]
    pub colsample: f64,

    /// Seed for anything random in training.
    #[arg(long, env = "REPURCHASE_SEED", default_value_t = 0)]
    pub seed: u64,

    /// Share of the training window's non-repurchases kept (every repurchase is kept; kept rows
    /// weigh 1/rate, so the model stays on the original base rate). 1.0: no sampling. Validation
    /// and test windows are never sampled.
    #[arg(long, env = "REPURCHASE_NEGATIVE_RATE", default_value_t = 1.0, value_parser = parse_negative_rate)]
    pub negative_rate: f64,
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
    pub fn new(negative_rate: f64, seed: u64) -> Sampling {
        Sampling {
            negative_rate,
            seed,
            reweight: true,
        }
    }

    pub fn is_active(&self) -> bool {
        self.negative_rate < 1.0
    }

    /// Whether a negative anchor with this order id is kept: a hash of the order id and the seed
    /// against the rate, independent of row order and of every other row.
    pub fn keeps_negative(&self, order_id: i64) -> bool {
        if !self.is_active() {
            return true;
        }
        let h = splitmix64(splitmix64(self.seed) ^ order_id as u64);
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

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The model card's record of the training window's negative sampling (absent when none).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SamplingCard {
    pub negative_rate: f64,
    pub seed: u64,
    /// Weight of each kept negative in the loss and the target encoders (positives weigh 1).
    pub negative_weight: f64,
    /// The training window before sampling (= the card's `train`) and the rows actually fitted.
    pub rows_before: u64,
    pub positives_before: u64,
    pub rows_after: u64,
    pub positives_after: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowStats {
    pub rows: u64,
    pub positives: u64,
}

/// What a reviewer needs to know about a model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    pub model_version: String,
    pub run_date: RunDate,
    pub anchor: String,
    pub windows: Windows,
    /// The whole training window (before any negative sampling; see `sampling`).
    pub train: WindowStats,
    /// Negative downsampling of the training window, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<SamplingCard>,
    pub validation: WindowStats,
    pub test: WindowStats,
    pub params: BoosterParams,
    /// Every depth tried, with its validation figures; `params.max_depth` is the one kept.
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    pub iterations: usize,
    pub features: Vec<repurchase_model::table::FeatureSpec>,
    pub feature_importance: Vec<(String, f64)>,
    /// Uncalibrated model on the validation and test windows; calibrated figures are in
    /// `calibration/metrics.json`.
    pub raw_validation: Summary,
    pub raw_test: Summary,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    pub max_depth: usize,
    pub iterations: usize,
    pub validation_log_loss: f64,
    pub validation_auc: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub model_version: String,
    pub train_rows: u64,
    /// Training rows actually fitted, when negatives were sampled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampled_train_rows: Option<u64>,
    pub iterations: usize,
    pub test_auc: Option<f64>,
}

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
    train_sampled(
        &root,
        args.common.run_date,
        args.valid_days,
        args.test_days,
        &params,
        &depths,
        &Sampling::new(args.negative_rate, args.seed),
    )
    .await
}

fn stats(t: &FeatureTable) -> Result<WindowStats> {
    Ok(WindowStats {
        rows: t.len() as u64,
        positives: t.labels()?.iter().filter(|l| **l).count() as u64,
    })
}

fn check_window(name: &str, s: &WindowStats, start: &str, end: &str) -> Result<()> {
    if (s.rows as usize) < MIN_ROWS
        || (s.positives as usize) < MIN_POSITIVES
        || s.positives == s.rows
    {
        return Err(CoreError::Invalid(format!(
            "the {name} window ({start} .. {end}) has {} labelled anchors with {} repurchases; at least {MIN_ROWS} rows and {MIN_POSITIVES} repurchases (and some non-repurchases) are needed: use a later run date, more history, or different --valid-days/--test-days",
            s.rows, s.positives
        )));
    }
    Ok(())
}

/// Trains with `params` as given.
pub async fn train(
    root: &DataRoot,
    run_date: RunDate,
    valid_days: u32,
    test_days: u32,
    params: &BoosterParams,
) -> Result<Outcome> {
    let depths = [params.max_depth];
    train_selecting(root, run_date, valid_days, test_days, params, &depths).await
}

/// Trains one model per tree depth in `depths` and keeps the one with the lowest validation log
/// loss (the test window plays no part in the choice).
pub async fn train_selecting(
    root: &DataRoot,
    run_date: RunDate,
    valid_days: u32,
    test_days: u32,
    params: &BoosterParams,
    depths: &[usize],
) -> Result<Outcome> {
    train_sampled(
        root,
        run_date,
        valid_days,
        test_days,
        params,
        depths,
        &Sampling::default(),
    )
    .await
}

/// [`train_selecting`] with the training window's negatives downsampled as `sampling` says.
pub async fn train_sampled(
    root: &DataRoot,
    run_date: RunDate,
    valid_days: u32,
    test_days: u32,
    params: &BoosterParams,
    depths: &[usize],
    sampling: &Sampling,
) -> Result<Outcome> {
    if !(sampling.negative_rate > 0.0 && sampling.negative_rate <= 1.0) {
        return Err(CoreError::Invalid(format!(
            "negative sampling rate {} is not in (0, 1]",
            sampling.negative_rate
        )));
    }
    let timer = StepTimer::start("load-features");
    let (table, features_manifest, input) =
        load_features(root, Dataset::FeaturesTrain, run_date).await?;
    timer.finish(table.len() as u64, table.len() as u64);
    let horizon_days = features_manifest
        .parameters
        .get("horizon_days")
        .and_then(|v| v.as_u64())
        .unwrap_or(60) as u32;
    let anchor = features_manifest
        .parameters
        .get("anchor")
        .and_then(|v| v.as_str())
        .unwrap_or("first-order")
        .to_string();
    let windows = Windows::new(run_date, horizon_days, valid_days, test_days);
    let (tr, va, te) = windows.indices(&table.anchor_us);
    let (train_t, valid_t, test_t) = (table.take(&tr), table.take(&va), table.take(&te));
    let (s_tr, s_va, s_te) = (stats(&train_t)?, stats(&valid_t)?, stats(&test_t)?);
    let r = &windows.readable;
    check_window("training", &s_tr, "the beginning", &r[0].1)?;
    check_window("validation", &s_va, &r[1].1, &r[2].1)?;
    check_window("test", &s_te, &r[3].1, &r[4].1)?;

    // Negative downsampling of the training window only, with weights restoring the base rate.
    let (train_t, weights, sampling_card) = if sampling.is_active() {
        let labels = train_t.labels()?;
        let keep: Vec<usize> = (0..train_t.len())
            .filter(|&i| labels[i] || sampling.keeps_negative(train_t.order_id[i]))
            .collect();
        let sampled = train_t.take(&keep);
        let s_sampled = stats(&sampled)?;
        check_window("sampled training", &s_sampled, "the beginning", &r[0].1)?;
        let w = sampling.negative_weight();
        let weights: Vec<f64> = sampled
            .labels()?
            .iter()
            .map(|&y| if y { 1.0 } else { w })
            .collect();
        info!(
            negative_rate = sampling.negative_rate,
            rows_before = s_tr.rows,
            rows_after = s_sampled.rows,
            "training negatives downsampled"
        );
        let card = SamplingCard {
            negative_rate: sampling.negative_rate,
            seed: sampling.seed,
            negative_weight: w,
            rows_before: s_tr.rows,
            positives_before: s_tr.positives,
            rows_after: s_sampled.rows,
            positives_after: s_sampled.positives,
        };
        (sampled, Some(weights), Some(card))
    } else {
        (train_t, None, None)
    };

    let timer = StepTimer::start("fit");
    let (train_c, valid_c) = (train_t.clone(), valid_t.clone());
    let base = params.clone();
    let depths = depths.to_vec();
    // Fitting is CPU-bound and uses its own thread pool.
    let (artifact, raw_validation, candidates) = tokio::task::spawn_blocking(move || {
        let prepared = ModelArtifact::prepare(&train_c, &valid_c, &base, weights.as_deref())?;
        // With more depths than cores, each depth is fitted on its own thread (one core each)
        // rather than one after the other with every tree's histograms spread over the cores:
        // a tree's work is too small to split well, so the cores idle between hand-offs.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let concurrent = depths.len() > 1 && cores > 1;
        let fit_one = |depth: usize| -> Result<(ModelArtifact, Candidate, Summary)> {
            let p = BoosterParams {
                max_depth: depth,
                ..base.clone()
            };
            let a =
                ModelArtifact::fit_prepared(&prepared, &p, !concurrent || cores > depths.len())?;
            let s = summary(&a.predict(&valid_c)?, valid_c.labels()?);
            let candidate = Candidate {
                max_depth: depth,
                iterations: a.iterations,
                validation_log_loss: s.log_loss,
                validation_auc: s.roc_auc,
            };
            Ok((a, candidate, s))
        };
        let fitted: Vec<Result<(ModelArtifact, Candidate, Summary)>> = if concurrent {
            std::thread::scope(|scope| {
                let handles: Vec<_> = depths
                    .iter()
                    .map(|&d| scope.spawn(move || fit_one(d)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(CoreError::Invalid("a training thread panicked".into()))
                        })
                    })
                    .collect()
            })
        } else {
            depths.iter().map(|&d| fit_one(d)).collect()
        };
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
        best.map(|(a, s)| (a, s, candidates))
            .ok_or_else(|| CoreError::Invalid("no tree depth to try".into()))
    })
    .await
    .map_err(|e| CoreError::Invalid(format!("training task failed: {e}")))??;
    let params = &artifact.params.clone();
    timer.finish(train_t.len() as u64, artifact.iterations as u64);

    let raw_test = summary(&artifact.predict(&test_t)?, test_t.labels()?);
    let model_bytes = artifact.to_bytes();
    let model_version = format!("{run_date}-{}", &sha256_hex(&model_bytes)[..12]);
    let card = ModelCard {
        model_version: model_version.clone(),
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
        feature_importance: artifact.importance()?,
        raw_validation,
        raw_test: raw_test.clone(),
        notes: vec![
            "Out-of-time evaluation: each window's labels are known before the next window starts.".into(),
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
    info!(model_version = %model_version, iterations = artifact.iterations, test_auc = ?raw_test.roc_auc, "model trained");

    let mut w = PartitionWriter::begin(root, Dataset::Model, run_date).await?;
    w.write_bytes("model.json", Bytes::from(model_bytes))
        .await?;
    w.write_json("model_card.json", &card).await?;
    let mut counters = BTreeMap::from([
        ("train_rows".to_string(), card.train.rows),
        ("validation_rows".to_string(), card.validation.rows),
        ("test_rows".to_string(), card.test.rows),
        ("iterations".to_string(), artifact.iterations as u64),
    ]);
    let mut manifest_params = serde_json::json!({
        "model_version": model_version,
        "valid_days": valid_days,
        "test_days": test_days,
        "horizon_days": horizon_days,
        "booster": params,
    });
    if let Some(sc) = &sampling_card {
        counters.insert("train_rows_sampled".to_string(), sc.rows_after);
        manifest_params["negative_rate"] = serde_json::json!(sc.negative_rate);
        manifest_params["negative_weight"] = serde_json::json!(sc.negative_weight);
    }
    w.commit(STAGE, manifest_params, None, vec![input], counters)
        .await?;
    Ok(Outcome {
        model_version,
        train_rows: card.train.rows,
        sampled_train_rows: card.sampling.as_ref().map(|s| s.rows_after),
        iterations: artifact.iterations,
        test_auc: raw_test.roc_auc,
    })
}

/// Reads the model card of a published model partition.
pub async fn read_card(root: &DataRoot, run_date: RunDate) -> Result<ModelCard> {
    repurchase_model::io::read_json_artifact(root, Dataset::Model, run_date, "model_card.json")
        .await
        .map(|(card, _)| card)
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
}
