//! The `build-features` worker.
//!
//! Reads the raw TheLook partitions of a run date, runs `sql/features/anchors.sql` with DataFusion
//! and writes two partitions: `features/train` (anchors whose 60-day window closed at least
//! `--settle-days` before the end of the run date, with their label) and `features/score` (anchors
//! whose window is still open: the population to score, with whether they already repurchased or
//! have a repurchase on its way). Before writing, the run passes the quality gates of [`gates`].
//!
//! Settled labels: a repurchase shows as `Complete` only once delivered, days after the order was
//! created, and may still turn `Returned` after that. An anchor whose window closed in the last
//! `settle_days` is therefore in neither partition (counted as `anchors_unsettled`): labelled
//! today it could read "no repurchase" for an order still in transit. The default, 14 days, is
//! above the longest creation → delivery (8 days) and creation → return (11 days) lag of TheLook's
//! generator; the raw orders' own lags (recorded by `extract`) are copied into the manifest next
//! to it, with the labelled anchors whose window still holds an order in transit
//! (`labels_at_risk_in_transit`, the labels that may yet turn). With `--engine athena` the same logic runs in Athena
//! ([`athena`]) for lakes that outgrow one task; splitting, gates and publishing are shared.

#![warn(missing_docs, unreachable_pub)]

pub mod athena;
pub mod error;
pub mod gates;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, BooleanArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use clap::Args as ClapArgs;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;
use repurchase_athena::cli::{QueryArgs, parse_identifier};
use repurchase_athena::{AthenaSettings, Identifier};
use repurchase_contracts::FeaturesParams;
use repurchase_contracts::params::{read_params, to_value};
use repurchase_core::cli::CommonArgs;
use repurchase_core::layout::Dataset;
use repurchase_core::logging::StepTimer;
use repurchase_core::manifest::{InputRef, Manifest};
use repurchase_core::parquet_io::register_partition_with;
use repurchase_core::publish::{PartitionWriter, Provenance};
use repurchase_core::run_date::DAY_US;
use repurchase_core::schema::Table;
use repurchase_core::{CoreError, DataRoot, RunDate, StoreConfig, sql_file};
use serde::Serialize;
use tracing::info;

pub use crate::error::{FeaturesError, Result};
use crate::gates::{GateConfig, RunFigures};

/// The stage name in logs, locks and manifests.
pub const STAGE: &str = "build-features";
/// The `--help` summary of the `build-features` binary.
pub const ABOUT: &str = "Builds anchors, 60-day labels and point-in-time features for a run date.";

/// Default of `--settle-days`: above the longest creation → delivery and creation → return lags
/// of TheLook's generator (3 + 5 and 3 + 5 + 3 days).
pub const DEFAULT_SETTLE_DAYS: u32 = 14;

pub use repurchase_contracts::AnchorMode;

#[allow(missing_docs)] // clap reads doc comments here as --help text: the flags carry theirs
#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Anchors: first-order (each customer's first completed order) or every-order.
    #[arg(long, env = "REPURCHASE_ANCHOR", default_value = "first-order")]
    pub anchor: AnchorMode,

    /// Label horizon in days: a repurchase is another completed order within this many days.
    #[arg(long, env = "REPURCHASE_HORIZON_DAYS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=365))]
    pub horizon_days: u32,

    /// Days after an anchor's window closes before it is labelled: repurchases created near the
    /// end of the window must have been delivered (and any return recorded) by then.
    #[arg(long, env = "REPURCHASE_SETTLE_DAYS", default_value_t = DEFAULT_SETTLE_DAYS, value_parser = clap::value_parser!(u32).range(0..=120))]
    pub settle_days: u32,

    #[command(flatten)]
    pub gates: GateConfig,

    /// Where the feature query runs: datafusion (in this task) or athena (sql/features/
    /// anchors_athena.sql as an UNLOAD over the lake's Glue tables; needs an s3:// data root).
    #[arg(long, env = "REPURCHASE_FEATURES_ENGINE", default_value = "datafusion", value_parser = ["datafusion", "athena"])]
    pub engine: String,

    #[command(flatten)]
    pub athena: LakeAthenaArgs,
}

