//! `build-features --engine athena` against moto on 127.0.0.1, with the UNLOAD executed for real.
//!
//! Real here: the generated lake on moto's S3 (extract through the files source), the Athena
//! client and every API call through the fault proxy to moto, clearing the staging folder, reading
//! the staged Parquet back, casting and sorting, and `sql/features/anchors_athena.sql` executed:
//! the proxy's hook takes the statement and the execution parameters Athena received, fills the
//! `?` with the parameters, transpiles the Trino SQL to DuckDB with sqlglot and runs it in DuckDB
//! over the raw partitions downloaded from moto (views `raw_<table>` with the `run_date` column),
//! writing Parquet into the UNLOAD's TO location (`features_athena/unload.py`).
//!
//! Not real: Athena's own engine (Trino semantics are only as faithful as sqlglot's translation
//! and DuckDB's behaviour; Athena's millisecond timestamps in particular are not reproduced), the
//! Glue tables (DuckDB views stand in for sql/ddl), and the exact Parquet types UNLOAD writes.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Array, Float64Array, RecordBatch};
use arrow::datatypes::DataType;
use bytes::Bytes;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use repurchase_core::layout::Dataset;
use repurchase_core::parquet_io::register_partition_with;
use repurchase_core::{Classify, DataRoot, ErrorClass, RunDate, StoreConfig};
use repurchase_extract::Source;
use repurchase_features::AnchorMode;
use repurchase_features::athena::{self as engine, AthenaSettings, Shutdown};

use crate::athena::proxy::{Fate, FaultProxy, Hook, Started};
use crate::athena::{relative, s3_lake, store_config, user_error};
use crate::support::{date, memory_root, moto_endpoint, signal_source, venv_python};
use repurchase_features::INPUT_TABLES;

const RUN_DATE: &str = "2025-06-30";

fn settings() -> AthenaSettings {
    AthenaSettings {
        timeout: Duration::from_secs(120),
        poll: Duration::from_millis(20),
        api_max_attempts: 3,
        api_initial_backoff: Duration::from_millis(10),
        ..AthenaSettings::new(
            "repurchase_lake".parse().unwrap(),
            "primary".parse().unwrap(),
        )
    }
}

/// A fresh bucket on moto holding the raw partitions of a generated TheLook for `RUN_DATE`.
async fn extracted_lake(tag: &str, users: u64) -> DataRoot {
    let (_, lake) = s3_lake(&format!("features-{tag}")).await;
    let source = signal_source(users, 11, RUN_DATE).await;
    repurchase_extract::extract(&lake, date(RUN_DATE), &Source::Files(source))
        .await
        .expect("extract");
    lake
}

/// The DataFusion engine's output, registered exactly as `build-features` registers the raw
/// partitions.
async fn datafusion_features(root: &DataRoot, d: RunDate, anchor: AnchorMode) -> Vec<RecordBatch> {
    let ctx = repurchase_features::session();
    for table in INPUT_TABLES {
        register_partition_with(&ctx, root, Dataset::Raw(table), d, table.name(), {
            ParquetFormat::default().with_force_view_types(false)
        })
        .await
        .unwrap();
    }
    repurchase_features::compute(&ctx, d, anchor, 60)
        .await
        .unwrap()
}

/// What the DuckDB runner reported for each query it ran.
type Runs = Arc<Mutex<Vec<serde_json::Value>>>;

