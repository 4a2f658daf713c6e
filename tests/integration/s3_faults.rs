//! S3 faults: the five worker binaries through a fault-injecting proxy ([`proxy`]) in front of the
//! moto server (`REPURCHASE_TEST_S3_ENDPOINT`, started by `scripts/test`).
//!
//! - At 10% faults (500 InternalError, 503 SlowDown, slow answers, dropped connections, object
//!   bodies cut off mid-way) the whole pipeline completes and writes exactly the bytes of a clean
//!   run: object_store's retries absorb every fault, and nothing a worker writes depends on how
//!   many attempts a request took.
//! - In a persistent outage (every request 503, or every connection dropped) each worker gives up
//!   after its bounded retries, exits 75 (transient: the DAG retries the task) with a message
//!   naming the S3 operation, the object and the fault, and publishes nothing. An outage that
//!   starts half-way through a rerun also ends in 75, leaves no new manifest and no published
//!   partition with a changed file, and the next run restores the same bytes.
//!
//! Whether a request gets a fault is drawn from a fixed seed, keyed by the request rather than by
//! arrival order, so the figures the tests print repeat from run to run (for the same code).
//!
//! Which faults object_store 0.13 retries (`client/retry.rs`, `client/get.rs`), and so what this
//! proxy may inject without failing the run:
//!
//! - 5xx, 429 and 408 answers: every request, up to `REPURCHASE_STORE_MAX_RETRIES` times within
//!   `REPURCHASE_STORE_RETRY_TIMEOUT_SECS`, with exponential backoff.
//! - A connection closed before any answer (hyper's "incomplete message"): every request, PUT,
//!   POST and DELETE included, because object_store counts it as "request not sent". That is
//!   safe for what the workers send: every write is an overwriting PUT of the same bytes and a
//!   repeated delete succeeds, so a retry after S3 had already acted changes nothing. The proxy
//!   drops half of these connections after moto has acted on the request, to check exactly that.
//! - A connection reset or a timeout while waiting: only requests marked idempotent (GET, HEAD,
//!   overwriting PUT, parts); the bulk-delete POST is not retried then. The proxy does not inject
//!   resets: a dropped connection after the whole request has been read closes cleanly.
//! - An answer cut off mid-body: only object GETs (ranged or not), which object_store resumes
//!   with a range request (checking the ETag). A LIST or multipart answer is read after the retry
//!   loop and fails the request; the proxy therefore cuts off object GETs only.
//! - Slow answers are not faults to object_store (its request timeout is 30 s); they show that
//!   nothing depends on the order in which concurrent requests complete.

mod proxy;

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use repurchase_core::DataRoot;
use repurchase_datagen::{GenConfig, OutputFormat, Profile};

use crate::s3::{moto_config, s3_root, snapshot};
use crate::support::{binary, date, moto_endpoint};
use proxy::{FaultProxy, Mode, Stats};

const RUN_DATE: &str = "2025-06-30";

/// The five workers in DAG order, with the flags the DAG gives them.
fn stages(source_url: &str) -> Vec<(&'static str, Vec<String>)> {
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    vec![
        ("extract", s(&["--source", source_url])),
        ("build-features", vec![]),
        ("train", s(&["--valid-days", "180", "--test-days", "180"])),
        ("calibrate", vec![]),
        ("score", vec![]),
    ]
}

