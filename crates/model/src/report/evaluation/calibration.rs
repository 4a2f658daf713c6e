//! The "Calibration" charts of the evaluation report: the reliability curve (observed rate
//! against mean predicted probability per bin, raw and calibrated, with a strip of rows per bin
//! under it) and the distribution of the calibrated probability by outcome.

use super::{H, W, square_plot};
use crate::metrics::ReliabilityBin;
use crate::report::format::{c, int, num, pct};
use crate::report::page::escape;
use crate::report::svg::{
    Axis, INK, MODEL, NEGATIVE, POSITIVE, Plot, RAW, REFERENCE, Swatch, legend, no_data_svg,
    svg_open,
};

/// Bins of the score histograms.
const HIST_BINS: usize = 25;

pub(crate) fn reliability_svg(
    calibrated: &[ReliabilityBin],
    raw: Option<&[ReliabilityBin]>,
) -> String {
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

pub(crate) fn distribution_svg(probs: &[f64], labels: &[bool], threshold: f64) -> String {
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
