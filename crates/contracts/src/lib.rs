//! The artefacts the workers exchange through storage, in one place.
//!
//! Stages meet only through published partitions: `build-features` writes what `train` reads,
//! `train` what `calibrate` reads, `calibrate` what `score` reads. Each artefact's file name, its
//! type, the typed `parameters` of its manifest and the reader its consumers use live here, so a
//! worker crate depends on the core, the model and this crate, never on another worker.
//!
//! Readers never fill in a default: a missing or malformed field is a
//! [`CoreError::BadManifest`](repurchase_core::CoreError::BadManifest) naming the partition and
//! the field (exit 2: rebuild the partition with the stage that writes it).

#![warn(missing_docs, unreachable_pub)]

pub mod backtest;
pub mod calibration;
pub mod card;
pub mod champion;
pub mod files;
pub mod monitoring;
pub mod params;

pub use calibration::{CalibratedCard, ElapsedCheck, Metrics, ServedCalibration};
pub use card::{Candidate, ModelCard, SamplingCard, ServedModel, WindowStats};
pub use champion::{Comparison, ModelRef, Promotion, Verdict};
pub use params::{
    AnchorMode, CalibrationParams, FeaturesParams, FlagRule, ModelParams, ScoresParams,
};
