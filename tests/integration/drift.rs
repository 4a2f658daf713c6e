//! Drift monitoring: every `score` run publishes `monitoring/run_date=D/drift.json`, comparing its
//! population with the served model's reference and with the previous run. An unchanged day
//! raises nothing; a shifted feature, a renamed category and a collapse of the scores are each
//! refused with exit 65 naming what moved, with the report published and no scores; the
//! thresholds let a person score anyway; `repurchase monitor` puts the days on a page, checked in
//! Chromium.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use repurchase_contracts::monitoring::{DriftReport, read_reference, read_report};
use repurchase_core::layout::Dataset;
use repurchase_core::publish::PartitionWriter;
use repurchase_core::{DataRoot, RunDate, StoreConfig};
use repurchase_features::AnchorMode;
use repurchase_model::ModelArtifact;
use repurchase_model::drift::{Level, SCORE};
use repurchase_model::io::read_artifact;

use repurchase_cli::monitor::PAGE_FILE;

use crate::report::{run_clean, svg_element, work_dir};
use crate::support::{
    binary, date, parquet_batches, run_pipeline, score_binary, signal_source, test_provenance,
};

/// Publishes `features/score` of `from` again as the partition of `to`, every batch through `f`.
async fn copy_features(
    lake: &DataRoot,
    dir: &std::path::Path,
    from: RunDate,
    to: RunDate,
    f: impl Fn(&RecordBatch) -> RecordBatch,
) {
    let part = dir.join(Dataset::FeaturesScore.partition(from));
    let batches: Vec<RecordBatch> =
        parquet_batches(std::fs::File::open(part.join("part-00000.parquet")).unwrap())
            .iter()
            .map(f)
            .collect();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(part.join("_manifest.json")).unwrap()).unwrap();
    let schema = batches[0].schema();
    let mut w = PartitionWriter::begin(lake, Dataset::FeaturesScore, to)
        .await
        .unwrap();
    w.write_parquet("part-00000.parquet", schema.clone(), &batches)
        .await
        .unwrap();
    w.commit(test_provenance(manifest["parameters"].clone(), &schema))
        .await
        .unwrap();
}

/// A column's name and what becomes of it.
type Edit<'a> = (&'a str, &'a dyn Fn(&ArrayRef) -> ArrayRef);

