//! Events out: the business outcomes of a journal entry, as the JSON
//! envelopes appended to the `<prefix>:out` stream (../shared/API.md, "Events
//! out"; docs/events-out.md is the consumer's side).
//!
//! The mapping is a pure function of the entry: the append script writes an
//! entry's outcomes in the same atomic step as the entry itself, so an outcome
//! is in the stream exactly when its journal entry is in Redis, and a retried
//! batch (its reply lost) rebuilds the same envelopes with the same ids, which
//! the script then skips with the entry.
//!
//! Envelope: `{"v": 1, "id", "type", "event", "at", "data"}`.
//!
//! - `id` is `"<shard>-<seq>-<n>"`: the entry's shard and journal `seq`, and
//!   `n` the outcome's index within the entry (an entry that expires several
//!   admitted sessions has several). Unique in a store, and ordered per
//!   event: an event (and a coupon) lives in one shard, so two outcomes of one
//!   event compare as `(seq, n)`, numerically. The parts are plain decimals,
//!   not zero-padded: compare numerically, not as strings.
//! - `event` is the event id for seat and queue outcomes. Coupons belong to no
//!   event: for `coupon.*` it is the coupon id, the scope in which those ids
//!   are ordered (a consumer keys its ordering on `(type family, event)`).
//! - `at` is the entry's time, RFC 3339 UTC with milliseconds.
//! - `data` per type: see [`Data`].

use crate::wire::time;
use boxoffice_engine::coupons::CouponChange;
use boxoffice_engine::queue::QueueChange;
use boxoffice_engine::seats::SeatChange;
use boxoffice_engine::{Change, Entry, SeatId};
use serde::{Deserialize, Serialize};

/// Envelope version (`v`).
pub const VERSION: u8 = 1;

/// Every `type`, in the order the metric lists them.
pub const TYPES: [&str; 6] = [
    SEAT_SOLD,
    SEATS_RELEASED,
    COUPON_CLAIMED,
    COUPON_RETURNED,
    QUEUE_ADMITTED,
    QUEUE_ENDED,
];
pub const SEAT_SOLD: &str = "seat.sold";
pub const SEATS_RELEASED: &str = "seats.released";
pub const COUPON_CLAIMED: &str = "coupon.claimed";
pub const COUPON_RETURNED: &str = "coupon.returned";
pub const QUEUE_ADMITTED: &str = "queue.admitted";
pub const QUEUE_ENDED: &str = "queue.ended";

/// One published outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u8,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub event: String,
    pub at: String,
    pub data: Data,
}

/// What each type's `data` holds. Untagged: the envelope's `type` names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Data {
    /// `seat.sold`: a hold was confirmed. `hold` and `seats` as the API names
    /// them (`h3g0-minta800`, `A-1-12`), `order` as the confirm gave it.
    Sold {
        hold: String,
        order: String,
        user: String,
        seats: Vec<String>,
    },
    /// `seats.released`: a held (never a sold) hold ended and its seats are
    /// free again; `reason` is `released` (the client gave it up) or
    /// `expired` (its time ran out).
    Released {
        hold: String,
        user: String,
        seats: Vec<String>,
        reason: String,
    },
    /// `coupon.claimed` and `coupon.returned`: `claim` as the API names it
    /// (`k0`).
    Coupon {
        coupon: String,
        claim: String,
        user: String,
    },
    /// `queue.ended`: an admitted session or a place in line ended. `reason`
    /// is `completed` (the purchase was completed), `expired` (the session
    /// ran out) or `left` (the user gave up the session, or left the line
    /// before being admitted: then no `queue.admitted` with that `join`
    /// precedes it). Idle drops from the line are not published.
    Ended { join: u32, reason: String },
    /// `queue.admitted`: the front user was let in. `join` is the ticket's
    /// join number in the event's room (the ticket itself is a bearer secret
    /// and never published; its first 4 bytes, little-endian, are `join`).
    Admitted { join: u32 },
}

