//! Seats through the engine: holds (all or nothing), confirm, extend,
//! release, availability.
//!
//! Invariant: I1 (a seat is never sold twice) lives in [`crate::seats`];
//! here every seat change is recorded under the shard lock it was made
//! under, and a retried hold with the same idempotency key returns the first
//! hold (I5).

use super::{Engine, Keyed, PassCheck, Receipt, Rejection};
use crate::idempotency::{IdemOutcome, IdemScope};
use crate::ids::{EventId, HoldId, IdempotencyKey, UserId};
use crate::journal::Change;
use crate::seats::{HoldInfo, RowStatus, SeatChoice, SeatCounts};
use crate::time::Timestamp;

/// A hold outcome with whether it was an idempotent replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldReply {
    pub hold: HoldInfo,
    pub replayed: bool,
}

impl Engine {
    pub(super) fn with_seats<T>(
        &self,
        id: &EventId,
        now: Timestamp,
        f: impl FnOnce(
            &mut crate::seats::SeatMap,
            &mut Vec<crate::seats::SeatChange>,
            Timestamp,
        ) -> Result<T, Rejection>,
    ) -> Result<Receipt<T>, Rejection> {
        let mut shard = self.event_shard(id).write();
        let now = shard.advance(now);
        let e = shard.events.get_mut(id).ok_or(Rejection::EventNotFound)?;
        let mut out = Vec::new();
        let r = f(&mut e.seats, &mut out, now);
        shard.record_all(now, out, |change| Change::Seats {
            event: id.clone(),
            change,
        });
        r.map(|v| Receipt::new(&shard, v))
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
    ) -> Result<Receipt<HoldReply>, Rejection> {
        self.hold_inner(id, user, PassCheck::Trusted, choice, key, now)
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
    ) -> Result<Receipt<HoldReply>, Rejection> {
        self.hold_inner(id, user, PassCheck::Required(pass), choice, key, now)
    }

    fn hold_inner(
        &self,
        id: &EventId,
        user: &UserId,
        pass: PassCheck<'_>,
        choice: &SeatChoice,
        key: Option<&IdempotencyKey>,
        now: Timestamp,
    ) -> Result<Receipt<HoldReply>, Rejection> {
        let mut shard = self.event_shard(id).write();
        let now = shard.advance(now);
        if let PassCheck::Required(pass) = pass {
            let e = shard.events.get(id).ok_or(Rejection::EventNotFound)?;
            self.verify_pass(e, user, pass, now)?;
        }
        let keyed = Keyed::new(IdemScope::Hold(id.clone()), key, &(user, choice));
        if let Some(keyed) = &keyed {
            match keyed.lookup(&shard, now)? {
                None => {}
                Some(IdemOutcome::Hold(h)) => {
                    let e = shard.events.get(id).ok_or(Rejection::EventNotFound)?;
                    let hold = e.seats.get(h, now).ok_or(Rejection::HoldNotFound)?;
                    let reply = HoldReply {
                        hold,
                        replayed: true,
                    };
                    return Ok(Receipt::new(&shard, reply));
                }
                Some(_) => return Err(Rejection::IdempotencyKeyReused),
            }
        }
        let e = shard.events.get_mut(id).ok_or(Rejection::EventNotFound)?;
        let mut out = Vec::new();
        let outcome = e
            .seats
            .hold(user, choice, self.writer_epoch(), now, &mut out);
        shard.record_all(now, out, |change| Change::Seats {
            event: id.clone(),
            change,
        });
        let hold = outcome?;
        if let Some(keyed) = keyed {
            keyed.remember(&mut shard, IdemOutcome::Hold(hold.id), now);
        }
        let reply = HoldReply {
            hold,
            replayed: false,
        };
        Ok(Receipt::new(&shard, reply))
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
    ) -> Result<Receipt<HoldInfo>, Rejection> {
        self.with_seats(id, now, |seats, out, now| {
            Ok(seats.confirm(hold, order, now, out)?)
        })
    }

    pub fn extend(
        &self,
        id: &EventId,
        hold: HoldId,
        ttl_s: u32,
        now: Timestamp,
    ) -> Result<Receipt<HoldInfo>, Rejection> {
        self.with_seats(id, now, |seats, out, now| {
            Ok(seats.extend(hold, ttl_s, now, out)?)
        })
    }

    /// Releases a hold; releasing one already gone is a no-op.
    pub fn release(
        &self,
        id: &EventId,
        hold: HoldId,
        now: Timestamp,
    ) -> Result<Receipt<()>, Rejection> {
        self.with_seats(id, now, |seats, out, now| {
            seats.release(hold, now, out)?;
            Ok(())
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
}
