//! Streaming the feature partition through the served model: which model (the champion in
//! force, checked by version), reading only the columns the trees use, predicting batch by batch
//! on the blocking pool, and accumulating a few numbers per anchor.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use repurchase_contracts::calibration::{read_calibration, read_timing};
use repurchase_contracts::champion::champion_on;
use repurchase_contracts::monitoring::read_reference;
use repurchase_contracts::params::{ModelParams, read_params};
use repurchase_contracts::{FlagRule, ScoresParams, files};
use repurchase_core::layout::Dataset;
use repurchase_core::logging::StepTimer;
use repurchase_core::manifest::{InputRef, Manifest};
use repurchase_core::parquet_io::register_partition;
use repurchase_core::run_date::DAY_US;
use repurchase_core::{CoreError, DataRoot, RunDate};
use repurchase_model::ModelArtifact;
use repurchase_model::booster::Predictor;
use repurchase_model::calibration::Calibrator;
use repurchase_model::drift::PopulationCounter;
use repurchase_model::explain::Reason;
use repurchase_model::forest::sigmoid;
use repurchase_model::io::{read_artifact, read_json_artifact};
use repurchase_model::timing::RepurchaseTiming;
use tracing::warn;

use crate::monitor::Monitored;
use crate::rank::sorted;
use crate::{
    REASONS_UP, Result, ScoreError, ScoreOptions, Scored, Shard, Variant, bad, int64,
    output_schema, shard_of,
};

