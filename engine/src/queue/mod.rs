//! The waiting room of one event (owns I3 FIFO and I7 capacity/rate; the
//! pass expiry half of I4).
//!
//! Sans-I/O and deterministic: every operation takes `now`; the only
//! randomness is the room's `seed`. Every change of journaled state is a
//! [`QueueChange`] built by an operation, applied with [`WaitingRoom::apply`]
//! and pushed to `out`; applying the pushed changes to a room restored with
//! [`WaitingRoom::from_snapshot`] reproduces the state exactly. Presence
//! (when a user was last heard from) is soft state: it is not journaled;
//! the decisions taken from it (idle drops) are.
//!
//! # Tickets
//! `join` hands out a ticket, per (event, user): a user whose ticket is still
//! live (pre-queue, waiting or admitted) gets the same ticket and place back.
//! A ticket is 22 characters, unguessable, unforgeable and stored nowhere:
//!
//! ```text
//! base64url-no-pad( uid as u32 LE ‖ first 12 bytes of SipHash-2-4-128(ticket_key, uid LE) )
//! ```
//!
//! where `uid` is the room's join sequence number. Anything that does not
//! decode strictly and verify (constant-time) is
//! [`QueueRejection::TicketNotFound`].
//!
//! # Pre-queue and the verifiable draw
//! Joins before `opens_at` are in state `prequeue`, unordered. At opening (the
//! first `open_if_due`, `join` or `tick` at or after `opens_at`) they are
//! ordered, with `prequeue: fifo` by join order, with `prequeue: random` by
//! ascending
//!
//! ```text
//! SHA-256( seed (32 bytes) ‖ ticket (22 ASCII bytes) )
//! ```
//!
//! compared byte-wise as 32-byte big-endian numbers ([`prequeue_order_key`];
//! ties, which need a SHA-256 collision, go by join order). [`WaitingRoom::seed_sha256`]
//! is public from the start and [`WaitingRoom::revealed_seed`] after opening,
//! so the draw can be checked by anyone holding the seed and the tickets.
//! Later joins go to the back in join order. A room with no `opens_at`, or
//! one already past at creation, is open at once.
//!
//! # Presence and idle users
//! `status` and a rejoin count as presence: each sets the ticket's presence
//! deadline from the advice it gives (`t + max(idle_timeout, poll_after +
//! ⅔ idle_timeout)`, see [`advice`]). A user in line (pre-queue or waiting)
//! not heard from by the deadline loses the place (state `expired`): every
//! read reports it at once, admission never admits such a user (an idle
//! user at the front is dropped, journaled, and the next one taken), and
//! `tick` sweeps the tickets with a cursor that checks
//! `ceil(tickets × elapsed / (idle_timeout / 4))` tickets per tick (at least
//! 1024, at most all). A full pass therefore takes at most `idle_timeout / 4`
//! of time, so an idle user stops counting in others' positions at most
//! `idle_timeout / 4` (plus one tick) after the deadline. While the advice
//! is at most `idle_timeout / 3` (any line short enough that the poll
//! budget does not bind) the deadline is exactly `idle_timeout` after the
//! last read.
//!
//! # Admission
//! `tick` (every ≤ 50 ms) admits in strict queue order while fewer than
//! `capacity` sessions are live and both rate gates agree (see the
//! `admission` submodule): GCRA spacing `T = ceil(1e9 / admit_per_s)` ns with
//! a 100 ms burst tolerance, and an exact sliding log capping admissions in
//! any `[t, t + 1000 ms)` at `admit_per_s`. Sessions end on `complete`
//! (`left`), `leave` (`left`) or after `session_ttl_s` (`expired`); the slot
//! is free at that instant for every read and for admission, before any sweep
//! journals it. `pause`/`resume` stop and restart admitting; joins go on.
//!
//! # Estimates and polling
//! - `eta_s = ceil(position × mean spacing of the GCRA slot times of the last
//!   64 admissions / 1 s)`; `None` with fewer than 2 admissions measured, while
//!   paused (the measurement restarts on resume) or before opening. While
//!   admission is rate-bound the slots are exactly `T` apart, so a waiting
//!   user's ETA never rises.
//! - `poll_after_ms`, waiting: `max(clamp(min(10 ms × position, eta / 2),
//!   1 000, 30 000), ⌈(1 + ln L) / B × position⌉)` with `L` users in line
//!   and the event's poll budget `B` (`queue.poll_budget_per_s`): the
//!   expected polls/s of the whole line stay within `B` for any `L`, the
//!   front hears most often, and nobody is told to come back after their
//!   turn. Pre-queue: the time until `opens_at` clamped to the same range,
//!   at least `⌈L / B⌉`, and spread by ticket after opening. Admitted: time
//!   until the session ends, same range; ended: 30 000. Rules and proofs:
//!   the [`advice`] module.
//!
//! # Scale
//! Positions are exact in O(log n) with people leaving from anywhere: a live
//! bitset over queue slots plus a Fenwick tree of 64-slot block counts (see
//! the `line` submodule). Per ticket the room keeps one 32-byte record
//! (presence, state, and the user id inline up to 22 bytes, longer ones in an
//! overflow arena) in 65 536-ticket chunks, 9–20 bytes in the user-id index
//! (an 8-byte slot plus a control byte at 44–87 % load), ~0.2 bytes for the
//! line, and 8 more for users ordered by a random pre-queue draw. Measured
//! with 20-byte ids through the engine (`bench` memory probe): 53.7 bytes a
//! user at 1 M, 47.6 at 10 M. A `status` touches one cache line of ticket
//! data plus the (small, hot) line structures.

