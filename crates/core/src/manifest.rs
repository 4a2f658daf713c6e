//! Partition manifests: the record that makes a partition exist.
//!
//! A manifest lists the files of a partition with their row counts and checksums, the schema, the
//! parameters and code version that produced it, counters (dropped or repaired rows), and the
//! manifests of its inputs (by checksum), so any output can be traced to exactly what it was built
//! from. It contains no wall-clock time: identical inputs give a byte-identical manifest.

use std::collections::BTreeMap;

use arrow::datatypes::Schema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{CoreError, Result};
use crate::layout::Dataset;
use crate::run_date::RunDate;
use crate::storage::DataRoot;

/// Version of the manifest format; a reader refuses any other.
pub const FORMAT_VERSION: u32 = 1;

/// `_manifest.json`: what a partition holds and what it was built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// Dataset folder, e.g. `raw/orders` or `features/train`.
    pub dataset: String,
    /// Run date of the partition.
    pub run_date: RunDate,
    /// Worker that wrote the partition.
    pub stage: String,
    /// Version of the program that wrote it (the workspace version).
    pub code_version: String,
    /// The stage's settings, typed in `repurchase-contracts` (`params`).
    pub parameters: serde_json::Value,
    /// Every file of the partition, in name order.
    pub files: Vec<FileEntry>,
    /// Rows over the Parquet files.
    pub row_count: u64,
    /// Schema of the Parquet files (empty for a partition of JSON artefacts).
    pub schema: Vec<FieldEntry>,
    /// The partitions it was built from, pinned by their manifests' checksums.
    pub inputs: Vec<InputRef>,
    /// Rows dropped or repaired, by reason; also anything else worth counting.
    pub counters: BTreeMap<String, u64>,
}

/// One file of a partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// File name inside the partition folder.
    pub name: String,
    /// Rows for Parquet files, absent for JSON artefacts.
    pub rows: Option<u64>,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the bytes, hex; readers check it.
    pub sha256: String,
}

/// One column of a partition's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldEntry {
    /// Column name.
    pub name: String,
    /// Arrow data type, as Arrow prints it.
    pub data_type: String,
    /// Whether the column may hold nulls.
    pub nullable: bool,
}

/// Reference to an input partition, pinned by the checksum of its manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputRef {
    /// Dataset folder of the input.
    pub dataset: String,
    /// Its run date.
    pub run_date: RunDate,
    /// SHA-256 of its manifest's bytes.
    pub manifest_sha256: String,
    /// Its rows.
    pub row_count: u64,
}

impl Manifest {
    /// The manifest's record of an Arrow schema.
    pub fn schema_entries(schema: &Schema) -> Vec<FieldEntry> {
        schema
            .fields()
            .iter()
            .map(|f| FieldEntry {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
                nullable: f.is_nullable(),
            })
            .collect()
    }

    /// The bytes written: pretty JSON with a final newline, the same for the same manifest.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("manifest serialises");
        v.push(b'\n');
        v
    }

    /// Reads and parses the manifest of a partition; [`CoreError::NotPublished`] when absent.
    pub async fn read(
        root: &DataRoot,
        dataset: Dataset,
        run_date: RunDate,
    ) -> Result<(Manifest, InputRef)> {
        let rel = dataset.manifest_path(run_date);
        let bytes = root
            .get_opt(&rel)
            .await?
            .ok_or_else(|| CoreError::NotPublished {
                path: root.url(&dataset.partition(run_date)),
                run_date: run_date.to_string(),
            })?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| CoreError::BadManifest {
                path: root.url(&rel),
                reason: e.to_string(),
            })?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(CoreError::BadManifest {
                path: root.url(&rel),
                reason: format!(
                    "format_version {} is not {FORMAT_VERSION}",
                    manifest.format_version
                ),
            });
        }
        let input = InputRef {
            dataset: manifest.dataset.clone(),
            run_date,
            manifest_sha256: sha256_hex(&bytes),
            row_count: manifest.row_count,
        };
        Ok((manifest, input))
    }

    /// Run dates that have a published partition of `dataset`, ascending.
    pub async fn published_dates(root: &DataRoot, dataset: Dataset) -> Result<Vec<RunDate>> {
        let mut out = Vec::new();
        for name in root.list_dirs(&dataset.dir()).await? {
            if let Some(d) = Dataset::parse_partition_dir(&name)
                && root.exists(&dataset.manifest_path(d)).await?
            {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// The entry of the file `name`, if the partition lists it.
    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
