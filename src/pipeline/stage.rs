//! Local spill files between the two passes of a load: accepted events
//! grouped by partition date, and rejected lines. Each record is a length
//! prefix and a postcard body. A failed source object is taken back by
//! truncating every file to its length before the object.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::event::RejectReason;
use super::timestamp::Micros;
use super::typing::Kind;

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
    pub traits: &'a str,
    /// The values' text: each value is a span of it.
    pub text: &'a str,
    pub values: Vec<StagedValue>,
}

/// One leaf value: its column id, its kind and its span of the text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagedValue {
    pub column: u32,
    pub kind: Kind,
    pub start: u32,
    pub end: u32,
}

impl<'a> StagedEvent<'a> {
    pub fn value(&self, value: &StagedValue) -> &'a str {
        &self.text[value.start as usize..value.end as usize]
    }

    pub fn decode(record: &'a [u8]) -> io::Result<Self> {
        decode(record)
    }
}

/// A record read back from the spill.
pub fn decode<'a, T: Deserialize<'a>>(record: &'a [u8]) -> io::Result<T> {
    postcard::from_bytes(record).map_err(io::Error::other)
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StagedReject {
    pub source: String,
    pub line: u64,
    pub reason: RejectReason,
    pub message: String,
    pub raw: Vec<u8>,
}

/// An append-only file of records.
struct RecordFile {
    path: PathBuf,
    out: BufWriter<File>,
    len: u64,
    records: u64,
}

impl RecordFile {
    fn create(path: PathBuf) -> io::Result<Self> {
        let out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        Ok(RecordFile { path, out, len: 0, records: 0 })
    }

    /// `scratch` is the encoding buffer, reused from record to record.
    fn append(&mut self, record: &impl Serialize, scratch: &mut Vec<u8>) -> io::Result<()> {
        scratch.clear();
        scratch.extend_from_slice(&[0; 4]);
        let mut body = postcard::to_extend(record, std::mem::take(scratch)).map_err(io::Error::other)?;
        let len = body.len() - 4;
        body[..4].copy_from_slice(&(len as u32).to_le_bytes());
        self.out.write_all(&body)?;
        *scratch = body;
        self.len += 4 + len as u64;
        self.records += 1;
        Ok(())
    }

    fn truncate(&mut self, len: u64, records: u64) -> io::Result<()> {
        self.out.flush()?;
        let file = self.out.get_mut();
        file.set_len(len)?;
        file.seek(io::SeekFrom::Start(len))?;
        self.len = len;
        self.records = records;
        Ok(())
    }
}

/// The spill of one run.
pub struct Stage {
    dir: tempfile::TempDir,
    partitions: BTreeMap<String, RecordFile>,
    rejects: RecordFile,
    scratch: Vec<u8>,
}

/// File lengths before a source object, to roll back to.
pub struct StageCheckpoint {
    partitions: Vec<(String, u64, u64)>,
    rejects: (u64, u64),
}

impl Stage {
    pub fn new(spill_dir: Option<&Path>) -> io::Result<Self> {
        let dir = match spill_dir {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                tempfile::Builder::new().prefix("identify-loader-").tempdir_in(d)?
            }
            None => tempfile::Builder::new().prefix("identify-loader-").tempdir()?,
        };
        let rejects = RecordFile::create(dir.path().join("rejects"))?;
        Ok(Stage { dir, partitions: BTreeMap::new(), rejects, scratch: Vec::new() })
    }

    pub fn push_event(&mut self, date: &str, event: &StagedEvent) -> io::Result<()> {
        if !self.partitions.contains_key(date) {
            let file = RecordFile::create(self.dir.path().join(format!("events-{date}")))?;
            self.partitions.insert(date.to_owned(), file);
        }
        self.partitions.get_mut(date).map_or(Ok(()), |f| f.append(event, &mut self.scratch))
    }

    pub fn push_reject(&mut self, reject: &StagedReject) -> io::Result<()> {
        self.rejects.append(reject, &mut self.scratch)
    }

    pub fn checkpoint(&self) -> StageCheckpoint {
        StageCheckpoint {
            partitions: self.partitions.iter().map(|(d, f)| (d.clone(), f.len, f.records)).collect(),
            rejects: (self.rejects.len, self.rejects.records),
        }
    }

    pub fn rollback(&mut self, cp: StageCheckpoint) -> io::Result<()> {
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

    /// Partition dates with at least one event, in order.
    pub fn dates(&self) -> Vec<String> {
        self.partitions.iter().filter(|(_, f)| f.records > 0).map(|(d, _)| d.clone()).collect()
    }

    pub fn reject_count(&self) -> u64 {
        self.rejects.records
    }

    pub fn read_events(&mut self, date: &str) -> io::Result<Records> {
        match self.partitions.get_mut(date) {
            Some(file) => Records::open(file),
            None => Err(io::Error::new(io::ErrorKind::NotFound, date.to_owned())),
        }
    }

    pub fn read_rejects(&mut self) -> io::Result<Records> {
        Records::open(&mut self.rejects)
    }
}

/// Reads records back in the order they were appended, each into the same
/// buffer, which the decoded record borrows.
pub struct Records {
    input: BufReader<File>,
    left: u64,
    buf: Vec<u8>,
}

impl Records {
    fn open(file: &mut RecordFile) -> io::Result<Self> {
        file.out.flush()?;
        let input = BufReader::with_capacity(1 << 20, File::open(&file.path)?);
        Ok(Records { input, left: file.records, buf: Vec::new() })
    }

    /// The next record's bytes; `None` after the last.
    pub fn next_record(&mut self) -> io::Result<Option<&[u8]>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let mut len = [0u8; 4];
        self.input.read_exact(&mut len)?;
        self.buf.resize(u32::from_le_bytes(len) as usize, 0);
        self.input.read_exact(&mut self.buf)?;
        Ok(Some(&self.buf))
    }
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
            traits: "{}",
            text: "1",
            values: vec![StagedValue { column: 0, kind: Kind::Int, start: 0, end: 1 }],
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
        let cp = stage.checkpoint();
        stage.push_event("2024-01-01", &event("b")).unwrap();
        stage.push_event("2024-01-02", &event("c")).unwrap();
        stage.rollback(cp).unwrap();
        stage.push_event("2024-01-01", &event("d")).unwrap();
        assert_eq!(stage.dates(), ["2024-01-01"]);
        assert_eq!(ids(&mut stage, "2024-01-01"), ["a", "d"]);
    }
}
