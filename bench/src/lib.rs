//! Shared set-up for boxoffice benchmarks: engines, events and user ids built
//! the same way by the criterion benches and the memory probe.
#![forbid(unsafe_code)]

use boxoffice_engine::config::{HoldPolicy, QueueConfig, RowRange};
use boxoffice_engine::*;
use std::num::{NonZeroU32, NonZeroUsize};

/// A fixed start instant (2027-01-15T08:00:00Z).
pub const T0: Timestamp = Timestamp(1_800_000_000_000);

pub fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v.max(1)).unwrap_or(NonZeroU32::MIN)
}

/// An engine with journaling off (the memory-only server's setting).
pub fn engine(shards: usize) -> Engine {
    let key = PassKey::new("bench", b"bench-pass-secret-0123").expect("static key is valid");
    let mut cfg = EngineConfig::new([42; 32], PassKeys::new(key));
    cfg.shards = NonZeroUsize::new(shards.max(1)).unwrap_or(NonZeroUsize::MIN);
    Engine::new(cfg)
}

/// A 20-byte user id, as the memory target assumes: `user-000000000000123`.
pub fn user(n: u64) -> UserId {
    UserId::new(&format!("user-{n:015}")).expect("valid user id")
}

/// `sections` × `rows` × `per_row` seats, category "R".
pub fn layout(sections: u32, rows: u32, per_row: u32) -> Vec<RowRange> {
    let mut out = vec![];
    for s in 0..sections {
        for r in 1..=rows {
            out.push(RowRange {
                section: format!("S{s}"),
                row: r.to_string(),
                first: 1,
                last: per_row,
                category: "R".into(),
            });
        }
    }
    out
}

pub fn queue(capacity: u32, admit_per_s: u32) -> QueueConfig {
    QueueConfig {
        capacity: nz(capacity),
        admit_per_s: nz(admit_per_s),
        session_ttl_s: nz(600),
        idle_timeout_s: nz(86_400),
        max_waiting: nz(100_000_000),
        poll_budget_per_s: boxoffice_engine::QueueConfig::default_poll_budget(
            nz(admit_per_s),
            nz(100_000_000),
        ),
        identity: boxoffice_engine::Identity::Signed,
        prequeue: PrequeueOrder::Fifo,
    }
}

pub fn event(queue: Option<QueueConfig>, seats: Vec<RowRange>, max_per_user: u32) -> EventConfig {
    EventConfig {
        name: "bench".into(),
        opens_at: None,
        queue,
        seats,
        holds: HoldPolicy {
            ttl_s: nz(600),
            max_ttl_s: nz(1800),
            max_seats_per_user: nz(max_per_user),
        },
    }
}

pub fn event_id(s: &str) -> EventId {
    EventId::new(s).expect("valid event id")
}

/// Resident set size of this process in bytes (Linux `/proc/self/statm`).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

pub mod compare;
