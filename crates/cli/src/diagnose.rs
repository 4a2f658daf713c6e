//! `repurchase diagnose`: the business questions of the original analysis, answered from a run
//! date's raw partitions.
//!
//! The DataFusion SQL of `sql/diagnose/` computes monthly orders, customers, items and basket
//! value; the order-status mix; the traffic sources' share of sessions and of first orders; the
//! browse → cart → purchase funnel by year; and the 60-day repurchase rate of first completed
//! orders by month, sign-up channel, category of the first purchase and age band. This module
//! turns those small tables into [`Diagnostics`] (shares, Wilson intervals, the latest twelve
//! complete months against the twelve before) and publishes `diagnostics/run_date=D/` with
//! `diagnostics.json` and a self-contained page, `diagnostics.html`
//! ([`repurchase_model::report::timeline`]). Everything is a function of the raw partitions the
//! manifest lists as inputs, so a rerun gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use repurchase_contracts::params::to_value;
use repurchase_core::layout::Dataset;
use repurchase_core::manifest::InputRef;
use repurchase_core::parquet_io::register_partition;
use repurchase_core::publish::{PartitionWriter, Provenance};
use repurchase_core::run_date::DAY_US;
use repurchase_core::schema::Table;
use repurchase_core::sql::SqlFile;
use repurchase_core::{CoreError, DataRoot, RunDate, sql_file};
use repurchase_model::report::int;
use repurchase_model::report::timeline::{Panel, Role, Series, Table as PageTable, TimelineInput};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The stage name in logs, locks and manifests.
pub const STAGE: &str = "diagnose";
/// The figures' file name in the partition.
pub const REPORT_FILE: &str = "diagnostics.json";
/// The page's file name in the partition.
pub const PAGE_FILE: &str = "diagnostics.html";
/// The raw tables the queries read.
pub const INPUT_TABLES: [Table; 5] = [
    Table::Orders,
    Table::OrderItems,
    Table::Products,
    Table::Users,
    Table::Events,
];
/// The model's label horizon, in days.
pub const DEFAULT_HORIZON_DAYS: u32 = 60;
/// Months in each of the two windows a trend compares.
pub const TREND_MONTHS: usize = 12;
/// The normal quantile of the intervals' 95% two-sided coverage.
const Z95: f64 = 1.959_963_984_540_054;

/// A proportion with its Wilson score interval (95%).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// successes / trials.
    pub rate: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
}

impl Interval {
    /// The Wilson score interval of `successes` out of `trials`; `None` without trials.
    pub fn wilson(successes: u64, trials: u64) -> Option<Interval> {
        if trials == 0 {
            return None;
        }
        let n = trials as f64;
        let p = successes as f64 / n;
        let z2 = Z95 * Z95;
        let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
        let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
        // At 0 and n the bound is exactly 0 or 1; rounding would leave 1e-17 or 1 − 1e-16.
        Some(Interval {
            rate: p,
            low: if successes == 0 {
                0.0
            } else {
                (centre - half).max(0.0)
            },
            high: if successes == trials {
                1.0
            } else {
                (centre + half).min(1.0)
            },
        })
    }
}

/// One calendar month of orders (every status).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Month {
    /// "YYYY-MM" (UTC).
    pub month: String,
    /// Orders created in the month.
    pub orders: u64,
    /// Customers with an order created in the month.
    pub customers: u64,
    /// Items of those orders.
    pub items: u64,
    /// Their sale prices, in cents.
    pub cents: u64,
    /// items / orders.
    pub items_per_order: f64,
    /// Mean order value in dollars: cents / orders / 100.
    pub basket_value: f64,
}

/// A count of one key (a status, a traffic source) in one month, with its share of the month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    /// "YYYY-MM" (UTC).
    pub month: String,
    /// The status or source.
    pub key: String,
    /// Orders, sessions or first orders.
    pub count: u64,
    /// count / the month's total over all keys.
    pub share: f64,
}

/// The web funnel of one calendar year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelYear {
    /// The year of the sessions' first event (UTC).
    pub year: i64,
    /// Sessions started in the year.
    pub sessions: u64,
    /// Sessions that viewed a product.
    pub browse: u64,
    /// Of those, sessions that added to the cart.
    pub cart: u64,
    /// Of those, sessions that bought.
    pub purchase: u64,
    /// cart / browse.
    pub cart_rate: Option<f64>,
    /// purchase / cart.
    pub purchase_rate: Option<f64>,
    /// purchase / browse.
    pub browse_to_purchase: Option<f64>,
}

