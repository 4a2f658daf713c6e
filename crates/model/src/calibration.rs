//! Probability calibration of the raw gradient-boosted-tree scores: isotonic regression,
//! Platt scaling on the logit, and a cross-fitted choice between the two that only ever looks at
//! the calibration set, so the test set stays untouched for the final report.
//!
//! Every calibrator's output is clamped to `[PROB_FLOOR, 1 − PROB_FLOOR]` so that log loss on
//! calibrated probabilities is always finite. Rows whose raw score is NaN carry no ordering
//! information and are ignored when fitting; predicting on NaN returns NaN. Fitting is pure and
//! deterministic (no randomness at all).

use serde::{Deserialize, Serialize};

use crate::metrics::{brier, paired};

/// Calibrated probabilities never go below this or above `1 − PROB_FLOOR`.
pub const PROB_FLOOR: f64 = 1e-6;

/// Raw probabilities are clipped this far from 0 and 1 before the logit so it stays finite.
const RAW_CLIP: f64 = 1e-12;

/// Below this many usable rows a 2-fold comparison would be decided by noise.
const MIN_ROWS_FOR_CHOICE: usize = 20;

const PLATT_MAX_ITER: usize = 100;
const PLATT_TOL: f64 = 1e-10;

/// A fitted mapping from a raw model probability to a calibrated one.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Calibrator {
    /// Raw probability passed through (only clamped).
    Identity,
    /// Isotonic regression (pool-adjacent-violators), piecewise-linear interpolation between
    /// block centres, clamped at the ends. `x` is strictly increasing, `y` non-decreasing.
    Isotonic {
        /// Knots' raw probabilities (each PAV block's mean raw score).
        x: Vec<f64>,
        /// Calibrated probability at each knot (the block's repurchase rate).
        y: Vec<f64>,
    },
    /// Platt scaling on the logit of the raw probability: `p = sigmoid(a · logit(raw) + b)`.
    Platt {
        /// Slope on `logit(raw)`.
        a: f64,
        /// Intercept, in log-odds.
        b: f64,
    },
}

/// One PAV block. Counts are integers so the monotonicity test can be exact.
#[derive(Debug, Clone, Copy)]
struct Block {
    rows: u64,
    positives: u64,
    sum_x: f64,
    min_x: f64,
    max_x: f64,
}

impl Block {
    /// `self` has a mean label >= `other`'s. Cross-multiplied in u128 so no rounding can flip
    /// the comparison.
    fn mean_at_least(&self, other: &Block) -> bool {
        u128::from(self.positives) * u128::from(other.rows)
            >= u128::from(other.positives) * u128::from(self.rows)
    }

    fn merge(&mut self, other: &Block) {
        self.rows += other.rows;
        self.positives += other.positives;
        self.sum_x += other.sum_x;
        self.min_x = self.min_x.min(other.min_x);
        self.max_x = self.max_x.max(other.max_x);
    }

    /// Mean x of the block. Clamped to the block's own range because rounding in `sum_x` could
    /// otherwise push it past a neighbour's centre and break the strict ordering of knots.
    fn centre(&self) -> f64 {
        (self.sum_x / self.rows as f64).clamp(self.min_x, self.max_x)
    }
}

/// Non-NaN rows only; NaN raw scores cannot be placed on the x axis.
fn usable_rows(raw: &[f64], labels: &[bool]) -> (Vec<f64>, Vec<bool>) {
    let (raw, labels) = paired(raw, labels);
    raw.iter()
        .zip(labels)
        .filter(|(x, _)| !x.is_nan())
        .map(|(&x, &y)| (x, y))
        .unzip()
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(RAW_CLIP, 1.0 - RAW_CLIP);
    (p / (1.0 - p)).ln()
}

