//! The ordered journal: every state change of a shard, numbered.
//!
//! Owns the replay half of I6: applying a shard's entries in `seq` order to the
//! snapshot they follow reproduces the shard exactly. Entries are encoded with
//! postcard behind a one-byte format version (docs/decisions/0001).

use crate::config::{CouponConfig, EventConfig};
use crate::coupons::CouponChange;
use crate::idempotency::IdemRecord;
use crate::ids::{CouponId, EventId};
use crate::queue::QueueChange;
use crate::seats::SeatChange;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Version byte in front of every encoded entry and snapshot.
///
/// 2: hold and claim ids carry the writer epoch they were issued under
/// (`HoldId::epoch`, `ClaimId::epoch`, in changes, snapshots and
/// idempotency records), and `SeatChange::Recycled` names a slot and
/// generation instead of an id. Seat `Confirmed`/`Released`/`Expired` and
/// coupon `Returned` carry the user (and seats) for events out. Version 1
/// data is refused, not misread.
///
/// 3: the queue config carries `poll_budget_per_s`, and room snapshots the
/// line's peak length (the poll budget, `queue::advice`).
pub const FORMAT_VERSION: u8 = 3;

/// One state change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// Create (when absent) or replace an event. `seed` and `incarnation` are
    /// used on creation only; a replacement keeps the event's own.
    EventPut {
        event: EventId,
        config: Box<EventConfig>,
        seed: [u8; 32],
        incarnation: u64,
    },
    EventDeleted {
        event: EventId,
    },
    Queue {
        event: EventId,
        change: QueueChange,
    },
    Seats {
        event: EventId,
        change: SeatChange,
    },
    /// Create a coupon (updates are `Coupon { Configured }`).
    CouponCreated {
        coupon: CouponId,
        config: CouponConfig,
    },
    Coupon {
        coupon: CouponId,
        change: CouponChange,
    },
    Idempotency(IdemRecord),
}

/// A numbered change. `seq` starts at 1 in each shard and has no gaps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub shard: u32,
    pub seq: u64,
    pub at: Timestamp,
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("empty input")]
    Empty,
    #[error("format version {found} is not supported (this build reads {FORMAT_VERSION})")]
    Version { found: u8 },
    #[error("undecodable: {0}")]
    Decode(String),
}

/// `[FORMAT_VERSION] ++ postcard(value)`.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut buf = vec![FORMAT_VERSION];
    // postcard only fails on types it cannot represent (none here) or a full
    // fixed buffer (not used); an empty payload would then fail to decode.
    if let Ok(body) = postcard::to_stdvec(value) {
        buf.extend_from_slice(&body);
    }
    buf
}

pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::Version { found: version });
    }
    postcard::from_bytes(body).map_err(|e| CodecError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClaimId, UserId};

    #[test]
    fn round_trip_and_version_check() {
        let e = Entry {
            shard: 3,
            seq: 42,
            at: Timestamp(7),
            change: Change::Coupon {
                coupon: CouponId::new("c1").expect("id"),
                change: CouponChange::Claimed {
                    claim: ClaimId {
                        index: 0,
                        epoch: 1_764_633_600_000,
                    },
                    user: UserId::new("u").expect("id"),
                },
            },
        };
        let bytes = encode(&e);
        assert_eq!(decode::<Entry>(&bytes), Ok(e));
        let mut wrong = bytes.clone();
        wrong[0] = 9;
        assert_eq!(
            decode::<Entry>(&wrong),
            Err(CodecError::Version { found: 9 })
        );
        assert_eq!(decode::<Entry>(&[]), Err(CodecError::Empty));
        assert!(decode::<Entry>(&bytes[..bytes.len() - 1]).is_err());
    }
}
