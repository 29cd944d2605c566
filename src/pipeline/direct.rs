//! Pass one writing `identifies` as it reads, with no spill and no pass two:
//! each accepted event goes into its partition's record batch, and each full
//! batch to a thread that encodes the partition's staged Parquet file.
//!
//! The columns are settled as the events come, not at the end: a column
//! first seen after a partition's file was made starts the partition's next
//! file ([`super::write::write_batches`]), and so does a new column's type
//! going from Int64 to Float64, the files before it cast once all is read
//! ([`super::retype`]). What this cannot do is turn values already written
//! into their input text, which a new column that becomes Utf8 keeps (the
//! type join of SPEC §5, "Column types"), nor take back the rows of an
//! object that fails after some of them were written. The load then gives
//! up on this path ([`GaveUp`]) and reads its input again through the
//! spill, which settles types once everything is read.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow::datatypes::SchemaRef;
use tokio::sync::mpsc::Sender;

use super::columns::Columns;
use super::identifies::{BatchBuilder, Bound, identifies_schema};
use super::stage::{StagedEvent, spill_failure};
use super::timestamp::Micros;
use super::write::{Built, Files, PartitionFiles, Written, write_batches};
use crate::error::Result;

/// Partitions with a file open at once. Each holds a batch being built, two
/// on their way, and the file's open row group: ~25 MB of RSS each in the
/// 1M load. Past this many, the one written least recently is finished, and
/// takes a new file if it gets events again. Input in time order fills one
/// or two at a time.
const OPEN_PARTITIONS: usize = 3;

/// A partition that gets events again after it was finished takes a new
/// file and a new writer. Input whose events of more than
/// [`OPEN_PARTITIONS`] received dates interleave (a backfill exported by
/// user, say) would make one every few events: a 95k-line object spread over
/// 30 dates ran out of threads. Past this many reopenings, and more than one
/// in [`EVENTS_PER_REOPENING`] events, the load goes through the spill,
/// which takes events in any order and writes one file per partition.
const MIN_REOPENINGS: u64 = 64;
const EVENTS_PER_REOPENING: u64 = 20_000;

/// Why the load stopped writing as it read: it reads its input again
/// through the spill.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GaveUp(pub &'static str);

pub fn gave_up(reason: &'static str) -> io::Error {
    io::Error::other(GaveUp(reason))
}

/// The [`GaveUp`] inside `e`, if that is what `e` is.
pub fn gave_up_in(e: &io::Error) -> Option<&GaveUp> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<GaveUp>())
}

/// A partition's writer thread stopped taking batches: it failed, and
/// [`Direct::finish`] has its error.
#[derive(Debug, thiserror::Error)]
#[error("the writer of partition {0} stopped")]
pub struct WriterStopped(pub String);

pub fn writer_stopped_in(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<WriterStopped>())
}

/// `e` ends the load, or this attempt at it, whatever object it came from:
/// the spill or a writer failed, or the load gave up writing as it reads.
pub fn ends_the_load(e: &io::Error) -> bool {
    spill_failure(e).is_some() || writer_stopped_in(e) || gave_up_in(e).is_some()
}

/// A partition's writer, which returns what it and the partition's earlier
/// writers wrote, the earliest first.
type Writer = JoinHandle<Result<Vec<PartitionFiles>>>;

struct Open {
    builder: BatchBuilder,
    /// The [`Columns::generation`] the builder is bound to.
    generation: u64,
    batches: Sender<Built>,
    writer: Writer,
    /// When it last took an event, in events pushed.
    used: u64,
}

pub struct Direct {
    files: Arc<Files>,
    runtime: tokio::runtime::Handle,
    loaded_at: Micros,
    batch_rows: usize,
    max_columns: usize,
    run_id: String,
    /// The columns as of `generation`.
    bound: Arc<Bound>,
    schema: SchemaRef,
    generation: u64,
    open: BTreeMap<String, Open>,
    /// Writers told to finish, with their partition's date.
    finishing: Vec<(String, Writer)>,
    /// Every partition opened so far, and how many of the openings were of
    /// one opened before.
    opened: HashSet<String>,
    reopened: u64,
    /// Events pushed so far.
    pushed: u64,
}

impl Open {
    /// Sends the rows built so far, if any, to the partition's writer.
    fn send(&mut self, date: &str) -> io::Result<()> {
        if self.builder.rows() > 0 && self.batches.blocking_send(Ok(self.builder.finish())).is_err() {
            return Err(io::Error::other(WriterStopped(date.to_owned())));
        }
        Ok(())
    }
}

