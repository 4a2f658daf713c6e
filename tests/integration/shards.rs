//! Sharded scoring: `score --shard I/N` for every I, then `score --merge-shards N`, equals one
//! unsharded `score`, byte for byte; the streaming scorer gives exactly the probabilities of the
//! in-memory model path.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use repurchase_core::layout::Dataset;
use repurchase_core::{Classify, DataRoot, ErrorClass, StoreConfig};
use repurchase_features::AnchorMode;
use repurchase_model::ModelArtifact;
use repurchase_model::io::{load_features, read_artifact};
use repurchase_score::{Shard, shard_of};

use crate::support::{col, date, parquet_batches, run_pipeline, score_binary, signal_source};

fn read_rows(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).expect("parquet file");
    parquet_batches(file)
}

/// (user, order) → (status, probability bits, at-anchor bits) for every row; decile and flag
/// left out (shards have neither: both need the whole population).
type Row = (String, Option<u64>, Option<u64>);

fn rows_of(batches: &[RecordBatch]) -> BTreeMap<(i64, i64), Row> {
    let mut out = BTreeMap::new();
    for b in batches {
        let users = col::<Int64Array>(b, "user_id");
        let orders = col::<Int64Array>(b, "anchor_order_id");
        let status = col::<StringArray>(b, "status");
        let prob = col::<Float64Array>(b, "probability");
        let at = col::<Float64Array>(b, "probability_at_anchor");
        for i in 0..b.num_rows() {
            let bits = |a: &Float64Array| a.is_valid(i).then(|| a.value(i).to_bits());
            let row = (status.value(i).to_string(), bits(prob), bits(at));
            assert!(out.insert((users.value(i), orders.value(i)), row).is_none());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_union_is_the_unsharded_output_and_the_merge_is_byte_identical() {
    let source = signal_source(20_000, 5, "2025-06-30").await;
    let tmp = tempfile::tempdir().unwrap();
    let lake_dir = tmp.path().join("lake");
    let lake = DataRoot::open(&lake_dir.to_string_lossy(), &StoreConfig::default()).unwrap();
    let d = date("2025-06-30");
    run_pipeline(&source, &lake, d, AnchorMode::EveryOrder, 120).await;
    let scores_dir = lake_dir.join("scores/run_date=2025-06-30");
    let parquet = std::fs::read(scores_dir.join("part-00000.parquet")).unwrap();
    let manifest = std::fs::read(scores_dir.join("_manifest.json")).unwrap();
    // The drift report: the shards' populations summed give the same bytes.
    let monitoring_dir = lake_dir.join("monitoring/run_date=2025-06-30");
    let drift = std::fs::read(monitoring_dir.join("drift.json")).unwrap();
    let whole = rows_of(&read_rows(&scores_dir.join("part-00000.parquet")));
    let open = whole.values().filter(|r| r.0 == "open").count();
    assert!(
        whole.len() >= 150 && open >= 100,
        "{} rows, {open} open",
        whole.len()
    );

    // The streaming scorer against the in-memory path: bit-identical probabilities at anchor.
    let (model_bytes, _, _) = read_artifact(&lake, Dataset::Model, d, "model.json")
        .await
        .unwrap();
    let model = ModelArtifact::from_bytes(&model_bytes).unwrap();
    let (cal, _, _) = repurchase_contracts::calibration::read_calibration(&lake, d)
        .await
        .unwrap();
    let (table, _, _) = load_features(&lake, Dataset::FeaturesScore, d)
        .await
        .unwrap();
    let so_far = table.repurchased_so_far.clone().unwrap();
    let pending = table.repurchase_pending.clone().unwrap();
    let idx: Vec<usize> = (0..table.len())
        .filter(|&i| !so_far[i] && !pending[i])
        .collect();
    let expected = cal.predict_all(&model.predict(&table.take(&idx)).unwrap());
    for (k, &i) in idx.iter().enumerate() {
        let row = &whole[&(table.user_id[i], table.order_id[i])];
        assert_eq!(
            row.2,
            Some(expected[k].to_bits()),
            "anchor {}",
            table.order_id[i]
        );
    }

    for n in [1u32, 3, 7] {
        let mut union = BTreeMap::new();
        for index in 0..n {
            let shard = Shard { index, count: n };
            if index == 1 {
                let out = score_binary(&lake_dir, d, &["--shard", &shard.to_string()]);
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            } else {
                repurchase_score::score_shard(
                    &lake,
                    d,
                    shard,
                    &repurchase_score::ScoreOptions::default(),
                )
                .await
                .unwrap();
            }
            let part = lake_dir.join(Dataset::ScoreShard { index, count: n }.partition(d));
            let rows = rows_of(&read_rows(&part.join("part-00000.parquet")));
            for ((user, order), row) in rows {
                assert_eq!(shard_of(user, n), index, "user {user} in the wrong shard");
                assert!(union.insert((user, order), row).is_none());
            }
        }
        assert_eq!(
            union, whole,
            "{n} shards: union differs from the unsharded rows"
        );
        std::fs::remove_dir_all(&scores_dir).unwrap();
        if n == 3 {
            let out = score_binary(&lake_dir, d, &["--merge-shards", "3"]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            repurchase_score::merge_shards(&lake, d, n, &Default::default())
                .await
                .unwrap();
        }
        assert!(
            std::fs::read(scores_dir.join("part-00000.parquet")).unwrap() == parquet,
            "{n} shards: merged Parquet differs"
        );
        assert_eq!(
            String::from_utf8(std::fs::read(scores_dir.join("_manifest.json")).unwrap()).unwrap(),
            String::from_utf8(manifest.clone()).unwrap(),
            "{n} shards: merged manifest differs"
        );
        assert!(
            std::fs::read(monitoring_dir.join("drift.json")).unwrap() == drift,
            "{n} shards: drift report differs"
        );
    }

    // The budget flag needs the whole population too: flagged after the merge, the same bytes
    // as unsharded, and exactly the top tenth of the open customers.
    repurchase_score::score(
        &lake,
        d,
        &repurchase_score::ScoreOptions {
            flag_top_share: Some(0.1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let budget = std::fs::read(scores_dir.join("part-00000.parquet")).unwrap();
    let batches = read_rows(&scores_dir.join("part-00000.parquet"));
    let flagged: usize = batches
        .iter()
        .map(|b| col::<arrow::array::BooleanArray>(b, "predicted_repurchase").true_count())
        .sum();
    assert_eq!(flagged, open.div_ceil(10), "{open} open customers");
    for index in 0..3 {
        repurchase_score::score_shard(
            &lake,
            d,
            Shard { index, count: 3 },
            &repurchase_score::ScoreOptions {
                flag_top_share: Some(0.1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    std::fs::remove_dir_all(&scores_dir).unwrap();
    repurchase_score::merge_shards(&lake, d, 3, &Default::default())
        .await
        .unwrap();
    assert!(
        std::fs::read(scores_dir.join("part-00000.parquet")).unwrap() == budget,
        "budget flags differ after merging shards"
    );

    // A missing shard, a shard out of range and conflicting flags are refused (exit 2).
    let err = repurchase_score::merge_shards(&lake, d, 5, &Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadInput);
    assert!(err.to_string().contains("shard=0000-of-0005"), "{err}");
    for args in [
        &["--shard", "3/3"][..],
        &["--shard", "1/0"],
        &["--merge-shards", "0"],
        &["--shard", "0/2", "--merge-shards", "2"],
    ] {
        let out = score_binary(&lake_dir, d, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
