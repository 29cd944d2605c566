//! The first pass of a load: one source object's lines become counted
//! outcomes, accepted events are deduplicated and staged by partition, and
//! rejected lines are staged with their bytes. A source object that fails
//! to read to its end is taken back entirely (SPEC §2).

use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufRead};

use super::columns::Columns;
use super::event::{Event, Outcome, ParseOptions, RejectReason, parse_line};
use super::history::History;
use super::lines::{Line, LineReader};
use super::stage::{Stage, StagedEvent, StagedReject};
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
    pub stage: Stage,
    /// Message ids of earlier runs, within the dedup window.
    history: History,
    /// Seeded 128-bit hashes of the message ids accepted so far in this run.
    seen: HashSet<u128>,
    max_line_bytes: usize,
}

/// One source object as the parser sees it.
pub struct ObjectInput<'a> {
    pub url: &'a str,
    pub parse: ParseOptions,
}

impl Ingest {
    pub fn new(columns: Columns, stage: Stage, history: History, max_line_bytes: usize) -> Self {
        Ingest { columns, stage, history, seen: HashSet::new(), max_line_bytes }
    }

    /// Reads one object to its end. On an error nothing of the object stays.
    pub fn ingest_object(&mut self, input: impl BufRead, object: &ObjectInput) -> io::Result<Counts> {
        let columns = self.columns.checkpoint();
        let stage = self.stage.checkpoint();
        let mut seen_here = HashSet::new();
        match self.read_lines(input, object, &mut seen_here) {
            Ok(counts) => {
                self.seen.extend(seen_here);
                Ok(counts)
            }
            Err(e) => {
                self.columns.rollback(columns);
                self.stage.rollback(stage)?;
                Err(e)
            }
        }
    }

    fn read_lines(
        &mut self,
        input: impl BufRead,
        object: &ObjectInput,
        seen_here: &mut HashSet<u128>,
    ) -> io::Result<Counts> {
        let mut counts = Counts::default();
        let mut lines = LineReader::new(input, self.max_line_bytes);
        let mut dates = DateCache::default();
        while let Some((number, line)) = lines.next_line()? {
            counts.lines += 1;
            let (reason, message, raw) = match line {
                Line::Blank => {
                    counts.blank_lines += 1;
                    continue;
                }
                Line::TooLong { kept, len } => (
                    RejectReason::LineTooLong,
                    format!("line of {len} bytes is longer than --max-line-bytes {}", self.max_line_bytes),
                    kept,
                ),
                Line::Text(text) => match parse_line(text, &object.parse) {
                    Outcome::NonIdentify => {
                        counts.non_identify += 1;
                        continue;
                    }
                    Outcome::Identify(event) => {
                        let key = self.history.hash(&event.id);
                        // Within a run any repeat is a duplicate; across runs
                        // only within the window of `received_at`.
                        if self.seen.contains(&key)
                            || seen_here.contains(&key)
                            || self.history.contains(key, event.received_at)?
                        {
                            counts.duplicates += 1;
                        } else {
                            seen_here.insert(key);
                            counts.identifies += 1;
                            let date = dates.date(event.received_at);
                            let staged = self.bind(event);
                            self.stage.push_event(date, &staged)?;
                        }
                        continue;
                    }
                    Outcome::Reject(reason, message) => (reason, message, text),
                },
            };
            counts.reject(reason);
            self.stage.push_reject(&StagedReject {
                source: object.url.to_owned(),
                line: number,
                reason,
                message,
                raw: raw.to_vec(),
            })?;
        }
        Ok(counts)
    }

    /// Binds the event's leaves to column ids.
    fn bind(&mut self, event: Event) -> StagedEvent {
        let values = event
            .leaves
            .into_iter()
            .map(|leaf| (self.columns.observe(&leaf), leaf.kind, leaf.text))
            .collect();
        StagedEvent {
            id: event.id,
            user_id: event.user_id,
            anonymous_id: event.anonymous_id,
            timestamp: event.timestamp,
            received_at: event.received_at,
            original_timestamp: event.original_timestamp,
            sent_at: event.sent_at,
            channel: event.channel,
            traits: event.traits,
            values,
        }
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
