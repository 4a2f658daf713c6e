//! Reading a source file front to back on any store, hashing it on the way.
//!
//! The parsers ([`crate::load`]) are synchronous and run on a blocking thread; a [`SourceReader`]
//! hands them the file as a plain [`Read`]: a local file directly, an object on another store in
//! ranges of [`RANGE_BYTES`] fetched through the runtime. The SHA-256 recorded in the manifest is
//! computed from the bytes as they pass (compressed, as stored), so nothing is read twice.
//!
//! A failed read surfaces in the parser as an I/O error; the store's own error (which says
//! whether to retry) is kept aside in a [`Fault`] and reported instead.

use std::io::Read;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use repurchase_core::{CoreError, DataRoot};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

/// Bytes fetched per request from an object store.
pub const RANGE_BYTES: u64 = 8 << 20;

/// The first store error met while reading, kept for the caller to report.
#[derive(Clone, Default)]
pub struct Fault(Arc<Mutex<Option<CoreError>>>);

impl Fault {
    /// Records `e` unless an earlier fault is already recorded (the first is the cause).
    pub fn set(&self, e: CoreError) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
    }

    /// The recorded fault, if any.
    pub fn take(&self) -> Option<CoreError> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// One source file, read sequentially from its start.
pub struct SourceReader {
    inner: Inner,
    sha: Sha256,
    bytes: u64,
    fault: Fault,
}

enum Inner {
    Local(std::fs::File),
    Remote(Box<Remote>),
}

/// A file on an object store, fetched in ranges of [`RANGE_BYTES`].
struct Remote {
    root: DataRoot,
    rel: String,
    len: u64,
    /// Offset of the next range to fetch.
    at: u64,
    /// What is left of the last range fetched.
    buf: Bytes,
    handle: Handle,
}

impl SourceReader {
    /// Opens `rel` below `root` (`len` bytes, as listed). Call from a blocking thread of the
    /// runtime `handle` belongs to.
    pub fn open(root: &DataRoot, rel: &str, len: u64, handle: Handle) -> Result<Self, CoreError> {
        let inner = match root.local_file(rel) {
            Some(path) => {
                Inner::Local(std::fs::File::open(&path).map_err(|source| CoreError::Io {
                    path: path.display().to_string(),
                    source,
                })?)
            }
            None => Inner::Remote(Box::new(Remote {
                root: root.clone(),
                rel: rel.to_string(),
                len,
                at: 0,
                buf: Bytes::new(),
                handle,
            })),
        };
        Ok(SourceReader {
            inner,
            sha: Sha256::new(),
            bytes: 0,
            fault: Fault::default(),
        })
    }

    /// Where a store error met while reading is kept.
    pub fn fault(&self) -> Fault {
        self.fault.clone()
    }

    /// Reads what the parser left (nothing, normally) and returns the file's size and SHA-256.
    pub fn finish(mut self) -> Result<(u64, String), CoreError> {
        let fault = self.fault.clone();
        std::io::copy(&mut self, &mut std::io::sink()).map_err(|source| {
            fault.take().unwrap_or(CoreError::Io {
                path: "source file".into(),
                source,
            })
        })?;
        Ok((self.bytes, hex::encode(self.sha.finalize())))
    }
}

impl Read for SourceReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = match &mut self.inner {
            Inner::Local(file) => file.read(out)?,
            Inner::Remote(r) => {
                if r.buf.is_empty() && r.at < r.len {
                    let end = (r.at + RANGE_BYTES).min(r.len);
                    match r.handle.block_on(r.root.get_range(&r.rel, r.at..end)) {
                        Ok(bytes) => {
                            r.at = end;
                            r.buf = bytes;
                        }
                        Err(e) => {
                            let message = e.to_string();
                            self.fault.set(e);
                            return Err(std::io::Error::other(message));
                        }
                    }
                }
                let n = r.buf.len().min(out.len());
                out[..n].copy_from_slice(&r.buf[..n]);
                r.buf = r.buf.slice(n..);
                n
            }
        };
        self.sha.update(&out[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A reader layer (a decompressor) whose failures are recorded in a [`Fault`] as `describe`
/// names them, unless the layer below recorded its own first.
pub struct Watched<R, F> {
    inner: R,
    fault: Fault,
    describe: F,
}

impl<R: Read, F: Fn(&std::io::Error) -> CoreError> Watched<R, F> {
    /// Watches `inner`.
    pub fn new(inner: R, fault: Fault, describe: F) -> Self {
        Watched {
            inner,
            fault,
            describe,
        }
    }
}

impl<R: Read, F: Fn(&std::io::Error) -> CoreError> Read for Watched<R, F> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(out).inspect_err(|e| {
            self.fault.set((self.describe)(e));
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repurchase_core::StoreConfig;

    #[test]
    fn reads_and_hashes_local_and_remote_files_alike() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        // Opening a root builds its store client, which wants a runtime.
        let _enter = rt.enter();
        let data: Vec<u8> = (0..3 * RANGE_BYTES as usize + 17)
            .map(|i| (i % 251) as u8)
            .collect();
        let expected = hex::encode(Sha256::digest(&data));
        let dir = tempfile::tempdir().unwrap();
        let local = DataRoot::open(dir.path().to_str().unwrap(), &StoreConfig::default()).unwrap();
        let memory = DataRoot::open("memory://source-test/x", &StoreConfig::default()).unwrap();
        for root in [local, memory] {
            rt.block_on(root.put("a/b.csv", Bytes::from(data.clone())))
                .unwrap();
            let handle = rt.handle().clone();
            let (read, sha) = rt
                .block_on(tokio::task::spawn_blocking(move || {
                    let mut r = SourceReader::open(&root, "a/b.csv", data_len(), handle)?;
                    let mut head = vec![0u8; 1000];
                    r.read_exact(&mut head)?;
                    assert_eq!(head[999], (999 % 251) as u8);
                    let (bytes, sha) = r.finish()?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>((bytes, sha))
                }))
                .unwrap()
                .unwrap();
            assert_eq!((read, sha.as_str()), (data.len() as u64, expected.as_str()));
        }

        fn data_len() -> u64 {
            3 * RANGE_BYTES + 17
        }
    }

    #[test]
    fn a_store_error_is_kept_for_the_caller() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        // Opening a root builds its store client, which wants a runtime.
        let _enter = rt.enter();
        let root = DataRoot::open("memory://source-test/missing", &StoreConfig::default()).unwrap();
        let handle = rt.handle().clone();
        let (err, fault) = rt
            .block_on(tokio::task::spawn_blocking(move || {
                let mut r = SourceReader::open(&root, "gone.csv", 10, handle).unwrap();
                let fault = r.fault();
                let err = r.read(&mut [0u8; 4]).unwrap_err();
                (err, fault.take())
            }))
            .unwrap();
        let fault = fault.expect("the store's error is kept");
        assert!(fault.to_string().contains("gone.csv"), "{fault}");
        assert_eq!(err.to_string(), fault.to_string());
    }
}
