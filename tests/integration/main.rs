//! The one integration-test binary: the workers end to end on real Parquet, through the same
//! object-store and DataFusion code paths production uses (`memory://` and local disk here).

mod athena;
mod bad_input;
mod cli;
mod crash;
mod diagnose;
mod docs;
mod drift;
mod evaluation;
mod features_athena;
mod fixtures;
mod gates;
mod http;
mod labels;
mod leakage;
mod locks;
mod permissions;
mod pipeline;
mod reasons;
mod report;
mod rolling;
mod s3;
mod s3_faults;
mod sampling;
mod shards;
mod snapshots;
mod sql_source;
mod storage;
mod support;
mod tracking;
