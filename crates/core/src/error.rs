//! Error type of the core library and the mapping from failures to process exit codes.
//!
//! Airflow retries a task on any non-zero exit, but operators need to tell "fix the data" from
//! "try again later" from "page an engineer": each error therefore carries an [`ErrorClass`].

use std::path::PathBuf;

/// How a failure should be handled by whoever runs the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The input data or the arguments are wrong; retrying will not help. Exit code 2.
    BadInput,
    /// A dependency (object store, Athena, network) failed in a way that may pass. Exit code 75
    /// (`EX_TEMPFAIL`), which the DAG retries.
    Transient,
    /// A bug or broken invariant in this program. Exit code 70 (`EX_SOFTWARE`).
    Bug,
}

impl ErrorClass {
    pub const fn exit_code(self) -> u8 {
        match self {
            ErrorClass::BadInput => 2,
            ErrorClass::Transient => 75,
            ErrorClass::Bug => 70,
        }
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("invalid data root {url:?}: {reason}")]
    InvalidDataRoot { url: String, reason: String },

    #[error("invalid run date {value:?}: expected YYYY-MM-DD")]
    InvalidRunDate { value: String },

    #[error(
        "partition {path} is not published: no _manifest.json (run the stage that writes it for run date {run_date})"
    )]
    NotPublished { path: String, run_date: String },

    #[error("manifest {path} is unreadable: {reason}")]
    BadManifest { path: String, reason: String },

    #[error("object store operation {op} on {path} failed: {source}")]
    Store {
        op: &'static str,
        path: String,
        #[source]
        source: object_store::Error,
    },

    #[error("parquet error on {path}: {source}")]
    Parquet {
        path: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    #[error("arrow error in {context}: {source}")]
    Arrow {
        context: String,
        #[source]
        source: arrow::error::ArrowError,
    },

    #[error("query {query} failed: {source}")]
    Query {
        query: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },

    #[error("SQL file {name} not found under {dir}")]
    MissingSql { name: String, dir: PathBuf },

    #[error("table {table}: {message}")]
    BadTable { table: String, message: String },

    #[error("{0}")]
    Invalid(String),

    #[error("io error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl CoreError {
    /// Classifies the error for the exit code. Object-store errors other than "not found" and
    /// "permission" are treated as transient: they are network or service faults.
    pub fn class(&self) -> ErrorClass {
        match self {
            CoreError::InvalidDataRoot { .. }
            | CoreError::InvalidRunDate { .. }
            | CoreError::NotPublished { .. }
            | CoreError::BadManifest { .. }
            | CoreError::BadTable { .. }
            | CoreError::Invalid(_) => ErrorClass::BadInput,
            CoreError::Store { source, .. } => classify_store_error(source),
            CoreError::Parquet { .. } => ErrorClass::BadInput,
            CoreError::Query { source, .. } => classify_datafusion_error(source),
            CoreError::Arrow { .. } => ErrorClass::BadInput,
            CoreError::MissingSql { .. } => ErrorClass::Bug,
            CoreError::Io { .. } => ErrorClass::Transient,
        }
    }
}

pub fn classify_store_error(e: &object_store::Error) -> ErrorClass {
    use object_store::Error as E;
    match e {
        E::NotFound { .. }
        | E::InvalidPath { .. }
        | E::PermissionDenied { .. }
        | E::Unauthenticated { .. } => ErrorClass::BadInput,
        E::NotSupported { .. } | E::NotImplemented { .. } => ErrorClass::Bug,
        _ => ErrorClass::Transient,
    }
}

pub fn classify_datafusion_error(e: &datafusion::error::DataFusionError) -> ErrorClass {
    use datafusion::error::DataFusionError as D;
    match e {
        D::ObjectStore(inner) => classify_store_error(inner),
        D::IoError(_) => ErrorClass::Transient,
        D::ParquetError(_) | D::ArrowError(..) | D::SchemaError(..) | D::Plan(_) => {
            ErrorClass::BadInput
        }
        D::Context(_, inner) => classify_datafusion_error(inner),
        D::External(inner) => match inner.downcast_ref::<object_store::Error>() {
            Some(store) => classify_store_error(store),
            None => ErrorClass::Bug,
        },
        _ => ErrorClass::Bug,
    }
}

impl CoreError {
    pub fn store(op: &'static str, path: impl ToString, source: object_store::Error) -> Self {
        CoreError::Store {
            op,
            path: path.to_string(),
            source,
        }
    }
    pub fn query(query: impl ToString, source: datafusion::error::DataFusionError) -> Self {
        CoreError::Query {
            query: query.to_string(),
            source,
        }
    }
    pub fn arrow(context: impl ToString, source: arrow::error::ArrowError) -> Self {
        CoreError::Arrow {
            context: context.to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct() {
        let codes = [ErrorClass::BadInput, ErrorClass::Transient, ErrorClass::Bug]
            .map(ErrorClass::exit_code);
        assert_eq!(codes, [2, 75, 70]);
    }

    #[test]
    fn missing_object_is_bad_input_and_generic_is_transient() {
        let nf = object_store::Error::NotFound {
            path: "x".into(),
            source: "gone".into(),
        };
        assert_eq!(classify_store_error(&nf), ErrorClass::BadInput);
        let generic = object_store::Error::Generic {
            store: "S3",
            source: "503 Slow Down".into(),
        };
        assert_eq!(classify_store_error(&generic), ErrorClass::Transient);
    }
}
