//! Cross-fitted predictions: what `train` hands `calibrate` to calibrate the served model.
//!
//! The served model is fitted on every labelled anchor, so no labelled row is unseen by it. Its
//! calibrator and threshold are therefore fitted on the predictions of fold models instead: fold
//! `k` ([`crate::split::Fold`]) is predicted by the same configuration fitted only on the anchors
//! settled before the fold starts, as today's open windows are by today's model. The rows, their
//! raw predictions and outcomes are published as `models/run_date=D/cross_fit.json`.

use serde::{Deserialize, Serialize};

use crate::metrics::roc_auc;
use crate::split::Fold;

/// One fold's bounds and sizes, for the model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldStats {
    /// The fold's bounds (serialised flat, next to the sizes).
    #[serde(flatten)]
    pub fold: Fold,
    /// Anchors the fold model was fitted on (before any negative sampling).
    pub train_rows: u64,
    /// Repurchases among `train_rows`.
    pub train_positives: u64,
    /// Anchors of the fold.
    pub rows: u64,
    /// Repurchases among `rows`.
    pub positives: u64,
    /// ROC-AUC of the fold model's raw predictions on the fold.
    pub raw_auc: Option<f64>,
}

/// The cross-fitted predictions, one entry per labelled anchor of the folds, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CrossFit {
    /// Bounds and sizes of each fold.
    pub folds: Vec<FoldStats>,
    /// The customer of each row.
    pub user_id: Vec<i64>,
    /// The anchor order of each row.
    pub order_id: Vec<i64>,
    /// Anchor time of each row, µs since the epoch (UTC).
    pub anchor_us: Vec<i64>,
    /// Index of the fold ([`Fold::index`]) that predicted the row.
    pub fold: Vec<u32>,
    /// Uncalibrated probability from the fold model.
    pub raw: Vec<f64>,
    /// Whether the customer repurchased within the horizon after the anchor.
    pub label: Vec<bool>,
    /// Days from the anchor to the repurchase (none without one).
    pub days_to_repurchase: Vec<Option<f64>>,
}

impl CrossFit {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Days to repurchase with NaN for none, as [`crate::table::FeatureTable`] holds them.
    pub fn days(&self) -> Vec<f64> {
        self.days_to_repurchase
            .iter()
            .map(|d| d.unwrap_or(f64::NAN))
            .collect()
    }

    /// Sorts the rows by anchor time and order, the order every consumer relies on.
    pub fn sort(&mut self) {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.sort_by_key(|&i| (self.anchor_us[i], self.order_id[i]));
        let pick = |v: &[i64]| idx.iter().map(|&i| v[i]).collect::<Vec<_>>();
        self.user_id = pick(&self.user_id);
        self.order_id = pick(&self.order_id);
        self.anchor_us = pick(&self.anchor_us);
        self.fold = idx.iter().map(|&i| self.fold[i]).collect();
        self.raw = idx.iter().map(|&i| self.raw[i]).collect();
        self.label = idx.iter().map(|&i| self.label[i]).collect();
        self.days_to_repurchase = idx.iter().map(|&i| self.days_to_repurchase[i]).collect();
    }

    /// Refuses a file whose columns disagree in length or whose rows name an unknown fold.
    pub fn check(&self) -> Result<(), String> {
        let n = self.len();
        let lens = [
            self.user_id.len(),
            self.order_id.len(),
            self.anchor_us.len(),
            self.fold.len(),
            self.label.len(),
            self.days_to_repurchase.len(),
        ];
        if lens.iter().any(|l| *l != n) {
            return Err(format!(
                "the cross-fit has columns of different lengths {lens:?} and {n} predictions"
            ));
        }
        if let Some(f) = self
            .fold
            .iter()
            .find(|f| !self.folds.iter().any(|s| s.fold.index == **f))
        {
            return Err(format!(
                "the cross-fit names fold {f}, which it does not describe"
            ));
        }
        Ok(())
    }

    /// Raw ROC-AUC of the fold models over all rows.
    pub fn pooled_raw_auc(&self) -> Option<f64> {
        roc_auc(&self.raw, &self.label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sort_by_anchor_and_damaged_files_are_refused() {
        let fold = Fold {
            index: 0,
            train_end_us: 0,
            start_us: 0,
            end_us: 10,
        };
        let mut c = CrossFit {
            folds: vec![FoldStats {
                fold,
                train_rows: 1,
                train_positives: 1,
                rows: 2,
                positives: 1,
                raw_auc: None,
            }],
            user_id: vec![1, 2],
            order_id: vec![10, 20],
            anchor_us: vec![5, 3],
            fold: vec![0, 0],
            raw: vec![0.1, 0.2],
            label: vec![false, true],
            days_to_repurchase: vec![None, Some(4.0)],
        };
        c.sort();
        assert_eq!(c.order_id, [20, 10]);
        assert_eq!(c.raw, [0.2, 0.1]);
        assert!(c.days()[1].is_nan());
        assert!(c.check().is_ok());
        c.fold[0] = 3;
        assert!(c.check().unwrap_err().contains("fold 3"));
        c.label.pop();
        assert!(c.check().unwrap_err().contains("different lengths"));
    }
}
