//! One run at a time per stage and run date: a lease held in the data root itself.
//!
//! Two runs of one stage for one date (a backfill beside the schedule, a manual rerun beside the
//! DAG) would otherwise interleave their deletes and writes and could publish a manifest over
//! another run's bytes. Before a worker touches its outputs it creates
//! `_locks/<name>/run_date=D.json` with a conditional put (`If-None-Match: *` on S3, a hard link
//! on local disk), so exactly one run gets it; the other is refused, naming the holder.
//!
//! The lock is a lease: the holder renews it every fifth of the lease from a thread of its own
//! (CPU-bound work on the runtime cannot starve it), and a lock whose lease ran out belongs to a
//! run that died (OOM kill, lost instance) and is taken over. A run with the same owner (a retry of
//! one Airflow task instance, which passes its own id) takes its lock over at once. A holder that
//! finds its lock taken, or cannot renew it before it expires, stops before publishing anything
//! more. Takeovers and renewals are conditional on the version read (`If-Match`) where the store
//! supports it; local disk has no such put, so there the lock is re-read just before it is
//! replaced.
//!
//! Lease times are wall-clock by nature and are read here; they are never written into outputs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::error::{CoreError, LockHeld, Result};
use crate::run_date::RunDate;
use crate::storage::DataRoot;

/// Folder of the lock objects under a data root; its leading `_` keeps it out of every dataset.
pub const LOCKS_DIR: &str = "_locks";

/// Default lease: ten minutes, renewed every two.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(600);

/// What a lock object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Lock name: the stage, and the shard for sharded scoring (`score/shard=0001-of-0004`).
    pub name: String,
    /// Run date the lock is for.
    pub run_date: RunDate,
    /// Who holds it: the Airflow task instance (`REPURCHASE_LOCK_OWNER`) or `host:pid`.
    pub owner: String,
    /// Unique to one acquisition, so a holder can tell its lock from a successor's.
    pub token: String,
    /// When it was taken (RFC 3339, the storage's clock as seen by the holder).
    pub acquired_at: String,
    /// When the lease ends unless renewed (RFC 3339).
    pub expires_at: String,
    /// Version of the program holding it.
    pub code_version: String,
}

