//! Turning one source file (BigQuery-style CSV or Parquet) into batches with the table's exact schema.
//!
//! Columns are matched by name, never by position. Every value that does not fit its column's type
//! is reported with the table, column and 1-based data row, so a data engineer can find it.

use std::io::{Cursor, Read};
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
use parquet::file::reader::ChunkReader;
use rayon::prelude::*;
use repurchase_core::CoreError;
use repurchase_core::schema::Table;

use crate::timestamp::parse_ts_micros;

/// Rows per batch read from a source file.
pub const BATCH_ROWS: usize = 64 * 1024;

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

/// Where parsed batches go, in order: the validator and writer of the table being loaded.
pub type Emit<'e> = dyn FnMut(RecordBatch) -> Result<(), CoreError> + 'e;

/// Parses a BigQuery CSV export streamed from `reader`: header row, empty field = NULL, BigQuery
/// timestamps. `row_offset` is the number of data rows in earlier files of the same table (for
/// row numbers). Memory holds a few chunks of `chunk_bytes`, whatever the file's size; returns
/// the file's data rows.
///
/// A file under two chunks is parsed in one piece. A longer one is cut into chunks of about
/// `chunk_bytes` at line ends and parsed on every core, as long as no quote has been seen (a
/// quoted comma or newline could follow, which a line end cannot cut); from the first chunk with a
/// quote on, the rest of the file is parsed in one sequential stream. The cuts depend only on the
/// bytes, never on the core count or on how the bytes arrive, so the batches (and the Parquet
/// written from them) are the same on every machine.
pub fn stream_csv(
    table: Table,
    file: &str,
    reader: &mut dyn Read,
    row_offset: u64,
    chunk_bytes: usize,
    emit: &mut Emit<'_>,
) -> Result<u64, CoreError> {
    let mut head = Vec::new();
    let limit = 2 * chunk_bytes + 3;
    read_up_to(table, file, reader, &mut head, limit)?;
    let bom = usize::from(head.starts_with(&[0xEF, 0xBB, 0xBF])) * 3;
    if head.len() - bom < 2 * chunk_bytes {
        // The whole file is in `head`: one piece.
        let data = Bytes::from(head).slice(bom..);
        return load_piece(table, file, data, row_offset, emit);
    }
    let data = &head[bom..];
    let Some(header_end) = memchr::memchr(b'\n', data).map(|i| i + 1) else {
        // A header line longer than two chunks: no export has one; parse it whole.
        let mut all = data.to_vec();
        reader_to_end(table, file, reader, &mut all)?;
        return load_piece(table, file, Bytes::from(all), row_offset, emit);
    };
    let header = data[..header_end].to_vec();
    let text_schema = header_schema(table, file, &header)?;
    if memchr::memchr(b'"', data).is_some() {
        // Sequential from the start, exactly as a small file is read.
        let mut all = std::io::Cursor::new(data.to_vec()).chain(reader);
        return parse_records(
            table,
            file,
            &text_schema,
            &mut all,
            true,
            row_offset,
            0,
            emit,
        );
    }
    let mut chunker = Chunker {
        pending: data[header_end..].to_vec(),
        chunk_bytes,
        eof: false,
        // Byte offsets count from after the byte order mark.
        offset: header_end,
    };
    let mut rows = 0u64;
    let group = rayon::current_num_threads().max(1);
    loop {
        let mut chunks = Vec::with_capacity(group);
        while chunks.len() < group {
            match chunker.next(table, file, reader)? {
                Some(chunk) => chunks.push(chunk),
                None => break,
            }
        }
        if chunks.is_empty() {
            return Ok(rows);
        }
        let quoted = chunks
            .iter()
            .position(|(_, c)| memchr::memchr(b'"', c).is_some());
        let parallel = &chunks[..quoted.unwrap_or(chunks.len())];
        // One quote-free chunk checked and parsed; `rows` and `bytes` (rows and bytes of the file
        // before it) are for the errors to name the file row.
        let parse_chunk = |chunk: &[u8], rows: u64, bytes: u64, emit: &mut Emit<'_>| {
            check_utf8(table, file, &header, chunk, rows, bytes)?;
            parse_records(
                table,
                file,
                &text_schema,
                &mut &chunk[..],
                false,
                row_offset + rows,
                rows,
                emit,
            )
        };
        // Chunks are parsed without row numbers (their offsets are known only in order); a
        // failed one is parsed again, alone, with its offset, for the error to name its row.
        let parsed: Vec<Result<Vec<RecordBatch>, CoreError>> = parallel
            .par_iter()
            .map(|(_, chunk)| {
                let mut out = Vec::new();
                let mut push = |b: RecordBatch| {
                    out.push(b);
                    Ok(())
                };
                parse_chunk(chunk, 0, 0, &mut push)?;
                Ok(out)
            })
            .collect();
        for ((at, chunk), batches) in parallel.iter().zip(parsed) {
            let batches = match batches {
                Ok(b) => b,
                Err(_) => {
                    parse_chunk(chunk, rows, at - header_end as u64, &mut |_| Ok(()))?;
                    return Err(CoreError::Bug {
                        what: format!("parsing {file}"),
                        reason: "a chunk failed in parallel but not alone".into(),
                    });
                }
            };
            for b in batches {
                rows += b.num_rows() as u64;
                emit(b)?;
            }
        }
        if let Some(q) = quoted {
            // From the chunk with the quote on, one sequential stream (no header).
            let mut rest: Vec<u8> = Vec::new();
            for (_, c) in &chunks[q..] {
                rest.extend_from_slice(c);
            }
            rest.extend(std::mem::take(&mut chunker.pending));
            let mut all = std::io::Cursor::new(rest).chain(reader);
            rows += parse_records(
                table,
                file,
                &text_schema,
                &mut all,
                false,
                row_offset + rows,
                rows,
                emit,
            )?;
            return Ok(rows);
        }
    }
}

