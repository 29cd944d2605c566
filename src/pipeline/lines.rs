//! Split a decompressed byte stream into lines (SPEC §2): `\n` ends a line,
//! a trailing `\r` is dropped, a last line without `\n` counts, a UTF-8 BOM
//! at the start is dropped, and a line longer than the limit is cut short.

use std::io::{self, BufRead};

/// One line, borrowed from the reader until the next call.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// Only ASCII white space (or nothing).
    Blank,
    /// Longer than the limit: the first `limit` bytes, and the full length.
    TooLong {
        kept: &'a [u8],
        len: u64,
    },
    Text(&'a [u8]),
}

pub struct LineReader<R> {
    inner: R,
    max_line_bytes: usize,
    buf: Vec<u8>,
    /// Line number of the last line returned (1-based).
    number: u64,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, max_line_bytes: usize) -> Self {
        LineReader { inner, max_line_bytes, buf: Vec::new(), number: 0 }
    }

    /// The next line and its 1-based number, or `None` at the end.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        self.buf.clear();
        // Bytes of the line seen so far, of which `buf` keeps at most
        // `max_line_bytes + 1`, so memory stays bounded on endless lines.
        let mut len: u64 = 0;
        let mut last = 0u8;
        let keep = self.max_line_bytes.saturating_add(BOM.len() + 1);
        loop {
            let available = self.inner.fill_buf()?;
            if available.is_empty() {
                // An object of nothing but a BOM has no lines.
                if len == 0 || (self.number == 0 && self.buf == BOM) {
                    return Ok(None);
                }
                break;
            }
            let (chunk, consumed, found) = match memchr::memchr(b'\n', available) {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            if let Some(&b) = chunk.last() {
                last = b;
            }
            let room = keep.saturating_sub(self.buf.len()).min(chunk.len());
            self.buf.extend_from_slice(&chunk[..room]);
            len += chunk.len() as u64;
            self.inner.consume(consumed);
            if found {
                break;
            }
        }
        self.number += 1;
        let mut start = 0;
        if self.number == 1 && self.buf.starts_with(BOM) {
            start = BOM.len();
            len -= BOM.len() as u64;
        }
        if last == b'\r' && len > 0 {
            len -= 1;
        }
        let line = if len > self.max_line_bytes as u64 {
            Line::TooLong { kept: &self.buf[start..start + self.max_line_bytes], len }
        } else {
            let text = &self.buf[start..start + len as usize];
            if is_blank(text) { Line::Blank } else { Line::Text(text) }
        };
        Ok(Some((self.number, line)))
    }
}

