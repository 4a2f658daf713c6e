//! Bad input corpus: every malformed export gets a documented outcome, never a panic.
//!
//! Each case starts from a small valid generated export, breaks one table and runs `extract`
//! through the library and through the real binary. The outcome of every case is documented in
//! docs/BAD_INPUT.md (same case names): either an error naming table, column and row (exit code 2,
//! no raw partition published) or a repair counted in the table's manifest.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use repurchase_core::layout::Dataset;
use repurchase_core::schema::Table;
use repurchase_core::{Classify, DataRoot, ErrorClass, Manifest};
use repurchase_datagen::{OutputFormat, Profile};
use repurchase_extract::Source;

use crate::support::{binary, date, generated_source, memory_root, parquet_batches, signal_source};

const RUN_DATE: &str = "2025-06-30";

/// Source files by name (relative to the source folder).
type Files = BTreeMap<String, Vec<u8>>;

#[derive(Clone, Copy, PartialEq)]
enum Fmt {
    Csv,
    Parquet,
}

enum Expect {
    /// Exit code 2, message naming the table and, where given, the column, the row and a phrase.
    Error {
        table: &'static str,
        column: Option<&'static str>,
        row: Option<u64>,
        phrase: &'static str,
    },
    /// Success; `counter` of `table`'s manifest is `delta` above the clean export's.
    Repair {
        table: &'static str,
        counter: &'static str,
        delta: u64,
    },
    /// Success with the same row counts as the clean export (the quirk is read as intended).
    Accepted,
}

struct Case {
    name: &'static str,
    fmt: Fmt,
    mutate: fn(&mut Files),
    expect: Expect,
}

fn err(
    table: &'static str,
    column: Option<&'static str>,
    row: Option<u64>,
    phrase: &'static str,
) -> Expect {
    Expect::Error {
        table,
        column,
        row,
        phrase,
    }
}

fn repair(table: &'static str, counter: &'static str, delta: u64) -> Expect {
    Expect::Repair {
        table,
        counter,
        delta,
    }
}

// ---------------------------------------------------------------------------------------------
// Mutation helpers

fn file_of(files: &Files, table: &str, ext: &str) -> String {
    let direct = format!("{table}.{ext}");
    if files.contains_key(&direct) {
        return direct;
    }
    files
        .keys()
        .find(|k| k.starts_with(&format!("{table}/")) && k.ends_with(ext))
        .unwrap_or_else(|| panic!("no {ext} file for {table}"))
        .clone()
}

/// `data` gzip-compressed.
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Splits one CSV line on commas outside quotes (quotes kept).
fn split_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                out.last_mut().unwrap().push(c);
            }
            ',' if !quoted => out.push(String::new()),
            _ => out.last_mut().unwrap().push(c),
        }
    }
    out
}

fn edit_lines(files: &mut Files, table: &str, f: impl FnOnce(&mut Vec<String>)) {
    let name = file_of(files, table, "csv");
    let text = String::from_utf8(files[&name].clone()).expect("generated CSV is UTF-8");
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    f(&mut lines);
    files.insert(name, lines.join("\n").into_bytes());
}

fn column_index(lines: &[String], column: &str) -> usize {
    split_fields(&lines[0])
        .iter()
        .position(|c| c == column)
        .unwrap_or_else(|| panic!("no column {column}"))
}

/// The raw text of data row `row` (1-based), column `column`.
fn get_field(files: &Files, table: &str, row: usize, column: &str) -> String {
    let name = file_of(files, table, "csv");
    let text = String::from_utf8(files[&name].clone()).unwrap();
    let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    split_fields(&lines[row])[column_index(&lines, column)].clone()
}

/// Replaces data row `row` (1-based), column `column` with `value` (written as is).
fn set_field(files: &mut Files, table: &str, row: usize, column: &str, value: &str) {
    edit_lines(files, table, |lines| {
        let idx = column_index(lines, column);
        let mut fields = split_fields(&lines[row]);
        fields[idx] = value.to_string();
        lines[row] = fields.join(",");
    });
}

fn set_header(files: &mut Files, table: &str, from: &str, to: &str) {
    edit_lines(files, table, |lines| {
        let idx = column_index(lines, from);
        let mut fields = split_fields(&lines[0]);
        fields[idx] = to.to_string();
        lines[0] = fields.join(",");
    });
}

fn bytes_of<'a>(files: &'a mut Files, table: &str, ext: &str) -> &'a mut Vec<u8> {
    let name = file_of(files, table, ext);
    files.get_mut(&name).unwrap()
}

