//! The feature charts of the evaluation report: the top features as horizontal bars, highest
//! first, with the value at the end of each bar and the full name in its tooltip (the booster's
//! gain importance and the mean |Shapley value|), and the beeswarm of the strongest features'
//! Shapley values.

use super::TOP_FEATURES;
use crate::explain::FeatureEffect;
use crate::report::format::{c, shorten, sig};
use crate::report::page::escape;
use crate::report::svg::{Axis, INK, MODEL, Plot, no_data_svg, svg_open};
use repurchase_core::hash::mix64;

/// Longest feature name drawn in full; longer names are cut (the full name is in a tooltip).
const MAX_LABEL_CHARS: usize = 40;

/// The `TOP_FEATURES` largest of `importance` (non-finite values count as 0), ties by name.
pub(crate) fn importance_svg(importance: &[(String, f64)]) -> String {
    bars_svg(
        "importance",
        "Feature importance (total gain)",
        "no feature importance given",
        importance,
    )
}

/// Mean |Shapley value| of the `TOP_FEATURES` strongest features.
pub(crate) fn mean_abs_svg(effects: &[FeatureEffect]) -> String {
    let values: Vec<(String, f64)> = effects
        .iter()
        .map(|e| (e.name.clone(), e.mean_abs))
        .collect();
    bars_svg(
        "shap-importance",
        "Mean |Shapley value| on the test window (log-odds)",
        "no Shapley values given",
        &values,
    )
}

/// Horizontal bars of the `TOP_FEATURES` largest `values`, ties by name.
fn bars_svg(id: &str, title: &str, empty: &str, values: &[(String, f64)]) -> String {
    let width = 900.0;
    let mut top: Vec<(&str, f64)> = values
        .iter()
        .map(|(name, v)| (name.as_str(), if v.is_finite() { *v } else { 0.0 }))
        .collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    top.truncate(TOP_FEATURES);
    if top.is_empty() {
        return no_data_svg(id, width, 200.0, title, empty, true);
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
    svg_open(&mut out, id, width, height, title, true);
    plot.axes(&mut out, "", "", None);
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

/// Features in the beeswarm.
pub const BEESWARM_FEATURES: usize = 10;
/// Low and high ends of the colour scale of a feature's value; missing values are grey.
const LOW: &str = "#2563eb";
const HIGH: &str = "#dc2626";
const MISSING: &str = "#9ca3af";

/// `#rrggbb` between [`LOW`] (quantile 0) and [`HIGH`] (quantile 1).
fn value_colour(q: f64) -> String {
    let rgb = |hex: &str| -> [f64; 3] {
        [1, 3, 5].map(|i| f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)))
    };
    let (a, b) = (rgb(LOW), rgb(HIGH));
    let q = q.clamp(0.0, 1.0);
    let mix = |k: usize| (a[k] + (b[k] - a[k]) * q).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(0), mix(1), mix(2))
}