/// Runs one worker binary the way its ECS task does: only the settings a task definition gives
/// (the machine's AWS settings are cleared), JSON logs on stderr. `retries` is
/// (`REPURCHASE_STORE_MAX_RETRIES`, `REPURCHASE_STORE_RETRY_TIMEOUT_SECS`).
async fn run_worker(
    name: &str,
    args: &[String],
    endpoint: &str,
    data_root: &str,
    retries: (u32, u32),
) -> (Output, Duration) {
    let mut cmd = Command::new(binary(name));
    cmd.env_clear()
        .args(args)
        .env("REPURCHASE_RUN_DATE", RUN_DATE)
        .env("REPURCHASE_DATA_ROOT", data_root)
        .env("REPURCHASE_LOG_FORMAT", "json")
        .env("REPURCHASE_STORE_MAX_RETRIES", retries.0.to_string())
        .env("REPURCHASE_STORE_RETRY_TIMEOUT_SECS", retries.1.to_string())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // One owner per worker, as the DAG passes one per task instance: the run after an outage
        // takes over the lock the failed run could not release.
        .env("REPURCHASE_LOCK_OWNER", format!("s3-faults/{name}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // The proxy runs on this test's runtime: wait for the process off its worker threads.
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    (out, started.elapsed())
}

/// The `error` field of the worker's "stage failed" log line (its final word on stderr).
fn failure_message(stderr: &str) -> String {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "stage failed")
        .filter_map(|v| v["error"].as_str().map(str::to_string))
        .next_back()
        .unwrap_or_else(|| panic!("no \"stage failed\" line in stderr:\n{stderr}"))
}

/// The worker's own words, without object_store's detail that the log line goes on with.
fn headline(message: &str) -> &str {
    match message.find(": Generic S3 error") {
        Some(i) => &message[..i],
        None => message,
    }
}

/// Generates the source export (Parquet, as the production export is) straight into moto.
async fn source_on_s3(tag: &str, users: u64) -> (String, String) {
    let (bucket, source) = s3_root(tag, "source");
    let generated = repurchase_datagen::generate(&GenConfig::new(
        users,
        21,
        date(RUN_DATE).date(),
        Profile::Signal,
    ))
    .expect("generate");
    repurchase_datagen::write(&source, &generated, OutputFormat::Parquet)
        .await
        .expect("write source to S3");
    let url = format!("s3://{bucket}/source");
    (bucket, url)
}

async fn lake_snapshot(url: &str) -> BTreeMap<String, Bytes> {
    let root = DataRoot::open(url, &moto_config()).expect("lake root");
    snapshot(&root).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_through_10_percent_s3_faults_writes_identical_bytes() {
    let started = Instant::now();
    let moto = moto_endpoint();
    let (bucket, source_url) = source_on_s3("faults", 4_000).await;
    let clean_url = format!("s3://{bucket}/clean");
    let faulty_url = format!("s3://{bucket}/faulty");

    let mut clean_secs = 0.0;
    for (name, args) in stages(&source_url) {
        let (out, took) = run_worker(name, &args, &moto, &clean_url, (3, 30)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "clean {name}: {stderr}");
        clean_secs += took.as_secs_f64();
    }

    // Default retry count, as in production; the shorter timeout only bounds a test that hangs.
    let proxy = FaultProxy::start(
        &moto,
        Mode::Faults {
            percent: 10,
            seed: 0x5EED_FA17,
        },
    )
    .await;
    let mut faulty_secs = 0.0;
    let mut per_stage = Vec::new();
    for (name, args) in stages(&source_url) {
        let before = proxy.stats();
        let (out, took) = run_worker(name, &args, &proxy.url, &faulty_url, (10, 60)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{name} through the fault proxy exited {:?} ({}): {stderr}",
            out.status.code(),
            proxy.stats()
        );
        let after = proxy.stats();
        per_stage.push(format!(
            "{name} {:.1}s ({} requests, {} faults)",
            took.as_secs_f64(),
            after.requests - before.requests,
            after.faults() - before.faults()
        ));
        faulty_secs += took.as_secs_f64();
    }
    let stats: Stats = proxy.stats();
    drop(proxy);
    eprintln!(
        "s3 faults: pipeline on 4000 users through the fault proxy: {stats}; workers {faulty_secs:.1}s \
         with faults vs {clean_secs:.1}s clean; {}",
        per_stage.join(", ")
    );
    assert!(
        stats.proxy_errors.is_empty(),
        "the proxy failed itself: {:?}",
        stats.proxy_errors
    );

    // Every object, manifests included, of every worker is byte-identical.
    let clean = lake_snapshot(&clean_url).await;
    let faulty = lake_snapshot(&faulty_url).await;
    assert_eq!(
        faulty.keys().collect::<Vec<_>>(),
        clean.keys().collect::<Vec<_>>(),
        "the two lakes hold different objects"
    );
    for (k, v) in &clean {
        assert!(
            faulty[k] == *v,
            "{k} differs between the clean and the faulty run"
        );
    }
    let count = |suffix: &str| clean.keys().filter(|k| k.ends_with(suffix)).count();
    let (manifests, parquet, json) = (
        count("/_manifest.json"),
        count(".parquet"),
        count(".json") - count("/_manifest.json"),
    );
    for prefix in [
        "raw/",
        "features/train/",
        "features/score/",
        "models/",
        "scores/",
    ] {
        assert!(
            clean
                .keys()
                .any(|k| k.starts_with(prefix) && k.ends_with("/_manifest.json")),
            "nothing published under {prefix}: {:?}",
            clean.keys()
        );
    }
    assert!(
        clean
            .keys()
            .any(|k| k.contains("/calibration/") && k.ends_with("/_manifest.json")),
        "no calibration published"
    );
    eprintln!(
        "s3 faults: {} objects identical ({manifests} manifests, {parquet} Parquet, {json} other JSON); \
         test {:.1}s",
        clean.len(),
        started.elapsed().as_secs_f64()
    );

    // Every kind of fault was actually injected, more than once.
    assert!(stats.requests >= 100, "{stats}");
    for (kind, n, min) in [
        ("500", stats.internal_error, 2),
        ("503", stats.slow_down, 2),
        ("slow", stats.slow, 2),
        ("dropped", stats.dropped, 4),
        ("dropped after S3 acted", stats.dropped_after_upstream, 2),
        ("cut off", stats.cut_off, 2),
    ] {
        assert!(n >= min, "only {n} {kind} faults: {stats}");
    }
    let rate = stats.faults() as f64 / stats.requests as f64;
    assert!((0.05..0.15).contains(&rate), "fault rate {rate}: {stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_s3_outage_exits_75_with_a_clear_message_and_publishes_nothing() {
    let started = Instant::now();
    let moto = moto_endpoint();
    let (bucket, source_url) = source_on_s3("outage", 4_000).await;
    let lake_url = format!("s3://{bucket}/lake");
    let outages = [
        (
            "503 SlowDown",
            FaultProxy::start(&moto, Mode::Outage503).await,
        ),
        (
            "dropped connections",
            FaultProxy::start(&moto, Mode::OutageDrop).await,
        ),
    ];
    const MAX_RETRIES: u32 = 2;

    let mut report = Vec::new();
    for (name, args) in stages(&source_url) {
        let before = lake_snapshot(&lake_url).await;
        for (outage, proxy) in &outages {
            let requests_before = proxy.stats().requests;
            let (out, took) =
                run_worker(name, &args, &proxy.url, &lake_url, (MAX_RETRIES, 10)).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(75),
                "{name} in an outage ({outage}): {stderr}"
            );
            // Retries are bounded: 2 retries with 100 ms-based backoff, plus process start-up.
            assert!(
                took < Duration::from_secs(15),
                "{name} ({outage}) took {took:?}"
            );
            let attempts = proxy.stats().requests - requests_before;
            assert!(
                attempts > u64::from(MAX_RETRIES),
                "{name} ({outage}): only {attempts} requests reached the proxy"
            );
            let message = failure_message(&stderr);
            for must in [
                "S3 unavailable",
                &format!("after {MAX_RETRIES} retries"),
                "transient",
            ] {
                assert!(
                    message.contains(must),
                    "{name} ({outage}): {message:?} lacks {must:?}"
                );
            }
            assert!(
                message.contains(&format!("s3://{bucket}/")),
                "{name} ({outage}) names the object: {message}"
            );
            let fault = if outage.starts_with("503") {
                "503 SlowDown"
            } else {
                "connection closed"
            };
            assert!(message.contains(fault), "{name} ({outage}): {message}");
            // Nothing written at all, so in particular no new manifest.
            let after = lake_snapshot(&lake_url).await;
            assert_eq!(
                after.keys().collect::<Vec<_>>(),
                before.keys().collect::<Vec<_>>(),
                "{name} ({outage}) changed the lake"
            );
            report.push(format!(
                "{name} / {outage}: exit 75 in {:.2}s after {attempts} requests: {}",
                took.as_secs_f64(),
                headline(&message)
            ));
        }

        // S3 is back: the worker succeeds (writing the next worker's inputs), through a proxy that
        // only counts its requests.
        let counter = FaultProxy::start(
            &moto,
            Mode::Faults {
                percent: 0,
                seed: 0,
            },
        )
        .await;
        let (out, _) = run_worker(name, &args, &counter.url, &lake_url, (3, 30)).await;
        assert!(
            out.status.success(),
            "{name} once S3 is back: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let requests = counter.stats().requests;
        let published = lake_snapshot(&lake_url).await;

        // The outage starts half-way through a rerun (which first unpublishes the partitions it
        // replaces, then writes files, then manifests): the worker still exits 75, and every
        // manifest left is one of the published run's, listing files that are all intact.
        let midway = FaultProxy::start(
            &moto,
            Mode::OutageAfter {
                requests: requests / 2,
            },
        )
        .await;
        let (out, took) = run_worker(name, &args, &midway.url, &lake_url, (MAX_RETRIES, 10)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(75),
            "{name}, outage after {} requests: {stderr}",
            requests / 2
        );
        let message = failure_message(&stderr);
        for must in ["S3 unavailable", "503", "transient"] {
            assert!(
                message.contains(must),
                "{name} (outage mid-way): {message:?} lacks {must:?}"
            );
        }
        let left = lake_snapshot(&lake_url).await;
        let mut manifests = 0;
        for (k, v) in left.iter().filter(|(k, _)| k.ends_with("/_manifest.json")) {
            assert!(
                published.get(k) == Some(v),
                "{name}: a new manifest {k} after the outage"
            );
            let m: serde_json::Value = serde_json::from_slice(v).unwrap();
            let dir = k.trim_end_matches("_manifest.json");
            for f in m["files"].as_array().unwrap() {
                let file = format!("{dir}{}", f["name"].as_str().unwrap());
                assert!(
                    left.get(&file) == published.get(&file),
                    "{name}: {file} changed under its manifest"
                );
            }
            manifests += 1;
        }
        report.push(format!(
            "{name} / 503 from request {} of {requests}: exit 75 in {:.2}s, {} of {} manifests left \
             (the rest unpublished): {}",
            requests / 2 + 1,
            took.as_secs_f64(),
            manifests,
            published.keys().filter(|k| k.ends_with("/_manifest.json")).count(),
            headline(&message)
        ));
        // And a rerun with S3 back restores exactly the published bytes.
        let (out, _) = run_worker(name, &args, &moto, &lake_url, (3, 30)).await;
        assert!(
            out.status.success(),
            "{name} rerun: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rerun = lake_snapshot(&lake_url).await;
        assert_eq!(
            rerun.keys().collect::<Vec<_>>(),
            published.keys().collect::<Vec<_>>()
        );
        for (k, v) in &published {
            assert!(rerun[k] == *v, "{name}: {k} differs after the rerun");
        }
    }
    eprintln!(
        "s3 outage ({:.1}s):\n  {}",
        started.elapsed().as_secs_f64(),
        report.join("\n  ")
    );
}

/// `repurchase generate` in an S3 outage exits 75 (transient) like the workers, not 2: its
/// storage errors keep their class through the command's edge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_in_an_s3_outage_exits_75() {
    let moto = moto_endpoint();
    let (bucket, _) = s3_root("generate-outage", "gen");
    let proxy = FaultProxy::start(&moto, Mode::Outage503).await;
    let out_url = format!("s3://{bucket}/gen");
    let generate = [
        "generate",
        "--users",
        "200",
        "--seed",
        "3",
        "--end-date",
        RUN_DATE,
        "--format",
        "parquet",
        "--out",
    ];
    let mut cmd = Command::new(binary("repurchase"));
    cmd.env_clear()
        .args(generate)
        .arg(&out_url)
        .env("REPURCHASE_STORE_MAX_RETRIES", "1")
        .env("REPURCHASE_STORE_RETRY_TIMEOUT_SECS", "5")
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("spawn repurchase");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(stderr.contains("503"), "{stderr}");
    // The same command without the outage succeeds: the 75 came from the outage.
    let direct = Command::new(binary("repurchase"))
        .args(generate)
        .arg(&out_url)
        .env("AWS_ENDPOINT_URL", &moto)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("spawn repurchase");
    assert!(
        direct.status.success(),
        "{}",
        String::from_utf8_lossy(&direct.stderr)
    );
}
