//! Evaluation metrics for the repurchase classifier: ranking quality (ROC AUC, average
//! precision, a bootstrap interval for AUC, ROC/PR curves), probability quality (Brier, log loss,
//! expected calibration error, reliability curve), operating points (confusion at a threshold,
//! the F1-optimal threshold, top-k targeting) and the decile/lift table used in reports.
//!
//! Conventions shared by every function in this module:
//! - Scores/probabilities and labels are paired by position. Their lengths must match: this is
//!   checked with `debug_assert!`, and in release builds the longer slice is silently truncated
//!   to the shorter one, so a mismatch can never index out of bounds.
//! - Empty input never panics. What each function returns for it (`None`, `0.0` or an empty
//!   `Vec`) is stated on the function.
//! - Ranking uses one total order in which NaN sits below every number and `-0.0 == 0.0`, so NaN
//!   input cannot panic a sort. NaN rows are still garbage in, garbage out: they rank lowest and
//!   are never predicted positive, but the numbers they produce are not meaningful.
//! - Everything is a pure, deterministic function of its arguments; the only randomness is the
//!   explicitly seeded SplitMix64 used by [`bootstrap_auc_ci`].

use std::cmp::Ordering;

use repurchase_core::hash::SplitMix64;
use serde::{Deserialize, Serialize};

/// Used when there is no candidate threshold at all (empty input, or only NaN scores): a
/// probability threshold of 1.0 flags as little as possible while still serialising to JSON
/// (infinity would not).
const NO_CANDIDATE_THRESHOLD: f64 = 1.0;

/// Truncates to the common length; see the module docs for why this is not a hard error.
pub(crate) fn paired<'a, T>(xs: &'a [f64], labels: &'a [T]) -> (&'a [f64], &'a [T]) {
    debug_assert_eq!(
        xs.len(),
        labels.len(),
        "scores and labels must have the same length"
    );
    let n = xs.len().min(labels.len());
    (&xs[..n], &labels[..n])
}

/// Ascending total order on scores: NaN lowest, `-0.0 == 0.0`, so sorting can never panic and
/// signed zeros form one tie group (as they do under `>=` in [`confusion_at`]).
fn cmp_score(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Row indices by descending score; equal scores are ordered by index so that every consumer
/// (top-k, curves) sees the same reproducible order.
fn order_desc(scores: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_unstable_by(|&i, &j| cmp_score(scores[j], scores[i]).then(i.cmp(&j)));
    idx
}

/// [`order_desc`] with equal scores ordered by a hash of each row's key, then the key: a
/// reproducible order unrelated to time (rows usually arrive in time order, and TheLook's ids
/// grow with it), so a tie never sends the oldest anchors to the top decile. Rows without a key
/// (a short `keys`) fall back to their index.
fn order_desc_keyed(scores: &[f64], keys: &[i64]) -> Vec<usize> {
    let key = |i: usize| {
        keys.get(i)
            .map(|&k| (repurchase_core::hash::tie_break(k), k))
    };
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_unstable_by(|&i, &j| {
        cmp_score(scores[j], scores[i])
            .then(key(i).cmp(&key(j)))
            .then(i.cmp(&j))
    });
    idx
}

/// Cumulative counts after admitting one whole group of tied scores, walking from the highest
/// score down. Grouping ties is what makes AUC, AP and the curves independent of input order.
#[derive(Debug, Clone, Copy)]
struct Step {
    score: f64,
    tp: u64,
    fp: u64,
}

/// Returns the steps plus the total numbers of positives and negatives.
fn threshold_steps(scores: &[f64], labels: &[bool]) -> (Vec<Step>, u64, u64) {
    let order = order_desc(scores);
    let mut steps = Vec::new();
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut k = 0;
    while k < order.len() {
        let score = scores[order[k]];
        while k < order.len() && cmp_score(scores[order[k]], score) == Ordering::Equal {
            if labels[order[k]] {
                tp += 1;
            } else {
                fp += 1;
            }
            k += 1;
        }
        steps.push(Step { score, tp, fp });
    }
    (steps, tp, fp)
}

/// ROC AUC as the Mann–Whitney statistic: the probability that a random positive outscores a
/// random negative, ties counting one half (identical to the average-rank formulation).
///
/// O(n log n). Returns `None` when either class is absent (including empty input).
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let (scores, labels) = paired(scores, labels);
    let (steps, pos, neg) = threshold_steps(scores, labels);
    if pos == 0 || neg == 0 {
        return None;
    }
    // Twice the U statistic is an integer, so accumulating it in u128 keeps the result exact
    // until the final division, whatever n is.
    let mut twice_u: u128 = 0;
    let (mut prev_tp, mut prev_fp) = (0u64, 0u64);
    for s in &steps {
        let pos_g = u128::from(s.tp - prev_tp);
        let neg_g = u128::from(s.fp - prev_fp);
        let neg_below = u128::from(neg - s.fp);
        twice_u += pos_g * (2 * neg_below + neg_g);
        prev_tp = s.tp;
        prev_fp = s.fp;
    }
    Some(twice_u as f64 / (2.0 * pos as f64 * neg as f64))
}

/// Average precision, step-wise like scikit-learn's `average_precision_score`:
/// `Σ (R_k − R_{k−1}) · P_k` over distinct thresholds from high to low, tied scores entering
/// together (no interpolation).
///
/// Returns `None` when there are no positives (recall is undefined), including empty input.
/// With no negatives it is 1.0.
pub fn pr_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let (scores, labels) = paired(scores, labels);
    let (steps, pos, _) = threshold_steps(scores, labels);
    if pos == 0 {
        return None;
    }
    let mut ap = 0.0;
    let mut prev_tp = 0u64;
    for s in &steps {
        if s.tp > prev_tp {
            let recall_gain = (s.tp - prev_tp) as f64 / pos as f64;
            let precision = s.tp as f64 / (s.tp + s.fp) as f64;
            ap += recall_gain * precision;
        }
        prev_tp = s.tp;
    }
    Some(ap)
}

/// Mean squared error between probability and outcome. Returns 0.0 for empty input.
pub fn brier(probs: &[f64], labels: &[bool]) -> f64 {
    mean_loss(probs, labels, |p, y| {
        let d = p - if y { 1.0 } else { 0.0 };
        d * d
    })
}

/// Mean of `loss(probability, outcome)` over the paired rows; 0.0 for empty input.
fn mean_loss(probs: &[f64], labels: &[bool], loss: impl Fn(f64, bool) -> f64) -> f64 {
    let (probs, labels) = paired(probs, labels);
    if probs.is_empty() {
        return 0.0;
    }
    let sum: f64 = probs.iter().zip(labels).map(|(&p, &y)| loss(p, y)).sum();
    sum / probs.len() as f64
}

