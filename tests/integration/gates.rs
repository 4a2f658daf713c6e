//! Quality gates in build-features and champion promotion in calibrate, end to end on local disk.
//!
//! The gates: a clean run passes; an export that lost 40% of its users, one that lost three
//! quarters of its orders, and a label rate outside configured bounds each stop `build-features` with
//! exit code 65 (data refused, for the data's owners), a message naming the figure, the limit and its flag, and nothing published;
//! loosened thresholds or `--skip-quality-gates` let the same data through.
//!
//! Promotion: the first calibrated model becomes champion; a much weaker challenger (a single
//! stump) is not promoted and `score` keeps serving the champion; the same challenger with a
//! margin of 1 is promoted and served; the next calibration competes against the champion named
//! by its predecessor's decision.

use std::path::Path;
use std::process::Command;

use arrow::array::{BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use repurchase_calibrate::champion::ChampionPolicy;
use repurchase_core::layout::Dataset;
use repurchase_core::schema::Table;
use repurchase_core::{Classify, DataRoot, ErrorClass, Manifest, RunDate, StoreConfig};
use repurchase_datagen::{GenConfig, Generated, OutputFormat, Profile};
use repurchase_extract::Source;
use repurchase_features::gates::{GateConfig, NULL_COUNTER_PREFIX};
use repurchase_features::{AnchorMode, anchor_params};
use repurchase_model::BoosterParams;

use crate::support::{binary, col, date};

const USERS: u64 = 12_000;

fn generate() -> Generated {
    let cfg = GenConfig::new(USERS, 17, date("2025-06-30").date(), Profile::Signal);
    repurchase_datagen::generate(&cfg).expect("generate")
}

/// Keeps the rows of `table` whose `column` (an Int64 id) satisfies `keep`.
fn filter_table(g: &mut Generated, table: Table, column: &str, keep: impl Fn(i64) -> bool) {
    for (t, batch) in g.tables.iter_mut() {
        if *t == table {
            let ids = col::<Int64Array>(batch, column);
            let mask: BooleanArray = ids.iter().map(|v| Some(v.is_some_and(&keep))).collect();
            *batch = filter_record_batch(batch, &mask).expect("filter");
        }
    }
}

async fn write_source(dir: &Path, g: &Generated) -> DataRoot {
    let root = open(dir);
    repurchase_datagen::write(&root, g, OutputFormat::Parquet)
        .await
        .expect("write source");
    root
}

fn open(dir: &Path) -> DataRoot {
    DataRoot::open(&dir.to_string_lossy(), &StoreConfig::default()).expect("root")
}

async fn extract(lake: &DataRoot, d: RunDate, source: &DataRoot) {
    repurchase_extract::extract(lake, d, &Source::Files(source.clone()))
        .await
        .expect("extract");
}

fn build_features_binary(lake: &Path, d: RunDate, extra: &[&str]) -> std::process::Output {
    Command::new(binary("build-features"))
        .arg("--run-date")
        .arg(d.to_string())
        .arg("--data-root")
        .arg(lake)
        .args(extra)
        .env("REPURCHASE_LOG_FORMAT", "text")
        .env("NO_COLOR", "1")
        .output()
        .expect("run build-features")
}

/// `dir/lake` with the generated source extracted and first-order features built for `dates`.
async fn featured_lake(dir: &Path, dates: &[RunDate]) -> DataRoot {
    let lake = open(&dir.join("lake"));
    let source = write_source(&dir.join("source"), &generate()).await;
    for &d in dates {
        extract(&lake, d, &source).await;
        repurchase_features::build(
            &lake,
            d,
            &repurchase_features::BuildOptions::new(AnchorMode::FirstOrder, 60),
        )
        .await
        .expect("features");
    }
    lake
}

/// One tree of depth one: a challenger far weaker than the default model.
fn stump() -> BoosterParams {
    BoosterParams {
        max_iterations: 1,
        max_depth: 1,
        ..BoosterParams::default()
    }
}

async fn published(lake: &DataRoot, dataset: Dataset, d: RunDate) -> bool {
    lake.exists(&dataset.manifest_path(d)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_gates_stop_implausible_runs_and_thresholds_are_configurable() {
    let tmp = tempfile::tempdir().unwrap();
    let lake_dir = tmp.path().join("lake");
    let lake = open(&lake_dir);
    let clean = generate();
    let source = write_source(&tmp.path().join("clean"), &clean).await;
    let (d1, d2, d3, d4) = (
        date("2025-06-27"),
        date("2025-06-28"),
        date("2025-06-29"),
        date("2025-06-30"),
    );

    // The baseline passes and records what the next run is compared with.
    extract(&lake, d1, &source).await;
    let base = repurchase_features::build(
        &lake,
        d1,
        &repurchase_features::BuildOptions::new(AnchorMode::FirstOrder, 60),
    )
    .await
    .expect("clean run passes the gates");
    let (m, _) = Manifest::read(&lake, Dataset::FeaturesTrain, d1)
        .await
        .unwrap();
    let nulls = m
        .counters
        .keys()
        .filter(|k| k.starts_with(NULL_COUNTER_PREFIX))
        .count();
    assert!(
        nulls >= 60,
        "null counts of every feature recorded: {nulls}"
    );
    assert!(base.anchors >= 2000 && base.train_rows >= 1000, "{base:?}");

    // 1. 40% of the users lost: their anchors keep their orders but lose every user feature.
    let mut lost_users = clean.clone();
    filter_table(&mut lost_users, Table::Users, "id", |u| u % 5 >= 2);
    let src = write_source(&tmp.path().join("lost-users"), &lost_users).await;
    extract(&lake, d2, &src).await;
    let err = repurchase_features::build(
        &lake,
        d2,
        &repurchase_features::BuildOptions::new(AnchorMode::FirstOrder, 60),
    )
    .await
    .expect_err("null jump");
    let msg = err.to_string();
    assert_eq!(err.class(), ErrorClass::DataRefused);
    assert!(
        msg.contains("column age: 4")
            && msg.contains("tenure_days")
            && msg.contains("in run date 2025-06-27")
            && msg.contains("--gate-max-null-increase 0.2"),
        "{msg}"
    );
    assert!(!published(&lake, Dataset::FeaturesTrain, d2).await);
    eprintln!("gate (null jump): {}", &msg[..msg.len().min(400)]);
    // Skipping the gates publishes it, deliberately.
    let skip = GateConfig {
        skip: true,
        ..GateConfig::default()
    };
    let p = anchor_params(AnchorMode::FirstOrder, 60);
    repurchase_features::build(
        &lake,
        d2,
        &repurchase_features::BuildOptions {
            anchors: p,
            gates: skip.clone(),
            engine: repurchase_features::Engine::DataFusion,
        },
    )
    .await
    .expect("skipped gates");
    assert!(published(&lake, Dataset::FeaturesTrain, d2).await);

    // 2. Three quarters of the orders lost upstream: the anchors collapse.
    let mut lost_orders = clean.clone();
    filter_table(&mut lost_orders, Table::Orders, "user_id", |u| u % 4 == 0);
    let src = write_source(&tmp.path().join("lost-orders"), &lost_orders).await;
    extract(&lake, d3, &src).await;
    let out = build_features_binary(&lake_dir, d3, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains("quality gate failed")
            && stderr.contains("compared with features/train run_date=2025-06-28")
            && stderr.contains("fewer than the")
            && stderr.contains("--gate-max-row-drop 0.5"),
        "{stderr}"
    );
    assert!(!published(&lake, Dataset::FeaturesTrain, d3).await);
    assert!(!published(&lake, Dataset::FeaturesScore, d3).await);
    eprintln!(
        "gate (row collapse): {}",
        stderr.lines().last().unwrap_or("")
    );
    // A looser threshold accepts the same data.
    let out = build_features_binary(&lake_dir, d3, &["--gate-max-row-drop", "0.9"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(published(&lake, Dataset::FeaturesTrain, d3).await);

    // 3. Label rate bounds: the clean data (about 10% repurchase) against a 5% ceiling.
    extract(&lake, d4, &source).await;
    let strict = GateConfig {
        label_rate_max: 0.05,
        ..GateConfig::default()
    };
    let err = repurchase_features::build(
        &lake,
        d4,
        &repurchase_features::BuildOptions {
            anchors: p,
            gates: strict.clone(),
            engine: repurchase_features::Engine::DataFusion,
        },
    )
    .await
    .expect_err("label rate");
    assert!(
        err.to_string().contains("label rate 0.")
            && err.to_string().contains("is outside [0.002, 0.05]"),
        "{err}"
    );
    assert!(!published(&lake, Dataset::FeaturesTrain, d4).await);
    // Every-order runs are not compared with first-order ones (their anchors differ by design).
    let every = repurchase_features::build(
        &lake,
        d4,
        &repurchase_features::BuildOptions {
            anchors: anchor_params(AnchorMode::EveryOrder, 60),
            gates: GateConfig::default().clone(),
            engine: repurchase_features::Engine::DataFusion,
        },
    )
    .await
    .expect("every-order run has no earlier run of its kind");
    assert!(every.anchors > base.anchors);
}

fn model_version_of(lake_dir: &Path, d: RunDate) -> Vec<String> {
    let file =
        std::fs::File::open(lake_dir.join(format!("scores/run_date={d}/part-00000.parquet")))
            .expect("scores file");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut versions: Vec<String> = reader
        .flat_map(|b: Result<RecordBatch, _>| {
            let b = b.unwrap();
            col::<StringArray>(&b, "model_version")
                .iter()
                .map(|v| v.unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    versions.dedup();
    versions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weaker_challenger_is_not_promoted_and_score_serves_the_champion() {
    let tmp = tempfile::tempdir().unwrap();
    let lake_dir = tmp.path().join("lake");
    let (d1, d2, d3) = (date("2025-06-16"), date("2025-06-23"), date("2025-06-30"));
    let lake = featured_lake(tmp.path(), &[d1, d2, d3]).await;
    let (good, stump) = (BoosterParams::default(), stump());

    // The first calibrated model is champion.
    let m1 = train_on(&lake, d1, &good).await;
    let c1 = calibrate_on(&lake, d1).await;
    assert!(c1.promoted && c1.champion == m1.model_version, "{c1:?}");
    let p1 = promotion(&lake, d1).await;
    assert!(p1.previous_champion.is_none() && p1.reason.starts_with("first calibrated model"));

    // A stump is far weaker: kept out; score serves the champion.
    let m2 = train_on(&lake, d2, &stump).await;
    let c2 = calibrate_on(&lake, d2).await;
    let p2 = promotion(&lake, d2).await;
    let (new, old) = (p2.challenger_auc.unwrap(), p2.champion_auc.unwrap());
    eprintln!(
        "promotion: {} (stump {new:.4}, champion {old:.4})",
        p2.reason
    );
    assert!(
        new < old - 0.01,
        "precondition: the stump must be clearly weaker"
    );
    assert!(!c2.promoted && c2.champion == m1.model_version, "{c2:?}");
    assert_eq!(p2.previous_decision, Some(d1));
    assert!(
        p2.compared_rows >= 150 && p2.compared_positives >= 15,
        "{p2:?}"
    );
    assert!(p2.reason.starts_with("kept champion"), "{}", p2.reason);
    let s2 = repurchase_score::score(&lake, d2, &repurchase_score::ScoreOptions::default())
        .await
        .unwrap();
    assert_eq!(s2.model_version, m1.model_version);
    assert_eq!(
        model_version_of(&lake_dir, d2),
        vec![m1.model_version.clone()]
    );
    let (sm, _) = Manifest::read(&lake, Dataset::Scores, d2).await.unwrap();
    assert_eq!(sm.parameters["model_date"], d1.to_string());
    assert!(
        sm.inputs
            .iter()
            .any(|i| i.dataset == "models/calibration" && i.run_date == d2),
        "the decision is an input of the scores: {:?}",
        sm.inputs
    );
    // An explicit --model-date still serves exactly that model.
    let s2x = repurchase_score::score(
        &lake,
        d2,
        &repurchase_score::ScoreOptions {
            model_date: Some(d2),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(s2x.model_version, m2.model_version);

    // The next calibration competes against the champion d2's decision kept (d1's model).
    let m3 = train_on(&lake, d3, &good).await;
    calibrate_on(&lake, d3).await;
    let p3 = promotion(&lake, d3).await;
    assert_eq!(p3.previous_decision, Some(d2));
    assert_eq!(
        p3.previous_champion.as_ref().map(|c| c.model_date),
        Some(d1)
    );
    // Promoted exactly when non-inferior to every comparable past champion.
    assert!(!p3.comparisons.is_empty());
    assert_eq!(
        p3.promoted,
        p3.comparisons
            .iter()
            .all(|c| c.verdict != repurchase_contracts::Verdict::Inferior),
        "{}",
        p3.reason
    );
    eprintln!("promotion: {}", p3.reason);

    // The calibrate binary: a margin of 1 promotes the stump, and score then serves it.
    let out = Command::new(binary("calibrate"))
        .args([
            "--run-date",
            "2025-06-23",
            "--promotion-margin",
            "1",
            "--promotion-brier-margin",
            "1",
        ])
        .arg("--data-root")
        .arg(&lake_dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(promotion(&lake, d2).await.promoted);
    let s2 = repurchase_score::score(&lake, d2, &repurchase_score::ScoreOptions::default())
        .await
        .unwrap();
    assert_eq!(s2.model_version, m2.model_version);

    // Pinning the predecessor: a later date only; a margin outside [0, 1] is refused.
    let bad = ChampionPolicy {
        champion_from: Some(d3),
        ..ChampionPolicy::default()
    };
    let err = repurchase_calibrate::calibrate(&lake, d3, &bad)
        .await
        .expect_err("champion from the same date");
    assert_eq!(err.class(), ErrorClass::BadInput);
    let out = Command::new(binary("calibrate"))
        .args(["--run-date", "2025-06-30", "--promotion-margin", "1.5"])
        .arg("--data-root")
        .arg(&lake_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let pinned = ChampionPolicy {
        champion_from: Some(d1),
        ..ChampionPolicy::default()
    };
    repurchase_calibrate::calibrate(&lake, d3, &pinned)
        .await
        .unwrap();
    let p3 = promotion(&lake, d3).await;
    assert_eq!(p3.previous_decision, Some(d1));
    assert_eq!(p3.challenger.model_version, m3.model_version);

    // A past champion that cannot score the current features (its evaluated model wants a
    // column the features no longer have) stops the decision with exit 2, naming it, unless
    // that is accepted explicitly.
    break_evaluated_model(&lake, d1).await;
    let err = repurchase_calibrate::calibrate(
        &lake,
        d3,
        &repurchase_calibrate::champion::ChampionPolicy::default(),
    )
    .await
    .expect_err("an incomparable champion stops the decision");
    assert_eq!(err.class(), ErrorClass::BadInput);
    let text = err.to_string();
    assert!(
        text.contains(&m1.model_version) && text.contains("--accept-incomparable-champion"),
        "{text}"
    );
    let accept = ChampionPolicy {
        accept_incomparable: true,
        ..ChampionPolicy::default()
    };
    repurchase_calibrate::calibrate(&lake, d3, &accept)
        .await
        .unwrap();
    let p3 = promotion(&lake, d3).await;
    assert!(
        p3.reason.contains("cannot score the current features") && p3.reason.contains("accepted"),
        "{}",
        p3.reason
    );
}

/// Rewrites the evaluated model of `d` (and its manifest entry) to need a feature no partition
/// has: what an old champion looks like after the features changed.
async fn break_evaluated_model(lake: &DataRoot, d: RunDate) {
    let dir = Dataset::Model.partition(d);
    let name = repurchase_contracts::files::EVALUATION_MODEL;
    let bytes = lake.get(&format!("{dir}/{name}")).await.unwrap();
    let mut model: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    model["features"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "a_feature_since_removed", "kind": "numeric"}));
    let bytes = serde_json::to_vec(&model).unwrap();
    lake.put(&format!("{dir}/{name}"), bytes.clone().into())
        .await
        .unwrap();
    let manifest_path = Dataset::Model.manifest_path(d);
    let mut manifest: Manifest =
        serde_json::from_slice(&lake.get(&manifest_path).await.unwrap()).unwrap();
    for f in manifest.files.iter_mut().filter(|f| f.name == name) {
        f.sha256 = repurchase_core::manifest::sha256_hex(&bytes);
        f.bytes = bytes.len() as u64;
    }
    lake.put(
        &manifest_path,
        serde_json::to_vec(&manifest).unwrap().into(),
    )
    .await
    .unwrap();
}

/// The champion is resolved by version: once the champion's date is retrained (and even
/// recalibrated), a later decision that named the old version no longer serves whatever now sits
/// at that date.
/// Trains `d` with `params` on the 180-day validation and test windows these tests use.
async fn train_on(
    lake: &DataRoot,
    d: RunDate,
    params: &BoosterParams,
) -> repurchase_train::Outcome {
    repurchase_train::train(
        lake,
        d,
        &repurchase_train::TrainConfig::new(180, 180, params),
    )
    .await
    .unwrap()
}

/// Calibrates `d` under the default champion policy.
async fn calibrate_on(lake: &DataRoot, d: RunDate) -> repurchase_calibrate::Outcome {
    let policy = repurchase_calibrate::champion::ChampionPolicy::default();
    repurchase_calibrate::calibrate(lake, d, &policy)
        .await
        .unwrap()
}

/// The champion decision of `d`'s calibration.
async fn promotion(lake: &DataRoot, d: RunDate) -> repurchase_contracts::Promotion {
    repurchase_contracts::calibration::read_promotion(lake, d)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_retrained_champion_date_is_not_served_under_the_old_decision() {
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = (date("2025-06-16"), date("2025-06-23"));
    let lake = featured_lake(tmp.path(), &[d1, d2]).await;
    let (good, stump) = (BoosterParams::default(), stump());
    let v1 = train_on(&lake, d1, &good).await.model_version;
    calibrate_on(&lake, d1).await;
    train_on(&lake, d2, &stump).await;
    let c2 = calibrate_on(&lake, d2).await;
    assert_eq!(
        c2.champion, v1,
        "precondition: d2's decision keeps d1's model"
    );

    // d1 retrained with other settings: a new version at the champion's date.
    let other = BoosterParams {
        seed: good.seed + 1,
        max_depth: 2,
        ..BoosterParams::default()
    };
    let w1 = train_on(&lake, d1, &other).await.model_version;
    assert_ne!(w1, v1);
    // Not yet recalibrated: the retrain replaced d1's partition, calibration included, so d1
    // has no decision to score by.
    let e = repurchase_score::score(&lake, d1, &repurchase_score::ScoreOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::BadInput);
    assert!(e.to_string().contains("calibration"), "{e}");

    // Recalibrated: d1's own decision names the new version, and d1 scores with it...
    calibrate_on(&lake, d1).await;
    let s1 = repurchase_score::score(&lake, d1, &repurchase_score::ScoreOptions::default())
        .await
        .unwrap();
    assert_eq!(s1.model_version, w1);
    // ...but d2's decision named the old one: refused, naming both, nothing written.
    let e = repurchase_score::score(&lake, d2, &repurchase_score::ScoreOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::BadInput);
    let msg = e.to_string();
    assert!(msg.contains(&v1) && msg.contains(&w1), "{msg}");
    assert!(!published(&lake, Dataset::Scores, d2).await);
}
