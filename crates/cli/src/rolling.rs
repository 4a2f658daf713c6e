//! `repurchase backtest --origins N`: the rolling-origin backtest, an evaluation of what is
//! actually served.
//!
//! The production procedure is replayed as of each of many past run dates, on the data as it was
//! on each of them: every day `extract` (which rolls the export back to the end of that day) and
//! `build-features`; on each weekly origin also `train` and `calibrate` (with its promotion gate);
//! every day `score` with the champion in force. Each day's open customers are then judged
//! against the outcomes that a later *outcome date* reveals (`features/train` of that date,
//! settled labels only).
//!
//! Two procedures are judged on the same rows:
//! - **new**: the published scores, exactly as production writes them (the refit model, its
//!   cross-fitted calibrator, the threshold chosen for the conditional probability, or the
//!   `--flag-top-share` budget);
//! - **old**: the same champion's evaluated model, the calibrator fitted on its validation
//!   window and the F1 threshold at the anchor, as served before the refit
//!   ([`repurchase_score::Variant::Evaluated`]).
//!
//! On generated data with a truth table (`signal`), the **oracle** stands beside every figure:
//! the generator's true probability at the anchor, conditioned on the days already elapsed with
//! the generator's true repurchase timing ([`repurchase_datagen::repurchase_delay_cdf`]), and
//! flagging per day as many customers as the new procedure did.
//!
//! Per weekly origin (the days served by that origin's champion) and pooled over all origins:
//! AUC, Brier, equal-mass ECE, mean predicted probability against the observed rate, and the
//! flag's precision and recall. Written to `rolling_backtests/run_date=<outcome date>/` as
//! `rolling_backtest.json` and a self-contained page `rolling_backtest.html`.
//!
//! The replay writes every stage's partitions into its own data root, which must hold no model
//! yet (it never touches a production root's champion history); the raw partitions of each day
//! are deleted once its features are built, as they are large and nothing later reads them.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use arrow::array::{Array, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::prelude::SessionContext;
use repurchase_core::hash::tie_break;
use repurchase_core::layout::Dataset;
use repurchase_core::parquet_io::register_partition;
use repurchase_core::publish::{PartitionWriter, Provenance};
use repurchase_core::run_date::{DAY_US, format_micros};
use repurchase_core::schema::Table;
use repurchase_core::{CoreError, DataRoot, RunDate};
use repurchase_extract::Source;
use repurchase_features::AnchorMode;
use repurchase_model::io::load_features;
use repurchase_model::metrics::{self, Confusion, Summary};
use repurchase_model::report::timeline::{self, Panel, Role, Series, Table as PageTable};
use repurchase_score::Variant;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::error::{CliError, Result};
use crate::oracle;

/// The stage name in logs, locks and manifests.
pub const STAGE: &str = "rolling-backtest";
/// The result, [`RollingBacktest`], in `rolling_backtests/run_date=D/`.
pub const JSON_FILE: &str = "rolling_backtest.json";
/// The timeline page beside it.
pub const PAGE_FILE: &str = "rolling_backtest.html";

/// The label horizon the replay builds features with (the product's 60 days).
const HORIZON_DAYS: u32 = 60;
/// Bootstrap resamples (by customer) of each origin's AUC interval.
const AUC_RESAMPLES: usize = 200;

/// What to replay and where.
#[derive(Debug, Clone)]
pub struct RollingConfig {
    /// The export the replay extracts from, day by day (it must reach the outcome date).
    pub source: DataRoot,
    /// The replay's own data root (no model in it yet).
    pub lake: DataRoot,
    /// The first origin: the first day trained, calibrated and scored.
    pub first_origin: RunDate,
    /// Number of origins (retraining dates).
    pub origins: u32,
    /// Days between origins (7: weekly retraining).
    pub origin_every_days: u32,
    /// The date whose settled labels judge every scored day.
    pub outcome_date: RunDate,
    /// Which completed orders are anchors.
    pub anchor: AnchorMode,
    /// `score --flag-top-share`, when the replay flags by budget.
    pub flag_top_share: Option<f64>,
    /// `train --valid-days` and `--test-days` (the worker's defaults unless testing small data).
    pub valid_days: u32,
    /// See `valid_days`.
    pub test_days: u32,
}

impl RollingConfig {
    /// Every day scored, in order.
    pub fn score_dates(&self) -> Vec<RunDate> {
        let days = i64::from(self.origins) * i64::from(self.origin_every_days);
        (0..days).map(|k| self.first_origin.plus_days(k)).collect()
    }

    /// The first day whose settled labels resolve every anchor scored on `last`.
    pub fn earliest_outcome_date(last: RunDate) -> RunDate {
        last.plus_days(i64::from(
            HORIZON_DAYS + repurchase_features::DEFAULT_SETTLE_DAYS,
        ))
    }

