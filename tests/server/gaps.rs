//! Contract gaps found by trying the API: deletes never erase sales, HEAD
//! wherever GET works, a second complete, extends and sold holds.

use crate::common::*;
use crate::holds::admitted;
use http::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn extend(srv: &TestServer, id: &str, ttl_s: u32) -> Resp {
    srv.service_post(
        &format!("/v1/events/e/holds/{id}/extend"),
        &json!({"ttl_s": ttl_s}),
    )
    .await
}

fn plain_event() -> serde_json::Value {
    small_event(None)
}

#[tokio::test]
async fn delete_refuses_while_held_or_sold() {
    let srv = TestServer::start().await;
    create_event(&srv, "e", &plain_event()).await;
    let h = srv
        .service_post(
            "/v1/events/e/holds",
            &json!({"user": "u1", "seats": ["A-1-1"]}),
        )
        .await;
    h.expect(201, None);
    let id = h.json()["hold"].as_str().unwrap().to_string();
    let delete = || srv.call(Method::DELETE, "/v1/events/e").admin().send();
    delete().await.expect(409, Some("event_in_use"));
    srv.service_post(
        &format!("/v1/events/e/holds/{id}/confirm"),
        &json!({"order": "o-1"}),
    )
    .await
    .expect(200, None);
    delete().await.expect(409, Some("event_in_use"));
    // The sale is still there.
    assert_eq!(srv.get("/v1/events/e/seats").await.json()["sold"], 1);
    // Nothing held or sold: the delete goes through.
    create_event(&srv, "f", &plain_event()).await;
    srv.call(Method::DELETE, "/v1/events/f")
        .admin()
        .send()
        .await
        .expect(204, None);
}

#[tokio::test]
async fn head_works_wherever_get_does() {
    let srv = TestServer::start().await;
    create_event(&srv, "e", &plain_event()).await;
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/events/e",
        "/v1/events/e/seats",
        "/v1/events/nope",
    ] {
        let get = srv.get(path).await;
        let head = srv.call(Method::HEAD, path).send().await;
        assert_eq!(head.status, get.status, "{path}");
        assert!(head.body.is_empty(), "{path}: no body");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{path}"
        );
    }
    // A POST-only path still says what it accepts.
    let r = srv.call(Method::HEAD, "/v1/events/e/pause").send().await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    // On the wire: no body follows the HEAD answer, so the next answer on
    // the same connection starts right after its headers.
    let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(
        b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("in time")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    let (first, rest) = text.split_once("\r\n\r\n").expect("headers");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
}

#[tokio::test]
async fn a_second_complete_is_not_admitted() {
    let srv = TestServer::start().await;
    create_event(&srv, "e", &small_event(Some(queue_cfg(10, 10)))).await;
    let s = admitted(&srv, "e", "u1").await;
    let ticket = s["ticket"].as_str().unwrap().to_string();
    let complete = || {
        srv.call(
            Method::POST,
            &format!("/v1/events/e/queue/{ticket}/complete"),
        )
        .service()
        .send()
    };
    complete().await.expect(204, None);
    complete().await.expect(409, Some("not_admitted"));
}

#[tokio::test]
async fn extends_never_shorten_and_sold_holds_say_sold() {
    let srv = TestServer::start().await;
    create_event(&srv, "e", &plain_event()).await;
    let h = srv
        .service_post(
            "/v1/events/e/holds",
            &json!({"user": "u1", "seats": ["A-1-1"]}),
        )
        .await;
    h.expect(201, None);
    let doc = h.json();
    let id = doc["hold"].as_str().unwrap().to_string();
    // ttl_s 60: asking for 5 s keeps the 60 s left.
    let r = extend(&srv, &id, 5).await;
    r.expect(200, None);
    assert_eq!(r.json()["expires_at"], doc["expires_at"]);
    assert_eq!(r.json()["expires_in_s"], 60);
    srv.advance(10_000);
    let r = extend(&srv, &id, 100).await;
    r.expect(200, None);
    assert_eq!(r.json()["expires_in_s"], 100);

    let c = srv
        .service_post(
            &format!("/v1/events/e/holds/{id}/confirm"),
            &json!({"order": "o-1"}),
        )
        .await;
    c.expect(200, None);
    let sold = c.json();
    assert_eq!(sold["state"], "sold");
    // Every hold document has the contract's fields; a sale's expiry is null.
    assert!(sold["expires_at"].is_null(), "{sold}");
    assert!(sold["expires_in_s"].is_null(), "{sold}");
    assert!(sold.get("expires_at").is_some(), "{sold}");
    let g = srv
        .call(Method::GET, &format!("/v1/events/e/holds/{id}"))
        .service()
        .send()
        .await;
    assert!(g.json().get("expires_at").is_some_and(|v| v.is_null()));

    let r = extend(&srv, &id, 30).await;
    r.expect(409, Some("hold_sold"));
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sold"));
    let r = srv
        .call(Method::DELETE, &format!("/v1/events/e/holds/{id}"))
        .service()
        .send()
        .await;
    r.expect(409, Some("hold_sold"));
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sold"));
}
