//! The rolling-origin backtest end to end: the real workers replayed day by day on generated
//! data as it was each day, the published scores judged against later settled outcomes with the
//! generator's oracle beside them, and the page loaded in headless Chromium.

use repurchase_cli::rolling::{JSON_FILE, PAGE_FILE, RollingBacktest, RollingConfig};
use repurchase_core::RunDate;
use repurchase_core::layout::Dataset;
use repurchase_features::AnchorMode;

use crate::report::{run_clean, svg_element, work_dir};
use crate::support::{date, memory_root, signal_source};

const PANELS: [&str; 7] = [
    "calibration-ratio",
    "auc",
    "mean-probability",
    "ece",
    "brier",
    "flag-precision",
    "flag-recall",
];

fn config(
    source: &repurchase_core::DataRoot,
    lake: &repurchase_core::DataRoot,
    outcome: RunDate,
) -> RollingConfig {
    RollingConfig {
        source: source.clone(),
        lake: lake.clone(),
        first_origin: date("2025-04-07"),
        origins: 2,
        origin_every_days: 3,
        outcome_date: outcome,
        anchor: AnchorMode::EveryOrder,
        flag_top_share: None,
        valid_days: 150,
        test_days: 150,
    }
}

#[tokio::test]
async fn rolling_backtest_replays_the_procedure_and_judges_it_with_the_oracle() {
    let source = signal_source(12_000, 23, "2025-06-30").await;
    let lake = memory_root("rolling");
    let outcome = date("2025-06-30");
    let cfg = config(&source, &lake, outcome);

    // Refused before anything runs: outcomes not yet settled for the last day scored (04-12).
    let early = RollingConfig {
        outcome_date: date("2025-06-20"),
        ..cfg.clone()
    };
    let err = repurchase_cli::rolling::rolling_backtest(&early)
        .await
        .expect_err("outcome date too early");
    assert!(err.to_string().contains("2025-06-25"), "{err}");

    let r = repurchase_cli::rolling::rolling_backtest(&cfg)
        .await
        .expect("rolling backtest");
    println!("{}", serde_json::to_string_pretty(&r.pooled).unwrap());

    assert_eq!(r.per_origin.len(), 2);
    let days: Vec<String> = r
        .per_origin
        .iter()
        .flat_map(|o| o.score_dates.iter().map(|d| d.to_string()))
        .collect();
    assert_eq!(
        days,
        [
            "2025-04-07",
            "2025-04-08",
            "2025-04-09",
            "2025-04-10",
            "2025-04-11",
            "2025-04-12"
        ]
    );
    // The first origin's model had no champion to beat: promoted.
    assert!(r.per_origin[0].promoted);
    // Every scored day was published by the real score worker, and its raw input dropped.
    for d in &days {
        let d: RunDate = d.parse().unwrap();
        assert!(
            lake.exists(&Dataset::Scores.manifest_path(d))
                .await
                .unwrap(),
            "scores of {d}"
        );
        assert!(
            lake.list("raw/orders")
                .await
                .unwrap()
                .iter()
                .all(|m| !m.location.as_ref().contains(&format!("run_date={d}"))),
            "raw orders of {d} kept"
        );
    }
    let scored: u64 = r.per_origin.iter().map(|o| o.outcomes.scored).sum();
    let resolved: u64 = r.per_origin.iter().map(|o| o.outcomes.resolved).sum();
    assert_eq!((r.pooled.scored, r.pooled.resolved), (scored, resolved));
    assert!(resolved > 500, "{resolved} rows judged");
    // Few anchors lose their label (an anchor order returned later).
    assert!(
        resolved * 20 > scored * 19,
        "{resolved} of {scored} resolved"
    );

    for o in &r.per_origin {
        let oracle = o
            .outcomes
            .oracle
            .as_ref()
            .expect("signal data has an oracle");
        assert_eq!(o.outcomes.new.summary.rows, o.outcomes.resolved);
        assert_eq!(o.outcomes.old.summary.rows, o.outcomes.resolved);
        assert_eq!(oracle.summary.rows, o.outcomes.resolved);
        // Same rows, same outcomes.
        assert_eq!(o.outcomes.new.summary.positives, oracle.summary.positives);
        assert_ne!(o.model_version, o.evaluated_model_version);
        assert!(o.outcomes.new.customers > 0 && o.outcomes.new.customers <= o.outcomes.resolved);
        let (lo, hi) = o.outcomes.new.calibration_ratio_ci.expect("ratio interval");
        let ratio = o.outcomes.new.calibration_ratio.unwrap();
        assert!(lo <= ratio && ratio <= hi, "{ratio} outside [{lo}, {hi}]");
        // The oracle flags as many customers as the new procedure.
        assert_eq!(
            o.outcomes.new.flag.tp + o.outcomes.new.flag.fp,
            oracle.flag.tp + oracle.flag.fp
        );
    }
    let oracle = r.pooled.oracle.as_ref().unwrap();
    let (new_auc, oracle_auc) = (
        r.pooled.new.summary.roc_auc.unwrap(),
        oracle.summary.roc_auc.unwrap(),
    );
    assert!(oracle_auc > 0.7, "oracle AUC {oracle_auc:.3}");
    assert!(new_auc > 0.6, "new AUC {new_auc:.3}");
    // The oracle's probabilities are right on average (their own generator): within 4 standard
    // errors of the observed rate.
    let rate = oracle.summary.positive_rate;
    let se = (rate * (1.0 - rate) / resolved as f64).sqrt();
    assert!(
        (oracle.mean_probability - rate).abs() < 4.0 * se,
        "oracle mean {:.4} vs observed {rate:.4}",
        oracle.mean_probability
    );

    // Written where it says, and the JSON is the report.
    let part = Dataset::RollingBacktest.partition(outcome);
    let bytes = lake.get(&format!("{part}/{JSON_FILE}")).await.unwrap();
    let back: RollingBacktest = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back.pooled.resolved, r.pooled.resolved);
    assert_eq!(back.replay_seconds, 0.0, "no clock in the written report");

    // A second replay into the same root is refused (its champion history is taken).
    let err = repurchase_cli::rolling::rolling_backtest(&cfg)
        .await
        .expect_err("root holds models");
    assert!(err.to_string().contains("already holds models"), "{err}");

    // The page in a real browser.
    let dir = work_dir("rolling");
    let page = dir.join(PAGE_FILE);
    let html = lake.get(&format!("{part}/{PAGE_FILE}")).await.unwrap();
    std::fs::write(&page, &html).unwrap();
    let run = run_clean(&page, &dir, "the rolling page");
    for id in PANELS {
        let svg = svg_element(&run.dom, id);
        assert!(svg.contains("<polyline"), "svg #{id} has no line");
        assert!(svg.contains("oracle"), "svg #{id} has no oracle series");
    }
    assert!(run.dom.contains("2025-04-10"), "second origin on the page");
}