    fn check(&self) -> Result<()> {
        if self.origins == 0 || self.origin_every_days == 0 {
            return Err(CliError::Backtest(
                "a rolling backtest needs at least one origin and a positive --origin-every-days"
                    .into(),
            ));
        }
        if let Some(share) = self.flag_top_share
            && !(share > 0.0 && share <= 1.0)
        {
            return Err(CliError::Backtest(format!(
                "--flag-top-share {share} is not a share in (0, 1]"
            )));
        }
        let last = *self.score_dates().last().unwrap_or(&self.first_origin);
        let earliest = Self::earliest_outcome_date(last);
        if self.outcome_date < earliest {
            return Err(CliError::Backtest(format!(
                "the outcome date {} is too early: the last day scored is {last}, and its anchors \
                 are settled ({HORIZON_DAYS}-day window plus {} settle days) only on {earliest}",
                self.outcome_date,
                repurchase_features::DEFAULT_SETTLE_DAYS
            )));
        }
        Ok(())
    }
}

/// The figures of one procedure on one set of scored rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figures {
    /// Mean probability served.
    pub mean_probability: f64,
    /// Distinct customers among the rows, and those of them with a repurchase: the rows repeat
    /// customers day after day, so these set the statistical weight of the figures.
    pub customers: u64,
    /// See `customers`.
    pub repurchasing_customers: u64,
    /// Mean probability over the observed rate, with its bootstrap 95% interval (customers
    /// resampled); `None` without a repurchase.
    pub calibration_ratio: Option<f64>,
    /// See `calibration_ratio`.
    pub calibration_ratio_ci: Option<(f64, f64)>,
    /// AUC, Brier, ECE (equal-mass; equal-width beside it) and the observed rate.
    #[serde(flatten)]
    pub summary: Summary,
    /// Bootstrap 95% interval of the AUC, resampling customers.
    pub auc_ci: Option<(f64, f64)>,
    /// The `predicted_repurchase` flag against the outcomes.
    pub flag: Confusion,
}

/// One weekly origin: the days its retraining served, judged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OriginResult {
    /// The retraining date.
    pub origin: RunDate,
    /// The days its model served, in order.
    pub score_dates: Vec<RunDate>,
    /// The calibration of the origin promoted its model.
    pub promoted: bool,
    /// The served model on the origin's days (new procedure), and the evaluated one (old).
    pub model_version: String,
    /// See `model_version`.
    pub evaluated_model_version: String,
    /// The origin's scored rows judged (written inline: `scored`, `resolved`, `new`, …).
    #[serde(flatten)]
    pub outcomes: Outcomes,
}

/// Scored rows judged against the outcomes: one origin's, or every origin's pooled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcomes {
    /// Open customers scored (one row per customer and day).
    pub scored: u64,
    /// Of those, rows whose anchor has a settled label on the outcome date.
    pub resolved: u64,
    /// The served model (new procedure).
    pub new: Figures,
    /// The evaluated model (old procedure).
    pub old: Figures,
    /// The generator's truth on the same rows (generated `signal` data only).
    pub oracle: Option<Figures>,
}

/// The rolling backtest's result (`rolling_backtest.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollingBacktest {
    /// The first retraining date.
    pub first_origin: RunDate,
    /// Retraining dates replayed.
    pub origins: u32,
    /// Days between them.
    pub origin_every_days: u32,
    /// The date whose settled labels judge every day scored.
    pub outcome_date: RunDate,
    /// Anchor definition of the replay.
    pub anchor: String,
    /// The budget flag's share, when the replay flagged by budget.
    pub flag_top_share: Option<f64>,
    /// `train --valid-days` of the replay.
    pub valid_days: u32,
    /// `train --test-days` of the replay.
    pub test_days: u32,
    /// Label horizon.
    pub horizon_days: u32,
    /// Days before a closed window is labelled.
    pub settle_days: u32,
    /// Each origin judged.
    pub per_origin: Vec<OriginResult>,
    /// Every origin's rows pooled, judged.
    pub pooled: Outcomes,
    /// Wall-clock seconds of the replay (not part of any judgement).
    pub replay_seconds: f64,
}

/// One open customer on one scored day.
#[derive(Debug, Clone, Copy)]
struct Row {
    order_id: i64,
    user_id: i64,
    elapsed_days: f64,
    probability: f64,
    flagged: bool,
}

/// The open rows of one day under one procedure, and the model that scored them.
#[derive(Debug, Clone)]
struct DayScores {
    model_version: String,
    rows: Vec<Row>,
}

fn column<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a T, CoreError> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| CoreError::BadTable {
            table: "scores".into(),
            message: format!("column {name} missing or of another type"),
        })
}

