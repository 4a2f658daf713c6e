//! Writing a partition so that it appears whole or not at all.
//!
//! Protocol: (1) delete the old manifest, which unpublishes the partition; (2) delete the old files;
//! (3) write the new files; (4) write `_manifest.json` last. Readers open only partitions that have
//! a manifest and read only the files it lists, so a crash at any point leaves either the previous
//! partition (before step 1) or an unpublished one, never a mix.
//!
//! Files larger than [`MULTIPART_PART_BYTES`] go to S3 as a multipart upload in parts of that
//! size, uploaded concurrently and retried part by part; a failed upload is aborted so no
//! orphaned parts stay billed.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use object_store::buffered::BufWriter;
use tokio::io::AsyncWriteExt;
use tracing::info;

use crate::error::{CoreError, Result};
use crate::layout::Dataset;
use crate::manifest::{FORMAT_VERSION, FileEntry, InputRef, Manifest, sha256_hex};
use crate::parquet_io;
use crate::run_date::RunDate;
use crate::storage::DataRoot;

/// Size of one multipart part, and the size above which a file is uploaded in parts. S3 needs
/// parts of at least 5 MiB (but the last); 10 MiB keeps a 10,000-part upload at 100 GB and the
/// memory in flight at 8 concurrent parts × 10 MiB.
pub const MULTIPART_PART_BYTES: usize = 10 * 1024 * 1024;

/// Writes one partition: files first, then the manifest ([`PartitionWriter::commit`]), which
/// makes the partition exist; readers never see a half-written partition.
pub struct PartitionWriter {
    root: DataRoot,
    dataset: Dataset,
    run_date: RunDate,
    files: Vec<FileEntry>,
    rows: u64,
}

impl PartitionWriter {
    /// Unpublishes and clears the partition, ready for new files. Every manifest under the
    /// partition goes first — its own and those of partitions nested inside it (a model's
    /// `calibration/`) — so a crash part-way through the clearing can never leave a published
    /// partition whose files are gone.
    pub async fn begin(root: &DataRoot, dataset: Dataset, run_date: RunDate) -> Result<Self> {
        root.delete(&dataset.manifest_path(run_date)).await?;
        let partition = dataset.partition(run_date);
        for meta in root.list(&partition).await? {
            let rel = root.relative(&meta.location);
            if rel.ends_with(&format!("/{}", crate::layout::MANIFEST_FILE)) {
                root.delete(&rel).await?;
            }
        }
        let removed = root.delete_prefix(&partition).await?;
        if removed > 0 {
            info!(dataset = %dataset, run_date = %run_date, removed, "replacing existing partition");
        }
        Ok(PartitionWriter {
            root: root.clone(),
            dataset,
            run_date,
            files: Vec::new(),
            rows: 0,
        })
    }

    /// Writes record batches as one Parquet file of the partition.
    pub async fn write_parquet(
        &mut self,
        name: &str,
        schema: Arc<Schema>,
        batches: &[RecordBatch],
    ) -> Result<u64> {
        let rel = format!("{}/{name}", self.dataset.partition(self.run_date));
        // Encoding is CPU-bound: off the runtime's threads, onto rayon's pool through one
        // blocking task (batches are reference-counted, so the copy is of pointers).
        let owned = batches.to_vec();
        let bytes = tokio::task::spawn_blocking(move || parquet_io::encode(&schema, &owned))
            .await
            .map_err(|e| CoreError::task(format!("encoding {rel}"), e))?
            .map_err(|source| CoreError::Parquet {
                path: self.root.url(&rel),
                source,
            })?;
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        self.upload(name, Bytes::from(bytes), Some(rows)).await?;
        self.rows += rows;
        Ok(rows)
    }

    /// Writes a non-tabular artefact (model, card, metrics) into the partition.
    pub async fn write_bytes(&mut self, name: &str, bytes: Bytes) -> Result<()> {
        self.upload(name, bytes, None).await
    }

    /// Writes `value` as pretty JSON ending in a newline (cards, metrics, reports).
    pub async fn write_json<T: serde::Serialize>(&mut self, name: &str, value: &T) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| CoreError::Bug {
            what: format!("writing {name}"),
            reason: format!("cannot serialise it: {e}"),
        })?;
        bytes.push(b'\n');
        self.write_bytes(name, Bytes::from(bytes)).await
    }

    async fn upload(&mut self, name: &str, bytes: Bytes, rows: Option<u64>) -> Result<()> {
        let rel = format!("{}/{name}", self.dataset.partition(self.run_date));
        let sha = sha256_hex(&bytes);
        let len = bytes.len() as u64;
        // BufWriter makes one PUT of a file up to its capacity and switches to a multipart upload
        // past it, so large files go to S3 in parts (and a failed part is retried on its own).
        let mut w = BufWriter::with_capacity(
            self.root.store().clone(),
            self.root.path(&rel),
            MULTIPART_PART_BYTES,
        );
        // A failed write is aborted (a multipart upload in progress is cancelled); a failed
        // shutdown is not: the writer is then already finishing, and object_store's `abort`
        // panics on it ("Already shut down").
        let res = match w.write_all(&bytes).await {
            Ok(()) => w.shutdown().await,
            Err(e) => {
                let _ = w.abort().await;
                Err(e)
            }
        };
        if let Err(e) = res {
            let source = match e.into_inner() {
                Some(inner) => match inner.downcast::<object_store::Error>() {
                    Ok(store_err) => *store_err,
                    Err(other) => object_store::Error::Generic {
                        store: "upload",
                        source: other,
                    },
                },
                None => object_store::Error::Generic {
                    store: "upload",
                    source: "write failed".into(),
                },
            };
            return Err(self.root.store_error("put", self.root.url(&rel), source));
        }
        self.files.push(FileEntry {
            name: name.to_string(),
            rows,
            bytes: len,
            sha256: sha,
        });
        Ok(())
    }

    /// Publishes the partition by writing its manifest, which records `provenance` beside the
    /// files written.
    pub async fn commit(self, provenance: Provenance<'_>) -> Result<Manifest> {
        let Provenance {
            stage,
            parameters,
            schema,
            inputs,
            counters,
        } = provenance;
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            dataset: self.dataset.to_string(),
            run_date: self.run_date,
            stage: stage.to_string(),
            code_version: crate::code_version(),
            parameters,
            files: self.files,
            row_count: self.rows,
            schema: schema.map(Manifest::schema_entries).unwrap_or_default(),
            inputs,
            counters,
        };
        self.root
            .put(
                &self.dataset.manifest_path(self.run_date),
                Bytes::from(manifest.to_bytes()),
            )
            .await?;
        Ok(manifest)
    }
}

/// What a manifest records beside its files: who wrote the partition, how, from what, and the
/// counts of the run.
#[derive(Debug)]
pub struct Provenance<'a> {
    /// The worker writing the partition (`train`, `score`, …).
    pub stage: &'a str,
    /// The stage's typed parameters as JSON (see `repurchase_contracts::params`).
    pub parameters: serde_json::Value,
    /// Schema of the Parquet files, when the partition holds a table.
    pub schema: Option<&'a Schema>,
    /// The published partitions read.
    pub inputs: Vec<InputRef>,
    /// Rows dropped or repaired, by reason, and anything else worth counting.
    pub counters: BTreeMap<String, u64>,
}