/// Mean negative log-likelihood (natural log). Probabilities are clipped to
/// `[1e-15, 1 − 1e-15]` so a single confident mistake costs a lot but stays finite.
/// Returns 0.0 for empty input.
pub fn log_loss(probs: &[f64], labels: &[bool]) -> f64 {
    const EPS: f64 = 1e-15;
    mean_loss(probs, labels, |p, y| {
        let p = p.clamp(EPS, 1.0 - EPS);
        if y { -p.ln() } else { -(1.0 - p).ln() }
    })
}

/// Equal-width bin of `[0, 1]` for a probability. Values outside `[0, 1]` fall into the end
/// bins, and 1.0 belongs to the last bin, so every row lands somewhere.
fn bin_index(p: f64, bins: usize) -> usize {
    // `as usize` saturates (and maps NaN to 0), so this cannot panic.
    let clamped = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
    ((clamped * bins as f64) as usize).min(bins - 1)
}

/// Expected calibration error over `bins` equal-mass bins: rows sorted by probability (ties by
/// position) and cut into groups whose sizes differ by at most one, then
/// `Σ_b (n_b / n) · |mean_predicted_b − observed_rate_b|`. Unlike equal-width bins, which put
/// nearly every row of a rare event into the first bin, each bin here holds a tenth of the rows,
/// so miscalibration among the likely repurchasers is not averaged away. `bins == 0` is treated
/// as 1. Returns 0.0 for empty input.
pub fn expected_calibration_error_equal_mass(probs: &[f64], labels: &[bool], bins: usize) -> f64 {
    let (probs, labels) = paired(probs, labels);
    let n = probs.len();
    if n == 0 {
        return 0.0;
    }
    let bins = bins.clamp(1, n);
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&i, &j| cmp_score(probs[i], probs[j]).then(i.cmp(&j)));
    let mut ece = 0.0;
    for b in 0..bins {
        let (lo, hi) = (b * n / bins, (b + 1) * n / bins);
        let rows = &idx[lo..hi];
        if rows.is_empty() {
            continue;
        }
        let mean_p = rows.iter().map(|&i| probs[i]).sum::<f64>() / rows.len() as f64;
        let rate = rows.iter().filter(|&&i| labels[i]).count() as f64 / rows.len() as f64;
        ece += rows.len() as f64 / n as f64 * (mean_p - rate).abs();
    }
    ece
}

/// Expected calibration error: `Σ_b (n_b / n) · |mean_predicted_b − observed_rate_b|` over
/// equal-width bins of `[0, 1]`. `bins == 0` is treated as 1. Returns 0.0 for empty input.
pub fn expected_calibration_error(probs: &[f64], labels: &[bool], bins: usize) -> f64 {
    let (probs, labels) = paired(probs, labels);
    if probs.is_empty() {
        return 0.0;
    }
    let n = probs.len() as f64;
    reliability_curve(probs, labels, bins)
        .iter()
        .map(|b| b.rows as f64 / n * (b.mean_predicted - b.observed_rate).abs())
        .sum()
}

/// Linear-interpolation quantile of an ascending, non-empty slice (numpy's default method).
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Scores sorted once for repeated weighted AUCs: row order by descending score and the ends of
/// the groups of tied scores.
struct Ranked {
    order: Vec<usize>,
    group_ends: Vec<usize>,
}

impl Ranked {
    fn new(scores: &[f64]) -> Ranked {
        let n = scores.len();
        let order = order_desc(scores);
        let mut group_ends = Vec::new();
        for k in 1..=n {
            if k == n || cmp_score(scores[order[k]], scores[order[k - 1]]) != Ordering::Equal {
                group_ends.push(k);
            }
        }
        Ranked { order, group_ends }
    }

    /// ROC AUC with row `i` counted `weights[i]` times: the exact doubled-U accumulation of
    /// [`roc_auc`] over the weighted rows. `None` when a class has no weight.
    fn weighted_auc(&self, labels: &[bool], weights: &[u64]) -> Option<f64> {
        let (mut pos, mut neg) = (0u128, 0u128);
        for (&c, &y) in weights.iter().zip(labels) {
            if y {
                pos += u128::from(c);
            } else {
                neg += u128::from(c);
            }
        }
        if pos == 0 || neg == 0 {
            return None;
        }
        let mut twice_u: u128 = 0;
        let mut neg_above: u128 = 0;
        let mut start = 0;
        for &end in &self.group_ends {
            let (mut pos_g, mut neg_g) = (0u128, 0u128);
            for &i in &self.order[start..end] {
                if labels[i] {
                    pos_g += u128::from(weights[i]);
                } else {
                    neg_g += u128::from(weights[i]);
                }
            }
            neg_above += neg_g;
            twice_u += pos_g * (2 * (neg - neg_above) + neg_g);
            start = end;
        }
        Some(twice_u as f64 / (2.0 * pos as f64 * neg as f64))
    }
}

/// Brier score with row `i` counted `weights[i]` times (0.0 without weight).
fn weighted_brier(probs: &[f64], labels: &[bool], weights: &[u64]) -> f64 {
    let (mut sum, mut total) = (0.0, 0u64);
    for ((&p, &y), &w) in probs.iter().zip(labels).zip(weights) {
        let d = p - f64::from(u8::from(y));
        sum += w as f64 * d * d;
        total += w;
    }
    if total == 0 { 0.0 } else { sum / total as f64 }
}

/// Resampling by group (a customer): each draw picks as many groups as there are, with
/// replacement, and every row counts as often as its group was drawn. Rows of one customer
/// (every-order anchors) move together, so the intervals are not narrowed by treating them as
/// independent. With one group per row this is the ordinary row bootstrap.
struct GroupBootstrap {
    row_group: Vec<usize>,
    groups: usize,
    rng: SplitMix64,
    counts: Vec<u64>,
    weights: Vec<u64>,
}

impl GroupBootstrap {
    fn new(groups: &[i64], seed: u64) -> GroupBootstrap {
        let mut dense = std::collections::HashMap::new();
        let row_group: Vec<usize> = groups
            .iter()
            .map(|g| {
                let next = dense.len();
                *dense.entry(*g).or_insert(next)
            })
            .collect();
        GroupBootstrap {
            groups: dense.len(),
            counts: vec![0; dense.len()],
            weights: vec![0; row_group.len()],
            row_group,
            rng: SplitMix64::new(seed),
        }
    }

    /// The row weights of the next draw.
    fn draw(&mut self) -> &[u64] {
        self.counts.fill(0);
        for _ in 0..self.groups {
            self.counts[self.rng.below(self.groups)] += 1;
        }
        for (w, g) in self.weights.iter_mut().zip(&self.row_group) {
            *w = self.counts[*g];
        }
        &self.weights
    }
}

