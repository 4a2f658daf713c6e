//! Parquet encoding with fixed writer settings, and registering published partitions with DataFusion.

use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

use crate::error::{CoreError, Result};
use crate::layout::Dataset;
use crate::manifest::{InputRef, Manifest};
use crate::run_date::RunDate;
use crate::storage::DataRoot;

/// Rows per row group: large enough for good compression, small enough that readers can stream.
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Encodes batches as one Parquet file. The settings are fixed (and the writer embeds no time),
/// so equal batches give byte-identical files.
pub fn encode(schema: &Arc<Schema>, batches: &[RecordBatch]) -> Result<Vec<u8>, ParquetError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, schema.clone(), Some(props))?;
    for b in batches {
        writer.write(b)?;
    }
    writer.close()?;
    Ok(buf)
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
    let urls: Vec<ListingTableUrl> = manifest
        .files
        .iter()
        .filter(|f| f.name.ends_with(".parquet"))
        .map(|f| ListingTableUrl::parse(root.url(&format!("{partition}/{}", f.name))))
        .collect::<datafusion::error::Result<_>>()
        .map_err(|e| CoreError::query(format!("register {name}"), e))?;
    if urls.is_empty() {
        return Err(CoreError::BadManifest {
            path: root.url(&partition),
            reason: "lists no parquet file".into(),
        });
    }
    let options = ListingOptions::new(Arc::new(format)).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await
        .map_err(|e| CoreError::query(format!("open {}", root.url(&partition)), e))?;
    let table =
        ListingTable::try_new(config).map_err(|e| CoreError::query(format!("open {name}"), e))?;
    ctx.deregister_table(name)
        .map_err(|e| CoreError::query(format!("register {name}"), e))?;
    ctx.register_table(name, Arc::new(table))
        .map_err(|e| CoreError::query(format!("register {name}"), e))?;
    Ok((manifest, input))
}
