//! Events: the configuration a `PUT` sends and the event document.

use super::ids::StrVisitor;
use super::num::{Natural, Positive};
use super::time::{rfc3339, rfc3339_opt};
use crate::config::hex;
use boxoffice_engine::seats::Counts;
use boxoffice_engine::{
    EventConfig, EventInfo, HoldPolicy, Identity, PrequeueOrder, QueueConfig, RowRange, Timestamp,
};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// `PUT /v1/events/{event}`. Converted, not validated: the engine checks
/// ranges and layout once (`EventConfig::validate`).
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
pub struct EventRequest {
    name: String,
    #[serde(default, with = "rfc3339_opt")]
    opens_at: Option<Timestamp>,
    queue: Option<QueueRequest>,
    seats: Vec<RowRangeRequest>,
    holds: Option<HoldsRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
struct QueueRequest {
    capacity: Positive,
    admit_per_s: Positive,
    session_ttl_s: Option<Positive>,
    idle_timeout_s: Option<Positive>,
    max_waiting: Option<Positive>,
    prequeue: Option<Prequeue>,
    identity: Option<IdentityMode>,
    poll_budget_per_s: Option<Positive>,
}

#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
enum IdentityMode {
    Signed,
    Anonymous,
}

impl<'de> Deserialize<'de> for IdentityMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor {
            expecting: r#""signed" or "anonymous""#,
            convert: |s: &str| match s {
                "signed" => Ok(IdentityMode::Signed),
                "anonymous" => Ok(IdentityMode::Anonymous),
                _ => Err(r#"expected "signed" or "anonymous""#),
            },
        })
    }
}

impl From<IdentityMode> for Identity {
    fn from(m: IdentityMode) -> Self {
        match m {
            IdentityMode::Signed => Identity::Signed,
            IdentityMode::Anonymous => Identity::Anonymous,
        }
    }
}

