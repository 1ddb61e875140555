//! I6 at the replicator level (engine in-process, no HTTP): what Redis
//! acknowledged comes back exactly; Redis trouble never yields an
//! acknowledgement that is not durable, and shipping resumes with no gap and
//! no duplicate; only the lease holder writes. Each test starts its own
//! redis-server on a free loopback port and stops it by PID.
// These tests drive the engine directly and make its journal durable
// themselves: receipts are read without the server's commit path.
#![allow(clippy::disallowed_methods)]

mod replication_support;

use boxoffice::replicate::{Mode, Replicator, Status, Unavailable};
use boxoffice_engine::*;
use redis::AsyncCommands;
use replication_support::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Shared<T> = Arc<parking_lot::Mutex<T>>;
/// An XRANGE item: id and field/value pairs.
type StreamItem = (String, Vec<(String, Vec<u8>)>);

/// Recovers (presence restarting at `now`) and starts replicating.
async fn start(
    redis: &RedisServer,
    o: boxoffice::replicate::Options,
    shards: usize,
) -> (Arc<Engine>, Replicator) {
    start_replicator(redis, o, shards, T0).await
}

async fn setup_durably(w: &mut Workload, engine: &Engine, rep: &Replicator) {
    for shard in w.setup(engine) {
        rep.durable(shard, engine.journal_seq(shard))
            .await
            .expect("setup is durable");
    }
}