impl repurchase_core::cli::WorkerArgs for Args {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

/// Options of `--engine athena`.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Athena (--engine athena)")]
pub struct LakeAthenaArgs {
    /// Glue database holding the lake's raw_* tables (sql/ddl; Terraform's glue_database_name).
    #[arg(long = "athena-database", env = "REPURCHASE_LAKE_DATABASE", default_value = "repurchase", value_parser = parse_identifier)]
    pub database: Identifier,

    /// Longest the query may run before it is stopped and the task fails as transient (exit 75).
    #[arg(long = "athena-timeout-secs", env = "REPURCHASE_ATHENA_TIMEOUT_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout_secs: u64,

    #[allow(missing_docs)] // flattened: its flags carry their own help
    #[command(flatten)]
    pub query: QueryArgs,
}

impl LakeAthenaArgs {
    /// The Athena settings these flags give.
    pub fn settings(&self) -> AthenaSettings {
        self.query.settings(&self.database, self.timeout_secs)
    }
}

/// Which engine runs the feature query.
#[derive(Debug, Clone)]
pub enum Engine {
    /// DataFusion in this process over the raw Parquet partitions.
    DataFusion,
    /// Athena, over the lake's Glue tables (see [`athena`]).
    Athena {
        /// Database, workgroup, timeout and polling.
        settings: AthenaSettings,
        /// The AWS settings the client is built from.
        cfg: StoreConfig,
    },
}

/// What `build-features` published.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Anchors found (every completed order anchoring a window, by the anchor definition).
    pub anchors: u64,
    /// Labelled anchors written to `features/train`.
    pub train_rows: u64,
    /// Open anchors written to `features/score`.
    pub score_rows: u64,
    /// Anchors whose window closed but has not settled: in neither partition.
    pub unsettled_rows: u64,
    /// Labelled anchors followed by a repurchase.
    pub train_positives: u64,
}

/// Raw tables the feature query reads.
pub const INPUT_TABLES: [Table; 6] = [
    Table::Users,
    Table::Orders,
    Table::OrderItems,
    Table::Products,
    Table::Events,
    Table::DistributionCenters,
];

/// `build-features` as its binary runs it: the flags resolved, then [`build`].
pub async fn run(args: Args) -> Result<Outcome> {
    let cfg = StoreConfig::from_env();
    let root = DataRoot::open(&args.common.data_root, &cfg)?;
    let engine = match args.engine.as_str() {
        "athena" => Engine::Athena {
            settings: args.athena.settings(),
            cfg,
        },
        _ => Engine::DataFusion,
    };
    let options = BuildOptions {
        anchors: AnchorParams {
            anchor: args.anchor,
            horizon_days: args.horizon_days,
            settle_days: args.settle_days,
        },
        gates: args.gates,
        engine,
    };
    build(&root, args.common.run_date, &options).await
}

/// What defines the anchors and labels of a run; runs are only compared with runs of the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchorParams {
    /// Which completed orders are anchors.
    pub anchor: AnchorMode,
    /// Label horizon in days (60).
    pub horizon_days: u32,
    /// Days after a window closes before its anchor is labelled (see the module docs).
    pub settle_days: u32,
}

/// Anchors and horizon as given, labels settled for [`DEFAULT_SETTLE_DAYS`].
pub fn anchor_params(anchor: AnchorMode, horizon_days: u32) -> AnchorParams {
    AnchorParams {
        anchor,
        horizon_days,
        settle_days: DEFAULT_SETTLE_DAYS,
    }
}

impl AnchorParams {
    /// Exclusive upper bound of the anchor times labelled on `run_date`.
    pub fn labelled_before_us(&self, run_date: RunDate) -> i64 {
        run_date.end_exclusive_micros() - i64::from(self.horizon_days + self.settle_days) * DAY_US
    }
}

/// How a build runs: what anchors and labels are, which quality gates apply, and which engine
/// computes the features (both engines give the same partitions; the manifest's `sql`
/// parameter names the query that ran).
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Anchors, horizon and settling.
    pub anchors: AnchorParams,
    /// The quality gates' thresholds.
    pub gates: GateConfig,
    /// DataFusion here, or Athena.
    pub engine: Engine,
}

