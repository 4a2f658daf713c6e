//! One batch of Athena queries from start to finish: StartQueryExecution, polling
//! GetQueryExecution with backoff up to a deadline, and StopQueryExecution for every query still
//! running when anything goes wrong (a failed query, the timeout, SIGTERM).
//!
//! Failures are classed for the exit code:
//! - FAILED with a user error (syntax, missing table or column, permissions) → bad input (2), with
//!   Athena's StateChangeReason, the query's label (`table orders`, `features`) and the query id
//!   in the message;
//! - FAILED that Athena marks retryable or as a system error, CANCELLED by someone else,
//!   throttling and 5xx answers after the SDK's retries, network errors, our timeout → transient
//!   (75), so the DAG retries;
//! - other 4xx answers to an API call (unknown workgroup, access denied, a query Athena refuses at
//!   submission) → bad input (2);
//! - SIGTERM or SIGINT → every running query stopped, then transient (75): the task was told to
//!   stop (ECS stopping or replacing it), nothing is wrong with the input, and a rerun is
//!   idempotent, so the DAG may retry it.
//!
//! Both travel as [`AthenaError::Query`], which carries its class.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_athena::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_athena::types::{
    QueryExecutionContext, QueryExecutionState, QueryExecutionStatus, ResultConfiguration,
};
use repurchase_core::ErrorClass;

use crate::error::{AthenaError, Result};
use tokio::time::Instant;
use tracing::{info, warn};

use super::statement::Unload;
use super::{AthenaSettings, Shutdown};

/// Athena's error categories (`AthenaError.ErrorCategory`).
const CATEGORY_SYSTEM: i32 = 1;
const CATEGORY_USER: i32 = 2;

/// A query that succeeded.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The [`Unload::label`] of the query.
    pub label: String,
    /// Athena's query execution id (recorded in the manifest; look it up in the console).
    pub query_id: String,
    /// Bytes Athena scanned (what it bills), when it said.
    pub data_scanned_bytes: Option<i64>,
}

/// A transient failure: the DAG should retry the task.
pub fn transient(what: String, message: String) -> AthenaError {
    AthenaError::Query {
        what,
        message,
        class: ErrorClass::Transient,
    }
}

fn bad_input(label: &str, message: String) -> AthenaError {
    AthenaError::Query {
        what: label.to_string(),
        message,
        class: ErrorClass::BadInput,
    }
}

/// Maps an SDK error of `operation` to a classed error.
fn sdk_error<E>(operation: &str, label: &str, err: SdkError<E>) -> AthenaError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let what = format!("Athena {operation} for {label}");
    let detail = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or("");
            let throttled = status == 429
                || matches!(
                    code,
                    "ThrottlingException" | "TooManyRequestsException" | "Throttling"
                );
            if throttled || status >= 500 {
                transient(what, detail)
            } else {
                bad_input(label, format!("{what} refused ({status} {code}): {detail}"))
            }
        }
        SdkError::TimeoutError(_) => transient(what, detail),
        _ => transient(what, detail),
    }
}

/// Query ids started and not yet finished, so that they can be stopped on the way out.
#[derive(Default)]
struct Running(Mutex<BTreeMap<String, String>>);

impl Running {
    fn insert(&self, label: &str, id: &str) {
        self.0
            .lock()
            .expect("running queries")
            .insert(label.to_string(), id.to_string());
    }
    fn remove(&self, label: &str) {
        self.0.lock().expect("running queries").remove(label);
    }
    fn take(&self) -> BTreeMap<String, String> {
        std::mem::take(&mut *self.0.lock().expect("running queries"))
    }
}