/// Cuts the records after the header into chunks: each ends at the first line end at least
/// `chunk_bytes` into it (or at the end of the file).
struct Chunker {
    pending: Vec<u8>,
    chunk_bytes: usize,
    eof: bool,
    /// Byte offset of `pending`'s start in the file.
    offset: usize,
}

impl Chunker {
    /// The next chunk and its byte offset, or `None` at the end of the file.
    fn next(
        &mut self,
        table: Table,
        file: &str,
        reader: &mut dyn Read,
    ) -> Result<Option<(u64, Vec<u8>)>, CoreError> {
        let mut searched = self.chunk_bytes;
        let end = loop {
            if let Some(i) = self
                .pending
                .get(searched..)
                .and_then(|rest| memchr::memchr(b'\n', rest))
            {
                break searched + i + 1;
            }
            if self.eof {
                break self.pending.len();
            }
            searched = searched.max(self.pending.len());
            let want = self.pending.len() + self.chunk_bytes;
            self.eof = read_up_to(table, file, reader, &mut self.pending, want)? < want;
        };
        if end == 0 {
            return Ok(None);
        }
        let rest = self.pending.split_off(end);
        let chunk = std::mem::replace(&mut self.pending, rest);
        let at = self.offset as u64;
        self.offset += chunk.len();
        Ok(Some((at, chunk)))
    }
}

/// Reads from `reader` until `buf` holds `len` bytes or the input ends; returns the length.
fn read_up_to(
    table: Table,
    file: &str,
    reader: &mut dyn Read,
    buf: &mut Vec<u8>,
    len: usize,
) -> Result<usize, CoreError> {
    let missing = len.saturating_sub(buf.len()) as u64;
    reader
        .take(missing)
        .read_to_end(buf)
        .map_err(|e| read_error(table, file, e))?;
    Ok(buf.len())
}

