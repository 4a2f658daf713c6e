//! A fault-injecting HTTP/1.1 proxy between the workers and the moto S3 server.
//!
//! Every request is read whole, then, by a seeded pseudo-random draw, either forwarded to moto
//! unchanged or given one fault. The draw is keyed by the request (method, key without the
//! bucket, query, Range header) and by how many times that request has been seen, not by arrival
//! order, so concurrent requests cannot swap their fates: a run with the same seed meets faults at
//! the same requests. The fault is the kind injected least so far (so that every kind is met
//! several times in a few hundred requests):
//!
//! - `500 InternalError` and `503 SlowDown`, with the XML error bodies S3 sends, without reaching
//!   moto;
//! - a slow answer: held 0.3–1.5 s, then forwarded;
//! - a dropped connection: closed without a byte of answer, either before the request reaches moto
//!   or after moto has acted on it (the answer is lost: the client cannot tell whether a PUT or
//!   DELETE happened, which is what a real network fault does);
//! - a cut-off answer, for object GETs only: moto's status and headers (with the full
//!   Content-Length), half the body, then the connection is closed.
//!
//! Or it answers every request with an outage: `503 SlowDown`, or a dropped connection.
//!
//! One request per connection (answers say `connection: close`); request bodies framed by
//! Content-Length, which is what object_store sends; moto's chunked answers are de-chunked.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use repurchase_core::hash::SplitMix64;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::http::{Message, forward, read_request};

/// What the proxy does to the requests it gets.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Each request, with probability `percent`/100, gets one fault (each kind about equally
    /// often; cut-offs only for object GETs).
    Faults { percent: u64, seed: u64 },
    /// Every request is answered `503 SlowDown`.
    Outage503,
    /// Every connection is closed as soon as the request has been read.
    OutageDrop,
    /// The first `requests` requests are forwarded, every later one is answered `503 SlowDown`:
    /// an outage that starts while a worker is half-way through.
    OutageAfter { requests: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    InternalError,
    SlowDown,
    Slow(Duration),
    /// `true`: after moto has acted on the request.
    Dropped {
        after_upstream: bool,
    },
    CutOff,
}

/// Requests seen and faults injected, by kind.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub requests: u64,
    pub internal_error: u64,
    pub slow_down: u64,
    pub slow: u64,
    pub dropped: u64,
    /// Of `dropped`: those where moto had already acted on the request.
    pub dropped_after_upstream: u64,
    pub cut_off: u64,
    /// Requests by method, e.g. `GET` 300, `PUT` 40.
    pub methods: BTreeMap<String, u64>,
    /// The proxy's own failures (moto unreachable, unparsable traffic): must stay at zero, or
    /// the test would be counting faults nobody chose.
    pub proxy_errors: Vec<String>,
}

impl Stats {
    pub fn faults(&self) -> u64 {
        self.internal_error + self.slow_down + self.slow + self.dropped + self.cut_off
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let methods: Vec<String> = self
            .methods
            .iter()
            .map(|(m, n)| format!("{n} {m}"))
            .collect();
        write!(
            f,
            "{} requests ({}), {} faults ({:.1}%): {}×500 InternalError, {}×503 SlowDown, {} slow, \
             {} dropped ({} after S3 had acted), {} cut off mid-body",
            self.requests,
            methods.join(", "),
            self.faults(),
            100.0 * self.faults() as f64 / self.requests.max(1) as f64,
            self.internal_error,
            self.slow_down,
            self.slow,
            self.dropped,
            self.dropped_after_upstream,
            self.cut_off,
        )
    }
}

/// FNV-1a: a stable hash of a request's key (std's hasher is randomly seeded per process).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01B3)
    })
}

struct Shared {
    mode: Mode,
    /// Times each request (by [`Message::fault_key`]) has been seen.
    attempts: HashMap<String, u64>,
    /// Cut-offs chosen whose answer has not come back from moto yet (counted once it has).
    cut_off_pending: u64,
    stats: Stats,
}

impl Shared {
    /// The fault planned for a request (decided before it is forwarded, in arrival order).
    fn plan(&mut self, req: &Message) -> Option<Fault> {
        self.stats.requests += 1;
        *self
            .stats
            .methods
            .entry(req.method().to_string())
            .or_default() += 1;
        match self.mode {
            Mode::Outage503 => Some(Fault::SlowDown),
            Mode::OutageDrop => Some(Fault::Dropped {
                after_upstream: false,
            }),
            Mode::OutageAfter { requests } => {
                (self.stats.requests > requests).then_some(Fault::SlowDown)
            }
            Mode::Faults { percent, seed } => {
                let key = req.fault_key();
                let attempt = self.attempts.entry(key.clone()).or_default();
                *attempt += 1;
                let mut rng = SplitMix64::new(
                    seed ^ fnv1a(key.as_bytes()) ^ attempt.wrapping_mul(0xA24B_AED4_963E_E407),
                );
                if rng.next_u64() % 100 >= percent {
                    return None;
                }
                // The kind injected least so far, so that a run of a few hundred requests meets
                // every kind several times. Only an object GET is cut off: object_store resumes
                // those, but reads other answers (LIST, multipart XML) after its retry loop.
                let s = &self.stats;
                let mut kinds = vec![
                    (s.internal_error, Fault::InternalError),
                    (s.slow_down, Fault::SlowDown),
                    (
                        s.slow,
                        Fault::Slow(Duration::from_millis(300 + rng.next_u64() % 1200)),
                    ),
                    (
                        s.dropped - s.dropped_after_upstream,
                        Fault::Dropped {
                            after_upstream: false,
                        },
                    ),
                    (
                        s.dropped_after_upstream,
                        Fault::Dropped {
                            after_upstream: true,
                        },
                    ),
                ];
                if req.is_object_get() {
                    kinds.push((s.cut_off + self.cut_off_pending, Fault::CutOff));
                }
                let (_, fault) = kinds.into_iter().min_by_key(|(n, _)| *n)?;
                self.cut_off_pending += u64::from(fault == Fault::CutOff);
                Some(fault)
            }
        }
    }

