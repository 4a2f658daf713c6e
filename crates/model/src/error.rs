//! The model crate's one error type: a saved model or a feature input the model cannot use, and
//! the storage errors of the layer below. Every variant but [`ModelError::Core`] is bad input
//! (exit 2): the trees, the encoders and the feature contract are data the model was given.

use repurchase_core::{Classify, CoreError, ErrorClass};

/// Why a model could not be fitted, read or applied.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Storage, manifests and queries, classified by the core.
    #[error(transparent)]
    Core(#[from] CoreError),

    /// A model file, its trees or the input handed to them cannot be used (unreadable JSON, an
    /// unknown format version, a feature the model needs missing from the input, training that
    /// forust refused).
    #[error("model: {reason}")]
    Model {
        /// What is wrong, naming the feature or the tree where there is one.
        reason: String,
    },

    /// A feature partition that breaks the feature contract (a missing or mistyped column, nulls
    /// in a label).
    #[error("table features: {reason}")]
    BadTable {
        /// What is wrong, naming the column.
        reason: String,
    },

    /// A column named like a surrogate key (`*_id`) among the features: IDs leak the future and
    /// are never model inputs.
    #[error("column {column:?} looks like an identifier and must not be a model feature")]
    IdentifierFeature {
        /// The offending column.
        column: String,
    },
}

impl ModelError {
    pub(crate) fn model(reason: impl std::fmt::Display) -> Self {
        ModelError::Model {
            reason: reason.to_string(),
        }
    }

    pub(crate) fn table(reason: impl std::fmt::Display) -> Self {
        ModelError::BadTable {
            reason: reason.to_string(),
        }
    }
}

impl Classify for ModelError {
    fn class(&self) -> ErrorClass {
        match self {
            ModelError::Core(e) => e.class(),
            ModelError::Model { .. }
            | ModelError::BadTable { .. }
            | ModelError::IdentifierFeature { .. } => ErrorClass::BadInput,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_errors_are_bad_input_and_core_errors_keep_their_class() {
        assert_eq!(ModelError::model("x").class(), ErrorClass::BadInput);
        assert_eq!(ModelError::table("x").to_string(), "table features: x");
        let bug = ModelError::from(CoreError::Bug {
            what: "w".into(),
            reason: "r".into(),
        });
        assert_eq!(bug.class(), ErrorClass::Bug);
    }
}
