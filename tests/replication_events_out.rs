//! Events out (`<prefix>:out`, src/replicate/outbox.rs): business outcomes
//! are appended in the same fenced script as the journal, so every
//! acknowledged sale, release, claim and return appears exactly once; an
//! outcome appears only when its journal entry reached Redis (nothing
//! unacknowledged shows up as final unless the recovered state has it); and
//! a retried batch whose reply was lost duplicates nothing. Each test starts
//! its own redis-server on a free loopback port and stops it by PID.
// The retried-batch test drives the engine directly and makes its journal
// durable itself: receipts are read without the server's commit path.
#![allow(clippy::disallowed_methods)]

mod replication_support;

use boxoffice::replicate::Replicator;
use boxoffice_engine::*;
use http::Method;
use replication_support::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the load saw acknowledged.
#[derive(Default)]
struct Acked {
    /// hold -> seats, confirms answered 200 sold.
    confirms: HashMap<String, Vec<String>>,
    /// holds released, answered 204.
    releases: HashSet<String>,
    /// claim -> user, claims answered 201.
    claims: HashMap<String, String>,
    /// claims given back, answered 204.
    returns: HashSet<String>,
}

/// 100 rows of 50 seats, no waiting room (holds need no pass), and coupon
/// c1 (one per user).
async fn set_up(http: &Http) {
    let rows: Vec<Value> = (1..=100)
        .map(|r| json!({"section": "A", "row": r.to_string(), "first": 1, "last": 50, "category": "R"}))
        .collect();
    let e1 = json!({"name": "out", "seats": rows,
        "holds": {"ttl_s": 600, "max_ttl_s": 1200, "max_seats_per_user": 4}});
    let r = http
        .call(Method::PUT, "/v1/events/e1", Some(ADMIN), Some(&e1))
        .await;
    assert!(matches!(r, Some((201, _))), "e1: {r:?}");
    let coupon = json!({"stock": 1_000_000, "per_user": 1});
    let r = http
        .call(Method::PUT, "/v1/coupons/c1", Some(ADMIN), Some(&coupon))
        .await;
    assert!(matches!(r, Some((201, _))), "c1: {r:?}");
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Claims (every third given back), holds one seat (every fourth released,
/// the others confirmed), until `stop`; records what was acknowledged.
async fn buyer(
    http: Http,
    t: u32,
    returns: bool,
    stop: Arc<AtomicBool>,
    acked: Arc<parking_lot::Mutex<Acked>>,
) {
    let mut i = 0u32;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let user = format!("b{t}-{i}");
        let r = http
            .call(
                Method::POST,
                "/v1/coupons/c1/claims",
                Some(SERVICE),
                Some(&json!({"user": user})),
            )
            .await;
        match r {
            Some((201, v)) => {
                let claim = v["claim"].as_str().unwrap_or_default().to_string();
                acked.lock().claims.insert(claim.clone(), user.clone());
                if returns && i.is_multiple_of(3) {
                    let r = http
                        .call(
                            Method::DELETE,
                            &format!("/v1/coupons/c1/claims/{claim}"),
                            Some(SERVICE),
                            None,
                        )
                        .await;
                    if matches!(r, Some((204, _))) {
                        acked.lock().returns.insert(claim);
                    }
                }
            }
            Some(_) => {}
            None => return,
        }
        let body = json!({"user": user, "best": {"count": 1, "category": "R"}});
        let Some((201, h)) = http
            .call(
                Method::POST,
                "/v1/events/e1/holds",
                Some(SERVICE),
                Some(&body),
            )
            .await
        else {
            continue;
        };
        let hold = h["hold"].as_str().unwrap_or_default().to_string();
        if returns && i.is_multiple_of(4) {
            let r = http
                .call(
                    Method::DELETE,
                    &format!("/v1/events/e1/holds/{hold}"),
                    Some(SERVICE),
                    None,
                )
                .await;
            if matches!(r, Some((204, _))) {
                acked.lock().releases.insert(hold);
            }
            continue;
        }
        let r = http
            .call(
                Method::POST,
                &format!("/v1/events/e1/holds/{hold}/confirm"),
                Some(SERVICE),
                Some(&json!({"order": format!("o-{user}")})),
            )
            .await;
        if let Some((200, c)) = r {
            if c["state"] == "sold" {
                acked.lock().confirms.insert(hold, strings(&c["seats"]));
            }
        }
    }
}

/// Starts `buyers` buyers; returns their stop flag, handles and record.
fn load(
    http: &Http,
    buyers: u32,
    returns: bool,
) -> (
    Arc<AtomicBool>,
    Vec<tokio::task::JoinHandle<()>>,
    Arc<parking_lot::Mutex<Acked>>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(parking_lot::Mutex::new(Acked::default()));
    let tasks = (0..buyers)
        .map(|t| tokio::spawn(buyer(http.clone(), t, returns, stop.clone(), acked.clone())))
        .collect();
    (stop, tasks, acked)
}

/// The outcomes of `kind`, by a key taken from their data.
fn by<'a>(out: &'a [Value], kind: &str, key: &str) -> HashMap<String, Vec<&'a Value>> {
    let mut m: HashMap<String, Vec<&Value>> = HashMap::new();
    for v in out.iter().filter(|v| v["type"] == kind) {
        let k = v["data"][key].as_str().unwrap_or_default().to_string();
        m.entry(k).or_default().push(v);
    }
    m
}