impl BuildOptions {
    /// `anchor` anchors labelled over `horizon_days` (settled for [`DEFAULT_SETTLE_DAYS`]), the
    /// default quality gates, DataFusion.
    pub fn new(anchor: AnchorMode, horizon_days: u32) -> BuildOptions {
        BuildOptions {
            anchors: anchor_params(anchor, horizon_days),
            gates: GateConfig::default(),
            engine: Engine::DataFusion,
        }
    }
}

/// Builds both feature partitions for `run_date` under `root`; nothing is written when a quality
/// gate fails (unless `gates.skip`).
pub async fn build(root: &DataRoot, run_date: RunDate, options: &BuildOptions) -> Result<Outcome> {
    let BuildOptions {
        anchors: params,
        gates,
        engine,
    } = options;
    let params = *params;
    let AnchorParams {
        anchor,
        horizon_days,
        settle_days,
    } = params;
    let timer = StepTimer::start("features-query");
    let (batches, inputs, sql_name) = match engine {
        Engine::DataFusion => {
            let ctx = session();
            let mut inputs: Vec<InputRef> = Vec::new();
            for table in INPUT_TABLES {
                let (_, input) = register_partition_with(
                    &ctx,
                    root,
                    Dataset::Raw(table),
                    run_date,
                    table.name(),
                    // Plain Utf8 strings: see `as_string_views` for why and how the output
                    // keeps its Utf8View columns.
                    ParquetFormat::default().with_force_view_types(false),
                )
                .await?;
                inputs.push(input);
            }
            let batches = compute(&ctx, run_date, anchor, horizon_days).await?;
            (batches, inputs, "features/anchors.sql")
        }
        Engine::Athena { settings, cfg } => {
            let inputs = athena::raw_inputs(root, run_date).await?;
            // Only this engine listens for SIGTERM: a stopped task must stop its query too.
            let mut shutdown = athena::Shutdown::on_signals()?;
            let batches = athena::compute(
                root,
                run_date,
                anchor,
                horizon_days,
                settings,
                cfg,
                &mut shutdown,
            )
            .await?;
            (batches, inputs, athena::SQL.name)
        }
    };
    let rows_in: u64 = inputs.iter().map(|i| i.row_count).sum();
    let batches = as_string_views(batches)?;
    let anchors: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    timer.finish(rows_in, anchors);

    let timer = StepTimer::start("features-write");
    let labelled_before = params.labelled_before_us(run_date);
    let (train, score, unsettled) = split(&batches, labelled_before)?;
    let train_rows: u64 = train.batches.iter().map(|b| b.num_rows() as u64).sum();
    let score_rows: u64 = score.batches.iter().map(|b| b.num_rows() as u64).sum();
    let train_positives = count_positive(&train.batches, "label");
    let already = count_positive(&score.batches, "repurchased_so_far");
    let pending = count_matching(
        &score.batches,
        &[("repurchased_so_far", 0), ("repurchase_pending", 1)],
    );
    let at_risk = count_matching(&train.batches, &[("label", 0), ("repurchase_pending", 1)]);
    let lags = settle_evidence(root, run_date).await?;
    let longest_lag_days = lags
        .iter()
        .filter(|(k, _)| k.ends_with("_hours_max"))
        .map(|(_, v)| v.div_ceil(24))
        .max()
        .unwrap_or(0);
    if longest_lag_days > u64::from(settle_days) {
        tracing::warn!(
            settle_days,
            longest_lag_days,
            "an order of the raw data took longer to be delivered or returned than --settle-days: labels near the cut may still turn (counted as labels_at_risk_in_transit)"
        );
    }
    let missing_user = count_null(&batches, "tenure_days");
    let figures = RunFigures {
        anchors,
        labelled: train_rows,
        positives: train_positives,
        nulls: RunFigures::null_counts(&batches),
    };
    apply_gates(root, run_date, params, gates, &figures).await?;

    let params = to_value(&FeaturesParams {
        anchor,
        horizon_days,
        settle_days,
        labelled_before: repurchase_core::run_date::format_micros(labelled_before),
        order_lags: lags,
        run_end: run_date.end_exclusive().to_rfc3339(),
        sql: sql_name.to_string(),
    })?;
    let mut counters = BTreeMap::from([
        ("anchors".to_string(), anchors),
        ("anchors_labelled".to_string(), train_rows),
        ("anchors_unsettled".to_string(), unsettled),
        ("anchors_open_window".to_string(), score_rows),
        ("anchors_without_user_row".to_string(), missing_user),
        ("labels_at_risk_in_transit".to_string(), at_risk),
    ]);
    counters.insert("positives".into(), train_positives);
    let mut train_counters = counters.clone();
    train_counters.extend(figures.null_counters());
    let mut w = PartitionWriter::begin(root, Dataset::FeaturesTrain, run_date).await?;
    w.write_parquet("part-00000.parquet", train.schema.clone(), &train.batches)
        .await?;
    w.commit(Provenance {
        stage: STAGE,
        parameters: params.clone(),
        schema: Some(&train.schema),
        inputs: inputs.clone(),
        counters: train_counters,
    })
    .await?;

    counters.insert("positives".into(), 0);
    counters.insert("already_repurchased".into(), already);
    counters.insert("repurchase_pending".into(), pending);
    let mut w = PartitionWriter::begin(root, Dataset::FeaturesScore, run_date).await?;
    w.write_parquet("part-00000.parquet", score.schema.clone(), &score.batches)
        .await?;
    w.commit(Provenance {
        stage: STAGE,
        parameters: params,
        schema: Some(&score.schema),
        inputs,
        counters,
    })
    .await?;
    timer.finish(anchors, train_rows + score_rows);
    info!(
        anchors,
        train_rows, score_rows, train_positives, missing_user, "features written"
    );
    Ok(Outcome {
        anchors,
        train_rows,
        score_rows,
        unsettled_rows: unsettled,
        train_positives,
    })
}

