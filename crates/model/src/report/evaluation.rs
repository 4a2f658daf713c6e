//! The evaluation report of one trained model: the page a reviewer opens to decide whether a
//! run is good enough to score with.
//!
//! [`render`] turns a [`ReportInput`] (calibrated and raw scores on the held-out test window,
//! labels, the operating threshold, feature importance and a few facts about the run) into one
//! HTML5 document: a facts table, headline metrics, confusion matrices at the threshold and at
//! top-k, eight inline SVG plots (ROC, precision–recall, reliability, lift and cumulative gains,
//! score distribution by class, gain importance, mean |Shapley value| and the Shapley beeswarm),
//! a decile table and free-text notes.
//!
//! This file assembles the page in reading order; the tables are in `evaluation/tables.rs` and
//! the charts in one file per section of the page (`ranking.rs`: ROC and PR; `calibration.rs`:
//! reliability and score distribution; `targeting.rs`: lift and gains; `importance.rs`).
//!
//! Degenerate input (empty, a single class, constant scores, NaN, slices of different lengths)
//! never panics: a plot that cannot be drawn says "no data" instead, and length mismatches are
//! reported on the page. All numbers come from [`crate::metrics`], so the report always agrees
//! with `metrics.json`.

use super::format::{int, num, pct_short};
use super::page;
use super::svg::{Axis, Plot};
use crate::explain::FeatureEffect;
use crate::metrics;

mod calibration;
mod importance;
pub use importance::BEESWARM_FEATURES;
mod ranking;
mod tables;
mod targeting;
#[cfg(test)]
mod tests;

/// The `id` of every chart on the evaluation page, in page order (each an inline `<svg>`).
pub const PLOT_IDS: [&str; 8] = [
    "roc",
    "pr",
    "reliability",
    "gains",
    "score-distribution",
    "importance",
    "shap-importance",
    "shap-beeswarm",
];

/// Everything the report shows. Scores and labels are paired by position.
pub struct ReportInput<'a> {
    /// Page heading and `<title>`, e.g. "Repurchase model 2025-06-30-abc123".
    pub title: String,
    /// Key/value table shown at the top (run date, windows, rows, calibration method, …).
    pub facts: Vec<(String, String)>,
    /// Calibrated probabilities on the held-out test window.
    pub probs: &'a [f64],
    /// Uncalibrated model probabilities on the same rows (the "before" of the reliability
    /// curve). May be empty when not available.
    pub raw: &'a [f64],
    /// Outcomes on the same rows: true when the customer repurchased within the horizon.
    pub labels: &'a [bool],
    /// Each row's anchor order id: equal probabilities are ordered into deciles by its hash.
    pub keys: &'a [i64],
    /// The operating threshold (F1-optimal, chosen on the validation window).
    pub threshold: f64,
    /// Share of rows targeted for the top-k confusion matrix, e.g. 0.10.
    pub top_k_fraction: f64,
    /// Feature importance in any order; the top 25 are plotted.
    pub importance: &'a [(String, f64)],
    /// Shapley effects of the features on the same rows, strongest first
    /// ([`crate::explain::global`]); empty when not computed.
    pub effects: &'a [FeatureEffect],
    /// Bootstrap 95% interval of ROC-AUC, if computed.
    pub auc_ci: Option<(f64, f64)>,
    /// Plain-text paragraphs shown at the end.
    pub notes: Vec<String>,
}

/// Bins of the reliability curve (the same 10 that ECE uses).
const RELIABILITY_BINS: usize = 10;
/// Features shown in the importance chart.
const TOP_FEATURES: usize = 25;

/// Size of the charts that share a row of the page (ROC, PR, score distribution).
const W: f64 = 480.0;
const H: f64 = 400.0;

/// The plot area of a `W` × `H` chart.
fn square_plot(x: Axis, y: Axis) -> Plot {
    Plot {
        left: 64.0,
        top: 36.0,
        width: 396.0,
        height: 308.0,
        x,
        y,
    }
}

