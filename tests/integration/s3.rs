//! The pipeline on a real S3-compatible server: moto on 127.0.0.1, which `scripts/test` starts and
//! names in `REPURCHASE_TEST_S3_ENDPOINT`. Nothing is faked: every request goes over HTTP to moto,
//! signed, retried and (above the part size) uploaded in parts exactly as against AWS.
//!
//! The tests read no `AWS_*` variable: each builds its [`StoreConfig`] from explicit values and
//! works in a bucket of its own, so they run in parallel and do not depend on the machine's
//! credentials. The denied-credentials test starts a second, private moto server because turning
//! on moto's IAM enforcement is global to a server.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use datafusion::prelude::SessionContext;
use object_store::ObjectStoreExt;
use repurchase_core::layout::Dataset;
use repurchase_core::manifest::sha256_hex;
use repurchase_core::publish::{MULTIPART_PART_BYTES, PartitionWriter};
use repurchase_core::schema::Table;
use repurchase_core::{CoreError, DataRoot, ErrorClass, Manifest, StoreConfig, parquet_io};
use repurchase_datagen::{GenConfig, OutputFormat, Profile};
use repurchase_features::AnchorMode;

use crate::support::{
    binary, date, generated_source, memory_root, moto_endpoint, run_pipeline, test_provenance,
};

static BUCKETS: AtomicU64 = AtomicU64::new(0);

/// Settings a task definition would give, spelled out: the moto endpoint, a region, dummy keys
/// (moto accepts any unless IAM enforcement is on) and short retries so failures end in seconds.
pub(crate) fn s3_config(endpoint: &str, key_id: &str, secret: &str) -> StoreConfig {
    StoreConfig::from_vars([
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", key_id),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("REPURCHASE_STORE_MAX_RETRIES", "3"),
        ("REPURCHASE_STORE_RETRY_TIMEOUT_SECS", "30"),
    ])
}

pub(crate) fn moto_config() -> StoreConfig {
    s3_config(&moto_endpoint(), "testing", "testing")
}

/// A bucket name no other test (or earlier run against the same server) uses.
pub(crate) fn unique_bucket(tag: &str) -> String {
    let n = BUCKETS.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("rp-{tag}-{}-{n}-{nanos:x}", std::process::id())
}

/// One HTTP/1.1 request to moto over a plain socket: object_store cannot create buckets and the
/// tests have no HTTP client crate, and moto takes unsigned requests while auth is off.
pub(crate) fn http(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let addr = endpoint
        .strip_prefix("http://")
        .expect("http endpoint")
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).unwrap();
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {resp:?}"));
    (status, resp)
}

pub(crate) fn create_bucket(endpoint: &str, bucket: &str) {
    let (status, resp) = http(endpoint, "PUT", &format!("/{bucket}"), &[], "");
    assert_eq!(status, 200, "create bucket {bucket}: {resp}");
}

/// A fresh bucket on the shared moto server and a root below it.
pub(crate) fn s3_root(tag: &str, prefix: &str) -> (String, DataRoot) {
    let bucket = unique_bucket(tag);
    create_bucket(&moto_endpoint(), &bucket);
    let root = DataRoot::open(&format!("s3://{bucket}/{prefix}"), &moto_config()).expect("s3 root");
    (bucket, root)
}