    fn record(&mut self, fault: Fault) {
        let s = &mut self.stats;
        match fault {
            Fault::InternalError => s.internal_error += 1,
            Fault::SlowDown => s.slow_down += 1,
            Fault::Slow(_) => s.slow += 1,
            Fault::Dropped { after_upstream } => {
                s.dropped += 1;
                s.dropped_after_upstream += u64::from(after_upstream);
            }
            Fault::CutOff => s.cut_off += 1,
        }
        if fault == Fault::CutOff {
            self.cut_off_pending -= 1;
        }
    }
}

/// The running proxy; stops listening when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, to use as `AWS_ENDPOINT_URL`.
    pub url: String,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream` (`http://IP:PORT`).
    pub async fn start(upstream: &str, mode: Mode) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the S3 test endpoint is http://IP:PORT");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy addr"));
        let shared = Arc::new(Mutex::new(Shared {
            mode,
            attempts: HashMap::new(),
            cut_off_pending: 0,
            stats: Stats::default(),
        }));
        let task_shared = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let shared = task_shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(conn, upstream, &shared).await {
                        shared
                            .lock()
                            .unwrap()
                            .stats
                            .proxy_errors
                            .push(e.to_string());
                    }
                });
            }
        });
        FaultProxy { url, shared, task }
    }

    pub fn stats(&self) -> Stats {
        self.shared.lock().unwrap().stats.clone()
    }
}

async fn serve(
    mut conn: TcpStream,
    upstream: SocketAddr,
    shared: &Mutex<Shared>,
) -> std::io::Result<()> {
    let Some(req) = read_request(&mut conn).await? else {
        return Ok(());
    };
    let fault = shared.lock().unwrap().plan(&req);
    let is_head = req.method() == "HEAD";
    let answer = match fault {
        Some(f @ (Fault::InternalError | Fault::SlowDown)) => {
            shared.lock().unwrap().record(f);
            s3_error(f, &req)
        }
        Some(f @ Fault::Dropped { after_upstream }) => {
            if after_upstream {
                forward(upstream, &req).await?;
            }
            shared.lock().unwrap().record(f);
            // The whole request has been read, so closing sends a FIN (not a reset): the client
            // sees its connection closed before any answer.
            return conn.shutdown().await;
        }
        Some(f @ Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            shared.lock().unwrap().record(f);
            forward(upstream, &req).await?
        }
        Some(Fault::CutOff) => {
            let res = forward(upstream, &req).await?;
            if res.status() / 100 == 2 && res.body.len() >= 2 {
                shared.lock().unwrap().record(Fault::CutOff);
                let mut bytes = res.encode_head(Some(res.body.len()));
                bytes.extend_from_slice(&res.body[..res.body.len() / 2]);
                conn.write_all(&bytes).await?;
                return conn.shutdown().await;
            }
            // Nothing to cut (an error answer, an empty object): passed on whole, not a fault.
            shared.lock().unwrap().cut_off_pending -= 1;
            res
        }
        None => forward(upstream, &req).await?,
    };
    // A HEAD answer keeps moto's Content-Length (the object's size) over an empty body.
    let length = (!is_head).then_some(answer.body.len());
    let mut bytes = answer.encode_head(length);
    if !is_head {
        bytes.extend_from_slice(&answer.body);
    }
    conn.write_all(&bytes).await?;
    conn.shutdown().await
}

/// The error answer S3 itself gives (the body is dropped for a HEAD by the caller).
fn s3_error(fault: Fault, req: &Message) -> Message {
    let (status, code, message) = match fault {
        Fault::InternalError => (
            "500 Internal Server Error",
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        _ => (
            "503 Slow Down",
            "SlowDown",
            "Please reduce your request rate.",
        ),
    };
    let resource = req.target().split('?').next().unwrap_or("/").to_string();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <Resource>{resource}</Resource><RequestId>FAULTPROXY</RequestId></Error>"
    );
    Message {
        start: format!("HTTP/1.1 {status}"),
        headers: vec![
            ("content-type".into(), "application/xml".into()),
            ("x-amz-request-id".into(), "FAULTPROXY".into()),
        ],
        body: body.into_bytes(),
    }
}

impl Message {
    /// What identifies a request across runs: method, key and query without the bucket (each test
    /// makes a bucket of its own), and the Range header (DataFusion reads one object in ranges).
    fn fault_key(&self) -> String {
        let target = self.target().trim_start_matches('/');
        let without_bucket = target.find(['/', '?']).map_or("", |i| &target[i..]);
        format!(
            "{} {without_bucket} {}",
            self.method(),
            self.header("range").unwrap_or("")
        )
    }

    /// A GET of an object (path-style `/bucket/key`), not a LIST or a multipart call.
    fn is_object_get(&self) -> bool {
        let (path, query) = self.target().split_once('?').unwrap_or((self.target(), ""));
        self.method() == "GET"
            && path.trim_start_matches('/').contains('/')
            && !query.contains("list-type")
            && !query.contains("uploads")
    }
}