fn reader_to_end(
    table: Table,
    file: &str,
    reader: &mut dyn Read,
    buf: &mut Vec<u8>,
) -> Result<(), CoreError> {
    reader
        .read_to_end(buf)
        .map(|_| ())
        .map_err(|e| read_error(table, file, e))
}

/// A failed read of a source file: the gzip decoder's or the store's (see [`crate::source`],
/// which names the store's own error before this one is seen).
pub fn read_error(table: Table, file: &str, e: std::io::Error) -> CoreError {
    if file.to_ascii_lowercase().ends_with(".gz") {
        bad(table, format!("{file}: not a readable gzip file: {e}"))
    } else {
        CoreError::Io {
            path: file.to_string(),
            source: e,
        }
    }
}

/// Parses a file held whole (under two chunks): checked for UTF-8, then one sequential parse.
fn load_piece(
    table: Table,
    file: &str,
    data: Bytes,
    row_offset: u64,
    emit: &mut Emit<'_>,
) -> Result<u64, CoreError> {
    if data.is_empty() {
        return Err(bad(table, format!("{file}: file is empty (no header row)")));
    }
    if let Err(e) = std::str::from_utf8(&data) {
        return Err(bad(table, not_utf8(file, &data[..e.valid_up_to()], 0, 0)));
    }
    let text_schema = header_schema(table, file, &data)?;
    parse_records(
        table,
        file,
        &text_schema,
        &mut std::io::Cursor::new(data),
        true,
        row_offset,
        0,
        emit,
    )
}

/// The header's columns, checked against the table's, as a schema of text columns.
fn header_schema(table: Table, file: &str, data: &[u8]) -> Result<SchemaRef, CoreError> {
    let (header_schema, _) = Format::default()
        .with_header(true)
        .infer_schema(Cursor::new(data), Some(0))
        .map_err(|e| bad(table, format!("{file}: unreadable header: {e}")))?;
    let names: Vec<String> = header_schema
        .fields()
        .iter()
        .map(|f| f.name().trim().to_string())
        .collect();
    check_columns(table, file, &names)?;
    Ok(Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    )))
}

/// Refuses a chunk with invalid UTF-8, naming the row and column (`rows_before` data rows and
/// `bytes_before` bytes after the header precede the chunk).
fn check_utf8(
    table: Table,
    file: &str,
    header: &[u8],
    chunk: &[u8],
    rows_before: u64,
    bytes_before: u64,
) -> Result<(), CoreError> {
    match std::str::from_utf8(chunk) {
        Ok(_) => Ok(()),
        Err(e) => {
            let prefix = [header, &chunk[..e.valid_up_to()]].concat();
            Err(bad(
                table,
                not_utf8(file, &prefix, rows_before, bytes_before),
            ))
        }
    }
}

/// Loads a whole CSV file held in memory (see [`stream_csv`]).
pub fn load_csv(
    table: Table,
    file: &str,
    data: Bytes,
    row_offset: u64,
) -> Result<Vec<RecordBatch>, CoreError> {
    let mut out = Vec::new();
    stream_csv(
        table,
        file,
        &mut std::io::Cursor::new(data),
        row_offset,
        CHUNK_BYTES,
        &mut |b| {
            out.push(b);
            Ok(())
        },
    )?;
    Ok(out)
}

/// Files at least twice this large are parsed in chunks of about this size, in parallel.
pub const CHUNK_BYTES: usize = 16 << 20;