impl Direct {
    /// Made on the runtime whose threads do the writers' I/O.
    pub fn new(
        files: Arc<Files>,
        loaded_at: Micros,
        batch_rows: usize,
        max_columns: usize,
        run_id: &str,
    ) -> Self {
        let bound = Arc::new(Bound { defs: Vec::new(), targets: Vec::new(), names: Vec::new() });
        Direct {
            files,
            runtime: tokio::runtime::Handle::current(),
            loaded_at,
            batch_rows: batch_rows.max(1),
            max_columns,
            run_id: run_id.to_owned(),
            schema: identifies_schema(&bound.defs),
            bound,
            // Unlike any generation of the columns: the first push binds.
            generation: u64::MAX,
            open: BTreeMap::new(),
            finishing: Vec::new(),
            opened: HashSet::new(),
            reopened: 0,
            pushed: 0,
        }
    }

    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Adds `event` to its partition's batch; `columns` are those its values
    /// are bound to.
    pub fn push_event(&mut self, date: &str, event: &StagedEvent, columns: &Columns) -> io::Result<()> {
        if columns.generation() != self.generation {
            let resolved = columns.resolve(self.max_columns, &self.run_id);
            self.bound = Arc::new(Bound::new(&resolved.schema, &resolved.targets, columns));
            self.schema = identifies_schema(&resolved.schema);
            self.generation = columns.generation();
        }
        if !self.open.contains_key(date) {
            self.open_partition(date)?;
        }
        let (batch_rows, generation, pushed) = (self.batch_rows, self.generation, self.pushed);
        let Some(open) = self.open.get_mut(date) else { unreachable!("the partition was just opened") };
        if open.generation != generation {
            if open.builder.takes(&self.bound) {
                open.builder.rebind(Arc::clone(&self.schema), Arc::clone(&self.bound));
            } else {
                // A column went from Int64 to Float64: the rows so far keep
                // Int64 in a file of their own, cast once all is read
                // (`retype`).
                open.send(date)?;
                open.builder =
                    BatchBuilder::new(Arc::clone(&self.schema), Arc::clone(&self.bound), self.loaded_at);
            }
            open.generation = generation;
        }
        open.builder.push(event);
        open.used = pushed;
        self.pushed += 1;
        if open.builder.rows() >= batch_rows {
            open.send(date)?;
        }
        Ok(())
    }

    fn open_partition(&mut self, date: &str) -> io::Result<()> {
        if !self.opened.insert(date.to_owned()) {
            self.reopened += 1;
            if self.reopened > MIN_REOPENINGS.max(self.pushed / EVENTS_PER_REOPENING) {
                return Err(gave_up("events of more received dates interleave than a load keeps open"));
            }
        }
        if self.open.len() >= OPEN_PARTITIONS
            && let Some(oldest) = self.open.iter().min_by_key(|(_, o)| o.used).map(|(d, _)| d.clone())
        {
            self.close(&oldest);
        }
        // Two batches wait while one is encoded.
        let (batches, received) = tokio::sync::mpsc::channel(2);
        let (files, runtime, partition) = (Arc::clone(&self.files), self.runtime.clone(), date.to_owned());
        // A partition's earlier writer may still be making its files (a
        // `discards` file is made at the first discarded value). This one
        // starts once that one has ended, so that the partition's files are
        // numbered in the order of their rows.
        let earlier = self.finishing.iter().position(|(d, _)| d == date);
        let earlier = earlier.map(|i| self.finishing.swap_remove(i).1);
        // A thread that ends rather than a pooled one: the allocator keeps
        // freed memory in the heap of the thread that allocated it. Not a
        // runtime worker either: encoding a batch takes tens of
        // milliseconds, in which the worker would not serve the reads.
        let writer = std::thread::spawn(move || {
            let mut parts = match earlier.map(JoinHandle::join) {
                None => Vec::new(),
                Some(Ok(parts)) => parts?,
                Some(Err(panic)) => std::panic::resume_unwind(panic),
            };
            parts.push(runtime.block_on(write_batches(&files, &partition, received))?);
            Ok(parts)
        });
        let builder = BatchBuilder::new(Arc::clone(&self.schema), Arc::clone(&self.bound), self.loaded_at);
        let open = Open { builder, generation: self.generation, batches, writer, used: self.pushed };
        self.open.insert(date.to_owned(), open);
        Ok(())
    }

    /// Sends the partition's last batch and lets its writer finish the file.
    fn close(&mut self, date: &str) {
        let Some(mut open) = self.open.remove(date) else { return };
        // A writer that stopped has its error, which `finish` returns.
        let _ = open.send(date);
        drop(open.batches);
        self.finishing.push((date.to_owned(), open.writer));
    }

    /// Finishes every file and returns what was written, or the first
    /// writer's error. Blocks until the writers are done.
    pub fn finish(mut self) -> Result<Written> {
        let dates: Vec<String> = self.open.keys().cloned().collect();
        for date in dates {
            self.close(&date);
        }
        let mut parts = BTreeMap::<String, Vec<PartitionFiles>>::new();
        let mut failed = None;
        for (date, writer) in self.finishing {
            match writer.join() {
                Ok(Ok(written)) => parts.entry(date).or_default().extend(written),
                Ok(Err(e)) => failed = failed.or(Some(e)),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let mut written = Written::default();
        for (date, parts) in parts {
            for part in parts {
                written.add(&date, part);
            }
        }
        Ok(written)
    }
}
