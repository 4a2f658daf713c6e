//! Drift monitoring of a scoring run: the day's population, counted into the served model's
//! reference bins while it was scored, compared with the reference and with the previous run
//! ([`repurchase_model::drift`]), published as `monitoring/run_date=D/drift.json`, and judged.

use std::collections::BTreeMap;

use repurchase_contracts::files;
use repurchase_contracts::monitoring::{
    DriftReport, MonitoringParams, previous_report, read_report,
};
use repurchase_contracts::params::to_value;
use repurchase_core::layout::Dataset;
use repurchase_core::manifest::InputRef;
use repurchase_core::publish::{PartitionWriter, Provenance};
use repurchase_core::{DataRoot, RunDate};
use repurchase_model::drift::{Level, Population, Reference, compare};
use tracing::{info, warn};

use crate::{DriftOptions, Result, STAGE, ScoreError};

/// A day's population with the reference it was counted against.
pub(crate) struct Monitored {
    pub(crate) reference: Reference,
    pub(crate) reference_input: InputRef,
    pub(crate) population: Population,
}

/// Compares, publishes `monitoring/run_date=D/` and refuses the run when a figure fails against
/// the reference (after publishing, so the report says why).
pub(crate) async fn publish_drift(
    root: &DataRoot,
    run_date: RunDate,
    (model_date, model_version): (RunDate, &str),
    monitored: Monitored,
    scores_input: Vec<InputRef>,
    options: &DriftOptions,
) -> Result<DriftReport> {
    let thresholds = &options.thresholds;
    let previous = match options.previous {
        Some(d) if d >= run_date => {
            return Err(ScoreError::Settings(format!(
                "--drift-previous {d} is not before the run date {run_date}"
            )));
        }
        Some(d) => Some(read_report(root, d).await?),
        None => previous_report(root, run_date).await?,
    };
    let comparison = compare(
        &monitored.reference,
        &monitored.population,
        previous.as_ref().map(|(p, _)| p.population()).as_ref(),
        thresholds,
    );
    let report = DriftReport {
        run_date,
        model_date,
        model_version: model_version.to_string(),
        reference_start: monitored.reference.start.clone(),
        reference_end: monitored.reference.end.clone(),
        previous_run_date: previous.as_ref().map(|(p, _)| p.run_date),
        thresholds: thresholds.clone(),
        comparison,
    };
    let c = &report.comparison;
    let count = |level: Level| {
        c.features
            .iter()
            .chain([&c.score])
            .filter(|h| h.level == level)
            .count() as u64
    };
    let counters = BTreeMap::from([
        ("rows".to_string(), c.rows),
        ("reference_rows".to_string(), c.reference_rows),
        ("histograms".to_string(), c.features.len() as u64 + 1),
        ("warned".to_string(), count(Level::Warn)),
        ("failed".to_string(), count(Level::Fail)),
    ]);
    let mut inputs = scores_input;
    inputs.push(monitored.reference_input);
    inputs.extend(previous.map(|(_, input)| input));
    let params = MonitoringParams {
        model_date,
        model_version: model_version.to_string(),
        thresholds: thresholds.clone(),
    };
    let mut w = PartitionWriter::begin(root, Dataset::Monitoring, run_date).await?;
    w.write_json(files::DRIFT, &report).await?;
    w.commit(Provenance {
        stage: STAGE,
        parameters: to_value(&params)?,
        schema: None,
        inputs,
        counters,
    })
    .await?;
    for a in &c.alerts {
        warn!(feature = %a.feature, measure = %a.measure, value = a.value, threshold = a.threshold, level = ?a.level, "drift");
    }
    info!(rows = c.rows, level = ?c.level, alerts = c.alerts.len(), psi_score = ?c.score.psi, "drift report written");
    if c.level == Level::Fail {
        let failed: Vec<String> = c
            .alerts
            .iter()
            .filter(|a| a.level == Level::Fail)
            .map(ToString::to_string)
            .collect();
        return Err(ScoreError::Drift {
            run_date,
            model_version: model_version.to_string(),
            failed,
        });
    }
    Ok(report)
}
