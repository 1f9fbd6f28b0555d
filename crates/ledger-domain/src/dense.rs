//! Decoding of the persistent maps ([`OrdMap`], [`OrdSet`]) into full nodes, for
//! `#[serde(deserialize_with = ...)]` on the state's and the projections' fields.
//!
//! Why: a checkpoint holds each map's entries in key order, and `imbl`'s own decoding inserts
//! them in that order. Its B-tree splits a full leaf at the middle, so a leaf filled from the
//! left is left half full for good: after a start, every leaf of every map held 8 entries in
//! room for 16, and the maps took about twice the memory of their entries (the usage codes
//! alone 240 MB of a ten-year history's ~350 MB). Here the entries at even places are inserted
//! first (leaves of 8), then those at odd places, each of which lands between two neighbours
//! already in a leaf: the leaves end full.
//!
//! The encoding is unchanged (a length, then the entries), and so is the map decoded; entries
//! out of order (bytes this ledger did not write) are refused, as a map's decoding should.

use std::fmt;
use std::marker::PhantomData;

use imbl::{OrdMap, OrdSet};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The most entries reserved ahead from a length read in the bytes; more grow as they come.
const RESERVED_ENTRIES_MAX: usize = 1 << 16;

/// An [`OrdMap`] decoded into full leaves (see the module's doc).
pub fn ord_map<'de, D, K, V>(deserializer: D) -> Result<OrdMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + Clone,
    V: Deserialize<'de> + Clone,
{
    struct Entries<K, V>(PhantomData<(K, V)>);

    impl<'de, K, V> Visitor<'de> for Entries<K, V>
    where
        K: Deserialize<'de> + Ord + Clone,
        V: Deserialize<'de> + Clone,
    {
        type Value = OrdMap<K, V>;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a map with its keys in increasing order")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut map = OrdMap::new();
            let size_hint = access.size_hint();
            insert_dense(
                || access.next_entry::<K, V>(),
                |(key, _)| key,
                |(key, value)| {
                    map.insert(key, value);
                },
                size_hint,
                "map keys out of order",
            )?;
            Ok(map)
        }
    }

    deserializer.deserialize_map(Entries(PhantomData))
}

/// An [`OrdSet`] decoded into full leaves (see the module's doc).
pub fn ord_set<'de, D, K>(deserializer: D) -> Result<OrdSet<K>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + Clone,
{
    struct Members<K>(PhantomData<K>);

    impl<'de, K> Visitor<'de> for Members<K>
    where
        K: Deserialize<'de> + Ord + Clone,
    {
        type Value = OrdSet<K>;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a set with its members in increasing order")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut set = OrdSet::new();
            let size_hint = access.size_hint();
            insert_dense(
                || access.next_element::<K>(),
                |member| member,
                |member| {
                    set.insert(member);
                },
                size_hint,
                "set members out of order",
            )?;
            Ok(set)
        }
    }

    deserializer.deserialize_seq(Members(PhantomData))
}

/// Hands the items `next` reads to `insert`, those at even places first, then those at odd
/// places (see the module's doc); refuses, with `out_of_order`, a key (`key_of`) that is not
/// greater than the one before.
fn insert_dense<T, K, E>(
    mut next: impl FnMut() -> Result<Option<T>, E>,
    key_of: impl for<'a> Fn(&'a T) -> &'a K,
    mut insert: impl FnMut(T),
    size_hint: Option<usize>,
    out_of_order: &'static str,
) -> Result<(), E>
where
    K: Ord + Clone,
    E: serde::de::Error,
{
    let mut odd: Vec<T> = Vec::with_capacity(size_hint.unwrap_or(0).min(RESERVED_ENTRIES_MAX) / 2);
    let mut last: Option<K> = None;
    let mut index = 0usize;
    while let Some(item) = next()? {
        let key = key_of(&item);
        if last.as_ref().is_some_and(|last| last >= key) {
            return Err(E::custom(out_of_order));
        }
        last = Some(key.clone());
        if index % 2 == 0 {
            insert(item);
        } else {
            odd.push(item);
        }
        index += 1;
    }
    odd.into_iter().for_each(insert);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Maps {
        #[serde(deserialize_with = "ord_map")]
        map: OrdMap<u32, String>,
        #[serde(deserialize_with = "ord_set")]
        set: OrdSet<u64>,
    }

    fn maps(len: u32) -> Maps {
        Maps {
            map: (0..len).map(|key| (key * 3, format!("v{key}"))).collect(),
            set: (0..u64::from(len)).map(|member| member * 7 + 1).collect(),
        }
    }

    proptest::proptest! {
        #[test]
        fn decodes_the_map_and_set_it_encoded(len in 0u32..2_000) {
            let written = maps(len);
            let bytes = postcard::to_stdvec(&written).unwrap_or_default();
            let read = postcard::from_bytes::<Maps>(&bytes).ok();
            proptest::prop_assert_eq!(read.as_ref(), Some(&written));
            // And it encodes back to the same bytes.
            let again = read.and_then(|read| postcard::to_stdvec(&read).ok());
            proptest::prop_assert_eq!(again, Some(bytes));
        }
    }

    #[test]
    fn keys_out_of_order_or_repeated_are_refused() {
        // A map as postcard writes it: its length, then each key and value.
        let in_order: Vec<(u32, String)> = vec![(1, "a".into()), (2, "b".into())];
        let swapped: Vec<(u32, String)> = vec![(2, "b".into()), (1, "a".into())];
        let repeated: Vec<(u32, String)> = vec![(1, "a".into()), (1, "b".into())];
        let decode = |entries: &Vec<(u32, String)>| {
            let mut bytes = postcard::to_stdvec(entries).unwrap_or_default();
            bytes.extend(postcard::to_stdvec(&Vec::<u64>::new()).unwrap_or_default());
            postcard::from_bytes::<Maps>(&bytes).map(|maps| maps.map.len())
        };
        assert_eq!(decode(&in_order).ok(), Some(2));
        assert!(decode(&swapped).is_err());
        assert!(decode(&repeated).is_err());

        let set_bytes = |members: &[u64]| {
            let mut bytes = postcard::to_stdvec(&Vec::<(u32, String)>::new()).unwrap_or_default();
            bytes.extend(postcard::to_stdvec(members).unwrap_or_default());
            postcard::from_bytes::<Maps>(&bytes).map(|maps| maps.set.len())
        };
        assert_eq!(set_bytes(&[1, 5, 9]).ok(), Some(3));
        assert!(set_bytes(&[5, 1]).is_err());
        assert!(set_bytes(&[5, 5]).is_err());
    }
}
