//! The `extract` worker.
//!
//! Reads the seven TheLook tables from a source, validates their columns and types, keeps what
//! existed at the end of the run date (see [`validate`]) and writes typed Parquet partitions
//! `raw/<table>/run_date=D/`. All tables are loaded and checked before anything is written, so bad
//! input leaves the data root untouched.
//!
//! The source is one seam ([`Source`]): a folder (local or object store) holding a BigQuery CSV
//! export or Parquet files, or Athena ([`athena`]), which unloads the tables as Parquet into a
//! staging prefix of the data root; from there both take the same load, validate and publish path.

#![warn(missing_docs, unreachable_pub)]

pub use repurchase_athena as athena;
use repurchase_athena::cli::{QueryArgs, parse_identifier};
pub mod error;
pub mod load;
pub mod source;
pub mod timestamp;
pub mod validate;

use std::collections::BTreeMap;

use arrow::record_batch::RecordBatch;
use clap::Args as ClapArgs;
use repurchase_core::cli::CommonArgs;
use repurchase_core::layout::Dataset;
use repurchase_core::logging::{StepTimer, progress};
use repurchase_core::parquet_io::ROW_GROUP_ROWS;
use repurchase_core::publish::{ParquetSink, PartitionWriter, Provenance, Written};
use repurchase_core::schema::Table;
use repurchase_core::{CoreError, DataRoot, RunDate, StoreConfig};
use serde::Serialize;

pub use crate::error::{ExtractError, Result};
use tracing::{Instrument, info, warn};

use crate::athena::{AthenaSettings, AthenaSource, Identifier, Shutdown};
use crate::source::{SourceReader, Watched};
use crate::validate::{KeySets, Refusal, Validator};

/// The stage's name: the binary's, its lock's and its partitions' provenance.
pub const STAGE: &str = "extract";
/// The `--help` summary of the `extract` binary.
pub const ABOUT: &str = "Validates the seven TheLook tables from a source and writes typed raw partitions for a run date.";

#[allow(missing_docs)] // clap turns doc comments here into --help text
#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// Run date, data root and the other flags every worker takes.
    #[command(flatten)]
    pub common: CommonArgs,

    /// Where TheLook's tables come from: a folder (plain path, file://, s3://) holding
    /// `<table>.csv` / `<table>.parquet` files or `<table>/` folders of such files; or `athena`,
    /// which runs sql/extract/<table>.sql as UNLOAD into <data-root>/staging/athena/ (the data root
    /// must then be s3://; see the --athena-* options).
    #[arg(long, env = "REPURCHASE_SOURCE")]
    pub source: String,

    /// Options used only with `--source athena`.
    #[command(flatten)]
    pub athena: AthenaArgs,
}

impl repurchase_core::cli::WorkerArgs for Args {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

/// The value of `--source` that selects Athena.
pub const ATHENA_SOURCE: &str = "athena";

/// Options of `--source athena`.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Athena (--source athena)")]
pub struct AthenaArgs {
    /// Glue/Athena database holding TheLook's tables.
    #[arg(
        long = "athena-database",
        env = "REPURCHASE_ATHENA_DATABASE",
        default_value = "thelook_ecommerce",
        value_parser = parse_identifier
    )]
    pub database: Identifier,

    /// Longest one query may run before it is stopped and the task fails as transient (exit 75).
    #[arg(
        long = "athena-timeout-secs",
        env = "REPURCHASE_ATHENA_TIMEOUT_SECS",
        default_value_t = 1800,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub timeout_secs: u64,

    /// Workgroup and polling of the Athena queries.
    #[command(flatten)]
    pub query: QueryArgs,
}

impl AthenaArgs {
    /// The Athena connection settings these options describe.
    pub fn settings(&self) -> AthenaSettings {
        self.query.settings(&self.database, self.timeout_secs)
    }
}

/// Where the tables are read from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A folder of exported files, on any store a [`DataRoot`] can address.
    Files(DataRoot),
    /// Athena, unloading into the data root's staging prefix.
    Athena(AthenaSource),
}

