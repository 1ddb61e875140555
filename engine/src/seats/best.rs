//! Best-available: `count` adjacent free seats in one row range of a category.
//!
//! Rules, in order:
//! 1. never create a lone free seat (a free seat with no free neighbour left
//!    in its range) when some choice of the same size creates none;
//! 2. better ranges first (layout order is quality order);
//! 3. nearer the middle of the range.
//!
//! The pick is spread over the best [`BEST_SPREAD`] candidates by a hash of
//! the map's seed and its hold counter: deterministic, and recorded in the
//! `Held` change anyway.
//!
//! Speed: each range has a summary of the lengths of its runs of free seats
//! (a bit mask, rebuilt by the next search that meets the range after any of
//! its seats changed). Per category the summaries sit in an OR segment tree
//! in quality order, so a search jumps straight to the next range that can
//! offer a fitting block, in O(log ranges), and stops once it has enough clean
//! candidates; a sold-out category answers from the root. A range scan reads
//! the free-seat bit set 64 seats at a time.
//!
//! Invariants: none of its own; it proposes free seats, and the hold in
//! [`super::SeatMap`] (I1) takes them.

use super::{SeatMap, BEST_SPREAD};
use siphasher::sip::SipHasher13;
use std::hash::Hasher;

/// Summary of a range not scanned since its seats last changed. (A real
/// summary never has bit 0 set: runs are at least one seat long.)
pub(super) const RUNS_UNKNOWN: u128 = u128::MAX;

/// Bit of a run length in a summary: bit `L` for a run of `L` seats, bit 127
/// for 127 or more.
fn run_bit(len: u32) -> u32 {
    len.min(127)
}

/// Can a range with this run summary offer a block of `count` that leaves no
/// lone seat (`clean`), or one that leaves one (`!clean`)? Conservative for
/// counts near 127 and for unknown summaries.
fn may_offer(runs: u128, count: u32, clean: bool) -> bool {
    if runs == RUNS_UNKNOWN {
        return true;
    }
    let has = |len: u32| runs >> run_bit(len) & 1 == 1;
    if clean {
        // A run of exactly `count`, or of `count + 2` or more.
        has(count) || runs >> run_bit(count.saturating_add(2)) != 0
    } else {
        // A run of `count + 1`: either end leaves one seat.
        has(count.saturating_add(1))
    }
}

/// Run summaries of one category's ranges, in quality order, in an OR
/// segment tree: a node is the OR of its children, so a node can offer a
/// block iff one of its leaves can (the tests in [`may_offer`] are each on
/// one bit or on "any bit from here up").
#[derive(Clone, Debug)]
pub(super) struct RunTree {
    /// Number of leaves (a power of two); leaf `i` is node `size + i`.
    size: usize,
    len: usize,
    nodes: Vec<u128>,
}

impl RunTree {
    /// `len` ranges, none scanned yet.
    pub fn new(len: usize) -> Self {
        let size = len.next_power_of_two();
        let mut nodes = vec![0; 2 * size];
        nodes[size..size + len].fill(RUNS_UNKNOWN);
        for k in (1..size).rev() {
            nodes[k] = nodes[2 * k] | nodes[2 * k + 1];
        }
        RunTree { size, len, nodes }
    }

    /// A seat of range `rank` changed. Cheap when it already was unknown
    /// (then so are its ancestors).
    pub fn invalidate(&mut self, rank: usize) {
        let mut k = self.size + rank;
        while k >= 1 && k < self.nodes.len() && self.nodes[k] != RUNS_UNKNOWN {
            self.nodes[k] = RUNS_UNKNOWN;
            k /= 2;
        }
    }

    fn set(&mut self, rank: usize, runs: u128) {
        let mut k = self.size + rank;
        let Some(leaf) = self.nodes.get_mut(k) else {
            return;
        };
        *leaf = runs;
        k /= 2;
        while k >= 1 {
            let v = self.nodes[2 * k] | self.nodes[2 * k + 1];
            if self.nodes[k] == v {
                break;
            }
            self.nodes[k] = v;
            k /= 2;
        }
    }

    /// The first rank at or after `from` whose summary passes `pred`.
    fn find(&self, from: usize, pred: &impl Fn(u128) -> bool) -> Option<usize> {
        self.descend(1, 0, self.size, from, pred)
    }

    fn descend(
        &self,
        node: usize,
        lo: usize,
        hi: usize,
        from: usize,
        pred: &impl Fn(u128) -> bool,
    ) -> Option<usize> {
        if hi <= from || !pred(self.nodes[node]) {
            return None;
        }
        if hi - lo == 1 {
            return (lo < self.len).then_some(lo);
        }
        let mid = (lo + hi) / 2;
        self.descend(2 * node, lo, mid, from, pred)
            .or_else(|| self.descend(2 * node + 1, mid, hi, from, pred))
    }
}