/// The repurchase rate of the customers whose first completed order fell in one month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortMonth {
    /// "YYYY-MM" (UTC) of the first completed order.
    pub month: String,
    /// Customers whose first completed order it was.
    pub first_orders: u64,
    /// Of those, the ones whose horizon had closed by the end of the run date.
    pub closed: u64,
    /// Of the closed, the ones who completed another order within the horizon.
    pub repurchased: u64,
    /// repurchased / closed with its interval; `None` while no window has closed.
    pub rate: Option<Interval>,
}

/// The repurchase rate of one segment of the customers whose horizon has closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// "sign-up channel", "category of first purchase" or "age band".
    pub dimension: String,
    /// The segment, e.g. "Search", "Jeans", "25-34".
    pub value: String,
    /// Customers in it whose horizon has closed.
    pub closed: u64,
    /// Of those, the ones who repurchased.
    pub repurchased: u64,
    /// repurchased / closed with its interval.
    pub rate: Option<Interval>,
}

/// One figure over the latest [`TREND_MONTHS`] complete months against the ones before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// What is compared, e.g. "share of sessions: Organic".
    pub figure: String,
    /// Pooled over the earlier window (e.g. sessions / all sessions of those months).
    pub earlier: f64,
    /// Pooled over the latest window.
    pub recent: f64,
    /// recent − earlier.
    pub change: f64,
    /// Whether the figure is a share (printed in percent).
    pub share: bool,
}

/// Everything `repurchase diagnose` computes for a run date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// The run date whose raw partitions were read.
    pub run_date: RunDate,
    /// The repurchase horizon in days.
    pub horizon_days: u32,
    /// The months whose trends compare: the earlier window's first and last, the latest's first
    /// and last ("YYYY-MM"); empty when fewer than twice [`TREND_MONTHS`] complete months exist.
    pub trend_windows: Vec<String>,
    /// Orders, customers, items and money per month.
    pub months: Vec<Month>,
    /// Orders per month and status.
    pub status_mix: Vec<Share>,
    /// Sessions per month and traffic source.
    pub sessions_by_source: Vec<Share>,
    /// First orders per month and last-touch traffic source.
    pub first_orders_by_source: Vec<Share>,
    /// The browse → cart → purchase funnel by year.
    pub funnel: Vec<FunnelYear>,
    /// The repurchase rate by month of the first completed order.
    pub repurchase_by_month: Vec<CohortMonth>,
    /// The repurchase rate by sign-up channel, first category and age band.
    pub segments: Vec<Segment>,
    /// Every closed customer pooled.
    pub repurchase_overall: CohortMonth,
    /// The latest complete months against the ones before.
    pub trends: Vec<Trend>,
}

/// What `repurchase diagnose` published.
#[derive(Debug, Clone, Serialize)]
pub struct DiagnoseOutcome {
    /// Months with orders.
    pub months: usize,
    /// Customers whose first completed order's horizon has closed.
    pub closed_customers: u64,
    /// Their repurchase rate.
    pub repurchase_rate: Option<f64>,
    /// Where the page is.
    pub page: String,
    /// Where the figures are.
    pub report: String,
}

/// The manifest parameters of a diagnostics partition.
#[derive(Debug, Serialize)]
struct Params {
    horizon_days: u32,
    sql: Vec<&'static str>,
}

const ORDERS: SqlFile = sql_file!("diagnose/orders_by_month.sql");
const STATUS: SqlFile = sql_file!("diagnose/status_by_month.sql");
const SESSIONS: SqlFile = sql_file!("diagnose/sessions_by_source.sql");
const FIRST_ORDERS: SqlFile = sql_file!("diagnose/first_orders_by_source.sql");
const FUNNEL: SqlFile = sql_file!("diagnose/funnel_by_year.sql");
const COHORT: SqlFile = sql_file!("diagnose/cohort.sql");
const REPURCHASE_MONTH: SqlFile = sql_file!("diagnose/repurchase_by_month.sql");
const REPURCHASE_SEGMENT: SqlFile = sql_file!("diagnose/repurchase_by_segment.sql");

