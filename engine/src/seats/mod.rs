//! Seat map and holds of one event (owns I1 no double sale and the hold half
//! of I4).
//!
//! Module contract: every change of semantic state is made by building a
//! [`SeatChange`], calling [`SeatMap::apply`] with it and pushing it to `out`;
//! replaying the pushed changes through `apply` on a map restored from an
//! earlier [`SeatSnapshot`] reproduces the state exactly. Changes carry every
//! value `apply` needs (ids, seat indexes, times), so `apply` ignores its `at`.
//!
//! - I1: a seat points to at most one live hold (`seat_hold`); a hold is only
//!   created when all its seats are free after due holds were expired, and a
//!   sold hold never ends.
//! - I4: every write first expires every due hold (`now >= expires_at`), and
//!   every read evaluates expiry at `now`, so a sweeper that runs late changes
//!   nothing anyone can see. Timer entries are `(expires_at, index,
//!   generation)` and are never removed early: an entry acts only if the slot
//!   still has that generation, is held, and still expires at that instant.
//!
//! Files: `layout.rs` (seat ids ↔ dense indexes), `best.rs` (best-available),
//! `expiry.rs` (timers, slot recycling), `snapshot.rs`, `bits.rs` (free-seat
//! bit set); tests in `tests.rs` and `model_tests.rs` (proptest vs a model).

mod best;
mod bits;
mod expiry;
mod layout;
mod snapshot;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

pub use snapshot::{SeatSnapshot, SnapshotError};

use crate::config::{HoldPolicy, RowRange};
use crate::ids::{HoldId, SeatId, UserId};
use crate::time::Timestamp;
use crate::user_counts::UserCounts;
use bits::Bits;
use expiry::Deadlines;
use layout::Layout;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::num::NonZeroU32;

/// How long a released or expired hold stays readable before its slot is
/// recycled (with a new generation). Sold holds are kept forever.
pub const TERMINAL_RETENTION_MS: u64 = 3_600_000;

/// How many of the best candidates best-available spreads its picks over.
pub const BEST_SPREAD: usize = 4;

/// `seat_hold` value of a free seat.
const NO_HOLD: u32 = u32::MAX;

/// Which seats a hold asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeatChoice {
    /// These seats, all or nothing.
    Exact(Vec<SeatId>),
    /// `count` adjacent seats in one row of `category`.
    Best { count: NonZeroU32, category: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldState {
    Held,
    Sold,
    Released,
    Expired,
}

impl HoldState {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Held => "held",
            HoldState::Sold => "sold",
            HoldState::Released => "released",
            HoldState::Expired => "expired",
        }
    }

    /// Released or expired: the seats are free again.
    pub fn is_terminal(self) -> bool {
        matches!(self, HoldState::Released | HoldState::Expired)
    }
}

/// A hold as reads report it (state evaluated at `now`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldInfo {
    pub id: HoldId,
    pub user: UserId,
    pub seats: Vec<SeatId>,
    pub state: HoldState,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub order: Option<String>,
}

/// Why a seat operation was turned down (nothing changed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeatRefusal {
    /// Some requested seats are held or sold by someone else.
    Taken { seats: Vec<SeatId> },
    /// Seats that are not in the layout.
    UnknownSeat { seats: Vec<SeatId> },
    /// Held + sold for this user would pass `max_seats_per_user`.
    LimitExceeded {
        limit: u32,
        current: u32,
        requested: u32,
    },
    /// Best-available found no `count` adjacent free seats in one row.
    NoAdjacent { count: u32 },
    /// Best-available named a category the layout does not have.
    UnknownCategory,
    /// Empty list or the same seat twice.
    InvalidRequest,
    /// No such hold.
    NotFound,
    /// Confirm of a hold that lapsed or was released: nothing sold.
    Expired,
    /// Extend of a hold not held any more (expired, released or sold).
    NotHeld,
    /// An extension would pass `max_ttl_s` from the hold's creation.
    TooLong { max_expires_at: Timestamp },
    /// Sold seats are not released.
    Sold,
}

