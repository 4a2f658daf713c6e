//! `build-features`' one error type: the core's storage, query, gate and publishing errors, the
//! Athena client's when the engine is Athena, and what the feature query's own output can get
//! wrong.

use repurchase_athena::AthenaError;
use repurchase_core::{Classify, CoreError, ErrorClass};

/// What `build-features` fails with.
#[derive(Debug, thiserror::Error)]
pub enum FeaturesError {
    /// Reading the raw partitions, running the query, the quality gates, publishing.
    #[error(transparent)]
    Core(#[from] CoreError),

    /// Running the feature query in Athena (`--engine athena`), or a stop signal during it.
    #[error(transparent)]
    Athena(#[from] AthenaError),

    /// No order was Complete by the end of the run date: nothing to anchor a window on.
    #[error(
        "no anchors: no order was Complete by the end of the run date in raw/orders, so no 60-day window can be anchored (is the run date before the first completed order?)"
    )]
    NoAnchors,

    /// A setting this run cannot work with.
    #[error("{0}")]
    Settings(String),

    /// The feature query returned rows of another shape than the contract (a column missing or
    /// of another type): the SQL and the tables it reads disagree.
    #[error("feature query output: {0}")]
    QueryOutput(String),

    /// A broken invariant of this crate (the schema probe over one-row tables failed).
    #[error("bug in build-features: {0}")]
    Bug(String),
}

impl Classify for FeaturesError {
    fn class(&self) -> ErrorClass {
        match self {
            FeaturesError::Core(e) => e.class(),
            FeaturesError::Athena(e) => e.class(),
            FeaturesError::NoAnchors
            | FeaturesError::Settings(_)
            | FeaturesError::QueryOutput(_) => ErrorClass::BadInput,
            FeaturesError::Bug(_) => ErrorClass::Bug,
        }
    }
}

/// `build-features`' results.
pub type Result<T, E = FeaturesError> = std::result::Result<T, E>;
