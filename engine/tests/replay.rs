//! Snapshot + replay (I6's engine half): random operation sequences over
//! several events and coupons; a snapshot taken at a random point plus the
//! journal entries after it rebuilds exactly the live state, and so does the
//! whole journal from nothing. Everything passes through the versioned
//! postcard encoding on the way.

mod common;

use boxoffice_engine::journal::{decode, encode};
use boxoffice_engine::seats::SeatChoice;
use boxoffice_engine::*;
use common::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    Tick,
    /// A join, with an idempotency key or not (a key's record is journaled).
    Join(u8, u32, Option<u8>),
    Status(u8, u32),
    Leave(u8, u32),
    Complete(u8, u32),
    Pause(u8),
    Resume(u8),
    Hold(u8, u32, Vec<u32>, Option<u8>),
    Best(u8, u32, u32),
    Confirm(u8, usize),
    Extend(u8, usize, u32),
    Release(u8, usize),
    Claim(u32, Option<u8>),
    Return(usize),
    Replace(u8),
    Snapshot,
    /// A new writer epoch: later holds and claims carry it; earlier ids
    /// keep resolving, and replay restores every id's own epoch.
    NewEpoch,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..5_000).prop_map(Op::Advance),
        1 => (0u64..200_000).prop_map(Op::Advance),
        3 => Just(Op::Tick),
        5 => (0u8..3, 0u32..30, prop::option::of(0u8..3)).prop_map(|(e, u, k)| Op::Join(e, u, k)),
        3 => (0u8..3, 0u32..30).prop_map(|(e, u)| Op::Status(e, u)),
        1 => (0u8..3, 0u32..30).prop_map(|(e, u)| Op::Leave(e, u)),
        1 => (0u8..3, 0u32..30).prop_map(|(e, u)| Op::Complete(e, u)),
        1 => (0u8..3).prop_map(Op::Pause),
        1 => (0u8..3).prop_map(Op::Resume),
        4 => (0u8..3, 0u32..10, prop::collection::vec(0u32..20, 1..4), prop::option::of(0u8..3))
            .prop_map(|(e, u, s, k)| Op::Hold(e, u, s, k)),
        2 => (0u8..3, 0u32..10, 1u32..4).prop_map(|(e, u, c)| Op::Best(e, u, c)),
        2 => (0u8..3, 0usize..20).prop_map(|(e, h)| Op::Confirm(e, h)),
        1 => (0u8..3, 0usize..20, 1u32..200).prop_map(|(e, h, t)| Op::Extend(e, h, t)),
        1 => (0u8..3, 0usize..20).prop_map(|(e, h)| Op::Release(e, h)),
        3 => (0u32..20, prop::option::of(0u8..3)).prop_map(|(u, k)| Op::Claim(u, k)),
        1 => (0usize..20).prop_map(Op::Return),
        1 => (0u8..3).prop_map(Op::Replace),
        1 => Just(Op::Snapshot),
        1 => Just(Op::NewEpoch),
    ]
}

fn event_cfg(i: u8) -> EventConfig {
    let mut cfg = event_config(
        Some(queue(2 + u32::from(i), 3, 20, 15)),
        rows(&["A", "B"], 2, 5),
        4,
    );
    if i == 1 {
        // A pre-queue with a random order that opens during the run.
        cfg.opens_at = Some(T0.plus_ms(30_000));
        if let Some(q) = &mut cfg.queue {
            q.prequeue = PrequeueOrder::Random;
        }
    }
    if i == 2 {
        cfg.queue = None;
    }
    cfg
}

fn seat_of(i: u32) -> SeatId {
    let section = if i < 10 { "A" } else { "B" };
    let j = i % 10;
    seat(&format!("{section}-{}-{}", j / 5 + 1, j % 5 + 1))
}

