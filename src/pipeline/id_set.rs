//! The message ids a run has accepted, as their seeded 128-bit hashes
//! ([`super::history::History::hash`]), for the in-run dedup (SPEC §5).
//!
//! A hash table of them took 26 to 39 bytes an id (its slack, and twice that
//! for a moment while it doubled): 570 MB for the 15M ids of a 20M-event
//! load, held while the partitions' files are written. Here most ids sit in
//! a sorted array, 16 bytes each and a byte of index, and only the latest
//! ones in a small hash table, merged into the array as it fills.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// Shards, by the hash's top bits: a merge grows one shard's array, and
/// sorts it with a buffer of half its size.
const SHARD_BITS: u32 = 4;
const SHARDS: usize = 1 << SHARD_BITS;

/// The recent ids of a shard are merged into its array once they are this
/// share of it (and at least [`MIN_RECENT`]): each merge copies the array,
/// and a larger share would cost their table's slack in memory.
const RECENT_SHARE: usize = 8;
const MIN_RECENT: usize = 16 * 1024;

/// About this many of the array's ids to a bucket of its index: a lookup
/// reads a bucket's ids, a cache line or two.
const BUCKET_IDS: usize = 4;

#[derive(Default)]
pub struct IdSet {
    shards: [Shard; SHARDS],
}

#[derive(Default)]
struct Shard {
    recent: HashSet<u128, BuildHasherDefault<Seeded>>,
    /// Older ids, sorted and distinct.
    sorted: Vec<u128>,
    /// `sorted[starts[b]..starts[b + 1]]` are the ids of bucket `b`, the
    /// `bucket_bits` bits below the shard's.
    starts: Vec<u32>,
    bucket_bits: u32,
}

impl IdSet {
    fn shard(key: u128) -> usize {
        (key >> (128 - SHARD_BITS)) as usize
    }

    pub fn contains(&self, key: u128) -> bool {
        self.shards[Self::shard(key)].contains(key)
    }

    pub fn insert(&mut self, key: u128) {
        self.shards[Self::shard(key)].insert(key);
    }

    pub fn extend(&mut self, other: IdSet) {
        for (shard, theirs) in self.shards.iter_mut().zip(other.shards) {
            for key in theirs.recent.into_iter().chain(theirs.sorted) {
                shard.insert(key);
            }
        }
    }
}

impl Shard {
    fn contains(&self, key: u128) -> bool {
        if self.recent.contains(&key) {
            return true;
        }
        let b = bucket(key, self.bucket_bits);
        match self.starts.get(b..b + 2) {
            Some(&[from, to]) => self.sorted[from as usize..to as usize].contains(&key),
            _ => false,
        }
    }

    fn insert(&mut self, key: u128) {
        self.recent.insert(key);
        if self.recent.len() >= MIN_RECENT.max(self.sorted.len() / RECENT_SHARE) {
            self.merge();
        }
    }

    /// Moves the recent ids into the sorted array and indexes it again.
    fn merge(&mut self) {
        let mut recent: Vec<u128> = std::mem::take(&mut self.recent).into_iter().collect();
        recent.sort_unstable();
        // Exactly: a doubling would leave the array up to half empty.
        self.sorted.reserve_exact(recent.len());
        self.sorted.extend(recent);
        // Two sorted runs: the stable sort finds them and merges them.
        self.sorted.sort();
        self.sorted.dedup();
        self.bucket_bits = (self.sorted.len() / BUCKET_IDS).max(1).ilog2();
        self.starts = starts(&self.sorted, self.bucket_bits);
    }
}

/// The bucket of `key` in an index by `bits` bits, those below the shard's.
fn bucket(key: u128, bits: u32) -> usize {
    match bits {
        0 => 0,
        bits => ((key << SHARD_BITS) >> (128 - bits)) as usize,
    }
}

/// Where each bucket's ids start in `sorted`, and where the last one ends.
fn starts(sorted: &[u128], bits: u32) -> Vec<u32> {
    let mut starts = Vec::with_capacity((1 << bits) + 1);
    let mut i = 0;
    for b in 0..1usize << bits {
        starts.push(i as u32);
        while i < sorted.len() && bucket(sorted[i], bits) == b {
            i += 1;
        }
    }
    starts.push(i as u32);
    starts
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

    /// Well spread keys, as the seeded hashes are.
    fn spread(n: u128, salt: u128) -> Vec<u128> {
        (0..n)
            .map(|i| (i ^ salt).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835).rotate_left(17))
            .collect()
    }

    fn held(set: &IdSet) -> usize {
        set.shards.iter().map(|s| s.recent.len() + s.sorted.len()).sum()
    }

    #[test]
    fn holds_what_was_inserted_in_any_shard() {
        let keys = spread(1000, 0);
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
        assert!(empty.shards.iter().all(|s| !s.recent.is_empty()));
    }

    /// Past a few merges into the sorted arrays, every key inserted is held
    /// once, and none other is.
    #[test]
    fn merged_keys_are_held_once_and_found() {
        let keys = spread(400_000, 0);
        let others = spread(20_000, 1 << 100);
        let mut set = IdSet::default();
        for &k in &keys {
            set.insert(k);
        }
        // Repeats, as from an object's set extended into the run's.
        for &k in &keys[..50_000] {
            set.insert(k);
        }
        assert!(set.shards.iter().all(|s| s.sorted.len() >= MIN_RECENT && s.sorted.is_sorted()));
        assert!(keys.iter().all(|&k| set.contains(k)));
        assert!(others.iter().all(|&k| !set.contains(k)));
        set.shards.iter_mut().for_each(Shard::merge);
        assert_eq!(held(&set), keys.len());
        assert!(keys.iter().all(|&k| set.contains(k)));
    }

    /// Keys alike in all but their low bits share a bucket; the extremes
    /// sit at the index's ends.
    #[test]
    fn crowded_and_extreme_keys_are_found() {
        let mut keys: Vec<u128> = (0..20_000u128).map(|i| (7 << 124) | (i * 3)).collect();
        keys.extend([0, 1, u128::MAX, u128::MAX - 1, 1 << 124, (1 << 124) - 1]);
        let mut set = IdSet::default();
        for &k in &keys {
            set.insert(k);
        }
        set.shards.iter_mut().for_each(Shard::merge);
        for k in keys.iter().step_by(97).chain(&keys[20_000..]) {
            assert!(set.contains(*k), "{k:x}");
            assert!(!set.contains(k ^ (1 << 123)), "{k:x}");
        }
        assert!(!set.contains((7 << 124) | 1));
        assert!(!set.contains(2));
    }
}
