//! The engine: shards behind locks, and the operations the server calls.
//!
//! Events and coupons hash to shards (FNV-1a of the id, stable across builds
//! so snapshots restore onto the same layout). Operations on different shards
//! run in parallel; reads (status, counts) take the shard's shared lock.

use crate::config::{ConfigError, CouponConfig, EventConfig};
use crate::coupons::{ClaimOutcome, ConfigureOutcome, CouponCounts, ReturnOutcome};
use crate::idempotency::IdempotencyStore;
use crate::idempotency::{fingerprint, IdemLookup, IdemOutcome, IdemRecord, IdemScope};
use crate::ids::{ClaimId, CouponId, EventId, HoldId, IdempotencyKey, UserId};
use crate::journal::{Change, Entry};
use crate::passes::{self, PassClaims, PassError, PassKeys};
use crate::queue::{QueueRejection, QueueStatus, RoomPhase, TicketState};
use crate::seats::{
    ConfirmOutcome, ExtendOutcome, HoldInfo, HoldOutcome, ReleaseOutcome, RowStatus, SeatChoice,
    SeatCounts,
};
use crate::shard::{EventState, Shard, ShardSnapshot};
use crate::time::Timestamp;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;

/// How an engine is built.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub shards: NonZeroUsize,
    /// Root secret for ticket MACs (per-event keys are derived from it).
    pub secret: [u8; 32],
    /// Keys that sign and verify passes.
    pub pass_keys: PassKeys,
    /// Keep journal entries for [`Engine::drain_journal`]. Off: changes are
    /// numbered but not kept (memory-only servers).
    pub journal: bool,
    /// How long an idempotency key is remembered.
    pub idempotency_window_ms: u64,
    /// Most idempotency keys kept per shard.
    pub idempotency_max_keys: usize,
}

impl EngineConfig {
    pub fn new(secret: [u8; 32], pass_keys: PassKeys) -> Self {
        EngineConfig {
            shards: NonZeroUsize::new(16).unwrap_or(NonZeroUsize::MIN),
            secret,
            pass_keys,
            journal: false,
            idempotency_window_ms: 24 * 3600 * 1000,
            idempotency_max_keys: 1_000_000,
        }
    }
}

/// Why a request was turned down. Each maps to one error code of the HTTP contract.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no such event")]
    EventNotFound,
    #[error("the event has no waiting room")]
    NoQueue,
    #[error("the waiting room is full")]
    QueueFull,
    #[error("the event is closed: every seat is sold")]
    EventClosed,
    #[error("no such ticket")]
    TicketNotFound,
    #[error("the ticket is not admitted")]
    NotAdmitted,
    #[error("the event has holds or sales and cannot be replaced")]
    EventInUse,
    #[error("invalid configuration: {0}")]
    InvalidConfig(ConfigError),
    #[error("some seats are not available")]
    SeatsUnavailable { seats: Vec<String> },
    #[error("some seats do not exist")]
    UnknownSeat { seats: Vec<String> },
    #[error("no such seat category")]
    UnknownCategory,
    #[error("no {count} adjacent free seats in one row")]
    NoAdjacent { count: u32 },
    #[error("the user would pass the limit of {limit} seats")]
    LimitExceeded {
        limit: u32,
        current: u32,
        requested: u32,
    },
    #[error("{0}")]
    InvalidRequest(String),
    #[error("no such section")]
    SectionNotFound,
    #[error("no such hold")]
    HoldNotFound,
    #[error("the hold expired or was released")]
    HoldExpired,
    #[error("the hold is not held any more")]
    NotHeld,
    #[error("a hold may not live past {max_expires_at}")]
    TtlTooLong { max_expires_at: Timestamp },
    #[error("sold seats cannot be released")]
    HoldSold,
    #[error("no such coupon")]
    CouponNotFound,
    #[error("the user already has the most claims allowed")]
    AlreadyClaimed,
    #[error("the coupon is sold out")]
    SoldOut,
    #[error("the coupon is not open for claims now")]
    NotOpen,
    #[error("no such claim")]
    ClaimNotFound,
    #[error("stock cannot go below the {issued} already issued")]
    StockBelowIssued { issued: u32 },
    #[error("this idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error("a pass is required")]
    PassRequired,
    #[error("invalid pass: {0}")]
    PassInvalid(PassInvalid),
}

