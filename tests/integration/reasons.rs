//! Reasons per customer: `score` writes each open customer's strongest pushes up and down, the
//! exact tree Shapley values of the served model. The Python `forust` package (the version the
//! workspace builds against) recomputes every value from the same `model.json` to 1e-6, every
//! row's values sum to its log-odds, and `--no-reasons` leaves the scores themselves unchanged.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use repurchase_core::{DataRoot, StoreConfig};
use repurchase_features::AnchorMode;
use repurchase_model::ModelArtifact;
use repurchase_score::REASON_SLOTS;

use crate::support::{
    col, date, parquet_batches, run_pipeline, score_binary, signal_source, venv_python,
};

/// Every row of the Parquet files of a partition folder, in file-name order.
fn partition(dir: &Path) -> RecordBatch {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    let batches: Vec<RecordBatch> = files
        .iter()
        .flat_map(|f| parquet_batches(std::fs::File::open(f).unwrap()))
        .collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn f64s(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// forust's Python Shapley values (rows × (features + 1), bias last) and predictions of the
/// column-major matrix `x` of `rows` rows, with the booster of `model`.
fn python_forust(
    dir: &Path,
    model: &ModelArtifact,
    x: &[f64],
    rows: usize,
) -> (Vec<f64>, Vec<f64>) {
    let booster = dir.join("booster.json");
    std::fs::write(&booster, serde_json::to_vec(&model.booster).unwrap()).unwrap();
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("x.bin"), bytes).unwrap();
    let script = r#"
import sys, numpy as np, forust
from importlib.metadata import version
d, rows = sys.argv[1], int(sys.argv[2])
b = forust.GradientBooster.load_booster(d + "/booster.json")
x = np.fromfile(d + "/x.bin", dtype="<f8")
X = np.ascontiguousarray(x.reshape(-1, rows).T)
b.predict_contributions(X, method="Shapley", parallel=False).astype("<f8").tofile(d + "/contributions.bin")
b.predict(X, parallel=False).astype("<f8").tofile(d + "/predictions.bin")
print(version("forust"))
"#;
    let out = Command::new(venv_python())
        .args(["-c", script])
        .arg(dir)
        .arg(rows.to_string())
        .output()
        .expect("run the test venv's python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same version as the crate the workspace builds, so the two run the same algorithm.
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let crate_version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"forust-ml\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .unwrap()
        .trim_matches('"')
        .to_string();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), crate_version);
    (
        f64s(&std::fs::read(dir.join("contributions.bin")).unwrap()),
        f64s(&std::fs::read(dir.join("predictions.bin")).unwrap()),
    )
}

