//! A shard: the events and coupons that hash to it, one journal, one lock.
//!
//! A shard is a plain single-threaded struct; the engine puts each behind a
//! `parking_lot::RwLock`. Every change goes through [`Shard::record`], which
//! numbers it; [`Shard::replay`] applies a recorded change to rebuild state.
//!
//! Invariant: the recording half of I6; every change is numbered in `seq`
//! order under the shard's lock, and replay refuses a gap or a change that
//! does not fit the state, never skipping one.

use crate::config::{CouponConfig, EventConfig};
use crate::coupons::Coupon;
use crate::idempotency::{IdemRecord, IdemScope, IdempotencyStore};
use crate::ids::{CouponId, EventId};
use crate::journal::{Change, Entry};
use crate::keys;
use crate::queue::{RoomInit, RoomSnapshot, TicketKey, WaitingRoom};
use crate::seats::{ApplyError, SeatMap, SeatSnapshot};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One event: its configuration, waiting room (if any) and seats.
#[derive(Debug)]
pub(crate) struct EventState {
    pub id: EventId,
    pub config: EventConfig,
    pub seed: [u8; 32],
    pub incarnation: u64,
    pub created_at: Timestamp,
    pub room: Option<WaitingRoom>,
    pub seats: SeatMap,
}

/// Canonical form of an event inside a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSnapshot {
    pub id: EventId,
    pub config: EventConfig,
    pub seed: [u8; 32],
    pub incarnation: u64,
    pub created_at: Timestamp,
    pub room: Option<RoomSnapshot>,
    pub seats: SeatSnapshot,
}

/// Canonical form of a shard: what a snapshot stores and tests compare.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSnapshot {
    pub index: u32,
    /// `seq` of the last change included.
    pub seq: u64,
    /// The shard's clock: the latest `now` any change carried.
    pub clock: Timestamp,
    pub events: Vec<EventSnapshot>,
    pub coupons: Vec<Coupon>,
    pub idempotency: Vec<IdemRecord>,
}

/// Why a journal entry could not be replayed onto a shard.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Misfit {
    #[error("expected seq {expected}")]
    Gap { expected: u64 },
    #[error("no event {0}")]
    NoSuchEvent(EventId),
    #[error("event {0} has no waiting room")]
    NoQueue(EventId),
    #[error("no coupon {0}")]
    NoSuchCoupon(CouponId),
    #[error("seats: {0}")]
    Seats(#[from] ApplyError),
}

#[derive(Debug)]
pub(crate) struct Shard {
    pub index: u32,
    pub seq: u64,
    /// Latest instant of a recorded change. Callers read their clock before waiting
    /// for the lock, so `now` can arrive slightly out of order; writes use
    /// `max(now, clock)` so time never runs backwards inside a shard and the
    /// journal's instants are monotonic.
    pub clock: Timestamp,
    journal: Option<Vec<Entry>>,
    pub events: HashMap<EventId, EventState>,
    pub coupons: HashMap<CouponId, Coupon>,
    pub idem: IdempotencyStore,
    secret: [u8; 32],
}

/// Per-event key for ticket MACs, bound to the event's incarnation and its
/// random creation seed, so tickets of a deleted event never validate
/// against its successor, even when a restart in memory mode starts the
/// incarnation count over (the seed is journaled with `EventPut` and kept in
/// snapshots, so the key survives replay and restore).
pub(crate) fn ticket_key(
    secret: &[u8; 32],
    event: &EventId,
    incarnation: u64,
    seed: &[u8; 32],
) -> TicketKey {
    let mut context = Vec::with_capacity(event.as_str().len() + 8 + 32);
    context.extend_from_slice(event.as_str().as_bytes());
    context.extend_from_slice(&incarnation.to_le_bytes());
    context.extend_from_slice(seed);
    keys::derive16(secret, keys::label::TICKET_KEY, &context)
}

