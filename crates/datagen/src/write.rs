//! Writes generated tables below a data root: `<table>.csv` or `<table>.parquet`, plus
//! `truth/anchor_truth.parquet` when the profile has a ground truth.
//!
//! Every file goes through a [`TableWriter`], which appends rows as they come (CSV text, or
//! Parquet row groups through core's streaming encoder) and uploads them on the way, so its
//! memory is one row group or one chunk, whatever the table's length. A file appears only when
//! it is finished; an aborted one leaves nothing behind.

use std::fmt;
use std::str::FromStr;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use repurchase_core::parquet_io::ROW_GROUP_ROWS;
use repurchase_core::publish::{ObjectSink, ParquetSink};
use repurchase_core::schema::Table;
use repurchase_core::{CoreError, DataRoot};

use crate::error::DatagenError;
use crate::{Generated, truth_schema};

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

/// What [`write`] or [`generate_into`](crate::generate_into) stored: rows per table (the truth
/// table as `anchor_truth`) and total bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Rows written per table name: the tables (in [`Table::ALL`] order when generated), then
    /// `anchor_truth`.
    pub rows: Vec<(String, u64)>,
    /// Encoded bytes written in all.
    pub bytes: u64,
}

/// Path of the truth table below the root, in both output formats.
pub const TRUTH_PATH: &str = "truth/anchor_truth.parquet";

/// Rows of an in-memory batch formatted as CSV at once: bounds the text held per upload.
const CSV_SLICE_ROWS: usize = 1 << 18;

/// Writes every generated table below `root` as `<table>.<extension>` in `format`, and the truth
/// table, if any, at [`TRUTH_PATH`]. For tables already in memory (tests, edited tables); the
/// generator itself streams with [`generate_into`](crate::generate_into).
pub async fn write(
    root: &DataRoot,
    generated: &Generated,
    format: OutputFormat,
) -> Result<WriteSummary, DatagenError> {
    let files = generated
        .tables
        .iter()
        .map(|(t, b)| (Output::Table(*t), b))
        .chain(generated.truth.iter().map(|b| (Output::Truth, b)));
    let mut summary = WriteSummary::default();
    for (output, batch) in files {
        let mut writer = TableWriter::open(root, output, format).await?;
        if let Err(e) = writer.push_batch(batch.clone()).await {
            writer.abort().await;
            return Err(e);
        }
        let (rows, bytes) = writer.finish().await?;
        summary.rows.push((output.name().to_string(), rows));
        summary.bytes += bytes;
    }
    Ok(summary)
}

/// A file the generator writes: one of the seven tables, or the truth table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// A TheLook table, in the chosen format.
    Table(Table),
    /// The truth table, always Parquet.
    Truth,
}

impl Output {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Output::Table(t) => t.name(),
            Output::Truth => "anchor_truth",
        }
    }

    fn schema(self) -> SchemaRef {
        match self {
            Output::Table(t) => t.schema(),
            Output::Truth => truth_schema(),
        }
    }

    /// The format the file is written in when the tables are written in `format`.
    pub(crate) fn format(self, format: OutputFormat) -> OutputFormat {
        match self {
            Output::Table(_) => format,
            Output::Truth => OutputFormat::Parquet,
        }
    }

    fn path(self, format: OutputFormat) -> String {
        match self {
            Output::Table(t) => format!("{}.{}", t.name(), format.extension()),
            Output::Truth => TRUTH_PATH.to_string(),
        }
    }
}

/// Rows on their way to a [`TableWriter`]: CSV already formatted (on the worker that built the
/// batch, so formatting runs in parallel) or a batch for the Parquet encoder.
pub(crate) enum Piece {
    /// CSV lines, no header.
    Csv {
        /// The text.
        text: Vec<u8>,
        /// Lines in `text`.
        rows: u64,
    },
    /// Rows for a Parquet file.
    Batch(RecordBatch),
}

impl Piece {
    /// `batch` as `output` takes it when the tables are written in `format`.
    pub(crate) fn new(
        output: Output,
        batch: RecordBatch,
        format: OutputFormat,
    ) -> Result<Piece, DatagenError> {
        match output.format(format) {
            OutputFormat::Csv => Ok(Piece::Csv {
                text: csv_rows(output, &batch)?,
                rows: batch.num_rows() as u64,
            }),
            OutputFormat::Parquet => Ok(Piece::Batch(batch)),
        }
    }
}

fn csv_rows(output: Output, batch: &RecordBatch) -> Result<Vec<u8>, DatagenError> {
    crate::csv::rows(batch).map_err(|reason| DatagenError::Csv {
        table: output.name().to_string(),
        reason,
    })
}

/// One file being written, rows appended in order.
pub(crate) struct TableWriter {
    output: Output,
    url: String,
    sink: Sink,
}

/// The sinks are boxed: hundreds of bytes each, and of different sizes.
enum Sink {
    Csv {
        sink: Box<ObjectSink>,
        rows: u64,
    },
    /// Rows are held until a row group fills, then handed to the encoder as one batch of exactly
    /// [`ROW_GROUP_ROWS`]: the encoder cuts pages at batch boundaries, and this makes them those
    /// of `parquet_io::encode` on the whole table (one slice per row group), byte for byte.
    Parquet {
        sink: Box<ParquetSink>,
        schema: SchemaRef,
        pending: Vec<RecordBatch>,
        pending_rows: usize,
    },
}

