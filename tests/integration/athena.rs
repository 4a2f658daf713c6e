//! Extraction through Athena against the moto server on 127.0.0.1, and the Athena SQL checked
//! with sqlglot.
//!
//! Real here: the aws-sdk-athena client as built for production (region, endpoint, explicit keys
//! from `StoreConfig`; HTTP; the SDK's serialisation, error parsing and retries; requests are
//! signed, but moto does not check signatures), every API call (StartQueryExecution with
//! WorkGroup, QueryExecutionContext, ResultConfiguration and ExecutionParameters, moto's refusal
//! of an unknown workgroup, GetQueryExecution, StopQueryExecution, which moto records and then
//! reports as CANCELLED), the staging prefix on moto's S3 (cleared, listed, read back), loading,
//! validation and publishing, the `extract` binary with its exit codes and SIGTERM, and sqlglot
//! parsing every SQL file.
//!
//! Mocked (the fault proxy in `athena/proxy.rs`, between the code and moto): query states other
//! than moto's immediate SUCCEEDED (RUNNING for a few polls or until stopped, FAILED with a
//! StateChangeReason and AthenaError), throttled StartQueryExecution and 500 answers to
//! GetQueryExecution, and Athena running the UNLOAD: a hook writes the generated tables'
//! Parquet (split in two files, shuffled, timestamps as INT96 would read) into the TO location, and
//! fails the query as Athena does when that location is not empty.
//!
//! Not exercised at all: SQL execution (the SELECTs' casts and run-end filter are checked only by
//! sqlglot and unit tests), the exact files and Parquet types a real UNLOAD writes, Athena's real
//! error texts and categories, IAM, TLS, and the default credentials chain (tests pass keys).

