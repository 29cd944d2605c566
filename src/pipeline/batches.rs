//! Lines in batches: a reader thread decompresses and splits an object into
//! batches of lines, so that parsing (on all cores) overlaps decompression.

use std::io::{self, BufRead};
use std::sync::mpsc::SyncSender;

use super::lines::{Line, LineReader};

/// About this many bytes of lines per batch: few enough that a batch is
/// still in the cache when a parser takes it, and its events when the
/// staging thread does (the 1M load: 3% less CPU than with 1 MiB, over ten
/// alternating pairs, the 5M load no difference beyond noise; 128 KiB was
/// no better).
const BATCH_BYTES: usize = 256 << 10;
const BATCH_LINES: usize = 8192;
/// Past `BATCH_BYTES`, room for the line that fills a batch.
const BATCH_SLACK: usize = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Blank,
    Text,
    /// The kept prefix is the line's bytes; the value is the full length.
    TooLong(u64),
}

#[derive(Debug, Clone, Copy)]
pub struct BatchLine {
    pub number: u64,
    pub kind: LineKind,
    start: usize,
    end: usize,
}

/// Consecutive lines of one object, their bytes in one buffer.
#[derive(Debug, Default)]
pub struct LineBatch {
    data: Vec<u8>,
    pub lines: Vec<BatchLine>,
}

impl LineBatch {
    pub fn bytes(&self, line: &BatchLine) -> &[u8] {
        &self.data[line.start..line.end]
    }

    fn push(&mut self, number: u64, kind: LineKind, bytes: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.lines.push(BatchLine { number, kind, start, end: self.data.len() });
    }

    /// Room for a full batch, so that its bytes are not copied again and
    /// again as the buffer grows (~1% of the load's CPU).
    fn with_room() -> Self {
        LineBatch { data: Vec::with_capacity(BATCH_BYTES + BATCH_SLACK), lines: Vec::with_capacity(1024) }
    }

    fn is_full(&self) -> bool {
        self.data.len() >= BATCH_BYTES || self.lines.len() >= BATCH_LINES
    }
}

/// Reads `input` to its end, sending batches in order; an error ends the
/// stream. Returns when the receiver hangs up.
pub fn produce(input: impl BufRead, max_line_bytes: usize, tx: SyncSender<io::Result<LineBatch>>) {
    let mut lines = LineReader::new(input, max_line_bytes);
    let mut batch = LineBatch::with_room();
    loop {
        match lines.next_line() {
            Ok(Some((number, line))) => {
                match line {
                    Line::Blank => batch.push(number, LineKind::Blank, &[]),
                    Line::Text(text) => batch.push(number, LineKind::Text, text),
                    Line::TooLong { kept, len } => batch.push(number, LineKind::TooLong(len), kept),
                }
                if batch.is_full()
                    && tx.send(Ok(std::mem::replace(&mut batch, LineBatch::with_room()))).is_err()
                {
                    return;
                }
            }
            Ok(None) => {
                if !batch.lines.is_empty() {
                    let _ = tx.send(Ok(batch));
                }
                return;
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
}