/// Why a pass was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PassInvalid {
    #[error("{0}")]
    Token(PassError),
    #[error("the pass is for another event")]
    OtherEvent,
    #[error("the pass is for another user")]
    OtherUser,
    #[error("the session behind the pass has ended")]
    SessionEnded,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    Prequeue,
    Open,
    Paused,
    Closed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Prequeue => "prequeue",
            Phase::Open => "open",
            Phase::Paused => "paused",
            Phase::Closed => "closed",
        }
    }
}

/// The event document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventInfo {
    pub id: EventId,
    pub config: EventConfig,
    pub created_at: Timestamp,
    pub phase: Phase,
    pub waiting: u64,
    pub admitted: u64,
    pub served: u64,
    pub seats: SeatCounts,
    pub prequeue_seed_sha256: Option<[u8; 32]>,
    pub prequeue_seed: Option<[u8; 32]>,
}

/// An event's counts, without its configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventStats {
    pub id: EventId,
    pub phase: Phase,
    pub waiting: u64,
    pub admitted: u64,
    pub served: u64,
    pub seats: SeatCounts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    Replaced,
}

/// A ticket's status plus, when admitted, its signed pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketView {
    pub event: EventId,
    pub status: QueueStatus,
    pub pass: Option<String>,
    pub pass_expires_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    pub created: bool,
    pub view: TicketView,
}

/// A hold outcome with whether it was an idempotent replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldReply {
    pub hold: HoldInfo,
    pub replayed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimReply {
    pub claim: ClaimId,
    pub coupon: CouponId,
    pub user: UserId,
    pub remaining: u32,
    pub replayed: bool,
}

/// What one [`Engine::tick`] did, summed over all shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    pub admitted: u64,
    pub idle_dropped: u64,
    pub sessions_expired: u64,
    pub holds_expired: u64,
    pub rooms_opened: u64,
}

/// Everything needed to rebuild an engine: one canonical snapshot per shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub shards: Vec<ShardSnapshot>,
}

impl Snapshot {
    pub fn clear_presence(&mut self) {
        self.shards
            .iter_mut()
            .for_each(ShardSnapshot::clear_presence);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("snapshot has {found} shards, the engine is configured with {expected}")]
    ShardCount { found: usize, expected: usize },
    #[error("shard {shard}: expected seq {expected}, found {found}")]
    Gap {
        shard: u32,
        expected: u64,
        found: u64,
    },
    #[error("entry names shard {0}, which does not exist")]
    NoSuchShard(u32),
}

/// The engine. `Send + Sync`; share it with an `Arc`.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    shards: Box<[RwLock<Shard>]>,
}

