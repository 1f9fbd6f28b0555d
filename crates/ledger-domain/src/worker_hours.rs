//! [`WorkerModuleHours`]: the hours each worker has redeemed and not reversed in each module,
//! which a module's length caps (rule: `HoursExceedModuleLength`).
//!
//! Why not one `BTreeMap<(Identifier, WorkerPseudonym), u32>`, as before: the writer looks a
//! pair up for every redemption, and each comparison of such a key first compares the module
//! ids, strings kept on the heap, one pointer away from the tree's node: a profile of the writer
//! under batched redemptions had this lookup at 7 % of its CPU, most of it in `memcmp` over
//! those strings. Here the module id is looked up once, among the modules (a few hundred), and
//! the worker in that module's hash table of pseudonyms: one probe, where a tree of a hundred
//! thousand workers walks five nodes that are rarely in cache (a nested tree still cost 5 %).
//!
//! The hash is SipHash with fixed keys (`DefaultHasher::new()`), not a random seed: nothing in
//! this crate draws a random number, and a table's layout never shows outside it. A pseudonym is
//! an HMAC under the server's secret key, so callers cannot pick pseudonyms that collide.
//!
//! It iterates in the same order as the map it replaces (module id, then pseudonym), sorting
//! each module's workers as it goes, and encodes exactly as it did (a map: its length, then each
//! `(module, worker)` key and its hours), so checkpoints keep their bytes and their format
//! version.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, DefaultHasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::identity::{Identifier, WorkerPseudonym};

/// One module's workers and their hours (see the module's doc on the hasher).
type Workers = HashMap<WorkerPseudonym, u32, BuildHasherDefault<DefaultHasher>>;

/// Hours per (module, worker), grouped by module.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WorkerModuleHours {
    /// Never holds a module with no worker: an entry is only ever added with its worker. A
    /// persistent map, as the state's (see `state.rs`): a checkpoint's snapshot shares it, and a
    /// module's table is copied only when one of its workers is written after that.
    by_module: imbl::OrdMap<Identifier, Workers>,
    /// Pairs held, so that the encoding writes its length without counting.
    len: usize,
}

impl WorkerModuleHours {
    /// The hours `worker` has in `module_id`, if the pair was ever recorded.
    pub fn get(&self, module_id: &Identifier, worker: &WorkerPseudonym) -> Option<u32> {
        self.by_module.get(module_id)?.get(worker).copied()
    }

    /// The hours of the pair, to change in place, if the pair was ever recorded.
    pub fn get_mut(
        &mut self,
        module_id: &Identifier,
        worker: &WorkerPseudonym,
    ) -> Option<&mut u32> {
        self.by_module.get_mut(module_id)?.get_mut(worker)
    }

    /// Adds `hours` to the pair, recording it at 0 first when new.
    pub fn add(&mut self, module_id: &Identifier, worker: WorkerPseudonym, hours: u32) {
        // The module id is copied only for a module's first worker.
        let workers = match self.by_module.get_mut(module_id) {
            Some(workers) => workers,
            None => self.by_module.entry(module_id.clone()).or_default(),
        };
        let held = workers.entry(worker).or_insert_with(|| {
            self.len += 1;
            0
        });
        *held += hours;
    }

    /// Pairs recorded, including those whose hours were all reversed (back to 0).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every pair and its hours, by module id, then pseudonym: each module's workers are
    /// sorted on the way, so this is for encoding, printing and tests, not for the rules.
    pub fn iter(&self) -> impl Iterator<Item = ((&Identifier, &WorkerPseudonym), &u32)> + '_ {
        self.by_module.iter().flat_map(|(module_id, workers)| {
            let mut sorted: Vec<(&WorkerPseudonym, &u32)> = workers.iter().collect();
            sorted.sort_unstable_by_key(|(worker, _)| *worker);
            sorted
                .into_iter()
                .map(move |(worker, hours)| ((module_id, worker), hours))
        })
    }
}

