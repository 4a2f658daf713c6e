//! The fixed layout of a data root: which dataset lives where, partitioned by run date.
//!
//! ```text
//! raw/<table>/run_date=D/            extract
//! features/train/run_date=D/         build-features (labelled anchors)
//! features/score/run_date=D/         build-features (anchors whose 60-day window is open)
//! models/run_date=D/                 train (model.json, model_card.json)
//! models/run_date=D/calibration/     calibrate (calibrator.json, metrics.json)
//! scores/run_date=D/                 score
//! score_shards/run_date=D/shard=IIII-of-NNNN/   `score --shard I/N` (merged into scores/ by
//!                                              `score --merge-shards N`)
//! monitoring/run_date=D/             score: the day's population against the served model's
//!                                    reference and the previous run (drift.json)
//! monitoring_pages/run_date=D/       `repurchase monitor`: the last N days' drift reports on a page
//! diagnostics/run_date=D/            `repurchase diagnose`: the business figures of the raw data
//! backtests/run_date=D/              `repurchase backtest`: the scores of D against later outcomes
//! ```
//! Every partition holds a `_manifest.json`, written last; see [`crate::manifest`].

use std::fmt;

use crate::run_date::RunDate;
use crate::schema::Table;

/// Name of the manifest inside a partition folder; written last, it makes the partition exist.
pub const MANIFEST_FILE: &str = "_manifest.json";

/// Every kind of partition in a data root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// `raw/<table>/`: a validated TheLook table (`extract`).
    Raw(Table),
    /// `features/train/`: labelled anchors (`build-features`).
    FeaturesTrain,
    /// `features/score/`: anchors whose window is open (`build-features`).
    FeaturesScore,
    /// `models/`: the served and evaluated models and the card (`train`).
    Model,
    /// `models/…/calibration/`: calibrators, metrics, champion decision, report (`calibrate`).
    Calibration,
    /// `scores/`: the open customers scored (`score`).
    Scores,
    /// One hash shard of the scores, before the merge.
    ScoreShard {
        /// Shard number, from 0.
        index: u32,
        /// Shards in all.
        count: u32,
    },
    /// `monitoring/`: the scored population's drift (`score`).
    Monitoring,
    /// `monitoring_pages/`: the drift reports of the last N run dates on one page
    /// (`repurchase monitor`).
    MonitoringPage,
    /// `diagnostics/`: the business figures of a run date's raw data, with their page
    /// (`repurchase diagnose`).
    Diagnostics,
    /// `backtests/`: one day's scores judged against later outcomes (`repurchase backtest`).
    Backtest,
    /// A rolling-origin backtest, keyed by its outcome date (`repurchase backtest --origins`).
    RollingBacktest,
}

impl Dataset {
    /// Folder holding all run-date partitions of this dataset.
    pub fn dir(self) -> String {
        match self {
            Dataset::Raw(t) => format!("raw/{}", t.name()),
            Dataset::FeaturesTrain => "features/train".into(),
            Dataset::FeaturesScore => "features/score".into(),
            Dataset::Model | Dataset::Calibration => "models".into(),
            Dataset::Scores => "scores".into(),
            Dataset::ScoreShard { .. } => "score_shards".into(),
            Dataset::Monitoring => "monitoring".into(),
            Dataset::MonitoringPage => "monitoring_pages".into(),
            Dataset::Diagnostics => "diagnostics".into(),
            Dataset::Backtest => "backtests".into(),
            Dataset::RollingBacktest => "rolling_backtests".into(),
        }
    }

    /// Folder of one run date's partition.
    pub fn partition(self, run_date: RunDate) -> String {
        match self {
            Dataset::Calibration => format!("models/run_date={run_date}/calibration"),
            Dataset::ScoreShard { index, count } => {
                format!("score_shards/run_date={run_date}/shard={index:04}-of-{count:04}")
            }
            _ => format!("{}/run_date={run_date}", self.dir()),
        }
    }

    /// Path of one run date's manifest.
    pub fn manifest_path(self, run_date: RunDate) -> String {
        format!("{}/{MANIFEST_FILE}", self.partition(run_date))
    }

    /// Parses the `run_date=D` folder name of a partition.
    pub fn parse_partition_dir(name: &str) -> Option<RunDate> {
        name.strip_prefix("run_date=")?.parse().ok()
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dataset::Calibration => f.write_str("models/calibration"),
            Dataset::ScoreShard { index, count } => {
                write!(f, "score_shards/shard={index:04}-of-{count:04}")
            }
            _ => f.write_str(&self.dir()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_docs_workers_md() {
        let d: RunDate = "2024-03-01".parse().unwrap();
        assert_eq!(
            Dataset::Raw(Table::OrderItems).partition(d),
            "raw/order_items/run_date=2024-03-01"
        );
        assert_eq!(
            Dataset::FeaturesScore.manifest_path(d),
            "features/score/run_date=2024-03-01/_manifest.json"
        );
        assert_eq!(
            Dataset::Calibration.partition(d),
            "models/run_date=2024-03-01/calibration"
        );
        assert_eq!(
            Dataset::ScoreShard { index: 3, count: 8 }.manifest_path(d),
            "score_shards/run_date=2024-03-01/shard=0003-of-0008/_manifest.json"
        );
        assert_eq!(Dataset::parse_partition_dir("run_date=2024-03-01"), Some(d));
        assert_eq!(Dataset::parse_partition_dir("run_date=junk"), None);
    }
}
