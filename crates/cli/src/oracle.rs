//! The generator's ground truth as a yardstick: the AUC of the true probabilities on the same
//! held-out anchors the model is evaluated on.

use std::collections::HashMap;

use arrow::array::{Array, Float64Array, Int64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use repurchase_core::layout::Dataset;
use repurchase_core::{CoreError, DataRoot, RunDate};

use crate::error::Result;
use repurchase_model::io::load_features;
use repurchase_model::metrics::roc_auc;

/// Where a generated source keeps each anchor's true repurchase probability.
pub const TRUTH_FILE: &str = "truth/anchor_truth.parquet";

/// order_id → true repurchase probability, from a generated source folder.
pub async fn read_truth(source: &DataRoot) -> Result<HashMap<i64, f64>> {
    let bytes = source.get(TRUTH_FILE).await?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| CoreError::Parquet {
            path: source.url(TRUTH_FILE),
            source: e,
        })?;
    let mut out = HashMap::new();
    for batch in reader {
        let batch = batch.map_err(|e| CoreError::arrow(TRUTH_FILE, e))?;
        let ids = batch
            .column_by_name("order_id")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned());
        let ps = batch
            .column_by_name("p_true")
            .and_then(|c| c.as_any().downcast_ref::<Float64Array>().cloned());
        let (Some(ids), Some(ps)) = (ids, ps) else {
            return Err(CoreError::BadTable {
                table: TRUTH_FILE.into(),
                message: "needs order_id and p_true".into(),
            }
            .into());
        };
        for i in 0..ids.len() {
            out.insert(ids.value(i), ps.value(i));
        }
    }
    Ok(out)
}

/// AUC of the true probabilities on the model's test window, and how many test anchors had one.
pub async fn oracle_test_auc(
    root: &DataRoot,
    run_date: RunDate,
    truth: &HashMap<i64, f64>,
) -> Result<(Option<f64>, usize)> {
    let card = repurchase_contracts::card::read_card(root, run_date).await?;
    let (table, _, _) = load_features(root, Dataset::FeaturesTrain, run_date).await?;
    let (_, _, te) = card.windows.indices(&table.anchor_us);
    let labels = table.labels()?;
    let (mut scores, mut ys) = (Vec::new(), Vec::new());
    for i in te {
        if let Some(p) = truth.get(&table.order_id[i]) {
            scores.push(*p);
            ys.push(labels[i]);
        }
    }
    Ok((roc_auc(&scores, &ys), scores.len()))
}
