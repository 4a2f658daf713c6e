//! Writes generated tables below a data root: `<table>.csv` or `<table>.parquet`, plus
//! `truth/anchor_truth.parquet` when the profile has a ground truth.
//!
//! Tables are encoded one at a time on tokio's blocking pool (formatting millions of rows must not
//! stall the runtime), and each is dropped after its upload so only one encoded table is in
//! memory at once.

use std::fmt;
use std::str::FromStr;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use repurchase_core::DataRoot;

use crate::Generated;
use crate::error::DatagenError;

/// The file format tables are written in (the truth table is always Parquet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// BigQuery-style CSV export, `<table>.csv`.
    #[default]
    Csv,
    /// Parquet, `<table>.parquet`.
    Parquet,
}

impl OutputFormat {
    /// The file extension, which is also the format's name: `csv` or `parquet`.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Csv => "csv",
            OutputFormat::Parquet => "parquet",
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for OutputFormat {
    type Err = DatagenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(OutputFormat::Csv),
            "parquet" => Ok(OutputFormat::Parquet),
            _ => Err(DatagenError::UnknownValue {
                what: "output format",
                value: s.to_string(),
                expected: "csv, parquet",
            }),
        }
    }
}

/// What [`write`] stored: rows per table (the truth table as `anchor_truth`) and total bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Rows written per table name, in writing order.
    pub rows: Vec<(String, u64)>,
    /// Encoded bytes written in all.
    pub bytes: u64,
}

/// Path of the truth table below the root, in both output formats.
pub const TRUTH_PATH: &str = "truth/anchor_truth.parquet";

/// Writes every generated table below `root` as `<table>.<extension>` in `format`, and the truth
/// table, if any, at [`TRUTH_PATH`].
pub async fn write(
    root: &DataRoot,
    generated: &Generated,
    format: OutputFormat,
) -> Result<WriteSummary, DatagenError> {
    let mut summary = WriteSummary::default();
    for (table, batch) in &generated.tables {
        let rel = format!("{}.{}", table.name(), format.extension());
        let bytes = put(root, &rel, table.name(), batch, format).await?;
        summary
            .rows
            .push((table.name().to_string(), batch.num_rows() as u64));
        summary.bytes += bytes;
    }
    if let Some(truth) = &generated.truth {
        let bytes = put(
            root,
            TRUTH_PATH,
            "anchor_truth",
            truth,
            OutputFormat::Parquet,
        )
        .await?;
        summary
            .rows
            .push(("anchor_truth".to_string(), truth.num_rows() as u64));
        summary.bytes += bytes;
    }
    Ok(summary)
}

async fn put(
    root: &DataRoot,
    rel: &str,
    name: &str,
    batch: &RecordBatch,
    format: OutputFormat,
) -> Result<u64, DatagenError> {
    let owned_name = name.to_string();
    // Cloning a batch only clones Arcs to its columns.
    let owned_batch = batch.clone();
    let encoded = tokio::task::spawn_blocking(move || encode(&owned_name, &owned_batch, format))
        .await
        .map_err(|e| DatagenError::Task {
            what: format!("encoding {name}"),
            reason: e.to_string(),
        })??;
    let len = encoded.len() as u64;
    root.put(rel, encoded)
        .await
        .map_err(|source| DatagenError::Storage {
            path: root.url(rel),
            source: Box::new(source),
        })?;
    tracing::info!(table = name, rows = batch.num_rows(), bytes = len, path = %root.url(rel), "wrote table");
    Ok(len)
}

fn encode(name: &str, batch: &RecordBatch, format: OutputFormat) -> Result<Bytes, DatagenError> {
    match format {
        OutputFormat::Csv => crate::csv::encode(batch)
            .map(Bytes::from)
            .map_err(|reason| DatagenError::Csv {
                table: name.to_string(),
                reason,
            }),
        OutputFormat::Parquet => {
            repurchase_core::parquet_io::encode(&batch.schema(), std::slice::from_ref(batch))
                .map(Bytes::from)
                .map_err(|source| DatagenError::Parquet {
                    table: name.to_string(),
                    source,
                })
        }
    }
}