/// Scores the open anchors of `run_date` (of `shard`'s customers, when given) with `variant` of
/// the champion in force, or of the model `options` names, streaming the feature partition
/// batch by batch.
pub(crate) async fn score_rows(
    root: &DataRoot,
    run_date: RunDate,
    shard: Option<Shard>,
    variant: Variant,
    options: &ScoreOptions,
    monitor: bool,
) -> Result<Scored> {
    let (model_date, decision_input, named) = match options.model_date {
        Some(d) if d > run_date => {
            return Err(ScoreError::ModelFromTheFuture {
                model_date: d,
                run_date,
            });
        }
        Some(d) => (d, None, None),
        None => {
            let (champion, decision) = champion_on(root, run_date).await?;
            (
                champion.model_date,
                Some(decision.clone()),
                Some((champion.model_version, decision)),
            )
        }
    };
    let timer = StepTimer::start("score");
    let model_file = match variant {
        Variant::Served => files::MODEL,
        Variant::Evaluated => files::EVALUATION_MODEL,
    };
    let (model_bytes, model_manifest, model_input) =
        read_artifact(root, Dataset::Model, model_date, model_file).await?;
    let model = ModelArtifact::from_bytes(&model_bytes)?;
    let predictor = model.predictor()?;
    let (mut cal, metrics, cal_input) = read_calibration(root, model_date).await?;
    check_versions(
        root,
        model_date,
        &model_manifest,
        &metrics.model_version,
        named.as_ref(),
    )?;
    let (model_version, threshold) = match variant {
        Variant::Served => (metrics.model_version.clone(), metrics.threshold),
        Variant::Evaluated => {
            cal = read_json_artifact(
                root,
                Dataset::Calibration,
                model_date,
                files::EVALUATION_CALIBRATOR,
            )
            .await?
            .0;
            (
                metrics.evaluated_model_version.clone(),
                metrics.threshold_at_anchor,
            )
        }
    };
    let timing = read_timing(root, model_date).await?;
    // The served model's drift reference; models trained before references existed have none.
    let reference = match (monitor, model_manifest.file(files::REFERENCE)) {
        (true, Some(_)) => Some(read_reference(root, model_date).await?),
        (true, None) => {
            warn!(model_version = %model_version, "the served model has no drift reference (trained before drift monitoring): no drift report for this run");
            None
        }
        (false, _) => None,
    };

    let ctx = SessionContext::new();
    let (_, features_input) =
        register_partition(&ctx, root, Dataset::FeaturesScore, run_date, "features").await?;
    let features = ctx
        .table("features")
        .await
        .map_err(|e| CoreError::query("read features/score", e))?;
    predictor.check_schema(features.schema().as_arrow())?;
    // Only the columns the trees split on are read and decoded, with what each row reports.
    let mut columns: Vec<&str> = [
        "user_id",
        "order_id",
        "anchor_time",
        "repurchased_so_far",
        "repurchase_pending",
    ]
    .into_iter()
    .filter(|c| features.schema().has_column_with_unqualified_name(c))
    .collect();
    columns.extend(predictor.input_columns());
    if let Some((r, _)) = &reference {
        for h in &r.features {
            if !columns.contains(&h.name.as_str()) {
                columns.push(&h.name);
            }
        }
    }
    let stream = features
        .select_columns(&columns)
        .map_err(|e| CoreError::query("read features/score", e))?
        .execute_stream()
        .await
        .map_err(|e| CoreError::query("read features/score", e))?;

    let population = reference
        .as_ref()
        .map(|(r, _)| PopulationCounter::new(r, &model.encoders));
    let scorer = Arc::new(BatchScorer {
        population: population.clone(),
        reference_names: reference
            .as_ref()
            .map(|(r, _)| r.features.iter().map(|h| h.name.clone()).collect())
            .unwrap_or_default(),
        names: predictor.feature_names().map(str::to_string).collect(),
        predictor,
        cal,
        timing,
        run_end: run_date.end_exclusive_micros(),
        shard,
        reasons: !options.no_reasons,
    });
    // Decoding runs on the runtime's workers; predicting on the blocking pool, one batch per core
    // at a time. Rows are sorted at the end, so the order parts arrive in does not matter.
    let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut parts = stream
        .map(|batch| {
            let scorer = scorer.clone();
            async move {
                let batch = batch.map_err(|e| CoreError::query("read features/score", e))?;
                tokio::task::spawn_blocking(move || scorer.score(&batch))
                    .await
                    .map_err(|e| CoreError::task("scoring", e))?
            }
        })
        .buffered(parallel);
    let mut rows = Rows::new(scorer.reasons);
    let mut rows_in = 0u64;
    let mut population = population;
    while let Some(part) = parts.next().await {
        let (n_in, part, counted) = part?;
        rows_in += n_in;
        rows.extend(part);
        if let (Some(total), Some(counted)) = (&mut population, counted) {
            total.absorb(counted);
        }
    }
    let monitored = population
        .zip(reference)
        .map(|(p, (reference, reference_input))| Monitored {
            population: p.finish(&reference),
            reference,
            reference_input,
        });
    let count = |status: Status| rows.status.iter().filter(|s| **s == status).count() as u64;
    let counters = BTreeMap::from([
        ("scored".to_string(), count(Status::Open)),
        (
            "already_repurchased".to_string(),
            count(Status::AlreadyRepurchased),
        ),
        ("repurchase_pending".to_string(), count(Status::Pending)),
        ("explained".to_string(), rows.explained()),
    ]);
    let scored = count(Status::Open);
    let batch = rows.into_batch(&model_version, &scorer.names)?;
    timer.finish(rows_in, scored);
    let flag = match options.flag_top_share {
        Some(share) => FlagRule::TopShare { share },
        None => FlagRule::Threshold { threshold },
    };
    let params = ScoresParams {
        model_date,
        model_version: model_version.clone(),
        threshold,
        flag,
        shard: None,
    };
    let mut inputs = vec![features_input, model_input];
    // The decision naming the champion, when it is not the champion's own calibration.
    inputs.extend(decision_input.filter(|d| *d != cal_input));
    inputs.push(cal_input);
    Ok(Scored {
        batch,
        params,
        inputs,
        model_version,
        counters,
        flag,
        monitored,
    })
}

