//! Turning one source file (BigQuery-style CSV or Parquet) into batches with the table's exact schema.
//!
//! Columns are matched by name, never by position. Every value that does not fit its column's type
//! is reported with the table, column and 1-based data row, so a data engineer can find it.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Float64Builder, Int64Builder, RecordBatch, StringArray,
    TimestampMicrosecondBuilder,
};
use arrow::compute::cast;
use arrow::csv::ReaderBuilder;
use arrow::csv::reader::Format;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use repurchase_core::CoreError;
use repurchase_core::schema::Table;

use crate::timestamp::parse_ts_micros;

const BATCH_ROWS: usize = 64 * 1024;

fn bad(table: Table, message: String) -> CoreError {
    CoreError::BadTable {
        table: table.name().to_string(),
        message,
    }
}

/// Checks that the file has exactly the table's columns (any order).
fn check_columns(table: Table, file: &str, names: &[String]) -> Result<(), CoreError> {
    let schema = table.schema();
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if !seen.insert(n.as_str()) {
            return Err(bad(
                table,
                format!("{file}: column {n:?} appears twice in the header"),
            ));
        }
    }
    for f in schema.fields() {
        if !seen.contains(f.name().as_str()) {
            return Err(bad(
                table,
                format!(
                    "{file}: missing column {:?} (found columns: {})",
                    f.name(),
                    names.join(", ")
                ),
            ));
        }
    }
    for n in names {
        if schema.field_with_name(n).is_err() {
            return Err(bad(
                table,
                format!(
                    "{file}: unexpected column {n:?}; TheLook's {table} has: {}",
                    field_names(&schema)
                ),
            ));
        }
    }
    Ok(())
}

fn field_names(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The text of a gzip-compressed CSV file (`.csv.gz`, as BigQuery exports write them; several
/// concatenated members are read as one stream).
pub fn gunzip(table: Table, file: &str, data: &Bytes) -> Result<Bytes, CoreError> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data.as_ref())
        .read_to_end(&mut out)
        .map_err(|e| bad(table, format!("{file}: not a readable gzip file: {e}")))?;
    Ok(Bytes::from(out))
}

/// Parses a BigQuery CSV export: header row, empty field = NULL, BigQuery timestamps.
/// `row_offset` is the number of data rows in earlier files of the same table (for row numbers).
pub fn load_csv(
    table: Table,
    file: &str,
    data: Bytes,
    row_offset: u64,
) -> Result<Vec<RecordBatch>, CoreError> {
    let data = if data.starts_with(&[0xEF, 0xBB, 0xBF]) {
        data.slice(3..)
    } else {
        data
    };
    if data.is_empty() {
        return Err(bad(table, format!("{file}: file is empty (no header row)")));
    }
    if let Err(e) = std::str::from_utf8(&data) {
        return Err(bad(table, not_utf8(file, &data[..e.valid_up_to()])));
    }
    let (header_schema, _) = Format::default()
        .with_header(true)
        .infer_schema(Cursor::new(&data[..]), Some(0))
        .map_err(|e| bad(table, format!("{file}: unreadable header: {e}")))?;
    let names: Vec<String> = header_schema
        .fields()
        .iter()
        .map(|f| f.name().trim().to_string())
        .collect();
    check_columns(table, file, &names)?;
    let text_schema: SchemaRef = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    if let Some(chunks) = record_chunks(&data, CHUNK_BYTES) {
        // Large and free of quotes: parse fixed-size chunks on every core. Any error is
        // reported by the sequential parse below, which numbers rows across the whole file.
        if let Ok(batches) = parse_chunks(table, file, &text_schema, &chunks) {
            return Ok(batches);
        }
    }
    parse_records(table, file, &text_schema, data, true, row_offset)
}

/// Files at least this large are parsed in chunks of about this size, in parallel.
const CHUNK_BYTES: usize = 16 << 20;