/// 95% percentile interval of `values` (2.5th and 97.5th percentiles, linear interpolation).
fn interval(mut values: Vec<f64>) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    Some((
        quantile_sorted(&values, 0.025),
        quantile_sorted(&values, 0.975),
    ))
}

/// 95% percentile bootstrap interval for ROC AUC, resampling whole groups (customers: `groups`
/// holds each row's customer) `resamples` times with a SplitMix64 seeded with `seed`.
///
/// Resamples that happen to contain a single class have no AUC and are skipped rather than
/// redrawn, so the draw sequence stays a pure function of the seed. Returns `None` when the
/// full data has a single class (or is empty), when `resamples == 0`, or when no resample had
/// both classes.
///
/// Cost is O(n log n + resamples · n): rows are sorted once and each resample is scored by
/// weighting the sorted rows with how often they were drawn.
pub fn bootstrap_auc_ci(
    scores: &[f64],
    labels: &[bool],
    groups: &[i64],
    resamples: usize,
    seed: u64,
) -> Option<(f64, f64)> {
    let (scores, labels) = paired(scores, labels);
    if resamples == 0 || roc_auc(scores, labels).is_none() || groups.len() < scores.len() {
        return None;
    }
    let ranked = Ranked::new(scores);
    let mut boot = GroupBootstrap::new(&groups[..scores.len()], seed);
    let aucs = (0..resamples)
        .filter_map(|_| ranked.weighted_auc(labels, boot.draw()))
        .collect();
    interval(aucs)
}

/// Calibration in the large: the mean probability over the observed rate (`Σp / Σy`), and its 95%
/// percentile bootstrap interval resampling whole groups (customers) like
/// [`bootstrap_auc_ci`]. `None` without a positive (the ratio is undefined); the interval is
/// `None` when `resamples == 0`. Resamples without a positive are skipped.
pub fn bootstrap_calibration_ratio(
    probs: &[f64],
    labels: &[bool],
    groups: &[i64],
    resamples: usize,
    seed: u64,
) -> Option<(f64, Option<(f64, f64)>)> {
    let (probs, labels) = paired(probs, labels);
    let ratio = |w: Option<&[u64]>| {
        let weight = |i: usize| w.map_or(1.0, |w| w[i] as f64);
        let (mut p, mut y) = (0.0, 0.0);
        for i in 0..probs.len() {
            p += weight(i) * probs[i];
            y += weight(i) * f64::from(u8::from(labels[i]));
        }
        (y > 0.0).then(|| p / y)
    };
    let point = ratio(None)?;
    if resamples == 0 || groups.len() < probs.len() {
        return Some((point, None));
    }
    let mut boot = GroupBootstrap::new(&groups[..probs.len()], seed);
    let draws = (0..resamples)
        .filter_map(|_| ratio(Some(boot.draw())))
        .collect();
    Some((point, interval(draws)))
}

/// Paired comparison of two models' probabilities on the same rows: 95% bootstrap intervals of
/// the differences `new − old` in ROC AUC and in Brier score, each resample drawing whole
/// customers and scoring both models on it. `None` where no resample had both classes.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PairedDelta {
    /// 95% interval (2.5%, 97.5% quantiles) of `AUC(new) − AUC(old)`; positive favours `new`.
    pub auc: Option<(f64, f64)>,
    /// 95% interval of `Brier(new) − Brier(old)`; negative favours `new`. `None` only for empty
    /// input or no resamples.
    pub brier: Option<(f64, f64)>,
}

/// [`PairedDelta`] of `new` against `old` on the same rows: `resamples` draws of whole groups
/// (`groups`: each row's customer) with a SplitMix64 seeded with `seed`. Inputs are cut to the
/// shortest length.
pub fn paired_bootstrap(
    new: &[f64],
    old: &[f64],
    labels: &[bool],
    groups: &[i64],
    resamples: usize,
    seed: u64,
) -> PairedDelta {
    let n = new.len().min(old.len()).min(labels.len()).min(groups.len());
    let (new, old, labels) = (&new[..n], &old[..n], &labels[..n]);
    let (ranked_new, ranked_old) = (Ranked::new(new), Ranked::new(old));
    let mut boot = GroupBootstrap::new(&groups[..n], seed);
    let (mut auc, mut brier) = (Vec::new(), Vec::new());
    for _ in 0..resamples {
        let w = boot.draw();
        if let (Some(a), Some(b)) = (
            ranked_new.weighted_auc(labels, w),
            ranked_old.weighted_auc(labels, w),
        ) {
            auc.push(a - b);
        }
        if n > 0 {
            brier.push(weighted_brier(new, labels, w) - weighted_brier(old, labels, w));
        }
    }
    PairedDelta {
        auc: interval(auc),
        brier: interval(brier),
    }
}

/// Confusion matrix and derived rates at one threshold. Precision, recall and F1 are 0.0 when
/// their denominator is zero (scikit-learn's `zero_division=0`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Confusion {
    /// Rows with `prob >= threshold` are predicted positive.
    pub threshold: f64,
    /// True positives: predicted positive and repurchased.
    pub tp: u64,
    /// False positives: predicted positive, no repurchase.
    pub fp: u64,
    /// True negatives: predicted negative, no repurchase.
    pub tn: u64,
    /// False negatives: predicted negative but repurchased (`fn` is a keyword).
    pub fn_: u64,
    /// `tp / (tp + fp)`.
    pub precision: f64,
    /// `tp / (tp + fn)`.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
}

fn ratio_or_zero(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Confusion matrix with "predicted positive iff `prob >= threshold`". NaN probabilities are
/// never predicted positive. Empty input gives all-zero counts.
pub fn confusion_at(probs: &[f64], labels: &[bool], threshold: f64) -> Confusion {
    let (probs, labels) = paired(probs, labels);
    let (mut tp, mut fp, mut tn, mut fn_) = (0u64, 0u64, 0u64, 0u64);
    for (&p, &y) in probs.iter().zip(labels) {
        match (p >= threshold, y) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fn_ += 1,
        }
    }
    Confusion {
        threshold,
        tp,
        fp,
        tn,
        fn_,
        precision: ratio_or_zero(tp, tp + fp),
        recall: ratio_or_zero(tp, tp + fn_),
        // Written in counts rather than from P and R so the scan in `f1_optimal_threshold`
        // computes bit-identical values and its tie-break is exact.
        f1: ratio_or_zero(2 * tp, 2 * tp + fp + fn_),
    }
}

