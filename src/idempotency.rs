//! `Idempotency-Key` for joins (I5 at the HTTP edge).
//!
//! The engine dedupes holds and claims itself. A join is idempotent per user
//! already (a rejoin keeps the ticket and place); what the HTTP contract adds
//! is that a replay answers with the first status (201 stays 201). Keys are
//! scoped per user: two users who happen to send the same key are two
//! different requests, never a conflict, and a key says nothing about any
//! other user's join. This bounded table remembers, per event, user and key,
//! the first status.

use boxoffice_engine::{EventId, IdempotencyKey, Timestamp, UserId};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};

#[derive(Debug)]
struct Record {
    status: u16,
    at: Timestamp,
}

type Key = (EventId, UserId, IdempotencyKey);

#[derive(Debug, Default)]
struct Table {
    records: HashMap<Key, Record>,
    /// Insertion order, for eviction of the oldest.
    order: VecDeque<(Key, Timestamp)>,
}

/// What a key says about a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Never seen for this user (or forgotten).
    Fresh,
    /// Seen for this user: answer with this status.
    Same(u16),
}

#[derive(Debug)]
pub struct JoinReplays {
    table: Mutex<Table>,
    max: usize,
    window_ms: u64,
}

impl JoinReplays {
    pub fn new(max: usize, window_ms: u64) -> Self {
        JoinReplays {
            table: Mutex::new(Table::default()),
            max,
            window_ms,
        }
    }

    pub fn lookup(
        &self,
        event: &EventId,
        key: &IdempotencyKey,
        user: &UserId,
        now: Timestamp,
    ) -> Replay {
        let t = self.table.lock();
        match t.records.get(&(event.clone(), user.clone(), key.clone())) {
            Some(r) if now.ms_since(r.at) < self.window_ms => Replay::Same(r.status),
            _ => Replay::Fresh,
        }
    }

    pub fn remember(
        &self,
        event: &EventId,
        key: &IdempotencyKey,
        user: &UserId,
        status: u16,
        now: Timestamp,
    ) {
        let mut t = self.table.lock();
        let k = (event.clone(), user.clone(), key.clone());
        if t.records.contains_key(&k) {
            return;
        }
        while t.records.len() >= self.max {
            match t.order.pop_front() {
                Some((old, at)) => {
                    if t.records.get(&old).is_some_and(|r| r.at == at) {
                        t.records.remove(&old);
                    }
                }
                None => break,
            }
        }
        t.order.push_back((k.clone(), now));
        t.records.insert(k, Record { status, at: now });
    }

    /// Forgets keys older than the window.
    pub fn prune(&self, now: Timestamp) {
        let mut t = self.table.lock();
        while let Some((_, at)) = t.order.front() {
            if now.ms_since(*at) < self.window_ms {
                break;
            }
            if let Some((old, at)) = t.order.pop_front() {
                if t.records.get(&old).is_some_and(|r| r.at == at) {
                    t.records.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_scoped_per_user() {
        let r = JoinReplays::new(2, 1000);
        let e = EventId::new("e").expect("id");
        let k = IdempotencyKey::new("k").expect("key");
        let u1 = UserId::new("u1").expect("user");
        let u2 = UserId::new("u2").expect("user");
        assert_eq!(r.lookup(&e, &k, &u1, Timestamp(0)), Replay::Fresh);
        r.remember(&e, &k, &u1, 201, Timestamp(0));
        assert_eq!(r.lookup(&e, &k, &u1, Timestamp(1)), Replay::Same(201));
        // Another user with the same key is another request.
        assert_eq!(r.lookup(&e, &k, &u2, Timestamp(1)), Replay::Fresh);
        r.remember(&e, &k, &u2, 200, Timestamp(1));
        assert_eq!(r.lookup(&e, &k, &u2, Timestamp(2)), Replay::Same(200));
        assert_eq!(r.lookup(&e, &k, &u1, Timestamp(2)), Replay::Same(201));
        assert_eq!(r.lookup(&e, &k, &u1, Timestamp(1000)), Replay::Fresh);
        r.prune(Timestamp(5000));
        assert_eq!(r.lookup(&e, &k, &u1, Timestamp(0)), Replay::Fresh);
    }

    #[test]
    fn bounded() {
        let r = JoinReplays::new(2, 1000);
        let e = EventId::new("e").expect("id");
        let u = UserId::new("u").expect("user");
        for i in 0..10 {
            let k = IdempotencyKey::new(&format!("k{i}")).expect("key");
            r.remember(&e, &k, &u, 201, Timestamp(i));
        }
        assert!(r.table.lock().records.len() <= 2);
    }
}
