//! Tests of the whole timeline page through [`render`]: panels, legends and tooltips are there,
//! gaps break lines, roles keep their style, plot areas line up, tick labels thin out, ids are
//! sanitised, and degenerate input renders without panicking.

use super::*;
use crate::report::svg::{MODEL, RAW, assert_sane_page, assert_self_contained, svg_of};

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

/// A panel of `n` origins whose series are waves `(name, role, base, amp, phase)`.
fn wave_panel(
    n: usize,
    id: &str,
    title: &str,
    percent: bool,
    waves: &[(&str, Role, f64, f64, f64)],
) -> Panel {
    let series = waves
        .iter()
        .map(|&(name, role, base, amp, phase)| series(name, role, wave(n, base, amp, phase)))
        .collect();
    panel(id, title, percent, series)
}

fn sample(n: usize) -> TimelineInput {
    let mut auc = wave_panel(
        n,
        "auc",
        "ROC-AUC",
        false,
        &[
            ("new procedure", Role::Model, 0.72, 0.02, 0.0),
            ("old procedure", Role::Baseline, 0.66, 0.02, 1.0),
            ("oracle", Role::Oracle, 0.80, 0.01, 2.0),
        ],
    );
    if n > 5 {
        // The old procedure was not measured at origin 4: its line breaks there.
        auc.series[1].values[4] = None;
    }
    TimelineInput {
        title: "Backtest 2025-06-30".to_string(),
        points: "origins of the rolling-origin backtest".into(),
        facts_heading: "Backtest".into(),
        facts: vec![
            ("origins".to_string(), n.to_string()),
            ("horizon".to_string(), "60 days".to_string()),
        ],
        x_title: "origin (week start)".to_string(),
        x_labels: weeks(n),
        panels: vec![
            auc,
            wave_panel(
                n,
                "rate",
                "Predicted and observed rate",
                true,
                &[
                    ("mean predicted", Role::Model, 0.1, 0.01, 0.0),
                    ("observed", Role::Observed, 0.1, 0.02, 0.5),
                ],
            ),
            wave_panel(
                n,
                "ece",
                "ECE",
                false,
                &[
                    ("new procedure", Role::Model, 0.01, 0.005, 0.0),
                    ("old procedure", Role::Baseline, 0.03, 0.01, 1.0),
                ],
            ),
            wave_panel(
                n,
                "flags",
                "Flag precision and recall",
                true,
                &[
                    ("precision", Role::Model, 0.3, 0.05, 0.0),
                    ("recall", Role::Other, 0.4, 0.05, 1.0),
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
    assert!(html.contains("12 origins of the rolling-origin backtest, 2025-01-06 to 2025-03-24"));
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
        "title", "fk", "fv", "xt", "x0", "x3", "pt", "yt", "cap", "sn", "tc", "th", "td", "note",
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
        points: "origins of the rolling-origin backtest".into(),
        facts_heading: "Backtest".into(),
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
                points: "origins of the rolling-origin backtest".into(),
                facts_heading: "Backtest".into(),
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
            assert_sane_page(&render(&input), &render(&input), 1, name);
        }
    }

    let empty = render(&TimelineInput {
        title: String::new(),
        points: "origins of the rolling-origin backtest".into(),
        facts_heading: "Backtest".into(),
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
fn no_network_references() {
    let html = render(&sample(30));
    assert_self_contained(&html);
}
