//! `build-features --engine athena`: the feature query run by Athena, for lakes that outgrow one
//! task.
//!
//! `sql/features/anchors_athena.sql` is the Athena engine 3 (Trino) version of
//! `sql/features/anchors.sql`, generated from it by `scripts/gen-sql`: same anchors, labels, columns, names and point-in-time rules, over
//! the Glue tables `raw_<table>` of `sql/ddl` restricted to the run date's partition. [`compute`]
//!
//! 1. checks that the six raw partitions it reads are published (their manifests, as the
//!    DataFusion engine does; Athena itself reads whatever files a partition folder holds);
//! 2. clears `staging/athena/features/run_date=D/` under the (`s3://`) data root and runs
//!    `UNLOAD (<anchors_athena.sql>) TO '<that folder>' WITH (format = 'PARQUET', compression =
//!    'SNAPPY')`, with the run date, run end, horizon and anchor mode as typed execution
//!    parameters (see [`repurchase_athena::Param`]); polling, the timeout, stopping on SIGTERM and
//!    the classes of failures are those of `extract --source athena`;
//! 3. reads the Parquet files Athena wrote back through the data root's object store, casts every
//!    column to the schema the DataFusion query returns (from running it over one-row tables)
//!    and sorts the rows by `(anchor_time, order_id)`, the DataFusion query's `ORDER BY` (UNLOAD
//!    writes its files in parallel, in no order), in batches of the DataFusion session's size.
//!
//! The result is what [`crate::compute`] returns for the same raw partitions, so splitting, the
//! quality gates and publishing run unchanged on it. Known difference: Athena reads Parquet
//! timestamps with millisecond precision, so raw timestamps with sub-millisecond digits (which
//! `extract --source athena` never produces, but a files extract can) may compare, and give
//! `days_*` features, that differ from the DataFusion engine's by less than a millisecond.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    new_null_array,
};
use arrow::compute::{SortColumn, SortOptions, concat_batches, lexsort_to_indices, take};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::datasource::MemTable;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use repurchase_athena::{AthenaSource, Param, Unload};
use repurchase_core::layout::Dataset;
use repurchase_core::manifest::{InputRef, Manifest};
use repurchase_core::sql::SqlFile;
use repurchase_core::{CoreError, DataRoot, RunDate, StoreConfig, sql_file};

use crate::error::{FeaturesError, Result};
use tracing::info;

pub use repurchase_athena::{AthenaSettings, Shutdown};

use crate::{AnchorMode, INPUT_TABLES};

/// The feature query in Athena SQL.
pub const SQL: SqlFile = sql_file!("features/anchors_athena.sql");

/// Rows per output batch: the DataFusion session's batch size (see [`crate::session`]).
const BATCH_ROWS: usize = 8192;

/// Folder (relative to the data root) where Athena stages the feature query's output. Ours alone:
/// it is cleared before each query, because UNLOAD refuses a non-empty location.
pub fn staging_dir(run_date: RunDate) -> String {
    format!("staging/athena/features/run_date={run_date}")
}

/// The UNLOAD of the feature query for `run_date`, with its typed parameters, in the order of the
/// `?` in `anchors_athena.sql`: the run date once per raw table, the run end, the horizon in
/// days, first-order anchors or not.
pub fn unload(
    root: &DataRoot,
    run_date: RunDate,
    anchor: AnchorMode,
    horizon_days: u32,
) -> Result<Unload> {
    let mut params = vec![Param::Date(run_date.date()); INPUT_TABLES.len()];
    params.push(Param::Timestamp(run_date.end_exclusive().naive_utc()));
    params.push(Param::Bigint(i64::from(horizon_days)));
    params.push(Param::Boolean(anchor == AnchorMode::FirstOrder));
    Ok(Unload::of_sql(
        root,
        "features".into(),
        SQL,
        &params,
        staging_dir(run_date),
    )?)
}

/// The raw partitions the query reads, as manifest references; fails as the DataFusion engine
/// does when one is not published.
pub async fn raw_inputs(root: &DataRoot, run_date: RunDate) -> Result<Vec<InputRef>> {
    let mut inputs = Vec::with_capacity(INPUT_TABLES.len());
    for table in INPUT_TABLES {
        let (_, input) = Manifest::read(root, Dataset::Raw(table), run_date).await?;
        inputs.push(input);
    }
    Ok(inputs)
}