/// Splits the records after the header into chunks of about `chunk_bytes`, at line ends, or
/// `None` when the file is small or contains a quote. Without quotes every line end is a record
/// end, so the split cannot cut a record; with them (a quoted comma or newline) the file is
/// parsed in one piece. Chunk boundaries depend only on the bytes, never on the core count, so
/// the batches (and the Parquet written from them) are the same on every machine.
fn record_chunks(data: &Bytes, chunk_bytes: usize) -> Option<Vec<Bytes>> {
    if data.len() < 2 * chunk_bytes || memchr::memchr(b'"', data).is_some() {
        return None;
    }
    let mut start = memchr::memchr(b'\n', data)? + 1;
    let mut chunks = Vec::new();
    while start < data.len() {
        let end = match data.get(start + chunk_bytes..) {
            Some(rest) => {
                memchr::memchr(b'\n', rest).map_or(data.len(), |i| start + chunk_bytes + i + 1)
            }
            None => data.len(),
        };
        chunks.push(data.slice(start..end));
        start = end;
    }
    Some(chunks)
}

/// Parses header-less chunks on rayon's pool (one per core), in chunk order.
fn parse_chunks(
    table: Table,
    file: &str,
    text_schema: &SchemaRef,
    chunks: &[Bytes],
) -> Result<Vec<RecordBatch>, CoreError> {
    let parsed: Vec<Result<Vec<RecordBatch>, CoreError>> = chunks
        .par_iter()
        .map(|chunk| parse_records(table, file, text_schema, chunk.clone(), false, 0))
        .collect();
    let mut out = Vec::new();
    for batches in parsed {
        out.extend(batches?);
    }
    Ok(out)
}

/// Parses CSV records (after the header when `header`) into batches of the table's schema;
/// `row_offset` data rows precede them (for row numbers in errors).
fn parse_records(
    table: Table,
    file: &str,
    text_schema: &SchemaRef,
    data: Bytes,
    header: bool,
    row_offset: u64,
) -> Result<Vec<RecordBatch>, CoreError> {
    let reader = ReaderBuilder::new(text_schema.clone())
        .with_header(header)
        .with_batch_size(BATCH_ROWS)
        .build(Cursor::new(data))
        .map_err(|e| bad(table, format!("{file}: {e}")))?;
    let target = table.schema();
    let mut out = Vec::new();
    let mut row0 = row_offset;
    for batch in reader {
        let batch = batch.map_err(|e| bad(table, malformed(file, row0, &e.to_string())))?;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
        for field in target.fields() {
            let idx = text_schema
                .index_of(field.name())
                .map_err(|e| bad(table, e.to_string()))?;
            let text = batch
                .column(idx)
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| bad(table, "CSV column not read as text".into()))?;
            let col = convert_text(table, file, field, text, row0)?;
            check_required(table, file, field, &col, row0)?;
            columns.push(col);
        }
        row0 += batch.num_rows() as u64;
        out.push(
            RecordBatch::try_new(target.clone(), columns)
                .map_err(|e| bad(table, format!("{file}: {e}")))?,
        );
    }
    Ok(out)
}

