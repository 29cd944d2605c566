//! An insertion-ordered map for the handful of keys of one JSON object or
//! one event's columns. Up to [`SMALL`] entries a linear scan beats hashing
//! (and allocates one vector); past that it becomes an `IndexMap`, so that an
//! object with thousands of keys stays linear. Either way a key inserted
//! again keeps its first position and takes the new value, as `IndexMap`
//! does.
//!
//! Keys are mostly inserted once (an object's members, as they are read),
//! so a small map keeps a 64-bit mask of its keys' cheap fingerprints: a key
//! whose bit is clear is new without a scan: the parse bench, whose events
//! are split into ~40 members, took 3.7% less time.

use std::borrow::Borrow;
use std::hash::Hash;

use indexmap::IndexMap;

use super::json::FastHash;

const SMALL: usize = 32;

#[derive(Debug)]
pub enum SmallMap<K, V> {
    /// The entries, and the bits of their keys' [`fingerprint`]s.
    Small(Vec<(K, V)>, u64),
    Large(IndexMap<K, V, FastHash>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap::Small(Vec::new(), 0)
    }
}

/// One of 64 bits for `key`, from its length and its first and last bytes,
/// which tell the keys of one object apart well enough.
fn fingerprint(key: &str) -> u64 {
    let b = key.as_bytes();
    let (first, last) = (b.first().copied().unwrap_or(0), b.last().copied().unwrap_or(0));
    let mixed = (b.len() as u32).wrapping_mul(0x9E37_79B1) ^ u32::from(first) << 8 ^ u32::from(last);
    1 << (mixed.wrapping_mul(0x85EB_CA6B) >> 26)
}

impl<K: Borrow<str> + Hash + Eq, V> SmallMap<K, V> {
    /// Room for `n` entries before the first reallocation (objects of a
    /// stream are about the same size, so callers know a good guess).
    pub fn with_capacity(n: usize) -> Self {
        SmallMap::Small(Vec::with_capacity(n.min(SMALL)), 0)
    }

    pub fn len(&self) -> usize {
        match self {
            SmallMap::Small(entries, _) => entries.len(),
            SmallMap::Large(map) => map.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        match self {
            SmallMap::Small(_, seen) if *seen & fingerprint(key) == 0 => None,
            SmallMap::Small(entries, _) => entries.iter().find(|(k, _)| k.borrow() == key).map(|(_, v)| v),
            SmallMap::Large(map) => map.get(key),
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        match self {
            SmallMap::Small(_, seen) if *seen & fingerprint(key) == 0 => None,
            SmallMap::Small(entries, _) => {
                entries.iter_mut().find(|(k, _)| k.borrow() == key).map(|(_, v)| v)
            }
            SmallMap::Large(map) => map.get_mut(key),
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn insert(&mut self, key: K, value: V) {
        match self.get_mut(key.borrow()) {
            Some(old) => *old = value,
            None => self.append(key, value),
        }
    }

    /// Adds a key the caller has just looked up and not found.
    pub fn append(&mut self, key: K, value: V) {
        match self {
            SmallMap::Small(entries, seen) if entries.len() < SMALL => {
                *seen |= fingerprint(key.borrow());
                entries.push((key, value));
            }
            SmallMap::Small(entries, _) => {
                let mut map = IndexMap::with_capacity_and_hasher(2 * SMALL, FastHash::default());
                map.extend(std::mem::take(entries));
                map.insert(key, value);
                *self = SmallMap::Large(map);
            }
            SmallMap::Large(map) => {
                map.insert(key, value);
            }
        }
    }

    pub fn iter(&self) -> Iter<'_, K, V> {
        match self {
            SmallMap::Small(entries, _) => Iter::Small(entries.iter()),
            SmallMap::Large(map) => Iter::Large(map.iter()),
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }
}

impl<K: Borrow<str> + Hash + Eq, V> Extend<(K, V)> for SmallMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, items: I) {
        for (k, v) in items {
            self.insert(k, v);
        }
    }
}

impl<K, V> IntoIterator for SmallMap<K, V> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    fn into_iter(self) -> Self::IntoIter {
        match self {
            SmallMap::Small(entries, _) => IntoIter::Small(entries.into_iter()),
            SmallMap::Large(map) => IntoIter::Large(map.into_iter()),
        }
    }
}

pub enum Iter<'a, K, V> {
    Small(std::slice::Iter<'a, (K, V)>),
    Large(indexmap::map::Iter<'a, K, V>),
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(entries) => entries.next().map(|(k, v)| (k, v)),
            Iter::Large(entries) => entries.next(),
        }
    }
}

pub enum IntoIter<K, V> {
    Small(std::vec::IntoIter<(K, V)>),
    Large(indexmap::map::IntoIter<K, V>),
}

impl<K, V> Iterator for IntoIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            IntoIter::Small(entries) => entries.next(),
            IntoIter::Large(entries) => entries.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever its size, it keeps IndexMap's order and values.
        #[test]
        fn behaves_as_an_index_map(keys in prop::collection::vec(0..40u8, 0..100)) {
            let mut small = SmallMap::default();
            let mut index = IndexMap::new();
            for (i, k) in keys.iter().enumerate() {
                small.insert(k.to_string(), i);
                index.insert(k.to_string(), i);
            }
            let got: Vec<(String, usize)> = small.iter().map(|(k, v)| (k.clone(), *v)).collect();
            let want: Vec<(String, usize)> = index.iter().map(|(k, v)| (k.clone(), *v)).collect();
            prop_assert_eq!(got, want);
            for k in 0..40u8 {
                prop_assert_eq!(small.get(&k.to_string()), index.get(&k.to_string()));
            }
        }
    }
}
