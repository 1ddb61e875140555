//! Events: create, replace, delete, read, pause and resume.
//!
//! Invariant: an event with holds or sales is never replaced (I1: a new seat
//! map would forget who holds what); a replacement gets a new incarnation,
//! so tickets and passes of the old one never validate (I8).

use super::{Engine, Receipt, Rejection};
use crate::config::EventConfig;
use crate::ids::EventId;
use crate::journal::Change;
use crate::queue::RoomPhase;
use crate::seats::SeatCounts;
use crate::shard::EventState;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;

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
    /// The waiting room's `capacity` and `admit_per_s` (None without a
    /// room): what `admitted` and the admissions are measured against.
    pub capacity: Option<NonZeroU32>,
    pub admit_per_s: Option<NonZeroU32>,
}

/// An event's counts with its name and opening time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSummary {
    pub stats: EventStats,
    pub name: String,
    pub opens_at: Option<Timestamp>,
}

fn stats_of(e: &EventState, now: Timestamp) -> EventStats {
    let room = e.room.as_ref();
    EventStats {
        id: e.id.clone(),
        phase: event_phase(e, now),
        waiting: room.map_or(0, |r| r.waiting(now)),
        admitted: room.map_or(0, |r| r.admitted(now)),
        served: room.map_or(0, |r| r.served()),
        seats: e.seats.counts(now),
        capacity: e.config.queue.as_ref().map(|q| q.capacity),
        admit_per_s: e.config.queue.as_ref().map(|q| q.admit_per_s),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    Replaced,
}

pub(super) fn event_phase(e: &EventState, now: Timestamp) -> Phase {
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

pub(super) fn event_info(e: &EventState, now: Timestamp) -> EventInfo {
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
    /// Creates or replaces an event. `seed` (used on creation only) drives the
    /// pre-queue shuffle and best-available spreading; give fresh randomness.
    pub fn put_event(
        &self,
        id: &EventId,
        config: EventConfig,
        seed: [u8; 32],
        now: Timestamp,
    ) -> Result<Receipt<(PutOutcome, EventInfo)>, Rejection> {
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
        let info = info.ok_or(Rejection::EventNotFound)?;
        Ok(Receipt::new(&shard, (outcome, info)))
    }

    pub fn delete_event(&self, id: &EventId, now: Timestamp) -> Result<Receipt<()>, Rejection> {
        let mut shard = self.event_shard(id).write();
        let now = shard.advance(now);
        match shard.events.get(id) {
            None => return Err(Rejection::EventNotFound),
            // Sales are never erased by a delete (I1): who bought what
            // outlives any admin mistake.
            Some(e) if e.seats.in_use(now) => return Err(Rejection::EventInUse),
            Some(_) => {}
        }
        shard.commit(now, Change::EventDeleted { event: id.clone() });
        Ok(Receipt::new(&shard, ()))
    }

    /// Whether the event exists (to tell "no such event" from "no such hold"
    /// when a path names an id the server could never have issued).
    pub fn has_event(&self, id: &EventId) -> bool {
        self.event_shard(id).read().events.contains_key(id)
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
                    .map(|e| stats_of(e, now))
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// One event's counts, name and opening time, without copying its
    /// seat layout (what a waiting page shows; cheap enough per live update).
    pub fn event_summary(&self, id: &EventId, now: Timestamp) -> Result<EventSummary, Rejection> {
        self.open_if_due(id, now);
        let shard = self.event_shard(id).read();
        let now = shard.observe(now);
        let e = shard.events.get(id).ok_or(Rejection::EventNotFound)?;
        Ok(EventSummary {
            stats: stats_of(e, now),
            name: e.config.name.clone(),
            opens_at: e.config.opens_at,
        })
    }

    pub(super) fn with_room<T>(
        &self,
        id: &EventId,
        now: Timestamp,
        f: impl FnOnce(
            &mut crate::queue::WaitingRoom,
            &mut Vec<crate::queue::QueueChange>,
            Timestamp,
        ) -> Result<T, Rejection>,
    ) -> Result<Receipt<T>, Rejection> {
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
        r.map(|v| Receipt::new(&shard, v))
    }

    pub fn pause(&self, id: &EventId, now: Timestamp) -> Result<Receipt<EventInfo>, Rejection> {
        let done = self.with_room(id, now, |room, out, now| {
            room.pause(now, out);
            Ok(())
        })?;
        let info = self.event(id, now)?;
        Ok(done.map(|()| info))
    }

    pub fn resume(&self, id: &EventId, now: Timestamp) -> Result<Receipt<EventInfo>, Rejection> {
        let done = self.with_room(id, now, |room, out, now| {
            room.resume(now, out);
            Ok(())
        })?;
        let info = self.event(id, now)?;
        Ok(done.map(|()| info))
    }
}
