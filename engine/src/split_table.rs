//! A hash table kept in [`PARTS`] independent parts, so that no insert ever
//! moves more than one part's entries.
//!
//! A single `hashbrown::HashTable` grows all at once: the insert that finds
//! it 7/8 full allocates a table twice the size and moves every entry. The
//! per-user tables of a sale (seats held per user, claims per user, a queue's
//! user → ticket index) grow under their shard's lock, so that one insert
//! stalls every other write to the shard: measured in process with
//! `cargo run --release -p boxoffice-bench --bin stalls`, one hold of 83 ms at
//! the 917,505th user, one join of 61 ms at the 3,670,017th
//! (docs/benchmarks.md, "The tail at equal throughput"). Split into parts by
//! bits of the hash that neither the bucket index (the low bits) nor
//! hashbrown's tag (the top 7) uses, each part grows on its own, at a 256th
//! of the size, and the parts reach their growth points at different counts:
//! after the split, the slowest of those writes took 0.5 ms (holds) and
//! 1.7 ms (joins, 4 million users). 64 parts left joins at 3.8 ms. The cost:
//! an empty table is 256 × 32 bytes, and a table of a few hundred entries
//! holds up to 256 small allocations (at most 32 KiB for 24-byte entries).
//!
//! Invariants: none of its own. An entry lives in the part its hash names,
//! so every lookup and insert of one entry must pass the same hash.

use hashbrown::hash_table::{self, HashTable};

/// Number of parts (a power of two; bits 32..40 of the hash pick one).
pub(crate) const PARTS: usize = 256;

/// The part of `hash`: bits 32..40, away from the bucket index and the tag
/// (tables of fewer than 2^32 buckets).
#[inline]
fn part(hash: u64) -> usize {
    (hash >> 32) as usize & (PARTS - 1)
}

#[derive(Clone)]
pub(crate) struct SplitTable<T> {
    parts: Box<[HashTable<T>]>,
}

impl<T> Default for SplitTable<T> {
    fn default() -> Self {
        SplitTable {
            parts: (0..PARTS).map(|_| HashTable::new()).collect(),
        }
    }
}

impl<T> SplitTable<T> {
    #[inline]
    pub(crate) fn find(&self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<&T> {
        self.parts[part(hash)].find(hash, eq)
    }

    /// `hasher` must give every entry the hash it was inserted with.
    #[inline]
    pub(crate) fn entry(
        &mut self,
        hash: u64,
        eq: impl FnMut(&T) -> bool,
        hasher: impl Fn(&T) -> u64,
    ) -> hash_table::Entry<'_, T> {
        self.parts[part(hash)].entry(hash, eq, hasher)
    }

    #[inline]
    pub(crate) fn find_entry(
        &mut self,
        hash: u64,
        eq: impl FnMut(&T) -> bool,
    ) -> Result<hash_table::OccupiedEntry<'_, T>, hash_table::AbsentEntry<'_, T>> {
        self.parts[part(hash)].find_entry(hash, eq)
    }

    /// Entries in all parts.
    pub(crate) fn len(&self) -> usize {
        self.parts.iter().map(HashTable::len).sum()
    }

    pub(crate) fn clear(&mut self) {
        self.parts.iter_mut().for_each(HashTable::clear);
    }

    /// Heap bytes of all parts.
    pub(crate) fn allocation_size(&self) -> usize {
        self.parts
            .iter()
            .map(HashTable::allocation_size)
            .sum::<usize>()
            + self.parts.len() * std::mem::size_of::<HashTable<T>>()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.parts.iter().flat_map(HashTable::iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash whose part bits vary: the test's own stand-in for a hasher.
    fn h(k: u64) -> u64 {
        k.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn insert(t: &mut SplitTable<u64>, k: u64) -> bool {
        match t.entry(h(k), |&e| e == k, |&e| h(e)) {
            hash_table::Entry::Occupied(_) => false,
            hash_table::Entry::Vacant(v) => {
                v.insert(k);
                true
            }
        }
    }

    #[test]
    fn entries_spread_over_parts_and_are_found_after_growth() {
        let mut t = SplitTable::default();
        let n = 200_000u64;
        for k in 0..n {
            assert!(insert(&mut t, k));
        }
        assert!(!insert(&mut t, 17), "a second insert of a key finds it");
        assert_eq!(t.len(), n as usize);
        for k in (0..n).step_by(7) {
            assert_eq!(t.find(h(k), |&e| e == k), Some(&k));
        }
        assert_eq!(t.find(h(n), |&e| e == n), None);
        // Every part holds some, none holds far more than its share.
        let share = n as usize / PARTS;
        for p in t.parts.iter() {
            assert!(p.len() > share / 2 && p.len() < share * 2, "{}", p.len());
        }
        // Each part grew on its own: none is bigger than its share needs.
        let biggest = t.parts.iter().map(HashTable::capacity).max().unwrap_or(0);
        assert!(biggest < share * 4, "{biggest}");
        let mut all: Vec<u64> = t.iter().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn find_entry_remove_and_clear() {
        let mut t = SplitTable::default();
        for k in 0..1_000u64 {
            insert(&mut t, k);
        }
        for k in (0..1_000u64).filter(|k| k % 2 == 0) {
            let Ok(o) = t.find_entry(h(k), |&e| e == k) else {
                panic!("{k} is in the table");
            };
            o.remove();
        }
        assert_eq!(t.len(), 500);
        assert!(t.find(h(4), |&e| e == 4).is_none());
        assert!(t.find(h(5), |&e| e == 5).is_some());
        assert!(t.find_entry(h(4), |&e| e == 4).is_err());
        t.clear();
        assert_eq!(t.len(), 0);
        assert_eq!(t.iter().count(), 0);
    }
}