/// The outcomes of one journal entry, in order (empty for most entries:
/// holds made, extensions, configuration, idempotency records…), as the
/// writer at fencing epoch `epoch` publishes them. The id is
/// `<epoch>-<shard>-<seq>-<n>`: the same entry always gets the same id from
/// its writer (a retried batch), and since epochs only grow, also across
/// writers and across a store started anew (where `seq` starts at 1 again)
/// no id is used twice and ids order as `(epoch, seq, n)` per event.
pub fn outcomes(entry: &Entry, epoch: u64) -> Vec<Envelope> {
    let mut out = Vec::new();
    let mut push = |kind: &str, event: &str, data: Data| {
        out.push(Envelope {
            v: VERSION,
            id: format!("{epoch}-{}-{}-{}", entry.shard, entry.seq, out.len()),
            kind: kind.to_string(),
            event: event.to_string(),
            at: at(entry),
            data,
        });
    };
    let seats = |s: &[SeatId]| s.iter().map(ToString::to_string).collect::<Vec<_>>();
    match &entry.change {
        Change::Seats { event, change } => match change {
            SeatChange::Confirmed {
                id,
                order,
                user,
                seats: s,
            } => push(
                SEAT_SOLD,
                event.as_str(),
                Data::Sold {
                    hold: id.to_string(),
                    order: order.clone(),
                    user: user.as_str().to_string(),
                    seats: seats(s),
                },
            ),
            SeatChange::Released {
                id, user, seats: s, ..
            } => push(
                SEATS_RELEASED,
                event.as_str(),
                released(id, user, s, "released"),
            ),
            SeatChange::Expired { id, user, seats: s } => push(
                SEATS_RELEASED,
                event.as_str(),
                released(id, user, s, "expired"),
            ),
            SeatChange::Held { .. } | SeatChange::Extended { .. } | SeatChange::Recycled { .. } => {
            }
        },
        Change::Coupon { coupon, change } => {
            let (kind, claim, user) = match change {
                CouponChange::Claimed { claim, user } => (COUPON_CLAIMED, claim, user),
                CouponChange::Returned { claim, user } => (COUPON_RETURNED, claim, user),
                CouponChange::Configured { .. } => return out,
            };
            push(
                kind,
                coupon.as_str(),
                Data::Coupon {
                    coupon: coupon.as_str().to_string(),
                    claim: claim.to_string(),
                    user: user.as_str().to_string(),
                },
            );
        }
        Change::Queue { event, change } => {
            let ended = |join: u32, reason: &str| Data::Ended {
                join,
                reason: reason.to_string(),
            };
            match change {
                QueueChange::Admitted { uid } => {
                    push(
                        QUEUE_ADMITTED,
                        event.as_str(),
                        Data::Admitted { join: *uid },
                    );
                }
                QueueChange::Completed { uid } => {
                    push(QUEUE_ENDED, event.as_str(), ended(*uid, "completed"));
                }
                QueueChange::Left { uid } => {
                    push(QUEUE_ENDED, event.as_str(), ended(*uid, "left"));
                }
                QueueChange::SessionsExpired { uids } => {
                    for &uid in uids {
                        push(QUEUE_ENDED, event.as_str(), ended(uid, "expired"));
                    }
                }
                QueueChange::Joined { .. }
                | QueueChange::Opened { .. }
                | QueueChange::IdleDropped { .. }
                | QueueChange::Paused
                | QueueChange::Resumed => {}
            }
        }
        Change::EventPut { .. }
        | Change::EventDeleted { .. }
        | Change::CouponCreated { .. }
        | Change::Idempotency(_) => {}
    }
    out
}

fn released(
    id: &boxoffice_engine::HoldId,
    user: &boxoffice_engine::UserId,
    seats: &[SeatId],
    reason: &str,
) -> Data {
    Data::Released {
        hold: id.to_string(),
        user: user.as_str().to_string(),
        seats: seats.iter().map(ToString::to_string).collect(),
        reason: reason.to_string(),
    }
}

/// The entry's time. The engine's clock never reaches year 10000; if it did,
/// the outcome still goes out (it must be in the stream iff its entry is),
/// stamped with the last instant RFC 3339 can write.
fn at(entry: &Entry) -> String {
    time::format(entry.at).unwrap_or_else(|_| "9999-12-31T23:59:59.999Z".to_string())
}

/// An outcome ready for the append script: its type (for the metric) and
/// its JSON.
#[derive(Clone, Debug)]
pub(crate) struct Encoded {
    pub kind: &'static str,
    pub json: String,
}

