//! The `repurchase` command's one error type: each worker's and library's errors, wrapped with
//! their class intact, and what the backtests refuse of their own.

use repurchase_calibrate::CalibrateError;
use repurchase_core::{Classify, CoreError, ErrorClass};
use repurchase_datagen::DatagenError;
use repurchase_extract::ExtractError;
use repurchase_features::FeaturesError;
use repurchase_model::ModelError;
use repurchase_score::ScoreError;
use repurchase_train::TrainError;

/// What `generate`, `demo` and `backtest` fail with. The wrapped errors are boxed: each holds a
/// [`CoreError`] beside its own variants, and every `Result` of the command stays small.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Storage, manifests, queries and publishing.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Reading features or a model.
    #[error(transparent)]
    Model(Box<ModelError>),
    /// Generating or writing TheLook-schema data.
    #[error(transparent)]
    Datagen(Box<DatagenError>),
    /// The `extract` stage of a demo or a replay.
    #[error(transparent)]
    Extract(Box<ExtractError>),
    /// The `build-features` stage of a demo or a replay.
    #[error(transparent)]
    Features(Box<FeaturesError>),
    /// The `train` stage of a demo or a replay.
    #[error(transparent)]
    Train(Box<TrainError>),
    /// The `calibrate` stage of a demo or a replay.
    #[error(transparent)]
    Calibrate(Box<CalibrateError>),
    /// The `score` stage of a demo or a replay.
    #[error(transparent)]
    Score(Box<ScoreError>),
    /// Backtest settings or a lake the backtest cannot judge (origins in the wrong order, a lake
    /// that is not empty, outcomes not yet known).
    #[error("{0}")]
    Backtest(String),
    /// A monitoring page with no drift report to show.
    #[error("{0}")]
    Monitor(String),
}

/// `From` for the boxed variants, so that `?` wraps each library's error.
macro_rules! boxed_from {
    ($($variant:ident($error:ty)),* $(,)?) => {
        $(impl From<$error> for CliError {
            fn from(e: $error) -> Self {
                CliError::$variant(Box::new(e))
            }
        })*
    };
}

boxed_from!(
    Model(ModelError),
    Datagen(DatagenError),
    Extract(ExtractError),
    Features(FeaturesError),
    Train(TrainError),
    Calibrate(CalibrateError),
    Score(ScoreError),
);

impl Classify for CliError {
    fn class(&self) -> ErrorClass {
        match self {
            CliError::Core(e) => e.class(),
            CliError::Model(e) => e.class(),
            CliError::Datagen(e) => e.class(),
            CliError::Extract(e) => e.class(),
            CliError::Features(e) => e.class(),
            CliError::Train(e) => e.class(),
            CliError::Calibrate(e) => e.class(),
            CliError::Score(e) => e.class(),
            CliError::Backtest(_) | CliError::Monitor(_) => ErrorClass::BadInput,
        }
    }
}

/// The `repurchase` command's results.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
