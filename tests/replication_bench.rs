//! Replication benchmarks, ignored by default (they take tens of seconds and
//! print numbers rather than assert much). Run:
//!
//! ```text
//! cargo test --release --test replication_bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! - `throughput`: holds + confirms + claims per second at the engine level
//!   (no HTTP), memory-only vs sync vs async, with 64 concurrent writers, and
//!   the commit latency a sync writer sees (p50/p99 of `durable()`).
//! - `recovery_100k_holds`, `recovery_1m_waiting_users`: recovery from the
//!   log alone and from snapshots.
// These tests drive the engine directly and make its journal durable
// themselves: receipts are read without the server's commit path.
#![allow(clippy::disallowed_methods)]

mod replication_support;

use boxoffice::replicate::{Mode, Options, Replicator};
use boxoffice_engine::config::{HoldPolicy, QueueConfig, RowRange};
use boxoffice_engine::seats::SeatChoice;
use boxoffice_engine::*;
use replication_support::*;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WRITERS: u32 = 256;
const RUN: Duration = Duration::from_secs(3);

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).expect("non-zero")
}

fn big_event(rows: u32, per_row: u32) -> EventConfig {
    EventConfig {
        name: "bench".into(),
        opens_at: None,
        queue: None,
        seats: (1..=rows)
            .map(|r| RowRange {
                section: "A".into(),
                row: r.to_string(),
                first: 1,
                last: per_row,
                category: "R".into(),
            })
            .collect(),
        holds: HoldPolicy {
            ttl_s: nz(3600),
            max_ttl_s: nz(7200),
            max_seats_per_user: nz(100),
        },
    }
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// With a replicator: waits until `shard` is durable, returning how long.
async fn timed(rep: &Option<Replicator>, engine: &Engine, shard: usize) -> Option<Duration> {
    let rep = rep.as_ref()?;
    let t0 = Instant::now();
    rep.durable(shard, engine.journal_seq(shard))
        .await
        .expect("durable");
    Some(t0.elapsed())
}

struct Run {
    ops: u64,
    secs: f64,
    /// CPU seconds this process used (Redis's own are not included).
    cpu: f64,
    waits: Vec<Duration>,
}

/// WRITERS tasks, each with its own event and coupon, doing hold → confirm →
/// claim for RUN; with a replicator every write awaits `durable()`.
async fn drive(engine: Arc<Engine>, rep: Option<Replicator>) -> Run {
    let now = T0;
    for t in 0..WRITERS {
        let e = EventId::new(&format!("e{t}")).expect("id");
        let _ = engine
            .put_event(&e, big_event(100, 100), [t as u8; 32], now)
            .expect("event");
        let c = CouponId::new(&format!("c{t}")).expect("id");
        let cfg = CouponConfig {
            stock: 10_000_000,
            per_user: nz(1),
            opens_at: None,
            closes_at: None,
        };
        let _ = engine.put_coupon(&c, cfg, now).expect("coupon");
    }
    if let Some(rep) = &rep {
        flush(rep, &engine).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let mut tasks = vec![];
    let started = Instant::now();
    let cpu0 = cpu_secs();
    for t in 0..WRITERS {
        let (engine, rep, stop, ops) = (engine.clone(), rep.clone(), stop.clone(), ops.clone());
        tasks.push(tokio::spawn(async move {
            let e = EventId::new(&format!("e{t}")).expect("id");
            let c = CouponId::new(&format!("c{t}")).expect("id");
            let es = engine.shard_of_event(&e);
            let cs = engine.shard_of_coupon(&c);
            let mut waits = Vec::new();
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) && i < 10_000 {
                // As the server does before a change: async mode refuses
                // writes while its backlog is full.
                if let Some(rep) = &rep {
                    if rep.admit_write().is_err() {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                }
                let seat =
                    SeatId::parse(&format!("A-{}-{}", 1 + i / 100, 1 + i % 100)).expect("seat");
                let u = UserId::new(&format!("u{t}-{i}")).expect("user");
                let h = engine
                    .hold(&e, &u, &SeatChoice::Exact(vec![seat]), None, now)
                    .expect("holds");
                if let Some(d) = timed(&rep, &engine, es).await {
                    waits.push(d);
                }
                let _ = engine
                    .confirm(&e, h.into_value().hold.id, "o", now)
                    .expect("confirms");
                if let Some(d) = timed(&rep, &engine, es).await {
                    waits.push(d);
                }
                let _ = engine.claim(&c, &u, None, now).expect("claims");
                if let Some(d) = timed(&rep, &engine, cs).await {
                    waits.push(d);
                }
                ops.fetch_add(3, Ordering::Relaxed);
                i += 1;
                if rep.is_none() && i.is_multiple_of(64) {
                    // Let the other writers run, as a server's tasks would.
                    tokio::task::yield_now().await;
                }
            }
            waits
        }));
    }
    let all = async {
        let mut waits = vec![];
        for t in tasks {
            waits.extend(t.await.expect("task"));
        }
        waits
    };
    tokio::pin!(all);
    // Writers stop after RUN or when they run out of seats, whichever first.
    let mut waits = tokio::select! {
        w = &mut all => w,
        () = tokio::time::sleep(RUN) => {
            stop.store(true, Ordering::Relaxed);
            all.await
        }
    };
    let secs = started.elapsed().as_secs_f64();
    waits.sort();
    Run {
        ops: ops.load(Ordering::Relaxed),
        secs,
        cpu: cpu_secs() - cpu0,
        waits,
    }
}

fn bench_opts(mode: Mode) -> Options {
    Options {
        mode,
        owner: Some("bench".into()),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn throughput() {
    let mut cfg = engine_cfg(16);
    cfg.journal = false;
    let memory = drive(Arc::new(Engine::new(cfg)), None).await;
    let mem_rate = memory.ops as f64 / memory.secs;
    println!(
        "memory-only: {:>9.0} writes/s ({} in {:.2} s)",
        mem_rate, memory.ops, memory.secs
    );
    for mode in [Mode::Sync, Mode::Async] {
        let redis = RedisServer::start();
        let (engine, rep) =
            Replicator::recover(&redis.url(), bench_opts(mode), engine_cfg(16), || T0)
                .await
                .expect("recovers");
        let engine = Arc::new(engine);
        rep.spawn(engine.clone()).expect("spawns");
        let run = drive(engine.clone(), Some(rep.clone())).await;
        let rate = run.ops as f64 / run.secs;
        let t = Instant::now();
        flush(&rep, &engine).await;
        println!(
            "{mode:?}: {:>9.0} writes/s ({:.0}% of memory-only, {:.2} CPU s); durable() wait p50 {:?} p99 {:?}; final flush {:?}",
            rate,
            100.0 * rate / mem_rate,
            run.cpu,
            percentile(&run.waits, 0.5),
            percentile(&run.waits, 0.99),
            t.elapsed()
        );
        let mut conn = redis
            .client()
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .expect("info");
        for line in info
            .lines()
            .filter(|l| l.contains("evalsha") || l.contains("xadd"))
        {
            println!("  redis {line}");
        }
        rep.shutdown().await;
    }
}

/// Fills an engine through a replicator, then times recovery from the log
/// alone and from snapshots, checking both equal the live state.
async fn measure_recovery(what: &str, fill: impl FnOnce(&Engine)) {
    let redis = RedisServer::start();
    let mut o = bench_opts(Mode::Async);
    o.snapshot_interval = Duration::from_secs(3600);
    o.snapshot_every = u64::MAX;
    let (engine, rep) = Replicator::recover(&redis.url(), o.clone(), engine_cfg(16), || T0)
        .await
        .expect("recovers");
    let engine = Arc::new(engine);
    rep.spawn(engine.clone()).expect("spawns");
    let t = Instant::now();
    fill(&engine);
    let applied = t.elapsed();
    flush(&rep, &engine).await;
    let entries: u64 = (0..16).map(|i| engine.journal_seq(i)).sum();
    println!(
        "{what}: {entries} journal entries applied in {applied:?}, all in Redis after {:?}",
        t.elapsed()
    );
    rep.abort();

    let t = Instant::now();
    let (back, _r) = Replicator::recover(&redis.url(), o.clone(), engine_cfg(16), || T0)
        .await
        .expect("recovers");
    println!("{what}: recovery from the log alone: {:?}", t.elapsed());
    assert_same_state(&engine, &back);
    drop(back);

    // Let a writer snapshot every shard (and trim every log), then recover.
    let mut o2 = o.clone();
    o2.snapshot_every = 1;
    let (back2, rep2) = Replicator::recover(&redis.url(), o2, engine_cfg(16), || T0)
        .await
        .expect("recovers");
    let back2 = Arc::new(back2);
    rep2.spawn(back2.clone()).expect("spawns");
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let t = Instant::now();
    loop {
        let mut done = true;
        for shard in 0..16 {
            let len: u64 = redis::cmd("XLEN")
                .arg(format!("boxoffice:s{shard}:log"))
                .query_async(&mut conn)
                .await
                .expect("xlen");
            done &= len == 0;
        }
        if done {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "snapshots not written"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .expect("info");
    let used = info
        .lines()
        .find(|l| l.starts_with("used_memory_human:"))
        .unwrap_or("?");
    println!(
        "{what}: snapshots of all shards written in {:?} (redis {used})",
        t.elapsed()
    );
    rep2.abort();
    let t = Instant::now();
    let (back3, _r) = Replicator::recover(&redis.url(), o, engine_cfg(16), || T0)
        .await
        .expect("recovers");
    println!("{what}: recovery from snapshots: {:?}", t.elapsed());
    assert_same_state(&engine, &back3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn recovery_100k_holds() {
    measure_recovery("100k holds", |engine| {
        // 10 events of 20 000 seats, 10 000 one-seat holds each.
        for k in 0..10u32 {
            let e = EventId::new(&format!("e{k}")).expect("id");
            let _ = engine
                .put_event(&e, big_event(200, 100), [k as u8; 32], T0)
                .expect("event");
            for i in 0..10_000u32 {
                let seat =
                    SeatId::parse(&format!("A-{}-{}", 1 + i / 100, 1 + i % 100)).expect("seat");
                let u = UserId::new(&format!("u{i}")).expect("user");
                let _ = engine
                    .hold(&e, &u, &SeatChoice::Exact(vec![seat]), None, T0)
                    .expect("holds");
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn recovery_1m_waiting_users() {
    measure_recovery("1M waiting", |engine| {
        let mut cfg = big_event(10, 100);
        cfg.queue = Some(QueueConfig {
            capacity: nz(100),
            admit_per_s: nz(100),
            session_ttl_s: nz(600),
            idle_timeout_s: nz(3600),
            max_waiting: nz(2_000_000),
            poll_budget_per_s: boxoffice_engine::QueueConfig::default_poll_budget(
                nz(100),
                nz(2_000_000),
            ),
            identity: boxoffice_engine::Identity::Signed,
            prequeue: PrequeueOrder::Fifo,
        });
        let e = EventId::new("big").expect("id");
        let _ = engine.put_event(&e, cfg, [1; 32], T0).expect("event");
        for i in 0..1_000_000u32 {
            let u = UserId::new(&format!("user-{i}")).expect("user");
            let _ = engine.join(&e, &u, T0).expect("joins");
        }
    })
    .await;
}

/// Over HTTP: `boxoffice serve` (memory only, then `--redis` sync and async)
/// and 64 concurrent clients doing hold → confirm → claim for a few seconds.
/// The clients share the machine with the server and Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn http_throughput() {
    const CLIENTS: u32 = 64;
    let mut memory_rate = 0.0;
    for mode in ["memory", "sync", "async"] {
        let redis = RedisServer::start();
        let log = redis.dir.join("boxoffice.log");
        let with = (mode != "memory").then_some((&redis, mode));
        let _server = Boxoffice::start(with, &log);
        let addr = _server.addr.clone();
        let http = Http::new(&addr);
        http.wait_ready(Duration::from_secs(20)).await;
        let rows: Vec<serde_json::Value> = (1..=CLIENTS)
            .map(|r| serde_json::json!({"section": "A", "row": r.to_string(), "first": 1, "last": 5000, "category": "R"}))
            .collect();
        let ev = serde_json::json!({"name": "bench", "seats": rows,
            "holds": {"ttl_s": 600, "max_ttl_s": 1200, "max_seats_per_user": 100}});
        let r = http
            .call(http::Method::PUT, "/v1/events/e", Some(ADMIN), Some(&ev))
            .await;
        assert!(matches!(r, Some((201, _))), "{r:?}");
        let c = serde_json::json!({"stock": 10_000_000, "per_user": 1});
        let r = http
            .call(http::Method::PUT, "/v1/coupons/c", Some(ADMIN), Some(&c))
            .await;
        assert!(matches!(r, Some((201, _))), "{r:?}");
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut tasks = vec![];
        for t in 1..=CLIENTS {
            let (http, stop) = (http.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = vec![];
                let mut refused = 0u64;
                let mut i = 0u32;
                let timed = |lat: &mut Vec<Duration>, t0: Instant, ok: bool| {
                    if ok {
                        lat.push(t0.elapsed());
                    }
                    ok
                };
                while !stop.load(Ordering::Relaxed) && i < 5000 {
                    i += 1;
                    let user = format!("u{t}-{i}");
                    let body = serde_json::json!({"user": user, "seats": [format!("A-{t}-{i}")]});
                    let t0 = Instant::now();
                    let r = http
                        .call(
                            http::Method::POST,
                            "/v1/events/e/holds",
                            Some(SERVICE),
                            Some(&body),
                        )
                        .await;
                    let Some((201, h)) = r else {
                        refused += 1;
                        continue;
                    };
                    timed(&mut lat, t0, true);
                    let hold = h["hold"].as_str().unwrap_or_default().to_string();
                    let t0 = Instant::now();
                    let r = http
                        .call(
                            http::Method::POST,
                            &format!("/v1/events/e/holds/{hold}/confirm"),
                            Some(SERVICE),
                            Some(&serde_json::json!({"order": "o"})),
                        )
                        .await;
                    timed(&mut lat, t0, matches!(r, Some((200, _))));
                    let t0 = Instant::now();
                    let r = http
                        .call(
                            http::Method::POST,
                            "/v1/coupons/c/claims",
                            Some(SERVICE),
                            Some(&serde_json::json!({"user": user})),
                        )
                        .await;
                    timed(&mut lat, t0, matches!(r, Some((201, _))));
                }
                (lat, refused)
            }));
        }
        tokio::time::sleep(RUN).await;
        stop.store(true, Ordering::Relaxed);
        let mut lat = vec![];
        let mut refused = 0;
        for t in tasks {
            let (l, r) = t.await.expect("task");
            lat.extend(l);
            refused += r;
        }
        let secs = started.elapsed().as_secs_f64();
        lat.sort();
        let rate = lat.len() as f64 / secs;
        if mode == "memory" {
            memory_rate = rate;
        }
        println!(
            "HTTP {mode:>6}: {rate:>7.0} writes/s ({:.0}% of memory-only), latency p50 {:?} p99 {:?}, {refused} holds refused",
            100.0 * rate / memory_rate.max(1.0),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99)
        );
    }
}
