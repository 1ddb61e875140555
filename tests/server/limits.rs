//! Abuse limits and lifecycle: body size, join rate limit, header timeout,
//! connection cap, graceful shutdown.

use crate::common::*;
use crate::sse::Events;
use http::Method;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn oversized_bodies_are_413() {
    let srv = TestServer::start().await;
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(70 * 1024));
    srv.call(Method::PUT, "/v1/events/e1")
        .admin()
        .raw(Some("application/json"), big.clone())
        .send()
        .await
        .expect(413, Some("payload_too_large"));
    // Without Content-Length (chunked), the limit holds while reading.
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    let head = format!(
        "PUT /v1/coupons/c1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..20 {
        let chunk = "a".repeat(8 * 1024);
        let msg = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        if tcp.write_all(msg.as_bytes()).await.is_err() {
            break;
        }
    }
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    srv.get("/v1/coupons/c1")
        .await
        .expect(404, Some("coupon_not_found"));
}

#[tokio::test]
async fn joins_are_rate_limited_per_ip() {
    let srv = TestServer::with(|s| {
        s.limits.join_rate_per_s = 2;
        s.limits.join_burst = 2;
    })
    .await;
    create_event(&srv, "q", &small_event(Some(queue_cfg(5, 5)))).await;
    join(&srv, "q", "a").await;
    join(&srv, "q", "b").await;
    let r = srv
        .public_post("/v1/events/q/queue", &join_body("q", "c"))
        .await;
    r.expect(429, Some("too_many_requests"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=1).contains(&retry), "{retry}");
    // Other endpoints are not limited.
    srv.get("/v1/events/q").await.expect(200, None);
    srv.clock.advance_ms(1_000);
    join(&srv, "q", "c").await;
    let m = String::from_utf8(srv.get("/metrics").await.body.to_vec()).unwrap();
    assert!(m.contains("boxoffice_http_rate_limited_total{route=\"/v1/events/{event}/queue\"} 1"));
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let srv = TestServer::with(|s| s.limits.header_read_timeout = Duration::from_millis(200)).await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let r = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("closed in time");
    // Closed (0 bytes), reset, or a 408: never an answer to the half request.
    if let Ok(n) = r {
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    }
}

#[tokio::test]
async fn connections_are_capped() {
    let srv = TestServer::with(|s| s.limits.max_connections = 2).await;
    let a = TcpStream::connect(srv.addr).await.unwrap();
    let b = TcpStream::connect(srv.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let early = tokio::time::timeout(Duration::from_millis(300), c.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the third connection waits while two are open"
    );
    drop(a);
    drop(b);
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn graceful_shutdown_closes_streams_and_exits() {
    let mut srv = TestServer::start().await;
    create_event(&srv, "g", &small_event(Some(queue_cfg(1, 1)))).await;
    join(&srv, "g", "a").await;
    srv.advance(1_000);
    let t = join(&srv, "g", "b").await;
    let path = format!(
        "/v1/events/g/queue/{}/stream",
        t["ticket"].as_str().unwrap()
    );
    let (_, _, mut ev) = Events::open(&srv, &path).await;
    ev.next(Duration::from_secs(5)).await.unwrap();
    srv.trigger_shutdown();
    // A frame already on its way may still arrive; then the stream ends.
    let mut frames = 0;
    while ev.next(Duration::from_secs(5)).await.is_some() {
        frames += 1;
        assert!(frames < 5, "stream closed");
    }
    tokio::time::timeout(Duration::from_secs(10), srv.join_server())
        .await
        .expect("exits in time")
        .expect("clean exit");
    assert!(!srv.handle.is_ready());
    assert!(
        TcpStream::connect(srv.addr).await.is_err(),
        "no longer accepting"
    );
}
