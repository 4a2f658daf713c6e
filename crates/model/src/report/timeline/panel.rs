//! One panel of the timeline page: an `<svg>` of several series over the shared categorical x
//! axis of origins, a line per run of measured origins, a dot with a tooltip per measured value,
//! thinned tick labels, and the legend to the right of the plot.
//!
//! The plot area's width depends on the widest legend on the whole page (passed in), not this
//! panel's, so that an origin sits at the same x on every panel.

use super::{Panel, Series};
use crate::report::format::{c, num, pct, shorten};
use crate::report::svg::{
    Axis, GRID, Plot, Swatch, legend, legend_height, legend_width, no_data_svg, svg_open,
};

const WIDTH: f64 = 900.0;
const LEFT: f64 = 72.0;
const TOP: f64 = 36.0;
const PLOT_HEIGHT: f64 = 230.0;
/// Room under the plot for the tick labels and the x title.
const BELOW: f64 = 52.0;
/// Space between the plot frame and the legend, which sits to the right of the plot so that it
/// never hides a line.
const LEGEND_GAP: f64 = 14.0;
const RIGHT_MARGIN: f64 = 12.0;
/// Longest series name written in the legend (the full name is in the tooltips).
const LEGEND_CHARS: usize = 28;
const DOT_RADIUS: f64 = 3.5;

/// The series' value at each of the `n` origins: missing positions and non-finite values are
/// `None`, values past the last origin are dropped.
fn measured(series: &Series, n: usize) -> Vec<Option<f64>> {
    (0..n)
        .map(|i| {
            series
                .values
                .get(i)
                .copied()
                .flatten()
                .filter(|v| v.is_finite())
        })
        .collect()
}

/// Write every `k`-th tick label so that labels of `longest` characters, centred on slots of
/// `plot_width / n` pixels, do not overlap.
fn label_step(n: usize, longest: usize, plot_width: f64) -> usize {
    // Approximate advance of one character of 12 px text, and the space kept between two tick
    // labels; both only decide how many tick labels fit.
    const CHAR_PX: f64 = 7.0;
    const LABEL_GAP: f64 = 12.0;
    if n == 0 || plot_width.is_nan() || plot_width <= 0.0 {
        return 1;
    }
    let need = longest as f64 * CHAR_PX + LABEL_GAP;
    let slot = plot_width / n as f64;
    ((need / slot).ceil() as usize).clamp(1, n)
}

/// The y axis over the finite values `lo..=hi`.
fn y_axis(lo: f64, hi: f64, from_zero: bool, percent: bool) -> Axis {
    // Values near ±f64::MAX would make the span infinite, and Axis::nice would then enumerate
    // ticks over the whole i64 range; a quarter of the largest float keeps every span finite.
    let limit = f64::MAX / 4.0;
    let (mut lo, mut hi) = (lo.clamp(-limit, limit), hi.clamp(-limit, limit));
    if from_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    if hi - lo <= 1e-9 * lo.abs().max(hi.abs()).max(1.0) {
        // A flat line: room on both sides (above only when it sits on a zero-based axis), rather
        // than Axis::nice's unit-wide fallback, which would squash a constant 0.8 to the bottom.
        let pad = if hi.abs() > 1e-9 { hi.abs() * 0.1 } else { 1.0 };
        hi += pad;
        if !(from_zero && lo == 0.0) {
            lo -= pad;
        }
    }
    let axis = Axis::nice(lo, hi, 5);
    if percent { axis.percent() } else { axis }
}

/// A value as its tooltip shows it: a little more precise than the axis labels.
fn value_text(v: f64, axis: &Axis) -> String {
    if axis.percent {
        pct(v, axis.decimals.saturating_sub(2) + 1)
    } else {
        num(v, axis.decimals + 2)
    }
}

/// The legend entry of each series of `panel` over `n` origins: its name, cut to
/// `LEGEND_CHARS`, and "(not measured)" when it has no finite value.
pub(crate) fn legend_labels(panel: &Panel, n: usize) -> Vec<String> {
    panel
        .series
        .iter()
        .map(|s| {
            let mut label = shorten(&s.name, LEGEND_CHARS);
            if measured(s, n).iter().all(Option::is_none) {
                label.push_str(" (not measured)");
            }
            label
        })
        .collect()
}

