//! Seats and holds: availability, exact and best holds, confirm, extend,
//! release, expiry on the manual clock, idempotency and passes.

use crate::common::*;
use http::Method;
use serde_json::{json, Value};

async fn hold(srv: &TestServer, event: &str, body: Value) -> Resp {
    srv.service_post(&format!("/v1/events/{event}/holds"), &body)
        .await
}

#[tokio::test]
async fn hold_confirm_release_and_availability() {
    let srv = TestServer::start().await;
    create_event(&srv, "e", &small_event(None)).await;
    let r = hold(
        &srv,
        "e",
        json!({"user": "u1", "seats": ["A-1-1", "A-1-2"]}),
    )
    .await;
    r.expect(201, None);
    let h = r.json();
    assert_eq!(h["state"], "held");
    assert_eq!(h["user"], "u1");
    assert_eq!(h["seats"], json!(["A-1-1", "A-1-2"]));
    assert_eq!(h["expires_in_s"], 60);
    assert_eq!(h["expires_at"], "2026-12-01T10:01:00.000Z");
    let id = h["hold"].as_str().unwrap().to_string();

    let seats = srv.get("/v1/events/e/seats").await.json();
    assert_eq!(seats["free"], 18);
    assert_eq!(seats["held"], 2);
    assert_eq!(
        seats["categories"]["VIP"],
        json!({"free": 8, "held": 2, "sold": 0})
    );
    let rows = srv.get("/v1/events/e/seats?section=A").await.json();
    assert_eq!(rows["section"], "A");
    assert_eq!(
        rows["rows"][0],
        json!({"row": "1", "first": 1, "status": "HHFFFFFFFF"})
    );
    srv.get("/v1/events/e/seats?section=Z")
        .await
        .expect(404, Some("section_not_found"));
    srv.get("/v1/events/nope/seats")
        .await
        .expect(404, Some("event_not_found"));

    // Taken, unknown, over the limit.
    let r = hold(
        &srv,
        "e",
        json!({"user": "u2", "seats": ["A-1-2", "A-1-3"]}),
    )
    .await;
    r.expect(409, Some("seats_unavailable"));
    assert_eq!(r.json()["error"]["seats"], json!(["A-1-2"]));
    let r = hold(&srv, "e", json!({"user": "u2", "seats": ["A-9-1"]})).await;
    r.expect(422, Some("unknown_seat"));
    assert_eq!(r.json()["error"]["seats"], json!(["A-9-1"]));
    hold(
        &srv,
        "e",
        json!({"user": "u1", "seats": ["A-2-1", "A-2-2", "A-2-3"]}),
    )
    .await
    .expect(422, Some("limit_exceeded"));

    // Read, confirm (idempotent), then a sold hold cannot be released.
    let g = srv
        .call(Method::GET, &format!("/v1/events/e/holds/{id}"))
        .service()
        .send()
        .await;
    g.expect(200, None);
    assert_eq!(g.json()["hold"], id.as_str());
    let c = srv
        .service_post(
            &format!("/v1/events/e/holds/{id}/confirm"),
            &json!({"order": "o-1"}),
        )
        .await;
    c.expect(200, None);
    assert_eq!(c.json()["state"], "sold");
    assert_eq!(c.json()["order"], "o-1");
    srv.service_post(
        &format!("/v1/events/e/holds/{id}/confirm"),
        &json!({"order": "o-1"}),
    )
    .await
    .expect(200, None);
    srv.call(Method::DELETE, &format!("/v1/events/e/holds/{id}"))
        .service()
        .send()
        .await
        .expect(409, Some("hold_sold"));
    let seats = srv.get("/v1/events/e/seats").await.json();
    assert_eq!(
        (seats["free"].clone(), seats["sold"].clone()),
        (json!(18), json!(2))
    );

    // Release frees the seats at once; releasing twice is a no-op.
    let r = hold(&srv, "e", json!({"user": "u3", "seats": ["A-2-5"]})).await;
    let id2 = r.json()["hold"].as_str().unwrap().to_string();
    for _ in 0..2 {
        srv.call(Method::DELETE, &format!("/v1/events/e/holds/{id2}"))
            .service()
            .send()
            .await
            .expect(204, None);
    }
    assert_eq!(srv.get("/v1/events/e/seats").await.json()["free"], 18);
    let g = srv
        .call(Method::GET, &format!("/v1/events/e/holds/{id2}"))
        .service()
        .send()
        .await;
    assert_eq!(g.json()["state"], "released");
    srv.service_post(
        &format!("/v1/events/e/holds/{id2}/confirm"),
        &json!({"order": "o-2"}),
    )
    .await
    .expect(410, Some("hold_expired"));
    srv.call(Method::GET, "/v1/events/e/holds/h999g9-1")
        .service()
        .send()
        .await
        .expect(404, Some("hold_not_found"));
    // Hold ids are opaque: any shape the server never issued is 404, on
    // every hold path; an unknown event still answers for itself.
    for hold in [
        "xyz",
        "h-1g0",
        "h99999999999g1",
        // The shape before ids carried an epoch, and epochs not in
        // canonical lowercase base 36.
        "h0g0",
        "h0g0-",
        "h0g0-A",
        "h0g0-01",
        "h0g0-3w5e11264sgsg",
        "%E2%82%AC",
        &"h".repeat(300),
    ] {
        for (method, suffix, body) in [
            (Method::GET, "", None),
            (Method::DELETE, "", None),
            (Method::POST, "/confirm", Some(json!({"order": "o-1"}))),
            (Method::POST, "/extend", Some(json!({"ttl_s": 60}))),
        ] {
            let path = format!("/v1/events/e/holds/{hold}{suffix}");
            let mut call = srv.call(method.clone(), &path).service();
            if let Some(b) = &body {
                call = call.json(b);
            }
            call.send().await.expect(404, Some("hold_not_found"));
        }
    }
    srv.call(Method::GET, "/v1/events/none/holds/xyz")
        .service()
        .send()
        .await
        .expect(404, Some("event_not_found"));
}

