//! Event and coupon configuration, validated once at the edge.

use crate::ids::valid_seat_part;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::num::NonZeroU32;

/// Limits that keep one request from exhausting the engine.
pub mod limits {
    pub const NAME_MAX_BYTES: usize = 200;
    pub const CATEGORY_MAX_BYTES: usize = 32;
    pub const MAX_CAPACITY: u32 = 10_000_000;
    pub const MAX_ADMIT_PER_S: u32 = 100_000;
    pub const MAX_WAITING: u32 = 100_000_000;
    pub const MAX_POLL_BUDGET: u32 = 10_000_000;
    pub const MAX_SESSION_TTL_S: u32 = 86_400;
    pub const MAX_IDLE_TIMEOUT_S: u32 = 86_400;
    pub const MAX_HOLD_TTL_S: u32 = 86_400;
    pub const MAX_SEATS_PER_USER: u32 = 100;
    pub const MAX_SEATS: u64 = 1_000_000;
    pub const MAX_SEAT_NUMBER: u32 = 100_000;
    pub const MAX_ROW_RANGES: usize = 20_000;
    pub const MAX_COUPON_STOCK: u32 = 100_000_000;
    pub const MAX_COUPON_PER_USER: u32 = 1_000;
}

/// Order given to users who joined before `opens_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PrequeueOrder {
    /// A seeded shuffle at opening; the seed's SHA-256 is public before, the seed after.
    #[default]
    Random,
    /// Join order.
    Fifo,
}

/// Who may join a waiting room as whom (`queue.identity`). The service
/// realm (the booking backend) joins as any user whatever this says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Identity {
    /// A public join names its user and carries a user token for it
    /// ([`crate::user_token`]): knowing a user id is not enough.
    #[default]
    Signed,
    /// A public join names no user; the server mints an unguessable one.
    Anonymous,
}

/// Waiting-room settings of one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// Most users admitted at once.
    pub capacity: NonZeroU32,
    /// Most admissions in any one-second window.
    pub admit_per_s: NonZeroU32,
    /// How long an admitted session (and its pass) lasts.
    pub session_ttl_s: NonZeroU32,
    /// A waiting user not heard from for this long loses the place.
    pub idle_timeout_s: NonZeroU32,
    /// Most users in line; further joins are refused.
    pub max_waiting: NonZeroU32,
    pub prequeue: PrequeueOrder,
    pub identity: Identity,
    /// Most status polls per second the advice asks of everyone in line
    /// together (`queue::advice`; at least [`QueueConfig::min_poll_budget`]).
    pub poll_budget_per_s: NonZeroU32,
}

impl QueueConfig {
    /// Lifetime of an admitted session when none is given.
    pub const DEFAULT_SESSION_TTL_S: NonZeroU32 = nz(600);
    /// Idle timeout of a waiting user when none is given.
    pub const DEFAULT_IDLE_TIMEOUT_S: NonZeroU32 = nz(120);
    /// Longest line when none is given.
    pub const DEFAULT_MAX_WAITING: NonZeroU32 = nz(5_000_000);

    /// A waiting room with the two settings that have no default; the others
    /// take theirs (callers override fields as given).
    /// (`poll_budget_per_s` is the default for the default `max_waiting`:
    /// a caller that changes `max_waiting` sets it with
    /// [`QueueConfig::default_poll_budget`]).
    pub fn new(capacity: NonZeroU32, admit_per_s: NonZeroU32) -> Self {
        QueueConfig {
            capacity,
            admit_per_s,
            session_ttl_s: Self::DEFAULT_SESSION_TTL_S,
            idle_timeout_s: Self::DEFAULT_IDLE_TIMEOUT_S,
            max_waiting: Self::DEFAULT_MAX_WAITING,
            prequeue: PrequeueOrder::Random,
            identity: Identity::Signed,
            poll_budget_per_s: Self::default_poll_budget(admit_per_s, Self::DEFAULT_MAX_WAITING),
        }
    }

    /// The poll budget of a room that names none: `max(20 000, 2 ×
    /// min_poll_budget)`, within [`limits::MAX_POLL_BUDGET`].
    pub fn default_poll_budget(admit_per_s: NonZeroU32, max_waiting: NonZeroU32) -> NonZeroU32 {
        let b = crate::queue::advice::default_budget(admit_per_s.get(), max_waiting.get())
            .min(u64::from(limits::MAX_POLL_BUDGET));
        NonZeroU32::new(u32::try_from(b).unwrap_or(limits::MAX_POLL_BUDGET)).unwrap_or(nz(1))
    }

    /// The least poll budget a room may have: `⌈admit_per_s × (1 + ln
    /// max_waiting)⌉`, so that the advice never tells anyone to come back
    /// after their turn at the configured rate.
    pub fn min_poll_budget(&self) -> u64 {
        crate::queue::advice::min_budget(self.admit_per_s.get(), self.max_waiting.get())
    }
}

/// One run of numbered seats in a row, all of one category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowRange {
    pub section: String,
    pub row: String,
    pub first: u32,
    pub last: u32,
    pub category: String,
}

