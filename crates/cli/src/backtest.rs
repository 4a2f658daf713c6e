//! `repurchase backtest`: were the scores of an earlier run date right?
//!
//! Scores written on the *score date* are joined (`sql/evaluation/backtest.sql`) with the labels
//! that `features/train` of a later *outcome date* holds, once the anchors' 60-day windows have
//! closed ([`repurchase_contracts::backtest`]). Writes
//! `backtests/run_date=<score date>/backtest.json`.

use std::collections::BTreeMap;

use repurchase_contracts::backtest::judge;
pub use repurchase_contracts::backtest::{Backtest, Band, flag_confusion};
use repurchase_core::layout::Dataset;
use repurchase_core::publish::{PartitionWriter, Provenance};
use repurchase_core::{DataRoot, RunDate};

use crate::error::{CliError, Result};

/// The stage name in logs, locks and manifests.
pub const STAGE: &str = "backtest";

/// Compares the scores of `score_date` with the outcomes known on `outcome_date` and publishes
/// `backtests/run_date=<score date>/backtest.json`.
pub async fn backtest(
    root: &DataRoot,
    score_date: RunDate,
    outcome_date: RunDate,
) -> Result<Backtest> {
    if outcome_date <= score_date {
        return Err(CliError::Backtest(format!(
            "the outcome date {outcome_date} must be after the score date {score_date}"
        )));
    }
    let (report, inputs, sql) = judge(root, score_date, outcome_date).await?;
    let mut w = PartitionWriter::begin(root, Dataset::Backtest, score_date).await?;
    w.write_json("backtest.json", &report).await?;
    let counters = BTreeMap::from([
        ("scored".to_string(), report.scored),
        ("resolved".to_string(), report.resolved),
        ("unresolved".to_string(), report.unresolved),
    ]);
    let params = serde_json::json!({
        "outcome_date": outcome_date.to_string(),
        "sql": sql,
    });
    w.commit(Provenance {
        stage: STAGE,
        parameters: params,
        schema: None,
        inputs,
        counters,
    })
    .await?;
    Ok(report)
}