/// Parses CSV records (after the header when `header`) into batches of the table's schema, each
/// handed to `emit` as it is read; `row_offset` data rows of the table precede them (for row
/// numbers in errors), `file_rows` of them in this file. Returns the rows parsed.
#[allow(clippy::too_many_arguments)] // one private parser, called in three ways
fn parse_records(
    table: Table,
    file: &str,
    text_schema: &SchemaRef,
    data: &mut dyn Read,
    header: bool,
    row_offset: u64,
    file_rows: u64,
    emit: &mut Emit<'_>,
) -> Result<u64, CoreError> {
    let reader = ReaderBuilder::new(text_schema.clone())
        .with_header(header)
        .with_batch_size(BATCH_ROWS)
        .build(data)
        .map_err(|e| bad(table, format!("{file}: {e}")))?;
    let target = table.schema();
    let mut row0 = row_offset;
    // The reader numbers lines from 1, the header included when there is one.
    let line_base = file_rows as i64 - i64::from(header);
    for batch in reader {
        let batch =
            batch.map_err(|e| bad(table, malformed(file, line_base, row0, &e.to_string())))?;
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
        emit(
            RecordBatch::try_new(target.clone(), columns)
                .map_err(|e| bad(table, format!("{file}: {e}")))?,
        )?;
    }
    Ok(row0 - row_offset)
}

/// The CSV reader's error, with the data row spelled out: the reader counts file lines from 1 with
/// the header as line 1 (or gives no line at all).
/// `line_base` is the row of the file before the reader's line 1 (−1 when line 1 is the header).
fn malformed(file: &str, line_base: i64, row0: u64, e: &str) -> String {
    let line = e
        .split("line ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<i64>().ok());
    match line.map(|l| l + line_base) {
        Some(row) if row > 0 => format!("{file}: row {row}: malformed CSV: {e}"),
        _ => format!("{file}: malformed CSV after data row {row0}: {e}"),
    }
}

/// Names the row and column of the first invalid UTF-8 byte, whose valid `prefix` precedes it.
/// `prefix` starts with the header; `rows_before` data rows and `bytes_before` bytes after the
/// header stand between the header and the rest of `prefix` in the file.
fn not_utf8(file: &str, prefix: &[u8], rows_before: u64, bytes_before: u64) -> String {
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
            "{file}: column {column:?}, row {}: invalid UTF-8 (byte {}); export as UTF-8",
            rows_before + line,
            bytes_before + prefix.len() as u64
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

/// Reads a Parquet export batch by batch (one row group's pages in memory at a time) and conforms
/// it to the table's schema: columns by name, lossless casts only (narrower ints and floats, other
/// timestamp units or zones, string views). Row numbers count within the file. Returns the rows.
pub fn stream_parquet<R: ChunkReader + 'static>(
    table: Table,
    file: &str,
    data: R,
    emit: &mut Emit<'_>,
) -> Result<u64, CoreError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(data)
        .map_err(|e| bad(table, format!("{file}: not a readable Parquet file: {e}")))?;
    check_schema(table, file, builder.schema())?;
    let reader = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| bad(table, format!("{file}: {e}")))?;
    let mut row0 = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| bad(table, format!("{file}: corrupt Parquet data: {e}")))?;
        let rows = batch.num_rows() as u64;
        emit(conform(table, file, &batch, row0)?)?;
        row0 += rows;
    }
    Ok(row0)
}

/// Checks that a Parquet file (or a query over Athena's) has the table's columns, each of its
/// type or one that casts to it without loss.
pub fn check_schema(table: Table, file: &str, file_schema: &Schema) -> Result<(), CoreError> {
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
    Ok(())
}

/// One batch of a schema-checked file ([`check_schema`]) in the table's exact schema, refusing a
/// cast that loses a value and a null in a required column; `row0` rows precede it.
pub fn conform(
    table: Table,
    file: &str,
    batch: &RecordBatch,
    row0: u64,
) -> Result<RecordBatch, CoreError> {
    let target = table.schema();
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
    RecordBatch::try_new(target.clone(), columns).map_err(|e| bad(table, format!("{file}: {e}")))
}

/// Cuts a stream of batches into batches of exactly `rows` rows (the last one shorter), so that
/// what is written from them does not depend on where the producer cut.
pub struct Rechunk {
    rows: usize,
    pending: Vec<RecordBatch>,
    filled: usize,
}

