//! Error type of the core library and the mapping from failures to process exit codes.
//!
//! Airflow retries a task on any non-zero exit, but operators need to tell "fix the data" from
//! "try again later" from "page an engineer": each error therefore carries an [`ErrorClass`].
//!
//! On S3, a missing bucket and refused credentials are bad input (exit 2), not transient: they are
//! configuration (the data root, the account, the keys or the task role's policy), and a retry
//! would fail the same way. Network faults, 5xx and throttling stay transient (exit 75), after
//! object_store has already retried them with backoff.

/// How a failure should be handled by whoever runs the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The input data or the arguments are wrong; retrying will not help. Exit code 2.
    BadInput,
    /// A dependency (object store, Athena, network) failed in a way that may pass. Exit code 75
    /// (`EX_TEMPFAIL`).
    Transient,
    /// A bug or broken invariant in this program. Exit code 70 (`EX_SOFTWARE`).
    Bug,
    /// The data is well-formed but a quality gate refused it (a collapsed row count, a label rate
    /// out of bounds, a model below the AUC floor): for the data's owners to look at, not the
    /// platform's. Exit code 65 (`EX_DATAERR`); retrying will not help.
    DataRefused,
}

impl ErrorClass {
    /// The process exit code of the class.
    pub const fn exit_code(self) -> u8 {
        match self {
            ErrorClass::BadInput => 2,
            ErrorClass::Transient => 75,
            ErrorClass::Bug => 70,
            ErrorClass::DataRefused => 65,
        }
    }
}

/// The core library's results.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// An error that knows how whoever runs the worker should handle it: every library's error enum
/// implements it, and the binary edge turns the class into an exit code and advice.
pub trait Classify: std::error::Error {
    /// How the failure should be handled.
    fn class(&self) -> ErrorClass;
}

impl Classify for CoreError {
    fn class(&self) -> ErrorClass {
        CoreError::class(self)
    }
}

/// The S3 request behind [`CoreError::BucketNotFound`] and [`CoreError::AccessDenied`] (boxed, so
/// that every `Result` in the code base stays small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Request {
    /// The bucket.
    pub bucket: String,
    /// `s3://bucket/key` of the object or prefix.
    pub url: String,
    /// Endpoint or region the request went to (`endpoint http://…`, `region eu-west-1`), so a
    /// wrong account or region is visible.
    pub location: String,
    /// The S3 error code (`NoSuchBucket`, `AccessDenied`, …), or the HTTP status when the response
    /// had no body (HEAD).
    pub code: String,
}

/// The lock behind [`CoreError::Locked`] and who holds it (boxed, as [`S3Request`] is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHeld {
    /// URL of the lock object.
    pub url: String,
    /// Lock name: the stage, and the shard for sharded scoring.
    pub name: String,
    /// Run date the lock is for.
    pub run_date: String,
    /// Who holds it.
    pub owner: String,
    /// When it was taken.
    pub acquired_at: String,
    /// When its lease ends unless renewed.
    pub expires_at: String,
}

