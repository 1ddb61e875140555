//! Stress: 8 threads × 100k mixed operations, on one hot event and spread over
//! many events, with a ticking thread moving time; the invariants are checked
//! afterwards from what the threads were told (I1, I2, I7).

mod common;

use boxoffice_engine::seats::{HoldState, SeatChoice};
use boxoffice_engine::*;
use common::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const THREADS: u64 = 8;
const OPS: u64 = 100_000;
const STOCK: u32 = 20_000;

/// xorshift64*: deterministic per thread, no shared RNG.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
struct Seen {
    sold: Vec<(EventId, HoldId, Vec<SeatId>)>,
    claims: Vec<ClaimId>,
    returned: Vec<ClaimId>,
}

fn run(events: usize) {
    let engine = Arc::new(engine(8, false));
    let ids: Vec<EventId> = (0..events).map(|i| ev(&format!("hot{i}"))).collect();
    for id in &ids {
        let cfg = event_config(
            Some(queue(500, 2_000, 30, 60)),
            rows(&["A", "B", "C"], 20, 40),
            6,
        );
        let _ = engine.put_event(id, cfg, [3; 32], T0).expect("event");
    }
    let coupon = CouponId::new("flash").expect("id");
    let cc = CouponConfig {
        stock: STOCK,
        per_user: nz(1),
        opens_at: None,
        closes_at: None,
    };
    let _ = engine.put_coupon(&coupon, cc, T0).expect("coupon");
    let clock = Arc::new(AtomicU64::new(T0.as_millis()));
    let done = Arc::new(AtomicBool::new(false));

    let ticker = {
        let (engine, clock, done) = (engine.clone(), clock.clone(), done.clone());
        std::thread::spawn(move || {
            let mut max_admitted = 0;
            while !done.load(Ordering::Relaxed) {
                let now = Timestamp(clock.fetch_add(50, Ordering::Relaxed) + 50);
                engine.tick(now);
                for info in engine.events(now) {
                    max_admitted = max_admitted.max(info.admitted);
                }
                std::thread::yield_now();
            }
            max_admitted
        })
    };

    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (engine, clock, ids, coupon) =
                (engine.clone(), clock.clone(), ids.clone(), coupon.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
                let mut seen = Seen::default();
                let mut tickets: Vec<(usize, String)> = vec![];
                let mut mine: Vec<(usize, HoldId)> = vec![];
                for _ in 0..OPS {
                    let now = Timestamp(clock.load(Ordering::Relaxed));
                    let ei = rng.below(ids.len() as u64) as usize;
                    let id = &ids[ei];
                    let u = user(rng.below(50_000) as u32);
                    match rng.below(100) {
                        0..=24 => {
                            if let Ok(j) = engine.join(id, &u, now) {
                                tickets.push((ei, j.into_value().view.status.ticket));
                            }
                        }
                        25..=49 => {
                            if !tickets.is_empty() {
                                let (te, t) = &tickets[rng.below(tickets.len() as u64) as usize];
                                let v = engine.status(&ids[*te], t, now).expect("own ticket");
                                assert!(v.status.position.is_none_or(|p| p >= 1));
                            }
                        }
                        50..=62 => {
                            let n = 1 + rng.below(3) as u32;
                            let choice = if rng.below(2) == 0 {
                                let sec = ["A", "B", "C"][rng.below(3) as usize];
                                let row = 1 + rng.below(20);
                                let first = 1 + rng.below(38);
                                SeatChoice::Exact(
                                    (0..n)
                                        .map(|k| {
                                            seat(&format!("{sec}-{row}-{}", first + u64::from(k)))
                                        })
                                        .collect(),
                                )
                            } else {
                                SeatChoice::Best {
                                    count: nz(n),
                                    category: "R".into(),
                                }
                            };
                            if let Ok(r) = engine.hold(id, &u, &choice, None, now) {
                                mine.push((ei, r.into_value().hold.id));
                            }
                        }
                        63..=72 => {
                            if let Some((he, h)) = mine.pop() {
                                if let Ok(info) = engine.confirm(&ids[he], h, "o", now) {
                                    let info = info.into_value();
                                    assert_eq!(info.state, HoldState::Sold);
                                    seen.sold.push((ids[he].clone(), h, info.seats));
                                }
                            }
                        }
                        73..=77 => {
                            if let Some((he, h)) = mine.pop() {
                                let _ = engine.release(&ids[he], h, now);
                            }
                        }
                        78..=92 => match engine.claim(&coupon, &u, None, now) {
                            Ok(r) => seen.claims.push(r.into_value().claim),
                            Err(Rejection::AlreadyClaimed | Rejection::SoldOut) => {}
                            Err(other) => panic!("claim: {other:?}"),
                        },
                        93..=94 => {
                            if let Some(c) = seen.claims.last().copied() {
                                if !seen.returned.contains(&c) {
                                    let _ = engine.return_claim(&coupon, c, now).expect("return");
                                    seen.returned.push(c);
                                }
                            }
                        }
                        _ => {
                            if let Some((te, t)) = tickets.pop() {
                                let _ = engine.leave(&ids[te], &t, now);
                            }
                        }
                    }
                }
                seen
            })
        })
        .collect();

    let seen: Vec<Seen> = workers
        .into_iter()
        .map(|w| w.join().expect("worker"))
        .collect();
    done.store(true, Ordering::Relaxed);
    let max_admitted = ticker.join().expect("ticker");
    let now = Timestamp(clock.load(Ordering::Relaxed));

    // I1: confirmed holds never share a seat, and the engine agrees on sold counts.
    let mut sold_seats: HashSet<(EventId, SeatId)> = HashSet::new();
    let mut sold_per_event: HashMap<EventId, u64> = HashMap::new();
    for s in &seen {
        for (e, h, seats) in &s.sold {
            assert_eq!(
                engine.get_hold(e, *h, now).expect("hold").state,
                HoldState::Sold
            );
            for seat in seats {
                assert!(
                    sold_seats.insert((e.clone(), seat.clone())),
                    "I1: {seat} sold twice"
                );
            }
            *sold_per_event.entry(e.clone()).or_default() += seats.len() as u64;
        }
    }
    for id in &ids {
        let c = engine.seat_counts(id, now).expect("counts");
        assert_eq!(c.total.sold, sold_per_event.get(id).copied().unwrap_or(0));
        assert_eq!(c.total.free + c.total.held + c.total.sold, 3 * 20 * 40);
        let cat: u64 = c
            .categories
            .values()
            .map(|k| k.free + k.held + k.sold)
            .sum();
        assert_eq!(cat, 3 * 20 * 40);
    }
    // I2: exactly the successful claims minus returns are issued.
    let claimed: usize = seen.iter().map(|s| s.claims.len()).sum();
    let returned: usize = seen.iter().map(|s| s.returned.len()).sum();
    let (cfg, counts) = engine.coupon(&coupon).expect("coupon");
    assert_eq!(counts.issued as usize, claimed - returned, "I2 issued");
    assert_eq!(
        counts.issued + counts.remaining,
        cfg.stock,
        "I2 conservation"
    );
    // I7: never more than capacity admitted at once.
    assert!(max_admitted <= 500, "I7: {max_admitted} admitted at once");
}

#[test]
fn one_hot_event() {
    run(1);
}

#[test]
fn many_events() {
    run(64);
}
