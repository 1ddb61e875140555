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
//! `Held` change anyway. Ranges are visited in order and the search stops once
//! enough clean candidates are found; ranges whose free count or known
//! longest free run is too small are skipped without touching their seats.

use super::{SeatMap, BEST_SPREAD};
use siphasher::sip::SipHasher13;
use std::hash::Hasher;

/// A candidate block; ordered best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
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
    items: Vec<Candidate>,
}

impl Top {
    fn full(&self) -> bool {
        self.items.len() >= BEST_SPREAD
    }

    fn offer(&mut self, c: Candidate) {
        if self.full() && self.items.last().is_some_and(|w| *w <= c) {
            return;
        }
        let at = self.items.partition_point(|x| *x < c);
        self.items.insert(at, c);
        self.items.truncate(BEST_SPREAD);
    }
}

impl SeatMap {
    /// The seats of the chosen block, or `None` if no range of `category` has
    /// `count` adjacent free seats. Expects due holds to be swept.
    pub(super) fn find_best(&mut self, category: u32, count: u32) -> Option<Vec<u32>> {
        let mut clean = Top::default();
        let mut lone = Top::default();
        let cat = self.layout.categories.get(category as usize)?;
        for (rank, &ri) in cat.ranges.iter().enumerate() {
            // Later ranges rank lower than every clean candidate held.
            if clean.full() {
                break;
            }
            let ri = ri as usize;
            if self.range_free[ri] < count || self.range_run[ri] < count {
                continue;
            }
            let r = &self.layout.ranges[ri];
            let mut longest = 0;
            for (start, len) in self.free.runs(r.base as usize, r.end() as usize) {
                // Runs lie inside the range, whose offsets fit a u32.
                let (start, len) = (start as u32, len as u32);
                longest = longest.max(len);
                if len >= count {
                    segment(rank as u32, r.base, r.len, start, len, count, &mut clean, &mut lone);
                }
            }
            self.range_run[ri] = longest;
        }
        let pool = if clean.items.is_empty() { lone } else { clean };
        if pool.items.is_empty() {
            return None;
        }
        let mut h = SipHasher13::new_with_key(&self.seed_key());
        h.write(&self.seed[16..]);
        h.write_u64(self.holds_made);
        let pick = pool.items[(h.finish() % pool.items.len() as u64) as usize];
        Some((pick.start..pick.start + count).collect())
    }

    fn seed_key(&self) -> [u8; 16] {
        let mut k = [0u8; 16];
        k.copy_from_slice(&self.seed[..16]);
        k
    }
}

/// Offers the candidates of one run of free seats `start..start + len`
/// (dense indexes) of the range `base..base + range_len`.
#[allow(clippy::too_many_arguments)]
fn segment(
    rank: u32,
    base: u32,
    range_len: u32,
    start: u32,
    len: u32,
    count: u32,
    clean: &mut Top,
    lone: &mut Top,
) {
    // Offsets in the range; a block at offset `s` has its centre at
    // `s + (count - 1) / 2`, the range at `(range_len - 1) / 2`; doubled.
    let dist = |s: u32| (2 * s + count).abs_diff(range_len);
    let cand = |s: u32| Candidate {
        rank,
        dist: dist(s),
        start: base + s,
    };
    let lo = start - base;
    let hi = lo + (len - count); // last possible offset
    if len == count {
        clean.offer(cand(lo));
        return;
    }
    if len == count + 1 {
        // Either end leaves one seat.
        lone.offer(cand(lo));
        lone.offer(cand(hi));
        return;
    }
    // Every offset but `lo + 1` and `hi - 1` leaves no lone seat. Walk
    // outwards from the offset nearest the centre, in order of distance.
    let leaves_lone = |s: u32| s == lo + 1 || s + 1 == hi;
    let centre = ((range_len - count) / 2).clamp(lo, hi);
    let (mut down, mut up) = (Some(centre), centre.checked_add(1).filter(|&u| u <= hi));
    let mut taken = 0;
    while taken < BEST_SPREAD {
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
            clean.offer(cand(s));
            taken += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(top: &Top, base: u32) -> Vec<u32> {
        top.items.iter().map(|c| c.start - base).collect()
    }

    #[test]
    fn nearest_the_centre_first() {
        let (mut clean, mut lone) = (Top::default(), Top::default());
        // An empty range of 10, blocks of 2: centre block at offsets 4..6.
        segment(0, 100, 10, 100, 10, 2, &mut clean, &mut lone);
        assert_eq!(offsets(&clean, 100), vec![4, 3, 5, 2]);
        assert!(lone.items.is_empty());
    }

    #[test]
    fn skips_offsets_that_leave_one_seat() {
        let (mut clean, mut lone) = (Top::default(), Top::default());
        // Run of 5 at offsets 3..8 in a range of 10, blocks of 3: offsets
        // 3, 4, 5 possible; 4 leaves a seat on each side.
        segment(0, 0, 10, 3, 5, 3, &mut clean, &mut lone);
        assert_eq!(offsets(&clean, 0), vec![3, 5]);
        let (mut clean, mut lone) = (Top::default(), Top::default());
        segment(0, 0, 10, 3, 4, 3, &mut clean, &mut lone);
        assert!(clean.items.is_empty());
        assert_eq!(offsets(&lone, 0), vec![3, 4]);
    }

    #[test]
    fn top_keeps_the_best() {
        let mut t = Top::default();
        for (i, d) in [9u32, 1, 7, 3, 5, 0, 8].iter().enumerate() {
            t.offer(Candidate {
                rank: 0,
                dist: *d,
                start: i as u32,
            });
        }
        let d: Vec<u32> = t.items.iter().map(|c| c.dist).collect();
        assert_eq!(d, vec![0, 1, 3, 5]);
    }
}