#[tokio::test]
async fn best_available() {
    let srv = TestServer::start().await;
    create_event(&srv, "e", &small_event(None)).await;
    let r = hold(
        &srv,
        "e",
        json!({"user": "u1", "best": {"count": 3, "category": "R"}}),
    )
    .await;
    r.expect(201, None);
    let seats: Vec<String> = serde_json::from_value(r.json()["seats"].clone()).unwrap();
    assert_eq!(seats.len(), 3);
    assert!(seats.iter().all(|s| s.starts_with("A-2-")), "{seats:?}");
    hold(
        &srv,
        "e",
        json!({"user": "u2", "best": {"count": 1, "category": "Balcony"}}),
    )
    .await
    .expect(422, Some("unknown_category"));
    // Fill row 2 so no 4 adjacent R seats remain.
    let mut users = 10;
    loop {
        let r = hold(
            &srv,
            "e",
            json!({"user": format!("f{users}"), "best": {"count": 1, "category": "R"}}),
        )
        .await;
        users += 1;
        if r.status != 201 {
            r.expect(409, Some("seats_unavailable"));
            break;
        }
    }
    hold(
        &srv,
        "e",
        json!({"user": "u3", "best": {"count": 2, "category": "R"}}),
    )
    .await
    .expect(409, Some("seats_unavailable"));
}

#[tokio::test]
async fn expiry_and_extend_on_the_manual_clock() {
    let srv = TestServer::start().await;
    create_event(&srv, "e", &small_event(None)).await;
    let r = hold(&srv, "e", json!({"user": "u1", "seats": ["A-1-1"]})).await;
    let id = r.json()["hold"].as_str().unwrap().to_string();

    // Extend: ttl from now, never past max_ttl_s (120 s) from creation.
    srv.clock.advance_ms(30_000);
    let e = srv
        .service_post(
            &format!("/v1/events/e/holds/{id}/extend"),
            &json!({"ttl_s": 60}),
        )
        .await;
    e.expect(200, None);
    assert_eq!(e.json()["expires_at"], "2026-12-01T10:01:30.000Z");
    let e = srv
        .service_post(
            &format!("/v1/events/e/holds/{id}/extend"),
            &json!({"ttl_s": 100}),
        )
        .await;
    e.expect(422, Some("ttl_too_long"));
    assert_eq!(
        e.json()["error"]["max_expires_at"],
        "2026-12-01T10:02:00.000Z"
    );

    // Past expiry: free for every read and write at once, no sweeper needed.
    srv.clock.advance_ms(60_000);
    let g = srv
        .call(Method::GET, &format!("/v1/events/e/holds/{id}"))
        .service()
        .send()
        .await;
    assert_eq!(g.json()["state"], "expired");
    assert_eq!(g.json()["expires_in_s"], 0);
    assert_eq!(srv.get("/v1/events/e/seats").await.json()["free"], 20);
    srv.service_post(
        &format!("/v1/events/e/holds/{id}/confirm"),
        &json!({"order": "late"}),
    )
    .await
    .expect(410, Some("hold_expired"));
    srv.service_post(
        &format!("/v1/events/e/holds/{id}/extend"),
        &json!({"ttl_s": 10}),
    )
    .await
    .expect(410, Some("hold_expired"));
    hold(&srv, "e", json!({"user": "u2", "seats": ["A-1-1"]}))
        .await
        .expect(201, None);
    srv.handle.tick();
    let doc = srv.get("/v1/events/e").await.json();
    assert_eq!(
        (doc["held"].clone(), doc["free"].clone()),
        (json!(1), json!(19))
    );
}

