//! Hold expiry and slot recycling (the hold half of I4).
//!
//! The timer holds `(expires_at, index, generation)` in time order. Entries are
//! never removed early (an extend adds a new one, a release or confirm leaves
//! the old one), so when an entry comes due it acts only if the slot still has
//! that generation, is still held, and still expires at that very instant.
//! Without that check a late entry would end a renewed hold or the slot's
//! next occupant.

use super::{Hold, HoldState, SeatChange, SeatMap};
use crate::ids::HoldId;
use crate::time::Timestamp;
use std::collections::{BTreeSet, VecDeque};
use std::iter::Peekable;

/// `(at, slot index, generation)`.
pub(super) type Deadline = (Timestamp, u32, u32);

/// Deadlines in time order. Most arrive in order (`now` + a fixed ttl or
/// retention), so those are appended to a FIFO in O(1); the others (short
/// extends, a clock that stepped back) go to a B-tree. The same entry may be
/// in both; [`Deadlines::due`] yields it once.
#[derive(Clone, Debug, Default)]
pub(super) struct Deadlines {
    fifo: VecDeque<Deadline>,
    tree: BTreeSet<Deadline>,
}

impl Deadlines {
    pub fn insert(&mut self, d: Deadline) {
        if !matches!(self.fifo.back(), Some(b) if *b > d) {
            self.fifo.push_back(d);
        } else {
            self.tree.insert(d);
        }
    }

    pub fn first(&self) -> Option<Deadline> {
        match (self.fifo.front(), self.tree.first()) {
            (Some(a), Some(b)) => Some(*a.min(b)),
            (a, b) => a.or(b).copied(),
        }
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<Deadline> {
        let d = self.first().filter(|d| d.0 <= now)?;
        if self.fifo.front() == Some(&d) {
            self.fifo.pop_front()
        } else {
            self.tree.pop_first()
        }
    }

    /// Entries due at `now`, in order, each once.
    pub fn due(&self, now: Timestamp) -> impl Iterator<Item = Deadline> + '_ {
        Merge {
            a: self
                .fifo
                .iter()
                .copied()
                .take_while(move |d| d.0 <= now)
                .peekable(),
            b: self
                .tree
                .range(..=(now, u32::MAX, u32::MAX))
                .copied()
                .peekable(),
            last: None,
        }
    }
}

/// Merges two sorted streams, dropping repeats.
struct Merge<A: Iterator<Item = Deadline>, B: Iterator<Item = Deadline>> {
    a: Peekable<A>,
    b: Peekable<B>,
    last: Option<Deadline>,
}

impl<A: Iterator<Item = Deadline>, B: Iterator<Item = Deadline>> Iterator for Merge<A, B> {
    type Item = Deadline;

    fn next(&mut self) -> Option<Deadline> {
        loop {
            let take_a = match (self.a.peek(), self.b.peek()) {
                (Some(x), Some(y)) => x <= y,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return None,
            };
            let d = if take_a { self.a.next() } else { self.b.next() };
            if d != self.last {
                self.last = d;
                return d;
            }
        }
    }
}

impl SeatMap {
    /// The id of the hold the timer entry `(at, index, generation)` belongs
    /// to, if it is still held and still expires then.
    fn current_entry(&self, at: Timestamp, index: u32, generation: u32) -> Option<HoldId> {
        self.slot_hold(index, generation)
            .filter(|h| h.state == HoldState::Held && h.expires_at == at)
            .map(|h| HoldId {
                index,
                generation,
                epoch: h.epoch,
            })
    }

    /// Expires every hold due at `now` (emitting `Expired`); returns how many.
    pub(super) fn expire_due(&mut self, now: Timestamp, out: &mut Vec<SeatChange>) -> u64 {
        let mut n = 0;
        while let Some((at, index, generation)) = self.timer.pop_due(now) {
            let current = self.current_entry(at, index, generation);
            // Current: the hold is there, so `named` finds it.
            if let Some((id, (user, seats))) = current.and_then(|id| Some((id, self.named(id)?))) {
                self.emit(SeatChange::Expired { id, user, seats }, now, out);
                n += 1;
            }
        }
        n
    }

    /// Recycles the slots of holds that ended more than the retention ago.
    pub(super) fn recycle_due(&mut self, now: Timestamp, out: &mut Vec<SeatChange>) -> u64 {
        let mut n = 0;
        while let Some((_, index, generation)) = self.recycle.pop_due(now) {
            if self
                .slot_hold(index, generation)
                .is_some_and(|h| h.state.is_terminal())
            {
                let next = SeatChange::Recycled {
                    index,
                    generation: generation.wrapping_add(1),
                };
                self.emit(next, now, out);
                n += 1;
            }
        }
        n
    }

    /// Held holds that are due at `now` but not swept yet (reads treat their
    /// seats as free).
    pub(super) fn due_unswept(&self, now: Timestamp) -> impl Iterator<Item = &Hold> + '_ {
        self.timer
            .due(now)
            .filter_map(move |(at, index, generation)| {
                self.slot_hold(index, generation)
                    .filter(|h| h.state == HoldState::Held && h.expires_at == at)
            })
    }

    /// The earliest instant at which `tick` has something to do (a hold to
    /// expire or a slot to recycle), for scheduling the sweeper. It may be a
    /// stale entry, in which case `tick` does nothing then.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let t = self.timer.first().map(|e| e.0);
        let r = self.recycle.first().map(|e| e.0);
        match (t, r) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_in_order_once() {
        let mut d = Deadlines::default();
        let t = |ms: u64, i: u32| (Timestamp(ms), i, 0);
        for e in [
            t(10, 0),
            t(20, 1),
            t(15, 2),
            t(20, 1),
            t(30, 3),
            t(5, 4),
            t(30, 3),
        ] {
            d.insert(e);
        }
        let due: Vec<_> = d.due(Timestamp(30)).collect();
        assert_eq!(due, vec![t(5, 4), t(10, 0), t(15, 2), t(20, 1), t(30, 3)]);
        assert_eq!(d.due(Timestamp(12)).count(), 2);
        assert_eq!(d.first(), Some(t(5, 4)));
        let mut popped = Vec::new();
        while let Some(e) = d.pop_due(Timestamp(20)) {
            popped.push(e);
        }
        assert_eq!(
            popped,
            vec![t(5, 4), t(10, 0), t(15, 2), t(20, 1), t(20, 1)]
        );
        assert_eq!(d.first(), Some(t(30, 3)));
        assert_eq!(d.pop_due(Timestamp(29)), None);
    }
}
