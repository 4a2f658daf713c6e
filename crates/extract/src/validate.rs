//! Checks and point-in-time repairs applied to a loaded table before it is written.
//!
//! - Keys and required columns must be present: a null is an error naming the row.
//! - Primary keys must be unique: a duplicate is an error naming both rows.
//! - Prices and costs must be finite numbers in `0..=`[`MAX_MONEY`]: a negative, NaN, infinite or
//!   larger value is an error naming column and row (a CSV field spelling NaN or inf is already
//!   refused when parsed; Parquet carries such floats as they are).
//! - Values at the edge of their types: timestamps before 1970 (which would overflow as
//!   nanoseconds downstream), non-finite floats, and ages, coordinates and item counts outside
//!   their meaning ([`bounded_columns`]) are errors naming column and row.
//! - Rows created at or after the end of the run date are dropped (counted): a backfill for an
//!   earlier date must not see later rows. A run date that leaves no user or no order is an
//!   error (the run date is before the data starts), not seven empty tables.
//! - Later facts about earlier rows are rolled back (counted): a shipment, delivery, return or sale
//!   timestamped after the run date is nulled, and an order's or item's status is set back to what
//!   it was at the end of the run date (Returned → Complete → Shipped → Processing).
//! - For orders, how long after creation the facts that settle a label arrive: the delivery lag
//!   (`created_at` → `delivered_at`) and the return lag (`created_at` → `returned_at`) as of the run
//!   date, recorded as whole hours (`delivery_lag_hours_p50/p99/max`, `return_lag_hours_…`).
//!   `build-features` copies them into its manifest next to the `--settle-days` it labelled with.
//! - Foreign keys without a parent row ([`FOREIGN_KEYS`]) are kept and counted per child column as
//!   `orphan_<table>_<column>`; docs/BAD_INPUT.md lists every outcome.
//!
//! Every check but the orphan counts looks at one batch at a time ([`Validator`]); what spans the
//! whole table is kept compact: the keys in bitmaps, the lags in histograms.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::compute::filter_record_batch;
use repurchase_core::CoreError;
use repurchase_core::schema::Table;
use roaring::RoaringTreemap;

/// Rows dropped, repaired or measured, by name (recorded in the manifest).
pub type Counters = BTreeMap<String, u64>;

fn bad(table: Table, message: String) -> CoreError {
    CoreError::BadTable {
        table: table.name().to_string(),
        message,
    }
}

fn ts_col<'a>(b: &'a RecordBatch, name: &str) -> Option<&'a TimestampMicrosecondArray> {
    b.column_by_name(name)?
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
}

/// Kept primary keys of the tables validated so far that other tables reference, for the orphan
/// counts of their children ([`FOREIGN_KEYS`]). Compressed bitmaps: TheLook's ids are dense, so
/// 74 million keys take megabytes, not the gigabytes of a hash set.
pub type KeySets = BTreeMap<Table, RoaringTreemap>;

/// Why a batch was refused: bad input, or a duplicate key whose first row the caller finds with
/// a second pass over the source ([`Validator`] keeps keys, not the rows they were seen at).
#[derive(Debug)]
pub enum Refusal {
    /// Bad input, with table, column and row.
    Bad(CoreError),
    /// Key `key` appears again at data row `row`.
    DuplicateKey {
        /// The repeated key.
        key: i64,
        /// 1-based data row of the repetition.
        row: u64,
    },
}

impl From<CoreError> for Refusal {
    fn from(e: CoreError) -> Self {
        Refusal::Bad(e)
    }
}

/// The error for a duplicate key once its first row is known.
pub fn duplicate_key(table: Table, key: i64, row: u64, first: u64) -> CoreError {
    bad(
        table,
        format!(
            "column {:?}, row {row}: duplicate key {key} (first seen at row {first})",
            table.key()
        ),
    )
}

/// Validates and repairs a table batch by batch, in source order, keeping only what the checks
/// that span the whole table need: the keys seen (uniqueness), the keys kept (for the orphan
/// counts of later tables), the counters and the lag histograms. Memory does not grow with the
/// rows but for the key bitmaps.
pub struct Validator<'a> {
    table: Table,
    run_end_us: i64,
    parents: &'a KeySets,
    rows_read: u64,
    written: u64,
    dropped: u64,
    nulled: u64,
    rolled_back: u64,
    lags: (LagHistogram, LagHistogram),
    seen: RoaringTreemap,
    kept: RoaringTreemap,
    /// Orphans per foreign-key column of this table whose parent is in `parents`.
    orphans: Vec<(&'static str, Table, u64)>,
}

