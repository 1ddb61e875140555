//! The gate in a real browser (issue 11): headless Chromium (Debian's, via
//! testkit::browser) in front of boxoffice's gate and the example booking
//! backend, everything in-process on loopback, the engine on a manual clock.
//!
//! Three people came first (plain HTTP, no cookies): one is in the shop
//! (capacity 1), two wait. A Korean visitor (A)
//! and an English one (B) open the site and land on the waiting page; the
//! line moves, and B sees its position fall without reloading; B's reload
//! keeps the place and ticket; B switches to Korean and back; A's turn
//! comes, A is sent on to the seat map by the page itself, holds a seat,
//! pays with a coupon and is confirmed; the backend's `Boxoffice-Command:
//! complete` frees A's slot, so B (capacity 1) is let in next. Screenshots
//! land in target/browser-artifacts/ (`wait-ko`, `wait-en`, `your-turn`,
//! `seat-map`, `confirmed`, `b-seat-map`).
//!
//! Skipped when the browser is not installed, unless
//! BOXOFFICE_REQUIRE_BROWSER=1 (make test).

// The server harness is shared with tests/server; this test uses part of it.
#[allow(dead_code)]
#[path = "server/common.rs"]
mod common;

#[path = "../examples/booking/app.rs"]
mod booking;

use boxoffice_testkit::browser::{
    self,
    fantoccini::{Client, Locator},
    SessionOptions,
};
use bytes::Bytes;
use common::{TestServer, SERVICE};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const EVENT: &str = "gate-browser";
const COUPON: &str = "gate-browser-coupon";

/// Bound of every wait on the browser: generous for a loaded 2-core box,
/// and a timeout error shows the URL and the page.
const WAIT: Duration = Duration::from_secs(15);

/// Viewport of both visitors (and the screenshots): a laptop window.
const WIDTH: u32 = 1024;
const HEIGHT: u32 = 768;

/// Someone who is not a browser: a page script's API call through the gate,
/// no cookies. Answers the ticket the gate's 429 gave them.
async fn other_visitor(srv: &TestServer) -> String {
    let gate = srv.gate.expect("the gate listens");
    let req = Request::builder()
        .method(Method::GET)
        .uri(format!("http://{gate}/api/tickets"))
        .header("accept", "application/json")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(10), srv.client.request(req))
        .await
        .expect("the gate answers in time")
        .expect("gate request");
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get("retry-after").is_some();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 429, "a visitor without a pass waits: {text}");
    assert!(retry_after, "429 with Retry-After");
    let doc: Value = serde_json::from_slice(&body).expect("the status document");
    assert_eq!(doc["state"], "waiting", "{doc}");
    doc["ticket"].as_str().expect("a ticket").to_string()
}

/// Ends a session the way a backend without the header would: the service
/// API's `complete`.
async fn complete(srv: &TestServer, ticket: &str) {
    srv.call(
        Method::POST,
        &format!("/v1/events/{EVENT}/queue/{ticket}/complete"),
    )
    .service()
    .send()
    .await
    .expect(204, None);
}

/// A ticket's state, from the public status API.
async fn state_of(srv: &TestServer, ticket: &str) -> String {
    let r = srv.get(&format!("/v1/events/{EVENT}/queue/{ticket}")).await;
    r.expect(200, None);
    r.json()["state"].as_str().unwrap_or("?").to_string()
}

