//! Edge limits against hostile or broken clients, driven from outside over
//! raw TCP on loopback: slow bodies, early answers, connections per client
//! address, stream floods, poll rate, proxies, CORS. Every wait is bounded.

use crate::common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads what the server sends until it closes the connection (or `limit`
/// passes: then `None`). A reset counts as closed.
async fn read_until_closed(tcp: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one response head (up to the blank line) within `limit`.
async fn read_head(tcp: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn has_header(head: &str, name: &str, value: &str) -> bool {
    head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case(name) && v.trim().eq_ignore_ascii_case(value)
        })
    })
}

// Fails without the defence: with the body read not under a timeout, the
// server waits for the missing 1,000 bytes for ever and `read_until_closed`
// gives up after 5 s (checked by removing the timeout in `Cx::body_bytes`).
#[tokio::test]
async fn a_body_that_never_arrives_is_408_within_the_timeout() {
    let srv = TestServer::with(|s| s.limits.body_read_timeout = Duration::from_millis(300)).await;
    for partial in ["", "{\"name\": "] {
        let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
        let head = format!(
            "PUT /v1/events/e1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{partial}"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let text = read_until_closed(&mut tcp, Duration::from_secs(5))
            .await
            .expect("answered and closed within the bound");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("\"request_timeout\""), "{text}");
        assert!(has_header(&text, "connection", "close"), "{text}");
    }
    // Nothing was created, and the server serves others as before.
    srv.get("/v1/events/e1")
        .await
        .expect(404, Some("event_not_found"));
}

#[tokio::test]
async fn an_answer_before_the_body_was_read_says_connection_close() {
    let srv = TestServer::start().await;
    let body = "{\"name\": \"x\"}";
    // Wrong token: 401 before the body is read.
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    let req = format!(
        "PUT /v1/events/e1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token-xxxxxxxx\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let head = read_head(&mut tcp, Duration::from_secs(5)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(has_header(&head, "connection", "close"), "{head}");
    // A body that was read keeps the connection open (no close announced).
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    let body = "{\"user\": 1}";
    let req = format!(
        "POST /v1/coupons/c1/claims HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SERVICE}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let head = read_head(&mut tcp, Duration::from_secs(5)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 4"), "{head}");
    assert!(!has_header(&head, "connection", "close"), "{head}");
}

/// A connection from `ip` (a loopback address) to the server.
async fn connect_from(ip: [u8; 4], srv: &TestServer) -> std::io::Result<TcpStream> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(std::net::SocketAddr::from((ip, 0)))?;
    sock.connect(srv.addr).await
}

// Fails without the defence: with no cap per address, none of A's ten idle
// connections is closed, they take all eight slots and B's /healthz would
// wait in the listen backlog (checked by raising the per-client cap to 1,000).
#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let srv = TestServer::with(|s| {
        s.limits.max_connections = 8;
        s.limits.max_connections_per_client = 3;
        s.limits.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    const A: [u8; 4] = [127, 0, 0, 2];
    // A slowloris: connections that send a few header bytes and stop.
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut c = connect_from(A, &srv).await.unwrap();
        let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHo").await;
        held.push(c);
    }
    // Over its cap, A's connections are closed at once, without an answer.
    let mut closed = 0;
    for c in &mut held {
        if let Some(text) = read_until_closed(c, Duration::from_millis(300)).await {
            assert!(text.is_empty(), "{text}");
            closed += 1;
        }
    }
    assert_eq!(closed, 7, "three of A's connections stay open");
    // B (127.0.0.1) is served at once while A holds its three.
    for _ in 0..3 {
        let mut b = connect_from([127, 0, 0, 1], &srv).await.unwrap();
        b.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut b, Duration::from_secs(1))
            .await
            .expect("B answered at once");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
    let m = String::from_utf8(srv.get("/metrics").await.body.to_vec()).unwrap();
    assert!(
        m.contains("boxoffice_http_connections_refused_total{reason=\"per_client\"} 7"),
        "{m}"
    );
}

/// Opens a live stream over raw TCP and returns the connection after the
/// response head (`None` if no head came within 2 s).
async fn open_stream(srv: &TestServer, ticket: &str) -> Option<(String, TcpStream)> {
    let mut c = TcpStream::connect(srv.addr).await.ok()?;
    let req = format!("GET /v1/events/f/queue/{ticket}/stream HTTP/1.1\r\nHost: x\r\n\r\n");
    c.write_all(req.as_bytes()).await.ok()?;
    let head = read_head(&mut c, Duration::from_secs(2)).await?;
    Some((head, c))
}

