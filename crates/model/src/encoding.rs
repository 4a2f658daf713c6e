//! Categorical features as numbers: smoothed target encoding fitted on the training window only.
//!
//! The GBDT has no native categorical support. Each category becomes the smoothed repurchase rate
//! of its training rows, `(positives + m·prior) / (rows + m)`. Categories with fewer than
//! `min_count` training rows share one "other" bucket, and a missing value is its own category, so
//! high-cardinality columns (brand, city) cannot memorise rare values. Training rows are encoded
//! out-of-fold (each row by an encoder fitted without its fold) so the model does not learn from
//! its own labels through the encoding.
//!
//! When training downsamples negatives, each row carries a weight (1 for positives, `1/rate` for
//! the kept negatives) and the rates are weighted: prior and per-category rates then estimate the
//! rates of the full, unsampled window, which is what scoring sees. The rare-category threshold
//! and [`TargetEncoder::counts`] stay in actual rows (how much evidence a category has). With all
//! weights 1 the result is exactly the unweighted encoder.

use std::collections::{BTreeMap, HashMap};

use foldhash::fast::FixedState;
use serde::{Deserialize, Serialize};

/// Key of the bucket shared by categories with fewer than `min_count` training rows; unseen
/// categories are encoded with it too.
pub const OTHER: &str = "__other__";
/// Key of the missing (null) value's own category.
pub const MISSING: &str = "__missing__";

/// A fitted smoothed target encoder of one categorical feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetEncoder {
    /// (Weighted) repurchase rate of all training rows, in [0, 1]; 0 for an empty window.
    pub prior: f64,
    /// Smoothing `m`: pseudo-rows at the prior added to each category's rate.
    pub smoothing: f64,
    /// Fewest training rows (actual, unweighted) a category needs to keep its own value.
    pub min_count: u64,
    /// Encoded value per kept category, plus [`OTHER`] and [`MISSING`].
    pub values: BTreeMap<String, f64>,
    /// Training rows per kept category (for the model card).
    pub counts: BTreeMap<String, u64>,
}

impl TargetEncoder {
    /// Fits on training `values` (`None`: missing) and their labels, all rows weighing 1.
    pub fn fit(
        values: &[Option<String>],
        labels: &[bool],
        smoothing: f64,
        min_count: u64,
    ) -> TargetEncoder {
        TargetEncoder::fit_weighted(values, labels, None, smoothing, min_count)
    }

    /// [`TargetEncoder::fit`] with a weight per row (`None`: all 1). Rates are weighted sums;
    /// the rare-category threshold counts actual rows.
    pub fn fit_weighted(
        values: &[Option<String>],
        labels: &[bool],
        weights: Option<&[f64]>,
        smoothing: f64,
        min_count: u64,
    ) -> TargetEncoder {
        let mut n = values.len().min(labels.len());
        if let Some(w) = weights {
            n = n.min(w.len());
        }
        let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
        // (rows, weighted rows, weighted positives); with unit weights the sums are exact
        // integers, so the result equals the unweighted encoder bit for bit.
        let mut total = (0.0f64, 0.0f64);
        let mut stats: HashMap<&str, (u64, f64, f64), FixedState> = HashMap::default();
        for i in 0..n {
            let (w, l) = (weight(i), labels[i]);
            total.0 += w;
            if l {
                total.1 += w;
            }
            let key = values[i].as_deref().unwrap_or(MISSING);
            let e = stats.entry(key).or_default();
            e.0 += 1;
            e.1 += w;
            if l {
                e.2 += w;
            }
        }
        let prior = if n == 0 || total.0 <= 0.0 {
            0.0
        } else {
            total.1 / total.0
        };
        let mut other = (0u64, 0.0f64, 0.0f64);
        let mut kept: BTreeMap<String, (u64, f64, f64)> = BTreeMap::new();
        // Sorted, so the weighted sums of the "other" bucket do not depend on hash order.
        let mut stats: Vec<(&str, (u64, f64, f64))> = stats.into_iter().collect();
        stats.sort_by(|a, b| a.0.cmp(b.0));
        for (k, (rows, w, pos)) in stats {
            if rows >= min_count || k == MISSING {
                kept.insert(k.to_string(), (rows, w, pos));
            } else {
                other.0 += rows;
                other.1 += w;
                other.2 += pos;
            }
        }
        kept.insert(OTHER.to_string(), other);
        kept.entry(MISSING.to_string()).or_insert((0, 0.0, 0.0));
        let enc = |(_, w, pos): (u64, f64, f64)| (pos + smoothing * prior) / (w + smoothing);
        TargetEncoder {
            prior,
            smoothing,
            min_count,
            values: kept.iter().map(|(k, v)| (k.clone(), enc(*v))).collect(),
            counts: kept.into_iter().map(|(k, v)| (k, v.0)).collect(),
        }
    }