/// The champion is resolved by version: the model of `model_date` must still be the one the
/// decision in force names (`named`: version and decision), and its calibration must be of that
/// same model. A retrain of the champion's date since then (with or without a recalibration)
/// would otherwise be served under the old decision, or with another model's calibrator.
fn check_versions(
    root: &DataRoot,
    model_date: RunDate,
    model_manifest: &Manifest,
    calibrated_version: &str,
    named: Option<&(String, InputRef)>,
) -> Result<()> {
    let published = &read_params::<ModelParams>(root, model_manifest)?.model_version;
    if let Some((version, decision)) = named
        && version != published
    {
        return Err(ScoreError::VersionMismatch(format!(
            "the decision in force ({} of {}) names champion {version}, but \
             models/run_date={model_date} now holds {published}: that date was retrained since. \
             Recalibrate to decide again, or score with --model-date",
            decision.dataset, decision.run_date
        )));
    }
    if calibrated_version != published {
        return Err(ScoreError::VersionMismatch(format!(
            "models/run_date={model_date} holds {published}, but its calibration is of \
             {calibrated_version}: recalibrate {model_date} before scoring with it"
        )));
    }
    Ok(())
}

/// Where an anchor stands on the run date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// No order inside the window that completed or is on its way: scored.
    Open,
    /// An order inside the window was created but is not complete yet (Processing, Shipped).
    Pending,
    /// An order inside the window completed: the customer already repurchased.
    AlreadyRepurchased,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Pending => "repurchase_pending",
            Status::AlreadyRepurchased => "already_repurchased",
        }
    }
}

/// Per-anchor results, a few numbers each, accumulated across batches.
#[derive(Default)]
struct Rows {
    user_id: Vec<i64>,
    order_id: Vec<i64>,
    anchor_us: Vec<i64>,
    status: Vec<Status>,
    elapsed: Vec<f64>,
    prob: Vec<Option<f64>>,
    at_anchor: Vec<Option<f64>>,
    log_odds: Vec<Option<f64>>,
    /// One per [`REASON_SLOTS`]; none when reasons are off (the columns are then all null).
    reasons: Option<[ReasonColumn; 4]>,
}

/// One reason slot of every row: the feature (its index in the model's list), the row's value of
/// it as text, and its push in log-odds; all three null where the row has no such reason.
#[derive(Default)]
struct ReasonColumn {
    feature: Vec<Option<u32>>,
    value: Vec<Option<String>>,
    log_odds: Vec<Option<f64>>,
}

impl ReasonColumn {
    fn push(&mut self, reason: Option<(u32, Option<String>, f64)>) {
        let (f, v, l) = match reason {
            Some((f, v, l)) => (Some(f), v, Some(l)),
            None => (None, None, None),
        };
        self.feature.push(f);
        self.value.push(v);
        self.log_odds.push(l);
    }

    fn extend(&mut self, other: ReasonColumn) {
        self.feature.extend(other.feature);
        self.value.extend(other.value);
        self.log_odds.extend(other.log_odds);
    }
}

/// One anchor's result.
struct Row {
    user_id: i64,
    order_id: i64,
    anchor_us: i64,
    status: Status,
    elapsed: f64,
    prob: Option<f64>,
    at_anchor: Option<f64>,
    log_odds: Option<f64>,
    /// Per [`REASON_SLOTS`]: feature index, value as text, log-odds.
    reasons: [Option<(u32, Option<String>, f64)>; 4],
}

impl Rows {
    fn new(reasons: bool) -> Rows {
        Rows {
            reasons: reasons.then(Default::default),
            ..Rows::default()
        }
    }

    fn push(&mut self, row: Row) {
        self.user_id.push(row.user_id);
        self.order_id.push(row.order_id);
        self.anchor_us.push(row.anchor_us);
        self.status.push(row.status);
        self.elapsed.push(row.elapsed);
        self.prob.push(row.prob);
        self.at_anchor.push(row.at_anchor);
        self.log_odds.push(row.log_odds);
        if let Some(columns) = &mut self.reasons {
            for (column, reason) in columns.iter_mut().zip(row.reasons) {
                column.push(reason);
            }
        }
    }

    /// Rows given at least one reason.
    fn explained(&self) -> u64 {
        let Some([up, .., down]) = &self.reasons else {
            return 0;
        };
        up.feature
            .iter()
            .zip(&down.feature)
            .filter(|(u, d)| u.is_some() || d.is_some())
            .count() as u64
    }