mod admission;
pub mod advice;
mod line;
mod prequeue;
mod room;
mod ticket;
mod users;

#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod tests;

pub use prequeue::prequeue_order_key;
pub use room::WaitingRoom;
pub use ticket::TICKET_LEN;

use crate::config::PrequeueOrder;
use crate::ids::{EventId, UserId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Key for ticket MACs of one event incarnation (derived by the engine).
pub type TicketKey = [u8; 16];

/// Shortest `poll_after_ms` advice (before the presence cap).
pub const POLL_MIN_MS: u64 = 1_000;
/// Longest `poll_after_ms` advice.
pub const POLL_MAX_MS: u64 = 30_000;
/// `poll_after_ms` grows by this much per place from the front.
pub const POLL_MS_PER_POSITION: u64 = 10;
/// Fewest tickets the idle sweep checks per tick.
pub const SWEEP_MIN: u64 = 1024;

/// What a room is created with (beside its [`QueueConfig`](crate::config::QueueConfig)).
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

/// A user id copied out of the room into a fixed buffer (no allocation):
/// at most [`UserId::MAX_LEN`] bytes of UTF-8.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UserText {
    bytes: [u8; UserId::MAX_LEN],
    len: u8,
}

impl UserText {
    /// `None` for text over [`UserId::MAX_LEN`] bytes (no stored id is).
    pub fn new(s: &str) -> Option<Self> {
        let mut bytes = [0u8; UserId::MAX_LEN];
        bytes.get_mut(..s.len())?.copy_from_slice(s.as_bytes());
        Some(UserText {
            bytes,
            len: u8::try_from(s.len()).ok()?,
        })
    }

    pub fn as_str(&self) -> &str {
        // Copied from a `str` whole: always UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Debug for UserText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserText({:?})", self.as_str())
    }
}

/// [`QueueStatus`] without its heap parts: the ticket is the caller's (a
/// ticket that decodes has one spelling, the one asked about) and the user
/// id is copied into a [`UserText`]. The poll path reads this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusReport {
    pub user: UserText,
    pub state: TicketState,
    pub position: Option<u64>,
    pub waiting: u64,
    pub eta_s: Option<u64>,
    pub poll_after_ms: u64,
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

/// A journaled change to a room. `uid` is the ticket's join sequence number
/// (the first 4 bytes of the ticket). Times come from `apply`'s `at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueChange {
    /// A new ticket `uid` (always the next sequence number) for `user`:
    /// pre-queue before opening, else at the back of the line.
    Joined {
        uid: u32,
        user: UserId,
    },
    /// The room opened: pre-queue users are ordered by `order` (the draw is
    /// recomputed from the seed and the tickets, not stored).
    Opened {
        order: PrequeueOrder,
    },
    /// The front user was admitted at `at`.
    Admitted {
        uid: u32,
    },
    /// The user left the line or gave up the admitted session.
    Left {
        uid: u32,
    },
    /// The admitted user completed the purchase.
    Completed {
        uid: u32,
    },
    /// Users in line dropped for idleness.
    IdleDropped {
        uids: Vec<u32>,
    },
    /// Admitted sessions that ran out.
    SessionsExpired {
        uids: Vec<u32>,
    },
    Paused,
    Resumed,
}

/// An admitted session in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SessionRecord {
    uid: u32,
    admitted_at: Timestamp,
    expires_at: Timestamp,
}

/// Canonical serialisable form of a room (snapshot). Carries journaled state
/// only: presence is never included (a restored room gives everyone in line
/// presence at the restore time), nor the config, seed or keys, which come
/// with [`RoomInit`] and the config at restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    opened: bool,
    paused: bool,
    /// Tickets minted before opening (0 until opened).
    prequeue_len: u32,
    /// Slot → uid of the random pre-queue draw; empty for join order.
    prequeue_order: Vec<u32>,
    /// Per uid: length of its user id in `user_bytes`.
    user_lens: Vec<u8>,
    user_bytes: Vec<u8>,
    /// Per uid: stored state code.
    states: Vec<u8>,
    sessions: Vec<SessionRecord>,
    served: u64,
    tat_ns: u64,
    slot_ns: Vec<u64>,
    recent_ms: Vec<u64>,
    /// Most users ever in line at once: bounds the longest poll advice the
    /// room can have given, which a restore grants everyone as presence.
    peak_in_line: u64,
}

impl RoomSnapshot {
    /// Tickets minted in the snapshotted room.
    pub fn tickets(&self) -> usize {
        self.states.len()
    }
}