/// Why the core (storage, manifests, publishing, queries, locks) failed, with what it was doing
/// and on which path; [`CoreError::class`] decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A data root URL that cannot be opened (unknown scheme, a file where a folder belongs).
    #[error("invalid data root {url:?}: {reason}")]
    InvalidDataRoot {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A run date that is not exactly `YYYY-MM-DD`.
    #[error("invalid run date {value:?}: expected YYYY-MM-DD")]
    InvalidRunDate {
        /// The text as given.
        value: String,
    },

    /// A table name that is none of TheLook's seven.
    #[error(
        "unknown table {value:?}; expected one of users, orders, order_items, products, inventory_items, events, distribution_centers"
    )]
    UnknownTable {
        /// The name as given.
        value: String,
    },

    /// An input partition without a manifest: its stage has not run (or not finished) for the
    /// date.
    #[error(
        "partition {path} is not published: no _manifest.json (run the stage that writes it for run date {run_date})"
    )]
    NotPublished {
        /// URL of the partition folder.
        path: String,
        /// The run date asked for.
        run_date: String,
    },

    /// A manifest, or a file it lists, that cannot be read as written: unparseable, of another
    /// format version, a field missing, a checksum that does not match.
    #[error("manifest {path} is unreadable: {reason}")]
    BadManifest {
        /// URL of the manifest or the file.
        path: String,
        /// What is wrong, naming the field.
        reason: String,
    },

    /// The bucket of an `s3://` root does not exist (S3 `NoSuchBucket`). Configuration, not a
    /// transient fault: the data root, the account or the endpoint is wrong, and a retry by the
    /// scheduler would fail the same way.
    #[error(
        "S3 bucket {:?} does not exist ({op} {}; {}): create the bucket or fix the s3:// URL, \
         AWS_REGION or AWS_ENDPOINT_URL",
        .request.bucket, .request.url, .request.location
    )]
    BucketNotFound {
        /// The operation (`get`, `put`, `list`, …).
        op: &'static str,
        /// The request and where it went.
        request: Box<S3Request>,
        /// object_store's error.
        #[source]
        source: object_store::Error,
    },

    /// S3 refused the credentials or the request (`AccessDenied`, `InvalidAccessKeyId`,
    /// `SignatureDoesNotMatch`, …). Configuration too: the keys, the task role or its policy must
    /// change before a retry can succeed.
    #[error(
        "S3 denied {op} on {} ({}; {}): check the credentials (AWS_ACCESS_KEY_ID / \
         AWS_SECRET_ACCESS_KEY, or the ECS task role) and that their policy allows {op} in bucket {:?}",
        .request.url, .request.code, .request.location, .request.bucket
    )]
    AccessDenied {
        /// The operation (`get`, `put`, `list`, …).
        op: &'static str,
        /// The request and where it went.
        request: Box<S3Request>,
        /// object_store's error.
        #[source]
        source: object_store::Error,
    },

    /// An S3 request that object_store gave up on after its retries: 5xx and throttling answers,
    /// refused, dropped or reset connections, timeouts. The service or the network may recover,
    /// so this is transient (exit 75) and the message says so; `request.code` is the last fault
    /// (`503 SlowDown`, `500 InternalError`, `connection closed before an answer`, …).
    #[error(
        "S3 unavailable: {op} {} failed {} ({}; {}): transient",
        .request.url, retries_text(*.retries), .request.code, .request.location
    )]
    S3Unavailable {
        /// The operation (`get`, `put`, `list`, …).
        op: &'static str,
        /// The request, where it went and its last fault.
        request: Box<S3Request>,
        /// Retries object_store made before giving up (`None` when its error does not say).
        retries: Option<usize>,
        /// object_store's error.
        #[source]
        source: object_store::Error,
    },

    /// Any other object-store failure, classified by [`classify_store_error`] (a missing object
    /// is bad input, a local disk's I/O error transient).
    #[error("object store operation {op} on {path} failed: {source}")]
    Store {
        /// The operation.
        op: &'static str,
        /// URL of the object or prefix.
        path: String,
        /// object_store's error.
        #[source]
        source: object_store::Error,
    },

    /// A Parquet file that cannot be read or written.
    #[error("parquet error on {path}: {source}")]
    Parquet {
        /// URL or name of the file.
        path: String,
        /// The Parquet library's error.
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// An Arrow operation on data of the wrong shape (a missing column, a failed cast).
    #[error("arrow error in {context}: {source}")]
    Arrow {
        /// What was being done, naming the column.
        context: String,
        /// Arrow's error.
        #[source]
        source: arrow::error::ArrowError,
    },

    /// A query failed; if an object-store request under it outlasted its retries, the message
    /// says so first (transient, exit 75), as [`CoreError::S3Unavailable`] does.
    #[error("query {query} failed{}: {source}", unavailable_note(.source))]
    Query {
        /// The query's name (its file under `sql/`, or what it reads).
        query: String,
        /// DataFusion's error.
        #[source]
        source: datafusion::error::DataFusionError,
    },

    /// A table whose content breaks the contract: a missing or mistyped column, a null where
    /// none is allowed, a duplicate key, an orphan; the message names the column and the row.
    #[error("table {table}: {message}")]
    BadTable {
        /// The table (or file) at fault.
        table: String,
        /// What is wrong, naming the column and the row where there is one.
        message: String,
    },

    /// A local file or a signal handler that failed.
    #[error("io error on {path}: {source}")]
    Io {
        /// The file, or what was being set up.
        path: String,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },

    /// Another run of the same stage for the same run date holds its lock (see [`crate::lock`]).
    /// Transient: it passes once that run ends or its lease runs out.
    #[error(
        "another {} run for {} is going on: {} is held by {} (since {}, lease until {}); refusing \
         to run beside it (transient: it passes once that run ends). If no such run is alive, \
         wait for the lease to end or delete {}",
        .0.name, .0.run_date, .0.url, .0.owner, .0.acquired_at, .0.expires_at, .0.url
    )]
    Locked(Box<LockHeld>),

    /// This run's lock was taken over (its lease ran out while it could not renew it); it stopped
    /// before publishing more. Transient: a rerun takes the lock again.
    #[error(
        "lost the lock {url}: another run took it over after this run could not renew its lease; \
         stopped without publishing further"
    )]
    LockLost {
        /// URL of the lock object.
        url: String,
    },

    /// A broken invariant of this program: a task that panicked or was cancelled, a result that
    /// cannot happen. Not the data's fault and not passing by itself ([`ErrorClass::Bug`],
    /// exit 70): an engineer has to look.
    #[error("bug in {what}: {reason}")]
    Bug {
        /// The part of the program at fault.
        what: String,
        /// What happened (the panic's message, a cancelled task).
        reason: String,
    },

    /// The data passed every schema check but looks implausible (a collapsed row count, a label
    /// rate out of bounds, a jump in missing values, a model below the AUC floor): refused until
    /// someone has looked ([`ErrorClass::DataRefused`], exit 65).
    #[error("{stage} for run date {run_date}: quality gate failed ({context}): {}", .failures.join("; "))]
    QualityGate {
        /// The stage whose gate refused.
        stage: &'static str,
        /// The run date refused.
        run_date: String,
        /// What the figures were compared with, and how to override.
        context: String,
        /// One line per gate that failed, with its figure and bounds.
        failures: Vec<String>,
    },
}

