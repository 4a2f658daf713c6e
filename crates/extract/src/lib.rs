//! The `extract` worker.
//!
//! Reads the seven TheLook tables from a source, validates their columns and types, keeps what
//! existed at the end of the run date (see [`validate`]) and writes typed Parquet partitions
//! `raw/<table>/run_date=D/`. All tables are loaded and checked before anything is written, so bad
//! input leaves the data root untouched.
//!
//! The source is one seam ([`Source`]): today a folder (local or object store) holding a BigQuery
//! CSV export or Parquet files; Athena plugs in beside it.

pub mod load;
pub mod timestamp;
pub mod validate;

use std::collections::BTreeMap;

use arrow::record_batch::RecordBatch;
use clap::Args as ClapArgs;
use repurchase_core::cli::CommonArgs;
use repurchase_core::layout::Dataset;
use repurchase_core::logging::{StepTimer, progress};
use repurchase_core::manifest::sha256_hex;
use repurchase_core::publish::PartitionWriter;
use repurchase_core::schema::Table;
use repurchase_core::{CoreError, DataRoot, Result, RunDate, StoreConfig};
use serde::Serialize;
use tracing::info;

pub const STAGE: &str = "extract";

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Where TheLook's tables come from: a folder (plain path, file://, s3://) holding
    /// `<table>.csv` / `<table>.parquet` files or `<table>/` folders of such files.
    #[arg(long, env = "REPURCHASE_SOURCE")]
    pub source: String,
}

/// Where the tables are read from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A folder of exported files, on any store a [`DataRoot`] can address.
    Files(DataRoot),
}

impl Source {
    pub fn parse(spec: &str, cfg: &StoreConfig) -> Result<Source> {
        Ok(Source::Files(DataRoot::open(spec, cfg)?))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub tables: BTreeMap<String, u64>,
}

/// One table as found in the source: its files (relative names) and their format.
#[derive(Debug, Clone)]
struct Found {
    format: &'static str,
    files: Vec<(String, u64)>,
}

pub async fn run(args: Args) -> Result<Outcome> {
    let cfg = StoreConfig::from_env();
    let root = DataRoot::open(&args.common.data_root, &cfg)?;
    let source = Source::parse(&args.source, &cfg)?;
    extract(&root, args.common.run_date, &source).await
}

pub async fn extract(root: &DataRoot, run_date: RunDate, source: &Source) -> Result<Outcome> {
    let Source::Files(src) = source;
    let run_end = run_date.end_exclusive_micros();
    let listing = src.list("").await?;
    let names: Vec<(String, u64)> = listing
        .iter()
        .map(|m| (src.relative(&m.location), m.size))
        .collect();

    // Load and check every table first: nothing is written unless all seven are good.
    let bar = progress(Table::ALL.len() as u64, "loading");
    let mut loaded: Vec<(
        Table,
        Vec<RecordBatch>,
        BTreeMap<String, u64>,
        serde_json::Value,
    )> = Vec::new();
    for table in Table::ALL {
        let timer = StepTimer::start("load-table");
        let found = find(table, &names, src)?;
        let mut batches = Vec::new();
        let mut files_meta = Vec::new();
        let mut row_offset = 0u64;
        for (file, size) in &found.files {
            let data = src.get(file).await?;
            files_meta.push(
                serde_json::json!({"name": file, "bytes": size, "sha256": sha256_hex(&data)}),
            );
            let data_clone = data.clone();
            let file_name = file.clone();
            let format = found.format;
            let offset = row_offset;
            // Parsing is CPU-bound: keep it off the async workers.
            let parsed = tokio::task::spawn_blocking(move || match format {
                "csv" => load::load_csv(table, &file_name, data_clone, offset),
                _ => load::load_parquet(table, &file_name, data_clone),
            })
            .await
            .map_err(|e| CoreError::Invalid(format!("parser task for {table} failed: {e}")))??;
            row_offset += parsed.iter().map(|b| b.num_rows() as u64).sum::<u64>();
            batches.extend(parsed);
        }
        let (batches, counters) = validate::validate(table, batches, run_end)?;
        let rows_out = counters.get("rows_written").copied().unwrap_or(0);
        timer.finish(counters.get("rows_read").copied().unwrap_or(0), rows_out);
        let meta = serde_json::json!({"format": found.format, "files": files_meta});
        loaded.push((table, batches, counters, meta));
        bar.inc(1);
    }
    bar.finish_and_clear();

    let timer = StepTimer::start("write-raw");
    let mut outcome = Outcome {
        tables: BTreeMap::new(),
    };
    let mut total = 0;
    for (table, batches, counters, meta) in loaded {
        let schema = table.schema();
        let mut w = PartitionWriter::begin(root, Dataset::Raw(table), run_date).await?;
        let rows = w
            .write_parquet("part-00000.parquet", schema.clone(), &batches)
            .await?;
        let params = serde_json::json!({
            "source": src.to_string(),
            "source_files": meta,
            "run_end": run_date.end_exclusive().to_rfc3339(),
        });
        w.commit(STAGE, params, Some(&schema), Vec::new(), counters.clone())
            .await?;
        info!(
            table = table.name(),
            rows,
            dropped = counters
                .get("rows_dropped_created_after_run_date")
                .copied()
                .unwrap_or(0),
            "raw table written"
        );
        outcome.tables.insert(table.name().to_string(), rows);
        total += rows;
    }
    timer.finish(total, total);
    Ok(outcome)
}

/// Finds a table's files: `<table>.csv`, `<table>.parquet`, or files inside `<table>/`.
fn find(table: Table, names: &[(String, u64)], src: &DataRoot) -> Result<Found> {
    let t = table.name();
    let mut csv = Vec::new();
    let mut parquet = Vec::new();
    for (name, size) in names {
        let in_folder = name
            .strip_prefix(t)
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(|r| !r.contains('/'));
        let direct = name == &format!("{t}.csv") || name == &format!("{t}.parquet");
        if !(in_folder || direct) {
            continue;
        }
        if name.ends_with(".csv") {
            csv.push((name.clone(), *size));
        } else if name.ends_with(".parquet") {
            parquet.push((name.clone(), *size));
        }
    }
    match (csv.is_empty(), parquet.is_empty()) {
        (false, true) => Ok(Found {
            format: "csv",
            files: csv,
        }),
        (true, false) => Ok(Found {
            format: "parquet",
            files: parquet,
        }),
        (false, false) => Err(CoreError::BadTable {
            table: t.into(),
            message: format!("both CSV and Parquet files found under {src}; keep one format"),
        }),
        (true, true) => Err(CoreError::BadTable {
            table: t.into(),
            message: format!(
                "not found: expected {t}.csv, {t}.parquet or files in {t}/ under {src}"
            ),
        }),
    }
}
