//! One storage conformance suite, run against every backend a data root can be: `memory://`,
//! local disk (`file://`) and S3 (the moto server). Objects, the publish protocol and the stage
//! locks must behave the same on all three, or a test on one would prove nothing about another.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use repurchase_core::layout::Dataset;
use repurchase_core::manifest::sha256_hex;
use repurchase_core::parquet_io;
use repurchase_core::publish::{MULTIPART_PART_BYTES, ParquetSink, PartitionWriter};
use repurchase_core::{CoreError, DataRoot, ErrorClass, Manifest, StoreConfig};

use crate::s3::{count_and_sum, int_batch, s3_root};
use crate::support::{date, memory_root, test_provenance};

async fn conformance(root: DataRoot, sibling: DataRoot) {
    objects(&root, &sibling).await;
    root.delete_prefix("").await.unwrap();
    publish_protocol(&root).await;
    root.delete_prefix("").await.unwrap();
    streamed_and_adopted(&root).await;
    root.delete_prefix("").await.unwrap();
    crate::locks::conformance(root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_on_memory() {
    let base = memory_root("storage");
    let name = base.url("").trim_end_matches('/').to_string();
    let open = |p: &str| DataRoot::open(&format!("{name}/{p}"), &StoreConfig::default()).unwrap();
    conformance(open("lake/base"), open("lake/basement")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_on_local_disk() {
    let dir = tempfile::tempdir().unwrap();
    let open = |p: &str| {
        let path = dir.path().join(p);
        std::fs::create_dir_all(&path).unwrap();
        DataRoot::open(
            &format!("file://{}", path.display()),
            &StoreConfig::default(),
        )
        .unwrap()
    };
    conformance(open("lake/base"), open("lake/basement")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_on_s3() {
    let (bucket, root) = s3_root("storage", "lake/base");
    assert_eq!(root.to_string(), format!("s3://{bucket}/lake/base"));
    let sibling = DataRoot::open(
        &format!("s3://{bucket}/lake/basement"),
        &crate::s3::moto_config(),
    )
    .unwrap();
    conformance(root, sibling).await;
}

/// Objects: put, get, overwrite, list (sorted, below the prefix only), list folders, exists,
/// delete (idempotent) and delete a prefix. `sibling` is a root whose prefix extends `root`'s
/// (`…/lake/base` and `…/lake/basement`): nothing done through `root` may touch it.
/// The data-root-relative names of every object under `prefix`.
async fn listed(root: &DataRoot, prefix: &str) -> Vec<String> {
    root.list(prefix)
        .await
        .unwrap()
        .iter()
        .map(|m| root.relative(&m.location))
        .collect()
}

async fn objects(root: &DataRoot, sibling: &DataRoot) {
    assert!(
        root.url("raw/a/x.bin").ends_with("/lake/base/raw/a/x.bin"),
        "{}",
        root.url("raw/a/x.bin")
    );

    root.put("raw/a/x.bin", Bytes::from_static(b"hello"))
        .await
        .unwrap();
    root.put("raw/b/run_date=2025-01-02/y.bin", Bytes::from_static(b"y"))
        .await
        .unwrap();
    root.put("raw/b/run_date=2025-01-01/z.bin", Bytes::from_static(b"z"))
        .await
        .unwrap();
    // Outside the root's prefix: never listed or deleted through it.
    sibling
        .put("keep.bin", Bytes::from_static(b"k"))
        .await
        .unwrap();

    assert_eq!(
        root.get("raw/a/x.bin").await.unwrap(),
        Bytes::from_static(b"hello")
    );
    assert!(root.get_opt("raw/a/none.bin").await.unwrap().is_none());
    let err = root.get("raw/a/none.bin").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadInput, "{err}");
    assert!(root.exists("raw/a/x.bin").await.unwrap());
    assert!(!root.exists("raw/a/none.bin").await.unwrap());

    assert_eq!(
        listed(root, "raw").await,
        [
            "raw/a/x.bin",
            "raw/b/run_date=2025-01-01/z.bin",
            "raw/b/run_date=2025-01-02/y.bin"
        ]
    );
    assert_eq!(root.list_dirs("raw").await.unwrap(), ["a", "b"]);
    assert_eq!(
        root.list_dirs("raw/b").await.unwrap(),
        ["run_date=2025-01-01", "run_date=2025-01-02"]
    );
    assert!(root.list("nothing/here").await.unwrap().is_empty());
    assert!(root.list_dirs("nothing").await.unwrap().is_empty());

    // Overwrite, then delete (twice: deleting what is gone is not an error).
    root.put("raw/a/x.bin", Bytes::from_static(b"again"))
        .await
        .unwrap();
    assert_eq!(&root.get("raw/a/x.bin").await.unwrap()[..], b"again");
    root.delete("raw/a/x.bin").await.unwrap();
    root.delete("raw/a/x.bin").await.unwrap();
    assert!(!root.exists("raw/a/x.bin").await.unwrap());
    assert_eq!(root.delete_prefix("raw/b").await.unwrap(), 2);

    // Ranges, hashes as streamed, and renames (which replace their target).
    root.put("raw/c/r.bin", Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    root.put("raw/d/s.bin", Bytes::from_static(b"old"))
        .await
        .unwrap();
    assert_eq!(
        &root.get_range("raw/c/r.bin", 2..5).await.unwrap()[..],
        b"234"
    );
    assert_eq!(
        root.sha256("raw/c/r.bin").await.unwrap(),
        (10, sha256_hex(b"0123456789"))
    );
    root.rename("raw/c/r.bin", "raw/d/s.bin").await.unwrap();
    assert!(!root.exists("raw/c/r.bin").await.unwrap());
    assert_eq!(&root.get("raw/d/s.bin").await.unwrap()[..], b"0123456789");
    assert_eq!(root.delete_prefix("raw").await.unwrap(), 1);
    assert!(root.list("").await.unwrap().is_empty());
    assert_eq!(
        &sibling.get("keep.bin").await.unwrap()[..],
        b"k",
        "a root only touches its own prefix"
    );
}

/// A Parquet file streamed to a staging path (past the multipart threshold, so S3 receives it in
/// parts), then moved into a partition: the bytes of encoding the same batches at once, the size
/// and hash counted on the way, nothing left in staging.
async fn streamed_and_adopted(root: &DataRoot) {
    let d = date("2025-03-02");
    let ds = Dataset::FeaturesScore;
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let batches: Vec<_> = (0..25i64)
        .map(|k| {
            let rows = k * 100_000..(k + 1) * 100_000;
            int_batch(&schema, rows.map(|i| i * 7919 % 1_000_003).collect())
        })
        .collect();
    let staged = "staging/t/part-00000.parquet";
    let mut sink = ParquetSink::new(root, staged, &schema).unwrap();
    for b in &batches {
        sink.write(vec![b.clone()]).await.unwrap();
    }
    let written = sink.finish().await.unwrap();
    let whole = parquet_io::encode(&schema, &batches).unwrap();
    assert!(whole.len() > MULTIPART_PART_BYTES, "{}", whole.len());
    assert_eq!(
        (written.rows, written.bytes, written.sha256.as_str()),
        (2_500_000, whole.len() as u64, sha256_hex(&whole).as_str())
    );
    let mut w = PartitionWriter::begin(root, ds, d).await.unwrap();
    w.adopt("part-00000.parquet", staged, written)
        .await
        .unwrap();
    w.commit(test_provenance(serde_json::json!({}), &schema))
        .await
        .unwrap();
    assert!(listed(root, "staging").await.is_empty());
    let sum: i64 = (0..2_500_000i64).map(|i| i * 7919 % 1_000_003).sum();
    assert_eq!(count_and_sum(root, ds, d).await, (2_500_000, sum));
}

/// Publishing: files first, the manifest last (a partition without it does not exist), hashes
/// that match what is stored, DataFusion reading exactly the listed files, and a rerun that
/// unpublishes before it replaces.
async fn publish_protocol(root: &DataRoot) {
    let root = root.clone();
    let d = date("2025-03-01");
    let ds = Dataset::FeaturesScore;
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));

    let mut w = PartitionWriter::begin(&root, ds, d).await.unwrap();
    w.write_parquet(
        "part-00000.parquet",
        schema.clone(),
        &[int_batch(&schema, vec![1, 2, 3])],
    )
    .await
    .unwrap();
    w.write_parquet(
        "part-00001.parquet",
        schema.clone(),
        &[int_batch(&schema, vec![4])],
    )
    .await
    .unwrap();
    // Files are there but the partition does not exist until its manifest is written.
    assert!(
        root.exists(&format!("{}/part-00001.parquet", ds.partition(d)))
            .await
            .unwrap()
    );
    let err = Manifest::read(&root, ds, d).await.unwrap_err();
    assert!(matches!(err, CoreError::NotPublished { .. }), "{err}");
    assert!(
        Manifest::published_dates(&root, ds)
            .await
            .unwrap()
            .is_empty()
    );

    let m = w
        .commit(test_provenance(serde_json::json!({"k": 1}), &schema))
        .await
        .unwrap();
    assert_eq!(m.row_count, 4);
    let (read, input) = Manifest::read(&root, ds, d).await.unwrap();
    assert_eq!(read, m);
    let manifest_bytes = root.get(&ds.manifest_path(d)).await.unwrap();
    assert_eq!(input.manifest_sha256, sha256_hex(&manifest_bytes));
    for f in &read.files {
        let bytes = root
            .get(&format!("{}/{}", ds.partition(d), f.name))
            .await
            .unwrap();
        assert_eq!(f.sha256, sha256_hex(&bytes), "{}", f.name);
        assert_eq!(f.bytes, bytes.len() as u64);
    }
    assert_eq!(Manifest::published_dates(&root, ds).await.unwrap(), [d]);
    assert_eq!(count_and_sum(&root, ds, d).await, (4, 10));

    // A rerun unpublishes first, removes the old files and publishes only what it wrote.
    let mut w = PartitionWriter::begin(&root, ds, d).await.unwrap();
    assert!(!root.exists(&ds.manifest_path(d)).await.unwrap());
    assert!(root.list(&ds.partition(d)).await.unwrap().is_empty());
    w.write_parquet(
        "part-00000.parquet",
        schema.clone(),
        &[int_batch(&schema, vec![7, 8])],
    )
    .await
    .unwrap();
    w.commit(test_provenance(serde_json::json!({"k": 2}), &schema))
        .await
        .unwrap();
    let names: Vec<String> = listed(&root, &ds.partition(d)).await;
    assert_eq!(
        names,
        [
            format!("{}/_manifest.json", ds.partition(d)),
            format!("{}/part-00000.parquet", ds.partition(d)),
        ]
    );
    assert_eq!(count_and_sum(&root, ds, d).await, (2, 15));
}
