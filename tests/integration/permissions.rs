//! The workers' IAM permissions, proven by running them: `infra/worker_access.json` (which
//! `infra/iam.tf` renders into the ECS task roles) is rendered here into one IAM user per worker on
//! a moto server with IAM enforcement on, and the whole pipeline runs as ECS would run it: each
//! worker binary with its own user's keys, sharded scoring included. A worker holding another
//! worker's policy is refused (exit 2, the key named).
//!
//! The statements mirror `data "aws_iam_policy_document" "worker"` in `infra/iam.tf`: list scoped
//! by `StringLike` on `s3:prefix` (evaluated as AWS does by `tests/moto_iam_conditions.py`; plain
//! moto ignores the operator), read and write on the worker's key patterns under the data prefix,
//! and for `extract` the source bucket (`SourceBuckets`, `SourceObjects`). KMS, Athena and Glue
//! statements are not exercised here (the moto buckets are unencrypted and the source is files).

use std::collections::BTreeMap;
use std::process::{Command, Output};

use bytes::Bytes;
use repurchase_core::{DataRoot, Dataset, Manifest};
use serde_json::{Value, json};

use crate::s3::{PrivateMoto, create_bucket, http, iam_user, s3_config, unique_bucket};
use crate::support::{binary, date, signal_source};

const RUN_DATE: &str = "2025-06-30";
const PREFIX: &str = "prod";
const SOURCE_PREFIX: &str = "thelook";

