//! Storage addressed by URL: one code path for local disk, S3 and in-memory stores.
//!
//! A [`DataRoot`] is parsed from `file:///path`, a plain path, `s3://bucket/prefix` or
//! `memory://name/prefix`, and hands out object paths below its prefix, URLs that DataFusion can
//! read, and the few object operations the workers need.
//!
//! On S3 every request goes through object_store's retry loop (bounded by [`StoreConfig`]'s retry
//! settings, with exponential backoff), and failures are translated here into errors an operator
//! can act on: a missing bucket or refused credentials names the bucket and is classed as bad
//! input (exit 2, configuration), anything else that may pass is transient (exit 75).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use bytes::Bytes;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use crate::config::StoreConfig;
use crate::error::{
    CoreError, ErrorClass, Result, S3_DENIED_CODES, S3Request, classify_store_error, s3_error_code,
    s3_transient_fault,
};

/// In-memory stores live for the process and are shared by name, so that several workers run in
/// one test process see the same `memory://name` root.
static MEMORY_STORES: LazyLock<Mutex<HashMap<String, Arc<InMemory>>>> =
    LazyLock::new(Default::default);

/// Where a run reads and writes: a URL (`s3://bucket/prefix`, `file:///path`, a plain path,
/// `memory://name`) opened once, every path below it relative to it.
#[derive(Clone)]
pub struct DataRoot {
    /// Scheme and authority only (`s3://bucket`, `file://`, `memory://name`): what DataFusion keys
    /// its object-store registry on.
    store_url: Url,
    store: Arc<dyn ObjectStore>,
    /// Path of the root inside the store, without leading or trailing slash.
    prefix: String,
    display: String,
    /// For `s3://` roots: the bucket and where requests go, to name them in error messages.
    s3: Option<S3Target>,
    /// For local roots: the folder, as the user named it (made absolute). The store is rooted
    /// there, so object paths hold only the product's own names and the folder's own name is
    /// never percent-encoded into a sibling.
    local: Option<std::path::PathBuf>,
}

#[derive(Clone, Debug)]
struct S3Target {
    bucket: String,
    /// `endpoint http://…` or `region eu-west-1`.
    location: String,
}

