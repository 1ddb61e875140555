//! Hold expiry and slot recycling (the hold half of I4).
//!
//! The timer is a `BTreeSet` of `(expires_at, index, generation)`. Entries are
//! never removed early (an extend adds a new one, a release or confirm leaves
//! the old one), so when an entry comes due it acts only if the slot still has
//! that generation, is still held, and still expires at that very instant.
//! Without that check a late entry would end a renewed hold or the slot's
//! next occupant.

use super::{Hold, HoldState, SeatChange, SeatMap};
use crate::ids::HoldId;
use crate::time::Timestamp;

impl SeatMap {
    /// True when the timer entry `(at, id)` belongs to the hold as it is now.
    fn entry_is_current(&self, at: Timestamp, id: HoldId) -> bool {
        self.hold_ref(id)
            .is_some_and(|h| h.state == HoldState::Held && h.expires_at == at)
    }

    /// Expires every hold due at `now` (emitting `Expired`); returns how many.
    pub(super) fn expire_due(&mut self, now: Timestamp, out: &mut Vec<SeatChange>) -> u64 {
        let mut n = 0;
        while let Some(&(at, index, generation)) = self.timer.first() {
            if at > now {
                break;
            }
            self.timer.pop_first();
            let id = HoldId { index, generation };
            if self.entry_is_current(at, id) {
                self.emit(SeatChange::Expired { id }, now, out);
                n += 1;
            }
        }
        n
    }

    /// Recycles the slots of holds that ended more than the retention ago.
    pub(super) fn recycle_due(&mut self, now: Timestamp, out: &mut Vec<SeatChange>) -> u64 {
        let mut n = 0;
        while let Some(&(at, index, generation)) = self.recycle.first() {
            if at > now {
                break;
            }
            self.recycle.pop_first();
            let id = HoldId { index, generation };
            if self.hold_ref(id).is_some_and(|h| h.state.is_terminal()) {
                let next = HoldId {
                    index,
                    generation: generation.wrapping_add(1),
                };
                self.emit(SeatChange::Recycled { id: next }, now, out);
                n += 1;
            }
        }
        n
    }

    /// Held holds that are due at `now` but not swept yet (reads treat their
    /// seats as free).
    pub(super) fn due_unswept(&self, now: Timestamp) -> impl Iterator<Item = &Hold> + '_ {
        self.timer
            .range(..=(now, u32::MAX, u32::MAX))
            .filter_map(move |&(at, index, generation)| {
                let id = HoldId { index, generation };
                self.hold_ref(id)
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
