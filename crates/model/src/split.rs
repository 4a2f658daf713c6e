//! Out-of-time windows for training, validation (early stopping, calibration) and testing.
//!
//! Let `L` be the end of the labelled period: an anchor is labelled when its whole horizon
//! ends before the run date does, i.e. `anchor < run_end − horizon = L`. Windows, oldest first:
//!
//! ```text
//! train  [.., V − h)      validation [V, T − h)      test [T, L)      with T = L − test_days,
//!                                                                         V = T − h − valid_days
//! ```
//! Each window's labels are fully known before the next window starts (the gaps of one horizon
//! `h`), exactly as in production, where a model trained today only knows outcomes up to today.

use repurchase_core::RunDate;
use serde::{Deserialize, Serialize};

const DAY_US: i64 = 86_400_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Train,
    Validation,
    Test,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Windows {
    pub horizon_days: u32,
    pub valid_days: u32,
    pub test_days: u32,
    /// Exclusive end of the training window (µs since epoch, UTC).
    pub train_end_us: i64,
    pub valid_start_us: i64,
    pub valid_end_us: i64,
    pub test_start_us: i64,
    pub test_end_us: i64,
    /// The same bounds as readable UTC timestamps, for the model card.
    pub readable: Vec<(String, String)>,
}

impl Windows {
    pub fn new(run_date: RunDate, horizon_days: u32, valid_days: u32, test_days: u32) -> Windows {
        let h = i64::from(horizon_days) * DAY_US;
        let labelled_end = run_date.end_exclusive_micros() - h;
        let test_start = labelled_end - i64::from(test_days) * DAY_US;
        let valid_end = test_start - h;
        let valid_start = valid_end - i64::from(valid_days) * DAY_US;
        let train_end = valid_start - h;
        let fmt = |us: i64| {
            chrono::DateTime::from_timestamp_micros(us)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default()
        };
        Windows {
            horizon_days,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_leave_a_horizon_between_them() {
        let d: RunDate = "2024-12-31".parse().unwrap();
        let w = Windows::new(d, 60, 90, 90);
        assert_eq!(w.test_end_us, d.end_exclusive_micros() - 60 * DAY_US);
        assert_eq!(w.test_start_us - w.valid_end_us, 60 * DAY_US);
        assert_eq!(w.valid_start_us - w.train_end_us, 60 * DAY_US);
        assert_eq!(w.assign(w.test_end_us), None, "label not yet known");
        assert_eq!(w.assign(w.test_end_us - 1), Some(Part::Test));
        assert_eq!(w.assign(w.valid_end_us), None);
        assert_eq!(w.assign(w.train_end_us - 1), Some(Part::Train));
    }
}
