//! The evaluation report's tables: headline metrics (calibrated beside raw), a confusion matrix
//! per operating point, and the score deciles. Numbers are formatted by `format.rs` so that they
//! read the same as on the charts.

use crate::metrics::{Confusion, DecileRow, Summary};
use crate::report::format::{int, num, opt, pct};
use crate::report::page::escape;

/// Headline metrics of the calibrated scores, with the raw model's beside them when given.
pub(crate) fn metrics_table(
    out: &mut String,
    s: &Summary,
    raw: Option<&Summary>,
    auc_ci: Option<(f64, f64)>,
) {
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

/// One operating point: its confusion matrix and what flagging at it yields.
pub(crate) fn confusion_block(out: &mut String, heading: &str, explanation: &str, cm: &Confusion) {
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

/// The decile table's columns: header and cell, so that the two cannot drift apart.
type DecileColumn = (&'static str, fn(&DecileRow) -> String);
const DECILE_COLUMNS: [DecileColumn; 8] = [
    ("decile", |d| d.decile.to_string()),
    ("rows", |d| int(d.rows)),
    ("positives", |d| int(d.positives)),
    ("rate", |d| pct(d.rate, 1)),
    ("lift", |d| num(d.lift, 2)),
    ("cumulative gain", |d| pct(d.cumulative_gain, 1)),
    ("min score", |d| num(d.min_score, 4)),
    ("max score", |d| num(d.max_score, 4)),
];

/// One row per score decile, highest scores first.
pub(crate) fn decile_table(out: &mut String, deciles: &[DecileRow]) {
    if deciles.is_empty() {
        out.push_str("<p class=\"muted\">No rows, so no decile table.</p>\n");
        return;
    }
    out.push_str("<table class=\"deciles\">\n<thead><tr>");
    for (header, _) in DECILE_COLUMNS {
        w!(out, "<th class=\"num\">{header}</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for d in deciles {
        out.push_str("<tr>");
        for (_, cell) in DECILE_COLUMNS {
            w!(out, "<td class=\"num\">{}</td>", cell(d));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}
