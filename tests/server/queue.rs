//! The waiting room over HTTP: join, rejoin, status, leave, complete, the
//! error codes, and an end-to-end run of 1,000 users.

use crate::common::*;
use http::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn join_rejoin_status_leave() {
    let srv = TestServer::start().await;
    create_event(&srv, "q", &small_event(Some(queue_cfg(1, 1)))).await;
    // Fill the one active slot so later users wait.
    let first = join(&srv, "q", "first").await;
    srv.advance(1_000);
    assert_eq!(
        status(&srv, "q", first["ticket"].as_str().unwrap()).await["state"],
        "admitted"
    );

    let r = srv
        .public_post("/v1/events/q/queue", &join_body("q", "u-1"))
        .await;
    r.expect(201, None);
    let t = r.json();
    for f in [
        "ticket",
        "event",
        "user",
        "state",
        "position",
        "waiting",
        "eta_s",
        "poll_after_ms",
    ] {
        assert!(t.get(f).is_some(), "missing {f}: {t}");
    }
    assert!(t.get("pass").is_none());
    assert_eq!(t["state"], "waiting");
    assert_eq!(t["position"], 1);
    assert_eq!(t["user"], "u-1");
    let ticket = t["ticket"].as_str().unwrap().to_string();
    assert!(ticket.len() >= 16, "unguessable ticket: {ticket}");

    // A rejoin keeps the ticket and place: 200, never a new place at the back.
    join(&srv, "q", "u-2").await;
    let r = srv
        .public_post("/v1/events/q/queue", &join_body("q", "u-1"))
        .await;
    r.expect(200, None);
    assert_eq!(r.json()["ticket"], ticket.as_str());
    assert_eq!(r.json()["position"], 1);

    let s = status(&srv, "q", &ticket).await;
    assert_eq!(s["waiting"], 2);

    srv.call(Method::DELETE, &format!("/v1/events/q/queue/{ticket}"))
        .send()
        .await
        .expect(204, None);
    assert_eq!(status(&srv, "q", &ticket).await["state"], "left");
    srv.get("/v1/events/q/queue/not-a-ticket")
        .await
        .expect(404, Some("ticket_not_found"));
    srv.call(Method::DELETE, "/v1/events/q/queue/not-a-ticket")
        .send()
        .await
        .expect(404, Some("ticket_not_found"));
    srv.get(&format!("/v1/events/nope/queue/{ticket}"))
        .await
        .expect(404, Some("event_not_found"));
    // An id no event can have is a bad request, as on every event route
    // (the poll reads the id without building one).
    let bad = srv.get(&format!("/v1/events/-q/queue/{ticket}")).await;
    bad.expect(400, Some("bad_request"));
    let same = srv.get("/v1/events/-q").await;
    same.expect(400, Some("bad_request"));
    assert_eq!(
        bad.json()["error"]["message"],
        same.json()["error"]["message"]
    );
}

#[tokio::test]
async fn queue_error_codes() {
    let srv = TestServer::start().await;
    srv.public_post("/v1/events/nope/queue", &join_body("nope", "u"))
        .await
        .expect(404, Some("event_not_found"));
    create_event(&srv, "plain", &small_event(None)).await;
    srv.public_post("/v1/events/plain/queue", &join_body("plain", "u"))
        .await
        .expect(404, Some("no_queue"));

    let mut cfg = queue_cfg(1, 1);
    cfg["max_waiting"] = json!(2);
    create_event(&srv, "tiny", &small_event(Some(cfg))).await;
    // Paused, so the background driver cannot admit "a" between the joins
    // (which would leave room for "c": this raced under load).
    srv.call(Method::POST, "/v1/events/tiny/pause")
        .admin()
        .send()
        .await
        .expect(200, None);
    join(&srv, "tiny", "a").await;
    join(&srv, "tiny", "b").await;
    let r = srv
        .public_post("/v1/events/tiny/queue", &join_body("tiny", "c"))
        .await;
    r.expect(503, Some("queue_full"));
    assert!(r.header("retry-after").is_some());

    // complete: service only; a waiting ticket is not admitted.
    let b = join(&srv, "tiny", "b").await;
    let tb = b["ticket"].as_str().unwrap();
    let r = srv
        .call(
            Method::POST,
            &format!("/v1/events/tiny/queue/{tb}/complete"),
        )
        .service()
        .send()
        .await;
    if b["state"] == "waiting" {
        r.expect(409, Some("not_admitted"));
    }

    // Every seat sold: the event is closed to joins.
    let one_seat = json!({"name": "one", "queue": queue_cfg(5, 5),
        "seats": [{"section": "A", "row": "1", "first": 1, "last": 1, "category": "R"}]});
    create_event(&srv, "one", &one_seat).await;
    let a = join(&srv, "one", "buyer").await;
    srv.advance(1_000);
    let s = status(&srv, "one", a["ticket"].as_str().unwrap()).await;
    let h = srv
        .service_post(
            "/v1/events/one/holds",
            &json!({"user": "buyer", "pass": s["pass"], "seats": ["A-1-1"]}),
        )
        .await;
    h.expect(201, None);
    let hid = h.json()["hold"].as_str().unwrap().to_string();
    srv.service_post(
        &format!("/v1/events/one/holds/{hid}/confirm"),
        &json!({"order": "o"}),
    )
    .await
    .expect(200, None);
    assert_eq!(srv.get("/v1/events/one").await.json()["phase"], "closed");
    srv.public_post("/v1/events/one/queue", &join_body("one", "late"))
        .await
        .expect(410, Some("event_closed"));
}

