//! boxoffice engine: the sans-I/O, deterministic core of boxoffice.
//!
//! Waiting rooms ([`queue`]), seat holds ([`seats`]) and limited coupons
//! ([`coupons`]) live in shards; every state change is appended to a per-shard
//! ordered journal ([`journal`]) from which a snapshot plus the later entries
//! rebuild the state exactly. The engine reads no clock, does no I/O and
//! spawns nothing: every operation takes `now`.
//!
//! Where the invariants live: I1 [`seats`], I2 [`coupons`], I3 and I7
//! [`queue`], I4 [`time`], [`passes`], `seats::expiry`, I5 [`idempotency`],
//! I6 [`journal`] and the shard journal (receipts: [`Receipt`]), I8 [`keys`],
//! [`queue`] tickets and the pass check in [`engine`].
#![forbid(unsafe_code)]

mod chunked;
pub mod config;
pub mod coupons;
pub mod engine;
pub mod idempotency;
pub mod ids;
pub mod journal;
pub mod keys;
pub mod passes;
pub mod queue;
pub mod seats;
mod shard;
mod split_table;
pub mod time;
mod user_counts;
pub mod user_token;

pub use config::{
    CouponConfig, EventConfig, HoldPolicy, Identity, PrequeueOrder, QueueConfig, RowRange,
};
pub use engine::{
    ClaimReply, Engine, EngineConfig, EventInfo, EventStats, EventSummary, HoldReply, JoinAs,
    JoinKey, Joined, PassCheck, PassInvalid, Phase, PutOutcome, Receipt, Rejection, RestoreError,
    Snapshot, TickReport, TicketReport, TicketView,
};
pub use ids::{ClaimId, CouponId, EventId, HoldId, IdempotencyKey, SeatId, UserId};
pub use journal::{Change, Entry};
pub use passes::{PassClaims, PassError, PassKey, PassKeys};
pub use shard::{EventSnapshot, Misfit, ShardSnapshot};
pub use time::Timestamp;
pub use user_token::{UserToken, UserTokenError};