impl Source {
    /// A folder source from a path or URL (`athena` is handled by [`run`], which needs the
    /// Athena options).
    pub fn parse(spec: &str, cfg: &StoreConfig) -> Result<Source> {
        Ok(Source::Files(DataRoot::open(spec, cfg)?))
    }
}

/// What `extract` published.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Rows published per table.
    pub tables: BTreeMap<String, u64>,
    /// Athena query execution id of each table (Athena source only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub athena_queries: BTreeMap<String, String>,
}

/// One table as found in the source: its files (relative names) and their format.
#[derive(Debug, Clone)]
struct Found {
    format: &'static str,
    files: Vec<(String, u64)>,
    /// Marker files of the table's folder left out (`_SUCCESS`, `.DS_Store`).
    ignored: Vec<String>,
}

/// Runs the worker on its flags: opens the data root and the source named by `--source`, then
/// [`extract`]s (Athena stops its queries on a shutdown signal).
pub async fn run(args: Args) -> Result<Outcome> {
    let cfg = StoreConfig::from_env();
    let root = DataRoot::open(&args.common.data_root, &cfg)?;
    if args.source == ATHENA_SOURCE {
        // Signals are listened for only here: a files extract keeps the default (die at once).
        let mut shutdown = Shutdown::on_signals()?;
        let source = Source::Athena(AthenaSource::connect(args.athena.settings(), &cfg).await?);
        return extract_with(&root, args.common.run_date, &source, &mut shutdown).await;
    }
    let source = Source::parse(&args.source, &cfg)?;
    extract(&root, args.common.run_date, &source).await
}

/// Loads and validates all seven tables from `source`, then writes their raw partitions for
/// `run_date` below `root`.
pub async fn extract(root: &DataRoot, run_date: RunDate, source: &Source) -> Result<Outcome> {
    extract_with(root, run_date, source, &mut Shutdown::never()).await
}