impl std::fmt::Debug for DataRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl std::fmt::Display for DataRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl DataRoot {
    /// Parses a data-root specification and builds the matching object store.
    pub fn open(spec: &str, cfg: &StoreConfig) -> Result<Self> {
        let invalid = |reason: String| CoreError::InvalidDataRoot {
            url: spec.to_string(),
            reason,
        };
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(invalid("empty".into()));
        }
        if !spec.contains("://") {
            return Self::local(std::path::Path::new(spec), spec);
        }
        let url = Url::parse(spec).map_err(|e| invalid(e.to_string()))?;
        // The key prefix of an s3:// or memory:// root, as typed: the URL parser would cut it at
        // a `#` or `?` and percent-encode the rest, and the object path would encode it again.
        let typed_prefix = || -> Result<String> {
            let rest = spec.split_once("://").map_or("", |(_, r)| r);
            let prefix = trim_slashes(rest.split_once('/').map_or("", |(_, p)| p));
            ObjPath::parse(&prefix).map_err(|e| invalid(format!("bad key prefix: {e}")))?;
            Ok(prefix)
        };
        match url.scheme() {
            "file" => {
                let path = url
                    .to_file_path()
                    .map_err(|_| invalid("not an absolute file path".into()))?;
                Self::local(&path, spec)
            }
            "s3" | "s3a" => {
                let bucket = url
                    .host_str()
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| invalid("missing bucket".into()))?;
                if cfg.ec2_metadata_disabled && !cfg.has_explicit_credentials() {
                    return Err(invalid(
                        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, run \
                         with an ECS task role (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) or web \
                         identity, or unset AWS_EC2_METADATA_DISABLED to use instance metadata"
                            .into(),
                    ));
                }
                let store = s3_builder(cfg, bucket)
                    .build()
                    .map_err(|e| invalid(format!("cannot configure S3: {e}")))?;
                Ok(DataRoot {
                    store_url: Url::parse(&format!("s3://{bucket}"))
                        .map_err(|e| invalid(e.to_string()))?,
                    store: Arc::new(store),
                    prefix: typed_prefix()?,
                    display: spec.trim_end_matches('/').to_string(),
                    local: None,
                    s3: Some(S3Target {
                        bucket: bucket.to_string(),
                        location: cfg.s3_location(),
                    }),
                })
            }
            "memory" => {
                let name = url.host_str().unwrap_or("default").to_string();
                let store = MEMORY_STORES
                    .lock()
                    .expect("memory store registry")
                    .entry(name.clone())
                    .or_default()
                    .clone();
                Ok(DataRoot {
                    store_url: Url::parse(&format!("memory://{name}"))
                        .map_err(|e| invalid(e.to_string()))?,
                    store,
                    prefix: typed_prefix()?,
                    display: spec.trim_end_matches('/').to_string(),
                    local: None,
                    s3: None,
                })
            }
            other => Err(invalid(format!(
                "unsupported scheme {other:?}; use file://, s3:// or memory://"
            ))),
        }
    }

    fn local(path: &std::path::Path, spec: &str) -> Result<Self> {
        if path.exists() && !path.is_dir() {
            return Err(CoreError::InvalidDataRoot {
                url: spec.to_string(),
                reason: "it is a file; a data root or a source is a folder".into(),
            });
        }
        std::fs::create_dir_all(path).map_err(|source| CoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let abs = std::fs::canonicalize(path).map_err(|source| CoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let store = LocalFileSystem::new_with_prefix(&abs)
            .map_err(|e| CoreError::InvalidDataRoot {
                url: spec.to_string(),
                reason: e.to_string(),
            })?
            .with_automatic_cleanup(true);
        // DataFusion keys stores by scheme and host: each local root gets a host of its own (a
        // hash of its folder), so two roots read in one session do not replace each other.
        let host = format!(
            "root-{:016x}",
            crate::hash::mix64(
                abs.to_string_lossy()
                    .bytes()
                    .fold(0u64, |h, b| crate::hash::mix64(h ^ u64::from(b)))
            )
        );
        Ok(DataRoot {
            store_url: Url::parse(&format!("{LOCAL_SCHEME}://{host}")).map_err(|e| {
                CoreError::InvalidDataRoot {
                    url: spec.to_string(),
                    reason: e.to_string(),
                }
            })?,
            store: Arc::new(store),
            prefix: String::new(),
            display: if spec.contains("://") {
                spec.trim_end_matches('/').to_string()
            } else {
                abs.display().to_string()
            },
            s3: None,
            local: Some(abs),
        })
    }

    /// The object store under the root (for readers that take one, such as Parquet's).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Object path of `rel` (a `/`-separated path relative to the root).
    /// The prefix is kept as typed (checked when the root was opened) and the product's own
    /// names need no encoding, so the path is parsed, not percent-encoded.
    pub fn path(&self, rel: &str) -> ObjPath {
        let rel = trim_slashes(rel);
        let joined = match (self.prefix.is_empty(), rel.is_empty()) {
            (true, _) => rel,
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{}", self.prefix, rel),
        };
        ObjPath::parse(&joined).unwrap_or_else(|_| ObjPath::from(joined))
    }

    /// Full URL of `rel` for people and messages: `file:///…` (percent-encoded as URLs are) for
    /// a local root, `s3://bucket/…` or `memory://…` otherwise.
    pub fn url(&self, rel: &str) -> String {
        if let Some(dir) = &self.local {
            let rel = trim_slashes(rel);
            let full = if rel.is_empty() {
                dir.clone()
            } else {
                dir.join(&rel)
            };
            return Url::from_file_path(&full)
                .map_or_else(|()| full.display().to_string(), String::from);
        }
        self.table_url(rel)
    }

    /// URL of `rel` in the form DataFusion's listing tables accept for this root's registered
    /// store (see [`DataRoot::register`]); the same as [`DataRoot::url`] except for local roots.
    /// Each key segment is percent-encoded into the URL (a `#` or `?` in a typed prefix would
    /// otherwise start a fragment or a query), and DataFusion decodes it back into the key.
    pub fn table_url(&self, rel: &str) -> String {
        let path = self.path(rel);
        let mut url = self.store_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.clear();
            segments.extend(path.parts().map(|p| p.as_ref().to_string()));
        }
        url.to_string()
    }

    /// Makes this root's store known to a DataFusion session.
    pub fn register(&self, ctx: &SessionContext) {
        ctx.runtime_env()
            .register_object_store(&self.store_url, self.store.clone());
    }

    /// Writes `bytes` at `rel` in one request, replacing what is there.
    pub async fn put(&self, rel: &str, bytes: Bytes) -> Result<()> {
        let path = self.path(rel);
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| self.store_error("put", self.url(rel), e))?;
        Ok(())
    }

    /// Reads the object at `rel`; [`CoreError::Store`] (bad input) when it does not exist.
    pub async fn get(&self, rel: &str) -> Result<Bytes> {
        let path = self.path(rel);
        let res = self
            .store
            .get(&path)
            .await
            .map_err(|e| self.store_error("get", self.url(rel), e))?;
        res.bytes()
            .await
            .map_err(|e| self.store_error("get", self.url(rel), e))
    }

    /// `Ok(None)` when the object does not exist (but an error when its bucket does not).
    pub async fn get_opt(&self, rel: &str) -> Result<Option<Bytes>> {
        match self.get(rel).await {
            Ok(b) => Ok(Some(b)),
            Err(CoreError::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the object exists. S3 answers a HEAD without a body, so a missing bucket reads as
    /// "no such object" here; the callers (e.g. [`crate::Manifest::published_dates`]) list the
    /// root first, which reports a missing bucket as such.
    pub async fn exists(&self, rel: &str) -> Result<bool> {
        match self.store.head(&self.path(rel)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.store_error("head", self.url(rel), e)),
        }
    }

    /// Every object below `rel`, sorted by path (listing order differs between stores).
    pub async fn list(&self, rel: &str) -> Result<Vec<ObjectMeta>> {
        let prefix = self.path(rel);
        let mut out: Vec<ObjectMeta> = match self.store.list(Some(&prefix)).try_collect().await {
            Ok(v) => v,
            // A local directory that does not exist lists as an error on some platforms.
            Err(e @ object_store::Error::NotFound { .. }) if !is_missing_bucket(&e) => Vec::new(),
            Err(e) => return Err(self.store_error("list", self.url(rel), e)),
        };
        out.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(out)
    }

    /// Names of the immediate sub-"directories" of `rel` (e.g. the `run_date=…` folders).
    pub async fn list_dirs(&self, rel: &str) -> Result<Vec<String>> {
        let prefix = self.path(rel);
        let res = match self.store.list_with_delimiter(Some(&prefix)).await {
            Ok(r) => r,
            Err(e @ object_store::Error::NotFound { .. }) if !is_missing_bucket(&e) => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(self.store_error("list", self.url(rel), e)),
        };
        let mut names: Vec<String> = res
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Moves the object at `from` to `to`, replacing what is there: a rename on local disk, a
    /// copy and a delete on S3 (server-side; a single copy takes objects up to 5 GiB).
    pub async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.store
            .rename(&self.path(from), &self.path(to))
            .await
            .map_err(|e| self.store_error("rename", self.url(from), e))
    }

    /// The local file behind `rel`, for a local root (readers that want a plain file, such as
    /// Parquet's synchronous one); `None` on other stores.
    pub fn local_file(&self, rel: &str) -> Option<std::path::PathBuf> {
        let rel = trim_slashes(rel);
        self.local.as_ref().map(|dir| dir.join(rel))
    }

    /// Deletes the object at `rel`; deleting what is not there succeeds.
    pub async fn delete(&self, rel: &str) -> Result<()> {
        match self.store.delete(&self.path(rel)).await {
            Ok(()) => Ok(()),
            Err(e @ object_store::Error::NotFound { .. }) if !is_missing_bucket(&e) => Ok(()),
            Err(e) => Err(self.store_error("delete", self.url(rel), e)),
        }
    }

    /// Deletes every object below `rel`.
    pub async fn delete_prefix(&self, rel: &str) -> Result<usize> {
        let objects = self.list(rel).await?;
        for meta in &objects {
            match self.store.delete(&meta.location).await {
                Ok(()) => {}
                Err(e @ object_store::Error::NotFound { .. }) if !is_missing_bucket(&e) => {}
                Err(e) => {
                    let url = self.url(&self.relative(&meta.location));
                    return Err(self.store_error("delete", url, e));
                }
            }
        }
        // On local disk the folders stay behind their files; an empty tree is removed too, and
        // so are the folders above it that it leaves empty, so that a cleared prefix looks the
        // same on every store. The root's own folder stays.
        let rel = trim_slashes(rel);
        if let Some(dir) = self.local_file(&rel) {
            prune_empty_dirs(&dir, !rel.is_empty());
            let mut above = rel.as_str();
            while let Some((parent, _)) = above.rsplit_once('/') {
                match self.local_file(parent) {
                    // Fails, as it should, at the first folder that still holds something.
                    Some(dir) if std::fs::remove_dir(&dir).is_ok() => above = parent,
                    _ => break,
                }
            }
        }
        Ok(objects.len())
    }

    /// Turns an object-store failure on `url` into the error a worker reports: on S3, a missing
    /// bucket and refused credentials become [`CoreError::BucketNotFound`] and
    /// [`CoreError::AccessDenied`], which name the bucket and say what to fix; a fault that
    /// outlasted object_store's retries (5xx, throttling, network) becomes
    /// [`CoreError::S3Unavailable`], which names the request and its last fault and says the task
    /// will be retried; everything else is [`CoreError::Store`], classified by
    /// [`crate::error::classify_store_error`].
    pub fn store_error(
        &self,
        op: &'static str,
        url: String,
        source: object_store::Error,
    ) -> CoreError {
        let Some(s3) = &self.s3 else {
            return CoreError::store(op, url, source);
        };
        let request = |code: String| {
            Box::new(S3Request {
                bucket: s3.bucket.clone(),
                url: url.clone(),
                location: s3.location.clone(),
                code,
            })
        };
        let code = s3_error_code(&source);
        if code.as_deref() == Some("NoSuchBucket") {
            return CoreError::BucketNotFound {
                op,
                request: request("NoSuchBucket".into()),
                source,
            };
        }
        let denied_status = match &source {
            object_store::Error::PermissionDenied { .. } => Some("403 Forbidden"),
            object_store::Error::Unauthenticated { .. } => Some("401 Unauthorized"),
            _ => None,
        };
        let denied_code = code.filter(|c| S3_DENIED_CODES.contains(&c.as_str()));
        if let Some(code) = denied_code.or(denied_status.map(str::to_string)) {
            return CoreError::AccessDenied {
                op,
                request: request(code),
                source,
            };
        }
        if classify_store_error(&source) == ErrorClass::Transient {
            let (retries, fault) = s3_transient_fault(&source);
            return CoreError::S3Unavailable {
                op,
                request: request(fault),
                retries,
                source,
            };
        }
        CoreError::store(op, url, source)
    }

    /// Size and SHA-256 (hex) of the object at `rel`, hashed as it streams in (the object is not
    /// held in memory).
    pub async fn sha256(&self, rel: &str) -> Result<(u64, String)> {
        use sha2::{Digest, Sha256};
        // Read in large ranges: a local file's own stream comes in 8 KiB blocking reads, each a
        // round trip through the blocking pool.
        const RANGE: u64 = 8 << 20;
        let path = self.path(rel);
        let len = self
            .store
            .head(&path)
            .await
            .map_err(|e| self.store_error("head", self.url(rel), e))?
            .size;
        let mut hasher = Sha256::new();
        let mut at = 0u64;
        while at < len {
            let end = (at + RANGE).min(len);
            let chunk = self.get_range(rel, at..end).await?;
            hasher.update(&chunk);
            at = end;
        }
        Ok((len, hex::encode(hasher.finalize())))
    }

    /// Bytes `range` of the object at `rel`.
    pub async fn get_range(&self, rel: &str, range: std::ops::Range<u64>) -> Result<Bytes> {
        self.store
            .get_range(&self.path(rel), range)
            .await
            .map_err(|e| self.store_error("get", self.url(rel), e))
    }

    /// Checks that `rel` still holds what a manifest recorded when it was published: its size
    /// and SHA-256, hashed as it streams in (the file is not held in memory). A file replaced
    /// since (another run's, another table's) is bad input naming the file.
    pub async fn verify(&self, rel: &str, bytes: u64, sha256: &str) -> Result<()> {
        let (len, actual) = self.sha256(rel).await?;
        if len != bytes || actual != sha256 {
            return Err(CoreError::BadManifest {
                path: self.url(rel),
                reason: format!(
                    "the file changed since it was published: {len} bytes with SHA-256 \
                     {actual}, the manifest lists {bytes} bytes with {sha256}; rerun the stage \
                     that wrote it"
                ),
            });
        }
        Ok(())
    }

    /// Path of an object relative to this root (inverse of [`DataRoot::path`]).
    pub fn relative(&self, path: &ObjPath) -> String {
        let s = path.as_ref();
        if self.prefix.is_empty() {
            return s.to_string();
        }
        s.strip_prefix(&self.prefix)
            .map(|r| r.trim_start_matches('/').to_string())
            .unwrap_or_else(|| s.to_string())
    }
}

/// The object-store settings of an `s3://bucket` root: every `AWS_*` setting of the config and its
/// retry policy.
fn s3_builder(cfg: &StoreConfig, bucket: &str) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::new();
    for (k, v) in &cfg.s3 {
        builder = builder.with_config(*k, v.clone());
    }
    builder
        .with_bucket_name(bucket)
        .with_retry(cfg.retry_config())
}

