//! Core library shared by every `repurchase` worker.
//!
//! It owns the contracts between stages so that each worker crate stays thin: where data lives
//! ([`storage`], [`layout`]), how a partition becomes visible ([`manifest`], [`publish`]), one
//! run at a time per stage and date ([`lock`]), what the TheLook tables look like ([`schema`]),
//! how run dates are parsed ([`run_date`]), how errors map to exit codes ([`error`]) and how
//! workers log ([`logging`]).

#![warn(missing_docs, unreachable_pub)]

pub mod cli;
pub mod config;
pub mod error;
pub mod hash;
pub mod layout;
pub mod lock;
pub mod logging;
pub mod manifest;
pub mod parquet_io;
pub mod publish;
pub mod run_date;
pub mod schema;
pub mod sql;
pub mod storage;

pub use config::StoreConfig;
pub use error::{Classify, CoreError, ErrorClass, Result};
pub use layout::Dataset;
pub use manifest::Manifest;
pub use run_date::RunDate;
pub use storage::DataRoot;

/// Version string recorded in every manifest: the crate version plus the git commit when the build
/// knows it (set `REPURCHASE_GIT_SHA` at build time; the Dockerfile does).
pub fn code_version() -> String {
    match option_env!("REPURCHASE_GIT_SHA") {
        Some(sha) if !sha.is_empty() => format!("{}+{}", env!("CARGO_PKG_VERSION"), sha),
        _ => env!("CARGO_PKG_VERSION").to_string(),
    }
}
