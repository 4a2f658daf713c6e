//! A programmable fault layer between the code under test and the moto server.
//!
//! moto's Athena accepts StartQueryExecution, GetQueryExecution and StopQueryExecution for real,
//! but every query SUCCEEDS at once (its state machine can be slowed only globally, for every
//! test at once) and it can neither fail a query with a reason nor run SQL. This proxy forwards
//! every request (S3 and Athena alike) to moto and, for the queries a test chooses, rewrites
//! only what moto cannot say:
//!
//! - GetQueryExecution answers: `State` RUNNING for the first polls or forever, or FAILED with a
//!   `StateChangeReason` and an `AthenaError`; once moto has the query CANCELLED (after a real
//!   StopQueryExecution) that answer passes unchanged;
//! - StartQueryExecution: answered `400 ThrottlingException` the first N times, without reaching
//!   moto; GetQueryExecution: answered `500` the first N times;
//! - after a StartQueryExecution that moto accepted, a test hook runs before the answer goes back:
//!   it stands in for Athena executing the UNLOAD (writing Parquet into the TO location) and picks
//!   the query's fate.
//!
//! Everything else is moto's: query ids, StopQueryExecution (moto then reports CANCELLED), S3.
//! HTTP/1.1 only, one request per connection (`Connection: close`), bodies framed by
//! Content-Length (or chunked, for responses): what the AWS SDK, object_store and moto speak.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::http::{Message, forward, read_request};

/// What a query does, as seen through GetQueryExecution.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    /// RUNNING for this many polls, then moto's SUCCEEDED.
    Succeed { running_polls: u32 },
    /// RUNNING for this many polls, then FAILED.
    Fail {
        running_polls: u32,
        reason: String,
        category: i32,
        error_type: i32,
        retryable: bool,
    },
    /// RUNNING until stopped.
    Hang,
}

/// A StartQueryExecution that moto accepted.
#[derive(Debug, Clone)]
pub struct Started {
    pub query_id: String,
    pub query: String,
    pub parameters: Vec<String>,
    pub workgroup: Option<String>,
    pub database: Option<String>,
    pub output_location: Option<String>,
    /// The `TO '…'` location of an UNLOAD.
    pub location: Option<String>,
}

pub type Hook =
    Arc<dyn Fn(Started) -> Pin<Box<dyn Future<Output = Fate> + Send>> + Send + Sync + 'static>;

#[derive(Default)]
struct State {
    started: Vec<Started>,
    stopped: Vec<String>,
    polls: BTreeMap<String, u32>,
    fates: BTreeMap<String, Fate>,
    throttle_starts: u32,
    throttled: u32,
    fail_polls_500: u32,
}