/// Computes the diagnostics of `run_date`'s raw partitions and publishes
/// `diagnostics/run_date=D/` (figures and page).
pub async fn diagnose(
    root: &DataRoot,
    run_date: RunDate,
    horizon_days: u32,
) -> Result<DiagnoseOutcome> {
    let (diagnostics, inputs) = compute(root, run_date, horizon_days).await?;
    let html = repurchase_model::report::timeline::render(&page(&diagnostics));
    let mut w = PartitionWriter::begin(root, Dataset::Diagnostics, run_date).await?;
    w.write_json(REPORT_FILE, &diagnostics).await?;
    w.write_bytes(PAGE_FILE, html.into_bytes().into()).await?;
    let overall = &diagnostics.repurchase_overall;
    w.commit(Provenance {
        stage: STAGE,
        parameters: to_value(&Params {
            horizon_days,
            sql: [
                ORDERS,
                STATUS,
                SESSIONS,
                FIRST_ORDERS,
                FUNNEL,
                COHORT,
                REPURCHASE_MONTH,
                REPURCHASE_SEGMENT,
            ]
            .iter()
            .map(|q| q.name)
            .collect(),
        })?,
        schema: None,
        inputs,
        counters: BTreeMap::from([
            ("months".to_string(), diagnostics.months.len() as u64),
            ("first_orders".to_string(), overall.first_orders),
            ("closed_customers".to_string(), overall.closed),
            ("repurchased".to_string(), overall.repurchased),
        ]),
    })
    .await?;
    let partition = Dataset::Diagnostics.partition(run_date);
    Ok(DiagnoseOutcome {
        months: diagnostics.months.len(),
        closed_customers: overall.closed,
        repurchase_rate: overall.rate.map(|r| r.rate),
        page: root.url(&format!("{partition}/{PAGE_FILE}")),
        report: root.url(&format!("{partition}/{REPORT_FILE}")),
    })
}

