//! The repurchase process of the `signal` profile: the probability that a Complete order is
//! followed by another Complete order within 60 days, as a logistic function of what was
//! observable about the customer strictly before the order.
//!
//! Every input here can be rebuilt from the published tables as of the order's `created_at`, so
//! a feature pipeline without leakage can in principle recover `p_true`; that is what makes the
//! truth table useful for judging a model.
//!
//! `browse_sessions_14d` counts the user's browsing sessions (signed-in sessions without a
//! purchase event) whose first event lies in the 14 days before the order. Anonymous sessions
//! and purchase sessions do not count.

/// Chosen so that about one Complete order in five is followed by a repurchase (0.20 measured at
/// 100k users, 2019-01-01 to 2024-06-30; the `signal_stats` test prints it).
pub(crate) const INTERCEPT: f64 = -2.2;

#[derive(Debug, Clone)]
pub(crate) struct AnchorFeatures<'a> {
    pub n_prev_complete: u32,
    pub n_prev_returned: u32,
    pub days_since_prev_complete: Option<f64>,
    pub tenure_days: f64,
    pub browse_sessions_14d: u32,
    pub basket_value: f64,
    pub main_category: &'a str,
    pub traffic_source: &'a str,
}

/// Earliest delay of a `signal` repurchase after its anchor order, in seconds (one hour).
pub(crate) const REPURCHASE_DELAY_MIN_S: i64 = 3_600;
/// Latest delay, in seconds: two hours short of the 60-day window, inside it with hours to spare.
pub(crate) const REPURCHASE_DELAY_MAX_S: i64 = 60 * 86_400 - 2 * 3_600;

/// The chance that a `signal` repurchase (its delay drawn uniformly between
/// [`REPURCHASE_DELAY_MIN_S`] and [`REPURCHASE_DELAY_MAX_S`]) has been created within `days` of
/// its anchor: the true timing `F(e)` that an oracle conditions `p_true` on.
pub fn repurchase_delay_cdf(days: f64) -> f64 {
    let secs = days * 86_400.0;
    let (lo, hi) = (REPURCHASE_DELAY_MIN_S as f64, REPURCHASE_DELAY_MAX_S as f64);
    if secs.is_nan() {
        return 0.0;
    }
    ((secs - lo) / (hi - lo)).clamp(0.0, 1.0)
}

pub(crate) fn logit(f: &AnchorFeatures<'_>) -> f64 {
    let recency = match f.days_since_prev_complete {
        None => -0.3,
        Some(d) if d < 60.0 => 0.9,
        Some(d) if d < 180.0 => 0.4,
        Some(_) => 0.0,
    };
    INTERCEPT + 0.55 * f64::from(f.n_prev_complete.min(3)) + recency
        - 0.30 * (1.0 + f.tenure_days.max(0.0) / 30.0).ln()
        + 0.45 * f64::from(f.browse_sessions_14d.min(4))
        - 0.7 * f64::from(f.n_prev_returned.min(2))
        + 0.35 * (f.basket_value.max(0.01) / 60.0).ln()
        + category_effect(f.main_category)
        + traffic_effect(f.traffic_source)
}

pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Consumables and basics are rebought; big-ticket or occasional items are not.
pub(crate) fn category_effect(category: &str) -> f64 {
    match category {
        "Jeans" => 0.35,
        "Intimates" => 0.30,
        "Leggings" | "Maternity" => 0.25,
        "Underwear" | "Active" => 0.20,
        "Tops & Tees" | "Plus" => 0.15,
        "Sleep & Lounge" => 0.10,
        "Sweaters" | "Skirts" | "Jumpsuits & Rompers" => -0.10,
        "Accessories" => -0.15,
        "Blazers & Jackets" | "Clothing Sets" => -0.20,
        "Swim" => -0.25,
        "Outerwear & Coats" | "Socks & Hosiery" => -0.30,
        "Socks" => -0.35,
        "Suits & Sport Coats" | "Suits" => -0.40,
        _ => 0.0,
    }
}

/// Effect of the user's acquisition channel (`users.traffic_source`).
pub(crate) fn traffic_effect(source: &str) -> f64 {
    match source {
        "Email" => 0.45,
        "Organic" => 0.20,
        "Facebook" => -0.20,
        "Display" => -0.35,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logit_terms() {
        let base = AnchorFeatures {
            n_prev_complete: 0,
            n_prev_returned: 0,
            days_since_prev_complete: None,
            tenure_days: 0.0,
            browse_sessions_14d: 0,
            basket_value: 60.0,
            main_category: "Pants",
            traffic_source: "Search",
        };
        assert!((logit(&base) - (INTERCEPT - 0.3)).abs() < 1e-12);
        let loyal = AnchorFeatures {
            n_prev_complete: 5,
            days_since_prev_complete: Some(20.0),
            browse_sessions_14d: 9,
            main_category: "Jeans",
            traffic_source: "Email",
            ..base.clone()
        };
        let expected = INTERCEPT + 0.55 * 3.0 + 0.9 + 0.45 * 4.0 + 0.35 + 0.45;
        assert!((logit(&loyal) - expected).abs() < 1e-12);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-12);
    }
}
