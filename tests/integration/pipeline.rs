//! The five workers end to end on generated data: counts, quality against the generator's oracle,
//! byte-identical reruns, manifests as the only door to a partition, and local disk = memory.

use std::collections::BTreeMap;

use repurchase_calibrate::champion::ChampionPolicy;
use repurchase_core::layout::Dataset;
use repurchase_core::{Classify, CoreError, DataRoot, ErrorClass};
use repurchase_datagen::{OutputFormat, Profile};
use repurchase_features::AnchorMode;
use repurchase_model::BoosterParams;

use crate::support::{
    date, generated_source, memory_root, run_pipeline, run_pipeline_with, signal_source,
};

async fn snapshot(root: &DataRoot) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for meta in root.list("").await.unwrap() {
        let rel = root.relative(&meta.location);
        out.insert(rel.clone(), root.get(&rel).await.unwrap().to_vec());
    }
    out
}

#[tokio::test]
async fn signal_profile_end_to_end_counts_and_auc_near_oracle() {
    let d = date("2025-06-30");
    let source =
        generated_source(40_000, 11, "2025-06-30", Profile::Signal, OutputFormat::Csv).await;
    let lake = memory_root("e2e");
    let run = run_pipeline(&source, &lake, d, AnchorMode::FirstOrder, 180).await;

    // Counts agree from stage to stage.
    assert_eq!(
        run.features.anchors,
        run.features.train_rows + run.features.score_rows + run.features.unsettled_rows
    );
    assert!(run.features.unsettled_rows > 0);
    assert_eq!(
        run.score.scored + run.score.already_repurchased + run.score.repurchase_pending,
        run.features.score_rows
    );
    let (scores_manifest, _) = repurchase_core::Manifest::read(&lake, Dataset::Scores, d)
        .await
        .unwrap();
    assert_eq!(scores_manifest.row_count, run.features.score_rows);
    assert_eq!(
        scores_manifest.inputs.len(),
        3,
        "scores pin features, model and calibration"
    );
    assert!(run.train.iterations > 10);

    // Held-out AUC against the generator's true probabilities on the same anchors.
    let truth = repurchase_cli::oracle::read_truth(&source).await.unwrap();
    let (oracle, n) = repurchase_cli::oracle::oracle_test_auc(&lake, d, &truth)
        .await
        .unwrap();
    let oracle = oracle.expect("oracle auc");
    let model = run.calibrate.test_auc.expect("model auc");
    assert!(n > 300, "test window has {n} anchors");
    assert!(
        model >= 0.9 * oracle,
        "model AUC {model:.3} < 0.9 × oracle {oracle:.3}"
    );
    assert!(
        model <= oracle + 0.03,
        "model AUC {model:.3} beats the oracle {oracle:.3}: leakage"
    );
}

#[tokio::test]
async fn thelook_profile_is_barely_predictable() {
    let d = date("2025-06-30");
    let source = generated_source(
        20_000,
        5,
        "2025-06-30",
        Profile::Thelook,
        OutputFormat::Parquet,
    )
    .await;
    let lake = memory_root("thelook");
    // No floor: this test is about how little there is to learn.
    let no_floor = ChampionPolicy {
        auc_floor: 0.0,
        ..ChampionPolicy::default()
    };
    let run = run_pipeline_with(&source, &lake, d, AnchorMode::FirstOrder, 365, &no_floor).await;
    let auc = run.calibrate.test_auc.expect("auc");
    // TheLook draws order dates independently: tenure and recency are the only signal.
    assert!(
        auc < 0.80,
        "AUC {auc:.3} on TheLook-like data is too good to be true"
    );
    // With the default floor, a first model is refused (exit 2: there is no champion to fall
    // back on) only when the upper end of its AUC interval is below the floor; a weak model whose
    // point estimate dips under the floor by chance is served.
    let floor = ChampionPolicy::default().auc_floor;
    let (_, metrics, _) = repurchase_contracts::calibration::read_calibration(&lake, d)
        .await
        .expect("metrics");
    let (_, upper) = metrics.test_auc_ci.expect("interval");
    let with_floor = repurchase_calibrate::calibrate(&lake, d, &ChampionPolicy::default()).await;
    match with_floor {
        Err(e) => {
            assert!(
                upper < floor,
                "refused with the interval up to {upper:.3}: {e}"
            );
            assert_eq!(e.class(), ErrorClass::DataRefused);
            assert!(e.to_string().contains("below the AUC floor"), "{e}");
        }
        Ok(_) => assert!(upper >= floor, "interval up to {upper:.3} promoted"),
    }
}

#[tokio::test]
async fn reruns_are_byte_identical() {
    let d = date("2025-06-30");
    let source = signal_source(6_000, 3, "2025-06-30").await;
    let lake = memory_root("idem");
    run_pipeline(&source, &lake, d, AnchorMode::EveryOrder, 180).await;
    let first = snapshot(&lake).await;
    run_pipeline(&source, &lake, d, AnchorMode::EveryOrder, 180).await;
    let second = snapshot(&lake).await;
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    for (k, v) in &first {
        assert!(
            v == &second[k],
            "{k} differs between two runs with the same inputs"
        );
    }
    assert!(
        first
            .keys()
            .any(|k| k.starts_with("scores/run_date=2025-06-30/part-"))
    );
}