impl EventState {
    fn room_init(&self, secret: &[u8; 32]) -> RoomInit {
        RoomInit {
            event: self.id.clone(),
            incarnation: self.incarnation,
            seed: self.seed,
            opens_at: self.config.opens_at,
            created_at: self.created_at,
            ticket_key: ticket_key(secret, &self.id, self.incarnation, &self.seed),
        }
    }
}

impl Shard {
    pub fn new(index: u32, journal: bool, idem: IdempotencyStore, secret: [u8; 32]) -> Self {
        Shard {
            index,
            seq: 0,
            clock: Timestamp::ZERO,
            journal: journal.then(Vec::new),
            events: HashMap::new(),
            coupons: HashMap::new(),
            idem,
            secret,
        }
    }

    /// The instant a write at caller time `now` takes effect: never earlier
    /// than a recorded change. The clock itself moves only in [`Shard::record`],
    /// so it is journaled state and replays exactly.
    pub fn advance(&self, now: Timestamp) -> Timestamp {
        self.clock.max(now)
    }

    /// The instant a read at caller time `now` observes.
    pub fn observe(&self, now: Timestamp) -> Timestamp {
        self.clock.max(now)
    }

    /// Numbers a change that has already been applied and keeps it for the journal.
    pub fn record(&mut self, at: Timestamp, change: Change) {
        self.seq += 1;
        self.clock = self.clock.max(at);
        if let Some(j) = &mut self.journal {
            j.push(Entry {
                shard: self.index,
                seq: self.seq,
                at,
                change,
            });
        }
    }

    /// Records a module's changes (already applied by the module), each
    /// wrapped into its journal form by `wrap`.
    pub fn record_all<C>(
        &mut self,
        at: Timestamp,
        changes: impl IntoIterator<Item = C>,
        wrap: impl Fn(C) -> Change,
    ) {
        for change in changes {
            self.record(at, wrap(change));
        }
    }

    pub fn take_journal(&mut self) -> Vec<Entry> {
        match &mut self.journal {
            Some(j) => std::mem::take(j),
            // Journal off: changes are numbered, not kept.
            None => Vec::new(),
        }
    }

    /// Applies a shard-level change (events, coupons, idempotency) and records it.
    pub fn commit(&mut self, at: Timestamp, change: Change) {
        // Shard-level changes create, replace or forget whole entries and
        // always apply; only module changes can meet a state they do not fit.
        self.apply(&change, at)
            .expect("a shard-level change always applies");
        self.record(at, change);
    }

    /// Replays one journal entry: the next `seq` must follow, and the change
    /// must fit the state (a change that does not is an error, never skipped).
    pub fn replay(&mut self, entry: &Entry) -> Result<(), Misfit> {
        if entry.seq != self.seq + 1 {
            return Err(Misfit::Gap {
                expected: self.seq + 1,
            });
        }
        self.apply(&entry.change, entry.at)?;
        self.seq = entry.seq;
        self.clock = self.clock.max(entry.at);
        Ok(())
    }

    fn apply(&mut self, change: &Change, at: Timestamp) -> Result<(), Misfit> {
        match change {
            Change::EventPut {
                event,
                config,
                seed,
                incarnation,
            } => self.apply_event_put(event, config, *seed, *incarnation, at),
            Change::EventDeleted { event } => {
                self.events.remove(event);
                self.idem.forget_scope(&IdemScope::Hold(event.clone()));
                self.idem.forget_joins(event);
            }
            Change::Queue { event, change } => {
                let e = self.events.get_mut(event);
                let e = e.ok_or_else(|| Misfit::NoSuchEvent(event.clone()))?;
                let room = e.room.as_mut();
                room.ok_or_else(|| Misfit::NoQueue(event.clone()))?
                    .apply(change, at);
            }
            Change::Seats { event, change } => {
                let e = self.events.get_mut(event);
                let e = e.ok_or_else(|| Misfit::NoSuchEvent(event.clone()))?;
                e.seats.apply(change, at)?;
            }
            Change::CouponCreated { coupon, config } => {
                self.coupons
                    .insert(coupon.clone(), Coupon::new(coupon.clone(), *config));
            }
            Change::Coupon { coupon, change } => {
                let c = self.coupons.get_mut(coupon);
                c.ok_or_else(|| Misfit::NoSuchCoupon(coupon.clone()))?
                    .apply(change, at);
            }
            Change::Idempotency(rec) => self.idem.apply(rec),
        }
        Ok(())
    }

