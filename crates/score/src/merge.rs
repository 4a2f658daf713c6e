//! Joining the published score shards of a run date into `scores/`: the same rows, order,
//! deciles, parameters and inputs as scoring unsharded, and the same drift report (the shards'
//! populations summed).

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use datafusion::prelude::SessionContext;
use repurchase_contracts::monitoring::read_reference;
use repurchase_contracts::params::read_params;
use repurchase_contracts::{ScoresParams, files};
use repurchase_core::logging::StepTimer;
use repurchase_core::manifest::InputRef;
use repurchase_core::parquet_io::register_partition;
use repurchase_core::{CoreError, DataRoot, RunDate};
use repurchase_model::drift::Population;
use repurchase_model::io::read_json_artifact;

use crate::monitor::Monitored;
use crate::rank::{finish, sorted};
use crate::{
    DriftOptions, Outcome, Result, ScoreError, Scored, Shard, bad, monitor_and_publish,
    output_schema,
};

/// Joins the `count` published shards of `run_date` into `scores/`: the same rows, order, deciles,
/// parameters and inputs as scoring unsharded.
pub async fn merge_shards(
    root: &DataRoot,
    run_date: RunDate,
    count: u32,
    options: &DriftOptions,
) -> Result<Outcome> {
    let timer = StepTimer::start("merge-shards");
    let mut batches = Vec::new();
    let mut populations = Vec::new();
    let mut first: Option<(ScoresParams, Vec<InputRef>)> = None;
    let mut counters: BTreeMap<String, u64> = BTreeMap::new();
    for index in 0..count {
        let shard = Shard { index, count };
        let ctx = SessionContext::new();
        let (manifest, _) =
            register_partition(&ctx, root, shard.dataset(), run_date, "shard").await?;
        let params = ScoresParams {
            shard: None,
            ..read_params(root, &manifest)?
        };
        match &first {
            None => first = Some((params, manifest.inputs.clone())),
            Some((p, inputs)) if *p != params || *inputs != manifest.inputs => {
                return Err(ScoreError::ShardsDiffer(format!(
                    "shard {shard} of {run_date} was scored with other inputs or model than shard 0/{count} ({params:?} vs {p:?}): rerun the shards"
                )));
            }
            Some(_) => {}
        }
        if manifest.file(files::POPULATION).is_some() {
            let (p, _): (Population, _) =
                read_json_artifact(root, shard.dataset(), run_date, files::POPULATION).await?;
            populations.push(p);
        }
        for (k, v) in &manifest.counters {
            *counters.entry(k.clone()).or_insert(0) += v;
        }
        let df = ctx
            .table("shard")
            .await
            .map_err(|e| CoreError::query("read score shard", e))?;
        batches.extend(
            df.collect()
                .await
                .map_err(|e| CoreError::query("read score shard", e))?,
        );
    }
    let first = first.ok_or_else(|| bad("no shard"))?;
    let schema = output_schema();
    // Parquet text comes back as string views; the output schema has plain strings.
    let batches = batches
        .iter()
        .map(|b| {
            let cols = schema
                .fields()
                .iter()
                .map(|f| {
                    let c = b
                        .column_by_name(f.name())
                        .ok_or_else(|| bad(&format!("shard lacks {}", f.name())))?;
                    arrow::compute::cast(c, f.data_type())
                        .map_err(|e| CoreError::arrow("shard column", e))
                })
                .collect::<Result<Vec<_>, CoreError>>()?;
            RecordBatch::try_new(schema.clone(), cols).map_err(|e| CoreError::arrow("shard", e))
        })
        .collect::<Result<Vec<_>, CoreError>>()?;
    let all = concat_batches(&schema, &batches).map_err(|e| CoreError::arrow("merge", e))?;
    let (params, inputs) = first;
    let batch = finish(&sorted(&all)?, params.flag)?;
    timer.finish(all.num_rows() as u64, all.num_rows() as u64);
    // Every shard counted its population, or none did (the model has no drift reference).
    let monitored = match populations.len() {
        0 => None,
        n if n == count as usize => {
            let (reference, reference_input) = read_reference(root, params.model_date).await?;
            Some(Monitored {
                population: Population::merge(&populations)?,
                reference,
                reference_input,
            })
        }
        n => {
            return Err(ScoreError::ShardsDiffer(format!(
                "{n} of the {count} shards of {run_date} counted their population for drift: rerun the shards"
            )));
        }
    };
    let scored = Scored {
        batch,
        model_version: params.model_version.clone(),
        flag: params.flag,
        params,
        inputs,
        counters,
        monitored,
    };
    monitor_and_publish(root, run_date, scored, options).await
}