#[tokio::test]
async fn hold_idempotency() {
    let srv = TestServer::start().await;
    create_event(&srv, "e", &small_event(None)).await;
    let send = |body: Value| {
        srv.call(Method::POST, "/v1/events/e/holds")
            .service()
            .header("Idempotency-Key", "retry-1")
            .json(&body)
            .send()
    };
    let a = send(json!({"user": "u1", "seats": ["A-1-1"]})).await;
    a.expect(201, None);
    let b = send(json!({"user": "u1", "seats": ["A-1-1"]})).await;
    b.expect(201, None);
    assert_eq!(a.json()["hold"], b.json()["hold"]);
    send(json!({"user": "u1", "seats": ["A-1-2"]}))
        .await
        .expect(422, Some("idempotency_key_reused"));
    assert_eq!(srv.get("/v1/events/e/seats").await.json()["held"], 1);
    srv.call(Method::POST, "/v1/events/e/holds")
        .service()
        .header("Idempotency-Key", &"k".repeat(129))
        .json(&json!({"user": "u1", "seats": ["A-1-3"]}))
        .send()
        .await
        .expect(400, Some("bad_request"));
}

/// Admits `user` into `event` (capacity available) and returns its status.
pub async fn admitted(srv: &TestServer, event: &str, user: &str) -> Value {
    let t = join(srv, event, user).await;
    let ticket = t["ticket"].as_str().unwrap().to_string();
    for _ in 0..50 {
        srv.advance(1_000);
        let s = status(srv, event, &ticket).await;
        if s["state"] == "admitted" {
            return s;
        }
    }
    panic!("{user} was never admitted");
}

#[tokio::test]
async fn holds_on_a_queued_event_need_a_valid_pass() {
    let srv = TestServer::start().await;
    create_event(&srv, "q", &small_event(Some(queue_cfg(10, 10)))).await;
    create_event(&srv, "q2", &small_event(Some(queue_cfg(10, 10)))).await;
    let s1 = admitted(&srv, "q", "u1").await;
    let pass = s1["pass"].as_str().unwrap().to_string();
    assert!(pass.starts_with("v1."), "{pass}");
    assert!(s1["pass_expires_at"].is_string());
    assert_eq!(s1["position"], json!(null));
    let other_event = admitted(&srv, "q2", "u1").await["pass"]
        .as_str()
        .unwrap()
        .to_string();

    hold(&srv, "q", json!({"user": "u1", "seats": ["A-1-1"]}))
        .await
        .expect(403, Some("pass_required"));
    let mut forged = pass.clone();
    forged.pop();
    forged.push(if pass.ends_with('A') { 'B' } else { 'A' });
    let r = hold(
        &srv,
        "q",
        json!({"user": "u1", "pass": forged, "seats": ["A-1-1"]}),
    )
    .await;
    r.expect(403, Some("pass_invalid"));
    hold(
        &srv,
        "q",
        json!({"user": "u2", "pass": pass, "seats": ["A-1-1"]}),
    )
    .await
    .expect(403, Some("pass_invalid"));
    hold(
        &srv,
        "q",
        json!({"user": "u1", "pass": other_event, "seats": ["A-1-1"]}),
    )
    .await
    .expect(403, Some("pass_invalid"));
    hold(
        &srv,
        "q",
        json!({"user": "u1", "pass": "junk", "seats": ["A-1-1"]}),
    )
    .await
    .expect(403, Some("pass_invalid"));
    assert_eq!(srv.get("/v1/events/q/seats").await.json()["held"], 0);
    hold(
        &srv,
        "q",
        json!({"user": "u1", "pass": pass, "seats": ["A-1-1"]}),
    )
    .await
    .expect(201, None);

    // After the session ends the pass is refused.
    srv.advance(601_000);
    let r = hold(
        &srv,
        "q",
        json!({"user": "u1", "pass": pass, "seats": ["A-1-2"]}),
    )
    .await;
    r.expect(403, Some("pass_invalid"));
    assert_eq!(r.json()["error"]["reason"], "expired");
}