#[tokio::test]
async fn readers_refuse_partitions_without_manifest() {
    let d = date("2025-06-30");
    let source = signal_source(3_000, 4, "2025-06-30").await;
    let lake = memory_root("unpublished");
    repurchase_extract::extract(&lake, d, &repurchase_extract::Source::Files(source))
        .await
        .unwrap();
    lake.delete(&Dataset::Raw(repurchase_core::schema::Table::Events).manifest_path(d))
        .await
        .unwrap();
    let err = repurchase_features::build(
        &lake,
        d,
        &repurchase_features::BuildOptions::new(AnchorMode::FirstOrder, 60),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            repurchase_features::FeaturesError::Core(CoreError::NotPublished { .. })
        ),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::BadInput);
    assert!(
        err.to_string().contains("raw/events/run_date=2025-06-30"),
        "{err}"
    );
    // Nothing downstream was written.
    assert!(
        !lake
            .exists(&Dataset::FeaturesTrain.manifest_path(d))
            .await
            .unwrap()
    );
    let err = repurchase_train::train(
        &lake,
        d,
        &repurchase_train::TrainConfig::new(90, 90, &BoosterParams::default()),
    )
    .await
    .unwrap_err();
    // Reading the features goes through the model library, whose error wraps the core's.
    assert!(
        matches!(
            err,
            repurchase_train::TrainError::Model(repurchase_model::ModelError::Core(
                CoreError::NotPublished { .. }
            ))
        ),
        "{err:?}"
    );
}

/// Checksums recorded are checksums checked: a Parquet file of a published partition replaced
/// by another with the same schema (another day's extract of the same table) is refused when read.
#[tokio::test]
async fn a_file_swapped_after_publication_is_refused() {
    let (d1, d2) = (date("2025-06-29"), date("2025-06-30"));
    let source = signal_source(2_000, 4, "2025-06-30").await;
    let lake = memory_root("swapped");
    for d in [d1, d2] {
        repurchase_extract::extract(&lake, d, &repurchase_extract::Source::Files(source.clone()))
            .await
            .unwrap();
    }
    let orders = |d| {
        format!(
            "{}/part-00000.parquet",
            Dataset::Raw(repurchase_core::schema::Table::Orders).partition(d)
        )
    };
    let older = lake.get(&orders(d1)).await.unwrap();
    assert_ne!(older, lake.get(&orders(d2)).await.unwrap(), "precondition");
    lake.put(&orders(d2), older).await.unwrap();
    let err = repurchase_features::build(
        &lake,
        d2,
        &repurchase_features::BuildOptions::new(AnchorMode::FirstOrder, 60),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadInput);
    let msg = err.to_string();
    assert!(
        msg.contains("raw/orders/run_date=2025-06-30/part-00000.parquet")
            && msg.contains("changed since it was published"),
        "{msg}"
    );
    assert!(
        !lake
            .exists(&Dataset::FeaturesTrain.manifest_path(d2))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn local_disk_and_memory_give_identical_scores() {
    let d = date("2025-06-30");
    let source = generated_source(6_000, 8, "2025-06-30", Profile::Signal, OutputFormat::Csv).await;
    let mem = memory_root("disk-vs-mem");
    run_pipeline(&source, &mem, d, AnchorMode::FirstOrder, 180).await;
    let dir = tempfile::tempdir().unwrap();
    let disk = DataRoot::open(
        &format!("file://{}", dir.path().display()),
        &repurchase_core::StoreConfig::default(),
    )
    .unwrap();
    run_pipeline(&source, &disk, d, AnchorMode::FirstOrder, 180).await;
    let rel = format!("{}/part-00000.parquet", Dataset::Scores.partition(d));
    assert_eq!(mem.get(&rel).await.unwrap(), disk.get(&rel).await.unwrap());
    assert!(dir.path().join(&rel).exists());
    let model = format!("{}/model.json", Dataset::Model.partition(d));
    assert_eq!(
        mem.get(&model).await.unwrap(),
        disk.get(&model).await.unwrap()
    );
}

/// Folders are taken as typed: a source or data root whose name holds characters that URL
/// encoding changes is read and written there, not under a percent-encoded sibling.
#[tokio::test]
async fn awkward_folder_names_are_taken_as_typed() {
    let d = date("2025-06-30");
    let cfg = repurchase_datagen::GenConfig::new(2_000, 4, d.date(), Profile::Signal);
    let generated = repurchase_datagen::generate(&cfg).unwrap();
    for name in ["é ü", "a#1", "p%41", "t~x", "b[1]", "q?x", "s*t", "sp ace"] {
        let dir = tempfile::tempdir().unwrap();
        let (src, lake) = (
            dir.path().join(format!("source {name}")),
            dir.path().join(format!("lake {name}")),
        );
        let store = repurchase_core::StoreConfig::default();
        let source = DataRoot::open(&src.to_string_lossy(), &store).unwrap();
        repurchase_datagen::write(&source, &generated, OutputFormat::Parquet)
            .await
            .unwrap();
        // The data root given as a file:// URL, as an operator may type it.
        let url = url::Url::from_file_path(&lake).unwrap();
        let root = DataRoot::open(url.as_str(), &store).unwrap();
        repurchase_extract::extract(&root, d, &repurchase_extract::Source::Files(source))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        repurchase_features::build(
            &root,
            d,
            &repurchase_features::BuildOptions::new(AnchorMode::FirstOrder, 60),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            lake.join(Dataset::FeaturesTrain.manifest_path(d)).is_file(),
            "{name}: features not under {}",
            lake.display()
        );
        let mut entries: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        assert_eq!(
            entries,
            [format!("lake {name}"), format!("source {name}")],
            "{name}"
        );
    }
}
