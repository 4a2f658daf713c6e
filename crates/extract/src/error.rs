//! `extract`'s one error type: the storage, validation and publishing errors of the core (a
//! table, column and row named in [`CoreError::BadTable`]), and the Athena client's errors when
//! the source is Athena.

use repurchase_athena::AthenaError;
use repurchase_core::{Classify, CoreError, ErrorClass};

/// What `extract` fails with.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// Reading the source, validating the tables, publishing the partitions.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Staging the tables with Athena (`--source athena`), or a stop signal during it.
    #[error(transparent)]
    Athena(#[from] AthenaError),
}

impl Classify for ExtractError {
    fn class(&self) -> ErrorClass {
        match self {
            ExtractError::Core(e) => e.class(),
            ExtractError::Athena(e) => e.class(),
        }
    }
}

/// `extract`'s results.
pub type Result<T, E = ExtractError> = std::result::Result<T, E>;