/// The CSV reader's error, with the data row spelled out: the reader counts file lines from 1 with
/// the header as line 1 (or gives no line at all).
fn malformed(file: &str, row0: u64, e: &str) -> String {
    let line = e
        .split("line ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u64>().ok());
    match line {
        Some(l) if l > 1 => format!("{file}: row {}: malformed CSV: {e}", l - 1),
        _ => format!("{file}: malformed CSV after data row {row0}: {e}"),
    }
}

/// Names the row and column of the first invalid UTF-8 byte, whose valid `prefix` precedes it.
fn not_utf8(file: &str, prefix: &[u8]) -> String {
    let (mut quoted, mut line, mut field) = (false, 0u64, 0usize);
    let mut header: Vec<Vec<u8>> = vec![Vec::new()];
    for &c in prefix {
        match c {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => {
                line += 1;
                field = 0;
            }
            b',' if !quoted => {
                field += 1;
                if line == 0 {
                    header.push(Vec::new());
                }
            }
            _ if line == 0 => header.last_mut().into_iter().for_each(|h| h.push(c)),
            _ => {}
        }
    }
    let column = header.get(field).filter(|_| line > 0).map(|h| {
        String::from_utf8_lossy(h)
            .trim()
            .trim_matches('"')
            .to_string()
    });
    match column {
        Some(column) => format!(
            "{file}: column {column:?}, row {line}: invalid UTF-8 (byte {}); export as UTF-8",
            prefix.len()
        ),
        None => format!(
            "{file}: header: invalid UTF-8 (byte {}); export as UTF-8",
            prefix.len()
        ),
    }
}

/// A null in a required column is reported with its row here, before the batch is built with the
/// table's non-nullable schema (which would only say "contains null values").
fn check_required(
    table: Table,
    file: &str,
    field: &Field,
    col: &ArrayRef,
    row0: u64,
) -> Result<(), CoreError> {
    if field.is_nullable() || col.null_count() == 0 {
        return Ok(());
    }
    let i = (0..col.len()).find(|i| col.is_null(*i)).unwrap_or(0);
    Err(bad(
        table,
        format!(
            "{file}: column {:?}, row {}: null, but the column is required",
            field.name(),
            row0 + i as u64 + 1
        ),
    ))
}

fn convert_text(
    table: Table,
    file: &str,
    field: &Field,
    text: &StringArray,
    row0: u64,
) -> Result<ArrayRef, CoreError> {
    let err = |i: usize, v: &str, what: &str| {
        let shown: String = v.chars().take(60).collect();
        bad(
            table,
            format!(
                "{file}: column {:?}, row {}: cannot parse {shown:?} as {what}",
                field.name(),
                row0 + i as u64 + 1
            ),
        )
    };
    Ok(match field.data_type() {
        DataType::Utf8 => Arc::new(text.clone()),
        DataType::Int64 => {
            let mut b = Int64Builder::with_capacity(text.len());
            for (i, v) in text.iter().enumerate() {
                match v {
                    None => b.append_null(),
                    Some(s) => b.append_value(
                        s.trim()
                            .parse::<i64>()
                            .map_err(|_| err(i, s, "an integer"))?,
                    ),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(text.len());
            for (i, v) in text.iter().enumerate() {
                match v {
                    None => b.append_null(),
                    Some(s) => {
                        let x = s.trim().parse::<f64>().map_err(|_| err(i, s, "a number"))?;
                        if !x.is_finite() {
                            return Err(err(i, s, "a finite number"));
                        }
                        b.append_value(x)
                    }
                }
            }
            Arc::new(b.finish())
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(text.len()).with_timezone("UTC");
            for (i, v) in text.iter().enumerate() {
                match v {
                    None => b.append_null(),
                    Some(s) => b
                        .append_value(parse_ts_micros(s).ok_or_else(|| {
                            err(i, s, "a timestamp like 2023-01-05 10:02:03 UTC")
                        })?),
                }
            }
            Arc::new(b.finish())
        }
        other => {
            return Err(CoreError::Bug {
                what: format!("{} schema", table.name()),
                reason: format!("type {other} has no CSV conversion"),
            });
        }
    })
}

/// Reads a Parquet export and conforms it to the table's schema: columns by name, lossless casts
/// only (narrower ints and floats, other timestamp units or zones, string views).
pub fn load_parquet(table: Table, file: &str, data: Bytes) -> Result<Vec<RecordBatch>, CoreError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(data)
        .map_err(|e| bad(table, format!("{file}: not a readable Parquet file: {e}")))?;
    let file_schema = builder.schema().clone();
    let names: Vec<String> = file_schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    check_columns(table, file, &names)?;
    let target = table.schema();
    for field in target.fields() {
        let have = file_schema
            .field_with_name(field.name())
            .map_err(|e| bad(table, e.to_string()))?;
        if !castable(have.data_type(), field.data_type()) {
            return Err(bad(
                table,
                format!(
                    "{file}: column {:?} has type {}, expected {}",
                    field.name(),
                    have.data_type(),
                    field.data_type()
                ),
            ));
        }
    }
    let reader = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| bad(table, format!("{file}: {e}")))?;
    let mut out = Vec::new();
    let mut row0 = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| bad(table, format!("{file}: corrupt Parquet data: {e}")))?;
        let mut columns = Vec::with_capacity(target.fields().len());
        for field in target.fields() {
            let col = batch
                .column_by_name(field.name())
                .ok_or_else(|| bad(table, format!("missing {}", field.name())))?;
            let col = if col.data_type() == field.data_type() {
                col.clone()
            } else {
                let converted = cast(col, field.data_type())
                    .map_err(|e| bad(table, format!("{file}: column {:?}: {e}", field.name())))?;
                check_lossless(table, file, field.name(), col, &converted, row0)?;
                converted
            };
            check_required(table, file, field, &col, row0)?;
            columns.push(col);
        }
        row0 += batch.num_rows() as u64;
        out.push(
            RecordBatch::try_new(target.clone(), columns)
                .map_err(|e| bad(table, format!("{file}: {e}")))?,
        );
    }
    Ok(out)
}

