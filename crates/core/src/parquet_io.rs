//! Parquet encoding with fixed writer settings, and registering published partitions with DataFusion.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::layout::Dataset;
use crate::manifest::{InputRef, Manifest};
use crate::run_date::RunDate;
use crate::storage::DataRoot;

/// Rows per row group: large enough for good compression, small enough that readers can stream.
pub const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Encodes batches as one Parquet file. The settings are fixed (and the writer embeds no time),
/// so equal batches give byte-identical files: the bytes of [`ParquetEncoder`] fed the same
/// batches, in one go.
pub fn encode(schema: &Arc<Schema>, batches: &[RecordBatch]) -> Result<Vec<u8>, ParquetError> {
    let mut encoder = ParquetEncoder::new(schema)?;
    encoder.write(batches)?;
    let mut out = encoder.take_bytes();
    out.extend(encoder.finish()?);
    Ok(out)
}

/// Encodes a Parquet file row group by row group, so that a table of any length is written with
/// the memory of one row group: batches are buffered until a group fills, the group is encoded
/// and its bytes are handed out by [`ParquetEncoder::take_bytes`].
///
/// The column chunks of a row group are encoded in parallel, one (row group, column) per core at
/// a time, and appended in order: the bytes are exactly those of `ArrowWriter` writing the batches
/// one by one (same row-group cuts, same pages), in a fraction of the time for wide or long
/// tables. Page cuts follow the batches' boundaries, so equal batches give equal files whatever
/// the calls they arrive in.
pub struct ParquetEncoder {
    schema: Arc<Schema>,
    file: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    /// Parquet leaf columns per field, in the writers' order (one for a flat field).
    leaves: Vec<usize>,
    /// Slices of the row group being filled, and its row count.
    pending: Vec<RecordBatch>,
    filled: usize,
    /// Row groups appended so far.
    groups: usize,
    rows: u64,
}