/// A candidate block; ordered best first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    /// Position of the range among the category's ranges.
    rank: u32,
    /// |block centre − range centre|, in half seats.
    dist: u32,
    /// Dense index of the first seat.
    start: u32,
}

/// The best `BEST_SPREAD` candidates offered so far, sorted.
#[derive(Debug, Default)]
struct Top {
    items: [Candidate; BEST_SPREAD],
    len: usize,
}

impl Top {
    fn full(&self) -> bool {
        self.len >= BEST_SPREAD
    }

    fn as_slice(&self) -> &[Candidate] {
        &self.items[..self.len]
    }

    fn offer(&mut self, c: Candidate) {
        if self.full() && self.items[BEST_SPREAD - 1] <= c {
            return;
        }
        let at = self.as_slice().partition_point(|x| *x < c);
        let end = self.len.min(BEST_SPREAD - 1);
        self.items.copy_within(at..end, at + 1);
        self.items[at] = c;
        self.len = (self.len + 1).min(BEST_SPREAD);
    }
}

impl SeatMap {
    /// The seats of the chosen block, or `None` if no range of `category` has
    /// `count` adjacent free seats. Expects due holds to be swept.
    pub(super) fn find_best(&mut self, category: u32, count: u32) -> Option<Vec<u32>> {
        if self.categories.get(category as usize)?.free < u64::from(count) {
            return None;
        }
        // Blocks that leave no lone seat; only if there are none anywhere,
        // blocks that do.
        let mut top = self.search(category, count, true);
        if top.len == 0 {
            top = self.search(category, count, false);
        }
        if top.len == 0 {
            return None;
        }
        let mut h = SipHasher13::new_with_key(&self.seed_key());
        h.write(&self.seed[16..]);
        h.write_u64(self.holds_made);
        let pick = top.items[(h.finish() % top.len as u64) as usize];
        Some((pick.start..pick.start + count).collect())
    }

    fn search(&mut self, category: u32, count: u32, clean: bool) -> Top {
        let mut top = Top::default();
        let (Some(cat), Some(tree)) = (
            self.layout.categories.get(category as usize),
            self.run_trees.get_mut(category as usize),
        ) else {
            return top;
        };
        let pred = |runs: u128| may_offer(runs, count, clean);
        let mut from = 0;
        // Ranks come in order, so once the top is full no later range can
        // get into it.
        while !top.full() {
            let Some(rank) = tree.find(from, &pred) else {
                break;
            };
            let Some(r) = cat
                .ranges
                .get(rank)
                .and_then(|&ri| self.layout.ranges.get(ri as usize))
            else {
                break;
            };
            let mut runs = 0u128;
            for (start, len) in self.free.runs(r.base as usize, r.end() as usize) {
                // Runs lie inside the range, whose offsets fit a u32.
                let (start, len) = (start as u32, len as u32);
                runs |= 1 << run_bit(len);
                if len >= count {
                    let run = Run {
                        rank: rank as u32,
                        base: r.base,
                        range_len: r.len,
                        start,
                        len,
                    };
                    run.offer(count, clean, &mut top);
                }
            }
            tree.set(rank, runs);
            from = rank + 1;
        }
        top
    }

    fn seed_key(&self) -> [u8; 16] {
        let mut k = [0u8; 16];
        k.copy_from_slice(&self.seed[..16]);
        k
    }
}

/// A run of free seats `start..start + len` (dense indexes) in the range
/// `base..base + range_len`, the range being number `rank` of its category.
struct Run {
    rank: u32,
    base: u32,
    range_len: u32,
    start: u32,
    len: u32,
}

