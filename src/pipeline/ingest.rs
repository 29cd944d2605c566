//! Reading a load's input: one source object's lines become counted
//! outcomes, accepted events are deduplicated and written (`direct`) or
//! staged by partition, and rejected lines are staged with their bytes. A
//! source object that fails to read to its end is taken back entirely
//! (SPEC §2).

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use super::columns::Columns;
use super::direct::{Direct, ends_the_load, gave_up};
use super::event::{Event, Outcome, ParseOptions, RejectReason, parse_line};
use super::history::History;
use super::id_set::IdSet;

use super::batches::{self, BatchLine, LineBatch, LineKind};
use super::stage::{Stage, StagedEvent, StagedReject, StagedValue};
use super::timestamp::{Micros, utc_date};

/// What one source object's lines became.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub lines: u64,
    pub blank_lines: u64,
    pub identifies: u64,
    pub non_identify: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub by_reason: BTreeMap<RejectReason, u64>,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.lines += other.lines;
        self.blank_lines += other.blank_lines;
        self.identifies += other.identifies;
        self.non_identify += other.non_identify;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
        for (reason, n) in &other.by_reason {
            *self.by_reason.entry(*reason).or_default() += n;
        }
    }

    fn reject(&mut self, reason: RejectReason) {
        self.rejected += 1;
        *self.by_reason.entry(reason).or_default() += 1;
    }
}

/// The state of pass one across the objects of a run.
pub struct Ingest {
    pub columns: Columns,
    /// Rejected lines, and the accepted events unless `direct` writes them.
    pub stage: Stage,
    pub direct: Option<Direct>,
    /// Message ids of earlier runs, within the dedup window.
    history: History,
    /// Seeded 128-bit hashes of the message ids accepted so far in this run.
    seen: IdSet,
    max_line_bytes: usize,
    /// Threads that parse lines.
    parsers: usize,
}

/// One source object as the parser sees it.
pub struct ObjectInput<'a> {
    pub url: &'a str,
    pub parse: ParseOptions,
}

impl Ingest {
    pub fn new(
        columns: Columns,
        stage: Stage,
        history: History,
        max_line_bytes: usize,
        parsers: usize,
    ) -> Self {
        Ingest {
            columns,
            stage,
            direct: None,
            history,
            seen: IdSet::default(),
            max_line_bytes,
            parsers: parsers.max(1),
        }
    }

    /// Frees what only reading needed, before pass two: the message ids of
    /// this run (~70 MB at 4M identifies) and of the earlier runs' window.
    pub fn done_reading(&mut self) {
        self.seen = IdSet::default();
        self.history.forget();
    }

    /// Reads one object to its end. On an error nothing of the object stays.
    pub fn ingest_object(&mut self, input: impl BufRead + Send, object: &ObjectInput) -> io::Result<Counts> {
        let columns = self.columns.checkpoint();
        let stage = self.stage.checkpoint()?;
        let pushed = self.direct.as_ref().map(Direct::pushed);
        let mut seen_here = IdSet::default();
        match self.read_lines(input, object, &mut seen_here) {
            Ok(counts) => {
                self.seen.extend(seen_here);
                Ok(counts)
            }
            // Its events already written cannot be taken back: the load
            // gives up writing as it reads, unless it stops anyway.
            Err(e) if pushed != self.direct.as_ref().map(Direct::pushed) && !ends_the_load(&e) => {
                tracing::info!(source = object.url, error = %e, "a source object failed after some of its events were written");
                Err(gave_up("a source object failed after some of its events were written"))
            }
            Err(e) => {
                self.columns.rollback(columns);
                self.stage.rollback(stage)?;
                Err(e)
            }
        }
    }