/// The schema [`crate::compute`] returns: that of its output over one-row raw tables (every
/// column set, the order `Complete`, so that exactly one anchor comes out; over empty tables
/// DataFusion returns no batch at all).
pub async fn output_schema(
    run_date: RunDate,
    anchor: AnchorMode,
    horizon_days: u32,
) -> Result<SchemaRef> {
    let ctx = crate::session();
    for table in INPUT_TABLES {
        let schema = table.schema();
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| one_value(f.data_type()))
            .collect();
        let err = |e: &dyn std::fmt::Display| FeaturesError::Bug(format!("one-row {table}: {e}"));
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| err(&e))?;
        let mem = MemTable::try_new(schema, vec![vec![batch]]).map_err(|e| err(&e))?;
        ctx.register_table(table.name(), Arc::new(mem))
            .map_err(|e| err(&e))?;
    }
    let batches = crate::compute(&ctx, run_date, anchor, horizon_days).await?;
    batches.first().map(|b| b.schema()).ok_or_else(|| {
        FeaturesError::Bug("the feature query returned no batch over one-row tables".into())
    })
}

/// One non-NULL value of a raw column's type (ids 1, status `Complete`, a fixed instant).
fn one_value(data_type: &DataType) -> ArrayRef {
    match data_type {
        DataType::Int64 => Arc::new(Int64Array::from(vec![1])),
        DataType::Float64 => Arc::new(Float64Array::from(vec![1.0])),
        DataType::Utf8 => Arc::new(StringArray::from(vec!["Complete"])),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => Arc::new(
            TimestampMicrosecondArray::from(vec![1_700_000_000_000_000])
                .with_timezone_opt(tz.clone()),
        ),
        other => new_null_array(other, 1),
    }
}

/// Runs the feature query in Athena for `run_date` and returns its rows as [`crate::compute`]
/// would: same schema, same order. `root` must be an `s3://` data root (Athena writes there);
/// `settings` and `cfg` configure the Athena client (database = the one holding the `raw_*`
/// tables). A signal from `shutdown` stops the query (transient error).
pub async fn compute(
    root: &DataRoot,
    run_date: RunDate,
    anchor: AnchorMode,
    horizon_days: u32,
    settings: &AthenaSettings,
    cfg: &StoreConfig,
    shutdown: &mut Shutdown,
) -> Result<Vec<RecordBatch>> {
    let location = root.url("");
    if !location.starts_with("s3://") {
        return Err(FeaturesError::Settings(format!(
            "build-features --engine athena needs an s3:// data root (Athena writes the feature \
             query's output there), not {location}"
        )));
    }
    let unload = unload(root, run_date, anchor, horizon_days)?;
    let schema = output_schema(run_date, anchor, horizon_days).await?;
    raw_inputs(root, run_date).await?;
    let source = AthenaSource::connect(settings.clone(), cfg).await?;
    let finished = source
        .unload(root, std::slice::from_ref(&unload), shutdown)
        .await?;
    let query_id = finished
        .first()
        .map(|f| f.query_id.clone())
        .unwrap_or_default();
    let batches = read_staged(root, &unload.staging_rel).await?;
    let rows = cast_and_sort(&schema, &batches)?;
    info!(
        query_id,
        rows = rows.iter().map(|b| b.num_rows()).sum::<usize>(),
        files = batches.len(),
        location = %unload.location,
        "Athena feature query read back"
    );
    Ok(rows)
}