impl<'a> Validator<'a> {
    /// A validator for `table` as of `run_end_us`; `parents` holds the kept keys of the tables
    /// validated before (parents come first: [`LOAD_ORDER`]).
    pub fn new(table: Table, run_end_us: i64, parents: &'a KeySets) -> Self {
        Validator {
            table,
            run_end_us,
            parents,
            rows_read: 0,
            written: 0,
            dropped: 0,
            nulled: 0,
            rolled_back: 0,
            lags: (LagHistogram::default(), LagHistogram::default()),
            seen: RoaringTreemap::new(),
            kept: RoaringTreemap::new(),
            orphans: FOREIGN_KEYS
                .iter()
                .filter(|(t, _, p)| *t == table && parents.contains_key(p))
                .map(|&(_, col, parent)| (col, parent, 0))
                .collect(),
        }
    }

    /// Checks the next batch (its rows numbered after every row before it) and repairs it as of
    /// the run date; returns the rows to write (possibly none).
    pub fn push(&mut self, b: RecordBatch) -> Result<RecordBatch, Refusal> {
        let table = self.table;
        let row0 = self.rows_read;
        self.rows_read += b.num_rows() as u64;
        check_required(table, &b, row0)?;
        self.check_unique_key(&b, row0)?;
        check_money(table, &b, row0)?;
        check_ranges(table, &b, row0)?;

        let b = match table.time_column() {
            Some(col) => {
                let ts = ts_col(&b, col)
                    .ok_or_else(|| bad(table, format!("{col} is not a timestamp")))?;
                let run_end_us = self.run_end_us;
                let keep: BooleanArray = ts
                    .iter()
                    .map(|v| Some(v.is_some_and(|t| t < run_end_us)))
                    .collect();
                let kept = filter_record_batch(&b, &keep).map_err(|e| bad(table, e.to_string()))?;
                self.dropped += (b.num_rows() - kept.num_rows()) as u64;
                kept
            }
            None => b,
        };
        let (b, n, r) = roll_back_later_facts(table, b, self.run_end_us)?;
        self.nulled += n;
        self.rolled_back += r;
        if table == Table::Orders {
            self.lags.0.add_lags(&b, "delivered_at")?;
            self.lags.1.add_lags(&b, "returned_at")?;
        }
        self.count_orphans(&b)?;
        if is_parent(table) {
            for key in int_column(table, &b, table.key())?.iter().flatten() {
                self.kept.insert(key as u64);
            }
        }
        self.written += b.num_rows() as u64;
        Ok(b)
    }

    /// The table's counters (and its kept keys when other tables reference it), once every
    /// batch has been pushed.
    pub fn finish(self) -> Result<(Counters, Option<RoaringTreemap>), CoreError> {
        let table = self.table;
        if self.rows_read == 0 {
            return Err(bad(table, "has no rows".into()));
        }
        // Without customers or orders there is nothing to build features from; publishing seven
        // empty tables would only move the failure to the next stage.
        if self.written == 0 && matches!(table, Table::Users | Table::Orders) {
            return Err(bad(
                table,
                format!(
                    "no row was created before {} (all {} rows are later): the run date is \
                     before the data starts",
                    repurchase_core::run_date::format_micros(self.run_end_us),
                    self.dropped
                ),
            ));
        }
        let mut counters = Counters::from([
            ("rows_read".to_string(), self.rows_read),
            (
                "rows_dropped_created_after_run_date".to_string(),
                self.dropped,
            ),
            ("timestamps_nulled_after_run_date".to_string(), self.nulled),
            ("statuses_rolled_back".to_string(), self.rolled_back),
            ("rows_written".to_string(), self.written),
        ]);
        if table == Table::Orders {
            counters.extend(self.lags.0.counters("delivery_lag"));
            counters.extend(self.lags.1.counters("return_lag"));
        }
        // Orphans are kept (TheLook itself has a few) and counted when there are any.
        for (col, _, n) in self.orphans.iter().filter(|o| o.2 > 0) {
            counters.insert(format!("orphan_{}_{col}", table.name()), *n);
        }
        Ok((counters, is_parent(table).then_some(self.kept)))
    }