impl<'a> IntoIterator for &'a WorkerModuleHours {
    type Item = ((&'a Identifier, &'a WorkerPseudonym), &'a u32);
    type IntoIter = Box<dyn Iterator<Item = Self::Item> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl FromIterator<((Identifier, WorkerPseudonym), u32)> for WorkerModuleHours {
    fn from_iter<T: IntoIterator<Item = ((Identifier, WorkerPseudonym), u32)>>(pairs: T) -> Self {
        let mut hours = WorkerModuleHours::default();
        for ((module_id, worker), held) in pairs {
            hours.add(&module_id, worker, held);
        }
        hours
    }
}

/// As the `BTreeMap` it replaces printed: `{(module, worker): hours, …}`.
impl fmt::Debug for WorkerModuleHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// As the `BTreeMap<(Identifier, WorkerPseudonym), u32>` it replaces encoded: a map of its
/// length, each key a pair (a tuple of references encodes as the tuple of values).
impl Serialize for WorkerModuleHours {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.len))?;
        for (pair, hours) in self.iter() {
            map.serialize_entry(&pair, hours)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for WorkerModuleHours {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Read as the map it was written as; a key given twice keeps its last hours, as the
        // `BTreeMap` did.
        let pairs = BTreeMap::<(Identifier, WorkerPseudonym), u32>::deserialize(deserializer)?;
        Ok(pairs.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(id: &str) -> Identifier {
        Identifier::parse(id).expect("identifier")
    }

    fn worker(byte: u8) -> WorkerPseudonym {
        WorkerPseudonym::from_bytes([byte; 32])
    }

    /// The same pairs in the map it replaces.
    fn as_flat_map(hours: &WorkerModuleHours) -> BTreeMap<(Identifier, WorkerPseudonym), u32> {
        hours
            .iter()
            .map(|((module_id, worker), held)| ((module_id.clone(), *worker), *held))
            .collect()
    }

    proptest::proptest! {
        /// Whatever is added, in whatever order, the pairs read, iterate, print and encode
        /// exactly as a `BTreeMap<(Identifier, WorkerPseudonym), u32>` given the same additions.
        #[test]
        fn adds_read_iterate_print_and_encode_as_the_flat_map_they_replace(
            additions in proptest::collection::vec((0u8..4, 0u8..6, 0u32..20), 0..60)
        ) {
            let modules = ["MOD-A", "MOD-B.2", "a_module", "Z9"];
            let mut hours = WorkerModuleHours::default();
            let mut flat: BTreeMap<(Identifier, WorkerPseudonym), u32> = BTreeMap::new();
            for (module_index, worker_byte, added) in additions {
                let module_id = module(modules[usize::from(module_index)]);
                hours.add(&module_id, worker(worker_byte), added);
                *flat.entry((module_id, worker(worker_byte))).or_default() += added;
            }
            proptest::prop_assert_eq!(&as_flat_map(&hours), &flat);
            proptest::prop_assert_eq!(hours.len(), flat.len());
            for ((module_id, worker), held) in &flat {
                proptest::prop_assert_eq!(hours.get(module_id, worker), Some(*held));
            }
            proptest::prop_assert_eq!(format!("{hours:?}"), format!("{flat:?}"));
            let bytes = postcard::to_stdvec(&hours).expect("encoded");
            proptest::prop_assert_eq!(&bytes, &postcard::to_stdvec(&flat).expect("encoded"));
            let decoded: WorkerModuleHours = postcard::from_bytes(&bytes).expect("decoded");
            proptest::prop_assert_eq!(&decoded, &hours);
        }
    }

    #[test]
    fn a_pair_never_recorded_is_absent_and_a_reversed_one_stays_at_zero() {
        let mut hours = WorkerModuleHours::default();
        assert_eq!(hours.get(&module("MOD-A"), &worker(1)), None);
        assert!(hours.is_empty());
        hours.add(&module("MOD-A"), worker(1), 3);
        *hours
            .get_mut(&module("MOD-A"), &worker(1))
            .expect("recorded") -= 3;
        assert_eq!(hours.get(&module("MOD-A"), &worker(1)), Some(0));
        assert_eq!(hours.get(&module("MOD-A"), &worker(2)), None);
        assert_eq!(hours.get(&module("MOD-B"), &worker(1)), None);
        assert_eq!(hours.len(), 1);
    }
}