impl CoreError {
    /// Classifies the error for the exit code. Object-store errors other than "not found" and
    /// "permission" are treated as transient: they are network or service faults.
    pub fn class(&self) -> ErrorClass {
        match self {
            CoreError::InvalidDataRoot { .. }
            | CoreError::BucketNotFound { .. }
            | CoreError::AccessDenied { .. }
            | CoreError::InvalidRunDate { .. }
            | CoreError::NotPublished { .. }
            | CoreError::BadManifest { .. }
            | CoreError::BadTable { .. }
            | CoreError::UnknownTable { .. } => ErrorClass::BadInput,
            CoreError::QualityGate { .. } => ErrorClass::DataRefused,
            CoreError::Bug { .. } => ErrorClass::Bug,
            CoreError::Store { source, .. } => classify_store_error(source),
            CoreError::S3Unavailable { .. } | CoreError::Locked(_) | CoreError::LockLost { .. } => {
                ErrorClass::Transient
            }
            CoreError::Parquet { .. } => ErrorClass::BadInput,
            CoreError::Query { source, .. } => classify_datafusion_error(source),
            CoreError::Arrow { .. } => ErrorClass::BadInput,
            CoreError::Io { source, .. } => classify_io_error(source),
        }
    }
}

impl CoreError {
    /// A blocking task (`spawn_blocking`) that panicked or was cancelled: a bug, whatever the
    /// task was doing.
    pub fn task(what: impl Into<String>, e: tokio::task::JoinError) -> CoreError {
        let reason = if e.is_panic() {
            format!("the task panicked: {}", panic_text(e.into_panic()))
        } else {
            "the task was cancelled".to_string()
        };
        CoreError::Bug {
            what: what.into(),
            reason,
        }
    }
}