#[tokio::test]
async fn join_idempotency_key() {
    let srv = TestServer::start().await;
    create_event(&srv, "q", &small_event(Some(queue_cfg(1, 1)))).await;
    let send = |user: &'static str| {
        srv.call(Method::POST, "/v1/events/q/queue")
            .header("idempotency-key", "join-1")
            .json(&join_body("q", user))
            .send()
    };
    let a = send("u1").await;
    a.expect(201, None);
    let b = send("u1").await;
    b.expect(201, None);
    assert_eq!(a.json()["ticket"], b.json()["ticket"]);
    // Keys are scoped per user: another user's join with the same key is
    // its own request (its own ticket), never a conflict, and never the
    // first user's answer.
    let c = send("u2").await;
    c.expect(201, None);
    assert_ne!(c.json()["ticket"], a.json()["ticket"]);
    assert_eq!(c.json()["user"], "u2");
    // One read: the driver may admit a user between two.
    let doc = srv.get("/v1/events/q").await.json();
    let in_line = doc["waiting"].as_u64().unwrap() + doc["admitted"].as_u64().unwrap();
    assert_eq!(in_line, 2, "two users, one place each");
}

/// 1,000 users join; they are admitted in join order, never more than
/// `admit_per_s` a second nor `capacity` at once; each holds a seat with its
/// pass, buys it and completes, freeing the slot for the next.
#[tokio::test]
async fn thousand_users_end_to_end() {
    const USERS: usize = 1_000;
    const CAPACITY: u64 = 100;
    const RATE: u64 = 50;
    let srv = TestServer::start().await;
    let seats: Vec<Value> = (1..=10)
        .map(|r| json!({"section": "F", "row": r.to_string(), "first": 1, "last": 100, "category": "R"}))
        .collect();
    let body = json!({"name": "big", "queue": queue_cfg(CAPACITY as u32, RATE as u32),
        "seats": seats, "holds": {"ttl_s": 300, "max_ttl_s": 600, "max_seats_per_user": 1}});
    create_event(&srv, "big", &body).await;
    srv.call(Method::POST, "/v1/events/big/pause")
        .admin()
        .send()
        .await
        .expect(200, None);

    let mut tickets = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let t = join(&srv, "big", &format!("user-{i}")).await;
        assert_eq!(t["position"], (i + 1) as u64, "positions follow join order");
        tickets.push(t["ticket"].as_str().unwrap().to_string());
    }
    // ETAs do not fall behind position: later users wait at least as long.
    srv.call(Method::POST, "/v1/events/big/resume")
        .admin()
        .send()
        .await
        .expect(200, None);
    let s10 = status(&srv, "big", &tickets[10]).await;
    let s900 = status(&srv, "big", &tickets[900]).await;
    if let (Some(a), Some(b)) = (s10["eta_s"].as_u64(), s900["eta_s"].as_u64()) {
        assert!(a <= b, "eta {a} <= {b}");
    }

    let engine = srv.handle.engine();
    let event = boxoffice_engine::EventId::new("big").unwrap();
    let mut next_done = 0usize; // users admitted (in order) so far
    let mut seconds = 0u64;
    let mut last_position_of_last = USERS as u64 + 1;
    while next_done < USERS {
        srv.advance(1_000);
        seconds += 1;
        assert!(seconds < 200, "the line must drain");
        let info = engine.event(&event, srv.handle.now()).unwrap();
        assert!(info.admitted <= CAPACITY, "capacity");
        assert!(
            info.served <= RATE * seconds,
            "rate: {} in {seconds} s",
            info.served
        );
        // Admitted users are exactly the next in join order.
        let mut admitted_now = Vec::new();
        while next_done < USERS {
            let view = engine
                .status(&event, &tickets[next_done], srv.handle.now())
                .unwrap();
            if view.status.state != boxoffice_engine::queue::TicketState::Admitted {
                assert_eq!(view.status.position, Some(1), "the head waits first");
                break;
            }
            admitted_now.push((next_done, view.pass.unwrap()));
            next_done += 1;
        }
        if next_done < USERS {
            let last = engine
                .status(&event, &tickets[USERS - 1], srv.handle.now())
                .unwrap();
            let p = last.status.position.unwrap();
            assert!(
                p < last_position_of_last || admitted_now.is_empty(),
                "position falls"
            );
            last_position_of_last = p;
        }
        // Buy and complete over HTTP; every tenth admitted user via the API
        // status document, to check the pass there too.
        for (i, pass) in admitted_now {
            let pass = if i % 10 == 0 {
                let s = status(&srv, "big", &tickets[i]).await;
                assert_eq!(s["state"], "admitted");
                s["pass"].as_str().unwrap().to_string()
            } else {
                pass
            };
            let h = srv
                .service_post(
                    "/v1/events/big/holds",
                    &json!({"user": format!("user-{i}"), "pass": pass,
                    "best": {"count": 1, "category": "R"}}),
                )
                .await;
            h.expect(201, None);
            let hid = h.json()["hold"].as_str().unwrap().to_string();
            srv.service_post(
                &format!("/v1/events/big/holds/{hid}/confirm"),
                &json!({"order": format!("o-{i}")}),
            )
            .await
            .expect(200, None);
            srv.call(
                Method::POST,
                &format!("/v1/events/big/queue/{}/complete", tickets[i]),
            )
            .service()
            .send()
            .await
            .expect(204, None);
        }
    }
    let doc = srv.get("/v1/events/big").await.json();
    assert_eq!(doc["served"], USERS as u64);
    assert_eq!(doc["sold"], USERS as u64);
    assert_eq!(doc["admitted"], 0);
    assert_eq!(doc["waiting"], 0);
    assert!(
        seconds >= (USERS as u64) / RATE,
        "not faster than the rate allows"
    );
}

