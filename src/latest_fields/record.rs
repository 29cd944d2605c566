//! A group's state in `latest_fields`, encoded as one record (kept in an
//! `Arena`): the distinct keys its values came from, each field's key, and
//! the values' bytes. A newer row rewrites its group's record, so the state
//! is only the winning values: the input batches the winners came in, which
//! the aggregate held before, were twice the state between compactions.
//!
//! Layout, numbers as LEB128 varints:
//! - the number of keys, then per key its `timestamp` and `received_at` as
//!   8 little-endian bytes each and its id (0 for null, else length + 1,
//!   then the bytes);
//! - per field, its key's index + 1, or 0 when the field has no value; with
//!   one key (most groups: their latest row has every field), a bitmap of
//!   the fields that have one instead, 4 bytes for 26 fields against 26;
//! - per field with a value, its length and bytes (see `codec.rs`).
//!
//! An empty record is a group with nothing yet.

use std::cmp::Ordering;
use std::ops::Range;

use crate::arena::{put_varint, read_varint};

/// A row's order: rows compare by (`timestamp`, `received_at`, `id`), a
/// null id last.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Key<'a> {
    pub timestamp: i64,
    pub received_at: i64,
    pub id: Option<&'a [u8]>,
}

impl Key<'_> {
    /// UTF-8 bytes order as their strings do.
    pub fn cmp(&self, other: &Key<'_>) -> Ordering {
        (self.timestamp, self.received_at).cmp(&(other.timestamp, other.received_at)).then_with(|| {
            match (self.id, other.id) {
                (Some(x), Some(y)) => x.cmp(y),
                (x, y) => x.is_none().cmp(&y.is_none()),
            }
        })
    }
}

/// A record read back, as positions in it; reused from record to record.
#[derive(Debug, Default)]
pub(super) struct Parsed {
    keys: Vec<(i64, i64, Option<Range<usize>>)>,
    /// Per field: its key's index and its value's bytes.
    fields: Vec<Option<(usize, Range<usize>)>>,
}

impl Parsed {
    pub fn read(&mut self, record: &[u8], width: usize) {
        self.keys.clear();
        self.fields.clear();
        if record.is_empty() {
            self.fields.resize(width, None);
            return;
        }
        let mut at = 0;
        let keys = read_varint(record, &mut at);
        for _ in 0..keys {
            let timestamp = fixed(record, &mut at);
            let received_at = fixed(record, &mut at);
            let id = match read_varint(record, &mut at) {
                0 => None,
                tag => {
                    let end = at + tag - 1;
                    let id = at..end;
                    at = end;
                    Some(id)
                }
            };
            self.keys.push((timestamp, received_at, id));
        }
        if keys == 1 {
            let bits = &record[at..at + width.div_ceil(8)];
            at += bits.len();
            let has = |field: usize| bits[field / 8] >> (field % 8) & 1 == 1;
            self.fields.extend((0..width).map(|field| has(field).then_some((0, 0..0))));
        } else {
            for _ in 0..width {
                let source = read_varint(record, &mut at);
                self.fields.push(source.checked_sub(1).map(|key| (key, 0..0)));
            }
        }
        for (_, value) in self.fields.iter_mut().flatten() {
            let len = read_varint(record, &mut at);
            *value = at..at + len;
            at += len;
        }
    }

    /// How many keys the record has.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// The key of `field`'s value and the value, if it has one.
    pub fn field(&self, field: usize) -> Option<(usize, Range<usize>)> {
        self.fields[field].clone()
    }

    pub fn key<'a>(&self, record: &'a [u8], key: usize) -> Key<'a> {
        let (timestamp, received_at, id) = &self.keys[key];
        Key { timestamp: *timestamp, received_at: *received_at, id: id.clone().map(|r| &record[r]) }
    }
}

