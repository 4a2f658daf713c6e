//! Model pieces shared by the `train`, `calibrate` and `score` workers.
//!
//! - [`table`]: a feature partition in memory, with the rule that decides which columns are
//!   features (and refuses any identifier).
//! - [`encoding`]: categorical → number, fitted on the training window only.
//! - [`booster`]: the gradient-boosted trees (forust-ml) and the saved model artefact.
//! - [`forest`]: the trees compiled for fast, exact prediction.
//! - [`explain`]: Shapley values per row, and the reasons they give.
//! - [`calibration`] and [`metrics`]: probability calibration and evaluation.
//! - [`split`]: the out-of-time train / validation / test windows and the cross-fitting folds.
//! - [`crossfit`]: the fold models' predictions the served model is calibrated on.
//! - [`drift`]: the scored population against the served model's reference (PSI, unknown categories).
//! - [`report`]: the self-contained HTML evaluation report (metrics, curves, deciles).
//! - [`error`]: [`ModelError`], what the functions above refuse.
//! - [`timing`]: when repurchases happen inside the window, for scores part-way through it.

#![warn(missing_docs, unreachable_pub)]

pub mod booster;
pub mod calibration;
pub mod crossfit;
pub mod drift;
pub mod encoding;
pub mod error;
pub mod explain;
pub mod forest;
pub mod io;
pub mod metrics;
pub mod report;
pub mod split;
pub mod table;
pub mod timing;

pub use booster::{BoosterParams, ModelArtifact};
pub use error::ModelError;
pub use table::FeatureTable;
