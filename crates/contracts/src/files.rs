//! File names inside the published partitions, shared by each file's writer and its readers.

/// `models/run_date=D/`: the served model, fitted on every labelled anchor (what `score` uses).
pub const MODEL: &str = "model.json";
/// `models/run_date=D/`: the evaluated model, fitted on the training window only.
pub const EVALUATION_MODEL: &str = "evaluation_model.json";
/// `models/run_date=D/` ([`crate::ModelCard`]) and `models/run_date=D/calibration/`
/// ([`crate::CalibratedCard`]).
pub const MODEL_CARD: &str = "model_card.json";
/// `models/run_date=D/`: the cross-fitted predictions the served calibrator is fitted on.
pub const CROSS_FIT: &str = "cross_fit.json";
/// `models/run_date=D/`: the served model's drift reference
/// ([`repurchase_model::drift::Reference`]).
pub const REFERENCE: &str = "reference.json";
/// `models/run_date=D/calibration/`: the served model's calibrator.
pub const CALIBRATOR: &str = "calibrator.json";
/// `models/run_date=D/calibration/`: the evaluated model's calibrator.
pub const EVALUATION_CALIBRATOR: &str = "evaluation_calibrator.json";
/// `models/run_date=D/calibration/`: when repurchases happen inside the window.
pub const TIMING: &str = "timing.json";
/// `models/run_date=D/calibration/` ([`crate::Metrics`]).
pub const METRICS: &str = "metrics.json";
/// `models/run_date=D/calibration/` ([`crate::Promotion`]): the champion decision.
pub const PROMOTION: &str = "promotion.json";
/// `models/run_date=D/calibration/` ([`crate::backtest::Backtest`]): the served models' realised
/// performance, the scores of `horizon + settle` days before against the labels known now.
pub const REALISED: &str = "realised.json";
/// `models/run_date=D/calibration/`: the evaluation report page.
pub const REPORT: &str = "report.html";
/// `score_shards/…/`: one shard's population counted into the reference's bins
/// ([`repurchase_model::drift::Population`]), summed by the merge.
pub const POPULATION: &str = "population.json";
/// `monitoring/run_date=D/`: the day's drift report ([`crate::monitoring::DriftReport`]).
pub const DRIFT: &str = "drift.json";
