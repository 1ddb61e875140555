//! Live status over Server-Sent Events: a client sees its position fall and
//! its admission arrive without polling; heartbeats; end of stream.

use crate::common::*;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{json, Value};
use std::time::Duration;

/// Reads `status` events off a live stream.
pub struct Events {
    body: Incoming,
    buf: String,
}

impl Events {
    pub async fn open(srv: &TestServer, path: &str) -> (u16, Option<String>, Events) {
        let req = Request::builder()
            .method(Method::GET)
            .uri(srv.url(path))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = srv.client.request(req).await.unwrap();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let status = resp.status().as_u16();
        (
            status,
            ct,
            Events {
                body: resp.into_body(),
                buf: String::new(),
            },
        )
    }

    /// The next status document, `None` at the end of the stream.
    pub async fn next(&mut self, within: Duration) -> Option<Value> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..end + 2).collect();
                let mut lines = raw.lines();
                assert_eq!(lines.next(), Some("event: status"), "{raw}");
                let data = lines.next().and_then(|l| l.strip_prefix("data: ")).unwrap();
                return Some(serde_json::from_str(data).unwrap());
            }
            let frame = tokio::time::timeout(within, self.body.frame())
                .await
                .expect("an event in time");
            match frame {
                None => return None,
                Some(f) => {
                    let f = f.unwrap();
                    if let Some(d) = f.data_ref() {
                        self.buf.push_str(std::str::from_utf8(d).unwrap());
                    }
                }
            }
        }
    }
}

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn stream_shows_position_falling_then_admission() {
    let srv = TestServer::start().await;
    create_event(&srv, "s", &small_event(Some(queue_cfg(1, 1)))).await;
    let a = join(&srv, "s", "a").await;
    srv.advance(1_000); // a is admitted and holds the only slot
    let b = join(&srv, "s", "b").await;
    let c = join(&srv, "s", "c").await;
    let tc = c["ticket"].as_str().unwrap().to_string();

    let (status, ct, mut ev) = Events::open(&srv, &format!("/v1/events/s/queue/{tc}/stream")).await;
    assert_eq!(status, 200);
    assert_eq!(ct.as_deref(), Some("text/event-stream"));
    let first = ev.next(WAIT).await.unwrap();
    assert_eq!(
        (first["state"].clone(), first["position"].clone()),
        (json!("waiting"), json!(2))
    );

    // b leaves: c moves up without asking.
    srv.call(
        Method::DELETE,
        &format!("/v1/events/s/queue/{}", b["ticket"].as_str().unwrap()),
    )
    .send()
    .await
    .expect(204, None);
    let moved = loop {
        let d = ev.next(WAIT).await.unwrap();
        if d["position"] == 1 {
            break d;
        }
    };
    assert_eq!(moved["state"], "waiting");

    // a completes; the next tick admits c, whose stream carries the pass and ends.
    srv.call(
        Method::POST,
        &format!(
            "/v1/events/s/queue/{}/complete",
            a["ticket"].as_str().unwrap()
        ),
    )
    .service()
    .send()
    .await
    .expect(204, None);
    srv.advance(1_000);
    let admitted = loop {
        let d = ev.next(WAIT).await.unwrap();
        if d["state"] == "admitted" {
            break d;
        }
    };
    assert!(admitted["pass"].as_str().unwrap().starts_with("v1."));
    assert!(
        ev.next(WAIT).await.is_none(),
        "the stream ends after admission"
    );
}

#[tokio::test]
async fn heartbeat_and_gauge() {
    let srv = TestServer::with(|s| s.heartbeat_interval = Duration::from_millis(100)).await;
    create_event(&srv, "h", &small_event(Some(queue_cfg(1, 1)))).await;
    join(&srv, "h", "a").await;
    srv.advance(1_000);
    let t = join(&srv, "h", "b").await;
    let path = format!(
        "/v1/events/h/queue/{}/stream",
        t["ticket"].as_str().unwrap()
    );
    let (_, _, mut ev) = Events::open(&srv, &path).await;
    let first = ev.next(WAIT).await.unwrap();
    // Nothing changes, yet status events keep coming (the shared heartbeat).
    for _ in 0..3 {
        let again = ev.next(Duration::from_secs(2)).await.unwrap();
        assert_eq!(again["ticket"], first["ticket"]);
    }
    let m = String::from_utf8(srv.get("/metrics").await.body.to_vec()).unwrap();
    assert!(m.contains("boxoffice_http_sse_open_streams 1"), "{m}");
    drop(ev);
    srv.get("/v1/events/h/queue/nope/stream")
        .await
        .expect(404, Some("ticket_not_found"));
}

#[tokio::test]
async fn streams_of_one_ticket_get_the_same_frames() {
    // A ticket's streams share one rendering per change (src/live.rs,
    // TicketFeed); each still gets every change, and a stream of another
    // ticket its own document.
    let srv = TestServer::start().await;
    create_event(&srv, "t", &small_event(Some(queue_cfg(1, 1)))).await;
    join(&srv, "t", "a").await;
    srv.advance(1_000);
    let b = join(&srv, "t", "b").await;
    let c = join(&srv, "t", "c").await;
    let path = |t: &Value| {
        format!(
            "/v1/events/t/queue/{}/stream",
            t["ticket"].as_str().unwrap()
        )
    };
    let (_, _, mut c1) = Events::open(&srv, &path(&c)).await;
    let (_, _, mut c2) = Events::open(&srv, &path(&c)).await;
    let (_, _, mut b1) = Events::open(&srv, &path(&b)).await;
    let first = (c1.next(WAIT).await.unwrap(), c2.next(WAIT).await.unwrap());
    assert_eq!(first.0, first.1);
    assert_eq!(first.0["position"], 2);
    assert_eq!(b1.next(WAIT).await.unwrap()["position"], 1);

    srv.call(
        Method::DELETE,
        &format!("/v1/events/t/queue/{}", b["ticket"].as_str().unwrap()),
    )
    .send()
    .await
    .expect(204, None);
    let moved = |d: &Value| d["position"] == 1;
    let mut got = Vec::new();
    for ev in [&mut c1, &mut c2] {
        let d = loop {
            let d = ev.next(WAIT).await.unwrap();
            if moved(&d) {
                break d;
            }
        };
        got.push(d);
    }
    assert_eq!(got[0], got[1]);
    assert_eq!(got[0]["ticket"], c["ticket"]);
    assert_eq!(got[0]["waiting"], 1);
    // (A heartbeat may resend the same document first: the driver's first
    // beat can fall after a stream opened.)
    let left = loop {
        let d = b1.next(WAIT).await.unwrap();
        if d["state"] != "waiting" {
            break d;
        }
    };
    assert_eq!(left["state"], "left");
    assert!(b1.next(WAIT).await.is_none(), "b's stream ends");
}