/// Hold rules of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldPolicy {
    /// Lifetime of a new hold.
    pub ttl_s: NonZeroU32,
    /// No hold lives longer than this from its creation, extensions included.
    pub max_ttl_s: NonZeroU32,
    /// Held + sold seats one user may have in this event.
    pub max_seats_per_user: NonZeroU32,
}

impl Default for HoldPolicy {
    fn default() -> Self {
        HoldPolicy {
            ttl_s: nz(600),
            max_ttl_s: nz(1800),
            max_seats_per_user: nz(4),
        }
    }
}

impl HoldPolicy {
    /// The policy from the settings given, defaults for the rest. Without an
    /// explicit maximum, a longer `ttl_s` raises the default maximum with it
    /// (so `{"ttl_s": 3600}` alone is a valid policy).
    pub fn with(
        ttl_s: Option<NonZeroU32>,
        max_ttl_s: Option<NonZeroU32>,
        max_seats_per_user: Option<NonZeroU32>,
    ) -> Self {
        let d = HoldPolicy::default();
        let ttl_s = ttl_s.unwrap_or(d.ttl_s);
        HoldPolicy {
            ttl_s,
            max_ttl_s: max_ttl_s.unwrap_or(d.max_ttl_s.max(ttl_s)),
            max_seats_per_user: max_seats_per_user.unwrap_or(d.max_seats_per_user),
        }
    }
}

pub(crate) const fn nz(v: u32) -> NonZeroU32 {
    match NonZeroU32::new(v) {
        Some(n) => n,
        None => panic!("zero"),
    }
}

/// The whole configuration of an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventConfig {
    pub name: String,
    /// Absent: open now.
    pub opens_at: Option<Timestamp>,
    /// Absent: no waiting room.
    pub queue: Option<QueueConfig>,
    pub seats: Vec<RowRange>,
    pub holds: HoldPolicy,
}

/// Stock and window of a limited coupon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponConfig {
    pub stock: u32,
    pub per_user: NonZeroU32,
    pub opens_at: Option<Timestamp>,
    pub closes_at: Option<Timestamp>,
}

impl CouponConfig {
    /// Claims per user when none is given.
    pub const DEFAULT_PER_USER: NonZeroU32 = nz(1);
}

/// A configuration the engine refuses, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        reason: reason.into(),
    }
}

fn at_most(field: &str, v: u32, max: u32) -> Result<(), ConfigError> {
    if v > max {
        return Err(err(field, format!("must be at most {max}")));
    }
    Ok(())
}

impl EventConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.len() > limits::NAME_MAX_BYTES || self.name.chars().any(char::is_control) {
            return Err(err(
                "name",
                format!(
                    "at most {} bytes, no control characters",
                    limits::NAME_MAX_BYTES
                ),
            ));
        }
        if let Some(q) = &self.queue {
            at_most("queue.capacity", q.capacity.get(), limits::MAX_CAPACITY)?;
            at_most(
                "queue.admit_per_s",
                q.admit_per_s.get(),
                limits::MAX_ADMIT_PER_S,
            )?;
            at_most(
                "queue.session_ttl_s",
                q.session_ttl_s.get(),
                limits::MAX_SESSION_TTL_S,
            )?;
            at_most(
                "queue.idle_timeout_s",
                q.idle_timeout_s.get(),
                limits::MAX_IDLE_TIMEOUT_S,
            )?;
            at_most(
                "queue.max_waiting",
                q.max_waiting.get(),
                limits::MAX_WAITING,
            )?;
            at_most(
                "queue.poll_budget_per_s",
                q.poll_budget_per_s.get(),
                limits::MAX_POLL_BUDGET,
            )?;
            let floor = q.min_poll_budget();
            if u64::from(q.poll_budget_per_s.get()) < floor {
                return Err(err(
                    "queue.poll_budget_per_s",
                    format!(
                        "must be at least {floor} (admit_per_s × (1 + ln max_waiting)), \
                         or the advice would tell people at the front to come back after their turn"
                    ),
                ));
            }
        }
        let h = &self.holds;
        // ttl_s first: an over-long ttl_s alone also raises the default
        // max_ttl_s, and the message should name the field that was given.
        at_most("holds.ttl_s", h.ttl_s.get(), limits::MAX_HOLD_TTL_S)?;
        at_most("holds.max_ttl_s", h.max_ttl_s.get(), limits::MAX_HOLD_TTL_S)?;
        if h.ttl_s > h.max_ttl_s {
            return Err(err("holds.ttl_s", "must not exceed holds.max_ttl_s"));
        }
        at_most(
            "holds.max_seats_per_user",
            h.max_seats_per_user.get(),
            limits::MAX_SEATS_PER_USER,
        )?;
        if self.seats.len() > limits::MAX_ROW_RANGES {
            return Err(err(
                "seats",
                format!("at most {} row ranges", limits::MAX_ROW_RANGES),
            ));
        }
        let mut total: u64 = 0;
        let mut rows: std::collections::HashMap<(&str, &str), Vec<(u32, u32)>> = Default::default();
        for (i, r) in self.seats.iter().enumerate() {
            let f = |name: &str| format!("seats[{i}].{name}");
            if !valid_seat_part(&r.section) {
                return Err(err(f("section"), "1-16 ASCII letters or digits"));
            }
            if !valid_seat_part(&r.row) {
                return Err(err(f("row"), "1-16 ASCII letters or digits"));
            }
            if r.first == 0 || r.first > r.last || r.last > limits::MAX_SEAT_NUMBER {
                return Err(err(
                    f("first"),
                    format!("need 1 <= first <= last <= {}", limits::MAX_SEAT_NUMBER),
                ));
            }
            if r.category.is_empty()
                || r.category.len() > limits::CATEGORY_MAX_BYTES
                || r.category.chars().any(char::is_control)
            {
                return Err(err(
                    f("category"),
                    format!(
                        "1-{} bytes, no control characters",
                        limits::CATEGORY_MAX_BYTES
                    ),
                ));
            }
            let spans = rows.entry((&r.section, &r.row)).or_default();
            if spans.iter().any(|&(a, b)| r.first <= b && a <= r.last) {
                return Err(err(f("first"), "overlaps another range of the same row"));
            }
            spans.push((r.first, r.last));
            total += u64::from(r.last - r.first + 1);
        }
        if total > limits::MAX_SEATS {
            return Err(err("seats", format!("at most {} seats", limits::MAX_SEATS)));
        }
        Ok(())
    }

    /// Categories in layout order, each once.
    pub fn categories(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.seats
            .iter()
            .map(|r| r.category.as_str())
            .filter(|c| seen.insert(*c))
            .collect()
    }
}

