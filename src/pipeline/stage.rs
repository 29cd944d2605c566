//! Local spill files between the two passes of a load: accepted events
//! grouped by partition date, and rejected lines. Each record is a length
//! prefix and a postcard body; records go to disk in zstd-compressed blocks.
//! A failed source object is taken back by truncating every file to its
//! length before the object, which is a block boundary.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::event::RejectReason;
use super::timestamp::Micros;
use super::typing::Kind;
use crate::spill_dir::SpillDir;

/// An accepted identify with its leaves bound to column ids. It borrows:
/// pass one writes it straight from the parsed event, pass two reads it
/// straight from the spill's buffer.
#[derive(Debug, Serialize, Deserialize)]
pub struct StagedEvent<'a> {
    pub id: &'a str,
    #[serde(borrow)]
    pub user_id: Option<&'a str>,
    #[serde(borrow)]
    pub anonymous_id: Option<&'a str>,
    pub timestamp: Micros,
    pub received_at: Micros,
    pub original_timestamp: Option<Micros>,
    pub sent_at: Option<Micros>,
    #[serde(borrow)]
    pub channel: Option<&'a str>,
    /// The length of the traits JSON that starts `text`.
    pub traits_len: u32,
    /// The traits JSON and the values' text: each value is a span of it.
    pub text: &'a str,
    pub values: Vec<StagedValue>,
}

/// One leaf value: its column id, its kind and its span of the text (a
/// length rather than an end: one byte instead of two).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagedValue {
    pub column: u32,
    pub kind: Kind,
    pub start: u32,
    pub len: u32,
}

impl<'a> StagedEvent<'a> {
    pub fn traits(&self) -> &'a str {
        &self.text[..self.traits_len as usize]
    }

    pub fn value(&self, value: &StagedValue) -> &'a str {
        let start = value.start as usize;
        &self.text[start..start + value.len as usize]
    }

    pub fn decode(record: &'a [u8]) -> io::Result<Self> {
        decode(record)
    }
}

/// A record read back from the spill.
pub fn decode<'a, T: Deserialize<'a>>(record: &'a [u8]) -> io::Result<T> {
    postcard::from_bytes(record).map_err(io::Error::other)
}

/// A failure of the spill itself (a full or failing local disk). It travels
/// with a source object's read errors, as an `io::Error`, but is the run's
/// fault rather than the object's: the load stops instead of failing the
/// object and going on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SpillFailed(#[source] pub io::Error);

fn spill_failed(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), SpillFailed(e))
}

/// The spill's own failure inside `e`, if that is what `e` is.
pub fn spill_failure(e: &io::Error) -> Option<&SpillFailed> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<SpillFailed>())
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StagedReject {
    pub source: String,
    pub line: u64,
    pub reason: RejectReason,
    pub message: String,
    pub raw: Vec<u8>,
}

/// Records are gathered into blocks of about this many bytes, each written
/// compressed. The spill is as large as the input's identifies; once it
/// outgrows the kernel's dirty-page threshold it is written back to disk on
/// the cores that parse, and compressed it stays several times smaller.
const BLOCK_BYTES: usize = 256 * 1024;

/// zstd's fast negative levels trade size for time. Measured on the 1M
/// load (spill peak; user time, three runs each): −7 207 MB, 17.9–18.7 s;
/// −20 305 MB, 17.0–18.4 s; −40 389 MB, 17.4–17.9 s. Compression runs on
/// the cores that parse; the size costs disk, written back by the kernel.
const SPILL_LEVEL: i32 = -20;

/// An append-only file of records, in compressed blocks: each block is its
/// compressed length and raw length (u32 LE) and the zstd frame of its
/// records, each record a u32 LE length and a postcard body.
struct RecordFile {
    path: PathBuf,
    out: File,
    /// Records not yet written, always whole ones.
    block: Vec<u8>,
    /// Bytes of the file: whole blocks only.
    len: u64,
    records: u64,
}

impl RecordFile {
    fn create(path: PathBuf) -> io::Result<Self> {
        let out = File::create(&path)?;
        Ok(RecordFile { path, out, block: Vec::new(), len: 0, records: 0 })
    }

    fn append(&mut self, record: &impl Serialize, spill: &mut Compressor) -> io::Result<()> {
        if self.block.capacity() == 0 {
            self.block.reserve(BLOCK_BYTES + BLOCK_BYTES / 4);
        }
        let start = self.block.len();
        self.block.extend_from_slice(&[0; 4]);
        self.block =
            postcard::to_extend(record, std::mem::take(&mut self.block)).map_err(io::Error::other)?;
        let len = self.block.len() - start - 4;
        self.block[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
        self.records += 1;
        if self.block.len() >= BLOCK_BYTES {
            self.flush(spill)?;
        }
        Ok(())
    }

    /// Writes the pending records as one block.
    fn flush(&mut self, spill: &mut Compressor) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let frame = spill.compress(&self.block)?;
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        header[4..].copy_from_slice(&(self.block.len() as u32).to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(frame)?;
        self.len += (header.len() + frame.len()) as u64;
        self.block.clear();
        Ok(())
    }

    /// Forgets the records after a checkpoint, which left no pending block.
    fn truncate(&mut self, len: u64, records: u64) -> io::Result<()> {
        self.block.clear();
        self.out.set_len(len)?;
        self.out.seek(io::SeekFrom::Start(len))?;
        self.len = len;
        self.records = records;
        Ok(())
    }
}

/// The zstd context and output buffer shared by a run's spill files.
struct Compressor {
    context: zstd::bulk::Compressor<'static>,
    frame: Vec<u8>,
}

impl Compressor {
    fn new() -> io::Result<Self> {
        Ok(Compressor { context: zstd::bulk::Compressor::new(SPILL_LEVEL)?, frame: Vec::new() })
    }

