//! Errors of the generator, each mapped to an [`ErrorClass`] so the CLI can exit with the code the
//! DAG expects (bad arguments are not retried, storage hiccups are).

use repurchase_core::{Classify, CoreError, ErrorClass};

/// What generating or writing TheLook-schema data fails with.
#[derive(Debug, thiserror::Error)]
pub enum DatagenError {
    #[error("invalid generator configuration: {0}")]
    InvalidConfig(String),

    #[error("unknown {what} {value:?}; expected one of {expected}")]
    UnknownValue {
        what: &'static str,
        value: String,
        expected: &'static str,
    },

    /// The CSVs are compiled into the binary, so a parse failure is a broken build, not bad input.
    #[error("embedded reference table {file}, line {line}: {reason}")]
    Reference {
        file: &'static str,
        line: usize,
        reason: String,
    },

    #[error("building the {table} batch: {source}")]
    Arrow {
        table: String,
        #[source]
        source: arrow::error::ArrowError,
    },

    #[error("encoding {table} as parquet: {source}")]
    Parquet {
        table: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    #[error("encoding {table} as csv: {reason}")]
    Csv { table: String, reason: String },

    /// Boxed because core's error is large and every generator function returns this type.
    #[error("writing {path}: {source}")]
    Storage {
        path: String,
        #[source]
        source: Box<CoreError>,
    },

    #[error("worker for {what} failed: {reason}")]
    Task { what: String, reason: String },
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