impl Run {
    /// Offers this run's blocks of `count` seats of the wanted class (leaving
    /// no lone seat, or leaving one), nearest the middle of the range first.
    fn offer(&self, count: u32, clean: bool, top: &mut Top) {
        let (len, range_len) = (self.len, self.range_len);
        // Offsets in the range; a block at offset `s` has its centre at
        // `s + (count - 1) / 2`, the range at `(range_len - 1) / 2`; doubled.
        let dist = |s: u32| (2 * s + count).abs_diff(range_len);
        let cand = |s: u32| Candidate {
            rank: self.rank,
            dist: dist(s),
            start: self.base + s,
        };
        let lo = self.start - self.base;
        let hi = lo + (len - count); // last possible offset
        if len == count {
            if clean {
                top.offer(cand(lo));
            }
            return;
        }
        if len == count + 1 {
            // Either end leaves one seat.
            if !clean {
                top.offer(cand(lo));
                top.offer(cand(hi));
            }
            return;
        }
        if !clean {
            // Clean blocks exist here, so the lone class is never used.
            return;
        }
        // Every offset but `lo + 1` and `hi - 1` leaves no lone seat. Walk
        // outwards from the offset nearest the centre, in order of distance.
        let leaves_lone = |s: u32| s == lo + 1 || s + 1 == hi;
        let centre = ((range_len - count) / 2).clamp(lo, hi);
        let (mut down, mut up) = (Some(centre), centre.checked_add(1).filter(|&u| u <= hi));
        let mut offered = 0;
        while offered < BEST_SPREAD {
            let s = match (down, up) {
                (Some(d), Some(u)) if (dist(d), d) <= (dist(u), u) => {
                    down = d.checked_sub(1).filter(|&x| x >= lo);
                    d
                }
                (_, Some(u)) => {
                    up = u.checked_add(1).filter(|&x| x <= hi);
                    u
                }
                (Some(d), None) => {
                    down = d.checked_sub(1).filter(|&x| x >= lo);
                    d
                }
                (None, None) => break,
            };
            if !leaves_lone(s) {
                top.offer(cand(s));
                offered += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(
        rank: u32,
        base: u32,
        range_len: u32,
        start: u32,
        len: u32,
        count: u32,
        clean: bool,
    ) -> Vec<u32> {
        let mut top = Top::default();
        let run = Run {
            rank,
            base,
            range_len,
            start,
            len,
        };
        run.offer(count, clean, &mut top);
        top.as_slice().iter().map(|c| c.start - base).collect()
    }

    #[test]
    fn nearest_the_centre_first() {
        // An empty range of 10, blocks of 2: centre block at offsets 4..6.
        assert_eq!(offers(0, 100, 10, 100, 10, 2, true), vec![4, 3, 5, 2]);
        assert!(offers(0, 100, 10, 100, 10, 2, false).is_empty());
    }

    #[test]
    fn skips_offsets_that_leave_one_seat() {
        // Run of 5 at offsets 3..8 in a range of 10, blocks of 3: offsets
        // 3, 4, 5 possible; 4 leaves a seat on each side.
        assert_eq!(offers(0, 0, 10, 3, 5, 3, true), vec![3, 5]);
        // Run of 4: both blocks leave one seat.
        assert!(offers(0, 0, 10, 3, 4, 3, true).is_empty());
        assert_eq!(offers(0, 0, 10, 3, 4, 3, false), vec![3, 4]);
    }

    #[test]
    fn top_keeps_the_best() {
        let mut t = Top::default();
        for (i, d) in [9u32, 1, 7, 3, 5, 0, 8, 0].iter().enumerate() {
            t.offer(Candidate {
                rank: 0,
                dist: *d,
                start: i as u32,
            });
        }
        let d: Vec<(u32, u32)> = t.as_slice().iter().map(|c| (c.dist, c.start)).collect();
        assert_eq!(d, vec![(0, 5), (0, 7), (1, 1), (3, 3)]);
    }

    #[test]
    fn run_tree_finds_the_first_fitting_range() {
        let mut t = RunTree::new(5);
        let fits2 = |m: u128| may_offer(m, 2, true);
        assert_eq!(t.find(0, &fits2), Some(0), "unknown ranges are visited");
        for (rank, runs) in [
            (0, 1u128 << 1),
            (1, 1 << 3),
            (2, 1 << 2),
            (3, 1 << 1),
            (4, 1 << 9),
        ] {
            t.set(rank, runs);
        }
        assert_eq!(t.find(0, &fits2), Some(2));
        assert_eq!(t.find(3, &fits2), Some(4));
        assert_eq!(t.find(5, &fits2), None);
        assert_eq!(t.find(0, &|m| may_offer(m, 2, false)), Some(1));
        t.set(2, 0);
        t.set(4, 0);
        assert_eq!(t.find(0, &fits2), None);
        t.invalidate(3);
        assert_eq!(t.find(0, &fits2), Some(3));
        assert_eq!(RunTree::new(0).find(0, &fits2), None);
        let mut one = RunTree::new(1);
        one.set(0, 1 << 2);
        assert_eq!(one.find(0, &fits2), Some(0));
        one.invalidate(7);
        one.set(7, 0);
    }

    #[test]
    fn run_summaries() {
        let runs = 1u128 << 2 | 1 << 5 | 1 << 127;
        assert!(may_offer(runs, 2, true)); // exact fit
        assert!(may_offer(runs, 3, true)); // run of 5
        assert!(may_offer(runs, 4, false)); // run of 5 = 4 + 1
        assert!(may_offer(runs, 4, true)); // run of 127+
        assert!(!may_offer(1 << 2 | 1 << 5, 4, true));
        assert!(may_offer(1 << 2 | 1 << 5, 4, false));
        assert!(may_offer(runs, 100, true)); // run of 127+
        assert!(!may_offer(1 << 3, 2, true));
        assert!(may_offer(1 << 3, 2, false));
        assert!(!may_offer(1 << 3, 3, false));
        assert!(may_offer(RUNS_UNKNOWN, 9, true));
        assert!(!may_offer(0, 1, true) && !may_offer(0, 1, false));
    }
}
