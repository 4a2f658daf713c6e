//! The "Ranking" charts of the evaluation report: the ROC curve and the precision–recall curve,
//! each with the two operating points of the page (the threshold as a dot, top-k as a diamond)
//! so a reader sees where on the curve the confusion matrices above it sit.

use super::{H, W, square_plot};
use crate::metrics::{self, Confusion, Summary};
use crate::report::format::{num, opt, pct};
use crate::report::svg::{
    Axis, INK, MODEL, REFERENCE, Swatch, TOPK, legend, legend_height, no_data_svg, svg_open,
};

/// Points kept on the ROC and PR curves (plenty for a 480-pixel plot).
const CURVE_POINTS: usize = 400;

/// Where an operating point sits on the ROC curve: (false positive rate, recall).
fn operating_point(cm: &Confusion) -> (f64, f64) {
    let neg = cm.fp + cm.tn;
    let fpr = if neg == 0 {
        0.0
    } else {
        cm.fp as f64 / neg as f64
    };
    (fpr, cm.recall)
}

pub(crate) fn roc_svg(
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
        plot.bottom() - 8.0 - legend_height(4),
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

pub(crate) fn pr_svg(
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