    fn check_unique_key(&mut self, b: &RecordBatch, row0: u64) -> Result<(), Refusal> {
        let ids = int_column(self.table, b, self.table.key())?;
        for (i, v) in ids.iter().enumerate() {
            let Some(v) = v else { continue };
            if !self.seen.insert(v as u64) {
                return Err(Refusal::DuplicateKey {
                    key: v,
                    row: row0 + i as u64 + 1,
                });
            }
        }
        Ok(())
    }

    /// Counts rows whose foreign key (not null) has no kept row in the referenced table, after
    /// the point-in-time repairs.
    fn count_orphans(&mut self, b: &RecordBatch) -> Result<(), CoreError> {
        for (col, parent, n) in &mut self.orphans {
            let keys = &self.parents[parent];
            *n += int_column(self.table, b, col)?
                .iter()
                .flatten()
                .filter(|v| !keys.contains(*v as u64))
                .count() as u64;
        }
        Ok(())
    }
}

/// The order tables are loaded in: every table after the tables it references
/// ([`FOREIGN_KEYS`]), so that its orphans are counted while it streams.
pub const LOAD_ORDER: [Table; 7] = [
    Table::DistributionCenters,
    Table::Products,
    Table::InventoryItems,
    Table::Users,
    Table::Orders,
    Table::OrderItems,
    Table::Events,
];

/// Whether another table references this one's key.
fn is_parent(table: Table) -> bool {
    FOREIGN_KEYS.iter().any(|(_, _, p)| *p == table)
}

fn int_column<'b>(
    table: Table,
    b: &'b RecordBatch,
    col: &str,
) -> Result<&'b Int64Array, CoreError> {
    b.column_by_name(col)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .ok_or_else(|| bad(table, format!("column {col:?} is not an integer")))
}

/// Whole hours from an order's creation to a later fact of it, counted per hour: small (one
/// counter per distinct hour) and exact, whatever the number of orders.
#[derive(Debug, Default)]
struct LagHistogram {
    hours: BTreeMap<u64, u64>,
}

impl LagHistogram {
    /// Counts the lag `created_at` → `column` of every row where both are set (a negative lag,
    /// which only broken data has, counts as 0).
    fn add_lags(&mut self, b: &RecordBatch, column: &str) -> Result<(), CoreError> {
        let created = ts_col(b, "created_at")
            .ok_or_else(|| bad(Table::Orders, "created_at is not a timestamp".into()))?;
        let later = ts_col(b, column)
            .ok_or_else(|| bad(Table::Orders, format!("{column} is not a timestamp")))?;
        for (c, l) in created.iter().zip(later.iter()) {
            if let (Some(c), Some(l)) = (c, l) {
                let hours = (l.saturating_sub(c).max(0) / 3_600_000_000) as u64;
                *self.hours.entry(hours).or_insert(0) += 1;
            }
        }
        Ok(())
    }

    /// `<name>_orders`, and the median, 99th percentile and maximum in hours (when any).
    fn counters(&self, name: &str) -> Counters {
        let n: u64 = self.hours.values().sum();
        let mut out = Counters::from([(format!("{name}_orders"), n)]);
        if n == 0 {
            return out;
        }
        // Nearest-rank quantile: the least hour with at least ⌈q·n⌉ lags at or below it.
        let quantile = |q_permille: u64| {
            let rank = (n * q_permille).div_ceil(1000).max(1);
            let mut seen = 0;
            for (&h, &c) in &self.hours {
                seen += c;
                if seen >= rank {
                    return h;
                }
            }
            0
        };
        out.insert(format!("{name}_hours_p50"), quantile(500));
        out.insert(format!("{name}_hours_p99"), quantile(990));
        out.insert(
            format!("{name}_hours_max"),
            self.hours.keys().next_back().copied().unwrap_or(0),
        );
        out
    }
}

fn check_required(table: Table, b: &RecordBatch, row0: u64) -> Result<(), CoreError> {
    for col in table.required() {
        let c = b
            .column_by_name(col)
            .ok_or_else(|| bad(table, format!("missing column {col:?}")))?;
        if c.null_count() > 0 {
            let i = (0..c.len()).find(|i| c.is_null(*i)).unwrap_or(0);
            return Err(bad(
                table,
                format!(
                    "column {col:?}, row {}: null, but the column is required",
                    row0 + i as u64 + 1
                ),
            ));
        }
    }
    Ok(())
}

