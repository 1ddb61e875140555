//! Ids are never reissued (I8): every hold and claim id carries the writer
//! epoch it was issued under, and resolves only with it. The case it is for:
//! a writer's last changes are lost (an async crash), the next writer
//! restores the durable prefix and, under a newer epoch, hands the same slot
//! and generation (or ledger index) to someone else; the lost id must name
//! nothing rather than the new hold or claim.

mod common;

use boxoffice_engine::seats::{HoldState, SeatChoice};
use boxoffice_engine::*;
use common::*;

const E1: u64 = 1_800_000_000_000;
const E2: u64 = E1 + 1;

/// A fresh journaled engine under epoch `E1` with one event and one coupon,
/// and the entries that made them (the durable prefix).
fn setup() -> (Engine, EventId, CouponId, Vec<Entry>) {
    let live = engine(2, true);
    live.set_writer_epoch(E1);
    let event = ev("e");
    let _ = live
        .put_event(
            &event,
            event_config(None, rows(&["A"], 1, 4), 4),
            [1; 32],
            T0,
        )
        .expect("event");
    let coupon = CouponId::new("c").expect("id");
    let cc = CouponConfig {
        stock: 1,
        per_user: nz(1),
        opens_at: None,
        closes_at: None,
    };
    let _ = live.put_coupon(&coupon, cc, T0).expect("coupon");
    let durable = drain(&live);
    (live, event, coupon, durable)
}

fn drain(live: &Engine) -> Vec<Entry> {
    (0..live.shard_count())
        .flat_map(|s| live.drain_journal(s))
        .collect()
}

/// The next writer: the durable entries restored, epoch `E2`.
fn next_writer(live: &Engine, durable: Vec<Entry>, now: Timestamp) -> Engine {
    let cfg = live.config().clone();
    let next = Engine::restore(
        cfg.clone(),
        Engine::empty_snapshot(cfg.shards.get()),
        durable,
        now,
    )
    .expect("restore");
    next.set_writer_epoch(E2);
    next
}

fn a1() -> SeatChoice {
    SeatChoice::Exact(vec![seat("A-1-1")])
}

#[test]
fn a_lost_hold_id_names_nothing_under_the_next_epoch() {
    let (live, event, _, durable) = setup();
    let t = T0.plus_ms(10);
    let alice = live
        .hold(&event, &user(1), &a1(), None, t)
        .expect("alice holds")
        .into_value()
        .hold;
    assert_eq!(alice.id.epoch, E1);
    // Alice's hold never reached the store: the next writer has only `durable`.
    let next = next_writer(&live, durable, t);
    let bob = next
        .hold(&event, &user(2), &a1(), None, t)
        .expect("bob holds")
        .into_value()
        .hold;
    assert_eq!(
        (bob.id.index, bob.id.generation),
        (alice.id.index, alice.id.generation),
        "same slot and generation: only the epoch tells them apart"
    );
    assert_eq!(bob.id.epoch, E2);
    assert_ne!(bob.id, alice.id);
    assert_ne!(bob.id.to_string(), alice.id.to_string());

    // Every hold operation with alice's id: not found, nothing changed.
    assert_eq!(
        next.get_hold(&event, alice.id, t),
        Err(Rejection::HoldNotFound)
    );
    assert_eq!(
        next.confirm(&event, alice.id, "o-alice", t)
            .map(Receipt::into_value),
        Err(Rejection::HoldNotFound)
    );
    assert_eq!(
        next.extend(&event, alice.id, 120, t)
            .map(Receipt::into_value),
        Err(Rejection::HoldNotFound)
    );
    assert_eq!(
        next.release(&event, alice.id, t).map(Receipt::into_value),
        Err(Rejection::HoldNotFound)
    );
    let still = next.get_hold(&event, bob.id, t).expect("bob's hold");
    assert_eq!(still.state, HoldState::Held);
    assert_eq!(still.order, None);
    assert_eq!(still.expires_at, bob.expires_at);
    // Bob's own id works.
    let sold = next
        .confirm(&event, bob.id, "o-bob", t)
        .expect("bob confirms")
        .into_value();
    assert_eq!(sold.state, HoldState::Sold);
}

#[test]
fn a_lost_claim_id_names_nothing_under_the_next_epoch() {
    let (live, _, coupon, durable) = setup();
    let t = T0.plus_ms(10);
    let alice = live
        .claim(&coupon, &user(1), None, t)
        .expect("alice claims")
        .into_value()
        .claim;
    assert_eq!(alice.epoch, E1);
    let next = next_writer(&live, durable, t);
    let bob = next
        .claim(&coupon, &user(2), None, t)
        .expect("bob claims")
        .into_value()
        .claim;
    assert_eq!(bob.index, alice.index, "the same ledger index");
    assert_ne!(bob, alice);
    assert_eq!(
        next.return_claim(&coupon, alice, t)
            .map(Receipt::into_value),
        Err(Rejection::ClaimNotFound)
    );
    assert_eq!(next.coupon(&coupon).expect("coupon").1.remaining, 0);
    assert!(next.return_claim(&coupon, bob, t).is_ok());
    assert_eq!(next.coupon(&coupon).expect("coupon").1.remaining, 1);
}

/// Holds and claims that did reach the store keep their ids across the
/// restore (their own epoch, not the new one), and a keyed retry returns
/// the same id, epoch included.
#[test]
fn restored_ids_keep_their_epoch_and_keyed_retries_their_id() {
    let (live, event, coupon, mut durable) = setup();
    let t = T0.plus_ms(10);
    let key = IdempotencyKey::new("retry-1").expect("key");
    let held = live
        .hold(&event, &user(1), &a1(), Some(&key), t)
        .expect("hold")
        .into_value()
        .hold;
    let claim = live
        .claim(&coupon, &user(1), Some(&key), t)
        .expect("claim")
        .into_value()
        .claim;
    durable.extend(drain(&live));
    let next = next_writer(&live, durable, t);
    assert_eq!(next.writer_epoch(), E2);
    let got = next.get_hold(&event, held.id, t).expect("restored hold");
    assert_eq!(got.id.epoch, E1);
    let again = next
        .hold(&event, &user(1), &a1(), Some(&key), t)
        .expect("retry")
        .into_value();
    assert!(again.replayed);
    assert_eq!(again.hold.id, held.id);
    let again = next
        .claim(&coupon, &user(1), Some(&key), t)
        .expect("retry")
        .into_value();
    assert!(again.replayed);
    assert_eq!(again.claim, claim);
    // The snapshot path keeps epochs too.
    let restored = Engine::restore(next.config().clone(), next.snapshot(), vec![], t)
        .expect("restore from snapshot");
    assert_eq!(
        restored.get_hold(&event, held.id, t).map(|h| h.id),
        Ok(held.id)
    );
    assert!(restored.return_claim(&coupon, claim, t).is_ok());
}
