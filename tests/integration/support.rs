//! Shared helpers: run dates, data roots, generated sources and running the whole pipeline.

use std::sync::atomic::{AtomicU64, Ordering};

use repurchase_core::{DataRoot, RunDate, StoreConfig};
use repurchase_datagen::{GenConfig, OutputFormat, Profile};
use repurchase_extract::Source;
use repurchase_features::AnchorMode;
use repurchase_model::BoosterParams;

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn date(s: &str) -> RunDate {
    s.parse().expect("valid test date")
}

/// A fresh, uniquely named in-memory root.
pub fn memory_root(tag: &str) -> DataRoot {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    DataRoot::open(
        &format!("memory://{tag}-{}-{n}/root", std::process::id()),
        &StoreConfig::default(),
    )
    .expect("memory root")
}

/// Generates a dataset into a fresh in-memory source folder.
pub async fn generated_source(
    users: u64,
    seed: u64,
    end: &str,
    profile: Profile,
    format: OutputFormat,
) -> DataRoot {
    let source = memory_root("source");
    let cfg = GenConfig::new(users, seed, date(end).date(), profile);
    let generated = repurchase_datagen::generate(&cfg).expect("generate");
    repurchase_datagen::write(&source, &generated, format)
        .await
        .expect("write source");
    source
}

/// The usual test source: the signal profile written as Parquet.
pub async fn signal_source(users: u64, seed: u64, end: &str) -> DataRoot {
    generated_source(users, seed, end, Profile::Signal, OutputFormat::Parquet).await
}

pub struct PipelineRun {
    pub features: repurchase_features::Outcome,
    pub train: repurchase_train::Outcome,
    pub calibrate: repurchase_calibrate::Outcome,
    pub score: repurchase_score::Outcome,
}

/// extract → build-features → train → calibrate → score for one run date.
pub async fn run_pipeline(
    source: &DataRoot,
    lake: &DataRoot,
    run_date: RunDate,
    anchor: AnchorMode,
    days: u32,
) -> PipelineRun {
    let policy = repurchase_calibrate::champion::ChampionPolicy::default();
    run_pipeline_with(source, lake, run_date, anchor, days, &policy).await
}

/// [`run_pipeline`] with the given promotion policy.
pub async fn run_pipeline_with(
    source: &DataRoot,
    lake: &DataRoot,
    run_date: RunDate,
    anchor: AnchorMode,
    days: u32,
    policy: &repurchase_calibrate::champion::ChampionPolicy,
) -> PipelineRun {
    repurchase_extract::extract(lake, run_date, &Source::Files(source.clone()))
        .await
        .expect("extract");
    let features = repurchase_features::build(
        lake,
        run_date,
        &repurchase_features::BuildOptions::new(anchor, 60),
    )
    .await
    .expect("build-features");
    let train = repurchase_train::train(
        lake,
        run_date,
        &repurchase_train::TrainConfig::new(days, days, &BoosterParams::default()),
    )
    .await
    .expect("train");
    let calibrate = repurchase_calibrate::calibrate(lake, run_date, policy)
        .await
        .expect("calibrate");
    let score = repurchase_score::score(lake, run_date, &repurchase_score::ScoreOptions::default())
        .await
        .expect("score");
    PipelineRun {
        features,
        train,
        calibrate,
        score,
    }
}

/// The `score` binary on the data root folder `lake` for `d`, with `extra` flags.
pub fn score_binary(lake: &std::path::Path, d: RunDate, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(binary("score"))
        .arg("--run-date")
        .arg(d.to_string())
        .arg("--data-root")
        .arg(lake)
        .args(extra)
        .output()
        .expect("run score")
}

/// Path of a built workspace binary (the test script builds them before running the tests).
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    // target/<profile>/deps/integration-xxxx → target/<profile>/<name>
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// Every record batch of one Parquet file (in memory or on disk); panics on a bad file.
pub fn parquet_batches<R>(file: R) -> Vec<arrow::array::RecordBatch>
where
    R: parquet::file::reader::ChunkReader + 'static,
{
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a Parquet reader")
        .map(|b| b.expect("a record batch"))
        .collect()
}

/// Column `name` of `batch` as array type `T`; panics with the column name otherwise.
pub fn col<'a, T: 'static>(batch: &'a arrow::array::RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} has another type"))
}

/// Endpoint of the S3-compatible test server (moto, which also mocks Athena) that `scripts/test`
/// starts on 127.0.0.1. Tests that need it fail, rather than skip, when it is not running.
pub fn moto_endpoint() -> String {
    std::env::var("REPURCHASE_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "REPURCHASE_TEST_S3_ENDPOINT is not set: run the tests with scripts/test, which starts \
             the moto S3/Athena server on 127.0.0.1 (or start `moto_server -H 127.0.0.1 -p PORT` \
             from ~/.cache/repurchase/test-venv and export REPURCHASE_TEST_S3_ENDPOINT=http://127.0.0.1:PORT)"
        )
    })
}

/// Python of the test virtualenv (moto, sqlglot, DuckDB), which scripts/setup-test-deps creates.
pub fn venv_python() -> std::path::PathBuf {
    let venv = std::env::var_os("REPURCHASE_TEST_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/repurchase/test-venv")
        });
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/setup-test-deps (scripts/test does)",
        python.display()
    );
    python
}

/// What a test that publishes a partition by hand records as its provenance: stage `test`, the
/// given parameters and schema, no inputs, no counters.
pub fn test_provenance(
    parameters: serde_json::Value,
    schema: &arrow::datatypes::Schema,
) -> repurchase_core::publish::Provenance<'_> {
    repurchase_core::publish::Provenance {
        stage: "test",
        parameters,
        schema: Some(schema),
        inputs: vec![],
        counters: std::collections::BTreeMap::new(),
    }
}
