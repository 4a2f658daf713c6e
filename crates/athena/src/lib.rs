//! The Athena client the workers share: UNLOAD of a SQL file under `sql/` into a staging folder
//! of an `s3://` data root, with typed execution parameters (see [`statement`]), started, polled
//! with backoff up to a timeout and stopped on failure or SIGTERM (see [`query`], which also
//! classes failures for the exit code), with the client built from the same `AWS_*` settings as
//! the S3 data root (see [`client`]).
//!
//! Users: `extract --source athena` (TheLook's tables, [`AthenaSource::stage`]: for each table,
//! clear `staging/athena/<table>/run_date=D/` (UNLOAD refuses a non-empty location, and a rerun
//! must not load files of an earlier attempt), then run `UNLOAD (<sql/extract/<table>.sql>) TO
//! '<that folder>' WITH (format = 'PARQUET', compression = 'SNAPPY')` in the configured workgroup
//! and database; the seven queries run concurrently) and `build-features --engine athena`
//! (`sql/features/anchors_athena.sql` through [`AthenaSource::unload`]). Snappy rather than
//! UNLOAD's default gzip: the Parquet reader here is built with Snappy only. UNLOAD never writes
//! into a published partition: only the staging prefix.
//!
//! [`cli`] holds the `--athena-*` options the two workers share.
//!
//! The data root must be `s3://`: Athena writes the staged files there and the workers read them
//! back through the same object store.

#![warn(missing_docs, unreachable_pub)]

pub mod cli;
pub mod client;
pub mod error;
pub mod query;
pub mod statement;

use std::time::Duration;

use repurchase_core::schema::Table;
use repurchase_core::{CoreError, DataRoot, RunDate, StoreConfig};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::info;

pub use error::{AthenaError, Result};
pub use query::Finished;
pub use statement::{Identifier, Param, RESULTS_DIR, S3Folder, Unload, staging_dir};

/// What `--athena-*` configures, as typed values.
#[derive(Debug, Clone)]
pub struct AthenaSettings {
    /// Glue database the queries run in (their QueryExecutionContext): TheLook's tables for
    /// extract, the `raw_*` tables of sql/ddl for build-features.
    pub database: Identifier,
    /// Workgroup the queries run in (its result location, encryption and limits apply).
    pub workgroup: Identifier,
    /// Longest a query may run, from its start, before it is stopped (transient failure).
    pub timeout: Duration,
    /// First delay between two status polls; it doubles up to 16 times this.
    pub poll: Duration,
    /// Attempts of one API call (throttling, 5xx, network) inside the SDK.
    pub api_max_attempts: u32,
    /// First backoff between those attempts.
    pub api_initial_backoff: Duration,
}

impl AthenaSettings {
    /// The settings for `database` and `workgroup` with the default timeout, polling and API
    /// retries (30 minutes, 1 s doubling, 5 attempts from 1 s).
    pub fn new(database: Identifier, workgroup: Identifier) -> Self {
        AthenaSettings {
            database,
            workgroup,
            timeout: Duration::from_secs(1800),
            poll: Duration::from_millis(1000),
            api_max_attempts: 5,
            api_initial_backoff: Duration::from_secs(1),
        }
    }
}

/// A connected Athena source.
#[derive(Debug, Clone)]
pub struct AthenaSource {
    /// What it was connected with.
    pub settings: AthenaSettings,
    client: aws_sdk_athena::Client,
}

impl AthenaSource {
    /// Builds the client from the settings and the store configuration (region, endpoint,
    /// credentials); see [`client`].
    pub async fn connect(settings: AthenaSettings, cfg: &StoreConfig) -> Result<Self> {
        let client = client::build(cfg, &settings).await?;
        Ok(AthenaSource { settings, client })
    }

    /// What the manifests record as the source.
    pub fn describe(&self) -> String {
        format!(
            "athena (workgroup {}, database {})",
            self.settings.workgroup, self.settings.database
        )
    }