pub(crate) async fn snapshot(root: &DataRoot) -> BTreeMap<String, Bytes> {
    let mut out = BTreeMap::new();
    for meta in root.list("").await.unwrap() {
        let rel = root.relative(&meta.location);
        let bytes = root.get(&rel).await.unwrap();
        out.insert(rel, bytes);
    }
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A moto server of this test's own, stopped (by its pid) when dropped.
pub(crate) struct PrivateMoto {
    child: Child,
    pub(crate) endpoint: String,
}

impl PrivateMoto {
    pub(crate) fn start() -> Self {
        Self::start_with(None)
    }

    /// A private server that evaluates `StringLike` conditions on `s3:prefix`, as AWS does
    /// (`tests/moto_iam_conditions.py`; plain moto ignores them).
    pub(crate) fn start_evaluating_prefix_conditions() -> Self {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moto_iam_conditions.py");
        Self::start_with(Some(&script))
    }

    fn start_with(script: Option<&std::path::Path>) -> Self {
        let venv = std::env::var("REPURCHASE_TEST_VENV").unwrap_or_else(|_| {
            format!(
                "{}/.cache/repurchase/test-venv",
                std::env::var("HOME").expect("HOME")
            )
        });
        let port = free_port();
        let mut cmd = match script {
            Some(script) => {
                let mut c = Command::new(format!("{venv}/bin/python"));
                c.arg(script);
                c
            }
            None => Command::new(format!("{venv}/bin/moto_server")),
        };
        let exe = format!("{cmd:?}");
        let child = cmd
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {exe} (scripts/setup-test-deps installs it): {e}"));
        let server = PrivateMoto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "private moto did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Value of `<tag>…</tag>` in an XML response.
fn xml_value(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no {tag} in {xml}"))
        + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    xml[start..end].to_string()
}

/// An IAM call while moto's auth is off: moto routes by the credential scope of the
/// Authorization header and does not check the signature yet.
fn iam(endpoint: &str, params: &str) -> String {
    let auth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-east-1/iam/aws4_request, \
                SignedHeaders=host, Signature=0";
    let (status, resp) = http(
        endpoint,
        "POST",
        "/",
        &[
            ("Authorization", auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("{params}&Version=2010-05-08"),
    );
    assert_eq!(status, 200, "IAM {params}: {resp}");
    resp
}

/// Creates an IAM user (with an inline policy, if given) and returns its access key.
pub(crate) fn iam_user(endpoint: &str, name: &str, policy: Option<&str>) -> (String, String) {
    iam(endpoint, &format!("Action=CreateUser&UserName={name}"));
    if let Some(policy) = policy {
        let encoded: String = policy
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        iam(
            endpoint,
            &format!(
                "Action=PutUserPolicy&UserName={name}&PolicyName=lake&PolicyDocument={encoded}"
            ),
        );
    }
    let resp = iam(endpoint, &format!("Action=CreateAccessKey&UserName={name}"));
    (
        xml_value(&resp, "AccessKeyId"),
        xml_value(&resp, "SecretAccessKey"),
    )
}

pub(crate) fn int_batch(schema: &Arc<Schema>, values: Vec<i64>) -> RecordBatch {
    RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))]).unwrap()
}

pub(crate) async fn count_and_sum(
    root: &DataRoot,
    dataset: Dataset,
    d: repurchase_core::RunDate,
) -> (i64, i64) {
    let ctx = SessionContext::new();
    parquet_io::register_partition(&ctx, root, dataset, d, "t")
        .await
        .unwrap();
    let batches = ctx
        .sql("SELECT count(*) AS n, sum(x) AS s FROM t")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let n = crate::support::col::<Int64Array>(&batches[0], "n").value(0);
    let s = crate::support::col::<Int64Array>(&batches[0], "s").value(0);
    (n, s)
}

#[tokio::test]
async fn s3_large_parquet_is_a_multipart_upload_and_round_trips() {
    let (_, root) = s3_root("multipart", "lake");
    let d = date("2025-03-02");
    let ds = Dataset::Scores;
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    // 3M pseudo-random integers: about 24 MB that neither dictionary nor snappy can shrink.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let values: Vec<i64> = (0..3_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as i64 >> 1
        })
        .collect();
    let sum: i64 = values.iter().fold(0i64, |a, v| a.wrapping_add(*v));
    let batch = int_batch(&schema, values);
    let expected = parquet_io::encode(&schema, std::slice::from_ref(&batch)).unwrap();
    assert!(
        expected.len() > 2 * MULTIPART_PART_BYTES,
        "test file is only {} bytes",
        expected.len()
    );

    let mut w = PartitionWriter::begin(&root, ds, d).await.unwrap();
    w.write_parquet("part-00000.parquet", schema.clone(), &[batch])
        .await
        .unwrap();
    let m = w
        .commit(test_provenance(serde_json::json!({}), &schema))
        .await
        .unwrap();

    let rel = format!("{}/part-00000.parquet", ds.partition(d));
    // S3 gives an object uploaded in N parts the ETag "<md5 of the part md5s>-N"; a single PUT
    // has a plain MD5. So this is moto's own record of a multipart upload.
    let meta = root.store().head(&root.path(&rel)).await.unwrap();
    let parts = expected.len().div_ceil(MULTIPART_PART_BYTES);
    let etag = meta.e_tag.clone().expect("etag");
    assert!(
        etag.trim_matches('"').ends_with(&format!("-{parts}")),
        "{} bytes should be {parts} parts; ETag {etag}",
        expected.len()
    );
    assert_eq!(meta.size, expected.len() as u64);
    let got = root.get(&rel).await.unwrap();
    assert!(
        got == expected[..],
        "the object differs from the encoded file"
    );
    assert_eq!(m.files[0].sha256, sha256_hex(&expected));
    assert_eq!(count_and_sum(&root, ds, d).await, (3_000_000, sum));

    // A small file of the same partition is one plain PUT.
    root.put("small.bin", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let small = root.store().head(&root.path("small.bin")).await.unwrap();
    assert!(!small.e_tag.unwrap().contains('-'));
}