/// A release that went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Released {
    Now,
    /// Already released or expired: nothing to do.
    AlreadyGone,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub free: u64,
    pub held: u64,
    pub sold: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeatCounts {
    pub total: Counts,
    pub categories: BTreeMap<String, Counts>,
}

/// One row range of a section, one letter a seat: `F` free, `H` held, `S` sold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowStatus {
    pub row: String,
    pub first: u32,
    pub status: String,
}

/// A journaled change to a seat map. Seats are dense indexes in layout order
/// (the layout is part of the event config, so a journal is only replayed onto
/// the same layout; snapshots check a fingerprint).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeatChange {
    /// A new hold in slot `id.index`, which is vacant with `id.generation`
    /// (or is the next new slot, generation 0), issued under `id.epoch`.
    Held {
        id: HoldId,
        user: UserId,
        seats: Vec<u32>,
        created_at: Timestamp,
        expires_at: Timestamp,
    },
    /// Held → sold. `user` and `seats` (the hold's, as clients name them)
    /// are not needed to replay; they are carried so the outcome published
    /// on the events-out stream is a pure function of the entry.
    Confirmed {
        id: HoldId,
        order: String,
        user: UserId,
        seats: Vec<SeatId>,
    },
    /// A held hold's new expiry.
    Extended { id: HoldId, expires_at: Timestamp },
    /// Held → released at `at`; its seats are free. `user` and `seats` as in
    /// `Confirmed` (for events out only).
    Released {
        id: HoldId,
        at: Timestamp,
        user: UserId,
        seats: Vec<SeatId>,
    },
    /// Held → expired (at its `expires_at`); its seats are free. `user` and
    /// `seats` as in `Confirmed` (for events out only).
    Expired {
        id: HoldId,
        user: UserId,
        seats: Vec<SeatId>,
    },
    /// A released/expired hold's slot becomes vacant with its new generation
    /// (old generation + 1, wrapping). A vacant slot has no epoch: the next
    /// hold in it brings its own.
    Recycled { index: u32, generation: u32 },
}

/// A change that does not fit the state it is applied to (a journal from
/// another layout, out of order, or corrupt). Nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("hold {0} does not match its slot")]
    NoSuchHold(HoldId),
    #[error("hold {0} is not in a state this change applies to")]
    WrongState(HoldId),
    #[error("slot {index} is not one generation before {generation}")]
    NoSuchSlot { index: u32, generation: u32 },
    #[error("slot {index} has no ended hold to recycle into generation {generation}")]
    SlotNotEnded { index: u32, generation: u32 },
    #[error("seat index {0} is not in the layout")]
    NoSuchSeat(u32),
    #[error("seat index {0} is not free")]
    SeatNotFree(u32),
}

/// Resolution of a hold id for writes.
enum Lookup {
    Found,
    /// The slot has moved on to a newer generation.
    Stale,
    NotFound,
}

/// Seats of a hold; most holds are small, so those need no allocation.
#[derive(Clone, Debug)]
enum SeatList {
    Inline(u8, [u32; 4]),
    Heap(Box<[u32]>),
}

impl SeatList {
    fn new(seats: &[u32]) -> Self {
        match seats.len() {
            n @ 0..=4 => {
                let mut a = [0; 4];
                a[..n].copy_from_slice(seats);
                SeatList::Inline(n as u8, a)
            }
            _ => SeatList::Heap(seats.into()),
        }
    }
}

impl std::ops::Deref for SeatList {
    type Target = [u32];

    fn deref(&self) -> &[u32] {
        match self {
            SeatList::Inline(n, a) => &a[..usize::from(*n)],
            SeatList::Heap(b) => b,
        }
    }
}

#[derive(Clone, Debug)]
struct Hold {
    /// Writer epoch the hold's id was issued under; an id resolves only
    /// with this epoch (a lost hold's id never names a later one).
    epoch: u64,
    user: UserId,
    seats: SeatList,
    created_at: Timestamp,
    expires_at: Timestamp,
    state: HoldState,
    /// When a released/expired hold ended (retention counts from here).
    ended_at: Timestamp,
    order: Option<Box<str>>,
}