/// Starts every UNLOAD, then waits for all of them concurrently (a handful of queries; Athena's
/// concurrency quota is far above). Labels must be distinct. On the first failure, the timeout or a shutdown signal, every
/// query still running is stopped before the error is returned.
///
/// Queries are started one after the other and recorded as soon as Athena returns their id, so
/// that a failure while starting the others can still stop them; only a start request in flight
/// when a signal arrives can escape (Athena has not told us its id yet).
pub async fn run_all(
    client: &aws_sdk_athena::Client,
    settings: &AthenaSettings,
    unloads: &[Unload],
    results_location: &str,
    shutdown: &mut Shutdown,
) -> Result<Vec<Finished>> {
    let running = Running::default();
    let outcome = async {
        let mut started = Vec::with_capacity(unloads.len());
        for u in unloads {
            let id = tokio::select! {
                res = start(client, settings, u, results_location) => res?,
                signal = shutdown.requested() => return Err(interrupted(signal)),
            };
            running.insert(&u.label, &id);
            started.push((u, id, Instant::now()));
        }
        let all = futures::future::try_join_all(
            started
                .iter()
                .map(|(u, id, at)| wait(client, settings, &u.label, id, *at, &running)),
        );
        tokio::select! {
            res = all => res,
            signal = shutdown.requested() => Err(interrupted(signal)),
        }
    }
    .await;
    if outcome.is_err() {
        stop_all(client, running.take()).await;
    }
    outcome
}

fn interrupted(signal: &str) -> AthenaError {
    transient(
        "Athena queries".into(),
        format!("{signal} received while Athena queries were running; stopping them"),
    )
}

/// How long stopping may take in all: ECS kills a task 30 s after SIGTERM by default, and the SDK's
/// retries against an unreachable Athena would take minutes.
const STOP_BUDGET: Duration = Duration::from_secs(15);

/// Stops the queries concurrently, best effort: a failure is logged (the query may run on until
/// Athena's own limits end it) and does not replace the error being reported.
async fn stop_all(client: &aws_sdk_athena::Client, queries: BTreeMap<String, String>) {
    let stops = queries.iter().map(|(label, id)| async move {
        match client
            .stop_query_execution()
            .query_execution_id(id)
            .send()
            .await
        {
            Ok(_) => warn!(query = %label, query_id = %id, "stopped Athena query"),
            Err(e) => warn!(
                query = %label,
                query_id = %id,
                error = %DisplayErrorContext(&e),
                "could not stop Athena query; it may still be running"
            ),
        }
    });
    if tokio::time::timeout(STOP_BUDGET, futures::future::join_all(stops))
        .await
        .is_err()
    {
        warn!(
            queries = ?queries,
            "gave up stopping Athena queries after {} s; some may still be running",
            STOP_BUDGET.as_secs()
        );
    }
}

async fn start(
    client: &aws_sdk_athena::Client,
    settings: &AthenaSettings,
    unload: &Unload,
    results_location: &str,
) -> Result<String> {
    let label = unload.label.as_str();
    let mut request = client
        .start_query_execution()
        .query_string(&unload.query)
        .work_group(settings.workgroup.as_str())
        .query_execution_context(
            QueryExecutionContext::builder()
                .database(settings.database.as_str())
                .build(),
        )
        .result_configuration(
            ResultConfiguration::builder()
                .output_location(results_location)
                .build(),
        );
    for p in &unload.parameters {
        request = request.execution_parameters(p);
    }
    // The SDK adds an idempotency token, so a retried StartQueryExecution does not start a twin.
    let started = request
        .send()
        .await
        .map_err(|e| sdk_error("StartQueryExecution", label, e))?;
    let id = started
        .query_execution_id()
        .ok_or_else(|| {
            transient(
                format!("Athena StartQueryExecution for {label}"),
                "answer without a QueryExecutionId".into(),
            )
        })?
        .to_string();
    info!(query = label, query_id = %id, location = %unload.location, "Athena UNLOAD started");
    Ok(id)
}

