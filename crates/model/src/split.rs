//! Out-of-time windows for training, validation (early stopping, calibration) and testing, and
//! the time-ordered folds that calibrate the model that is served.
//!
//! Let `L` be the end of the labelled period: an anchor is labelled when its whole horizon `h`
//! and the settling days `s` after it end before the run date does, i.e.
//! `anchor < run_end − h − s = L`. Windows, oldest first, with a gap `g = h + s`:
//!
//! ```text
//! train  [.., V − g)      validation [V, T − g)      test [T, L)      with T = L − test_days,
//!                                                                         V = T − g − valid_days
//! ```
//! Each window's labels are settled before the next window starts, exactly as in production,
//! where a model trained today only knows settled outcomes up to today.
//!
//! The windows measure the procedure. The served model is then refitted on every anchor before
//! `L`, and its calibrator is fitted on cross-fitted predictions ([`Windows::cross_fit_folds`]):
//! fold `k` holds the anchors of `[L − (k+1)·h, L − k·h)` and is predicted by a model trained on
//! the anchors before `L − (k+1)·h − s` only — the position of today's open windows relative to
//! today's training data, so the calibrator learns the drift the served model will meet.

use repurchase_core::RunDate;
use repurchase_core::run_date::{DAY_US, format_micros};
use serde::{Deserialize, Serialize};

/// The out-of-time window an anchor falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Anchors before [`Windows::train_end_us`]: fit the encoders and the booster.
    Train,
    /// Anchors in `[valid_start_us, valid_end_us)`: early stopping and calibration.
    Validation,
    /// Anchors in `[test_start_us, test_end_us)`: the held-out evaluation.
    Test,
}

/// The train / validation / test bounds of one run (see the module docs); all `*_us` are µs
/// since the epoch, UTC, and every window is half-open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Windows {
    /// Days after the anchor in which a repurchase counts (the label horizon `h`).
    pub horizon_days: u32,
    /// Days after a window closes before its label counts (features' `settle_days`).
    pub settle_days: u32,
    /// Length of the validation window, in days of anchors.
    pub valid_days: u32,
    /// Length of the test window, in days of anchors.
    pub test_days: u32,
    /// Exclusive end of the training window (µs since epoch, UTC).
    pub train_end_us: i64,
    /// Inclusive start of the validation window: `horizon_days + settle_days` after `train_end_us`.
    pub valid_start_us: i64,
    /// Exclusive end of the validation window.
    pub valid_end_us: i64,
    /// Inclusive start of the test window: `horizon_days + settle_days` after `valid_end_us`.
    pub test_start_us: i64,
    /// Exclusive end of the test window, which is the end of the labelled anchors (`L`).
    pub test_end_us: i64,
    /// The same bounds as readable UTC timestamps, for the model card.
    pub readable: Vec<(String, String)>,
}

impl Windows {
    /// The windows of a run on `run_date`: the labelled period ends `horizon_days + settle_days`
    /// before the run date's end, and the windows are laid back from there.
    pub fn new(
        run_date: RunDate,
        horizon_days: u32,
        settle_days: u32,
        valid_days: u32,
        test_days: u32,
    ) -> Windows {
        let gap = i64::from(horizon_days + settle_days) * DAY_US;
        let labelled_end = run_date.end_exclusive_micros() - gap;
        let test_start = labelled_end - i64::from(test_days) * DAY_US;
        let valid_end = test_start - gap;
        let valid_start = valid_end - i64::from(valid_days) * DAY_US;
        let train_end = valid_start - gap;
        let fmt = format_micros;
        Windows {
            horizon_days,
            settle_days,
            valid_days,
            test_days,
            train_end_us: train_end,
            valid_start_us: valid_start,
            valid_end_us: valid_end,
            test_start_us: test_start,
            test_end_us: labelled_end,
            readable: vec![
                ("train_end".into(), fmt(train_end)),
                ("validation_start".into(), fmt(valid_start)),
                ("validation_end".into(), fmt(valid_end)),
                ("test_start".into(), fmt(test_start)),
                ("test_end".into(), fmt(labelled_end)),
            ],
        }
    }

    /// Window of an anchor, or `None` for the gaps and for anchors whose label is not known.
    pub fn assign(&self, anchor_us: i64) -> Option<Part> {
        if anchor_us < self.train_end_us {
            Some(Part::Train)
        } else if (self.valid_start_us..self.valid_end_us).contains(&anchor_us) {
            Some(Part::Validation)
        } else if (self.test_start_us..self.test_end_us).contains(&anchor_us) {
            Some(Part::Test)
        } else {
            None
        }
    }