async fn text_is(c: &Client, css: &str, want: &str, who: &str) {
    let got = browser::wait_for_text(c, css, |t| t.trim() == want, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{who}: `{css}` should read {want:?}: {e}"));
    assert_eq!(got.trim(), want, "{who}: {css}");
}

async fn lang_is(c: &Client, want: &str, who: &str) {
    browser::wait_for_attr(c, "html", "lang", |l| l == Some(want), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{who}: html[lang={want}]: {e}"));
}

async fn on_wait_page(c: &Client, who: &str) -> String {
    browser::wait_for_url(c, |u| u.contains("/_boxoffice/wait"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{who} lands on the waiting page: {e}"))
}

/// Waits until the page itself left the waiting room for the backend's seat
/// map (no reload, no click of ours).
async fn on_seat_map(c: &Client, who: &str) {
    let url = browser::wait_for_url(c, |u| !u.contains("/_boxoffice/"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{who} is sent on to the site: {e}"));
    assert!(
        url.ends_with('/'),
        "{who} goes back where it was going: {url}"
    );
    browser::wait_for_attr(c, "#seat-form", "id", |v| v == Some("seat-form"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{who} sees the seat map: {e}"));
    let user = browser::wait_for_text(c, "#user", |t| t.contains("anon-"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{who}: the backend knows the gate's user: {e}"));
    assert!(user.contains("anon-"), "{user}");
}

async fn click(c: &Client, css: &str, who: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{who}: find {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{who}: click {css}: {e}"));
}

/// The ticket the page was rendered for (its `#bo-doc` block).
async fn doc_ticket(c: &Client) -> String {
    let v = c
        .execute(
            "return JSON.parse(document.getElementById('bo-doc').textContent).ticket;",
            vec![],
        )
        .await
        .expect("#bo-doc");
    v.as_str().expect("a ticket in #bo-doc").to_string()
}

async fn ticket_cookie(c: &Client) -> String {
    // HttpOnly keeps it from the page's scripts, not from WebDriver.
    let cookie = c
        .get_named_cookie("bo_ticket")
        .await
        .expect("the bo_ticket cookie");
    assert_eq!(cookie.http_only(), Some(true), "bo_ticket is HttpOnly");
    let seen_by_scripts = c
        .execute("return document.cookie;", vec![])
        .await
        .expect("document.cookie");
    assert!(
        !seen_by_scripts
            .as_str()
            .unwrap_or_default()
            .contains("bo_ticket"),
        "no script reads the ticket: {seen_by_scripts}"
    );
    cookie.value().to_string()
}

fn has_hangul(s: &str) -> bool {
    s.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
}

async fn shot(c: &Client, name: &str) {
    let p = browser::screenshot(c, name)
        .await
        .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
    eprintln!("screenshot: {}", p.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_wait_move_up_and_book_through_the_gate() {
    let t0 = Instant::now();
    // Blocking start of chromedriver, before the servers have work to do.
    let Some(b) = browser::require_or_skip() else {
        return;
    };

    // The backend's address first: the gate is pointed at it, and the
    // backend at the server's API, which only exists once started.
    let backend_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the backend");
    let backend_addr = backend_listener.local_addr().expect("backend addr");
    let srv = TestServer::gated(EVENT, &format!("http://{backend_addr}"), |s| {
        // Every visitor comes from 127.0.0.1 (the join limit is already off).
        s.limits.poll_rate_per_s = 0;
    })
    .await;
    let gate = srv.gate.expect("the gate listens");
    srv.admin_put(
        &format!("/v1/events/{EVENT}"),
        &json!({
            "name": "Gate browser night",
            "queue": {"capacity": 1, "admit_per_s": 1, "session_ttl_s": 600,
                      "idle_timeout_s": 86400, "identity": "anonymous", "prequeue": "fifo"},
            "seats": [
                {"section": "A", "row": "1", "first": 1, "last": 8, "category": "VIP"},
                {"section": "A", "row": "2", "first": 1, "last": 8, "category": "R"}
            ],
            "holds": {"ttl_s": 300, "max_ttl_s": 600, "max_seats_per_user": 4}
        }),
    )
    .await
    .expect(201, None);
    let coupon = srv
        .admin_put(
            &format!("/v1/coupons/{COUPON}"),
            &json!({"stock": 3, "per_user": 1}),
        )
        .await;
    assert!(
        coupon.status == 201 || coupon.status == 200,
        "coupon: {} {:?}",
        coupon.status,
        coupon.body
    );
    let cfg = booking::Config {
        boxoffice: format!("http://{}", srv.addr),
        service_token: SERVICE.into(),
        event: EVENT.into(),
        coupon: COUPON.into(),
        fail_rate: 0.0,
    };
    let (stop_backend, backend_stopped) = oneshot::channel::<()>();
    let backend = tokio::spawn(booking::serve(backend_listener, cfg, async {
        let _ = backend_stopped.await;
    }));
    let site = format!("http://{gate}/");

    // Three people came before our visitors: the first takes the free slot
    // (capacity 1) at the next admission, the other two wait.
    let first = other_visitor(&srv).await;
    let second = other_visitor(&srv).await;
    let third = other_visitor(&srv).await;
    srv.advance(1_000);
    assert_eq!(state_of(&srv, &first).await, "admitted");
    assert_eq!(state_of(&srv, &second).await, "waiting");
    assert_eq!(state_of(&srv, &third).await, "waiting");

    let (a, bb) = tokio::join!(
        b.session(SessionOptions::korean().size(WIDTH, HEIGHT)),
        b.session(SessionOptions::english().size(WIDTH, HEIGHT))
    );
    let (a, bb) = (a.expect("ko session"), bb.expect("en session"));
    let ready = t0.elapsed();

    // A (Korean) opens the site: third in line, on the page in Korean.
    a.goto(&site).await.expect("A opens the site");
    on_wait_page(&a, "A").await;
    lang_is(&a, "ko", "A").await;
    text_is(&a, "#bo-position", "3", "A").await;
    text_is(&a, "#bo-ahead", "2", "A").await;
    let a_line = browser::wait_for_text(&a, "#bo-line", |_| true, WAIT)
        .await
        .expect("A's line card");
    assert!(has_hangul(&a_line), "A reads Korean: {a_line:?}");
    shot(&a, "wait-ko").await;
    let a_ticket = ticket_cookie(&a).await;
    assert_eq!(doc_ticket(&a).await, a_ticket);

    // B (English): fourth.
    bb.goto(&site).await.expect("B opens the site");
    on_wait_page(&bb, "B").await;
    lang_is(&bb, "en", "B").await;
    text_is(&bb, "#bo-position", "4", "B").await;
    text_is(&bb, "#bo-ahead", "3", "B").await;
    let b_line = browser::wait_for_text(&bb, "#bo-line", |_| true, WAIT)
        .await
        .expect("B's line card");
    assert!(!has_hangul(&b_line), "B reads English: {b_line:?}");
    shot(&bb, "wait-en").await;
    let b_ticket = ticket_cookie(&bb).await;
    assert_ne!(a_ticket, b_ticket, "two visitors, two places");
    let b_url = bb.current_url().await.expect("B's url").to_string();

    // The line moves: each page follows it live (no reload).
    complete(&srv, &first).await;
    srv.advance(1_000); // `second` is let in
    text_is(&bb, "#bo-position", "3", "B, live").await;
    text_is(&bb, "#bo-ahead", "2", "B, live").await;
    text_is(&a, "#bo-position", "2", "A, live").await;
    complete(&srv, &second).await;
    srv.advance(1_000); // `third` is let in
    text_is(&bb, "#bo-position", "2", "B, live").await;
    text_is(&a, "#bo-position", "1", "A, live").await;
    assert_eq!(
        bb.current_url().await.expect("B's url").to_string(),
        b_url,
        "B's page moved without a reload"
    );

    // A refresh keeps the place.
    bb.refresh().await.expect("B reloads");
    text_is(&bb, "#bo-position", "2", "B after reload").await;
    assert_eq!(ticket_cookie(&bb).await, b_ticket, "same ticket cookie");
    assert_eq!(doc_ticket(&bb).await, b_ticket, "same ticket on the page");

    // The language switch: Korean, then back to English.
    click(&bb, "a[hreflang=\"ko\"]", "B").await;
    lang_is(&bb, "ko", "B switched").await;
    text_is(&bb, "#bo-position", "2", "B in Korean").await;
    let ko_line = browser::wait_for_text(&bb, "#bo-line", has_hangul, WAIT)
        .await
        .expect("B reads Korean");
    assert!(has_hangul(&ko_line));
    click(&bb, "a[hreflang=\"en\"]", "B").await;
    lang_is(&bb, "en", "B switched back").await;
    text_is(&bb, "#bo-position", "2", "B in English").await;
    let en_line = browser::wait_for_text(&bb, "#bo-line", |t| !has_hangul(t), WAIT)
        .await
        .expect("B reads English again");
    assert!(!has_hangul(&en_line));
    assert_eq!(
        ticket_cookie(&bb).await,
        b_ticket,
        "the switch kept the place"
    );
    let moved = t0.elapsed();

    // A's turn: the alert, then the page goes on to the seat map by itself.
    complete(&srv, &third).await;
    srv.advance(1_000);
    let alert = browser::wait_for_text(&a, "#bo-alert", |t| !t.trim().is_empty(), WAIT)
        .await
        .expect("A is told it is their turn");
    assert!(has_hangul(&alert), "in Korean: {alert:?}");
    // The page waits a moment before it goes on: try to catch it.
    match browser::screenshot(&a, "your-turn").await {
        Ok(p) => eprintln!("screenshot: {}", p.display()),
        Err(e) => eprintln!("your-turn screenshot missed: {e}"),
    }
    text_is(&bb, "#bo-position", "1", "B, next").await;
    on_seat_map(&a, "A").await;
    shot(&a, "seat-map").await;

    // A holds a free seat, pays with the coupon and is confirmed.
    let seat_box = a
        .find(Locator::Css("#seat-form input[name=seat]:not([disabled])"))
        .await
        .expect("a free seat");
    let seat = seat_box
        .attr("value")
        .await
        .expect("seat value")
        .expect("a seat id");
    seat_box.click().await.expect("A picks a seat");
    click(&a, "#hold-selected", "A").await;
    let held = browser::wait_for_text(&a, "#hold-seats", |t| t.contains(&seat), WAIT)
        .await
        .expect("A's checkout shows the held seat");
    assert!(held.contains(&seat), "{held}");
    click(&a, "#use-coupon", "A").await;
    click(&a, "#pay", "A").await;
    let confirmed = browser::wait_for_text(&a, "#confirmed-seats", |t| t.contains(&seat), WAIT)
        .await
        .expect("A is confirmed");
    assert!(confirmed.contains(&seat), "{confirmed}");
    browser::wait_for_text(&a, "#confirmed-coupon", |t| t.contains(COUPON), WAIT)
        .await
        .expect("the coupon was applied");
    shot(&a, "confirmed").await;

    // The backend said `complete`: A's slot is free, and B (capacity 1) is
    // let in at the next admission.
    srv.advance(1_000);
    let b_alert = browser::wait_for_text(&bb, "#bo-alert", |t| !t.trim().is_empty(), WAIT)
        .await
        .expect("B is told it is their turn");
    assert!(!has_hangul(&b_alert), "in English: {b_alert:?}");
    on_seat_map(&bb, "B").await;
    let taken = format!("#seat-{seat}");
    browser::wait_for_attr(&bb, &taken, "disabled", |d| d.is_some(), WAIT)
        .await
        .expect("B sees A's seat taken");
    shot(&bb, "b-seat-map").await;

    // The API agrees: A's seat is sold, B is the one admitted.
    let mut parts = seat.splitn(3, '-');
    let (section, row, n) = (
        parts.next().expect("section"),
        parts.next().expect("row"),
        parts
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .expect("n"),
    );
    let seats = srv
        .get(&format!("/v1/events/{EVENT}/seats?section={section}"))
        .await;
    seats.expect(200, None);
    let rows = seats.json()["rows"].clone();
    let status = rows
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["row"] == row))
        .expect("A's row");
    let first_n = status["first"].as_u64().expect("first") as usize;
    let letter = status["status"]
        .as_str()
        .and_then(|s| s.chars().nth(n - first_n));
    assert_eq!(letter, Some('S'), "{seat} is sold: {status}");
    let ev = srv.get(&format!("/v1/events/{EVENT}")).await.json();
    assert_eq!(ev["admitted"], 1, "only B is in the shop: {ev}");
    assert_eq!(ev["sold"], 1, "{ev}");
    let pages = t0.elapsed();

    a.close().await.expect("close A");
    bb.close().await.expect("close B");
    drop(b);
    let _ = stop_backend.send(());
    tokio::time::timeout(Duration::from_secs(10), backend)
        .await
        .expect("the backend stops in time")
        .expect("backend task")
        .expect("the backend served without error");
    srv.stop().await.expect("server stops");
    eprintln!(
        "gate_browser: browser and servers ready {ready:?}, line moved {moved:?}, \
         booked and B in {pages:?}, all stopped {:?}",
        t0.elapsed()
    );
}
