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
pub mod timestamp;
pub mod validate;

use std::collections::BTreeMap;

use arrow::record_batch::RecordBatch;
use clap::Args as ClapArgs;
use repurchase_core::cli::CommonArgs;
use repurchase_core::layout::Dataset;
use repurchase_core::logging::{StepTimer, progress};
use repurchase_core::manifest::sha256_hex;
use repurchase_core::publish::{PartitionWriter, Provenance};
use repurchase_core::schema::Table;
use repurchase_core::{CoreError, DataRoot, RunDate, StoreConfig};
use serde::Serialize;

pub use crate::error::{ExtractError, Result};
use tracing::{Instrument, info, warn};

use crate::athena::{AthenaSettings, AthenaSource, Identifier, Shutdown};

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

/// Loads and validates every table, then (only if all are good) publishes the raw partitions.
async fn load_and_publish(
    root: &DataRoot,
    run_date: RunDate,
    src: &DataRoot,
    plans: Vec<TablePlan>,
    athena_queries: BTreeMap<String, String>,
) -> Result<Outcome> {
    let run_end = run_date.end_exclusive_micros();

    // Load and check every table first: nothing is written unless all seven are good.
    let bar = progress(plans.len() as u64, "loading");
    // (table, validated batches, counters, manifest parameters)
    type Loaded = (
        Table,
        Vec<RecordBatch>,
        BTreeMap<String, u64>,
        serde_json::Value,
    );
    let mut loaded: Vec<Loaded> = Vec::new();
    for plan in plans {
        let table = plan.table;
        let timer = StepTimer::start("load-table");
        let mut batches = Vec::new();
        let mut files_meta = Vec::new();
        let mut row_offset = 0u64;
        for (file, size) in &plan.files {
            let data = src.get(file).await?;
            files_meta.push(
                serde_json::json!({"name": file, "bytes": size, "sha256": sha256_hex(&data)}),
            );
            let data_clone = data.clone();
            let file_name = file.clone();
            let format = plan.format;
            let offset = row_offset;
            // Parsing is CPU-bound: keep it off the async workers.
            let parsed = tokio::task::spawn_blocking(move || match format {
                "csv" if file_name.to_ascii_lowercase().ends_with(".gz") => {
                    let text = load::gunzip(table, &file_name, &data_clone)?;
                    load::load_csv(table, &file_name, text, offset)
                }
                "csv" => load::load_csv(table, &file_name, data_clone, offset),
                _ => load::load_parquet(table, &file_name, data_clone),
            })
            .await
            .map_err(|e| CoreError::task(format!("parsing {table}"), e))??;
            row_offset += parsed.iter().map(|b| b.num_rows() as u64).sum::<u64>();
            batches.extend(parsed);
        }
        if plan.sort_by_key {
            batches = tokio::task::spawn_blocking(move || load::sort_by_key(table, batches))
                .await
                .map_err(|e| CoreError::task(format!("sorting {table}"), e))??;
        }
        let (batches, counters) = validate::validate(table, batches, run_end)?;
        let rows_out = counters.get("rows_written").copied().unwrap_or(0);
        timer.finish(counters.get("rows_read").copied().unwrap_or(0), rows_out);
        let mut params = plan.params;
        params["source_files"] = serde_json::json!({"format": plan.format, "files": files_meta});
        loaded.push((table, batches, counters, params));
        bar.inc(1);
    }
    bar.finish_and_clear();

    // Orphan foreign keys are kept and counted in the child table's manifest.
    let views: Vec<(Table, &[RecordBatch])> = loaded
        .iter()
        .map(|(t, b, _, _)| (*t, b.as_slice()))
        .collect();
    let orphans = validate::count_orphans(&views)?;
    for (table, name, n) in orphans {
        if let Some((_, _, counters, _)) = loaded.iter_mut().find(|(t, ..)| *t == table) {
            counters.insert(name, n);
        }
    }

    let timer = StepTimer::start("write-raw");
    let mut outcome = Outcome {
        tables: BTreeMap::new(),
        athena_queries,
    };
    let mut total = 0;
    // All seven or none of this run's: every table is unpublished first, the data files are
    // written next, and the manifests (which publish) come last, all together; a failure before
    // the manifests leaves the date unpublished, one among them unpublishes those already
    // written. Readers thus never see tables of two runs side by side.
    let mut writers = Vec::with_capacity(loaded.len());
    for (table, ..) in &loaded {
        writers.push(PartitionWriter::begin(root, Dataset::Raw(*table), run_date).await?);
    }
    // Parquet encoding is CPU-bound and the tables are independent: encode them on every core.
    let writes: Vec<_> = loaded
        .into_iter()
        .zip(writers)
        .map(|((table, batches, counters, mut params), mut w)| {
            tokio::spawn(
                async move {
                    let schema = table.schema();
                    let rows = w
                        .write_parquet("part-00000.parquet", schema.clone(), &batches)
                        .await?;
                    params["run_end"] = serde_json::json!(run_date.end_exclusive().to_rfc3339());
                    Ok::<_, CoreError>((table, rows, w, params, counters, schema))
                }
                .instrument(tracing::Span::current()),
            )
        })
        .collect();
    let mut written = Vec::with_capacity(writes.len());
    for write in writes {
        written.push(
            write
                .await
                .map_err(|e| CoreError::task("raw table writer", e))??,
        );
    }
    let mut published: Vec<Table> = Vec::new();
    for (table, rows, w, params, counters, schema) in written {
        if let Err(e) = w
            .commit(Provenance {
                stage: STAGE,
                parameters: params,
                schema: Some(&schema),
                inputs: Vec::new(),
                counters: counters.clone(),
            })
            .await
        {
            for t in &published {
                // Best effort: the error that stopped the run is the one reported.
                let _ = root.delete(&Dataset::Raw(*t).manifest_path(run_date)).await;
            }
            return Err(e.into());
        }
        published.push(table);
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
