//! What a score means part-way through a customer's 60-day window.
//!
//! The model estimates `p = P(repurchase within h days)` as seen at the anchor. `score` runs
//! every day over all anchors whose window is still open, so for most of them `e` days have
//! already passed without a repurchase. The probability a marketer can act on is the conditional
//! one, `P(T ≤ h | T > e)`. With `F(e) = P(T ≤ e | T ≤ h)`, the share of repurchases that happen
//! within `e` days (estimated from labelled anchors, never from the test window):
//!
//! ```text
//! P(T ≤ h | T > e) = p · (1 − F(e)) / (1 − p · F(e))
//! ```
//!
//! This assumes that *when* a repurchase happens inside the window does not depend on the
//! features once `p` is known. The backtest (`repurchase backtest`) measures how well that holds:
//! it compares these conditional probabilities with the outcomes that later data reveals.

use serde::{Deserialize, Serialize};

/// The customers a daily scoring run meets, built from labelled anchors: each anchor at every
/// elapsed day `e = 0.5, 1.5, …, h − 0.5` (the open population spreads evenly over the window)
/// at which it had no repurchase yet, with the conditional probability `score` would give it
/// that day and whether it repurchased in the rest of the window. A flag's threshold is chosen
/// and judged on these, since the flag is applied to that probability. `days` holds the days to
/// the repurchase (NaN for none).
pub fn open_snapshots(
    timing: &RepurchaseTiming,
    probs: &[f64],
    labels: &[bool],
    days: &[f64],
) -> (Vec<f64>, Vec<bool>) {
    let n = probs.len().min(labels.len());
    let h = timing.horizon_days as usize;
    let (mut q, mut y) = (Vec::with_capacity(n * h), Vec::with_capacity(n * h));
    for i in 0..n {
        let repurchased_at = if labels[i] {
            days.get(i).copied().filter(|d| d.is_finite())
        } else {
            None
        };
        for step in 0..h {
            let e = step as f64 + 0.5;
            let ahead = match repurchased_at {
                Some(d) if d <= e => continue,
                Some(_) => true,
                None => labels[i],
            };
            q.push(timing.conditional(probs[i], e));
            y.push(ahead);
        }
    }
    (q, y)
}

/// When repurchases happen inside the window: the empirical distribution of days from the anchor
/// to the repurchase, among labelled anchors that repurchased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepurchaseTiming {
    /// Length of the window `h`, in days.
    pub horizon_days: u32,
    /// Labelled repurchases the distribution was estimated from.
    pub repurchases: u64,
    /// `cdf[d]` = share of repurchases that happened within `d` days of the anchor, for
    /// `d = 0..=horizon_days` (so the last value is 1).
    pub cdf: Vec<f64>,
}

impl RepurchaseTiming {
    /// Estimates the timing distribution from the days-to-repurchase of labelled repurchases
    /// (NaN and values outside `(0, horizon]` are ignored). With no repurchase at all it falls
    /// back to a uniform distribution over the window, which is said in `repurchases = 0`.
    pub fn fit(days_to_repurchase: &[f64], horizon_days: u32) -> RepurchaseTiming {
        let h = f64::from(horizon_days);
        let mut days: Vec<f64> = days_to_repurchase
            .iter()
            .copied()
            .filter(|d| d.is_finite() && *d > 0.0 && *d <= h)
            .collect();
        days.sort_unstable_by(f64::total_cmp);
        let n = days.len();
        let cdf = (0..=horizon_days)
            .map(|d| {
                if n == 0 {
                    f64::from(d) / h
                } else {
                    days.partition_point(|x| *x <= f64::from(d)) as f64 / n as f64
                }
            })
            .collect();
        RepurchaseTiming {
            horizon_days,
            repurchases: n as u64,
            cdf,
        }
    }

    /// `F(e)`: share of repurchases within `elapsed_days`, linear between whole days.
    pub fn share_within(&self, elapsed_days: f64) -> f64 {
        if !elapsed_days.is_finite() || elapsed_days <= 0.0 {
            return 0.0;
        }
        let last = self.cdf.len().saturating_sub(1);
        if elapsed_days >= last as f64 {
            return self.cdf.last().copied().unwrap_or(1.0);
        }
        let lo = elapsed_days.floor() as usize;
        let frac = elapsed_days - lo as f64;
        self.cdf[lo] + frac * (self.cdf[lo + 1] - self.cdf[lo])
    }

