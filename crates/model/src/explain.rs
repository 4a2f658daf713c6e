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

/// One feature's effect over a set of rows: its mean |Shapley value| (how much it moves a
/// prediction on average, in log-odds) and, for the strongest features, a sample of rows as
/// (Shapley value, the row's value of the feature as a quantile of the sample's values in
/// `[0, 1]`, `None` where missing) — the points of a beeswarm plot.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureEffect {
    /// The feature's name.
    pub name: String,
    /// Mean absolute Shapley value over all the rows.
    pub mean_abs: f64,
    /// The sampled rows' points (empty beyond the `top` features).
    pub points: Vec<(f64, Option<f64>)>,
}

/// Every feature's [`FeatureEffect`] over the rows of `c`, strongest first (ties by name), with
/// `points` sampled rows for the first `top`. `x` is the column-major matrix the values were
/// computed from (what the trees compared: categories as their encodings), `keys` each row's
/// anchor order: the sample is the rows with the smallest hashes of their keys, the same rows for
/// every feature and whatever order the rows come in.
pub fn global(
    names: &[String],
    c: &Contributions,
    x: &[f64],
    keys: &[i64],
    top: usize,
    points: usize,
) -> Vec<FeatureEffect> {
    let n = c.rows();
    assert_eq!(names.len(), c.features, "a name per feature");
    assert_eq!(x.len(), n * c.features, "a value per row and feature");
    assert_eq!(keys.len(), n, "a key per row");
    let mut effects: Vec<FeatureEffect> = names
        .iter()
        .enumerate()
        .map(|(j, name)| FeatureEffect {
            name: name.clone(),
            mean_abs: if n == 0 {
                0.0
            } else {
                (0..n).map(|i| c.row(i)[j].abs()).sum::<f64>() / n as f64
            },
            points: Vec::new(),
        })
        .collect();
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| {
        effects[b]
            .mean_abs
            .total_cmp(&effects[a].mean_abs)
            .then_with(|| names[a].cmp(&names[b]))
    });
    let mut sample: Vec<usize> = (0..n).collect();
    sample.sort_by_key(|&i| (repurchase_core::hash::tie_break(keys[i]), keys[i], i));
    sample.truncate(points);
    for &j in order.iter().take(top) {
        let column = &x[j * n..][..n];
        let mut seen: Vec<f64> = sample
            .iter()
            .map(|&i| column[i])
            .filter(|v| !v.is_nan())
            .collect();
        seen.sort_by(f64::total_cmp);
        // Mid-rank quantile, so that equal values share a colour and a constant is mid-scale.
        let quantile = |v: f64| {
            let below = seen.partition_point(|s| *s < v);
            let upto = seen.partition_point(|s| *s <= v);
            (below + upto) as f64 / 2.0 / seen.len().max(1) as f64
        };
        effects[j].points = sample
            .iter()
            .map(|&i| {
                let v = column[i];
                (c.row(i)[j], (!v.is_nan()).then(|| quantile(v)))
            })
            .collect();
    }
    order.into_iter().map(|j| effects[j].clone()).collect()
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

    #[test]
    fn global_effects_rank_features_by_mean_absolute_value_and_sample_the_same_rows() {
        // Three rows, two features: b moves predictions more on average than a.
        let c = Contributions::new(2, vec![0.1, -0.6, 0.0, -0.2, -0.3, 0.5, 0.0, 0.4, 0.0]);
        let names = ["a".to_string(), "b".to_string()];
        // Column-major values: a = 1, 2, NaN; b = 5, 5, 7.
        let x = [1.0, 2.0, f64::NAN, 5.0, 5.0, 7.0];
        let g = global(&names, &c, &x, &[30, 10, 20], 1, 3);
        assert_eq!(
            g.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert!((g[0].mean_abs - (0.6 + 0.3 + 0.4) / 3.0).abs() < 1e-12);
        assert!((g[1].mean_abs - (0.1 + 0.2) / 3.0).abs() < 1e-12);
        // Only the top feature gets points, one per sampled row, equal values one quantile.
        assert!(g[1].points.is_empty());
        let mut pts = g[0].points.clone();
        pts.sort_by(|p, q| p.0.total_cmp(&q.0));
        assert_eq!(
            pts,
            [
                (-0.6, Some(1.0 / 3.0)),
                (-0.3, Some(1.0 / 3.0)),
                (0.4, Some(5.0 / 6.0))
            ]
        );
        // Missing values have no quantile; the sample does not depend on row order.
        let a = global(&names, &c, &x, &[30, 10, 20], 2, 3);
        assert!(a[1].points.iter().any(|p| p.1.is_none()));
        let two = global(&names, &c, &x, &[30, 10, 20], 1, 2);
        assert_eq!(two[0].points.len(), 2);
        assert_eq!(
            global(&names, &Contributions::new(2, vec![]), &[], &[], 2, 5)[0].mean_abs,
            0.0
        );
    }
}