#[derive(Clone, Debug)]
struct Slot {
    generation: u32,
    hold: Option<Hold>,
}

/// The seats of one event and the holds on them.
///
/// Semantic state is `seed`, `holds_made` and `slots`; everything else is an
/// index rebuilt from them.
pub struct SeatMap {
    layout: Layout,
    policy: HoldPolicy,
    seed: [u8; 32],
    /// Holds ever made; with `seed` it drives the spreading of best picks.
    holds_made: u64,
    slots: Vec<Slot>,
    // Derived state.
    /// Slot of the live (held or sold) hold on each seat, or `NO_HOLD`.
    seat_hold: Vec<u32>,
    /// Bit set = seat free.
    free: Bits,
    /// Per category, summaries of its ranges' runs of free seats (see
    /// [`best`]).
    run_trees: Vec<best::RunTree>,
    categories: Vec<Counts>,
    total: Counts,
    /// Held + sold seats per user.
    user_seats: UserCounts,
    /// `(expires_at, index, generation)` of held holds; stale entries are
    /// skipped when they come due.
    timer: Deadlines,
    /// `(ended_at + retention, index, generation)` of released/expired holds.
    recycle: Deadlines,
    /// Vacant slots; the lowest is reused first.
    vacant: BTreeSet<u32>,
}

/// The held hold `id` (a free function so callers keep the other fields).
fn held_in(slots: &mut [Slot], id: HoldId) -> Result<&mut Hold, ApplyError> {
    let hold = slots
        .get_mut(id.index as usize)
        .filter(|s| s.generation == id.generation)
        .and_then(|s| s.hold.as_mut())
        .filter(|h| h.epoch == id.epoch)
        .ok_or(ApplyError::NoSuchHold(id))?;
    if hold.state != HoldState::Held {
        return Err(ApplyError::WrongState(id));
    }
    Ok(hold)
}

impl fmt::Debug for SeatMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeatMap")
            .field("seats", &self.layout.seats())
            .field("slots", &self.slots.len())
            .field("total", &self.total)
            .field("holds_made", &self.holds_made)
            .finish_non_exhaustive()
    }
}

impl SeatMap {
    /// `layout` is already validated; `seed` drives the spreading of best-available picks.
    pub fn new(layout: &[RowRange], policy: HoldPolicy, seed: [u8; 32]) -> Self {
        Self::empty(Layout::new(layout), policy, seed)
    }

    fn empty(layout: Layout, policy: HoldPolicy, seed: [u8; 32]) -> Self {
        let n = layout.seats();
        let mut categories = vec![Counts::default(); layout.categories.len()];
        for r in &layout.ranges {
            categories[r.category as usize].free += u64::from(r.len);
        }
        SeatMap {
            run_trees: layout
                .categories
                .iter()
                .map(|c| best::RunTree::new(c.ranges.len()))
                .collect(),
            seat_hold: vec![NO_HOLD; n],
            free: Bits::ones(n),
            categories,
            total: Counts {
                free: n as u64,
                held: 0,
                sold: 0,
            },
            layout,
            policy,
            seed,
            holds_made: 0,
            slots: Vec::new(),
            user_seats: UserCounts::default(),
            timer: Deadlines::default(),
            recycle: Deadlines::default(),
            vacant: BTreeSet::new(),
        }
    }