/// The message a panic carried (`panic!("…")` gives a `&str` or a `String`).
pub fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map_or_else(|| "(no message)".to_string(), |s| (*s).to_string()),
    }
}

/// The class of an object-store error: a missing object, a bad path or a refused request is bad
/// input, an unsupported operation a bug, a local disk's failure that of its I/O error, and the
/// rest (network, 5xx, throttling) transient.
pub fn classify_store_error(e: &object_store::Error) -> ErrorClass {
    use object_store::Error as E;
    match e {
        E::NotFound { .. }
        | E::InvalidPath { .. }
        | E::PermissionDenied { .. }
        | E::Unauthenticated { .. } => ErrorClass::BadInput,
        E::NotSupported { .. } | E::NotImplemented { .. } => ErrorClass::Bug,
        // object_store reports some S3 failures (a failed LIST, for one) as `Generic` whatever the
        // status: look at the S3 error code so a missing bucket or refused credentials is not
        // retried as if the network had failed.
        _ if is_s3_configuration_error(e) => ErrorClass::BadInput,
        // A local disk fails for a reason the path or the machine gives, not the network's.
        E::Generic {
            store: "LocalFileSystem",
            source,
        } => io_error_under(source.as_ref()).map_or(ErrorClass::Transient, classify_io_error),
        _ => ErrorClass::Transient,
    }
}

/// A local I/O failure: bad input when no retry can fix it (the path is missing, taken by a file
/// or a folder of the other kind, refused, read-only or full), transient otherwise (interrupted,
/// timed out, out of resources for a moment).
pub fn classify_io_error(e: &std::io::Error) -> ErrorClass {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound
        | K::PermissionDenied
        | K::AlreadyExists
        | K::NotADirectory
        | K::IsADirectory
        | K::DirectoryNotEmpty
        | K::InvalidInput
        | K::InvalidFilename
        | K::InvalidData
        | K::ReadOnlyFilesystem
        | K::StorageFull
        | K::QuotaExceeded
        | K::FileTooLarge => ErrorClass::BadInput,
        _ => ErrorClass::Transient,
    }
}

/// The first `std::io::Error` in `e`'s source chain (`e` itself included), if any.
fn io_error_under<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = err.source();
    }
    None
}

/// S3 codes meaning the credentials or their policy refused the request.
pub const S3_DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AllAccessDisabled",
    "AccountProblem",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
];

/// S3 codes meaning the bucket or its region is wrong. With [`S3_DENIED_CODES`], the codes no
/// retry can fix.
const S3_LOCATION_CODES: &[&str] = &[
    "NoSuchBucket",
    "InvalidBucketName",
    "AuthorizationHeaderMalformed",
    "PermanentRedirect",
];

/// The S3 error code behind an object-store error: `<Code>…</Code>` of the response body, or the
/// `(code: …)` object_store writes for a key that a bulk delete refused.
///
/// object_store keeps the response body only inside the text of its (crate-private) retry error,
/// so the code is read from the messages of the error chain.
pub fn s3_error_code(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let between = |text: &str, open: &str, close: &str| {
        let start = text.find(open)? + open.len();
        let len = text[start..].find(close)?;
        Some(text[start..start + len].trim().to_string())
    };
    let mut cur = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if let Some(code) = between(&text, "<Code>", "</Code>")
            .or_else(|| between(&text, "(code: ", ")"))
            .filter(|c| !c.is_empty())
        {
            return Some(code);
        }
        cur = err.source();
    }
    None
}