    /// `P(T ≤ h | T > e)` from the at-anchor probability `p`.
    pub fn conditional(&self, p: f64, elapsed_days: f64) -> f64 {
        let f = self.share_within(elapsed_days);
        let denom = 1.0 - p * f;
        if denom <= 0.0 {
            // p = 1 and every repurchase should already have happened: no mass left.
            return 0.0;
        }
        (p * (1.0 - f) / denom).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_counts_repurchases_by_day() {
        let t = RepurchaseTiming::fit(&[0.5, 1.0, 1.5, 10.0, f64::NAN, 61.0, -1.0], 60);
        assert_eq!(t.repurchases, 4);
        assert_eq!(t.cdf.len(), 61);
        assert_eq!(t.cdf[0], 0.0);
        assert_eq!(t.cdf[1], 0.5);
        assert_eq!(t.cdf[9], 0.75);
        assert_eq!(t.cdf[10], 1.0);
        assert_eq!(t.cdf[60], 1.0);
        assert!((t.share_within(1.5) - 0.625).abs() < 1e-12);
    }

    #[test]
    fn conditional_probability_matches_bayes() {
        let t = RepurchaseTiming::fit(&[], 60);
        assert_eq!(t.repurchases, 0);
        // Uniform timing: half the window gone, p = 0.4 → 0.2 / 0.8.
        assert!((t.conditional(0.4, 30.0) - 0.25).abs() < 1e-12);
        assert_eq!(t.conditional(0.4, 0.0), 0.4);
        assert_eq!(t.conditional(0.4, 60.0), 0.0);
        assert_eq!(t.conditional(1.0, 60.0), 0.0);
        // Monotone: the longer nothing happened, the lower the chance.
        let ps: Vec<f64> = (0..=60).map(|e| t.conditional(0.3, f64::from(e))).collect();
        assert!(ps.windows(2).all(|w| w[1] <= w[0]));
    }

    #[test]
    fn open_snapshots_leave_out_the_days_after_a_repurchase() {
        let t = RepurchaseTiming::fit(&[], 4);
        // Anchor 0 repurchased on day 2.2, anchor 1 never.
        let (q, y) = open_snapshots(&t, &[0.5, 0.2], &[true, false], &[2.2, f64::NAN]);
        // Anchor 0 is open at 0.5, 1.5 (its repurchase ahead), anchor 1 on all four days.
        assert_eq!(y, [true, true, false, false, false, false]);
        assert_eq!(q.len(), 6);
        assert_eq!(q[0], t.conditional(0.5, 0.5));
        assert_eq!(q[5], t.conditional(0.2, 3.5));
    }

    #[test]
    fn conditional_is_calibrated_on_simulated_outcomes() {
        // Exponential-ish timing truncated to the window; check P(T ≤ h | T > e) empirically.
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let p = 0.3;
        let mut times = Vec::new();
        let mut outcomes = Vec::new();
        for _ in 0..200_000 {
            let repurchase = next() < p;
            let t = if repurchase {
                -(1.0 - next() * 0.95).ln() * 20.0
            } else {
                f64::INFINITY
            };
            let t = if t > 60.0 { f64::INFINITY } else { t };
            outcomes.push(t);
            if t.is_finite() {
                times.push(t);
            }
        }
        let timing = RepurchaseTiming::fit(&times, 60);
        let p_hat = times.len() as f64 / outcomes.len() as f64;
        for e in [10.0, 30.0, 50.0] {
            let alive: Vec<f64> = outcomes.iter().copied().filter(|t| *t > e).collect();
            let observed =
                alive.iter().filter(|t| t.is_finite()).count() as f64 / alive.len() as f64;
            let predicted = timing.conditional(p_hat, e);
            assert!(
                (observed - predicted).abs() < 0.01,
                "e={e}: observed {observed} predicted {predicted}"
            );
        }
    }
}