/// Runs the quality gates against the latest earlier run built with the same anchors and horizon.
async fn apply_gates(
    root: &DataRoot,
    run_date: RunDate,
    params: AnchorParams,
    cfg: &GateConfig,
    figures: &RunFigures,
) -> Result<()> {
    let mut previous = None;
    for d in Manifest::published_dates(root, Dataset::FeaturesTrain)
        .await?
        .into_iter()
        .rev()
        .filter(|d| *d < run_date)
    {
        let (m, _) = Manifest::read(root, Dataset::FeaturesTrain, d).await?;
        let earlier: FeaturesParams = read_params(root, &m)?;
        if earlier.anchor == params.anchor && earlier.horizon_days == params.horizon_days {
            previous = Some((d, RunFigures::from_counters(&m.counters)));
            break;
        }
    }
    let failures = gates::check(cfg, figures, previous.as_ref().map(|(d, f)| (*d, f)));
    let compared = previous.as_ref().map_or_else(
        || "no earlier run to compare with".to_string(),
        |(d, _)| format!("compared with features/train run_date={d}"),
    );
    if failures.is_empty() {
        info!(compared, "quality gates passed");
        return Ok(());
    }
    if cfg.skip {
        tracing::warn!(compared, failures = %failures.join("; "), "quality gates failed; publishing anyway (--skip-quality-gates)");
        return Ok(());
    }
    Err(FeaturesError::Core(CoreError::QualityGate {
        stage: STAGE,
        run_date: run_date.to_string(),
        context: format!(
            "{compared}; check the input, change the thresholds, or rerun with --skip-quality-gates"
        ),
        failures,
    }))
}

/// Session settings fixed here so results do not depend on the machine's core count.
///
/// Two settings beyond the partitions and batch size, measured on the 10× `signal` lake (34M raw
/// rows; the same output bytes either way): joins are not repartitioned (hash-repartitioning
/// both inputs of every join cost more CPU than the parallelism it bought on 2 cores), and
/// filters are evaluated inside the Parquet scan, so rows a WHERE clause drops are never
/// materialised into batches. Together: 10.4 → 8.0 s wall and 16.2 → 11.8 CPU s, medians of 3.
pub fn session() -> SessionContext {
    let mut config = SessionConfig::new()
        .with_target_partitions(4)
        .with_batch_size(8192)
        .with_repartition_joins(false);
    config.options_mut().execution.parquet.pushdown_filters = true;
    SessionContext::new_with_config(config)
}