    fn compress(&mut self, block: &[u8]) -> io::Result<&[u8]> {
        self.frame.clear();
        self.frame.reserve(zstd::zstd_safe::compress_bound(block.len()));
        self.context.compress_to_buffer(block, &mut self.frame)?;
        Ok(&self.frame)
    }
}

/// The spill of one run.
pub struct Stage {
    dir: SpillDir,
    partitions: BTreeMap<String, RecordFile>,
    rejects: RecordFile,
    compressor: Compressor,
}

/// File lengths before a source object, to roll back to.
pub struct StageCheckpoint {
    partitions: Vec<(String, u64, u64)>,
    rejects: (u64, u64),
}

impl Stage {
    /// The spill under `spill_dir` (default: the system temp folder), in a
    /// folder of the run's own that goes with it.
    pub fn new(spill_dir: Option<&Path>) -> io::Result<Self> {
        let dir = SpillDir::create(spill_dir)?;
        let rejects = RecordFile::create(dir.path().join("rejects"))?;
        Ok(Stage { dir, partitions: BTreeMap::new(), rejects, compressor: Compressor::new()? })
    }

    pub fn push_event(&mut self, date: &str, event: &StagedEvent) -> io::Result<()> {
        if !self.partitions.contains_key(date) {
            let file =
                RecordFile::create(self.dir.path().join(format!("events-{date}"))).map_err(spill_failed)?;
            self.partitions.insert(date.to_owned(), file);
        }
        self.partitions
            .get_mut(date)
            .map_or(Ok(()), |f| f.append(event, &mut self.compressor))
            .map_err(spill_failed)
    }

    pub fn push_reject(&mut self, reject: &StagedReject) -> io::Result<()> {
        self.rejects.append(reject, &mut self.compressor).map_err(spill_failed)
    }

    /// Writes out every pending block, so that the lengths are block
    /// boundaries to truncate at.
    pub fn checkpoint(&mut self) -> io::Result<StageCheckpoint> {
        self.flush().map_err(spill_failed)?;
        Ok(StageCheckpoint {
            partitions: self.partitions.iter().map(|(d, f)| (d.clone(), f.len, f.records)).collect(),
            rejects: (self.rejects.len, self.rejects.records),
        })
    }

    pub fn rollback(&mut self, cp: StageCheckpoint) -> io::Result<()> {
        self.truncate(cp).map_err(spill_failed)
    }

    fn truncate(&mut self, cp: StageCheckpoint) -> io::Result<()> {
        let keep: BTreeMap<_, _> = cp.partitions.into_iter().map(|(d, l, r)| (d, (l, r))).collect();
        let dropped: Vec<String> =
            self.partitions.keys().filter(|d| !keep.contains_key(*d)).cloned().collect();
        for date in dropped {
            if let Some(file) = self.partitions.remove(&date) {
                drop(file.out);
                std::fs::remove_file(&file.path)?;
            }
        }
        for (date, file) in &mut self.partitions {
            let (len, records) = keep[date];
            file.truncate(len, records)?;
        }
        self.rejects.truncate(cp.rejects.0, cp.rejects.1)
    }

    fn flush(&mut self) -> io::Result<()> {
        for file in self.partitions.values_mut() {
            file.flush(&mut self.compressor)?;
        }
        self.rejects.flush(&mut self.compressor)
    }

    /// Partition dates with at least one event, in order.
    pub fn dates(&self) -> Vec<String> {
        self.partitions.iter().filter(|(_, f)| f.records > 0).map(|(d, _)| d.clone()).collect()
    }

    pub fn reject_count(&self) -> u64 {
        self.rejects.records
    }

    pub fn read_events(&mut self, date: &str) -> io::Result<Records> {
        match self.partitions.get_mut(date) {
            Some(file) => {
                file.flush(&mut self.compressor)?;
                Records::open(file)
            }
            None => Err(io::Error::new(io::ErrorKind::NotFound, date.to_owned())),
        }
    }