    /// Applies a journaled change, or changes nothing and says why not (a
    /// replay that meets a change that does not fit fails, like a gap).
    pub fn apply(&mut self, change: &SeatChange, _at: Timestamp) -> Result<(), ApplyError> {
        match change {
            SeatChange::Held {
                id,
                user,
                seats,
                created_at,
                expires_at,
            } => self.apply_held(*id, user, seats, *created_at, *expires_at),
            SeatChange::Confirmed { id, order, .. } => {
                let hold = held_in(&mut self.slots, *id)?;
                hold.state = HoldState::Sold;
                hold.order = Some(order.as_str().into());
                for &s in hold.seats.iter() {
                    let c = &mut self.categories[self.layout.seat_category(s) as usize];
                    c.held -= 1;
                    c.sold += 1;
                }
                let n = hold.seats.len() as u64;
                self.total.held -= n;
                self.total.sold += n;
                Ok(())
            }
            SeatChange::Extended { id, expires_at } => {
                let hold = held_in(&mut self.slots, *id)?;
                hold.expires_at = *expires_at;
                self.timer.insert((*expires_at, id.index, id.generation));
                Ok(())
            }
            SeatChange::Released { id, at, .. } => {
                self.end_hold(*id, HoldState::Released, Some(*at))
            }
            SeatChange::Expired { id, .. } => self.end_hold(*id, HoldState::Expired, None),
            &SeatChange::Recycled { index, generation } => {
                let slot = self
                    .slots
                    .get_mut(index as usize)
                    .filter(|s| s.generation.wrapping_add(1) == generation);
                let Some(slot) = slot else {
                    return Err(ApplyError::NoSuchSlot { index, generation });
                };
                if !slot.hold.as_ref().is_some_and(|h| h.state.is_terminal()) {
                    return Err(ApplyError::SlotNotEnded { index, generation });
                }
                slot.hold = None;
                slot.generation = generation;
                self.vacant.insert(index);
                Ok(())
            }
        }
    }

    fn apply_held(
        &mut self,
        id: HoldId,
        user: &UserId,
        seats: &[u32],
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), ApplyError> {
        let index = id.index as usize;
        let fresh = index == self.slots.len();
        let slot_ok = if fresh {
            id.generation == 0 && id.index != NO_HOLD
        } else {
            self.slots
                .get(index)
                .is_some_and(|s| s.hold.is_none() && s.generation == id.generation)
        };
        if !slot_ok {
            return Err(ApplyError::NoSuchHold(id));
        }
        // Claim the seats, undoing on the first one that is taken (this also
        // catches a seat named twice).
        for (k, &s) in seats.iter().enumerate() {
            let err = match self.seat_hold.get(s as usize) {
                None => Some(ApplyError::NoSuchSeat(s)),
                Some(&h) if h != NO_HOLD => Some(ApplyError::SeatNotFree(s)),
                Some(_) => None,
            };
            if let Some(e) = err {
                for &u in &seats[..k] {
                    self.seat_hold[u as usize] = NO_HOLD;
                }
                return Err(e);
            }
            self.seat_hold[s as usize] = id.index;
        }
        self.occupy(seats, false);
        let n = seats.len() as u32;
        self.add_user_seats(user, n);
        let hold = Hold {
            epoch: id.epoch,
            user: user.clone(),
            seats: SeatList::new(seats),
            created_at,
            expires_at,
            state: HoldState::Held,
            ended_at: Timestamp::ZERO,
            order: None,
        };
        if fresh {
            self.slots.push(Slot {
                generation: 0,
                hold: Some(hold),
            });
        } else {
            self.slots[index].hold = Some(hold);
            self.vacant.remove(&id.index);
        }
        self.timer.insert((expires_at, id.index, id.generation));
        self.holds_made = self.holds_made.wrapping_add(1);
        Ok(())
    }

    /// One lookup; the key is cloned only for a new user.
    fn add_user_seats(&mut self, user: &UserId, n: u32) {
        self.user_seats.add(user, n);
    }

    /// Counts `seats` (already pointed at their hold in `seat_hold`) as held
    /// or sold instead of free.
    fn occupy(&mut self, seats: &[u32], sold: bool) {
        for &s in seats {
            self.free.set(s as usize, false);
            let r = &self.layout.ranges[self.layout.seat_range[s as usize] as usize];
            self.run_trees[r.category as usize].invalidate(r.rank as usize);
            let c = &mut self.categories[r.category as usize];
            c.free -= 1;
            if sold {
                c.sold += 1;
            } else {
                c.held += 1;
            }
        }
        let n = seats.len() as u64;
        self.total.free -= n;
        if sold {
            self.total.sold += n;
        } else {
            self.total.held += n;
        }
    }