/// For a query whose object-store read outlasted its retries: " (S3 unavailable: 503 SlowDown
/// after 2 retries; transient, …)", naming the fault; empty for any other failure.
fn unavailable_note(e: &datafusion::error::DataFusionError) -> String {
    let Some(store) = store_error_under(e) else {
        return String::new();
    };
    if classify_store_error(store) != ErrorClass::Transient {
        return String::new();
    }
    let (retries, fault) = s3_transient_fault(store);
    let what = match store {
        object_store::Error::Generic { store: "S3", .. } => "S3",
        _ => "object store",
    };
    format!(
        " ({what} unavailable: {fault}, {}; transient)",
        retries_text(retries)
    )
}

/// The first object-store error in `e`'s source chain (`e` itself included), if any.
fn store_error_under<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a object_store::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(store) = err.downcast_ref::<object_store::Error>() {
            return Some(store);
        }
        cur = err.source();
    }
    None
}

fn retries_text(retries: Option<usize>) -> String {
    match retries {
        Some(1) => "after 1 retry".into(),
        Some(n) => format!("after {n} retries"),
        None => "after retrying".into(),
    }
}

/// The run of ASCII digits right after the first `marker` in `text` (none when there is no digit
/// there), and the text after it.
fn digits_after<'t>(text: &'t str, marker: &str) -> Option<(&'t str, &'t str)> {
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    let len = rest.bytes().take_while(u8::is_ascii_digit).count();
    (len > 0).then(|| rest.split_at(len))
}

/// How often object_store retried a request it gave up on, and its last fault, from the error
/// chain (object_store's retry error is crate-private; its text says "after N retries", the
/// status and the S3 error body, and its source is the transport error, if any).
pub fn s3_transient_fault(e: &(dyn std::error::Error + 'static)) -> (Option<usize>, String) {
    use object_store::client::{HttpError, HttpErrorKind};
    let (mut retries, mut status, mut transport) = (None, None, None);
    let mut innermost = e.to_string();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if retries.is_none()
            && let Some((n, rest)) = digits_after(&text, "after ")
            && rest.starts_with(" retr")
        {
            retries = n.parse::<usize>().ok();
        }
        if status.is_none() {
            status = digits_after(&text, "non-2xx status code: ").map(|(code, _)| code.to_string());
        }
        if transport.is_none()
            && let Some(http) = err.downcast_ref::<HttpError>()
        {
            transport = Some(match http.kind() {
                HttpErrorKind::Connect => "cannot connect",
                HttpErrorKind::Request => "connection closed before an answer",
                HttpErrorKind::Timeout => "timed out",
                HttpErrorKind::Interrupted => "connection reset or interrupted",
                HttpErrorKind::Decode => "unreadable answer",
                _ => "network error",
            });
        }
        innermost = text;
        cur = err.source();
    }
    let fault = match (status, s3_error_code(e), transport) {
        (Some(status), Some(code), _) => format!("{status} {code}"),
        (Some(status), None, _) => format!("HTTP {status}"),
        // S3 can answer 200 with an error body (object_store retries those too).
        (None, Some(code), _) => code,
        (None, None, Some(transport)) => transport.to_string(),
        (None, None, None) => innermost,
    };
    (retries, fault)
}

fn is_s3_configuration_error(e: &object_store::Error) -> bool {
    if let Some(code) = s3_error_code(e) {
        return [S3_LOCATION_CODES, S3_DENIED_CODES]
            .iter()
            .any(|codes| codes.contains(&code.as_str()));
    }
    // A redirect without a Location header is how S3 answers a request sent to the wrong region.
    error_chain_contains(e, "incorrectly configured region")
}