/// Price and cost columns, which must be finite, not negative and at most [`MAX_MONEY`].
fn money_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::OrderItems => &["sale_price"],
        Table::Products => &["cost", "retail_price"],
        Table::InventoryItems => &["cost", "product_retail_price"],
        _ => &[],
    }
}

/// Largest accepted price or cost, in dollars: a billion is far above any clothing price
/// (TheLook's dearest product is $999) yet its cents (1e11) are exact in f64, so build-features'
/// `CAST(ROUND(x * 100) AS BIGINT)` is exact and its sums stay below i64::MAX for 9e7 such items.
pub const MAX_MONEY: f64 = 1e9;

/// What is wrong with a money value, if anything.
fn money_problem(v: f64) -> Option<String> {
    if !v.is_finite() {
        Some(format!("non-finite value {v}"))
    } else if v < 0.0 {
        Some(format!("negative value {}", shown(v)))
    } else if v > MAX_MONEY {
        Some(format!("value {} above the limit {MAX_MONEY:e}", shown(v)))
    } else {
        None
    }
}

/// A value as typed for small magnitudes, in exponent form for huge ones (whose plain form runs to
/// hundreds of digits).
fn shown(v: f64) -> String {
    if v.abs() < 1e15 {
        v.to_string()
    } else {
        format!("{v:e}")
    }
}

fn check_money(table: Table, b: &RecordBatch, row0: u64) -> Result<(), CoreError> {
    for col in money_columns(table) {
        let c = b
            .column_by_name(col)
            .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
            .ok_or_else(|| bad(table, format!("column {col:?} is not a number")))?;
        if let Some((i, problem)) = c
            .iter()
            .enumerate()
            .find_map(|(i, v)| v.and_then(money_problem).map(|p| (i, p)))
        {
            return Err(bad(
                table,
                format!("column {col:?}, row {}: {problem}", row0 + i as u64 + 1),
            ));
        }
    }
    Ok(())
}

/// Earliest accepted timestamp, 1970-01-01 00:00:00 UTC: no record of a web store is older, and
/// the engines downstream turn microseconds into nanoseconds (whose range starts in 1677) when
/// they compute windows, where an older value would overflow.
pub const MIN_TIME_US: i64 = 0;

/// Bounds of integer and float columns whose meaning limits them (beyond money): a value outside
/// is an error naming column and row, never passed on to overflow or to a feature.
fn bounded_columns(table: Table) -> &'static [(&'static str, f64, f64)] {
    match table {
        Table::Users => &[
            ("age", 0.0, 150.0),
            ("latitude", -90.0, 90.0),
            ("longitude", -180.0, 180.0),
        ],
        Table::DistributionCenters => &[("latitude", -90.0, 90.0), ("longitude", -180.0, 180.0)],
        // TheLook's orders hold 1 to 4 items; a million is beyond any basket.
        Table::Orders => &[("num_of_item", 0.0, 1e6)],
        _ => &[],
    }
}

/// Every timestamp at or after [`MIN_TIME_US`] (later ones are the run date's business: dropped or
/// nulled and counted), every float finite, and the [`bounded_columns`] within their bounds.
fn check_ranges(table: Table, b: &RecordBatch, row0: u64) -> Result<(), CoreError> {
    let schema = table.schema();
    for field in schema.fields() {
        let col = field.name().as_str();
        let bounds = bounded_columns(table)
            .iter()
            .find(|(c, _, _)| *c == col)
            .map(|&(_, lo, hi)| (lo, hi));
        {
            let Some(c) = b.column_by_name(col) else {
                continue;
            };
            let problem = if let Some(ts) = c.as_any().downcast_ref::<TimestampMicrosecondArray>() {
                ts.iter().enumerate().find_map(|(i, v)| {
                    v.filter(|&t| t < MIN_TIME_US).map(|t| {
                        (
                            i,
                            format!(
                                "{} is before 1970-01-01 00:00:00 UTC: not a time of this store",
                                repurchase_core::run_date::format_micros(t)
                            ),
                        )
                    })
                })
            } else if let Some(f) = c.as_any().downcast_ref::<Float64Array>() {
                f.iter().enumerate().find_map(|(i, v)| {
                    let v = v?;
                    if !v.is_finite() {
                        return Some((i, format!("non-finite value {v}")));
                    }
                    let (lo, hi) = bounds?;
                    (v < lo || v > hi)
                        .then(|| (i, format!("value {} outside {lo}..={hi}", shown(v))))
                })
            } else if let Some(n) = c.as_any().downcast_ref::<Int64Array>() {
                bounds.and_then(|(lo, hi)| {
                    n.iter().enumerate().find_map(|(i, v)| {
                        let v = v?;
                        ((v as f64) < lo || (v as f64) > hi)
                            .then(|| (i, format!("value {v} outside {lo}..={hi}")))
                    })
                })
            } else {
                None
            };
            if let Some((i, problem)) = problem {
                return Err(bad(
                    table,
                    format!("column {col:?}, row {}: {problem}", row0 + i as u64 + 1),
                ));
            }
        }
    }
    Ok(())
}