    /// Held → released/expired: frees the seats.
    fn end_hold(
        &mut self,
        id: HoldId,
        state: HoldState,
        at: Option<Timestamp>,
    ) -> Result<(), ApplyError> {
        let hold = held_in(&mut self.slots, id)?;
        hold.state = state;
        hold.ended_at = at.unwrap_or(hold.expires_at);
        for &s in hold.seats.iter() {
            self.seat_hold[s as usize] = NO_HOLD;
            self.free.set(s as usize, true);
            let r = &self.layout.ranges[self.layout.seat_range[s as usize] as usize];
            self.run_trees[r.category as usize].invalidate(r.rank as usize);
            let c = &mut self.categories[r.category as usize];
            c.held -= 1;
            c.free += 1;
        }
        let n = hold.seats.len();
        self.total.held -= n as u64;
        self.total.free += n as u64;
        self.user_seats.sub(&hold.user, n as u32);
        self.recycle.insert((
            hold.ended_at.plus_ms(TERMINAL_RETENTION_MS),
            id.index,
            id.generation,
        ));
        Ok(())
    }

    /// A hold of this slot and generation whose epoch differs is not found:
    /// its id was issued by a writer whose changes were lost, so it never
    /// named this hold. (Stale goes by generation alone: that slot has moved
    /// on past any hold the id could have named.)
    fn lookup(&self, id: HoldId) -> Lookup {
        match self.slots.get(id.index as usize) {
            Some(s) if s.generation == id.generation => match &s.hold {
                Some(h) if h.epoch == id.epoch => Lookup::Found,
                _ => Lookup::NotFound,
            },
            Some(s) if id.generation < s.generation => Lookup::Stale,
            _ => Lookup::NotFound,
        }
    }

    /// The user and seats (as clients name them) of a hold, for the changes
    /// that carry them for events out.
    pub(super) fn named(&self, id: HoldId) -> Option<(UserId, Vec<SeatId>)> {
        let h = self.hold_ref(id)?;
        let seats = h
            .seats
            .iter()
            .filter_map(|&s| self.layout.seat_id(s))
            .collect();
        Some((h.user.clone(), seats))
    }

    /// The hold `id` names: slot, generation and epoch all match.
    fn hold_ref(&self, id: HoldId) -> Option<&Hold> {
        self.slot_hold(id.index, id.generation)
            .filter(|h| h.epoch == id.epoch)
    }

    /// The hold in slot `index` at `generation`, whatever its epoch (for the
    /// timers, which name slots, not ids).
    fn slot_hold(&self, index: u32, generation: u32) -> Option<&Hold> {
        self.slots
            .get(index as usize)
            .filter(|s| s.generation == generation)?
            .hold
            .as_ref()
    }

    fn info(&self, id: HoldId, h: &Hold, now: Timestamp) -> HoldInfo {
        let state = match h.state {
            HoldState::Held if now >= h.expires_at => HoldState::Expired,
            s => s,
        };
        HoldInfo {
            id,
            user: h.user.clone(),
            seats: h
                .seats
                .iter()
                .filter_map(|&s| self.layout.seat_id(s))
                .collect(),
            state,
            created_at: h.created_at,
            expires_at: h.expires_at,
            order: h.order.as_deref().map(str::to_owned),
        }
    }

    fn info_of(&self, id: HoldId, now: Timestamp) -> Option<HoldInfo> {
        self.hold_ref(id).map(|h| self.info(id, h, now))
    }

    fn emit(&mut self, change: SeatChange, now: Timestamp, out: &mut Vec<SeatChange>) {
        // A live change is built from the state it applies to, under the same
        // lock, so it fits; journaling one that did not would break replay.
        self.apply(&change, now)
            .expect("a live seat change fits the state it was built from");
        out.push(change);
    }

    /// Held + sold seats of `user` as of the last write (due holds not yet
    /// swept still count; every write sweeps them first).
    pub fn user_seats(&self, user: &UserId) -> u32 {
        self.user_seats.get(user)
    }