fn error_chain_contains(e: &(dyn std::error::Error + 'static), needle: &str) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.to_string().contains(needle) {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The class of a query error: that of an object-store error under it when there is one, bad
/// input for data of the wrong shape, transient for I/O, a bug otherwise.
pub fn classify_datafusion_error(e: &datafusion::error::DataFusionError) -> ErrorClass {
    use datafusion::error::DataFusionError as D;
    // An object-store fault anywhere under the error decides, as it does for the message
    // ([`unavailable_note`]): a Parquet read wraps the GET that failed under it.
    if let Some(store) = store_error_under(e) {
        return classify_store_error(store);
    }
    match e {
        D::IoError(_) => ErrorClass::Transient,
        D::ParquetError(_) | D::ArrowError(..) | D::SchemaError(..) | D::Plan(_) => {
            ErrorClass::BadInput
        }
        D::Context(_, inner) => classify_datafusion_error(inner),
        _ => ErrorClass::Bug,
    }
}

impl CoreError {
    /// [`CoreError::Store`] for `op` on `path`.
    pub fn store(op: &'static str, path: impl ToString, source: object_store::Error) -> Self {
        CoreError::Store {
            op,
            path: path.to_string(),
            source,
        }
    }

    /// [`CoreError::Query`] for the query `query`.
    pub fn query(query: impl ToString, source: datafusion::error::DataFusionError) -> Self {
        CoreError::Query {
            query: query.to_string(),
            source,
        }
    }

    /// [`CoreError::Arrow`] while doing `context`.
    pub fn arrow(context: impl ToString, source: arrow::error::ArrowError) -> Self {
        CoreError::Arrow {
            context: context.to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_fault_under_a_parquet_read_is_classed_by_the_store() {
        use datafusion::error::DataFusionError as D;
        let outage = || object_store::Error::Generic {
            store: "S3",
            source: "503 Service Unavailable, after 2 retries".into(),
        };
        let read = D::ParquetError(Box::new(parquet::errors::ParquetError::External(Box::new(
            outage(),
        ))));
        assert_eq!(classify_datafusion_error(&read), ErrorClass::Transient);
        let e = CoreError::query("read features", read);
        assert_eq!(e.class(), ErrorClass::Transient);
        assert!(e.to_string().contains("; transient)"), "{e}");
        let corrupt = D::ParquetError(Box::new(parquet::errors::ParquetError::General(
            "bad magic".into(),
        )));
        assert_eq!(classify_datafusion_error(&corrupt), ErrorClass::BadInput);
    }

    #[test]
    fn exit_codes_are_distinct() {
        let codes = [
            ErrorClass::BadInput,
            ErrorClass::Transient,
            ErrorClass::Bug,
            ErrorClass::DataRefused,
        ]
        .map(ErrorClass::exit_code);
        assert_eq!(codes, [2, 75, 70, 65]);
    }

    #[test]
    fn missing_object_is_bad_input_and_generic_is_transient() {
        let nf = object_store::Error::NotFound {
            path: "x".into(),
            source: "gone".into(),
        };
        assert_eq!(classify_store_error(&nf), ErrorClass::BadInput);
        let generic = object_store::Error::Generic {
            store: "S3",
            source: "503 Slow Down".into(),
        };
        assert_eq!(classify_store_error(&generic), ErrorClass::Transient);
    }

    #[test]
    fn faults_that_outlast_the_retries_are_named() {
        let slow = object_store::Error::Generic {
            store: "S3",
            source: "Error performing GET http://127.0.0.1:1/b/k in 1s, after 2 retries, \
                     max_retries: 2, retry_timeout: 10s  - Server returned non-2xx status code: \
                     503 Service Unavailable: <Error><Code>SlowDown</Code></Error>"
                .into(),
        };
        assert_eq!(
            s3_transient_fault(&slow),
            (Some(2), "503 SlowDown".to_string())
        );
        let query = CoreError::query(
            "features/anchors.sql",
            datafusion::error::DataFusionError::ObjectStore(Box::new(slow)),
        );
        assert_eq!(query.class(), ErrorClass::Transient);
        let msg = query.to_string();
        assert!(
            msg.starts_with(
                "query features/anchors.sql failed (S3 unavailable: 503 SlowDown, after 2 \
                 retries; transient)"
            ),
            "{msg}"
        );

        use object_store::client::{HttpError, HttpErrorKind};
        let closed = object_store::Error::Generic {
            store: "S3",
            source: Box::new(HttpError::new(
                HttpErrorKind::Request,
                std::io::Error::other("connection closed before message completed"),
            )),
        };
        assert_eq!(
            s3_transient_fault(&closed),
            (None, "connection closed before an answer".to_string())
        );
        // Anything but a transient store error keeps the plain message.
        let plan = CoreError::query(
            "q.sql",
            datafusion::error::DataFusionError::Plan("no such column".into()),
        );
        assert_eq!(
            plan.to_string(),
            "query q.sql failed: Error during planning: no such column"
        );
    }

    #[test]
    fn s3_configuration_codes_in_generic_errors_are_bad_input() {
        // The text object_store gives a failed LIST on a missing bucket (a `Generic` error).
        let list = object_store::Error::Generic {
            store: "S3",
            source: "Error performing list request: Error performing GET http://127.0.0.1:1/b?list-type=2 \
                     in 2ms - Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?>\
                     <Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>"
                .into(),
        };
        assert_eq!(s3_error_code(&list).as_deref(), Some("NoSuchBucket"));
        assert_eq!(classify_store_error(&list), ErrorClass::BadInput);
        let slow = object_store::Error::Generic {
            store: "S3",
            source:
                "Server returned non-2xx status code: 503: <Error><Code>SlowDown</Code></Error>"
                    .into(),
        };
        assert_eq!(classify_store_error(&slow), ErrorClass::Transient);
        let region = object_store::Error::Generic {
            store: "S3",
            source: "Received redirect without LOCATION, this normally indicates an incorrectly configured region".into(),
        };
        assert_eq!(classify_store_error(&region), ErrorClass::BadInput);
        let bulk_delete = object_store::Error::Generic {
            store: "S3",
            source:
                "DeleteObjects request failed for key lake/x: Access Denied (code: AccessDenied)"
                    .into(),
        };
        assert_eq!(s3_error_code(&bulk_delete).as_deref(), Some("AccessDenied"));
        assert_eq!(classify_store_error(&bulk_delete), ErrorClass::BadInput);
    }

    #[test]
    fn local_disk_errors_are_bad_input_unless_they_may_pass() {
        use std::io::{Error, ErrorKind};
        let io = |kind: ErrorKind| {
            CoreError::Io {
                path: "./afile".into(),
                source: Error::from(kind),
            }
            .class()
        };
        let store = |store: &'static str, kind: ErrorKind| {
            classify_store_error(&object_store::Error::Generic {
                store,
                source: Box::new(Error::from(kind)),
            })
        };
        for kind in [
            ErrorKind::AlreadyExists,
            ErrorKind::NotADirectory,
            ErrorKind::IsADirectory,
            ErrorKind::PermissionDenied,
            ErrorKind::ReadOnlyFilesystem,
            ErrorKind::StorageFull,
        ] {
            assert_eq!(io(kind), ErrorClass::BadInput, "{kind:?}");
            assert_eq!(
                store("LocalFileSystem", kind),
                ErrorClass::BadInput,
                "{kind:?}"
            );
        }
        for kind in [ErrorKind::Interrupted, ErrorKind::TimedOut] {
            assert_eq!(io(kind), ErrorClass::Transient, "{kind:?}");
        }
        // The same kinds from another store are not read as a local disk's.
        assert_eq!(store("S3", ErrorKind::NotADirectory), ErrorClass::Transient);
    }
}