/// The value of a `boxoffice_events_out_total` series on `/metrics` of the
/// server at `addr` (text, which `Http::call` does not parse: a raw request).
async fn metric(addr: &str, kind: &str) -> Option<u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).await.ok()?;
    let want = format!("boxoffice_events_out_total{{type=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&want))
        .and_then(|n| n.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_outcome_appears_exactly_once() {
    let redis = RedisServer::start();
    let log = redis.dir.join("boxoffice.log");
    let server = Boxoffice::start(Some((&redis, "sync")), &log);
    let http = &Http::new(&server.addr);
    http.wait_ready(Duration::from_secs(20)).await;
    // Every type is there from the start, at zero.
    for kind in ["seat.sold", "queue.admitted", "coupon.returned"] {
        assert_eq!(metric(&server.addr, kind).await, Some(0), "{kind} at start");
    }
    set_up(http).await;

    let (stop, tasks, acked) = load(http, 8, true);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let acked = std::mem::take(&mut *acked.lock());
    eprintln!(
        "acknowledged: {} confirms, {} releases, {} claims, {} returns",
        acked.confirms.len(),
        acked.releases.len(),
        acked.claims.len(),
        acked.returns.len()
    );
    assert!(
        acked.confirms.len() > 20,
        "{} confirms",
        acked.confirms.len()
    );
    assert!(
        acked.releases.len() > 5,
        "{} releases",
        acked.releases.len()
    );
    assert!(acked.claims.len() > 20, "{} claims", acked.claims.len());
    assert!(acked.returns.len() > 5, "{} returns", acked.returns.len());

    // Sync mode: acknowledged means in Redis, outcomes included.
    let out = read_events_out(&redis, "boxoffice").await;
    assert_out_ids_unique_and_ordered(&out);
    let sold = by(&out, "seat.sold", "hold");
    for (hold, seats) in &acked.confirms {
        let v = sold.get(hold).map_or(&[][..], Vec::as_slice);
        assert_eq!(v.len(), 1, "seat.sold of {hold}: {v:?}");
        assert_eq!(v[0]["event"], "e1");
        assert_eq!(strings(&v[0]["data"]["seats"]), *seats, "{}", v[0]);
        assert!(v[0]["data"]["order"]
            .as_str()
            .is_some_and(|o| o.starts_with("o-")));
    }
    // Nothing was confirmed without an acknowledgement here either.
    assert_eq!(sold.len(), acked.confirms.len());
    let released = by(&out, "seats.released", "hold");
    for hold in &acked.releases {
        let v = released.get(hold).map_or(&[][..], Vec::as_slice);
        assert_eq!(v.len(), 1, "seats.released of {hold}: {v:?}");
        assert_eq!(v[0]["data"]["reason"], "released");
        assert_eq!(strings(&v[0]["data"]["seats"]).len(), 1);
    }
    let claimed = by(&out, "coupon.claimed", "claim");
    for (claim, user) in &acked.claims {
        let v = claimed.get(claim).map_or(&[][..], Vec::as_slice);
        assert_eq!(v.len(), 1, "coupon.claimed of {claim}: {v:?}");
        assert_eq!(v[0]["event"], "c1");
        assert_eq!(v[0]["data"]["user"], json!(user));
        assert_eq!(v[0]["data"]["coupon"], "c1");
    }
    assert_eq!(claimed.len(), acked.claims.len());
    let returned = by(&out, "coupon.returned", "claim");
    for claim in &acked.returns {
        let v = returned.get(claim).map_or(&[][..], Vec::as_slice);
        assert_eq!(v.len(), 1, "coupon.returned of {claim}: {v:?}");
        assert_eq!(v[0]["data"]["user"], json!(acked.claims[claim]));
    }
    // Every envelope names its time in RFC 3339 UTC.
    assert!(out.iter().all(|v| v["at"]
        .as_str()
        .is_some_and(|a| a.ends_with('Z') && a.len() == 24)));

    // The counter agrees with the stream (each outcome counted once).
    for (kind, n) in [
        ("seat.sold", sold.len()),
        ("seats.released", released.values().map(Vec::len).sum()),
        ("coupon.claimed", claimed.len()),
        ("coupon.returned", returned.len()),
    ] {
        assert_eq!(metric(&server.addr, kind).await, Some(n as u64), "{kind}");
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_unacknowledged_appears_unless_it_was_stored() {
    let redis = RedisServer::start();
    let log = redis.dir.join("boxoffice.log");
    let mut server = Boxoffice::start(Some((&redis, "sync")), &log);
    let http = Http::new(&server.addr);
    http.wait_ready(Duration::from_secs(20)).await;
    set_up(&http).await;

    let (stop, tasks, acked) = load(&http, 8, false);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Redis freezes mid-load: sync writes in flight time out (503) or are
    // refused; then the writer dies before Redis thaws. Whatever it had
    // sent may still be executed by Redis when it resumes.
    redis.pause();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.kill();
    redis.resume();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let acked = std::mem::take(&mut *acked.lock());
    eprintln!(
        "acknowledged before the kill: {} confirms, {} claims",
        acked.confirms.len(),
        acked.claims.len()
    );
    assert!(
        acked.confirms.len() > 10,
        "{} confirms",
        acked.confirms.len()
    );
    let out = read_events_out(&redis, "boxoffice").await;
    assert_out_ids_unique_and_ordered(&out);
    let sold = by(&out, "seat.sold", "hold");
    // acknowledged ⊆ stream.
    for hold in acked.confirms.keys() {
        let n = sold.get(hold).map_or(0, Vec::len);
        assert_eq!(n, 1, "acknowledged confirm of {hold} has {n} seat.sold");
    }
    for claim in acked.claims.keys() {
        let n = by(&out, "coupon.claimed", "claim")
            .get(claim)
            .map_or(0, Vec::len);
        assert_eq!(n, 1, "acknowledged claim {claim} has {n} coupon.claimed");
    }

    // stream ⊆ recovered state: a standby recovers what Redis has.
    let server2 = Boxoffice::start(Some((&redis, "sync")), &log);
    let http = Http::new(&server2.addr);
    http.wait_ready(Duration::from_secs(20)).await;
    let unacked = sold
        .keys()
        .filter(|h| !acked.confirms.contains_key(*h))
        .count();
    eprintln!(
        "{} seat.sold in the stream, {unacked} of them for confirms never acknowledged",
        sold.len()
    );
    for (hold, v) in &sold {
        assert_eq!(v.len(), 1, "{hold}: {v:?}");
        let r = http
            .call(
                Method::GET,
                &format!("/v1/events/e1/holds/{hold}"),
                Some(SERVICE),
                None,
            )
            .await;
        let Some((200, h)) = r else {
            panic!("seat.sold for {hold}, which the recovered server lacks: {r:?}");
        };
        assert_eq!(h["state"], "sold", "seat.sold for {hold}, recovered as {h}");
        assert_eq!(h["seats"], v[0]["data"]["seats"], "{hold}");
    }
    let Some((200, counts)) = http
        .call(Method::GET, "/v1/events/e1/seats", None, None)
        .await
    else {
        panic!("seat counts");
    };
    assert_eq!(counts["sold"], json!(sold.len()), "{counts}");
    // Every claim in the stream is a claim the recovered server has: its
    // user cannot claim again (per_user 1, none returned here).
    let claimed = by(&out, "coupon.claimed", "claim");
    let Some((200, c)) = http.call(Method::GET, "/v1/coupons/c1", None, None).await else {
        panic!("coupon");
    };
    assert_eq!(c["issued"], json!(claimed.len()), "{c}");
    for v in claimed.values().flatten().take(100) {
        let user = &v["data"]["user"];
        let r = http
            .call(
                Method::POST,
                "/v1/coupons/c1/claims",
                Some(SERVICE),
                Some(&json!({"user": user})),
            )
            .await;
        assert!(
            matches!(&r, Some((409, e)) if e["error"]["code"] == "already_claimed"),
            "coupon.claimed for {user}, which the recovered server lacks: {r:?}"
        );
    }
    drop(server2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_batch_whose_reply_was_lost_duplicates_nothing() {
    let redis = RedisServer::start();
    let mut o = opts("a");
    // Short, so the shipper gives up on its call while Redis is frozen and
    // sends the batch again (on a new connection) before the first ran.
    o.response_timeout = Duration::from_millis(200);
    o.commit_timeout = Duration::from_millis(500);
    let (engine, rep) = Replicator::recover(&redis.url(), o, engine_cfg(2), || T0)
        .await
        .expect("recovers");
    let engine = Arc::new(engine);
    rep.spawn(engine.clone()).expect("spawns");
    let c = CouponId::new("c1").expect("id");
    let cfg = CouponConfig {
        stock: 1_000_000,
        per_user: std::num::NonZeroU32::MIN,
        opens_at: None,
        closes_at: None,
    };
    let _ = engine.put_coupon(&c, cfg, T0).expect("coupon");
    let shard = engine.shard_of_coupon(&c);
    let mut claims = HashMap::new();
    let mut claim = |i: u32| {
        let u = UserId::new(&format!("u{i}")).expect("user");
        let r = engine.claim(&c, &u, None, T0).expect("claims");
        claims.insert(r.into_value().claim.to_string(), u.as_str().to_string());
    };
    for i in 0..20 {
        claim(i);
    }
    flush(&rep, &engine).await;
    let (appends_before, _) = command_calls(&redis).await;

    redis.pause();
    for i in 20..60 {
        claim(i);
    }
    // The shipper sends, times out (the reply is lost), reconnects and sends
    // again: several copies of the batch wait in the frozen Redis.
    let r = rep.durable(shard, engine.journal_seq(shard)).await;
    assert!(r.is_err(), "no acknowledgement while Redis is frozen");
    let deadline = Instant::now() + Duration::from_secs(5);
    while rep.link_up() {
        assert!(Instant::now() < deadline, "the shipper never timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    redis.resume();
    flush(&rep, &engine).await;
    let (appends, xadds) = command_calls(&redis).await;
    eprintln!(
        "append script runs: {appends_before} before the freeze, {appends} in all; XADDs: {xadds}"
    );
    // The batch reached Redis more than once (sent, timed out, sent again)…
    assert!(
        appends >= appends_before + 2,
        "{appends_before} then {appends}"
    );
    // …and each entry and each outcome was written once: the coupon's
    // creation, and every claim with its coupon.claimed.
    assert_eq!(xadds, 1 + 2 * claims.len() as u64);

    let out = read_events_out(&redis, "boxoffice").await;
    assert_out_ids_unique_and_ordered(&out);
    let claimed = by(&out, "coupon.claimed", "claim");
    assert_eq!(claimed.len(), claims.len(), "one coupon.claimed per claim");
    for (claim, user) in &claims {
        let v = claimed.get(claim).map_or(&[][..], Vec::as_slice);
        assert_eq!(v.len(), 1, "{claim}: {v:?}");
        assert_eq!(v[0]["data"]["user"], json!(user));
    }
    assert_eq!(out.len(), claims.len(), "nothing else was published");
    rep.shutdown().await;
}

/// Successful `EVALSHA` runs and `XADD` calls Redis counted so far.
async fn command_calls(redis: &RedisServer) -> (u64, u64) {
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .expect("INFO");
    let field = |cmd: &str, name: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:")))
            .and_then(|l| {
                l.split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    };
    // NOSCRIPT answers count as failed calls: they ran nothing.
    (
        field("evalsha", "calls") - field("evalsha", "failed_calls"),
        field("xadd", "calls"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_key_that_is_not_a_stream_fails_the_batch_whole() {
    let redis = RedisServer::start();
    let mut o = opts("a");
    o.commit_timeout = Duration::from_millis(700);
    let (engine, rep) = Replicator::recover(&redis.url(), o, engine_cfg(1), || T0)
        .await
        .expect("recovers");
    let engine = Arc::new(engine);
    rep.spawn(engine.clone()).expect("spawns");
    let c = CouponId::new("c1").expect("id");
    let cfg = CouponConfig {
        stock: 10,
        per_user: std::num::NonZeroU32::MIN,
        opens_at: None,
        closes_at: None,
    };
    let _ = engine.put_coupon(&c, cfg, T0).expect("coupon");
    flush(&rep, &engine).await;
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let log_len = |conn: &mut redis::aio::MultiplexedConnection| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("XLEN")
                .arg("boxoffice:s0:log")
                .query_async::<u64>(&mut conn)
                .await
                .expect("XLEN")
        }
    };
    let before = log_len(&mut conn).await;
    // Someone set the out key by hand: the append must fail before writing
    // anything (a script keeps the writes made before a failing command).
    let () = redis::cmd("SET")
        .arg("boxoffice:out")
        .arg("not a stream")
        .query_async(&mut conn)
        .await
        .expect("SET");
    let u = UserId::new("u1").expect("user");
    let claim = engine
        .claim(&c, &u, None, T0)
        .expect("claims")
        .into_value()
        .claim;
    let r = rep.durable(0, engine.journal_seq(0)).await;
    assert!(r.is_err(), "no acknowledgement without the outcome: {r:?}");
    assert_eq!(log_len(&mut conn).await, before, "nothing half-written");
    // Put right, the same batch goes through whole.
    let () = redis::cmd("DEL")
        .arg("boxoffice:out")
        .query_async::<u64>(&mut conn)
        .await
        .map(drop)
        .expect("DEL");
    flush(&rep, &engine).await;
    assert_eq!(log_len(&mut conn).await, before + 1);
    let out = read_events_out(&redis, "boxoffice").await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["data"]["claim"], json!(claim.to_string()));
    rep.shutdown().await;
}

/// Retention: `--events-out-maxlen N` keeps about the newest N outcomes
/// (`MAXLEN ~` trims whole stream nodes, 100 entries each by default), and 0
/// writes none. Fails if the append stops trimming or ignores 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_out_is_trimmed_to_about_maxlen_and_zero_writes_none() {
    const CLAIMS: usize = 600;
    for (maxlen, at_most) in [("10", 10 + 200), ("0", 0)] {
        let redis = RedisServer::start();
        let log = redis.dir.join("boxoffice.log");
        let server = Boxoffice::start_with(&redis, "sync", &["--events-out-maxlen", maxlen], &log);
        let http = Http::new(&server.addr);
        http.wait_ready(Duration::from_secs(20)).await;
        let coupon = json!({"stock": CLAIMS, "per_user": 1});
        let r = http
            .call(Method::PUT, "/v1/coupons/c1", Some(ADMIN), Some(&coupon))
            .await;
        assert!(matches!(r, Some((201, _))), "coupon: {r:?}");
        for i in 0..CLAIMS {
            let body = json!({"user": format!("u{i}")});
            let r = http
                .call(
                    Method::POST,
                    "/v1/coupons/c1/claims",
                    Some(SERVICE),
                    Some(&body),
                )
                .await;
            assert!(matches!(r, Some((201, _))), "claim {i}: {r:?}");
        }
        let out = read_events_out(&redis, "boxoffice").await;
        assert!(
            out.len() <= at_most,
            "--events-out-maxlen {maxlen}: {} outcomes kept of {CLAIMS}",
            out.len()
        );
        if maxlen != "0" {
            assert!(
                out.len() >= 10,
                "at least the newest 10 kept: {}",
                out.len()
            );
        }
    }
}