/// One panel's `<svg>`. `legend_chars` is the longest legend label on the page, which sets the
/// room kept for the legend and hence the width of the plot area.
pub(crate) fn panel_svg(
    panel: &Panel,
    id: &str,
    x_title: &str,
    x_labels: &[String],
    legend_chars: usize,
) -> String {
    let n = x_labels.len();
    let min_height = TOP + PLOT_HEIGHT + BELOW;
    let no_data = |reason: &str| no_data_svg(id, WIDTH, min_height, &panel.title, reason, true);
    if n == 0 {
        return no_data("no origins to plot");
    }
    if panel.series.is_empty() {
        return no_data("no series given");
    }
    let values: Vec<Vec<Option<f64>>> = panel.series.iter().map(|s| measured(s, n)).collect();
    let (lo, hi) = values
        .iter()
        .flatten()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if !(lo.is_finite() && hi.is_finite()) {
        return no_data("no series was measured at any origin");
    }
    let y = y_axis(lo, hi, panel.from_zero, panel.percent);

    let items: Vec<(Swatch, String)> = panel
        .series
        .iter()
        .zip(legend_labels(panel, n))
        .map(|(s, label)| (Swatch::Line(s.role.colour(), s.role.dash()), label))
        .collect();
    // Room on the right for a legend as wide as the widest on the page.
    let longest = items
        .iter()
        .map(|(_, l)| l.chars().count())
        .max()
        .unwrap_or(0)
        .max(legend_chars);
    let height = min_height.max(TOP + legend_height(items.len()) + 12.0);

    let plot = Plot {
        left: LEFT,
        top: TOP,
        width: WIDTH - LEFT - LEGEND_GAP - legend_width(longest) - RIGHT_MARGIN,
        height: PLOT_HEIGHT,
        x: Axis::plain(-0.5, n as f64 - 0.5),
        y,
    };
    // The longest x label written under the axis (the full label is in the tooltips).
    const X_LABEL_CHARS: usize = 16;
    let shown: Vec<String> = x_labels.iter().map(|l| shorten(l, X_LABEL_CHARS)).collect();
    let widest = shown.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let step = label_step(n, widest, plot.width);
    let tick_labels: Vec<(f64, String)> = (0..n)
        .filter(|i| (n - 1 - i).is_multiple_of(step))
        .map(|i| (i as f64, shown[i].clone()))
        .collect();

    let mut out = String::with_capacity(8 * 1024);
    svg_open(&mut out, id, WIDTH, height, &panel.title, true);
    plot.axes(&mut out, x_title, &panel.y_title, Some(&tick_labels));
    // The axes draw no vertical grid for categorical labels: a light line at each labelled
    // origin, and a tick mark at every origin so unlabelled ones can still be counted.
    out.push_str("<g class=\"origins\">\n");
    for (x, _) in &tick_labels {
        let px = c(plot.px(*x));
        w!(
            out,
            "<line x1=\"{px}\" y1=\"{}\" x2=\"{px}\" y2=\"{}\" stroke=\"{GRID}\"/>\n",
            c(plot.top),
            c(plot.top + plot.height)
        );
    }
    for i in 0..n {
        let px = c(plot.px(i as f64));
        let bottom = plot.top + plot.height;
        w!(
            out,
            "<line x1=\"{px}\" y1=\"{}\" x2=\"{px}\" y2=\"{}\" stroke=\"#9ca3af\"/>\n",
            c(bottom),
            c(bottom + 4.0)
        );
    }
    out.push_str("</g>\n");

    for (series, vals) in panel.series.iter().zip(&values) {
        let (colour, dash) = (series.role.colour(), series.role.dash());
        // One polyline per run of consecutive measured origins, so a gap breaks the line
        // (Plot::polyline draws nothing for a run of one; its dot below still shows it).
        let mut run: Vec<(f64, f64)> = Vec::new();
        for (i, v) in vals.iter().enumerate() {
            match v {
                Some(v) => run.push((i as f64, *v)),
                None => {
                    plot.polyline(&mut out, &run, colour, dash);
                    run.clear();
                }
            }
        }
        plot.polyline(&mut out, &run, colour, dash);
        for (i, v) in vals.iter().enumerate() {
            if let Some(v) = v {
                plot.dot(
                    &mut out,
                    (i as f64, *v),
                    DOT_RADIUS,
                    colour,
                    &format!(
                        "{}, {}: {}",
                        series.name,
                        x_labels[i],
                        value_text(*v, &plot.y)
                    ),
                );
            }
        }
    }
    legend(
        &mut out,
        plot.left + plot.width + LEGEND_GAP,
        plot.top,
        false,
        &items,
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_step_keeps_tick_labels_apart() {
        assert_eq!(label_step(12, 10, 1000.0), 1);
        assert_eq!(label_step(12, 10, 700.0), 2);
        assert_eq!(label_step(30, 10, 600.0), 5);
        assert_eq!(label_step(0, 10, 600.0), 1);
        assert_eq!(label_step(3, 500, 10.0), 3);
        assert_eq!(label_step(3, 10, f64::NAN), 1);
    }

    #[test]
    fn flat_and_zero_based_axes() {
        let a = y_axis(0.8, 0.8, false, false);
        assert!(a.lo < 0.8 && a.hi > 0.8 && a.hi - a.lo < 1.0, "{a:?}");
        let a = y_axis(0.2, 0.35, true, true);
        assert_eq!((a.lo, a.hi, a.percent), (0.0, 0.4, true));
        assert_eq!(value_text(0.1234, &a), "12.3%");
        let a = y_axis(0.0, 0.0, true, false);
        assert_eq!((a.lo, a.hi), (0.0, 1.0));
        let a = y_axis(-f64::MAX, f64::MAX, false, false);
        assert!(a.ticks.len() < 10 && a.lo.is_finite() && a.hi.is_finite());
    }
}