impl From<Identity> for IdentityMode {
    fn from(i: Identity) -> Self {
        match i {
            Identity::Signed => IdentityMode::Signed,
            Identity::Anonymous => IdentityMode::Anonymous,
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
enum Prequeue {
    Random,
    Fifo,
}

impl<'de> Deserialize<'de> for Prequeue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor {
            expecting: r#""random" or "fifo""#,
            convert: |s: &str| match s {
                "random" => Ok(Prequeue::Random),
                "fifo" => Ok(Prequeue::Fifo),
                _ => Err(r#"expected "random" or "fifo""#),
            },
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
struct RowRangeRequest {
    section: String,
    row: String,
    first: Natural,
    last: Natural,
    category: String,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
struct HoldsRequest {
    ttl_s: Option<Positive>,
    max_ttl_s: Option<Positive>,
    max_seats_per_user: Option<Positive>,
}

impl From<Prequeue> for PrequeueOrder {
    fn from(p: Prequeue) -> Self {
        match p {
            Prequeue::Random => PrequeueOrder::Random,
            Prequeue::Fifo => PrequeueOrder::Fifo,
        }
    }
}

impl From<PrequeueOrder> for Prequeue {
    fn from(p: PrequeueOrder) -> Self {
        match p {
            PrequeueOrder::Random => Prequeue::Random,
            PrequeueOrder::Fifo => Prequeue::Fifo,
        }
    }
}

impl From<QueueRequest> for QueueConfig {
    fn from(q: QueueRequest) -> Self {
        let d = QueueConfig::new(q.capacity.0, q.admit_per_s.0);
        let max_waiting = q.max_waiting.map_or(d.max_waiting, |v| v.0);
        QueueConfig {
            session_ttl_s: q.session_ttl_s.map_or(d.session_ttl_s, |v| v.0),
            idle_timeout_s: q.idle_timeout_s.map_or(d.idle_timeout_s, |v| v.0),
            max_waiting,
            poll_budget_per_s: q.poll_budget_per_s.map_or_else(
                || QueueConfig::default_poll_budget(q.admit_per_s.0, max_waiting),
                |v| v.0,
            ),
            prequeue: q.prequeue.map_or(d.prequeue, PrequeueOrder::from),
            identity: q.identity.map_or(d.identity, Identity::from),
            ..d
        }
    }
}

impl From<EventRequest> for EventConfig {
    fn from(r: EventRequest) -> Self {
        let holds = r.holds.map_or_else(HoldPolicy::default, |h| {
            HoldPolicy::with(
                h.ttl_s.map(|v| v.0),
                h.max_ttl_s.map(|v| v.0),
                h.max_seats_per_user.map(|v| v.0),
            )
        });
        EventConfig {
            name: r.name,
            opens_at: r.opens_at,
            queue: r.queue.map(QueueConfig::from),
            seats: r
                .seats
                .into_iter()
                .map(|s| RowRange {
                    section: s.section,
                    row: s.row,
                    first: s.first.0,
                    last: s.last.0,
                    category: s.category,
                })
                .collect(),
            holds,
        }
    }
}

/// Free, held and sold seats.
#[derive(Debug, Serialize)]
pub struct CountsDoc {
    free: u64,
    held: u64,
    sold: u64,
}

impl From<&Counts> for CountsDoc {
    fn from(c: &Counts) -> Self {
        CountsDoc {
            free: c.free,
            held: c.held,
            sold: c.sold,
        }
    }
}

/// Counts per category, in name order.
pub fn category_docs(c: &BTreeMap<String, Counts>) -> BTreeMap<&str, CountsDoc> {
    c.iter().map(|(k, v)| (k.as_str(), v.into())).collect()
}

/// The event document.
#[derive(Debug, Serialize)]
pub struct EventDoc<'a> {
    event: &'a str,
    name: &'a str,
    #[serde(with = "rfc3339_opt")]
    opens_at: Option<Timestamp>,
    #[serde(with = "rfc3339")]
    created_at: Timestamp,
    queue: Option<QueueDoc>,
    seats: Vec<RowRangeDoc<'a>>,
    holds: HoldsDoc,
    phase: &'static str,
    waiting: u64,
    admitted: u64,
    served: u64,
    free: u64,
    held: u64,
    sold: u64,
    categories: BTreeMap<&'a str, CountsDoc>,
    prequeue_seed_sha256: Option<String>,
    prequeue_seed: Option<String>,
}

#[derive(Debug, Serialize)]
struct QueueDoc {
    capacity: u32,
    admit_per_s: u32,
    session_ttl_s: u32,
    idle_timeout_s: u32,
    max_waiting: u32,
    prequeue: Prequeue,
    identity: IdentityMode,
    poll_budget_per_s: u32,
}

#[derive(Debug, Serialize)]
struct RowRangeDoc<'a> {
    section: &'a str,
    row: &'a str,
    first: u32,
    last: u32,
    category: &'a str,
}

#[derive(Debug, Serialize)]
struct HoldsDoc {
    ttl_s: u32,
    max_ttl_s: u32,
    max_seats_per_user: u32,
}

impl<'a> EventDoc<'a> {
    pub fn new(e: &'a EventInfo) -> Self {
        let c = &e.config;
        EventDoc {
            event: e.id.as_str(),
            name: &c.name,
            opens_at: c.opens_at,
            created_at: e.created_at,
            queue: c.queue.as_ref().map(|q| QueueDoc {
                capacity: q.capacity.get(),
                admit_per_s: q.admit_per_s.get(),
                session_ttl_s: q.session_ttl_s.get(),
                idle_timeout_s: q.idle_timeout_s.get(),
                max_waiting: q.max_waiting.get(),
                prequeue: q.prequeue.into(),
                identity: q.identity.into(),
                poll_budget_per_s: q.poll_budget_per_s.get(),
            }),
            seats: c
                .seats
                .iter()
                .map(|r| RowRangeDoc {
                    section: &r.section,
                    row: &r.row,
                    first: r.first,
                    last: r.last,
                    category: &r.category,
                })
                .collect(),
            holds: HoldsDoc {
                ttl_s: c.holds.ttl_s.get(),
                max_ttl_s: c.holds.max_ttl_s.get(),
                max_seats_per_user: c.holds.max_seats_per_user.get(),
            },
            phase: e.phase.as_str(),
            waiting: e.waiting,
            admitted: e.admitted,
            served: e.served,
            free: e.seats.total.free,
            held: e.seats.total.held,
            sold: e.seats.total.sold,
            categories: category_docs(&e.seats.categories),
            prequeue_seed_sha256: e.prequeue_seed_sha256.map(|s| hex(&s)),
            prequeue_seed: e.prequeue_seed.map(|s| hex(&s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::from_body;

    fn config(body: &str) -> Result<EventConfig, String> {
        from_body::<EventRequest>(body.as_bytes())
            .map(EventConfig::from)
            .map_err(|e| e.message)
    }

    #[test]
    fn defaults_come_from_the_engine() {
        let c = config(r#"{"name": "n", "seats": [], "queue": {"capacity": 5, "admit_per_s": 2, "prequeue": "fifo"}, "holds": {"ttl_s": 3600}}"#)
            .expect("valid");
        let q = c.queue.expect("queue");
        assert_eq!(q.session_ttl_s, QueueConfig::DEFAULT_SESSION_TTL_S);
        assert_eq!(q.prequeue, PrequeueOrder::Fifo);
        assert_eq!(q.identity, Identity::Signed);
        assert_eq!(c.holds.max_ttl_s.get(), 3600);
        let c = config(r#"{"name": "n", "seats": [], "queue": {"capacity": 5, "admit_per_s": 2, "identity": "anonymous"}}"#)
            .expect("valid");
        assert_eq!(c.queue.map(|q| q.identity), Some(Identity::Anonymous));
        assert_eq!(
            config(r#"{"name": "n", "seats": [], "queue": {"capacity": 5, "admit_per_s": 2, "identity": "open"}}"#).err().as_deref(),
            Some(r#"queue.identity: expected "signed" or "anonymous""#)
        );
        let c = config(r#"{"name": "n", "seats": [], "queue": null, "opens_at": null}"#)
            .expect("valid");
        assert_eq!(
            (c.queue, c.opens_at, c.holds),
            (None, None, HoldPolicy::default())
        );
    }

    #[test]
    fn refusals_name_the_path() {
        let cases = [
            (r#"{"seats": []}"#, "name: required"),
            (r#"{"name": "n", "seats": [], "queue": {"admit_per_s": 1}}"#, "queue.capacity: required"),
            (r#"{"name": "n", "seats": [{"section": "A", "row": "1", "first": -1, "last": 2, "category": "R"}]}"#, "seats[0].first: invalid value: integer `-1`, expected an integer from 0 to 4294967295"),
            (r#"{"name": "n", "seats": [], "queue": {"capacity": 0, "admit_per_s": 1}}"#, "queue.capacity: invalid value: integer `0`, expected an integer from 1 to 4294967295"),
            (r#"{"name": "n", "seats": [], "opens_at": "tomorrow"}"#, "opens_at: expected an RFC 3339 timestamp like 2026-12-01T11:00:00Z"),
            (r#"{"name": "n", "seats": [], "opens_at": 5}"#, "opens_at: expected an RFC 3339 timestamp like 2026-12-01T11:00:00Z"),
            (r#"{"name": "n", "seats": [], "holds": {"ttl_s": 0}}"#, "holds.ttl_s: invalid value: integer `0`, expected an integer from 1 to 4294967295"),
        ];
        for (body, want) in cases {
            assert_eq!(config(body).err().as_deref(), Some(want), "{body}");
        }
        let e = config(
            r#"{"name": "n", "seats": [], "queue": {"capacity": 1, "admit_per_s": 1, "prequeue": "lifo"}}"#,
        );
        assert_eq!(
            e.err().as_deref(),
            Some(r#"queue.prequeue: expected "random" or "fifo""#)
        );
        let e = config(r#"{"name": "n", "seats": [], "queue": 5}"#);
        assert_eq!(
            e.err().as_deref(),
            Some("queue: invalid type: integer `5`, expected an object")
        );
    }
}
