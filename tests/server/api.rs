//! Events, coupons, auth realms and operations endpoints.

use crate::common::*;
use http::Method;
use serde_json::json;
use sha2::{Digest, Sha256};

#[tokio::test]
async fn event_lifecycle() {
    let srv = TestServer::start().await;
    let doc = create_event(&srv, "e1", &small_event(None)).await;
    assert_eq!(doc["event"], "e1");
    assert_eq!(doc["name"], "Test night");
    assert_eq!(doc["phase"], "open");
    assert_eq!(doc["free"], 20);
    assert_eq!(doc["held"], 0);
    assert_eq!(doc["sold"], 0);
    assert_eq!(doc["waiting"], 0);
    assert_eq!(doc["queue"], json!(null));
    assert_eq!(doc["opens_at"], json!(null));
    assert_eq!(doc["holds"]["ttl_s"], 60);
    assert_eq!(doc["seats"][1]["category"], "R");
    assert_eq!(doc["categories"]["VIP"]["free"], 10);
    assert_eq!(doc["created_at"], "2026-12-01T10:00:00.000Z");

    let got = srv.get("/v1/events/e1").await;
    got.expect(200, None);
    assert_eq!(got.json(), doc);

    // Replace while nothing is held: 200.
    let mut changed = small_event(None);
    changed["name"] = json!("Renamed");
    let r = srv.admin_put("/v1/events/e1", &changed).await;
    r.expect(200, None);
    assert_eq!(r.json()["name"], "Renamed");

    // Replace while a seat is held: 409 event_in_use.
    let h = srv
        .service_post(
            "/v1/events/e1/holds",
            &json!({"user": "u1", "seats": ["A-1-1"]}),
        )
        .await;
    h.expect(201, None);
    srv.admin_put("/v1/events/e1", &small_event(None))
        .await
        .expect(409, Some("event_in_use"));

    // Delete while a seat is held: 409 too (a delete never erases holds or
    // sales); once released, the delete goes through.
    srv.call(Method::DELETE, "/v1/events/e1")
        .admin()
        .send()
        .await
        .expect(409, Some("event_in_use"));
    let hold = h.json()["hold"].as_str().unwrap().to_string();
    srv.call(Method::DELETE, &format!("/v1/events/e1/holds/{hold}"))
        .service()
        .send()
        .await
        .expect(204, None);
    srv.call(Method::DELETE, "/v1/events/e1")
        .admin()
        .send()
        .await
        .expect(204, None);
    srv.get("/v1/events/e1")
        .await
        .expect(404, Some("event_not_found"));
    srv.call(Method::DELETE, "/v1/events/e1")
        .admin()
        .send()
        .await
        .expect(404, Some("event_not_found"));
}

#[tokio::test]
async fn prequeue_publishes_seed_hash_then_seed() {
    let srv = TestServer::start().await;
    let mut body = small_event(Some(json!({"capacity": 10, "admit_per_s": 5})));
    body["opens_at"] = json!("2026-12-01T10:30:00Z");
    let doc = create_event(&srv, "pre", &body).await;
    assert_eq!(doc["phase"], "prequeue");
    assert_eq!(doc["opens_at"], "2026-12-01T10:30:00.000Z");
    assert_eq!(doc["queue"]["prequeue"], "random");
    assert_eq!(doc["queue"]["session_ttl_s"], 600, "defaults filled in");
    let hash = doc["prequeue_seed_sha256"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 64);
    assert_eq!(doc["prequeue_seed"], json!(null));
    let t = join(&srv, "pre", "early").await;
    assert_eq!(t["state"], "prequeue");

    srv.advance(30 * 60 * 1000);
    let doc = srv.get("/v1/events/pre").await.json();
    assert_eq!(doc["phase"], "open");
    let seed = doc["prequeue_seed"].as_str().unwrap();
    let bytes: Vec<u8> = (0..seed.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&seed[i..i + 2], 16).unwrap())
        .collect();
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, hash, "the published hash commits to the revealed seed");
}

#[tokio::test]
async fn pause_and_resume() {
    let srv = TestServer::start().await;
    create_event(&srv, "q", &small_event(Some(queue_cfg(5, 5)))).await;
    let r = srv
        .call(Method::POST, "/v1/events/q/pause")
        .admin()
        .send()
        .await;
    r.expect(200, None);
    assert_eq!(r.json()["phase"], "paused");
    // Joining goes on while paused, but nobody is admitted.
    let t = join(&srv, "q", "u1").await;
    srv.advance(5_000);
    let t = status(&srv, "q", t["ticket"].as_str().unwrap()).await;
    assert_eq!(t["state"], "waiting");
    let r = srv
        .call(Method::POST, "/v1/events/q/resume")
        .admin()
        .send()
        .await;
    r.expect(200, None);
    assert_eq!(r.json()["phase"], "open");
    srv.advance(1_000);
    let t = status(&srv, "q", t["ticket"].as_str().unwrap()).await;
    assert_eq!(t["state"], "admitted");

    create_event(&srv, "plain", &small_event(None)).await;
    srv.call(Method::POST, "/v1/events/plain/pause")
        .admin()
        .send()
        .await
        .expect(404, Some("no_queue"));
    srv.call(Method::POST, "/v1/events/nope/pause")
        .admin()
        .send()
        .await
        .expect(404, Some("event_not_found"));
}

