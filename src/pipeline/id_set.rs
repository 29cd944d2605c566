//! The message ids a run has accepted, as their seeded 128-bit hashes
//! ([`super::history::History::hash`]), for the in-run dedup (SPEC §5).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// Shards, by the hash's top bits. A hash table that outgrows itself moves
/// into one twice as large, and holds both for a moment: one table of the
/// 15M ids of a 20M-event load did that at its last objects, 285 MB next to
/// 570 MB, while the partitions' files were still being written. A shard
/// grows by a sixteenth of that.
const SHARDS: usize = 16;

pub struct IdSet {
    shards: Vec<HashSet<u128, BuildHasherDefault<Seeded>>>,
}

impl Default for IdSet {
    fn default() -> Self {
        // Empty tables allocate nothing.
        IdSet { shards: (0..SHARDS).map(|_| HashSet::default()).collect() }
    }
}

impl IdSet {
    fn shard(key: u128) -> usize {
        (key >> (128 - SHARDS.trailing_zeros())) as usize
    }

    pub fn contains(&self, key: u128) -> bool {
        self.shards[Self::shard(key)].contains(&key)
    }

    pub fn insert(&mut self, key: u128) {
        self.shards[Self::shard(key)].insert(key);
    }

    pub fn extend(&mut self, other: IdSet) {
        for (shard, theirs) in self.shards.iter_mut().zip(other.shards) {
            shard.extend(theirs);
        }
    }
}

/// The keys are seeded hashes already: their low 64 bits are the table's
/// hash, with no hashing again.
#[derive(Default)]
struct Seeded(u64);

impl Hasher for Seeded {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u128 keys are hashed here; any other input still spreads.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3).rotate_left(5);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_what_was_inserted_in_any_shard() {
        let keys: Vec<u128> =
            (0..1000u128).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)).collect();
        let (mut a, mut b) = (IdSet::default(), IdSet::default());
        assert!(!a.contains(keys[0]));
        for &k in &keys[..500] {
            a.insert(k);
        }
        for &k in &keys[500..] {
            b.insert(k);
        }
        a.extend(b);
        assert!(keys.iter().all(|&k| a.contains(k)));
        assert!(!a.contains(1));
        let mut empty = IdSet::default();
        empty.extend(a);
        assert!(keys.iter().all(|&k| empty.contains(k)));
        assert_eq!(empty.shards.iter().filter(|s| !s.is_empty()).count(), SHARDS);
    }
}
