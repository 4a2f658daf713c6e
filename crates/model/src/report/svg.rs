//! The chart primitives the pages draw with: the palette, a linear [`Axis`] with "nice" ticks,
//! a [`Plot`] area that maps data to pixels and draws the axes and marks (lines, polylines,
//! dots and diamonds with tooltips), [`legend`]s, the accessible `<svg>` opening and the
//! "no data" placeholder.
//!
//! Every element is written as text with one-decimal coordinates (`format::c`), so a chart is
//! the same bytes wherever it is rendered. Marks carry a `<title>` (the browser's tooltip, and
//! what a screen reader reads), and each `<svg>` has an `id`, `role="img"` and the title it is
//! labelled by: the page's tests and its stylesheet find the charts by these.

use super::format::{c, num, pct};
use super::page::escape;

// The palette. A colour means the same thing on every chart of both pages.
/// Text, the operating threshold and observed values.
pub(crate) const INK: &str = "#111827";
/// The model under evaluation (calibrated scores, the new procedure).
pub(crate) const MODEL: &str = "#2563eb";
/// The raw (uncalibrated) model, and the baseline it is compared against.
pub(crate) const RAW: &str = "#ea580c";
/// Customers who repurchased.
pub(crate) const POSITIVE: &str = "#ea580c";
/// Customers who did not.
pub(crate) const NEGATIVE: &str = "#2563eb";
/// Reference lines: random ranking, perfect calibration, the base rate.
pub(crate) const REFERENCE: &str = "#6b7280";
/// The top-k operating point, and series with no other role.
pub(crate) const TOPK: &str = "#7c3aed";
/// The best achievable: the perfect ranking of the gains chart, the oracle of the timeline.
pub(crate) const ORACLE: &str = "#16a34a";
/// Grid lines.
pub(crate) const GRID: &str = "#e5e7eb";