fn run(ops: Vec<Op>) {
    let live = engine(3, true);
    let cfg = live.config().clone();
    let events: Vec<EventId> = (0..3).map(|i| ev(&format!("ev{i}"))).collect();
    for (i, id) in events.iter().enumerate() {
        let _ = live
            .put_event(id, event_cfg(i as u8), [i as u8 + 1; 32], T0)
            .expect("event");
    }
    let coupon = CouponId::new("c1").expect("id");
    let cc = CouponConfig {
        stock: 6,
        per_user: nz(2),
        opens_at: None,
        closes_at: None,
    };
    let _ = live.put_coupon(&coupon, cc, T0).expect("coupon");

    let mut now = T0;
    let mut tickets: Vec<Vec<Option<String>>> = vec![vec![None; 30]; 3];
    let mut holds: Vec<Vec<HoldId>> = vec![vec![]; 3];
    let mut claims: Vec<ClaimId> = vec![];
    let mut journal: Vec<Vec<u8>> = vec![];
    let mut snapshot: Option<Vec<u8>> = None;
    let drain = |journal: &mut Vec<Vec<u8>>| {
        for s in 0..live.shard_count() {
            journal.extend(live.drain_journal(s).iter().map(encode));
        }
    };
    for op in ops {
        let e = |i: u8| &events[i as usize];
        match op {
            Op::Advance(ms) => now = now.plus_ms(ms),
            Op::Tick => {
                live.tick(now);
            }
            Op::Join(i, u, key) => {
                let k = key.map(|k| IdempotencyKey::new(&format!("k{k}")).expect("key"));
                let k = k.as_ref().map(|key| JoinKey {
                    key,
                    address: "127.0.0.1",
                });
                if let Ok(j) = live.join_keyed(e(i), JoinAs::Trusted(&user(u)), k, now) {
                    tickets[i as usize][u as usize] = Some(j.into_value().view.status.ticket);
                }
            }
            Op::Status(i, u) => {
                if let Some(t) = &tickets[i as usize][u as usize] {
                    let _ = live.status(e(i), t, now);
                }
            }
            Op::Leave(i, u) => {
                if let Some(t) = &tickets[i as usize][u as usize] {
                    let _ = live.leave(e(i), t, now);
                }
            }
            Op::Complete(i, u) => {
                if let Some(t) = &tickets[i as usize][u as usize] {
                    let _ = live.complete(e(i), t, now);
                }
            }
            Op::Pause(i) => {
                let _ = live.pause(e(i), now);
            }
            Op::Resume(i) => {
                let _ = live.resume(e(i), now);
            }
            Op::Hold(i, u, seats, key) => {
                let choice = SeatChoice::Exact(seats.iter().map(|s| seat_of(*s)).collect());
                let k = key.map(|k| IdempotencyKey::new(&format!("k{k}")).expect("key"));
                if let Ok(r) = live.hold(e(i), &user(u), &choice, k.as_ref(), now) {
                    holds[i as usize].push(r.into_value().hold.id);
                }
            }
            Op::Best(i, u, count) => {
                let choice = SeatChoice::Best {
                    count: nz(count),
                    category: if u % 2 == 0 { "VIP" } else { "R" }.into(),
                };
                if let Ok(r) = live.hold(e(i), &user(u), &choice, None, now) {
                    holds[i as usize].push(r.into_value().hold.id);
                }
            }
            Op::Confirm(i, h) | Op::Extend(i, h, _) | Op::Release(i, h)
                if holds[i as usize].is_empty() =>
            {
                let _ = h;
            }
            Op::Confirm(i, h) => {
                let hs = &holds[i as usize];
                let _ = live.confirm(e(i), hs[h % hs.len()], "o", now);
            }
            Op::Extend(i, h, ttl) => {
                let hs = &holds[i as usize];
                let _ = live.extend(e(i), hs[h % hs.len()], ttl, now);
            }
            Op::Release(i, h) => {
                let hs = &holds[i as usize];
                let _ = live.release(e(i), hs[h % hs.len()], now);
            }
            Op::Claim(u, key) => {
                let k = key.map(|k| IdempotencyKey::new(&format!("k{k}")).expect("key"));
                if let Ok(r) = live.claim(&coupon, &user(u), k.as_ref(), now) {
                    claims.push(r.into_value().claim);
                }
            }
            Op::Return(c) => {
                if !claims.is_empty() {
                    let _ = live.return_claim(&coupon, claims[c % claims.len()], now);
                }
            }
            Op::Replace(i) => {
                let mut cfg = event_cfg(i);
                cfg.name = format!("replaced at {now}");
                let _ = live.put_event(e(i), cfg, [9; 32], now);
            }
            Op::NewEpoch => live.set_writer_epoch(live.writer_epoch() + 1_000_000_007),
            Op::Snapshot => {
                if snapshot.is_none() {
                    drain(&mut journal);
                    snapshot = Some(encode(&live.snapshot()));
                }
            }
        }
    }
    drain(&mut journal);
    let entries: Vec<Entry> = journal
        .iter()
        .map(|b| decode(b).expect("entry decodes"))
        .collect();
    let want = live.snapshot();

    let from_scratch = Engine::restore(
        cfg.clone(),
        Engine::empty_snapshot(cfg.shards.get()),
        entries.clone(),
        now,
    )
    .expect("replay from scratch");
    let got = from_scratch.snapshot();
    assert_eq!(got, want, "whole journal replay");

    if let Some(bytes) = snapshot {
        let snap: Snapshot = decode(&bytes).expect("snapshot decodes");
        let restored = Engine::restore(cfg, snap, entries, now).expect("restore");
        let got = restored.snapshot();
        assert_eq!(got, want, "snapshot + later entries");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]
    #[test]
    fn snapshot_plus_replay_equals_live(ops in prop::collection::vec(op(), 1..150)) {
        run(ops);
    }
}

