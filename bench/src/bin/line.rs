//! A line of N people on one node, in process (the engine, no HTTP): join
//! rate, memory, status latency, and the poll load that the advice asks of
//! the whole line — Σ 1000 / `poll_after_ms` over every ticket, read back
//! from the engine — with the event's poll budget and, for comparison,
//! with the budget lifted (docs/loadtest.md, run 3).
//!
//! `cargo run --release -p boxoffice-bench --bin line -- 10000000`

use boxoffice_bench::*;
use boxoffice_engine::config::QueueConfig;
use boxoffice_engine::queue::TicketState;
use boxoffice_engine::{Engine, EventId, Timestamp};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

const TICKET_LEN: usize = boxoffice_engine::queue::TICKET_LEN;

struct Load {
    /// Σ polls/s the advice asks of everyone waiting.
    rate: f64,
    waiting: u64,
    /// (position, poll_after_ms, eta_s) at a few positions.
    probes: Vec<(u64, u64, Option<u64>)>,
    took: Duration,
}

/// Reads every ticket's status once at `now`.
fn poll_load(engine: &Engine, id: &EventId, tickets: &[[u8; TICKET_LEN]], now: Timestamp) -> Load {
    let start = Instant::now();
    let mut rate = 0.0;
    let mut waiting = 0;
    let mut probes = vec![];
    let mut next_probe = 1u64;
    for t in tickets {
        let Ok(t) = std::str::from_utf8(t) else {
            continue;
        };
        let Ok(v) = engine.status(id, t, now) else {
            continue;
        };
        let s = v.status;
        if s.state != TicketState::Waiting {
            continue;
        }
        waiting += 1;
        rate += 1000.0 / s.poll_after_ms.max(1) as f64;
        let p = s.position.unwrap_or(0);
        if p >= next_probe {
            probes.push((p, s.poll_after_ms, s.eta_s));
            next_probe = next_probe.saturating_mul(10);
        }
    }
    Load {
        rate,
        waiting,
        probes,
        took: start.elapsed(),
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(10_000_000);
    let id = event_id("line");
    let engine = engine(1);
    let mut q: QueueConfig = queue(2_000, 200);
    q.idle_timeout_s = nz(120);
    let budget = q.poll_budget_per_s.get();
    let _ = engine
        .put_event(&id, event(Some(q.clone()), vec![], 4), [1; 32], T0)
        .expect("event");
    println!(
        "# {n} in line: capacity 2000, admit_per_s 200, idle_timeout_s 120, poll_budget_per_s {budget}\n"
    );

    // Tickets are kept as fixed 22-byte arrays so the client side of the
    // memory is exact (n × 22 bytes) and can be taken off the growth.
    let mut tickets: Vec<[u8; TICKET_LEN]> = Vec::with_capacity(n as usize);
    let before = rss_bytes().unwrap_or(0);
    let start = Instant::now();
    for i in 0..n {
        match engine.join(&id, &user(i), T0) {
            Ok(r) => {
                let mut t = [0u8; TICKET_LEN];
                let ticket = r.into_value().view.status.ticket;
                let s = ticket.as_bytes();
                t.copy_from_slice(&s[..TICKET_LEN.min(s.len())]);
                tickets.push(t);
            }
            Err(e) => {
                eprintln!("join {i} failed: {e}");
                std::process::exit(1);
            }
        }
    }
    let join_took = start.elapsed();
    let after = rss_bytes().unwrap_or(0);
    let engine_bytes = after
        .saturating_sub(before)
        .saturating_sub(n * TICKET_LEN as u64);
    println!("| measure | value |\n|---|---:|");
    println!(
        "| joins (one thread) | {n} in {:.1} s = {:.0}/s |",
        join_took.as_secs_f64(),
        n as f64 / join_took.as_secs_f64()
    );
    println!(
        "| engine memory (RSS growth less the tickets held by this probe) | {:.2} GiB = {:.1} bytes a user |",
        engine_bytes as f64 / (1u64 << 30) as f64,
        engine_bytes as f64 / n as f64
    );

    // Ten seconds of admission on the simulated clock, so the ETA is known.
    let mut now = T0;
    for _ in 0..200 {
        now = now.plus_ms(50);
        engine.tick(now);
    }
    let served = engine.event(&id, now).map(|i| i.served).unwrap_or(0);
    println!("| admitted in 10 s of simulated ticks | {served} |");

    // Status latency on random tickets (one thread).
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let samples = 1_000_000u64.min(n);
    let start = Instant::now();
    for _ in 0..samples {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = &tickets[(x % n) as usize];
        let Ok(t) = std::str::from_utf8(t) else {
            continue;
        };
        let s = Instant::now();
        let ok = engine.status(&id, t, now).is_ok();
        let ns = s.elapsed().as_nanos() as u64;
        if ok {
            let _ = hist.record(ns.max(1));
        }
    }
    let took = start.elapsed();
    println!(
        "| status, random tickets (one thread) | {:.0}/s; p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.1} µs |",
        samples as f64 / took.as_secs_f64(),
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.value_at_quantile(0.999) as f64 / 1000.0,
        hist.max() as f64 / 1000.0
    );

    let load = poll_load(&engine, &id, &tickets, now);
    println!(
        "| poll load the advice asks (Σ 1000 / poll_after_ms over {} waiting) | {:.0} polls/s (budget {budget}); read in {:.1} s |",
        load.waiting,
        load.rate,
        load.took.as_secs_f64()
    );

    // The same line with the budget lifted: the advice as it was before
    // the budget (1–30 s, capped at idle_timeout / 3).
    q.poll_budget_per_s = nz(10_000_000);
    let _ = engine
        .put_event(&id, event(Some(q), vec![], 4), [1; 32], now)
        .expect("replace the event (nothing held or sold)");
    let free = poll_load(&engine, &id, &tickets, now);
    println!(
        "| the same line with the budget at 10,000,000 (≈ no budget) | {:.0} polls/s |",
        free.rate
    );
    println!("\n| position | poll_after_ms (budget {budget}) | eta_s |\n|---:|---:|---:|");
    for (p, a, e) in &load.probes {
        let eta = e.map_or("—".to_string(), |e| e.to_string());
        println!("| {p} | {a} | {eta} |");
    }
}