    /// The encoder as a hash table, for encoding many rows: the same numbers as
    /// [`TargetEncoder::transform_one`] without a string-ordered search per value.
    pub fn lookup(&self) -> EncoderLookup {
        let unknown = self.values.get(OTHER).copied().unwrap_or(self.prior);
        EncoderLookup {
            values: self.values.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            missing: self.values.get(MISSING).copied().unwrap_or(unknown),
            unknown,
        }
    }

    /// Encoding of one value (`None`: missing); a category not kept gets the [`OTHER`] value.
    pub fn transform_one(&self, v: Option<&str>) -> f64 {
        let key = v.unwrap_or(MISSING);
        self.values
            .get(key)
            .or_else(|| self.values.get(OTHER))
            .copied()
            .unwrap_or(self.prior)
    }

    /// [`TargetEncoder::transform_one`] of every value.
    pub fn transform(&self, values: &[Option<String>]) -> Vec<f64> {
        values
            .iter()
            .map(|v| self.transform_one(v.as_deref()))
            .collect()
    }
}

/// [`TargetEncoder::lookup`]: value → encoding, with the encodings of a missing value and of a
/// category the encoder never saw.
#[derive(Debug, Clone)]
pub struct EncoderLookup {
    /// A fixed fast hash: SipHash per value was a sixth of `score`'s time. Keys are the
    /// encoder's own categories, not adversarial input.
    values: HashMap<String, f64, FixedState>,
    missing: f64,
    unknown: f64,
}

impl EncoderLookup {
    /// Encoding of one value (`None`: missing), as [`TargetEncoder::transform_one`].
    pub fn get(&self, v: Option<&str>) -> f64 {
        match v {
            None => self.missing,
            Some(s) => self.values.get(s).copied().unwrap_or(self.unknown),
        }
    }
}

/// Out-of-fold encoding of training rows: row `i` is encoded by an encoder fitted on the rows of
/// the other `folds - 1` folds (fold = `i % folds`, deterministic).
pub fn out_of_fold(
    values: &[Option<String>],
    labels: &[bool],
    smoothing: f64,
    min_count: u64,
    folds: usize,
) -> Vec<f64> {
    out_of_fold_weighted(values, labels, None, smoothing, min_count, folds)
}