#[tokio::test]
async fn auth_realms() {
    let srv = TestServer::start().await;
    let body = small_event(None);
    let r = srv
        .call(Method::PUT, "/v1/events/e1")
        .json(&body)
        .send()
        .await;
    r.expect(401, Some("unauthorized"));
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    srv.call(Method::PUT, "/v1/events/e1")
        .bearer("wrong-token-xyz")
        .json(&body)
        .send()
        .await
        .expect(401, Some("unauthorized"));
    srv.call(Method::PUT, "/v1/events/e1")
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .json(&body)
        .send()
        .await
        .expect(401, Some("unauthorized"));
    srv.call(Method::PUT, "/v1/events/e1")
        .service()
        .json(&body)
        .send()
        .await
        .expect(403, Some("forbidden"));
    create_event(&srv, "e1", &body).await;
    let hold = json!({"user": "u1", "seats": ["A-1-1"]});
    srv.call(Method::POST, "/v1/events/e1/holds")
        .admin()
        .json(&hold)
        .send()
        .await
        .expect(403, Some("forbidden"));
    srv.call(Method::POST, "/v1/events/e1/holds")
        .json(&hold)
        .send()
        .await
        .expect(401, Some("unauthorized"));
    srv.call(Method::POST, "/v1/events/e1/queue/t/complete")
        .send()
        .await
        .expect(401, Some("unauthorized"));
    srv.call(Method::PUT, "/v1/coupons/c1")
        .service()
        .json(&json!({"stock": 1}))
        .send()
        .await
        .expect(403, Some("forbidden"));
    // Public endpoints need nothing, and ignore a wrong token.
    srv.get("/v1/events/e1").await.expect(200, None);
    srv.call(Method::GET, "/v1/events/e1/seats")
        .bearer("whatever-token")
        .send()
        .await
        .expect(200, None);
}

#[tokio::test]
async fn coupons() {
    let srv = TestServer::start().await;
    let r = srv
        .admin_put(
            "/v1/coupons/c1",
            &json!({"stock": 3, "per_user": 1, "opens_at": null, "closes_at": null}),
        )
        .await;
    r.expect(201, None);
    assert_eq!(
        r.json(),
        json!({"coupon": "c1", "stock": 3, "issued": 0, "remaining": 3,
        "per_user": 1, "opens_at": null, "closes_at": null})
    );
    srv.admin_put("/v1/coupons/c1", &json!({"stock": 2}))
        .await
        .expect(200, None);
    let g = srv.get("/v1/coupons/c1").await;
    g.expect(200, None);
    assert_eq!(g.json()["stock"], 2);

    let claim = srv
        .service_post("/v1/coupons/c1/claims", &json!({"user": "u1"}))
        .await;
    claim.expect(201, None);
    let c = claim.json();
    assert_eq!(c["coupon"], "c1");
    assert_eq!(c["user"], "u1");
    assert_eq!(c["remaining"], 1);
    let claim_id = c["claim"].as_str().unwrap().to_string();
    srv.service_post("/v1/coupons/c1/claims", &json!({"user": "u1"}))
        .await
        .expect(409, Some("already_claimed"));
    srv.service_post("/v1/coupons/c1/claims", &json!({"user": "u2"}))
        .await
        .expect(201, None);
    srv.service_post("/v1/coupons/c1/claims", &json!({"user": "u3"}))
        .await
        .expect(410, Some("sold_out"));
    let r = srv.admin_put("/v1/coupons/c1", &json!({"stock": 1})).await;
    r.expect(409, Some("stock_below_issued"));
    assert_eq!(r.json()["error"]["issued"], 2);

    // Give one back: the unit returns to stock.
    srv.call(Method::DELETE, &format!("/v1/coupons/c1/claims/{claim_id}"))
        .service()
        .send()
        .await
        .expect(204, None);
    assert_eq!(srv.get("/v1/coupons/c1").await.json()["remaining"], 1);
    srv.call(Method::DELETE, "/v1/coupons/c1/claims/k999-1")
        .service()
        .send()
        .await
        .expect(404, Some("claim_not_found"));
    // Claim ids are opaque: any shape the server never issued is 404.
    for claim in [
        "nope",
        "k-1",
        "k99999999999",
        "k0",
        "k0-",
        "k0-Z",
        "k0-00",
        "%E2%82%AC",
        &"k".repeat(300),
    ] {
        srv.call(Method::DELETE, &format!("/v1/coupons/c1/claims/{claim}"))
            .service()
            .send()
            .await
            .expect(404, Some("claim_not_found"));
    }
    srv.call(Method::DELETE, "/v1/coupons/none/claims/nope")
        .service()
        .send()
        .await
        .expect(404, Some("coupon_not_found"));
    srv.get("/v1/coupons/none")
        .await
        .expect(404, Some("coupon_not_found"));
    srv.service_post("/v1/coupons/none/claims", &json!({"user": "u1"}))
        .await
        .expect(404, Some("coupon_not_found"));

    // Not open yet: 403 not_open.
    srv.admin_put(
        "/v1/coupons/later",
        &json!({"stock": 5, "opens_at": "2026-12-01T12:00:00Z"}),
    )
    .await
    .expect(201, None);
    srv.service_post("/v1/coupons/later/claims", &json!({"user": "u1"}))
        .await
        .expect(403, Some("not_open"));
    srv.clock.advance_ms(2 * 3600 * 1000);
    srv.service_post("/v1/coupons/later/claims", &json!({"user": "u1"}))
        .await
        .expect(201, None);
}

