//! Bytes per waiting user: joins N users with 20-byte ids into one event and
//! reports the growth of the resident set, per user.
//!
//! `cargo run --release -p boxoffice-bench --bin memory -- 1000000 10000000`

use boxoffice_bench::*;
use std::time::Instant;

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000_000]
    } else {
        sizes
    };
    println!("| waiting users | RSS growth | bytes per user | join time |");
    println!("|---:|---:|---:|---:|");
    for n in sizes {
        let id = event_id("mem");
        // Ids are made inside the loop and dropped after the join, so only
        // what the engine keeps is counted.
        let before = rss_bytes().unwrap_or(0);
        let engine = engine(1);
        let _ = engine
            .put_event(&id, event(Some(queue(1, 1)), vec![], 4), [1; 32], T0)
            .expect("event");
        let start = Instant::now();
        for i in 0..n {
            if let Err(e) = engine.join(&id, &user(i), T0) {
                eprintln!("join {i} failed: {e}");
                std::process::exit(1);
            }
        }
        let took = start.elapsed();
        let after = rss_bytes().unwrap_or(0);
        let waiting = engine.event(&id, T0).map(|i| i.waiting).unwrap_or(0);
        assert_eq!(waiting, n, "every join is in line");
        let grew = after.saturating_sub(before);
        println!(
            "| {n} | {:.1} MiB | {:.1} | {:.0} ns/join |",
            grew as f64 / 1048576.0,
            grew as f64 / n as f64,
            took.as_nanos() as f64 / n as f64
        );
        drop(engine);
    }
}