/// The open rows of score batches (schema of [`repurchase_score::output_schema`]).
fn open_rows(batches: &[RecordBatch]) -> Result<DayScores> {
    let mut rows = Vec::new();
    let mut model_version = String::new();
    for b in batches {
        let order = column::<Int64Array>(b, "anchor_order_id")?;
        let user = column::<Int64Array>(b, "user_id")?;
        let status = b
            .column_by_name("status")
            .map(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8))
            .transpose()
            .map_err(|e| CoreError::arrow("scores.status", e))?
            .ok_or_else(|| CoreError::BadTable {
                table: "scores".into(),
                message: "column status missing".into(),
            })?;
        let status = status
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| CliError::Backtest("scores.status is not text".into()))?;
        let elapsed = column::<Float64Array>(b, "days_elapsed")?;
        let prob = column::<Float64Array>(b, "probability")?;
        let flag = column::<BooleanArray>(b, "predicted_repurchase")?;
        let version = b
            .column_by_name("model_version")
            .map(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8))
            .transpose()
            .map_err(|e| CoreError::arrow("scores.model_version", e))?;
        if let Some(v) = version
            .as_ref()
            .and_then(|v| v.as_any().downcast_ref::<StringArray>())
            .filter(|v| !v.is_empty())
        {
            model_version = v.value(0).to_string();
        }
        for i in 0..b.num_rows() {
            if status.value(i) != "open" {
                continue;
            }
            if prob.is_null(i) {
                return Err(CoreError::BadTable {
                    table: "scores".into(),
                    message: format!(
                        "open anchor {} has no probability (row {i})",
                        order.value(i)
                    ),
                }
                .into());
            }
            rows.push(Row {
                order_id: order.value(i),
                user_id: user.value(i),
                elapsed_days: elapsed.value(i),
                probability: prob.value(i),
                flagged: flag.is_valid(i) && flag.value(i),
            });
        }
    }
    Ok(DayScores {
        model_version,
        rows,
    })
}

async fn published_scores(lake: &DataRoot, day: RunDate) -> Result<DayScores> {
    let ctx = SessionContext::new();
    register_partition(&ctx, lake, Dataset::Scores, day, "scores").await?;
    let batches = ctx
        .table("scores")
        .await
        .map_err(|e| CoreError::query("read scores", e))?
        .collect()
        .await
        .map_err(|e| CoreError::query("read scores", e))?;
    open_rows(&batches)
}

/// What the replay produced for one origin.
struct ReplayedOrigin {
    origin: RunDate,
    promoted: bool,
    days: Vec<(RunDate, DayScores, DayScores)>,
}

async fn lake_is_fresh(lake: &DataRoot) -> Result<()> {
    let models = lake.list_dirs(&Dataset::Model.dir()).await?;
    if models.is_empty() {
        Ok(())
    } else {
        Err(CliError::Backtest(format!(
            "the rolling backtest replays into a data root of its own, but {} already holds \
             models ({}): give --data-root an empty folder",
            lake.url(&Dataset::Model.dir()),
            models.len()
        )))
    }
}

/// Extract and build features for `day`, then drop its raw partitions (only features are read
/// later).
async fn prepare_day(cfg: &RollingConfig, day: RunDate) -> Result<()> {
    repurchase_extract::extract(&cfg.lake, day, &Source::Files(cfg.source.clone())).await?;
    repurchase_features::build(
        &cfg.lake,
        day,
        &repurchase_features::BuildOptions::new(cfg.anchor, HORIZON_DAYS),
    )
    .await?;
    for table in Table::ALL {
        cfg.lake
            .delete_prefix(&Dataset::Raw(table).partition(day))
            .await?;
    }
    Ok(())
}

async fn replay(cfg: &RollingConfig) -> Result<Vec<ReplayedOrigin>> {
    let mut out = Vec::new();
    let dates = cfg.score_dates();
    for chunk in dates.chunks(cfg.origin_every_days as usize) {
        let origin = chunk[0];
        let mut replayed = ReplayedOrigin {
            origin,
            promoted: false,
            days: Vec::new(),
        };
        for &day in chunk {
            let started = Instant::now();
            prepare_day(cfg, day).await?;
            if day == origin {
                let trained = repurchase_train::train(
                    &cfg.lake,
                    day,
                    &repurchase_train::TrainConfig {
                        depths: repurchase_train::DEPTH_CANDIDATES.to_vec(),
                        ..repurchase_train::TrainConfig::new(
                            cfg.valid_days,
                            cfg.test_days,
                            &repurchase_model::BoosterParams::default(),
                        )
                    },
                )
                .await?;
                let calibrated = repurchase_calibrate::calibrate(
                    &cfg.lake,
                    day,
                    &repurchase_calibrate::champion::ChampionPolicy::default(),
                )
                .await?;
                replayed.promoted = calibrated.promoted;
                info!(origin = %day, model_version = %trained.model_version, promoted = calibrated.promoted, champion = %calibrated.champion, "origin retrained");
            }
            repurchase_score::score(
                &cfg.lake,
                day,
                &repurchase_score::ScoreOptions {
                    flag_top_share: cfg.flag_top_share,
                    ..Default::default()
                },
            )
            .await?;
            let new = published_scores(&cfg.lake, day).await?;
            let old_batch = repurchase_score::score_in_memory(
                &cfg.lake,
                day,
                Variant::Evaluated,
                &repurchase_score::ScoreOptions {
                    flag_top_share: cfg.flag_top_share,
                    ..Default::default()
                },
            )
            .await?;
            let old = open_rows(std::slice::from_ref(&old_batch))?;
            info!(day = %day, open = new.rows.len(), seconds = started.elapsed().as_secs_f64(), "day replayed");
            replayed.days.push((day, new, old));
        }
        out.push(replayed);
    }
    Ok(out)
}