/// One band per feature with points (the strongest first): each sampled row a dot at its
/// Shapley value, spread vertically by a hash of its position so that dense values show as wide
/// bands, coloured by the row's value of the feature (low blue, high red, missing grey).
pub(crate) fn beeswarm_svg(effects: &[FeatureEffect]) -> String {
    let id = "shap-beeswarm";
    let title = "Shapley values of the strongest features, one dot per sampled test row";
    let width = 900.0;
    let shown: Vec<&FeatureEffect> = effects
        .iter()
        .filter(|e| !e.points.is_empty())
        .take(BEESWARM_FEATURES)
        .collect();
    let values = || shown.iter().flat_map(|e| e.points.iter().map(|p| p.0));
    let (lo, hi) = values().fold((0.0f64, 0.0f64), |(l, h), v| {
        if v.is_finite() {
            (l.min(v), h.max(v))
        } else {
            (l, h)
        }
    });
    if !values().any(f64::is_finite) {
        return no_data_svg(id, width, 200.0, title, "no Shapley values given", true);
    }
    let row_h = 34.0;
    let plot = Plot {
        left: 300.0,
        top: 36.0,
        width: 550.0,
        height: shown.len() as f64 * row_h,
        x: Axis::nice(lo, if hi > lo { hi } else { lo + 1.0 }, 6),
        y: Axis::plain(0.0, 1.0),
    };
    let height = plot.bottom() + 80.0;
    let mut out = String::new();
    svg_open(&mut out, id, width, height, title, true);
    plot.axes(
        &mut out,
        "Shapley value (log-odds; right of 0 raises the score)",
        "",
        None,
    );
    let zero = c(plot.px(0.0));
    w!(
        out,
        "<line x1=\"{zero}\" y1=\"{}\" x2=\"{zero}\" y2=\"{}\" stroke=\"{INK}\" stroke-opacity=\"0.5\"/>\n",
        c(plot.top),
        c(plot.bottom())
    );
    for (k, e) in shown.iter().enumerate() {
        let mid = plot.top + (k as f64 + 0.5) * row_h;
        w!(
            out,
            "<g><title>{}: mean |Shapley value| {}</title>\
             <text x=\"{}\" y=\"{}\" dy=\"0.32em\" text-anchor=\"end\">{}</text>\n",
            escape(&e.name),
            sig(e.mean_abs),
            c(plot.left - 8.0),
            c(mid),
            escape(&shorten(&e.name, MAX_LABEL_CHARS))
        );
        for (i, &(v, q)) in e.points.iter().enumerate() {
            if !v.is_finite() {
                continue;
            }
            let spread = (mix64(i as u64) >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let colour = q.map_or_else(|| MISSING.to_string(), value_colour);
            w!(
                out,
                "<circle cx=\"{}\" cy=\"{}\" r=\"2.2\" fill=\"{colour}\" fill-opacity=\"0.7\"/>",
                c(plot.px(v)),
                c(mid + spread * row_h * 0.8)
            );
        }
        out.push_str("</g>\n");
    }
    // Colour legend: value low → high, and missing.
    let ly = plot.bottom() + 52.0;
    let steps = 10;
    for s in 0..steps {
        w!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"10\" fill=\"{}\"/>",
            c(plot.left + 70.0 + s as f64 * 12.0),
            c(ly - 5.0),
            value_colour(s as f64 / (steps - 1) as f64)
        );
    }
    w!(
        out,
        "\n<text class=\"small\" x=\"{}\" y=\"{}\" dy=\"0.32em\" text-anchor=\"end\">value: low</text>\
         <text class=\"small\" x=\"{}\" y=\"{}\" dy=\"0.32em\">high</text>\
         <circle cx=\"{}\" cy=\"{}\" r=\"4\" fill=\"{MISSING}\"/>\
         <text class=\"small\" x=\"{}\" y=\"{}\" dy=\"0.32em\">missing</text>\n</svg>\n",
        c(plot.left + 64.0),
        c(ly),
        c(plot.left + 76.0 + steps as f64 * 12.0),
        c(ly),
        c(plot.left + 240.0),
        c(ly),
        c(plot.left + 248.0),
        c(ly)
    );
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

    #[test]
    fn the_beeswarm_draws_every_point_of_the_strongest_features_coloured_by_value() {
        let effect = |name: &str, points: Vec<(f64, Option<f64>)>| FeatureEffect {
            name: name.into(),
            mean_abs: 0.1,
            points,
        };
        let effects = [
            effect(
                "age",
                vec![(-0.5, Some(0.0)), (0.25, Some(1.0)), (0.1, None)],
            ),
            effect("country", vec![(0.05, Some(0.5)), (f64::NAN, Some(0.5))]),
            effect("unused", vec![]),
        ];
        let svg = beeswarm_svg(&effects);
        // 4 finite points + 1 legend dot.
        assert_eq!(svg.matches("<circle").count(), 5, "{svg}");
        assert!(svg.contains(&format!("fill=\"{LOW}\" fill-opacity")));
        assert!(svg.contains(&format!("fill=\"{HIGH}\" fill-opacity")));
        assert!(svg.contains(&format!("fill=\"{MISSING}\" fill-opacity")));
        assert!(svg.contains(">age</text>") && svg.contains(">country</text>"));
        assert!(!svg.contains(">unused</text>"));
        assert_eq!(value_colour(0.5), "#814589");
        assert!(beeswarm_svg(&[]).contains("no Shapley values given"));
        assert!(beeswarm_svg(&[effect("x", vec![(f64::NAN, None)])]).contains("no Shapley values"));
    }
}
