//! Tests of the whole evaluation page through [`render`]: every chart and section is there,
//! every input string is escaped, the output is deterministic and self-contained, and
//! degenerate input renders without panicking.

use super::*;
use crate::report::svg::{assert_sane_page, assert_self_contained, svg_of};
use repurchase_core::hash::SplitMix64;

struct Data {
    probs: Vec<f64>,
    raw: Vec<f64>,
    labels: Vec<bool>,
    importance: Vec<(String, f64)>,
    effects: Vec<FeatureEffect>,
}

fn data(n: usize, seed: u64) -> Data {
    let mut rng = SplitMix64::new(seed);
    let mut probs = Vec::with_capacity(n);
    let mut raw = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let p = 0.02 + 0.5 * rng.next_f64().powi(3);
        labels.push(rng.next_f64() < p);
        let noisy = (p + 0.1 * (rng.next_f64() - 0.5)).clamp(0.001, 0.999);
        probs.push(noisy);
        raw.push((noisy * 1.6).min(0.999));
    }
    let importance = (0..40)
        .map(|i| (format!("feature_{i:02}"), 1.0 / f64::from(i + 1)))
        .collect();
    // Forty features, the first twelve with 50 points each (values spread around 0, one in
    // five missing).
    let effects = (0..40)
        .map(|i| FeatureEffect {
            name: format!("feature_{i:02}"),
            mean_abs: 0.5 / f64::from(i + 1),
            points: if i < 12 {
                (0..50)
                    .map(|_| {
                        let q = rng.next_f64();
                        (
                            (q - 0.5) / f64::from(i + 1),
                            (rng.next_f64() > 0.2).then_some(q),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
        })
        .collect();
    Data {
        probs,
        raw,
        labels,
        importance,
        effects,
    }
}

fn input(d: &Data) -> ReportInput<'_> {
    ReportInput {
        title: "Repurchase model 2025-06-30-abc123".to_string(),
        facts: vec![
            ("run date".to_string(), "2025-06-30".to_string()),
            ("calibration".to_string(), "platt".to_string()),
        ],
        probs: &d.probs,
        raw: &d.raw,
        labels: &d.labels,
        keys: &[],
        threshold: 0.2,
        top_k_fraction: 0.1,
        importance: &d.importance,
        effects: &d.effects,
        auc_ci: Some((0.7, 0.8)),
        notes: vec!["Trained on generated data.".to_string()],
    }
}

/// No rows, no facts, no importance: what the degenerate-input tests start from.
fn empty_input() -> ReportInput<'static> {
    ReportInput {
        title: String::new(),
        facts: vec![],
        probs: &[],
        raw: &[],
        labels: &[],
        keys: &[],
        threshold: 0.5,
        top_k_fraction: 0.1,
        importance: &[],
        effects: &[],
        auc_ci: None,
        notes: vec![],
    }
}

#[test]
fn every_input_string_is_escaped() {
    let mut d = data(200, 1);
    d.importance.push(("<img onerror=x>".to_string(), 99.0));
    let mut inp = input(&d);
    inp.title = "<script>alert(1)</script>".to_string();
    inp.facts
        .push(("a & b".to_string(), "\"quoted\" 'single'".to_string()));
    inp.notes.push("</p><script>bad()</script>".to_string());
    let html = render(&inp);
    assert!(!html.contains("<script"), "raw script tag in output");
    assert!(!html.contains("<img"), "raw img tag in output");
    assert!(html.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"));
    assert!(html.contains("<th>a &amp; b</th><td>&quot;quoted&quot; &#39;single&#39;</td>"));
    assert!(html.contains("&lt;/p&gt;&lt;script&gt;bad()&lt;/script&gt;"));
    assert!(html.contains("&lt;img onerror=x&gt;"));
}

#[test]
fn every_plot_is_present_with_a_title_and_marks() {
    let d = data(2000, 2);
    let html = render(&input(&d));
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(html.ends_with("</html>\n"));
    assert_eq!(html.matches("<svg ").count(), PLOT_IDS.len());
    for id in PLOT_IDS {
        let svg = svg_of(&html, id);
        assert!(svg.contains(&format!("<title id=\"{id}-title\">")), "{id}");
        assert!(!svg.contains("no data"), "{id} shows no data");
    }
    for id in ["roc", "pr", "reliability", "gains"] {
        assert!(svg_of(&html, id).contains("<polyline"), "{id}");
    }
    assert!(svg_of(&html, "score-distribution").matches("<path").count() >= 2);
    assert_eq!(
        svg_of(&html, "importance").matches("<rect x=").count(),
        1 + 25
    );
    assert_eq!(
        svg_of(&html, "shap-importance").matches("<rect x=").count(),
        1 + 25
    );
    // Ten features of 50 points each, and the legend's missing dot.
    let swarm = svg_of(&html, "shap-beeswarm");
    assert_eq!(swarm.matches("<circle").count(), 10 * 50 + 1);
    assert!(swarm.contains(">feature_09</text>") && !swarm.contains(">feature_10</text>"));
    for heading in [
        "Headline metrics",
        "Operating points",
        "Notes",
        "cumulative gain",
    ] {
        assert!(html.contains(heading), "{heading}");
    }
    assert!(html.contains("(95% CI 0.700–0.800)"));
    // One row per decile in the decile table.
    assert_eq!(html.matches("<tr><td class=\"num\">").count(), 10);
}

#[test]
fn importance_is_sorted_and_capped() {
    let d = data(100, 3);
    let mut shuffled = d.importance.clone();
    shuffled.reverse();
    let mut inp = input(&d);
    inp.importance = &shuffled;
    let html = render(&inp);
    let svg = svg_of(&html, "importance");
    let positions: Vec<usize> = (0..25)
        .map(|i| {
            svg.find(&format!(">feature_{i:02}<"))
                .expect("top feature shown")
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "descending order"
    );
    assert!(!svg.contains("feature_25"));
    assert!(html.contains("The 25 most important of 40 features"));
}

#[test]
fn output_is_deterministic() {
    let d = data(1500, 4);
    let a = render(&input(&d));
    let copy = data(1500, 4);
    let b = render(&input(&copy));
    assert_eq!(a, b);
    assert_eq!(a, render(&input(&d)));
}

#[test]
fn no_network_references() {
    let d = data(500, 5);
    let html = render(&input(&d));
    assert_self_contained(&html);
}

#[test]
fn degenerate_inputs_do_not_panic() {
    let constant = vec![0.3; 50];
    let nan = vec![f64::NAN, 0.2, f64::NAN, 0.9];
    /// name, probs, raw, labels
    type Case = (&'static str, Vec<f64>, Vec<f64>, Vec<bool>);
    let cases: Vec<Case> = vec![
        ("empty", vec![], vec![], vec![]),
        ("one row", vec![0.4], vec![0.5], vec![true]),
        (
            "all positive",
            vec![0.1, 0.5, 0.9],
            vec![0.2, 0.6, 0.8],
            vec![true; 3],
        ),
        (
            "all negative",
            vec![0.1, 0.5, 0.9],
            vec![0.2, 0.6, 0.8],
            vec![false; 3],
        ),
        (
            "constant",
            constant.clone(),
            constant.clone(),
            (0..50).map(|i| i % 4 == 0).collect(),
        ),
        (
            "zeros",
            vec![0.0; 20],
            vec![],
            (0..20).map(|i| i < 3).collect(),
        ),
        ("nan", nan.clone(), nan, vec![true, false, true, false]),
        (
            "short labels",
            vec![0.1, 0.2, 0.9, 0.8],
            vec![0.5],
            vec![false, true],
        ),
        (
            "out of range",
            vec![-0.5, 1.5, 0.5],
            vec![7.0, -3.0, 0.5],
            vec![true, false, true],
        ),
    ];
    for (name, probs, raw, labels) in &cases {
        let odd = [FeatureEffect {
            name: "only".to_string(),
            mean_abs: f64::NAN,
            points: vec![
                (f64::NAN, None),
                (f64::INFINITY, Some(2.0)),
                (0.0, Some(-1.0)),
            ],
        }];
        for (importance, effects) in [
            (vec![], &[][..]),
            (vec![("only".to_string(), f64::NAN)], &odd[..]),
        ] {
            let inp = ReportInput {
                title: (*name).to_string(),
                probs,
                raw,
                labels,
                threshold: f64::NAN,
                top_k_fraction: 0.0,
                importance: &importance,
                effects,
                ..empty_input()
            };
            assert_sane_page(&render(&inp), &render(&inp), PLOT_IDS.len(), name);
        }
    }
    let empty = render(&empty_input());
    for id in PLOT_IDS {
        assert!(svg_of(&empty, id).contains("no data"), "{id}");
    }
    let one_class = render(&ReportInput {
        probs: &[0.1, 0.2],
        raw: &[0.1, 0.2],
        labels: &[false, false],
        ..empty_input()
    });
    assert!(svg_of(&one_class, "roc").contains("no data"));
    assert!(svg_of(&one_class, "pr").contains("no data"));
    assert!(!svg_of(&one_class, "reliability").contains("no data"));
    assert!(!one_class.contains("probs has"));
}

#[test]
fn length_mismatch_is_reported() {
    let html = render(&ReportInput {
        probs: &[0.1, 0.2, 0.3],
        raw: &[0.1],
        labels: &[false, true],
        ..empty_input()
    });
    assert!(html.contains("probs has 3 values but labels has 2; only the first 2 rows are used."));
    assert!(html.contains("raw has 1 values but labels has 2"));
}
