//! A self-contained HTML evaluation report for one trained model: the page a reviewer opens to
//! decide whether a run is good enough to score with.
//!
//! [`render`] turns a [`ReportInput`] (calibrated and raw scores on the held-out test window,
//! labels, the operating threshold, feature importance and a few facts about the run) into one
//! HTML5 document: a facts table, headline metrics, confusion matrices at the threshold and at
//! top-k, six inline SVG plots (ROC, precision–recall, reliability, lift and cumulative gains,
//! score distribution by class, feature importance), a decile table and free-text notes.
//!
//! Properties the callers rely on:
//! - **Self-contained.** No network reference of any kind (no external CSS, script, font or
//!   image; no `src=` or `url(`); styling is one inline `<style>` and the plots are inline SVG,
//!   which in HTML5 needs no `xmlns`. The file can be mailed, archived next to the model or opened
//!   offline.
//! - **Safe.** Every string taken from the input is HTML-escaped with [`escape`].
//! - **Deterministic.** Same input ⇒ byte-identical output: no clock, no randomness, fixed
//!   number formatting.
//! - **Total.** Degenerate input (empty, a single class, constant scores, NaN, slices of
//!   different lengths) never panics; a plot that cannot be drawn says "no data" instead, and
//!   length mismatches are reported on the page.
//!
//! All numbers come from [`crate::metrics`], so the report always agrees with `metrics.json`.

use std::fmt::Write as _;

use crate::metrics::{self, Confusion, DecileRow, ReliabilityBin, Summary};

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
    pub labels: &'a [bool],
    /// Each row's anchor order id: equal probabilities are ordered into deciles by its hash.
    pub keys: &'a [i64],
    /// The operating threshold (F1-optimal, chosen on the validation window).
    pub threshold: f64,
    /// Share of rows targeted for the top-k confusion matrix, e.g. 0.10.
    pub top_k_fraction: f64,
    /// Feature importance in any order; the top 25 are plotted.
    pub importance: &'a [(String, f64)],
    /// Bootstrap 95% interval of ROC-AUC, if computed.
    pub auc_ci: Option<(f64, f64)>,
    /// Plain-text paragraphs shown at the end.
    pub notes: Vec<String>,
}

/// Points kept on the ROC and PR curves (plenty for a 480-pixel plot).
const CURVE_POINTS: usize = 400;
/// Bins of the reliability curve (the same 10 that ECE uses).
const RELIABILITY_BINS: usize = 10;
/// Bins of the score histograms.
const HIST_BINS: usize = 25;
/// Features shown in the importance chart.
const TOP_FEATURES: usize = 25;
/// Longest feature name drawn in full; longer names are cut (the full name is in a tooltip).
const MAX_LABEL_CHARS: usize = 40;

const INK: &str = "#111827";
const MODEL: &str = "#2563eb";
const RAW: &str = "#ea580c";
const POSITIVE: &str = "#ea580c";
const NEGATIVE: &str = "#2563eb";
const REFERENCE: &str = "#6b7280";
const TOPK: &str = "#7c3aed";
const GRID: &str = "#e5e7eb";

/// Appends formatted text to a `String` (which cannot fail).
macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{
        let _ = write!($dst, $($arg)*);
    }};
}

pub mod timeline;