#[tokio::test]
async fn s3_pipeline_gives_the_same_bytes_as_memory() {
    let d = date("2025-06-30");
    // The source export lives on S3 too, so extract reads CSV from S3.
    let (bucket, source) = s3_root("pipeline", "source");
    let generated =
        repurchase_datagen::generate(&GenConfig::new(4_000, 21, d.date(), Profile::Signal))
            .expect("generate");
    repurchase_datagen::write(&source, &generated, OutputFormat::Csv)
        .await
        .expect("write source to S3");
    let lake = DataRoot::open(&format!("s3://{bucket}/lake"), &moto_config()).unwrap();

    let started = Instant::now();
    let on_s3 = run_pipeline(&source, &lake, d, AnchorMode::FirstOrder, 180).await;
    let s3_secs = started.elapsed().as_secs_f64();
    let mem = memory_root("s3-twin");
    let started = Instant::now();
    let in_memory = run_pipeline(&source, &mem, d, AnchorMode::FirstOrder, 180).await;
    eprintln!(
        "pipeline on 4000 users: lake on S3 (moto) {s3_secs:.1}s, in memory {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(on_s3.score.scored, in_memory.score.scored);
    assert!(on_s3.score.scored > 0);

    // Every object, manifests included, is byte-identical.
    let a = snapshot(&lake).await;
    let b = snapshot(&mem).await;
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(v == &b[k], "{k} differs between the S3 and the memory lake");
    }
    for must in [
        format!("{}/part-00000.parquet", Dataset::Scores.partition(d)),
        format!("{}/model.json", Dataset::Model.partition(d)),
        Dataset::FeaturesTrain.manifest_path(d),
    ] {
        assert!(a.contains_key(&must), "{must} missing: {:?}", a.keys());
    }
    assert!(a.keys().any(
        |k| k.starts_with(&format!("{}/", Dataset::FeaturesTrain.partition(d)))
            && k.ends_with(".parquet")
    ));
}

#[tokio::test]
async fn s3_missing_bucket_is_a_configuration_error_naming_the_bucket() {
    let bucket = unique_bucket("absent");
    let root = DataRoot::open(&format!("s3://{bucket}/lake"), &moto_config()).unwrap();
    let source = generated_source(300, 2, "2025-06-30", Profile::Signal, OutputFormat::Csv).await;

    let started = Instant::now();
    let checks: Vec<(&str, CoreError)> = vec![
        ("list", root.list("raw").await.unwrap_err()),
        ("list_dirs", root.list_dirs("raw").await.unwrap_err()),
        (
            "put",
            root.put("x", Bytes::from_static(b"x")).await.unwrap_err(),
        ),
        // A missing object is `None`, a missing bucket is not.
        ("get_opt", root.get_opt("x").await.unwrap_err()),
        ("delete", root.delete("x").await.unwrap_err()),
        (
            "extract",
            repurchase_extract::extract(
                &root,
                date("2025-06-30"),
                &repurchase_extract::Source::Files(source),
            )
            .await
            .map_err(|e| match e {
                repurchase_extract::ExtractError::Core(core) => core,
                other => panic!("extract: {other}"),
            })
            .unwrap_err(),
        ),
    ];
    for (what, err) in checks {
        assert!(
            matches!(err, CoreError::BucketNotFound { .. }),
            "{what}: {err:?}"
        );
        assert_eq!(err.class(), ErrorClass::BadInput, "{what}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("S3 bucket \"{bucket}\" does not exist")),
            "{what}: {msg}"
        );
        assert!(
            msg.contains(&moto_endpoint()),
            "{what} names the endpoint: {msg}"
        );
    }
    // Not retried: a 404 is an answer, not a fault.
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn s3_unreachable_endpoint_is_transient_after_bounded_retries() {
    // Nothing listens on a port just released by the OS.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let cfg = StoreConfig::from_vars([
        ("AWS_ENDPOINT_URL", dead.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("REPURCHASE_STORE_MAX_RETRIES", "2"),
        ("REPURCHASE_STORE_RETRY_TIMEOUT_SECS", "10"),
    ]);
    let root = DataRoot::open("s3://rp-unreachable/lake", &cfg).unwrap();
    let started = Instant::now();
    let err = root.list("raw").await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err.class(), ErrorClass::Transient, "{err:?}");
    let chain = repurchase_core::cli::error_chain(&err);
    assert!(chain.contains("s3://rp-unreachable/lake/raw"), "{chain}");
    // The configured retry count reached object_store's retry loop, which backed off in between.
    assert!(chain.contains("after 2 retries, max_retries: 2"), "{chain}");
    assert!(
        elapsed >= Duration::from_millis(100) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    let err = root.put("x", Bytes::from_static(b"x")).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient, "{err:?}");
}

