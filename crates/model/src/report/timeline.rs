//! A self-contained HTML page of metrics over time for the rolling-origin backtest: the x axis
//! is the sequence of weekly origins (categorical labels such as "2025-04-07"), and each panel
//! plots one family of metrics per origin as lines — AUC of the new procedure, the old procedure
//! and the oracle; mean predicted probability against the observed rate; ECE; Brier; flag
//! precision and recall; whatever the caller measured. Facts, tables and notes frame the plots.
//!
//! [`render`] turns a [`TimelineInput`] into one HTML5 document with the same guarantees as the
//! evaluation report of the parent module:
//! - **Self-contained.** No script and no network reference of any kind (no `src=`, no `url(`,
//!   no external style or font): one inline `<style>` and inline SVG.
//! - **Safe.** Every string taken from the input is HTML-escaped; panel ids, which become `id`
//!   attributes, are in addition reduced to `[a-z0-9-]` and made unique (with a warning).
//! - **Deterministic.** Same input ⇒ byte-identical output.
//! - **Total.** No input panics. NaN and infinite values are drawn as not measured, like `None`;
//!   a series whose length differs from the number of x labels is cut or padded with "not
//!   measured" and reported in a visible warning at the top of the page; a panel without a single
//!   finite value (or without origins or series) shows "no data" and why.
//!
//! Reading the plots: each origin is one slot of the x axis, in the order given. A line is broken
//! wherever its series was not measured, and every measured value is a dot whose tooltip reads
//! "series name, x label: value", so an origin measured alone between two gaps still shows. A
//! [`Role`] has the same colour and dash on every panel, so the old procedure looks the same in
//! the AUC panel as in the Brier panel. With many origins only every k-th tick label is written
//! (counted back from the latest origin, the one a reader looks for first), so labels never
//! overlap; every origin keeps a tick mark. All panels keep room for the widest legend on the
//! page, so their plot areas have one width and an origin sits at the same x on every panel.

use std::collections::BTreeSet;
use std::fmt::Write as _;

// `w!` (append formatted text to a String) is the parent's macro: it is in scope here because
// report.rs declares `mod timeline` after defining it.
use super::{
    Axis, GRID, INK, MODEL, Plot, RAW, STYLE, Swatch, TOPK, c, escape, figure, int, legend,
    no_data_svg, num, pct, svg_open,
};

/// How a series is drawn; the same role has the same colour and dash on every panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The procedure under evaluation: blue, solid.
    Model,
    /// What it is compared against, e.g. the old procedure: orange, dashed.
    Baseline,
    /// A bound the procedures cannot beat, e.g. a model that saw the outcome: green, dotted.
    Oracle,
    /// What actually happened, e.g. the observed repurchase rate: black, solid.
    Observed,
    /// Anything else: purple, dash-dot.
    Other,
}

/// The green the parent report uses for "perfect ranking", so an oracle reads the same there.
const ORACLE: &str = "#16a34a";

impl Role {
    fn colour(self) -> &'static str {
        match self {
            Role::Model => MODEL,
            Role::Baseline => RAW,
            Role::Oracle => ORACLE,
            Role::Observed => INK,
            Role::Other => TOPK,
        }
    }

    /// The SVG `stroke-dasharray`; empty is solid. Dashes keep the roles apart in print and
    /// for readers who cannot tell the colours apart.
    fn dash(self) -> &'static str {
        match self {
            Role::Model | Role::Observed => "",
            Role::Baseline => "6 3",
            Role::Oracle => "2 3",
            Role::Other => "8 3 2 3",
        }
    }
}

/// One line of a panel.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend entry and tooltip prefix, e.g. "new procedure".
    pub name: String,
    pub role: Role,
    /// One value per x label, by position. `None` (or a non-finite value) means not measured:
    /// the line is broken there.
    pub values: Vec<Option<f64>>,
}

/// One plot: several series over the common x axis.
#[derive(Debug, Clone)]
pub struct Panel {
    /// The `id` of the panel's `<svg>`, made of `[a-z0-9-]` (anything else is replaced, with a
    /// warning on the page). Must be unique on the page.
    pub id: String,
    pub title: String,
    pub y_title: String,
    /// Values are shares: the y axis and the tooltips print percentages.
    pub percent: bool,
    /// The y axis includes 0 (otherwise it spans the finite values only).
    pub from_zero: bool,
    pub series: Vec<Series>,
    /// Text under the plot: what the panel shows and how to read it.
    pub caption: String,
}