/// `batch` with each named column replaced through its function.
fn replace(batch: &RecordBatch, edits: &[Edit]) -> RecordBatch {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        match edits.iter().find(|(name, _)| name == field.name()) {
            Some((_, edit)) => {
                let new = edit(column);
                fields.push(Field::new(field.name(), new.data_type().clone(), true));
                columns.push(new);
            }
            None => {
                fields.push(field.as_ref().clone());
                columns.push(column.clone());
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// A numeric column times `k`, in its own type.
fn times(k: f64) -> impl Fn(&ArrayRef) -> ArrayRef {
    move |c| match c.data_type() {
        DataType::Float64 => {
            let a = c.as_any().downcast_ref::<Float64Array>().unwrap();
            Arc::new(a.iter().map(|v| v.map(|v| v * k)).collect::<Float64Array>())
        }
        DataType::Int64 => {
            let a = c.as_any().downcast_ref::<Int64Array>().unwrap();
            Arc::new(
                a.iter()
                    .map(|v| v.map(|v| (v as f64 * k) as i64))
                    .collect::<Int64Array>(),
            )
        }
        other => panic!("not numeric: {other}"),
    }
}

/// A text column with `from` renamed `to`.
fn rename(from: &'static str, to: &'static str) -> impl Fn(&ArrayRef) -> ArrayRef {
    move |c| {
        let text = arrow::compute::cast(c, &DataType::Utf8).unwrap();
        let a = text.as_any().downcast_ref::<StringArray>().unwrap();
        Arc::new(
            a.iter()
                .map(|v| v.map(|v| if v == from { to } else { v }))
                .collect::<StringArray>(),
        )
    }
}

async fn report(lake: &DataRoot, d: RunDate) -> DriftReport {
    read_report(lake, d).await.unwrap().0
}

/// Failed (feature, measure) pairs of a report.
fn failed(r: &DriftReport) -> Vec<(String, String)> {
    r.comparison
        .alerts
        .iter()
        .filter(|a| a.level == Level::Fail)
        .map(|a| (a.feature.clone(), a.measure.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_day_raises_nothing_and_injected_drifts_are_refused_by_name() {
    let source = signal_source(60_000, 41, "2025-06-30").await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lake");
    let lake = DataRoot::open(&dir.to_string_lossy(), &StoreConfig::default()).unwrap();
    let d = date("2025-06-30");
    let run = run_pipeline(&source, &lake, d, AnchorMode::EveryOrder, 180).await;
    assert_eq!(run.score.drift, Some(Level::Ok));

    // The day itself: judged (enough rows on both sides), nothing raised, no previous run.
    let first = report(&lake, d).await;
    let c = &first.comparison;
    assert!(c.judged, "{} rows against {}", c.rows, c.reference_rows);
    assert!(c.alerts.is_empty(), "{:?}", c.alerts);
    assert_eq!(first.previous_run_date, None);
    // Every model feature, in the model's order, over the reference's rows.
    let (model, _, _) = read_artifact(&lake, Dataset::Model, d, "model.json")
        .await
        .unwrap();
    let model = ModelArtifact::from_bytes(&model).unwrap();
    let names: Vec<&str> = c.features.iter().map(|h| h.name.as_str()).collect();
    let want: Vec<&str> = model.features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, want);
    let (reference, _) = read_reference(&lake, d).await.unwrap();
    assert_eq!(c.reference_rows, reference.rows);
    let total = |h: &repurchase_model::drift::HistogramDrift| h.current.iter().sum::<u64>();
    assert!(
        c.features
            .iter()
            .chain([&c.score])
            .all(|h| total(h) == c.rows)
    );
    let month = c
        .features
        .iter()
        .find(|h| h.name == "anchor_month")
        .unwrap();
    assert!(month.exempt && month.level == Level::Ok);

    // The same population the next day: no drift from the previous run at all.
    let d1 = date("2025-07-01");
    copy_features(&lake, &dir, d, d1, RecordBatch::clone).await;
    let out = score_binary(&dir, d1, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let next = report(&lake, d1).await;
    assert_eq!(next.previous_run_date, Some(d));
    assert_eq!(next.comparison.level, Level::Ok);
    for (a, b) in next.comparison.features.iter().zip(&c.features) {
        assert_eq!(a.psi_previous, Some(0.0), "{}", a.name);
        assert_eq!(a.psi, b.psi, "{}", a.name);
    }

    // Three drifts, each on its own day: refused, named, the report published, no scores: a
    // shifted number, a renamed category, and the scores collapsing as activity is lost.
    let shift = times(3.0);
    let renamed = rename("Search", "Web search");
    let zero = times(0.0);
    let missing = |c: &ArrayRef| arrow::array::new_null_array(c.data_type(), c.len());
    let activity: Vec<String> = c
        .features
        .iter()
        .map(|h| h.name.clone())
        .filter(|n| n.contains("events") || n.contains("sessions"))
        .collect();
    type Case<'a> = (&'a str, Vec<Edit<'a>>, Vec<(&'a str, &'a str)>);
    let cases: [Case; 3] = [
        (
            "2025-07-02",
            vec![("basket_value", &shift)],
            vec![("basket_value", "psi")],
        ),
        (
            "2025-07-03",
            vec![("user_traffic_source", &renamed)],
            vec![
                ("user_traffic_source", "psi"),
                ("user_traffic_source", "unknown_share_rise"),
            ],
        ),
        // The web events lost upstream: every activity count 0, no last browse.
        (
            "2025-07-04",
            activity
                .iter()
                .map(|n| (n.as_str(), &zero as &dyn Fn(&ArrayRef) -> ArrayRef))
                .chain([(
                    "days_since_last_browse",
                    &missing as &dyn Fn(&ArrayRef) -> ArrayRef,
                )])
                .collect(),
            vec![(SCORE, "psi")],
        ),
    ];
    for (day, edits, want) in cases {
        let dk = date(day);
        copy_features(&lake, &dir, d, dk, |b| replace(b, &edits)).await;
        let out = score_binary(&dir, dk, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{day}: {stderr}");
        let r = report(&lake, dk).await;
        let got = failed(&r);
        for (feature, measure) in &want {
            assert!(
                got.contains(&(feature.to_string(), measure.to_string())),
                "{day}: {feature} {measure} not among {got:?}"
            );
            assert!(
                stderr.contains(&format!("{feature} {measure}")),
                "{day}: {stderr}"
            );
        }
        assert!(
            !dir.join(Dataset::Scores.manifest_path(dk)).exists(),
            "{day}: scores published"
        );
        // Only what was edited (or the score it feeds) fails.
        let edited: Vec<&str> = edits.iter().map(|(n, _)| *n).collect();
        for (feature, _) in &got {
            assert!(
                feature == SCORE || edited.contains(&feature.as_str()),
                "{day}: {feature} failed"
            );
        }
    }

    // A person who accepts the shift scores anyway: the report warns, the scores are published.
    let dk = date("2025-07-02");
    let out = score_binary(&dir, dk, &["--drift-psi-fail", "off"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report(&lake, dk).await.comparison.level, Level::Warn);
    assert!(dir.join(Dataset::Scores.manifest_path(dk)).exists());
    // Refused again at the default thresholds: those scores, from the same drifted day, go.
    let out = score_binary(&dir, dk, &[]);
    assert_eq!(out.status.code(), Some(65));
    assert!(!dir.join(Dataset::Scores.manifest_path(dk)).exists());
    // Thresholds that contradict each other are refused before anything runs.
    let out = score_binary(
        &dir,
        dk,
        &["--drift-psi-warn", "0.5", "--drift-psi-fail", "0.2"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--drift-psi-warn 0.5 is above"));
    let out = score_binary(&dir, dk, &["--drift-psi-fail", "inf"]);
    assert_eq!(out.status.code(), Some(2));

    // The monitoring page of those days, in a real browser: every day a point, the shifted
    // feature with a panel of its own.
    let last = date("2025-07-04");
    let out = std::process::Command::new(binary("repurchase"))
        .args([
            "monitor",
            "--run-date",
            "2025-07-04",
            "--days",
            "10",
            "--data-root",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let part = dir.join(Dataset::MonitoringPage.partition(last));
    let browser_dir = work_dir("monitoring");
    let page = browser_dir.join(PAGE_FILE);
    std::fs::copy(part.join(PAGE_FILE), &page).unwrap();
    let run = run_clean(&page, &browser_dir, "the monitoring page");
    let score_svg = svg_element(&run.dom, "psi-score");
    let days = [
        "2025-06-30",
        "2025-07-01",
        "2025-07-02",
        "2025-07-03",
        "2025-07-04",
    ];
    for day in days {
        assert!(
            score_svg.contains(&format!("against the reference, {day}")),
            "no score point for {day}"
        );
    }
    // The feature that moved most in the window has a panel.
    let mut peak = (0.0, String::new());
    for day in days {
        for h in report(&lake, date(day)).await.comparison.features {
            if !h.exempt && h.psi.unwrap_or(0.0) > peak.0 {
                peak = (h.psi.unwrap_or(0.0), h.name.clone());
            }
        }
    }
    let id = format!("psi-{}", peak.1.replace('_', "-"));
    assert!(svg_element(&run.dom, &id).contains("<polyline"), "{id}");
    assert!(svg_element(&run.dom, "alerts").contains("failed (run refused)"));
    assert!(svg_element(&run.dom, "rows").contains("<polyline"));
    // The page is rebuilt from the published reports alone: a rerun gives the same bytes.
    let first = std::fs::read(part.join(PAGE_FILE)).unwrap();
    repurchase_cli::monitor::monitor(&lake, last, 10)
        .await
        .unwrap();
    assert!(std::fs::read(part.join(PAGE_FILE)).unwrap() == first);
    // No report in the window is an error naming the window.
    let err = repurchase_cli::monitor::monitor(&lake, date("2025-01-31"), 10)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("from 2025-01-22 to 2025-01-31"),
        "{err}"
    );
}