/// The threshold, among the distinct (non-NaN) probability values, that maximises F1; ties go
/// to the higher threshold (fewer rows flagged for the same F1). O(n log n).
///
/// With no positives every F1 is 0, so the highest score is returned. Empty input (or only NaN
/// probabilities) returns the confusion at threshold 1.0.
pub fn f1_optimal_threshold(probs: &[f64], labels: &[bool]) -> Confusion {
    let (probs, labels) = paired(probs, labels);
    let (steps, pos, _) = threshold_steps(probs, labels);
    let mut best: Option<(f64, f64)> = None;
    for s in steps.iter().filter(|s| !s.score.is_nan()) {
        let fn_ = pos - s.tp;
        let f1 = ratio_or_zero(2 * s.tp, 2 * s.tp + s.fp + fn_);
        // Steps run from the highest threshold down, so only a strict improvement may replace.
        if best.is_none_or(|(best_f1, _)| f1 > best_f1) {
            best = Some((f1, s.score));
        }
    }
    let threshold = best.map_or(NO_CANDIDATE_THRESHOLD, |(_, t)| t);
    confusion_at(probs, labels, threshold)
}

/// Confusion when targeting the top `fraction` of rows: the threshold is the score of the k-th
/// highest row, `k = ceil(fraction · n)`.
///
/// `fraction` is clamped to `[0, 1]` and k to `1..=n`, so even a fraction of 0 flags the single
/// highest row (a threshold that flags nobody has no score to take). Because the threshold is
/// applied with `>=`, rows tied with the k-th score are flagged too, so more than k rows can be
/// predicted positive. Empty input returns the all-zero confusion at threshold 1.0.
pub fn top_k_confusion(probs: &[f64], labels: &[bool], fraction: f64) -> Confusion {
    let (probs, labels) = paired(probs, labels);
    let n = probs.len();
    if n == 0 {
        return confusion_at(probs, labels, NO_CANDIDATE_THRESHOLD);
    }
    let exact = fraction.clamp(0.0, 1.0) * n as f64;
    // Products such as 0.07 · 100 come out as 7.000000000000001; without snapping, ceil would
    // flag one row more than the caller asked for.
    let nearest = exact.round();
    let k = if (exact - nearest).abs() <= 1e-9 * exact.max(1.0) {
        nearest
    } else {
        exact.ceil()
    };
    let k = (k as usize).clamp(1, n);
    let order = order_desc(probs);
    confusion_at(probs, labels, probs[order[k - 1]])
}

/// One row of the decile table (decile 1 holds the highest scores).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct DecileRow {
    /// Decile number, 1..=10.
    pub decile: u32,
    /// Rows in the decile.
    pub rows: u64,
    /// Repurchasers among them.
    pub positives: u64,
    /// `positives / rows`: the decile's observed repurchase rate.
    pub rate: f64,
    /// `rate / overall positive rate`; 0.0 when there are no positives at all.
    pub lift: f64,
    /// Share of all positives in deciles 1..=this one; 0.0 when there are no positives at all.
    pub cumulative_gain: f64,
    /// Lowest probability in the decile.
    pub min_score: f64,
    /// Highest probability in the decile.
    pub max_score: f64,
}

/// Decile (1..=10) of the row at 0-based descending rank `rank_desc` among `n` rows:
/// `floor(10 · rank / n) + 1`, which splits n rows into ten groups whose sizes differ by at most
/// one. This is exactly the split [`deciles`] uses, so a score's decile can be recovered from
/// its rank alone. Out-of-range ranks clamp to the last row; `n == 0` returns 1.
pub fn decile_of(rank_desc: usize, n: usize) -> u32 {
    if n == 0 {
        return 1;
    }
    let rank = rank_desc.min(n - 1) as u128;
    // u128 so that 10 · rank cannot overflow for any usize.
    (rank * 10 / n as u128) as u32 + 1
}

/// Decile table: rows sorted by score descending (ties by a hash of `keys`, the anchors' order
/// ids; see [`order_desc_keyed`]), split with [`decile_of`].
///
/// With fewer than 10 rows some deciles are empty; they are omitted rather than reported with
/// made-up scores, so the returned decile numbers may skip. Empty input returns an empty `Vec`.
/// Row counts and positives always sum to the totals, and the last row's cumulative gain is
/// exactly 1.0 whenever there is at least one positive.
pub fn deciles(probs: &[f64], labels: &[bool], keys: &[i64]) -> Vec<DecileRow> {
    let (probs, labels) = paired(probs, labels);
    let n = probs.len();
    if n == 0 {
        return Vec::new();
    }
    let total_pos = labels.iter().filter(|&&y| y).count() as u64;
    let overall_rate = total_pos as f64 / n as f64;

    // (rows, positives, max_score, min_score) per decile; rows arrive in descending order, so
    // the first score seen is the maximum and the last the minimum.
    let mut acc: [(u64, u64, f64, f64); 10] = [(0, 0, 0.0, 0.0); 10];
    for (rank, &i) in order_desc_keyed(probs, keys).iter().enumerate() {
        let slot = &mut acc[(decile_of(rank, n) - 1) as usize];
        if slot.0 == 0 {
            slot.2 = probs[i];
        }
        slot.0 += 1;
        slot.1 += u64::from(labels[i]);
        slot.3 = probs[i];
    }

    let mut out = Vec::new();
    let mut cum_pos = 0u64;
    for (d, &(rows, positives, max_score, min_score)) in acc.iter().enumerate() {
        if rows == 0 {
            continue;
        }
        cum_pos += positives;
        let rate = positives as f64 / rows as f64;
        out.push(DecileRow {
            decile: d as u32 + 1,
            rows,
            positives,
            rate,
            lift: if total_pos == 0 {
                0.0
            } else {
                rate / overall_rate
            },
            cumulative_gain: ratio_or_zero(cum_pos, total_pos),
            min_score,
            max_score,
        });
    }
    out
}

/// One non-empty bin of a reliability curve.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ReliabilityBin {
    /// Inclusive lower edge of the bin, in `[0, 1)`.
    pub lower: f64,
    /// Upper edge of the bin: exclusive, except 1.0 for the last bin.
    pub upper: f64,
    /// Rows whose probability falls in the bin (at least 1).
    pub rows: u64,
    /// Mean predicted probability of those rows.
    pub mean_predicted: f64,
    /// Share of those rows that repurchased.
    pub observed_rate: f64,
}

