//! Seats: hold requests and the hold and availability documents.

use super::events::{category_docs, CountsDoc};
use super::ids::{Seat, User};
use super::num::Positive;
use super::time::rfc3339;
use super::{text, within, WireError};
use boxoffice_engine::config::limits;
use boxoffice_engine::passes::MAX_PASS_LEN;
use boxoffice_engine::seats::{HoldInfo, HoldState, RowStatus, SeatChoice, SeatCounts};
use boxoffice_engine::{EventId, HoldId, SeatId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most seats named in one hold request (the per-user limit caps real ones).
pub const MAX_SEATS_IN_REQUEST: usize = 1_000;

/// `POST /v1/events/{event}/holds`, as sent.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
pub struct HoldRequest {
    user: User,
    pass: Option<String>,
    seats: Option<Vec<Seat>>,
    best: Option<BestRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
struct BestRequest {
    count: Positive,
    category: String,
}

/// A hold request, read.
#[derive(Debug)]
pub struct Hold {
    pub user: UserId,
    pub pass: Option<String>,
    pub choice: SeatChoice,
}

impl HoldRequest {
    /// The request's own rules (the engine holds the event's): one of
    /// `seats` and `best`, and sizes a request may have.
    pub fn read(self) -> Result<Hold, WireError> {
        if self.pass.as_ref().is_some_and(|p| p.len() > MAX_PASS_LEN) {
            return Err(WireError::field(
                "pass",
                format_args!("at most {MAX_PASS_LEN} bytes"),
            ));
        }
        let choice = match (self.seats, self.best) {
            (Some(_), Some(_)) => {
                return Err(WireError::body("give either seats or best, not both"))
            }
            (None, None) => return Err(WireError::body("seats or best: one is required")),
            (Some(list), None) => {
                if list.is_empty() || list.len() > MAX_SEATS_IN_REQUEST {
                    return Err(WireError::field(
                        "seats",
                        format_args!("1 to {MAX_SEATS_IN_REQUEST} seat ids"),
                    ));
                }
                SeatChoice::Exact(list.into_iter().map(|s| s.0).collect())
            }
            (None, Some(best)) => {
                // Above the most any event allows is malformed, not a 422.
                within(
                    "best.count",
                    best.count.get(),
                    1,
                    limits::MAX_SEATS_PER_USER,
                )?;
                SeatChoice::Best {
                    count: best.count.0,
                    category: text("best.category", best.category, limits::CATEGORY_MAX_BYTES)?,
                }
            }
        };
        Ok(Hold {
            user: self.user.0,
            pass: self.pass,
            choice,
        })
    }
}

/// `POST …/holds/{hold}/confirm`.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
pub struct ConfirmRequest {
    order: String,
}

impl ConfirmRequest {
    /// The order reference: 1–128 bytes without control characters.
    pub fn order(self) -> Result<String, WireError> {
        text("order", self.order, 128)
    }
}

/// `POST …/holds/{hold}/extend`.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
pub struct ExtendRequest {
    ttl_s: Positive,
}

impl ExtendRequest {
    /// The new lifetime from now, 1 to the longest hold lifetime.
    pub fn ttl_s(&self) -> Result<u32, WireError> {
        within("ttl_s", self.ttl_s.get(), 1, limits::MAX_HOLD_TTL_S)
    }
}

/// The hold document.
#[derive(Debug, Serialize)]
pub struct HoldDoc<'a> {
    #[serde(serialize_with = "super::display")]
    hold: &'a HoldId,
    event: &'a str,
    user: &'a str,
    #[serde(serialize_with = "super::display_all")]
    seats: &'a [SeatId],
    state: &'static str,
    #[serde(with = "rfc3339")]
    created_at: Timestamp,
    /// `null` once sold: a sale does not expire (the fields stay, so every
    /// hold document has the same keys).
    #[serde(with = "super::time::rfc3339_opt")]
    expires_at: Option<Timestamp>,
    expires_in_s: Option<u64>,
    order: Option<&'a str>,
}

impl<'a> HoldDoc<'a> {
    pub fn new(event: &'a EventId, h: &'a HoldInfo, now: Timestamp) -> Self {
        let live = h.state == HoldState::Held;
        // A sold hold has no expiry to show.
        let expires = h.state != HoldState::Sold;
        let left_ms = if live { h.expires_at.ms_since(now) } else { 0 };
        HoldDoc {
            hold: &h.id,
            event: event.as_str(),
            user: h.user.as_str(),
            seats: &h.seats,
            state: h.state.as_str(),
            created_at: h.created_at,
            expires_at: expires.then_some(h.expires_at),
            expires_in_s: expires.then_some(left_ms.div_ceil(1000)),
            order: h.order.as_deref(),
        }
    }
}

/// `GET /v1/events/{event}/seats`: the counts.
#[derive(Debug, Serialize)]
pub struct SeatsDoc<'a> {
    event: &'a str,
    #[serde(flatten)]
    total: CountsDoc,
    categories: BTreeMap<&'a str, CountsDoc>,
}