/// An event `f` whose line is held by `a` (admitted), with `waiting` more
/// users waiting; their tickets.
async fn waiting_tickets(srv: &TestServer, waiting: usize) -> Vec<String> {
    create_event(srv, "f", &small_event(Some(queue_cfg(1, 1)))).await;
    join(srv, "f", "a").await;
    srv.advance(1_000);
    let mut out = Vec::new();
    for i in 0..waiting {
        let t = join(srv, "f", &format!("w{i}")).await;
        assert_eq!(t["state"], "waiting");
        out.push(t["ticket"].as_str().unwrap().to_string());
    }
    out
}

// Fails without the defence: when a stream keeps its connection slot (and
// older streams on the ticket are not ended), four streams take all four
// slots and the fifth is not even answered (checked by not releasing the
// slot and not ending older streams in `sse::stream`).
#[tokio::test]
async fn a_stream_flood_on_one_ticket_leaves_a_few_and_locks_out_nobody() {
    let srv = TestServer::with(|s| {
        s.limits.max_connections = 4;
        s.limits.max_streams = 100;
    })
    .await;
    let ticket = waiting_tickets(&srv, 1).await.remove(0);
    let mut streams = Vec::new();
    for i in 0..12 {
        let (head, c) = open_stream(&srv, &ticket)
            .await
            .unwrap_or_else(|| panic!("stream {i} answered at once"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(has_header(&head, "connection", "close"), "{head}");
        streams.push(c);
    }
    // While the flood is on, health checks and the admin API answer at once.
    let quick = Duration::from_secs(2);
    let r = tokio::time::timeout(quick, srv.get("/healthz")).await;
    r.expect("healthz at once").expect(200, None);
    let pause = srv.call(http::Method::POST, "/v1/events/f/pause").admin();
    let r = tokio::time::timeout(quick, pause.send()).await;
    r.expect("admin at once").expect(200, None);
    // Only the newest three stay open; the older ones have ended.
    let (older, newest) = streams.split_at_mut(9);
    for c in older {
        read_until_closed(c, quick)
            .await
            .expect("an older stream ended");
    }
    for c in newest {
        assert!(
            read_until_closed(c, Duration::from_millis(200))
                .await
                .is_none(),
            "the newest three stay open"
        );
    }
    let m = String::from_utf8(srv.get("/metrics").await.body.to_vec()).unwrap();
    assert!(m.contains("boxoffice_http_sse_open_streams 3"), "{m}");
    assert!(
        m.contains("boxoffice_http_sse_streams_cut_total{reason=\"replaced\"} 9"),
        "{m}"
    );
}

#[tokio::test]
async fn over_the_stream_cap_is_503_and_the_connection_is_not_held() {
    let srv = TestServer::with(|s| s.limits.max_streams = 2).await;
    let tickets = waiting_tickets(&srv, 3).await;
    let (h1, _s1) = open_stream(&srv, &tickets[0]).await.unwrap();
    let (h2, _s2) = open_stream(&srv, &tickets[1]).await.unwrap();
    assert!(h1.starts_with("HTTP/1.1 200") && h2.starts_with("HTTP/1.1 200"));
    let (head, mut c) = open_stream(&srv, &tickets[2]).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(has_header(&head, "connection", "close"), "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    // The body may have come with the head; then the server closes.
    let rest = read_until_closed(&mut c, Duration::from_secs(2))
        .await
        .expect("closed");
    assert!(format!("{head}{rest}").contains("\"unavailable\""));
    // Polling still works.
    status(&srv, "f", &tickets[2]).await;
}

#[tokio::test]
async fn polling_one_ticket_far_too_fast_is_429_with_retry_after() {
    let srv = TestServer::with(|s| s.limits.poll_rate_per_s = 2).await;
    let tickets = waiting_tickets(&srv, 2).await;
    let path = format!("/v1/events/f/queue/{}", tickets[0]);
    // A burst of 10 is allowed (a reload, a few tabs) ...
    for _ in 0..10 {
        srv.get(&path).await.expect(200, None);
    }
    // ... then far-too-fast polling is refused, for this ticket only.
    let r = srv.get(&path).await;
    r.expect(429, Some("too_many_requests"));
    assert_eq!(r.header("retry-after"), Some("1"));
    status(&srv, "f", &tickets[1]).await;
    // Following poll_after_ms (at least 1 s) is never refused.
    for _ in 0..20 {
        srv.clock.advance_ms(1_000);
        srv.get(&path).await.expect(200, None);
    }
    let m = String::from_utf8(srv.get("/metrics").await.body.to_vec()).unwrap();
    assert!(m.contains("boxoffice_queue_polls_limited_total 1"), "{m}");
}

/// A public join of `user` on `f` with an `X-Forwarded-For` header.
async fn join_via(srv: &TestServer, user: &str, xff: &str) -> u16 {
    srv.call(http::Method::POST, "/v1/events/f/queue")
        .header("x-forwarded-for", xff)
        .json(&join_body("f", user))
        .send()
        .await
        .status
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let limited = |s: &mut boxoffice::Settings| {
        s.limits.join_rate_per_s = 1;
        s.limits.join_burst = 1;
    };
    // Behind a trusted proxy (the test client, 127.0.0.1): the rightmost
    // untrusted address is the client; a spoofed leftmost entry is not.
    let srv = TestServer::with(|s| {
        limited(s);
        s.limits.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    create_event(&srv, "f", &small_event(Some(queue_cfg(1, 1)))).await;
    assert_eq!(join_via(&srv, "a", "203.0.113.5").await, 201);
    assert_eq!(
        join_via(&srv, "b", "203.0.113.6").await,
        201,
        "another client"
    );
    assert_eq!(
        join_via(&srv, "c", "198.51.100.1, 203.0.113.5").await,
        429,
        "the same client, whatever it puts in front"
    );
    // Without --trusted-proxy the header is ignored: one client, the peer.
    let srv = TestServer::with(limited).await;
    create_event(&srv, "f", &small_event(Some(queue_cfg(1, 1)))).await;
    assert_eq!(join_via(&srv, "a", "203.0.113.5").await, 201);
    assert_eq!(join_via(&srv, "b", "203.0.113.6").await, 429);
}

#[tokio::test]
async fn cors_only_for_listed_origins_and_public_endpoints() {
    const SHOP: &str = "https://shop.example";
    let srv = TestServer::with(|s| s.limits.cors_origins = vec![SHOP.to_string()]).await;
    create_event(&srv, "f", &small_event(Some(queue_cfg(1, 1)))).await;
    let preflight = |path: &str, method: &str, origin: &str| {
        srv.call(http::Method::OPTIONS, path)
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "content-type")
    };
    // A preflight for a public endpoint from a listed origin is answered.
    let r = preflight("/v1/events/f/queue", "POST", SHOP).send().await;
    r.expect(204, None);
    assert_eq!(r.header("access-control-allow-origin"), Some(SHOP));
    assert!(r
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    assert!(r
        .header("access-control-allow-headers")
        .unwrap()
        .contains("content-type"));
    assert_eq!(r.header("vary"), Some("origin"));
    // The call itself echoes the origin.
    let r = srv
        .call(http::Method::GET, "/v1/events/f")
        .header("origin", SHOP)
        .send()
        .await;
    r.expect(200, None);
    assert_eq!(r.header("access-control-allow-origin"), Some(SHOP));
    assert_eq!(r.header("vary"), Some("origin"));
    // Another origin, or a service/admin endpoint: no CORS at all.
    let r = preflight("/v1/events/f/queue", "POST", "https://evil.example")
        .send()
        .await;
    assert_eq!(r.status, 405);
    assert!(r.header("access-control-allow-origin").is_none());
    let r = preflight("/v1/events/f/holds", "POST", SHOP).send().await;
    assert_eq!(r.status, 405);
    assert!(r.header("access-control-allow-origin").is_none());
    let r = srv
        .call(http::Method::PUT, "/v1/events/f")
        .admin()
        .header("origin", SHOP)
        .json(&small_event(None))
        .send()
        .await;
    assert!(r.header("access-control-allow-origin").is_none());
    assert!(r.header("vary").is_none());
    // None by default.
    let plain = TestServer::start().await;
    let r = plain
        .call(http::Method::GET, "/healthz")
        .header("origin", SHOP)
        .send()
        .await;
    assert!(r.header("access-control-allow-origin").is_none());
}
