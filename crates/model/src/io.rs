//! Loading feature partitions and model artefacts from a data root.

use datafusion::prelude::SessionContext;
use repurchase_core::layout::Dataset;
use repurchase_core::manifest::{InputRef, Manifest};
use repurchase_core::parquet_io::register_partition;
use repurchase_core::{CoreError, DataRoot, RunDate};

use crate::error::ModelError;
use crate::table::FeatureTable;

/// Reads a published feature partition, sorted by anchor time then anchor order (the order the
/// windows and the calibrator's cross-fitting rely on; DataFusion may read files in any order).
pub async fn load_features(
    root: &DataRoot,
    dataset: Dataset,
    run_date: RunDate,
) -> Result<(FeatureTable, Manifest, InputRef), ModelError> {
    let ctx = SessionContext::new();
    let (manifest, input) = register_partition(&ctx, root, dataset, run_date, "features").await?;
    let df = ctx
        .table("features")
        .await
        .map_err(|e| CoreError::query("read features", e))?;
    let batches = df
        .collect()
        .await
        .map_err(|e| CoreError::query("read features", e))?;
    let table = FeatureTable::from_batches(&batches)?;
    let mut idx: Vec<usize> = (0..table.len()).collect();
    idx.sort_by_key(|&i| (table.anchor_us[i], table.order_id[i]));
    Ok((table.take(&idx), manifest, input))
}

/// [`read_artifact`] parsed as JSON; a file that does not parse is a damaged partition.
pub async fn read_json_artifact<T: serde::de::DeserializeOwned>(
    root: &DataRoot,
    dataset: Dataset,
    run_date: RunDate,
    name: &str,
) -> Result<(T, InputRef), CoreError> {
    let (bytes, _, input) = read_artifact(root, dataset, run_date, name).await?;
    let value = serde_json::from_slice(&bytes).map_err(|e| CoreError::BadManifest {
        path: root.url(&format!("{}/{name}", dataset.partition(run_date))),
        reason: e.to_string(),
    })?;
    Ok((value, input))
}

/// Reads one file listed in a published partition's manifest, with that manifest and the input
/// reference that records what was read; a file whose SHA-256 differs from the manifest's is
/// refused as a damaged partition.
pub async fn read_artifact(
    root: &DataRoot,
    dataset: Dataset,
    run_date: RunDate,
    name: &str,
) -> Result<(Vec<u8>, Manifest, InputRef), CoreError> {
    let (manifest, input) = Manifest::read(root, dataset, run_date).await?;
    let entry = manifest.file(name).ok_or_else(|| CoreError::BadManifest {
        path: root.url(&dataset.manifest_path(run_date)),
        reason: format!("does not list {name}"),
    })?;
    let bytes = root
        .get(&format!("{}/{name}", dataset.partition(run_date)))
        .await?;
    if repurchase_core::manifest::sha256_hex(&bytes) != entry.sha256 {
        return Err(CoreError::BadManifest {
            path: root.url(&dataset.manifest_path(run_date)),
            reason: format!(
                "{name} does not match its checksum; the partition is damaged, rerun its stage"
            ),
        });
    }
    Ok((bytes.to_vec(), manifest, input))
}
