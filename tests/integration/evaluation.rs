//! Honest evaluation: the model's feature list, censoring, time splits, the calibrated model
//! card and report, what a score means part-way through the window, and the backtest that
//! checks it against outcomes revealed by later data.

use std::collections::{HashMap, HashSet};

use arrow::array::{Array, Float64Array, StringArray};
use repurchase_contracts::CalibratedCard;
use repurchase_core::layout::Dataset;
use repurchase_core::{DataRoot, RunDate};
use repurchase_extract::Source;
use repurchase_features::AnchorMode;
use repurchase_model::BoosterParams;
use repurchase_model::io::{load_features, read_json_artifact};
use repurchase_model::split::Part;
use repurchase_model::table::is_identifier;

use crate::support::{col, date, memory_root, parquet_batches, run_pipeline, signal_source};

/// Surrogate keys of the TheLook tables; none may reach the model in any form.
const SURROGATE_KEYS: [&str; 8] = [
    "id",
    "user_id",
    "order_id",
    "product_id",
    "inventory_item_id",
    "session_id",
    "sequence_number",
    "distribution_center_id",
];

async fn card(root: &DataRoot, d: RunDate) -> CalibratedCard {
    repurchase_model::io::read_json_artifact(root, Dataset::Calibration, d, "model_card.json")
        .await
        .expect("model card")
        .0
}

async fn scores(root: &DataRoot, d: RunDate) -> Vec<arrow::array::RecordBatch> {
    let bytes = root
        .get(&format!(
            "{}/part-00000.parquet",
            Dataset::Scores.partition(d)
        ))
        .await
        .unwrap();
    parquet_batches(bytes)
}

#[tokio::test]
async fn every_order_model_is_honest_about_ids_censoring_and_time() {
    let d = date("2025-06-30");
    let source = signal_source(8_000, 21, "2025-06-30").await;
    let lake = memory_root("honest");
    run_pipeline(&source, &lake, d, AnchorMode::EveryOrder, 150).await;
    let card = card(&lake, d).await;

    // No identifier reaches the model, under any spelling.
    let names: Vec<&str> = card
        .model
        .features
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert!(names.len() >= 65, "{} features", names.len());
    for name in &names {
        assert!(!is_identifier(name), "identifier feature {name}");
        assert!(!SURROGATE_KEYS.contains(name), "surrogate key {name}");
        assert!(!name.contains("sku"), "{name}");
    }
    for meta in [
        "label",
        "days_to_repurchase",
        "anchor_time",
        "repurchased_so_far",
        "repurchase_pending",
    ] {
        assert!(!names.contains(&meta), "{meta} is not a feature");
    }
    let importance: HashSet<&str> = card
        .model
        .feature_importance
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(importance.iter().all(|n| names.contains(n)));

    // Censoring: every labelled anchor's window closed and settled before the run ended; open
    // ones are only in the score partition.
    let run_end = d.end_exclusive_micros();
    let horizon = 60 * repurchase_core::run_date::DAY_US;
    let settle =
        i64::from(repurchase_features::DEFAULT_SETTLE_DAYS) * repurchase_core::run_date::DAY_US;
    let (train, _, _) = load_features(&lake, Dataset::FeaturesTrain, d)
        .await
        .unwrap();
    assert!(
        train
            .anchor_us
            .iter()
            .all(|a| a + horizon + settle < run_end)
    );
    let (open, _, _) = load_features(&lake, Dataset::FeaturesScore, d)
        .await
        .unwrap();
    assert!(!open.is_empty());
    assert!(open.anchor_us.iter().all(|a| a + horizon >= run_end));
    assert!(open.label.is_none());

    // Time splits: a customer's training anchors (and their labels) end a full horizon before
    // any of their validation or test anchors.
    let w = &card.model.windows;
    let mut last_train: HashMap<i64, i64> = HashMap::new();
    let mut first_later: HashMap<i64, i64> = HashMap::new();
    for (i, &a) in train.anchor_us.iter().enumerate() {
        match w.assign(a) {
            Some(Part::Train) => {
                let e = last_train.entry(train.user_id[i]).or_insert(a);
                *e = (*e).max(a);
            }
            Some(Part::Validation | Part::Test) => {
                let e = first_later.entry(train.user_id[i]).or_insert(a);
                *e = (*e).min(a);
            }
            None => {}
        }
    }
    let straddling: Vec<i64> = last_train
        .keys()
        .filter(|u| first_later.contains_key(u))
        .copied()
        .collect();
    assert!(
        !straddling.is_empty(),
        "every-order data has customers in several windows"
    );
    for u in straddling {
        assert!(
            last_train[&u] + horizon <= first_later[&u],
            "customer {u}: a training label window overlaps a later window"
        );
    }

    // The card carries the threshold, and score's predicted label uses it.
    assert!(card.threshold > 0.0 && card.threshold < 1.0);
    let (lo, hi) = card.test_auc_ci.expect("bootstrap interval");
    let auc = card.test_metrics.roc_auc.unwrap();
    assert!(lo < auc && auc < hi, "{lo} < {auc} < {hi}");
    assert!(card.test_at_top_k.precision > card.test_metrics.positive_rate);
    for b in scores(&lake, d).await {
        let p = col::<Float64Array>(&b, "probability");
        let y = col::<arrow::array::BooleanArray>(&b, "predicted_repurchase");
        for i in 0..b.num_rows() {
            if p.is_valid(i) {
                assert_eq!(y.value(i), p.value(i) >= card.threshold);
            } else {
                assert!(y.is_null(i));
            }
        }
    }

    // The report sits next to the model and needs no network.
    let html = lake
        .get(&format!(
            "{}/report.html",
            Dataset::Calibration.partition(d)
        ))
        .await
        .unwrap();
    let html = String::from_utf8(html.to_vec()).unwrap();
    for id in repurchase_model::report::PLOT_IDS {
        assert!(html.contains(&format!("id=\"{id}\"")), "plot {id}");
    }
    assert!(!html.contains("https://") && !html.contains("src=\"http"));
}