/// A linear axis with "nice" ticks (steps of 1, 2, 2.5 or 5 times a power of ten).
#[derive(Debug, Clone)]
pub(crate) struct Axis {
    pub(crate) lo: f64,
    pub(crate) hi: f64,
    pub(crate) ticks: Vec<f64>,
    /// Decimals of the tick labels (and, with two more, of values read off the axis).
    pub(crate) decimals: usize,
    /// Labels are percentages.
    pub(crate) percent: bool,
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
    pub(crate) fn nice(lo: f64, hi: f64, target: usize) -> Axis {
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
    pub(crate) fn unit(max: f64, target: usize) -> Axis {
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

    /// `[lo, hi]` with no ticks: for categories at whole numbers, whose labels the chart writes
    /// itself (deciles, origins, the rows of a bar chart).
    pub(crate) fn plain(lo: f64, hi: f64) -> Axis {
        Axis {
            lo,
            hi,
            ticks: Vec::new(),
            decimals: 0,
            percent: false,
        }
    }

    /// The same axis labelled in percent.
    pub(crate) fn percent(mut self) -> Axis {
        self.percent = true;
        self
    }

    pub(crate) fn label(&self, v: f64) -> String {
        if self.percent {
            pct(v, self.decimals.saturating_sub(2))
        } else {
            num(v, self.decimals)
        }
    }
}

/// A plotting area inside an SVG: pixel box plus the two axes.
pub(crate) struct Plot {
    pub(crate) left: f64,
    pub(crate) top: f64,
    pub(crate) width: f64,
    pub(crate) height: f64,
    pub(crate) x: Axis,
    pub(crate) y: Axis,
}

impl Plot {
    pub(crate) fn px(&self, v: f64) -> f64 {
        let span = self.x.hi - self.x.lo;
        let t = if span > 0.0 {
            ((v - self.x.lo) / span).clamp(0.0, 1.0)
        } else {
            0.5
        };
        self.left + t * self.width
    }

    pub(crate) fn py(&self, v: f64) -> f64 {
        let span = self.y.hi - self.y.lo;
        let t = if span > 0.0 {
            ((v - self.y.lo) / span).clamp(0.0, 1.0)
        } else {
            0.5
        };
        self.top + self.height - t * self.height
    }

    pub(crate) fn bottom(&self) -> f64 {
        self.top + self.height
    }

    pub(crate) fn right(&self) -> f64 {
        self.left + self.width
    }

    /// Grid, frame, tick labels and axis titles. `x_labels` replaces the numeric x tick labels
    /// (used for the categorical decile axis).
    pub(crate) fn axes(
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
    pub(crate) fn line(
        &self,
        out: &mut String,
        a: (f64, f64),
        b: (f64, f64),
        colour: &str,
        dash: &str,
    ) {
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
    pub(crate) fn polyline(
        &self,
        out: &mut String,
        points: &[(f64, f64)],
        colour: &str,
        dash: &str,
    ) {
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

    pub(crate) fn dot(&self, out: &mut String, p: (f64, f64), r: f64, colour: &str, tip: &str) {
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

    pub(crate) fn diamond(&self, out: &mut String, p: (f64, f64), colour: &str, tip: &str) {
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
pub(crate) enum Swatch {
    Line(&'static str, &'static str),
    Dot(&'static str),
    Diamond(&'static str),
    Area(&'static str),
}

/// Width of a legend box whose longest label has `longest_chars` characters (at about 7 px a
/// character); a chart that keeps room for its legend reserves this much.
pub(crate) fn legend_width(longest_chars: usize) -> f64 {
    34.0 + longest_chars as f64 * 7.0
}

/// Height of a legend box of `entries` entries, 18 px each.
pub(crate) fn legend_height(entries: usize) -> f64 {
    8.0 + entries as f64 * 18.0
}

/// A legend box whose top-left (or top-right, when `right_aligned`) corner is at `(x, y)`.
pub(crate) fn legend(
    out: &mut String,
    x: f64,
    y: f64,
    right_aligned: bool,
    items: &[(Swatch, String)],
) {
    if items.is_empty() {
        return;
    }
    let longest = items
        .iter()
        .map(|(_, l)| l.chars().count())
        .max()
        .unwrap_or(0);
    let width = legend_width(longest);
    let height = legend_height(items.len());
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
pub(crate) fn svg_open(
    out: &mut String,
    id: &str,
    width: f64,
    height: f64,
    title: &str,
    wide: bool,
) {
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
pub(crate) fn no_data_svg(
    id: &str,
    width: f64,
    height: f64,
    title: &str,
    reason: &str,
    wide: bool,
) -> String {
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

/// The text of one `<svg id=…>` element of a page, for tests.
#[cfg(test)]
pub(crate) fn svg_of<'h>(html: &'h str, id: &str) -> &'h str {
    let start = html
        .find(&format!("<svg id=\"{id}\""))
        .unwrap_or_else(|| panic!("svg {id} missing"));
    let end = html[start..].find("</svg>").expect("closed svg");
    &html[start..start + end]
}

/// Asserts that a page rendered from degenerate input (`name`) has `svgs` charts, prints no NaN
/// or infinity, and renders to the same bytes the second time (`again`).
#[cfg(test)]
pub(crate) fn assert_sane_page(html: &str, again: &str, svgs: usize, name: &str) {
    assert_eq!(html.matches("<svg ").count(), svgs, "{name}");
    assert!(!html.contains("NaN"), "{name}: NaN printed");
    assert!(!html.contains("inf"), "{name}: infinity printed");
    assert_eq!(html, again, "{name}: not deterministic");
}

/// Asserts that a page loads nothing from elsewhere: no URL, script, stylesheet link or image
/// source, so that it renders the same offline.
#[cfg(test)]
pub(crate) fn assert_self_contained(html: &str) {
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

#[cfg(test)]
mod tests {
    use super::Axis;

    #[test]
    fn axes_have_nice_ticks() {
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
