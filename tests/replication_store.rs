//! I8's store half: a Redis keyspace that lost acknowledged state (wiped,
//! flushed, failed over to a replica that missed writes) fails closed. No
//! server that saw the store acknowledges another write on it or serves it
//! as recovered; a fresh server refuses the quarantined keyspace too; an
//! operator's `boxoffice store new` and a restart bring service back. Each
//! test starts its own redis-server on a free loopback port and stops it by
//! PID.
//!
//! Each was shown to fail on the code before store identities (the epoch
//! was an `INCR` counter that a wiped Redis restarts at 1): the standby then
//! adopts the empty keyspace and serves it (test 1: `/readyz` 200, the event
//! 404), a fresh server takes the lease of a keyspace whose epoch went back
//! (test 2), and the old writer's append passes the epoch check of a
//! flushed keyspace once the new writer's log reached its `seq` (test 3).
// These tests drive the engine directly and make its journal durable
// themselves: receipts are read without the server's commit path.
#![allow(clippy::disallowed_methods)]

mod replication_support;

use boxoffice::replicate::{Replicator, Status, Unavailable};
use boxoffice_engine::*;
use http::Method;
use replication_support::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxoffice::replicate::metrics::STORE_LOST;

async fn start(
    redis: &RedisServer,
    o: boxoffice::replicate::Options,
    shards: usize,
) -> (Arc<Engine>, Replicator) {
    start_replicator(redis, o, shards, T0).await
}

async fn redis_get(redis: &RedisServer, key: &str) -> Option<String> {
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("GET")
}

async fn redis_head(redis: &RedisServer, shard: usize) -> u64 {
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let v: Option<u64> = redis::cmd("HGET")
        .arg("boxoffice:heads")
        .arg(shard)
        .query_async(&mut conn)
        .await
        .expect("HGET");
    v.unwrap_or(0)
}