    fn extend(&mut self, other: Rows) {
        self.user_id.extend(other.user_id);
        self.order_id.extend(other.order_id);
        self.anchor_us.extend(other.anchor_us);
        self.status.extend(other.status);
        self.elapsed.extend(other.elapsed);
        self.prob.extend(other.prob);
        self.at_anchor.extend(other.at_anchor);
        self.log_odds.extend(other.log_odds);
        if let (Some(columns), Some(parts)) = (&mut self.reasons, other.reasons) {
            for (column, part) in columns.iter_mut().zip(parts) {
                column.extend(part);
            }
        }
    }

    /// The output batch without deciles and flags, sorted by anchor time then anchor order
    /// (DataFusion may read files and row groups in any order).
    fn into_batch(self, model_version: &str, names: &[String]) -> Result<RecordBatch> {
        let n = self.user_id.len();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(self.user_id)),
            Arc::new(Int64Array::from(self.order_id)),
            Arc::new(TimestampMicrosecondArray::from(self.anchor_us).with_timezone("UTC")),
            Arc::new(StringArray::from_iter_values(
                self.status.iter().map(|s| s.as_str()),
            )),
            Arc::new(Float64Array::from(self.elapsed)),
            Arc::new(Float64Array::from(self.prob)),
            Arc::new(Float64Array::from(self.at_anchor)),
            Arc::new(UInt32Array::from(vec![None::<u32>; n])),
            Arc::new(BooleanArray::from(vec![None::<bool>; n])),
            Arc::new(StringArray::from(vec![model_version; n])),
            Arc::new(Float64Array::from(self.log_odds)),
        ];
        match self.reasons {
            Some(reasons) => {
                for r in reasons {
                    let name = |f: Option<u32>| f.map(|f| names[f as usize].as_str());
                    columns.extend([
                        Arc::new(StringArray::from_iter(r.feature.into_iter().map(name)))
                            as ArrayRef,
                        Arc::new(StringArray::from(r.value)),
                        Arc::new(Float64Array::from(r.log_odds)),
                    ]);
                }
            }
            None => {
                let schema = output_schema();
                for f in &schema.fields()[columns.len()..] {
                    columns.push(arrow::array::new_null_array(f.data_type(), n));
                }
            }
        }
        let batch = RecordBatch::try_new(output_schema(), columns)
            .map_err(|e| CoreError::arrow("scores", e))?;
        Ok(sorted(&batch)?)
    }
}

/// Everything needed to score one batch of features, shared by the scoring tasks.
struct BatchScorer {
    predictor: Predictor,
    /// An empty count over the drift reference's bins, when the run is monitored.
    population: Option<PopulationCounter>,
    /// The reference's features, in its order.
    reference_names: Vec<String>,
    /// The model's features, by index.
    names: Vec<String>,
    /// Whether open rows get their reasons.
    reasons: bool,
    cal: Calibrator,
    timing: RepurchaseTiming,
    run_end: i64,
    shard: Option<Shard>,
}

