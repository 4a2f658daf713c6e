//! Joining the published score shards of a run date into `scores/`: the same rows, order,
//! deciles, parameters and inputs as scoring unsharded.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use datafusion::prelude::SessionContext;
use repurchase_contracts::ScoresParams;
use repurchase_contracts::params::read_params;
use repurchase_core::layout::Dataset;
use repurchase_core::logging::StepTimer;
use repurchase_core::manifest::InputRef;
use repurchase_core::parquet_io::register_partition;
use repurchase_core::{CoreError, DataRoot, RunDate};

use crate::rank::{finish, sorted};
use crate::{Outcome, Result, ScoreError, Scored, Shard, bad, output_schema, publish};

/// Joins the `count` published shards of `run_date` into `scores/`: the same rows, order, deciles,
/// parameters and inputs as scoring unsharded.
pub async fn merge_shards(root: &DataRoot, run_date: RunDate, count: u32) -> Result<Outcome> {
    let timer = StepTimer::start("merge-shards");
    let mut batches = Vec::new();
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
    let scored = Scored {
        batch,
        model_version: params.model_version.clone(),
        flag: params.flag,
        params,
        inputs,
        counters,
    };
    publish(root, Dataset::Scores, run_date, scored).await
}
