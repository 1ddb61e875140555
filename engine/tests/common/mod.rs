//! Shared helpers for the engine's integration tests.
#![allow(dead_code)]

use boxoffice_engine::config::{HoldPolicy, QueueConfig, RowRange};
use boxoffice_engine::*;
use std::num::{NonZeroU32, NonZeroUsize};

pub const T0: Timestamp = Timestamp(1_800_000_000_000);

pub fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).expect("non-zero")
}

pub fn engine(shards: usize, journal: bool) -> Engine {
    let keys = PassKeys::new(PassKey::new("k1", b"test-pass-secret-0123").expect("key"));
    let mut cfg = EngineConfig::new([7u8; 32], keys);
    cfg.shards = NonZeroUsize::new(shards).expect("shards");
    cfg.journal = journal;
    Engine::new(cfg)
}

pub fn ev(s: &str) -> EventId {
    EventId::new(s).expect("event id")
}

pub fn user(n: u32) -> UserId {
    UserId::new(&format!("user-{n:05}")).expect("user id")
}

pub fn rows(sections: &[&str], rows: u32, per_row: u32) -> Vec<RowRange> {
    let mut out = vec![];
    for (si, s) in sections.iter().enumerate() {
        for r in 1..=rows {
            out.push(RowRange {
                section: s.to_string(),
                row: r.to_string(),
                first: 1,
                last: per_row,
                category: if si == 0 { "VIP".into() } else { "R".into() },
            });
        }
    }
    out
}

pub fn queue(capacity: u32, admit_per_s: u32, session_ttl_s: u32, idle_s: u32) -> QueueConfig {
    QueueConfig {
        capacity: nz(capacity),
        admit_per_s: nz(admit_per_s),
        session_ttl_s: nz(session_ttl_s),
        idle_timeout_s: nz(idle_s),
        max_waiting: nz(1_000_000),
        poll_budget_per_s: boxoffice_engine::QueueConfig::default_poll_budget(
            nz(admit_per_s),
            nz(1_000_000),
        ),
        identity: boxoffice_engine::Identity::Signed,
        prequeue: PrequeueOrder::Fifo,
    }
}

pub fn event_config(
    queue: Option<QueueConfig>,
    seats: Vec<RowRange>,
    max_per_user: u32,
) -> EventConfig {
    EventConfig {
        name: "test".into(),
        opens_at: None,
        queue,
        seats,
        holds: HoldPolicy {
            ttl_s: nz(60),
            max_ttl_s: nz(300),
            max_seats_per_user: nz(max_per_user),
        },
    }
}

pub fn seat(s: &str) -> SeatId {
    SeatId::parse(s).expect("seat id")
}
