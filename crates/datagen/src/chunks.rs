//! The generator's one pipeline: users are simulated in chunks of a fixed size, a group of chunks
//! at a time in parallel, ids are assigned from offsets running over the chunks in user order, and
//! each chunk is built into Arrow batches. The in-memory [`generate`](crate::generate) and the
//! streaming [`generate_into`](crate::generate_into) both walk it, so they cannot differ.
//!
//! The chunk size changes nothing in the output (each user draws from its own stream, and ids
//! only depend on the rows before), so it is fixed rather than derived from the thread count: it
//! only sets how much is in memory at once.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use rayon::prelude::*;

use crate::GenConfig;
use crate::build::{self, ChunkBatches, Offsets};
use crate::catalog::Catalog;
use crate::error::DatagenError;
use crate::reference::{self, Reference};
use crate::simulate::{Chunk, Simulator};

/// Users per chunk: about 120,000 events and 24 MB of CSV, small enough that two groups of a
/// chunk per core stay in the hundreds of megabytes, large enough that a chunk's fixed costs
/// vanish.
pub(crate) const CHUNK_USERS: u64 = 4_096;

/// Walks the users of a [`GenConfig`] chunk by chunk, in order. Owns what it needs (the catalog
/// behind an `Arc`), so a group can be simulated on a blocking thread while the previous one is
/// written.
pub(crate) struct Pipeline {
    cfg: GenConfig,
    catalog: Arc<Catalog>,
    reference: &'static Reference,
    chunk_users: u64,
    /// Chunks simulated in parallel per group: one per thread of rayon's pool.
    group: usize,
    /// Id of the first user not yet simulated.
    next_user: u64,
    /// Rows of every id-bearing table in the chunks already handed out.
    offsets: Offsets,
}

impl Pipeline {
    /// Checks `cfg` and draws its product catalog; `chunk_users` is at least one.
    pub(crate) fn new(cfg: &GenConfig, chunk_users: u64) -> Result<Self, DatagenError> {
        cfg.validate()?;
        let reference = reference::reference()?;
        Ok(Pipeline {
            cfg: cfg.clone(),
            catalog: Arc::new(Catalog::generate(cfg.seed, reference)),
            reference,
            chunk_users: chunk_users.max(1),
            group: rayon::current_num_threads().max(1),
            next_user: 1,
            offsets: Offsets::default(),
        })
    }

    /// The products table (the catalog, the same for every chunk).
    pub(crate) fn products(&self) -> Result<RecordBatch, DatagenError> {
        build::products(&self.catalog)
    }

    /// The distribution_centers table (embedded reference data).
    pub(crate) fn distribution_centers(&self) -> Result<RecordBatch, DatagenError> {
        build::distribution_centers(self.reference)
    }

    /// Whether every user has been handed out.
    pub(crate) fn is_done(&self) -> bool {
        self.next_user > self.cfg.users
    }

    /// Simulates the next group of chunks in parallel, builds each into batches and passes them
    /// through `f` (on the same worker, so CSV formatting is parallel too); returns the results
    /// in user order, none once [`Pipeline::is_done`].
    pub(crate) fn next_group<T: Send>(
        &mut self,
        f: impl Fn(ChunkBatches) -> Result<T, DatagenError> + Sync,
    ) -> Result<Vec<T>, DatagenError> {
        let mut ranges = Vec::with_capacity(self.group);
        while ranges.len() < self.group && !self.is_done() {
            let last = self
                .next_user
                .saturating_add(self.chunk_users - 1)
                .min(self.cfg.users);
            ranges.push((self.next_user as i64, last as i64));
            self.next_user = last + 1;
        }
        let (catalog, reference) = (&*self.catalog, self.reference);
        let sim = Simulator::new(&self.cfg, catalog, reference);
        let chunks: Vec<Chunk> = ranges
            .into_par_iter()
            .map(|(first, last)| sim.simulate(first, last))
            .collect();
        // Ids follow the rows of every earlier chunk, so offsets run in user order between the
        // two parallel steps.
        let mut jobs = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let off = self.offsets;
            self.offsets = off.after(&chunk);
            jobs.push((chunk, off));
        }
        jobs.into_par_iter()
            .map(|(chunk, off)| {
                let batches = build::chunk_batches(&chunk, off, catalog, reference)?;
                drop(chunk);
                f(batches)
            })
            .collect()
    }
}