/// A hook standing in for Athena: refuses a non-empty TO location as UNLOAD does, else runs the
/// UNLOAD's SQL in DuckDB (see `features_athena/unload.py`) over the raw partitions of the run date
/// and writes its Parquet files into the location.
fn duckdb_hook(lake: DataRoot, d: RunDate, runs: Runs) -> Hook {
    Arc::new(move |started: Started| {
        let lake = lake.clone();
        let runs = runs.clone();
        Box::pin(async move {
            let Some(location) = started.location.clone() else {
                return user_error("not an UNLOAD");
            };
            let rel = relative(&lake, &location);
            if !lake.list(&rel).await.unwrap().is_empty() {
                return user_error(&format!(
                    "HIVE_PATH_ALREADY_EXISTS: Target directory for table already exists: {location}"
                ));
            }
            let tmp = tempfile::tempdir().unwrap();
            let mut tables = serde_json::Map::new();
            for table in INPUT_TABLES {
                let partition = Dataset::Raw(table).partition(d);
                let mut files = Vec::new();
                for m in lake.list(&partition).await.unwrap() {
                    let name = lake.relative(&m.location);
                    if !name.ends_with(".parquet") {
                        continue;
                    }
                    let local = tmp.path().join(format!("{}-{}", table.name(), files.len()));
                    std::fs::write(&local, lake.get(&name).await.unwrap()).unwrap();
                    files.push(serde_json::Value::from(local.display().to_string()));
                }
                tables.insert(format!("raw_{}", table.name()), files.into());
            }
            let out_dir = tmp.path().join("out");
            let request = serde_json::json!({
                "query": started.query,
                "parameters": started.parameters,
                "run_date": d.to_string(),
                "tables": tables,
                "out_dir": out_dir.display().to_string(),
            });
            let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/integration/features_athena/unload.py");
            let output = tokio::task::spawn_blocking(move || {
                let mut child = Command::new(venv_python())
                    .arg(script)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("run unload.py");
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(request.to_string().as_bytes())
                    .unwrap();
                child.wait_with_output().unwrap()
            })
            .await
            .unwrap();
            if !output.status.success() {
                return user_error(&format!(
                    "DuckDB stand-in failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            for name in report["files"].as_array().unwrap() {
                let name = name.as_str().unwrap();
                let bytes = std::fs::read(out_dir.join(name)).unwrap();
                lake.put(&format!("{rel}/{name}"), Bytes::from(bytes))
                    .await
                    .unwrap();
            }
            runs.lock().unwrap().push(report);
            Fate::Succeed { running_polls: 2 }
        })
    })
}

/// Compares the two engines' outputs column by column; returns the differences found.
fn differences(athena: &[RecordBatch], datafusion: &[RecordBatch]) -> Vec<String> {
    let schema = datafusion[0].schema();
    let mut diffs = Vec::new();
    if athena[0].schema() != schema {
        diffs.push(format!(
            "schema: athena {:?} vs datafusion {:?}",
            athena[0].schema(),
            schema
        ));
        return diffs;
    }
    let a = arrow::compute::concat_batches(&schema, athena).unwrap();
    let b = arrow::compute::concat_batches(&schema, datafusion).unwrap();
    if a.num_rows() != b.num_rows() {
        diffs.push(format!(
            "rows: athena {} vs datafusion {}",
            a.num_rows(),
            b.num_rows()
        ));
        return diffs;
    }
    for (i, field) in schema.fields().iter().enumerate() {
        let (x, y) = (a.column(i), b.column(i));
        if field.data_type() == &DataType::Float64 {
            let x = x.as_any().downcast_ref::<Float64Array>().unwrap();
            let y = y.as_any().downcast_ref::<Float64Array>().unwrap();
            let mut bad = 0;
            let mut inexact = 0;
            let mut first = None;
            for r in 0..x.len() {
                match (x.is_null(r), y.is_null(r)) {
                    (true, true) => {}
                    (false, false) => {
                        let (p, q) = (x.value(r), y.value(r));
                        if p.to_bits() == q.to_bits() {
                            continue;
                        }
                        if (p - q).abs() <= 1e-12 * p.abs().max(q.abs()) {
                            inexact += 1;
                        } else {
                            bad += 1;
                            first.get_or_insert(format!("row {r}: athena {p} vs datafusion {q}"));
                        }
                    }
                    _ => {
                        bad += 1;
                        first.get_or_insert(format!("row {r}: NULL in one engine only"));
                    }
                }
            }
            if inexact > 0 {
                eprintln!(
                    "{}: {inexact} values within 1e-12 but not bit-identical",
                    field.name()
                );
            }
            if bad > 0 {
                diffs.push(format!(
                    "{}: {bad} rows differ ({})",
                    field.name(),
                    first.unwrap()
                ));
            }
        } else if x.as_ref() != y.as_ref() {
            let first = (0..x.len())
                .find(|r| x.slice(*r, 1).as_ref() != y.slice(*r, 1).as_ref())
                .unwrap_or(0);
            diffs.push(format!(
                "{}: differs, first at row {first}: athena {:?} vs datafusion {:?}",
                field.name(),
                x.slice(first, 1),
                y.slice(first, 1)
            ));
        }
    }
    diffs
}

#[tokio::test]
async fn athena_engine_gives_the_datafusion_features() {
    let d = date(RUN_DATE);
    let lake = extracted_lake("same", 600).await;
    let runs: Runs = Arc::default();
    let proxy =
        FaultProxy::start(&moto_endpoint(), duckdb_hook(lake.clone(), d, runs.clone())).await;
    let cfg = store_config(&proxy.url);

    for (n, anchor) in [AnchorMode::FirstOrder, AnchorMode::EveryOrder]
        .into_iter()
        .enumerate()
    {
        let want = datafusion_features(&lake, d, anchor).await;
        // The second run finds the first run's files in the staging folder: they must be cleared,
        // or the hook fails the query as UNLOAD would.
        let got = engine::compute(
            &lake,
            d,
            anchor,
            60,
            &settings(),
            &cfg,
            &mut Shutdown::never(),
        )
        .await
        .unwrap_or_else(|e| panic!("{anchor}: {e}"));
        let rows: usize = want.iter().map(|b| b.num_rows()).sum();
        let positives = {
            let all = arrow::compute::concat_batches(&want[0].schema(), &want).unwrap();
            let label = all.column_by_name("label").unwrap();
            let label = label
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap();
            label.iter().filter(|v| *v == Some(1)).count()
        };
        eprintln!(
            "{anchor}: {rows} anchors ({positives} labelled 1), {} columns; DuckDB wrote {} rows",
            want[0].num_columns(),
            runs.lock().unwrap()[n]["rows"]
        );
        assert!(rows > 100, "{anchor}: too few anchors to compare ({rows})");
        let diffs = differences(&got, &want);
        assert!(
            diffs.is_empty(),
            "{anchor}: the engines differ:\n{}",
            diffs.join("\n")
        );
        assert_eq!(
            got.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
            want.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
            "{anchor}: batch sizes"
        );
        // And the same partitions once split.
        let before =
            repurchase_features::anchor_params(AnchorMode::FirstOrder, 60).labelled_before_us(d);
        let (gt, gs, gu) = repurchase_features::split(&got, before).unwrap();
        let (wt, ws, wu) = repurchase_features::split(&want, before).unwrap();
        assert_eq!(gu, wu, "{anchor}: unsettled anchors");
        assert_eq!(gt.schema, wt.schema);
        assert_eq!(gs.schema, ws.schema);
        assert_eq!(gt.batches, wt.batches, "{anchor}: train rows");
        assert_eq!(gs.batches, ws.batches, "{anchor}: score rows");
    }

    // What Athena received: the UNLOAD into the features staging folder, typed parameters.
    let started = proxy.started();
    assert_eq!(started.len(), 2);
    for (s, first_only) in started.iter().zip(["true", "false"]) {
        assert_eq!(
            s.location.as_deref(),
            Some(format!("{}/", lake.url(&engine::staging_dir(d))).as_str())
        );
        assert_eq!(s.database.as_deref(), Some("repurchase_lake"));
        let mut want = vec!["DATE '2025-06-30'".to_string(); 6];
        want.extend([
            "TIMESTAMP '2025-07-01 00:00:00'".into(),
            "60".into(),
            first_only.into(),
        ]);
        assert_eq!(s.parameters, want);
        assert!(s.query.starts_with("UNLOAD (\nWITH\n"), "{}", s.query);
    }
    assert!(proxy.stopped().is_empty());

    // build-features --engine athena publishes the very Parquet the DataFusion engine publishes.
    let p = repurchase_features::anchor_params(AnchorMode::FirstOrder, 60);
    let gates = repurchase_features::gates::GateConfig::default();
    let part = |ds: Dataset| format!("{}/part-00000.parquet", ds.partition(d));
    repurchase_features::build(
        &lake,
        d,
        &repurchase_features::BuildOptions {
            anchors: p,
            gates: gates.clone(),
            engine: repurchase_features::Engine::DataFusion,
        },
    )
    .await
    .unwrap();
    let mut want = Vec::new();
    for ds in [Dataset::FeaturesTrain, Dataset::FeaturesScore] {
        want.push(lake.get(&part(ds)).await.unwrap());
    }
    let athena = repurchase_features::Engine::Athena {
        settings: settings(),
        cfg: cfg.clone(),
    };
    repurchase_features::build(
        &lake,
        d,
        &repurchase_features::BuildOptions {
            anchors: p,
            gates: gates.clone(),
            engine: athena.clone(),
        },
    )
    .await
    .unwrap();
    for (ds, want) in [Dataset::FeaturesTrain, Dataset::FeaturesScore]
        .into_iter()
        .zip(want)
    {
        assert!(
            lake.get(&part(ds)).await.unwrap() == want,
            "{ds}: Parquet differs between engines"
        );
    }
    let (m, _) = repurchase_core::Manifest::read(&lake, Dataset::FeaturesTrain, d)
        .await
        .unwrap();
    assert_eq!(m.parameters["sql"], "features/anchors_athena.sql");
}

#[tokio::test]
async fn a_failed_athena_query_is_bad_input_with_its_reason() {
    let d = date(RUN_DATE);
    let lake = extracted_lake("fail", 60).await;
    let reason = "COLUMN_NOT_FOUND: line 12:5: Column 'traffic_source' cannot be resolved";
    let proxy = FaultProxy::start(
        &moto_endpoint(),
        Arc::new(move |_started: Started| Box::pin(async move { user_error(reason) })),
    )
    .await;
    let err = engine::compute(
        &lake,
        d,
        AnchorMode::FirstOrder,
        60,
        &settings(),
        &store_config(&proxy.url),
        &mut Shutdown::never(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadInput, "{err}");
    let text = err.to_string();
    let id = proxy.started()[0].query_id.clone();
    for part in ["features", reason, id.as_str(), "user error"] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
}

#[tokio::test]
async fn athena_engine_needs_an_s3_data_root() {
    let root = memory_root("features-athena");
    let err = engine::compute(
        &root,
        date(RUN_DATE),
        AnchorMode::FirstOrder,
        60,
        &settings(),
        &StoreConfig::default(),
        &mut Shutdown::never(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadInput, "{err}");
    assert!(
        err.to_string().contains("needs an s3:// data root"),
        "{err}"
    );
}