/// Runs the feature query over tables already registered in `ctx`.
pub async fn compute(
    ctx: &SessionContext,
    run_date: RunDate,
    anchor: AnchorMode,
    horizon_days: u32,
) -> Result<Vec<RecordBatch>> {
    // The anchors first, materialised in memory (one row per anchor, four columns): the feature
    // query joins them a dozen times, and DataFusion would recompute them (a sort and a window
    // over all completed orders) at every use.
    let set = sql_file!("features/anchor_set.sql");
    let anchors = set
        .dataframe(
            ctx,
            vec![(
                "first_only",
                ScalarValue::Boolean(Some(anchor == AnchorMode::FirstOrder)),
            )],
        )
        .await?
        .cache()
        .await
        .map_err(|e| CoreError::query(set.name, e))?;
    ctx.deregister_table("anchors")
        .map_err(|e| CoreError::query(set.name, e))?;
    ctx.register_table("anchors", anchors.into_view())
        .map_err(|e| CoreError::query(set.name, e))?;
    // Their basket items likewise (read by four CTEs of the feature query).
    let items_sql = sql_file!("features/anchor_items.sql");
    let items = items_sql
        .dataframe(ctx, vec![])
        .await?
        .cache()
        .await
        .map_err(|e| CoreError::query(items_sql.name, e))?;
    ctx.deregister_table("items")
        .map_err(|e| CoreError::query(items_sql.name, e))?;
    ctx.register_table("items", items.into_view())
        .map_err(|e| CoreError::query(items_sql.name, e))?;

    let sql = sql_file!("features/anchors.sql");
    let horizon_us = i64::from(horizon_days) * DAY_US;
    let df = sql
        .dataframe(
            ctx,
            vec![
                (
                    "run_end_us",
                    ScalarValue::Int64(Some(run_date.end_exclusive_micros())),
                ),
                ("horizon_us", ScalarValue::Int64(Some(horizon_us))),
            ],
        )
        .await?;
    Ok(df
        .collect()
        .await
        .map_err(|e| CoreError::query(sql.name, e))?)
}