    pub fn policy(&self) -> HoldPolicy {
        self.policy
    }

    /// Number of seats in the layout.
    pub fn seat_count(&self) -> usize {
        self.layout.seats()
    }

    /// Holds seats for `ttl_s`, all or nothing. Due holds are expired first.
    /// Checks, in order: an empty list or more than `max_seats_per_user`
    /// seats (`InvalidRequest`, `LimitExceeded`); unknown seats or category;
    /// a seat named twice (`InvalidRequest`); this user's held + sold seats
    /// plus the request over the limit (`LimitExceeded`); seats held or sold,
    /// by anyone, this user included (`Taken`, in request order) or no fitting
    /// block (`NoAdjacent`). The new hold's id carries `epoch`, the writer
    /// epoch of the caller.
    pub fn hold(
        &mut self,
        user: &UserId,
        choice: &SeatChoice,
        epoch: u64,
        now: Timestamp,
        out: &mut Vec<SeatChange>,
    ) -> Result<HoldInfo, SeatRefusal> {
        self.expire_due(now, out);
        let limit = self.policy.max_seats_per_user.get();
        let current = self.user_seats(user);
        let over = |requested: u32| {
            Err(SeatRefusal::LimitExceeded {
                limit,
                current,
                requested,
            })
        };
        let seats = match choice {
            SeatChoice::Exact(list) => {
                if list.is_empty() {
                    return Err(SeatRefusal::InvalidRequest);
                }
                let requested = u32::try_from(list.len()).unwrap_or(u32::MAX);
                // Bounds the work below before any lookup.
                if requested > limit {
                    return over(requested);
                }
                let mut seats = Vec::with_capacity(list.len());
                let mut unknown: Vec<SeatId> = Vec::new();
                for s in list {
                    match self.layout.resolve(s) {
                        Some(i) => seats.push(i),
                        None if !unknown.contains(s) => unknown.push(s.clone()),
                        None => {}
                    }
                }
                if !unknown.is_empty() {
                    return Err(SeatRefusal::UnknownSeat { seats: unknown });
                }
                // At most `max_seats_per_user` (<= 100) seats: quadratic is fine.
                if (1..seats.len()).any(|i| seats[..i].contains(&seats[i])) {
                    return Err(SeatRefusal::InvalidRequest);
                }
                if current.saturating_add(requested) > limit {
                    return over(requested);
                }
                // Due holds are swept, so any owner here is a live hold.
                if seats.iter().any(|&s| self.seat_hold[s as usize] != NO_HOLD) {
                    let taken = list
                        .iter()
                        .zip(&seats)
                        .filter(|&(_, &s)| self.seat_hold[s as usize] != NO_HOLD)
                        .map(|(id, _)| id.clone())
                        .collect();
                    return Err(SeatRefusal::Taken { seats: taken });
                }
                seats
            }
            SeatChoice::Best { count, category } => {
                let Some(cat) = self.layout.category(category) else {
                    return Err(SeatRefusal::UnknownCategory);
                };
                if current.saturating_add(count.get()) > limit {
                    return over(count.get());
                }
                match self.find_best(cat, count.get()) {
                    Some(seats) => seats,
                    None => return Err(SeatRefusal::NoAdjacent { count: count.get() }),
                }
            }
        };
        let id = match self.vacant.first() {
            Some(&index) => HoldId {
                index,
                generation: self.slots[index as usize].generation,
                epoch,
            },
            None => match u32::try_from(self.slots.len()) {
                // NO_HOLD marks free seats, so it is never a slot.
                Ok(index) if index != NO_HOLD => HoldId {
                    index,
                    generation: 0,
                    epoch,
                },
                _ => return Err(SeatRefusal::InvalidRequest),
            },
        };
        let change = SeatChange::Held {
            id,
            user: user.clone(),
            seats,
            created_at: now,
            expires_at: now.plus_secs(u64::from(self.policy.ttl_s.get())),
        };
        self.emit(change, now, out);
        match self.info_of(id, now) {
            Some(info) => Ok(info),
            None => Err(SeatRefusal::InvalidRequest),
        }
    }