/// [`extract`], ending early with a transient error when `shutdown` fires (Athena source only:
/// running queries are stopped first).
pub async fn extract_with(
    root: &DataRoot,
    run_date: RunDate,
    source: &Source,
    shutdown: &mut Shutdown,
) -> Result<Outcome> {
    match source {
        Source::Files(src) => {
            let names: Vec<(String, u64)> = src
                .list("")
                .await?
                .iter()
                .map(|m| (src.relative(&m.location), m.size))
                .collect();
            let plans = Table::ALL
                .into_iter()
                .map(|table| {
                    let found = find(table, &names, src)?;
                    if !found.ignored.is_empty() {
                        warn!(table = table.name(), files = ?found.ignored, "marker files left out of the table (recorded in the manifest)");
                    }
                    Ok(TablePlan {
                        table,
                        format: found.format,
                        files: found.files,
                        sort_by_key: false,
                        params: serde_json::json!({
                            "source": src.to_string(),
                            "ignored_source_files": found.ignored,
                        }),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            load_and_publish(root, run_date, src, plans, BTreeMap::new()).await
        }
        Source::Athena(athena) => {
            // A signal during staging stops the queries (see athena::query); one that arrived
            // while staging folders were cleared is buffered and seen at the first poll.
            let staged = athena.stage(root, run_date, shutdown).await?;
            let mut plans = Vec::with_capacity(staged.len());
            let mut queries = BTreeMap::new();
            for (table, unload, finished) in staged {
                let files = staged_files(root, &unload.staging_rel).await?;
                queries.insert(table.name().to_string(), finished.query_id.clone());
                plans.push(TablePlan {
                    table,
                    format: "parquet",
                    files,
                    // UNLOAD writes files in parallel with no global order; sorting by the key
                    // makes the raw partition independent of how Athena split it.
                    sort_by_key: true,
                    params: serde_json::json!({
                        "source": athena.describe(),
                        "athena": {
                            "workgroup": athena.settings.workgroup.as_str(),
                            "database": athena.settings.database.as_str(),
                            "query_execution_id": finished.query_id,
                            "data_scanned_bytes": finished.data_scanned_bytes,
                            "sql": unload.sql_name,
                            "execution_parameters": unload.parameters,
                            "staging": unload.location.as_str(),
                        },
                    }),
                });
            }
            // Loading and publishing end on a signal too: a partition being written then stays
            // unpublished (its manifest comes last), and a rerun redoes everything.
            tokio::select! {
                res = load_and_publish(root, run_date, root, plans, queries) => res,
                signal = shutdown.requested() => Err(athena::query::transient(
                    "extract".into(),
                    format!("{signal} received; stopped before publishing every table"),
                ).into()),
            }
        }
    }
}

/// Files Athena left in a staging folder (data-root-relative, with sizes). UNLOAD names its files
/// without an extension; names starting with `_` or `.` are markers, not data.
async fn staged_files(root: &DataRoot, staging_rel: &str) -> Result<Vec<(String, u64)>> {
    Ok(root
        .list(staging_rel)
        .await?
        .iter()
        .map(|m| (root.relative(&m.location), m.size))
        .filter(|(name, _)| {
            let base = name.rsplit('/').next().unwrap_or(name);
            !base.starts_with('_') && !base.starts_with('.')
        })
        .collect())
}

/// One table to load: where its files are and what its manifest records about the source.
struct TablePlan {
    table: Table,
    format: &'static str,
    /// Paths relative to the root they are read from, with sizes.
    files: Vec<(String, u64)>,
    sort_by_key: bool,
    /// Source description merged into the manifest's parameters.
    params: serde_json::Value,
}

/// One table read, checked and staged, ready to publish.
struct Staged {
    table: Table,
    /// Staged files (root-relative) and what was written to each.
    files: Vec<(String, Written)>,
    counters: BTreeMap<String, u64>,
    params: serde_json::Value,
}

/// Rows per raw Parquet file: 64 row groups. Longer tables are written as several files, each
/// small enough for S3's single-request copy (5 GiB) that moves it out of staging.
pub const FILE_ROWS: u64 = 64 * ROW_GROUP_ROWS as u64;

/// Memory DataFusion may use to sort Athena's output by key before it spills to disk.
const SORT_MEMORY_BYTES: usize = 512 << 20;

/// Where `extract` stages a run date's tables until all seven are good.
fn staging_dir(run_date: RunDate) -> String {
    format!("staging/extract/run_date={run_date}")
}

/// Streams every table from its source through the checks into a staging folder, parents before
/// children ([`validate::LOAD_ORDER`]); then (only if all are good) publishes the raw partitions.
async fn load_and_publish(
    root: &DataRoot,
    run_date: RunDate,
    src: &DataRoot,
    mut plans: Vec<TablePlan>,
    athena_queries: BTreeMap<String, String>,
) -> Result<Outcome> {
    let staging = staging_dir(run_date);
    // What a crashed earlier run left.
    root.delete_prefix(&staging).await?;
    plans.sort_by_key(|p| validate::LOAD_ORDER.iter().position(|t| *t == p.table));
    let bar = progress(plans.len() as u64, "loading");
    let mut parents = KeySets::new();
    let mut staged = Vec::with_capacity(plans.len());
    for plan in plans {
        let timer = StepTimer::start("load-table");
        match stage_table(root, run_date, src, plan, &staging, &parents).await {
            Ok((table, kept)) => {
                timer.finish(
                    table.counters.get("rows_read").copied().unwrap_or(0),
                    table.counters.get("rows_written").copied().unwrap_or(0),
                );
                if let Some(kept) = kept {
                    parents.insert(table.table, kept);
                }
                staged.push(table);
            }
            Err(e) => {
                // Best effort: the error that stopped the run is the one reported.
                let _ = root.delete_prefix(&staging).await;
                return Err(e);
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    drop(parents);
    let outcome = publish(root, run_date, staged, athena_queries).await;
    let _ = root.delete_prefix(&staging).await;
    outcome
}

/// Reads one table batch by batch, validates each batch and writes what it keeps into staged
/// Parquet files; returns them with the table's counters and, when other tables reference it,
/// its kept keys.
async fn stage_table(
    root: &DataRoot,
    run_date: RunDate,
    src: &DataRoot,
    plan: TablePlan,
    staging: &str,
    parents: &KeySets,
) -> Result<(Staged, Option<roaring::RoaringTreemap>)> {
    let table = plan.table;
    let (reader, mut batches) = spawn_reader(src, &plan);
    let mut validator = Validator::new(table, run_date.end_exclusive_micros(), parents);
    let mut out = StagedFiles::new(
        root,
        format!("{staging}/{table}"),
        table.schema(),
        FILE_ROWS,
    );
    let mut refused = None;
    while let Some(batch) = batches.recv().await {
        let written = match validator.push(batch) {
            Ok(kept) => out.write(kept).await.map_err(Refusal::Bad),
            Err(refusal) => Err(refusal),
        };
        if let Err(refusal) = written {
            refused = Some(refusal);
            break;
        }
    }
    // Stops the reader if it is still sending.
    drop(batches);
    let read = reader
        .await
        .map_err(|e| CoreError::task(format!("reading {table}"), e))?;
    let checked = match refused {
        Some(Refusal::Bad(e)) => Err(e),
        Some(Refusal::DuplicateKey { key, row }) => match first_row_of(src, &plan, key).await {
            Ok(first) => Err(validate::duplicate_key(table, key, row, first)),
            Err(e) => Err(e),
        },
        None => read.and_then(|files| Ok((files, validator.finish()?))),
    };
    let (files_meta, (counters, kept)) = match checked {
        Ok(v) => v,
        Err(e) => {
            out.abort().await;
            return Err(e.into());
        }
    };
    let files = out.finish().await?;
    let mut params = plan.params;
    params["source_files"] = serde_json::json!({"format": plan.format, "files": files_meta});
    params["run_end"] = serde_json::json!(run_date.end_exclusive().to_rfc3339());
    Ok((
        Staged {
            table,
            files,
            counters,
            params,
        },
        kept,
    ))
}

/// The file entries (`name`, `bytes`, `sha256`) of a table's source, read by a reader task.
type SourceFiles = Vec<serde_json::Value>;

/// Starts reading a table's batches, in source order, on a task of its own: files are parsed
/// on a blocking thread, Athena's staged output is sorted by key by DataFusion (spilling to disk
/// past [`SORT_MEMORY_BYTES`]). The batches arrive on the receiver, a few at a time, so memory
/// holds only those in flight; dropping the receiver stops the reader.
fn spawn_reader(
    src: &DataRoot,
    plan: &TablePlan,
) -> (
    tokio::task::JoinHandle<Result<SourceFiles, CoreError>>,
    tokio::sync::mpsc::Receiver<RecordBatch>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let (table, format, files, src) = (plan.table, plan.format, plan.files.clone(), src.clone());
    let task = if plan.sort_by_key {
        tokio::spawn(read_sorted(table, src, files, tx).instrument(tracing::Span::current()))
    } else {
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || read_files(table, format, &src, &files, handle, &tx))
    };
    (task, rx)
}

/// The error a reader stops with when nobody takes its batches any more (the validator refused
/// one); never reported, the refusal is.
fn stopped(table: Table) -> CoreError {
    CoreError::Bug {
        what: format!("reading {table}"),
        reason: "the validator stopped taking batches".into(),
    }
}

/// Parses a table's files in order (see [`load::stream_csv`], [`load::stream_parquet`]) and
/// sends their batches; returns each file's entry for the manifest.
fn read_files(
    table: Table,
    format: &str,
    src: &DataRoot,
    files: &[(String, u64)],
    handle: tokio::runtime::Handle,
    tx: &tokio::sync::mpsc::Sender<RecordBatch>,
) -> Result<SourceFiles, CoreError> {
    let mut emit = |b: RecordBatch| tx.blocking_send(b).map_err(|_| stopped(table));
    let mut entries = Vec::with_capacity(files.len());
    let mut row_offset = 0u64;
    for (file, size) in files {
        let mut reader = SourceReader::open(src, file, *size, handle.clone())?;
        let fault = reader.fault();
        let rows = match format {
            "csv" if file.to_ascii_lowercase().ends_with(".gz") => {
                let mut text = Watched::new(
                    flate2::read::MultiGzDecoder::new(&mut reader),
                    fault.clone(),
                    |e: &std::io::Error| {
                        load::read_error(table, file, std::io::Error::new(e.kind(), e.to_string()))
                    },
                );
                load::stream_csv(
                    table,
                    file,
                    &mut text,
                    row_offset,
                    load::CHUNK_BYTES,
                    &mut emit,
                )
            }
            "csv" => load::stream_csv(
                table,
                file,
                &mut reader,
                row_offset,
                load::CHUNK_BYTES,
                &mut emit,
            ),
            _ => read_parquet(table, file, src, &mut reader, &mut emit),
        }
        // A store error met while reading is the cause, whatever the parser made of it.
        .map_err(|e| fault.take().unwrap_or(e))?;
        row_offset += rows;
        let (_, sha256) = reader.finish()?;
        entries.push(serde_json::json!({"name": file, "bytes": size, "sha256": sha256}));
    }
    Ok(entries)
}

/// A Parquet source file: read in place on local disk, otherwise copied to a temporary file as it
/// downloads (Parquet is read from its footer, not front to back).
fn read_parquet(
    table: Table,
    file: &str,
    src: &DataRoot,
    reader: &mut SourceReader,
    emit: &mut load::Emit<'_>,
) -> Result<u64, CoreError> {
    let io = |source| CoreError::Io {
        path: file.to_string(),
        source,
    };
    let data = match src.local_file(file) {
        Some(path) => std::fs::File::open(path).map_err(io)?,
        None => {
            let mut tmp = tempfile::tempfile().map_err(io)?;
            std::io::copy(reader, &mut tmp).map_err(io)?;
            tmp
        }
    };
    load::stream_parquet(table, file, data, emit)
}

/// Athena's staged output of a table sorted by key (nulls first, so that validation finds and
/// reports them): UNLOAD writes files in parallel with no global order, and sorting makes the raw
/// partition independent of how Athena split it. Batches are cut to [`load::BATCH_ROWS`] rows
/// whatever the sort's own cuts, so the Parquet written from them depends only on the rows.
async fn read_sorted(
    table: Table,
    root: DataRoot,
    files: Vec<(String, u64)>,
    tx: tokio::sync::mpsc::Sender<RecordBatch>,
) -> Result<SourceFiles, CoreError> {
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use futures::StreamExt;

    let mut entries = Vec::with_capacity(files.len());
    for (file, size) in &files {
        let (_, sha256) = root.sha256(file).await?;
        entries.push(serde_json::json!({"name": file, "bytes": size, "sha256": sha256}));
    }
    let label = match files.first() {
        Some((f, _)) => format!(
            "{} (Athena's output, sorted by {})",
            parent_of(f),
            table.key()
        ),
        None => return Ok(entries),
    };
    let query = |e| CoreError::query(format!("sorting {label}"), e);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(SORT_MEMORY_BYTES, 1.0)
        .build_arc()
        .map_err(query)?;
    let config = SessionConfig::new()
        .with_target_partitions(2)
        .with_batch_size(load::BATCH_ROWS);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    let names: Vec<String> = files.iter().map(|(f, _)| f.clone()).collect();
    let format = ParquetFormat::default().with_force_view_types(false);
    repurchase_core::parquet_io::register_files(&ctx, &root, "staged", &names, format, "").await?;
    let df = ctx
        .sql(&format!(
            "SELECT * FROM staged ORDER BY \"{}\" ASC NULLS FIRST",
            table.key()
        ))
        .await
        .map_err(query)?;
    load::check_schema(table, &label, df.schema().as_arrow())?;
    let mut stream = df.execute_stream().await.map_err(query)?;
    let mut pending = load::Rechunk::new(load::BATCH_ROWS);
    let mut row0 = 0u64;
    let send = async |batch: RecordBatch, row0: &mut u64| -> Result<(), CoreError> {
        let conformed = load::conform(table, &label, &batch, *row0)?;
        *row0 += batch.num_rows() as u64;
        tx.send(conformed).await.map_err(|_| stopped(table))
    };
    while let Some(batch) = stream.next().await {
        for b in pending.push(batch.map_err(query)?)? {
            send(b, &mut row0).await?;
        }
    }
    if let Some(b) = pending.finish()? {
        send(b, &mut row0).await?;
    }
    Ok(entries)
}

/// The folder of a root-relative path.
fn parent_of(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The data row (counted as validation counts them) where `key` first appears in the table's
/// source: a second pass, made only to name it in the error about its duplicate.
async fn first_row_of(src: &DataRoot, plan: &TablePlan, key: i64) -> Result<u64, CoreError> {
    let (reader, mut batches) = spawn_reader(src, plan);
    let mut row = 0u64;
    let mut found = None;
    while let Some(b) = batches.recv().await {
        let ids = b
            .column_by_name(plan.table.key())
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::Int64Array>());
        if let Some(i) = ids.and_then(|ids| ids.iter().position(|v| v == Some(key))) {
            found = Some(row + i as u64 + 1);
            break;
        }
        row += b.num_rows() as u64;
    }
    drop(batches);
    let _ = reader.await;
    found.ok_or_else(|| CoreError::Bug {
        what: format!("reading {}", plan.table),
        reason: format!("duplicate key {key} not found on a second read"),
    })
}

/// A table's staged Parquet files, `part-00000.parquet` and on, `file_rows` rows each
/// ([`FILE_ROWS`]).
struct StagedFiles {
    root: DataRoot,
    dir: String,
    schema: arrow::datatypes::SchemaRef,
    file_rows: u64,
    current: Option<(String, ParquetSink)>,
    done: Vec<(String, Written)>,
}

impl StagedFiles {
    fn new(
        root: &DataRoot,
        dir: String,
        schema: arrow::datatypes::SchemaRef,
        file_rows: u64,
    ) -> Self {
        StagedFiles {
            root: root.clone(),
            dir,
            schema,
            file_rows,
            current: None,
            done: Vec::new(),
        }
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<(), CoreError> {
        let file_rows = self.file_rows;
        let mut offset = 0;
        while offset < batch.num_rows() {
            let (_, sink) = self.open()?;
            let room = (file_rows - sink.rows()) as usize;
            let take = room.min(batch.num_rows() - offset);
            sink.write(vec![batch.slice(offset, take)]).await?;
            offset += take;
            if sink.rows() == file_rows {
                self.close().await?;
            }
        }
        Ok(())
    }

    fn open(&mut self) -> Result<&mut (String, ParquetSink), CoreError> {
        if self.current.is_none() {
            let rel = format!("{}/part-{:05}.parquet", self.dir, self.done.len());
            let sink = ParquetSink::new(&self.root, &rel, &self.schema)?;
            self.current = Some((rel, sink));
        }
        Ok(self.current.as_mut().expect("just opened"))
    }

    async fn close(&mut self) -> Result<(), CoreError> {
        if let Some((rel, sink)) = self.current.take() {
            self.done.push((rel, sink.finish().await?));
        }
        Ok(())
    }

    /// Completes the last file (an empty table still gets one, with the schema and no rows).
    async fn finish(mut self) -> Result<Vec<(String, Written)>, CoreError> {
        if self.done.is_empty() {
            self.open()?;
        }
        self.close().await?;
        Ok(self.done)
    }

    async fn abort(self) {
        if let Some((_, sink)) = self.current {
            sink.abort().await;
        }
    }
}

/// Publishes the staged tables: all seven or none of this run's. Every table is unpublished
/// first, the staged files are moved into the partitions next, and the manifests (which publish)
/// come last, all together; a failure before the manifests leaves the date unpublished, one among
/// them unpublishes those already written. Readers thus never see tables of two runs side by side.
async fn publish(
    root: &DataRoot,
    run_date: RunDate,
    staged: Vec<Staged>,
    athena_queries: BTreeMap<String, String>,
) -> Result<Outcome> {
    let timer = StepTimer::start("write-raw");
    let mut writers = Vec::with_capacity(staged.len());
    for t in &staged {
        writers.push(PartitionWriter::begin(root, Dataset::Raw(t.table), run_date).await?);
    }
    for (t, w) in staged.iter().zip(writers.iter_mut()) {
        for (rel, written) in &t.files {
            let name = rel.rsplit('/').next().unwrap_or(rel);
            w.adopt(name, rel, written.clone()).await?;
        }
    }
    let mut outcome = Outcome {
        tables: BTreeMap::new(),
        athena_queries,
    };
    let mut total = 0;
    let mut published: Vec<Table> = Vec::new();
    for (t, w) in staged.into_iter().zip(writers) {
        let schema = t.table.schema();
        let rows: u64 = t.files.iter().map(|(_, w)| w.rows).sum();
        if let Err(e) = w
            .commit(Provenance {
                stage: STAGE,
                parameters: t.params,
                schema: Some(&schema),
                inputs: Vec::new(),
                counters: t.counters.clone(),
            })
            .await
        {
            for p in &published {
                // Best effort: the error that stopped the run is the one reported.
                let _ = root.delete(&Dataset::Raw(*p).manifest_path(run_date)).await;
            }
            return Err(e.into());
        }
        published.push(t.table);
        info!(
            table = t.table.name(),
            rows,
            dropped = t
                .counters
                .get("rows_dropped_created_after_run_date")
                .copied()
                .unwrap_or(0),
            "raw table written"
        );
        outcome.tables.insert(t.table.name().to_string(), rows);
        total += rows;
    }
    timer.finish(total, total);
    Ok(outcome)
}

/// Finds a table's files: `<table>.csv`, `<table>.csv.gz`, `<table>.parquet`, or the files inside
/// `<table>/`. Every file of the folder is read or refused by name, never skipped: CSV (`.csv`,
/// gzip-compressed `.csv.gz` as BigQuery writes them) and Parquet (`.parquet`), extensions in any
/// case. Only markers whose name starts with `_` or `.` (`_SUCCESS`, `.DS_Store`) are left out,
/// and listed in the manifest. A nested folder is refused.
fn find(table: Table, names: &[(String, u64)], src: &DataRoot) -> Result<Found, CoreError> {
    let t = table.name();
    let mut csv = Vec::new();
    let mut parquet = Vec::new();
    let mut ignored = Vec::new();
    let bad = |message: String| CoreError::BadTable {
        table: t.into(),
        message,
    };
    for (name, size) in names {
        let lower = name.to_ascii_lowercase();
        let in_folder = name.strip_prefix(t).and_then(|r| r.strip_prefix('/'));
        let direct = [".csv", ".csv.gz", ".parquet"]
            .iter()
            .any(|ext| lower == format!("{t}{ext}"));
        match in_folder {
            Some(rest) if rest.contains('/') => {
                return Err(bad(format!(
                    "{name} under {src}: files in folders inside {t}/ are not read; move them \
                     up into {t}/"
                )));
            }
            Some(rest) if rest.starts_with('_') || rest.starts_with('.') => {
                ignored.push(name.clone());
                continue;
            }
            Some(_) => {}
            None if direct => {}
            None => continue,
        }
        if lower.ends_with(".csv") || lower.ends_with(".csv.gz") {
            csv.push((name.clone(), *size));
        } else if lower.ends_with(".parquet") {
            parquet.push((name.clone(), *size));
        } else {
            return Err(bad(format!(
                "{name} under {src} is neither CSV (.csv, .csv.gz) nor Parquet (.parquet): \
                 remove it from {t}/ or convert it"
            )));
        }
    }
    match (csv.is_empty(), parquet.is_empty()) {
        (false, true) => Ok(Found {
            format: "csv",
            files: csv,
            ignored,
        }),
        (true, false) => Ok(Found {
            format: "parquet",
            files: parquet,
            ignored,
        }),
        (false, false) => Err(bad(format!(
            "both CSV and Parquet files found under {src}; keep one format"
        ))),
        (true, true) => Err(bad(format!(
            "not found: expected {t}.csv, {t}.csv.gz, {t}.parquet or files in {t}/ under {src}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<(String, u64)> {
        list.iter().map(|n| (n.to_string(), 10)).collect()
    }

    #[tokio::test]
    async fn long_tables_are_staged_as_several_files_of_whole_row_counts() {
        let root = DataRoot::open("memory://staged-files-test/x", &StoreConfig::default()).unwrap();
        let csv = "id,name,latitude,longitude\n".to_string()
            + &(1..=10)
                .map(|i| format!("{i},dc{i},1,2\n"))
                .collect::<String>();
        let batches = load::load_csv(
            Table::DistributionCenters,
            "dc.csv",
            bytes::Bytes::from(csv),
            0,
        )
        .unwrap();
        let all = &batches[0];
        let schema = Table::DistributionCenters.schema();
        let mut staged = StagedFiles::new(&root, "s".into(), schema.clone(), 4);
        for (at, n) in [(0, 3), (3, 6), (9, 1)] {
            staged.write(all.slice(at, n)).await.unwrap();
        }
        let files = staged.finish().await.unwrap();
        let names: Vec<(&str, u64)> = files.iter().map(|(n, w)| (n.as_str(), w.rows)).collect();
        assert_eq!(
            names,
            [
                ("s/part-00000.parquet", 4),
                ("s/part-00001.parquet", 4),
                ("s/part-00002.parquet", 2)
            ]
        );
        for (rel, written) in &files {
            let bytes = root.get(rel).await.unwrap();
            assert_eq!(bytes.len() as u64, written.bytes);
            assert_eq!(
                repurchase_core::manifest::sha256_hex(&bytes),
                written.sha256
            );
        }
        // An empty table still has a file: the schema, no rows.
        let empty = StagedFiles::new(&root, "e".into(), schema, 4);
        let files = empty.finish().await.unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].1.rows, 0);
    }

    #[test]
    fn every_file_of_a_table_folder_is_read_or_refused() {
        let src = DataRoot::open("memory://find-test/src", &StoreConfig::default()).unwrap();
        let found = find(
            Table::Orders,
            &names(&[
                "orders/a.csv",
                "orders/b.CSV.GZ",
                "orders/_SUCCESS",
                "orders/.DS_Store",
                "order_items.csv",
                "users.csv",
            ]),
            &src,
        )
        .unwrap();
        assert_eq!(found.format, "csv");
        let files: Vec<&str> = found.files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(files, ["orders/a.csv", "orders/b.CSV.GZ"]);
        assert_eq!(found.ignored, ["orders/_SUCCESS", "orders/.DS_Store"]);
        // `order_items.csv` is another table, not part of `orders`.
        let direct = find(Table::Orders, &names(&["orders.csv.gz"]), &src).unwrap();
        assert_eq!(direct.files.len(), 1);
        for (bad, phrase) in [
            ("orders/readme.md", "neither CSV"),
            ("orders/x/a.csv", "folders inside orders/"),
        ] {
            let e = find(Table::Orders, &names(&["orders/a.csv", bad]), &src)
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains(bad) && e.contains(phrase), "{e}");
        }
    }
}