impl ParquetEncoder {
    /// A new file with this crate's fixed writer settings (Snappy, [`ROW_GROUP_ROWS`] per group).
    pub fn new(schema: &Arc<Schema>) -> Result<Self, ParquetError> {
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))?;
        let (file, factory) = writer.into_serialized_writer()?;
        let mut leaves = vec![0usize; schema.fields().len()];
        let descr = file.schema_descr();
        for column in 0..descr.num_columns() {
            leaves[descr.get_column_root_idx(column)] += 1;
        }
        Ok(ParquetEncoder {
            schema: schema.clone(),
            file,
            factory,
            leaves,
            pending: Vec::new(),
            filled: 0,
            groups: 0,
            rows: 0,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds batches in order, encoding every row group they complete (the complete groups of one
    /// call in parallel).
    pub fn write(&mut self, batches: &[RecordBatch]) -> Result<(), ParquetError> {
        let mut complete: Vec<Vec<RecordBatch>> = Vec::new();
        for batch in batches {
            self.rows += batch.num_rows() as u64;
            let mut offset = 0;
            while offset < batch.num_rows() {
                let take = (batch.num_rows() - offset).min(ROW_GROUP_ROWS - self.filled);
                self.pending.push(batch.slice(offset, take));
                offset += take;
                self.filled += take;
                if self.filled == ROW_GROUP_ROWS {
                    complete.push(std::mem::take(&mut self.pending));
                    self.filled = 0;
                }
            }
        }
        self.encode_groups(complete)
    }

    /// Bytes encoded since the last call (a prefix of the file, in order).
    pub fn take_bytes(&mut self) -> Vec<u8> {
        // The writer's own buffer may still hold the latest bytes; what reached the vector comes
        // before them, and the footer's offsets are counted by the writer, not the vector.
        std::mem::take(self.file.inner_mut())
    }

    /// Encodes the last, partial row group and the footer; returns the bytes not yet taken.
    pub fn finish(mut self) -> Result<Vec<u8>, ParquetError> {
        if !self.pending.is_empty() {
            let last = std::mem::take(&mut self.pending);
            self.encode_groups(vec![last])?;
        }
        self.file.finish()?;
        Ok(self.take_bytes())
    }

    fn encode_groups(&mut self, groups: Vec<Vec<RecordBatch>>) -> Result<(), ParquetError> {
        if groups.is_empty() {
            return Ok(());
        }
        // One job per (row group, field): the field's column writers and its slices.
        type Encoded = Result<Vec<ArrowColumnChunk>, ParquetError>;
        struct Job {
            field: usize,
            writers: Vec<ArrowColumnWriter>,
            slices: Vec<ArrayRef>,
        }
        let mut jobs = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            let mut writers = self
                .factory
                .create_column_writers(self.groups + g)?
                .into_iter();
            for (f, &n) in self.leaves.iter().enumerate() {
                jobs.push(Job {
                    field: f,
                    writers: writers.by_ref().take(n).collect(),
                    slices: group.iter().map(|b| b.column(f).clone()).collect(),
                });
            }
        }
        let schema = &self.schema;
        let run = |job: Job| -> Encoded {
            let Job {
                field,
                mut writers,
                slices,
            } = job;
            for column in &slices {
                let leaves = compute_leaves(&schema.fields()[field], column)?;
                for (writer, leaf) in writers.iter_mut().zip(&leaves) {
                    writer.write(leaf)?;
                }
            }
            writers.into_iter().map(ArrowColumnWriter::close).collect()
        };
        // Jobs run on rayon's pool, one per core; `collect` keeps them in job order.
        let encoded: Vec<Encoded> = jobs.into_par_iter().map(run).collect();
        let mut done = encoded.into_iter();
        for _ in &groups {
            let mut row_group = self.file.next_row_group()?;
            for _ in schema.fields() {
                for chunk in done.next().expect("a result per job")? {
                    chunk.append_to_row_group(&mut row_group)?;
                }
            }
            row_group.close()?;
        }
        self.groups += groups.len();
        Ok(())
    }
}

/// Opens a published partition: reads its manifest and registers its Parquet files (only those
/// the manifest lists) as table `name` in `ctx`. Returns the manifest and the input reference
/// to record in the output's manifest.
pub async fn register_partition(
    ctx: &SessionContext,
    root: &DataRoot,
    dataset: Dataset,
    run_date: RunDate,
    name: &str,
) -> Result<(Manifest, InputRef)> {
    register_partition_with(ctx, root, dataset, run_date, name, ParquetFormat::default()).await
}

/// [`register_partition`] with explicit Parquet read settings, e.g.
/// `ParquetFormat::default().with_force_view_types(false)` to read strings as `Utf8` rather than
/// `Utf8View` (views into the decoded pages: cheap to read, but every batch that `take`s or joins
/// them keeps all their buffers alive, which costs memory and copying in wide join chains).
pub async fn register_partition_with(
    ctx: &SessionContext,
    root: &DataRoot,
    dataset: Dataset,
    run_date: RunDate,
    name: &str,
    format: ParquetFormat,
) -> Result<(Manifest, InputRef)> {
    let (manifest, input) = Manifest::read(root, dataset, run_date).await?;
    root.register(ctx);
    let partition = dataset.partition(run_date);
    // What is read is what was published: each file's size and SHA-256 against the manifest.
    for f in manifest
        .files
        .iter()
        .filter(|f| f.name.ends_with(".parquet"))
    {
        root.verify(&format!("{partition}/{}", f.name), f.bytes, &f.sha256)
            .await?;
    }
    let files: Vec<String> = manifest
        .files
        .iter()
        .filter(|f| f.name.ends_with(".parquet"))
        .map(|f| format!("{partition}/{}", f.name))
        .collect();
    if files.is_empty() {
        return Err(CoreError::BadManifest {
            path: root.url(&partition),
            reason: "lists no parquet file".into(),
        });
    }
    register_files(ctx, root, name, &files, format, ".parquet").await?;
    Ok((manifest, input))
}

/// Registers Parquet files below `root` (root-relative paths, read in the order given) as table
/// `name` in `ctx`, with the schema inferred from them; `extension` is what every file name ends
/// with (`""` for Athena's UNLOAD output, which has none).
pub async fn register_files(
    ctx: &SessionContext,
    root: &DataRoot,
    name: &str,
    files: &[String],
    format: ParquetFormat,
    extension: &str,
) -> Result<()> {
    root.register(ctx);
    let urls: Vec<ListingTableUrl> = files
        .iter()
        .map(|f| ListingTableUrl::parse(root.table_url(f)))
        .collect::<datafusion::error::Result<_>>()
        .map_err(|e| CoreError::query(format!("register {name}"), e))?;
    let options = ListingOptions::new(Arc::new(format)).with_file_extension(extension);
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await
        .map_err(|e| CoreError::query(format!("open the files of {name}"), e))?;
    let table =
        ListingTable::try_new(config).map_err(|e| CoreError::query(format!("open {name}"), e))?;
    ctx.deregister_table(name)
        .map_err(|e| CoreError::query(format!("register {name}"), e))?;
    ctx.register_table(name, Arc::new(table))
        .map_err(|e| CoreError::query(format!("register {name}"), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow::array::{BooleanArray, Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};

    use super::*;

    /// What `encode` did before it encoded columns in parallel: `ArrowWriter`, batch by batch.
    fn reference(schema: &Arc<Schema>, batches: &[RecordBatch]) -> Vec<u8> {
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let mut buf = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut buf, schema.clone(), Some(props)).unwrap();
        for b in batches {
            writer.write(b).unwrap();
        }
        writer.close().unwrap();
        buf
    }

    #[test]
    fn parallel_encoding_gives_arrow_writers_bytes() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("value", DataType::Float64, false),
            Field::new("status", DataType::Utf8, true),
            Field::new("flag", DataType::Boolean, true),
        ]));
        let batch = |start: usize, rows: usize| {
            let r = start..start + rows;
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from_iter(
                        r.clone().map(|i| (i % 7 != 0).then_some(i as i64 * 31)),
                    )),
                    Arc::new(Float64Array::from_iter_values(
                        r.clone().map(|i| (i as f64 * 0.37).sin()),
                    )),
                    Arc::new(StringArray::from_iter(r.clone().map(|i| match i % 5 {
                        0 => None,
                        k => Some(format!("status-{k}")),
                    }))),
                    Arc::new(BooleanArray::from_iter(r.map(|i| Some(i % 3 == 0)))),
                ],
            )
            .unwrap()
        };
        // Uneven batches (and an empty one) over three row groups, the last one partial.
        let mut batches = Vec::new();
        let mut start = 0;
        for rows in [100_003, 0, 250_000, 7, 300_000, 1] {
            batches.push(batch(start, rows));
            start += rows;
        }
        let ours = encode(&schema, &batches).unwrap();
        assert_eq!(ours, reference(&schema, &batches));
        let meta = parquet::file::serialized_reader::SerializedFileReader::new(bytes::Bytes::from(
            ours.clone(),
        ))
        .map(|r| parquet::file::reader::FileReader::metadata(&r).clone())
        .unwrap();
        assert_eq!(meta.num_row_groups(), 3);
        assert_eq!(meta.file_metadata().num_rows(), start as i64);
        // Nothing to write: still a valid, empty file, as before.
        assert_eq!(encode(&schema, &[]).unwrap(), reference(&schema, &[]));
        // Streamed in several calls, the bytes taken as they come: the same file.
        let mut encoder = ParquetEncoder::new(&schema).unwrap();
        let mut streamed = Vec::new();
        for pair in batches.chunks(2) {
            encoder.write(pair).unwrap();
            streamed.extend(encoder.take_bytes());
        }
        assert_eq!(encoder.rows(), start as u64);
        streamed.extend(encoder.finish().unwrap());
        assert_eq!(streamed, ours);
    }
}