    /// The hold as of `now` (a held hold past its expiry reads `Expired`);
    /// `None` for an id never issued or whose slot was recycled.
    pub fn get(&self, hold: HoldId, now: Timestamp) -> Option<HoldInfo> {
        self.info_of(hold, now)
    }

    /// Held and unexpired → sold, keeping `order`; already sold → `Sold` with
    /// the first order (nothing journaled); released, expired or recycled →
    /// `Expired`.
    pub fn confirm(
        &mut self,
        hold: HoldId,
        order: &str,
        now: Timestamp,
        out: &mut Vec<SeatChange>,
    ) -> Result<HoldInfo, SeatRefusal> {
        self.expire_due(now, out);
        match self.lookup(hold) {
            Lookup::NotFound => return Err(SeatRefusal::NotFound),
            Lookup::Stale => return Err(SeatRefusal::Expired),
            Lookup::Found => {}
        }
        match self.hold_ref(hold).map(|h| h.state) {
            Some(HoldState::Held) => {
                // Held: the hold is there, so `named` finds it.
                let Some((user, seats)) = self.named(hold) else {
                    return Err(SeatRefusal::NotFound);
                };
                let change = SeatChange::Confirmed {
                    id: hold,
                    order: order.to_owned(),
                    user,
                    seats,
                };
                self.emit(change, now, out);
            }
            Some(HoldState::Sold) => {}
            _ => return Err(SeatRefusal::Expired),
        }
        match self.info_of(hold, now) {
            Some(info) => Ok(info),
            None => Err(SeatRefusal::NotFound),
        }
    }

    /// Moves the hold's expiry to `now + ttl_s`, never past `created_at +
    /// max_ttl_s`. An extend never shortens a hold: asking for less than the
    /// time left keeps the current expiry (nothing journaled), so a late
    /// retry cannot cut a buyer's hold short. Only while held and unexpired;
    /// a sold hold is `Sold`, a recycled id is `NotHeld`.
    pub fn extend(
        &mut self,
        hold: HoldId,
        ttl_s: u32,
        now: Timestamp,
        out: &mut Vec<SeatChange>,
    ) -> Result<HoldInfo, SeatRefusal> {
        self.expire_due(now, out);
        match self.lookup(hold) {
            Lookup::NotFound => return Err(SeatRefusal::NotFound),
            Lookup::Stale => return Err(SeatRefusal::NotHeld),
            Lookup::Found => {}
        }
        let Some(h) = self.hold_ref(hold) else {
            return Err(SeatRefusal::NotHeld);
        };
        match h.state {
            HoldState::Held => {}
            HoldState::Sold => return Err(SeatRefusal::Sold),
            _ => return Err(SeatRefusal::NotHeld),
        }
        let max_expires_at = h
            .created_at
            .plus_secs(u64::from(self.policy.max_ttl_s.get()));
        let expires_at = now.plus_secs(u64::from(ttl_s));
        if expires_at > max_expires_at {
            return Err(SeatRefusal::TooLong { max_expires_at });
        }
        if expires_at <= h.expires_at {
            return self.info_of(hold, now).ok_or(SeatRefusal::NotFound);
        }
        self.emit(
            SeatChange::Extended {
                id: hold,
                expires_at,
            },
            now,
            out,
        );
        match self.info_of(hold, now) {
            Some(info) => Ok(info),
            None => Err(SeatRefusal::NotFound),
        }
    }