    /// End (exclusive) of the labelled anchors: the served model is refitted on all before it.
    pub fn labelled_end_us(&self) -> i64 {
        self.test_end_us
    }

    /// `folds` time-ordered cross-fitting folds ending at the labelled end, newest first: each
    /// holds `horizon_days` of anchors and may be predicted by a model trained on anchors before
    /// its `train_end_us` (see the module docs).
    pub fn cross_fit_folds(&self, folds: u32) -> Vec<Fold> {
        let h = i64::from(self.horizon_days) * DAY_US;
        let s = i64::from(self.settle_days) * DAY_US;
        (0..i64::from(folds))
            .map(|k| {
                let end_us = self.test_end_us - k * h;
                let start_us = end_us - h;
                Fold {
                    index: k as u32,
                    train_end_us: start_us - s,
                    start_us,
                    end_us,
                }
            })
            .collect()
    }

    /// Row indices of each window, in input order.
    pub fn indices(&self, anchor_us: &[i64]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
        let (mut tr, mut va, mut te) = (Vec::new(), Vec::new(), Vec::new());
        for (i, a) in anchor_us.iter().enumerate() {
            match self.assign(*a) {
                Some(Part::Train) => tr.push(i),
                Some(Part::Validation) => va.push(i),
                Some(Part::Test) => te.push(i),
                None => {}
            }
        }
        (tr, va, te)
    }
}

/// One cross-fitting fold: anchors in `[start_us, end_us)`, predicted by a model trained on the
/// anchors before `train_end_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    /// Fold number `k`, 0 being the newest (ending at the labelled end).
    pub index: u32,
    /// Exclusive end of the anchors the fold's model may train on: `settle_days` before `start_us`.
    pub train_end_us: i64,
    /// Inclusive start of the fold's anchors (µs since epoch, UTC).
    pub start_us: i64,
    /// Exclusive end of the fold's anchors, `horizon_days` after `start_us`.
    pub end_us: i64,
}

impl Fold {
    /// True when the anchor time (µs since epoch) is in `[start_us, end_us)`.
    pub fn contains(&self, anchor_us: i64) -> bool {
        (self.start_us..self.end_us).contains(&anchor_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_leave_a_horizon_between_them() {
        let d: RunDate = "2024-12-31".parse().unwrap();
        let w = Windows::new(d, 60, 0, 90, 90);
        assert_eq!(w.test_end_us, d.end_exclusive_micros() - 60 * DAY_US);
        assert_eq!(w.test_start_us - w.valid_end_us, 60 * DAY_US);
        assert_eq!(w.valid_start_us - w.train_end_us, 60 * DAY_US);
        assert_eq!(w.assign(w.test_end_us), None, "label not yet known");
        assert_eq!(w.assign(w.test_end_us - 1), Some(Part::Test));
        assert_eq!(w.assign(w.valid_end_us), None);
        assert_eq!(w.assign(w.train_end_us - 1), Some(Part::Train));
    }

    #[test]
    fn settling_days_widen_every_gap() {
        let d: RunDate = "2024-12-31".parse().unwrap();
        let w = Windows::new(d, 60, 14, 90, 90);
        assert_eq!(w.test_end_us, d.end_exclusive_micros() - 74 * DAY_US);
        assert_eq!(w.test_start_us - w.valid_end_us, 74 * DAY_US);
        assert_eq!(w.valid_start_us - w.train_end_us, 74 * DAY_US);
    }

    #[test]
    fn cross_fit_folds_mirror_the_open_windows_of_a_run() {
        let d: RunDate = "2024-12-31".parse().unwrap();
        let w = Windows::new(d, 60, 14, 90, 90);
        let folds = w.cross_fit_folds(3);
        assert_eq!(folds.len(), 3);
        assert_eq!(folds[0].end_us, w.labelled_end_us());
        for f in &folds {
            assert_eq!(f.end_us - f.start_us, 60 * DAY_US);
            // As today: the newest labelled anchor a model knows is settle days before the
            // oldest anchor it scores.
            assert_eq!(f.start_us - f.train_end_us, 14 * DAY_US);
        }
        assert_eq!(folds[1].end_us, folds[0].start_us);
        assert_eq!(folds[2].end_us, folds[1].start_us);
        assert!(folds[0].contains(w.labelled_end_us() - 1));
        assert!(!folds[0].contains(w.labelled_end_us()));
    }
}