impl LockRecord {
    fn expires(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.expires_at)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Path of the lock object of `name` for `run_date`, relative to the data root.
pub fn lock_path(name: &str, run_date: RunDate) -> String {
    format!("{LOCKS_DIR}/{name}/run_date={run_date}.json")
}

/// Who holds a lock and for how long.
#[derive(Debug, Clone)]
pub struct LockSettings {
    /// Recorded as the holder; a lock left by the same owner is taken over at once.
    pub owner: String,
    /// How long the lock holds without a renewal.
    pub lease: Duration,
}

impl LockSettings {
    /// `owner` as given, or this host and process when none is (two processes never share one).
    pub fn new(owner: Option<&str>, lease: Duration) -> Self {
        let owner = match owner.map(str::trim).filter(|o| !o.is_empty()) {
            Some(o) => o.to_string(),
            None => format!("{}:{}", host_name(), std::process::id()),
        };
        LockSettings { owner, lease }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn new_token(owner: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(owner.as_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(
        Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .to_le_bytes(),
    );
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    hex::encode(&h.finalize()[..16])
}

/// A held lock. Release it with [`StageLock::release`]; one dropped unreleased expires with its
/// lease.
#[derive(Debug)]
pub struct StageLock {
    root: DataRoot,
    rel: String,
    record: LockRecord,
    /// Version of the object as last written by us, for conditional renewals.
    version: UpdateVersion,
    lease: Duration,
}

/// What acquiring found when the lock was already there.
enum Existing {
    /// Nobody holds it any more (deleted meanwhile): try again.
    Gone,
    Held(LockRecord, UpdateVersion),
}

impl StageLock {
    /// Takes the lock `name` for `run_date`, or fails with [`CoreError::Locked`] naming the live
    /// holder. A lock of the same owner, or whose lease has run out, is taken over.
    pub async fn acquire(
        root: &DataRoot,
        name: &str,
        run_date: RunDate,
        settings: &LockSettings,
    ) -> Result<Self> {
        let rel = lock_path(name, run_date);
        let url = root.url(&rel);
        let held_as = |record, version| StageLock {
            root: root.clone(),
            rel: rel.clone(),
            record,
            version,
            lease: settings.lease,
        };
        for _ in 0..5 {
            let now = Utc::now();
            let record = LockRecord {
                name: name.to_string(),
                run_date,
                owner: settings.owner.clone(),
                token: new_token(&settings.owner),
                acquired_at: timestamp(now),
                expires_at: timestamp(now + lease_delta(settings.lease)),
                code_version: crate::code_version(),
            };
            match put(root, &rel, &record, PutMode::Create).await {
                Ok(version) => {
                    info!(lock = %url, owner = %record.owner, lease_s = settings.lease.as_secs_f64(), "lock taken");
                    return Ok(held_as(record, version));
                }
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(root.store_error("put", url, e)),
            }
            let (held, version) = match read(root, &rel).await? {
                Existing::Gone => continue,
                Existing::Held(held, version) => (held, version),
            };
            let same_owner = held.owner == settings.owner;
            let expired = held.expires().is_none_or(|t| t <= now);
            if !same_owner && !expired {
                return Err(CoreError::Locked(Box::new(LockHeld {
                    url,
                    name: name.to_string(),
                    run_date: run_date.to_string(),
                    owner: held.owner,
                    acquired_at: held.acquired_at,
                    expires_at: held.expires_at,
                })));
            }
            let why = if same_owner {
                "a retry of the same owner"
            } else {
                "its lease ran out"
            };
            match replace(root, &rel, &record, &held, version).await? {
                Some(version) => {
                    warn!(lock = %url, previous_owner = %held.owner, previous_expiry = %held.expires_at, reason = why, "lock taken over");
                    return Ok(held_as(record, version));
                }
                // Someone else changed it between our read and our write: look again.
                None => continue,
            }
        }
        Err(CoreError::Locked(Box::new(LockHeld {
            url,
            name: name.to_string(),
            run_date: run_date.to_string(),
            owner: "(changing hands while we tried)".into(),
            acquired_at: String::new(),
            expires_at: String::new(),
        })))
    }

    /// What the lock object holds.
    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    /// URL of the lock object.
    pub fn url(&self) -> String {
        self.root.url(&self.rel)
    }

    /// Extends the lease. `Ok(false)` when the lock is no longer ours (taken over after our lease
    /// ran out); the caller must then stop writing.
    pub async fn renew(&mut self) -> Result<bool> {
        let held = match read(&self.root, &self.rel).await? {
            Existing::Gone => return Ok(false),
            Existing::Held(held, _) => held,
        };
        if held.token != self.record.token {
            return Ok(false);
        }
        let mut record = self.record.clone();
        record.expires_at = timestamp(Utc::now() + lease_delta(self.lease));
        match replace(&self.root, &self.rel, &record, &held, self.version.clone()).await? {
            Some(v) => {
                self.record = record;
                self.version = v;
                Ok(true)
            }
            // A conditional write that S3 applied but whose answer was lost is retried and then
            // fails its own precondition: the lock is still ours if it carries our token.
            None => match read(&self.root, &self.rel).await? {
                Existing::Held(now, v) if now.token == self.record.token => {
                    self.record = now;
                    self.version = v;
                    Ok(true)
                }
                _ => Ok(false),
            },
        }
    }

    /// Whether the lock object still carries this acquisition's token.
    pub async fn is_held(&self) -> Result<bool> {
        Ok(match read(&self.root, &self.rel).await? {
            Existing::Gone => false,
            Existing::Held(held, _) => held.token == self.record.token,
        })
    }

    /// Deletes the lock if it is still ours (a successor's is left alone).
    pub async fn release(self) -> Result<()> {
        if self.is_held().await? {
            self.root.delete(&self.rel).await?;
            info!(lock = %self.url(), "lock released");
        } else {
            warn!(lock = %self.url(), "lock was taken over before release; left to its holder");
        }
        Ok(())
    }

    /// Runs `work` while holding the lock: a thread renews the lease, and `work` is stopped with
    /// [`CoreError::LockLost`] if the lock is lost. The lock is released afterwards, whatever
    /// `work` returned. `reopen` gives the renewing thread a data root of its own (its own
    /// runtime, so its own S3 client).
    pub async fn hold<T, E, F>(
        self,
        reopen: impl FnOnce() -> Result<DataRoot> + Send + 'static,
        work: F,
    ) -> Result<T, E>
    where
        F: std::future::Future<Output = Result<T, E>>,
        E: From<CoreError>,
    {
        let url = self.url();
        let lost = Arc::new(AtomicBool::new(false));
        let lost_notify = Arc::new(Notify::new());
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let interval = (self.lease / 5).max(Duration::from_millis(100));
        let renewing_root = match reopen() {
            Ok(r) => r,
            Err(e) => {
                let _ = self.release().await;
                return Err(e.into());
            }
        };
        let mut renewing = StageLock {
            root: renewing_root,
            rel: self.rel.clone(),
            record: self.record.clone(),
            version: self.version.clone(),
            lease: self.lease,
        };
        let thread_lost = lost.clone();
        let thread_notify = lost_notify.clone();
        let spawned = std::thread::Builder::new()
            .name("lock-lease".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        warn!(error = %e, "cannot start the lock renewal runtime");
                        thread_lost.store(true, Ordering::SeqCst);
                        thread_notify.notify_one();
                        return renewing.record;
                    }
                };
                // Renews every `interval` until told to stop (or the sender is gone).
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stop_rx.recv_timeout(interval)
                {
                    let outcome = rt.block_on(renewing.renew());
                    let give_up = match outcome {
                        Ok(true) => false,
                        Ok(false) => true,
                        Err(e) => {
                            // A failed renewal is tried again; the lock is only given up once
                            // its lease has run out, when a successor may already hold it.
                            let expired = renewing.record.expires().is_none_or(|t| t <= Utc::now());
                            warn!(lock = %renewing.url(), error = %e, expired, "lock renewal failed");
                            expired
                        }
                    };
                    if give_up {
                        thread_lost.store(true, Ordering::SeqCst);
                        thread_notify.notify_one();
                        break;
                    }
                }
                renewing.record
            });
        let heartbeat = match spawned {
            Ok(h) => h,
            Err(source) => {
                let _ = self.release().await;
                return Err(CoreError::Io { path: url, source }.into());
            }
        };
        let out = tokio::select! {
            out = work => out,
            () = lost_notify.notified() => Err(CoreError::LockLost { url: url.clone() }.into()),
        };
        let _ = stop_tx.send(());
        let renewed = tokio::task::spawn_blocking(move || heartbeat.join())
            .await
            .ok()
            .and_then(Result::ok);
        let mut me = self;
        if let Some(record) = renewed {
            me.record = record;
        }
        if lost.load(Ordering::SeqCst) {
            return Err(match out {
                Err(e) => e,
                Ok(_) => CoreError::LockLost { url }.into(),
            });
        }
        if let Err(e) = me.release().await {
            // The work is done and published; a lock left behind expires with its lease.
            warn!(lock = %url, error = %e, "could not release the lock; it expires with its lease");
        }
        out
    }
}

fn lease_delta(lease: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(lease).unwrap_or(chrono::TimeDelta::MAX)
}

fn encode(record: &LockRecord) -> Bytes {
    let mut bytes = serde_json::to_vec_pretty(record).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

async fn put(
    root: &DataRoot,
    rel: &str,
    record: &LockRecord,
    mode: PutMode,
) -> std::result::Result<UpdateVersion, object_store::Error> {
    let opts = PutOptions {
        mode,
        ..Default::default()
    };
    let res = root
        .store()
        .put_opts(&root.path(rel), PutPayload::from(encode(record)), opts)
        .await?;
    Ok(UpdateVersion {
        e_tag: res.e_tag,
        version: res.version,
    })
}

async fn read(root: &DataRoot, rel: &str) -> Result<Existing> {
    let path = root.path(rel);
    let got = match root.store().get(&path).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => return Ok(Existing::Gone),
        Err(e) => return Err(root.store_error("get", root.url(rel), e)),
    };
    let version = UpdateVersion {
        e_tag: got.meta.e_tag.clone(),
        version: got.meta.version.clone(),
    };
    let bytes = match got.bytes().await {
        Ok(b) => b,
        Err(object_store::Error::NotFound { .. }) => return Ok(Existing::Gone),
        Err(e) => return Err(root.store_error("get", root.url(rel), e)),
    };
    let record: LockRecord =
        serde_json::from_slice(&bytes).map_err(|e| CoreError::BadManifest {
            path: root.url(rel),
            reason: format!(
                "not a lock written by this program ({e}); if no run of this stage is going on, \
                 delete it"
            ),
        })?;
    Ok(Existing::Held(record, version))
}

/// Replaces the lock `held` (read at `version`) by `record`. `Ok(None)` when it changed since.
async fn replace(
    root: &DataRoot,
    rel: &str,
    record: &LockRecord,
    held: &LockRecord,
    version: UpdateVersion,
) -> Result<Option<UpdateVersion>> {
    match put(root, rel, record, PutMode::Update(version)).await {
        Ok(v) => return Ok(Some(v)),
        Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
            return Ok(None);
        }
        Err(object_store::Error::NotImplemented { .. }) => {}
        Err(e) => return Err(root.store_error("put", root.url(rel), e)),
    }
    // Local disk: no conditional update. Re-read, and replace only the very lock we judged.
    match read(root, rel).await? {
        Existing::Held(now, _) if now.token == held.token => {}
        _ => return Ok(None),
    }
    if record.token == held.token {
        // A renewal of our own lock: nobody else may write it while it is live.
        return match put(root, rel, record, PutMode::Overwrite).await {
            Ok(v) => Ok(Some(v)),
            Err(e) => Err(root.store_error("put", root.url(rel), e)),
        };
    }
    root.delete(rel).await?;
    match put(root, rel, record, PutMode::Create).await {
        Ok(v) => Ok(Some(v)),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(None),
        Err(e) => Err(root.store_error("put", root.url(rel), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;

    #[tokio::test]
    async fn a_lock_object_that_is_not_a_lock_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = DataRoot::open(dir.path().to_str().unwrap(), &StoreConfig::default()).unwrap();
        let d: RunDate = "2025-06-30".parse().unwrap();
        root.put(&lock_path("extract", d), Bytes::from_static(b"junk"))
            .await
            .unwrap();
        let settings = LockSettings::new(Some("A"), Duration::from_secs(1));
        let err = StageLock::acquire(&root, "extract", d, &settings)
            .await
            .unwrap_err();
        assert_eq!(err.class(), crate::ErrorClass::BadInput);
        assert!(
            err.to_string()
                .contains("not a lock written by this program"),
            "{err}"
        );
    }

    #[test]
    fn owners_default_to_host_and_process() {
        let s = LockSettings::new(None, DEFAULT_LEASE);
        assert!(
            s.owner.ends_with(&format!(":{}", std::process::id())),
            "{}",
            s.owner
        );
        assert_eq!(LockSettings::new(Some("  "), DEFAULT_LEASE).owner, s.owner);
        assert_eq!(
            LockSettings::new(Some("dag/run/task"), DEFAULT_LEASE).owner,
            "dag/run/task"
        );
    }
}