impl CouponConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        at_most("stock", self.stock, limits::MAX_COUPON_STOCK)?;
        at_most("per_user", self.per_user.get(), limits::MAX_COUPON_PER_USER)?;
        if let (Some(o), Some(c)) = (self.opens_at, self.closes_at) {
            if c <= o {
                return Err(err("closes_at", "must be after opens_at"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(section: &str, row: &str, first: u32, last: u32) -> RowRange {
        RowRange {
            section: section.into(),
            row: row.into(),
            first,
            last,
            category: "R".into(),
        }
    }

    fn event(seats: Vec<RowRange>) -> EventConfig {
        EventConfig {
            name: "n".into(),
            opens_at: None,
            queue: None,
            seats,
            holds: HoldPolicy::default(),
        }
    }

    #[test]
    fn layout_rules() {
        assert!(event(vec![row("A", "1", 1, 10), row("A", "1", 11, 20)])
            .validate()
            .is_ok());
        let overlap = event(vec![row("A", "1", 1, 10), row("A", "1", 10, 20)]).validate();
        assert_eq!(overlap.map_err(|e| e.field), Err("seats[1].first".into()));
        assert!(event(vec![row("A-B", "1", 1, 2)]).validate().is_err());
        assert!(event(vec![row("A", "1", 0, 2)]).validate().is_err());
        assert!(event(vec![row("A", "1", 3, 2)]).validate().is_err());
    }

    #[test]
    fn hold_ttl_not_above_max() {
        let mut e = event(vec![]);
        e.holds.ttl_s = nz(100);
        e.holds.max_ttl_s = nz(50);
        assert!(e.validate().is_err());
        e.holds = HoldPolicy::with(Some(nz(limits::MAX_HOLD_TTL_S + 1)), None, None);
        assert_eq!(e.validate().map_err(|e| e.field), Err("holds.ttl_s".into()));
    }

    #[test]
    fn hold_defaults_follow_ttl() {
        assert_eq!(HoldPolicy::with(None, None, None), HoldPolicy::default());
        let long = HoldPolicy::with(Some(nz(3600)), None, None);
        assert_eq!((long.ttl_s, long.max_ttl_s), (nz(3600), nz(3600)));
        let short = HoldPolicy::with(Some(nz(60)), None, Some(nz(2)));
        assert_eq!(short.max_ttl_s, HoldPolicy::default().max_ttl_s);
        assert_eq!(short.max_seats_per_user, nz(2));
        let explicit = HoldPolicy::with(Some(nz(60)), Some(nz(90)), None);
        assert_eq!(explicit.max_ttl_s, nz(90));
    }

    #[test]
    fn queue_defaults() {
        let q = QueueConfig::new(nz(10), nz(5));
        assert_eq!(q.session_ttl_s.get(), 600);
        assert_eq!(q.idle_timeout_s.get(), 120);
        assert_eq!(q.max_waiting.get(), 5_000_000);
        assert_eq!(q.prequeue, PrequeueOrder::Random);
        assert_eq!(q.identity, Identity::Signed);
        let e = EventConfig {
            queue: Some(QueueConfig {
                capacity: nz(limits::MAX_CAPACITY + 1),
                ..q
            }),
            ..event(vec![])
        };
        assert_eq!(
            e.validate().map_err(|e| e.field),
            Err("queue.capacity".into())
        );
    }
}