impl Rechunk {
    /// Batches of `rows` rows.
    pub fn new(rows: usize) -> Self {
        Rechunk {
            rows,
            pending: Vec::new(),
            filled: 0,
        }
    }

    /// Adds a batch; returns the batches it completes.
    pub fn push(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, CoreError> {
        let mut out = Vec::new();
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (self.rows - self.filled).min(batch.num_rows() - offset);
            self.pending.push(batch.slice(offset, take));
            offset += take;
            self.filled += take;
            if self.filled == self.rows {
                out.push(self.flush()?);
            }
        }
        Ok(out)
    }

    /// The last, shorter batch, if rows are left.
    pub fn finish(mut self) -> Result<Option<RecordBatch>, CoreError> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        self.flush().map(Some)
    }

    fn flush(&mut self) -> Result<RecordBatch, CoreError> {
        let parts = std::mem::take(&mut self.pending);
        self.filled = 0;
        let schema = parts[0].schema();
        arrow::compute::concat_batches(&schema, &parts).map_err(|e| CoreError::Bug {
            what: "cutting batches".into(),
            reason: e.to_string(),
        })
    }
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

    /// The message `load_csv` refuses `csv` with, read as the distribution centres table.
    fn dc_csv_error(csv: &str) -> String {
        load_csv(
            Table::DistributionCenters,
            "dc.csv",
            Bytes::from(csv.to_string()),
            0,
        )
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn csv_errors_name_column_and_row() {
        let csv = format!("{HEADER}1,a,1.0,2.0\n2,b,north,2.0\n");
        let err = dc_csv_error(&csv);
        assert!(
            err.contains("distribution_centers")
                && err.contains("\"latitude\"")
                && err.contains("row 2"),
            "{err}"
        );
        let missing = dc_csv_error("id,name,latitude\n1,a,2\n");
        assert!(
            missing.contains("missing column \"longitude\""),
            "{missing}"
        );
        let extra = dc_csv_error("id,name,latitude,longitude,x\n");
        assert!(extra.contains("unexpected column \"x\""), "{extra}");
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

    /// An events CSV of `n` rows (CRLF line ends, as BigQuery writes them).
    fn events_csv(n: usize) -> String {
        let mut csv = String::from(
            "id,user_id,sequence_number,session_id,created_at,ip_address,city,state,postal_code,browser,traffic_source,uri,event_type\r\n",
        );
        for i in 0..n {
            csv.push_str(&format!(
                "{i},{},{},s{i},2023-01-05 10:02:{:02} UTC,1.2.3.4,Paris,,75001,Chrome,Email,/p/{i},home\r\n",
                i % 97,
                i % 5,
                i % 60
            ));
        }
        csv
    }

    /// Streams `csv` in chunks of `chunk_bytes`, `step` bytes per read.
    fn stream(csv: &str, chunk_bytes: usize, step: usize) -> Result<Vec<RecordBatch>, CoreError> {
        /// A reader handing out at most `step` bytes per call, as a network stream may.
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        stream_csv(
            Table::Events,
            "events.csv",
            &mut Trickle(csv.as_bytes(), step),
            0,
            chunk_bytes,
            &mut |b| {
                out.push(b);
                Ok(())
            },
        )?;
        Ok(out)
    }

    fn rows(batches: &[RecordBatch]) -> Vec<usize> {
        batches.iter().map(RecordBatch::num_rows).collect()
    }

    #[test]
    fn chunked_parse_equals_the_sequential_parse_however_the_bytes_arrive() {
        let csv = events_csv(5000);
        let schema = Table::Events.schema();
        let whole = stream(&csv, 1 << 30, 1 << 30).unwrap();
        assert_eq!(rows(&whole), [5000], "one piece: batches from the start");
        let chunked = stream(&csv, 4096, 1 << 30).unwrap();
        assert!(chunked.len() > 20, "{}", chunked.len());
        assert_eq!(
            arrow::compute::concat_batches(&schema, &chunked).unwrap(),
            arrow::compute::concat_batches(&schema, &whole).unwrap()
        );
        // The cuts depend on the bytes only: the same batches when they trickle in.
        assert_eq!(stream(&csv, 4096, 7).unwrap(), chunked);
        // Each chunk is cut at the first line end 4096 bytes or more into it.
        let line = csv.find('\n').unwrap() + 1;
        let mut at = line;
        let mut expected = Vec::new();
        while at < csv.len() {
            let end = csv[at..]
                .get(4096..)
                .and_then(|r| r.find('\n'))
                .map_or(csv.len(), |i| at + 4096 + i + 1);
            expected.push(csv[at..end].matches('\n').count());
            at = end;
        }
        assert_eq!(rows(&chunked), expected);
        // A quote in the first two chunks: the whole file in one sequential stream; a later
        // quote: chunks up to it, one stream from its chunk on; the rows are the same.
        for (nth, pieces) in [(1, 1), (4000, 2)] {
            let row = csv.lines().nth(nth).unwrap();
            let quoted = csv.replacen(row, &row.replacen("Paris", "\"Paris,\nFR\"", 1), 1);
            let batches = stream(&quoted, 4096, 1 << 30).unwrap();
            let all = arrow::compute::concat_batches(&schema, &batches).unwrap();
            assert_eq!(all.num_rows(), 5000);
            let city = all
                .column(6)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            assert_eq!(city.value(nth - 1), "Paris,\nFR");
            if pieces == 1 {
                assert_eq!(rows(&batches), [5000]);
            } else {
                assert!(batches.len() > 2 && batches.last().unwrap().num_rows() > 100);
            }
        }
    }

    #[test]
    fn errors_deep_in_a_chunked_file_name_the_file_row() {
        let csv = events_csv(5000);
        let row = |n: usize| csv.lines().nth(n).unwrap().to_string();
        // Row 4321: a bad integer, a missing field, a byte that is not UTF-8.
        let bad_int = csv.replacen(&row(4321), &row(4321).replacen("4320,", "x4320,", 1), 1);
        let err = stream(&bad_int, 4096, 1 << 30).unwrap_err().to_string();
        assert!(
            err.contains("column \"id\", row 4321: cannot parse \"x4320\""),
            "{err}"
        );
        let ragged = csv.replacen(&row(4321), &row(4321).replacen(",home", "", 1), 1);
        let err = stream(&ragged, 4096, 1 << 30).unwrap_err().to_string();
        assert!(err.contains("row 4321: malformed CSV"), "{err}");
        let mut bytes = csv.clone().into_bytes();
        let at = csv.find(&row(4321)).unwrap() + row(4321).find("Paris").unwrap();
        bytes[at] = 0xFF;
        let mut out = Vec::new();
        let err = stream_csv(
            Table::Events,
            "events.csv",
            &mut &bytes[..],
            0,
            4096,
            &mut |b| {
                out.push(b);
                Ok(())
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&format!(
                "column \"city\", row 4321: invalid UTF-8 (byte {at})"
            )),
            "{err}"
        );
    }

    #[test]
    fn rechunk_cuts_exact_batches_whatever_the_input_cuts() {
        let csv = events_csv(1000);
        let batches = stream(&csv, 1 << 30, 1 << 30).unwrap();
        let all = &batches[0];
        let cut = |sizes: &[usize]| {
            let mut r = Rechunk::new(300);
            let mut out = Vec::new();
            let mut at = 0;
            for &n in sizes {
                out.extend(r.push(all.slice(at, n)).unwrap());
                at += n;
            }
            out.extend(r.finish().unwrap());
            out
        };
        let a = cut(&[1000]);
        assert_eq!(rows(&a), [300, 300, 300, 100]);
        assert_eq!(cut(&[1, 299, 0, 450, 250]), a);
        assert!(Rechunk::new(10).finish().unwrap().is_none());
    }
}