#[test]
fn a_gap_in_the_journal_is_refused() {
    let live = engine(1, true);
    let id = ev("e");
    let _ = live
        .put_event(&id, event_config(None, rows(&["A"], 1, 4), 4), [1; 32], T0)
        .expect("event");
    let _ = live
        .put_event(&id, event_config(None, rows(&["A"], 1, 5), 4), [1; 32], T0)
        .expect("replace");
    let mut entries = live.drain_journal(0);
    entries.remove(0);
    let cfg = live.config().clone();
    let r = Engine::restore(cfg, Engine::empty_snapshot(1), entries, T0);
    assert!(matches!(
        r,
        Err(RestoreError::Gap {
            expected: 1,
            found: 2,
            ..
        })
    ));
}

/// A journal entry that does not fit the state it is replayed onto (here: a
/// seat change for a hold that was never made) fails the restore, as a gap
/// does; it is never skipped.
#[test]
fn replay_refuses_a_change_that_does_not_fit() {
    let live = engine(1, true);
    let id = ev("misfit");
    let _ = live
        .put_event(&id, event_cfg(1), [1; 32], T0)
        .expect("event");
    let mut entries = live.drain_journal(0);
    let at = T0.plus_ms(1);
    entries.push(Entry {
        shard: 0,
        seq: entries.len() as u64 + 1,
        at,
        change: Change::Seats {
            event: id.clone(),
            change: boxoffice_engine::seats::SeatChange::Released {
                id: HoldId {
                    index: 0,
                    generation: 0,
                    epoch: live.writer_epoch(),
                },
                at,
                user: boxoffice_engine::ids::UserId::new("u").expect("id"),
                seats: vec![],
            },
        },
    });
    let seq = entries.len() as u64;
    let cfg = live.config().clone();
    let snap = Engine::empty_snapshot(1);
    match Engine::restore(cfg.clone(), snap.clone(), entries.clone(), at) {
        Err(RestoreError::Misfit {
            shard: 0, seq: s, ..
        }) => assert_eq!(s, seq),
        other => panic!("expected a misfit, got {other:?}"),
    }
    // Without the misfit the same journal restores.
    entries.pop();
    assert!(Engine::restore(cfg, snap, entries, at).is_ok());
}