/// Escapes text for HTML element content and attribute values: `& < > " '`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
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
    let title = escape(&input.title);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light\">\n",
    );
    w!(
        out,
        "<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
    );
    w!(out, "<h1>{title}</h1>\n");
    out.push_str(
        "<p class=\"lead\">Evaluation on the held-out test window: calibrated probabilities of \
         another completed order within 60 days, against what happened.</p>\n",
    );
    for warning in &warnings {
        w!(out, "<p class=\"warn\">{}</p>\n", escape(warning));
    }

    facts_section(&mut out, "Run", &input.facts);

    out.push_str("<section>\n<h2>Headline metrics</h2>\n");
    metrics_table(&mut out, &summary, raw_summary.as_ref(), input.auc_ci);
    out.push_str("</section>\n");

    out.push_str("<section>\n<h2>Operating points</h2>\n<div class=\"pair\">\n");
    confusion_block(
        &mut out,
        &format!("At threshold {}", num(input.threshold, 4)),
        "F1-optimal threshold, chosen on the validation window.",
        &at_threshold,
    );
    confusion_block(
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
    figure(
        &mut out,
        &roc_svg(
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
    figure(
        &mut out,
        &pr_svg(probs, labels, &summary, &at_threshold, &top_k, &top_label),
        "Precision against recall. The dashed line is the base rate, what targeting at random \
         achieves.",
    );
    out.push_str("</div>\n</section>\n");

    out.push_str("<section>\n<h2>Calibration</h2>\n<div class=\"grid\">\n");
    let calibrated_bins = metrics::reliability_curve(probs, labels, RELIABILITY_BINS);
    let raw_bins = raw.map(|(r, l)| metrics::reliability_curve(r, l, RELIABILITY_BINS));
    figure(
        &mut out,
        &reliability_svg(&calibrated_bins, raw_bins.as_deref()),
        "Reliability: observed repurchase rate against the mean predicted probability in ten \
         equal-width bins, before and after calibration. On the diagonal, a predicted 20% means \
         20% repurchase. Marker area and the strip below show how many rows each bin holds.",
    );
    figure(
        &mut out,
        &distribution_svg(probs, labels, input.threshold),
        "Distribution of the calibrated probability for customers who repurchased and for those \
         who did not (each normalised to unit area). The less they overlap, the better the \
         ranking.",
    );
    out.push_str("</div>\n</section>\n");

    out.push_str("<section>\n<h2>Targeting</h2>\n");
    figure(
        &mut out,
        &gains_svg(&deciles, summary.positive_rate),
        "Left: lift of each score decile (its repurchase rate over the overall rate; decile 1 \
         holds the highest scores). Right: cumulative share of all repurchasers reached when \
         targeting the top deciles, against random targeting and a perfect ranking.",
    );
    decile_table(&mut out, &deciles);
    out.push_str("</section>\n");

    out.push_str("<section>\n<h2>Feature importance</h2>\n");
    figure(
        &mut out,
        &importance_svg(input.importance),
        &format!(
            "The {} most important of {} features, highest first.",
            TOP_FEATURES.min(input.importance.len()),
            input.importance.len()
        ),
    );
    out.push_str("</section>\n");

    if !input.notes.is_empty() {
        out.push_str("<section>\n<h2>Notes</h2>\n");
        for note in &input.notes {
            w!(out, "<p class=\"note\">{}</p>\n", escape(note));
        }
        out.push_str("</section>\n");
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

const STYLE: &str = "
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#111827;font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}
main{max-width:1000px;margin:0 auto;padding:24px 20px 48px;background:#fff}
h1{font-size:26px;margin:0 0 4px;line-height:1.25;overflow-wrap:anywhere}
h2{font-size:19px;margin:32px 0 12px;padding-bottom:4px;border-bottom:2px solid #e5e7eb}
h3{font-size:15px;margin:0 0 8px}
p{margin:8px 0}
.lead{color:#4b5563;margin-bottom:16px}
.warn{background:#fef3c7;border-left:4px solid #d97706;padding:8px 12px}
.muted{color:#6b7280;font-size:13px}
.note{white-space:pre-wrap;overflow-wrap:anywhere}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
thead th{border-bottom:2px solid #d1d5db;font-size:13px;color:#374151}
td.num,th.num{text-align:right;white-space:nowrap}
table.facts th{color:#374151;font-weight:600;white-space:nowrap}
table.facts td{overflow-wrap:anywhere}
table.deciles{margin-top:12px}
table.deciles td.num,table.deciles th.num{padding:4px 16px}
table.confusion td{text-align:right;min-width:64px}
table.metrics th{white-space:nowrap}
table.confusion td.hit{background:#dbeafe}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(390px,1fr));gap:24px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(400px,1fr));gap:24px;align-items:start}
figure{margin:0}
figure svg{display:block;width:100%;height:auto;max-width:620px;margin:0 auto}
figure svg.wide{max-width:100%}
figcaption{font-size:13px;color:#4b5563;margin-top:4px}
svg text{font-size:12px;fill:#374151}
svg .ptitle{font-size:14px;font-weight:600;fill:#111827}
svg .axis-title{font-size:12px;fill:#111827}
svg .small{font-size:10.5px}
svg .nodata{font-size:16px;fill:#6b7280}
#gains text{font-size:13px}
#gains .small{font-size:11.5px}
#gains .ptitle{font-size:15px}
";

/// A section with a key/value table of `facts` (nothing when there are none).
fn facts_section(out: &mut String, heading: &str, facts: &[(String, String)]) {
    if facts.is_empty() {
        return;
    }
    w!(
        out,
        "<section>\n<h2>{}</h2>\n<table class=\"facts\">\n",
        escape(heading)
    );
    for (k, v) in facts {
        w!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>\n",
            escape(k),
            escape(v)
        );
    }
    out.push_str("</table>\n</section>\n");
}

fn figure(out: &mut String, svg: &str, caption: &str) {
    w!(
        out,
        "<figure>\n{svg}<figcaption>{}</figcaption>\n</figure>\n",
        escape(caption)
    );
}

// ---------------------------------------------------------------------------------------------
// Number formatting: fixed decimals, no locale, "n/a" for anything not finite.

/// Fixed-point with `decimals` digits; never prints "-0.000".
fn num(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

fn pct(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{}%", num(v * 100.0, decimals))
    } else {
        "n/a".to_string()
    }
}

/// "10%" for whole percentages, "12.5%" otherwise.
fn pct_short(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    let p = v * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        pct(v, 0)
    } else {
        pct(v, 1)
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".to_string(), |x| num(x, decimals))
}

/// Integer with thousands separators: 1234567 → "1,234,567".
fn int(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A value with about three significant digits, for bar labels of any magnitude.
fn sig(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        num(v, 0)
    } else if a >= 10.0 {
        num(v, 1)
    } else if a >= 1.0 {
        num(v, 2)
    } else {
        num(v, 3)
    }
}

/// An SVG coordinate: one decimal, non-finite drawn at 0 (callers skip non-finite points).
fn c(v: f64) -> String {
    if v.is_finite() {
        num(v, 1)
    } else {
        "0".to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Tables.

fn metrics_table(out: &mut String, s: &Summary, raw: Option<&Summary>, auc_ci: Option<(f64, f64)>) {
    out.push_str(
        "<table class=\"metrics\">\n<thead><tr><th>metric</th><th class=\"num\">calibrated</th>",
    );
    if raw.is_some() {
        out.push_str("<th class=\"num\">raw model</th>");
    }
    out.push_str("<th>reading</th></tr></thead>\n<tbody>\n");
    let auc = match (s.roc_auc, auc_ci) {
        (Some(a), Some((lo, hi))) => {
            format!(
                "{} <span class=\"muted\">(95% CI {}–{})</span>",
                num(a, 3),
                num(lo, 3),
                num(hi, 3)
            )
        }
        (a, _) => opt(a, 3),
    };
    const ROWS: [(&str, &str); 9] = [
        ("Rows", "anchors in the test window"),
        ("Positives", "repurchased within 60 days"),
        ("Positive rate", "the base rate"),
        ("ROC-AUC", "ranking: 0.5 is random, 1 perfect"),
        (
            "PR-AUC",
            "average precision; random ranking scores the base rate",
        ),
        (
            "Brier score",
            "mean squared error of the probability; lower is better",
        ),
        ("Log loss", "lower is better"),
        (
            "ECE (10 equal-mass bins)",
            "mean gap between predicted and observed rate, each bin a tenth of the rows; lower is better",
        ),
        (
            "ECE (10 equal-width bins)",
            "the same over the reliability curve's bins of [0, 1]",
        ),
    ];
    let values = |x: &Summary| {
        [
            int(x.rows),
            int(x.positives),
            pct(x.positive_rate, 1),
            opt(x.roc_auc, 3),
            opt(x.pr_auc, 3),
            num(x.brier, 4),
            num(x.log_loss, 4),
            num(x.ece, 4),
            num(x.ece_equal_width, 4),
        ]
    };
    let mut calibrated = values(s);
    calibrated[3] = auc;
    let raw_values = raw.map(values);
    for (i, (name, reading)) in ROWS.iter().enumerate() {
        w!(
            out,
            "<tr><th>{name}</th><td class=\"num\">{}</td>",
            calibrated[i]
        );
        if let Some(r) = &raw_values {
            w!(out, "<td class=\"num\">{}</td>", r[i]);
        }
        w!(out, "<td class=\"muted\">{reading}</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

fn confusion_block(out: &mut String, heading: &str, explanation: &str, cm: &Confusion) {
    let total = cm.tp + cm.fp + cm.tn + cm.fn_;
    let flagged = cm.tp + cm.fp;
    let share = if total == 0 {
        0.0
    } else {
        flagged as f64 / total as f64
    };
    w!(
        out,
        "<div>\n<h3>{}</h3>\n<p class=\"muted\">{}</p>\n<table class=\"confusion\">\n",
        escape(heading),
        escape(explanation)
    );
    out.push_str(
        "<thead><tr><th></th><th class=\"num\">predicted yes</th><th class=\"num\">predicted no</th>\
         <th class=\"num\">total</th></tr></thead>\n<tbody>\n",
    );
    w!(
        out,
        "<tr><th>repurchased</th><td class=\"hit\">{}</td><td>{}</td><td>{}</td></tr>\n",
        int(cm.tp),
        int(cm.fn_),
        int(cm.tp + cm.fn_)
    );
    w!(
        out,
        "<tr><th>did not</th><td>{}</td><td class=\"hit\">{}</td><td>{}</td></tr>\n",
        int(cm.fp),
        int(cm.tn),
        int(cm.fp + cm.tn)
    );
    w!(
        out,
        "<tr><th>total</th><td>{}</td><td>{}</td><td>{}</td></tr>\n</tbody>\n</table>\n",
        int(flagged),
        int(cm.fn_ + cm.tn),
        int(total)
    );
    w!(
        out,
        "<p>Flags {} rows ({}).<br>Precision <b>{}</b> · recall <b>{}</b> · F1 <b>{}</b></p>\n</div>\n",
        int(flagged),
        pct(share, 1),
        num(cm.precision, 3),
        num(cm.recall, 3),
        num(cm.f1, 3)
    );
}

fn decile_table(out: &mut String, deciles: &[DecileRow]) {
    if deciles.is_empty() {
        out.push_str("<p class=\"muted\">No rows, so no decile table.</p>\n");
        return;
    }
    out.push_str(
        "<table class=\"deciles\">\n<thead><tr><th class=\"num\">decile</th><th class=\"num\">rows</th>\
         <th class=\"num\">positives</th><th class=\"num\">rate</th><th class=\"num\">lift</th>\
         <th class=\"num\">cumulative gain</th><th class=\"num\">min score</th>\
         <th class=\"num\">max score</th></tr></thead>\n<tbody>\n",
    );
    for d in deciles {
        w!(
            out,
            "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            d.decile,
            int(d.rows),
            int(d.positives),
            pct(d.rate, 1),
            num(d.lift, 2),
            pct(d.cumulative_gain, 1),
            num(d.min_score, 4),
            num(d.max_score, 4)
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

// ---------------------------------------------------------------------------------------------
// SVG building blocks.

/// A linear axis with "nice" ticks (steps of 1, 2, 2.5 or 5 times a power of ten).
#[derive(Debug, Clone)]
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    decimals: usize,
    percent: bool,
}

/// A step of about `span / target` rounded to 1, 2, 2.5, 5 or 10 × 10^k, and the decimals its
/// multiples need.
fn nice_step(span: f64, target: usize) -> (f64, usize) {
    let raw = span / target.max(1) as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return (1.0, 0);
    }
    let exp = raw.log10().floor() as i32;
    let mag = 10f64.powi(exp);
    let norm = raw / mag;
    let (m, exp) = if norm <= 1.0 + 1e-9 {
        (1.0, exp)
    } else if norm <= 2.0 + 1e-9 {
        (2.0, exp)
    } else if norm <= 2.5 + 1e-9 {
        (2.5, exp)
    } else if norm <= 5.0 + 1e-9 {
        (5.0, exp)
    } else {
        (1.0, exp + 1)
    };
    let step = m * 10f64.powi(exp);
    let decimals = (-exp).max(0) as usize + usize::from(m == 2.5 && exp <= 0);
    (step, decimals.min(12))
}

impl Axis {
    /// `[lo, hi]` widened to whole steps, with about `target` intervals.
    fn nice(lo: f64, hi: f64, target: usize) -> Axis {
        let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
            (lo, hi)
        } else if lo.is_finite() {
            (lo, lo + 1.0)
        } else {
            (0.0, 1.0)
        };
        let (step, decimals) = nice_step(hi - lo, target);
        let k0 = (lo / step + 1e-9).floor() as i64;
        let k1 = ((hi / step - 1e-9).ceil() as i64).max(k0 + 1);
        let ticks = (k0..=k1).map(|k| k as f64 * step).collect();
        Axis {
            lo: k0 as f64 * step,
            hi: k1 as f64 * step,
            ticks,
            decimals,
            percent: false,
        }
    }

    /// An axis for a probability or share: from 0 to a nice value at or above `max`, at most 1.
    fn unit(max: f64, target: usize) -> Axis {
        let max = if max.is_finite() && max > 0.0 {
            max.min(1.0)
        } else {
            1.0
        };
        let mut axis = Axis::nice(0.0, max, target);
        if axis.hi > 1.0 {
            axis = Axis::nice(0.0, 1.0, target);
        }
        axis
    }

    fn percent(mut self) -> Axis {
        self.percent = true;
        self
    }

    fn label(&self, v: f64) -> String {
        if self.percent {
            pct(v, self.decimals.saturating_sub(2))
        } else {
            num(v, self.decimals)
        }
    }
}

/// A plotting area inside an SVG: pixel box plus the two axes.
struct Plot {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    x: Axis,
    y: Axis,
}

impl Plot {
    fn px(&self, v: f64) -> f64 {
        let span = self.x.hi - self.x.lo;
        let t = if span > 0.0 {
            ((v - self.x.lo) / span).clamp(0.0, 1.0)
        } else {
            0.5
        };
        self.left + t * self.width
    }

    fn py(&self, v: f64) -> f64 {
        let span = self.y.hi - self.y.lo;
        let t = if span > 0.0 {
            ((v - self.y.lo) / span).clamp(0.0, 1.0)
        } else {
            0.5
        };
        self.top + self.height - t * self.height
    }

    fn bottom(&self) -> f64 {
        self.top + self.height
    }

    fn right(&self) -> f64 {
        self.left + self.width
    }

    /// Grid, frame, tick labels and axis titles. `x_labels` replaces the numeric x tick labels
    /// (used for the categorical decile axis).
    fn axes(
        &self,
        out: &mut String,
        xtitle: &str,
        ytitle: &str,
        x_labels: Option<&[(f64, String)]>,
    ) {
        out.push_str("<g class=\"axes\">\n");
        for &t in &self.y.ticks {
            let y = c(self.py(t));
            w!(
                out,
                "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{GRID}\"/>\
                 <text x=\"{}\" y=\"{y}\" dy=\"0.32em\" text-anchor=\"end\">{}</text>\n",
                c(self.left),
                c(self.right()),
                c(self.left - 6.0),
                self.y.label(t)
            );
        }
        let numeric: Vec<(f64, String)>;
        let xl = match x_labels {
            Some(l) => l,
            None => {
                numeric = self.x.ticks.iter().map(|&t| (t, self.x.label(t))).collect();
                &numeric
            }
        };
        for (t, label) in xl {
            let x = c(self.px(*t));
            if x_labels.is_none() {
                w!(
                    out,
                    "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{GRID}\"/>",
                    c(self.top),
                    c(self.bottom())
                );
            }
            w!(
                out,
                "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                c(self.bottom() + 16.0),
                escape(label)
            );
        }
        w!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#9ca3af\"/>\n",
            c(self.left),
            c(self.top),
            c(self.width),
            c(self.height)
        );
        w!(
            out,
            "<text class=\"axis-title\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            c(self.left + self.width / 2.0),
            c(self.bottom() + 34.0),
            escape(xtitle)
        );
        let (yx, yy) = (self.left - 44.0, self.top + self.height / 2.0);
        w!(
            out,
            "<text class=\"axis-title\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" \
             transform=\"rotate(-90 {} {})\">{}</text>\n</g>\n",
            c(yx),
            c(yy),
            c(yx),
            c(yy),
            escape(ytitle)
        );
    }

    /// A straight reference line between two data points.
    fn line(&self, out: &mut String, a: (f64, f64), b: (f64, f64), colour: &str, dash: &str) {
        w!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{colour}\" stroke-width=\"1.5\"{}/>\n",
            c(self.px(a.0)),
            c(self.py(a.1)),
            c(self.px(b.0)),
            c(self.py(b.1)),
            dash_attr(dash)
        );
    }

    /// A polyline through the finite points; nothing when fewer than two remain.
    fn polyline(&self, out: &mut String, points: &[(f64, f64)], colour: &str, dash: &str) {
        let finite: Vec<&(f64, f64)> = points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        if finite.len() < 2 {
            return;
        }
        out.push_str("<polyline fill=\"none\" stroke-linejoin=\"round\" points=\"");
        for (i, &&(x, y)) in finite.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            w!(out, "{},{}", c(self.px(x)), c(self.py(y)));
        }
        w!(
            out,
            "\" stroke=\"{colour}\" stroke-width=\"2.25\"{}/>\n",
            dash_attr(dash)
        );
    }

    fn dot(&self, out: &mut String, p: (f64, f64), r: f64, colour: &str, tip: &str) {
        if !(p.0.is_finite() && p.1.is_finite()) {
            return;
        }
        w!(
            out,
            "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{colour}\" fill-opacity=\"0.85\" \
             stroke=\"#fff\" stroke-width=\"1\"><title>{}</title></circle>\n",
            c(self.px(p.0)),
            c(self.py(p.1)),
            c(r),
            escape(tip)
        );
    }

    fn diamond(&self, out: &mut String, p: (f64, f64), colour: &str, tip: &str) {
        if !(p.0.is_finite() && p.1.is_finite()) {
            return;
        }
        let (x, y, r) = (self.px(p.0), self.py(p.1), 6.0);
        w!(
            out,
            "<path d=\"M{} {}L{} {}L{} {}L{} {}Z\" fill=\"{colour}\" stroke=\"#fff\" \
             stroke-width=\"1\"><title>{}</title></path>\n",
            c(x),
            c(y - r),
            c(x + r),
            c(y),
            c(x),
            c(y + r),
            c(x - r),
            c(y),
            escape(tip)
        );
    }
}

fn dash_attr(dash: &str) -> String {
    if dash.is_empty() {
        String::new()
    } else {
        format!(" stroke-dasharray=\"{dash}\"")
    }
}

/// What a legend entry looks like.
#[derive(Clone, Copy)]
enum Swatch {
    Line(&'static str, &'static str),
    Dot(&'static str),
    Diamond(&'static str),
    Area(&'static str),
}

/// A legend box whose top-left (or top-right, when `right_aligned`) corner is at `(x, y)`.
fn legend(out: &mut String, x: f64, y: f64, right_aligned: bool, items: &[(Swatch, String)]) {
    if items.is_empty() {
        return;
    }
    let longest = items
        .iter()
        .map(|(_, l)| l.chars().count())
        .max()
        .unwrap_or(0);
    let width = 34.0 + longest as f64 * 7.0;
    let height = 8.0 + items.len() as f64 * 18.0;
    let x0 = if right_aligned { x - width } else { x };
    w!(
        out,
        "<g class=\"legend\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\" \
         fill=\"#fff\" fill-opacity=\"0.9\" stroke=\"#d1d5db\"/>\n",
        c(x0),
        c(y),
        c(width),
        c(height)
    );
    for (i, (swatch, label)) in items.iter().enumerate() {
        let cy = y + 13.0 + i as f64 * 18.0;
        let sx = x0 + 8.0;
        match *swatch {
            Swatch::Line(colour, dash) => w!(
                out,
                "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{colour}\" stroke-width=\"2.25\"{}/>",
                c(sx),
                c(cy),
                c(sx + 18.0),
                c(cy),
                dash_attr(dash)
            ),
            Swatch::Dot(colour) => w!(
                out,
                "<circle cx=\"{}\" cy=\"{}\" r=\"4.5\" fill=\"{colour}\"/>",
                c(sx + 9.0),
                c(cy)
            ),
            Swatch::Diamond(colour) => w!(
                out,
                "<path d=\"M{} {}L{} {}L{} {}L{} {}Z\" fill=\"{colour}\"/>",
                c(sx + 9.0),
                c(cy - 5.5),
                c(sx + 14.5),
                c(cy),
                c(sx + 9.0),
                c(cy + 5.5),
                c(sx + 3.5),
                c(cy)
            ),
            Swatch::Area(colour) => w!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"18\" height=\"10\" fill=\"{colour}\" \
                 fill-opacity=\"0.35\" stroke=\"{colour}\" stroke-width=\"1.5\"/>",
                c(sx),
                c(cy - 5.0)
            ),
        }
        w!(
            out,
            "<text x=\"{}\" y=\"{}\" dy=\"0.32em\">{}</text>\n",
            c(sx + 26.0),
            c(cy),
            escape(label)
        );
    }
    out.push_str("</g>\n");
}

/// Opening tag, accessible title and the visible plot title.
fn svg_open(out: &mut String, id: &str, width: f64, height: f64, title: &str, wide: bool) {
    w!(
        out,
        "<svg id=\"{id}\"{} viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" \
         aria-labelledby=\"{id}-title\" font-family=\"system-ui, sans-serif\">\n\
         <title id=\"{id}-title\">{}</title>\n\
         <text class=\"ptitle\" x=\"12\" y=\"20\">{}</text>\n",
        if wide { " class=\"wide\"" } else { "" },
        c(width),
        c(height),
        c(width),
        c(height),
        escape(title),
        escape(title)
    );
}

/// A plot that cannot be drawn: the frame, the title and "no data" with the reason.
fn no_data_svg(id: &str, width: f64, height: f64, title: &str, reason: &str, wide: bool) -> String {
    let mut out = String::new();
    svg_open(&mut out, id, width, height, title, wide);
    w!(
        out,
        "<rect x=\"12\" y=\"32\" width=\"{}\" height=\"{}\" fill=\"#f9fafb\" stroke=\"#d1d5db\"/>\n\
         <text class=\"nodata\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no data</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n</svg>\n",
        c(width - 24.0),
        c(height - 44.0),
        c(width / 2.0),
        c(height / 2.0),
        c(width / 2.0),
        c(height / 2.0 + 22.0),
        escape(reason)
    );
    out
}

// ---------------------------------------------------------------------------------------------
// The six plots.

const W: f64 = 480.0;
const H: f64 = 400.0;

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

fn operating_point(cm: &Confusion) -> (f64, f64) {
    let neg = cm.fp + cm.tn;
    let fpr = if neg == 0 {
        0.0
    } else {
        cm.fp as f64 / neg as f64
    };
    (fpr, cm.recall)
}

fn roc_svg(
    probs: &[f64],
    labels: &[bool],
    auc: Option<f64>,
    at: &Confusion,
    top: &Confusion,
    top_label: &str,
) -> String {
    let title = "ROC curve";
    let curve = metrics::roc_curve(probs, labels, CURVE_POINTS);
    if curve.is_empty() {
        return no_data_svg(
            "roc",
            W,
            H,
            title,
            "needs both repurchasers and non-repurchasers",
            false,
        );
    }
    let mut out = String::new();
    svg_open(&mut out, "roc", W, H, title, false);
    let plot = square_plot(Axis::nice(0.0, 1.0, 5), Axis::nice(0.0, 1.0, 5));
    plot.axes(
        &mut out,
        "false positive rate",
        "true positive rate (recall)",
        None,
    );
    plot.line(&mut out, (0.0, 0.0), (1.0, 1.0), REFERENCE, "5 4");
    plot.polyline(&mut out, &curve, MODEL, "");
    let p_at = operating_point(at);
    let p_top = operating_point(top);
    plot.dot(
        &mut out,
        p_at,
        5.5,
        INK,
        &format!("threshold {}", num(at.threshold, 4)),
    );
    plot.diamond(&mut out, p_top, TOPK, top_label);
    legend(
        &mut out,
        plot.right() - 8.0,
        plot.bottom() - 8.0 - 4.0 * 18.0 - 8.0,
        true,
        &[
            (
                Swatch::Line(MODEL, ""),
                format!("model (AUC {})", opt(auc, 3)),
            ),
            (Swatch::Line(REFERENCE, "5 4"), "random".to_string()),
            (
                Swatch::Dot(INK),
                format!("threshold {}", num(at.threshold, 3)),
            ),
            (Swatch::Diamond(TOPK), top_label.to_string()),
        ],
    );
    out.push_str("</svg>\n");
    out
}

fn pr_svg(
    probs: &[f64],
    labels: &[bool],
    s: &Summary,
    at: &Confusion,
    top: &Confusion,
    top_label: &str,
) -> String {
    let title = "Precision–recall curve";
    let curve = metrics::pr_curve(probs, labels, CURVE_POINTS);
    if curve.is_empty() {
        return no_data_svg("pr", W, H, title, "needs at least one repurchaser", false);
    }
    let mut out = String::new();
    svg_open(&mut out, "pr", W, H, title, false);
    let plot = square_plot(Axis::nice(0.0, 1.0, 5), Axis::nice(0.0, 1.0, 5));
    plot.axes(&mut out, "recall", "precision", None);
    plot.line(
        &mut out,
        (0.0, s.positive_rate),
        (1.0, s.positive_rate),
        REFERENCE,
        "5 4",
    );
    plot.polyline(&mut out, &curve, MODEL, "");
    plot.dot(
        &mut out,
        (at.recall, at.precision),
        5.5,
        INK,
        &format!("threshold {}", num(at.threshold, 4)),
    );
    plot.diamond(&mut out, (top.recall, top.precision), TOPK, top_label);
    legend(
        &mut out,
        plot.right() - 8.0,
        plot.top + 8.0,
        true,
        &[
            (
                Swatch::Line(MODEL, ""),
                format!("model (AP {})", opt(s.pr_auc, 3)),
            ),
            (
                Swatch::Line(REFERENCE, "5 4"),
                format!("base rate {}", pct(s.positive_rate, 1)),
            ),
            (
                Swatch::Dot(INK),
                format!("threshold {}", num(at.threshold, 3)),
            ),
            (Swatch::Diamond(TOPK), top_label.to_string()),
        ],
    );
    out.push_str("</svg>\n");
    out
}

fn reliability_svg(calibrated: &[ReliabilityBin], raw: Option<&[ReliabilityBin]>) -> String {
    let title = "Reliability (calibration) curve";
    let (width, height) = (W, 460.0);
    let raw = raw.unwrap_or(&[]);
    if calibrated.is_empty() && raw.is_empty() {
        return no_data_svg("reliability", width, height, title, "no rows", false);
    }
    let all = || calibrated.iter().chain(raw);
    let max = all()
        .flat_map(|b| [b.mean_predicted, b.observed_rate])
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let axis = Axis::unit(max * 1.05, 5);
    let mut out = String::new();
    svg_open(&mut out, "reliability", width, height, title, false);
    let plot = Plot {
        left: 64.0,
        top: 36.0,
        width: 396.0,
        height: 290.0,
        x: axis.clone(),
        y: axis.clone(),
    };
    plot.axes(
        &mut out,
        "mean predicted probability",
        "observed repurchase rate",
        None,
    );
    plot.line(
        &mut out,
        (axis.lo, axis.lo),
        (axis.hi, axis.hi),
        REFERENCE,
        "5 4",
    );
    let max_rows = all().map(|b| b.rows).max().unwrap_or(1).max(1) as f64;
    let radius = |rows: u64| 2.5 + 5.0 * (rows as f64 / max_rows).sqrt();
    let series: [(&[ReliabilityBin], &'static str, &str); 2] =
        [(raw, RAW, "raw"), (calibrated, MODEL, "calibrated")];
    for (bins, colour, name) in series {
        let points: Vec<(f64, f64)> = bins
            .iter()
            .map(|b| (b.mean_predicted, b.observed_rate))
            .collect();
        plot.polyline(
            &mut out,
            &points,
            colour,
            if name == "raw" { "6 3" } else { "" },
        );
        for b in bins {
            plot.dot(
                &mut out,
                (b.mean_predicted, b.observed_rate),
                radius(b.rows),
                colour,
                &format!(
                    "{name}: bin {}–{}, {} rows, predicted {}, observed {}",
                    num(b.lower, 1),
                    num(b.upper, 1),
                    int(b.rows),
                    pct(b.mean_predicted, 1),
                    pct(b.observed_rate, 1)
                ),
            );
        }
    }
    // Count strip: rows per bin, calibrated on the left half of each bin, raw on the right.
    let strip_top = plot.bottom() + 62.0;
    let strip_h = 50.0;
    let strip_label = format!(
        "rows per bin{}; tallest bar {} rows",
        if raw.is_empty() {
            ""
        } else {
            ": calibrated (blue), raw (orange)"
        },
        int(max_rows as u64)
    );
    w!(
        out,
        "<text class=\"small\" x=\"{}\" y=\"{}\">{}</text>\n\
         <line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#9ca3af\"/>\n",
        c(plot.left),
        c(strip_top - 6.0),
        escape(&strip_label),
        c(plot.left),
        c(strip_top + strip_h),
        c(plot.right()),
        c(strip_top + strip_h)
    );
    for (bins, colour, half) in [(calibrated, MODEL, 0.0), (raw, RAW, 0.5)] {
        for b in bins {
            if b.lower >= axis.hi {
                continue;
            }
            let x0 = plot.px(b.lower);
            let x1 = plot.px(b.upper.min(axis.hi));
            let bw = (x1 - x0) / 2.0;
            let h = strip_h * b.rows as f64 / max_rows;
            w!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\" \
                 fill-opacity=\"0.6\"><title>{} rows</title></rect>\n",
                c(x0 + half * 2.0 * bw + 0.5),
                c(strip_top + strip_h - h),
                c((bw - 1.0).max(0.5)),
                c(h),
                int(b.rows)
            );
        }
    }
    let mut items = vec![(Swatch::Dot(MODEL), "calibrated".to_string())];
    if !raw.is_empty() {
        items.push((Swatch::Dot(RAW), "raw model".to_string()));
    }
    items.push((
        Swatch::Line(REFERENCE, "5 4"),
        "perfect calibration".to_string(),
    ));
    legend(&mut out, plot.left + 8.0, plot.top + 8.0, false, &items);
    out.push_str("</svg>\n");
    out
}

/// Density histogram of `values` over `bins` equal bins of `[0, hi]`: count / (n · width).
fn densities(values: impl Iterator<Item = f64>, hi: f64, bins: usize) -> (Vec<f64>, u64) {
    let mut counts = vec![0u64; bins];
    let mut n = 0u64;
    for v in values.filter(|v| v.is_finite()) {
        let i = ((v.clamp(0.0, hi) / hi * bins as f64) as usize).min(bins - 1);
        counts[i] += 1;
        n += 1;
    }
    let width = hi / bins as f64;
    let dens = counts
        .iter()
        .map(|&k| {
            if n == 0 {
                0.0
            } else {
                k as f64 / (n as f64 * width)
            }
        })
        .collect();
    (dens, n)
}

fn distribution_svg(probs: &[f64], labels: &[bool], threshold: f64) -> String {
    let title = "Score distribution by outcome";
    let finite_max = probs
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    if !finite_max.is_finite() {
        return no_data_svg("score-distribution", W, H, title, "no rows", false);
    }
    let x = Axis::unit(finite_max, 5);
    let hi = x.hi;
    let pick = |want: bool| {
        probs
            .iter()
            .zip(labels)
            .filter(move |(_, y)| **y == want)
            .map(|(p, _)| *p)
    };
    let (neg, n_neg) = densities(pick(false), hi, HIST_BINS);
    let (pos, n_pos) = densities(pick(true), hi, HIST_BINS);
    let max_d = neg.iter().chain(&pos).copied().fold(0.0f64, f64::max);
    let mut out = String::new();
    svg_open(&mut out, "score-distribution", W, H, title, false);
    let plot = square_plot(x, Axis::nice(0.0, max_d * 1.05, 5));
    plot.axes(&mut out, "calibrated probability", "density", None);
    for (dens, n, colour) in [(&neg, n_neg, NEGATIVE), (&pos, n_pos, POSITIVE)] {
        if n == 0 {
            continue;
        }
        let step = hi / HIST_BINS as f64;
        let base = c(plot.py(0.0));
        w!(out, "<path d=\"M{} {base}", c(plot.px(0.0)));
        for (i, &d) in dens.iter().enumerate() {
            let y = c(plot.py(d));
            w!(
                out,
                "L{} {y}L{} {y}",
                c(plot.px(i as f64 * step)),
                c(plot.px((i + 1) as f64 * step))
            );
        }
        w!(
            out,
            "L{} {base}Z\" fill=\"{colour}\" fill-opacity=\"0.3\" stroke=\"{colour}\" \
             stroke-width=\"1.75\" stroke-linejoin=\"round\"/>\n",
            c(plot.px(hi))
        );
    }
    if threshold.is_finite() && threshold >= 0.0 && threshold <= hi {
        plot.line(
            &mut out,
            (threshold, plot.y.lo),
            (threshold, plot.y.hi),
            INK,
            "3 3",
        );
    }
    let mut items = vec![
        (
            Swatch::Area(NEGATIVE),
            format!("did not repurchase (n={})", int(n_neg)),
        ),
        (
            Swatch::Area(POSITIVE),
            format!("repurchased (n={})", int(n_pos)),
        ),
    ];
    if threshold.is_finite() {
        items.push((
            Swatch::Line(INK, "3 3"),
            format!("threshold {}", num(threshold, 3)),
        ));
    }
    legend(&mut out, plot.right() - 8.0, plot.top + 8.0, true, &items);
    out.push_str("</svg>\n");
    out
}

fn gains_svg(deciles: &[DecileRow], rate: f64) -> String {
    let title = "Lift by decile and cumulative gains";
    let (width, height) = (900.0, 380.0);
    if deciles.is_empty() {
        return no_data_svg("gains", width, height, title, "no rows", true);
    }
    let mut out = String::new();
    svg_open(&mut out, "gains", width, height, title, true);

    // Left: lift bars.
    let max_lift = deciles
        .iter()
        .map(|d| d.lift)
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::max);
    let lift = Plot {
        left: 64.0,
        top: 36.0,
        width: 370.0,
        height: 290.0,
        x: Axis {
            lo: 0.5,
            hi: 10.5,
            ticks: Vec::new(),
            decimals: 0,
            percent: false,
        },
        y: Axis::nice(0.0, max_lift * 1.08, 5),
    };
    let labels: Vec<(f64, String)> = (1..=10).map(|d| (f64::from(d), d.to_string())).collect();
    lift.axes(
        &mut out,
        "score decile (1 = highest scores)",
        "lift",
        Some(&labels),
    );
    let slot = lift.width / 10.0;
    for d in deciles {
        let cx = lift.px(f64::from(d.decile));
        let top = lift.py(d.lift);
        w!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{MODEL}\" fill-opacity=\"0.8\">\
             <title>decile {}: {} rows, {} positives, rate {}, lift {}</title></rect>\n\
             <text class=\"small\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            c(cx - slot * 0.35),
            c(top),
            c(slot * 0.7),
            c(lift.bottom() - top),
            d.decile,
            int(d.rows),
            int(d.positives),
            pct(d.rate, 1),
            num(d.lift, 2),
            c(cx),
            c(top - 4.0),
            num(d.lift, 2)
        );
    }
    lift.line(&mut out, (0.5, 1.0), (10.5, 1.0), REFERENCE, "5 4");
    legend(
        &mut out,
        lift.right() - 8.0,
        lift.top + 8.0,
        true,
        &[
            (Swatch::Area(MODEL), "lift of the decile".to_string()),
            (
                Swatch::Line(REFERENCE, "5 4"),
                "random (lift 1)".to_string(),
            ),
        ],
    );

    // Right: cumulative gains.
    let total: u64 = deciles.iter().map(|d| d.rows).sum();
    let gains = Plot {
        left: 520.0,
        top: 36.0,
        width: 360.0,
        height: 290.0,
        x: Axis::nice(0.0, 1.0, 5).percent(),
        y: Axis::nice(0.0, 1.0, 5).percent(),
    };
    gains.axes(
        &mut out,
        "share of customers targeted",
        "share of repurchasers reached",
        None,
    );
    gains.line(&mut out, (0.0, 0.0), (1.0, 1.0), REFERENCE, "5 4");
    if rate > 0.0 && rate.is_finite() {
        gains.polyline(
            &mut out,
            &[(0.0, 0.0), (rate.min(1.0), 1.0), (1.0, 1.0)],
            "#16a34a",
            "2 3",
        );
    }
    let mut points = vec![(0.0, 0.0)];
    let mut cum_rows = 0u64;
    for d in deciles {
        cum_rows += d.rows;
        points.push((cum_rows as f64 / total.max(1) as f64, d.cumulative_gain));
    }
    gains.polyline(&mut out, &points, MODEL, "");
    for (d, p) in deciles.iter().zip(&points[1..]) {
        gains.dot(
            &mut out,
            *p,
            3.5,
            MODEL,
            &format!(
                "top {} deciles: {} of repurchasers",
                d.decile,
                pct(d.cumulative_gain, 1)
            ),
        );
    }
    legend(
        &mut out,
        gains.right() - 8.0,
        gains.bottom() - 8.0 - 3.0 * 18.0 - 8.0,
        true,
        &[
            (Swatch::Line(MODEL, ""), "model".to_string()),
            (
                Swatch::Line("#16a34a", "2 3"),
                "perfect ranking".to_string(),
            ),
            (Swatch::Line(REFERENCE, "5 4"), "random".to_string()),
        ],
    );
    out.push_str("</svg>\n");
    out
}

/// At most `MAX_LABEL_CHARS` characters, cut with an ellipsis.
fn short_label(name: &str) -> String {
    if name.chars().count() <= MAX_LABEL_CHARS {
        name.to_string()
    } else {
        let mut s: String = name.chars().take(MAX_LABEL_CHARS - 1).collect();
        s.push('…');
        s
    }
}

fn importance_svg(importance: &[(String, f64)]) -> String {
    let title = "Feature importance";
    let width = 900.0;
    let mut top: Vec<(&str, f64)> = importance
        .iter()
        .map(|(name, v)| (name.as_str(), if v.is_finite() { *v } else { 0.0 }))
        .collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    top.truncate(TOP_FEATURES);
    if top.is_empty() {
        return no_data_svg(
            "importance",
            width,
            200.0,
            title,
            "no feature importance given",
            true,
        );
    }
    let row_h = 20.0;
    let height = 36.0 + top.len() as f64 * row_h + 52.0;
    let lo = top.iter().map(|t| t.1).fold(0.0f64, f64::min);
    let hi = top.iter().map(|t| t.1).fold(0.0f64, f64::max);
    let plot = Plot {
        left: 300.0,
        top: 36.0,
        width: 550.0,
        height: top.len() as f64 * row_h,
        x: Axis::nice(lo, if hi > lo { hi * 1.08 } else { lo + 1.0 }, 6),
        y: Axis {
            lo: 0.0,
            hi: 1.0,
            ticks: Vec::new(),
            decimals: 0,
            percent: false,
        },
    };
    let mut out = String::new();
    svg_open(&mut out, "importance", width, height, title, true);
    plot.axes(&mut out, "importance", "", None);
    let zero = plot.px(0.0);
    for (i, (name, v)) in top.iter().enumerate() {
        let y = plot.top + i as f64 * row_h;
        let x = plot.px(*v);
        let (x0, x1) = if x >= zero { (zero, x) } else { (x, zero) };
        w!(
            out,
            "<g><title>{}: {}</title>\
             <text x=\"{}\" y=\"{}\" dy=\"0.32em\" text-anchor=\"end\">{}</text>\
             <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{MODEL}\" fill-opacity=\"0.8\"/>\
             <text class=\"small\" x=\"{}\" y=\"{}\" dy=\"0.32em\">{}</text></g>\n",
            escape(name),
            sig(*v),
            c(plot.left - 8.0),
            c(y + row_h / 2.0),
            escape(&short_label(name)),
            c(x0),
            c(y + 3.0),
            c((x1 - x0).max(0.5)),
            c(row_h - 6.0),
            c(x1 + 4.0),
            c(y + row_h / 2.0),
            sig(*v)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use repurchase_core::hash::SplitMix64;

    const IDS: [&str; 6] = [
        "roc",
        "pr",
        "reliability",
        "gains",
        "score-distribution",
        "importance",
    ];

    struct Data {
        probs: Vec<f64>,
        raw: Vec<f64>,
        labels: Vec<bool>,
        importance: Vec<(String, f64)>,
    }

    fn data(n: usize, seed: u64) -> Data {
        let mut rng = SplitMix64::new(seed);
        let mut probs = Vec::with_capacity(n);
        let mut raw = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let p = 0.02 + 0.5 * rng.next_f64().powi(3);
            labels.push(rng.next_f64() < p);
            let noisy = (p + 0.1 * (rng.next_f64() - 0.5)).clamp(0.001, 0.999);
            probs.push(noisy);
            raw.push((noisy * 1.6).min(0.999));
        }
        let importance = (0..40)
            .map(|i| (format!("feature_{i:02}"), 1.0 / f64::from(i + 1)))
            .collect();
        Data {
            probs,
            raw,
            labels,
            importance,
        }
    }

    fn input(d: &Data) -> ReportInput<'_> {
        ReportInput {
            title: "Repurchase model 2025-06-30-abc123".to_string(),
            facts: vec![
                ("run date".to_string(), "2025-06-30".to_string()),
                ("calibration".to_string(), "platt".to_string()),
            ],
            probs: &d.probs,
            raw: &d.raw,
            labels: &d.labels,
            keys: &[],
            threshold: 0.2,
            top_k_fraction: 0.1,
            importance: &d.importance,
            auc_ci: Some((0.7, 0.8)),
            notes: vec!["Trained on generated data.".to_string()],
        }
    }

    /// The text of one `<svg id=…>` element (the timeline page's tests use it too).
    pub(super) fn svg_of<'h>(html: &'h str, id: &str) -> &'h str {
        let start = html
            .find(&format!("<svg id=\"{id}\""))
            .unwrap_or_else(|| panic!("svg {id} missing"));
        let end = html[start..].find("</svg>").expect("closed svg");
        &html[start..start + end]
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(escape("plain – ünïcode"), "plain – ünïcode");
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn every_input_string_is_escaped() {
        let mut d = data(200, 1);
        d.importance.push(("<img onerror=x>".to_string(), 99.0));
        let mut inp = input(&d);
        inp.title = "<script>alert(1)</script>".to_string();
        inp.facts
            .push(("a & b".to_string(), "\"quoted\" 'single'".to_string()));
        inp.notes.push("</p><script>bad()</script>".to_string());
        let html = render(&inp);
        assert!(!html.contains("<script"), "raw script tag in output");
        assert!(!html.contains("<img"), "raw img tag in output");
        assert!(html.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"));
        assert!(html.contains("<th>a &amp; b</th><td>&quot;quoted&quot; &#39;single&#39;</td>"));
        assert!(html.contains("&lt;/p&gt;&lt;script&gt;bad()&lt;/script&gt;"));
        assert!(html.contains("&lt;img onerror=x&gt;"));
    }

    #[test]
    fn every_plot_is_present_with_a_title_and_marks() {
        let d = data(2000, 2);
        let html = render(&input(&d));
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(html.ends_with("</html>\n"));
        assert_eq!(html.matches("<svg ").count(), IDS.len());
        for id in IDS {
            let svg = svg_of(&html, id);
            assert!(svg.contains(&format!("<title id=\"{id}-title\">")), "{id}");
            assert!(!svg.contains("no data"), "{id} shows no data");
        }
        for id in ["roc", "pr", "reliability", "gains"] {
            assert!(svg_of(&html, id).contains("<polyline"), "{id}");
        }
        assert!(svg_of(&html, "score-distribution").matches("<path").count() >= 2);
        assert_eq!(
            svg_of(&html, "importance").matches("<rect x=").count(),
            1 + 25
        );
        for heading in [
            "Headline metrics",
            "Operating points",
            "Notes",
            "cumulative gain",
        ] {
            assert!(html.contains(heading), "{heading}");
        }
        assert!(html.contains("(95% CI 0.700–0.800)"));
        // One row per decile in the decile table.
        assert_eq!(html.matches("<tr><td class=\"num\">").count(), 10);
    }

    #[test]
    fn importance_is_sorted_and_capped() {
        let d = data(100, 3);
        let mut shuffled = d.importance.clone();
        shuffled.reverse();
        let mut inp = input(&d);
        inp.importance = &shuffled;
        let html = render(&inp);
        let svg = svg_of(&html, "importance");
        let positions: Vec<usize> = (0..25)
            .map(|i| {
                svg.find(&format!(">feature_{i:02}<"))
                    .expect("top feature shown")
            })
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "descending order"
        );
        assert!(!svg.contains("feature_25"));
        assert!(html.contains("The 25 most important of 40 features"));
        assert_eq!(
            short_label(&"x".repeat(40)).chars().count(),
            MAX_LABEL_CHARS
        );
    }

    #[test]
    fn output_is_deterministic() {
        let d = data(1500, 4);
        let a = render(&input(&d));
        let copy = data(1500, 4);
        let b = render(&input(&copy));
        assert_eq!(a, b);
        assert_eq!(a, render(&input(&d)));
    }

    #[test]
    fn no_network_references() {
        let d = data(500, 5);
        let html = render(&input(&d));
        for needle in [
            "http",
            "src=",
            "url(",
            "@import",
            "<script",
            "<link",
            "xlink:href",
            "href=",
        ] {
            assert!(!html.contains(needle), "found {needle:?}");
        }
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let constant = vec![0.3; 50];
        let nan = vec![f64::NAN, 0.2, f64::NAN, 0.9];
        /// name, probs, raw, labels
        type Case = (&'static str, Vec<f64>, Vec<f64>, Vec<bool>);
        let cases: Vec<Case> = vec![
            ("empty", vec![], vec![], vec![]),
            ("one row", vec![0.4], vec![0.5], vec![true]),
            (
                "all positive",
                vec![0.1, 0.5, 0.9],
                vec![0.2, 0.6, 0.8],
                vec![true; 3],
            ),
            (
                "all negative",
                vec![0.1, 0.5, 0.9],
                vec![0.2, 0.6, 0.8],
                vec![false; 3],
            ),
            (
                "constant",
                constant.clone(),
                constant.clone(),
                (0..50).map(|i| i % 4 == 0).collect(),
            ),
            (
                "zeros",
                vec![0.0; 20],
                vec![],
                (0..20).map(|i| i < 3).collect(),
            ),
            ("nan", nan.clone(), nan, vec![true, false, true, false]),
            (
                "short labels",
                vec![0.1, 0.2, 0.9, 0.8],
                vec![0.5],
                vec![false, true],
            ),
            (
                "out of range",
                vec![-0.5, 1.5, 0.5],
                vec![7.0, -3.0, 0.5],
                vec![true, false, true],
            ),
        ];
        for (name, probs, raw, labels) in &cases {
            for importance in [vec![], vec![("only".to_string(), f64::NAN)]] {
                let inp = ReportInput {
                    title: (*name).to_string(),
                    facts: vec![],
                    probs,
                    raw,
                    labels,
                    keys: &[],
                    threshold: f64::NAN,
                    top_k_fraction: 0.0,
                    importance: &importance,
                    auc_ci: None,
                    notes: vec![],
                };
                let html = render(&inp);
                assert_eq!(html.matches("<svg ").count(), 6, "{name}");
                assert!(!html.contains("NaN"), "{name}: NaN printed");
                assert!(!html.contains("inf"), "{name}: infinity printed");
                assert_eq!(html, render(&inp), "{name}: not deterministic");
            }
        }
        let empty = render(&ReportInput {
            title: String::new(),
            facts: vec![],
            probs: &[],
            raw: &[],
            labels: &[],
            keys: &[],
            threshold: 0.5,
            top_k_fraction: 0.1,
            importance: &[],
            auc_ci: None,
            notes: vec![],
        });
        for id in IDS {
            assert!(svg_of(&empty, id).contains("no data"), "{id}");
        }
        let one_class = render(&ReportInput {
            title: String::new(),
            facts: vec![],
            probs: &[0.1, 0.2],
            raw: &[0.1, 0.2],
            labels: &[false, false],
            keys: &[],
            threshold: 0.5,
            top_k_fraction: 0.1,
            importance: &[],
            auc_ci: None,
            notes: vec![],
        });
        assert!(svg_of(&one_class, "roc").contains("no data"));
        assert!(svg_of(&one_class, "pr").contains("no data"));
        assert!(!svg_of(&one_class, "reliability").contains("no data"));
        assert!(!one_class.contains("probs has"));
    }

    #[test]
    fn length_mismatch_is_reported() {
        let html = render(&ReportInput {
            title: String::new(),
            facts: vec![],
            probs: &[0.1, 0.2, 0.3],
            raw: &[0.1],
            labels: &[false, true],
            keys: &[],
            threshold: 0.5,
            top_k_fraction: 0.1,
            importance: &[],
            auc_ci: None,
            notes: vec![],
        });
        assert!(
            html.contains("probs has 3 values but labels has 2; only the first 2 rows are used.")
        );
        assert!(html.contains("raw has 1 values but labels has 2"));
    }

    #[test]
    fn number_formatting() {
        assert_eq!(num(-0.0001, 3), "0.000");
        assert_eq!(num(f64::NAN, 3), "n/a");
        assert_eq!(num(f64::INFINITY, 1), "n/a");
        assert_eq!(pct(0.1234, 1), "12.3%");
        assert_eq!(pct_short(0.1), "10%");
        assert_eq!(pct_short(0.125), "12.5%");
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(sig(1234.6), "1235");
        assert_eq!(sig(0.01234), "0.012");
        let a = Axis::nice(0.0, 1.0, 5);
        assert_eq!(a.ticks.len(), 6);
        assert_eq!(a.label(0.6), "0.6");
        let a = Axis::nice(0.0, 3.2, 5);
        assert_eq!((a.hi, a.decimals), (4.0, 0));
        let a = Axis::nice(0.0, 2.4, 5);
        assert_eq!((a.ticks.len(), a.decimals), (6, 1));
        assert_eq!(a.label(a.ticks[3]), "1.5");
        let a = Axis::unit(0.31, 5);
        assert!((a.hi - 0.4).abs() < 1e-12);
        assert_eq!(Axis::nice(0.0, 1.0, 5).percent().label(0.4), "40%");
        assert_eq!(Axis::unit(0.0, 5).hi, 1.0);
    }
}
