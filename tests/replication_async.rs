//! I8 through an async crash: the `boxoffice` binary with `--redis …
//! --durability async`. Redis is frozen (SIGSTOP), so nothing ships; alice
//! holds a seat and claims the last coupon (both acknowledged, 201); the
//! server is killed (`kill -9`), so both changes are lost. Restarted on the
//! same Redis, the next writer gives bob the same seat and the same coupon
//! unit, in the same hold slot and ledger index. Bob's ids must differ from
//! alice's, and alice's ids must name nothing: confirming her hold does not
//! sell bob's seat, returning her claim does not give back bob's coupon.
//!
//! Shown to fail before hold and claim ids carried the writer epoch: bob
//! got `h0g0` and `k0`, exactly alice's ids, and her confirm answered 200
//! with bob's seat sold to her order.

// The shared support module drives engines directly (receipts read without
// the server's commit path); this test itself only talks HTTP.
#![allow(clippy::disallowed_methods)]

mod replication_support;

use http::Method;
use replication_support::{Boxoffice, Http, RedisServer, ADMIN, SERVICE};
use serde_json::{json, Value};
use std::time::Duration;

async fn expect(http: &Http, method: Method, path: &str, token: &str, body: Value) -> Value {
    let body = (!body.is_null()).then_some(body);
    match http.call(method, path, Some(token), body.as_ref()).await {
        Some((200 | 201, v)) => v,
        other => panic!("{path}: {other:?}"),
    }
}

async fn hold_a1(http: &Http, user: &str) -> String {
    let v = expect(
        http,
        Method::POST,
        "/v1/events/e1/holds",
        SERVICE,
        json!({"user": user, "seats": ["A-1-1"]}),
    )
    .await;
    v["hold"].as_str().expect("hold id").to_string()
}

async fn claim_c1(http: &Http, user: &str) -> String {
    let v = expect(
        http,
        Method::POST,
        "/v1/coupons/c1/claims",
        SERVICE,
        json!({"user": user}),
    )
    .await;
    v["claim"].as_str().expect("claim id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_id_never_names_the_next_hold_or_claim() {
    let redis = RedisServer::start();
    let log = redis.dir.join("boxoffice.log");
    // The async lag limit (tests/replication_lag.rs) would refuse alice's
    // writes once Redis has been frozen for a second; on a loaded machine
    // that can come first. This test is about ids: no limit in the way.
    let mut first = Boxoffice::start_with(&redis, "async", &["--async-max-lag-ms", "60000"], &log);
    let http = Http::new(&first.addr);
    http.wait_ready(Duration::from_secs(20)).await;

    // One seat row, no waiting room (holds need no pass); one coupon unit.
    let event = json!({"name": "ids", "seats": [
        {"section": "A", "row": "1", "first": 1, "last": 4, "category": "R"}]});
    expect(&http, Method::PUT, "/v1/events/e1", ADMIN, event).await;
    let coupon = json!({"stock": 1, "per_user": 1});
    expect(&http, Method::PUT, "/v1/coupons/c1", ADMIN, coupon).await;
    // Async ships within milliseconds while Redis answers: let the setup
    // reach it (checked after the restart).
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Redis frozen: alice's writes are acknowledged and never shipped. The
    // first batch sent to a frozen Redis waits in its socket buffer and is
    // applied when it resumes, even after the sender died; so a decoy write
    // goes first, and alice's wait behind its round trip (one batch in
    // flight at a time) until the kill loses them.
    redis.pause();
    let decoy = json!({"stock": 5, "per_user": 1});
    expect(&http, Method::PUT, "/v1/coupons/decoy", ADMIN, decoy).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let alice_hold = hold_a1(&http, "alice").await;
    let alice_claim = claim_c1(&http, "alice").await;
    first.kill();
    redis.resume();

    // The next writer (it waits out the old lease).
    let second = Boxoffice::start(Some((&redis, "async")), &log);
    let http = Http::new(&second.addr);
    http.wait_ready(Duration::from_secs(20)).await;
    let counts = expect(&http, Method::GET, "/v1/coupons/c1", ADMIN, Value::Null).await;
    assert_eq!(
        counts["remaining"], 1,
        "the setup survived and alice's claim was lost (else this test shows nothing): {counts}"
    );
    let seats = expect(
        &http,
        Method::GET,
        "/v1/events/e1/seats",
        ADMIN,
        Value::Null,
    )
    .await;
    assert_eq!(seats["held"], 0, "alice's hold was lost: {seats}");

    let bob_hold = hold_a1(&http, "bob").await;
    let bob_claim = claim_c1(&http, "bob").await;
    assert_ne!(bob_hold, alice_hold, "a lost hold id was issued again");
    assert_ne!(bob_claim, alice_claim, "a lost claim id was issued again");

    // Alice's backend confirms "her" hold: bob's seat is not sold.
    let r = http
        .call(
            Method::POST,
            &format!("/v1/events/e1/holds/{alice_hold}/confirm"),
            Some(SERVICE),
            Some(&json!({"order": "o-alice"})),
        )
        .await;
    let (status, body) = r.expect("the server answers");
    assert_ne!(status, 200, "alice's lost hold id sold bob's seat: {body}");
    assert_eq!(status, 404, "{body}");
    let bob = expect(
        &http,
        Method::GET,
        &format!("/v1/events/e1/holds/{bob_hold}"),
        SERVICE,
        Value::Null,
    )
    .await;
    assert_eq!(bob["state"], "held", "{bob}");
    assert_eq!(bob["user"], "bob");
    assert!(bob["order"].is_null(), "{bob}");

    // Alice's backend gives "her" claim back: bob keeps his coupon.
    let r = http
        .call(
            Method::DELETE,
            &format!("/v1/coupons/c1/claims/{alice_claim}"),
            Some(SERVICE),
            None,
        )
        .await;
    let (status, body) = r.expect("the server answers");
    assert_ne!(status, 204, "alice's lost claim id returned bob's coupon");
    assert_eq!(status, 404, "{body}");
    let counts = expect(&http, Method::GET, "/v1/coupons/c1", ADMIN, Value::Null).await;
    assert_eq!(counts["remaining"], 0, "bob's claim still stands: {counts}");
}
