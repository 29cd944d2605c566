//! Read and decompress one source object (SPEC §2): the object store's byte
//! stream is handed to a blocking reader through a bounded channel (a local
//! file is read by that reader itself), and gzip (also multi-member) or zstd
//! is detected from the magic bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{GetResult, GetResultPayload, ObjectStore, ObjectStoreExt};
use tokio::sync::mpsc;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// How the bytes of an object are cut on their way to the parser. Varying
/// these must never change a result; the tests make sure of it.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Re-cut the store's chunks to this size (0: as the store sends them).
    pub chunk_bytes: usize,
    /// Capacity of the buffers in front of the decoder and the line splitter.
    pub buffer_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { chunk_bytes: 0, buffer_bytes: 256 * 1024 }
    }
}

/// Starts streaming `location` and returns a blocking reader of its raw
/// bytes; `bytes_read` counts them as they arrive.
pub fn open_stream(
    store: Arc<dyn ObjectStore>,
    location: Path,
    opts: ReadOptions,
    bytes_read: Arc<AtomicU64>,
) -> ChannelReader {
    let (tx, rx) = mpsc::channel::<io::Result<Piece>>(16);
    let counter = Arc::clone(&bytes_read);
    tokio::spawn(async move {
        let result = match store.get(&location).await {
            Ok(result) => result,
            Err(e) => {
                let _ = tx.send(Err(io::Error::other(e))).await;
                return;
            }
        };
        // object_store streams a local file in 8 KiB chunks, each read on a
        // blocking task of its own and sent across threads: reading the file
        // on the reader's own thread instead took 10% off the 1M load's CPU.
        // The test option that re-cuts chunks keeps the stream.
        let mut stream = match result.payload {
            GetResultPayload::File(file, _) if opts.chunk_bytes == 0 => {
                let _ = tx.send(Ok(Piece::File(file, result.range))).await;
                return;
            }
            payload => GetResult { payload, ..result }.into_stream(),
        };
        while let Some(item) = stream.next().await {
            let chunk = match item {
                Ok(chunk) => chunk,
                Err(e) => {
                    let _ = tx.send(Err(io::Error::other(e))).await;
                    return;
                }
            };
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            for piece in rechunk(chunk, opts.chunk_bytes) {
                if tx.send(Ok(Piece::Chunk(piece))).await.is_err() {
                    return; // the reader gave up on this object
                }
            }
        }
    });
    ChannelReader { rx, current: Bytes::new(), file: None, bytes_read }
}

/// What the stream's task hands the reader: the next bytes, or the local
/// file that holds them all.
enum Piece {
    Chunk(Bytes),
    File(File, Range<u64>),
}

fn rechunk(mut chunk: Bytes, size: usize) -> Vec<Bytes> {
    if size == 0 || chunk.len() <= size {
        return vec![chunk];
    }
    let mut pieces = Vec::with_capacity(chunk.len() / size + 1);
    while !chunk.is_empty() {
        pieces.push(chunk.split_to(size.min(chunk.len())));
    }
    pieces
}

/// The blocking end of [`open_stream`].
pub struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Piece>>,
    current: Bytes,
    file: Option<LocalFile>,
    bytes_read: Arc<AtomicU64>,
}

/// A local object's file, read from its range's start to its end.
struct LocalFile {
    file: io::Take<File>,
    left: u64,
}

impl LocalFile {
    fn open(mut file: File, range: Range<u64>) -> io::Result<Self> {
        file.seek(SeekFrom::Start(range.start))?;
        let len = range.end - range.start;
        Ok(LocalFile { file: file.take(len), left: len })
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.left -= n as u64;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            // The file was cut short while it was read.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the file ended {} bytes before the object's size", self.left),
            ));
        }
        Ok(n)
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(file) = &mut self.file {
            let n = file.read(buf)?;
            self.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
            return Ok(n);
        }
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(Piece::Chunk(chunk))) => self.current = chunk,
                Some(Ok(Piece::File(file, range))) => {
                    self.file = Some(LocalFile::open(file, range)?);
                    return self.read(buf);
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Wraps `raw` in the decoder its first bytes call for.
pub fn decode<'a>(
    raw: impl Read + Send + 'a,
    buffer_bytes: usize,
) -> io::Result<Box<dyn BufRead + Send + 'a>> {
    let mut raw = BufReader::with_capacity(buffer_bytes, raw);
    let mut magic = Vec::with_capacity(4);
    while magic.len() < 4 {
        let available = raw.fill_buf()?;
        if available.is_empty() {
            break;
        }
        let n = (4 - magic.len()).min(available.len());
        magic.extend_from_slice(&available[..n]);
        raw.consume(n);
    }
    let head = Cursor::new(magic.clone()).chain(raw);
    Ok(if magic.starts_with(GZIP_MAGIC) {
        let decoder = flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(buffer_bytes, head));
        Box::new(BufReader::with_capacity(buffer_bytes, decoder))
    } else if magic.starts_with(ZSTD_MAGIC) {
        let decoder = zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(buffer_bytes, head))?;
        Box::new(BufReader::with_capacity(buffer_bytes, decoder))
    } else {
        Box::new(BufReader::with_capacity(buffer_bytes, head))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(data: &[u8], buffer: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decode(data, buffer)?.read_to_end(&mut out)?;
        Ok(out)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn plain_gzip_multi_member_and_zstd() {
        let text = b"line one\nline two\n".repeat(100);
        let mut multi = gzip(&text[..1000]);
        multi.extend(gzip(&text[1000..]));
        let zst = zstd::encode_all(&text[..], 3).unwrap();
        for buffer in [1, 3, 4096] {
            assert_eq!(read_all(&text, buffer).unwrap(), text);
            assert_eq!(read_all(&gzip(&text), buffer).unwrap(), text);
            assert_eq!(read_all(&multi, buffer).unwrap(), text);
            assert_eq!(read_all(&zst, buffer).unwrap(), text);
        }
        assert_eq!(read_all(b"ab", 8).unwrap(), b"ab");
        assert_eq!(read_all(b"", 8).unwrap(), b"");
    }

    #[test]
    fn a_local_file_is_read_over_its_range_and_cut_short_is_an_error() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"0123456789").unwrap();
        let read = |range: Range<u64>| {
            let mut local = LocalFile::open(file.try_clone().unwrap(), range)?;
            let (mut out, mut buf) = (Vec::new(), [0; 3]);
            loop {
                match local.read(&mut buf)? {
                    0 => return Ok::<_, io::Error>(out),
                    n => out.extend_from_slice(&buf[..n]),
                }
            }
        };
        assert_eq!(read(0..10).unwrap(), b"0123456789");
        assert_eq!(read(2..7).unwrap(), b"23456");
        let short = read(0..12).unwrap_err();
        assert_eq!(short.kind(), io::ErrorKind::UnexpectedEof);
        assert!(short.to_string().contains("2 bytes before"), "{short}");
    }

    #[test]
    fn truncated_or_corrupt_compression_is_an_error() {
        let text = b"some text that compresses\n".repeat(1000);
        let gz = gzip(&text);
        assert!(read_all(&gz[..gz.len() / 2], 4096).is_err(), "truncated gzip");
        assert!(read_all(&gz[..gz.len() - 4], 4096).is_err(), "gzip without trailer");
        let mut corrupt = gz.clone();
        corrupt[gz.len() / 2] ^= 0xff;
        assert!(read_all(&corrupt, 4096).is_err(), "corrupt gzip");
        let zst = zstd::encode_all(&text[..], 3).unwrap();
        assert!(read_all(&zst[..zst.len() / 2], 4096).is_err(), "truncated zstd");
    }
}