/// Casts the `Utf8` columns of the query output to `Utf8View`.
///
/// The raw tables are read with plain `Utf8` strings: with DataFusion's default `Utf8View`, every
/// batch a hash join emits keeps the whole build side's string buffers alive, and the joins of
/// the final chain copied those shared buffers again and again, so time and memory grew much
/// faster than the data (docs/BENCHMARKS.md has the figures). The published
/// schema keeps the `Utf8View` columns it always had (same values, same Parquet bytes).
fn as_string_views(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>, CoreError> {
    let Some(first) = batches.first() else {
        return Ok(batches);
    };
    let schema = first.schema();
    let view = |f: &Arc<Field>| f.data_type() == &DataType::Utf8;
    if !schema.fields().iter().any(view) {
        return Ok(batches);
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if view(f) {
                f.as_ref().clone().with_data_type(DataType::Utf8View)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    let out_schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    batches
        .into_iter()
        .map(|b| {
            let columns = b
                .columns()
                .iter()
                .zip(out_schema.fields())
                .map(|(c, f)| {
                    if c.data_type() == f.data_type() {
                        Ok(c.clone())
                    } else {
                        arrow::compute::cast(c, f.data_type())
                    }
                })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| CoreError::arrow("cast to Utf8View", e))?;
            RecordBatch::try_new(out_schema.clone(), columns)
                .map_err(|e| CoreError::arrow("cast to Utf8View", e))
        })
        .collect()
}

/// One of the two partitions a build writes.
pub struct Part {
    /// Its schema.
    pub schema: SchemaRef,
    /// Its rows.
    pub batches: Vec<RecordBatch>,
}

/// The creation → delivery and creation → return lags of the run's raw orders, as `extract`
/// recorded them (`delivery_lag_hours_max`, …): the evidence for `--settle-days`.
async fn settle_evidence(root: &DataRoot, run_date: RunDate) -> Result<BTreeMap<String, u64>> {
    let (orders, _) = Manifest::read(root, Dataset::Raw(Table::Orders), run_date).await?;
    Ok(orders
        .counters
        .iter()
        .filter(|(k, _)| k.starts_with("delivery_lag_") || k.starts_with("return_lag_"))
        .map(|(k, v)| (k.clone(), *v))
        .collect())
}

/// Splits query output by anchor: labelled when its window closed and settled (anchor time
/// before `labelled_before_us`), keeping `label`; scored when its window is still open
/// (`window_closed` false), with `label` renamed `repurchased_so_far` (a repurchase already seen
/// inside the window); neither when the window closed but has not settled yet (the third value
/// counts them).
pub fn split(batches: &[RecordBatch], labelled_before_us: i64) -> Result<(Part, Part, u64)> {
    let Some(first) = batches.first() else {
        return Err(FeaturesError::NoAnchors);
    };
    let schema = first.schema();
    let wc = schema
        .index_of("window_closed")
        .map_err(|e| CoreError::arrow("window_closed", e))?;
    let keep: Vec<usize> = (0..schema.fields().len()).filter(|i| *i != wc).collect();
    let train_schema = Arc::new(
        schema
            .project(&keep)
            .map_err(|e| CoreError::arrow("project", e))?,
    );
    let label_idx = train_schema
        .index_of("label")
        .map_err(|e| CoreError::arrow("label", e))?;
    let score_fields: Vec<Field> = train_schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if i == label_idx {
                f.as_ref().clone().with_name("repurchased_so_far")
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    let score_schema = Arc::new(Schema::new(score_fields));
    let anchor_idx = schema
        .index_of("anchor_time")
        .map_err(|e| CoreError::arrow("anchor_time", e))?;
    let (mut train, mut score, mut unsettled) = (Vec::new(), Vec::new(), 0u64);
    for b in batches {
        let closed = b
            .column(wc)
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| FeaturesError::QueryOutput("window_closed is not boolean".into()))?;
        let anchor_us = b
            .column(anchor_idx)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| FeaturesError::QueryOutput("anchor_time is not a timestamp".into()))?;
        let open = arrow::compute::not(closed).map_err(|e| CoreError::arrow("not", e))?;
        let settled: BooleanArray = closed
            .iter()
            .zip(anchor_us.iter())
            .map(|(c, a)| Some(c == Some(true) && a.is_some_and(|a| a < labelled_before_us)))
            .collect();
        unsettled += (closed.true_count() - settled.true_count()) as u64;
        let closed = &settled;
        let projected = b
            .project(&keep)
            .map_err(|e| CoreError::arrow("project", e))?;
        let t =
            filter_record_batch(&projected, closed).map_err(|e| CoreError::arrow("filter", e))?;
        let s =
            filter_record_batch(&projected, &open).map_err(|e| CoreError::arrow("filter", e))?;
        if t.num_rows() > 0 {
            train.push(t);
        }
        if s.num_rows() > 0 {
            score.push(
                RecordBatch::try_new(score_schema.clone(), s.columns().to_vec())
                    .map_err(|e| CoreError::arrow("rename", e))?,
            );
        }
    }
    Ok((
        Part {
            schema: train_schema,
            batches: train,
        },
        Part {
            schema: score_schema,
            batches: score,
        },
        unsettled,
    ))
}

/// Rows whose Int64 columns hold the given values, every `(column, value)` pair at once (a
/// batch without one of the columns, or a null, matches nothing).
fn count_matching(batches: &[RecordBatch], wanted: &[(&str, i64)]) -> u64 {
    batches
        .iter()
        .map(|b| {
            let columns: Option<Vec<&Int64Array>> = wanted
                .iter()
                .map(|(name, _)| {
                    b.column_by_name(name)
                        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                })
                .collect();
            let Some(columns) = columns else { return 0 };
            (0..b.num_rows())
                .filter(|&i| {
                    columns
                        .iter()
                        .zip(wanted)
                        .all(|(c, (_, v))| c.is_valid(i) && c.value(i) == *v)
                })
                .count() as u64
        })
        .sum()
}

fn count_positive(batches: &[RecordBatch], column: &str) -> u64 {
    count_matching(batches, &[(column, 1)])
}

fn count_null(batches: &[RecordBatch], column: &str) -> u64 {
    batches
        .iter()
        .filter_map(|b| b.column_by_name(column))
        .map(|c| c.null_count() as u64)
        .sum()
}
