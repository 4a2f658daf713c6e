//! Categorical features as numbers: smoothed target encoding fitted on the training window only.
//!
//! The GBDT has no native categorical support. Each category becomes the smoothed repurchase rate
//! of its training rows, `(positives + m·prior) / (rows + m)`. Categories with fewer than
//! `min_count` training rows share one "other" bucket, and a missing value is its own category, so
//! high-cardinality columns (brand, city) cannot memorise rare values. Training rows are encoded
//! out-of-fold (each row by an encoder fitted without its fold) so the model does not learn from
//! its own labels through the encoding.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

pub const OTHER: &str = "__other__";
pub const MISSING: &str = "__missing__";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetEncoder {
    pub prior: f64,
    pub smoothing: f64,
    pub min_count: u64,
    /// Encoded value per kept category, plus [`OTHER`] and [`MISSING`].
    pub values: BTreeMap<String, f64>,
    /// Training rows per kept category (for the model card).
    pub counts: BTreeMap<String, u64>,
}

impl TargetEncoder {
    pub fn fit(
        values: &[Option<String>],
        labels: &[bool],
        smoothing: f64,
        min_count: u64,
    ) -> TargetEncoder {
        let n = values.len().min(labels.len());
        let positives = labels[..n].iter().filter(|l| **l).count() as f64;
        let prior = if n == 0 { 0.0 } else { positives / n as f64 };
        let mut stats: HashMap<&str, (u64, u64)> = HashMap::new();
        for (v, l) in values[..n].iter().zip(&labels[..n]) {
            let key = v.as_deref().unwrap_or(MISSING);
            let e = stats.entry(key).or_default();
            e.0 += 1;
            e.1 += u64::from(*l);
        }
        let mut other = (0u64, 0u64);
        let mut kept: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (k, (rows, pos)) in stats {
            if rows >= min_count || k == MISSING {
                kept.insert(k.to_string(), (rows, pos));
            } else {
                other.0 += rows;
                other.1 += pos;
            }
        }
        kept.insert(OTHER.to_string(), other);
        kept.entry(MISSING.to_string()).or_insert((0, 0));
        let enc =
            |(rows, pos): (u64, u64)| (pos as f64 + smoothing * prior) / (rows as f64 + smoothing);
        TargetEncoder {
            prior,
            smoothing,
            min_count,
            values: kept.iter().map(|(k, v)| (k.clone(), enc(*v))).collect(),
            counts: kept.into_iter().map(|(k, v)| (k, v.0)).collect(),
        }
    }

    pub fn transform_one(&self, v: Option<&str>) -> f64 {
        let key = v.unwrap_or(MISSING);
        self.values
            .get(key)
            .or_else(|| self.values.get(OTHER))
            .copied()
            .unwrap_or(self.prior)
    }

    pub fn transform(&self, values: &[Option<String>]) -> Vec<f64> {
        values
            .iter()
            .map(|v| self.transform_one(v.as_deref()))
            .collect()
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
    let n = values.len();
    let mut out = vec![0.0; n];
    for k in 0..folds.max(2) {
        let (fit_v, fit_l): (Vec<Option<String>>, Vec<bool>) = (0..n)
            .filter(|i| i % folds != k)
            .map(|i| (values[i].clone(), labels[i]))
            .unzip();
        // The fold's encoder sees fewer rows; scale the rare-category threshold with it.
        let enc = TargetEncoder::fit(
            &fit_v,
            &fit_l,
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
}