pub mod proxy;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::compute::{SortOptions, cast, concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use repurchase_core::layout::Dataset;
use repurchase_core::schema::Table;
use repurchase_core::{Classify, DataRoot, ErrorClass, Manifest, RunDate, StoreConfig};
use repurchase_extract::Source;
use repurchase_extract::athena::{AthenaSettings, AthenaSource, Unload};

use self::proxy::{Fate, FaultProxy, Hook, Started};
use crate::support::{binary, date, memory_root, moto_endpoint, signal_source, venv_python};

static BUCKETS: AtomicU64 = AtomicU64::new(0);

const RUN_DATE: &str = "2025-06-30";

pub(crate) fn store_config(endpoint: &str) -> StoreConfig {
    StoreConfig::from_vars(
        [
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

/// A fresh bucket on moto and a data root inside it (reached directly, not through the proxy).
pub(crate) async fn s3_lake(tag: &str) -> (String, DataRoot) {
    let moto = moto_endpoint();
    let n = BUCKETS.fetch_add(1, Ordering::Relaxed);
    let bucket = format!("athena-{tag}-{}-{n}", std::process::id());
    proxy::create_bucket(&moto, &bucket).await;
    let spec = format!("s3://{bucket}/lake");
    let root = DataRoot::open(&spec, &store_config(&moto)).expect("s3 root");
    (spec, root)
}

fn settings() -> AthenaSettings {
    AthenaSettings {
        timeout: Duration::from_secs(30),
        poll: Duration::from_millis(20),
        api_max_attempts: 3,
        api_initial_backoff: Duration::from_millis(10),
        ..AthenaSettings::new(
            "thelook_ecommerce".parse().unwrap(),
            "primary".parse().unwrap(),
        )
    }
}

/// The table named by an UNLOAD location `…/staging/athena/<table>/run_date=D/`.
fn table_of(location: &str) -> Table {
    let rest = location
        .split("/staging/athena/")
        .nth(1)
        .expect("staging location");
    rest.split('/').next().unwrap().parse().expect("table")
}

/// Data-root-relative path of an `s3://` URL under `root`.
pub(crate) fn relative(root: &DataRoot, url: &str) -> String {
    let base = root.url("");
    url.strip_prefix(&base)
        .expect("location under the data root")
        .trim_matches('/')
        .to_string()
}

/// What Athena's UNLOAD would leave for a table: two Parquet files of interleaved rows, named
/// like Athena names them (no extension), with timestamps as Parquet INT96 reads back
/// (nanoseconds, no zone). `flip` swaps which half sorts first by name, as a rerun of Athena may.
fn unload_files(table: Table, source_parquet: Bytes, flip: bool) -> Vec<(String, Bytes)> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(source_parquet)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let all = concat_batches(&batches[0].schema(), &batches).unwrap();
    let athena_schema = Arc::new(Schema::new(
        all.schema()
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Timestamp(_, _) => Field::new(
                    f.name(),
                    DataType::Timestamp(TimeUnit::Nanosecond, None),
                    true,
                ),
                other => Field::new(f.name(), other.clone(), true),
            })
            .collect::<Vec<_>>(),
    ));
    let columns = all
        .columns()
        .iter()
        .zip(athena_schema.fields())
        .map(|(c, f)| cast(c, f.data_type()).unwrap())
        .collect();
    let athena = RecordBatch::try_new(athena_schema.clone(), columns).unwrap();
    let mut out = Vec::new();
    for (part, parity) in [(0usize, 1usize), (1, 0)] {
        let idx: Vec<u32> = (0..athena.num_rows())
            .filter(|i| i % 2 == parity)
            .rev()
            .map(|i| i as u32)
            .collect();
        let rows = take_record_batch(&athena, &arrow::array::UInt32Array::from(idx)).unwrap();
        let bytes = repurchase_core::parquet_io::encode(&athena_schema, &[rows]).unwrap();
        let rank = if flip { 1 - part } else { part };
        out.push((
            format!("20250701_031522_0004{rank}_x7kq2_{}-a1b2", table.name()),
            Bytes::from(bytes),
        ));
    }
    out
}

/// A hook standing in for Athena: refuses a non-empty TO location as UNLOAD does, else writes the
/// table's files there and gives the query `fate(table)`.
fn unload_hook(
    lake: DataRoot,
    source: Option<DataRoot>,
    fate: impl Fn(Table) -> Fate + Send + Sync + 'static,
) -> Hook {
    let fate = Arc::new(fate);
    let calls = Arc::new(AtomicU64::new(0));
    Arc::new(move |started: Started| {
        let flip = calls.fetch_add(1, Ordering::Relaxed) >= Table::ALL.len() as u64;
        let lake = lake.clone();
        let source = source.clone();
        let fate = fate.clone();
        Box::pin(async move {
            let Some(location) = started.location.clone() else {
                return Fate::Succeed { running_polls: 0 };
            };
            let table = table_of(&location);
            let rel = relative(&lake, &location);
            if !lake.list(&rel).await.unwrap().is_empty() {
                return Fate::Fail {
                    running_polls: 0,
                    reason: format!(
                        "HIVE_PATH_ALREADY_EXISTS: Target directory for table already exists: {location}"
                    ),
                    category: 2,
                    error_type: 1006,
                    retryable: false,
                };
            }
            let fate = fate(table);
            if let (Some(source), Fate::Succeed { .. }) = (&source, &fate) {
                let data = source
                    .get(&format!("{}.parquet", table.name()))
                    .await
                    .unwrap();
                for (name, bytes) in unload_files(table, data, flip) {
                    lake.put(&format!("{rel}/{name}"), bytes).await.unwrap();
                }
            }
            fate
        })
    })
}

/// Rows of a published raw partition, sorted by the table's key.
async fn sorted_rows(root: &DataRoot, table: Table, d: RunDate) -> RecordBatch {
    let rel = format!("{}/part-00000.parquet", Dataset::Raw(table).partition(d));
    let data = root.get(&rel).await.unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let all = concat_batches(&table.schema(), &batches).unwrap();
    let order = sort_to_indices(
        all.column_by_name(table.key()).unwrap(),
        Some(SortOptions::default()),
        None,
    )
    .unwrap();
    take_record_batch(&all, &order).unwrap()
}

#[tokio::test]
async fn athena_extract_publishes_what_the_files_source_publishes() {
    let d = date(RUN_DATE);
    let source = signal_source(400, 3, RUN_DATE).await;
    let reference = memory_root("athena-reference");
    repurchase_extract::extract(&reference, d, &Source::Files(source.clone()))
        .await
        .expect("files extract");

    let moto = moto_endpoint();
    let (_, lake) = s3_lake("ok").await;
    let proxy = FaultProxy::start(
        &moto,
        unload_hook(lake.clone(), Some(source.clone()), |t| Fate::Succeed {
            running_polls: if t == Table::Events { 4 } else { 2 },
        }),
    )
    .await;
    // Throttled starts and a 500 on a poll are retried inside the SDK.
    proxy.throttle_starts(2);
    proxy.fail_polls_with_500(1);
    // A file left in a staging folder by an earlier attempt: UNLOAD would refuse the folder, and it
    // must not be loaded.
    let stale = format!(
        "{}/20250630_000000_00001_stale_file",
        repurchase_extract::athena::staging_dir(Table::Orders, d)
    );
    lake.put(&stale, Bytes::from_static(b"not parquet"))
        .await
        .unwrap();

    let athena = AthenaSource::connect(settings(), &store_config(&proxy.url))
        .await
        .unwrap();
    let outcome = repurchase_extract::extract(&lake, d, &Source::Athena(athena.clone()))
        .await
        .expect("athena extract");
    assert!(
        !lake.exists(&stale).await.unwrap(),
        "stale file not cleared"
    );
    assert_eq!(proxy.throttled(), 2);

    // The calls Athena received.
    let started = proxy.started();
    assert_eq!(started.len(), 7, "one UNLOAD per table");
    for s in &started {
        let table = table_of(s.location.as_deref().unwrap());
        let expected = Unload::new(&lake, table, d).unwrap();
        assert_eq!(s.query, expected.query);
        assert!(s.query.starts_with("UNLOAD (\nSELECT"), "{}", s.query);
        assert_eq!(s.workgroup.as_deref(), Some("primary"));
        assert_eq!(s.database.as_deref(), Some("thelook_ecommerce"));
        assert_eq!(
            s.output_location.as_deref(),
            Some(format!("{}/", lake.url(repurchase_extract::athena::RESULTS_DIR)).as_str())
        );
        let want_params: Vec<String> = match table.time_column() {
            Some(_) => vec!["TIMESTAMP '2025-07-01 00:00:00'".to_string()],
            None => vec![],
        };
        assert_eq!(s.parameters, want_params, "{table}");
        assert!(proxy.polls(&s.query_id) >= 3, "{table} polled until done");
        assert_eq!(
            outcome.athena_queries.get(table.name()),
            Some(&s.query_id),
            "{table}"
        );
    }
    assert!(proxy.stopped().is_empty(), "nothing stopped on success");

    // Same partitions as the files source: rows, counts, counters, schema.
    for table in Table::ALL {
        let (want, _) = Manifest::read(&reference, Dataset::Raw(table), d)
            .await
            .unwrap();
        let (got, _) = Manifest::read(&lake, Dataset::Raw(table), d).await.unwrap();
        assert_eq!(got.row_count, want.row_count, "{table}");
        assert_eq!(got.counters, want.counters, "{table}");
        assert_eq!(got.schema, want.schema, "{table}");
        assert_eq!(got.files.len(), 1);
        assert_eq!(got.files[0].rows, want.files[0].rows, "{table}");
        assert_eq!(
            sorted_rows(&lake, table, d).await,
            sorted_rows(&reference, table, d).await,
            "{table}: rows differ"
        );
        let p = &got.parameters;
        assert_eq!(
            p["athena"]["query_execution_id"].as_str(),
            outcome.athena_queries.get(table.name()).map(String::as_str)
        );
        assert_eq!(
            p["athena"]["sql"],
            format!("extract/{}.sql", table.name()).as_str()
        );
        assert_eq!(p["source_files"]["files"].as_array().unwrap().len(), 2);
        assert_eq!(p["run_end"], "2025-07-01T00:00:00+00:00");
    }

    // A rerun clears the staging folders the first run filled (else the hook fails the query the
    // way UNLOAD would) and publishes byte-identical data files although Athena's files now list
    // in the other order: the key sort removes it.
    let first: BTreeMap<Table, String> = {
        let mut m = BTreeMap::new();
        for t in Table::ALL {
            let (man, _) = Manifest::read(&lake, Dataset::Raw(t), d).await.unwrap();
            m.insert(t, man.files[0].sha256.clone());
        }
        m
    };
    repurchase_extract::extract(&lake, d, &Source::Athena(athena))
        .await
        .expect("rerun");
    for t in Table::ALL {
        let (man, _) = Manifest::read(&lake, Dataset::Raw(t), d).await.unwrap();
        assert_eq!(man.files[0].sha256, first[&t], "{t} rerun differs");
    }
    assert_eq!(proxy.started().len(), 14);
}

pub(crate) fn user_error(reason: &str) -> Fate {
    Fate::Fail {
        running_polls: 1,
        reason: reason.to_string(),
        category: 2,
        error_type: 1006,
        retryable: false,
    }
}

#[tokio::test]
async fn failed_query_is_bad_input_with_athenas_reason_and_stops_the_others() {
    let d = date(RUN_DATE);
    let (_, lake) = s3_lake("fail").await;
    let reason = "COLUMN_NOT_FOUND: line 9:5: Column 'num_of_item' cannot be resolved";
    let proxy = FaultProxy::start(
        &moto_endpoint(),
        unload_hook(lake.clone(), None, move |t| match t {
            Table::Orders => user_error(reason),
            _ => Fate::Hang,
        }),
    )
    .await;
    let err = athena_extract_error(&lake, d, settings(), &proxy.url).await;
    assert_eq!(err.class(), ErrorClass::BadInput, "{err}");
    let started = proxy.started();
    let orders = started
        .iter()
        .find(|s| table_of(s.location.as_deref().unwrap()) == Table::Orders)
        .unwrap();
    let text = err.to_string();
    for part in ["orders", reason, orders.query_id.as_str(), "user error"] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
    // Every other query was still running and is stopped, for real, on moto.
    let mut stopped = proxy.stopped();
    stopped.sort();
    let mut others: Vec<String> = started
        .iter()
        .filter(|s| s.query_id != orders.query_id)
        .map(|s| s.query_id.clone())
        .collect();
    others.sort();
    assert_eq!(stopped, others);
    for id in &others {
        assert_eq!(proxy.moto_state(id).await, "CANCELLED");
    }
    // Nothing was published.
    for t in Table::ALL {
        assert!(
            !lake
                .exists(&Dataset::Raw(t).manifest_path(d))
                .await
                .unwrap()
        );
    }
}

#[tokio::test]
async fn timeout_stops_every_running_query_and_is_transient() {
    let d = date(RUN_DATE);
    let (_, lake) = s3_lake("timeout").await;
    let proxy = FaultProxy::start(
        &moto_endpoint(),
        unload_hook(lake.clone(), None, |_| Fate::Hang),
    )
    .await;
    let s = AthenaSettings {
        timeout: Duration::from_millis(600),
        ..settings()
    };
    let t0 = Instant::now();
    let err = athena_extract_error(&lake, d, s, &proxy.url).await;
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
    assert!(err.to_string().contains("still RUNNING after"), "{err}");
    let mut started: Vec<String> = proxy.started().into_iter().map(|s| s.query_id).collect();
    started.sort();
    let mut stopped = proxy.stopped();
    stopped.sort();
    assert_eq!(started.len(), 7);
    assert_eq!(stopped, started, "every query stopped");
    for id in &started {
        assert_eq!(proxy.moto_state(id).await, "CANCELLED");
    }
}

#[tokio::test]
async fn persistent_throttling_is_transient_and_unknown_workgroup_is_bad_input() {
    let d = date(RUN_DATE);
    let (_, lake) = s3_lake("throttle").await;
    let proxy = FaultProxy::start(
        &moto_endpoint(),
        unload_hook(lake.clone(), None, |_| Fate::Hang),
    )
    .await;
    proxy.throttle_starts(1000);
    let err = athena_extract_error(&lake, d, settings(), &proxy.url).await;
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
    assert!(err.to_string().contains("ThrottlingException"), "{err}");
    assert_eq!(proxy.throttled(), 3, "the SDK tried api_max_attempts times");
    assert!(proxy.started().is_empty());

    // moto refuses a workgroup that does not exist, as Athena does: retrying will not help.
    proxy.throttle_starts(0);
    let s = AthenaSettings {
        workgroup: "no_such_workgroup".parse().unwrap(),
        ..settings()
    };
    let err = athena_extract_error(&lake, d, s, &proxy.url).await;
    assert_eq!(err.class(), ErrorClass::BadInput, "{err}");
    assert!(
        err.to_string().contains("WorkGroup does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn athena_needs_an_s3_data_root() {
    let lake = memory_root("athena-not-s3");
    let err = athena_extract_error(&lake, date(RUN_DATE), settings(), &moto_endpoint()).await;
    assert_eq!(err.class(), ErrorClass::BadInput);
    assert!(err.to_string().contains("not an s3:// URL"), "{err}");
}

/// Extracts to `lake` for `d` through Athena reached at `endpoint` with `settings`, for a test
/// that expects the extract to fail: its error.
async fn athena_extract_error(
    lake: &DataRoot,
    d: RunDate,
    settings: AthenaSettings,
    endpoint: &str,
) -> repurchase_extract::ExtractError {
    let athena = AthenaSource::connect(settings, &store_config(endpoint))
        .await
        .unwrap();
    repurchase_extract::extract(lake, d, &Source::Athena(athena))
        .await
        .unwrap_err()
}

fn extract_command(proxy_url: &str, data_root: &str) -> Command {
    let mut cmd = Command::new(binary("extract"));
    cmd.env_remove("RUST_LOG")
        .env("REPURCHASE_LOG_FORMAT", "json")
        .env("REPURCHASE_RUN_DATE", RUN_DATE)
        .env("REPURCHASE_DATA_ROOT", data_root)
        .env("REPURCHASE_SOURCE", "athena")
        .env("REPURCHASE_ATHENA_POLL_MS", "20")
        .env("REPURCHASE_ATHENA_TIMEOUT_SECS", "120")
        .env("AWS_ENDPOINT_URL", proxy_url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// Waits for a child without blocking the runtime the proxy runs on.
async fn wait_child(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("extract did not exit within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read_stderr(child: &mut std::process::Child) -> String {
    use std::io::Read;
    let mut s = String::new();
    child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_exits_2_on_a_failed_query_and_75_on_sigterm_after_stopping_queries() {
    let moto = moto_endpoint();

    // A FAILED query: exit 2, Athena's reason in the JSON log.
    let (spec, lake) = s3_lake("bin-fail").await;
    let reason = "SYNTAX_ERROR: line 1:8: Column 'colour' cannot be resolved";
    let proxy = FaultProxy::start(
        &moto,
        unload_hook(lake.clone(), None, move |t| match t {
            Table::Users => user_error(reason),
            _ => Fate::Succeed { running_polls: 50 },
        }),
    )
    .await;
    let mut child = extract_command(&proxy.url, &spec).spawn().unwrap();
    let status = wait_child(&mut child, Duration::from_secs(60)).await;
    let log = read_stderr(&mut child);
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains(reason) && log.contains("\"exit_code\":2"),
        "{log}"
    );

    // SIGTERM while queries run: every running query is stopped, then exit 75.
    let (spec, lake) = s3_lake("bin-term").await;
    let proxy = FaultProxy::start(&moto, unload_hook(lake.clone(), None, |_| Fate::Hang)).await;
    let mut child = extract_command(&proxy.url, &spec).spawn().unwrap();
    let t0 = Instant::now();
    while proxy.started().len() < 7 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "queries not started"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "extract exited early ({status}): {}",
                read_stderr(&mut child)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_child(&mut child, Duration::from_secs(30)).await;
    let log = read_stderr(&mut child);
    assert_eq!(status.code(), Some(75), "{log}");
    assert!(log.contains("SIGTERM received"), "{log}");
    let mut started: Vec<String> = proxy.started().into_iter().map(|s| s.query_id).collect();
    started.sort();
    let mut stopped = proxy.stopped();
    stopped.sort();
    assert_eq!(stopped, started, "{log}");
    for id in &started {
        assert_eq!(proxy.moto_state(id).await, "CANCELLED");
    }
}

#[test]
fn help_lists_the_athena_options_and_bad_names_are_refused() {
    let out = Command::new(binary("extract"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--athena-database",
        "REPURCHASE_ATHENA_DATABASE",
        "--athena-workgroup",
        "REPURCHASE_ATHENA_WORKGROUP",
        "--athena-timeout-secs",
        "REPURCHASE_ATHENA_TIMEOUT_SECS",
        "--athena-poll-ms",
        "REPURCHASE_ATHENA_POLL_MS",
        "thelook_ecommerce",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    let out = Command::new(binary("extract"))
        .args(["--run-date", RUN_DATE, "--data-root", "s3://b/x"])
        .args(["--source", "athena"])
        .env("REPURCHASE_ATHENA_DATABASE", "thelook; DROP TABLE users")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid Athena name"));
}

// ---- the SQL, parsed by sqlglot ----

fn workspace() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs tests/athena_sql_check.py over `DIALECT:PATH` arguments; one JSON value per file.
fn sqlglot_check(args: &[String]) -> (bool, Vec<serde_json::Value>) {
    let out = Command::new(venv_python())
        .arg(workspace().join("tests/athena_sql_check.py"))
        .args(args)
        .output()
        .expect("run sqlglot check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let results: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(
        results.len(),
        args.len(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), results)
}

fn sql_files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(workspace().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

/// The Hive type Athena DDL should declare for an Arrow type of our Parquet files.
fn hive_type(dt: &str) -> &'static str {
    match dt {
        "Int64" => "BIGINT",
        "Float64" => "DOUBLE",
        "Utf8" | "Utf8View" | "LargeUtf8" => "STRING",
        "Boolean" => "BOOLEAN",
        // Widened: Athena has no unsigned types.
        "UInt32" => "BIGINT",
        t if t.starts_with("Timestamp(") => "TIMESTAMP",
        other => panic!("no Athena type chosen for Arrow {other}"),
    }
}

fn ddl_columns(result: &serde_json::Value) -> Vec<(String, String)> {
    result["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c[0].as_str().unwrap().to_string(),
                c[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn expected_columns(fields: &[(String, String)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(n, t)| (n.clone(), hive_type(t).to_string()))
        .collect()
}

#[tokio::test]
async fn extraction_sql_and_ddl_parse_with_sqlglot_and_match_the_schemas() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = Vec::new();
    for f in sql_files("sql/extract") {
        args.push(format!("trino:{}", f.display()));
    }
    // The statements exactly as sent to Athena.
    let root = DataRoot::open("s3://lake-bucket/prod", &StoreConfig::default()).unwrap();
    for t in Table::ALL {
        let u = Unload::new(&root, t, date(RUN_DATE)).unwrap();
        let path = tmp.path().join(format!("unload_{}.sql", t.name()));
        std::fs::write(&path, &u.query).unwrap();
        args.push(format!("unload:{}", path.display()));
    }
    let ddl = sql_files("sql/ddl");
    assert_eq!(ddl.len(), 10, "7 raw tables, features train/score, scores");
    for f in &ddl {
        args.push(format!("athena:{}", f.display()));
    }
    let (ok, results) = sqlglot_check(&args);
    for r in &results {
        assert_eq!(r["ok"], true, "{r}");
    }
    assert!(ok);

    let by_table: BTreeMap<String, &serde_json::Value> = results
        .iter()
        .filter(|r| r["kind"] == "create_table")
        .map(|r| (r["table"].as_str().unwrap().to_string(), r))
        .collect();
    for r in results.iter().filter(|r| r["kind"] != "create_table") {
        let table: Table = r["tables"][0].as_str().unwrap().parse().unwrap();
        let names: Vec<&str> = r["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let schema = table.schema();
        let want: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, want, "{r}");
        let params = usize::from(table.time_column().is_some());
        assert_eq!(r["placeholders"], params, "{r}");
        if r["kind"] == "unload" {
            assert_eq!(r["properties"]["format"], "PARQUET");
            assert_eq!(r["properties"]["compression"], "SNAPPY");
        }
    }

    // Every DDL: external Parquet table, run_date projected as a date, location under ${data_root}.
    for (name, r) in &by_table {
        assert_eq!(r["external"], true, "{name}");
        assert_eq!(r["stored_as"], "PARQUET", "{name}");
        assert_eq!(
            r["partitions"],
            serde_json::json!([["run_date", "DATE"]]),
            "{name}"
        );
        let props = &r["tblproperties"];
        assert_eq!(props["projection.enabled"], "true", "{name}");
        assert_eq!(props["projection.run_date.type"], "date", "{name}");
        assert_eq!(props["projection.run_date.format"], "yyyy-MM-dd", "{name}");
        let location = r["location"].as_str().unwrap();
        assert!(location.starts_with("${data_root}/"), "{name}: {location}");
        assert_eq!(
            props["storage.location.template"].as_str().unwrap(),
            format!("{location}run_date=${{run_date}}/"),
            "{name}"
        );
    }

    // Raw tables: the core schemas.
    for t in Table::ALL {
        let r = by_table[&format!("raw_{}", t.name())];
        assert_eq!(
            r["location"].as_str().unwrap(),
            format!("${{data_root}}/{}/", Dataset::Raw(t).dir())
        );
        let schema = t.schema();
        let fields: Vec<(String, String)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect();
        assert_eq!(ddl_columns(r), expected_columns(&fields), "raw_{t}");
    }

    // Features: what build-features writes (read from its manifests); scores: the score schema.
    let d = date(RUN_DATE);
    let source = signal_source(300, 5, RUN_DATE).await;
    let lake = memory_root("athena-ddl");
    repurchase_extract::extract(&lake, d, &Source::Files(source))
        .await
        .unwrap();
    repurchase_features::build(
        &lake,
        d,
        &repurchase_features::BuildOptions::new(repurchase_features::AnchorMode::FirstOrder, 60),
    )
    .await
    .unwrap();
    for (dataset, name) in [
        (Dataset::FeaturesTrain, "features_train"),
        (Dataset::FeaturesScore, "features_score"),
    ] {
        let (m, _) = Manifest::read(&lake, dataset, d).await.unwrap();
        let fields: Vec<(String, String)> = m
            .schema
            .iter()
            .map(|f| (f.name.clone(), f.data_type.clone()))
            .collect();
        let r = by_table[name];
        assert_eq!(ddl_columns(r), expected_columns(&fields), "{name}");
        assert_eq!(
            r["location"].as_str().unwrap(),
            format!("${{data_root}}/{}/", dataset.dir())
        );
    }
    let score_schema = repurchase_score::output_schema();
    let fields: Vec<(String, String)> = score_schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().to_string()))
        .collect();
    assert_eq!(
        ddl_columns(by_table["scores"]),
        expected_columns(&fields),
        "scores"
    );
}

/// The check can fail: a broken SELECT (one of ours with a comma lost, and a cast without its
/// type), a broken CREATE TABLE, a file of the wrong kind and an UNLOAD whose location was
/// tampered with are each reported with the file name and the reason. (sqlglot is lenient: it
/// accepts a trailing comma before FROM or a CAST missing its closing parenthesis, so this is a
/// syntax check, not a proof that Athena will accept the query.)
#[test]
fn sqlglot_check_rejects_broken_sql() {
    let tmp = tempfile::tempdir().unwrap();
    let orders = std::fs::read_to_string(workspace().join("sql/extract/orders.sql")).unwrap();
    let damaged = orders.replacen("AS order_id,", "AS order_id", 1);
    assert_ne!(damaged, orders);
    let cases = [
        (
            "trino",
            "damaged_orders.sql",
            damaged.as_str(),
            "ParseError",
        ),
        (
            "trino",
            "broken_select.sql",
            "SELECT CAST(id AS) AS id FROM orders WHERE created_at < ?",
            "Expected TYPE after CAST",
        ),
        (
            "athena",
            "broken_ddl.sql",
            "CREATE EXTERNAL TABLE raw_x (id BIGINT\nSTORED AS PARQUET",
            "Expecting )",
        ),
        ("athena", "not_ddl.sql", "SELECT 1", "expected CREATE TABLE"),
        (
            "unload",
            "bad_unload.sql",
            "UNLOAD (SELECT id FROM orders) TO 's3://b/p/'' OR 1=1' WITH (format = 'PARQUET')",
            "not of the form",
        ),
    ];
    let mut args = Vec::new();
    for (dialect, name, sql, _) in &cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, sql).unwrap();
        args.push(format!("{dialect}:{}", path.display()));
    }
    let (ok, results) = sqlglot_check(&args);
    assert!(!ok, "the check passed broken SQL: {results:?}");
    for ((_, name, _, why), r) in cases.iter().zip(&results) {
        assert_eq!(r["ok"], false, "{r}");
        assert!(r["file"].as_str().unwrap().ends_with(name), "{r}");
        assert!(r["error"].as_str().unwrap().contains(why), "{r}");
    }
}
