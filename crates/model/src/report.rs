//! The self-contained HTML pages a reviewer reads: the evaluation report of one trained model
//! ([`render`], written by `calibrate` as `report.html`) and the metrics-over-time page of the
//! rolling-origin backtest ([`timeline::render`]).
//!
//! Both pages make the same promises, and every file of this module keeps them:
//! - **Self-contained.** No network reference of any kind (no external CSS, script, font or
//!   image; no `src=` or `url(`); styling is one inline `<style>` and the plots are inline SVG,
//!   which in HTML5 needs no `xmlns`. The file can be mailed, archived next to the model or opened
//!   offline.
//! - **Safe.** Every string taken from the input is HTML-escaped with [`escape`].
//! - **Deterministic.** Same input ⇒ byte-identical output: no clock, no randomness, fixed
//!   number formatting.
//! - **Total.** Degenerate input never panics; a plot that cannot be drawn says "no data" and
//!   why instead.
//!
//! The files, by job (changing one chart means reading its file and `svg.rs`, not the rest):
//! - `page.rs` and `report.css`: the HTML shell both pages share (head and stylesheet, facts
//!   table, figures, notes) and [`escape`].
//! - `format.rs`: how numbers are written (fixed decimals, no locale, "n/a" when not finite).
//! - `svg.rs`: the chart primitives: palette, axes with "nice" ticks, the plot area's scales and
//!   marks, legends, the accessible `<svg>` opening and the "no data" placeholder.
//! - `evaluation.rs`: the evaluation report ([`ReportInput`], [`render`]); under `evaluation/`
//!   its tables and its charts, one file per section of the page (ranking, calibration,
//!   targeting, feature importance).
//! - [`timeline`]: the backtest page, built from the same shell and primitives.
//!
//! The charts are drawn by hand rather than with a plotting crate because the page needs what
//! plotters' SVG backend cannot write: a tooltip (`<title>`) on every mark, an `id`, `role`,
//! `aria-labelledby` and title on every `<svg>`, CSS classes, and no `xmlns` URL. A chart drawn
//! with plotters took about as many lines as one drawn with `svg.rs`.

/// Appends formatted text to a `String` (which cannot fail). It is defined before the `mod`
/// lines below because a `macro_rules!` macro is only visible in modules declared after it.
macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{
        use ::std::fmt::Write as _;
        let _ = $dst.write_fmt(format_args!($($arg)*));
    }};
}

mod evaluation;
mod format;
mod page;
mod svg;
pub mod timeline;

/// Integers as every page writes them, with thousands separators (1,234,567).
pub use format::int;

pub use evaluation::{BEESWARM_FEATURES, PLOT_IDS, ReportInput, render};
pub use page::escape;