    /// Three stages overlap: a reader thread decompresses and splits lines
    /// into batches, parser threads (one per core) each parse whole
    /// batches, and this thread takes the outcomes in batch order (dedup and
    /// staging are sequential). Whole batches per thread rather than each
    /// batch split across the cores: no thread waits for another's half.
    fn read_lines(
        &mut self,
        input: impl BufRead + Send,
        object: &ObjectInput,
        seen_here: &mut IdSet,
    ) -> io::Result<Counts> {
        let max_line_bytes = self.max_line_bytes;
        let parsers = self.parsers;
        std::thread::scope(|scope| {
            let (lines_tx, lines_rx) = std::sync::mpsc::sync_channel(parsers + 1);
            let (parsed_tx, parsed_rx) = std::sync::mpsc::sync_channel(parsers + 1);
            scope.spawn(move || batches::produce(input, max_line_bytes, lines_tx));
            // A batch's number is taken with the batch, under the lock. The
            // parsers own the receiver: when this thread stops on an error,
            // they stop, the receiver goes, and so does the reader.
            let next = Arc::new(Mutex::new((lines_rx, 0u64)));
            let parse = object.parse;
            for _ in 0..parsers {
                let (next, parsed_tx) = (Arc::clone(&next), parsed_tx.clone());
                scope.spawn(move || parse_batches(&next, &parsed_tx, &parse));
            }
            drop((next, parsed_tx));
            let mut counts = Counts::default();
            let mut dates = DateCache::default();
            let mut in_order = InOrder::default();
            for (number, parsed) in parsed_rx {
                in_order.push(number, parsed);
                while let Some(parsed) = in_order.pop() {
                    let (batch, outcomes) = parsed?;
                    for (line, outcome) in batch.lines.iter().zip(outcomes) {
                        self.take(
                            &mut counts,
                            &mut dates,
                            seen_here,
                            object,
                            line,
                            batch.bytes(line),
                            outcome,
                        )?;
                    }
                }
            }
            Ok(counts)
        })
    }

    /// Counts one line's outcome and stages its event or reject.
    #[allow(clippy::too_many_arguments)]
    fn take(
        &mut self,
        counts: &mut Counts,
        dates: &mut DateCache,
        seen_here: &mut IdSet,
        object: &ObjectInput,
        line: &BatchLine,
        raw: &[u8],
        outcome: Option<Outcome>,
    ) -> io::Result<()> {
        counts.lines += 1;
        let (reason, message) = match (line.kind, outcome) {
            (LineKind::Blank, _) => {
                counts.blank_lines += 1;
                return Ok(());
            }
            (LineKind::TooLong(len), _) => (
                RejectReason::LineTooLong,
                format!("line of {len} bytes is longer than --max-line-bytes {}", self.max_line_bytes),
            ),
            (_, Some(Outcome::Identify(event))) => {
                let key = self.history.hash(&event.id);
                // Within a run any repeat is a duplicate; across runs only
                // within the window of `received_at`.
                if self.seen.contains(key)
                    || seen_here.contains(key)
                    || self.history.contains(key, event.received_at)?
                {
                    counts.duplicates += 1;
                } else {
                    seen_here.insert(key);
                    counts.identifies += 1;
                    let date = dates.date(event.received_at);
                    let staged = bind(&mut self.columns, &event);
                    match &mut self.direct {
                        Some(_) if self.columns.widened() => {
                            return Err(gave_up(
                                "a column new to this run became Utf8 after values of another type",
                            ));
                        }
                        Some(direct) => direct.push_event(date, &staged, &self.columns)?,
                        None => self.stage.push_event(date, &staged)?,
                    }
                }
                return Ok(());
            }
            (_, Some(Outcome::Reject(reason, message))) => (reason, message),
            (_, Some(Outcome::NonIdentify) | None) => {
                counts.non_identify += 1;
                return Ok(());
            }
        };
        counts.reject(reason);
        self.stage.push_reject(&StagedReject {
            source: object.url.to_owned(),
            line: line.number,
            reason,
            message,
            raw: raw.to_vec(),
        })
    }
}

/// Items numbered 0, 1, 2… that arrive in any order, given back in order.
struct InOrder<T> {
    waiting: BTreeMap<u64, T>,
    next: u64,
}

impl<T> Default for InOrder<T> {
    fn default() -> Self {
        InOrder { waiting: BTreeMap::new(), next: 0 }
    }
}

impl<T> InOrder<T> {
    fn push(&mut self, number: u64, item: T) {
        self.waiting.insert(number, item);
    }

    /// The next item in order, once it has arrived.
    fn pop(&mut self) -> Option<T> {
        let item = self.waiting.remove(&self.next)?;
        self.next += 1;
        Some(item)
    }
}

/// Lines to be parsed, with the number of the next batch taken.
type Queue = Mutex<(Receiver<io::Result<LineBatch>>, u64)>;
type Parsed = (u64, io::Result<(LineBatch, Vec<Option<Outcome>>)>);