/// S3's answer to a request on a bucket that does not exist (a plain 404 is a missing object).
fn is_missing_bucket(e: &object_store::Error) -> bool {
    s3_error_code(e).as_deref() == Some("NoSuchBucket")
}

/// Scheme under which local roots are registered with DataFusion (one host per root folder).
const LOCAL_SCHEME: &str = "repurchase-local";

fn trim_slashes(s: &str) -> String {
    s.trim_matches('/').to_string()
}

/// Removes the folders below `dir` that hold no file, and `dir` itself when `itself` and it is
/// left empty (best effort: a folder that cannot be read or removed is left).
fn prune_empty_dirs(dir: &std::path::Path, itself: bool) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                prune_empty_dirs(&entry.path(), true);
            }
        }
        if itself {
            // Fails, as it should, when a file is left.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_roots_are_shared_by_name_and_prefixed() {
        let cfg = StoreConfig::default();
        let a = DataRoot::open("memory://shared-test/base", &cfg).unwrap();
        a.put("x/y.txt", Bytes::from_static(b"hi")).await.unwrap();
        let b = DataRoot::open("memory://shared-test/base/", &cfg).unwrap();
        assert_eq!(b.get("x/y.txt").await.unwrap(), Bytes::from_static(b"hi"));
        assert_eq!(a.url("x/y.txt"), "memory://shared-test/base/x/y.txt");
        assert_eq!(b.list_dirs("").await.unwrap(), vec!["x".to_string()]);
        assert!(b.get_opt("x/none").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn plain_paths_become_file_urls() {
        let dir =
            std::env::temp_dir().join(format!("repurchase-storage-test-{}", std::process::id()));
        let root = DataRoot::open(dir.to_str().unwrap(), &StoreConfig::default()).unwrap();
        root.put("a/b.bin", Bytes::from_static(b"1")).await.unwrap();
        assert!(root.url("a/b.bin").starts_with("file:///"));
        assert!(dir.join("a/b.bin").exists());
        root.put("a/c/d.bin", Bytes::from_static(b"2"))
            .await
            .unwrap();
        assert_eq!(root.delete_prefix("a").await.unwrap(), 2);
        assert!(
            !dir.join("a").exists(),
            "an emptied folder goes with its files"
        );
        // Folders above the prefix that it leaves empty go too; one that holds more stays.
        root.put("s/x/run=1/p.bin", Bytes::from_static(b"4"))
            .await
            .unwrap();
        root.put("s/keep.bin", Bytes::from_static(b"5"))
            .await
            .unwrap();
        assert_eq!(root.delete_prefix("s/x/run=1").await.unwrap(), 1);
        assert!(!dir.join("s/x").exists() && dir.join("s/keep.bin").exists());
        root.put("e.bin", Bytes::from_static(b"3")).await.unwrap();
        assert_eq!(root.delete_prefix("").await.unwrap(), 2);
        assert!(dir.is_dir(), "the root's own folder stays");
        // Renames replace what is there.
        root.put("f/1", Bytes::from_static(b"1")).await.unwrap();
        root.put("g/2", Bytes::from_static(b"2")).await.unwrap();
        root.rename("f/1", "g/2").await.unwrap();
        assert_eq!(root.get("g/2").await.unwrap(), Bytes::from_static(b"1"));
        assert!(!root.exists("f/1").await.unwrap());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn rejects_unknown_schemes() {
        let err = DataRoot::open("ftp://x/y", &StoreConfig::default()).unwrap_err();
        assert!(err.to_string().contains("unsupported scheme"), "{err}");
    }

    fn s3_cfg() -> StoreConfig {
        StoreConfig::from_vars([
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/x",
            ),
            ("REPURCHASE_STORE_MAX_RETRIES", "4"),
        ])
    }

    #[test]
    fn s3_builder_gets_every_aws_setting() {
        use object_store::aws::AmazonS3ConfigKey as K;
        let b = s3_builder(&s3_cfg(), "bucket-a");
        assert_eq!(b.get_config_value(&K::Region).as_deref(), Some("eu-west-1"));
        assert_eq!(
            b.get_config_value(&K::Endpoint).as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(b.get_config_value(&K::Bucket).as_deref(), Some("bucket-a"));
        assert_eq!(
            b.get_config_value(&K::ContainerCredentialsRelativeUri)
                .as_deref(),
            Some("/v2/credentials/x")
        );
        let root = DataRoot::open("s3://bucket-a/lake/", &s3_cfg()).unwrap();
        assert_eq!(
            root.url("raw/x.parquet"),
            "s3://bucket-a/lake/raw/x.parquet"
        );
        assert_eq!(root.to_string(), "s3://bucket-a/lake");
    }

    #[test]
    fn s3_without_any_credentials_fails_at_open_when_metadata_is_disabled() {
        let cfg = StoreConfig::from_vars([
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]);
        let err = DataRoot::open("s3://b/p", &cfg).unwrap_err();
        assert_eq!(err.class(), crate::ErrorClass::BadInput);
        assert!(err.to_string().contains("no AWS credentials"), "{err}");
    }

    #[test]
    fn s3_failures_name_the_bucket_and_are_configuration() {
        let root = DataRoot::open("s3://bucket-a/lake", &s3_cfg()).unwrap();
        let missing = object_store::Error::NotFound {
            path: "lake/x".into(),
            source: "Server returned non-2xx status code: 404 Not Found: \
                     <Error><Code>NoSuchBucket</Code></Error>"
                .into(),
        };
        assert!(is_missing_bucket(&missing));
        let err = root.store_error("put", root.url("x"), missing);
        assert!(matches!(err, CoreError::BucketNotFound { .. }), "{err}");
        assert_eq!(err.class(), crate::ErrorClass::BadInput);
        let msg = err.to_string();
        assert!(msg.contains("\"bucket-a\" does not exist"), "{msg}");
        assert!(msg.contains("endpoint http://127.0.0.1:9"), "{msg}");

        let denied = object_store::Error::PermissionDenied {
            path: "lake/x".into(),
            source: "403 Forbidden (HEAD: no body)".into(),
        };
        let err = root.store_error("head", root.url("x"), denied);
        assert!(matches!(err, CoreError::AccessDenied { .. }), "{err}");
        assert_eq!(err.class(), crate::ErrorClass::BadInput);
        assert!(err.to_string().contains("403 Forbidden"), "{err}");

        // A missing object is still just that; a 503 stays transient.
        let nf = object_store::Error::NotFound {
            path: "lake/x".into(),
            source: "<Error><Code>NoSuchKey</Code></Error>".into(),
        };
        assert!(matches!(
            root.store_error("get", root.url("x"), nf),
            CoreError::Store { .. }
        ));
        // A 503 that outlasted the retries: transient, and the message says what failed and why.
        let slow = object_store::Error::Generic {
            store: "S3",
            source: "Error performing PUT http://127.0.0.1:9/bucket-a/lake/x in 1.2s, after 4 \
                     retries, max_retries: 4, retry_timeout: 180s  - Server returned non-2xx \
                     status code: 503 Service Unavailable: <Error><Code>SlowDown</Code></Error>"
                .into(),
        };
        let err = root.store_error("put", root.url("x"), slow);
        assert!(matches!(err, CoreError::S3Unavailable { .. }), "{err:?}");
        assert_eq!(err.class(), crate::ErrorClass::Transient);
        assert_eq!(
            err.to_string(),
            "S3 unavailable: put s3://bucket-a/lake/x failed after 4 retries (503 SlowDown; \
             endpoint http://127.0.0.1:9): transient"
        );
    }
}