    pub fn read_rejects(&mut self) -> io::Result<Records> {
        self.rejects.flush(&mut self.compressor)?;
        Records::open(&self.rejects)
    }
}

/// Reads records back in the order they were appended, one block at a time;
/// a record borrows the block.
pub struct Records {
    input: File,
    left: u64,
    frame: Vec<u8>,
    block: Vec<u8>,
    at: usize,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
}

impl Records {
    fn open(file: &RecordFile) -> io::Result<Self> {
        Ok(Records {
            input: File::open(&file.path)?,
            left: file.records,
            frame: Vec::new(),
            block: Vec::new(),
            at: 0,
            decompressor: None,
        })
    }

    /// The next record's bytes; `None` after the last.
    pub fn next_record(&mut self) -> io::Result<Option<&[u8]>> {
        if self.left == 0 {
            return Ok(None);
        }
        if self.at == self.block.len() {
            self.read_block()?;
        }
        let len = self.block.get(self.at..self.at + 4).ok_or_else(|| corrupt("a record's length"))?;
        let start = self.at + 4;
        let end = start + u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if end > self.block.len() {
            return Err(corrupt("a record"));
        }
        self.at = end;
        self.left -= 1;
        Ok(Some(&self.block[start..end]))
    }

    fn read_block(&mut self) -> io::Result<()> {
        let mut header = [0u8; 8];
        self.input.read_exact(&mut header)?;
        let frame_len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let raw_len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        self.frame.resize(frame_len, 0);
        self.input.read_exact(&mut self.frame)?;
        self.block.clear();
        self.block.reserve(raw_len);
        let decompressor = match &mut self.decompressor {
            Some(d) => d,
            None => self.decompressor.insert(zstd::bulk::Decompressor::new()?),
        };
        decompressor.decompress_to_buffer(&self.frame, &mut self.block)?;
        if self.block.len() != raw_len {
            return Err(corrupt("a block"));
        }
        self.at = 0;
        Ok(())
    }
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the spill is corrupt: {what} is cut short"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> StagedEvent<'_> {
        StagedEvent {
            id,
            user_id: None,
            anonymous_id: Some("a"),
            timestamp: 1,
            received_at: 2,
            original_timestamp: None,
            sent_at: Some(3),
            channel: None,
            traits_len: 2,
            text: "{}1",
            values: vec![StagedValue { column: 0, kind: Kind::Int, start: 2, len: 1 }],
        }
    }

    fn ids(stage: &mut Stage, date: &str) -> Vec<String> {
        let mut records = stage.read_events(date).unwrap();
        let mut ids = Vec::new();
        while let Some(record) = records.next_record().unwrap() {
            let event = StagedEvent::decode(record).unwrap();
            assert_eq!(event.value(&event.values[0]), "1");
            ids.push(event.id.to_owned());
        }
        ids
    }

    #[test]
    fn rollback_drops_what_came_after_the_checkpoint() {
        let mut stage = Stage::new(None).unwrap();
        stage.push_event("2024-01-01", &event("a")).unwrap();
        let cp = stage.checkpoint().unwrap();
        stage.push_event("2024-01-01", &event("b")).unwrap();
        stage.push_event("2024-01-02", &event("c")).unwrap();
        stage.rollback(cp).unwrap();
        stage.push_event("2024-01-01", &event("d")).unwrap();
        assert_eq!(stage.dates(), ["2024-01-01"]);
        assert_eq!(ids(&mut stage, "2024-01-01"), ["a", "d"]);
    }

    #[test]
    fn a_corrupt_block_is_an_error_not_a_panic() {
        let mut stage = Stage::new(None).unwrap();
        for i in 0..1000 {
            stage.push_event("2024-01-01", &event(&format!("event-{i}"))).unwrap();
        }
        drop(stage.read_events("2024-01-01").unwrap());
        let path = stage.partitions["2024-01-01"].path.clone();
        let mut bytes = std::fs::read(&path).unwrap();
        // Past the block header: the compressed bytes themselves.
        bytes[8..200].fill(0xff);
        std::fs::write(&path, bytes).unwrap();
        let mut records = stage.read_events("2024-01-01").unwrap();
        loop {
            match records.next_record() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("a corrupt block read back whole"),
                Err(_) => break,
            }
        }
    }

    #[test]
    fn records_span_many_blocks_and_roll_back_to_a_block_boundary() {
        let mut stage = Stage::new(None).unwrap();
        let all: Vec<String> = (0..20_000).map(|i| format!("event-{i}-{}", "x".repeat(i % 50))).collect();
        for id in &all[..12_000] {
            stage.push_event("2024-01-01", &event(id)).unwrap();
        }
        let cp = stage.checkpoint().unwrap();
        for id in &all[12_000..] {
            stage.push_event("2024-01-01", &event(id)).unwrap();
        }
        assert_eq!(ids(&mut stage, "2024-01-01"), all);
        stage.rollback(cp).unwrap();
        let big = "y".repeat(3 * BLOCK_BYTES);
        stage.push_event("2024-01-01", &event(&big)).unwrap();
        stage.push_event("2024-01-01", &event("last")).unwrap();
        let mut expected = all[..12_000].to_vec();
        expected.extend([big.clone(), "last".to_owned()]);
        assert_eq!(ids(&mut stage, "2024-01-01"), expected);
    }
}