pub struct FaultProxy {
    pub url: String,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `moto_url` (`http://127.0.0.1:PORT`).
    pub async fn start(moto_url: &str, hook: Hook) -> FaultProxy {
        let upstream: SocketAddr = moto_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("moto endpoint is http://IP:PORT");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let task_state = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let state = task_state.clone();
                let hook = hook.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(conn, upstream, state, hook).await {
                        eprintln!("fault proxy: {e}");
                    }
                });
            }
        });
        FaultProxy {
            url,
            upstream,
            state,
            task,
        }
    }

    /// Answers the next `n` StartQueryExecution calls with 400 ThrottlingException.
    pub fn throttle_starts(&self, n: u32) {
        self.state.lock().unwrap().throttle_starts = n;
    }

    /// Answers the next `n` GetQueryExecution calls with 500.
    pub fn fail_polls_with_500(&self, n: u32) {
        self.state.lock().unwrap().fail_polls_500 = n;
    }

    pub fn started(&self) -> Vec<Started> {
        self.state.lock().unwrap().started.clone()
    }

    pub fn stopped(&self) -> Vec<String> {
        self.state.lock().unwrap().stopped.clone()
    }

    pub fn throttled(&self) -> u32 {
        self.state.lock().unwrap().throttled
    }

    pub fn polls(&self, query_id: &str) -> u32 {
        self.state
            .lock()
            .unwrap()
            .polls
            .get(query_id)
            .copied()
            .unwrap_or(0)
    }

    /// The query's state as moto itself reports it (not rewritten).
    pub async fn moto_state(&self, query_id: &str) -> String {
        let body = serde_json::json!({ "QueryExecutionId": query_id }).to_string();
        let (status, _, body) =
            athena_call(self.upstream, "GetQueryExecution", body.as_bytes()).await;
        assert_eq!(status, 200, "moto GetQueryExecution: {}", lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["QueryExecution"]["Status"]["State"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_response(status: &str, body: serde_json::Value) -> Message {
    Message {
        start: format!("HTTP/1.1 {status}"),
        headers: vec![("content-type".into(), "application/x-amz-json-1.1".into())],
        body: body.to_string().into_bytes(),
    }
}

async fn serve(
    mut conn: TcpStream,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
    hook: Hook,
) -> std::io::Result<()> {
    let Some(req) = read_request(&mut conn).await? else {
        return Ok(());
    };
    let is_head = req.start.starts_with("HEAD ");
    let target = req
        .header("x-amz-target")
        .and_then(|t| t.strip_prefix("AmazonAthena."))
        .map(str::to_string);
    let response = match target.as_deref() {
        Some("StartQueryExecution") => start_query(&req, upstream, &state, &hook).await?,
        Some("GetQueryExecution") => get_query(&req, upstream, &state).await?,
        Some("StopQueryExecution") => {
            let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            if let Some(id) = v["QueryExecutionId"].as_str() {
                state.lock().unwrap().stopped.push(id.to_string());
            }
            forward(upstream, &req).await?
        }
        _ => forward(upstream, &req).await?,
    };
    // A HEAD answer keeps moto's Content-Length (the object's size) over an empty body.
    let length = if is_head {
        None
    } else {
        Some(response.body.len())
    };
    conn.write_all(&response.encode(length)).await?;
    conn.shutdown().await
}

async fn start_query(
    req: &Message,
    upstream: SocketAddr,
    state: &Arc<Mutex<State>>,
    hook: &Hook,
) -> std::io::Result<Message> {
    {
        let mut s = state.lock().unwrap();
        if s.throttle_starts > 0 {
            s.throttle_starts -= 1;
            s.throttled += 1;
            return Ok(json_response(
                "400 Bad Request",
                serde_json::json!({"__type": "ThrottlingException", "Message": "Rate exceeded"}),
            ));
        }
    }
    let response = forward(upstream, req).await?;
    let answer: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
    let Some(id) = answer["QueryExecutionId"].as_str() else {
        return Ok(response);
    };
    let input: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let query = input["QueryString"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let location = query
        .split_once(" TO '")
        .or_else(|| query.split_once("\nTO '"))
        .and_then(|(_, rest)| rest.split_once('\'').map(|(loc, _)| loc.to_string()));
    let started = Started {
        query_id: id.to_string(),
        parameters: input["ExecutionParameters"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        workgroup: input["WorkGroup"].as_str().map(str::to_string),
        database: input["QueryExecutionContext"]["Database"]
            .as_str()
            .map(str::to_string),
        output_location: input["ResultConfiguration"]["OutputLocation"]
            .as_str()
            .map(str::to_string),
        location,
        query,
    };
    let fate = hook(started.clone()).await;
    let mut s = state.lock().unwrap();
    s.fates.insert(id.to_string(), fate);
    s.started.push(started);
    Ok(response)
}

async fn get_query(
    req: &Message,
    upstream: SocketAddr,
    state: &Arc<Mutex<State>>,
) -> std::io::Result<Message> {
    {
        let mut s = state.lock().unwrap();
        if s.fail_polls_500 > 0 {
            s.fail_polls_500 -= 1;
            return Ok(json_response(
                "500 Internal Server Error",
                serde_json::json!({"__type": "InternalServerException", "Message": "injected by the test proxy"}),
            ));
        }
    }
    let mut response = forward(upstream, req).await?;
    let mut answer: serde_json::Value = match serde_json::from_slice(&response.body) {
        Ok(v) => v,
        Err(_) => return Ok(response),
    };
    let Some(id) = answer["QueryExecution"]["QueryExecutionId"]
        .as_str()
        .map(str::to_string)
    else {
        return Ok(response);
    };
    let fate = {
        let mut s = state.lock().unwrap();
        let polls = s.polls.entry(id.clone()).or_default();
        *polls += 1;
        let n = *polls;
        s.fates.get(&id).cloned().map(|f| (f, n))
    };
    let status = &mut answer["QueryExecution"]["Status"];
    if status["State"] == "CANCELLED" {
        return Ok(response);
    }
    match fate {
        Some((Fate::Succeed { running_polls }, n)) if n <= running_polls => {
            status["State"] = "RUNNING".into();
        }
        Some((Fate::Hang, _)) => status["State"] = "RUNNING".into(),
        Some((Fate::Fail { running_polls, .. }, n)) if n <= running_polls => {
            status["State"] = "RUNNING".into();
        }
        Some((
            Fate::Fail {
                reason,
                category,
                error_type,
                retryable,
                ..
            },
            _,
        )) => {
            status["State"] = "FAILED".into();
            status["StateChangeReason"] = reason.clone().into();
            status["AthenaError"] = serde_json::json!({
                "ErrorCategory": category,
                "ErrorType": error_type,
                "Retryable": retryable,
                "ErrorMessage": reason,
            });
        }
        _ => {}
    }
    response.body = answer.to_string().into_bytes();
    Ok(response)
}

/// One Athena JSON call straight to `addr` (moto), as the SDK would send it. moto routes on the
/// credential scope of the Authorization header and does not check the signature.
pub async fn athena_call(
    addr: SocketAddr,
    operation: &str,
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let req = Message {
        start: "POST / HTTP/1.1".into(),
        headers: vec![
            ("host".into(), addr.to_string()),
            ("content-type".into(), "application/x-amz-json-1.1".into()),
            ("x-amz-target".into(), format!("AmazonAthena.{operation}")),
            (
                "authorization".into(),
                "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/athena/aws4_request, \
                 SignedHeaders=host, Signature=0"
                    .into(),
            ),
        ],
        body: body.to_vec(),
    };
    let res = forward(addr, &req).await.expect("call moto");
    let status = res
        .start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, res.headers, res.body)
}

/// Creates an S3 bucket on moto (path-style `PUT /bucket`).
pub async fn create_bucket(moto_url: &str, bucket: &str) {
    let addr: SocketAddr = moto_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("moto endpoint is http://IP:PORT");
    let req = Message {
        start: format!("PUT /{bucket} HTTP/1.1"),
        headers: vec![
            ("host".into(), addr.to_string()),
            (
                "authorization".into(),
                "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/s3/aws4_request, \
                 SignedHeaders=host, Signature=0"
                    .into(),
            ),
        ],
        body: Vec::new(),
    };
    let res = forward(addr, &req).await.expect("create bucket on moto");
    assert!(
        res.start.contains(" 200"),
        "create bucket {bucket}: {} {}",
        res.start,
        lossy(&res.body)
    );
}