/// Only white space (Unicode White_Space, as for ids in SPEC §3). Decided
/// at the first byte that is not ASCII white space, the line's first byte
/// for almost every line: checking the whole line was ASCII first read
/// every line once more.
fn is_blank(text: &[u8]) -> bool {
    let ascii_white = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'\x0b' | b'\x0c');
    match text.iter().position(|c| !ascii_white(c)) {
        None => true,
        Some(i) if text[i].is_ascii() => false,
        // ASCII white space ends on a character boundary.
        Some(i) => std::str::from_utf8(&text[i..]).is_ok_and(|s| s.chars().all(char::is_whitespace)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Owned {
        Blank,
        TooLong(Vec<u8>, u64),
        Text(Vec<u8>),
    }

    fn split(input: &[u8], max: usize, buffer: usize) -> Vec<(u64, Owned)> {
        let reader = io::BufReader::with_capacity(buffer, input);
        let mut lines = LineReader::new(reader, max);
        let mut out = Vec::new();
        while let Some((n, line)) = lines.next_line().unwrap() {
            out.push((
                n,
                match line {
                    Line::Blank => Owned::Blank,
                    Line::TooLong { kept, len } => Owned::TooLong(kept.to_vec(), len),
                    Line::Text(t) => Owned::Text(t.to_vec()),
                },
            ));
        }
        out
    }

    fn text(s: &str) -> Owned {
        Owned::Text(s.as_bytes().to_vec())
    }

    #[test]
    fn endings_bom_blanks_and_last_line() {
        let input = b"\xEF\xBB\xBF{\"a\":1}\r\n\n  \t\r\nx\ry\nlast";
        for buffer in [1, 2, 3, 7, 64, 8192] {
            assert_eq!(
                split(input, 100, buffer),
                vec![
                    (1, text("{\"a\":1}")),
                    (2, Owned::Blank),
                    (3, Owned::Blank),
                    (4, text("x\ry")),
                    (5, text("last")),
                ],
                "buffer {buffer}"
            );
        }
    }

    #[test]
    fn empty_input_and_trailing_newline() {
        assert!(split(b"", 10, 8).is_empty());
        assert_eq!(split(b"\n", 10, 8), vec![(1, Owned::Blank)]);
        assert_eq!(split(b"a\n", 10, 8), vec![(1, text("a"))]);
    }

    #[test]
    fn unicode_white_space_is_blank_and_a_lone_bom_is_nothing() {
        assert_eq!(split("\u{a0}\u{3000}\n".as_bytes(), 100, 8), vec![(1, Owned::Blank)]);
        assert!(split(BOM, 100, 8).is_empty());
        assert_eq!(split(b"\xEF\xBB\xBF\n", 100, 8), vec![(1, Owned::Blank)]);
    }

    #[test]
    fn blank_is_decided_as_by_every_character_of_the_line() {
        let whole = |t: &[u8]| std::str::from_utf8(t).is_ok_and(|s| s.chars().all(char::is_whitespace));
        let pieces: [&[u8]; 9] = [
            b" ",
            b"\t",
            b"\x0c",
            b"x",
            b"{",
            "\u{a0}".as_bytes(),
            "\u{85}".as_bytes(),
            "é".as_bytes(),
            b"\xff",
        ];
        let mut lines: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> =
                lines.iter().flat_map(|l| pieces.iter().map(move |p| [l.as_slice(), p].concat())).collect();
            lines.extend(longer);
        }
        for line in &lines {
            assert_eq!(is_blank(line), whole(line), "{line:?}");
        }
    }

    #[test]
    fn bom_only_at_the_start() {
        let got = split(b"a\n\xEF\xBB\xBFb", 10, 8);
        assert_eq!(got[1], (2, Owned::Text(b"\xEF\xBB\xBFb".to_vec())));
    }

    #[test]
    fn long_lines_keep_their_first_bytes() {
        for buffer in [1, 3, 5, 1024] {
            let got = split(b"abcdefgh\r\nabcd\r\nabcde\n", 4, buffer);
            assert_eq!(
                got,
                vec![
                    (1, Owned::TooLong(b"abcd".to_vec(), 8)),
                    (2, text("abcd")),
                    (3, Owned::TooLong(b"abcd".to_vec(), 5)),
                ],
                "buffer {buffer}"
            );
        }
    }

    /// A plain reference: split on `\n`, drop one `\r`, cut long lines.
    fn reference(input: &[u8], max: usize) -> Vec<(u64, Owned)> {
        let input = input.strip_prefix(BOM).unwrap_or(input);
        if input.is_empty() {
            return Vec::new();
        }
        let mut parts: Vec<&[u8]> = input.split(|c| *c == b'\n').collect();
        if parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        }
        parts
            .into_iter()
            .enumerate()
            .map(|(i, line)| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let owned = if line.len() > max {
                    Owned::TooLong(line[..max].to_vec(), line.len() as u64)
                } else if is_blank(line) {
                    Owned::Blank
                } else {
                    Owned::Text(line.to_vec())
                };
                (i as u64 + 1, owned)
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn any_buffer_size_splits_like_the_reference(
            input in proptest::collection::vec(proptest::sample::select(b"ab \r\n\xEF\xBB\xBF".to_vec()), 0..200),
            max in 1usize..12,
            buffer in 1usize..17,
        ) {
            proptest::prop_assert_eq!(split(&input, max, buffer), reference(&input, max));
        }
    }
}