/// Renders the whole report as one HTML5 document.
pub fn render(input: &ReportInput<'_>) -> String {
    let mut warnings = Vec::new();
    let n = input.probs.len().min(input.labels.len());
    if input.probs.len() != input.labels.len() {
        warnings.push(format!(
            "probs has {} values but labels has {}; only the first {} rows are used.",
            int(input.probs.len() as u64),
            int(input.labels.len() as u64),
            int(n as u64)
        ));
    }
    let probs = &input.probs[..n];
    let labels = &input.labels[..n];
    let raw = if input.raw.is_empty() {
        if n > 0 {
            warnings.push(
                "No raw (uncalibrated) scores were given: the reliability curve shows the \
                 calibrated probabilities only."
                    .to_string(),
            );
        }
        None
    } else {
        let m = input.raw.len().min(input.labels.len());
        if input.raw.len() != input.labels.len() {
            warnings.push(format!(
                "raw has {} values but labels has {}; the raw-score figures use the first {} rows.",
                int(input.raw.len() as u64),
                int(input.labels.len() as u64),
                int(m as u64)
            ));
        }
        Some((&input.raw[..m], &input.labels[..m]))
    };

    let summary = metrics::summary(probs, labels);
    let raw_summary = raw.map(|(r, l)| metrics::summary(r, l));
    let at_threshold = metrics::confusion_at(probs, labels, input.threshold);
    let top_k = metrics::top_k_confusion(probs, labels, input.top_k_fraction);
    let deciles = metrics::deciles(probs, labels, input.keys);
    let top_label = format!("top {}", pct_short(input.top_k_fraction));

    let mut out = String::with_capacity(64 * 1024);
    page::open(&mut out, &input.title, "");
    out.push_str(
        "<p class=\"lead\">Evaluation on the held-out test window: calibrated probabilities of \
         another completed order within 60 days, against what happened.</p>\n",
    );
    page::warnings(&mut out, &warnings);
    page::facts_section(&mut out, "Run", &input.facts);

    out.push_str("<section>\n<h2>Headline metrics</h2>\n");
    tables::metrics_table(&mut out, &summary, raw_summary.as_ref(), input.auc_ci);
    out.push_str("</section>\n");

    out.push_str("<section>\n<h2>Operating points</h2>\n<div class=\"pair\">\n");
    tables::confusion_block(
        &mut out,
        &format!("At threshold {}", num(input.threshold, 4)),
        "F1-optimal threshold, chosen on the validation window.",
        &at_threshold,
    );
    tables::confusion_block(
        &mut out,
        &format!("Top {} by score", pct_short(input.top_k_fraction)),
        &format!(
            "Rows scoring at least {} (rows tied with the cut-off are included).",
            num(top_k.threshold, 4)
        ),
        &top_k,
    );
    out.push_str("</div>\n</section>\n");

    out.push_str("<section>\n<h2>Ranking</h2>\n<div class=\"grid\">\n");
    page::figure(
        &mut out,
        &ranking::roc_svg(
            probs,
            labels,
            summary.roc_auc,
            &at_threshold,
            &top_k,
            &top_label,
        ),
        "ROC curve. The closer to the top-left corner the better; the dashed diagonal is a \
         random ranking. Markers are the two operating points above.",
    );
    page::figure(
        &mut out,
        &ranking::pr_svg(probs, labels, &summary, &at_threshold, &top_k, &top_label),
        "Precision against recall. The dashed line is the base rate, what targeting at random \
         achieves.",
    );
    out.push_str("</div>\n</section>\n");

    out.push_str("<section>\n<h2>Calibration</h2>\n<div class=\"grid\">\n");
    let calibrated_bins = metrics::reliability_curve(probs, labels, RELIABILITY_BINS);
    let raw_bins = raw.map(|(r, l)| metrics::reliability_curve(r, l, RELIABILITY_BINS));
    page::figure(
        &mut out,
        &calibration::reliability_svg(&calibrated_bins, raw_bins.as_deref()),
        "Reliability: observed repurchase rate against the mean predicted probability in ten \
         equal-width bins, before and after calibration. On the diagonal, a predicted 20% means \
         20% repurchase. Marker area and the strip below show how many rows each bin holds.",
    );
    page::figure(
        &mut out,
        &calibration::distribution_svg(probs, labels, input.threshold),
        "Distribution of the calibrated probability for customers who repurchased and for those \
         who did not (each normalised to unit area). The less they overlap, the better the \
         ranking.",
    );
    out.push_str("</div>\n</section>\n");

    out.push_str("<section>\n<h2>Targeting</h2>\n");
    page::figure(
        &mut out,
        &targeting::gains_svg(&deciles, summary.positive_rate),
        "Left: lift of each score decile (its repurchase rate over the overall rate; decile 1 \
         holds the highest scores). Right: cumulative share of all repurchasers reached when \
         targeting the top deciles, against random targeting and a perfect ranking.",
    );
    tables::decile_table(&mut out, &deciles);
    out.push_str("</section>\n");

    out.push_str("<section>\n<h2>Feature importance</h2>\n");
    page::figure(
        &mut out,
        &importance::importance_svg(input.importance),
        &format!(
            "The {} most important of {} features by the booster's total split gain, highest \
             first.",
            TOP_FEATURES.min(input.importance.len()),
            input.importance.len()
        ),
    );
    page::figure(
        &mut out,
        &importance::mean_abs_svg(input.effects),
        "How far each feature moves a prediction on average: the mean absolute Shapley value \
         over the test rows, in log-odds (exact tree Shapley values of this model; a row's values \
         and the model's expected log-odds add up to its prediction). Unlike gain, it says how \
         much a feature changes the scores customers get.",
    );
    page::figure(
        &mut out,
        &importance::beeswarm_svg(input.effects),
        &format!(
            "Each dot is one test row (a sample of {} rows, the same for every feature) placed at \
             the feature's Shapley value for it: right of the line the feature raises that \
             customer's score, left lowers it. The colour is the row's value of the feature, from \
             its lowest (blue) to its highest (red) in the sample, grey where missing; categories \
             are coloured by their encoding, the repurchase rate the model learned for them.",
            int(input.effects.first().map_or(0, |e| e.points.len() as u64))
        ),
    );
    out.push_str("</section>\n");

    page::close(&mut out, &input.notes);
    out
}
