//! `/metrics`: every documented series from start, no series of deleted
//! ids, and `--metrics-token`.

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
    ] {
        assert!(t.lines().any(|l| l == series), "{series} missing:\n{t}");
    }
    for family in [
        "boxoffice_queue_waiting",
        "boxoffice_queue_joins_total",
        "boxoffice_seats_free",
        "boxoffice_coupons_claims_total",
    ] {
        assert!(t.contains(&format!("# TYPE {family} ")), "{family}:\n{t}");
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
    // Re-created, an id starts over.
    create_event(&srv, "gone-7", &small_event(Some(queue_cfg(10, 10)))).await;
    let t = text(&srv.get("/metrics").await);
    assert!(
        !t.contains("boxoffice_queue_joins_total{event=\"gone-7\""),
        "{t}"
    );
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