    fn apply_event_put(
        &mut self,
        id: &EventId,
        config: &EventConfig,
        seed: [u8; 32],
        incarnation: u64,
        at: Timestamp,
    ) {
        let secret = self.secret;
        match self.events.get_mut(id) {
            Some(e) => {
                // Replace: nothing is held or sold (checked before recording), so
                // the seat map is rebuilt; the line and its sessions are kept.
                e.seats = SeatMap::new(&config.seats, config.holds, e.seed);
                e.config = config.clone();
                match (&config.queue, &mut e.room) {
                    (Some(q), Some(room)) => room.reconfigure(q, config.opens_at),
                    (Some(q), None) => {
                        e.room = Some(WaitingRoom::new(q, e.room_init(&secret)));
                        self.idem.forget_joins(id);
                    }
                    (None, _) => {
                        e.room = None;
                        self.idem.forget_joins(id);
                    }
                }
            }
            None => {
                let mut e = EventState {
                    id: id.clone(),
                    config: config.clone(),
                    seed,
                    incarnation,
                    created_at: at,
                    room: None,
                    seats: SeatMap::new(&config.seats, config.holds, seed),
                };
                if let Some(q) = &config.queue {
                    e.room = Some(WaitingRoom::new(q, e.room_init(&secret)));
                }
                self.events.insert(id.clone(), e);
            }
        }
    }

    pub fn put_coupon_change(coupon: &CouponId, config: CouponConfig) -> Change {
        Change::CouponCreated {
            coupon: coupon.clone(),
            config,
        }
    }

    pub fn to_snapshot(&self) -> ShardSnapshot {
        let mut events: Vec<EventSnapshot> = self
            .events
            .values()
            .map(|e| EventSnapshot {
                id: e.id.clone(),
                config: e.config.clone(),
                seed: e.seed,
                incarnation: e.incarnation,
                created_at: e.created_at,
                room: e.room.as_ref().map(WaitingRoom::to_snapshot),
                seats: e.seats.to_snapshot(),
            })
            .collect();
        events.sort_by(|a, b| a.id.cmp(&b.id));
        let mut coupons: Vec<Coupon> = self.coupons.values().cloned().collect();
        coupons.sort_by(|a, b| a.id().cmp(b.id()));
        ShardSnapshot {
            index: self.index,
            seq: self.seq,
            clock: self.clock,
            events,
            coupons,
            idempotency: self.idem.to_records(),
        }
    }

    pub fn from_snapshot(
        snap: ShardSnapshot,
        journal: bool,
        idem_window_ms: u64,
        idem_max: usize,
        secret: [u8; 32],
        now: Timestamp,
    ) -> Self {
        let idem = IdempotencyStore::from_records(idem_window_ms, idem_max, &snap.idempotency);
        let mut shard = Shard::new(snap.index, journal, idem, secret);
        shard.seq = snap.seq;
        shard.clock = snap.clock;
        for e in snap.events {
            let mut state = EventState {
                id: e.id.clone(),
                seats: SeatMap::from_snapshot(e.seats, &e.config.seats, e.config.holds),
                config: e.config,
                seed: e.seed,
                incarnation: e.incarnation,
                created_at: e.created_at,
                room: None,
            };
            if let (Some(r), Some(q)) = (e.room, &state.config.queue) {
                let init = state.room_init(&secret);
                state.room = Some(WaitingRoom::from_snapshot(r, q, init, now));
            }
            shard.events.insert(e.id, state);
        }
        for mut c in snap.coupons {
            c.rebuild();
            shard.coupons.insert(c.id().clone(), c);
        }
        shard
    }
}
