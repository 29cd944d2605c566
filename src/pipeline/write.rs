//! The staged Parquet files of a load (`identifies`, `discards`, `rejects`)
//! under the run's staging prefix. Pass two of a load through the spill
//! writes one file per table and partition, partitions concurrently, each on
//! its own task with a thread of its own building its batches;
//! [`super::direct`] writes through [`write_batches`] as it reads.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path;

use super::columns::Resolved;
use super::commit::Warehouse;
use super::identifies::{BatchBuilder, Bound, discards_schema, identifies_schema};
use super::ingest::Ingest;
use super::parquet_out::ParquetOut;
use super::rejects::{rejects_batch, rejects_schema};
use super::stage::{Records, StagedEvent, StagedReject, decode};
use crate::error::{Error, Result};

/// What pass two wrote, relative to the warehouse.
#[derive(Debug, Default)]
pub struct Written {
    pub files: Vec<String>,
    /// `identifies` partitions, as `received_date=YYYY-MM-DD`.
    pub partitions: Vec<String>,
    pub discarded: u64,
    /// The `identifies` files among `files`, with their schemas.
    pub identifies: Vec<(String, SchemaRef)>,
}

/// Where a run's staged files go, and their names: a partition's first
/// file of a table is `part-<run>.parquet`, further ones (see
/// [`super::direct`] for when a load makes them) `part-<run>_001.parquet`
/// and on, which sort after it.
///
/// A load that reads its input again (attempt 1, through the spill) names
/// its files `part-<run>-1…`: none is at a name the first attempt wrote.
/// A write of the first attempt that a remote store applies late (a request
/// the client timed out on and retried, delivered after all) then lands on
/// a name the commit does not copy, not over the second attempt's file; a
/// faulty proxy's delayed PUT did so, and the committed partition lost rows.
pub struct Files {
    warehouse: Warehouse,
    run_id: String,
    /// `run_id`, and the attempt when it is not the first.
    stem: String,
    taken: Mutex<HashMap<String, u32>>,
}

impl Files {
    pub fn new(warehouse: &Warehouse, run_id: &str, attempt: u32) -> Self {
        let stem = match attempt {
            0 => run_id.to_owned(),
            n => format!("{run_id}-{n}"),
        };
        Files { warehouse: warehouse.clone(), run_id: run_id.to_owned(), stem, taken: Mutex::default() }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.warehouse.location.store
    }

    /// Where the file at `relative` (to the warehouse) is staged.
    pub fn staged(&self, relative: &str) -> Path {
        self.warehouse.staged(&self.run_id, relative)
    }

    pub fn url_of(&self, relative: &str) -> String {
        self.warehouse.location.url_of(&self.warehouse.table_path(relative))
    }

    /// `first`: the file's first batch, if known (see [`ParquetOut::create`]).
    pub fn create(
        &self,
        table: &str,
        partition: &str,
        schema: SchemaRef,
        first: Option<&RecordBatch>,
        files: &mut Vec<String>,
    ) -> Result<ParquetOut> {
        let folder = format!("{table}/{partition}");
        let n = {
            let mut taken = self.taken.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let n = taken.entry(folder.clone()).or_default();
            *n += 1;
            *n - 1
        };
        let relative = match n {
            0 => format!("{folder}/part-{}.parquet", self.stem),
            n => format!("{folder}/part-{}_{n:03}.parquet", self.stem),
        };
        let (path, url) = (self.staged(&relative), self.url_of(&relative));
        files.push(relative);
        // Partitions are written concurrently already.
        ParquetOut::create(Arc::clone(&self.warehouse.location.store), path, url, schema, first, false)
    }
}

/// What the builder of every partition's batches needs.
struct Job {
    schema: SchemaRef,
    columns: Arc<Bound>,
    loaded_at: i64,
    batch_rows: usize,
}

/// Pass two: the staged events become `identifies` (and `discards`) files.
pub async fn write_tables(
    files: &Arc<Files>,
    ingest: &mut Ingest,
    resolved: &Resolved,
    now: DateTime<Utc>,
    batch_rows: usize,
    threads: usize,
) -> Result<Written> {
    let job = Arc::new(Job {
        schema: identifies_schema(&resolved.schema),
        columns: Arc::new(Bound::new(&resolved.schema, &resolved.targets, &ingest.columns)),
        loaded_at: now.timestamp_micros(),
        batch_rows,
    });
    let mut partitions = Vec::new();
    for date in ingest.stage.dates() {
        partitions.push((date.clone(), ingest.stage.read_events(&date).map_err(spill)?));
    }
    let parts: Vec<(String, PartitionFiles)> = futures::stream::iter(partitions)
        .map(|(date, events)| {
            let (job, files) = (Arc::clone(&job), Arc::clone(files));
            async move {
                match tokio::spawn(write_partition(job, files, date.clone(), events)).await {
                    Ok(result) => result.map(|written| (date, written)),
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                }
            }
        })
        .buffered(threads.max(1))
        .try_collect()
        .await?;
    let mut written = Written::default();
    for (date, part) in parts {
        written.add(&date, part);
    }
    write_rejects(files, ingest, now, batch_rows, &mut written).await?;
    Ok(written)
}

impl Written {
    /// Adds what was written of a partition.
    pub fn add(&mut self, date: &str, part: PartitionFiles) {
        let partition = format!("received_date={date}");
        if !self.partitions.contains(&partition) {
            self.partitions.push(partition);
        }
        self.files.extend(part.files);
        self.discarded += part.discarded;
        self.identifies.extend(part.identifies);
    }
}

