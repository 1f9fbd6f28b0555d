//! [`SmallMap`]: an ordered map kept as a sorted `Vec`, for the many small maps held per
//! company (its registrations per year, its batches, its issued vouchers per year and type; in
//! the projections its wallet and its profiles).
//!
//! Why: a `BTreeMap` allocates a whole node (room for eleven entries) for its first entry. With
//! ~105 000 companies after ten years, holding one or two entries each, those nearly empty nodes
//! were most of the decision state's and the projections' memory (about 2 KB per company in
//! the state alone). A sorted `Vec` holds exactly its entries, and for a handful of them a
//! binary search is as fast as a tree's.
//!
//! It iterates in key order and encodes exactly as a `BTreeMap` does (a map: its length, then
//! each key and value in order), so checkpoints keep their bytes.

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ordered map of few entries: a `Vec` sorted by key, without duplicates.
#[derive(Clone, PartialEq, Eq)]
pub struct SmallMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    pub fn new() -> Self {
        SmallMap::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn find<Q>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries
            .binary_search_by(|(entry, _)| entry.borrow().cmp(key))
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let index = self.find(key).ok()?;
        self.entries.get(index).map(|(_, value)| value)
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let index = self.find(key).ok()?;
        self.entries.get_mut(index).map(|(_, value)| value)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(key).is_ok()
    }

    /// Inserts or replaces; the value replaced, as `BTreeMap::insert` returns it.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(index) => self
                .entries
                .get_mut(index)
                .map(|(_, old)| std::mem::replace(old, value)),
            Err(index) => {
                self.entries.insert(index, (key, value));
                None
            }
        }
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let index = self.find(key).ok()?;
        Some(self.entries.remove(index).1)
    }

    /// The value of `key`, inserted as `V::default()` when missing: `entry(key).or_default()`.
    pub fn entry_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let index = match self.find(&key) {
            Ok(index) => index,
            Err(index) => {
                self.entries.insert(index, (key, V::default()));
                index
            }
        };
        &mut self.entries[index].1
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.entries.iter().map(|(key, value)| (key, value))
    }

    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&K, &mut V)> {
        self.entries.iter_mut().map(|(key, value)| (&*key, value))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.entries.iter().map(|(key, _)| key)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, value)| value)
    }

    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, value)| value)
    }

    /// The entries whose keys are in `range`, in key order.
    pub fn range<R: RangeBounds<K>>(&self, range: R) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        let start = match range.start_bound() {
            Bound::Included(low) => self.entries.partition_point(|(key, _)| key < low),
            Bound::Excluded(low) => self.entries.partition_point(|(key, _)| key <= low),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(high) => self.entries.partition_point(|(key, _)| key <= high),
            Bound::Excluded(high) => self.entries.partition_point(|(key, _)| key < high),
            Bound::Unbounded => self.entries.len(),
        };
        self.entries
            .get(start..end.max(start))
            .unwrap_or_default()
            .iter()
            .map(|(key, value)| (key, value))
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SmallMap<K, V> {
    /// As `BTreeMap`'s: sorted by key, the last of equal keys kept.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut map = SmallMap::new();
        map.extend(entries);
        map
    }
}

impl<K: Ord, V> Extend<(K, V)> for SmallMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, entries: I) {
        for (key, value) in entries {
            self.insert(key, value);
        }
    }
}

impl<'a, K: Ord, V> IntoIterator for &'a SmallMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(key, value)| (key, value))
    }
}

/// As `BTreeMap`'s: panics when the key is missing, so it is for tests and callers that know
/// the key is there; the ledger's own code uses [`SmallMap::get`].
impl<K: Ord + Borrow<Q>, Q: Ord + ?Sized, V> std::ops::Index<&Q> for SmallMap<K, V> {
    type Output = V;

    fn index(&self, key: &Q) -> &V {
        match self.get(key) {
            Some(value) => value,
            None => panic!("no entry of that key in the map"),
        }
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SmallMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(key, value)| (key, value)))
            .finish()
    }
}

impl<K: Serialize, V: Serialize> Serialize for SmallMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.entries.iter().map(|(key, value)| (key, value)))
    }
}

impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for SmallMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<K, V>(PhantomData<(K, V)>);

        impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for MapVisitor<K, V> {
            type Value = SmallMap<K, V>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                // The length comes from outside: a hint, capped, never trusted for memory.
                let capacity = access.size_hint().unwrap_or(0).min(SIZE_HINT_ENTRIES_MAX);
                let mut map = SmallMap {
                    entries: Vec::with_capacity(capacity),
                };
                while let Some((key, value)) = access.next_entry()? {
                    // Encoded in key order, so each entry goes last: no shifting.
                    match map.entries.last() {
                        Some((last, _)) if *last >= key => {
                            map.insert(key, value);
                        }
                        _ => map.entries.push((key, value)),
                    }
                }
                Ok(map)
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

/// Entries reserved ahead from an encoded length: the maps are small, and a damaged length
/// must not reserve gigabytes.
const SIZE_HINT_ENTRIES_MAX: usize = 64;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn it_reads_and_encodes_as_a_btree_map_does() {
        let pairs = [(5, "e"), (1, "a"), (3, "c"), (1, "z"), (9, "i")];
        let tree: BTreeMap<i32, &str> = pairs.iter().copied().collect();
        let small: SmallMap<i32, &str> = pairs.iter().copied().collect();
        assert_eq!(
            small.iter().collect::<Vec<_>>(),
            tree.iter().collect::<Vec<_>>()
        );
        assert_eq!(
            postcard::to_stdvec(&small).expect("encoded"),
            postcard::to_stdvec(&tree).expect("encoded")
        );
        let bytes = postcard::to_stdvec(&tree).expect("encoded");
        let decoded: SmallMap<i32, String> = postcard::from_bytes(&bytes).expect("decoded");
        assert_eq!(decoded.get(&1).map(String::as_str), Some("z"));
        assert_eq!(format!("{small:?}"), format!("{tree:?}"));
        for range in [(0, 4), (1, 5), (3, 3), (6, 100), (10, 20)] {
            assert_eq!(
                small.range(range.0..=range.1).collect::<Vec<_>>(),
                tree.range(range.0..=range.1).collect::<Vec<_>>(),
                "{range:?}"
            );
            assert_eq!(
                small.range(..range.1).next_back(),
                tree.range(..range.1).next_back()
            );
        }
    }

    #[test]
    fn insert_remove_and_default_entries_behave_as_a_btree_map() {
        let mut tree = BTreeMap::new();
        let mut small = SmallMap::new();
        for (step, key) in [4u8, 2, 4, 7, 1, 2, 9, 0, 7].into_iter().enumerate() {
            assert_eq!(small.insert(key, step), tree.insert(key, step));
            *small.entry_or_default(key.wrapping_add(1)) += 1;
            *tree.entry(key.wrapping_add(1)).or_default() += 1;
            if step % 3 == 0 {
                assert_eq!(small.remove(&2), tree.remove(&2));
            }
            assert_eq!(
                small.iter().collect::<Vec<_>>(),
                tree.iter().collect::<Vec<_>>()
            );
            assert_eq!(small.len(), tree.len());
        }
    }
}