/// `infra/worker_access.json`, the one declaration of the workers' lake access.
fn worker_access() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/worker_access.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The policy `infra/iam.tf` gives `worker`'s task role, for a lake at `s3://lake/PREFIX` and
/// `source_s3_paths = ["source/SOURCE_PREFIX"]`.
fn policy(access: &Value, worker: &str, lake: &str, source: &str) -> String {
    let own = &access["workers"][worker];
    let (read, write) = (strings(&own["read"]), strings(&own["write"]));
    let object_arns = |patterns: &[String]| -> Vec<String> {
        patterns
            .iter()
            .map(|p| format!("arn:aws:s3:::{lake}/{PREFIX}/{p}"))
            .collect()
    };
    let mut list_prefixes: Vec<String> = read
        .iter()
        .chain(&write)
        .flat_map(|p| {
            [
                format!("{PREFIX}/{p}"),
                format!("{PREFIX}/{}", p.trim_end_matches("/*")),
            ]
        })
        .collect();
    list_prefixes.dedup();
    let mut statements = vec![
        json!({"Sid": "ListOwnPrefixes", "Effect": "Allow", "Action": access["actions"]["list"],
               "Resource": format!("arn:aws:s3:::{lake}"),
               "Condition": {"StringLike": {"s3:prefix": list_prefixes}}}),
        json!({"Sid": "ReadOwnInputs", "Effect": "Allow", "Action": access["actions"]["read"],
               "Resource": object_arns(&read)}),
        json!({"Sid": "WriteOwnOutputs", "Effect": "Allow", "Action": access["actions"]["write"],
               "Resource": object_arns(&write)}),
    ];
    if worker == "extract" {
        statements.push(json!({"Sid": "SourceBuckets", "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": format!("arn:aws:s3:::{source}")}));
        statements.push(json!({"Sid": "SourceObjects", "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": format!("arn:aws:s3:::{source}/{SOURCE_PREFIX}/*")}));
    }
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// Runs a worker binary as its ECS task would: only the environment the task definition gives.
fn run(worker: &str, key: &(String, String), endpoint: &str, lake: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(binary(worker));
    cmd.env_clear()
        .env("REPURCHASE_LOG_FORMAT", "json")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", &key.0)
        .env("AWS_SECRET_ACCESS_KEY", &key.1)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("REPURCHASE_STORE_MAX_RETRIES", "2")
        .env("REPURCHASE_RUN_DATE", RUN_DATE)
        .env("REPURCHASE_DATA_ROOT", format!("s3://{lake}/{PREFIX}"))
        .args(args);
    cmd.output().expect("spawn worker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_worker_runs_with_exactly_its_roles_policy_and_no_other() {
    let moto = PrivateMoto::start_evaluating_prefix_conditions();
    let (lake, source) = (unique_bucket("lake"), unique_bucket("src"));
    create_bucket(&moto.endpoint, &lake);
    create_bucket(&moto.endpoint, &source);

    // The export, put in place while moto's auth is still off.
    let generated = signal_source(4000, 23, RUN_DATE).await;
    let admin = s3_config(&moto.endpoint, "testing", "testing");
    let src_root = DataRoot::open(&format!("s3://{source}/{SOURCE_PREFIX}"), &admin).unwrap();
    for meta in generated.list("").await.unwrap() {
        let rel = generated.relative(&meta.location);
        let bytes: Bytes = generated.get(&rel).await.unwrap();
        src_root.put(&rel, bytes).await.unwrap();
    }

    let access = worker_access();
    let workers: Vec<String> = access["workers"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        workers,
        ["build-features", "calibrate", "extract", "score", "train"],
        "infra/worker_access.json must declare every worker"
    );
    let keys: BTreeMap<String, (String, String)> = workers
        .iter()
        .map(|w| {
            let doc = policy(&access, w, &lake, &source);
            (
                w.clone(),
                iam_user(&moto.endpoint, &format!("{w}-task"), Some(&doc)),
            )
        })
        .collect();
    // Reads the lake for the checks below (not a worker).
    let auditor_policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": [format!("arn:aws:s3:::{lake}"), format!("arn:aws:s3:::{lake}/*")]}]});
    let auditor = iam_user(&moto.endpoint, "auditor", Some(&auditor_policy.to_string()));
    // From here on moto checks every request's signature and the caller's policy.
    let (status, resp) = http(&moto.endpoint, "POST", "/moto-api/reset-auth", &[], "0");
    assert_eq!(status, 200, "{resp}");

    let source_url = format!("s3://{source}/{SOURCE_PREFIX}");
    let steps: Vec<(&str, Vec<&str>)> = vec![
        ("extract", vec!["--source", &source_url]),
        ("build-features", vec![]),
        ("train", vec!["--valid-days", "180", "--test-days", "180"]),
        ("calibrate", vec![]),
        ("score", vec!["--shard", "0/2"]),
        ("score", vec!["--shard", "1/2"]),
        ("score", vec!["--merge-shards", "2"]),
    ];
    for (worker, args) in &steps {
        let out = run(worker, &keys[*worker], &moto.endpoint, &lake, args);
        assert!(
            out.status.success(),
            "{worker} {args:?} with its own role's policy: exit {:?}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let reader = DataRoot::open(
        &format!("s3://{lake}/{PREFIX}"),
        &s3_config(&moto.endpoint, &auditor.0, &auditor.1),
    )
    .unwrap();
    let (scores, _) = Manifest::read(&reader, Dataset::Scores, date(RUN_DATE))
        .await
        .expect("scores published by the merge");
    assert!(scores.row_count > 0);
    Manifest::read(&reader, Dataset::Monitoring, date(RUN_DATE))
        .await
        .expect("drift report published by the merge");

    // Controls: a worker holding another worker's policy is refused, naming what it was denied.
    for (worker, args, holding, key_part) in [
        (
            "build-features",
            vec![],
            "score",
            "_locks/build-features/run_date=2025-06-30.json",
        ),
        (
            "train",
            vec!["--valid-days", "180", "--test-days", "180"],
            "calibrate",
            "_locks/train/",
        ),
        ("score", vec![], "train", "_locks/score/"),
    ] {
        let out = run(worker, &keys[holding], &moto.endpoint, &lake, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{worker} with {holding}'s policy: {err}"
        );
        assert!(
            err.contains("S3 denied") && err.contains("AccessDenied"),
            "{worker} with {holding}'s policy: {err}"
        );
        assert!(
            err.contains(&format!("s3://{lake}/{PREFIX}/{key_part}")),
            "{worker} with {holding}'s policy must name the key: {err}"
        );
    }
    // Listing is scoped too: train may list models/ but not raw/.
    let train_key = &keys["train"];
    let as_train = DataRoot::open(
        &format!("s3://{lake}/{PREFIX}"),
        &s3_config(&moto.endpoint, &train_key.0, &train_key.1),
    )
    .unwrap();
    assert!(!as_train.list("models").await.unwrap().is_empty());
    let denied = as_train.list("raw").await.unwrap_err();
    assert!(
        matches!(denied, repurchase_core::CoreError::AccessDenied { .. }),
        "{denied}"
    );

    // The refused runs changed nothing: the scores are still the merge's.
    let (again, _) = Manifest::read(&reader, Dataset::Scores, date(RUN_DATE))
        .await
        .unwrap();
    assert_eq!(again, scores);
}