/// Runs the queries over `run_date`'s raw partitions; returns the figures and the partitions read.
pub async fn compute(
    root: &DataRoot,
    run_date: RunDate,
    horizon_days: u32,
) -> Result<(Diagnostics, Vec<InputRef>)> {
    let ctx = SessionContext::new();
    let mut inputs = Vec::new();
    for table in INPUT_TABLES {
        let (_, input) =
            register_partition(&ctx, root, Dataset::Raw(table), run_date, table.name()).await?;
        inputs.push(input);
    }
    let months = rows(&ctx, ORDERS, vec![])
        .await?
        .iter()
        .map(|r| {
            let orders = r.int("orders")?;
            let items = r.int("items")?;
            let cents = r.int("cents")?;
            Ok(Month {
                month: r.month()?,
                orders,
                customers: r.int("customers")?,
                items,
                cents,
                items_per_order: ratio(items, orders),
                basket_value: ratio(cents, orders) / 100.0,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let status_mix = shares(&rows(&ctx, STATUS, vec![]).await?, "status", "orders")?;
    let sessions_by_source = shares(&rows(&ctx, SESSIONS, vec![]).await?, "source", "sessions")?;
    let first_orders_by_source = shares(
        &rows(&ctx, FIRST_ORDERS, vec![]).await?,
        "source",
        "first_orders",
    )?;
    let funnel = rows(&ctx, FUNNEL, vec![])
        .await?
        .iter()
        .map(|r| {
            let (browse, cart, purchase) = (r.int("browse")?, r.int("cart")?, r.int("purchase")?);
            Ok(FunnelYear {
                year: r.signed("year")?,
                sessions: r.int("sessions")?,
                browse,
                cart,
                purchase,
                cart_rate: (browse > 0).then(|| ratio(cart, browse)),
                purchase_rate: (cart > 0).then(|| ratio(purchase, cart)),
                browse_to_purchase: (browse > 0).then(|| ratio(purchase, browse)),
            })
        })
        .collect::<Result<Vec<_>>>()?;

    let params = vec![
        (
            "run_end_us",
            ScalarValue::Int64(Some(run_date.end_exclusive_micros())),
        ),
        (
            "horizon_us",
            ScalarValue::Int64(Some(i64::from(horizon_days) * DAY_US)),
        ),
    ];
    // The cohort is read by two queries; materialised once (one row per customer, seven columns).
    let cohort = COHORT
        .dataframe(&ctx, params)
        .await?
        .cache()
        .await
        .map_err(|e| CoreError::query(COHORT.name, e))?;
    ctx.register_table("cohort", cohort.into_view())
        .map_err(|e| CoreError::query(COHORT.name, e))?;
    let repurchase_by_month = rows(&ctx, REPURCHASE_MONTH, vec![])
        .await?
        .iter()
        .map(|r| {
            let (closed, repurchased) = (r.int("closed")?, r.int("repurchased")?);
            Ok(CohortMonth {
                month: r.month()?,
                first_orders: r.int("first_orders")?,
                closed,
                repurchased,
                rate: Interval::wilson(repurchased, closed),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let segments = rows(&ctx, REPURCHASE_SEGMENT, vec![])
        .await?
        .iter()
        .map(|r| {
            let (closed, repurchased) = (r.int("closed")?, r.int("repurchased")?);
            Ok(Segment {
                dimension: r.text("dimension")?,
                value: r.text("value")?,
                closed,
                repurchased,
                rate: Interval::wilson(repurchased, closed),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let (first_orders, closed, repurchased) =
        repurchase_by_month.iter().fold((0, 0, 0), |(f, c, r), m| {
            (f + m.first_orders, c + m.closed, r + m.repurchased)
        });
    let repurchase_overall = CohortMonth {
        month: "all".into(),
        first_orders,
        closed,
        repurchased,
        rate: Interval::wilson(repurchased, closed),
    };

    let mut d = Diagnostics {
        run_date,
        horizon_days,
        trend_windows: Vec::new(),
        months,
        status_mix,
        sessions_by_source,
        first_orders_by_source,
        funnel,
        repurchase_by_month,
        segments,
        repurchase_overall,
        trends: Vec::new(),
    };
    if let Some((earlier, recent)) = trend_windows(&d.months, run_date) {
        d.trend_windows = vec![
            earlier[0].clone(),
            earlier[TREND_MONTHS - 1].clone(),
            recent[0].clone(),
            recent[TREND_MONTHS - 1].clone(),
        ];
        d.trends = trends(&d, &earlier, &recent);
    }
    Ok((d, inputs))
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// One row of a query's result, read by column name with the query named in every error.
struct Row<'b> {
    query: &'static str,
    batch: &'b RecordBatch,
    i: usize,
}

impl Row<'_> {
    fn bad(&self, column: &str, what: &str) -> CoreError {
        CoreError::BadTable {
            table: self.query.to_string(),
            message: format!("column {column}, row {}: {what}", self.i),
        }
    }

    fn signed(&self, column: &str) -> Result<i64> {
        let c = self
            .batch
            .column_by_name(column)
            .ok_or_else(|| self.bad(column, "missing"))?;
        let c = arrow::compute::cast(c, &DataType::Int64)
            .map_err(|e| self.bad(column, &format!("not an integer ({e})")))?;
        let c = c.as_primitive::<Int64Type>();
        if c.is_null(self.i) {
            return Err(self.bad(column, "null").into());
        }
        Ok(c.value(self.i))
    }

    fn int(&self, column: &str) -> Result<u64> {
        let v = self.signed(column)?;
        u64::try_from(v).map_err(|_| self.bad(column, &format!("negative count {v}")).into())
    }

    fn text(&self, column: &str) -> Result<String> {
        let c = self
            .batch
            .column_by_name(column)
            .ok_or_else(|| self.bad(column, "missing"))?;
        let c = arrow::compute::cast(c, &DataType::Utf8)
            .map_err(|e| self.bad(column, &format!("not text ({e})")))?;
        let c = c.as_string::<i32>();
        if c.is_null(self.i) {
            return Err(self.bad(column, "null").into());
        }
        Ok(c.value(self.i).to_string())
    }

    /// The `month` column (year * 100 + month) as "YYYY-MM".
    fn month(&self) -> Result<String> {
        let v = self.signed("month")?;
        let (y, m) = (v / 100, v % 100);
        if !(1..=12).contains(&m) {
            return Err(self
                .bad("month", &format!("{v} is not a year * 100 + month"))
                .into());
        }
        Ok(format!("{y:04}-{m:02}"))
    }
}

/// Runs one query and returns its batches (small: one row per month, key or segment).
async fn rows(
    ctx: &SessionContext,
    query: SqlFile,
    params: Vec<(&str, ScalarValue)>,
) -> Result<QueryRows> {
    let batches = query
        .dataframe(ctx, params)
        .await?
        .collect()
        .await
        .map_err(|e| CoreError::query(query.name, e))?;
    Ok(QueryRows {
        query: query.name,
        batches,
    })
}

/// A query's result, iterated row by row.
struct QueryRows {
    query: &'static str,
    batches: Vec<RecordBatch>,
}

impl QueryRows {
    fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        self.batches.iter().flat_map(move |batch| {
            (0..batch.num_rows()).map(move |i| Row {
                query: self.query,
                batch,
                i,
            })
        })
    }
}

/// (month, key, count) rows with each count's share of its month.
fn shares(rows: &QueryRows, key: &str, count: &str) -> Result<Vec<Share>> {
    let mut out = Vec::new();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for r in rows.iter() {
        let (month, c) = (r.month()?, r.int(count)?);
        *totals.entry(month.clone()).or_default() += c;
        out.push(Share {
            month,
            key: r.text(key)?,
            count: c,
            share: 0.0,
        });
    }
    for s in &mut out {
        s.share = ratio(s.count, totals[&s.month]);
    }
    Ok(out)
}

/// Whether a "YYYY-MM" month is over by the end of the run date (the run date is on or after its
/// last day).
fn month_complete(month: &str, run_date: RunDate) -> bool {
    let Ok(first) = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d") else {
        return false;
    };
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    run_date.date() >= next.pred_opt().unwrap_or(next)
}

/// The two windows of [`TREND_MONTHS`] consecutive complete months each, the latest ending with
/// the last complete month; the first month with orders is left out (the data may start in its
/// middle). `None` when there are not enough months.
fn trend_windows(months: &[Month], run_date: RunDate) -> Option<(Vec<String>, Vec<String>)> {
    let complete: Vec<String> = months
        .iter()
        .skip(1)
        .map(|m| m.month.clone())
        .filter(|m| month_complete(m, run_date))
        .collect();
    if complete.len() < 2 * TREND_MONTHS {
        return None;
    }
    let recent = complete[complete.len() - TREND_MONTHS..].to_vec();
    let earlier =
        complete[complete.len() - 2 * TREND_MONTHS..complete.len() - TREND_MONTHS].to_vec();
    Some((earlier, recent))
}

/// Pools a share over a window: the key's count over every key's count in those months.
fn pooled_share(shares: &[Share], key: &str, window: &BTreeSet<&str>) -> f64 {
    let (mut k, mut all) = (0, 0);
    for s in shares.iter().filter(|s| window.contains(s.month.as_str())) {
        all += s.count;
        if s.key == key {
            k += s.count;
        }
    }
    ratio(k, all)
}

/// Every trend: each traffic source's share of sessions and of first orders, each status's share
/// of orders, orders per month, items per order and basket value, pooled per window.
fn trends(d: &Diagnostics, earlier: &[String], recent: &[String]) -> Vec<Trend> {
    let e: BTreeSet<&str> = earlier.iter().map(String::as_str).collect();
    let r: BTreeSet<&str> = recent.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for (label, shares) in [
        ("share of sessions", &d.sessions_by_source),
        ("share of first orders", &d.first_orders_by_source),
        ("share of orders", &d.status_mix),
    ] {
        for key in keys_by_size(shares) {
            let (a, b) = (
                pooled_share(shares, &key, &e),
                pooled_share(shares, &key, &r),
            );
            out.push(Trend {
                figure: format!("{label}: {key}"),
                earlier: a,
                recent: b,
                change: b - a,
                share: true,
            });
        }
    }
    let pooled = |w: &BTreeSet<&str>| {
        d.months
            .iter()
            .filter(|m| w.contains(m.month.as_str()))
            .fold((0, 0, 0), |(o, i, c), m| {
                (o + m.orders, i + m.items, c + m.cents)
            })
    };
    let ((o1, i1, c1), (o2, i2, c2)) = (pooled(&e), pooled(&r));
    for (figure, a, b) in [
        (
            "orders per month",
            o1 as f64 / TREND_MONTHS as f64,
            o2 as f64 / TREND_MONTHS as f64,
        ),
        ("items per order", ratio(i1, o1), ratio(i2, o2)),
        (
            "basket value ($ per order)",
            ratio(c1, o1) / 100.0,
            ratio(c2, o2) / 100.0,
        ),
    ] {
        out.push(Trend {
            figure: figure.into(),
            earlier: a,
            recent: b,
            change: b - a,
            share: false,
        });
    }
    out
}

/// The keys of a share table, the largest overall first (ties by name).
fn keys_by_size(shares: &[Share]) -> Vec<String> {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for s in shares {
        *totals.entry(s.key.as_str()).or_default() += s.count;
    }
    let mut keys: Vec<(&str, u64)> = totals.into_iter().collect();
    keys.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    keys.into_iter().map(|(k, _)| k.to_string()).collect()
}

const ROLES: [Role; 5] = [
    Role::Model,
    Role::Baseline,
    Role::Oracle,
    Role::Observed,
    Role::Other,
];

/// One line per key of a share table over the page's months.
fn share_series(shares: &[Share], months: &[String]) -> Vec<Series> {
    keys_by_size(shares)
        .into_iter()
        .enumerate()
        .map(|(i, key)| {
            let by_month: BTreeMap<&str, f64> = shares
                .iter()
                .filter(|s| s.key == key)
                .map(|s| (s.month.as_str(), s.share))
                .collect();
            // A month where the key has no row but others do is a share of 0.
            let months_with_data: BTreeSet<&str> =
                shares.iter().map(|s| s.month.as_str()).collect();
            Series {
                values: months
                    .iter()
                    .map(|m| {
                        by_month
                            .get(m.as_str())
                            .copied()
                            .or_else(|| months_with_data.contains(m.as_str()).then_some(0.0))
                    })
                    .collect(),
                name: key,
                role: ROLES[i % ROLES.len()],
            }
        })
        .collect()
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn pct_opt(v: Option<f64>) -> String {
    v.map_or("–".into(), pct)
}

fn interval_cells(rate: Option<Interval>) -> [String; 2] {
    match rate {
        Some(r) => [pct(r.rate), format!("{} – {}", pct(r.low), pct(r.high))],
        None => ["–".into(), "–".into()],
    }
}

/// The page: monthly panels over every month with orders, tables of the trends, the funnel and
/// the segments.
pub fn page(d: &Diagnostics) -> TimelineInput {
    let months: Vec<String> = d.months.iter().map(|m| m.month.clone()).collect();
    let horizon = d.horizon_days;
    let by_month = |f: &dyn Fn(&Month) -> f64| -> Vec<Option<f64>> {
        d.months.iter().map(|m| Some(f(m))).collect()
    };
    let cohort: BTreeMap<&str, &CohortMonth> = d
        .repurchase_by_month
        .iter()
        .map(|c| (c.month.as_str(), c))
        .collect();
    let rate = |f: &dyn Fn(&Interval) -> f64| -> Vec<Option<f64>> {
        months
            .iter()
            .map(|m| cohort.get(m.as_str()).and_then(|c| c.rate).map(|r| f(&r)))
            .collect()
    };
    let panels = vec![
        Panel {
            id: "orders".into(),
            title: "Orders and customers per month".into(),
            y_title: "per month".into(),
            percent: false,
            from_zero: true,
            series: vec![
                Series {
                    name: "orders".into(),
                    role: Role::Model,
                    values: by_month(&|m| m.orders as f64),
                },
                Series {
                    name: "customers ordering".into(),
                    role: Role::Baseline,
                    values: by_month(&|m| m.customers as f64),
                },
            ],
            caption: "Orders of every status by the month they were created (UTC); the first and \
                      the run date's month may be partial."
                .into(),
        },
        Panel {
            id: "repurchase-rate".into(),
            title: format!(
                "Repurchase within {horizon} days of the first completed order, by its month"
            ),
            y_title: "repurchase rate".into(),
            percent: true,
            from_zero: true,
            series: vec![
                Series {
                    name: "repurchase rate".into(),
                    role: Role::Model,
                    values: rate(&|r| r.rate),
                },
                Series {
                    name: "95% interval, low".into(),
                    role: Role::Oracle,
                    values: rate(&|r| r.low),
                },
                Series {
                    name: "95% interval, high".into(),
                    role: Role::Oracle,
                    values: rate(&|r| r.high),
                },
            ],
            caption: format!(
                "Customers whose first completed order fell in the month and whose {horizon}-day \
                 window had closed by the run date; the share who completed another order within \
                 it (Wilson interval). The last months are not yet known."
            ),
        },
        Panel {
            id: "status-mix".into(),
            title: "Order-status mix".into(),
            y_title: "share of the month's orders".into(),
            percent: true,
            from_zero: true,
            series: share_series(&d.status_mix, &months),
            caption: "Statuses as of the run date: recent orders are still Processing or Shipped."
                .into(),
        },
        Panel {
            id: "sessions-by-source".into(),
            title: "Traffic sources' share of web sessions".into(),
            y_title: "share of sessions".into(),
            percent: true,
            from_zero: true,
            series: share_series(&d.sessions_by_source, &months),
            caption: "Sessions (signed in or not) by the month of their first event.".into(),
        },
        Panel {
            id: "first-orders-by-source".into(),
            title: "Traffic sources' share of first orders".into(),
            y_title: "share of first orders".into(),
            percent: true,
            from_zero: true,
            series: share_series(&d.first_orders_by_source, &months),
            caption: "Each customer's first order, attributed to the traffic source of their last \
                      purchase session at or before it."
                .into(),
        },
        Panel {
            id: "items-per-order".into(),
            title: "Items per order".into(),
            y_title: "items".into(),
            percent: false,
            from_zero: false,
            series: vec![Series {
                name: "items per order".into(),
                role: Role::Model,
                values: by_month(&|m| m.items_per_order),
            }],
            caption: "Order items over orders, every status, by the orders' month.".into(),
        },
        Panel {
            id: "basket-value".into(),
            title: "Basket value".into(),
            y_title: "$ per order".into(),
            percent: false,
            from_zero: false,
            series: vec![Series {
                name: "mean order value".into(),
                role: Role::Model,
                values: by_month(&|m| m.basket_value),
            }],
            caption: "Sum of the items' sale prices over orders, by the orders' month.".into(),
        },
    ];

    let mut tables = Vec::new();
    if let [e0, e1, r0, r1] = d.trend_windows.as_slice() {
        tables.push(PageTable {
            caption: format!("The latest {TREND_MONTHS} complete months ({r0} … {r1}) against the {TREND_MONTHS} before ({e0} … {e1})"),
            header: vec![
                "figure".into(),
                "earlier".into(),
                "latest".into(),
                "change".into(),
            ],
            rows: d
                .trends
                .iter()
                .map(|t| {
                    if t.share {
                        vec![
                            t.figure.clone(),
                            pct(t.earlier),
                            pct(t.recent),
                            format!("{:+.1} pp", t.change * 100.0),
                        ]
                    } else {
                        vec![
                            t.figure.clone(),
                            format!("{:.2}", t.earlier),
                            format!("{:.2}", t.recent),
                            format!("{:+.2}", t.change),
                        ]
                    }
                })
                .collect(),
        });
    }
    tables.push(PageTable {
        caption: "Browse → cart → purchase, sessions by year of their first event".into(),
        header: vec![
            "year".into(),
            "sessions".into(),
            "viewed a product".into(),
            "and added to cart".into(),
            "and bought".into(),
            "cart / view".into(),
            "bought / cart".into(),
            "bought / view".into(),
        ],
        rows: d
            .funnel
            .iter()
            .map(|f| {
                vec![
                    f.year.to_string(),
                    int(f.sessions),
                    int(f.browse),
                    int(f.cart),
                    int(f.purchase),
                    pct_opt(f.cart_rate),
                    pct_opt(f.purchase_rate),
                    pct_opt(f.browse_to_purchase),
                ]
            })
            .collect(),
    });
    let dimensions: Vec<&str> = {
        let mut seen = Vec::new();
        for s in &d.segments {
            if !seen.contains(&s.dimension.as_str()) {
                seen.push(s.dimension.as_str());
            }
        }
        seen
    };
    for dim in dimensions {
        let mut segs: Vec<&Segment> = d.segments.iter().filter(|s| s.dimension == dim).collect();
        segs.sort_by(|a, b| b.closed.cmp(&a.closed).then(a.value.cmp(&b.value)));
        tables.push(PageTable {
            caption: format!("Repurchase within {horizon} days by {dim}"),
            header: vec![
                dim.to_string(),
                "customers (window closed)".into(),
                "repurchased".into(),
                "rate".into(),
                "95% interval".into(),
            ],
            rows: segs
                .iter()
                .map(|s| {
                    let [rate, interval] = interval_cells(s.rate);
                    vec![
                        s.value.clone(),
                        int(s.closed),
                        int(s.repurchased),
                        rate,
                        interval,
                    ]
                })
                .collect(),
        });
    }

    let o = &d.repurchase_overall;
    let [rate, interval] = interval_cells(o.rate);
    let orders: u64 = d.months.iter().map(|m| m.orders).sum();
    TimelineInput {
        title: format!("The Look: business diagnostics, {}", d.run_date),
        points: "months with orders".into(),
        facts_heading: "The data".into(),
        facts: vec![
            ("run date".into(), d.run_date.to_string()),
            (
                "months".into(),
                match (months.first(), months.last()) {
                    (Some(a), Some(b)) => format!("{a} … {b} ({})", months.len()),
                    _ => "none".into(),
                },
            ),
            ("orders".into(), int(orders)),
            (
                "customers with a completed order".into(),
                int(o.first_orders),
            ),
            (
                format!("of those, {horizon}-day window closed"),
                int(o.closed),
            ),
            (
                format!("repurchase within {horizon} days"),
                format!("{rate} (95% interval {interval})"),
            ),
        ],
        x_title: "month (UTC)".into(),
        x_labels: months,
        panels,
        tables,
        notes: vec![
            format!(
                "Computed by `repurchase diagnose` from the raw partitions of {} with the SQL of \
                 sql/diagnose/; the figures are in {REPORT_FILE} beside this page.",
                d.run_date
            ),
            "A repurchase is another Complete order created after the customer's first Complete \
             order and within the horizon, as in the model's labels; statuses are those of the \
             run date."
                .into(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_textbook_values() {
        // 20 successes of 100: Wilson 95% interval 0.1333 … 0.2888.
        let i = Interval::wilson(20, 100).unwrap();
        assert!((i.rate - 0.2).abs() < 1e-12);
        assert!((i.low - 0.133_367).abs() < 1e-5, "{}", i.low);
        assert!((i.high - 0.288_829).abs() < 1e-5, "{}", i.high);
        // Never outside [0, 1], and defined at 0 and n.
        let z = Interval::wilson(0, 10).unwrap();
        assert!(z.low == 0.0 && z.high > 0.2 && z.high < 0.35, "{z:?}");
        let a = Interval::wilson(10, 10).unwrap();
        assert!(a.high == 1.0 && a.low < 0.8, "{a:?}");
        assert_eq!(Interval::wilson(0, 0), None);
    }

    #[test]
    fn a_month_is_complete_from_its_last_day_on() {
        let d = |s: &str| s.parse::<RunDate>().unwrap();
        assert!(month_complete("2025-06", d("2025-06-30")));
        assert!(!month_complete("2025-06", d("2025-06-29")));
        assert!(month_complete("2024-02", d("2024-02-29")));
        assert!(!month_complete("2024-02", d("2024-02-28")));
        assert!(month_complete("2024-12", d("2025-01-01")));
    }

    fn month(m: &str, orders: u64) -> Month {
        Month {
            month: m.into(),
            orders,
            customers: orders,
            items: 2 * orders,
            cents: 1000 * orders,
            items_per_order: 2.0,
            basket_value: 10.0,
        }
    }

    #[test]
    fn trend_windows_skip_the_first_and_the_unfinished_month() {
        let d = "2025-06-15".parse::<RunDate>().unwrap();
        // 2023-05 … 2025-06: the first (2023-05) and the last (2025-06, unfinished) are left out,
        // which leaves 2023-06 … 2025-05: 24 months.
        let mut months = Vec::new();
        let mut m = chrono::NaiveDate::from_ymd_opt(2023, 5, 1).unwrap();
        while m <= chrono::NaiveDate::from_ymd_opt(2025, 6, 1).unwrap() {
            months.push(month(&m.format("%Y-%m").to_string(), 10));
            m = m.checked_add_months(chrono::Months::new(1)).unwrap();
        }
        let (earlier, recent) = trend_windows(&months, d).unwrap();
        assert_eq!(earlier.first().unwrap(), "2023-06");
        assert_eq!(earlier.last().unwrap(), "2024-05");
        assert_eq!(recent.first().unwrap(), "2024-06");
        assert_eq!(recent.last().unwrap(), "2025-05");
        assert!(trend_windows(&months[1..], d).is_none());
    }

    #[test]
    fn pooled_shares_weigh_months_by_their_counts() {
        let s = |m: &str, k: &str, c: u64| Share {
            month: m.into(),
            key: k.into(),
            count: c,
            share: c as f64 / 100.0,
        };
        let shares = vec![
            s("2025-01", "Organic", 10),
            s("2025-01", "Email", 90),
            s("2025-02", "Organic", 1),
            s("2025-02", "Email", 0),
        ];
        let w: BTreeSet<&str> = ["2025-01", "2025-02"].into();
        // 11 of 101, not the mean of 10% and 100%.
        assert!((pooled_share(&shares, "Organic", &w) - 11.0 / 101.0).abs() < 1e-15);
        assert_eq!(keys_by_size(&shares), vec!["Email", "Organic"]);
        // Months with rows for other keys only count as 0, months without any as not measured.
        let months = vec!["2025-01".to_string(), "2025-02".into(), "2025-03".into()];
        let mut shares = shares;
        shares.pop();
        let series = share_series(&shares, &months);
        assert_eq!(series[0].name, "Email");
        assert_eq!(series[0].values, vec![Some(0.9), Some(0.0), None]);
    }
}
