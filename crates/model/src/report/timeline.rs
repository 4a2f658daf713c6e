//! A self-contained HTML page of metrics over time for the rolling-origin backtest: the x axis
//! is the sequence of weekly origins (categorical labels such as "2025-04-07"), and each panel
//! plots one family of metrics per origin as lines — AUC of the new procedure, the old procedure
//! and the oracle; mean predicted probability against the observed rate; ECE; Brier; flag
//! precision and recall; whatever the caller measured. Facts, tables and notes frame the plots.
//!
//! [`render`] turns a [`TimelineInput`] into one HTML5 document with the same guarantees as the
//! evaluation report (see the parent module):
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
//!
//! This file holds the input types and assembles the page; `timeline/panel.rs` draws one panel
//! and `timeline/table.rs` writes the tables.

use std::collections::BTreeSet;

use super::format::int;
use super::page::{self, escape};
use super::svg::{INK, MODEL, ORACLE, RAW, TOPK};

mod panel;
mod table;
#[cfg(test)]
mod tests;

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
    /// How the line is drawn (colour and dash).
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
    /// Title drawn above the plot (also the `<svg>`'s accessible title).
    pub title: String,
    /// Title of the y axis.
    pub y_title: String,
    /// Values are shares: the y axis and the tooltips print percentages.
    pub percent: bool,
    /// The y axis includes 0 (otherwise it spans the finite values only).
    pub from_zero: bool,
    /// The lines, drawn and listed in the legend in this order.
    pub series: Vec<Series>,
    /// Text under the plot: what the panel shows and how to read it.
    pub caption: String,
}

/// A plain table of text cells, shown after the panels.
#[derive(Debug, Clone)]
pub struct Table {
    /// Title shown above the table; empty: none.
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
    /// What the x axis's points are, plural, for the lead sentence ("origins of the rolling-origin
    /// backtest", "run dates").
    pub points: String,
    /// Heading of the facts table.
    pub facts_heading: String,
    /// Key/value table shown at the top (run date, number of origins, horizon, …).
    pub facts: Vec<(String, String)>,
    /// Title of the shared x axis, e.g. "origin (week start)".
    pub x_title: String,
    /// One label per origin, in plotting order.
    pub x_labels: Vec<String>,
    /// The plots, in page order, all over `x_labels`.
    pub panels: Vec<Panel>,
    /// Tables shown after the panels, in page order.
    pub tables: Vec<Table>,
    /// Plain-text paragraphs shown at the end.
    pub notes: Vec<String>,
}

/// Rules only this page needs, appended to the shared stylesheet.
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
    page::open(&mut out, &input.title, EXTRA_STYLE);
    match (input.x_labels.first(), input.x_labels.last()) {
        (Some(first), Some(last)) => w!(
            out,
            "<p class=\"lead\">Metrics at {} {}, {} to {}. A break in a line is a point where \
             that metric was not measured; each point's tooltip gives its value.</p>\n",
            int(n as u64),
            escape(&input.points),
            escape(first),
            escape(last)
        ),
        _ => w!(
            out,
            "<p class=\"lead\">Metrics at {}: no origins to show.</p>\n",
            escape(&input.points)
        ),
    }
    page::warnings(&mut out, &warnings);
    page::facts_section(&mut out, &input.facts_heading, &input.facts);

    if !input.panels.is_empty() {
        // Every panel reserves room for the widest legend on the page, so all plot areas have
        // the same width and an origin sits at the same x on every panel.
        let legend_chars = input
            .panels
            .iter()
            .flat_map(|p| panel::legend_labels(p, n))
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0);
        out.push_str("<section class=\"panels\">\n<h2>Over time</h2>\n");
        for (panel, id) in input.panels.iter().zip(&ids) {
            page::figure(
                &mut out,
                &panel::panel_svg(panel, id, &input.x_title, &input.x_labels, legend_chars),
                &panel.caption,
            );
        }
        out.push_str("</section>\n");
    }

    if !input.tables.is_empty() {
        out.push_str("<section>\n<h2>Tables</h2>\n");
        for t in &input.tables {
            table::table(&mut out, t);
        }
        out.push_str("</section>\n");
    }

    page::close(&mut out, &input.notes);
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