/// Scores of 2025-06-30 judged by what the data of 2025-09-15 reveals.
#[tokio::test]
async fn backtest_shows_scores_are_calibrated_for_elapsed_time() {
    let (d0, d1) = (date("2025-06-30"), date("2025-09-15"));
    let source = signal_source(60_000, 17, "2025-09-15").await;
    let lake = memory_root("backtest");
    let run = run_pipeline(&source, &lake, d0, AnchorMode::EveryOrder, 150).await;
    assert!(run.score.scored > 400, "{} scored", run.score.scored);
    repurchase_extract::extract(&lake, d1, &Source::Files(source.clone()))
        .await
        .unwrap();
    repurchase_features::build(
        &lake,
        d1,
        &repurchase_features::BuildOptions::new(AnchorMode::EveryOrder, 60),
    )
    .await
    .unwrap();
    let bt = repurchase_cli::backtest::backtest(&lake, d0, d1)
        .await
        .unwrap();

    println!("{}", serde_json::to_string_pretty(&bt).unwrap());
    // Windows open on 2025-06-30 all closed by 2025-09-15; the few unresolved anchors are
    // orders returned after the score date, which no longer anchor a window.
    assert_eq!(bt.scored, run.score.scored);
    assert!(
        bt.unresolved * 20 < bt.scored,
        "{} unresolved",
        bt.unresolved
    );
    let auc = bt.probability.roc_auc.expect("auc");
    assert!(auc > 0.65, "backtest AUC {auc:.3}");
    // Calibrated for the days already gone: the mean conditional probability matches the
    // observed rate, where the at-anchor probability overstates it.
    // Tolerances are three standard errors of the observed rate on this many anchors.
    let observed = bt.probability.positive_rate;
    let se = (observed * (1.0 - observed) / bt.resolved as f64).sqrt();
    assert!(
        (bt.mean_probability - observed).abs() < 3.0 * se,
        "mean conditional {:.4} vs observed {observed:.4} (se {se:.4})",
        bt.mean_probability
    );
    assert!(
        (bt.mean_probability_at_anchor - observed).abs() > (bt.mean_probability - observed).abs()
    );
    assert!(
        bt.probability.ece < 4.0 * se,
        "ECE {:.4}",
        bt.probability.ece
    );
    assert!(bt.probability.brier <= bt.probability_at_anchor.brier);
    // The flag: more precise than the base rate, and its counts add up to the resolved anchors.
    let f = &bt.flag;
    assert_eq!(f.tp + f.fp + f.tn + f.fn_, bt.resolved);
    assert!(f.tp > 0 && f.precision > observed, "{f:?}");
    let late = bt.by_elapsed_days.last().unwrap();
    assert!(late.rows > 0 && late.mean_probability < late.mean_probability_at_anchor);

    // The report is published with a manifest pinning both inputs.
    let (m, _) = repurchase_core::Manifest::read(&lake, Dataset::Backtest, d0)
        .await
        .unwrap();
    assert_eq!(m.inputs.len(), 2);
    assert_eq!(m.counters["resolved"], bt.resolved);

    // calibrate of the outcome date records the same figures as the served model's realised
    // performance: 2025-06-30 is the latest score date at least 60 + 14 days back.
    repurchase_train::train(
        &lake,
        d1,
        &repurchase_train::TrainConfig::new(150, 150, &BoosterParams::default()),
    )
    .await
    .unwrap();
    let cal = repurchase_calibrate::calibrate(&lake, d1, &Default::default())
        .await
        .unwrap();
    let (realised, _): (repurchase_contracts::backtest::Backtest, _) =
        read_json_artifact(&lake, Dataset::Calibration, d1, "realised.json")
            .await
            .unwrap();
    assert_eq!(realised.score_date, d0);
    assert_eq!(
        serde_json::to_value(&realised).unwrap(),
        serde_json::to_value(&bt).unwrap()
    );
    assert_eq!(cal.realised_auc, bt.probability.roc_auc);
    let (m, _) = repurchase_core::Manifest::read(&lake, Dataset::Calibration, d1)
        .await
        .unwrap();
    assert_eq!(m.counters["realised_resolved"], bt.resolved);
    assert!(
        m.inputs
            .iter()
            .any(|i| i.dataset == "scores" && i.run_date == d0)
    );
    // Before any score is that old there is nothing to record.
    assert_eq!(run.calibrate.realised_auc, None);

    // The monitoring page of the outcome date plots it and names the day scored: the drift
    // thresholds are off, since only the page is under test here.
    let mut options = repurchase_score::ScoreOptions::default();
    options.drift.thresholds.psi_fail = f64::MAX;
    options.drift.thresholds.unknown_fail = f64::MAX;
    repurchase_score::score(&lake, d1, &options).await.unwrap();
    let out = repurchase_cli::monitor::monitor(&lake, d1, 30)
        .await
        .unwrap();
    assert_eq!(out.days, 1);
    let (m, _) = repurchase_core::Manifest::read(&lake, Dataset::MonitoringPage, d1)
        .await
        .unwrap();
    assert_eq!(m.counters["realised"], 1);
    let html = lake
        .get(&format!(
            "{}/{}",
            Dataset::MonitoringPage.partition(d1),
            repurchase_cli::monitor::PAGE_FILE
        ))
        .await
        .unwrap();
    let dir = crate::report::work_dir("monitoring-realised");
    let page = dir.join(repurchase_cli::monitor::PAGE_FILE);
    std::fs::write(&page, &html).unwrap();
    let run = crate::report::run_clean(&page, &dir, "the monitoring page with realised figures");
    let auc_svg = crate::report::svg_element(&run.dom, "realised-auc");
    assert!(
        auc_svg.contains(&format!("realised ROC-AUC, {d1}: 0.")),
        "{auc_svg}"
    );
    assert!(
        crate::report::svg_element(&run.dom, "realised-calibration").contains("observed rate, ")
    );
    assert!(
        run.dom
            .contains("Realised performance recorded by calibrate")
    );
    assert!(
        run.dom.contains(&format!(">{d0}</td>")),
        "the day scored is named"
    );

    // Status and elapsed days in the scores.
    let mut statuses = HashSet::new();
    for b in scores(&lake, d0).await {
        let s = col::<StringArray>(&b, "status");
        let e = col::<Float64Array>(&b, "days_elapsed");
        for i in 0..b.num_rows() {
            statuses.insert(s.value(i).to_string());
            assert!((0.0..=60.0).contains(&e.value(i)), "{}", e.value(i));
        }
    }
    for s in ["open", "already_repurchased", "repurchase_pending"] {
        assert!(statuses.remove(s), "no anchor is {s}");
    }
    assert!(statuses.is_empty(), "unknown statuses {statuses:?}");
}
