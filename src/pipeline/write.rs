//! Pass two of a load: the staged spill becomes Parquet files of
//! `identifies`, `discards` and `rejects` under the run's staging prefix,
//! one file per table and partition. Partitions are written concurrently,
//! each on its own task, with a thread of its own building its batches.

use std::io;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

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
}

/// What the writer of every partition needs.
struct Job {
    warehouse: Warehouse,
    run_id: String,
    schema: SchemaRef,
    columns: Arc<Bound>,
    loaded_at: i64,
    batch_rows: usize,
}

impl Job {
    /// `first`: the file's first batch, if known (see [`ParquetOut::create`]).
    fn create(
        &self,
        table: &str,
        partition: &str,
        schema: SchemaRef,
        first: Option<&RecordBatch>,
        files: &mut Vec<String>,
    ) -> Result<ParquetOut> {
        let relative = format!("{table}/{partition}/part-{}.parquet", self.run_id);
        let path = self.warehouse.staged(&self.run_id, &relative);
        let url = self.warehouse.location.url_of(&self.warehouse.table_path(&relative));
        files.push(relative);
        // Partitions are written concurrently already.
        ParquetOut::create(Arc::clone(&self.warehouse.location.store), path, url, schema, first, false)
    }
}

pub async fn write_tables(
    warehouse: &Warehouse,
    ingest: &mut Ingest,
    resolved: &Resolved,
    run_id: &str,
    now: DateTime<Utc>,
    batch_rows: usize,
    threads: usize,
) -> Result<Written> {
    let job = Arc::new(Job {
        warehouse: warehouse.clone(),
        run_id: run_id.to_owned(),
        schema: identifies_schema(&resolved.schema),
        columns: Arc::new(Bound::new(&resolved.schema, &resolved.targets, &ingest.columns)),
        loaded_at: now.timestamp_micros(),
        batch_rows,
    });
    let mut partitions = Vec::new();
    for date in ingest.stage.dates() {
        partitions.push((date.clone(), ingest.stage.read_events(&date).map_err(spill)?));
    }
    let mut written = Written::default();
    let parts: Vec<(Vec<String>, u64)> = futures::stream::iter(partitions)
        .map(|(date, events)| {
            let job = Arc::clone(&job);
            async move {
                match tokio::spawn(write_partition(job, date, events)).await {
                    Ok(result) => result,
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                }
            }
        })
        .buffered(threads.max(1))
        .try_collect()
        .await?;
    for (date, (files, discarded)) in ingest.stage.dates().into_iter().zip(parts) {
        written.partitions.push(format!("received_date={date}"));
        written.files.extend(files);
        written.discarded += discarded;
    }
    if ingest.stage.reject_count() > 0 {
        let partition = format!("received_date={}", now.format("%Y-%m-%d"));
        let mut out = job.create("rejects", &partition, rejects_schema(), None, &mut written.files)?;
        let mut rejects = ingest.stage.read_rejects().map_err(spill)?;
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
            out.write(&rejects_batch(&chunk, job.loaded_at)).await?;
        }
        out.close().await?;
    }
    Ok(written)
}

/// One partition's `identifies` file and, if any value was discarded, its
/// `discards` file. A thread of its own builds the batches while this task
/// encodes the previous one: the partitions outnumber the cores only until
/// the last ones, which would otherwise run on one core each.
async fn write_partition(job: Arc<Job>, date: String, events: Records) -> Result<(Vec<String>, u64)> {
    let partition = format!("received_date={date}");
    let mut files = Vec::new();
    let mut out: Option<ParquetOut> = None;
    let mut discards: Option<ParquetOut> = None;
    let mut discarded = 0;
    let (tx, mut built) = tokio::sync::mpsc::channel(1);
    // A thread that ends rather than a pooled one: the allocator keeps freed
    // memory in the heap of the thread that allocated it, and an idle pooled
    // thread never hands it back (the 5M load peaked at 880 MiB that way).
    let builder = {
        let job = Arc::clone(&job);
        std::thread::spawn(move || build_batches(&job, events, tx))
    };
    while let Some(next) = built.recv().await {
        let (batch, discarded_batch) = next.map_err(spill)?;
        let schema = Arc::clone(&job.schema);
        opened(&mut out, || job.create("identifies", &partition, schema, Some(&batch), &mut files))?
            .write(&batch)
            .await?;
        if let Some(d) = discarded_batch {
            discarded += d.num_rows() as u64;
            opened(&mut discards, || {
                job.create("discards", &partition, discards_schema(), Some(&d), &mut files)
            })?
            .write(&d)
            .await?;
        }
    }
    // The channel also closes when the builder panics: the files are only
    // closed, and so complete, once it has ended well.
    if let Err(panic) = tokio::task::block_in_place(|| builder.join()) {
        std::panic::resume_unwind(panic);
    }
    // A partition has at least one event, so `out` is set.
    if let Some(out) = out {
        out.close().await?;
    }
    if let Some(d) = discards {
        d.close().await?;
    }
    Ok((files, discarded))
}

type Built = io::Result<(RecordBatch, Option<RecordBatch>)>;

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
fn opened(
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