impl TableWriter {
    /// Starts `output` below `root` (a CSV file with its header).
    pub(crate) async fn open(
        root: &DataRoot,
        output: Output,
        format: OutputFormat,
    ) -> Result<Self, DatagenError> {
        let rel = output.path(format);
        let url = root.url(&rel);
        let schema = output.schema();
        let sink = match output.format(format) {
            OutputFormat::Csv => {
                let mut sink = Box::new(ObjectSink::new(root, &rel));
                sink.write(&crate::csv::header(&schema))
                    .await
                    .map_err(|e| sink_error(output, &url, e))?;
                Sink::Csv { sink, rows: 0 }
            }
            OutputFormat::Parquet => Sink::Parquet {
                sink: Box::new(
                    ParquetSink::new(root, &rel, &schema)
                        .map_err(|e| sink_error(output, &url, e))?,
                ),
                schema,
                pending: Vec::new(),
                pending_rows: 0,
            },
        };
        Ok(TableWriter { output, url, sink })
    }

    /// The file this writer writes.
    pub(crate) fn output(&self) -> Output {
        self.output
    }

    /// Appends rows prepared by [`Piece::new`] for this output.
    pub(crate) async fn push(&mut self, piece: Piece) -> Result<(), DatagenError> {
        match piece {
            Piece::Batch(batch) => self.push_batch(batch).await,
            Piece::Csv { text, rows: n } => match &mut self.sink {
                Sink::Csv { sink, rows } => {
                    *rows += n;
                    sink.write(&text)
                        .await
                        .map_err(|e| sink_error(self.output, &self.url, e))
                }
                Sink::Parquet { .. } => Err(DatagenError::Csv {
                    table: self.output.name().to_string(),
                    reason: "rows formatted as CSV for a Parquet file".into(),
                }),
            },
        }
    }

    /// Appends a batch of any length, formatting it here if the file is CSV.
    pub(crate) async fn push_batch(&mut self, batch: RecordBatch) -> Result<(), DatagenError> {
        let output = self.output;
        match &mut self.sink {
            Sink::Csv { sink, rows } => {
                let mut start = 0;
                while start < batch.num_rows() {
                    let slice = batch.slice(start, CSV_SLICE_ROWS.min(batch.num_rows() - start));
                    start += slice.num_rows();
                    let n = slice.num_rows() as u64;
                    // Formatting is CPU-bound: off the runtime's threads.
                    let text = tokio::task::spawn_blocking(move || csv_rows(output, &slice))
                        .await
                        .map_err(|e| DatagenError::Task {
                            what: format!("formatting {}", self.url),
                            reason: e.to_string(),
                        })??;
                    *rows += n;
                    sink.write(&text)
                        .await
                        .map_err(|e| sink_error(output, &self.url, e))?;
                }
                Ok(())
            }
            Sink::Parquet {
                sink,
                schema,
                pending,
                pending_rows,
            } => {
                *pending_rows += batch.num_rows();
                pending.push(batch);
                while *pending_rows >= ROW_GROUP_ROWS {
                    let group = take_rows(pending, ROW_GROUP_ROWS, schema, output)?;
                    *pending_rows -= ROW_GROUP_ROWS;
                    sink.write(vec![group])
                        .await
                        .map_err(|e| sink_error(output, &self.url, e))?;
                }
                Ok(())
            }
        }
    }

    /// Completes the file (a Parquet file's last row group and footer); returns its rows and
    /// bytes.
    pub(crate) async fn finish(self) -> Result<(u64, u64), DatagenError> {
        let TableWriter { output, url, sink } = self;
        let err = |e| sink_error(output, &url, e);
        let (rows, bytes) = match sink {
            Sink::Csv { sink, rows } => (rows, sink.finish().await.map_err(err)?.0),
            Sink::Parquet {
                mut sink,
                schema,
                mut pending,
                pending_rows,
            } => {
                if pending_rows > 0 {
                    let res = match take_rows(&mut pending, pending_rows, &schema, output) {
                        Ok(last) => sink.write(vec![last]).await.map_err(err),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = res {
                        sink.abort().await;
                        return Err(e);
                    }
                }
                let written = sink.finish().await.map_err(err)?;
                (written.rows, written.bytes)
            }
        };
        tracing::info!(table = output.name(), rows, bytes, path = %url, "wrote table");
        Ok((rows, bytes))
    }

    /// Gives the file up: nothing of it is left in the store.
    pub(crate) async fn abort(self) {
        match self.sink {
            Sink::Csv { sink, .. } => sink.abort().await,
            Sink::Parquet { sink, .. } => sink.abort().await,
        }
    }
}

/// The first `n` rows of `pending` as one batch (a slice when one batch holds them all); the
/// rest stays in `pending`.
fn take_rows(
    pending: &mut Vec<RecordBatch>,
    n: usize,
    schema: &SchemaRef,
    output: Output,
) -> Result<RecordBatch, DatagenError> {
    let mut pieces = Vec::new();
    let mut need = n;
    let mut queue = std::mem::take(pending).into_iter();
    for batch in queue.by_ref() {
        if batch.num_rows() <= need {
            need -= batch.num_rows();
            pieces.push(batch);
        } else {
            pieces.push(batch.slice(0, need));
            pending.push(batch.slice(need, batch.num_rows() - need));
            need = 0;
        }
        if need == 0 {
            break;
        }
    }
    pending.extend(queue);
    if pieces.len() == 1 {
        return Ok(pieces.swap_remove(0));
    }
    arrow::compute::concat_batches(schema, &pieces).map_err(|source| DatagenError::Arrow {
        table: output.name().to_string(),
        source,
    })
}

/// A sink's error: the encoder's as this crate's Parquet error (a bug here, not bad input), the
/// store's with its class intact.
fn sink_error(output: Output, url: &str, e: CoreError) -> DatagenError {
    match e {
        CoreError::Parquet { source, .. } => DatagenError::Parquet {
            table: output.name().to_string(),
            source,
        },
        other => DatagenError::Storage {
            path: url.to_string(),
            source: Box::new(other),
        },
    }
}