/// `queue.poll_budget_per_s`: a default from the rate and line size, shown
/// in the event document; below the floor or over the maximum is a 400 that
/// names the field and creates nothing; a budget that binds stretches the
/// advice at the back of a long line.
#[tokio::test]
async fn the_poll_budget_has_a_floor_a_default_and_binds() {
    let srv = TestServer::start().await;
    let doc = create_event(&srv, "dflt", &small_event(Some(queue_cfg(1, 100)))).await;
    // 100/s, 1 000 000 in line: floor ⌈100 × (1 + ln 1e6)⌉ = 1 482; default
    // max(20 000, 2 × floor).
    assert_eq!(doc["queue"]["poll_budget_per_s"], 20_000);

    let mut low = queue_cfg(1, 100);
    low["poll_budget_per_s"] = json!(1_481);
    let r = srv
        .admin_put("/v1/events/low", &small_event(Some(low)))
        .await;
    r.expect(400, Some("bad_request"));
    let msg = r.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        msg.contains("queue.poll_budget_per_s") && msg.contains("1482"),
        "{msg}"
    );
    srv.get("/v1/events/low")
        .await
        .expect(404, Some("event_not_found"));

    let mut high = queue_cfg(1, 100);
    high["poll_budget_per_s"] = json!(10_000_001);
    srv.admin_put("/v1/events/high", &small_event(Some(high)))
        .await
        .expect(400, Some("bad_request"));

    // At the floor, with 3 000 in line, the back is told far more than 30 s.
    let mut tight = queue_cfg(1, 1);
    tight["max_waiting"] = json!(5_000);
    tight["poll_budget_per_s"] = json!(10);
    let doc = create_event(&srv, "tight", &small_event(Some(tight))).await;
    assert_eq!(doc["queue"]["poll_budget_per_s"], 10);
    srv.call(Method::POST, "/v1/events/tight/pause")
        .admin()
        .send()
        .await
        .expect(200, None);
    let mut last = Value::Null;
    for i in 0..3_000 {
        let r = srv
            .service_post("/v1/events/tight/queue", &json!({"user": format!("u{i}")}))
            .await;
        r.expect(201, None);
        last = r.json();
    }
    let back = last["poll_after_ms"].as_u64().unwrap_or(0);
    // ⌈(1 + ln 3000) / 10 × 3000⌉ s ≈ 2 702 s.
    assert!((2_600_000..2_800_000).contains(&back), "{back}");
    let r = srv
        .service_post("/v1/events/tight/queue", &json!({"user": "u0"}))
        .await;
    r.expect(200, None);
    let front = r.json();
    assert_eq!(front["position"], 1);
    assert!(
        front["poll_after_ms"].as_u64().unwrap_or(0) <= 2_000,
        "{front}"
    );
}

/// An event without a waiting room never issued a ticket: every ticket
/// path answers `404 ticket_not_found`, as for any id the server never
/// issued (`no_queue` is for joins, pause and resume).
#[tokio::test]
async fn tickets_of_an_event_without_a_room_are_not_found() {
    let srv = TestServer::start().await;
    create_event(&srv, "plain", &small_event(None)).await;
    let t = "/v1/events/plain/queue/AAAAAAAAAAAAAAAAAAAAAA";
    srv.get(t).await.expect(404, Some("ticket_not_found"));
    srv.get(&format!("{t}/stream"))
        .await
        .expect(404, Some("ticket_not_found"));
    srv.call(Method::DELETE, t)
        .send()
        .await
        .expect(404, Some("ticket_not_found"));
    srv.call(Method::POST, &format!("{t}/complete"))
        .service()
        .send()
        .await
        .expect(404, Some("ticket_not_found"));
}