/// [`outcomes`] as JSON. Serialising these plain structs cannot fail; an
/// envelope that somehow did is dropped rather than sent half-written.
pub(crate) fn encode(entry: &Entry, epoch: u64) -> Vec<Encoded> {
    outcomes(entry, epoch)
        .into_iter()
        .filter_map(|e| {
            let kind = TYPES.iter().copied().find(|t| *t == e.kind)?;
            let json = serde_json::to_string(&e).ok()?;
            Some(Encoded { kind, json })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use boxoffice_engine::{ClaimId, CouponId, EventId, HoldId, Timestamp, UserId};
    use serde_json::{json, Value};

    fn entry(seq: u64, change: Change) -> Entry {
        Entry {
            shard: 3,
            seq,
            // 2026-12-01T11:00:00.250Z
            at: Timestamp(1_796_122_800_250),
            change,
        }
    }

    fn ev() -> EventId {
        EventId::new("e1").expect("id")
    }

    fn user() -> UserId {
        UserId::new("alice").expect("id")
    }

    fn hold() -> HoldId {
        HoldId {
            index: 4,
            generation: 2,
            epoch: 36,
        }
    }

    fn seats() -> Vec<SeatId> {
        ["A-1-1", "A-1-2"]
            .iter()
            .map(|s| SeatId::parse(s).expect("seat"))
            .collect()
    }

    fn json_of(e: &Entry) -> Vec<Value> {
        encode(e, 7)
            .into_iter()
            .map(|x| serde_json::from_str(&x.json).expect("json"))
            .collect()
    }

    fn seat(change: SeatChange) -> Change {
        Change::Seats {
            event: ev(),
            change,
        }
    }

    fn queue(change: QueueChange) -> Change {
        Change::Queue {
            event: ev(),
            change,
        }
    }

    const AT: &str = "2026-12-01T11:00:00.250Z";

    #[test]
    fn confirmed_is_one_seat_sold() {
        let e = entry(
            42,
            seat(SeatChange::Confirmed {
                id: hold(),
                order: "o-9".into(),
                user: user(),
                seats: seats(),
            }),
        );
        assert_eq!(
            json_of(&e),
            vec![
                json!({"v": 1, "id": "7-3-42-0", "type": "seat.sold", "event": "e1", "at": AT,
                "data": {"hold": "h4g2-10", "order": "o-9", "user": "alice",
                         "seats": ["A-1-1", "A-1-2"]}})
            ]
        );
        // Round trip through the public type.
        let back: Envelope = serde_json::from_str(&encode(&e, 7)[0].json).expect("envelope");
        assert_eq!(back, outcomes(&e, 7)[0]);
        assert_eq!(encode(&e, 7)[0].kind, SEAT_SOLD);
    }

    #[test]
    fn released_and_expired_are_seats_released_with_a_reason() {
        let rel = entry(
            5,
            seat(SeatChange::Released {
                id: hold(),
                at: Timestamp(1),
                user: user(),
                seats: seats(),
            }),
        );
        let exp = entry(
            6,
            seat(SeatChange::Expired {
                id: hold(),
                user: user(),
                seats: seats(),
            }),
        );
        for (e, id, reason) in [(&rel, "7-3-5-0", "released"), (&exp, "7-3-6-0", "expired")] {
            assert_eq!(
                json_of(e),
                vec![
                    json!({"v": 1, "id": id, "type": "seats.released", "event": "e1", "at": AT,
                    "data": {"hold": "h4g2-10", "user": "alice", "seats": ["A-1-1", "A-1-2"],
                             "reason": reason}})
                ]
            );
        }
    }

    #[test]
    fn coupon_claims_and_returns_carry_the_coupon_as_event() {
        let c = CouponId::new("c1").expect("id");
        let claimed = entry(
            7,
            Change::Coupon {
                coupon: c.clone(),
                change: CouponChange::Claimed {
                    claim: ClaimId {
                        index: 11,
                        epoch: 36,
                    },
                    user: user(),
                },
            },
        );
        let returned = entry(
            8,
            Change::Coupon {
                coupon: c,
                change: CouponChange::Returned {
                    claim: ClaimId {
                        index: 11,
                        epoch: 36,
                    },
                    user: user(),
                },
            },
        );
        for (e, id, kind) in [
            (&claimed, "7-3-7-0", "coupon.claimed"),
            (&returned, "7-3-8-0", "coupon.returned"),
        ] {
            assert_eq!(
                json_of(e),
                vec![
                    json!({"v": 1, "id": id, "type": kind, "event": "c1", "at": AT,
                    "data": {"coupon": "c1", "claim": "k11-10", "user": "alice"}})
                ]
            );
        }
    }

    #[test]
    fn queue_admissions_and_ends() {
        assert_eq!(
            json_of(&entry(9, queue(QueueChange::Admitted { uid: 17 }))),
            vec![
                json!({"v": 1, "id": "7-3-9-0", "type": "queue.admitted", "event": "e1",
                "at": AT, "data": {"join": 17}})
            ]
        );
        for (change, reason) in [
            (QueueChange::Completed { uid: 17 }, "completed"),
            (QueueChange::Left { uid: 17 }, "left"),
        ] {
            assert_eq!(
                json_of(&entry(10, queue(change))),
                vec![
                    json!({"v": 1, "id": "7-3-10-0", "type": "queue.ended", "event": "e1",
                    "at": AT, "data": {"join": 17, "reason": reason}})
                ]
            );
        }
        // One entry, several outcomes: n numbers them in order.
        let many = json_of(&entry(
            11,
            queue(QueueChange::SessionsExpired {
                uids: vec![4, 2, 9],
            }),
        ));
        let ids: Vec<_> = many.iter().map(|v| v["id"].clone()).collect();
        assert_eq!(
            ids,
            vec![json!("7-3-11-0"), json!("7-3-11-1"), json!("7-3-11-2")]
        );
        assert_eq!(many[1]["data"], json!({"join": 2, "reason": "expired"}));
    }

    #[test]
    fn changes_without_an_outcome_publish_nothing() {
        let quiet = [
            seat(SeatChange::Held {
                id: hold(),
                user: user(),
                seats: vec![1],
                created_at: Timestamp(0),
                expires_at: Timestamp(1),
            }),
            seat(SeatChange::Extended {
                id: hold(),
                expires_at: Timestamp(2),
            }),
            seat(SeatChange::Recycled {
                index: 4,
                generation: 3,
            }),
            queue(QueueChange::Joined {
                uid: 1,
                user: user(),
            }),
            queue(QueueChange::IdleDropped { uids: vec![1, 2] }),
            queue(QueueChange::Paused),
            queue(QueueChange::Resumed),
            Change::EventDeleted { event: ev() },
        ];
        for c in quiet {
            assert!(outcomes(&entry(1, c.clone()), 7).is_empty(), "{c:?}");
        }
    }
}
