//! The "Targeting" chart of the evaluation report, one wide SVG of two plots: the lift of each
//! score decile as bars (left) and the cumulative share of repurchasers reached when targeting
//! the top deciles, against random targeting and a perfect ranking (right).

use crate::metrics::DecileRow;
use crate::report::format::{c, int, num, pct};
use crate::report::svg::{
    Axis, MODEL, ORACLE, Plot, REFERENCE, Swatch, legend, legend_height, no_data_svg, svg_open,
};

pub(crate) fn gains_svg(deciles: &[DecileRow], rate: f64) -> String {
    let title = "Lift by decile and cumulative gains";
    let (width, height) = (900.0, 380.0);
    if deciles.is_empty() {
        return no_data_svg("gains", width, height, title, "no rows", true);
    }
    let mut out = String::new();
    svg_open(&mut out, "gains", width, height, title, true);

    // Left: lift bars.
    let max_lift = deciles
        .iter()
        .map(|d| d.lift)
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::max);
    let lift = Plot {
        left: 64.0,
        top: 36.0,
        width: 370.0,
        height: 290.0,
        x: Axis::plain(0.5, 10.5),
        y: Axis::nice(0.0, max_lift * 1.08, 5),
    };
    let labels: Vec<(f64, String)> = (1..=10).map(|d| (f64::from(d), d.to_string())).collect();
    lift.axes(
        &mut out,
        "score decile (1 = highest scores)",
        "lift",
        Some(&labels),
    );
    let slot = lift.width / 10.0;
    for d in deciles {
        let cx = lift.px(f64::from(d.decile));
        let top = lift.py(d.lift);
        w!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{MODEL}\" fill-opacity=\"0.8\">\
             <title>decile {}: {} rows, {} positives, rate {}, lift {}</title></rect>\n\
             <text class=\"small\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            c(cx - slot * 0.35),
            c(top),
            c(slot * 0.7),
            c(lift.bottom() - top),
            d.decile,
            int(d.rows),
            int(d.positives),
            pct(d.rate, 1),
            num(d.lift, 2),
            c(cx),
            c(top - 4.0),
            num(d.lift, 2)
        );
    }
    lift.line(&mut out, (0.5, 1.0), (10.5, 1.0), REFERENCE, "5 4");
    legend(
        &mut out,
        lift.right() - 8.0,
        lift.top + 8.0,
        true,
        &[
            (Swatch::Area(MODEL), "lift of the decile".to_string()),
            (
                Swatch::Line(REFERENCE, "5 4"),
                "random (lift 1)".to_string(),
            ),
        ],
    );

    // Right: cumulative gains.
    let total: u64 = deciles.iter().map(|d| d.rows).sum();
    let gains = Plot {
        left: 520.0,
        top: 36.0,
        width: 360.0,
        height: 290.0,
        x: Axis::nice(0.0, 1.0, 5).percent(),
        y: Axis::nice(0.0, 1.0, 5).percent(),
    };
    gains.axes(
        &mut out,
        "share of customers targeted",
        "share of repurchasers reached",
        None,
    );
    gains.line(&mut out, (0.0, 0.0), (1.0, 1.0), REFERENCE, "5 4");
    if rate > 0.0 && rate.is_finite() {
        gains.polyline(
            &mut out,
            &[(0.0, 0.0), (rate.min(1.0), 1.0), (1.0, 1.0)],
            ORACLE,
            "2 3",
        );
    }
    let mut points = vec![(0.0, 0.0)];
    let mut cum_rows = 0u64;
    for d in deciles {
        cum_rows += d.rows;
        points.push((cum_rows as f64 / total.max(1) as f64, d.cumulative_gain));
    }
    gains.polyline(&mut out, &points, MODEL, "");
    for (d, p) in deciles.iter().zip(&points[1..]) {
        gains.dot(
            &mut out,
            *p,
            3.5,
            MODEL,
            &format!(
                "top {} deciles: {} of repurchasers",
                d.decile,
                pct(d.cumulative_gain, 1)
            ),
        );
    }
    legend(
        &mut out,
        gains.right() - 8.0,
        gains.bottom() - 8.0 - legend_height(3),
        true,
        &[
            (Swatch::Line(MODEL, ""), "model".to_string()),
            (Swatch::Line(ORACLE, "2 3"), "perfect ranking".to_string()),
            (Swatch::Line(REFERENCE, "5 4"), "random".to_string()),
        ],
    );
    out.push_str("</svg>\n");
    out
}
