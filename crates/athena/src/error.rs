//! The Athena client's one error type. A failed query carries its own class, decided from
//! Athena's answer (see [`crate::query`]); settings the client cannot run with are bad input; the
//! storage errors of the layer below keep theirs.

use repurchase_core::{Classify, CoreError, ErrorClass};

/// Why an Athena phase failed.
#[derive(Debug, thiserror::Error)]
pub enum AthenaError {
    /// Clearing or reading the staging folders, signal handlers.
    #[error(transparent)]
    Core(#[from] CoreError),

    /// A query or API call failed; `class` says whether a retry can help (Athena's error
    /// category, throttling, timeouts, a stop signal) or the query itself is wrong.
    #[error("{what}: {message}")]
    Query {
        /// The query's label (`table orders`, `features`) or the API call.
        what: String,
        /// Athena's reason, with the query id where there is one.
        message: String,
        /// Transient or bad input.
        class: ErrorClass,
    },

    /// A setting the client cannot run with (no region, a name or a location Athena cannot take,
    /// a statement whose placeholders do not match its parameters).
    #[error("{0}")]
    Settings(String),

    /// A broken invariant of the client (a started query with no result).
    #[error("bug in the Athena client: {0}")]
    Bug(String),
}

impl Classify for AthenaError {
    fn class(&self) -> ErrorClass {
        match self {
            AthenaError::Core(e) => e.class(),
            AthenaError::Query { class, .. } => *class,
            AthenaError::Settings(_) => ErrorClass::BadInput,
            AthenaError::Bug(_) => ErrorClass::Bug,
        }
    }
}

/// The Athena client's results.
pub type Result<T, E = AthenaError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_error_keeps_its_class_and_settings_are_bad_input() {
        let q = AthenaError::Query {
            what: "features".into(),
            message: "throttled".into(),
            class: ErrorClass::Transient,
        };
        assert_eq!(q.class(), ErrorClass::Transient);
        assert_eq!(q.to_string(), "features: throttled");
        assert_eq!(
            AthenaError::Settings("x".into()).class(),
            ErrorClass::BadInput
        );
        assert_eq!(AthenaError::Bug("x".into()).class(), ErrorClass::Bug);
    }
}