/// A plain table of text cells, shown after the panels.
#[derive(Debug, Clone)]
pub struct Table {
    pub caption: String,
    /// Column headings; may be empty (no header row).
    pub header: Vec<String>,
    /// Cells by row; short rows are padded with empty cells. Columns whose cells all read as
    /// numbers are right-aligned.
    pub rows: Vec<Vec<String>>,
}

/// Everything the timeline page shows.
#[derive(Debug, Clone)]
pub struct TimelineInput {
    /// Page heading and `<title>`.
    pub title: String,
    /// Key/value table shown at the top (run date, number of origins, horizon, …).
    pub facts: Vec<(String, String)>,
    /// Title of the shared x axis, e.g. "origin (week start)".
    pub x_title: String,
    /// One label per origin, in plotting order.
    pub x_labels: Vec<String>,
    pub panels: Vec<Panel>,
    pub tables: Vec<Table>,
    /// Plain-text paragraphs shown at the end.
    pub notes: Vec<String>,
}

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
/// Longest x label written under the axis (the full label is in the tooltips).
const X_LABEL_CHARS: usize = 16;
/// Approximate advance of one character of 12 px text, and the space kept between two tick
/// labels; both only decide how many tick labels fit.
const CHAR_PX: f64 = 7.0;
const LABEL_GAP: f64 = 12.0;
const DOT_RADIUS: f64 = 3.5;

const EXTRA_STYLE: &str = "
.panels figure{margin:0 0 28px}
.scroll{overflow-x:auto;margin:0 0 20px}
table.data caption{caption-side:top;text-align:left;font-weight:600;padding:0 0 6px;overflow-wrap:anywhere}
table.data td{overflow-wrap:anywhere}
";

/// Renders the whole timeline page as one HTML5 document.
pub fn render(input: &TimelineInput) -> String {
    let n = input.x_labels.len();
    let mut warnings = Vec::new();
    let ids = panel_ids(&input.panels, &mut warnings);
    for panel in &input.panels {
        for series in &panel.series {
            let len = series.values.len();
            if len < n {
                warnings.push(format!(
                    "Panel “{}”: series “{}” has {} values for {} origins; the last {} are drawn \
                     as not measured.",
                    panel.title,
                    series.name,
                    int(len as u64),
                    int(n as u64),
                    int((n - len) as u64)
                ));
            } else if len > n {
                warnings.push(format!(
                    "Panel “{}”: series “{}” has {} values for {} origins; the {} past the last \
                     origin are ignored.",
                    panel.title,
                    series.name,
                    int(len as u64),
                    int(n as u64),
                    int((len - n) as u64)
                ));
            }
        }
    }

    let mut out = String::with_capacity(64 * 1024);
    let title = escape(&input.title);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light\">\n",
    );
    w!(
        out,
        "<title>{title}</title>\n<style>{STYLE}{EXTRA_STYLE}</style>\n</head>\n<body>\n<main>\n"
    );
    w!(out, "<h1>{title}</h1>\n");
    match (input.x_labels.first(), input.x_labels.last()) {
        (Some(first), Some(last)) => w!(
            out,
            "<p class=\"lead\">Metrics of the rolling-origin backtest at {} origin{}, {} to {}. \
             A break in a line is an origin where that metric was not measured; each point's \
             tooltip gives its value.</p>\n",
            int(n as u64),
            if n == 1 { "" } else { "s" },
            escape(first),
            escape(last)
        ),
        _ => out.push_str(
            "<p class=\"lead\">Metrics of the rolling-origin backtest: no origins to show.</p>\n",
        ),
    }
    for warning in &warnings {
        w!(out, "<p class=\"warn\">{}</p>\n", escape(warning));
    }

    super::facts_section(&mut out, "Backtest", &input.facts);

    if !input.panels.is_empty() {
        // Every panel reserves room for the widest legend on the page, so all plot areas have
        // the same width and an origin sits at the same x on every panel.
        let legend_chars = input
            .panels
            .iter()
            .flat_map(|p| legend_labels(p, n))
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0);
        out.push_str("<section class=\"panels\">\n<h2>Over time</h2>\n");
        for (panel, id) in input.panels.iter().zip(&ids) {
            figure(
                &mut out,
                &panel_svg(panel, id, &input.x_title, &input.x_labels, legend_chars),
                &panel.caption,
            );
        }
        out.push_str("</section>\n");
    }

    if !input.tables.is_empty() {
        out.push_str("<section>\n<h2>Tables</h2>\n");
        for t in &input.tables {
            table(&mut out, t);
        }
        out.push_str("</section>\n");
    }

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

