//! The slowest single writes of a growing pass, in process (the engine, one
//! thread, no HTTP): every write of a pass that adds one new user each time
//! is timed alone, and the slowest are reported with their place in the
//! pass. A table that grows all at once under the shard's lock shows up as
//! one write that takes milliseconds at the count where it grows, while the
//! writes around it take a microsecond; docs/benchmarks.md ("The tail at
//! equal throughput") reads these figures.
//!
//! `cargo run --release -p boxoffice-bench --bin stalls -- [holds=1000000] [claims=3000000] [joins=4000000]`

use boxoffice_bench::*;
use boxoffice_engine::seats::SeatChoice;
use boxoffice_engine::*;
use hdrhistogram::Histogram;
use std::time::Instant;

/// How many of the slowest writes to list (at most one per window of
/// `WINDOW` writes, so one stall is not listed many times over).
const WORST: usize = 6;
const WINDOW: usize = 1_000;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Times `op(i)` for every `i` in `0..n` and prints one table row.
fn pass(name: &str, n: u64, mut op: impl FnMut(u64) -> bool) {
    let mut took = Vec::with_capacity(n as usize);
    let mut failed = 0u64;
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let ok = op(i);
        took.push(t.elapsed().as_nanos() as u64);
        failed += u64::from(!ok);
    }
    let total = start.elapsed();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    for &ns in &took {
        let _ = hist.record(ns.max(1));
    }
    // The slowest write of each window, then the slowest of those.
    let mut peaks: Vec<(u64, usize)> = took
        .chunks(WINDOW)
        .enumerate()
        .filter_map(|(w, c)| {
            let (j, &ns) = c.iter().enumerate().max_by_key(|(_, &ns)| ns)?;
            Some((ns, w * WINDOW + j))
        })
        .collect();
    peaks.sort_unstable_by(|a, b| b.cmp(a));
    let worst: Vec<String> = peaks
        .iter()
        .take(WORST)
        .map(|&(ns, i)| format!("{:.2} ms at {}", ns as f64 / 1e6, i + 1))
        .collect();
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1e3;
    println!(
        "| {name} | {n} | {failed} | {:.2} | {:.2} | {:.1} | {:.1} | {:.2} ms | {} |",
        total.as_secs_f64() * 1e6 / n as f64,
        us(0.5),
        us(0.999),
        us(0.99999),
        hist.max() as f64 / 1e6,
        worst.join(", ")
    );
}

fn main() {
    let holds = arg(1, 1_000_000).min(1_000_000);
    let claims = arg(2, 3_000_000);
    let joins = arg(3, 4_000_000);
    println!(
        "| pass (one new user a write) | writes | refused | mean µs | p50 µs | p99.9 µs | p99.999 µs | max | slowest writes (at most one per {WINDOW}), with their place in the pass |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");

    // Holds: one seat each, a new user each, in a 1,000,000-seat venue.
    {
        let id = event_id("stalls-holds");
        let engine = engine(1);
        let _ = engine
            .put_event(&id, event(None, layout(10, 1_000, 100), 4), [1; 32], T0)
            .expect("event");
        let prepared: Vec<(UserId, SeatChoice)> = (0..holds)
            .map(|k| {
                let seat = format!("S{}-{}-{}", k / 100_000, k / 100 % 1_000 + 1, k % 100 + 1);
                let seat = SeatId::parse(&seat).expect("seat");
                (user(k), SeatChoice::Exact(vec![seat]))
            })
            .collect();
        pass("hold 1 seat", holds, |i| {
            let (u, c) = &prepared[i as usize];
            engine.hold(&id, u, c, None, T0).is_ok()
        });
    }

    // Claims: per_user 1, a stock larger than the pass.
    {
        let cid = CouponId::new("stalls-claims").expect("coupon id");
        let engine = engine(1);
        let cfg = CouponConfig {
            stock: u32::try_from(claims).unwrap_or(u32::MAX),
            per_user: nz(1),
            opens_at: None,
            closes_at: None,
        };
        let _ = engine.put_coupon(&cid, cfg, T0).expect("coupon");
        let users: Vec<UserId> = (0..claims).map(user).collect();
        pass("coupon claim", claims, |i| {
            engine.claim(&cid, &users[i as usize], None, T0).is_ok()
        });
    }

    // Joins: the service realm's join, a new user each.
    {
        let id = event_id("stalls-joins");
        let engine = engine(1);
        let _ = engine
            .put_event(&id, event(Some(queue(2_000, 200)), vec![], 4), [1; 32], T0)
            .expect("event");
        let users: Vec<UserId> = (0..joins).map(user).collect();
        pass("join", joins, |i| {
            engine.join(&id, &users[i as usize], T0).is_ok()
        });
    }
}