/// One parser thread: takes whole batches, numbered under the queue's lock,
/// until the reader is done or the staging thread has stopped.
fn parse_batches(queue: &Queue, parsed: &SyncSender<Parsed>, parse: &ParseOptions) {
    loop {
        let (number, batch) = {
            let mut queue = queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let Ok(batch) = queue.0.recv() else { return };
            queue.1 += 1;
            (queue.1 - 1, batch)
        };
        let outcomes = batch.map(|batch| {
            let outcomes = batch
                .lines
                .iter()
                .map(|line| (line.kind == LineKind::Text).then(|| parse_line(batch.bytes(line), parse)))
                .collect();
            (batch, outcomes)
        });
        if parsed.send((number, outcomes)).is_err() {
            return;
        }
    }
}

/// The event as staged, its leaves bound to column ids.
fn bind<'a>(columns: &mut Columns, event: &'a Event) -> StagedEvent<'a> {
    let values = columns
        .observe_leaves(&event.leaves)
        .iter()
        .zip(&event.leaves.list)
        .map(|(&column, leaf)| StagedValue {
            column,
            kind: leaf.kind,
            start: leaf.span.start as u32,
            len: leaf.span.len() as u32,
        })
        .collect();
    StagedEvent {
        id: &event.id,
        user_id: event.user_id.as_deref(),
        anonymous_id: event.anonymous_id.as_deref(),
        timestamp: event.timestamp,
        received_at: event.received_at,
        original_timestamp: event.original_timestamp,
        sent_at: event.sent_at,
        channel: event.channel.as_deref(),
        traits_len: event.leaves.traits_len as u32,
        text: &event.leaves.text,
        values,
    }
}

/// Partition dates of consecutive events are mostly the same day.
#[derive(Default)]
struct DateCache {
    day: Option<i64>,
    date: String,
}

impl DateCache {
    fn date(&mut self, micros: Micros) -> &str {
        let day = micros.div_euclid(86_400_000_000);
        if self.day != Some(day) {
            self.day = Some(day);
            self.date = utc_date(micros);
        }
        &self.date
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;
    use crate::pipeline::commit::Warehouse;
    use crate::pipeline::stage::spill_failure;
    use crate::storage::Location;

    #[test]
    fn batches_are_taken_back_in_their_order() {
        let mut in_order = InOrder::default();
        let mut taken = Vec::new();
        for (number, item) in [(2, "c"), (0, "a"), (3, "d"), (1, "b")] {
            in_order.push(number, item);
            while let Some(item) = in_order.pop() {
                taken.push(item);
            }
        }
        assert_eq!(taken, ["a", "b", "c", "d"]);
    }

    /// A spill that cannot be written (a full disk) ends the object as a
    /// failure of the spill, and the reader and parsers, still mid-stream,
    /// stop with it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_spill_write_ends_the_object_without_hanging() {
        let location =
            Location { store: Arc::new(InMemory::new()), base: "memory://".into(), path: "w".into() };
        let history =
            History::open(&Warehouse::new(location), std::time::Duration::from_secs(1), 7).await.unwrap();
        let spill = tempfile::tempdir().unwrap();
        let stage = Stage::new(Some(spill.path())).unwrap();
        let stage_dir = std::fs::read_dir(spill.path()).unwrap().next().unwrap().unwrap().path();
        std::os::unix::fs::symlink("/dev/full", stage_dir.join("events-2024-01-01")).unwrap();
        let mut ingest = Ingest::new(Columns::new(&[]), stage, history, 1 << 20, 2);
        // Far more batches than the channels hold, so the reader is still
        // producing when the first block of the spill fails.
        let lines: String = (0..300_000)
            .map(|i| {
                format!(
                    r#"{{"type":"identify","messageId":"m{i}","userId":"u{i}","receivedAt":"2024-01-01T00:00:00Z","timestamp":"2024-01-01T00:00:00Z","traits":{{"plan":"pro"}}}}"#
                ) + "\n"
            })
            .collect();
        let object = ObjectInput {
            url: "memory://logs/a.json",
            parse: ParseOptions { fallback_received_at: 0, email_from_user_id: false },
        };
        let outcome = tokio::task::spawn_blocking(move || ingest.ingest_object(lines.as_bytes(), &object))
            .await
            .unwrap();
        let error = outcome.unwrap_err();
        let failure = spill_failure(&error).expect("a failure of the spill, not of the object");
        assert_eq!(failure.0.raw_os_error(), Some(28), "{error}");
    }
}