/// The `id` of each panel's `<svg>`: lower-cased, anything outside `[a-z0-9-]` replaced by `-`,
/// empty ones named `panel-<n>`, and made unique (also against the `<id>-title` element of every
/// other panel) with a numeric suffix. Every change is reported in `warnings`.
fn panel_ids(panels: &[Panel], warnings: &mut Vec<String>) -> Vec<String> {
    let mut used = BTreeSet::new();
    let mut ids = Vec::with_capacity(panels.len());
    for (i, panel) in panels.iter().enumerate() {
        let mut base: String = panel
            .id
            .chars()
            .map(|ch| {
                let ch = ch.to_ascii_lowercase();
                if ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' {
                    ch
                } else {
                    '-'
                }
            })
            .collect();
        if base.is_empty() {
            base = format!("panel-{}", i + 1);
        }
        let mut id = base.clone();
        let mut k = 2u64;
        while used.contains(&id) || used.contains(&format!("{id}-title")) {
            id = format!("{base}-{k}");
            k += 1;
        }
        used.insert(format!("{id}-title"));
        used.insert(id.clone());
        if id != panel.id {
            warnings.push(format!(
                "Panel “{}”: id “{}” is not a unique name made of a–z, 0–9 and “-”; its plot has \
                 id “{id}”.",
                panel.title, panel.id
            ));
        }
        ids.push(id);
    }
    ids
}

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