/// Foreign keys checked across tables: (table, column, referenced table).
pub const FOREIGN_KEYS: [(Table, &str, Table); 8] = [
    (Table::Orders, "user_id", Table::Users),
    (Table::OrderItems, "order_id", Table::Orders),
    (Table::OrderItems, "user_id", Table::Users),
    (Table::OrderItems, "product_id", Table::Products),
    (
        Table::OrderItems,
        "inventory_item_id",
        Table::InventoryItems,
    ),
    (Table::InventoryItems, "product_id", Table::Products),
    (Table::Events, "user_id", Table::Users),
    (
        Table::Products,
        "distribution_center_id",
        Table::DistributionCenters,
    ),
];

/// Nulls timestamps after the run date and sets statuses back; returns (batch, nulled, rolled back).
fn roll_back_later_facts(
    table: Table,
    b: RecordBatch,
    run_end_us: i64,
) -> Result<(RecordBatch, u64, u64), CoreError> {
    let columns: &[&str] = match table {
        Table::Orders | Table::OrderItems => &["shipped_at", "delivered_at", "returned_at"],
        Table::InventoryItems => &["sold_at"],
        _ => return Ok((b, 0, 0)),
    };
    let schema = b.schema();
    let mut arrays: Vec<ArrayRef> = b.columns().to_vec();
    let mut nulled = 0u64;
    for name in columns {
        let idx = schema
            .index_of(name)
            .map_err(|e| bad(table, e.to_string()))?;
        let ts =
            ts_col(&b, name).ok_or_else(|| bad(table, format!("{name} is not a timestamp")))?;
        if ts.iter().flatten().any(|t| t >= run_end_us) {
            let fixed: TimestampMicrosecondArray =
                ts.iter().map(|v| v.filter(|t| *t < run_end_us)).collect();
            nulled += (fixed.null_count() - ts.null_count()) as u64;
            arrays[idx] = Arc::new(fixed.with_timezone("UTC"));
        }
    }
    let mut rolled_back = 0u64;
    if matches!(table, Table::Orders | Table::OrderItems) && nulled > 0 {
        let get = |name: &str| -> Result<TimestampMicrosecondArray, CoreError> {
            let idx = schema
                .index_of(name)
                .map_err(|e| bad(table, e.to_string()))?;
            arrays[idx]
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .cloned()
                .ok_or_else(|| bad(table, format!("{name} is not a timestamp")))
        };
        let (shipped, delivered, returned) = (
            get("shipped_at")?,
            get("delivered_at")?,
            get("returned_at")?,
        );
        let sidx = schema
            .index_of("status")
            .map_err(|e| bad(table, e.to_string()))?;
        let status = arrays[sidx]
            .as_any()
            .downcast_ref::<StringArray>()
            .cloned()
            .ok_or_else(|| bad(table, "status is not text".into()))?;
        let fixed: StringArray = (0..status.len())
            .map(|i| {
                let s = status.is_valid(i).then(|| status.value(i));
                let at_run_end = match s {
                    Some("Returned") | Some("Complete") | Some("Shipped") => {
                        Some(if returned.is_valid(i) {
                            "Returned"
                        } else if delivered.is_valid(i) {
                            "Complete"
                        } else if shipped.is_valid(i) {
                            "Shipped"
                        } else {
                            "Processing"
                        })
                    }
                    other => other,
                };
                if at_run_end != s && !(s == Some("Shipped") && at_run_end == Some("Complete")) {
                    rolled_back += 1;
                    at_run_end
                } else {
                    s
                }
            })
            .collect();
        arrays[sidx] = Arc::new(fixed);
    }
    let out = RecordBatch::try_new(schema, arrays).map_err(|e| bad(table, e.to_string()))?;
    Ok((out, nulled, rolled_back))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Builder, StringBuilder, TimestampMicrosecondBuilder};

    use repurchase_core::run_date::DAY_US as DAY;

    /// Validates whole batches as `extract` streams them (no parent tables), with the first row
    /// of a duplicate key found by scanning the batches again, as `extract` scans its source.
    fn validate(
        table: Table,
        batches: Vec<RecordBatch>,
        run_end_us: i64,
    ) -> Result<(Vec<RecordBatch>, Counters), CoreError> {
        let parents = KeySets::new();
        let mut v = Validator::new(table, run_end_us, &parents);
        let mut out = Vec::new();
        for b in batches.clone() {
            match v.push(b) {
                Ok(b) if b.num_rows() > 0 => out.push(b),
                Ok(_) => {}
                Err(Refusal::Bad(e)) => return Err(e),
                Err(Refusal::DuplicateKey { key, row }) => {
                    let keys: Vec<Option<i64>> = batches
                        .iter()
                        .flat_map(|b| int_column(table, b, table.key()).unwrap().iter())
                        .collect();
                    let first = keys.iter().position(|k| *k == Some(key)).unwrap() as u64 + 1;
                    return Err(duplicate_key(table, key, row, first));
                }
            }
        }
        Ok((out, v.finish()?.0))
    }

    #[test]
    fn parents_load_before_children_and_orphans_are_counted_against_kept_keys() {
        for (child, _, parent) in FOREIGN_KEYS {
            let pos = |t: Table| LOAD_ORDER.iter().position(|x| *x == t).unwrap();
            assert!(
                pos(parent) < pos(child),
                "{parent} must load before {child}"
            );
        }
        assert_eq!(LOAD_ORDER.len(), Table::ALL.len());
        // Orders 1 and 2 kept, order 3 dropped (created after the run date).
        let end = 100 * DAY;
        let mut parents = KeySets::new();
        let mut v = Validator::new(Table::Orders, end, &parents);
        v.push(orders(&[
            (1, "Complete", DAY, None, None, None),
            (2, "Complete", DAY, None, None, None),
            (3, "Processing", end, None, None, None),
        ]))
        .unwrap();
        let (c, kept) = v.finish().unwrap();
        assert_eq!(c["rows_dropped_created_after_run_date"], 1);
        assert!(!c.keys().any(|k| k.starts_with("orphan_")), "{c:?}");
        let kept = kept.expect("orders are referenced by order_items");
        assert_eq!(kept.iter().collect::<Vec<_>>(), [1, 2]);
        parents.insert(Table::Orders, kept);
        // Items 1..=4 all belong to order 1, 2, 3 or 4: the last two are orphans (order 3 was
        // dropped, order 4 never existed); users and products are not loaded here, so only
        // the order_id column is counted.
        let mut v = Validator::new(Table::OrderItems, end, &parents);
        let b = items(1, &[1.0, 2.0, 3.0, 4.0]);
        let mut cols = b.columns().to_vec();
        let order_idx = b.schema().index_of("order_id").unwrap();
        cols[order_idx] = Arc::new(Int64Array::from(vec![1, 2, 3, 4]));
        v.push(RecordBatch::try_new(b.schema(), cols).unwrap())
            .unwrap();
        let (c, kept) = v.finish().unwrap();
        assert_eq!(c["orphan_order_items_order_id"], 2);
        assert!(!c.contains_key("orphan_order_items_user_id"));
        assert!(kept.is_none(), "no table references order_items");
    }

    /// (order id, status, created, shipped, delivered, returned)
    type OrderRow<'a> = (i64, &'a str, i64, Option<i64>, Option<i64>, Option<i64>);

    fn orders(rows: &[OrderRow<'_>]) -> RecordBatch {
        let schema = Table::Orders.schema();
        let mut id = Int64Builder::new();
        let mut user = Int64Builder::new();
        let mut status = StringBuilder::new();
        let mut gender = StringBuilder::new();
        let mut ts: Vec<TimestampMicrosecondBuilder> = (0..4)
            .map(|_| TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            .collect();
        let mut n = Int64Builder::new();
        for (i, s, created, shipped, delivered, returned) in rows {
            id.append_value(*i);
            user.append_value(1);
            status.append_value(s);
            gender.append_value("F");
            ts[0].append_value(*created);
            ts[1].append_option(*returned);
            ts[2].append_option(*shipped);
            ts[3].append_option(*delivered);
            n.append_value(1);
        }
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(user.finish()),
            Arc::new(status.finish()),
            Arc::new(gender.finish()),
        ];
        for t in ts.iter_mut() {
            cols.push(Arc::new(t.finish()));
        }
        cols.push(Arc::new(n.finish()));
        RecordBatch::try_new(schema, cols).unwrap()
    }

    #[test]
    fn drops_later_rows_and_rolls_back_later_facts() {
        let end = 100 * DAY;
        let b = orders(&[
            (
                1,
                "Complete",
                10 * DAY,
                Some(11 * DAY),
                Some(12 * DAY),
                None,
            ),
            (
                2,
                "Returned",
                98 * DAY,
                Some(99 * DAY),
                Some(99 * DAY + 5),
                Some(101 * DAY),
            ),
            (
                3,
                "Complete",
                99 * DAY,
                Some(100 * DAY),
                Some(101 * DAY),
                None,
            ),
            (4, "Processing", end, None, None, None),
        ]);
        let (out, c) = validate(Table::Orders, vec![b], end).unwrap();
        assert_eq!(c["rows_dropped_created_after_run_date"], 1);
        assert_eq!(c["timestamps_nulled_after_run_date"], 3);
        assert_eq!(c["statuses_rolled_back"], 2);
        // Lags as of the run date: order 1 delivered after 2 days; order 2's delivery 5 µs past
        // a day counts as 24 h; order 3's delivery and order 2's return came after it.
        assert_eq!(c["delivery_lag_orders"], 2);
        assert_eq!(c["delivery_lag_hours_p50"], 24);
        assert_eq!(c["delivery_lag_hours_max"], 48);
        assert_eq!(c["delivery_lag_hours_p99"], 48);
        assert_eq!(c["return_lag_orders"], 0);
        assert!(!c.contains_key("return_lag_hours_max"));
        let status = out[0]
            .column(2)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(
            status.iter().collect::<Vec<_>>(),
            vec![Some("Complete"), Some("Complete"), Some("Processing")]
        );
    }

    #[test]
    fn duplicate_keys_are_errors_naming_rows() {
        let b = orders(&[
            (1, "Complete", 0, None, None, None),
            (1, "Complete", 1, None, None, None),
        ]);
        let err = validate(Table::Orders, vec![b], DAY)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("orders") && err.contains("row 2") && err.contains("duplicate key 1"),
            "{err}"
        );
    }

    /// One `order_items` batch of ids `first`, `first + 1`, … and the given sale prices.
    fn items(first: i64, prices: &[f64]) -> RecordBatch {
        let schema = Table::OrderItems.schema();
        let n = prices.len();
        let ids =
            || -> ArrayRef { Arc::new(Int64Array::from_iter_values(first..first + n as i64)) };
        let ts = || -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from(vec![Some(DAY); n]).with_timezone("UTC"))
        };
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "status" => Arc::new(StringArray::from(vec!["Complete"; n])) as ArrayRef,
                "sale_price" => Arc::new(Float64Array::from(prices.to_vec())),
                "created_at" | "shipped_at" | "delivered_at" | "returned_at" => ts(),
                _ => ids(),
            })
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    #[test]
    fn non_finite_and_huge_prices_are_errors_naming_column_and_row() {
        for (bad, what) in [
            (f64::NAN, "non-finite value NaN"),
            (f64::INFINITY, "non-finite value inf"),
            (f64::NEG_INFINITY, "non-finite value -inf"),
            (1e12, "value 1000000000000 above the limit 1e9"),
            (1e20, "value 1e20 above the limit 1e9"),
            (MAX_MONEY * 1.5, "value 1500000000 above the limit 1e9"),
            (-1e300, "negative value -1e300"),
        ] {
            // Row 3 of the table: the second row of the second batch.
            let batches = vec![items(1, &[1.0]), items(2, &[0.0, bad, f64::NAN])];
            let err = validate(Table::OrderItems, batches, 10 * DAY)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("table order_items:")
                    && err.contains("column \"sale_price\", row 3: ")
                    && err.contains(what),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn prices_up_to_the_limit_are_accepted() {
        let b = items(1, &[0.0, 0.01, 999.0, MAX_MONEY]);
        let (_, c) = validate(Table::OrderItems, vec![b], 10 * DAY).unwrap();
        assert_eq!(c["rows_written"], 4);
    }
}
