//! CSV in the shape of a BigQuery export: a header row, commas, RFC 4180 quoting only where a
//! field needs it, NULL as an empty field, timestamps as `YYYY-MM-DD hh:mm:ss[.ffffff] UTC`,
//! floats in Rust's shortest round-trip form.
//!
//! A file is written as its [`header`] followed by the [`rows`] of its batches in order, so a
//! table streamed chunk by chunk gives the same bytes as the whole table at once. Fields are
//! written straight into one byte buffer (no per-field strings), and large batches are formatted
//! in slices on several threads.

use std::fmt::Write as _;

use arrow::array::{
    Array, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use rayon::prelude::*;

use crate::timefmt::write_bigquery_ts;

/// Below this many rows a batch is formatted on the calling thread.
const PARALLEL_MIN_ROWS: usize = 200_000;

/// The header row: the column names, comma-separated, ending in a newline.
pub(crate) fn header(schema: &Schema) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str_field(&mut out, f.name());
    }
    out.push(b'\n');
    out
}

/// The rows of a batch, one line each, without the header: a file is its header followed by
/// the rows of its batches in order. Fails only on a column type the project never writes.
pub(crate) fn rows(batch: &RecordBatch) -> Result<Vec<u8>, String> {
    let rows = batch.num_rows();
    let threads = rayon::current_num_threads();
    let mut out = Vec::new();
    if rows < PARALLEL_MIN_ROWS || threads == 1 {
        write_rows(&mut out, batch)?;
        return Ok(out);
    }
    // One slice per core, formatted on rayon's pool and joined in order.
    let per = rows.div_ceil(threads);
    let parts: Vec<Result<Vec<u8>, String>> = (0..threads)
        .into_par_iter()
        .map(|k| {
            let start = (k * per).min(rows);
            let slice = batch.slice(start, per.min(rows - start));
            let mut buf = Vec::new();
            write_rows(&mut buf, &slice).map(|()| buf)
        })
        .collect();
    let parts = parts.into_iter().collect::<Result<Vec<_>, _>>()?;
    out.reserve(parts.iter().map(Vec::len).sum());
    for p in parts {
        out.extend_from_slice(&p);
    }
    Ok(out)
}

enum Col<'a> {
    Int(&'a Int64Array),
    Float(&'a Float64Array),
    Str(&'a StringArray),
    Ts(&'a TimestampMicrosecondArray),
    Bool(&'a BooleanArray),
}

fn columns(batch: &RecordBatch) -> Result<Vec<Col<'_>>, String> {
    batch
        .columns()
        .iter()
        .zip(batch.schema().fields())
        .map(|(a, f)| {
            let any = a.as_any();
            let col = match a.data_type() {
                DataType::Int64 => any.downcast_ref().map(Col::Int),
                DataType::Float64 => any.downcast_ref().map(Col::Float),
                DataType::Utf8 => any.downcast_ref().map(Col::Str),
                DataType::Timestamp(TimeUnit::Microsecond, _) => any.downcast_ref().map(Col::Ts),
                DataType::Boolean => any.downcast_ref().map(Col::Bool),
                _ => None,
            };
            col.ok_or_else(|| format!("column {} has unsupported type {}", f.name(), a.data_type()))
        })
        .collect()
}

fn write_rows(out: &mut Vec<u8>, batch: &RecordBatch) -> Result<(), String> {
    let cols = columns(batch)?;
    // Rough size so the buffer grows a few times at most.
    out.reserve(batch.num_rows() * cols.len() * 12);
    for row in 0..batch.num_rows() {
        for (i, col) in cols.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match col {
                Col::Int(a) if a.is_valid(row) => write_i64(out, a.value(row)),
                Col::Float(a) if a.is_valid(row) => write_f64(out, a.value(row)),
                Col::Str(a) if a.is_valid(row) => write_str_field(out, a.value(row)),
                Col::Ts(a) if a.is_valid(row) => write_bigquery_ts(out, a.value(row)),
                Col::Bool(a) if a.is_valid(row) => {
                    out.extend_from_slice(if a.value(row) { b"true" } else { b"false" })
                }
                // NULL is an empty field.
                _ => {}
            }
        }
        out.push(b'\n');
    }
    Ok(())
}

pub(crate) fn write_str_field(out: &mut Vec<u8>, s: &str) {
    let needs_quotes = s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if !needs_quotes {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    out.push(b'"');
    for b in s.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

pub(crate) fn write_i64(out: &mut Vec<u8>, v: i64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Shortest decimal that parses back to the same f64.
fn write_f64(out: &mut Vec<u8>, v: f64) {
    struct Sink<'a>(&'a mut Vec<u8>);
    impl std::fmt::Write for Sink<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    // The sink never fails, so neither can the write.
    let _ = write!(Sink(out), "{v}");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::Field;

    use super::*;

    fn text(batch: &RecordBatch) -> String {
        let mut out = header(&batch.schema());
        out.extend(rows(batch).expect("rows"));
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn quotes_only_when_needed_and_nulls_are_empty() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("price", DataType::Float64, true),
            Field::new("at", repurchase_core::schema::ts_type(), true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, -22, 3])),
                Arc::new(StringArray::from(vec![
                    Some("Levi's 501, \"Dark\" 32\""),
                    None,
                    Some("plain"),
                ])),
                Arc::new(Float64Array::from(vec![Some(0.1 + 0.2), Some(19.99), None])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        Some(1_672_912_923_000_000),
                        None,
                        Some(1_672_912_923_123_456),
                    ])
                    .with_timezone("UTC"),
                ),
            ],
        )
        .expect("batch");
        assert_eq!(
            text(&batch),
            "id,name,price,at\n\
             1,\"Levi's 501, \"\"Dark\"\" 32\"\"\",0.30000000000000004,2023-01-05 10:02:03 UTC\n\
             -22,,19.99,\n\
             3,plain,,2023-01-05 10:02:03.123456 UTC\n"
        );
    }

    #[test]
    fn large_batches_split_and_rejoin_in_order() {
        let n = PARALLEL_MIN_ROWS + 12_345;
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from_iter_values(0..n as i64))],
        )
        .expect("batch");
        let s = text(&batch);
        let mut lines = s.lines();
        assert_eq!(lines.next(), Some("v"));
        assert!(lines.enumerate().all(|(i, l)| l == i.to_string()));
        assert_eq!(s.lines().count(), n + 1);
    }

    #[test]
    fn integers() {
        for v in [0, 7, -7, 1_234_567_890, i64::MAX, i64::MIN] {
            let mut b = Vec::new();
            write_i64(&mut b, v);
            assert_eq!(String::from_utf8(b).expect("utf8"), v.to_string());
        }
    }
}