/// One published reason: feature, value as text, log-odds.
type Published = (Option<String>, Option<String>, Option<f64>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasons_are_the_served_models_shapley_values_as_python_forust_computes_them() {
    let source = signal_source(20_000, 5, "2025-06-30").await;
    let tmp = tempfile::tempdir().unwrap();
    let lake_dir = tmp.path().join("lake");
    let lake = DataRoot::open(&lake_dir.to_string_lossy(), &StoreConfig::default()).unwrap();
    let d = date("2025-06-30");
    let run = run_pipeline(&source, &lake, d, AnchorMode::EveryOrder, 120).await;

    // The served model (the pipeline's own, the champion) over the whole score partition.
    let model = ModelArtifact::from_bytes(
        &std::fs::read(lake_dir.join("models/run_date=2025-06-30/model.json")).unwrap(),
    )
    .unwrap();
    let predictor = model.predictor().unwrap();
    let names: Vec<String> = predictor.feature_names().map(str::to_string).collect();
    let features = partition(&lake_dir.join("features/score/run_date=2025-06-30"));
    let n = features.num_rows();
    assert!(n >= 150, "{n} anchors to score");
    let log_odds = predictor.log_odds_batch(&features).unwrap();
    let c = predictor.contributions_batch(&features).unwrap();
    assert_eq!(c.rows(), n);

    // Sum property, every row.
    for (i, l) in log_odds.iter().enumerate() {
        assert!(
            (c.log_odds(i) - l).abs() <= 1e-6,
            "row {i}: values sum to {} but the model predicts {l}",
            c.log_odds(i)
        );
    }
    // Python forust on the same model and matrix: every value to 1e-6, and its prediction.
    let x = predictor.feature_matrix(&features).unwrap();
    let (py, py_pred) = python_forust(tmp.path(), &model, &x, n);
    let p = names.len();
    assert_eq!(py.len(), n * (p + 1));
    let mut worst = 0f64;
    for i in 0..n {
        let bias = [c.bias(i)];
        let ours = c.row(i).iter().chain(&bias);
        for (j, (a, b)) in ours.zip(&py[i * (p + 1)..][..p + 1]).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6,
                "row {i}, {}: ours {a}, forust (Python) {b}",
                names.get(j).map_or("bias", String::as_str)
            );
            worst = worst.max((a - b).abs());
        }
        assert!((py_pred[i] - log_odds[i]).abs() <= 1e-9, "row {i}");
    }
    eprintln!("largest difference from Python forust: {worst:e}");

    // The published reasons are those values' strongest pushes.
    let scores = partition(&lake_dir.join("scores/run_date=2025-06-30"));
    let row_of: BTreeMap<(i64, i64), usize> = {
        let (u, o) = (
            col::<Int64Array>(&features, "user_id"),
            col::<Int64Array>(&features, "order_id"),
        );
        (0..n).map(|i| ((u.value(i), o.value(i)), i)).collect()
    };
    let status = col::<StringArray>(&scores, "status");
    let published_log_odds = col::<Float64Array>(&scores, "log_odds");
    let slot = |s: &str, k: usize| -> Published {
        let name = col::<StringArray>(&scores, s);
        let value = col::<StringArray>(&scores, &format!("{s}_value"));
        let lo = col::<Float64Array>(&scores, &format!("{s}_log_odds"));
        (
            name.is_valid(k).then(|| name.value(k).to_string()),
            value.is_valid(k).then(|| value.value(k).to_string()),
            lo.is_valid(k).then(|| lo.value(k)),
        )
    };
    let (users, orders) = (
        col::<Int64Array>(&scores, "user_id"),
        col::<Int64Array>(&scores, "anchor_order_id"),
    );
    let (mut open, mut full, mut categorical_reasons) = (0, 0, 0);
    for k in 0..scores.num_rows() {
        let i = row_of[&(users.value(k), orders.value(k))];
        if status.value(k) != "open" {
            assert!(published_log_odds.is_null(k));
            for s in REASON_SLOTS {
                assert_eq!(
                    slot(s, k),
                    (None, None, None),
                    "row {k} is {}",
                    status.value(k)
                );
            }
            continue;
        }
        open += 1;
        assert_eq!(published_log_odds.value(k).to_bits(), log_odds[i].to_bits());
        let want = c.reasons(i, 3, 1);
        let expected: Vec<Option<(usize, f64)>> = (0..3)
            .map(|r| want.up.get(r).map(|r| (r.feature, r.log_odds)))
            .chain([want.down.first().map(|r| (r.feature, r.log_odds))])
            .collect();
        for (s, e) in REASON_SLOTS.iter().zip(&expected) {
            let (name, value, lo) = slot(s, k);
            match e {
                None => assert_eq!((name, value, lo), (None, None, None), "{s} row {k}"),
                Some((f, v)) => {
                    let name = name.unwrap();
                    assert_eq!(name, names[*f], "{s} row {k}");
                    assert_eq!(lo.unwrap().to_bits(), v.to_bits(), "{s} row {k}");
                    // The value is the customer's own, as the features partition holds it.
                    let column = features.column_by_name(&name).unwrap();
                    match (column.as_any().downcast_ref::<Float64Array>(), value) {
                        (Some(a), Some(v)) => assert_eq!(v.parse::<f64>().unwrap(), a.value(i)),
                        (Some(a), None) => assert!(a.is_null(i)),
                        (None, v) => {
                            let text =
                                arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8)
                                    .unwrap();
                            let text = text.as_any().downcast_ref::<StringArray>().unwrap();
                            assert_eq!(v.as_deref(), text.is_valid(i).then(|| text.value(i)));
                            categorical_reasons += 1;
                        }
                    }
                }
            }
        }
        full += usize::from(expected.iter().all(Option::is_some));
    }
    assert_eq!(open as u64, run.score.scored);
    assert!(
        full * 2 > open,
        "{full} of {open} open rows have all four reasons"
    );
    assert!(categorical_reasons > 0, "no category among the reasons");
    let explained = || -> serde_json::Value {
        let path = lake_dir.join("scores/run_date=2025-06-30/_manifest.json");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        manifest["counters"]["explained"].clone()
    };
    assert_eq!(explained(), open as u64);

    // --no-reasons: the same scores, reasons empty, nothing explained.
    let before = scores;
    let out = score_binary(&lake_dir, d, &["--no-reasons"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = partition(&lake_dir.join("scores/run_date=2025-06-30"));
    for f in before.schema().fields() {
        let (b, a) = (
            before.column_by_name(f.name()).unwrap(),
            after.column_by_name(f.name()).unwrap(),
        );
        if f.name().starts_with("reason_") {
            assert_eq!(a.null_count(), a.len(), "{}", f.name());
        } else {
            assert_eq!(b, a, "{}", f.name());
        }
    }
    assert_eq!(explained(), 0);
}
