//! Canonical snapshot of a seat map: the semantic state only (seed, hold
//! counter, slots in index order); every index is rebuilt on restore, so two
//! maps in the same state have equal snapshots.
//!
//! Invariant: part of I6, a map rebuilt from its snapshot equals the map
//! that took it (a layout fingerprint refuses a snapshot of another venue).

use super::layout::Layout;
use super::{Hold, HoldState, SeatList, SeatMap, Slot, NO_HOLD, TERMINAL_RETENTION_MS};
use crate::config::HoldPolicy;
use crate::ids::UserId;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Serialisable state of a [`SeatMap`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatSnapshot {
    /// Fingerprint of the layout the seat indexes refer to.
    layout: u64,
    seed: [u8; 32],
    holds_made: u64,
    slots: Vec<SlotSnapshot>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SlotSnapshot {
    generation: u32,
    hold: Option<HoldSnapshot>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct HoldSnapshot {
    /// Writer epoch of the hold's id.
    epoch: u64,
    user: UserId,
    seats: Vec<u32>,
    created_at: Timestamp,
    expires_at: Timestamp,
    state: HoldState,
    /// Released/expired only.
    ended_at: Option<Timestamp>,
    order: Option<String>,
}

/// Why [`SeatMap::try_from_snapshot`] refused a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("the snapshot was taken on another seat layout")]
    OtherLayout,
    #[error("hold slot {slot} names a seat that does not exist or is already taken")]
    SeatConflict { slot: u32 },
    #[error("the snapshot has more hold slots than ids can name")]
    TooManySlots,
}

impl SeatSnapshot {
    pub(super) fn capture(map: &SeatMap) -> Self {
        SeatSnapshot {
            layout: map.layout.fingerprint,
            seed: map.seed,
            holds_made: map.holds_made,
            slots: map
                .slots
                .iter()
                .map(|s| SlotSnapshot {
                    generation: s.generation,
                    hold: s.hold.as_ref().map(|h| HoldSnapshot {
                        epoch: h.epoch,
                        user: h.user.clone(),
                        seats: h.seats.to_vec(),
                        created_at: h.created_at,
                        expires_at: h.expires_at,
                        state: h.state,
                        ended_at: h.state.is_terminal().then_some(h.ended_at),
                        order: h.order.as_deref().map(str::to_owned),
                    }),
                })
                .collect(),
        }
    }

    /// Number of hold slots (live, ended or vacant).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }
}

/// Rebuilds a map and its indexes. Whatever does not fit is dropped (a live
/// hold keeps only the seats that exist and are not taken by an earlier slot)
/// and the first such problem is reported.
pub(super) fn restore(
    snap: SeatSnapshot,
    layout: Layout,
    policy: HoldPolicy,
) -> (SeatMap, Option<SnapshotError>) {
    let mut map = SeatMap::empty(layout, policy, snap.seed);
    map.holds_made = snap.holds_made;
    let mut problem = (snap.layout != map.layout.fingerprint).then_some(SnapshotError::OtherLayout);
    map.slots.reserve(snap.slots.len());
    for (i, slot) in snap.slots.into_iter().enumerate() {
        let index = match u32::try_from(i) {
            Ok(index) if index != NO_HOLD => index,
            _ => {
                problem.get_or_insert(SnapshotError::TooManySlots);
                break;
            }
        };
        let Some(h) = slot.hold else {
            map.vacant.insert(index);
            map.slots.push(Slot {
                generation: slot.generation,
                hold: None,
            });
            continue;
        };
        let mut seats = h.seats;
        if matches!(h.state, HoldState::Held | HoldState::Sold) {
            let before = seats.len();
            seats.retain(|&s| {
                let free = map.seat_hold.get(s as usize) == Some(&NO_HOLD);
                if free {
                    map.seat_hold[s as usize] = index;
                }
                free
            });
            if seats.len() != before {
                problem.get_or_insert(SnapshotError::SeatConflict { slot: index });
            }
            map.occupy(&seats, h.state == HoldState::Sold);
            let n = seats.len() as u32;
            map.add_user_seats(&h.user, n);
        }
        let ended_at = h.ended_at.unwrap_or(h.expires_at);
        match h.state {
            HoldState::Held => {
                map.timer.insert((h.expires_at, index, slot.generation));
            }
            HoldState::Released | HoldState::Expired => {
                map.recycle.insert((
                    ended_at.plus_ms(TERMINAL_RETENTION_MS),
                    index,
                    slot.generation,
                ));
            }
            HoldState::Sold => {}
        }
        map.slots.push(Slot {
            generation: slot.generation,
            hold: Some(Hold {
                epoch: h.epoch,
                user: h.user,
                seats: SeatList::new(&seats),
                created_at: h.created_at,
                expires_at: h.expires_at,
                state: h.state,
                ended_at: if h.state.is_terminal() {
                    ended_at
                } else {
                    Timestamp::ZERO
                },
                order: h.order.map(String::into_boxed_str),
            }),
        });
    }
    (map, problem)
}