/// Concatenates a table's batches and sorts the rows by its primary key (nulls first, so that
/// validation still finds and reports them). Used for sources whose file split and row order are
/// not deterministic (Athena's UNLOAD), so that equal data gives byte-identical partitions.
pub fn sort_by_key(table: Table, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>, CoreError> {
    if batches.is_empty() {
        return Ok(batches);
    }
    let schema = table.schema();
    let all = arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| bad(table, format!("cannot combine files: {e}")))?;
    let key = all
        .column_by_name(table.key())
        .ok_or_else(|| bad(table, format!("missing key column {:?}", table.key())))?;
    let order = arrow::compute::sort_to_indices(
        key,
        Some(arrow::compute::SortOptions {
            descending: false,
            nulls_first: true,
        }),
        None,
    )
    .map_err(|e| bad(table, format!("cannot sort by {}: {e}", table.key())))?;
    let sorted = arrow::compute::take_record_batch(&all, &order)
        .map_err(|e| bad(table, format!("cannot sort by {}: {e}", table.key())))?;
    Ok(vec![sorted])
}

/// A cast that cannot represent a value (a timestamp in seconds or milliseconds beyond the range
/// of microseconds) yields a null: refused here, naming the value, rather than passed on as a
/// missing value.
fn check_lossless(
    table: Table,
    file: &str,
    column: &str,
    from: &ArrayRef,
    to: &ArrayRef,
    row0: u64,
) -> Result<(), CoreError> {
    if from.null_count() == to.null_count() {
        return Ok(());
    }
    let Some(i) = (0..from.len()).find(|&i| from.is_valid(i) && to.is_null(i)) else {
        return Ok(());
    };
    // The value as text, or its raw number when even display cannot convert it.
    let value = arrow::util::display::array_value_to_string(from, i)
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| {
            let raw = cast(&from.slice(i, 1), &DataType::Int64).ok()?;
            let raw = raw.as_any().downcast_ref::<arrow::array::Int64Array>()?;
            Some(raw.value(0).to_string())
        })
        .unwrap_or_default();
    Err(bad(
        table,
        format!(
            "{file}: column {column:?}, row {}: value {value} ({}) cannot be represented as {}",
            row0 + i as u64 + 1,
            from.data_type(),
            to.data_type()
        ),
    ))
}

