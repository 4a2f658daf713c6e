//! `monitoring/run_date=D/drift.json`: how the day's scored population compares with the served
//! model's reference and with the previous run ([`repurchase_model::drift`]), with the readers
//! `score` (the previous run) and the monitoring page use.

use repurchase_core::layout::Dataset;
use repurchase_core::manifest::InputRef;
use repurchase_core::{DataRoot, Result, RunDate};
use repurchase_model::drift::{Comparison, Population, Reference, Thresholds};
use repurchase_model::io::read_json_artifact;
use serde::{Deserialize, Serialize};

use crate::files;

/// `drift.json`: one day's drift report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// The scoring run.
    pub run_date: RunDate,
    /// The served model's run date.
    pub model_date: RunDate,
    /// The served model.
    pub model_version: String,
    /// First anchor time of the reference (inclusive).
    pub reference_start: String,
    /// Last anchor time of the reference (exclusive).
    pub reference_end: String,
    /// The run compared against as "previous", when there was one.
    pub previous_run_date: Option<RunDate>,
    /// The thresholds judged with.
    pub thresholds: Thresholds,
    /// Every figure and the alerts (written inline).
    #[serde(flatten)]
    pub comparison: Comparison,
}

impl DriftReport {
    /// Today's population as counted, for the next run's comparison.
    pub fn population(&self) -> Population {
        self.comparison.population()
    }
}

/// The `parameters` of a monitoring partition's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitoringParams {
    /// The served model's run date.
    pub model_date: RunDate,
    /// The served model.
    pub model_version: String,
    /// The thresholds judged with.
    pub thresholds: Thresholds,
}

/// Reads the served model's drift reference from its model partition.
pub async fn read_reference(root: &DataRoot, model_date: RunDate) -> Result<(Reference, InputRef)> {
    read_json_artifact(root, Dataset::Model, model_date, files::REFERENCE).await
}

/// The latest drift report published before `run_date`, if any.
pub async fn previous_report(
    root: &DataRoot,
    run_date: RunDate,
) -> Result<Option<(DriftReport, InputRef)>> {
    let mut dates: Vec<RunDate> = root
        .list_dirs(&Dataset::Monitoring.dir())
        .await?
        .iter()
        .filter_map(|name| Dataset::parse_partition_dir(name))
        .filter(|d| *d < run_date)
        .collect();
    dates.sort_unstable_by(|a, b| b.cmp(a));
    // Newest first; a folder without a manifest is an unfinished run, not a report.
    for d in dates {
        if root.exists(&Dataset::Monitoring.manifest_path(d)).await? {
            return Ok(Some(read_report(root, d).await?));
        }
    }
    Ok(None)
}

/// Reads the drift report of `run_date`.
pub async fn read_report(root: &DataRoot, run_date: RunDate) -> Result<(DriftReport, InputRef)> {
    read_json_artifact(root, Dataset::Monitoring, run_date, files::DRIFT).await
}
