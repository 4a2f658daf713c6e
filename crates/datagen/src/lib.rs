//! Synthetic data shaped like Google's TheLook eCommerce dataset, for demos and end-to-end tests
//! of the repurchase pipeline.
//!
//! [`generate_into`] writes the seven TheLook tables below a data root as BigQuery-style CSV or
//! Parquet, deterministically for a [`GenConfig`] and in bounded memory: users are simulated and
//! appended to the files chunk by chunk. [`generate`] builds the same tables in memory (small runs,
//! tests) and [`write`] stores such tables, with the same bytes. Two profiles exist:
//!
//! * [`Profile::Thelook`] mimics TheLook's own generator: orders at random times with independent
//!   statuses, so nothing about a customer predicts repurchase.
//! * [`Profile::Signal`] (default) keeps the same schema and similar marginals but draws every
//!   Complete order's chance of a Complete follow-up within 60 days from a known logistic model of
//!   the customer's history (see `signal.rs`). Those probabilities and the realised labels are
//!   returned as the truth table, so a model's scores can be compared with the best achievable.
//!
//! Ids are assigned sequentially user by user, as TheLook does, which is why they must never be
//! used as features.

#![warn(missing_docs, unreachable_pub)]

mod build;
mod catalog;
mod chunks;
mod csv;
mod error;
mod names;
mod reference;
mod signal;
mod simulate;
mod stream;
mod timefmt;
mod write;

use std::fmt;
use std::str::FromStr;

use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use repurchase_core::schema::Table;

pub use build::truth_schema;
pub use error::DatagenError;
pub use signal::repurchase_delay_cdf;
pub use stream::generate_into;
pub use timefmt::format_bigquery_ts;
pub use write::{OutputFormat, TRUTH_PATH, WriteSummary, write};

use crate::chunks::{CHUNK_USERS, Pipeline};

/// How orders are drawn: with a planted, known repurchase signal or like TheLook's own generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Orders follow a known repurchase model; a truth table is produced.
    #[default]
    Signal,
    /// TheLook's own generator: no signal, no truth table.
    Thelook,
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Signal => "signal",
            Profile::Thelook => "thelook",
        })
    }
}

impl FromStr for Profile {
    type Err = DatagenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "signal" => Ok(Profile::Signal),
            "thelook" => Ok(Profile::Thelook),
            _ => Err(DatagenError::UnknownValue {
                what: "profile",
                value: s.to_string(),
                expected: "signal, thelook",
            }),
        }
    }
}

/// Memory does not grow with the users ([`generate_into`] streams), but one file does: the signal
/// profile's events.csv takes ~4.7 kB per user (2019 to mid-2025), ~94 GB at this count, and one
/// S3 upload holds at most 10,000 parts of 10 MiB (~105 GB). Generate several roots for more.
const MAX_USERS: u64 = 20_000_000;

/// What to generate: how many users, from which seed, over which dates, with which profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenConfig {
    /// Number of users to simulate (1 to 20 million).
    pub users: u64,
    /// Seed of every random draw; the same config always gives the same data.
    pub seed: u64,
    /// First day users can sign up.
    pub start_date: NaiveDate,
    /// Last day of data, inclusive: no timestamp is later than its 23:59:59.999999.
    pub end_date: NaiveDate,
    /// Whether orders carry the planted repurchase signal.
    pub profile: Profile,
}

impl GenConfig {
    /// TheLook's history starts in 2019.
    pub const DEFAULT_START_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2019, 1, 1) {
        Some(d) => d,
        None => panic!("2019-01-01 is a valid date"),
    };

    /// A config starting at [`Self::DEFAULT_START_DATE`].
    pub fn new(users: u64, seed: u64, end_date: NaiveDate, profile: Profile) -> Self {
        GenConfig {
            users,
            seed,
            start_date: Self::DEFAULT_START_DATE,
            end_date,
            profile,
        }
    }

    /// Checks there is at least one user, no more than one export supports, and that the start
    /// date is before the end date.
    pub fn validate(&self) -> Result<(), DatagenError> {
        if self.users < 1 {
            return Err(DatagenError::InvalidConfig(
                "users must be at least 1".into(),
            ));
        }
        if self.users > MAX_USERS {
            return Err(DatagenError::InvalidConfig(format!(
                "{} users is more than the {MAX_USERS} one export supports (its events \
                 file would outgrow an S3 upload); generate several instead",
                self.users
            )));
        }
        if self.start_date >= self.end_date {
            return Err(DatagenError::InvalidConfig(format!(
                "start date {} must be before end date {}",
                self.start_date, self.end_date
            )));
        }
        Ok(())
    }
}

/// The generated tables, in [`Table::ALL`] order, and the truth table of the signal profile.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Every TheLook table with its batch, in [`Table::ALL`] order.
    pub tables: Vec<(Table, RecordBatch)>,
    /// Per Complete order: the true repurchase probability and the realised label, with the
    /// schema of [`truth_schema`]; `None` for [`Profile::Thelook`].
    pub truth: Option<RecordBatch>,
}

impl Generated {
    /// The batch of `table`, if it was generated.
    pub fn table(&self, table: Table) -> Option<&RecordBatch> {
        self.tables
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, b)| b)
    }
}

/// Generates every table for `cfg` in memory. Pure: the same config always gives identical
/// batches, whatever the number of threads used. The tables of a large run do not fit in memory:
/// [`generate_into`] writes the same data, chunk by chunk.
pub fn generate(cfg: &GenConfig) -> Result<Generated, DatagenError> {
    generate_chunked(cfg, CHUNK_USERS)
}

/// [`generate`] walking the users `chunk_users` at a time (which changes nothing in the output).
pub(crate) fn generate_chunked(
    cfg: &GenConfig,
    chunk_users: u64,
) -> Result<Generated, DatagenError> {
    let mut pipeline = Pipeline::new(cfg, chunk_users)?;
    let mut users = Vec::new();
    let mut orders = Vec::new();
    let mut items = Vec::new();
    let mut inventory = Vec::new();
    let mut events = Vec::new();
    let mut truth = Vec::new();
    while !pipeline.is_done() {
        for b in pipeline.next_group(Ok)? {
            users.push(b.users);
            orders.push(b.orders);
            items.push(b.items);
            inventory.push(b.inventory);
            events.push(b.events);
            truth.push(b.truth);
        }
    }
    let cat = |t: Table, batches| build::concat(t.name(), t.schema(), batches);
    let tables = vec![
        (Table::Users, cat(Table::Users, users)?),
        (Table::Orders, cat(Table::Orders, orders)?),
        (Table::OrderItems, cat(Table::OrderItems, items)?),
        (Table::Products, pipeline.products()?),
        (
            Table::InventoryItems,
            cat(Table::InventoryItems, inventory)?,
        ),
        (Table::Events, cat(Table::Events, events)?),
        (Table::DistributionCenters, pipeline.distribution_centers()?),
    ];
    let truth = match cfg.profile {
        Profile::Signal => Some(build::concat("anchor_truth", truth_schema(), truth)?),
        Profile::Thelook => None,
    };
    Ok(Generated { tables, truth })
}

#[cfg(test)]
mod tests;