#[tokio::test]
async fn s3_denied_credentials_are_a_configuration_error_naming_the_bucket() {
    let moto = PrivateMoto::start();
    let bucket = unique_bucket("auth");
    create_bucket(&moto.endpoint, &bucket);
    let allowed_policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::{bucket}","arn:aws:s3:::{bucket}/*"]}}]}}"#
    );
    let writer = iam_user(&moto.endpoint, "lake-writer", Some(&allowed_policy));
    let nobody = iam_user(&moto.endpoint, "no-policy", None);
    // From here on moto checks every request's signature and the caller's IAM policy.
    let (status, resp) = http(&moto.endpoint, "POST", "/moto-api/reset-auth", &[], "0");
    assert_eq!(status, 200, "{resp}");

    let url = format!("s3://{bucket}/lake");
    let open = |key: &(String, String)| {
        DataRoot::open(&url, &s3_config(&moto.endpoint, &key.0, &key.1)).unwrap()
    };
    // Control: credentials with a policy work, so the refusals below are about credentials.
    let ok = open(&writer);
    ok.put("x.bin", Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(&ok.get("x.bin").await.unwrap()[..], b"x");
    assert_eq!(ok.list("").await.unwrap().len(), 1);

    let unknown = ("AKIAUNKNOWNKEY000000".to_string(), "wrong".to_string());
    let wrong_secret = (writer.0.clone(), "not-the-secret".to_string());
    for (who, key, code) in [
        ("unknown key", &unknown, "InvalidAccessKeyId"),
        ("wrong secret", &wrong_secret, "SignatureDoesNotMatch"),
        ("no policy", &nobody, "AccessDenied"),
    ] {
        let root = open(key);
        for (op, err) in [
            ("list", root.list("").await.unwrap_err()),
            ("get", root.get("x.bin").await.unwrap_err()),
            (
                "put",
                root.put("y.bin", Bytes::from_static(b"y"))
                    .await
                    .unwrap_err(),
            ),
        ] {
            let CoreError::AccessDenied { request, .. } = &err else {
                panic!("{who} {op}: {err:?}");
            };
            assert_eq!(request.code, code, "{who} {op}: {err}");
            assert_eq!(request.bucket, bucket);
            assert_eq!(err.class(), ErrorClass::BadInput, "{who} {op}: {err}");
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("bucket {bucket:?}")),
                "{who} {op}: {msg}"
            );
            assert!(msg.contains("check the credentials"), "{who} {op}: {msg}");
            assert!(
                !msg.contains(&writer.1),
                "{who} {op} leaks the secret: {msg}"
            );
        }
    }
    assert!(
        !ok.exists("y.bin").await.unwrap(),
        "a refused put wrote nothing"
    );

    // The worker as ECS runs it: refused credentials exit 2 (fix the configuration, do not retry).
    let source_url = format!("s3://{bucket}/source");
    let out = run_extract(&[
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", unknown.0.as_str()),
        ("AWS_SECRET_ACCESS_KEY", unknown.1.as_str()),
        ("REPURCHASE_RUN_DATE", "2025-06-30"),
        ("REPURCHASE_DATA_ROOT", url.as_str()),
        ("REPURCHASE_SOURCE", source_url.as_str()),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    // The first request of a worker takes its stage lock under the data root.
    assert!(
        err.contains(&format!(
            "S3 denied put on {url}/_locks/extract/run_date=2025-06-30.json"
        )) && err.contains("InvalidAccessKeyId"),
        "{err}"
    );
    assert!(err.contains(&format!("bucket \\\"{bucket}\\\"")), "{err}");
}

fn run_extract(env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(binary("extract"));
    // Only what the test sets: the worker must not pick up the machine's AWS settings.
    cmd.env_clear().env("REPURCHASE_LOG_FORMAT", "json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("spawn extract")
}

#[tokio::test]
async fn extract_binary_on_s3_exits_0_2_75() {
    let endpoint = moto_endpoint();
    let (bucket, source) = s3_root("bin", "source");
    let generated = repurchase_datagen::generate(&GenConfig::new(
        400,
        7,
        date("2025-06-30").date(),
        Profile::Signal,
    ))
    .unwrap();
    repurchase_datagen::write(&source, &generated, OutputFormat::Parquet)
        .await
        .unwrap();
    let source_url = format!("s3://{bucket}/source");
    const SECRET: &str = "not-for-logs-Zq81x";
    let aws = |endpoint: &str| {
        vec![
            ("AWS_ENDPOINT_URL", endpoint.to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            // Every log line, down to the HTTP clients', must still keep the secret out.
            ("RUST_LOG", "debug".to_string()),
            ("REPURCHASE_STORE_MAX_RETRIES", "2".to_string()),
            ("REPURCHASE_STORE_RETRY_TIMEOUT_SECS", "10".to_string()),
            ("REPURCHASE_RUN_DATE", "2025-06-30".to_string()),
        ]
    };
    let run = |endpoint: &str, data_root: &str| {
        let mut env = aws(endpoint);
        env.push(("REPURCHASE_DATA_ROOT", data_root.to_string()));
        env.push(("REPURCHASE_SOURCE", source_url.clone()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_extract(&env)
    };
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let ok = run(&endpoint, &format!("s3://{bucket}/lake"));
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let lake = DataRoot::open(&format!("s3://{bucket}/lake"), &moto_config()).unwrap();
    let (m, _) = Manifest::read(&lake, Dataset::Raw(Table::Orders), date("2025-06-30"))
        .await
        .unwrap();
    assert!(m.row_count > 0);

    let absent = unique_bucket("absent-bin");
    let missing = run(&endpoint, &format!("s3://{absent}/lake"));
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    let err = stderr(&missing);
    assert!(
        err.contains(&format!("S3 bucket \\\"{absent}\\\" does not exist")),
        "{err}"
    );

    let dead = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let down = run(&dead, &format!("s3://{bucket}/lake"));
    assert_eq!(down.status.code(), Some(75), "{}", stderr(&down));
    let err = stderr(&down);
    // The first request, which never got an answer: taking the stage lock.
    assert!(
        err.contains(&format!("s3://{bucket}/lake/_locks/extract/")),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    for out in [&ok, &missing, &down] {
        let text = format!("{}{}", stderr(out), String::from_utf8_lossy(&out.stdout));
        assert!(!text.contains(SECRET), "the secret key reached the logs");
    }
}

/// Key prefixes are taken as typed: a data root `s3://bucket/<prefix>` whose prefix holds
/// characters that URL parsing or encoding would change (`é`, `#`, `%`, `~`, `[`, `?`, `*`,
/// spaces) gets its objects under exactly that prefix, and the next stage finds them.
#[tokio::test]
async fn awkward_key_prefixes_are_taken_as_typed() {
    let d: repurchase_core::RunDate = "2025-06-30".parse().unwrap();
    let source = crate::support::signal_source(1_000, 4, "2025-06-30").await;
    for prefix in ["lake é", "a#1", "p%41", "t~x", "b[1]", "q?x", "s*t"] {
        let (bucket, root) = s3_root("awkward", prefix);
        repurchase_extract::extract(&root, d, &repurchase_extract::Source::Files(source.clone()))
            .await
            .unwrap_or_else(|e| panic!("{prefix}: {e}"));
        repurchase_features::build(
            &root,
            d,
            &repurchase_features::BuildOptions::new(
                repurchase_features::AnchorMode::FirstOrder,
                60,
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{prefix}: {e}"));
        let whole = DataRoot::open(&format!("s3://{bucket}"), &moto_config()).unwrap();
        let keys: Vec<String> = whole
            .list("")
            .await
            .unwrap()
            .iter()
            .map(|m| m.location.as_ref().to_string())
            .collect();
        assert!(!keys.is_empty(), "{prefix}");
        for key in &keys {
            assert!(
                key.starts_with(&format!("{prefix}/")),
                "{prefix}: key {key}"
            );
        }
        assert!(
            keys.contains(&format!(
                "{prefix}/{}",
                repurchase_core::layout::Dataset::FeaturesTrain.manifest_path(d)
            )),
            "{prefix}: {keys:?}"
        );
    }
}
