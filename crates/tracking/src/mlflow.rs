//! The few calls of MLflow's REST API (2.0 paths, served by MLflow 2 and 3) that tracking needs:
//! experiments, runs, batches of metrics/params/tags, artefacts through the server's artefact
//! proxy (`mlflow-artifacts:`), and the model registry's versions and aliases.
//!
//! Every request has the client's timeout; an error names the call and carries MLflow's own
//! `error_code` and message when the server sent one.

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

/// What a call to the server failed with.
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// No answer: connection refused, DNS, TLS, timeout.
    #[error("{call}: {source}")]
    Transport {
        /// The API call, e.g. `runs/create`.
        call: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{call}: HTTP {status} {code}: {message}")]
    Status {
        /// The API call.
        call: String,
        /// HTTP status.
        status: u16,
        /// MLflow's `error_code` (e.g. RESOURCE_DOES_NOT_EXIST), or empty.
        code: String,
        /// MLflow's message, or the body's start.
        message: String,
    },
    /// A body that is not the JSON expected.
    #[error("{call}: unexpected answer: {message}")]
    Answer {
        /// The API call.
        call: String,
        /// What was wrong.
        message: String,
    },
}

impl MlflowError {
    /// MLflow's error code, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            MlflowError::Status { code, .. } => Some(code),
            _ => None,
        }
    }
}

type Result<T> = std::result::Result<T, MlflowError>;

/// A metric point.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Name, e.g. `test_roc_auc`.
    pub key: String,
    /// Value; non-finite values are not sent (MLflow stores NaN, but the UI cannot plot it).
    pub value: f64,
    /// Step, for curves (0 for a single value).
    pub step: i64,
}

/// An MLflow run as found or created.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// The run's id.
    pub run_id: String,
    /// Its experiment.
    pub experiment_id: String,
    /// Where its artefacts go, e.g. `mlflow-artifacts:/1/<run id>/artifacts`.
    pub artifact_uri: String,
}

/// A client of one tracking server.
#[derive(Debug, Clone)]
pub struct Mlflow {
    http: reqwest::Client,
    base: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    message: String,
}

/// Keys, values and entities per `runs/log-batch` call: MLflow's documented limits.
const BATCH_METRICS: usize = 1000;
const BATCH_PARAMS: usize = 100;
const BATCH_TAGS: usize = 100;