/// Rewrites a table's Parquet file through `f` (on the file's schema and batches).
fn rewrite_parquet(
    files: &mut Files,
    table: &str,
    f: impl Fn(&RecordBatch) -> (Vec<Field>, Vec<ArrayRef>),
) {
    let data = bytes_of(files, table, "parquet");
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(data.clone()))
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    let (fields, _) = f(&batches[0]);
    let schema = Arc::new(Schema::new(fields));
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema.clone(), None).unwrap();
    for b in &batches {
        let (_, cols) = f(b);
        w.write(&RecordBatch::try_new(schema.clone(), cols).unwrap())
            .unwrap();
    }
    w.close().unwrap();
    *data = out;
}

/// Sets data row `row` (1-based, over the whole file), column `column` of a table's Parquet file to
/// `value`: NaN and ±inf reach `extract` only this way, as a CSV field spelling them is refused
/// when parsed.
fn set_parquet_float(files: &mut Files, table: &str, row: usize, column: &str, value: f64) {
    replace_parquet_column(files, table, column, |old| {
        let old = old.as_any().downcast_ref::<Float64Array>().unwrap();
        assert!(
            row <= old.len() && old.is_valid(row - 1),
            "{table}.{column} row {row}"
        );
        let new: Float64Array = old
            .iter()
            .enumerate()
            .map(|(i, v)| if i + 1 == row { Some(value) } else { v })
            .collect();
        (Field::new(column, DataType::Float64, true), Arc::new(new))
    });
}

/// Stores `column` of a table's Parquet file as a timestamp in seconds (as some exporters write
/// it), data row `row` (1-based) set to `seconds`.
fn set_parquet_seconds(files: &mut Files, table: &str, row: usize, column: &str, seconds: i64) {
    replace_parquet_column(files, table, column, |old| {
        let unit = DataType::Timestamp(arrow::datatypes::TimeUnit::Second, Some("UTC".into()));
        let old = cast(&cast(old, &unit).unwrap(), &DataType::Int64).unwrap();
        let old = old
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap();
        let new = old
            .iter()
            .enumerate()
            .map(|(i, v)| if i + 1 == row { Some(seconds) } else { v })
            .collect::<arrow::array::TimestampSecondArray>()
            .with_timezone("UTC");
        (Field::new(column, unit, true), Arc::new(new))
    });
}

/// Rewrites a table's Parquet file as one batch with `column` replaced by what `make` builds from
/// the old column (all rows, in file order).
fn replace_parquet_column(
    files: &mut Files,
    table: &str,
    column: &str,
    make: impl FnOnce(&ArrayRef) -> (Field, ArrayRef),
) {
    let data = bytes_of(files, table, "parquet");
    let batches: Vec<RecordBatch> =
        ParquetRecordBatchReaderBuilder::try_new(Bytes::from(data.clone()))
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let idx = all.schema().index_of(column).unwrap();
    let (field, new) = make(all.column(idx));
    let mut fields: Vec<Field> = all
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[idx] = field.with_nullable(all.schema().field(idx).is_nullable());
    let mut columns = all.columns().to_vec();
    columns[idx] = new;
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    *data = out;
}

fn without_column(b: &RecordBatch, column: &str) -> (Vec<Field>, Vec<ArrayRef>) {
    let schema = b.schema();
    schema
        .fields()
        .iter()
        .zip(b.columns())
        .filter(|(f, _)| f.name() != column)
        .map(|(f, c)| (f.as_ref().clone(), c.clone()))
        .unzip()
}

fn as_text(b: &RecordBatch, column: &str) -> (Vec<Field>, Vec<ArrayRef>) {
    let schema = b.schema();
    schema
        .fields()
        .iter()
        .zip(b.columns())
        .map(|(f, c)| {
            if f.name() == column {
                (
                    Field::new(column, DataType::Utf8, true),
                    cast(c, &DataType::Utf8).unwrap(),
                )
            } else {
                (f.as_ref().clone(), c.clone())
            }
        })
        .unzip()
}

const ORPHAN_ID: &str = "999999999";
const FUTURE: &str = "2099-01-01 00:00:00 UTC";