/// The newest `created_at` of `day`'s extracted orders, in microseconds.
async fn latest_order_us(lake: &DataRoot, day: RunDate) -> Result<Option<i64>> {
    let ctx = SessionContext::new();
    register_partition(&ctx, lake, Dataset::Raw(Table::Orders), day, "orders").await?;
    let batches = ctx
        .sql("SELECT CAST(MAX(created_at) AS BIGINT) AS latest FROM orders")
        .await
        .map_err(|e| CoreError::query("latest order", e))?
        .collect()
        .await
        .map_err(|e| CoreError::query("latest order", e))?;
    let latest = batches
        .first()
        .and_then(|b| b.column(0).as_any().downcast_ref::<Int64Array>())
        .filter(|a| !a.is_empty() && a.is_valid(0))
        .map(|a| a.value(0));
    Ok(latest)
}

/// Settled labels on the outcome date: anchor order → repurchased.
async fn outcomes(cfg: &RollingConfig) -> Result<HashMap<i64, bool>> {
    let day = cfg.outcome_date;
    repurchase_extract::extract(&cfg.lake, day, &Source::Files(cfg.source.clone())).await?;
    // An export that stops before the outcome date would label its last windows "no".
    let latest = latest_order_us(&cfg.lake, day).await?;
    let needed = day.end_exclusive_micros() - 2 * DAY_US;
    if latest.is_none_or(|l| l < needed) {
        return Err(CliError::Backtest(format!(
            "the export's latest order was created {}, more than a day before the end of the \
             outcome date {day}: export or generate data up to the outcome date",
            latest.map_or_else(|| "never".to_string(), format_micros)
        )));
    }
    repurchase_features::build(
        &cfg.lake,
        day,
        &repurchase_features::BuildOptions::new(cfg.anchor, HORIZON_DAYS),
    )
    .await?;
    let (table, _, _) = load_features(&cfg.lake, Dataset::FeaturesTrain, day).await?;
    let labels = table.labels()?;
    Ok(table
        .order_id
        .iter()
        .copied()
        .zip(labels.iter().copied())
        .collect())
}

/// The rows of one procedure with a settled outcome, as parallel columns.
#[derive(Default)]
struct Judged {
    p: Vec<f64>,
    y: Vec<bool>,
    flagged: Vec<bool>,
    users: Vec<i64>,
}

impl Judged {
    fn push(&mut self, p: f64, y: bool, flagged: bool, user: i64) {
        self.p.push(p);
        self.y.push(y);
        self.flagged.push(flagged);
        self.users.push(user);
    }

    fn extend(&mut self, other: &Judged) {
        self.p.extend(&other.p);
        self.y.extend(&other.y);
        self.flagged.extend(&other.flagged);
        self.users.extend(&other.users);
    }

    fn figures(&self, seed: u64) -> Figures {
        let ratio = metrics::bootstrap_calibration_ratio(
            &self.p,
            &self.y,
            &self.users,
            AUC_RESAMPLES,
            seed,
        );
        let customers: std::collections::HashSet<i64> = self.users.iter().copied().collect();
        let repurchasing: std::collections::HashSet<i64> = self
            .users
            .iter()
            .zip(&self.y)
            .filter(|(_, y)| **y)
            .map(|(u, _)| *u)
            .collect();
        Figures {
            customers: customers.len() as u64,
            repurchasing_customers: repurchasing.len() as u64,
            calibration_ratio: ratio.map(|r| r.0),
            calibration_ratio_ci: ratio.and_then(|r| r.1),
            mean_probability: if self.p.is_empty() {
                0.0
            } else {
                self.p.iter().sum::<f64>() / self.p.len() as f64
            },
            summary: metrics::summary(&self.p, &self.y),
            auc_ci: metrics::bootstrap_auc_ci(&self.p, &self.y, &self.users, AUC_RESAMPLES, seed),
            flag: crate::backtest::flag_confusion(&self.flagged, &self.y),
        }
    }
}

/// The oracle's conditional probability of an open anchor: `p_true` given no repurchase in the
/// elapsed days, under the generator's timing.
fn oracle_conditional(p_true: f64, elapsed_days: f64) -> f64 {
    let f = repurchase_datagen::repurchase_delay_cdf(elapsed_days);
    let denominator = 1.0 - p_true * f;
    if denominator <= 0.0 {
        0.0
    } else {
        p_true * (1.0 - f) / denominator
    }
}

/// Indices of the `k` highest oracle probabilities (ties by a hash of the anchor order).
fn top_k(probs: &[(f64, i64)], k: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| {
        probs[b]
            .0
            .total_cmp(&probs[a].0)
            .then_with(|| tie_break(probs[a].1).cmp(&tie_break(probs[b].1)))
            .then(probs[a].1.cmp(&probs[b].1))
    });
    let mut flagged = vec![false; probs.len()];
    for &i in order.iter().take(k) {
        flagged[i] = true;
    }
    flagged
}

