//! Exact positions in O(log n) (the position half of I3).
//!
//! The line is a sequence of slots, one per ticket in queue order. A bitset
//! says which slots are still live (1 bit each); a Fenwick tree holds the live
//! count of every 64-slot block (one `u32` per 64 slots). The position of a
//! slot is the Fenwick prefix over the blocks before it plus a popcount inside
//! its block: O(log(n/64)) whatever leaves from the middle. The front is found
//! by scanning words from a cursor that only moves forward.

use std::fmt;

#[derive(Default)]
pub(crate) struct Line {
    words: Vec<u64>,
    /// Fenwick tree over the popcounts of `words` (1-based layout: `tree[i-1]`
    /// covers blocks `(i - lowbit(i), i]`).
    tree: Vec<u32>,
    live: u64,
    /// Every word before `head` is zero.
    head: usize,
}

impl fmt::Debug for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Line")
            .field("slots", &(self.words.len() * 64))
            .field("live", &self.live)
            .field("head", &self.head)
            .finish()
    }
}

#[inline]
fn lowbit(i: usize) -> usize {
    i & i.wrapping_neg()
}

impl Line {
    /// A line over `words.len() * 64` slots with the given live bits (O(n)).
    pub(crate) fn from_words(words: Vec<u64>) -> Self {
        let n = words.len();
        let mut tree: Vec<u32> = words.iter().map(|w| w.count_ones()).collect();
        for i in 1..=n {
            let j = i + lowbit(i);
            if j <= n {
                tree[j - 1] = tree[j - 1].wrapping_add(tree[i - 1]);
            }
        }
        let live = words.iter().map(|w| u64::from(w.count_ones())).sum();
        let mut line = Line {
            words,
            tree,
            live,
            head: 0,
        };
        line.advance_head();
        line
    }

    /// Live slots.
    #[inline]
    pub(crate) fn live(&self) -> u64 {
        self.live
    }

    /// Live slots in blocks `[0, blocks)`.
    #[inline]
    fn prefix(&self, blocks: usize) -> u64 {
        let mut i = blocks.min(self.tree.len());
        let mut s = 0u64;
        while i > 0 {
            s += u64::from(self.tree[i - 1]);
            i &= i - 1;
        }
        s
    }

    fn bump(&mut self, block: usize, up: bool) {
        let mut i = block + 1;
        while i <= self.tree.len() {
            let t = &mut self.tree[i - 1];
            *t = if up {
                t.wrapping_add(1)
            } else {
                t.wrapping_sub(1)
            };
            i += lowbit(i);
        }
    }

    /// Grow so that `slot` exists (new slots are dead).
    pub(crate) fn ensure(&mut self, slot: u32) {
        let need = slot as usize / 64 + 1;
        while self.words.len() < need {
            let i = self.words.len() + 1;
            // A new Fenwick node covers (i - lowbit(i), i]; block i is empty.
            let v = self.prefix(i - 1) - self.prefix(i - lowbit(i));
            self.words.push(0);
            self.tree.push(v as u32);
        }
    }

    /// Mark `slot` live (it must exist: see [`Line::ensure`]).
    pub(crate) fn insert(&mut self, slot: u32) -> bool {
        let (w, bit) = (slot as usize / 64, 1u64 << (slot % 64));
        match self.words.get_mut(w) {
            Some(word) if *word & bit == 0 => {
                *word |= bit;
                self.live += 1;
                self.bump(w, true);
                if w < self.head {
                    self.head = w;
                }
                true
            }
            _ => false,
        }
    }

    pub(crate) fn remove(&mut self, slot: u32) -> bool {
        let (w, bit) = (slot as usize / 64, 1u64 << (slot % 64));
        match self.words.get_mut(w) {
            Some(word) if *word & bit != 0 => {
                *word &= !bit;
                self.live -= 1;
                self.bump(w, false);
                true
            }
            _ => false,
        }
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, slot: u32) -> bool {
        self.words
            .get(slot as usize / 64)
            .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    /// Live slots before `slot`.
    #[inline]
    pub(crate) fn rank(&self, slot: u32) -> u64 {
        let w = slot as usize / 64;
        match self.words.get(w) {
            Some(word) => {
                let below = word & ((1u64 << (slot % 64)) - 1);
                self.prefix(w) + u64::from(below.count_ones())
            }
            None => self.live,
        }
    }

    /// The first live slot at or after `from`.
    pub(crate) fn next_live(&self, from: u64) -> Option<u32> {
        let mut w = usize::try_from(from / 64).ok()?;
        let mut bits = if w < self.head {
            w = self.head;
            *self.words.get(w)?
        } else {
            self.words.get(w)? & (!0u64 << (from % 64))
        };
        loop {
            if bits != 0 {
                let slot = w as u64 * 64 + u64::from(bits.trailing_zeros());
                return u32::try_from(slot).ok();
            }
            w += 1;
            bits = *self.words.get(w)?;
        }
    }

    /// Move the front cursor past dead words (amortised O(1)).
    pub(crate) fn advance_head(&mut self) {
        while self.words.get(self.head).is_some_and(|&w| w == 0) {
            self.head += 1;
        }
    }

    /// First slot the front cursor has not passed.
    pub(crate) fn head_slot(&self) -> u64 {
        self.head as u64 * 64
    }

    /// Bytes held (for memory accounting in tests and benchmarks).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8 + self.tree.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_matches_naive_under_churn() {
        let mut line = Line::default();
        let mut naive = vec![false; 5000];
        let mut x = 12345u64;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let slot = (x % 5000) as u32;
            line.ensure(slot);
            if step % 3 == 0 {
                assert_eq!(line.remove(slot), naive[slot as usize]);
                naive[slot as usize] = false;
            } else {
                assert_eq!(line.insert(slot), !naive[slot as usize]);
                naive[slot as usize] = true;
            }
            if step % 97 == 0 {
                line.advance_head();
                let mut r = 0;
                for (s, &l) in naive.iter().enumerate() {
                    if (s as u32) < line.words.len() as u32 * 64 {
                        assert_eq!(line.rank(s as u32), r, "slot {s}");
                    }
                    r += u64::from(l);
                }
                assert_eq!(line.live(), r);
                let first = naive.iter().position(|&l| l).map(|s| s as u32);
                assert_eq!(line.next_live(0), first);
            }
        }
        let rebuilt = Line::from_words(line.words.clone());
        assert_eq!(rebuilt.tree, line.tree);
        assert!(line.contains(line.next_live(0).unwrap_or(0)) || line.live() == 0);
    }
}