/// [`out_of_fold`] with a weight per row (`None`: all 1), as in [`TargetEncoder::fit_weighted`].
pub fn out_of_fold_weighted(
    values: &[Option<String>],
    labels: &[bool],
    weights: Option<&[f64]>,
    smoothing: f64,
    min_count: u64,
    folds: usize,
) -> Vec<f64> {
    let n = values.len();
    let mut out = vec![0.0; n];
    for k in 0..folds.max(2) {
        let idx: Vec<usize> = (0..n).filter(|i| i % folds != k).collect();
        let fit_v: Vec<Option<String>> = idx.iter().map(|&i| values[i].clone()).collect();
        let fit_l: Vec<bool> = idx.iter().map(|&i| labels[i]).collect();
        let fit_w: Option<Vec<f64>> = weights.map(|w| idx.iter().map(|&i| w[i]).collect());
        // The fold's encoder sees fewer rows; scale the rare-category threshold with it.
        let enc = TargetEncoder::fit_weighted(
            &fit_v,
            &fit_l,
            fit_w.as_deref(),
            smoothing,
            min_count.saturating_mul(folds as u64 - 1) / folds as u64,
        );
        for i in (0..n).filter(|i| i % folds == k) {
            out[i] = enc.transform_one(values[i].as_deref());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn smooths_buckets_rare_and_handles_unseen() {
        let mut values = Vec::new();
        let mut labels = Vec::new();
        for i in 0..100 {
            values.push(s("a"));
            labels.push(i < 50);
        }
        for _ in 0..100 {
            values.push(s("b"));
            labels.push(false);
        }
        values.push(s("rare"));
        labels.push(true);
        values.push(None);
        labels.push(true);
        let enc = TargetEncoder::fit(&values, &labels, 10.0, 5);
        let prior = 52.0 / 202.0;
        assert!((enc.transform_one(Some("a")) - (50.0 + 10.0 * prior) / 110.0).abs() < 1e-12);
        assert!(enc.transform_one(Some("b")) < enc.transform_one(Some("a")));
        assert!(!enc.values.contains_key("rare"));
        assert_eq!(enc.transform_one(Some("never seen")), enc.values[OTHER]);
        assert!(
            enc.transform_one(None) > prior,
            "missing is its own category"
        );
    }

    #[test]
    fn out_of_fold_never_uses_own_label() {
        // A category seen once: out of fold it can only get the prior of the other rows.
        let values = vec![s("x"), s("y"), s("y"), s("y"), s("y")];
        let labels = vec![true, false, false, false, false];
        let oof = out_of_fold(&values, &labels, 1.0, 1, 5);
        assert_eq!(oof[0], 0.0, "row 0's encoder saw no positive");
    }

    #[test]
    fn unit_weights_match_unweighted_and_weights_restore_rates() {
        let mut values = Vec::new();
        let mut labels = Vec::new();
        for i in 0..300 {
            values.push(if i % 3 == 0 { s("a") } else { s("b") });
            labels.push(i % 7 == 0);
        }
        values.push(s("rare"));
        labels.push(false);
        let plain = TargetEncoder::fit(&values, &labels, 20.0, 30);
        let ones = vec![1.0; values.len()];
        assert_eq!(
            plain,
            TargetEncoder::fit_weighted(&values, &labels, Some(&ones), 20.0, 30)
        );
        assert_eq!(
            out_of_fold(&values, &labels, 20.0, 30, 5),
            out_of_fold_weighted(&values, &labels, Some(&ones), 20.0, 30, 5)
        );
        // Keep every positive and every other negative with weight 2: the weighted prior is the
        // full prior again, and the counts stay in actual rows.
        let keep: Vec<usize> = (0..values.len())
            .filter(|&i| labels[i] || i % 2 == 0)
            .collect();
        let v: Vec<_> = keep.iter().map(|&i| values[i].clone()).collect();
        let l: Vec<_> = keep.iter().map(|&i| labels[i]).collect();
        let w: Vec<_> = l.iter().map(|&y| if y { 1.0 } else { 2.0 }).collect();
        let weighted = TargetEncoder::fit_weighted(&v, &l, Some(&w), 20.0, 30);
        let unweighted = TargetEncoder::fit(&v, &l, 20.0, 30);
        assert!(
            (weighted.prior - plain.prior).abs() < 0.01,
            "{} vs {}",
            weighted.prior,
            plain.prior
        );
        assert!(unweighted.prior > plain.prior + 0.05);
        assert_eq!(weighted.counts, unweighted.counts);
    }
}