/// Reliability (calibration) curve over `bins` equal-width bins of `[0, 1]`; each bin is
/// `[lower, upper)` except the last, which includes 1.0. Probabilities outside `[0, 1]` are
/// binned at the nearest end but averaged as given. Empty bins are omitted; `bins == 0` is
/// treated as 1. Empty input returns an empty `Vec`.
pub fn reliability_curve(probs: &[f64], labels: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    let (probs, labels) = paired(probs, labels);
    let bins = bins.max(1);
    if probs.is_empty() {
        return Vec::new();
    }
    let mut acc = vec![(0u64, 0.0f64, 0u64); bins];
    for (&p, &y) in probs.iter().zip(labels) {
        let slot = &mut acc[bin_index(p, bins)];
        slot.0 += 1;
        slot.1 += p;
        slot.2 += u64::from(y);
    }
    acc.iter()
        .enumerate()
        .filter(|(_, a)| a.0 > 0)
        .map(|(i, &(rows, sum_p, pos))| ReliabilityBin {
            lower: i as f64 / bins as f64,
            upper: (i + 1) as f64 / bins as f64,
            rows,
            mean_predicted: sum_p / rows as f64,
            observed_rate: pos as f64 / rows as f64,
        })
        .collect()
}

/// Keeps at most `max_points` (at least 2) points, always including the first and the last and
/// otherwise evenly spaced by index, so plots keep their end points.
fn downsample(points: Vec<(f64, f64)>, max_points: usize) -> Vec<(f64, f64)> {
    let max_points = max_points.max(2);
    let len = points.len();
    if len <= max_points {
        return points;
    }
    // Step (len−1)/(max−1) > 1, so the floored indices are strictly increasing: no duplicates.
    (0..max_points)
        .map(|i| {
            let idx = (i as u128 * (len - 1) as u128 / (max_points - 1) as u128) as usize;
            points[idx]
        })
        .collect()
}

/// ROC curve as `(fpr, tpr)` points, one per distinct score from high to low, starting at
/// (0, 0) and ending at (1, 1), downsampled to at most `max_points` (values below 2 are treated
/// as 2, since a curve needs both ends). Returns an empty `Vec` when either class is absent,
/// because one of the rates is then undefined.
pub fn roc_curve(scores: &[f64], labels: &[bool], max_points: usize) -> Vec<(f64, f64)> {
    let (scores, labels) = paired(scores, labels);
    let (steps, pos, neg) = threshold_steps(scores, labels);
    if pos == 0 || neg == 0 {
        return Vec::new();
    }
    let mut points = Vec::with_capacity(steps.len() + 1);
    points.push((0.0, 0.0));
    points.extend(
        steps
            .iter()
            .map(|s| (s.fp as f64 / neg as f64, s.tp as f64 / pos as f64)),
    );
    downsample(points, max_points)
}

/// Precision–recall curve as `(recall, precision)` points, one per distinct score from high to
/// low, preceded by scikit-learn's conventional (0, 1) start, so recall rises from 0 to 1.
/// Downsampled like [`roc_curve`]. Returns an empty `Vec` when there are no positives.
pub fn pr_curve(scores: &[f64], labels: &[bool], max_points: usize) -> Vec<(f64, f64)> {
    let (scores, labels) = paired(scores, labels);
    let (steps, pos, _) = threshold_steps(scores, labels);
    if pos == 0 {
        return Vec::new();
    }
    let mut points = Vec::with_capacity(steps.len() + 1);
    points.push((0.0, 1.0));
    points.extend(
        steps
            .iter()
            .map(|s| (s.tp as f64 / pos as f64, s.tp as f64 / (s.tp + s.fp) as f64)),
    );
    downsample(points, max_points)
}

/// Headline metrics for one evaluation set.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Summary {
    /// Rows evaluated.
    pub rows: u64,
    /// Repurchasers among them.
    pub positives: u64,
    /// `positives / rows`; 0.0 for no rows.
    pub positive_rate: f64,
    /// [`roc_auc`]; `None` when either class is absent.
    pub roc_auc: Option<f64>,
    /// Average precision ([`pr_auc`]); `None` without positives.
    pub pr_auc: Option<f64>,
    /// [`brier`]: mean squared error of the probabilities.
    pub brier: f64,
    /// [`log_loss`]: mean negative log-likelihood, natural log.
    pub log_loss: f64,
    /// Expected calibration error over 10 equal-mass bins.
    pub ece: f64,
    /// The same over 10 equal-width bins of [0, 1] (the reliability curve's).
    pub ece_equal_width: f64,
}