fn cases() -> Vec<Case> {
    use Fmt::*;
    vec![
        Case {
            name: "missing_table",
            fmt: Csv,
            mutate: |f| {
                f.remove("users.csv");
            },
            expect: err("users", None, None, "not found"),
        },
        Case {
            name: "both_formats",
            fmt: Csv,
            mutate: |f| {
                f.insert("users.parquet".into(), b"PAR1".to_vec());
            },
            expect: err("users", None, None, "both CSV and Parquet"),
        },
        Case {
            name: "missing_column",
            fmt: Csv,
            mutate: |f| {
                edit_lines(f, "users", |lines| {
                    let idx = column_index(lines, "age");
                    for l in lines.iter_mut().filter(|l| !l.is_empty()) {
                        let mut fields = split_fields(l);
                        fields.remove(idx);
                        *l = fields.join(",");
                    }
                })
            },
            expect: err("users", Some("age"), None, "missing column"),
        },
        Case {
            name: "extra_column",
            fmt: Csv,
            mutate: |f| {
                edit_lines(f, "users", |lines| {
                    for (i, l) in lines.iter_mut().enumerate().filter(|(_, l)| !l.is_empty()) {
                        l.push_str(if i == 0 { ",loyalty_tier" } else { ",gold" });
                    }
                })
            },
            expect: err("users", Some("loyalty_tier"), None, "unexpected column"),
        },
        Case {
            name: "renamed_column",
            fmt: Csv,
            mutate: |f| set_header(f, "users", "email", "e_mail"),
            expect: err("users", Some("email"), None, "missing column"),
        },
        Case {
            name: "duplicate_column",
            fmt: Csv,
            mutate: |f| set_header(f, "users", "last_name", "first_name"),
            expect: err("users", Some("first_name"), None, "appears twice"),
        },
        Case {
            name: "wrong_type_integer",
            fmt: Csv,
            mutate: |f| set_field(f, "orders", 3, "num_of_item", "three"),
            expect: err("orders", Some("num_of_item"), Some(3), "an integer"),
        },
        Case {
            name: "wrong_type_number",
            fmt: Csv,
            mutate: |f| set_field(f, "products", 3, "retail_price", "\"12,50\""),
            expect: err("products", Some("retail_price"), Some(3), "a number"),
        },
        Case {
            name: "non_finite_number",
            fmt: Csv,
            mutate: |f| set_field(f, "order_items", 3, "sale_price", "NaN"),
            expect: err("order_items", Some("sale_price"), Some(3), "finite"),
        },
        Case {
            name: "unparseable_timestamp",
            fmt: Csv,
            mutate: |f| set_field(f, "orders", 3, "created_at", "05/01/2023 10:02"),
            expect: err("orders", Some("created_at"), Some(3), "timestamp"),
        },
        Case {
            name: "named_timezone",
            fmt: Csv,
            mutate: |f| set_field(f, "orders", 3, "created_at", "2023-01-05 10:02:03 CET"),
            expect: err("orders", Some("created_at"), Some(3), "timestamp"),
        },
        Case {
            name: "mixed_timezone_offsets",
            fmt: Csv,
            mutate: |f| {
                set_field(f, "users", 3, "created_at", "2023-01-05 12:02:03+02:00");
                set_field(f, "users", 4, "created_at", "2023-01-05T10:02:03Z");
            },
            expect: Expect::Accepted,
        },
        Case {
            name: "empty_table",
            fmt: Csv,
            mutate: |f| edit_lines(f, "events", |lines| lines.truncate(1)),
            expect: err("events", None, None, "has no rows"),
        },
        Case {
            name: "empty_file",
            fmt: Csv,
            mutate: |f| bytes_of(f, "distribution_centers", "csv").clear(),
            expect: err("distribution_centers", None, None, "empty"),
        },
        Case {
            name: "duplicate_primary_key",
            fmt: Csv,
            mutate: |f| {
                let id = get_field(f, "orders", 3, "order_id");
                set_field(f, "orders", 4, "order_id", &id);
            },
            expect: err("orders", Some("order_id"), Some(4), "duplicate key"),
        },
        Case {
            name: "null_primary_key",
            fmt: Csv,
            mutate: |f| set_field(f, "users", 3, "id", ""),
            expect: err("users", Some("id"), Some(3), "required"),
        },
        Case {
            name: "null_foreign_key",
            fmt: Csv,
            mutate: |f| set_field(f, "order_items", 3, "product_id", ""),
            expect: err("order_items", Some("product_id"), Some(3), "required"),
        },
        Case {
            name: "orphan_order_items_order_id",
            fmt: Csv,
            mutate: |f| set_field(f, "order_items", 3, "order_id", ORPHAN_ID),
            expect: repair("order_items", "orphan_order_items_order_id", 1),
        },
        Case {
            name: "orphan_orders_user_id",
            fmt: Csv,
            mutate: |f| set_field(f, "orders", 3, "user_id", ORPHAN_ID),
            expect: repair("orders", "orphan_orders_user_id", 1),
        },
        Case {
            name: "orphan_events_user_id",
            fmt: Csv,
            mutate: |f| set_field(f, "events", 3, "user_id", ORPHAN_ID),
            expect: repair("events", "orphan_events_user_id", 1),
        },
        Case {
            name: "created_after_run_date",
            fmt: Csv,
            mutate: |f| set_field(f, "events", 3, "created_at", FUTURE),
            expect: repair("events", "rows_dropped_created_after_run_date", 1),
        },
        Case {
            name: "fact_after_run_date",
            fmt: Csv,
            mutate: |f| set_field(f, "orders", 3, "shipped_at", FUTURE),
            expect: repair("orders", "timestamps_nulled_after_run_date", 1),
        },
        Case {
            name: "negative_price",
            fmt: Csv,
            mutate: |f| set_field(f, "order_items", 3, "sale_price", "-4.5"),
            expect: err("order_items", Some("sale_price"), Some(3), "negative"),
        },
        Case {
            name: "negative_cost",
            fmt: Csv,
            mutate: |f| set_field(f, "products", 3, "cost", "-1"),
            expect: err("products", Some("cost"), Some(3), "negative"),
        },
        Case {
            name: "parquet_nan_price",
            fmt: Parquet,
            mutate: |f| set_parquet_float(f, "order_items", 3, "sale_price", f64::NAN),
            expect: err(
                "order_items",
                Some("sale_price"),
                Some(3),
                "non-finite value NaN",
            ),
        },
        Case {
            name: "parquet_infinite_cost",
            fmt: Parquet,
            mutate: |f| set_parquet_float(f, "inventory_items", 3, "cost", f64::INFINITY),
            expect: err(
                "inventory_items",
                Some("cost"),
                Some(3),
                "non-finite value inf",
            ),
        },
        Case {
            name: "price_above_limit",
            fmt: Csv,
            mutate: |f| set_field(f, "products", 3, "retail_price", "1000000000000"),
            expect: err(
                "products",
                Some("retail_price"),
                Some(3),
                "above the limit 1e9",
            ),
        },
        Case {
            name: "timestamp_before_1970",
            fmt: Csv,
            mutate: |f| set_field(f, "orders", 3, "created_at", "1969-12-31 23:59:59 UTC"),
            expect: err("orders", Some("created_at"), Some(3), "before 1970-01-01"),
        },
        Case {
            name: "parquet_timestamp_beyond_microseconds",
            fmt: Parquet,
            // 10^15 seconds (year ~31.7 million) in a seconds column: as microseconds it
            // overflows i64, which Arrow's cast would turn into a null shipment date.
            mutate: |f| set_parquet_seconds(f, "orders", 3, "shipped_at", 1_000_000_000_000_000),
            expect: err(
                "orders",
                Some("shipped_at"),
                Some(3),
                "cannot be represented",
            ),
        },
        Case {
            name: "age_out_of_range",
            fmt: Csv,
            mutate: |f| set_field(f, "users", 3, "age", "9223372036854775807"),
            expect: err("users", Some("age"), Some(3), "outside 0..=150"),
        },
        Case {
            name: "longitude_out_of_range",
            fmt: Csv,
            mutate: |f| set_field(f, "users", 3, "longitude", "540"),
            expect: err("users", Some("longitude"), Some(3), "outside -180..=180"),
        },
        Case {
            name: "parquet_nan_latitude",
            fmt: Parquet,
            mutate: |f| set_parquet_float(f, "distribution_centers", 3, "latitude", f64::NAN),
            expect: err(
                "distribution_centers",
                Some("latitude"),
                Some(3),
                "non-finite value NaN",
            ),
        },
        Case {
            name: "negative_num_of_item",
            fmt: Csv,
            mutate: |f| set_field(f, "orders", 3, "num_of_item", "-2"),
            expect: err(
                "orders",
                Some("num_of_item"),
                Some(3),
                "outside 0..=1000000",
            ),
        },
        Case {
            name: "non_utf8_bytes",
            fmt: Csv,
            mutate: |f| {
                set_field(f, "users", 3, "first_name", "Ann^^^");
                let data = bytes_of(f, "users", "csv");
                let at = data.windows(6).position(|w| w == b"Ann^^^").unwrap();
                data[at + 3] = 0xFF;
            },
            expect: err("users", Some("first_name"), Some(3), "UTF-8"),
        },
        Case {
            name: "byte_order_mark",
            fmt: Csv,
            mutate: |f| {
                let data = bytes_of(f, "users", "csv");
                data.splice(0..0, [0xEF, 0xBB, 0xBF]);
            },
            expect: Expect::Accepted,
        },
        Case {
            name: "crlf_line_endings",
            fmt: Csv,
            mutate: |f| {
                edit_lines(f, "orders", |lines| {
                    let n = lines.len();
                    for l in lines.iter_mut().take(n - 1) {
                        l.push('\r');
                    }
                })
            },
            expect: Expect::Accepted,
        },
        Case {
            name: "quoted_newline",
            fmt: Csv,
            mutate: |f| set_field(f, "users", 3, "street_address", "\"12 Main St\nApt 4\""),
            expect: Expect::Accepted,
        },
        Case {
            name: "ragged_row",
            fmt: Csv,
            mutate: |f| {
                edit_lines(f, "orders", |lines| {
                    let mut fields = split_fields(&lines[3]);
                    fields.pop();
                    lines[3] = fields.join(",");
                })
            },
            expect: err("orders", None, Some(3), "fields"),
        },
        Case {
            name: "unterminated_quote",
            fmt: Csv,
            mutate: |f| set_field(f, "users", 3, "first_name", "\"Ann"),
            expect: err("users", None, None, "CSV"),
        },
        Case {
            name: "huge_text_field",
            fmt: Csv,
            mutate: |f| {
                let uri = format!("/{}", "a".repeat(8 << 20));
                set_field(f, "events", 3, "uri", &uri);
            },
            expect: Expect::Accepted,
        },
        Case {
            name: "huge_numeric_field",
            fmt: Csv,
            mutate: |f| {
                let n = "9".repeat(1 << 20);
                set_field(f, "orders", 3, "num_of_item", &n);
            },
            expect: err("orders", Some("num_of_item"), Some(3), "an integer"),
        },
        Case {
            name: "parquet_truncated",
            fmt: Parquet,
            mutate: |f| {
                let data = bytes_of(f, "orders", "parquet");
                data.truncate(data.len() / 2);
            },
            expect: err("orders", None, None, "Parquet"),
        },
        Case {
            name: "parquet_corrupt_pages",
            fmt: Parquet,
            mutate: |f| {
                let data = bytes_of(f, "orders", "parquet");
                let n = data.len();
                // Overwrite the middle of the data pages, keeping the footer intact.
                for b in &mut data[n / 4..n / 2] {
                    *b = 0xAA;
                }
            },
            expect: err("orders", None, None, "Parquet"),
        },
        Case {
            name: "parquet_not_parquet",
            fmt: Parquet,
            mutate: |f| *bytes_of(f, "users", "parquet") = b"id,first_name\n1,Ann\n".to_vec(),
            expect: err("users", None, None, "not a readable Parquet file"),
        },
        Case {
            name: "parquet_missing_column",
            fmt: Parquet,
            mutate: |f| rewrite_parquet(f, "products", |b| without_column(b, "brand")),
            expect: err("products", Some("brand"), None, "missing column"),
        },
        Case {
            name: "parquet_wrong_type",
            fmt: Parquet,
            mutate: |f| rewrite_parquet(f, "orders", |b| as_text(b, "num_of_item")),
            expect: err("orders", Some("num_of_item"), None, "expected Int64"),
        },
        Case {
            name: "csv_gz_and_markers_in_folder",
            fmt: Csv,
            mutate: |f| {
                // orders split in two, the second half gzip-compressed (as BigQuery writes exports),
                // with a Spark/Hadoop success marker: every row is read, the marker listed.
                let text = String::from_utf8(f.remove("orders.csv").unwrap()).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                let half = lines.len() / 2;
                let first = [&lines[..half], &[""]].concat().join("\n");
                let second = [&lines[..1], &lines[half..], &[""]].concat().join("\n");
                f.insert("orders/part-0.csv".into(), first.into_bytes());
                f.insert("orders/part-1.csv.gz".into(), gzip(second.as_bytes()));
                f.insert("orders/_SUCCESS".into(), Vec::new());
            },
            expect: Expect::Accepted,
        },
        Case {
            name: "upper_case_extension",
            fmt: Csv,
            mutate: |f| {
                let data = f.remove("users.csv").unwrap();
                f.insert("users.CSV".into(), data);
            },
            expect: Expect::Accepted,
        },
        Case {
            name: "unknown_file_in_folder",
            fmt: Csv,
            mutate: |f| {
                let data = f.remove("orders.csv").unwrap();
                f.insert("orders/part-0.csv".into(), data);
                f.insert("orders/notes.txt".into(), b"not data".to_vec());
            },
            expect: err("orders", None, None, "orders/notes.txt under"),
        },
        Case {
            name: "nested_folder",
            fmt: Csv,
            mutate: |f| {
                let data = f.remove("orders.csv").unwrap();
                f.insert("orders/2025/part-0.csv".into(), data);
            },
            expect: err("orders", None, None, "folders inside orders/"),
        },
        Case {
            name: "corrupt_gzip",
            fmt: Csv,
            mutate: |f| {
                let data = f.remove("orders.csv").unwrap();
                let mut gz = gzip(&data);
                let n = gz.len();
                gz.truncate(n / 2);
                f.insert("orders.csv.gz".into(), gz);
            },
            expect: err(
                "orders",
                None,
                None,
                "orders.csv.gz: not a readable gzip file",
            ),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Running

async fn read_all(src: &DataRoot) -> Files {
    let mut files = Files::new();
    for m in src.list("").await.unwrap() {
        let rel = src.relative(&m.location);
        let data = src.get(&rel).await.unwrap();
        files.insert(rel, data.to_vec());
    }
    files
}

async fn write_memory(files: &Files) -> DataRoot {
    let src = memory_root("bad-input-src");
    for (name, data) in files {
        src.put(name, Bytes::from(data.clone())).await.unwrap();
    }
    src
}

fn write_dir(dir: &std::path::Path, files: &Files) {
    for (name, data) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
}

async fn published_manifests(lake: &DataRoot) -> Vec<String> {
    lake.list("raw")
        .await
        .unwrap()
        .iter()
        .map(|m| lake.relative(&m.location))
        .filter(|n| n.ends_with("_manifest.json"))
        .collect()
}

/// Counters and row counts of every raw table.
async fn manifests(lake: &DataRoot) -> BTreeMap<String, (u64, BTreeMap<String, u64>)> {
    let mut out = BTreeMap::new();
    for t in Table::ALL {
        let (m, _) = Manifest::read(lake, Dataset::Raw(t), date(RUN_DATE))
            .await
            .unwrap();
        out.insert(t.name().to_string(), (m.row_count, m.counters));
    }
    out
}

fn check_message(case: &str, msg: &str, expect: &Expect) {
    let Expect::Error {
        table,
        column,
        row,
        phrase,
    } = expect
    else {
        return;
    };
    assert!(
        msg.contains(&format!("table {table}:")),
        "{case}: {msg:.500}"
    );
    if let Some(c) = column {
        assert!(msg.contains(&format!("\"{c}\"")), "{case}: {msg:.500}");
    }
    if let Some(r) = row {
        assert!(msg.contains(&format!("row {r}")), "{case}: {msg:.500}");
    }
    assert!(msg.contains(phrase), "{case}: {msg:.500}");
    assert!(msg.len() < 2000, "{case}: message of {} bytes", msg.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_corpus() {
    let run_date = date(RUN_DATE);
    let csv =
        read_all(&generated_source(300, 11, RUN_DATE, Profile::Signal, OutputFormat::Csv).await)
            .await;
    let parquet = read_all(&signal_source(300, 11, RUN_DATE).await).await;

    // The clean export: counters every repair is measured against.
    let clean_lake = memory_root("bad-input-clean");
    repurchase_extract::extract(
        &clean_lake,
        run_date,
        &Source::Files(write_memory(&csv).await),
    )
    .await
    .expect("clean export extracts");
    let clean = manifests(&clean_lake).await;

    let tmp = tempfile::tempdir().unwrap();
    let exe = binary("extract");
    let cases = cases();
    assert!(cases.len() >= 25);
    let mut names = std::collections::HashSet::new();
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/BAD_INPUT.md"),
    )
    .expect("docs/BAD_INPUT.md");

    for (i, case) in cases.iter().enumerate() {
        assert!(names.insert(case.name), "duplicate case {}", case.name);
        assert!(
            doc.contains(&format!("`{}`", case.name)),
            "case {} is not documented in docs/BAD_INPUT.md",
            case.name
        );
        let mut files = match case.fmt {
            Fmt::Csv => csv.clone(),
            Fmt::Parquet => parquet.clone(),
        };
        (case.mutate)(&mut files);

        // Library.
        let lake = memory_root("bad-input-lake");
        let res = repurchase_extract::extract(
            &lake,
            run_date,
            &Source::Files(write_memory(&files).await),
        )
        .await;
        match (&case.expect, res) {
            (Expect::Error { .. }, Err(e)) => {
                eprintln!("{}: {:.300}", case.name, e.to_string());
                assert_eq!(e.class(), ErrorClass::BadInput, "{}: {e}", case.name);
                check_message(case.name, &e.to_string(), &case.expect);
                assert!(
                    published_manifests(&lake).await.is_empty(),
                    "{}: a raw partition was published",
                    case.name
                );
            }
            (Expect::Error { .. }, Ok(o)) => panic!("{}: expected an error, got {o:?}", case.name),
            (_, Err(e)) => panic!("{}: expected success, got {e}", case.name),
            (
                Expect::Repair {
                    table,
                    counter,
                    delta,
                },
                Ok(_),
            ) => {
                let got = manifests(&lake).await;
                let before = clean[*table].1.get(*counter).copied().unwrap_or(0);
                let after = got[*table].1.get(*counter).copied().unwrap_or(0);
                assert_eq!(after, before + delta, "{}: counter {counter}", case.name);
            }
            (Expect::Accepted, Ok(_)) => {
                let got = manifests(&lake).await;
                for (t, (rows, _)) in &got {
                    assert_eq!(*rows, clean[t].0, "{}: rows of {t}", case.name);
                }
                check_values(case.name, &lake).await;
            }
        }

        // Binary: exit code 2 (or 0), never a panic, stderr naming the table and column.
        let src_dir = tmp.path().join(format!("src-{i}"));
        let lake_dir = tmp.path().join(format!("lake-{i}"));
        write_dir(&src_dir, &files);
        let out = Command::new(&exe)
            .arg("--run-date")
            .arg(RUN_DATE)
            .arg("--data-root")
            .arg(&lake_dir)
            .arg("--source")
            .arg(&src_dir)
            .env("REPURCHASE_LOG_FORMAT", "json")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        assert_ne!(code, Some(101), "{}: panicked: {stderr:.2000}", case.name);
        match &case.expect {
            Expect::Error { table, column, .. } => {
                assert_eq!(code, Some(2), "{}: {stderr:.2000}", case.name);
                assert!(stderr.contains(table), "{}: {stderr:.2000}", case.name);
                if let Some(c) = column {
                    assert!(stderr.contains(c), "{}: {stderr:.2000}", case.name);
                }
                let raw = lake_dir.join("raw");
                let published = walk(&raw)
                    .into_iter()
                    .filter(|p| p.ends_with("_manifest.json"))
                    .count();
                assert_eq!(published, 0, "{}: binary published raw data", case.name);
            }
            _ => assert_eq!(code, Some(0), "{}: {stderr:.2000}", case.name),
        }
        std::fs::remove_dir_all(&src_dir).ok();
        std::fs::remove_dir_all(&lake_dir).ok();
    }
}

/// The raw `users` rows as written.
async fn raw_users(lake: &DataRoot) -> RecordBatch {
    let data = lake
        .get(&format!(
            "{}/part-00000.parquet",
            Dataset::Raw(Table::Users).partition(date(RUN_DATE))
        ))
        .await
        .unwrap();
    let batches: Vec<RecordBatch> = parquet_batches(data);
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// Accepted quirks are read as intended: the values, not only the row counts.
async fn check_values(case: &str, lake: &DataRoot) {
    use arrow::array::{StringArray, TimestampMicrosecondArray};
    match case {
        "mixed_timezone_offsets" => {
            let users = raw_users(lake).await;
            let ts = crate::support::col::<TimestampMicrosecondArray>(&users, "created_at");
            let want = crate::fixtures::ts("2023-01-05 10:02:03");
            assert_eq!((ts.value(2), ts.value(3)), (want, want), "{case}");
        }
        "quoted_newline" => {
            let users = raw_users(lake).await;
            let street = crate::support::col::<StringArray>(&users, "street_address");
            assert_eq!(street.value(2), "12 Main St\nApt 4", "{case}");
        }
        _ => {}
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Empty inputs are refused with a message a person understands, and nothing is published: a
/// run date before the data starts (extract), and an export without a completed order
/// (build-features).
#[tokio::test]
async fn empty_inputs_are_refused_with_a_reason() {
    let files =
        read_all(&generated_source(300, 11, RUN_DATE, Profile::Signal, OutputFormat::Csv).await)
            .await;

    let lake = memory_root("bad-input-early");
    let early = date("2015-01-01");
    let e = repurchase_extract::extract(&lake, early, &Source::Files(write_memory(&files).await))
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::BadInput);
    let msg = e.to_string();
    assert!(
        msg.contains("users") && msg.contains("before the data starts"),
        "{msg}"
    );
    assert!(published_manifests(&lake).await.is_empty());

    let mut no_complete = files.clone();
    edit_lines(&mut no_complete, "orders", |lines| {
        let idx = column_index(lines, "status");
        for l in lines.iter_mut().skip(1).filter(|l| !l.is_empty()) {
            let mut fields = split_fields(l);
            if fields[idx] == "Complete" {
                fields[idx] = "Cancelled".into();
            }
            *l = fields.join(",");
        }
    });
    let lake = memory_root("bad-input-no-complete");
    let d = date(RUN_DATE);
    repurchase_extract::extract(&lake, d, &Source::Files(write_memory(&no_complete).await))
        .await
        .unwrap();
    let e = repurchase_features::build(
        &lake,
        d,
        &repurchase_features::BuildOptions::new(repurchase_features::AnchorMode::FirstOrder, 60),
    )
    .await
    .unwrap_err();
    assert_eq!(e.class(), ErrorClass::BadInput);
    assert!(e.to_string().contains("no order was Complete"), "{e}");
    assert!(
        !lake
            .exists(&Dataset::FeaturesTrain.manifest_path(d))
            .await
            .unwrap()
    );
}

/// A write that fails part-way (here the file size limit, as a full disk would) ends with a
/// clear error and exit 2, never a panic, and publishes none of the run's seven tables: the
/// manifests come last, all together.
#[tokio::test]
async fn a_failed_write_publishes_no_table_of_the_run() {
    let files =
        read_all(&generated_source(2_000, 11, RUN_DATE, Profile::Signal, OutputFormat::Csv).await)
            .await;
    let dir = tempfile::tempdir().unwrap();
    let (src, lake) = (dir.path().join("src"), dir.path().join("lake"));
    write_dir(&src, &files);
    // `ulimit -f` (KiB) makes writes past 64 KiB fail with EFBIG; SIGXFSZ is ignored so the
    // write returns the error instead of killing the process (an ignored signal stays ignored
    // across exec). The small tables fit, events and order items do not.
    let script = format!(
        "trap '' XFSZ; ulimit -f 64; exec '{}' --run-date {RUN_DATE} --source '{}' --data-root '{}'",
        binary("extract").display(),
        src.display(),
        lake.display()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .env("REPURCHASE_LOG_FORMAT", "json")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("put on"), "{stderr}");
    let root = DataRoot::open(&lake.to_string_lossy(), &Default::default()).unwrap();
    assert_eq!(published_manifests(&root).await, Vec::<String>::new());
    // The tables are staged before anything is published: the failure left neither raw data
    // nor staged files.
    assert!(!lake.join("raw").exists());
    let staged: Vec<_> = walk(&lake.join("staging"))
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    assert!(staged.is_empty(), "{staged:?}");
}

/// A rerun of a published date with a broken export fails and leaves the earlier extract of the
/// date published as it was: tables are staged, and only staged tables that are all good replace
/// the partitions.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_on_a_rerun_keeps_the_published_date() {
    let run_date = date(RUN_DATE);
    let mut files =
        read_all(&generated_source(300, 11, RUN_DATE, Profile::Signal, OutputFormat::Csv).await)
            .await;
    let lake = memory_root("bad-input-rerun");
    repurchase_extract::extract(&lake, run_date, &Source::Files(write_memory(&files).await))
        .await
        .expect("clean export extracts");
    let before = lake.list("").await.unwrap();
    // Events load last: every other table was staged when its duplicate key is found.
    edit_lines(&mut files, "events", |lines| {
        let copy = lines[1].clone();
        lines.insert(2, copy);
    });
    let e =
        repurchase_extract::extract(&lake, run_date, &Source::Files(write_memory(&files).await))
            .await
            .expect_err("a duplicate key is refused");
    assert!(e.to_string().contains("duplicate key"), "{e}");
    let after = lake.list("").await.unwrap();
    let names = |l: &[object_store::ObjectMeta]| -> Vec<(String, u64)> {
        l.iter().map(|m| (m.location.to_string(), m.size)).collect()
    };
    assert_eq!(
        names(&after),
        names(&before),
        "the published date is untouched, nothing staged"
    );
}