/// At most `max` characters, cut with an ellipsis.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Write every `k`-th tick label so that labels of `longest` characters, centred on slots of
/// `plot_width / n` pixels, do not overlap.
fn label_step(n: usize, longest: usize, plot_width: f64) -> usize {
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
fn legend_labels(panel: &Panel, n: usize) -> Vec<String> {
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
fn panel_svg(
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
    // The legend box's width as `super::legend` computes it, to reserve its room on the right.
    let longest = items
        .iter()
        .map(|(_, l)| l.chars().count())
        .max()
        .unwrap_or(0)
        .max(legend_chars);
    let legend_width = 34.0 + longest as f64 * 7.0;
    let legend_height = 8.0 + items.len() as f64 * 18.0;
    let height = min_height.max(TOP + legend_height + 12.0);

    let plot = Plot {
        left: LEFT,
        top: TOP,
        width: WIDTH - LEFT - LEGEND_GAP - legend_width - RIGHT_MARGIN,
        height: PLOT_HEIGHT,
        x: Axis {
            lo: -0.5,
            hi: n as f64 - 0.5,
            ticks: Vec::new(),
            decimals: 0,
            percent: false,
        },
        y,
    };
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

/// Whether a cell reads as a number ("0.734", "-1.2", "12.5%", "1,234"), for right alignment.
fn numeric(cell: &str) -> bool {
    let s = cell.trim();
    let body = s.strip_prefix(['-', '+', '−']).unwrap_or(s);
    body.chars().any(|ch| ch.is_ascii_digit())
        && body
            .chars()
            .all(|ch| ch.is_ascii_digit() || matches!(ch, '.' | ',' | '%'))
}

fn table(out: &mut String, t: &Table) {
    let cols = t
        .rows
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .max(t.header.len());
    // A column is numeric when it has a number and nothing but numbers and "missing" marks.
    let right: Vec<bool> = (0..cols)
        .map(|j| {
            let cells = || t.rows.iter().filter_map(|r| r.get(j)).map(|s| s.trim());
            cells().any(numeric)
                && cells()
                    .all(|s| s.is_empty() || matches!(s, "n/a" | "-" | "–" | "—") || numeric(s))
        })
        .collect();
    let class = |j: usize| if right[j] { " class=\"num\"" } else { "" };
    out.push_str("<div class=\"scroll\">\n<table class=\"data\">\n");
    if !t.caption.is_empty() {
        w!(out, "<caption>{}</caption>\n", escape(&t.caption));
    }
    if !t.header.is_empty() {
        out.push_str("<thead><tr>");
        for j in 0..cols {
            let h = t.header.get(j).map_or("", String::as_str);
            w!(out, "<th{}>{}</th>", class(j), escape(h));
        }
        out.push_str("</tr></thead>\n");
    }
    out.push_str("<tbody>\n");
    if t.rows.is_empty() {
        w!(
            out,
            "<tr><td class=\"muted\" colspan=\"{}\">no rows</td></tr>\n",
            cols.max(1)
        );
    }
    for row in &t.rows {
        out.push_str("<tr>");
        for j in 0..cols {
            let cell = row.get(j).map_or("", String::as_str);
            w!(out, "<td{}>{}</td>", class(j), escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::svg_of;

    /// `n` Monday labels from 2025-01-06, one week apart.
    fn weeks(n: usize) -> Vec<String> {
        let start = chrono::NaiveDate::from_ymd_opt(2025, 1, 6).expect("valid date");
        (0..n)
            .map(|i| (start + chrono::Duration::weeks(i as i64)).to_string())
            .collect()
    }

    /// A smooth wobble in `[base - amp, base + amp]`, different per `phase`.
    fn wave(n: usize, base: f64, amp: f64, phase: f64) -> Vec<Option<f64>> {
        (0..n)
            .map(|i| Some(base + amp * (i as f64 * 0.7 + phase).sin()))
            .collect()
    }

    fn series(name: &str, role: Role, values: Vec<Option<f64>>) -> Series {
        Series {
            name: name.to_string(),
            role,
            values,
        }
    }

    fn panel(id: &str, title: &str, percent: bool, series: Vec<Series>) -> Panel {
        Panel {
            id: id.to_string(),
            title: title.to_string(),
            y_title: format!("{title} (y)"),
            percent,
            from_zero: percent,
            series,
            caption: format!("What {title} shows."),
        }
    }

    fn sample(n: usize) -> TimelineInput {
        let mut old = wave(n, 0.66, 0.02, 1.0);
        if n > 5 {
            old[4] = None;
        }
        TimelineInput {
            title: "Backtest 2025-06-30".to_string(),
            facts: vec![
                ("origins".to_string(), n.to_string()),
                ("horizon".to_string(), "60 days".to_string()),
            ],
            x_title: "origin (week start)".to_string(),
            x_labels: weeks(n),
            panels: vec![
                panel(
                    "auc",
                    "ROC-AUC",
                    false,
                    vec![
                        series("new procedure", Role::Model, wave(n, 0.72, 0.02, 0.0)),
                        series("old procedure", Role::Baseline, old),
                        series("oracle", Role::Oracle, wave(n, 0.80, 0.01, 2.0)),
                    ],
                ),
                panel(
                    "rate",
                    "Predicted and observed rate",
                    true,
                    vec![
                        series("mean predicted", Role::Model, wave(n, 0.1, 0.01, 0.0)),
                        series("observed", Role::Observed, wave(n, 0.1, 0.02, 0.5)),
                    ],
                ),
                panel(
                    "ece",
                    "ECE",
                    false,
                    vec![
                        series("new procedure", Role::Model, wave(n, 0.01, 0.005, 0.0)),
                        series("old procedure", Role::Baseline, wave(n, 0.03, 0.01, 1.0)),
                    ],
                ),
                panel(
                    "flags",
                    "Flag precision and recall",
                    true,
                    vec![
                        series("precision", Role::Model, wave(n, 0.3, 0.05, 0.0)),
                        series("recall", Role::Other, wave(n, 0.4, 0.05, 1.0)),
                    ],
                ),
            ],
            tables: vec![Table {
                caption: "Mean over origins".to_string(),
                header: vec!["metric".to_string(), "new".to_string(), "old".to_string()],
                rows: vec![
                    vec!["AUC".to_string(), "0.720".to_string(), "0.660".to_string()],
                    vec!["flag precision".to_string(), "30.1%".to_string()],
                ],
            }],
            notes: vec!["Synthetic numbers.".to_string()],
        }
    }

    #[test]
    fn every_panel_is_present_with_title_lines_and_legend() {
        let input = sample(12);
        let html = render(&input);
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(html.ends_with("</html>\n"));
        assert_eq!(html.matches("<svg ").count(), input.panels.len());
        for p in &input.panels {
            let svg = svg_of(&html, &p.id);
            assert!(svg.contains(" class=\"wide\""), "{}", p.id);
            assert!(
                svg.contains(&format!("<title id=\"{}-title\">{}</title>", p.id, p.title)),
                "{}",
                p.id
            );
            assert!(svg.contains("<polyline"), "{}", p.id);
            assert!(svg.contains("class=\"legend\""), "{}", p.id);
            assert!(!svg.contains("no data"), "{}", p.id);
            for s in &p.series {
                assert!(svg.contains(&format!(">{}</text>", s.name)), "{}", s.name);
            }
            assert!(html.contains(&format!("<figcaption>{}</figcaption>", p.caption)));
        }
        // Percent panels label their axis and tooltips in percent, the others do not.
        assert!(svg_of(&html, "rate").contains("%</text>"));
        assert!(!svg_of(&html, "auc").contains('%'));
        assert!(svg_of(&html, "auc").contains("<title>new procedure, 2025-01-06: 0.7"));
        // Twelve ten-character dates do not fit side by side next to the legend: every other
        // one is written, counted back from the latest.
        let auc = svg_of(&html, "auc");
        assert_eq!(auc.matches("\">2025-").count(), 6);
        assert!(auc.contains("\">2025-03-24</text>") && !auc.contains("\">2025-03-17</text>"));
        assert!(html.contains("12 origins, 2025-01-06 to 2025-03-24"));
        assert!(html.contains("<caption>Mean over origins</caption>"));
        // The short row is padded; numeric columns are right-aligned.
        assert!(html.contains(
            "<tr><td>flag precision</td><td class=\"num\">30.1%</td><td class=\"num\"></td></tr>"
        ));
        assert!(html.contains("<p class=\"note\">Synthetic numbers.</p>"));
        assert!(!html.contains("class=\"warn\""), "no warning expected");
    }

    #[test]
    fn every_input_string_is_escaped() {
        let m = |k: &str| format!("<u>{k}</u>");
        let esc = |k: &str| format!("&lt;u&gt;{k}&lt;/u&gt;");
        let mut input = sample(4);
        input.title = m("title");
        input.facts = vec![(m("fk"), m("fv"))];
        input.x_title = m("xt");
        input.x_labels = vec![m("x0"), m("x1"), m("x2"), m("x3")];
        input.panels[0].title = m("pt");
        input.panels[0].y_title = m("yt");
        input.panels[0].caption = m("cap");
        input.panels[0].series[0].name = m("sn");
        input.panels[0].id = "\"><script>x</script>".to_string();
        input.tables[0].caption = m("tc");
        input.tables[0].header[0] = m("th");
        input.tables[0].rows[0][0] = m("td");
        input.notes = vec![m("note"), "'quoted' & \"double\"".to_string()];
        let html = render(&input);
        assert!(!html.contains("<u>"), "raw markup in output");
        assert!(!html.contains("<script"), "raw script tag in output");
        for k in [
            "title", "fk", "fv", "xt", "x0", "x3", "pt", "yt", "cap", "sn", "tc", "th", "td",
            "note",
        ] {
            assert!(html.contains(&esc(k)), "{k} not escaped");
        }
        assert!(html.contains("&#39;quoted&#39; &amp; &quot;double&quot;"));
        // The id is reduced to [a-z0-9-] and the change reported (escaped).
        assert!(html.contains("<svg id=\"---script-x--script-\""));
        assert!(html.contains("id “&quot;&gt;&lt;script&gt;x&lt;/script&gt;”"));
        // The lone series name also reaches the tooltips and the legend escaped.
        assert!(html.contains(&format!("<title>{}, {}: ", esc("sn"), esc("x0"))));
    }

    #[test]
    fn output_is_deterministic() {
        let a = render(&sample(30));
        assert_eq!(a, render(&sample(30)));
        assert_eq!(render(&sample(0)), render(&sample(0)));
    }

    #[test]
    fn gaps_break_the_line_and_lone_points_keep_a_dot() {
        let values = vec![
            Some(0.5),
            Some(0.6),
            None,
            Some(0.7),
            None,
            Some(0.8),
            Some(0.9),
            Some(f64::NAN),
            Some(0.75),
        ];
        let input = TimelineInput {
            title: "gaps".to_string(),
            facts: vec![],
            x_title: "origin".to_string(),
            x_labels: (0..values.len()).map(|i| format!("L{i}")).collect(),
            panels: vec![panel(
                "g",
                "gaps",
                false,
                vec![series("s", Role::Model, values)],
            )],
            tables: vec![],
            notes: vec![],
        };
        let html = render(&input);
        let svg = svg_of(&html, "g");
        // Runs 0–1 and 5–6 are lines; 3 and 8 stand alone; 2, 4 and the NaN at 7 are gaps.
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 6);
        assert!(svg.contains("<title>s, L3: 0.700</title>"));
        assert!(svg.contains("<title>s, L8: 0.750</title>"));
        for gap in ["L2:", "L4:", "L7:"] {
            assert!(!svg.contains(gap), "{gap} drawn");
        }
        assert!(!html.contains("NaN"));
    }

    #[test]
    fn roles_keep_their_style_on_every_panel() {
        let html = render(&sample(12));
        for id in ["auc", "ece"] {
            let svg = svg_of(&html, id);
            assert!(svg.contains(&format!(
                "stroke=\"{RAW}\" stroke-width=\"2.25\" stroke-dasharray=\"6 3\"/>"
            )));
            assert!(svg.contains(&format!("stroke=\"{MODEL}\" stroke-width=\"2.25\"/>")));
        }
    }

    #[test]
    fn plot_areas_line_up_across_panels() {
        let mut input = sample(12);
        input.panels[3].series[1].name = "a much longer series name than the others".to_string();
        let html = render(&input);
        // The frame of each plot area: same x and width on every panel, though the legends differ.
        let frame = |id: &str| {
            let svg = svg_of(&html, id);
            let end = svg
                .find(" fill=\"none\" stroke=\"#9ca3af\"/>")
                .expect("plot frame");
            let start = svg[..end].rfind("<rect ").expect("frame rect");
            svg[start..end].to_string()
        };
        let first = frame("auc");
        for p in &input.panels {
            assert_eq!(frame(&p.id), first, "{}", p.id);
        }
        // The long name is cut in the legend and whole in the tooltips.
        let flags = svg_of(&html, "flags");
        assert!(flags.contains(">a much longer series name t…</text>"));
        assert!(flags.contains("<title>a much longer series name than the others, 2025-01-06: "));
    }

    #[test]
    fn many_origins_thin_the_tick_labels() {
        let html = render(&sample(30));
        let svg = svg_of(&html, "auc");
        let shown = svg.matches("\">2025-").count();
        assert!((5..30).contains(&shown), "{shown} tick labels");
        // The latest origin is always labelled; every origin keeps its tooltip and tick.
        let last = weeks(30).pop().expect("30 labels");
        assert!(svg.contains(&format!("\">{last}</text>")));
        assert_eq!(svg.matches("<title>new procedure, ").count(), 30);

        assert_eq!(label_step(12, 10, 1000.0), 1);
        assert_eq!(label_step(12, 10, 700.0), 2);
        assert_eq!(label_step(30, 10, 600.0), 5);
        assert_eq!(label_step(0, 10, 600.0), 1);
        assert_eq!(label_step(3, 500, 10.0), 3);
        assert_eq!(label_step(3, 10, f64::NAN), 1);
    }

    #[test]
    fn panel_ids_are_sanitised_and_unique() {
        let mut input = sample(3);
        let ids = ["AUC", "auc", "", "x", "x-title", "ok-1"];
        input.panels = ids
            .iter()
            .map(|id| {
                panel(
                    id,
                    id,
                    false,
                    vec![series("s", Role::Model, wave(3, 0.5, 0.1, 0.0))],
                )
            })
            .collect();
        let mut warnings = Vec::new();
        let got = panel_ids(&input.panels, &mut warnings);
        assert_eq!(got, ["auc", "auc-2", "panel-3", "x", "x-title-2", "ok-1"]);
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        let html = render(&input);
        for id in &got {
            svg_of(&html, id);
        }
        assert_eq!(html.matches("class=\"warn\"").count(), 4);
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let n = 6;
        let cases: Vec<(&str, Vec<String>, Vec<Series>)> = vec![
            (
                "no origins",
                vec![],
                vec![series("a", Role::Model, wave(3, 0.5, 0.1, 0.0))],
            ),
            ("no series", weeks(n), vec![]),
            (
                "all none",
                weeks(n),
                vec![series("a", Role::Model, vec![None; n])],
            ),
            (
                "all non-finite",
                weeks(n),
                vec![series(
                    "a",
                    Role::Observed,
                    vec![Some(f64::NAN), Some(f64::INFINITY), Some(f64::NEG_INFINITY)],
                )],
            ),
            (
                "empty values",
                weeks(n),
                vec![series("a", Role::Other, vec![])],
            ),
            (
                "one origin",
                weeks(1),
                vec![series("a", Role::Model, vec![Some(0.3)])],
            ),
            (
                "constant",
                weeks(n),
                vec![series("a", Role::Model, vec![Some(0.8); n])],
            ),
            (
                "zeros",
                weeks(n),
                vec![series("a", Role::Model, vec![Some(0.0); n])],
            ),
            (
                "huge",
                weeks(n),
                vec![series(
                    "a",
                    Role::Oracle,
                    vec![
                        Some(f64::MAX),
                        Some(-f64::MAX),
                        Some(1.0),
                        Some(f64::MIN_POSITIVE),
                    ],
                )],
            ),
            (
                "tiny",
                weeks(n),
                vec![series("a", Role::Baseline, vec![Some(5e-324), Some(0.0)])],
            ),
        ];
        for (name, labels, series_list) in cases {
            for (percent, from_zero) in [(false, false), (true, true), (true, false)] {
                let mut p = panel("p", name, percent, series_list.clone());
                p.from_zero = from_zero;
                let input = TimelineInput {
                    title: name.to_string(),
                    facts: vec![],
                    x_title: String::new(),
                    x_labels: labels.clone(),
                    panels: vec![p],
                    tables: vec![Table {
                        caption: String::new(),
                        header: vec![],
                        rows: vec![],
                    }],
                    notes: vec![],
                };
                let html = render(&input);
                assert_eq!(html.matches("<svg ").count(), 1, "{name}");
                assert!(!html.contains("NaN"), "{name}: NaN printed");
                assert!(!html.contains("inf"), "{name}: infinity printed");
                assert_eq!(html, render(&input), "{name}: not deterministic");
            }
        }

        let empty = render(&TimelineInput {
            title: String::new(),
            facts: vec![],
            x_title: String::new(),
            x_labels: vec![],
            panels: vec![],
            tables: vec![],
            notes: vec![],
        });
        assert!(empty.contains("no origins to show"));
        assert!(!empty.contains("<svg"));

        let mut input = sample(8);
        input.panels[0].series[0].values = vec![None; 8];
        input.panels[1].series = vec![series("gone", Role::Model, vec![None; 8])];
        input.panels[2].series[0].values.truncate(5);
        input.panels[2].series[1]
            .values
            .extend([Some(0.1), Some(0.2)]);
        input.panels[3].series = vec![];
        let html = render(&input);
        let auc = svg_of(&html, "auc");
        assert!(!auc.contains("no data"));
        assert!(auc.contains(">new procedure (not measured)</text>"));
        let rate = svg_of(&html, "rate");
        assert!(rate.contains("no data") && rate.contains("no series was measured at any origin"));
        assert!(svg_of(&html, "flags").contains("no series given"));
        assert!(html.contains(
            "<p class=\"warn\">Panel “ECE”: series “new procedure” has 5 values for 8 origins; \
             the last 3 are drawn as not measured.</p>"
        ));
        assert!(html.contains(
            "<p class=\"warn\">Panel “ECE”: series “old procedure” has 10 values for 8 origins; \
             the 2 past the last origin are ignored.</p>"
        ));
        let no_origins = render(&sample(0));
        for p in &sample(0).panels {
            assert!(svg_of(&no_origins, &p.id).contains("no origins to plot"));
        }
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
        assert!(numeric("0.734") && numeric("-1.2") && numeric("12.5%") && numeric("1,234"));
        assert!(!numeric("2025-04-07") && !numeric("n/a") && !numeric("") && !numeric("-"));
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
    }

    #[test]
    fn no_network_references() {
        let html = render(&sample(30));
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
}
