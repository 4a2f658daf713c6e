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
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tracing::info;

use crate::error::{CoreError, Result};
use crate::layout::Dataset;
use crate::manifest::{FORMAT_VERSION, FileEntry, InputRef, Manifest};
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
        let mut sink = ObjectSink::new(&self.root, &rel);
        sink.write(&bytes).await?;
        let (bytes, sha256) = sink.finish().await?;
        self.files.push(FileEntry {
            name: name.to_string(),
            rows,
            bytes,
            sha256,
        });
        Ok(())
    }

    /// Moves a file written elsewhere under the root (a staging area, by a [`ParquetSink`]) into
    /// the partition as `name`, with the rows, size and SHA-256 counted when it was written.
    pub async fn adopt(&mut self, name: &str, staged: &str, written: Written) -> Result<()> {
        let rel = format!("{}/{name}", self.dataset.partition(self.run_date));
        self.root.rename(staged, &rel).await?;
        self.rows += written.rows;
        self.files.push(FileEntry {
            name: name.to_string(),
            rows: Some(written.rows),
            bytes: written.bytes,
            sha256: written.sha256,
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

/// One object streamed to the store: a single PUT up to [`MULTIPART_PART_BYTES`], a multipart
/// upload past it (each part retried on its own); its size and SHA-256 are counted on the way.
pub struct ObjectSink {
    root: DataRoot,
    rel: String,
    writer: BufWriter,
    sha: Sha256,
    bytes: u64,
}

impl ObjectSink {
    /// Starts writing the object at `rel` (nothing is visible before [`ObjectSink::finish`]).
    pub fn new(root: &DataRoot, rel: &str) -> Self {
        ObjectSink {
            root: root.clone(),
            rel: rel.to_string(),
            writer: BufWriter::with_capacity(
                root.store().clone(),
                root.path(rel),
                MULTIPART_PART_BYTES,
            ),
            sha: Sha256::new(),
            bytes: 0,
        }
    }

    /// Appends bytes; on failure the upload is aborted (no multipart parts stay billed).
    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.sha.update(bytes);
        self.bytes += bytes.len() as u64;
        if let Err(e) = self.writer.write_all(bytes).await {
            let _ = self.writer.abort().await;
            return Err(self.error(e));
        }
        Ok(())
    }

    /// Completes the object; returns its size and SHA-256 (hex).
    pub async fn finish(mut self) -> Result<(u64, String)> {
        // A failed shutdown is not aborted: the writer is then already finishing, and
        // object_store's `abort` panics on it ("Already shut down").
        if let Err(e) = self.writer.shutdown().await {
            return Err(self.error(e));
        }
        Ok((self.bytes, hex::encode(self.sha.finalize())))
    }

    /// Gives the object up: a multipart upload in progress is cancelled.
    pub async fn abort(mut self) {
        let _ = self.writer.abort().await;
    }

    fn error(&self, e: std::io::Error) -> CoreError {
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
        self.root
            .store_error("put", self.root.url(&self.rel), source)
    }
}

/// What a [`ParquetSink`] wrote: rows, bytes and SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Rows in the file.
    pub rows: u64,
    /// Size of the file.
    pub bytes: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// A Parquet file streamed to the store as its row groups fill ([`parquet_io::ParquetEncoder`]
/// and an [`ObjectSink`]): memory holds one row group, whatever the file's length, and the bytes
/// are those of [`parquet_io::encode`] on the same batches.
pub struct ParquetSink {
    sink: ObjectSink,
    /// `None` only while a blocking task encodes.
    encoder: Option<parquet_io::ParquetEncoder>,
}

impl ParquetSink {
    /// Starts a Parquet file of `schema` at `rel`.
    pub fn new(root: &DataRoot, rel: &str, schema: &Arc<Schema>) -> Result<Self> {
        let encoder =
            parquet_io::ParquetEncoder::new(schema).map_err(|source| CoreError::Parquet {
                path: root.url(rel),
                source,
            })?;
        Ok(ParquetSink {
            sink: ObjectSink::new(root, rel),
            encoder: Some(encoder),
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.encoder.as_ref().map_or(0, |e| e.rows())
    }

    /// Appends batches; every row group they complete is encoded (off the runtime's threads)
    /// and uploaded.
    pub async fn write(&mut self, batches: Vec<RecordBatch>) -> Result<()> {
        let encoder = self.take_encoder()?;
        let (encoder, encoded) = tokio::task::spawn_blocking(move || {
            let mut encoder = encoder;
            let res = encoder.write(&batches).map(|()| encoder.take_bytes());
            (encoder, res)
        })
        .await
        .map_err(|e| CoreError::task(format!("encoding {}", self.sink.rel), e))?;
        self.encoder = Some(encoder);
        let bytes = encoded.map_err(|source| self.parquet_error(source))?;
        if !bytes.is_empty() {
            self.sink.write(&bytes).await?;
        }
        Ok(())
    }

    /// Writes the last row group and the footer and completes the object.
    pub async fn finish(mut self) -> Result<Written> {
        let encoder = self.take_encoder()?;
        let rows = encoder.rows();
        let tail = tokio::task::spawn_blocking(move || encoder.finish())
            .await
            .map_err(|e| CoreError::task(format!("encoding {}", self.sink.rel), e))
            .and_then(|encoded| encoded.map_err(|source| self.parquet_error(source)));
        let tail = match tail {
            Ok(tail) => tail,
            Err(e) => {
                // `finish` consumes the sink, so the caller cannot abort the upload: done here.
                self.sink.abort().await;
                return Err(e);
            }
        };
        self.sink.write(&tail).await?;
        let (bytes, sha256) = self.sink.finish().await?;
        Ok(Written {
            rows,
            bytes,
            sha256,
        })
    }

    /// Gives the file up (see [`ObjectSink::abort`]).
    pub async fn abort(self) {
        self.sink.abort().await;
    }

    fn take_encoder(&mut self) -> Result<parquet_io::ParquetEncoder> {
        self.encoder.take().ok_or_else(|| CoreError::Bug {
            what: format!("writing {}", self.sink.rel),
            reason: "the Parquet encoder was lost by an earlier failed write".into(),
        })
    }

    fn parquet_error(&self, source: parquet::errors::ParquetError) -> CoreError {
        CoreError::Parquet {
            path: self.sink.root.url(&self.sink.rel),
            source,
        }
    }
}