fn sigmoid(f: f64) -> f64 {
    // Two branches so exp never overflows.
    if f >= 0.0 {
        1.0 / (1.0 + (-f).exp())
    } else {
        let e = f.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^x)` without overflow.
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// Cross-entropy of `sigmoid(a·z + b)` against soft targets; the quantity Platt's fit minimises.
fn platt_objective(z: &[f64], t: &[f64], a: f64, b: f64) -> f64 {
    z.iter()
        .zip(t)
        .map(|(&zi, &ti)| {
            let f = a * zi + b;
            ti * softplus(-f) + (1.0 - ti) * softplus(f)
        })
        .sum()
}

/// Piecewise-linear interpolation through `(x, y)`, flat beyond the ends. Written defensively
/// because a deserialised calibrator may not satisfy the invariants `fit_isotonic` guarantees.
fn interpolate(x: &[f64], y: &[f64], v: f64) -> f64 {
    let n = x.len().min(y.len());
    if n == 0 || v.is_nan() {
        return v;
    }
    if v <= x[0] {
        return y[0];
    }
    if v >= x[n - 1] {
        return y[n - 1];
    }
    // Here n >= 2; clamping keeps the index valid even if x is not sorted.
    let hi = x[..n].partition_point(|&xi| xi <= v).clamp(1, n - 1);
    let (x0, x1, y0, y1) = (x[hi - 1], x[hi], y[hi - 1], y[hi]);
    let span = x1 - x0;
    if span > 0.0 {
        y0 + (y1 - y0) * (v - x0) / span
    } else {
        y1
    }
}

impl Calibrator {
    /// Fits isotonic regression by pool-adjacent-violators in O(n log n).
    ///
    /// Rows with equal raw scores are pooled into one block before PAV, so the fit does not
    /// depend on their order. Adjacent blocks are pooled when the left mean is greater than *or
    /// equal to* the right one, which makes the knots' `y` strictly increasing and each knot a
    /// distinct block (as in centred isotonic regression); the knot `x` is the block's mean raw
    /// score. Knot `y` values are raw block means in `[0, 1]`; only [`Calibrator::predict`]
    /// clamps. Returns `Identity` when there are no usable (non-NaN) rows.
    pub fn fit_isotonic(raw: &[f64], labels: &[bool]) -> Calibrator {
        let (xs, ys) = usable_rows(raw, labels);
        if xs.is_empty() {
            return Calibrator::Identity;
        }
        let mut order: Vec<usize> = (0..xs.len()).collect();
        order.sort_unstable_by(|&i, &j| xs[i].total_cmp(&xs[j]));

        let mut blocks: Vec<Block> = Vec::new();
        let mut k = 0;
        while k < order.len() {
            let x = xs[order[k]];
            let mut block = Block {
                rows: 0,
                positives: 0,
                sum_x: 0.0,
                min_x: x,
                max_x: x,
            };
            // `==` rather than total_cmp so that -0.0 and 0.0 pool together.
            while k < order.len() && xs[order[k]] == x {
                block.rows += 1;
                block.positives += u64::from(ys[order[k]]);
                k += 1;
            }
            block.sum_x = x * block.rows as f64;
            while let Some(prev) = blocks.last() {
                if !prev.mean_at_least(&block) {
                    break;
                }
                let prev = *prev;
                blocks.pop();
                let mut merged = prev;
                merged.merge(&block);
                block = merged;
            }
            blocks.push(block);
        }

        Calibrator::Isotonic {
            x: blocks.iter().map(Block::centre).collect(),
            y: blocks
                .iter()
                .map(|b| b.positives as f64 / b.rows as f64)
                .collect(),
        }
    }

    /// Fits Platt scaling `p = sigmoid(a · logit(raw) + b)` by Newton–Raphson with a
    /// backtracking line search (Lin, Lin & Weng 2007), starting from the identity map
    /// `a = 1, b = 0`.
    ///
    /// Targets use Platt's smoothing, `(n₊ + 1)/(n₊ + 2)` for positives and `1/(n₋ + 2)` for
    /// negatives, which keeps `a` and `b` finite even on separable data or a single class.
    /// Raw values are clipped to `[1e-12, 1 − 1e-12]` before the logit. Stops when a step moves
    /// both parameters by less than 1e-10, the gradient vanishes, or after 100 iterations.
    ///
    /// When every usable raw value is equal the slope is not identifiable; the fit keeps `a = 1`
    /// (so the map stays increasing) and sets `b` to hit the mean target. Returns `Identity`
    /// when there are no usable (non-NaN) rows.
    pub fn fit_platt(raw: &[f64], labels: &[bool]) -> Calibrator {
        let (xs, ys) = usable_rows(raw, labels);
        if xs.is_empty() {
            return Calibrator::Identity;
        }
        let n_pos = ys.iter().filter(|&&y| y).count() as f64;
        let n_neg = ys.len() as f64 - n_pos;
        let t_pos = (n_pos + 1.0) / (n_pos + 2.0);
        let t_neg = 1.0 / (n_neg + 2.0);
        let z: Vec<f64> = xs.iter().map(|&x| logit(x)).collect();
        let t: Vec<f64> = ys.iter().map(|&y| if y { t_pos } else { t_neg }).collect();

        let z0 = z[0];
        if z.iter().all(|&zi| zi == z0) {
            let mean_t = t.iter().sum::<f64>() / t.len() as f64;
            return Calibrator::Platt {
                a: 1.0,
                b: logit(mean_t) - z0,
            };
        }

        let n = z.len() as f64;
        let (mut a, mut b) = (1.0f64, 0.0f64);
        let mut objective = platt_objective(&z, &t, a, b);
        for _ in 0..PLATT_MAX_ITER {
            let (mut g_a, mut g_b) = (0.0, 0.0);
            let (mut h_aa, mut h_ab, mut h_bb) = (0.0, 0.0, 0.0);
            for (&zi, &ti) in z.iter().zip(&t) {
                let p = sigmoid(a * zi + b);
                let d = p - ti;
                let w = p * (1.0 - p);
                g_a += d * zi;
                g_b += d;
                h_aa += w * zi * zi;
                h_ab += w * zi;
                h_bb += w;
            }
            // The gradient is a sum over rows, so its scale grows with n.
            if g_a.abs().max(g_b.abs()) < PLATT_TOL * n {
                break;
            }
            // Tiny ridge, as in Lin et al., keeps the 2×2 solve defined where p(1−p) underflows.
            h_aa += 1e-12;
            h_bb += 1e-12;
            let det = h_aa * h_bb - h_ab * h_ab;
            if !(det > 0.0 && det.is_finite()) {
                break;
            }
            let d_a = -(h_bb * g_a - h_ab * g_b) / det;
            let d_b = -(h_aa * g_b - h_ab * g_a) / det;
            let slope = g_a * d_a + g_b * d_b;

            let mut step = 1.0;
            let mut accepted = None;
            while step >= 1e-10 {
                let (na, nb) = (a + step * d_a, b + step * d_b);
                let candidate = platt_objective(&z, &t, na, nb);
                if candidate <= objective + 1e-4 * step * slope {
                    accepted = Some((na, nb, candidate));
                    break;
                }
                step /= 2.0;
            }
            // No acceptable step: we are at the optimum to within floating-point resolution.
            let Some((na, nb, candidate)) = accepted else {
                break;
            };
            let moved = (na - a).abs().max((nb - b).abs());
            (a, b, objective) = (na, nb, candidate);
            if moved < PLATT_TOL {
                break;
            }
        }
        Calibrator::Platt { a, b }
    }

    /// Calibrated probability for one raw probability, clamped to
    /// `[PROB_FLOOR, 1 − PROB_FLOOR]`. NaN in gives NaN out.
    pub fn predict(&self, raw: f64) -> f64 {
        if raw.is_nan() {
            return f64::NAN;
        }
        let p = match self {
            Calibrator::Identity => raw,
            Calibrator::Isotonic { x, y } => interpolate(x, y, raw),
            Calibrator::Platt { a, b } => sigmoid(a * logit(raw) + b),
        };
        p.clamp(PROB_FLOOR, 1.0 - PROB_FLOOR)
    }

    /// [`Calibrator::predict`] of every raw probability.
    pub fn predict_all(&self, raw: &[f64]) -> Vec<f64> {
        raw.iter().map(|&r| self.predict(r)).collect()
    }

    /// Same string as the serialised `method` tag.
    pub fn name(&self) -> &'static str {
        match self {
            Calibrator::Identity => "identity",
            Calibrator::Isotonic { .. } => "isotonic",
            Calibrator::Platt { .. } => "platt",
        }
    }
}

/// The calibrator chosen by [`choose_calibrator`] and the cross-fitted Brier scores behind the
/// choice. The Brier fields are NaN (written as `null` by serde_json) when no comparison was run.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct CalibrationChoice {
    /// The calibrator fitted on all usable rows with the chosen method.
    pub chosen: Calibrator,
    /// Brier of isotonic regression, fitted on one half of the rows (in input order) and scored
    /// on the other, averaged over both ways round.
    pub brier_isotonic_cv: f64,
    /// Brier of Platt scaling, cross-fitted over the same two halves.
    pub brier_platt_cv: f64,
    /// Brier of the raw scores as they are (nothing to fit, so nothing to cross-fit).
    pub brier_identity: f64,
}

/// Mean Brier over the two folds of fitting on one half and scoring on the other.
fn cross_fitted_brier(
    fit: fn(&[f64], &[bool]) -> Calibrator,
    (raw_a, y_a): (&[f64], &[bool]),
    (raw_b, y_b): (&[f64], &[bool]),
) -> f64 {
    let on_b = brier(&fit(raw_a, y_a).predict_all(raw_b), y_b);
    let on_a = brier(&fit(raw_b, y_b).predict_all(raw_a), y_a);
    (on_a + on_b) / 2.0
}

/// Chooses between isotonic, Platt and no calibration at all without touching the test set:
/// 2-fold cross-fitting on the calibration set (rows split by position into first half / second
/// half — the caller passes rows in time order, so each fold is scored on a different period),
/// fit on one half, Brier on the other, both ways; pick the method with the lower mean Brier,
/// then refit it on all rows. The raw scores themselves compete too: a GBDT trained on log loss
/// and early-stopped on the same window is often calibrated already, and a calibrator fitted on
/// a few hundred repurchases then only adds noise. Ties go to the simpler choice (identity, then
/// Platt).
///
/// Rows with a NaN raw score are dropped first. With fewer than 20 usable rows, or when the
/// labels are all one class, no comparison is run: the result is a Platt fit on all rows
/// (its target smoothing keeps that well-defined), or `Identity` when there are no usable
/// rows, and both Brier fields are NaN.
pub fn choose_calibrator(raw: &[f64], labels: &[bool]) -> CalibrationChoice {
    let (xs, ys) = usable_rows(raw, labels);
    let n = xs.len();
    let positives = ys.iter().filter(|&&y| y).count();
    if n < MIN_ROWS_FOR_CHOICE || positives == 0 || positives == n {
        return CalibrationChoice {
            chosen: Calibrator::fit_platt(&xs, &ys),
            brier_isotonic_cv: f64::NAN,
            brier_platt_cv: f64::NAN,
            brier_identity: f64::NAN,
        };
    }
    let mid = n / 2;
    let first = (&xs[..mid], &ys[..mid]);
    let second = (&xs[mid..], &ys[mid..]);
    let brier_isotonic_cv = cross_fitted_brier(Calibrator::fit_isotonic, first, second);
    let brier_platt_cv = cross_fitted_brier(Calibrator::fit_platt, first, second);
    let brier_identity = brier(&Calibrator::Identity.predict_all(&xs), &ys);
    let chosen = if brier_identity <= brier_platt_cv && brier_identity <= brier_isotonic_cv {
        Calibrator::Identity
    } else if brier_isotonic_cv < brier_platt_cv {
        Calibrator::fit_isotonic(&xs, &ys)
    } else {
        Calibrator::fit_platt(&xs, &ys)
    };
    CalibrationChoice {
        chosen,
        brier_isotonic_cv,
        brier_platt_cv,
        brier_identity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repurchase_core::hash::SplitMix64;

    /// Raw scores uniform on (0.01, 0.99), labels drawn as Bernoulli(truth(raw)).
    fn synthetic(seed: u64, n: usize, truth: impl Fn(f64) -> f64) -> (Vec<f64>, Vec<bool>) {
        let mut rng = SplitMix64::new(seed);
        let raw: Vec<f64> = (0..n).map(|_| 0.01 + 0.98 * rng.next_f64()).collect();
        let labels = raw.iter().map(|&x| rng.next_f64() < truth(x)).collect();
        (raw, labels)
    }

    fn platt_params(c: &Calibrator) -> (f64, f64) {
        match c {
            Calibrator::Platt { a, b } => (*a, *b),
            other => panic!("expected Platt, got {other:?}"),
        }
    }

    #[test]
    fn isotonic_hand_example() {
        // PAV: (1) and (0) pool to 0.5; (1),(0) pool to 0.5, which equals the block before it and
        // pools again; the last (1) stays alone. Knots: x̄(1..4) = 2.5 → 0.5, x = 5 → 1.0.
        let c = Calibrator::fit_isotonic(
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            &[true, false, true, false, true],
        );
        assert_eq!(
            c,
            Calibrator::Isotonic {
                x: vec![2.5, 5.0],
                y: vec![0.5, 1.0]
            }
        );
        assert_eq!(c.predict(0.0), 0.5);
        assert_eq!(c.predict(2.5), 0.5);
        assert!((c.predict(3.75) - 0.75).abs() < 1e-12);
        assert_eq!(c.predict(9.0), 1.0 - PROB_FLOOR);
    }

    #[test]
    fn isotonic_pools_ties_before_pav_and_ignores_their_order() {
        let x = [0.2, 0.5, 0.5, 0.5, 0.8];
        let a = Calibrator::fit_isotonic(&x, &[false, true, false, false, true]);
        let b = Calibrator::fit_isotonic(&x, &[false, false, false, true, true]);
        assert_eq!(a, b);
        assert_eq!(
            a,
            Calibrator::Isotonic {
                x: vec![0.2, 0.5, 0.8],
                y: vec![0.0, 1.0 / 3.0, 1.0]
            }
        );
        assert_eq!(a.predict(0.0), PROB_FLOOR);
    }

    #[test]
    fn isotonic_is_monotone_and_beats_raw_on_squared_truth() {
        let (raw, y) = synthetic(1, 5000, |x| x * x);
        let c = Calibrator::fit_isotonic(&raw, &y);
        let Calibrator::Isotonic { x: kx, y: ky } = &c else {
            panic!("expected isotonic");
        };
        assert!(kx.windows(2).all(|w| w[0] < w[1]));
        assert!(ky.windows(2).all(|w| w[0] <= w[1]));
        assert!(ky.iter().all(|&v| (0.0..=1.0).contains(&v)));
        let grid: Vec<f64> = (0..=1000).map(|i| i as f64 / 1000.0).collect();
        let preds = c.predict_all(&grid);
        assert!(preds.windows(2).all(|w| w[0] <= w[1]));

        // Held-out data from the same process.
        let (test_raw, test_y) = synthetic(2, 5000, |x| x * x);
        let raw_brier = brier(&test_raw, &test_y);
        let cal_brier = brier(&c.predict_all(&test_raw), &test_y);
        assert!(cal_brier < raw_brier - 0.02, "{cal_brier} vs {raw_brier}");
    }

    #[test]
    fn platt_recovers_identity_on_calibrated_data() {
        let (raw, y) = synthetic(3, 20_000, |x| x);
        let (a, b) = platt_params(&Calibrator::fit_platt(&raw, &y));
        assert!((a - 1.0).abs() < 0.1 && b.abs() < 0.1, "a={a} b={b}");
    }

    #[test]
    fn platt_recovers_slope_two() {
        let (raw, y) = synthetic(4, 20_000, |x| sigmoid(2.0 * logit(x)));
        let (a, b) = platt_params(&Calibrator::fit_platt(&raw, &y));
        assert!((a - 2.0).abs() < 0.1 && b.abs() < 0.1, "a={a} b={b}");
    }

    #[test]
    fn platt_stays_finite_on_separable_single_class_and_constant_input() {
        let separable = Calibrator::fit_platt(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]);
        let (a, b) = platt_params(&separable);
        assert!(a.is_finite() && b.is_finite() && a > 0.0);

        let (a, b) = platt_params(&Calibrator::fit_platt(&[0.1, 0.5, 0.9], &[false; 3]));
        assert!(a.is_finite() && b.is_finite());
        let p = Calibrator::Platt { a, b }.predict(0.5);
        assert!((p - 1.0 / 5.0).abs() < 1e-6, "{p}");

        let constant = Calibrator::fit_platt(&[0.3; 4], &[true, false, false, false]);
        // Mean target: (2/3 + 3 · 1/5) / 4.
        let expected = (2.0 / 3.0 + 3.0 / 5.0) / 4.0;
        assert!((constant.predict(0.3) - expected).abs() < 1e-12);
        assert!(constant.predict(0.6) > constant.predict(0.3));

        assert_eq!(Calibrator::fit_platt(&[], &[]), Calibrator::Identity);
        assert_eq!(Calibrator::fit_isotonic(&[], &[]), Calibrator::Identity);
    }

    #[test]
    fn predictions_are_clamped_and_nan_propagates() {
        for c in [
            Calibrator::Identity,
            Calibrator::Platt { a: 50.0, b: 0.0 },
            Calibrator::Isotonic {
                x: vec![0.1, 0.9],
                y: vec![0.0, 1.0],
            },
        ] {
            for raw in [0.0, 1e-300, 0.5, 1.0, -3.0, 7.0] {
                let p = c.predict(raw);
                assert!(
                    (PROB_FLOOR..=1.0 - PROB_FLOOR).contains(&p),
                    "{c:?} {raw} {p}"
                );
            }
            assert!(c.predict(f64::NAN).is_nan());
        }
        // A malformed deserialised isotonic model must not panic.
        let odd = Calibrator::Isotonic {
            x: vec![0.9, 0.1, 0.5],
            y: vec![0.2],
        };
        let _ = odd.predict_all(&[0.0, 0.3, 1.0]);
        let empty = Calibrator::Isotonic {
            x: vec![],
            y: vec![],
        };
        assert_eq!(empty.predict(0.3), 0.3);
    }

    #[test]
    fn serde_round_trip_and_tag_names() {
        let all = [
            Calibrator::Identity,
            Calibrator::Isotonic {
                x: vec![0.1, 0.4],
                y: vec![0.05, 0.6],
            },
            Calibrator::Platt { a: 1.25, b: -0.5 },
        ];
        for c in &all {
            let json = serde_json::to_string(c).unwrap();
            assert!(
                json.contains(&format!("\"method\":\"{}\"", c.name())),
                "{json}"
            );
            let back: Calibrator = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, c);
        }
        assert_eq!(
            serde_json::to_string(&all[2]).unwrap(),
            r#"{"method":"platt","a":1.25,"b":-0.5}"#
        );
    }

    #[test]
    fn choose_is_deterministic() {
        let (raw, y) = synthetic(5, 3000, |x| x * x);
        let a = choose_calibrator(&raw, &y);
        let b = choose_calibrator(&raw, &y);
        assert_eq!(a, b);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        assert!(a.brier_isotonic_cv.is_finite() && a.brier_platt_cv.is_finite());
    }

    #[test]
    fn choose_picks_isotonic_for_a_step_and_platt_for_a_logistic_truth() {
        let (raw, y) = synthetic(6, 4000, |x| if x < 0.5 { 0.2 } else { 0.8 });
        let step = choose_calibrator(&raw, &y);
        assert_eq!(step.chosen.name(), "isotonic");
        assert!(step.brier_isotonic_cv < step.brier_platt_cv);

        let (raw, y) = synthetic(7, 4000, |x| sigmoid(1.5 * logit(x) - 0.3));
        let logistic = choose_calibrator(&raw, &y);
        assert_eq!(logistic.chosen.name(), "platt");
        assert!(logistic.brier_platt_cv <= logistic.brier_isotonic_cv);
    }

    #[test]
    fn choose_keeps_raw_scores_that_are_already_calibrated() {
        // Labels drawn from the raw score itself: any fitted map can only add noise.
        let (raw, y) = synthetic(8, 6000, |x| 0.3 * x);
        let raw: Vec<f64> = raw.iter().map(|x| 0.3 * x).collect();
        let calibrated = choose_calibrator(&raw, &y);
        assert_eq!(calibrated.chosen, Calibrator::Identity);
        assert!(calibrated.brier_identity <= calibrated.brier_platt_cv);
        assert!(calibrated.brier_identity <= calibrated.brier_isotonic_cv);

        // Scores twice too high are not kept as they are.
        let doubled: Vec<f64> = raw.iter().map(|x| 2.0 * x).collect();
        assert_ne!(choose_calibrator(&doubled, &y).chosen, Calibrator::Identity);
    }

    #[test]
    fn choose_falls_back_on_small_or_single_class_input() {
        let small = choose_calibrator(&[0.1, 0.4, 0.6, 0.9], &[false, false, true, true]);
        assert_eq!(small.chosen.name(), "platt");
        assert!(small.brier_isotonic_cv.is_nan() && small.brier_platt_cv.is_nan());

        let raw: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let one_class = choose_calibrator(&raw, &[true; 100]);
        assert_eq!(one_class.chosen.name(), "platt");
        assert!(one_class.brier_platt_cv.is_nan());

        assert_eq!(choose_calibrator(&[], &[]).chosen, Calibrator::Identity);
        assert_eq!(
            choose_calibrator(&[f64::NAN], &[true]).chosen,
            Calibrator::Identity
        );
    }
}