    /// Clears each table's staging folder, runs the seven UNLOADs and returns them with their
    /// tables and finished queries, in [`Table::ALL`] order.
    pub async fn stage(
        &self,
        root: &DataRoot,
        run_date: RunDate,
        shutdown: &mut Shutdown,
    ) -> Result<Vec<(Table, Unload, Finished)>> {
        // Every statement is built (and every location checked) before anything is deleted.
        let unloads: Vec<Unload> = Table::ALL
            .into_iter()
            .map(|t| Unload::new(root, t, run_date))
            .collect::<Result<_>>()?;
        let finished = self.unload(root, &unloads, shutdown).await?;
        Ok(Table::ALL
            .into_iter()
            .zip(unloads)
            .zip(finished)
            .map(|((t, u), f)| (t, u, f))
            .collect())
    }

    /// Clears each UNLOAD's staging folder, then runs them all (concurrently) and returns their
    /// finished queries in the order given. Labels must be distinct. On a failure, the timeout or
    /// a signal, every query still running is stopped before the error is returned.
    pub async fn unload(
        &self,
        root: &DataRoot,
        unloads: &[Unload],
        shutdown: &mut Shutdown,
    ) -> Result<Vec<Finished>> {
        let results = S3Folder::parse(&root.url(RESULTS_DIR))?;
        for u in unloads {
            let removed = root.delete_prefix(&u.staging_rel).await?;
            if removed > 0 {
                info!(
                    query = %u.label,
                    removed,
                    location = %u.location,
                    "cleared staging folder left by an earlier run"
                );
            }
        }
        let finished = query::run_all(
            &self.client,
            &self.settings,
            unloads,
            results.as_str(),
            shutdown,
        )
        .await?;
        unloads
            .iter()
            .map(|u| {
                finished
                    .iter()
                    .find(|f| f.label == u.label)
                    .cloned()
                    .ok_or_else(|| {
                        AthenaError::Bug(format!("no finished Athena query for {}", u.label))
                    })
            })
            .collect()
    }
}

/// SIGTERM (ECS stopping the task, Airflow killing it) and SIGINT (Ctrl-C), turned into a future
/// the Athena phase can race against, so that running queries are stopped rather than left to run
/// and bill after the task is gone.
///
/// Once listened for, the signals no longer kill the process by default, so every phase of a
/// worker using Athena races against [`Shutdown::requested`]: the queries (stopped first) and then
/// (in extract) loading and publishing. A signal at any point ends the task with a
/// transient error (exit 75): the DAG may retry, and a rerun redoes everything (staging is cleared,
/// and a partition being written at that moment stays unpublished, its manifest coming last).
/// Signals are buffered from registration on, so one that arrives while staging folders are
/// cleared is seen as soon as the queries are started.
#[derive(Debug, Default)]
pub struct Shutdown {
    signals: Vec<(&'static str, Signal)>,
}

impl Shutdown {
    /// No signal handling (library callers and tests).
    pub fn never() -> Self {
        Shutdown::default()
    }

    /// Listens for SIGTERM and SIGINT. Must run inside the tokio runtime.
    pub fn on_signals() -> Result<Self> {
        let mut signals = Vec::new();
        for (name, kind) in [
            ("SIGTERM", SignalKind::terminate()),
            ("SIGINT", SignalKind::interrupt()),
        ] {
            let s = signal(kind).map_err(|source| CoreError::Io {
                path: format!("{name} handler"),
                source,
            })?;
            signals.push((name, s));
        }
        Ok(Shutdown { signals })
    }

    /// Resolves with the signal's name when one arrives; never, for [`Shutdown::never`].
    pub async fn requested(&mut self) -> &'static str {
        if self.signals.is_empty() {
            return std::future::pending().await;
        }
        let waits = self.signals.iter_mut().map(|(name, s)| {
            Box::pin(async move {
                s.recv().await;
                *name
            })
        });
        futures::future::select_all(waits).await.0
    }
}