/// The record batches of every data file Athena left in `staging_rel` (UNLOAD names its files
/// without an extension; names starting with `_` or `.` are markers, not data).
async fn read_staged(root: &DataRoot, staging_rel: &str) -> Result<Vec<RecordBatch>> {
    let mut files: Vec<String> = root
        .list(staging_rel)
        .await?
        .iter()
        .map(|m| root.relative(&m.location))
        .filter(|name| {
            let base = name.rsplit('/').next().unwrap_or(name);
            !base.starts_with('_') && !base.starts_with('.')
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for rel in files {
        let bytes = root.get(&rel).await?;
        let bad = |e: &dyn std::fmt::Display| CoreError::BadTable {
            table: format!("Athena output {}", root.url(&rel)),
            message: e.to_string(),
        };
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .map_err(|e| bad(&e))?
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| bad(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| bad(&e))?;
            if batch.num_rows() > 0 {
                out.push(batch);
            }
        }
    }
    Ok(out)
}

/// Casts the columns read back to `schema` (by name; a missing or extra column is an error),
/// sorts the rows by `(anchor_time, order_id)` ascending, NULLs last (DataFusion's `ORDER BY`
/// default) and cuts them into batches of [`BATCH_ROWS`].
pub fn cast_and_sort(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    let invalid = |what: String| FeaturesError::QueryOutput(format!("Athena: {what}"));
    let mut cast = Vec::with_capacity(batches.len());
    for b in batches {
        if b.num_columns() != schema.fields().len() {
            let got: Vec<&str> = b
                .schema_ref()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            return Err(invalid(format!(
                "{} columns ({}), expected {}",
                got.len(),
                got.join(", "),
                schema.fields().len()
            )));
        }
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                let c = b
                    .column_by_name(f.name())
                    .ok_or_else(|| invalid(format!("no column {}", f.name())))?;
                arrow::compute::cast(c, f.data_type()).map_err(|e| {
                    FeaturesError::from(CoreError::arrow(
                        format!("cast {} to {}", f.name(), f.data_type()),
                        e,
                    ))
                })
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        cast.push(
            RecordBatch::try_new(schema.clone(), columns)
                .map_err(|e| CoreError::arrow("Athena feature output", e))?,
        );
    }
    let all = concat_batches(schema, &cast).map_err(|e| CoreError::arrow("concat", e))?;
    let key = |name: &str| -> Result<SortColumn> {
        Ok(SortColumn {
            values: all
                .column_by_name(name)
                .ok_or_else(|| invalid(format!("no column {name}")))?
                .clone(),
            options: Some(SortOptions {
                descending: false,
                nulls_first: false,
            }),
        })
    };
    let order = lexsort_to_indices(&[key("anchor_time")?, key("order_id")?], None)
        .map_err(|e| CoreError::arrow("sort", e))?;
    let columns = all
        .columns()
        .iter()
        .map(|c| take(c, &order, None))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| CoreError::arrow("take", e))?;
    let sorted =
        RecordBatch::try_new(schema.clone(), columns).map_err(|e| CoreError::arrow("sort", e))?;
    if sorted.num_rows() == 0 {
        return Ok(vec![sorted]);
    }
    Ok((0..sorted.num_rows())
        .step_by(BATCH_ROWS)
        .map(|at| sorted.slice(at, BATCH_ROWS.min(sorted.num_rows() - at)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unload_binds_typed_parameters_in_order() {
        let root = DataRoot::open("s3://lake-bucket/prod", &StoreConfig::default()).unwrap();
        let d: RunDate = "2025-06-30".parse().unwrap();
        let u = unload(&root, d, AnchorMode::EveryOrder, 60).unwrap();
        let mut want = vec!["DATE '2025-06-30'".to_string(); 6];
        want.extend([
            "TIMESTAMP '2025-07-01 00:00:00'".to_string(),
            "60".to_string(),
            "false".to_string(),
        ]);
        assert_eq!(u.parameters, want);
        assert_eq!(
            u.location.as_str(),
            "s3://lake-bucket/prod/staging/athena/features/run_date=2025-06-30/"
        );
        assert!(u.query.starts_with("UNLOAD (\nWITH\n"), "{}", u.query);
        for t in INPUT_TABLES {
            assert!(u.query.contains(&format!("FROM raw_{}\n", t.name())), "{t}");
        }
        let local = DataRoot::open("memory://x/y", &StoreConfig::default()).unwrap();
        assert!(unload(&local, d, AnchorMode::FirstOrder, 60).is_err());
    }

    #[tokio::test]
    async fn output_schema_is_the_datafusion_querys() {
        let d: RunDate = "2025-06-30".parse().unwrap();
        let schema = output_schema(d, AnchorMode::FirstOrder, 60).await.unwrap();
        assert_eq!(schema.field(0).name(), "user_id");
        assert!(schema.index_of("window_closed").is_ok());
        // Every column the Athena SQL selects, in the same order: the items of its final SELECT
        // (split at the commas outside parentheses and strings, whatever their line layout, as
        // scripts/gen-sql prints them), each named by its alias or its column.
        let body: String = SQL
            .text
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        let final_select = body.rsplit_once("\nSELECT\n").unwrap().1;
        let list = final_select.split("\nFROM ").next().unwrap();
        let mut items = vec![String::new()];
        let (mut depth, mut quoted) = (0, false);
        for c in list.chars() {
            match c {
                '\'' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => depth -= 1,
                ',' if !quoted && depth == 0 => {
                    items.push(String::new());
                    continue;
                }
                _ => {}
            }
            items.last_mut().unwrap().push(c);
        }
        let names: Vec<String> = items
            .iter()
            .map(|item| {
                let item = item.split_whitespace().collect::<Vec<_>>().join(" ");
                item.rsplit_once(" AS ")
                    .map(|(_, n)| n.to_string())
                    .unwrap_or_else(|| item.rsplit('.').next().unwrap().to_string())
            })
            .collect();
        let want: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, want);
    }
}