/// Every id in every shard's log, checked to be `first..=head` with no gap
/// and no duplicate.
async fn assert_logs_contiguous(redis: &RedisServer, shards: usize) {
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    for shard in 0..shards {
        let head: Option<u64> = conn.hget("boxoffice:heads", shard).await.expect("heads");
        let ids: Vec<StreamItem> = redis::cmd("XRANGE")
            .arg(format!("boxoffice:s{shard}:log"))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .expect("xrange");
        let seqs: Vec<u64> = ids
            .iter()
            .map(|(id, _)| id.trim_end_matches("-0").parse().expect("seq id"))
            .collect();
        if let (Some(first), Some(head)) = (seqs.first(), head) {
            let expected: Vec<u64> = (*first..=head).collect();
            assert_eq!(
                seqs, expected,
                "shard {shard}: log has a gap or a duplicate"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ship_then_recover_equals_live_state_with_snapshots_and_trims() {
    let redis = RedisServer::start();
    let mut o = opts("a");
    o.snapshot_every = 60;
    o.snapshot_interval = Duration::from_millis(400);
    let (engine, rep) = start(&redis, o.clone(), 4).await;
    let mut w = Workload::new(7, 3, 3).with_queues(2);
    setup_durably(&mut w, &engine, &rep).await;
    let mut acked = vec![];
    for _ in 0..1500 {
        rep.admit_write().expect("admitted");
        let (shard, ack) = w.step(&engine);
        rep.durable(shard, engine.journal_seq(shard))
            .await
            .expect("durable");
        acked.push(ack);
    }
    flush(&rep, &engine).await;
    // Wait until every shard with changes has a snapshot, so the recovery
    // below starts from snapshots and replays only trimmed logs' tails.
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let mut missing = 0;
        for shard in 0..4 {
            let seq: Option<u64> = conn
                .hget(format!("boxoffice:s{shard}:snap"), "seq")
                .await
                .expect("hget");
            if engine.journal_seq(shard) > 0 && seq.is_none() {
                missing += 1;
            }
        }
        if missing == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "snapshots were not written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A few more changes after the snapshots.
    for _ in 0..50 {
        let (shard, ack) = w.step(&engine);
        rep.durable(shard, engine.journal_seq(shard))
            .await
            .expect("durable");
        acked.push(ack);
    }
    flush(&rep, &engine).await;
    for shard in 0..4 {
        let len: u64 = redis::cmd("XLEN")
            .arg(format!("boxoffice:s{shard}:log"))
            .query_async(&mut conn)
            .await
            .expect("xlen");
        assert!(
            len < engine.journal_seq(shard),
            "shard {shard}: log of {len} entries was not trimmed (seq {})",
            engine.journal_seq(shard)
        );
    }
    assert_logs_contiguous(&redis, 4).await;
    rep.abort(); // a crash: no flush, no lease release (same owner re-takes it)

    let (back, rep2) = Replicator::recover(&redis.url(), o, engine_cfg(4), || w.now)
        .await
        .expect("recovers");
    assert_same_state(&engine, &back);
    assert_acked_present(&back, &acked, w.now);
    let passes = assert_tickets_agree(&engine, &back, &w);
    assert!(passes > 0, "some users were admitted with a pass");
    assert!(
        acked
            .iter()
            .filter(|a| matches!(a, Ack::Joined(..)))
            .count()
            > 20,
        "the run joined waiting rooms"
    );
    assert!(rep2.epoch() > rep.epoch(), "a new epoch per writer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_random_run_with_repeated_crashes() {
    let redis = RedisServer::start();
    let mut o = opts("a");
    o.snapshot_every = 150;
    o.snapshot_interval = Duration::from_millis(300);
    let mut w = Workload::new(0xfeed, 4, 4).with_queues(2);
    w.stock = 200;
    let mut acked = vec![];
    let mut previous: Option<Arc<Engine>> = None;
    for round in 0..5 {
        let (engine, rep) = start_replicator(&redis, o.clone(), 8, w.now).await;
        if let Some(prev) = &previous {
            assert_same_state(prev, &engine);
            assert_acked_present(&engine, &acked, w.now);
            let _ = assert_tickets_agree(prev, &engine, &w);
        } else {
            setup_durably(&mut w, &engine, &rep).await;
        }
        for _ in 0..1200 {
            let (shard, ack) = w.step(&engine);
            rep.durable(shard, engine.journal_seq(shard))
                .await
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            acked.push(ack);
        }
        flush(&rep, &engine).await;
        rep.abort();
        previous = Some(engine);
    }
    let (last, _rep) = Replicator::recover(&redis.url(), o, engine_cfg(8), || w.now)
        .await
        .expect("recovers");
    if let Some(prev) = &previous {
        assert_same_state(prev, &last);
    }
    assert_acked_present(&last, &acked, w.now);
}

/// Many writers at once: each waits only for its own change, all share round
/// trips, and everything acknowledged comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_group_commit() {
    let redis = RedisServer::start();
    let o = opts("a");
    let (engine, rep) = start(&redis, o.clone(), 4).await;
    let coupons: Vec<CouponId> = (0..4)
        .map(|i| CouponId::new(&format!("c{i}")).expect("id"))
        .collect();
    for c in &coupons {
        let cfg = CouponConfig {
            stock: 1_000_000,
            per_user: std::num::NonZeroU32::MIN,
            opens_at: None,
            closes_at: None,
        };
        let _ = engine.put_coupon(c, cfg, T0).expect("coupon");
    }
    flush(&rep, &engine).await;
    let acked: Shared<Vec<Ack>> = Default::default();
    let mut tasks = vec![];
    for t in 0..32u32 {
        let (engine, rep, acked, c) = (
            engine.clone(),
            rep.clone(),
            acked.clone(),
            coupons[t as usize % 4].clone(),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0..100u32 {
                let u = UserId::new(&format!("u-{t}-{i}")).expect("user");
                let r = engine.claim(&c, &u, None, T0).expect("claims");
                let shard = engine.shard_of_coupon(&c);
                rep.durable(shard, engine.journal_seq(shard))
                    .await
                    .expect("durable");
                acked
                    .lock()
                    .push(Ack::Claimed(c.clone(), r.into_value().claim, u));
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    rep.abort();
    let (back, _rep) = Replicator::recover(&redis.url(), o, engine_cfg(4), || T0)
        .await
        .expect("recovers");
    assert_same_state(&engine, &back);
    let acked = acked.lock().clone();
    assert_eq!(acked.len(), 3200);
    assert_acked_present(&back, &acked, T0);
}

/// Writers that keep going through a Redis outage. Both outage tests were
/// shown to fail with the append script's "skip what Redis has" rule removed
/// (a batch applied just before the outage is resent after it, Redis refuses
/// the duplicate id, and writes never resume).
async fn load_through_outage(
    engine: Arc<Engine>,
    rep: Replicator,
    outage: impl std::future::Future<Output = ()>,
) -> (Vec<Ack>, Refusals) {
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Shared<Vec<Ack>> = Default::default();
    let refused: Shared<Refusals> = Default::default();
    let coupons: Vec<CouponId> = (0..3)
        .map(|i| CouponId::new(&format!("c{i}")).expect("id"))
        .collect();
    for c in &coupons {
        let cfg = CouponConfig {
            stock: 1_000_000,
            per_user: std::num::NonZeroU32::MIN,
            opens_at: None,
            closes_at: None,
        };
        let _ = engine.put_coupon(c, cfg, T0).expect("coupon");
    }
    flush(&rep, &engine).await;
    let mut tasks = vec![];
    for t in 0..6u32 {
        let (engine, rep, acked, refused, stop) = (
            engine.clone(),
            rep.clone(),
            acked.clone(),
            refused.clone(),
            stop.clone(),
        );
        let c = coupons[t as usize % 3].clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = rep.admit_write() {
                    refused.lock().add(e);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                i += 1;
                let u = UserId::new(&format!("u-{t}-{i}")).expect("user");
                let r = engine.claim(&c, &u, None, T0).expect("claims");
                let shard = engine.shard_of_coupon(&c);
                match rep.durable(shard, engine.journal_seq(shard)).await {
                    Ok(()) => acked
                        .lock()
                        .push(Ack::Claimed(c.clone(), r.into_value().claim, u)),
                    Err(e) => refused.lock().add(e),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = acked.lock().len();
    assert!(before > 0, "writes succeed before the outage");
    outage.await;
    // Writes succeed again by themselves.
    let resumed_from = acked.lock().len();
    let deadline = Instant::now() + Duration::from_secs(6);
    while acked.lock().len() < resumed_from + 50 {
        assert!(
            Instant::now() < deadline,
            "writes did not resume after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("task");
    }
    let acked = acked.lock().clone();
    let refused = std::mem::take(&mut *refused.lock());
    (acked, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_mid_load_loses_nothing_and_resumes() {
    let redis = RedisServer::start();
    let o = opts("a");
    let (engine, rep) = start(&redis, o.clone(), 4).await;
    let r2 = rep.clone();
    let outage = async {
        redis.pause();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!r2.link_up(), "the replicator noticed Redis is away");
        assert!(matches!(r2.admit_write(), Err(Unavailable::Down)));
        redis.resume();
    };
    let (acked, refused) = load_through_outage(engine.clone(), rep.clone(), outage).await;
    assert!(
        refused.total() > 0,
        "writes were refused while Redis was frozen: {refused:?}"
    );
    flush(&rep, &engine).await;
    assert_logs_contiguous(&redis, 4).await;

    // Now a crash with changes still pending: freeze Redis, make changes that
    // cannot be acknowledged, then kill the replicator before Redis thaws.
    redis.pause();
    let c = CouponId::new("c0").expect("id");
    let shard = engine.shard_of_coupon(&c);
    let u = UserId::new("unacked").expect("user");
    let _ = engine.claim(&c, &u, None, T0).expect("claims in memory");
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        rep.durable(shard, engine.journal_seq(shard)),
    )
    .await
    .expect("durable() is bounded");
    assert!(r.is_err(), "no acknowledgement while Redis is frozen");
    rep.abort();
    redis.resume();

    let (back, _rep) = Replicator::recover(&redis.url(), o, engine_cfg(4), || T0)
        .await
        .expect("recovers");
    assert_acked_present(&back, &acked, T0);
    assert_logs_contiguous(&redis, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_loses_nothing_and_resumes() {
    // fsync-always AOF: what Redis acknowledged survives its own kill -9.
    let mut redis = RedisServer::start_persistent();
    let o = opts("a");
    let (engine, rep) = start(&redis, o.clone(), 4).await;
    let r2 = rep.clone();
    let outage = async {
        redis.kill();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(!r2.link_up(), "the replicator noticed Redis is gone");
        redis.restart();
    };
    let (acked, refused) = load_through_outage(engine.clone(), rep.clone(), outage).await;
    assert!(
        refused.total() > 0,
        "writes were refused while Redis was down: {refused:?}"
    );
    flush(&rep, &engine).await;
    rep.abort();
    let (back, _rep) = Replicator::recover(&redis.url(), o, engine_cfg(4), || T0)
        .await
        .expect("recovers");
    assert_same_state(&engine, &back);
    assert_acked_present(&back, &acked, T0);
    assert_logs_contiguous(&redis, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_mode_answers_at_once_and_bounds_the_backlog() {
    let redis = RedisServer::start();
    let mut o = opts("a");
    o.mode = Mode::Async;
    o.max_backlog = 300;
    let (engine, rep) = start(&redis, o.clone(), 4).await;
    let c = CouponId::new("c").expect("id");
    let cfg = CouponConfig {
        stock: 1_000_000,
        per_user: std::num::NonZeroU32::MIN,
        opens_at: None,
        closes_at: None,
    };
    let _ = engine.put_coupon(&c, cfg, T0).expect("coupon");
    let shard = engine.shard_of_coupon(&c);
    redis.pause();
    let mut admitted = 0u32;
    let refusal = loop {
        match rep.admit_write() {
            Ok(()) => {}
            Err(e) => break e,
        }
        let u = UserId::new(&format!("u{admitted}")).expect("user");
        let _ = engine.claim(&c, &u, None, T0).expect("claims");
        // Async: answered at once even though Redis is frozen.
        tokio::time::timeout(
            Duration::from_millis(100),
            rep.durable(shard, engine.journal_seq(shard)),
        )
        .await
        .expect("async durable() does not wait")
        .expect("async durable() is Ok");
        admitted += 1;
        assert!(admitted < 10_000, "the backlog is never refused");
    };
    assert_eq!(refusal, Unavailable::Backlog);
    assert!(
        (299..=301).contains(&admitted),
        "admitted {admitted} with a backlog of 300"
    );
    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(6);
    while rep.backlog() > 0 {
        assert!(Instant::now() < deadline, "the backlog did not drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rep.admit_write().is_ok());
    rep.abort();
    let (back, _rep) = Replicator::recover(&redis.url(), o, engine_cfg(4), || T0)
        .await
        .expect("recovers");
    assert_same_state(&engine, &back);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_standby_takes_over_and_a_fenced_writer_stops() {
    let redis = RedisServer::start();
    // A long lease for A: it renews only every 10 s, so within this test it
    // learns of the takeover from the append script's fencing check alone.
    // (Shown to fail with that check removed from the script: A's late
    // change then lands in Redis and C recovers it.)
    let mut oa = opts("a");
    oa.lease_ttl = Duration::from_secs(30);
    let (engine_a, a) = start(&redis, oa, 4).await;
    let mut w = Workload::new(11, 2, 2).with_queues(1);
    setup_durably(&mut w, &engine_a, &a).await;
    let mut acked = vec![];
    for _ in 0..200 {
        let (shard, ack) = w.step(&engine_a);
        a.durable(shard, engine_a.journal_seq(shard))
            .await
            .expect("durable");
        acked.push(ack);
    }

    // B waits as a standby while A holds the lease.
    let b = Replicator::new(&redis.url(), opts("b")).expect("replicator");
    let b2 = b.clone();
    let now = w.now;
    let b_recovery =
        tokio::spawn(async move { b2.recover_engine(engine_cfg(4), move || now).await });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(b.status(), Status::Standby);
    assert!(!b.ready());
    assert!(matches!(b.admit_write(), Err(Unavailable::NotReady)));
    for _ in 0..100 {
        let (shard, ack) = w.step(&engine_a);
        a.durable(shard, engine_a.journal_seq(shard))
            .await
            .expect("A still writes");
        acked.push(ack);
    }
    let a_state = engine_a.snapshot();

    // An operator hands the lease to B while A is alive (as after a network
    // partition): B takes a new epoch, and A must stop.
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let _: () = redis::cmd("SET")
        .arg("boxoffice:lease")
        .arg("b")
        .arg("PX")
        .arg(10_000)
        .query_async(&mut conn)
        .await
        .expect("set");
    let engine_b = tokio::time::timeout(Duration::from_secs(5), b_recovery)
        .await
        .expect("B recovers in time")
        .expect("task")
        .expect("B recovers");
    assert!(b.epoch() > a.epoch());
    // A's next change is refused by the script's fencing (or A already knew
    // from its lease renewal): never acknowledged, never in Redis.
    let c = w.coupons[0].clone();
    let shard = engine_a.shard_of_coupon(&c);
    let _ = engine_a
        .claim(&c, &UserId::new("after-fence").expect("user"), None, w.now)
        .expect("claims in A's memory");
    assert_eq!(
        a.durable(shard, engine_a.journal_seq(shard)).await,
        Err(Unavailable::Deposed)
    );
    assert_eq!(a.status(), Status::Deposed);
    assert!(!a.ready());
    assert_eq!(a.admit_write(), Err(Unavailable::Deposed));

    // B has exactly A's acknowledged state, not the fenced change.
    assert_same_snapshots(a_state, engine_b.snapshot());
    let engine_b = Arc::new(engine_b);
    b.spawn(engine_b.clone()).expect("B spawns");
    assert!(b.ready());
    for _ in 0..100 {
        let (shard, ack) = w.step(&engine_b);
        b.durable(shard, engine_b.journal_seq(shard))
            .await
            .expect("B writes");
        acked.push(ack);
    }
    flush(&b, &engine_b).await;

    // B crashes; standby C takes over once B's lease expires.
    b.abort();
    let started = Instant::now();
    let (engine_c, c_rep) = Replicator::recover(&redis.url(), opts("c"), engine_cfg(4), || w.now)
        .await
        .expect("C recovers");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_same_state(&engine_b, &engine_c);
    assert_acked_present(&engine_c, &acked, w.now);
    assert!(c_rep.epoch() > b.epoch());
    assert_logs_contiguous(&redis, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_waits_for_redis_to_come_up() {
    // Reserve a port, start nothing there yet.
    let port = boxoffice_testkit::free_port().expect("port");
    let url = format!("redis://127.0.0.1:{port}/");
    let rec =
        tokio::spawn(
            async move { Replicator::recover(&url, opts("a"), engine_cfg(2), || T0).await },
        );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!rec.is_finished());
    let _redis = RedisServer::start_on(port);
    let (engine, rep) = tokio::time::timeout(Duration::from_secs(8), rec)
        .await
        .expect("recovers once Redis is up")
        .expect("task")
        .expect("recovers");
    assert_eq!(engine.journal_seq(0), 0);
    assert_eq!(rep.status(), Status::Recovered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_flushes_async_writes_and_hands_the_lease_over() {
    let redis = RedisServer::start();
    let mut o = opts("a");
    o.mode = Mode::Async;
    o.lease_ttl = Duration::from_secs(30);
    let (engine, rep) = start(&redis, o, 4).await;
    let mut w = Workload::new(5, 2, 2);
    w.setup(&engine);
    for _ in 0..2000 {
        let (shard, _) = w.step(&engine);
        rep.durable(shard, engine.journal_seq(shard))
            .await
            .expect("async durable() is Ok");
    }
    rep.shutdown().await;
    assert_eq!(rep.status(), Status::Closed);
    assert!(!rep.ready());
    assert_eq!(rep.admit_write(), Err(Unavailable::Closed));
    // The lease was released: another server takes over at once, not after 30 s.
    let started = Instant::now();
    let (back, _b) = Replicator::recover(&redis.url(), opts("b"), engine_cfg(4), || w.now)
        .await
        .expect("recovers");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_same_state(&engine, &back);
}