/// Writes at one server until stopped: coupon claims and one-seat holds for
/// fresh users. Records the send time of every request answered 2xx.
async fn writer(
    http: Http,
    tag: u32,
    stop: Arc<AtomicBool>,
    acks: Arc<parking_lot::Mutex<Vec<Instant>>>,
) {
    let mut i = 0u32;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let sent = Instant::now();
        let r = http
            .call(
                Method::POST,
                "/v1/coupons/c1/claims",
                Some(SERVICE),
                Some(&json!({"user": format!("w{tag}-{i}")})),
            )
            .await;
        if let Some((200..=299, _)) = r {
            acks.lock().push(sent);
        }
        let seat = format!("A-{}-{}", 2 + (tag * 1000 + i) / 50 % 18, 1 + i % 50);
        let sent = Instant::now();
        let r = http
            .call(
                Method::POST,
                "/v1/events/e1/holds",
                Some(SERVICE),
                Some(&json!({"user": format!("h{tag}-{i}"), "seats": [seat]})),
            )
            .await;
        if let Some((200..=299, _)) = r {
            acks.lock().push(sent);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The items 1 and 2: Redis comes back empty under a running writer
/// A and a waiting standby B. Neither acknowledges anything from then on,
/// both stay unready, B never serves the empty keyspace, the metric says
/// why; `boxoffice store new` and a restart of B bring service back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiped_redis_under_a_writer_and_a_standby_fails_closed_until_a_new_store() {
    let mut redis = RedisServer::start();
    let logs = boxoffice_testkit::TempDir::new("store-test").expect("temp dir");
    let (log_a, log_b) = (logs.path().join("a.log"), logs.path().join("b.log"));
    let a = Boxoffice::start(Some((&redis, "sync")), &log_a);
    let ha = Http::new(&a.addr);
    ha.wait_ready(Duration::from_secs(20)).await;

    let rows: Vec<_> = (1..=20)
        .map(|r| json!({"section": "A", "row": r.to_string(), "first": 1, "last": 50, "category": "R"}))
        .collect();
    let event = json!({"name": "wipe", "seats": rows,
        "holds": {"ttl_s": 600, "max_ttl_s": 1200, "max_seats_per_user": 4}});
    let r = ha
        .call(Method::PUT, "/v1/events/e1", Some(ADMIN), Some(&event))
        .await;
    assert!(matches!(r, Some((201, _))), "event: {r:?}");
    let coupon = json!({"stock": 100_000, "per_user": 1});
    let r = ha
        .call(Method::PUT, "/v1/coupons/c1", Some(ADMIN), Some(&coupon))
        .await;
    assert!(matches!(r, Some((201, _))), "coupon: {r:?}");
    let hold = json!({"user": "u0", "seats": ["A-1-1", "A-1-2"]});
    let Some((201, h)) = ha
        .call(
            Method::POST,
            "/v1/events/e1/holds",
            Some(SERVICE),
            Some(&hold),
        )
        .await
    else {
        panic!("hold")
    };
    let id = h["hold"].as_str().expect("hold id").to_string();
    let r = ha
        .call(
            Method::POST,
            &format!("/v1/events/e1/holds/{id}/confirm"),
            Some(SERVICE),
            Some(&json!({"order": "o-0"})),
        )
        .await;
    assert!(
        matches!(&r, Some((200, c)) if c["state"] == "sold"),
        "{r:?}"
    );
    let r = ha
        .call(
            Method::POST,
            "/v1/coupons/c1/claims",
            Some(SERVICE),
            Some(&json!({"user": "u0"})),
        )
        .await;
    assert!(matches!(r, Some((201, _))), "claim: {r:?}");
    assert_eq!(ha.metric(STORE_LOST).await, Some(0.0));

    // B waits for A's lease (and learns the store id from its replies).
    let mut b = Boxoffice::start(Some((&redis, "sync")), &log_b);
    let hb = Http::new(&b.addr);
    assert!(
        wait_for_log(&log_b, "standby", Duration::from_secs(15)).await,
        "B became a standby"
    );
    assert!(matches!(
        hb.call(Method::GET, "/readyz", None, None).await,
        Some((503, _))
    ));
    assert_eq!(hb.metric(STORE_LOST).await, Some(0.0));

    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut tasks = vec![];
    for t in 0..4 {
        let http = if t % 2 == 0 { ha.clone() } else { hb.clone() };
        tasks.push(tokio::spawn(writer(http, t, stop.clone(), acks.clone())));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !acks.lock().is_empty(),
        "A acknowledges writes before the wipe"
    );

    // Redis loses everything: killed, started again empty on the same port.
    redis.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.restart();
    let wiped = Instant::now();

    // For 8.5 s (past B's lease wait of 5 s): both unready, B never serves
    // the event (200 or 404 would be serving the empty keyspace). A may need
    // one Redis call to notice (its shipper retries within the backoff, its
    // lease renewal runs every 1.7 s): that is what the grace is for, and
    // it acknowledges nothing meanwhile (checked below).
    let mut a_unready_at = None;
    while wiped.elapsed() < Duration::from_millis(8500) {
        let rb = hb.call(Method::GET, "/readyz", None, None).await;
        assert!(matches!(rb, Some((503, _))), "B /readyz: {rb:?}");
        let ev = hb.call(Method::GET, "/v1/events/e1", None, None).await;
        assert!(matches!(ev, Some((503, _))), "B served the event: {ev:?}");
        let ra = ha.call(Method::GET, "/readyz", None, None).await;
        match (ra, a_unready_at) {
            (Some((503, _)), None) => a_unready_at = Some(wiped.elapsed()),
            (Some((503, _)), Some(_)) => {}
            (other, Some(t)) => panic!("A /readyz {other:?} after being unready at {t:?}"),
            (other, None) => assert!(
                wiped.elapsed() < Duration::from_secs(3),
                "A still ready 3 s after the wipe: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("writer");
    }
    eprintln!("A unready {a_unready_at:?} after the wipe");
    for (name, log) in [("A", &log_a), ("B", &log_b)] {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for l in text.lines().filter(|l| l.contains("ERROR")) {
            eprintln!("{name}: {l}");
        }
    }
    let late = acks.lock().iter().filter(|&&t| t >= wiped).count();
    assert_eq!(late, 0, "writes acknowledged after Redis came back empty");
    assert_eq!(ha.metric(STORE_LOST).await, Some(1.0), "A's metric");
    assert_eq!(hb.metric(STORE_LOST).await, Some(1.0), "B's metric");
    let marker = redis_get(&redis, "boxoffice:store")
        .await
        .unwrap_or_default();
    assert!(marker.starts_with("quarantined:"), "store key: {marker:?}");
    let r = ha
        .call(
            Method::POST,
            "/v1/coupons/c1/claims",
            Some(SERVICE),
            Some(&json!({"user": "after"})),
        )
        .await;
    assert!(matches!(r, Some((503, _))), "A refuses: {r:?}");

    // The operator looks, then starts a new store on purpose.
    let (code, out) = store_new(&redis, false);
    assert_eq!(code, 2, "without --yes: {out}");
    assert!(out.contains("QUARANTINED"), "{out}");
    let (code, out) = store_new(&redis, true);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("started store"), "{out}");

    // A saw the old store: it keeps refusing. B restarted adopts the new one.
    b.kill();
    let log_b2 = logs.path().join("b2.log");
    let b2 = Boxoffice::start(Some((&redis, "sync")), &log_b2);
    let hb2 = Http::new(&b2.addr);
    hb2.wait_ready(Duration::from_secs(15)).await;
    assert_eq!(hb2.metric(STORE_LOST).await, Some(0.0));
    let r = hb2
        .call(Method::PUT, "/v1/events/e1", Some(ADMIN), Some(&event))
        .await;
    assert!(
        matches!(r, Some((201, _))),
        "the new store takes writes: {r:?}"
    );
    assert!(matches!(
        ha.call(Method::GET, "/readyz", None, None).await,
        Some((503, _))
    ));
    let r = ha
        .call(Method::PUT, "/v1/coupons/c9", Some(ADMIN), Some(&coupon))
        .await;
    assert!(matches!(r, Some((503, _))), "A still refuses: {r:?}");
    drop(a);
}

/// A failover to a replica that missed the newest epoch: the epoch goes
/// back under a running writer. Its lease renewal (no write needed) finds
/// it, quarantines the keyspace and stops acknowledging; a server started
/// afterwards refuses the keyspace as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epoch_going_back_quarantines_and_nobody_writes() {
    let redis = RedisServer::start();
    let (engine, a) = start(&redis, opts("a"), 2).await;
    let mut w = Workload::new(3, 1, 1);
    for shard in w.setup(&engine) {
        a.durable(shard, engine.journal_seq(shard))
            .await
            .expect("durable");
    }
    for _ in 0..50 {
        let (shard, _) = w.step(&engine);
        a.durable(shard, engine.journal_seq(shard))
            .await
            .expect("durable");
    }
    let epoch = a.epoch();
    assert!(
        epoch > 1_700_000_000_000,
        "epochs start at the clock: {epoch}"
    );
    let heads = [redis_head(&redis, 0).await, redis_head(&redis, 1).await];

    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let _: () = redis::cmd("SET")
        .arg("boxoffice:epoch")
        .arg(epoch - 1)
        .query_async(&mut conn)
        .await
        .expect("SET");

    // No write: the renewal (every 500 ms with the test lease) finds it.
    let deadline = Instant::now() + Duration::from_secs(3);
    while a.status() != Status::StoreLost {
        assert!(Instant::now() < deadline, "A noticed: {:?}", a.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!a.ready());
    assert_eq!(a.admit_write(), Err(Unavailable::StoreLost));
    let (shard, _) = w.step(&engine);
    let r = a.durable(shard, engine.journal_seq(shard)).await;
    assert!(r.is_err(), "not acknowledged: {r:?}");
    assert_eq!(r, Err(Unavailable::StoreLost));
    let marker = redis_get(&redis, "boxoffice:store")
        .await
        .unwrap_or_default();
    assert!(marker.starts_with("quarantined:"), "store key: {marker:?}");
    assert!(marker.contains("epoch went back"), "{marker}");
    assert_eq!(
        heads,
        [redis_head(&redis, 0).await, redis_head(&redis, 1).await],
        "nothing written after the epoch went back"
    );

    // A server started now has seen nothing, yet refuses the quarantine.
    let c = Replicator::new(&redis.url(), opts("c")).expect("replicator");
    let c2 = c.clone();
    let rec = tokio::spawn(async move { c2.recover_engine(engine_cfg(2), || T0).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !rec.is_finished(),
        "a fresh server recovered the quarantined keyspace"
    );
    assert!(!c.ready());
    assert_eq!(c.status(), Status::StoreLost);
    assert_eq!(c.admit_write(), Err(Unavailable::StoreLost));
    c.abort();
    let r = rec.await.expect("task");
    assert!(r.is_err(), "recovery ends with the abort, not with state");
}

/// A keyspace FLUSHALLed under a live writer A that has not noticed yet; a
/// fresh server B (it has seen no store) adopts the empty keyspace and
/// writes until its log reaches A's `seq`. A's next append must not land:
/// the store id is not the one A saw. (Before store ids B took epoch 1,
/// A's own epoch, and A's batch continued B's log as if it were A's.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_keyspace_the_old_writer_cannot_append_though_a_new_one_acquires() {
    let redis = RedisServer::start();
    let mut oa = opts("a");
    // No renewal within the test: A learns only from its append.
    oa.lease_ttl = Duration::from_secs(30);
    let (engine_a, a) = start(&redis, oa, 4).await;
    let c = CouponId::new("c1").expect("id");
    let cfg = CouponConfig {
        stock: 1_000_000,
        per_user: std::num::NonZeroU32::MIN,
        opens_at: None,
        closes_at: None,
    };
    let shard = engine_a.shard_of_coupon(&c);
    let _ = engine_a.put_coupon(&c, cfg, T0).expect("coupon");
    for i in 0..20 {
        let u = UserId::new(&format!("a{i}")).expect("user");
        let _ = engine_a.claim(&c, &u, None, T0).expect("claims");
        a.durable(shard, engine_a.journal_seq(shard))
            .await
            .expect("durable");
    }
    let a_store = a.store_id().expect("A saw a store");

    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut conn)
        .await
        .expect("FLUSHALL");

    let (engine_b, b) = start(&redis, opts("b"), 4).await;
    assert_eq!(
        engine_b.journal_seq(shard),
        0,
        "B adopted the empty keyspace"
    );
    assert_ne!(b.store_id(), Some(a_store), "a new store id");
    assert!(b.epoch() > a.epoch(), "epochs never go back");
    let _ = engine_b.put_coupon(&c, cfg, T0).expect("coupon");
    let mut i = 0;
    while engine_b.journal_seq(shard) < engine_a.journal_seq(shard) {
        i += 1;
        let u = UserId::new(&format!("b{i}")).expect("user");
        let _ = engine_b.claim(&c, &u, None, T0).expect("claims");
        b.durable(shard, engine_b.journal_seq(shard))
            .await
            .expect("B writes");
    }
    let b_head = redis_head(&redis, shard).await;
    assert_eq!(b_head, engine_b.journal_seq(shard));

    let u = UserId::new("a-late").expect("user");
    let _ = engine_a
        .claim(&c, &u, None, T0)
        .expect("claims in A's memory");
    let r = a.durable(shard, engine_a.journal_seq(shard)).await;
    assert!(r.is_err(), "A's change after the flush was acknowledged");
    assert_eq!(r, Err(Unavailable::StoreLost));
    assert_eq!(a.status(), Status::StoreLost);
    assert_eq!(
        redis_head(&redis, shard).await,
        b_head,
        "nothing of A's landed"
    );
    // A changed store id is refused, not quarantined: B goes on.
    assert_eq!(
        redis_get(&redis, "boxoffice:store").await,
        b.store_id(),
        "not quarantined"
    );
    let u = UserId::new("b-after").expect("user");
    let _ = engine_b.claim(&c, &u, None, T0).expect("claims");
    b.durable(shard, engine_b.journal_seq(shard))
        .await
        .expect("B still writes");
}

/// A standby answers `/metrics` before it recovers (so an alert sees
/// `store_lost`), and `--metrics-token` holds there as on the real server:
/// no token or a wrong one is 401, the token is 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_placeholder_keeps_metrics_behind_the_metrics_token() {
    const TOKEN: &str = "metrics-token-standby-test";
    let redis = RedisServer::start();
    let logs = boxoffice_testkit::TempDir::new("store-metrics").expect("temp dir");
    let a = Boxoffice::start(Some((&redis, "sync")), &logs.path().join("a.log"));
    Http::new(&a.addr).wait_ready(Duration::from_secs(20)).await;
    let b = Boxoffice::start_with(
        &redis,
        "sync",
        &["--metrics-token", TOKEN],
        &logs.path().join("b.log"),
    );
    let hb = Http::new(&b.addr);
    // B is up (a standby) but not ready.
    let deadline = Instant::now() + Duration::from_secs(20);
    while hb
        .call(Method::GET, "/healthz", None, None)
        .await
        .map(|r| r.0)
        != Some(200)
    {
        assert!(Instant::now() < deadline, "standby B never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready = hb.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.map(|r| r.0), Some(503), "B is a standby");
    let none = hb.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(none.map(|r| r.0), Some(401), "no token");
    let wrong = hb
        .call(Method::GET, "/metrics", Some("not-the-metrics-token"), None)
        .await;
    assert_eq!(wrong.map(|r| r.0), Some(401), "wrong token");
    let right = hb.call(Method::GET, "/metrics", Some(TOKEN), None).await;
    assert_eq!(right.map(|r| r.0), Some(200), "the token");
}

/// A writer with no writes at all notices a wiped Redis through its lease
/// renewal (every third of the lease TTL), as docs/operations.md says: it
/// fails closed and quarantines the keyspace. Fails if RENEW stops checking
/// the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_writer_notices_a_wiped_redis_at_its_next_renewal() {
    let redis = RedisServer::start();
    let mut o = opts("idle");
    o.lease_ttl = Duration::from_millis(600);
    let (_engine, a) = start(&redis, o, 2).await;
    // Past the first renewals, so the wipe is found by a later one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(a.ready());
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut conn)
        .await
        .expect("FLUSHALL");
    let flushed = Instant::now();
    let mut status = a.watch_status();
    let lost = tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| *s == Status::StoreLost),
    )
    .await;
    assert!(lost.is_ok(), "still {:?} 5 s after the wipe", a.status());
    eprintln!(
        "idle writer unready {} ms after FLUSHALL",
        flushed.elapsed().as_millis()
    );
    assert!(!a.ready());
    assert_eq!(a.admit_write(), Err(Unavailable::StoreLost));
    let marker = redis_get(&redis, "boxoffice:store")
        .await
        .unwrap_or_default();
    assert!(marker.starts_with("quarantined:"), "{marker:?}");
}
