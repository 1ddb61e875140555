//! The waiting room of one event (owns I3 FIFO and I7 capacity/rate; the
//! pass expiry half of I4).
//!
//! INTERFACE STUB — implementation pending (see the module contract below).
//!
//! Contract shared by every domain module:
//! - every change of semantic state is made by building a [`QueueChange`],
//!   calling [`WaitingRoom::apply`] with it and pushing it to `out`; replaying
//!   the pushed changes through `apply` on a restored room reproduces the state;
//! - presence (`last_seen`) is soft state: it is not journaled; decisions taken
//!   from it (idle drops) are.

use crate::config::QueueConfig;
use crate::ids::{EventId, UserId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Key for ticket MACs of one event incarnation (derived by the engine).
pub type TicketKey = [u8; 16];

/// What a room is created with (beside its [`QueueConfig`]).
#[derive(Clone, Debug)]
pub struct RoomInit {
    pub event: EventId,
    pub incarnation: u64,
    pub seed: [u8; 32],
    pub opens_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub ticket_key: TicketKey,
}

/// State of a ticket as the contract names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketState {
    Prequeue,
    Waiting,
    Admitted,
    /// Dropped for idleness, or the admitted session ran out.
    Expired,
    /// Left the line, or completed the purchase.
    Left,
}

impl TicketState {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::Prequeue => "prequeue",
            TicketState::Waiting => "waiting",
            TicketState::Admitted => "admitted",
            TicketState::Expired => "expired",
            TicketState::Left => "left",
        }
    }
}

/// The admitted session behind a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    pub admitted_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What `status` and `join` report for one ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueStatus {
    pub ticket: String,
    pub user: UserId,
    pub state: TicketState,
    /// 1 = next in; only while waiting.
    pub position: Option<u64>,
    /// Live users in line (prequeue or waiting).
    pub waiting: u64,
    /// Only while waiting and the admission rate is known.
    pub eta_s: Option<u64>,
    pub poll_after_ms: u64,
    /// Only while admitted.
    pub admission: Option<Admission>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinOutcome {
    /// False when the user already held a live ticket (same ticket, same place).
    pub created: bool,
    pub status: QueueStatus,
}

/// Requests the room turns down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueRejection {
    /// `max_waiting` users are already in line.
    Full,
    /// Malformed, forged or unknown ticket.
    TicketNotFound,
    /// `complete` on a ticket that is not admitted.
    NotAdmitted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomPhase {
    Prequeue,
    Open,
    Paused,
}

/// Counts from one `tick`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoomTick {
    pub admitted: u64,
    pub idle_dropped: u64,
    pub sessions_expired: u64,
    pub opened: bool,
}

/// A journaled change to a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueChange {
    Placeholder,
}

/// Canonical serialisable form of a room (snapshot).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSnapshot {}

impl RoomSnapshot {
    /// Forget presence (soft state) so two snapshots compare on journaled state only.
    pub fn clear_presence(&mut self) {}
}

#[derive(Debug)]
pub struct WaitingRoom {}

#[allow(unused_variables, clippy::todo)]
impl WaitingRoom {
    pub fn new(cfg: &QueueConfig, init: RoomInit) -> Self {
        todo!()
    }
    pub fn reconfigure(&mut self, cfg: &QueueConfig, opens_at: Option<Timestamp>) {
        todo!()
    }
    pub fn apply(&mut self, change: &QueueChange, at: Timestamp) {
        todo!()
    }
    pub fn join(
        &mut self,
        user: &UserId,
        now: Timestamp,
        out: &mut Vec<QueueChange>,
    ) -> Result<JoinOutcome, QueueRejection> {
        todo!()
    }
    pub fn status(&self, ticket: &str, now: Timestamp) -> Result<QueueStatus, QueueRejection> {
        todo!()
    }
    pub fn leave(
        &mut self,
        ticket: &str,
        now: Timestamp,
        out: &mut Vec<QueueChange>,
    ) -> Result<(), QueueRejection> {
        todo!()
    }
    pub fn complete(
        &mut self,
        ticket: &str,
        now: Timestamp,
        out: &mut Vec<QueueChange>,
    ) -> Result<(), QueueRejection> {
        todo!()
    }
    pub fn needs_open(&self, now: Timestamp) -> bool {
        todo!()
    }
    pub fn open_if_due(&mut self, now: Timestamp, out: &mut Vec<QueueChange>) -> bool {
        todo!()
    }
    pub fn tick(&mut self, now: Timestamp, out: &mut Vec<QueueChange>) -> RoomTick {
        todo!()
    }
    pub fn pause(&mut self, now: Timestamp, out: &mut Vec<QueueChange>) {
        todo!()
    }
    pub fn resume(&mut self, now: Timestamp, out: &mut Vec<QueueChange>) {
        todo!()
    }
    pub fn phase(&self, now: Timestamp) -> RoomPhase {
        todo!()
    }
    pub fn waiting(&self, now: Timestamp) -> u64 {
        todo!()
    }
    pub fn admitted(&self, now: Timestamp) -> u64 {
        todo!()
    }
    pub fn served(&self) -> u64 {
        todo!()
    }
    pub fn seed_sha256(&self) -> [u8; 32] {
        todo!()
    }
    pub fn revealed_seed(&self) -> Option<[u8; 32]> {
        todo!()
    }
    pub fn is_admitted(&self, ticket: &str, now: Timestamp) -> bool {
        todo!()
    }
    pub fn to_snapshot(&self) -> RoomSnapshot {
        todo!()
    }
    pub fn from_snapshot(
        snap: RoomSnapshot,
        cfg: &QueueConfig,
        init: RoomInit,
        now: Timestamp,
    ) -> Self {
        todo!()
    }
}
