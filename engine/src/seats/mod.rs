//! Seat map and holds of one event (owns I1 no double sale and the hold half
//! of I4).
//!
//! INTERFACE STUB — implementation pending.
//!
//! Module contract: every change of semantic state is made by building a
//! [`SeatChange`], calling [`SeatMap::apply`] with it and pushing it to `out`;
//! replaying the pushed changes through `apply` reproduces the state exactly.

use crate::config::{HoldPolicy, RowRange};
use crate::ids::{HoldId, SeatId, UserId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::num::NonZeroU32;

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HoldOutcome {
    Held(HoldInfo),
    /// Some requested seats are held or sold by someone else.
    Taken { seats: Vec<SeatId> },
    /// Seats that are not in the layout.
    UnknownSeat { seats: Vec<SeatId> },
    /// Held + sold for this user would pass `max_seats_per_user`.
    LimitExceeded { limit: u32, current: u32, requested: u32 },
    /// Best-available found no `count` adjacent free seats in one row.
    NoAdjacent,
    /// Best-available named a category the layout does not have.
    UnknownCategory,
    /// Empty list or the same seat twice.
    InvalidRequest,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// Sold now, or already sold (idempotent).
    Sold(HoldInfo),
    /// Lapsed or released: nothing sold.
    Expired,
    NotFound,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtendOutcome {
    Extended(HoldInfo),
    /// Would pass `max_ttl_s` from the hold's creation.
    TooLong { max_expires_at: Timestamp },
    /// Not held any more (expired, released or sold).
    NotHeld,
    NotFound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseOutcome {
    Released,
    /// Already released or expired: nothing to do.
    AlreadyGone,
    /// Sold seats are not released.
    Sold,
    NotFound,
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeatChange {
    Placeholder,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatSnapshot {}

#[derive(Debug)]
pub struct SeatMap {}

#[allow(unused_variables, clippy::todo)]
impl SeatMap {
    /// `layout` is already validated; `seed` drives the spreading of best-available picks.
    pub fn new(layout: &[RowRange], policy: HoldPolicy, seed: [u8; 32]) -> Self {
        todo!()
    }
    pub fn apply(&mut self, change: &SeatChange, at: Timestamp) {
        todo!()
    }
    pub fn hold(
        &mut self,
        user: &UserId,
        choice: &SeatChoice,
        now: Timestamp,
        out: &mut Vec<SeatChange>,
    ) -> HoldOutcome {
        todo!()
    }
    pub fn get(&self, hold: HoldId, now: Timestamp) -> Option<HoldInfo> {
        todo!()
    }
    pub fn confirm(
        &mut self,
        hold: HoldId,
        order: &str,
        now: Timestamp,
        out: &mut Vec<SeatChange>,
    ) -> ConfirmOutcome {
        todo!()
    }
    pub fn extend(
        &mut self,
        hold: HoldId,
        ttl_s: u32,
        now: Timestamp,
        out: &mut Vec<SeatChange>,
    ) -> ExtendOutcome {
        todo!()
    }
    pub fn release(
        &mut self,
        hold: HoldId,
        now: Timestamp,
        out: &mut Vec<SeatChange>,
    ) -> ReleaseOutcome {
        todo!()
    }
    /// Expires due holds (emitting changes) and recycles old hold slots; returns holds expired.
    pub fn tick(&mut self, now: Timestamp, out: &mut Vec<SeatChange>) -> u64 {
        todo!()
    }
    pub fn counts(&self, now: Timestamp) -> SeatCounts {
        todo!()
    }
    pub fn section_rows(&self, section: &str, now: Timestamp) -> Option<Vec<RowStatus>> {
        todo!()
    }
    /// True when any seat is held (unexpired at `now`) or sold.
    pub fn in_use(&self, now: Timestamp) -> bool {
        todo!()
    }
    pub fn to_snapshot(&self) -> SeatSnapshot {
        todo!()
    }
    pub fn from_snapshot(snap: SeatSnapshot, layout: &[RowRange], policy: HoldPolicy) -> Self {
        todo!()
    }
}
