//! Experiment tracking in MLflow, never in the way of the pipeline.
//!
//! [`track`] logs what a stage knows about one model to that model's MLflow run — parameters,
//! tags, metrics (with steps for curves) and artefacts through the server's artefact proxy —
//! finding the run again by its `repurchase.model_version` tag, so a rerun logs to the same run
//! instead of making another. With a [`Registration`] it also mirrors a calibration into the
//! model registry: the model becomes a version of one registered model (found again by its run),
//! and the `champion` alias moves to it when, and only when, the calibration promoted it.
//!
//! It never fails and never takes longer than the configured bound in all: whatever goes wrong (no
//! server, an error answer, a server that does not answer) becomes [`Tracking::NotTracked`] with
//! the reason, for the caller to record beside its unchanged outputs.

#![warn(missing_docs, unreachable_pub)]

pub mod mlflow;

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

pub use crate::mlflow::{Metric, Mlflow, MlflowError, RunInfo};

/// The tag that names the model a run is about; runs are found again by it.
pub const MODEL_VERSION_TAG: &str = "repurchase.model_version";
/// The alias of the registered model's champion version.
pub const CHAMPION_ALIAS: &str = "champion";

/// Where and how to track.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingConfig {
    /// The server, `http(s)://host:port[/prefix]`.
    pub uri: String,
    /// The experiment's name.
    pub experiment: String,
    /// The registered model's name.
    pub registered_model: String,
    /// The bound on all of a stage's calls together.
    pub timeout: Duration,
}

impl TrackingConfig {
    /// The server as recorded in manifests: without credentials (`user:password@`).
    pub fn server(&self) -> String {
        match self.uri.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                format!("{scheme}://{host}")
            }
            None => self.uri.clone(),
        }
    }
}

/// What became of a stage's tracking, recorded in its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Tracking {
    /// Logged to the server.
    Tracked {
        /// The server, without credentials.
        server: String,
        /// The experiment's id.
        experiment_id: String,
        /// The run's id.
        run_id: String,
        /// The registered model's version (calibrate).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model_version: Option<String>,
        /// Whether the champion alias points at this version after the stage (calibrate).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        champion: Option<bool>,
    },
    /// Not logged, and why; the stage's outputs are as without tracking.
    NotTracked {
        /// The server, without credentials.
        server: String,
        /// What went wrong.
        reason: String,
    },
}

/// Everything one stage logs to its model's run.
#[derive(Debug, Clone, Default)]
pub struct RunLog {
    /// The model's version: the run's name and its [`MODEL_VERSION_TAG`].
    pub model_version: String,
    /// Start of the run in ms since the epoch; from the run date, so reruns log the same.
    pub time_ms: i64,
    /// Tags (besides the model version).
    pub tags: Vec<(String, String)>,
    /// Parameters; MLflow refuses to change a logged one, so they are only logged by `train`.
    pub params: Vec<(String, String)>,
    /// Metrics (with steps for curves).
    pub metrics: Vec<Metric>,
    /// Artefacts: path under the run's artefact root, bytes.
    pub artifacts: Vec<(String, Bytes)>,
}

/// What `calibrate` asks of the registry.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// Tags of the version (the promotion's decision and reason, …).
    pub tags: Vec<(String, String)>,
    /// The artefact (under the run's root) the version points at, e.g. `model/model.json`.
    pub source_path: String,
    /// Whether `promotion.json` made this model the champion.
    pub promoted: bool,
}

/// Logs `log` to its model's run (found by its tag, or created), and with `registration`
/// mirrors it into the registry; never fails, never takes longer than the configured bound.
pub async fn track(
    config: &TrackingConfig,
    log: &RunLog,
    registration: Option<&Registration>,
) -> Tracking {
    let server = config.server();
    let attempt = tokio::time::timeout(config.timeout, track_inner(config, log, registration));
    let tracking = match attempt.await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => Tracking::NotTracked {
            server,
            reason: e.to_string(),
        },
        Err(_) => Tracking::NotTracked {
            server,
            reason: format!(
                "MLflow did not answer within {} s (--mlflow-timeout-secs)",
                config.timeout.as_secs()
            ),
        },
    };
    match &tracking {
        Tracking::Tracked { run_id, .. } => {
            info!(%run_id, server = %config.server(), "tracked in MLflow")
        }
        Tracking::NotTracked { reason, .. } => {
            warn!(%reason, server = %config.server(), "not tracked in MLflow; the stage goes on")
        }
    }
    tracking
}

async fn track_inner(
    config: &TrackingConfig,
    log: &RunLog,
    registration: Option<&Registration>,
) -> Result<Tracking, MlflowError> {
    let client = Mlflow::new(&config.uri, config.timeout)?;
    let experiment_id = client.experiment(&config.experiment).await?;
    let run = match client
        .find_run(&experiment_id, MODEL_VERSION_TAG, &log.model_version)
        .await?
    {
        Some(run) => run,
        None => {
            let tags = vec![(MODEL_VERSION_TAG.to_string(), log.model_version.clone())];
            client
                .create_run(&experiment_id, &log.model_version, log.time_ms, &tags)
                .await?
        }
    };
    client
        .log_batch(
            &run.run_id,
            log.time_ms,
            &log.metrics,
            &log.params,
            &log.tags,
        )
        .await?;
    for (path, bytes) in &log.artifacts {
        client.put_artifact(&run, path, bytes.clone()).await?;
    }
    client.finish_run(&run.run_id, log.time_ms).await?;
    let (mut model_version, mut champion) = (None, None);
    if let Some(reg) = registration {
        let name = &config.registered_model;
        client.ensure_registered_model(name).await?;
        let version = match client.find_version(name, &run.run_id).await? {
            Some(v) => v,
            None => {
                let source = format!(
                    "{}/{}",
                    run.artifact_uri.trim_end_matches('/'),
                    reg.source_path
                );
                client
                    .create_version(name, &source, &run.run_id, &reg.tags)
                    .await?
            }
        };
        for (k, v) in &reg.tags {
            client.set_version_tag(name, &version, k, v).await?;
        }
        if reg.promoted {
            client.set_alias(name, CHAMPION_ALIAS, &version).await?;
        }
        champion =
            Some(client.alias(name, CHAMPION_ALIAS).await?.as_deref() == Some(version.as_str()));
        model_version = Some(version);
    }
    Ok(Tracking::Tracked {
        server: config.server(),
        experiment_id,
        run_id: run.run_id,
        model_version,
        champion,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_record_the_server_without_credentials() {
        let c = |uri: &str| TrackingConfig {
            uri: uri.into(),
            experiment: "e".into(),
            registered_model: "m".into(),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(
            c("https://user:secret@mlflow.example.com:443/x").server(),
            "https://mlflow.example.com:443/x"
        );
        assert_eq!(c("http://127.0.0.1:5000").server(), "http://127.0.0.1:5000");
    }
}