struct OriginJudged {
    scored: u64,
    new: Judged,
    old: Judged,
    oracle: Option<Judged>,
}

impl OriginJudged {
    /// The figures of these rows; `seed` seeds the bootstrap intervals.
    fn outcomes(&self, seed: u64) -> Outcomes {
        Outcomes {
            scored: self.scored,
            resolved: self.new.p.len() as u64,
            new: self.new.figures(seed),
            old: self.old.figures(seed),
            oracle: self.oracle.as_ref().map(|o| o.figures(seed)),
        }
    }
}

fn judge_origin(
    days: &[(RunDate, DayScores, DayScores)],
    labels: &HashMap<i64, bool>,
    truth: Option<&HashMap<i64, f64>>,
) -> Result<OriginJudged> {
    let mut j = OriginJudged {
        scored: 0,
        new: Judged::default(),
        old: Judged::default(),
        oracle: truth.map(|_| Judged::default()),
    };
    for (day, new, old) in days {
        if new.rows.len() != old.rows.len() {
            return Err(CliError::Backtest(format!(
                "{day}: the served and evaluated scores have {} and {} open rows",
                new.rows.len(),
                old.rows.len()
            )));
        }
        let old_by_order: HashMap<i64, &Row> = old.rows.iter().map(|r| (r.order_id, r)).collect();
        j.scored += new.rows.len() as u64;
        // The oracle flags as many of the day's open customers as the new procedure did. An
        // anchor order returned after the day has no truth row (the truth table holds the final
        // Complete orders); it has no settled label either, so it is not judged.
        let oracle_day = match truth {
            Some(truth) => {
                let probs: Vec<(f64, i64)> = new
                    .rows
                    .iter()
                    .map(|r| {
                        let p = truth.get(&r.order_id).map_or(f64::NEG_INFINITY, |&p| {
                            oracle_conditional(p, r.elapsed_days)
                        });
                        (p, r.order_id)
                    })
                    .collect();
                let k = new.rows.iter().filter(|r| r.flagged).count();
                let flags = top_k(&probs, k);
                Some((probs, flags))
            }
            None => None,
        };
        for (i, r) in new.rows.iter().enumerate() {
            let o = old_by_order.get(&r.order_id).ok_or_else(|| {
                CliError::Backtest(format!(
                    "{day}: anchor order {} is open for the served model but not the evaluated one",
                    r.order_id
                ))
            })?;
            let Some(&y) = labels.get(&r.order_id) else {
                continue;
            };
            j.new.push(r.probability, y, r.flagged, r.user_id);
            j.old.push(o.probability, y, o.flagged, r.user_id);
            if let (Some(judged), Some((probs, flags))) = (j.oracle.as_mut(), oracle_day.as_ref()) {
                if !probs[i].0.is_finite() {
                    return Err(CliError::Backtest(format!(
                        "{day}: anchor order {} is labelled on the outcome date but has no row \
                         in {}",
                        r.order_id,
                        oracle::TRUTH_FILE
                    )));
                }
                judged.push(probs[i].0, y, flags[i], r.user_id);
            }
        }
    }
    Ok(j)
}

/// Replays the procedure (see the module header), judges it and writes the JSON and the page.
pub async fn rolling_backtest(cfg: &RollingConfig) -> Result<RollingBacktest> {
    cfg.check()?;
    lake_is_fresh(&cfg.lake).await?;
    let started = Instant::now();
    let truth = if cfg.source.exists(oracle::TRUTH_FILE).await? {
        Some(oracle::read_truth(&cfg.source).await?)
    } else {
        None
    };
    let replayed = replay(cfg).await?;
    let labels = outcomes(cfg).await?;
    let replay_seconds = started.elapsed().as_secs_f64();

    let mut per_origin = Vec::new();
    let mut all = OriginJudged {
        scored: 0,
        new: Judged::default(),
        old: Judged::default(),
        oracle: truth.as_ref().map(|_| Judged::default()),
    };
    for (k, o) in replayed.iter().enumerate() {
        let j = judge_origin(&o.days, &labels, truth.as_ref())?;
        let seed = 1000 + k as u64;
        let first = o.days.first().map(|(_, n, old)| (n, old));
        per_origin.push(OriginResult {
            origin: o.origin,
            score_dates: o.days.iter().map(|(d, _, _)| *d).collect(),
            promoted: o.promoted,
            model_version: first.map(|f| f.0.model_version.clone()).unwrap_or_default(),
            evaluated_model_version: first.map(|f| f.1.model_version.clone()).unwrap_or_default(),
            outcomes: j.outcomes(seed),
        });
        all.scored += j.scored;
        all.new.extend(&j.new);
        all.old.extend(&j.old);
        if let (Some(a), Some(b)) = (all.oracle.as_mut(), j.oracle.as_ref()) {
            a.extend(b);
        }
    }
    let report = RollingBacktest {
        first_origin: cfg.first_origin,
        origins: cfg.origins,
        origin_every_days: cfg.origin_every_days,
        outcome_date: cfg.outcome_date,
        anchor: cfg.anchor.to_string(),
        flag_top_share: cfg.flag_top_share,
        valid_days: cfg.valid_days,
        test_days: cfg.test_days,
        horizon_days: HORIZON_DAYS,
        settle_days: repurchase_features::DEFAULT_SETTLE_DAYS,
        pooled: all.outcomes(999),
        per_origin,
        replay_seconds,
    };
    publish(cfg, &report).await?;
    Ok(report)
}

