//! Generating straight into a data root, in bounded memory: the users are walked chunk by chunk
//! (`chunks.rs`) and every chunk's rows are appended, in user order, to one open writer per file.
//!
//! One group of chunks is simulated (and, for CSV, formatted) on a blocking thread while the
//! previous group is being written, so memory holds two groups and the writers' row groups,
//! whatever the number of users. The files are finished together at the end: if anything fails
//! before, every writer is aborted and no file is left; a failure while finishing leaves only
//! whole files.

use repurchase_core::DataRoot;
use repurchase_core::schema::Table;
use tokio::task::JoinHandle;

use crate::build::ChunkBatches;
use crate::chunks::{CHUNK_USERS, Pipeline};
use crate::error::DatagenError;
use crate::write::{Output, OutputFormat, Piece, TableWriter, WriteSummary};
use crate::{GenConfig, Profile};

/// Generates the data of `cfg` and writes it below `root` as [`write`](crate::write) would write
/// [`generate`](crate::generate)'s tables (the same bytes), without holding the tables in memory.
pub async fn generate_into(
    root: &DataRoot,
    cfg: &GenConfig,
    format: OutputFormat,
) -> Result<WriteSummary, DatagenError> {
    stream(root, cfg, format, CHUNK_USERS).await
}

/// [`generate_into`] walking the users `chunk_users` at a time.
pub(crate) async fn stream(
    root: &DataRoot,
    cfg: &GenConfig,
    format: OutputFormat,
    chunk_users: u64,
) -> Result<WriteSummary, DatagenError> {
    let pipeline = Pipeline::new(cfg, chunk_users)?;
    // The files fed chunk by chunk, in the order of a chunk's batches, then the two small tables.
    let streamed: Vec<Output> = ChunkBatches::OUTPUTS
        .into_iter()
        .filter(|o| *o != Output::Truth || cfg.profile == Profile::Signal)
        .collect();
    let small = [
        (Table::Products, pipeline.products()?),
        (Table::DistributionCenters, pipeline.distribution_centers()?),
    ];
    let mut writers = Vec::new();
    for output in streamed
        .iter()
        .copied()
        .chain(small.iter().map(|(t, _)| Output::Table(*t)))
    {
        match TableWriter::open(root, output, format).await {
            Ok(w) => writers.push(w),
            Err(e) => {
                abort(writers).await;
                return Err(e);
            }
        }
    }
    let (chunk_writers, small_writers) = writers.split_at_mut(streamed.len());
    let filled = async {
        for (writer, (_, batch)) in small_writers.iter_mut().zip(small) {
            writer.push_batch(batch).await?;
        }
        fill(chunk_writers, pipeline, format, streamed).await
    };
    if let Err(e) = filled.await {
        abort(writers).await;
        return Err(e);
    }

    let mut written = Vec::with_capacity(writers.len());
    let mut open = writers.into_iter();
    while let Some(writer) = open.next() {
        let output = writer.output();
        match writer.finish().await {
            Ok((rows, bytes)) => written.push((output, rows, bytes)),
            Err(e) => {
                abort(open.collect()).await;
                return Err(e);
            }
        }
    }
    // Listed like `write` lists them: the tables in `Table::ALL` order, then the truth.
    written.sort_by_key(|(output, _, _)| match output {
        Output::Table(t) => Table::ALL
            .iter()
            .position(|x| x == t)
            .unwrap_or(Table::ALL.len()),
        Output::Truth => Table::ALL.len(),
    });
    Ok(WriteSummary {
        rows: written
            .iter()
            .map(|(o, rows, _)| (o.name().to_string(), *rows))
            .collect(),
        bytes: written.iter().map(|(_, _, bytes)| bytes).sum(),
    })
}

/// Appends every chunk's rows, in user order, to `writers` (one per file of `streamed`, in that
/// order).
async fn fill(
    writers: &mut [TableWriter],
    pipeline: Pipeline,
    format: OutputFormat,
    streamed: Vec<Output>,
) -> Result<(), DatagenError> {
    let mut next = Some(simulate(pipeline, format, streamed.clone()));
    while let Some(task) = next.take() {
        let (pipeline, group) = task.await.map_err(|e| DatagenError::Task {
            what: "simulating users".into(),
            reason: e.to_string(),
        })?;
        let group = group?;
        if !pipeline.is_done() {
            next = Some(simulate(pipeline, format, streamed.clone()));
        }
        for pieces in group {
            for (writer, piece) in writers.iter_mut().zip(pieces) {
                writer.push(piece).await?;
            }
        }
    }
    Ok(())
}

type Group = Result<Vec<Vec<Piece>>, DatagenError>;

/// The pipeline's next group on a blocking thread (its chunks on rayon's pool), each chunk's
/// batches of `streamed` prepared for their writers, in that order; the pipeline comes back with
/// it.
fn simulate(
    mut pipeline: Pipeline,
    format: OutputFormat,
    streamed: Vec<Output>,
) -> JoinHandle<(Pipeline, Group)> {
    tokio::task::spawn_blocking(move || {
        let group = pipeline.next_group(|batches| {
            ChunkBatches::OUTPUTS
                .into_iter()
                .zip(batches.into_batches())
                .filter(|(output, _)| streamed.contains(output))
                .map(|(output, batch)| Piece::new(output, batch, format))
                .collect()
        });
        (pipeline, group)
    })
}

async fn abort(writers: Vec<TableWriter>) {
    for w in writers {
        w.abort().await;
    }
}