impl<'a> SeatsDoc<'a> {
    pub fn new(event: &'a EventId, c: &'a SeatCounts) -> Self {
        SeatsDoc {
            event: event.as_str(),
            total: (&c.total).into(),
            categories: category_docs(&c.categories),
        }
    }
}

/// `GET /v1/events/{event}/seats?section=…`: one letter a seat per row range.
#[derive(Debug, Serialize)]
pub struct SectionDoc<'a> {
    event: &'a str,
    section: &'a str,
    rows: Vec<RowDoc<'a>>,
}

#[derive(Debug, Serialize)]
struct RowDoc<'a> {
    row: &'a str,
    first: u32,
    status: &'a str,
}

impl<'a> SectionDoc<'a> {
    pub fn new(event: &'a EventId, section: &'a str, rows: &'a [RowStatus]) -> Self {
        SectionDoc {
            event: event.as_str(),
            section,
            rows: rows
                .iter()
                .map(|r| RowDoc {
                    row: &r.row,
                    first: r.first,
                    status: &r.status,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::from_body;

    fn hold(body: &str) -> Result<Hold, String> {
        from_body::<HoldRequest>(body.as_bytes())
            .and_then(HoldRequest::read)
            .map_err(|e| e.message)
    }

    #[test]
    fn hold_requests() {
        let h = hold(r#"{"user": "u1", "seats": ["A-1-1", "A-1-2"]}"#).expect("valid");
        assert!(matches!(h.choice, SeatChoice::Exact(ref s) if s.len() == 2));
        assert_eq!(h.pass, None);
        let h = hold(r#"{"user": "u1", "pass": "p", "best": {"count": 2, "category": "R"}}"#)
            .expect("valid");
        assert!(matches!(h.choice, SeatChoice::Best { count, .. } if count.get() == 2));
        let cases = [
            (
                r#"{"user": "u1", "seats": ["A-1"]}"#,
                "seats[0]: seat ids look like <section>-<row>-<number>, e.g. A-1-12",
            ),
            (
                r#"{"user": "u1", "seats": []}"#,
                "seats: 1 to 1000 seat ids",
            ),
            (r#"{"user": "u1"}"#, "seats or best: one is required"),
            (
                r#"{"user": "u1", "best": {"count": 101, "category": "R"}}"#,
                "best.count: expected an integer from 1 to 100",
            ),
            (
                r#"{"user": "u1", "best": {"count": 1, "category": ""}}"#,
                "best.category: expected 1 to 32 bytes without control characters",
            ),
            (
                r#"{"user": "", "seats": ["A-1-1"]}"#,
                "user: user ids are 1 to 128 bytes of UTF-8 without control characters",
            ),
            (r#"{"seats": ["A-1-1"]}"#, "user: required"),
        ];
        for (body, want) in cases {
            assert_eq!(hold(body).err().as_deref(), Some(want), "{body}");
        }
    }
}