async fn publish(cfg: &RollingConfig, report: &RollingBacktest) -> Result<()> {
    let mut w =
        PartitionWriter::begin(&cfg.lake, Dataset::RollingBacktest, cfg.outcome_date).await?;
    // The wall-clock time is logged, not written: the same replay gives the same bytes.
    let written = RollingBacktest {
        replay_seconds: 0.0,
        ..report.clone()
    };
    w.write_json(JSON_FILE, &written).await?;
    w.write_bytes(PAGE_FILE, page(&written).into_bytes().into())
        .await?;
    let counters = BTreeMap::from([
        ("origins".to_string(), u64::from(report.origins)),
        ("scored".to_string(), report.pooled.scored),
        ("resolved".to_string(), report.pooled.resolved),
        (
            "unresolved".to_string(),
            report.pooled.scored - report.pooled.resolved,
        ),
    ]);
    let params = serde_json::json!({
        "first_origin": cfg.first_origin.to_string(),
        "origins": cfg.origins,
        "origin_every_days": cfg.origin_every_days,
        "anchor": cfg.anchor.to_string(),
        "flag_top_share": cfg.flag_top_share,
        "valid_days": cfg.valid_days,
        "test_days": cfg.test_days,
        "source": cfg.source.url(""),
    });
    w.commit(Provenance {
        stage: STAGE,
        parameters: params,
        schema: None,
        inputs: vec![],
        counters,
    })
    .await?;
    info!(
        origins = report.origins,
        scored = report.pooled.scored,
        resolved = report.pooled.resolved,
        seconds = report.replay_seconds,
        "rolling backtest written to {}",
        cfg.lake
            .url(&Dataset::RollingBacktest.partition(cfg.outcome_date))
    );
    Ok(())
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.decimals$}"))
}

