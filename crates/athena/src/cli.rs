//! The `--athena-*` options both Athena users take (`extract --source athena`, `build-features
//! --engine athena`). The database and the timeout stay with each worker: they differ in default
//! (TheLook's database with 30-minute extracts; the lake's database with one hour-long query).

use std::time::Duration;

use clap::Args;

use crate::{AthenaSettings, Identifier};

/// Workgroup and polling of Athena queries.
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// Athena workgroup the queries run in.
    #[arg(long = "athena-workgroup", env = "REPURCHASE_ATHENA_WORKGROUP", default_value = "primary", value_parser = parse_identifier)]
    pub workgroup: Identifier,

    /// First delay between status polls of a query, in milliseconds; it doubles up to 16 times this.
    #[arg(long = "athena-poll-ms", env = "REPURCHASE_ATHENA_POLL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub poll_ms: u64,
}

impl QueryArgs {
    /// Settings for queries in `database`, each stopped after `timeout_secs`.
    pub fn settings(&self, database: &Identifier, timeout_secs: u64) -> AthenaSettings {
        AthenaSettings {
            timeout: Duration::from_secs(timeout_secs),
            poll: Duration::from_millis(self.poll_ms),
            ..AthenaSettings::new(database.clone(), self.workgroup.clone())
        }
    }
}

/// clap value parser for database and workgroup names (see [`Identifier`]).
pub fn parse_identifier(s: &str) -> Result<Identifier, String> {
    s.parse::<Identifier>().map_err(|e| e.to_string())
}