    /// Frees a held hold's seats at once. A recycled id is `AlreadyGone`.
    pub fn release(
        &mut self,
        hold: HoldId,
        now: Timestamp,
        out: &mut Vec<SeatChange>,
    ) -> Result<Released, SeatRefusal> {
        self.expire_due(now, out);
        match self.lookup(hold) {
            Lookup::NotFound => return Err(SeatRefusal::NotFound),
            Lookup::Stale => return Ok(Released::AlreadyGone),
            Lookup::Found => {}
        }
        match self.hold_ref(hold).map(|h| h.state) {
            Some(HoldState::Held) => {
                // Held: the hold is there, so `named` finds it.
                let Some((user, seats)) = self.named(hold) else {
                    return Err(SeatRefusal::NotFound);
                };
                let change = SeatChange::Released {
                    id: hold,
                    at: now,
                    user,
                    seats,
                };
                self.emit(change, now, out);
                Ok(Released::Now)
            }
            Some(HoldState::Sold) => Err(SeatRefusal::Sold),
            _ => Ok(Released::AlreadyGone),
        }
    }

    /// Expires due holds (emitting changes) and recycles old hold slots; returns holds expired.
    pub fn tick(&mut self, now: Timestamp, out: &mut Vec<SeatChange>) -> u64 {
        let expired = self.expire_due(now, out);
        self.recycle_due(now, out);
        expired
    }

    pub fn counts(&self, now: Timestamp) -> SeatCounts {
        let mut cats = self.categories.clone();
        let mut total = self.total;
        for h in self.due_unswept(now) {
            for &s in h.seats.iter() {
                let c = &mut cats[self.layout.seat_category(s) as usize];
                c.held -= 1;
                c.free += 1;
            }
            let n = h.seats.len() as u64;
            total.held -= n;
            total.free += n;
        }
        SeatCounts {
            total,
            categories: self
                .layout
                .categories
                .iter()
                .zip(cats)
                .map(|(c, n)| (c.name.to_string(), n))
                .collect(),
        }
    }

    pub fn section_rows(&self, section: &str, now: Timestamp) -> Option<Vec<RowStatus>> {
        let sec = self.layout.section(section)?;
        let rows = sec
            .ranges
            .iter()
            .map(|&ri| {
                let r = &self.layout.ranges[ri as usize];
                let status = (r.base..r.end())
                    .map(|s| match self.seat_hold[s as usize] {
                        NO_HOLD => 'F',
                        h => match self.slots.get(h as usize).and_then(|s| s.hold.as_ref()) {
                            Some(h) if h.state == HoldState::Sold => 'S',
                            Some(h) if h.state == HoldState::Held && now < h.expires_at => 'H',
                            _ => 'F',
                        },
                    })
                    .collect();
                RowStatus {
                    row: r.row.to_string(),
                    first: r.first,
                    status,
                }
            })
            .collect();
        Some(rows)
    }

    /// True when the layout has seats and every one is sold. Sold seats never
    /// come back, so this needs no `now` and no per-category counts.
    pub fn sold_out(&self) -> bool {
        self.layout.seats() > 0 && self.total.sold == self.layout.seats() as u64
    }

    /// True when any seat is held (unexpired at `now`) or sold.
    pub fn in_use(&self, now: Timestamp) -> bool {
        if self.total.sold > 0 {
            return true;
        }
        let due: u64 = self.due_unswept(now).map(|h| h.seats.len() as u64).sum();
        self.total.held > due
    }

    pub fn to_snapshot(&self) -> SeatSnapshot {
        SeatSnapshot::capture(self)
    }

    /// Restores a map. A snapshot that does not fit the layout (or is corrupt)
    /// is restored as far as it is consistent: holds keep only seats that exist
    /// and are not claimed by an earlier slot. Use
    /// [`SeatMap::try_from_snapshot`] to refuse it instead.
    pub fn from_snapshot(snap: SeatSnapshot, layout: &[RowRange], policy: HoldPolicy) -> Self {
        snapshot::restore(snap, Layout::new(layout), policy).0
    }

    /// Restores a map, refusing a snapshot of another layout or with
    /// inconsistent holds.
    pub fn try_from_snapshot(
        snap: SeatSnapshot,
        layout: &[RowRange],
        policy: HoldPolicy,
    ) -> Result<Self, SnapshotError> {
        match snapshot::restore(snap, Layout::new(layout), policy) {
            (map, None) => Ok(map),
            (_, Some(e)) => Err(e),
        }
    }
}
