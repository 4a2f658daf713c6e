//! The stage lock (`repurchase_core::lock`) on every backend: memory, local disk (no conditional
//! update: re-read before replace) and S3 on moto (`If-None-Match` / `If-Match`).

use std::time::Duration;

use bytes::Bytes;
use repurchase_core::lock::{LockRecord, LockSettings, StageLock, lock_path};
use repurchase_core::{CoreError, DataRoot, ErrorClass, RunDate};

use crate::support::date;

fn settings(owner: &str, lease_ms: u64) -> LockSettings {
    LockSettings::new(Some(owner), Duration::from_millis(lease_ms))
}

async fn acquire(
    root: &DataRoot,
    name: &str,
    owner: &str,
    lease_ms: u64,
) -> Result<StageLock, CoreError> {
    StageLock::acquire(root, name, day(), &settings(owner, lease_ms)).await
}

fn day() -> RunDate {
    date("2025-06-30")
}

/// One owner at a time; another stage or date is another lock; release frees it.
async fn exclusive(root: &DataRoot) {
    let a = acquire(root, "extract", "dag-run-A", 60_000).await.unwrap();
    let err = acquire(root, "extract", "manual-B", 60_000)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient);
    let msg = err.to_string();
    assert!(
        msg.contains("another extract run for 2025-06-30 is going on"),
        "{msg}"
    );
    assert!(msg.contains("held by dag-run-A"), "{msg}");
    assert!(
        msg.contains("_locks/extract/run_date=2025-06-30.json"),
        "{msg}"
    );
    let other = acquire(root, "train", "manual-B", 60_000).await.unwrap();
    let other_date = StageLock::acquire(
        root,
        "extract",
        date("2025-07-01"),
        &settings("manual-B", 60_000),
    )
    .await
    .unwrap();
    other.release().await.unwrap();
    other_date.release().await.unwrap();
    a.release().await.unwrap();
    assert!(!root.exists(&lock_path("extract", day())).await.unwrap());
    let b = acquire(root, "extract", "manual-B", 60_000).await.unwrap();
    assert_eq!(b.record().owner, "manual-B");
    b.release().await.unwrap();
}

/// The same owner takes over at once, anyone after the lease; the superseded holder sees it lost
/// and its release leaves the successor's lock.
async fn takeover(root: &DataRoot) {
    let mut first = acquire(root, "score", "try-1", 60_000).await.unwrap();
    let mut retry = acquire(root, "score", "try-1", 300).await.unwrap();
    assert!(
        !first.renew().await.unwrap(),
        "the superseded holder must see it lost"
    );
    assert!(!first.is_held().await.unwrap());
    first.release().await.unwrap();
    assert!(
        retry.is_held().await.unwrap(),
        "release must leave a successor's lock"
    );
    assert!(retry.renew().await.unwrap());
    let err = acquire(root, "score", "other", 60_000).await.unwrap_err();
    assert!(matches!(err, CoreError::Locked(_)), "{err}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let other = acquire(root, "score", "other", 60_000).await.unwrap();
    assert!(!retry.renew().await.unwrap());
    assert_eq!(other.record().owner, "other");
    other.release().await.unwrap();
}

/// `hold` renews the lease while the work runs, releases it after, and stops work whose lock
/// was taken.
async fn hold(root: &DataRoot) {
    let lock = acquire(root, "train", "A", 900).await.unwrap();
    let (reopen, probe) = (root.clone(), root.clone());
    let out = lock
        .hold(move || Ok(reopen), async move {
            tokio::time::sleep(Duration::from_millis(2_500)).await;
            acquire(&probe, "train", "B", 900).await.map(|_| ())
        })
        .await;
    assert!(
        matches!(out, Err(CoreError::Locked(ref held)) if held.owner == "A"),
        "a lock held past its first lease must still be held: {out:?}"
    );
    assert!(
        !root.exists(&lock_path("train", day())).await.unwrap(),
        "released"
    );

    let lock = acquire(root, "train", "A", 900).await.unwrap();
    let mut thief: LockRecord = lock.record().clone();
    thief.owner = "thief".into();
    thief.token = "0".repeat(32);
    let (reopen, writer) = (root.clone(), root.clone());
    let started = std::time::Instant::now();
    let out: Result<(), CoreError> = lock
        .hold(move || Ok(reopen), async move {
            let bytes = serde_json::to_vec(&thief).unwrap();
            writer
                .put(&lock_path("train", day()), Bytes::from(bytes))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        })
        .await;
    assert!(matches!(out, Err(CoreError::LockLost { .. })), "{out:?}");
    assert_eq!(out.unwrap_err().class(), ErrorClass::Transient);
    assert!(started.elapsed() < Duration::from_secs(10));
    let left = root.get(&lock_path("train", day())).await.unwrap();
    assert!(
        String::from_utf8_lossy(&left).contains("thief"),
        "the thief's lock stays"
    );
}

/// The lock suite of the storage conformance test (`storage.rs`), run on every backend.
pub(crate) async fn conformance(root: DataRoot) {
    exclusive(&root).await;
    takeover(&root).await;
    hold(&root).await;
}