/// The page: one panel per figure over the origins, the per-origin and pooled tables.
pub fn page(r: &RollingBacktest) -> String {
    let x_labels: Vec<String> = r.per_origin.iter().map(|o| o.origin.to_string()).collect();
    let has_oracle = r.pooled.oracle.is_some();
    let series = |name: &str, f: &dyn Fn(&Figures) -> Option<f64>| {
        let mut out = vec![
            Series {
                name: format!("new ({name})"),
                role: Role::Model,
                values: r.per_origin.iter().map(|o| f(&o.outcomes.new)).collect(),
            },
            Series {
                name: format!("old ({name})"),
                role: Role::Baseline,
                values: r.per_origin.iter().map(|o| f(&o.outcomes.old)).collect(),
            },
        ];
        if has_oracle {
            out.push(Series {
                name: format!("oracle ({name})"),
                role: Role::Oracle,
                values: r
                    .per_origin
                    .iter()
                    .map(|o| o.outcomes.oracle.as_ref().and_then(f))
                    .collect(),
            });
        }
        out
    };
    let panel = |id: &str,
                 title: &str,
                 y_title: &str,
                 percent: bool,
                 from_zero: bool,
                 series: Vec<Series>,
                 caption: &str| Panel {
        id: id.to_string(),
        title: title.to_string(),
        y_title: y_title.to_string(),
        percent,
        from_zero,
        series,
        caption: caption.to_string(),
    };
    let mut mean = series("mean p", &|f| Some(f.mean_probability));
    mean.push(Series {
        name: "observed rate".into(),
        role: Role::Observed,
        values: r
            .per_origin
            .iter()
            .map(|o| Some(o.outcomes.new.summary.positive_rate))
            .collect(),
    });
    let panels = vec![
        panel(
            "calibration-ratio",
            "Mean predicted probability ÷ observed rate",
            "ratio",
            false,
            false,
            series("ratio", &|f| f.calibration_ratio),
            "1 is calibrated in the large; each point's interval is in the table (customers \
             resampled).",
        ),
        panel(
            "auc",
            "ROC-AUC of each origin's scores",
            "ROC-AUC",
            false,
            false,
            series("AUC", &|f| f.summary.roc_auc),
            "Ranking of the open customers on the days each origin's champion served.",
        ),
        panel(
            "mean-probability",
            "Mean predicted probability and observed rate",
            "probability",
            true,
            true,
            mean,
            "Calibration in the large: the mean of the probabilities acted on against the share \
             that repurchased.",
        ),
        panel(
            "ece",
            "Expected calibration error (10 equal-mass bins)",
            "ECE",
            false,
            true,
            series("ECE", &|f| Some(f.summary.ece)),
            "Mean gap between predicted and observed rates over ten bins of equal size.",
        ),
        panel(
            "brier",
            "Brier score",
            "Brier",
            false,
            false,
            series("Brier", &|f| Some(f.summary.brier)),
            "Mean squared error of the probabilities (lower is better).",
        ),
        panel(
            "flag-precision",
            "Precision of the flag",
            "precision",
            true,
            true,
            series("precision", &|f| Some(f.flag.precision)),
            "Share of the flagged customers who repurchased.",
        ),
        panel(
            "flag-recall",
            "Recall of the flag",
            "recall",
            true,
            true,
            series("recall", &|f| Some(f.flag.recall)),
            "Share of the repurchasers who were flagged.",
        ),
    ];
    let header: Vec<String> = [
        "origin",
        "promoted",
        "resolved",
        "customers (repurchasing)",
        "observed",
        "mean p ÷ observed new (95% interval) / old / oracle",
        "mean p new / old / oracle",
        "AUC new / old / oracle",
        "ECE new / old / oracle",
        "flag P / R new",
        "flag P / R old",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let row = |label: String,
               promoted: &str,
               resolved: u64,
               new: &Figures,
               old: &Figures,
               oracle: Option<&Figures>| {
        vec![
            label,
            promoted.to_string(),
            resolved.to_string(),
            format!("{} ({})", new.customers, new.repurchasing_customers),
            format!("{:.4}", new.summary.positive_rate),
            format!(
                "{} ({}) / {} / {}",
                fmt_opt(new.calibration_ratio, 2),
                new.calibration_ratio_ci
                    .map_or_else(|| "–".to_string(), |(lo, hi)| format!("{lo:.2}–{hi:.2}")),
                fmt_opt(old.calibration_ratio, 2),
                fmt_opt(oracle.and_then(|o| o.calibration_ratio), 2)
            ),
            format!(
                "{:.4} / {:.4} / {}",
                new.mean_probability,
                old.mean_probability,
                fmt_opt(oracle.map(|o| o.mean_probability), 4)
            ),
            format!(
                "{} / {} / {}",
                fmt_opt(new.summary.roc_auc, 3),
                fmt_opt(old.summary.roc_auc, 3),
                fmt_opt(oracle.and_then(|o| o.summary.roc_auc), 3)
            ),
            format!(
                "{:.4} / {:.4} / {}",
                new.summary.ece,
                old.summary.ece,
                fmt_opt(oracle.map(|o| o.summary.ece), 4)
            ),
            format!("{:.3} / {:.3}", new.flag.precision, new.flag.recall),
            format!("{:.3} / {:.3}", old.flag.precision, old.flag.recall),
        ]
    };
    let mut rows: Vec<Vec<String>> = r
        .per_origin
        .iter()
        .map(|o| {
            row(
                o.origin.to_string(),
                if o.promoted { "yes" } else { "no" },
                o.outcomes.resolved,
                &o.outcomes.new,
                &o.outcomes.old,
                o.outcomes.oracle.as_ref(),
            )
        })
        .collect();
    rows.push(row(
        "pooled".into(),
        "",
        r.pooled.resolved,
        &r.pooled.new,
        &r.pooled.old,
        r.pooled.oracle.as_ref(),
    ));
    let input = timeline::TimelineInput {
        title: format!(
            "Rolling-origin backtest: {} origins from {}",
            r.origins, r.first_origin
        ),
        points: "origins of the rolling-origin backtest".into(),
        facts_heading: "Backtest".into(),
        facts: vec![
            ("first origin".into(), r.first_origin.to_string()),
            (
                "origins".into(),
                format!("{} (every {} days)", r.origins, r.origin_every_days),
            ),
            ("outcome date".into(), r.outcome_date.to_string()),
            ("anchors".into(), r.anchor.clone()),
            (
                "flag".into(),
                r.flag_top_share.map_or_else(
                    || "served threshold".to_string(),
                    |s| format!("top {:.1}% of the open customers", s * 100.0),
                ),
            ),
            (
                "rows judged".into(),
                format!("{} of {} scored", r.pooled.resolved, r.pooled.scored),
            ),
            (
                "oracle".into(),
                if has_oracle {
                    "the generator's p_true, conditioned on the elapsed days".into()
                } else {
                    "none (no truth table in the source)".into()
                },
            ),
        ],
        x_title: "origin (retraining date)".into(),
        x_labels,
        panels,
        tables: vec![PageTable {
            caption: "Per origin and pooled".into(),
            header,
            rows,
        }],
        notes: vec![
            "new: the published scores (the model refitted on every settled anchor, its \
             cross-fitted calibrator and the threshold chosen for the conditional probability). \
             old: the same champion's evaluated model, trained before its validation window, \
             with the validation calibrator and the threshold chosen at the anchor."
                .into(),
            format!(
                "Each day's open customers are judged by the settled labels of {}; rows whose \
                 anchor is not labelled there (returned later) are left out and counted.",
                r.outcome_date
            ),
        ],
    };
    timeline::render(&input)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, TimestampMicrosecondArray, UInt32Array};
    use repurchase_core::StoreConfig;

    use super::*;

    fn root(name: &str) -> DataRoot {
        DataRoot::open(&format!("memory://{name}/root"), &StoreConfig::default()).unwrap()
    }

    fn cfg() -> RollingConfig {
        RollingConfig {
            source: root("source"),
            lake: root("lake"),
            first_origin: "2025-04-21".parse().unwrap(),
            origins: 2,
            origin_every_days: 7,
            outcome_date: "2025-09-30".parse().unwrap(),
            anchor: AnchorMode::FirstOrder,
            flag_top_share: None,
            valid_days: 240,
            test_days: 120,
        }
    }

    #[test]
    fn days_and_the_earliest_outcome_date() {
        let c = cfg();
        let days = c.score_dates();
        assert_eq!(days.len(), 14);
        assert_eq!(days[0].to_string(), "2025-04-21");
        assert_eq!(days[13].to_string(), "2025-05-04");
        // 60-day window and 14 settle days after the last day scored.
        assert_eq!(
            RollingConfig::earliest_outcome_date(days[13]).to_string(),
            "2025-07-17"
        );
        assert!(c.check().is_ok());
        let early = RollingConfig {
            outcome_date: "2025-07-16".parse().unwrap(),
            ..cfg()
        };
        let e = early.check().unwrap_err().to_string();
        assert!(e.contains("2025-07-17") && e.contains("2025-05-04"), "{e}");
        for share in [0.0, 1.5, f64::NAN] {
            let bad = RollingConfig {
                flag_top_share: Some(share),
                ..cfg()
            };
            assert!(bad.check().is_err(), "share {share}");
        }
        let none = RollingConfig {
            origins: 0,
            ..cfg()
        };
        assert!(none.check().is_err());
    }

    #[test]
    fn the_oracle_conditions_on_the_elapsed_days() {
        let p = 0.3;
        assert!((oracle_conditional(p, 0.0) - p).abs() < 1e-12);
        assert_eq!(oracle_conditional(p, 60.0), 0.0);
        // Half the window gone: p·½ / (1 − p·½), up to the generator's one-hour offsets.
        let half = oracle_conditional(p, 30.0);
        assert!((half - 0.15 / 0.85).abs() < 1e-3, "{half}");
        let mut last = 1.0;
        for e in 0..=60 {
            let q = oracle_conditional(p, f64::from(e));
            assert!(q <= last, "not decreasing at {e}");
            last = q;
        }
    }

    #[test]
    fn top_k_takes_the_highest_and_breaks_ties_by_hash() {
        let probs = [
            (0.1, 1),
            (0.5, 2),
            (0.3, 3),
            (0.5, 4),
            (f64::NEG_INFINITY, 5),
        ];
        let two = top_k(&probs, 2);
        assert_eq!(two, [false, true, false, true, false]);
        let one = top_k(&probs, 1);
        assert_eq!(one.iter().filter(|f| **f).count(), 1);
        let tied_winner = if tie_break(2) < tie_break(4) { 1 } else { 3 };
        assert!(one[tied_winner]);
        assert_eq!(top_k(&probs, 0), [false; 5]);
        assert_eq!(top_k(&probs, 9), [true; 5]);
    }

    fn scores(status: &[&str], prob: &[Option<f64>]) -> RecordBatch {
        let n = status.len();
        let ids: Vec<i64> = (1..=n as i64).collect();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(
                ids.iter().map(|i| i * 10).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(TimestampMicrosecondArray::from(vec![0; n]).with_timezone("UTC")),
            Arc::new(StringArray::from(status.to_vec())),
            Arc::new(Float64Array::from(vec![3.0; n])),
            Arc::new(Float64Array::from(prob.to_vec())),
            Arc::new(Float64Array::from(prob.to_vec())),
            Arc::new(UInt32Array::from(vec![Some(1); n])),
            Arc::new(BooleanArray::from(
                prob.iter().map(|p| p.map(|p| p > 0.5)).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(vec!["2025-04-21-abc"; n])),
        ];
        // log_odds and the reason columns: empty, nothing here reads them.
        let schema = repurchase_score::output_schema();
        for f in &schema.fields()[columns.len()..] {
            columns.push(arrow::array::new_null_array(f.data_type(), n));
        }
        RecordBatch::try_new(schema, columns).unwrap()
    }

    #[test]
    fn open_rows_keep_only_open_customers_and_refuse_a_missing_probability() {
        let b = scores(
            &["open", "already_repurchased", "repurchase_pending", "open"],
            &[Some(0.7), None, None, Some(0.2)],
        );
        let day = open_rows(&[b]).unwrap();
        assert_eq!(day.model_version, "2025-04-21-abc");
        let got: Vec<(i64, i64, bool)> = day
            .rows
            .iter()
            .map(|r| (r.order_id, r.user_id, r.flagged))
            .collect();
        assert_eq!(got, [(1, 10, true), (4, 40, false)]);

        let bad = scores(&["open", "open"], &[Some(0.7), None]);
        let e = open_rows(&[bad]).unwrap_err().to_string();
        assert!(
            e.contains("scores") && e.contains("anchor 2") && e.contains("row 1"),
            "{e}"
        );
    }
}