#[tokio::test]
async fn claim_idempotency() {
    let srv = TestServer::start().await;
    srv.admin_put("/v1/coupons/c", &json!({"stock": 10, "per_user": 5}))
        .await
        .expect(201, None);
    let send = |user: &'static str, key: &'static str| {
        srv.call(Method::POST, "/v1/coupons/c/claims")
            .service()
            .header("idempotency-key", key)
            .json(&json!({"user": user}))
            .send()
    };
    let a = send("u1", "key-1").await;
    a.expect(201, None);
    let b = send("u1", "key-1").await;
    b.expect(201, None);
    assert_eq!(a.json()["claim"], b.json()["claim"], "same claim back");
    assert_eq!(srv.get("/v1/coupons/c").await.json()["issued"], 1);
    send("u2", "key-1")
        .await
        .expect(422, Some("idempotency_key_reused"));
    assert_eq!(srv.get("/v1/coupons/c").await.json()["issued"], 1);
}

#[tokio::test]
async fn operations_endpoints() {
    let srv = TestServer::start().await;
    let h = srv.get("/healthz").await;
    h.expect(200, None);
    srv.get("/readyz").await.expect(200, None);
    let w = srv.get("/readyz/writes").await;
    w.expect(200, None);
    assert_eq!(w.json()["status"], "writable");
    assert!(srv.handle.is_ready());
    create_event(&srv, "m1", &small_event(Some(queue_cfg(5, 5)))).await;
    join(&srv, "m1", "u1").await;
    srv.admin_put("/v1/coupons/mc", &json!({"stock": 7}))
        .await
        .expect(201, None);
    srv.service_post(
        "/v1/events/m1/holds",
        &json!({"user": "u9", "seats": ["A-1-1"]}),
    )
    .await
    .expect(403, Some("pass_required"));
    srv.get("/nope").await.expect(404, Some("not_found"));
    let m = srv.get("/metrics").await;
    m.expect(200, None);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let text = String::from_utf8(m.body.to_vec()).unwrap();
    for needle in [
        "boxoffice_http_requests_total{route=\"/v1/events/{event}\",method=\"PUT\",status=\"201\"} 1",
        "boxoffice_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        "boxoffice_http_request_duration_seconds_bucket{route=\"/v1/events/{event}/queue\",method=\"POST\",le=\"0.005\"}",
        "boxoffice_queue_waiting{event=\"m1\"}",
        "boxoffice_queue_joins_total{event=\"m1\",kind=\"new\"} 1",
        "boxoffice_seats_free{event=\"m1\"} 20",
        "boxoffice_seats_holds_total{event=\"m1\",outcome=\"pass_refused\"} 1",
        "boxoffice_coupons_remaining{coupon=\"mc\"} 7",
        "boxoffice_http_sse_open_streams 0",
        "boxoffice_queue_served_total{event=\"m1\"}",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    srv.stop().await.expect("clean stop");
}

#[tokio::test]
async fn routing_errors() {
    let srv = TestServer::start().await;
    let r = srv
        .call(Method::PATCH, "/v1/events/e1")
        .admin()
        .send()
        .await;
    r.expect(405, Some("method_not_allowed"));
    assert_eq!(r.header("allow"), Some("GET, PUT, DELETE, HEAD"));
    let r = srv.call(Method::GET, "/v1/events/e1/holds").send().await;
    r.expect(405, Some("method_not_allowed"));
    assert_eq!(r.header("allow"), Some("POST"));
    for p in [
        "/",
        "/v1",
        "/v1/events",
        "/v1/events/",
        "/v2/events/e1",
        "/v1/events/e1/zzz",
    ] {
        srv.get(p).await.expect(404, Some("not_found"));
    }
}
