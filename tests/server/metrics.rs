//! `/metrics`: every documented series from start, no series of deleted
//! ids, the waiting room's settings and phase, open connections, and
//! `--metrics-token`.

use crate::common::*;
use boxoffice::{ManualClock, Server, Settings};
use http::Method;
use serde_json::json;
use std::sync::Arc;

const METRICS_TOKEN: &str = "metrics-token-for-tests";

fn text(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[tokio::test]
async fn unlabelled_series_start_at_zero() {
    let srv = TestServer::start().await;
    let r = srv.get("/metrics").await;
    r.expect(200, None);
    let t = text(&r);
    for series in [
        "boxoffice_http_panics_total 0",
        "boxoffice_http_sse_open_streams 0",
        "boxoffice_queue_admissions_total 0",
        "boxoffice_queue_idle_drops_total 0",
        "boxoffice_queue_sessions_expired_total 0",
        "boxoffice_queue_rooms_opened_total 0",
        "boxoffice_seats_holds_expired_total 0",
        // Memory only: never the writer.
        "boxoffice_replication_lease_held 0",
        "boxoffice_replication_epoch 0",
        "boxoffice_http_open_connections{listener=\"gate\"} 0",
        // Seen missing without their registration at start (API.md:
        // every documented series present from start, at zero).
        "boxoffice_queue_polls_limited_total 0",
        "boxoffice_http_rate_limited_total{route=\"/v1/events/{event}/queue\"} 0",
        "boxoffice_http_rate_limited_total{route=\"gate\"} 0",
        "boxoffice_http_connections_refused_total{reason=\"per_client\"} 0",
        "boxoffice_http_sse_streams_cut_total{reason=\"max_streams\"} 0",
        "boxoffice_http_sse_streams_cut_total{reason=\"replaced\"} 0",
    ] {
        assert!(t.lines().any(|l| l == series), "{series} missing:\n{t}");
    }
    for family in [
        "boxoffice_queue_waiting",
        "boxoffice_queue_joins_total",
        "boxoffice_seats_free",
        "boxoffice_coupons_claims_total",
        "boxoffice_queue_capacity",
        "boxoffice_queue_admit_per_s",
        "boxoffice_queue_phase",
        "boxoffice_http_open_connections",
    ] {
        assert!(t.contains(&format!("# TYPE {family} ")), "{family}:\n{t}");
    }
}

/// The counters with a fixed label set show every label value of every
/// live event and coupon, at zero until counted (seen failing with the
/// `n > 0` filter that `Metrics::render` had).
#[tokio::test]
async fn labelled_series_of_a_new_event_and_coupon_start_at_zero() {
    let srv = TestServer::start().await;
    create_event(&srv, "fresh", &small_event(Some(queue_cfg(10, 3)))).await;
    srv.admin_put("/v1/coupons/fresh-c", &json!({"stock": 5}))
        .await
        .expect(201, None);
    let t = text(&srv.get("/metrics").await);
    let mut want = Vec::new();
    for kind in ["new", "rejoin"] {
        want.push(format!(
            "boxoffice_queue_joins_total{{event=\"fresh\",kind=\"{kind}\"}}"
        ));
    }
    for outcome in [
        "held",
        "replayed",
        "unavailable",
        "unknown_seat",
        "limit_exceeded",
        "pass_refused",
        "key_reused",
        "other",
    ] {
        want.push(format!(
            "boxoffice_seats_holds_total{{event=\"fresh\",outcome=\"{outcome}\"}}"
        ));
    }
    for step in ["confirm", "extend", "release"] {
        want.push(format!(
            "boxoffice_seats_hold_steps_total{{event=\"fresh\",step=\"{step}\"}}"
        ));
    }
    for outcome in [
        "claimed",
        "replayed",
        "already_claimed",
        "sold_out",
        "not_open",
        "key_reused",
        "other",
    ] {
        want.push(format!(
            "boxoffice_coupons_claims_total{{coupon=\"fresh-c\",outcome=\"{outcome}\"}}"
        ));
    }
    for series in &want {
        assert_eq!(value(&t, series), Some(0.0), "{series}:\n{t}");
    }
    // Counted, a value moves and the others stay at zero.
    join(&srv, "fresh", "u1").await;
    let t = text(&srv.get("/metrics").await);
    assert_eq!(value(&t, &want[0]), Some(1.0), "{t}");
    assert_eq!(value(&t, &want[1]), Some(0.0), "{t}");
}

/// The value of the one line `series` (name and labels exactly as
/// rendered), or None when there is no such line.
fn value(t: &str, series: &str) -> Option<f64> {
    t.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn phases(t: &str, event: &str) -> Vec<(String, f64)> {
    ["prequeue", "open", "paused", "closed"]
        .iter()
        .map(|p| {
            let s = format!("boxoffice_queue_phase{{event=\"{event}\",phase=\"{p}\"}}");
            let v = value(t, &s).unwrap_or_else(|| panic!("{s} missing:\n{t}"));
            (p.to_string(), v)
        })
        .collect()
}

fn in_phase(t: &str, event: &str, want: &str) {
    for (p, v) in phases(t, event) {
        assert_eq!(v, f64::from(u8::from(p == want)), "{event} {p}:\n{t}");
    }
}

#[tokio::test]
async fn room_settings_and_phase_follow_the_event() {
    let srv = TestServer::start().await;
    create_event(&srv, "room", &small_event(Some(queue_cfg(10, 3)))).await;
    create_event(&srv, "plain", &small_event(None)).await;
    let t = text(&srv.get("/metrics").await);
    assert_eq!(
        value(&t, "boxoffice_queue_capacity{event=\"room\"}"),
        Some(10.0)
    );
    assert_eq!(
        value(&t, "boxoffice_queue_admit_per_s{event=\"room\"}"),
        Some(3.0)
    );
    in_phase(&t, "room", "open");
    // No waiting room: no settings to measure against, but a phase.
    assert!(
        !t.contains("boxoffice_queue_capacity{event=\"plain\"}"),
        "{t}"
    );
    assert!(
        !t.contains("boxoffice_queue_admit_per_s{event=\"plain\"}"),
        "{t}"
    );
    in_phase(&t, "plain", "open");

    srv.call(Method::POST, "/v1/events/room/pause")
        .admin()
        .send()
        .await
        .expect(200, None);
    in_phase(&text(&srv.get("/metrics").await), "room", "paused");
    srv.call(Method::POST, "/v1/events/room/resume")
        .admin()
        .send()
        .await
        .expect(200, None);

    // Replaced, the room's new settings show at once.
    srv.admin_put("/v1/events/room", &small_event(Some(queue_cfg(25, 7))))
        .await
        .expect(200, None);
    let t = text(&srv.get("/metrics").await);
    assert_eq!(
        value(&t, "boxoffice_queue_capacity{event=\"room\"}"),
        Some(25.0)
    );
    assert_eq!(
        value(&t, "boxoffice_queue_admit_per_s{event=\"room\"}"),
        Some(7.0)
    );
    in_phase(&t, "room", "open");

    // A pre-queue until opens_at.
    let mut later = small_event(Some(queue_cfg(5, 5)));
    later["opens_at"] = json!("2026-12-01T11:00:00Z");
    create_event(&srv, "later", &later).await;
    in_phase(&text(&srv.get("/metrics").await), "later", "prequeue");

    for id in ["room", "plain", "later"] {
        srv.call(Method::DELETE, &format!("/v1/events/{id}"))
            .admin()
            .send()
            .await
            .expect(204, None);
    }
    let t = text(&srv.get("/metrics").await);
    for gone in ["\"room\"", "\"plain\"", "\"later\""] {
        assert!(!t.contains(gone), "stale series of {gone}:\n{t}");
    }
    for family in [
        "boxoffice_queue_capacity",
        "boxoffice_queue_admit_per_s",
        "boxoffice_queue_phase",
    ] {
        assert!(
            t.contains(&format!("# TYPE {family} gauge")),
            "{family}:\n{t}"
        );
    }
}

#[tokio::test]
async fn open_connections_count_keep_alive_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const API: &str = "boxoffice_http_open_connections{listener=\"api\"}";
    let srv = TestServer::start().await;
    // The test client's own pooled connection is counted too: measure from it.
    let open = || async { value(&text(&srv.get("/metrics").await), API).expect("api line") };
    let before = open().await;
    assert!(before >= 1.0, "the scrape's own connection: {before}");

    // A second connection, kept alive after its answer.
    let mut tcp = tokio::net::TcpStream::connect(srv.addr)
        .await
        .expect("connect");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 512];
    let n = tcp.read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    assert_eq!(open().await, before + 1.0, "a keep-alive connection");

    // A live stream gives its connection's slot back: counted as a stream,
    // not as a connection.
    create_event(&srv, "conns", &small_event(Some(queue_cfg(1, 1)))).await;
    // u0 takes the one place (once the driver admits it), so u1 waits and
    // its stream stays open: a stream of an admitted ticket ends at once.
    join(&srv, "conns", "u0").await;
    let joined = join(&srv, "conns", "u1").await;
    assert_eq!(joined["state"], "waiting", "{joined}");
    let ticket = joined["ticket"].as_str().expect("ticket").to_string();
    let mut stream = tokio::net::TcpStream::connect(srv.addr)
        .await
        .expect("connect");
    stream
        .write_all(
            format!("GET /v1/events/conns/queue/{ticket}/stream HTTP/1.1\r\nHost: t\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("write");
    let n = stream.read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    let t = text(&srv.get("/metrics").await);
    assert_eq!(
        value(&t, "boxoffice_http_sse_open_streams"),
        Some(1.0),
        "{t}"
    );
    assert_eq!(
        value(&t, API),
        Some(before + 1.0),
        "the stream is not a connection"
    );
    drop(stream);

    // Closed, it is uncounted once the server sees the end.
    drop(tcp);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let now = open().await;
        if now == before {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {now} open");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn deleted_events_leave_no_series() {
    let srv = TestServer::start().await;
    for i in 0..200 {
        let id = format!("gone-{i}");
        create_event(&srv, &id, &small_event(Some(queue_cfg(10, 10)))).await;
        join(&srv, &id, "u1").await;
        let h = srv
            .service_post(
                &format!("/v1/events/{id}/holds"),
                &json!({"user": "u1", "seats": ["A-1-1"]}),
            )
            .await;
        // A queued event needs a pass: a refused hold still counts an outcome.
        assert!(h.status == 403 || h.status == 201, "{}", h.status);
    }
    let t = text(&srv.get("/metrics").await);
    assert!(
        t.contains("boxoffice_queue_joins_total{event=\"gone-7\",kind=\"new\"} 1"),
        "{t}"
    );
    assert!(t.contains("event=\"gone-199\""));
    for i in 0..200 {
        srv.call(Method::DELETE, &format!("/v1/events/gone-{i}"))
            .admin()
            .send()
            .await
            .expect(204, None);
    }
    let t = text(&srv.get("/metrics").await);
    assert!(!t.contains("gone-"), "stale series:\n{t}");
    // Re-created, an id starts over: its series are back, at zero.
    create_event(&srv, "gone-7", &small_event(Some(queue_cfg(10, 10)))).await;
    let t = text(&srv.get("/metrics").await);
    assert!(
        t.lines()
            .any(|l| l == "boxoffice_queue_joins_total{event=\"gone-7\",kind=\"new\"} 0"),
        "{t}"
    );
    assert!(!t.contains("gone-8"), "stale series:\n{t}");
}

#[tokio::test]
async fn metrics_token_is_required_when_set() {
    let srv = TestServer::with(|s| s.metrics_token = Some(METRICS_TOKEN.into())).await;
    let get = |token: Option<&'static str>| {
        let mut c = srv.call(Method::GET, "/metrics");
        if let Some(t) = token {
            c = c.bearer(t);
        }
        c.send()
    };
    get(None).await.expect(401, Some("unauthorized"));
    get(Some("wrong-token-of-some-length"))
        .await
        .expect(401, Some("unauthorized"));
    get(Some(ADMIN)).await.expect(401, Some("unauthorized"));
    get(Some(SERVICE)).await.expect(401, Some("unauthorized"));
    let r = get(Some(METRICS_TOKEN)).await;
    r.expect(200, None);
    assert!(text(&r).contains("boxoffice_http_panics_total"));
    let r = srv.call(Method::HEAD, "/metrics").send().await;
    assert_eq!(r.status, 401);
    // Health checks stay open.
    srv.get("/healthz").await.expect(200, None);
}

#[test]
fn metrics_token_is_at_least_16_bytes() {
    let mut s = Settings::new(ADMIN, SERVICE, SECRET);
    s.metrics_token = Some("short".into());
    let clock = Arc::new(ManualClock::new(start_time()));
    assert!(Server::new(s, clock).is_err());
}