impl BatchScorer {
    /// Rows read, the scored rows of one feature batch (of this shard's customers) and, when
    /// monitored, the batch counted into the reference's bins.
    fn score(&self, batch: &RecordBatch) -> Result<(u64, Rows, Option<PopulationCounter>)> {
        let rows_in = batch.num_rows() as u64;
        let mut rows = Rows::new(self.reasons);
        let batch = match self.shard {
            Some(s) => {
                let users = int64(batch, "user_id")?;
                let keep: BooleanArray = users
                    .iter()
                    .map(|u| Some(u.is_some_and(|u| shard_of(u, s.count) == s.index)))
                    .collect();
                arrow::compute::filter_record_batch(batch, &keep)
                    .map_err(|e| CoreError::arrow("shard filter", e))?
            }
            None => batch.clone(),
        };
        if batch.num_rows() == 0 {
            return Ok((rows_in, rows, None));
        }
        // Anchors that already repurchased, or have a repurchase on its way, are reported, not
        // predicted.
        let flag = |name: &str| -> Result<Vec<bool>> {
            match batch.column_by_name(name) {
                Some(c) => Ok(c
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .ok_or_else(|| bad(&format!("{name} is not an integer")))?
                    .iter()
                    .map(|v| v == Some(1))
                    .collect()),
                None => Ok(vec![false; batch.num_rows()]),
            }
        };
        let (done, pending) = (flag("repurchased_so_far")?, flag("repurchase_pending")?);
        let status: Vec<Status> = done
            .iter()
            .zip(&pending)
            .map(|(&d, &p)| match (d, p) {
                (true, _) => Status::AlreadyRepurchased,
                (false, true) => Status::Pending,
                (false, false) => Status::Open,
            })
            .collect();
        let open_mask = BooleanArray::from(
            status
                .iter()
                .map(|s| *s == Status::Open)
                .collect::<Vec<_>>(),
        );
        let open = arrow::compute::filter_record_batch(&batch, &open_mask)
            .map_err(|e| CoreError::arrow("open anchors", e))?;
        // Every anchor's log-odds, open or not: the drift is of the population at its anchors, as
        // the reference is.
        let log_odds = self.predictor.log_odds_batch(&batch)?;
        let counted = match &self.population {
            Some(empty) => {
                let mut c = empty.clone();
                let raw: Vec<f64> = log_odds.iter().map(|l| sigmoid(*l)).collect();
                c.add(&self.reference_names, &batch, &raw)?;
                Some(c)
            }
            None => None,
        };
        let mut explained = self.explain(&open)?.into_iter();
        let users = int64(&batch, "user_id")?;
        let orders = int64(&batch, "order_id")?;
        let anchors = batch
            .column_by_name("anchor_time")
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .ok_or_else(|| bad("anchor_time missing or not a timestamp"))?;
        for (i, &st) in status.iter().enumerate() {
            let anchor_us = anchors.value(i);
            let elapsed = (self.run_end - anchor_us) as f64 / DAY_US as f64;
            let (log_odds, at_anchor, prob, reasons) = if st == Status::Open {
                let l = log_odds[i];
                let p = self.cal.predict(sigmoid(l));
                let reasons = explained.next().unwrap_or_default();
                (
                    Some(l),
                    Some(p),
                    Some(self.timing.conditional(p, elapsed)),
                    reasons,
                )
            } else {
                (None, None, None, Default::default())
            };
            rows.push(Row {
                user_id: users.value(i),
                order_id: orders.value(i),
                anchor_us,
                status: st,
                elapsed,
                prob,
                at_anchor,
                log_odds,
                reasons,
            });
        }
        Ok((rows_in, rows, counted))
    }

    /// The reasons of every row of `open` (none when reasons are off): per [`REASON_SLOTS`], the
    /// feature, the row's value of it as text and its Shapley value.
    #[allow(clippy::type_complexity)]
    fn explain(&self, open: &RecordBatch) -> Result<Vec<[Option<(u32, Option<String>, f64)>; 4]>> {
        if !self.reasons || open.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let c = self.predictor.contributions_batch(open)?;
        let options = FormatOptions::default().with_null("");
        // Only features the trees split on can have a value other than 0, and those are the
        // columns the batch was read with.
        let mut formatters = BTreeMap::new();
        for (f, name) in self.names.iter().enumerate() {
            if let Some(col) = open.column_by_name(name) {
                let fmt = ArrayFormatter::try_new(col.as_ref(), &options)
                    .map_err(|e| CoreError::arrow("reason values", e))?;
                formatters.insert(f, (col.clone(), fmt));
            }
        }
        let value = |f: usize, i: usize| -> Option<String> {
            let (col, fmt) = formatters.get(&f)?;
            col.is_valid(i).then(|| fmt.value(i).to_string())
        };
        Ok((0..c.rows())
            .map(|i| {
                let r = c.reasons(i, REASONS_UP, 1);
                let entry = |r: &Reason| Some((r.feature as u32, value(r.feature, i), r.log_odds));
                let mut slots: [Option<(u32, Option<String>, f64)>; 4] = Default::default();
                for (k, reason) in r.up.iter().enumerate() {
                    slots[k] = entry(reason);
                }
                slots[REASONS_UP] = r.down.first().and_then(entry);
                slots
            })
            .collect())
    }
}
