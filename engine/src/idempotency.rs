//! Idempotency keys for creating operations (owns I5: a retried request with
//! the same key changes nothing twice).
//!
//! A key is scoped to the event (holds) or coupon (claims) it was used on;
//! a join's key also to its caller (the booking backend, a verified user, or
//! for an anonymous join the client's address), so nobody's key can name
//! anybody else's join.
//! Same key + same request → the first outcome again; same key + different
//! request → [`IdemLookup::Conflict`]. Only successful creations are recorded:
//! a rejected request changed nothing, so retrying it is safe and may succeed.
//! Keys age out after a window, and at most `max_keys` are kept per shard
//! (oldest first out), so memory stays bounded. The keys of public joins
//! (users and anonymous visitors) have a `max_keys` of their own: however
//! many a crowd sends, they never push out the booking backend's keys for
//! holds, claims and joins. Recording is a journaled change, so the ageing
//! is replayed exactly.

use crate::ids::{ClaimId, CouponId, EventId, HoldId, IdempotencyKey};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::hash::Hasher;

/// The caller of a service-realm join (`IdemScope::Join`).
pub(crate) const SERVICE_CALLER: &str = "service";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IdemScope {
    Hold(EventId),
    Claim(CouponId),
    /// A join: the event and who called (see [`JoinKey`](crate::JoinKey)).
    Join(EventId, Box<str>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdemOutcome {
    Hold(HoldId),
    Claim(ClaimId),
    /// The user (`uid` in the event's waiting room) the join gave a ticket,
    /// and whether it was a new one.
    Join {
        uid: u32,
        created: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdemLookup {
    /// Not seen (or aged out): go ahead.
    Fresh,
    /// Seen with the same request: answer with this outcome again.
    Replay(IdemOutcome),
    /// Seen with a different request.
    Conflict,
}

/// Stable fingerprint of a request body (fixed-key SipHash over its postcard
/// encoding): equal requests give equal fingerprints on every build.
pub fn fingerprint<T: Serialize>(request: &T) -> u64 {
    // Requests are ids, seat lists and small enums: postcard encodes them
    // (it fails only on sequences of unknown length, which serde's derives
    // never produce); an empty encoding would make every request look alike.
    let bytes = postcard::to_stdvec(request).expect("idempotent requests encode with postcard");
    let mut h =
        siphasher::sip::SipHasher13::new_with_keys(0x626f_786f_6666_6963, 0x6520_6964_656d_706f);
    h.write(&bytes);
    h.finish()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdemRecord {
    pub scope: IdemScope,
    pub key: IdempotencyKey,
    pub fingerprint: u64,
    pub outcome: IdemOutcome,
    pub at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct IdempotencyStore {
    window_ms: u64,
    max_keys: usize,
    map: HashMap<(IdemScope, IdempotencyKey), (u64, IdemOutcome, Timestamp)>,
    /// Insertion order per class ([`class`]): the backend's, the public's.
    order: [VecDeque<(Timestamp, IdemScope, IdempotencyKey)>; 2],
}

/// 0 for the booking backend's keys, 1 for public joins' (evicted apart).
fn class(scope: &IdemScope) -> usize {
    match scope {
        IdemScope::Join(_, caller) if &**caller != SERVICE_CALLER => 1,
        _ => 0,
    }
}

impl IdempotencyStore {
    pub fn new(window_ms: u64, max_keys: usize) -> Self {
        IdempotencyStore {
            window_ms,
            max_keys: max_keys.max(1),
            map: HashMap::new(),
            order: Default::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn lookup(
        &self,
        scope: &IdemScope,
        key: &IdempotencyKey,
        fingerprint: u64,
        now: Timestamp,
    ) -> IdemLookup {
        match self.map.get(&(scope.clone(), key.clone())) {
            Some(&(_, _, at)) if now.ms_since(at) >= self.window_ms => IdemLookup::Fresh,
            Some(&(fp, outcome, _)) if fp == fingerprint => IdemLookup::Replay(outcome),
            Some(_) => IdemLookup::Conflict,
            None => IdemLookup::Fresh,
        }
    }

    /// Records a key (the journaled change). Ages out old keys first.
    pub fn apply(&mut self, rec: &IdemRecord) {
        self.purge(rec.at);
        let order = &mut self.order[class(&rec.scope)];
        while order.len() >= self.max_keys {
            let Some((at, s, k)) = order.pop_front() else {
                break;
            };
            // Only if the map still holds this exact record.
            let key = (s, k);
            if self.map.get(&key).is_some_and(|r| r.2 == at) {
                self.map.remove(&key);
            }
        }
        let k = (rec.scope.clone(), rec.key.clone());
        self.map.insert(k, (rec.fingerprint, rec.outcome, rec.at));
        order.push_back((rec.at, rec.scope.clone(), rec.key.clone()));
    }

    fn purge(&mut self, now: Timestamp) {
        for order in &mut self.order {
            while let Some((at, _, _)) = order.front() {
                if now.ms_since(*at) < self.window_ms {
                    break;
                }
                if let Some((at, s, k)) = order.pop_front() {
                    // Only remove if the map still holds this exact record.
                    let key = (s, k);
                    if self.map.get(&key).is_some_and(|r| r.2 == at) {
                        self.map.remove(&key);
                    }
                }
            }
        }
    }

    /// Drops every key of one scope (its event or coupon was deleted).
    pub fn forget_scope(&mut self, scope: &IdemScope) {
        self.forget(|s| s == scope);
    }

    /// Drops the join keys of an event whose waiting room is gone or new
    /// (its `uid`s would name other users).
    pub fn forget_joins(&mut self, event: &EventId) {
        self.forget(|s| matches!(s, IdemScope::Join(e, _) if e == event));
    }

    fn forget(&mut self, gone: impl Fn(&IdemScope) -> bool) {
        self.map.retain(|(s, _), _| !gone(s));
        for order in &mut self.order {
            order.retain(|(_, s, _)| !gone(s));
        }
    }

    pub fn to_records(&self) -> Vec<IdemRecord> {
        self.order
            .iter()
            .flatten()
            .filter_map(|(at, s, k)| {
                let (fp, outcome, rat) = self.map.get(&(s.clone(), k.clone()))?;
                (rat == at).then(|| IdemRecord {
                    scope: s.clone(),
                    key: k.clone(),
                    fingerprint: *fp,
                    outcome: *outcome,
                    at: *at,
                })
            })
            .collect()
    }

    pub fn from_records(window_ms: u64, max_keys: usize, records: &[IdemRecord]) -> Self {
        let mut s = Self::new(window_ms, max_keys);
        for r in records {
            let k = (r.scope.clone(), r.key.clone());
            s.map.insert(k, (r.fingerprint, r.outcome, r.at));
            s.order[class(&r.scope)].push_back((r.at, r.scope.clone(), r.key.clone()));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, fp: u64, at: u64) -> IdemRecord {
        IdemRecord {
            scope: IdemScope::Hold(EventId::new("e").expect("id")),
            key: IdempotencyKey::new(key).expect("key"),
            fingerprint: fp,
            outcome: IdemOutcome::Claim(ClaimId {
                index: fp as u32,
                epoch: fp,
            }),
            at: Timestamp(at),
        }
    }

    #[test]
    fn replay_conflict_and_ageing() {
        let mut s = IdempotencyStore::new(1_000, 10);
        let r = rec("k", 7, 0);
        s.apply(&r);
        assert_eq!(
            s.lookup(&r.scope, &r.key, 7, Timestamp(999)),
            IdemLookup::Replay(r.outcome)
        );
        assert_eq!(
            s.lookup(&r.scope, &r.key, 8, Timestamp(999)),
            IdemLookup::Conflict
        );
        assert_eq!(
            s.lookup(&r.scope, &r.key, 7, Timestamp(1_000)),
            IdemLookup::Fresh
        );
        s.apply(&rec("other", 1, 1_000));
        assert_eq!(s.len(), 1, "aged out on the next record");
    }

    #[test]
    fn bounded_by_count() {
        let mut s = IdempotencyStore::new(u64::MAX, 3);
        for i in 0..10 {
            s.apply(&rec(&format!("k{i}"), i, i));
        }
        assert_eq!(s.len(), 3);
        let back = IdempotencyStore::from_records(u64::MAX, 3, &s.to_records());
        assert_eq!(back.to_records(), s.to_records());
    }

    /// A crowd's join keys never push out the backend's: each class has
    /// its own bound (without the split, the hold key below is evicted).
    #[test]
    fn public_join_keys_have_their_own_bound() {
        let mut s = IdempotencyStore::new(u64::MAX, 3);
        let hold = rec("backend", 1, 0);
        s.apply(&hold);
        let event = EventId::new("e").expect("id");
        for i in 0..10 {
            s.apply(&IdemRecord {
                scope: IdemScope::Join(event.clone(), format!("address:10.0.0.{i}").into()),
                key: IdempotencyKey::new(&format!("j{i}")).expect("key"),
                fingerprint: 0,
                outcome: IdemOutcome::Join {
                    uid: i as u32,
                    created: true,
                },
                at: Timestamp(1 + i),
            });
        }
        assert_eq!(s.len(), 4, "3 public keys and the backend's");
        assert_eq!(
            s.lookup(&hold.scope, &hold.key, 1, Timestamp(20)),
            IdemLookup::Replay(hold.outcome)
        );
        let back = IdempotencyStore::from_records(u64::MAX, 3, &s.to_records());
        assert_eq!(back.to_records(), s.to_records());
    }

    #[test]
    fn fingerprints_are_stable() {
        assert_eq!(fingerprint(&("a", 1u32)), fingerprint(&("a", 1u32)));
        assert_ne!(fingerprint(&("a", 1u32)), fingerprint(&("a", 2u32)));
    }
}