fn fnv1a(tag: u8, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in std::iter::once(&tag).chain(bytes) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn queue_rejection(r: QueueRejection) -> Rejection {
    match r {
        QueueRejection::Full => Rejection::QueueFull,
        QueueRejection::TicketNotFound => Rejection::TicketNotFound,
        QueueRejection::NotAdmitted => Rejection::NotAdmitted,
    }
}

fn event_phase(e: &EventState, now: Timestamp) -> Phase {
    if e.seats.sold_out() {
        return Phase::Closed;
    }
    match &e.room {
        Some(room) => match room.phase(now) {
            RoomPhase::Prequeue => Phase::Prequeue,
            RoomPhase::Open => Phase::Open,
            RoomPhase::Paused => Phase::Paused,
        },
        None if e.config.opens_at.is_some_and(|o| now < o) => Phase::Prequeue,
        None => Phase::Open,
    }
}

fn event_info(e: &EventState, now: Timestamp) -> EventInfo {
    let room = e.room.as_ref();
    EventInfo {
        id: e.id.clone(),
        config: e.config.clone(),
        created_at: e.created_at,
        phase: event_phase(e, now),
        waiting: room.map_or(0, |r| r.waiting(now)),
        admitted: room.map_or(0, |r| r.admitted(now)),
        served: room.map_or(0, |r| r.served()),
        seats: e.seats.counts(now),
        prequeue_seed_sha256: room.map(|r| r.seed_sha256()),
        prequeue_seed: room.and_then(|r| r.revealed_seed()),
    }
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Self {
        let shards = (0..cfg.shards.get())
            .map(|i| {
                let idem =
                    IdempotencyStore::new(cfg.idempotency_window_ms, cfg.idempotency_max_keys);
                RwLock::new(Shard::new(i as u32, cfg.journal, idem, cfg.secret))
            })
            .collect();
        Engine { cfg, shards }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub fn shard_of_event(&self, event: &EventId) -> usize {
        (fnv1a(b'e', event.as_str().as_bytes()) % self.shards.len() as u64) as usize
    }

    pub fn shard_of_coupon(&self, coupon: &CouponId) -> usize {
        (fnv1a(b'c', coupon.as_str().as_bytes()) % self.shards.len() as u64) as usize
    }

    fn event_shard(&self, event: &EventId) -> &RwLock<Shard> {
        &self.shards[self.shard_of_event(event)]
    }

    fn coupon_shard(&self, coupon: &CouponId) -> &RwLock<Shard> {
        &self.shards[self.shard_of_coupon(coupon)]
    }

    /// Takes the journal entries recorded since the last call (journal on).
    pub fn drain_journal(&self, shard: usize) -> Vec<Entry> {
        self.shards
            .get(shard)
            .map(|s| s.write().take_journal())
            .unwrap_or_default()
    }

    /// `seq` of the last change recorded in a shard.
    pub fn journal_seq(&self, shard: usize) -> u64 {
        self.shards.get(shard).map_or(0, |s| s.read().seq)
    }

    // ---- events -------------------------------------------------------

    /// Creates or replaces an event. `seed` (used on creation only) drives the
    /// pre-queue shuffle and best-available spreading; give fresh randomness.
    pub fn put_event(
        &self,
        id: &EventId,
        config: EventConfig,
        seed: [u8; 32],
        now: Timestamp,
    ) -> Result<(PutOutcome, EventInfo), Rejection> {
        config.validate().map_err(Rejection::InvalidConfig)?;
        let mut shard = self.event_shard(id).write();
        let now = shard.advance(now);
        let outcome = match shard.events.get(id) {
            Some(e) if e.seats.in_use(now) => return Err(Rejection::EventInUse),
            Some(_) => PutOutcome::Replaced,
            None => PutOutcome::Created,
        };
        let incarnation = shard.seq + 1;
        shard.commit(
            now,
            Change::EventPut {
                event: id.clone(),
                config: Box::new(config),
                seed,
                incarnation,
            },
        );
        let info = shard.events.get(id).map(|e| event_info(e, now));
        info.map(|i| (outcome, i)).ok_or(Rejection::EventNotFound)
    }

    pub fn delete_event(&self, id: &EventId, now: Timestamp) -> Result<(), Rejection> {
        let mut shard = self.event_shard(id).write();
        let now = shard.advance(now);
        if !shard.events.contains_key(id) {
            return Err(Rejection::EventNotFound);
        }
        shard.commit(now, Change::EventDeleted { event: id.clone() });
        Ok(())
    }

    pub fn event(&self, id: &EventId, now: Timestamp) -> Result<EventInfo, Rejection> {
        self.open_if_due(id, now);
        let shard = self.event_shard(id).read();
        let now = shard.observe(now);
        shard
            .events
            .get(id)
            .map(|e| event_info(e, now))
            .ok_or(Rejection::EventNotFound)
    }

    /// Every event's document (for metrics and listings), sorted by id.
    pub fn events(&self, now: Timestamp) -> Vec<EventInfo> {
        let mut all: Vec<EventInfo> = self
            .shards
            .iter()
            .flat_map(|s| {
                let s = s.read();
                let now = s.observe(now);
                s.events
                    .values()
                    .map(|e| event_info(e, now))
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Counts of every event without copying configurations (for metrics).
    pub fn event_stats(&self, now: Timestamp) -> Vec<EventStats> {
        let mut all: Vec<EventStats> = self
            .shards
            .iter()
            .flat_map(|s| {
                let s = s.read();
                let now = s.observe(now);
                s.events
                    .values()
                    .map(|e| {
                        let room = e.room.as_ref();
                        EventStats {
                            id: e.id.clone(),
                            phase: event_phase(e, now),
                            waiting: room.map_or(0, |r| r.waiting(now)),
                            admitted: room.map_or(0, |r| r.admitted(now)),
                            served: room.map_or(0, |r| r.served()),
                            seats: e.seats.counts(now),
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Every coupon with its counts, sorted by id.
    pub fn coupons(&self) -> Vec<(CouponId, CouponCounts)> {
        let mut all: Vec<(CouponId, CouponCounts)> = self
            .shards
            .iter()
            .flat_map(|s| {
                let s = s.read();
                s.coupons
                    .values()
                    .map(|c| (c.id().clone(), c.counts()))
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn with_room<T>(
        &self,
        id: &EventId,
        now: Timestamp,
        f: impl FnOnce(
            &mut crate::queue::WaitingRoom,
            &mut Vec<crate::queue::QueueChange>,
            Timestamp,
        ) -> Result<T, Rejection>,
    ) -> Result<T, Rejection> {
        let mut shard = self.event_shard(id).write();
        let now = shard.advance(now);
        let e = shard.events.get_mut(id).ok_or(Rejection::EventNotFound)?;
        let room = e.room.as_mut().ok_or(Rejection::NoQueue)?;
        let mut out = Vec::new();
        let r = f(room, &mut out, now);
        shard.record_all(now, out, |change| Change::Queue {
            event: id.clone(),
            change,
        });
        r
    }

    pub fn pause(&self, id: &EventId, now: Timestamp) -> Result<EventInfo, Rejection> {
        self.with_room(id, now, |room, out, now| {
            room.pause(now, out);
            Ok(())
        })?;
        self.event(id, now)
    }

    pub fn resume(&self, id: &EventId, now: Timestamp) -> Result<EventInfo, Rejection> {
        self.with_room(id, now, |room, out, now| {
            room.resume(now, out);
            Ok(())
        })?;
        self.event(id, now)
    }

    // ---- waiting room -------------------------------------------------

    /// Opens a pre-queue whose time has come (a write, taken only when due).
    fn open_if_due(&self, id: &EventId, now: Timestamp) {
        let due = {
            let shard = self.event_shard(id).read();
            let now = shard.observe(now);
            shard
                .events
                .get(id)
                .and_then(|e| e.room.as_ref())
                .is_some_and(|r| r.needs_open(now))
        };
        if due {
            let _ = self.with_room(id, now, |room, out, now| {
                room.open_if_due(now, out);
                Ok(())
            });
        }
    }

    fn view(&self, e: &EventState, status: QueueStatus) -> TicketView {
        let (pass, pass_expires_at) = match status.admission {
            Some(a) if status.state == TicketState::Admitted => {
                let claims = PassClaims {
                    event: e.id.to_string(),
                    user: status.user.to_string(),
                    ticket: status.ticket.clone(),
                    issued_ms: a.admitted_at.as_millis(),
                    expires_ms: a.expires_at.as_millis(),
                };
                (
                    Some(passes::sign(&claims, &self.cfg.pass_keys.current)),
                    Some(a.expires_at),
                )
            }
            _ => (None, None),
        };
        TicketView {
            event: e.id.clone(),
            status,
            pass,
            pass_expires_at,
        }
    }

    pub fn join(&self, id: &EventId, user: &UserId, now: Timestamp) -> Result<Joined, Rejection> {
        let mut shard = self.event_shard(id).write();
        let now = shard.advance(now);
        let e = shard.events.get_mut(id).ok_or(Rejection::EventNotFound)?;
        if e.room.is_none() {
            return Err(Rejection::NoQueue);
        }
        if event_phase(e, now) == Phase::Closed {
            return Err(Rejection::EventClosed);
        }
        let mut out = Vec::new();
        let result = e
            .room
            .as_mut()
            .map(|room| room.join(user, now, &mut out))
            .ok_or(Rejection::NoQueue)?;
        let joined = result.map(|j| (j.created, j.status));
        let view = match &joined {
            Ok((_, status)) => Some(self.view(e, status.clone())),
            Err(_) => None,
        };
        shard.record_all(now, out, |change| Change::Queue {
            event: id.clone(),
            change,
        });
        let (created, _) = joined.map_err(queue_rejection)?;
        view.map(|view| Joined { created, view })
            .ok_or(Rejection::TicketNotFound)
    }

    /// A ticket's status; counts as the user's presence. Takes the shared
    /// lock once; only the first read after `opens_at` (the opening) writes.
    pub fn status(
        &self,
        id: &EventId,
        ticket: &str,
        now: Timestamp,
    ) -> Result<TicketView, Rejection> {
        let mut opened = false;
        loop {
            let shard = self.event_shard(id).read();
            let now = shard.observe(now);
            let e = shard.events.get(id).ok_or(Rejection::EventNotFound)?;
            let room = e.room.as_ref().ok_or(Rejection::NoQueue)?;
            if !opened && room.needs_open(now) {
                drop(shard);
                self.open_if_due(id, now);
                opened = true;
                continue;
            }
            let status = room.status(ticket, now).map_err(queue_rejection)?;
            return Ok(self.view(e, status));
        }
    }

    pub fn leave(&self, id: &EventId, ticket: &str, now: Timestamp) -> Result<(), Rejection> {
        self.with_room(id, now, |room, out, now| {
            room.leave(ticket, now, out).map_err(queue_rejection)
        })
    }

    pub fn complete(&self, id: &EventId, ticket: &str, now: Timestamp) -> Result<(), Rejection> {
        self.with_room(id, now, |room, out, now| {
            room.complete(ticket, now, out).map_err(queue_rejection)
        })
    }

    /// Checks a pass for a hold: signature, expiry, event, user, and that the
    /// session behind it is still admitted. Events without a waiting room need
    /// no pass. [`Engine::hold_with_pass`] does this and the hold atomically.
    pub fn check_pass(
        &self,
        id: &EventId,
        user: &UserId,
        pass: Option<&str>,
        now: Timestamp,
    ) -> Result<(), Rejection> {
        let shard = self.event_shard(id).read();
        let now = shard.observe(now);
        let e = shard.events.get(id).ok_or(Rejection::EventNotFound)?;
        self.verify_pass(e, user, pass, now)
    }

    fn verify_pass(
        &self,
        e: &EventState,
        user: &UserId,
        pass: Option<&str>,
        now: Timestamp,
    ) -> Result<(), Rejection> {
        let Some(room) = &e.room else {
            return Ok(());
        };
        let pass = pass.ok_or(Rejection::PassRequired)?;
        let invalid = |p| Rejection::PassInvalid(p);
        let claims = passes::verify(pass, &self.cfg.pass_keys, now)
            .map_err(|err| invalid(PassInvalid::Token(err)))?;
        if claims.event != e.id.as_str() {
            return Err(invalid(PassInvalid::OtherEvent));
        }
        if claims.user != user.as_str() {
            return Err(invalid(PassInvalid::OtherUser));
        }
        if !room.is_admitted(&claims.ticket, now) {
            return Err(invalid(PassInvalid::SessionEnded));
        }
        Ok(())
    }

    /// Drives time: opens due pre-queues, ends sessions, drops idle users,
    /// admits, and expires holds, in every shard.
    pub fn tick(&self, now: Timestamp) -> TickReport {
        let mut report = TickReport::default();
        let mut qout = Vec::new();
        let mut sout = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = shard.write();
            let now = shard.advance(now);
            let ids: Vec<EventId> = shard.events.keys().cloned().collect();
            for id in ids {
                let Some(e) = shard.events.get_mut(&id) else {
                    continue;
                };
                if let Some(room) = &mut e.room {
                    let t = room.tick(now, &mut qout);
                    report.admitted += t.admitted;
                    report.idle_dropped += t.idle_dropped;
                    report.sessions_expired += t.sessions_expired;
                    report.rooms_opened += u64::from(t.opened);
                }
                report.holds_expired += e.seats.tick(now, &mut sout);
                shard.record_all(now, qout.drain(..), |change| Change::Queue {
                    event: id.clone(),
                    change,
                });
                shard.record_all(now, sout.drain(..), |change| Change::Seats {
                    event: id.clone(),
                    change,
                });
            }
        }
        report
    }

    // ---- seats --------------------------------------------------------

    fn with_seats<T>(
        &self,
        id: &EventId,
        now: Timestamp,
        f: impl FnOnce(
            &mut crate::seats::SeatMap,
            &mut Vec<crate::seats::SeatChange>,
            Timestamp,
        ) -> Result<T, Rejection>,
    ) -> Result<T, Rejection> {
        let mut shard = self.event_shard(id).write();
        let now = shard.advance(now);
        let e = shard.events.get_mut(id).ok_or(Rejection::EventNotFound)?;
        let mut out = Vec::new();
        let r = f(&mut e.seats, &mut out, now);
        shard.record_all(now, out, |change| Change::Seats {
            event: id.clone(),
            change,
        });
        r
    }

    /// Holds seats, all or nothing, for a trusted caller: no pass is asked
    /// for (an embedding backend that checks passes itself). With an
    /// idempotency key, a retry of the same request returns the first hold
    /// (as it is now).
    pub fn hold(
        &self,
        id: &EventId,
        user: &UserId,
        choice: &SeatChoice,
        key: Option<&IdempotencyKey>,
        now: Timestamp,
    ) -> Result<HoldReply, Rejection> {
        self.hold_inner(id, user, None, choice, key, now)
    }

    /// [`Engine::hold`] for an untrusted caller: on an event with a waiting
    /// room the user's pass is checked under the same lock as the hold, so a
    /// session that ends in between cannot slip a hold through.
    pub fn hold_with_pass(
        &self,
        id: &EventId,
        user: &UserId,
        pass: Option<&str>,
        choice: &SeatChoice,
        key: Option<&IdempotencyKey>,
        now: Timestamp,
    ) -> Result<HoldReply, Rejection> {
        self.hold_inner(id, user, Some(pass), choice, key, now)
    }

    fn hold_inner(
        &self,
        id: &EventId,
        user: &UserId,
        pass: Option<Option<&str>>,
        choice: &SeatChoice,
        key: Option<&IdempotencyKey>,
        now: Timestamp,
    ) -> Result<HoldReply, Rejection> {
        let mut shard = self.event_shard(id).write();
        let now = shard.advance(now);
        if let Some(pass) = pass {
            let e = shard.events.get(id).ok_or(Rejection::EventNotFound)?;
            self.verify_pass(e, user, pass, now)?;
        }
        let scope = IdemScope::Hold(id.clone());
        // Only requests with a key pay for the fingerprint.
        let fp = key.map_or(0, |_| fingerprint(&(user, choice)));
        if let Some(key) = key {
            match shard.idem.lookup(&scope, key, fp, now) {
                IdemLookup::Fresh => {}
                IdemLookup::Conflict => return Err(Rejection::IdempotencyKeyReused),
                IdemLookup::Replay(IdemOutcome::Hold(h)) => {
                    let e = shard.events.get(id).ok_or(Rejection::EventNotFound)?;
                    let hold = e.seats.get(h, now).ok_or(Rejection::HoldNotFound)?;
                    return Ok(HoldReply {
                        hold,
                        replayed: true,
                    });
                }
                IdemLookup::Replay(IdemOutcome::Claim(_)) => {
                    return Err(Rejection::IdempotencyKeyReused)
                }
            }
        }
        let e = shard.events.get_mut(id).ok_or(Rejection::EventNotFound)?;
        let mut out = Vec::new();
        let outcome = e.seats.hold(user, choice, now, &mut out);
        shard.record_all(now, out, |change| Change::Seats {
            event: id.clone(),
            change,
        });
        let names = |v: Vec<crate::ids::SeatId>| v.iter().map(ToString::to_string).collect();
        match outcome {
            HoldOutcome::Held(hold) => {
                if let Some(key) = key {
                    let rec = IdemRecord {
                        scope,
                        key: key.clone(),
                        fingerprint: fp,
                        outcome: IdemOutcome::Hold(hold.id),
                        at: now,
                    };
                    shard.commit(now, Change::Idempotency(rec));
                }
                Ok(HoldReply {
                    hold,
                    replayed: false,
                })
            }
            HoldOutcome::Taken { seats } => Err(Rejection::SeatsUnavailable {
                seats: names(seats),
            }),
            HoldOutcome::UnknownSeat { seats } => Err(Rejection::UnknownSeat {
                seats: names(seats),
            }),
            HoldOutcome::LimitExceeded {
                limit,
                current,
                requested,
            } => Err(Rejection::LimitExceeded {
                limit,
                current,
                requested,
            }),
            HoldOutcome::NoAdjacent => Err(Rejection::NoAdjacent {
                count: match choice {
                    SeatChoice::Best { count, .. } => count.get(),
                    SeatChoice::Exact(s) => s.len() as u32,
                },
            }),
            HoldOutcome::UnknownCategory => Err(Rejection::UnknownCategory),
            HoldOutcome::InvalidRequest => Err(Rejection::InvalidRequest(
                "seats must name at least one seat, each once".into(),
            )),
        }
    }

    pub fn get_hold(
        &self,
        id: &EventId,
        hold: HoldId,
        now: Timestamp,
    ) -> Result<HoldInfo, Rejection> {
        let shard = self.event_shard(id).read();
        let now = shard.observe(now);
        let e = shard.events.get(id).ok_or(Rejection::EventNotFound)?;
        e.seats.get(hold, now).ok_or(Rejection::HoldNotFound)
    }

    pub fn confirm(
        &self,
        id: &EventId,
        hold: HoldId,
        order: &str,
        now: Timestamp,
    ) -> Result<HoldInfo, Rejection> {
        self.with_seats(id, now, |seats, out, now| {
            match seats.confirm(hold, order, now, out) {
                ConfirmOutcome::Sold(info) => Ok(info),
                ConfirmOutcome::Expired => Err(Rejection::HoldExpired),
                ConfirmOutcome::NotFound => Err(Rejection::HoldNotFound),
            }
        })
    }

    pub fn extend(
        &self,
        id: &EventId,
        hold: HoldId,
        ttl_s: u32,
        now: Timestamp,
    ) -> Result<HoldInfo, Rejection> {
        self.with_seats(id, now, |seats, out, now| {
            match seats.extend(hold, ttl_s, now, out) {
                ExtendOutcome::Extended(info) => Ok(info),
                ExtendOutcome::TooLong { max_expires_at } => {
                    Err(Rejection::TtlTooLong { max_expires_at })
                }
                ExtendOutcome::NotHeld => Err(Rejection::HoldExpired),
                ExtendOutcome::NotFound => Err(Rejection::HoldNotFound),
            }
        })
    }

    /// Releases a hold; releasing one already gone is a no-op.
    pub fn release(&self, id: &EventId, hold: HoldId, now: Timestamp) -> Result<(), Rejection> {
        self.with_seats(id, now, |seats, out, now| {
            match seats.release(hold, now, out) {
                ReleaseOutcome::Released | ReleaseOutcome::AlreadyGone => Ok(()),
                ReleaseOutcome::Sold => Err(Rejection::HoldSold),
                ReleaseOutcome::NotFound => Err(Rejection::HoldNotFound),
            }
        })
    }

    pub fn seat_counts(&self, id: &EventId, now: Timestamp) -> Result<SeatCounts, Rejection> {
        let shard = self.event_shard(id).read();
        let now = shard.observe(now);
        let e = shard.events.get(id).ok_or(Rejection::EventNotFound)?;
        Ok(e.seats.counts(now))
    }

    pub fn section_rows(
        &self,
        id: &EventId,
        section: &str,
        now: Timestamp,
    ) -> Result<Vec<RowStatus>, Rejection> {
        let shard = self.event_shard(id).read();
        let now = shard.observe(now);
        let e = shard.events.get(id).ok_or(Rejection::EventNotFound)?;
        e.seats
            .section_rows(section, now)
            .ok_or(Rejection::SectionNotFound)
    }

    // ---- coupons ------------------------------------------------------

    pub fn put_coupon(
        &self,
        id: &CouponId,
        config: CouponConfig,
        now: Timestamp,
    ) -> Result<(PutOutcome, CouponCounts), Rejection> {
        config.validate().map_err(Rejection::InvalidConfig)?;
        let mut shard = self.coupon_shard(id).write();
        let now = shard.advance(now);
        match shard.coupons.get_mut(id) {
            None => {
                shard.commit(now, Shard::put_coupon_change(id, config));
                let counts = shard.coupons.get(id).map(|c| c.counts());
                counts
                    .map(|c| (PutOutcome::Created, c))
                    .ok_or(Rejection::CouponNotFound)
            }
            Some(c) => {
                let mut out = Vec::new();
                let r = c.configure(config, now, &mut out);
                let counts = c.counts();
                shard.record_all(now, out, |change| Change::Coupon {
                    coupon: id.clone(),
                    change,
                });
                match r {
                    ConfigureOutcome::Updated => Ok((PutOutcome::Replaced, counts)),
                    ConfigureOutcome::StockBelowIssued { issued } => {
                        Err(Rejection::StockBelowIssued { issued })
                    }
                }
            }
        }
    }

    pub fn coupon(&self, id: &CouponId) -> Result<(CouponConfig, CouponCounts), Rejection> {
        let shard = self.coupon_shard(id).read();
        let c = shard.coupons.get(id).ok_or(Rejection::CouponNotFound)?;
        Ok((*c.config(), c.counts()))
    }

    pub fn claim(
        &self,
        id: &CouponId,
        user: &UserId,
        key: Option<&IdempotencyKey>,
        now: Timestamp,
    ) -> Result<ClaimReply, Rejection> {
        let mut shard = self.coupon_shard(id).write();
        let now = shard.advance(now);
        let scope = IdemScope::Claim(id.clone());
        let fp = key.map_or(0, |_| fingerprint(user));
        let reply = |claim, remaining, replayed| ClaimReply {
            claim,
            coupon: id.clone(),
            user: user.clone(),
            remaining,
            replayed,
        };
        if let Some(key) = key {
            match shard.idem.lookup(&scope, key, fp, now) {
                IdemLookup::Fresh => {}
                IdemLookup::Replay(IdemOutcome::Claim(claim)) => {
                    let c = shard.coupons.get(id).ok_or(Rejection::CouponNotFound)?;
                    return Ok(reply(claim, c.counts().remaining, true));
                }
                IdemLookup::Conflict | IdemLookup::Replay(IdemOutcome::Hold(_)) => {
                    return Err(Rejection::IdempotencyKeyReused)
                }
            }
        }
        let c = shard.coupons.get_mut(id).ok_or(Rejection::CouponNotFound)?;
        let mut out = Vec::new();
        let outcome = c.claim(user, now, &mut out);
        shard.record_all(now, out, |change| Change::Coupon {
            coupon: id.clone(),
            change,
        });
        match outcome {
            ClaimOutcome::Claimed { claim, remaining } => {
                if let Some(key) = key {
                    let rec = IdemRecord {
                        scope,
                        key: key.clone(),
                        fingerprint: fp,
                        outcome: IdemOutcome::Claim(claim),
                        at: now,
                    };
                    shard.commit(now, Change::Idempotency(rec));
                }
                Ok(reply(claim, remaining, false))
            }
            ClaimOutcome::AlreadyClaimed => Err(Rejection::AlreadyClaimed),
            ClaimOutcome::SoldOut => Err(Rejection::SoldOut),
            ClaimOutcome::NotOpen => Err(Rejection::NotOpen),
        }
    }

    /// Gives a claimed unit back to stock; returning twice is a no-op.
    pub fn return_claim(
        &self,
        id: &CouponId,
        claim: ClaimId,
        now: Timestamp,
    ) -> Result<(), Rejection> {
        let mut shard = self.coupon_shard(id).write();
        let now = shard.advance(now);
        let c = shard.coupons.get_mut(id).ok_or(Rejection::CouponNotFound)?;
        let mut out = Vec::new();
        let r = c.return_claim(claim, now, &mut out);
        shard.record_all(now, out, |change| Change::Coupon {
            coupon: id.clone(),
            change,
        });
        match r {
            ReturnOutcome::Returned | ReturnOutcome::AlreadyReturned => Ok(()),
            ReturnOutcome::NotFound => Err(Rejection::ClaimNotFound),
        }
    }

    // ---- snapshot and restore -------------------------------------------

    /// A canonical snapshot of every shard (each shard read under its lock;
    /// each carries the `seq` it includes).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            shards: self.shards.iter().map(|s| s.read().to_snapshot()).collect(),
        }
    }

    /// Snapshot of one shard.
    pub fn snapshot_shard(&self, shard: usize) -> Option<ShardSnapshot> {
        self.shards.get(shard).map(|s| s.read().to_snapshot())
    }

    /// Rebuilds an engine from a snapshot and the entries recorded after it
    /// (entries at or before a shard's snapshot `seq` are skipped; a gap is an
    /// error). Presence restarts at `now`: nobody is dropped for the downtime.
    pub fn restore(
        cfg: EngineConfig,
        snapshot: Snapshot,
        entries: impl IntoIterator<Item = Entry>,
        now: Timestamp,
    ) -> Result<Engine, RestoreError> {
        if snapshot.shards.len() != cfg.shards.get() {
            return Err(RestoreError::ShardCount {
                found: snapshot.shards.len(),
                expected: cfg.shards.get(),
            });
        }
        let mut shards: Vec<Shard> = snapshot
            .shards
            .into_iter()
            .map(|s| {
                Shard::from_snapshot(
                    s,
                    cfg.journal,
                    cfg.idempotency_window_ms,
                    cfg.idempotency_max_keys,
                    cfg.secret,
                    now,
                )
            })
            .collect();
        for entry in entries {
            let shard = shards
                .get_mut(entry.shard as usize)
                .ok_or(RestoreError::NoSuchShard(entry.shard))?;
            if entry.seq <= shard.seq {
                continue;
            }
            shard.replay(&entry).map_err(|expected| RestoreError::Gap {
                shard: entry.shard,
                expected,
                found: entry.seq,
            })?;
        }
        // Presence is not journaled: whoever was waiting gets a fresh idle
        // window from the restore instant, so downtime drops nobody.
        for shard in &mut shards {
            for e in shard.events.values_mut() {
                if let Some(room) = &mut e.room {
                    room.refresh_presence(now);
                }
            }
        }
        Ok(Engine {
            cfg,
            shards: shards.into_iter().map(RwLock::new).collect(),
        })
    }

    /// An engine with no state, to restore into when there is no snapshot.
    pub fn empty_snapshot(shards: usize) -> Snapshot {
        Snapshot {
            shards: (0..shards)
                .map(|i| ShardSnapshot {
                    index: i as u32,
                    seq: 0,
                    clock: Timestamp::ZERO,
                    events: vec![],
                    coupons: vec![],
                    idempotency: vec![],
                })
                .collect(),
        }
    }
}