fn castable(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    if from == to {
        return true;
    }
    matches!(
        (from, to),
        (Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32, Int64)
            | (Float32 | Int8 | Int16 | Int32 | UInt8 | UInt16, Float64)
            | (LargeUtf8 | Utf8View, Utf8)
            | (Timestamp(_, _), Timestamp(_, _))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, TimestampMicrosecondArray};

    const HEADER: &str = "id,name,latitude,longitude\n";

    #[test]
    fn csv_by_name_with_bom_crlf_and_nulls() {
        let csv = "\u{feff}longitude,id,latitude,name\r\n-89.97,1,35.11,\"Memphis, TN\"\r\n,2,,Chicago IL\r\n";
        let batches = load_csv(Table::DistributionCenters, "dc.csv", Bytes::from(csv), 0).unwrap();
        let b = &batches[0];
        assert_eq!(b.schema(), Table::DistributionCenters.schema());
        let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ids.values(), &[1, 2]);
        assert!(b.column(3).is_null(1));
        let names = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(names.value(0), "Memphis, TN");
    }

    #[test]
    fn csv_errors_name_column_and_row() {
        let csv = format!("{HEADER}1,a,1.0,2.0\n2,b,north,2.0\n");
        let err = load_csv(Table::DistributionCenters, "dc.csv", Bytes::from(csv), 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("distribution_centers")
                && err.contains("\"latitude\"")
                && err.contains("row 2"),
            "{err}"
        );
        let missing = load_csv(
            Table::DistributionCenters,
            "dc.csv",
            Bytes::from("id,name,latitude\n1,a,2\n"),
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(
            missing.contains("missing column \"longitude\""),
            "{missing}"
        );
        let extra = load_csv(
            Table::DistributionCenters,
            "dc.csv",
            Bytes::from("id,name,latitude,longitude,x\n"),
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(extra.contains("unexpected column \"x\""), "{extra}");
    }

    #[test]
    fn sort_by_key_orders_rows_across_files() {
        let a = load_csv(
            Table::DistributionCenters,
            "a.csv",
            Bytes::from(format!("{HEADER}3,c,1,1\n1,a,1,1\n")),
            0,
        )
        .unwrap();
        let b = load_csv(
            Table::DistributionCenters,
            "b.csv",
            Bytes::from(format!("{HEADER}2,b,1,1\n")),
            0,
        )
        .unwrap();
        let sorted = sort_by_key(Table::DistributionCenters, [a, b].concat()).unwrap();
        assert_eq!(sorted.len(), 1);
        let ids = sorted[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.values(), &[1, 2, 3]);
        let names = sorted[0]
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(names.value(0), "a");
    }

    #[test]
    fn csv_timestamps() {
        let csv = "id,user_id,sequence_number,session_id,created_at,ip_address,city,state,postal_code,browser,traffic_source,uri,event_type\n\
                   1,,1,s,2023-01-05 10:02:03.5 UTC,,,,,,,,home\n2,7,2,s,2023-01-05 10:02:03+00:00,,,,,,,,cart\n";
        let b = &load_csv(Table::Events, "events.csv", Bytes::from(csv), 0).unwrap()[0];
        let ts = b
            .column(4)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(ts.value(0) - ts.value(1), 500_000);
        assert!(b.column(1).is_null(0));
    }

    #[test]
    fn chunked_parse_equals_the_sequential_parse() {
        let mut csv = String::from(
            "id,user_id,sequence_number,session_id,created_at,ip_address,city,state,postal_code,browser,traffic_source,uri,event_type\r\n",
        );
        for i in 0..5000 {
            csv.push_str(&format!(
                "{i},{},{},s{i},2023-01-05 10:02:{:02} UTC,1.2.3.4,Paris,,75001,Chrome,Email,/p/{i},home\r\n",
                i % 97,
                i % 5,
                i % 60
            ));
        }
        let data = Bytes::from(csv.clone());
        let names: Vec<String> = csv
            .lines()
            .next()
            .unwrap()
            .split(',')
            .map(String::from)
            .collect();
        let text: SchemaRef = Arc::new(Schema::new(
            names
                .iter()
                .map(|n| Field::new(n, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let chunks = record_chunks(&data, 4096).expect("chunks");
        assert!(chunks.len() > 20, "{}", chunks.len());
        assert!(chunks.iter().all(|c| c.ends_with(b"\r\n")));
        let parallel = parse_chunks(Table::Events, "events.csv", &text, &chunks).unwrap();
        let sequential = parse_records(Table::Events, "events.csv", &text, data, true, 0).unwrap();
        let schema = Table::Events.schema();
        assert_eq!(
            arrow::compute::concat_batches(&schema, &parallel).unwrap(),
            arrow::compute::concat_batches(&schema, &sequential).unwrap()
        );
        // A quote anywhere (a quoted comma or newline may follow) keeps the file in one piece.
        let quoted = Bytes::from(csv.replacen("Paris", "\"Paris, FR\"", 1));
        assert!(record_chunks(&quoted, 4096).is_none());
        assert!(
            record_chunks(&Bytes::from(csv), 1 << 20).is_none(),
            "small files are not split"
        );
    }
}
