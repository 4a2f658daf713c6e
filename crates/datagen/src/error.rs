//! Errors of the generator, each mapped to an [`ErrorClass`] so the CLI can exit with the code the
//! DAG expects (bad arguments are not retried, storage hiccups are).

use repurchase_core::{Classify, CoreError, ErrorClass};

/// What generating or writing TheLook-schema data fails with.
#[derive(Debug, thiserror::Error)]
pub enum DatagenError {
    /// The [`GenConfig`](crate::GenConfig) is out of range (no users, too many, dates in the
    /// wrong order).
    #[error("invalid generator configuration: {0}")]
    InvalidConfig(String),

    /// A name parsed from text (a profile, an output format) is not one of the known values.
    #[error("unknown {what} {value:?}; expected one of {expected}")]
    UnknownValue {
        /// What was being parsed, e.g. `profile`.
        what: &'static str,
        /// The text given.
        value: String,
        /// The accepted values, comma-separated.
        expected: &'static str,
    },

    /// The CSVs are compiled into the binary, so a parse failure is a broken build, not bad input.
    #[error("embedded reference table {file}, line {line}: {reason}")]
    Reference {
        /// The embedded CSV's file name.
        file: &'static str,
        /// The line that failed to parse.
        line: usize,
        /// Why it failed.
        reason: String,
    },

    /// Arrow refused a table's columns as a record batch: a schema mismatch in the generator.
    #[error("building the {table} batch: {source}")]
    Arrow {
        /// The table being built.
        table: String,
        /// Arrow's error.
        #[source]
        source: arrow::error::ArrowError,
    },

    /// Encoding a generated table as Parquet failed.
    #[error("encoding {table} as parquet: {source}")]
    Parquet {
        /// The table being encoded.
        table: String,
        /// The Parquet writer's error.
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// Encoding a generated table as BigQuery-style CSV failed.
    #[error("encoding {table} as csv: {reason}")]
    Csv {
        /// The table being encoded.
        table: String,
        /// Why the encoder failed.
        reason: String,
    },

    /// Boxed because core's error is large and every generator function returns this type.
    #[error("writing {path}: {source}")]
    Storage {
        /// URL of the file being written.
        path: String,
        /// The storage error; its class decides whether the write is retried.
        #[source]
        source: Box<CoreError>,
    },

    /// A blocking task (simulating users, formatting a table) panicked or was cancelled.
    #[error("worker for {what} failed: {reason}")]
    Task {
        /// What the task was doing.
        what: String,
        /// The join error.
        reason: String,
    },
}

impl Classify for DatagenError {
    fn class(&self) -> ErrorClass {
        match self {
            DatagenError::InvalidConfig(_) | DatagenError::UnknownValue { .. } => {
                ErrorClass::BadInput
            }
            // Core already tells a flaky store (transient) from a wrong root or missing permission.
            DatagenError::Storage { source, .. } => source.class(),
            DatagenError::Reference { .. }
            | DatagenError::Arrow { .. }
            | DatagenError::Parquet { .. }
            | DatagenError::Csv { .. }
            | DatagenError::Task { .. } => ErrorClass::Bug,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(
            DatagenError::InvalidConfig("x".into()).class(),
            ErrorClass::BadInput
        );
        let io = CoreError::Io {
            path: "p".into(),
            source: std::io::Error::other("disk"),
        };
        assert_eq!(
            DatagenError::Storage {
                path: "p".into(),
                source: Box::new(io)
            }
            .class(),
            ErrorClass::Transient
        );
        assert_eq!(
            DatagenError::Csv {
                table: "t".into(),
                reason: "r".into()
            }
            .class(),
            ErrorClass::Bug
        );
    }
}