/// All headline metrics at once; both ECEs use 10 bins. Empty input gives zero counts and
/// rates, `None` for both AUCs and 0.0 for the losses.
pub fn summary(probs: &[f64], labels: &[bool]) -> Summary {
    let (probs, labels) = paired(probs, labels);
    let rows = probs.len() as u64;
    let positives = labels.iter().filter(|&&y| y).count() as u64;
    Summary {
        rows,
        positives,
        positive_rate: ratio_or_zero(positives, rows),
        roc_auc: roc_auc(probs, labels),
        pr_auc: pr_auc(probs, labels),
        brier: brier(probs, labels),
        log_loss: log_loss(probs, labels),
        ece: expected_calibration_error_equal_mass(probs, labels, 10),
        ece_equal_width: expected_calibration_error(probs, labels, 10),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Scores on a coarse grid so that ties are frequent, labels loosely tied to the scores.
    fn random_data(rng: &mut SplitMix64, n: usize, levels: usize) -> (Vec<f64>, Vec<bool>) {
        let scores: Vec<f64> = (0..n)
            .map(|_| rng.below(levels) as f64 / levels as f64)
            .collect();
        let labels = scores
            .iter()
            .map(|&s| rng.next_f64() < 0.2 + 0.6 * s)
            .collect();
        (scores, labels)
    }

    fn brute_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
        let (mut num, mut den) = (0.0, 0.0);
        for (i, &si) in scores.iter().enumerate() {
            for (j, &sj) in scores.iter().enumerate() {
                if labels[i] && !labels[j] {
                    den += 1.0;
                    if si > sj {
                        num += 1.0;
                    } else if si == sj {
                        num += 0.5;
                    }
                }
            }
        }
        (den > 0.0).then(|| num / den)
    }

    #[test]
    fn auc_matches_brute_force_with_ties() {
        let mut rng = SplitMix64::new(42);
        for round in 0..50 {
            let n = 1 + rng.below(120);
            let levels = 1 + rng.below(if round % 2 == 0 { 5 } else { 50 });
            let (s, y) = random_data(&mut rng, n, levels);
            match (roc_auc(&s, &y), brute_auc(&s, &y)) {
                (Some(a), Some(b)) => assert!(close(a, b, 1e-12), "{a} vs {b}"),
                (None, None) => {}
                other => panic!("mismatch {other:?}"),
            }
        }
    }

    #[test]
    fn auc_extremes() {
        let y = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.3, 0.4], &y), Some(1.0));
        assert_eq!(roc_auc(&[0.4, 0.3, 0.2, 0.1], &y), Some(0.0));
        assert_eq!(roc_auc(&[0.5; 4], &y), Some(0.5));
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
        assert_eq!(roc_auc(&[], &[]), None);
    }

    #[test]
    fn sklearn_doc_example() {
        let y = [false, false, true, true];
        let s = [0.1, 0.4, 0.35, 0.8];
        assert!(close(pr_auc(&s, &y).unwrap(), 5.0 / 6.0, 1e-12));
        assert!(close(roc_auc(&s, &y).unwrap(), 0.75, 1e-12));
    }

    #[test]
    fn ap_groups_ties_and_edge_cases() {
        // The two tied top scores enter together: P = 1/2 at R = 1/2, then P = 2/3 at R = 1.
        let s = [0.9, 0.9, 0.5, 0.1];
        let y = [true, false, true, false];
        assert!(close(
            pr_auc(&s, &y).unwrap(),
            0.5 * 0.5 + 0.5 * 2.0 / 3.0,
            1e-12
        ));
        assert_eq!(pr_auc(&[0.3, 0.7], &[true, true]), Some(1.0));
        assert_eq!(pr_auc(&[0.3, 0.7], &[false, false]), None);
        assert_eq!(pr_auc(&[], &[]), None);
    }

    #[test]
    fn brier_and_log_loss_by_hand() {
        let p = [0.9, 0.2, 0.6];
        let y = [true, false, false];
        assert!(close(brier(&p, &y), (0.01 + 0.04 + 0.36) / 3.0, 1e-12));
        let expected = -(0.9f64.ln() + 0.8f64.ln() + 0.4f64.ln()) / 3.0;
        assert!(close(log_loss(&p, &y), expected, 1e-12));
        // Clipping keeps a certain-and-wrong prediction finite: −ln(1e-15) ≈ 34.54.
        let ll = log_loss(&[0.0], &[true]);
        assert!(ll.is_finite() && close(ll, -(1e-15f64).ln(), 1e-9));
        assert_eq!(brier(&[], &[]), 0.0);
        assert_eq!(log_loss(&[], &[]), 0.0);
    }

    #[test]
    fn ece_zero_when_each_bin_matches_its_rate() {
        // Each bin holds one repeated prediction whose value is exactly the bin's positive rate:
        // 4 rows at 0.25 (1 positive), 10 at 0.7 (7 positive), 2 at 0.5 (1 positive).
        let mut p = Vec::new();
        let mut y = Vec::new();
        for i in 0..4 {
            p.push(0.25);
            y.push(i == 0);
        }
        for i in 0..10 {
            p.push(0.7);
            y.push(i < 7);
        }
        p.extend([0.5, 0.5]);
        y.extend([true, false]);
        assert!(close(expected_calibration_error(&p, &y, 10), 0.0, 1e-12));
        // Moving every prediction by 0.04 keeps each row in its bin, so every gap is 0.04.
        let shifted: Vec<f64> = p.iter().map(|v| v + 0.04).collect();
        assert!(close(
            expected_calibration_error(&shifted, &y, 10),
            0.04,
            1e-12
        ));
        assert_eq!(expected_calibration_error(&[], &[], 10), 0.0);
        assert_eq!(expected_calibration_error(&p, &y, 0), {
            let mean_p = p.iter().sum::<f64>() / p.len() as f64;
            let rate = y.iter().filter(|&&b| b).count() as f64 / y.len() as f64;
            (mean_p - rate).abs()
        });
    }

    #[test]
    fn reliability_curve_omits_empty_bins_and_keeps_one_in_last_bin() {
        let p = [0.05, 0.07, 1.0, 0.95];
        let y = [false, true, true, true];
        let curve = reliability_curve(&p, &y, 10);
        assert_eq!(curve.len(), 2);
        assert_eq!((curve[0].lower, curve[0].rows), (0.0, 2));
        assert!(close(curve[0].mean_predicted, 0.06, 1e-12));
        assert_eq!(curve[0].observed_rate, 0.5);
        assert_eq!((curve[1].upper, curve[1].rows), (1.0, 2));
        assert!(reliability_curve(&[], &[], 10).is_empty());
    }

    #[test]
    fn deciles_partition_rows_and_positives() {
        let mut rng = SplitMix64::new(7);
        for n in [1usize, 3, 9, 10, 11, 57, 1000] {
            let (s, y) = random_data(&mut rng, n, 13);
            let table = deciles(&s, &y, &[]);
            let rows: u64 = table.iter().map(|r| r.rows).sum();
            let pos: u64 = table.iter().map(|r| r.positives).sum();
            assert_eq!(rows, n as u64);
            assert_eq!(pos, y.iter().filter(|&&b| b).count() as u64);
            if pos > 0 {
                assert_eq!(table.last().unwrap().cumulative_gain, 1.0);
            }
            if n >= 10 {
                assert_eq!(table.len(), 10);
                let sizes: Vec<u64> = table.iter().map(|r| r.rows).collect();
                assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
            }
            // Scores never increase from one decile to the next.
            for w in table.windows(2) {
                assert!(w[0].min_score >= w[1].max_score);
                assert!(w[0].decile < w[1].decile);
            }
            // decile_of agrees with the table's row counts.
            for row in &table {
                let count = (0..n).filter(|&r| decile_of(r, n) == row.decile).count();
                assert_eq!(count as u64, row.rows);
            }
        }
        assert!(deciles(&[], &[], &[]).is_empty());
    }

    #[test]
    fn decile_lift_by_hand() {
        // 20 rows, scores 20..1; positives are the top 2 and one in decile 10.
        let s: Vec<f64> = (0..20).map(|i| (20 - i) as f64).collect();
        let mut y = vec![false; 20];
        y[0] = true;
        y[1] = true;
        y[19] = true;
        let table = deciles(&s, &y, &[]);
        assert_eq!(table[0].positives, 2);
        assert_eq!((table[0].max_score, table[0].min_score), (20.0, 19.0));
        assert!(close(table[0].lift, 1.0 / (3.0 / 20.0), 1e-12));
        assert!(close(table[0].cumulative_gain, 2.0 / 3.0, 1e-12));
        assert!(close(table[8].cumulative_gain, 2.0 / 3.0, 1e-12));
        assert_eq!(table[9].cumulative_gain, 1.0);
        assert_eq!(decile_of(0, 20), 1);
        assert_eq!(decile_of(19, 20), 10);
        assert_eq!(decile_of(500, 20), 10);
        assert_eq!(decile_of(0, 0), 1);
    }

    #[test]
    fn deciles_break_ties_by_a_hash_of_the_key_not_by_position() {
        let s = [0.5; 20];
        // The two oldest rows repurchased: with ties by position both would land in decile 1.
        let y: Vec<bool> = (0..20).map(|i| i < 2).collect();
        let keys: Vec<i64> = (100..120).collect();
        let table = deciles(&s, &y, &keys);
        let mut order: Vec<usize> = (0..20).collect();
        order.sort_by_key(|&i| repurchase_core::hash::tie_break(keys[i]));
        let top: Vec<usize> = order[..2].to_vec();
        assert_eq!(
            table[0].positives as usize,
            top.iter().filter(|&&i| i < 2).count()
        );
        assert_ne!(top, [0, 1], "the hash order is not the time order");
        // The same keys in another row order give the same table.
        let rev_keys: Vec<i64> = keys.iter().rev().copied().collect();
        let rev_y: Vec<bool> = y.iter().rev().copied().collect();
        assert_eq!(deciles(&s, &rev_y, &rev_keys), table);
        // Without keys, position decides.
        assert_eq!(deciles(&s, &y, &[])[0].positives, 2);
    }

    #[test]
    fn equal_mass_ece_sees_miscalibration_among_the_likely() {
        // 90% of rows at p = 0.02 (observed 0.02), 10% at p = 0.3 (observed 0.6).
        let mut p = vec![0.02; 900];
        p.extend(vec![0.3; 100]);
        let mut y: Vec<bool> = (0..900).map(|i| i % 50 == 0).collect();
        y.extend((0..100).map(|i| i % 10 < 6));
        let mass = expected_calibration_error_equal_mass(&p, &y, 10);
        assert!((mass - 0.1 * 0.3).abs() < 1e-12, "{mass}");
        assert_eq!(expected_calibration_error_equal_mass(&[], &[], 10), 0.0);
        assert_eq!(summary(&p, &y).ece, mass);
    }

    #[test]
    fn confusion_by_hand() {
        let p = [0.9, 0.8, 0.4, 0.4, 0.1];
        let y = [true, false, true, false, false];
        let c = confusion_at(&p, &y, 0.4);
        assert_eq!((c.tp, c.fp, c.tn, c.fn_), (2, 2, 1, 0));
        assert_eq!((c.precision, c.recall), (0.5, 1.0));
        assert!(close(c.f1, 2.0 / 3.0, 1e-12));
        let none = confusion_at(&p, &y, 2.0);
        assert_eq!((none.precision, none.recall, none.f1), (0.0, 0.0, 0.0));
        let back: Confusion = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn f1_optimal_matches_brute_force() {
        let mut rng = SplitMix64::new(2024);
        for _ in 0..200 {
            let n = 1 + rng.below(25);
            let (p, y) = random_data(&mut rng, n, 6);
            let best = f1_optimal_threshold(&p, &y);
            let mut candidates = p.clone();
            candidates.sort_by(|a, b| b.total_cmp(a));
            candidates.dedup();
            let mut expected = confusion_at(&p, &y, candidates[0]);
            for &t in &candidates[1..] {
                let c = confusion_at(&p, &y, t);
                if c.f1 > expected.f1 {
                    expected = c;
                }
            }
            assert_eq!(best, expected);
        }
    }

    #[test]
    fn f1_optimal_prefers_higher_threshold_on_ties() {
        // Threshold 0.9 → tp 1, fn 1, fp 0: F1 = 2/3. Threshold 0.5 → tp 2, fp 2: F1 = 2/3.
        let p = [0.9, 0.5, 0.5, 0.5];
        let y = [true, true, false, false];
        let c = f1_optimal_threshold(&p, &y);
        assert_eq!(c.threshold, 0.9);
        let empty = f1_optimal_threshold(&[], &[]);
        assert_eq!((empty.tp, empty.fp, empty.tn, empty.fn_), (0, 0, 0, 0));
    }

    #[test]
    fn top_k_threshold_and_ties() {
        let p: Vec<f64> = (0..100).map(|i| (100 - i) as f64 / 100.0).collect();
        let y: Vec<bool> = (0..100).map(|i| i % 3 == 0).collect();
        // 0.07 · 100 is 7.000000000000001 in floating point; it must still mean 7 rows.
        let c = top_k_confusion(&p, &y, 0.07);
        assert_eq!(c.tp + c.fp, 7);
        assert_eq!(c.threshold, 0.94);
        let c = top_k_confusion(&p, &y, 0.105);
        assert_eq!(c.tp + c.fp, 11);
        assert_eq!(
            top_k_confusion(&p, &y, 0.0).tp + top_k_confusion(&p, &y, 0.0).fp,
            1
        );
        assert_eq!(
            top_k_confusion(&p, &y, 5.0).tp + top_k_confusion(&p, &y, 5.0).fp,
            100
        );
        // Ties with the k-th score are flagged as well.
        let c = top_k_confusion(&[0.9, 0.5, 0.5, 0.1], &[true, false, true, false], 0.5);
        assert_eq!((c.threshold, c.tp, c.fp), (0.5, 2, 1));
        assert_eq!(top_k_confusion(&[], &[], 0.1).tp, 0);
    }

    #[test]
    fn bootstrap_interval_is_deterministic_and_brackets_the_estimate() {
        let mut rng = SplitMix64::new(99);
        let (s, y) = random_data(&mut rng, 400, 20);
        let auc = roc_auc(&s, &y).unwrap();
        let g: Vec<i64> = (0..s.len() as i64).collect();
        let a = bootstrap_auc_ci(&s, &y, &g, 300, 5).unwrap();
        let b = bootstrap_auc_ci(&s, &y, &g, 300, 5).unwrap();
        assert_eq!(a, b);
        assert!(a.0 < auc && auc < a.1, "{a:?} vs {auc}");
        assert!(a.1 - a.0 < 0.2);
        assert_ne!(bootstrap_auc_ci(&s, &y, &g, 300, 6).unwrap(), a);
        assert_eq!(bootstrap_auc_ci(&s, &y, &g, 0, 5), None);
        assert_eq!(
            bootstrap_auc_ci(&[0.1, 0.2], &[true, true], &[1, 2], 10, 5),
            None
        );
        assert_eq!(bootstrap_auc_ci(&[], &[], &[], 10, 5), None);
    }

    #[test]
    fn customers_with_many_rows_widen_the_interval() {
        // The same 100 customers' rows repeated five times: a row bootstrap treats them as 500
        // independent rows and narrows the interval by about √5; drawing customers does not.
        let mut rng = SplitMix64::new(21);
        let (s, y) = random_data(&mut rng, 100, 30);
        let rep = |v: &[f64]| v.repeat(5);
        let (s5, y5) = (rep(&s), y.repeat(5));
        let rows: Vec<i64> = (0..500).collect();
        let customers: Vec<i64> = (0..500).map(|i| i % 100).collect();
        let by_row = bootstrap_auc_ci(&s5, &y5, &rows, 400, 1).unwrap();
        let by_customer = bootstrap_auc_ci(&s5, &y5, &customers, 400, 1).unwrap();
        let once = bootstrap_auc_ci(&s, &y, &rows[..100], 400, 1).unwrap();
        let width = |w: (f64, f64)| w.1 - w.0;
        assert!(
            width(by_customer) > 1.8 * width(by_row),
            "{by_customer:?} vs {by_row:?}"
        );
        assert!((width(by_customer) / width(once) - 1.0).abs() < 0.25);
    }

    #[test]
    fn paired_bootstrap_brackets_the_differences() {
        let mut rng = SplitMix64::new(5);
        let (s, y) = random_data(&mut rng, 2000, 200);
        // A noisier copy of the same scores: clearly worse in AUC and Brier.
        let noisy: Vec<f64> = s
            .iter()
            .map(|v| (v + 0.6 * (rng.next_f64() - 0.5)).clamp(0.0, 1.0))
            .collect();
        let g: Vec<i64> = (0..2000).collect();
        let d = paired_bootstrap(&noisy, &s, &y, &g, 300, 9);
        let (lo, hi) = d.auc.unwrap();
        let point = roc_auc(&noisy, &y).unwrap() - roc_auc(&s, &y).unwrap();
        assert!(lo < point && point < hi && hi < 0.0, "{lo} {point} {hi}");
        let (blo, _) = d.brier.unwrap();
        assert!(blo > 0.0, "noise raises the Brier score");
        // Against itself the difference is exactly zero in every resample.
        let same = paired_bootstrap(&s, &s, &y, &g, 50, 9);
        assert_eq!(same.auc, Some((0.0, 0.0)));
        assert_eq!(same.brier, Some((0.0, 0.0)));
    }

    #[test]
    fn bootstrap_weighted_auc_matches_roc_auc_on_explicit_resample() {
        // Recompute one resample by materialising it and calling roc_auc: both paths must agree.
        let mut rng = SplitMix64::new(3);
        let (s, y) = random_data(&mut rng, 60, 7);
        let mut draw = SplitMix64::new(11);
        let idx: Vec<usize> = (0..s.len()).map(|_| draw.below(s.len())).collect();
        let rs: Vec<f64> = idx.iter().map(|&i| s[i]).collect();
        let ry: Vec<bool> = idx.iter().map(|&i| y[i]).collect();
        let expected = roc_auc(&rs, &ry).unwrap();
        let g: Vec<i64> = (0..s.len() as i64).collect();
        let (lo, hi) = bootstrap_auc_ci(&s, &y, &g, 1, 11).unwrap();
        assert!(close(lo, expected, 1e-12) && close(hi, expected, 1e-12));
    }

    #[test]
    fn curves_have_fixed_ends_and_respect_max_points() {
        let mut rng = SplitMix64::new(8);
        let (s, y) = random_data(&mut rng, 500, 200);
        let roc = roc_curve(&s, &y, 1000);
        assert_eq!(roc[0], (0.0, 0.0));
        assert_eq!(*roc.last().unwrap(), (1.0, 1.0));
        assert!(roc.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        // Trapezoids under the full ROC curve are the AUC.
        let area: f64 = roc
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
            .sum();
        assert!(close(area, roc_auc(&s, &y).unwrap(), 1e-12));
        let small = roc_curve(&s, &y, 20);
        assert_eq!(small.len(), 20);
        assert_eq!((small[0], small[19]), (roc[0], *roc.last().unwrap()));
        assert_eq!(roc_curve(&s, &y, 0).len(), 2);

        let pr = pr_curve(&s, &y, 50);
        assert!(pr.len() <= 50);
        assert_eq!(pr[0], (0.0, 1.0));
        assert_eq!(pr.last().unwrap().0, 1.0);
        assert!(roc_curve(&[0.1], &[true], 10).is_empty());
        assert!(pr_curve(&[0.1], &[false], 10).is_empty());
        assert!(pr_curve(&[], &[], 10).is_empty());
    }

    #[test]
    fn summary_on_empty_and_small_input() {
        let empty = summary(&[], &[]);
        assert_eq!(
            empty,
            Summary {
                rows: 0,
                positives: 0,
                positive_rate: 0.0,
                roc_auc: None,
                pr_auc: None,
                brier: 0.0,
                log_loss: 0.0,
                ece: 0.0,
                ece_equal_width: 0.0,
            }
        );
        let s = summary(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]);
        assert_eq!((s.rows, s.positives, s.positive_rate), (4, 2, 0.5));
        assert_eq!(s.roc_auc, Some(0.75));
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"roc_auc\":0.75"));
    }

    #[test]
    fn nan_scores_do_not_panic() {
        let s = [0.3, f64::NAN, 0.7, f64::NAN];
        let y = [false, true, true, false];
        assert!(roc_auc(&s, &y).is_some());
        assert!(pr_auc(&s, &y).is_some());
        assert_eq!(deciles(&s, &y, &[]).len(), 4);
        let c = f1_optimal_threshold(&s, &y);
        assert!(!c.threshold.is_nan());
        let _ = top_k_confusion(&s, &y, 0.5);
        let _ = bootstrap_auc_ci(&s, &y, &[1, 2, 3, 4], 10, 1);
        let _ = summary(&s, &y);
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "same length")]
    fn mismatched_lengths_are_caught_in_debug_builds() {
        let _ = brier(&[0.1, 0.2], &[true]);
    }

    #[test]
    fn calibration_ratio_and_its_interval_by_customer() {
        // Two customers with four rows each: one repurchased on every row.
        let probs = [0.5; 8];
        let labels = [true, true, true, true, false, false, false, false];
        let groups = [1, 1, 1, 1, 2, 2, 2, 2];
        let (ratio, ci) =
            bootstrap_calibration_ratio(&probs, &labels, &groups, 400, 3).expect("positives");
        assert!((ratio - 1.0).abs() < 1e-12);
        let (lo, hi) = ci.expect("interval");
        // Resampling customers: either both rows sets (ratio 1) or the positive one twice (0.5);
        // a resample with only the negative customer has no positive and is skipped.
        assert!(
            (lo - 0.5).abs() < 1e-12 && (hi - 1.0).abs() < 1e-12,
            "[{lo}, {hi}]"
        );
        assert_eq!(
            bootstrap_calibration_ratio(&probs, &[false; 8], &groups, 10, 3),
            None
        );
        assert_eq!(
            bootstrap_calibration_ratio(&probs, &labels, &groups, 0, 3),
            Some((1.0, None))
        );
    }
}