/// Writes a record: `keys`, then each field's key index and value.
pub(super) fn write<'a>(
    out: &mut Vec<u8>,
    keys: impl ExactSizeIterator<Item = Key<'a>>,
    fields: &[Option<(usize, &[u8])>],
) {
    out.clear();
    let one = keys.len() == 1;
    put_varint(out, keys.len());
    for key in keys {
        out.extend_from_slice(&key.timestamp.to_le_bytes());
        out.extend_from_slice(&key.received_at.to_le_bytes());
        match key.id {
            None => put_varint(out, 0),
            Some(id) => {
                put_varint(out, id.len() + 1);
                out.extend_from_slice(id);
            }
        }
    }
    if one {
        let start = out.len();
        out.resize(start + fields.len().div_ceil(8), 0);
        for (field, value) in fields.iter().enumerate() {
            if value.is_some() {
                out[start + field / 8] |= 1 << (field % 8);
            }
        }
    } else {
        for field in fields {
            put_varint(out, field.map_or(0, |(key, _)| key + 1));
        }
    }
    for (_, value) in fields.iter().flatten() {
        put_varint(out, value.len());
        out.extend_from_slice(value);
    }
}

fn fixed(record: &[u8], at: &mut usize) -> i64 {
    let bytes: [u8; 8] = record[*at..*at + 8].try_into().expect("8 bytes");
    *at += 8;
    i64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        let long = vec![7u8; 300];
        let keys = [
            Key { timestamp: -5, received_at: i64::MAX, id: None },
            Key { timestamp: 1 << 40, received_at: 3, id: Some(b"e1") },
        ];
        let fields = [Some((1, &b"ab"[..])), None, Some((0, &long[..])), Some((1, &b""[..]))];
        reads_back(&keys, &fields);
    }

    /// Writes a record of `keys` and `fields` and checks that it reads back.
    fn reads_back(keys: &[Key<'_>], fields: &[Option<(usize, &[u8])>]) {
        let mut out = Vec::new();
        write(&mut out, keys.iter().copied(), fields);
        let mut parsed = Parsed::default();
        parsed.read(&out, fields.len());
        for (field, expected) in fields.iter().enumerate() {
            let got = parsed.field(field).map(|(key, value)| (key, &out[value]));
            assert_eq!(got, *expected);
        }
        for (index, key) in keys.iter().enumerate() {
            assert_eq!(parsed.key(&out, index), *key);
        }
    }

    /// With one key the fields that have a value are a bitmap, here over
    /// more than a byte.
    #[test]
    fn a_record_of_one_key_reads_back_as_written() {
        let keys = [Key { timestamp: 1, received_at: 2, id: Some(&b"e"[..]) }];
        let fields: Vec<Option<(usize, &[u8])>> =
            (0..11).map(|f| (f % 3 != 1).then_some((0, &b"vvv"[..f % 4]))).collect();
        reads_back(&keys, &fields);
    }

    #[test]
    fn an_empty_record_has_no_values() {
        let mut parsed = Parsed::default();
        parsed.read(&[], 3);
        assert!((0..3).all(|f| parsed.field(f).is_none()));
    }

    #[test]
    fn keys_order_by_time_then_arrival_then_id_with_a_null_id_last() {
        let key = |timestamp, received_at, id| Key { timestamp, received_at, id };
        assert_eq!(key(1, 9, Some(&b"z"[..])).cmp(&key(2, 0, Some(b"a"))), Ordering::Less);
        assert_eq!(key(1, 1, Some(&b"b"[..])).cmp(&key(1, 0, Some(b"c"))), Ordering::Greater);
        assert_eq!(key(1, 1, Some(&b"b"[..])).cmp(&key(1, 1, Some(b"ab"))), Ordering::Greater);
        assert_eq!(key(1, 1, None).cmp(&key(1, 1, Some(b"a"))), Ordering::Greater);
        assert_eq!(key(1, 1, None).cmp(&key(1, 1, None)), Ordering::Equal);
    }
}