impl Mlflow {
    /// A client of the server at `base` (`http(s)://host:port[/prefix]`), each request bounded by
    /// `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<Mlflow> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| MlflowError::Transport {
                call: "client".into(),
                source: e,
            })?;
        Ok(Mlflow {
            http,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    async fn send(&self, call: &str, req: reqwest::RequestBuilder) -> Result<Bytes> {
        let resp = req.send().await.map_err(|e| MlflowError::Transport {
            call: call.into(),
            source: e,
        })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| MlflowError::Transport {
            call: call.into(),
            source: e,
        })?;
        if status.is_success() {
            return Ok(body);
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => (e.error_code, e.message),
            Err(_) => (
                String::new(),
                String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            ),
        };
        Err(MlflowError::Status {
            call: call.into(),
            status: status.as_u16(),
            code,
            message,
        })
    }

    async fn post(&self, call: &str, body: Value) -> Result<Value> {
        let req = self
            .http
            .post(format!("{}/api/2.0/mlflow/{call}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        let bytes = self.send(call, req).await?;
        parse(call, &bytes)
    }

    async fn get(&self, call: &str, query: &[(&str, &str)]) -> Result<Value> {
        let req = self
            .http
            .get(format!("{}/api/2.0/mlflow/{call}", self.base))
            .query(query);
        let bytes = self.send(call, req).await?;
        parse(call, &bytes)
    }

    /// The id of the experiment `name`, created when missing.
    pub async fn experiment(&self, name: &str) -> Result<String> {
        match self
            .get("experiments/get-by-name", &[("experiment_name", name)])
            .await
        {
            Ok(v) => text(
                &v,
                "experiments/get-by-name",
                &["experiment", "experiment_id"],
            ),
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => {
                let v = self
                    .post("experiments/create", json!({ "name": name }))
                    .await?;
                text(&v, "experiments/create", &["experiment_id"])
            }
            Err(e) => Err(e),
        }
    }

    /// The run of `experiment` tagged `key = value`, if there is one (the oldest, should a
    /// race have made two).
    pub async fn find_run(
        &self,
        experiment: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<RunInfo>> {
        let filter = format!("tags.`{key}` = '{}'", value.replace('\'', "\\'"));
        let v = self
            .post(
                "runs/search",
                json!({
                    "experiment_ids": [experiment],
                    "filter": filter,
                    "order_by": ["attributes.start_time ASC"],
                    "max_results": 1,
                }),
            )
            .await?;
        match v
            .get("runs")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
        {
            Some(run) => run_info(run, "runs/search").map(Some),
            None => Ok(None),
        }
    }

    /// Creates a run.
    pub async fn create_run(
        &self,
        experiment: &str,
        name: &str,
        start_time_ms: i64,
        tags: &[(String, String)],
    ) -> Result<RunInfo> {
        let v = self
            .post(
                "runs/create",
                json!({
                    "experiment_id": experiment,
                    "run_name": name,
                    "start_time": start_time_ms,
                    "tags": pairs(tags),
                }),
            )
            .await?;
        run_info(&v["run"], "runs/create")
    }

    /// Logs metrics, params and tags in as few calls as MLflow's limits allow.
    pub async fn log_batch(
        &self,
        run_id: &str,
        timestamp_ms: i64,
        metrics: &[Metric],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<()> {
        let metrics: Vec<Value> = metrics
            .iter()
            .filter(|m| m.value.is_finite())
            .map(|m| json!({"key": m.key, "value": m.value, "timestamp": timestamp_ms, "step": m.step}))
            .collect();
        for chunk in metrics.chunks(BATCH_METRICS) {
            self.post(
                "runs/log-batch",
                json!({"run_id": run_id, "metrics": chunk}),
            )
            .await?;
        }
        for chunk in params.chunks(BATCH_PARAMS) {
            self.post(
                "runs/log-batch",
                json!({"run_id": run_id, "params": pairs(chunk)}),
            )
            .await?;
        }
        for chunk in tags.chunks(BATCH_TAGS) {
            self.post(
                "runs/log-batch",
                json!({"run_id": run_id, "tags": pairs(chunk)}),
            )
            .await?;
        }
        Ok(())
    }

    /// Uploads one artefact through the server's artefact proxy to `path` under the run's
    /// artefact root, which must be an `mlflow-artifacts:` URI.
    pub async fn put_artifact(&self, run: &RunInfo, path: &str, bytes: Bytes) -> Result<()> {
        let call = "mlflow-artifacts/artifacts";
        let root = proxied_path(&run.artifact_uri).ok_or_else(|| MlflowError::Answer {
            call: call.into(),
            message: format!(
                "the run's artefact root {} is not served by the tracking server's artefact proxy \
                 (start the server with --serve-artifacts, MLflow's default)",
                run.artifact_uri
            ),
        })?;
        let req = self
            .http
            .put(format!(
                "{}/api/2.0/mlflow-artifacts/artifacts/{root}/{path}",
                self.base
            ))
            .header("content-type", "application/octet-stream")
            .body(bytes);
        self.send(call, req).await.map(|_| ())
    }

    /// Ends a run as FINISHED at `end_time_ms`.
    pub async fn finish_run(&self, run_id: &str, end_time_ms: i64) -> Result<()> {
        self.post(
            "runs/update",
            json!({"run_id": run_id, "status": "FINISHED", "end_time": end_time_ms}),
        )
        .await
        .map(|_| ())
    }

    /// Creates the registered model `name` unless it exists.
    pub async fn ensure_registered_model(&self, name: &str) -> Result<()> {
        match self
            .post("registered-models/create", json!({ "name": name }))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The version of `name` made from `run_id`, if one was made.
    pub async fn find_version(&self, name: &str, run_id: &str) -> Result<Option<String>> {
        let filter = format!(
            "name = '{}' and run_id = '{run_id}'",
            name.replace('\'', "\\'")
        );
        let v = self
            .get("model-versions/search", &[("filter", filter.as_str())])
            .await?;
        match v
            .get("model_versions")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
        {
            Some(mv) => text(mv, "model-versions/search", &["version"]).map(Some),
            None => Ok(None),
        }
    }

    /// Creates a version of `name` from the run's artefacts at `source`.
    pub async fn create_version(
        &self,
        name: &str,
        source: &str,
        run_id: &str,
        tags: &[(String, String)],
    ) -> Result<String> {
        let v = self
            .post(
                "model-versions/create",
                json!({"name": name, "source": source, "run_id": run_id, "tags": pairs(tags)}),
            )
            .await?;
        text(&v, "model-versions/create", &["model_version", "version"])
    }

    /// Sets a tag of a model version.
    pub async fn set_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        self.post(
            "model-versions/set-tag",
            json!({"name": name, "version": version, "key": key, "value": value}),
        )
        .await
        .map(|_| ())
    }

    /// Points `alias` of `name` at `version` (moving it from wherever it was).
    pub async fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        self.post(
            "registered-models/alias",
            json!({"name": name, "alias": alias, "version": version}),
        )
        .await
        .map(|_| ())
    }

    /// The version `alias` of `name` points at, if it is set. Read from the registered model's
    /// aliases: asking for an unset alias directly is an error (INVALID_PARAMETER_VALUE), not an
    /// empty answer.
    pub async fn alias(&self, name: &str, alias: &str) -> Result<Option<String>> {
        let call = "registered-models/get";
        let v = self.get(call, &[("name", name)]).await?;
        let aliases = v["registered_model"]["aliases"].as_array();
        Ok(aliases
            .into_iter()
            .flatten()
            .find(|a| a["alias"] == alias)
            .and_then(|a| a["version"].as_str())
            .map(str::to_string))
    }
}

fn parse(call: &str, bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| MlflowError::Answer {
        call: call.into(),
        message: e.to_string(),
    })
}

fn text(v: &Value, call: &str, path: &[&str]) -> Result<String> {
    let mut at = v;
    for key in path {
        at = &at[*key];
    }
    at.as_str()
        .map(str::to_string)
        .ok_or_else(|| MlflowError::Answer {
            call: call.into(),
            message: format!("no {} in {}", path.join("."), truncate(&v.to_string())),
        })
}

fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}

fn run_info(run: &Value, call: &str) -> Result<RunInfo> {
    Ok(RunInfo {
        run_id: text(run, call, &["info", "run_id"])?,
        experiment_id: text(run, call, &["info", "experiment_id"])?,
        artifact_uri: text(run, call, &["info", "artifact_uri"])?,
    })
}

fn pairs(kv: &[(String, String)]) -> Vec<Value> {
    kv.iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect()
}

/// The path under the artefact proxy of an `mlflow-artifacts:` URI: `mlflow-artifacts:/1/x`
/// and `mlflow-artifacts://host:port/1/x` both give `1/x`; any other scheme gives `None`.
pub fn proxied_path(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("mlflow-artifacts:")?;
    let path = match rest.strip_prefix("//") {
        Some(authority_and_path) => authority_and_path.split_once('/')?.1,
        None => rest.trim_start_matches('/'),
    };
    Some(path.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artefact_roots_of_the_proxy_map_to_its_paths() {
        assert_eq!(
            proxied_path("mlflow-artifacts:/1/abc/artifacts").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(
            proxied_path("mlflow-artifacts://mlflow.internal:5000/1/abc/artifacts/").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(proxied_path("s3://bucket/1/abc/artifacts"), None);
        assert_eq!(proxied_path("/var/mlruns/1/abc/artifacts"), None);
    }
}
