//! The access log: one event per request under the route pattern, and never
//! a credential, ticket, pass, hold id, user or body in any log line.
//!
//! The subscriber is the binary's JSON format, installed for this test's
//! thread only (`set_default`): `#[tokio::test]` runs a current-thread
//! runtime, so the server's tasks log on this thread, while other tests in
//! this binary run on theirs and are not captured.

use crate::common::*;
use http::Method;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::sync::Arc;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().clone()).expect("UTF-8 log");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
}

#[tokio::test]
async fn access_log_has_route_patterns_and_no_secrets() {
    let log = Captured::default();
    // Every level, so a debug line that leaked a secret would fail too.
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(log.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let srv = TestServer::start().await;
    let mut requests = 0;
    create_event(&srv, "logs", &small_event(Some(queue_cfg(5, 5)))).await;
    requests += 1;
    let user = "user-alice-4242";
    let joined = join(&srv, "logs", user).await;
    requests += 1;
    let ticket = joined["ticket"].as_str().unwrap().to_string();
    srv.advance(1_000);
    let st = status(&srv, "logs", &ticket).await;
    requests += 1;
    let pass = st["pass"]
        .as_str()
        .expect("admitted with a pass")
        .to_string();
    let idem = "idem-key-log-test-77";
    let held = srv
        .call(Method::POST, "/v1/events/logs/holds")
        .service()
        .header("idempotency-key", idem)
        .json(&json!({"user": user, "pass": pass, "seats": ["A-1-1"]}))
        .send()
        .await;
    held.expect(201, None);
    requests += 1;
    let hold = held.json()["hold"].as_str().unwrap().to_string();
    let hold_path = format!("/v1/events/logs/holds/{hold}");
    srv.call(Method::GET, &hold_path)
        .service()
        .send()
        .await
        .expect(200, None);
    requests += 1;
    let wrong = "wrong-bearer-token-9911";
    let denied = srv
        .call(Method::PUT, "/v1/events/logs")
        .bearer(wrong)
        .json(&small_event(None))
        .send()
        .await;
    assert!(denied.status == 401 || denied.status == 403);
    requests += 1;
    let stray = "/nowhere/stray-path-secret-5150";
    srv.get(stray).await.expect(404, None);
    requests += 1;
    srv.call(Method::PATCH, "/v1/events/logs")
        .admin()
        .send()
        .await
        .expect(405, None);
    requests += 1;
    srv.stop().await.expect("clean stop");

    let lines = log.lines();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "boxoffice::access")
        .collect();
    assert_eq!(access.len(), requests, "one access line per request");
    let seen: Vec<(String, String, u64)> = access
        .iter()
        .map(|l| {
            assert_eq!(l["level"], "INFO");
            assert!(l["duration_us"].is_u64(), "{l}");
            let client = l["client"].as_str().unwrap_or_default();
            assert!(client.starts_with("127.0.0.1:"), "{l}");
            (
                l["method"].as_str().unwrap_or_default().to_string(),
                l["route"].as_str().unwrap_or_default().to_string(),
                l["status"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let expected = [
        ("PUT", "/v1/events/{event}", 201),
        ("POST", "/v1/events/{event}/queue", 201),
        ("GET", "/v1/events/{event}/queue/{ticket}", 200),
        ("POST", "/v1/events/{event}/holds", 201),
        ("GET", "/v1/events/{event}/holds/{hold}", 200),
        ("PUT", "/v1/events/{event}", denied.status.into()),
        ("GET", "unmatched", 404),
        ("PATCH", "/v1/events/{event}", 405),
    ];
    let expected: Vec<(String, String, u64)> = expected
        .iter()
        .map(|(m, r, s)| (m.to_string(), r.to_string(), *s))
        .collect();
    assert_eq!(seen, expected);

    // Nothing secret or personal anywhere in the log, at any level.
    let text = log.text();
    let secret = std::str::from_utf8(SECRET).unwrap();
    for s in [
        ADMIN,
        SERVICE,
        secret,
        wrong,
        &ticket,
        &pass,
        &hold_path,
        user,
        idem,
        stray,
        "Bearer",
        "authorization",
    ] {
        assert!(!text.contains(s), "the log contains {s:?}:\n{text}");
    }
    // The server's own events are there too, in the same format.
    assert!(
        lines.iter().any(|l| l["target"] == "boxoffice::server"),
        "{text}"
    );
}