/// Polls one query until it ends or its deadline (`--athena-timeout-secs` after its start).
async fn wait(
    client: &aws_sdk_athena::Client,
    settings: &AthenaSettings,
    label: &str,
    id: &str,
    started_at: Instant,
    running: &Running,
) -> Result<Finished> {
    let id = id.to_string();
    let deadline = started_at + settings.timeout;
    let max_delay = settings.poll.saturating_mul(16).max(settings.poll);
    let mut delay = settings.poll;
    let mut last_state = String::from("unknown");
    loop {
        let answer = client
            .get_query_execution()
            .query_execution_id(&id)
            .send()
            .await
            .map_err(|e| sdk_error("GetQueryExecution", label, e))?;
        let execution = answer.query_execution();
        let status = execution.and_then(|q| q.status());
        match status.and_then(|s| s.state()) {
            Some(QueryExecutionState::Succeeded) => {
                running.remove(label);
                let scanned = execution
                    .and_then(|q| q.statistics())
                    .and_then(|s| s.data_scanned_in_bytes());
                info!(
                    query = label,
                    query_id = %id,
                    data_scanned_bytes = scanned.unwrap_or(0),
                    duration_ms = started_at.elapsed().as_millis() as u64,
                    "Athena UNLOAD succeeded"
                );
                return Ok(Finished {
                    label: label.to_string(),
                    query_id: id,
                    data_scanned_bytes: scanned,
                });
            }
            Some(QueryExecutionState::Failed) => {
                running.remove(label);
                return Err(failed(label, &id, status));
            }
            Some(QueryExecutionState::Cancelled) => {
                running.remove(label);
                let reason = status
                    .and_then(|s| s.state_change_reason())
                    .unwrap_or("no reason given");
                return Err(transient(
                    format!("Athena query {id} for {label}"),
                    format!("cancelled outside this task: {reason}"),
                ));
            }
            // QUEUED, RUNNING, or a state this SDK does not know yet: keep waiting.
            other => {
                if let Some(s) = other {
                    last_state = s.as_str().to_string();
                }
            }
        }
        let now = Instant::now();
        if now >= deadline {
            // Left in `running`: run_all stops it on the way out.
            return Err(transient(
                format!("Athena query {id} for {label}"),
                format!(
                    "still {last_state} after {} s (--athena-timeout-secs); stopping it",
                    settings.timeout.as_secs_f64()
                ),
            ));
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(max_delay);
    }
}

/// The error for a FAILED query: Athena's reason, label and query id; classed by AthenaError.
fn failed(label: &str, id: &str, status: Option<&QueryExecutionStatus>) -> AthenaError {
    let reason = status
        .and_then(|s| s.state_change_reason())
        .unwrap_or("Athena gave no reason");
    let error = status.and_then(|s| s.athena_error());
    let category = error.and_then(|e| e.error_category());
    let error_type = error.and_then(|e| e.error_type());
    let retryable = error.is_some_and(|e| e.retryable());
    let kind = match category {
        Some(CATEGORY_SYSTEM) => "system error",
        Some(CATEGORY_USER) => "user error",
        Some(_) => "other error",
        None => "error",
    };
    let type_note = error_type
        .map(|t| format!(", type {t}"))
        .unwrap_or_default();
    let message = format!("Athena query {id} FAILED ({kind}{type_note}): {reason}");
    warn!(query = label, query_id = %id, reason, retryable, "Athena query failed");
    if retryable || category == Some(CATEGORY_SYSTEM) {
        transient(format!("Athena query {id} for {label}"), message)
    } else {
        bad_input(label, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_athena::types::AthenaError;
    use repurchase_core::{Classify, ErrorClass};

    fn status(category: Option<i32>, retryable: bool) -> QueryExecutionStatus {
        let mut err = AthenaError::builder().retryable(retryable).error_type(1006);
        if let Some(c) = category {
            err = err.error_category(c);
        }
        QueryExecutionStatus::builder()
            .state(QueryExecutionState::Failed)
            .state_change_reason("line 1:8: Column 'x' cannot be resolved")
            .athena_error(err.build())
            .build()
    }

    #[test]
    fn failed_queries_are_classed_by_athena_error() {
        let user = failed("table orders", "q-1", Some(&status(Some(2), false)));
        assert_eq!(user.class(), ErrorClass::BadInput);
        let text = user.to_string();
        assert!(
            text.contains("orders") && text.contains("q-1") && text.contains("cannot be resolved"),
            "{text}"
        );
        let system = failed("table orders", "q-2", Some(&status(Some(1), false)));
        assert_eq!(system.class(), ErrorClass::Transient);
        let retryable = failed("table orders", "q-3", Some(&status(Some(3), true)));
        assert_eq!(retryable.class(), ErrorClass::Transient);
        let unknown = failed("table orders", "q-4", None);
        assert_eq!(unknown.class(), ErrorClass::BadInput);
    }
}
