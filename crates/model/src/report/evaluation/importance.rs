//! The "Feature importance" chart of the evaluation report: the top features as horizontal
//! bars, highest first, with the value at the end of each bar and the full name in its tooltip.

use super::TOP_FEATURES;
use crate::report::format::{c, shorten, sig};
use crate::report::page::escape;
use crate::report::svg::{Axis, MODEL, Plot, no_data_svg, svg_open};

/// Longest feature name drawn in full; longer names are cut (the full name is in a tooltip).
const MAX_LABEL_CHARS: usize = 40;

/// The `TOP_FEATURES` largest of `importance` (non-finite values count as 0), ties by name.
pub(crate) fn importance_svg(importance: &[(String, f64)]) -> String {
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
        y: Axis::plain(0.0, 1.0),
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
            escape(&shorten(name, MAX_LABEL_CHARS)),
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

    #[test]
    fn long_names_are_cut_and_whole_in_the_tooltip() {
        let long = "x".repeat(50);
        let svg = importance_svg(&[(long.clone(), 1.0)]);
        assert!(svg.contains(&format!("<g><title>{long}: 1.00</title>")));
        let cut = format!(">{}…</text>", "x".repeat(MAX_LABEL_CHARS - 1));
        assert!(svg.contains(&cut), "{svg}");
    }
}