/// The run's `rejects` file, if any line was rejected.
pub async fn write_rejects(
    files: &Files,
    ingest: &mut Ingest,
    now: DateTime<Utc>,
    batch_rows: usize,
    written: &mut Written,
) -> Result<()> {
    if ingest.stage.reject_count() == 0 {
        return Ok(());
    }
    let partition = format!("received_date={}", now.format("%Y-%m-%d"));
    let mut out = files.create("rejects", &partition, rejects_schema(), None, &mut written.files)?;
    let mut rejects = ingest.stage.read_rejects().map_err(spill)?;
    let loaded_at = now.timestamp_micros();
    loop {
        let chunk = tokio::task::block_in_place(|| {
            let mut chunk = Vec::new();
            while chunk.len() < batch_rows
                && let Some(record) = rejects.next_record()?
            {
                chunk.push(decode::<StagedReject>(record)?);
            }
            io::Result::Ok(chunk)
        })
        .map_err(spill)?;
        if chunk.is_empty() {
            break;
        }
        out.write(&rejects_batch(&chunk, loaded_at)).await?;
    }
    out.close().await
}

/// What was written of one partition.
#[derive(Debug, Default)]
pub struct PartitionFiles {
    pub files: Vec<String>,
    pub discarded: u64,
    /// The `identifies` files among `files`, with their schemas.
    pub identifies: Vec<(String, SchemaRef)>,
}

/// One partition's staged events as its `identifies` file and, if any value
/// was discarded, its `discards` file. A thread of its own builds the
/// batches while this task encodes the previous one: the partitions
/// outnumber the cores only until the last ones, which would otherwise run
/// on one core each.
async fn write_partition(
    job: Arc<Job>,
    files: Arc<Files>,
    date: String,
    events: Records,
) -> Result<PartitionFiles> {
    let (tx, built) = tokio::sync::mpsc::channel(1);
    // A thread that ends rather than a pooled one: the allocator keeps freed
    // memory in the heap of the thread that allocated it, and an idle pooled
    // thread never hands it back (the 5M load peaked at 880 MiB that way).
    let builder = std::thread::spawn(move || build_batches(&job, events, tx));
    let written = write_batches(&files, &date, built).await;
    // The channel also closes when the builder panics: the files are only
    // complete once it has ended well.
    if let Err(panic) = tokio::task::block_in_place(|| builder.join()) {
        std::panic::resume_unwind(panic);
    }
    written
}

/// A batch of `identifies` and one of its discarded values, if any.
pub type Built = io::Result<(RecordBatch, Option<RecordBatch>)>;

/// Writes a partition's batches, as they come, to its staged `identifies`
/// file and its `discards` file (made at its first discarded value). A batch
/// with more columns than the file (a column new to the run was first seen
/// after the file was made) closes the file and starts the next one.
pub async fn write_batches(
    files: &Files,
    date: &str,
    mut batches: tokio::sync::mpsc::Receiver<Built>,
) -> Result<PartitionFiles> {
    let partition = format!("received_date={date}");
    let mut written = PartitionFiles::default();
    let mut out: Option<ParquetOut> = None;
    let mut discards: Option<ParquetOut> = None;
    while let Some(next) = batches.recv().await {
        let (batch, discarded) = next.map_err(spill)?;
        if let Some(full) = out.take_if(|out| out.schema() != &batch.schema()) {
            full.close().await?;
        }
        let out = opened(&mut out, || {
            let out =
                files.create("identifies", &partition, batch.schema(), Some(&batch), &mut written.files);
            written.identifies.extend(written.files.last().map(|f| (f.clone(), batch.schema())));
            out
        })?;
        out.write(&batch).await?;
        if let Some(d) = &discarded {
            written.discarded += d.num_rows() as u64;
            opened(&mut discards, || {
                files.create("discards", &partition, discards_schema(), Some(d), &mut written.files)
            })?
            .write(d)
            .await?;
        }
    }
    for file in [out, discards].into_iter().flatten() {
        file.close().await?;
    }
    Ok(written)
}

/// Decodes a partition's staged events into batches until they run out, the
/// spill fails (sent on as the last item), or the writer stops taking them.
fn build_batches(job: &Job, mut events: Records, batches: tokio::sync::mpsc::Sender<Built>) {
    let mut builder = BatchBuilder::new(Arc::clone(&job.schema), Arc::clone(&job.columns), job.loaded_at);
    while let Some(next) = next_batch(&mut builder, &mut events, job.batch_rows).transpose() {
        let failed = next.is_err();
        if batches.blocking_send(next).is_err() || failed {
            return;
        }
    }
}

/// Up to `rows` staged events as a batch; `None` once they have run out.
fn next_batch(
    builder: &mut BatchBuilder,
    events: &mut Records,
    rows: usize,
) -> io::Result<Option<(RecordBatch, Option<RecordBatch>)>> {
    while builder.rows() < rows
        && let Some(record) = events.next_record()?
    {
        builder.push(&StagedEvent::decode(record)?);
    }
    Ok((builder.rows() > 0).then(|| builder.finish()))
}

/// The file, created with its first batch (which picks its encodings).
pub fn opened(
    file: &mut Option<ParquetOut>,
    create: impl FnOnce() -> Result<ParquetOut>,
) -> Result<&mut ParquetOut> {
    match file {
        Some(out) => Ok(out),
        None => Ok(file.insert(create()?)),
    }
}

fn spill(source: io::Error) -> Error {
    Error::Spill { dir: "the run's spill folder".into(), source }
}
