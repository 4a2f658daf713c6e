//! Why a row scores what it does: exact tree Shapley values of the booster's prediction trees
//! (forust's TreeSHAP, the values its Python package gives for the same model), in the model's
//! log-odds, and the features that push a row up and down the most.
//!
//! A row's values and its bias (the trees' expected log-odds) sum to the raw log-odds the model
//! predicts for it, so a reason's value reads as "this feature moved the log-odds by that much".
//! Calibration and the timing adjustment are monotone maps of the log-odds: a feature that pushes
//! the log-odds up pushes the published probability up too.

/// Shapley values of a block of rows: per row, one value per model feature (in the artefact's
/// feature order), then the bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Contributions {
    features: usize,
    values: Vec<f64>,
}

/// One feature's push on one row's log-odds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reason {
    /// Index of the feature in the model's feature list.
    pub feature: usize,
    /// Its Shapley value, in log-odds.
    pub log_odds: f64,
}

/// The features pushing a row's log-odds up the most (largest first) and down the most (most
/// negative first). A feature whose value is exactly 0 pushes neither way and is never a reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reasons {
    /// Positive values, largest first.
    pub up: Vec<Reason>,
    /// Negative values, most negative first.
    pub down: Vec<Reason>,
}

impl Contributions {
    /// `values` holds `rows × (features + 1)` numbers, the bias last in each row.
    pub(crate) fn new(features: usize, values: Vec<f64>) -> Contributions {
        assert_eq!(
            values.len() % (features + 1),
            0,
            "rows of {features} values and a bias"
        );
        Contributions { features, values }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.values.len() / (self.features + 1)
    }

    /// Row `i`'s value per feature (the bias excluded).
    pub fn row(&self, i: usize) -> &[f64] {
        &self.values[i * (self.features + 1)..][..self.features]
    }

    /// Row `i`'s bias: the expected log-odds over the trees' training rows.
    pub fn bias(&self, i: usize) -> f64 {
        self.values[i * (self.features + 1) + self.features]
    }

    /// The log-odds the values of row `i` add up to (bias included).
    pub fn log_odds(&self, i: usize) -> f64 {
        self.row(i).iter().sum::<f64>() + self.bias(i)
    }

    /// The `up` strongest pushes up and the `down` strongest pushes down of row `i`; ties go to
    /// the feature listed first, so the reasons of a row never depend on anything but its values.
    pub fn reasons(&self, i: usize, up: usize, down: usize) -> Reasons {
        let all: Vec<Reason> = self
            .row(i)
            .iter()
            .enumerate()
            .map(|(feature, &log_odds)| Reason { feature, log_odds })
            .collect();
        let pick = |keep: fn(f64) -> bool, first: fn(&Reason, &Reason) -> std::cmp::Ordering, k| {
            let mut r: Vec<Reason> = all.iter().copied().filter(|r| keep(r.log_odds)).collect();
            r.sort_by(|a, b| first(a, b).then(a.feature.cmp(&b.feature)));
            r.truncate(k);
            r
        };
        Reasons {
            up: pick(|v| v > 0.0, |a, b| b.log_odds.total_cmp(&a.log_odds), up),
            down: pick(|v| v < 0.0, |a, b| a.log_odds.total_cmp(&b.log_odds), down),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_the_strongest_pushes_each_way_ties_to_the_first_feature() {
        // Two rows of four features and a bias.
        let c = Contributions::new(
            4,
            vec![
                0.2, -0.5, 0.2, 0.0, -1.0, //
                0.0, 0.0, -0.1, 0.0, 0.3,
            ],
        );
        assert_eq!(c.rows(), 2);
        assert_eq!(c.bias(0), -1.0);
        assert!((c.log_odds(0) - (-1.1)).abs() < 1e-12);
        let r = c.reasons(0, 3, 1);
        let up: Vec<(usize, f64)> = r.up.iter().map(|r| (r.feature, r.log_odds)).collect();
        assert_eq!(up, [(0, 0.2), (2, 0.2)]);
        assert_eq!(
            r.down,
            [Reason {
                feature: 1,
                log_odds: -0.5
            }]
        );
        let r = c.reasons(1, 3, 1);
        assert!(r.up.is_empty());
        assert_eq!(
            r.down,
            [Reason {
                feature: 2,
                log_odds: -0.1
            }]
        );
        assert_eq!(c.reasons(0, 1, 0).up.len(), 1);
        assert!(c.reasons(0, 1, 0).down.is_empty());
    }
}
