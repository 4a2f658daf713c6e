//! Model pieces shared by the `train`, `calibrate` and `score` workers.
//!
//! - [`table`]: a feature partition in memory, with the rule that decides which columns are
//!   features (and refuses any identifier).
//! - [`encoding`]: categorical → number, fitted on the training window only.
//! - [`booster`]: the gradient-boosted trees (forust-ml) and the saved model artefact.
//! - [`calibration`] and [`metrics`]: probability calibration and evaluation.
//! - [`split`]: the out-of-time train / validation / test windows.

pub mod booster;
pub mod calibration;
pub mod encoding;
pub mod io;
pub mod metrics;
pub mod split;
pub mod table;

pub use booster::{BoosterParams, ModelArtifact};
pub use table::FeatureTable;
