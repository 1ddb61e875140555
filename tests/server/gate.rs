//! Gate mode end to end: visitors (a cookie jar each) in front of a
//! recording test backend, through the real gate listener. The proxy's
//! header and body rules are tested in tests/gate_proxy.rs; here, who gets
//! through, what they carry, and how a session ends.

use crate::common::*;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const EVENT: &str = "gated";

/// What the backend saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: HeaderMap,
}

/// A backend on loopback that records every request. `/complete` and
/// `/revoke` answer with that `Boxoffice-Command`.
struct Backend {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Backend {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let log = log.clone();
                let svc = service_fn(move |req: Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        log.lock().unwrap().push(Seen {
                            path: path.clone(),
                            headers: req.headers().clone(),
                        });
                        if path == "/ws" {
                            return Ok::<_, Infallible>(echo_upgrade(req));
                        }
                        if path == "/upload" {
                            // Reads the whole body before it answers.
                            let n = match req.into_body().collect().await {
                                Ok(b) => b.to_bytes().len(),
                                Err(_) => 0,
                            };
                            let body = format!("read {n} bytes");
                            return Ok(Response::new(Full::new(Bytes::from(body))));
                        }
                        let mut r = Response::new(Full::new(Bytes::from_static(b"backend page")));
                        let h = r.headers_mut();
                        h.insert("content-type", "text/plain".parse().unwrap());
                        match path.as_str() {
                            "/complete" => {
                                h.insert("boxoffice-command", "complete".parse().unwrap());
                            }
                            "/revoke" => {
                                h.insert("boxoffice-command", "revoke".parse().unwrap());
                            }
                            _ => {}
                        }
                        Ok::<_, Infallible>(r)
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .with_upgrades(),
                );
            }
        });
        Backend { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// `101 Switching Protocols`, then every byte echoed back.
fn echo_upgrade(mut req: Request<Incoming>) -> Response<Full<Bytes>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(up) = on.await else { return };
        let mut io = TokioIo::new(up);
        let mut buf = [0u8; 1024];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    r.headers_mut()
        .insert("upgrade", "websocket".parse().unwrap());
    r.headers_mut()
        .insert("connection", "upgrade".parse().unwrap());
    r
}

impl Backend {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// One browser: a cookie jar and the gate's address.
struct Visitor {
    gate: SocketAddr,
    jar: BTreeMap<String, String>,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }
    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }
}

impl Visitor {
    fn new(srv: &TestServer) -> Self {
        Visitor {
            gate: srv.gate.expect("gated server"),
            jar: BTreeMap::new(),
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build_http(),
        }
    }

    async fn send(&mut self, method: Method, path: &str, extra: &[(&str, &str)]) -> Answer {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("http://{}{}", self.gate, path));
        if !self.jar.is_empty() {
            let c: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            b = b.header("cookie", c.join("; "));
        }
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(Bytes::new())).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .expect("gate answers in time")
            .expect("gate request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let a = Answer {
            status,
            headers,
            body,
        };
        for c in a.set_cookies() {
            let pair = c.split(';').next().unwrap_or("");
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.jar.remove(k);
            } else {
                self.jar.insert(k.to_string(), v.to_string());
            }
        }
        a
    }

    /// A page load (what a browser's navigation sends).
    async fn page(&mut self, path: &str) -> Answer {
        self.send(
            Method::GET,
            path,
            &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
        )
        .await
    }

    /// An API call of the site's own script.
    async fn api(&mut self, path: &str) -> Answer {
        self.send(Method::GET, path, &[("accept", "application/json")])
            .await
    }
}

async fn gated(backend: &Backend, capacity: u32) -> TestServer {
    let srv = TestServer::gated(EVENT, &backend.url(), |_| {}).await;
    create_event(&srv, EVENT, &small_event(Some(queue_cfg(capacity, 1)))).await;
    srv
}

/// Lets the line move: one second and one driver step.
fn step(srv: &TestServer) {
    srv.advance(1_000);
}

#[tokio::test]
async fn a_page_load_joins_the_line_and_a_refresh_keeps_the_place() {
    let backend = Backend::start().await;
    let srv = gated(&backend, 1).await;
    let mut first = Visitor::new(&srv);
    let mut me = Visitor::new(&srv);
    first.page("/").await;
    // The one place goes to `first` now, not whenever the driver next runs
    // (it once came between the two reads of `me`'s position below).
    step(&srv);
    let r = me.page("/shop?x=1").await;
    assert_eq!(r.status, 303, "{}", r.text());
    let to = r.header("location").unwrap().to_string();
    assert!(
        to.starts_with("/_boxoffice/wait?return=") && to.contains("shop"),
        "{to}"
    );
    let cookie = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("bo_ticket="))
        .expect("a ticket cookie");
    for want in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(want), "{want} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let ticket = me.jar["bo_ticket"].clone();
    let page = me.page(&to).await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-security-policy")
        .is_some_and(|c| c.contains("script-src 'self'")));
    let s1 = me.api("/_boxoffice/status").await;
    assert_eq!(s1.status, 200, "{}", s1.text());
    let doc = s1.json();
    assert_eq!(doc["ticket"], ticket.as_str());
    assert_eq!(doc["state"], "waiting");
    assert!(doc.get("pass").is_none(), "no pass in the page's document");
    let pos = doc["position"].as_u64().unwrap();
    // A refresh (and an API call) keeps the ticket and the place.
    let again = me.page(&to).await;
    assert_eq!(again.status, 200);
    assert!(again
        .set_cookies()
        .iter()
        .all(|c| !c.starts_with("bo_ticket=")));
    let api = me.api("/api/cart").await;
    assert_eq!(api.status, 429, "{}", api.text());
    assert!(api.header("retry-after").is_some());
    assert_eq!(api.json()["ticket"], ticket.as_str());
    assert_eq!(api.json()["position"].as_u64(), Some(pos));
    assert!(
        backend.seen().iter().all(|s| s.path != "/api/cart"),
        "a visitor who waits never reaches the backend"
    );
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn an_admitted_visitor_is_proxied_with_the_verified_identity_only() {
    let backend = Backend::start().await;
    let srv = gated(&backend, 5).await;
    let mut v = Visitor::new(&srv);
    v.page("/seats").await;
    step(&srv);
    let r = v.page("/_boxoffice/wait?return=%2Fseats").await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/seats"));
    let pass_cookie = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("bo_pass="))
        .expect("the pass cookie");
    assert!(pass_cookie.contains("HttpOnly") && pass_cookie.contains("SameSite=Lax"));
    let got = v
        .send(
            Method::GET,
            "/seats",
            &[
                ("accept", "text/html"),
                ("boxoffice-user", "mallory"),
                ("boxoffice-pass", "forged"),
                ("boxoffice-anything", "x"),
            ],
        )
        .await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.text(), "backend page");
    let seen = backend.seen();
    let s = seen
        .iter()
        .rev()
        .find(|s| s.path == "/seats")
        .expect("proxied");
    let h = |n: &str| s.headers.get(n).and_then(|v| v.to_str().ok());
    let doc = v.api("/_boxoffice/status").await.json();
    assert_eq!(h("boxoffice-user"), doc["user"].as_str());
    assert_eq!(h("boxoffice-ticket"), doc["ticket"].as_str());
    assert_eq!(h("boxoffice-pass"), Some(v.jar["bo_pass"].as_str()));
    assert_eq!(h("boxoffice-anything"), None);
    assert_eq!(s.headers.get_all("boxoffice-user").iter().count(), 1);
    // The gate's own cookies stay at the gate.
    assert!(s
        .headers
        .get_all("cookie")
        .iter()
        .all(|c| !c.to_str().unwrap().contains("bo_")));
    assert!(h("x-forwarded-for").is_some_and(|x| x.starts_with("127.0.0.1")));
    assert_eq!(h("x-forwarded-proto"), Some("http"));
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn complete_frees_the_slot_and_revoke_clears_the_pass() {
    let backend = Backend::start().await;
    let srv = gated(&backend, 1).await;
    let mut a = Visitor::new(&srv);
    let mut b = Visitor::new(&srv);
    a.page("/").await;
    b.page("/").await;
    step(&srv);
    a.page("/_boxoffice/wait").await;
    assert!(a.jar.contains_key("bo_pass"));
    // B waits while A shops (capacity 1).
    step(&srv);
    assert_eq!(b.api("/_boxoffice/status").await.json()["state"], "waiting");
    let done = a.page("/complete").await;
    assert_eq!(done.status, 200);
    assert_eq!(
        done.header("boxoffice-command"),
        None,
        "the command never reaches the client"
    );
    let seen_before = backend.seen().len();
    // A's pass opens nothing any more: A is a visitor again. (Seen to fail,
    // the old pass still proxied with 200, with the session check in
    // `visitor::from_pass` removed: a signature alone is not enough.)
    let again = a.api("/anything").await;
    assert_eq!(again.status, 429, "{}", again.text());
    assert_eq!(backend.seen().len(), seen_before);
    // The slot went to B at the next admission.
    step(&srv);
    assert_eq!(
        b.api("/_boxoffice/status").await.json()["state"],
        "admitted"
    );
    b.page("/_boxoffice/wait").await;
    let revoked = b.page("/revoke").await;
    assert_eq!(revoked.status, 200);
    assert!(
        revoked
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("bo_pass=;") && c.contains("Max-Age=0")),
        "{:?}",
        revoked.set_cookies()
    );
    assert!(!b.jar.contains_key("bo_pass"));
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn forged_or_foreign_cookies_get_nobody_through() {
    let backend = Backend::start().await;
    let srv = gated(&backend, 5).await;
    // A pass of the API's own making for another event of the same server.
    create_event(&srv, "other", &small_event(Some(queue_cfg(5, 5)))).await;
    let other = srv
        .service_post("/v1/events/other/queue", &json!({"user": "u-other"}))
        .await
        .json();
    srv.advance(1_000);
    let st = status(&srv, "other", other["ticket"].as_str().unwrap()).await;
    let foreign_pass = st["pass"].as_str().expect("admitted").to_string();
    let mut v = Visitor::new(&srv);
    for (name, value) in [
        ("bo_pass", foreign_pass.as_str()),
        ("bo_pass", "p1.k0.e30.c2ln"),
        ("bo_ticket", other["ticket"].as_str().unwrap()),
        ("bo_ticket", "garbage"),
    ] {
        v.jar.clear();
        v.jar.insert(name.to_string(), value.to_string());
        let r = v.api("/private").await;
        assert_eq!(r.status, 429, "{name}={value}: {}", r.text());
        assert_ne!(
            r.json()["ticket"].as_str(),
            other["ticket"].as_str(),
            "a ticket of another event names nothing here"
        );
    }
    // A tampered pass of this event: admitted once, then one byte changed.
    let mut ok = Visitor::new(&srv);
    ok.page("/").await;
    // Four visitors joined above, one is admitted per second.
    for _ in 0..6 {
        srv.advance(1_000);
    }
    ok.page("/_boxoffice/wait").await;
    let pass = ok.jar["bo_pass"].clone();
    let mut bytes = pass.into_bytes();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let mut t = Visitor::new(&srv);
    t.jar
        .insert("bo_pass".into(), String::from_utf8(bytes).unwrap());
    assert_eq!(t.api("/private").await.status, 429);
    assert!(
        backend.seen().iter().all(|s| s.path != "/private"),
        "nothing forged reached the backend"
    );
    srv.stop().await.unwrap();
}

/// A WebSocket upgrade without a pass is not a page load: like any other
/// such request it joins the line and gets 429 with `Retry-After` and the
/// status document (API.md "Gate"), and the ticket cookie keeps its place.
/// It got 401 and no place before.
#[tokio::test]
async fn a_websocket_without_a_pass_joins_and_gets_the_status() {
    let backend = Backend::start().await;
    // The one place goes to someone else first, so this visitor stays
    // waiting whenever the driver runs (with a free place it was once
    // admitted between the two upgrades below, and the second was proxied).
    let srv = gated(&backend, 1).await;
    let mut first = Visitor::new(&srv);
    first.page("/").await;
    step(&srv);
    let mut v = Visitor::new(&srv);
    let upgrade = [
        ("connection", "upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        // Not a page load, whatever it accepts.
        ("accept", "text/html"),
    ];
    let r = v.send(Method::GET, "/ws", &upgrade).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    let doc = r.json();
    assert_eq!(doc["state"], "waiting", "{doc}");
    let ticket = doc["ticket"].as_str().expect("ticket").to_string();
    assert_eq!(v.jar.get("bo_ticket"), Some(&ticket), "a place was taken");
    // Again: the same place, not a new one.
    let again = v.send(Method::GET, "/ws", &upgrade).await;
    assert_eq!(again.status, 429, "{}", again.text());
    assert_eq!(again.json()["ticket"], ticket.as_str());
    assert!(backend.seen().is_empty(), "nothing reached the backend");
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn a_backend_that_is_down_is_an_error_not_the_waiting_page() {
    // A port with nothing listening.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let srv = TestServer::gated(EVENT, &url, |_| {}).await;
    create_event(&srv, EVENT, &small_event(Some(queue_cfg(5, 5)))).await;
    let mut v = Visitor::new(&srv);
    v.page("/").await;
    srv.advance(1_000);
    v.page("/_boxoffice/wait").await;
    let api = v.api("/x").await;
    assert_eq!(api.status, 502, "{}", api.text());
    assert_eq!(api.json()["error"]["code"], "backend_unavailable");
    let page = v.page("/x").await;
    assert_eq!(page.status, 502);
    assert!(
        page.text().contains("backend_unavailable"),
        "{}",
        page.text()
    );
    assert!(!page.text().contains("bo-wait"), "not the waiting page");
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn the_return_path_cannot_leave_the_site() {
    let backend = Backend::start().await;
    let srv = gated(&backend, 5).await;
    let mut v = Visitor::new(&srv);
    v.page("/").await;
    srv.advance(1_000);
    for evil in [
        "%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example",
        "%2F%5Cevil.example",
        "javascript%3Aalert(1)",
    ] {
        let r = v.page(&format!("/_boxoffice/wait?return={evil}")).await;
        assert_eq!(r.status, 303, "{evil}");
        assert_eq!(r.header("location"), Some("/"), "{evil}");
    }
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn the_gate_status_and_stream_need_the_ticket_cookie() {
    let backend = Backend::start().await;
    let srv = gated(&backend, 1).await;
    let mut nobody = Visitor::new(&srv);
    let r = nobody.api("/_boxoffice/status").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "ticket_not_found");
    assert_eq!(nobody.api("/_boxoffice/stream").await.status, 404);
    assert_eq!(nobody.api("/_boxoffice/nope").await.status, 404);
    let post = nobody.send(Method::POST, "/_boxoffice/status", &[]).await;
    assert_eq!(post.status, 405);
    let post = nobody.send(Method::POST, "/_boxoffice/stream", &[]).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    srv.stop().await.unwrap();
}

/// HEAD works wherever GET does on the gate's own paths (API.md
/// "Operations"): the same status and headers, no body. `HEAD
/// /_boxoffice/stream` was 405 before.
#[tokio::test]
async fn head_is_answered_like_get_on_the_gates_paths() {
    let backend = Backend::start().await;
    let srv = gated(&backend, 1).await;
    let mut v = Visitor::new(&srv);
    v.page("/").await;
    assert!(v.jar.contains_key("bo_ticket"), "waiting");
    let asset = boxoffice::gate::page::ASSETS[0].path;
    for path in [
        "/_boxoffice/wait",
        "/_boxoffice/status",
        "/_boxoffice/stream",
        asset,
    ] {
        let head = v.send(Method::HEAD, path, &[]).await;
        assert_eq!(head.status, 200, "HEAD {path}: {}", head.text());
        assert!(head.body.is_empty(), "HEAD {path} has no body");
        let get_type = if path.ends_with("/stream") {
            // A GET of the stream stays open: compare with its known type.
            "text/event-stream".to_string()
        } else {
            let get = v.send(Method::GET, path, &[]).await;
            assert_eq!(get.status, 200, "GET {path}");
            get.header("content-type").unwrap_or("").to_string()
        };
        assert_eq!(
            head.header("content-type").unwrap_or(""),
            get_type,
            "HEAD {path}"
        );
    }
    srv.stop().await.unwrap();
}

/// Sends `head` and `sent` (part of a body) on a new connection to `addr`
/// and returns the answer's head, lowercased, and the connection (the
/// answer's body unread).
async fn raw_head(addr: SocketAddr, head: &str, sent: &[u8]) -> (String, tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(sent).await.unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte))
            .await
            .expect("an answer in time")
            .unwrap();
        assert_eq!(
            n,
            1,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.push(byte[0]);
    }
    (String::from_utf8_lossy(&got).to_ascii_lowercase(), s)
}

/// An answer the gate sends before the request body was read carries
/// `Connection: close` (API.md "Edge limits"), as on the API listener: the
/// client must not write its next request into a connection whose rest of
/// a body hyper will not read. Without it, all three lacked the header.
#[tokio::test]
async fn early_answers_of_the_gate_close_the_connection() {
    let backend = Backend::start().await;
    let srv = gated(&backend, 1).await;
    let gate = srv.gate.expect("gate");
    // 50 bytes announced, 1 sent.
    let post = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: shop.example\r\nAccept: application/json\r\n\
             Content-Type: application/json\r\nContent-Length: 50\r\n\r\n"
        )
    };
    for (path, status) in [
        // A waiting visitor (a newcomer: it joins, and waits).
        ("/api/x", "429"),
        ("/_boxoffice/wait", "405"),
        ("/_boxoffice/nope", "404"),
    ] {
        let (head, _) = raw_head(gate, &post(path), b"{").await;
        assert!(
            head.starts_with(&format!("http/1.1 {status}")),
            "{path}: {head}"
        );
        assert!(head.contains("\r\nconnection: close\r\n"), "{path}: {head}");
    }
    // Nothing unread: the connection stays open.
    let (head, _) = raw_head(
        gate,
        "GET /_boxoffice/nope HTTP/1.1\r\nHost: shop.example\r\n\r\n",
        b"",
    )
    .await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    assert!(backend.seen().is_empty());
    srv.stop().await.unwrap();
}

/// An admitted visitor's body that trickles (100 bytes announced, 1 sent)
/// to a backend that reads it is answered 408 `request_timeout` after
/// `--body-read-timeout` (API.md "Edge limits"), not 504 after
/// `--gate-timeout` as the backend's fault, and frees its in-flight slot.
/// Before, it got 504 backend_timeout after the 3 s gate timeout.
#[tokio::test]
async fn a_trickled_body_through_the_gate_is_a_request_timeout() {
    let backend = Backend::start().await;
    let srv = TestServer::gated(EVENT, &backend.url(), |s| {
        s.limits.body_read_timeout = Duration::from_millis(300);
        if let Some(g) = s.gate.as_mut() {
            g.timeout = Duration::from_secs(3);
            // One slot: the next request gets through only if it was freed.
            g.max_inflight = 1;
        }
    })
    .await;
    create_event(&srv, EVENT, &small_event(Some(queue_cfg(5, 5)))).await;
    let mut v = Visitor::new(&srv);
    v.page("/").await;
    step(&srv);
    v.page("/_boxoffice/wait").await;
    let pass = v.jar.get("bo_pass").expect("admitted").clone();
    let started = std::time::Instant::now();
    let (head, mut conn) = raw_head(
        srv.gate.expect("gate"),
        &format!(
            "POST /upload HTTP/1.1\r\nHost: shop.example\r\nAccept: application/json\r\n\
             Cookie: bo_pass={pass}\r\nContent-Length: 100\r\n\r\n"
        ),
        b"x",
    )
    .await;
    let took = started.elapsed();
    assert!(head.starts_with("http/1.1 408"), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    assert!(
        took < Duration::from_secs(3),
        "before the gate timeout: {took:?}"
    );
    // The connection ends after the answer's body.
    let mut body = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut conn, &mut body),
    )
    .await
    .expect("closed after the answer")
    .unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("\"request_timeout\""), "{body}");
    assert!(backend.seen().iter().any(|s| s.path == "/upload"));
    // The slot is free: a whole body gets through and is read.
    let ok = v
        .send(Method::POST, "/upload", &[("accept", "application/json")])
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.text(), "read 0 bytes");
    // A body read to its end keeps the connection open.
    let (head, _) = raw_head(
        srv.gate.expect("gate"),
        &format!(
            "POST /upload HTTP/1.1\r\nHost: shop.example\r\nAccept: application/json\r\n\
             Cookie: bo_pass={pass}\r\nContent-Length: 5\r\n\r\n"
        ),
        b"hello",
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn cookies_are_secure_when_a_trusted_proxy_says_tls() {
    let backend = Backend::start().await;
    let srv = TestServer::gated(EVENT, &backend.url(), |s| {
        s.limits.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    create_event(&srv, EVENT, &small_event(Some(queue_cfg(5, 1)))).await;
    let mut tls = Visitor::new(&srv);
    let r = tls
        .send(
            Method::GET,
            "/",
            &[("accept", "text/html"), ("x-forwarded-proto", "https")],
        )
        .await;
    assert_eq!(r.status, 303);
    let c = r.set_cookies().join(" | ");
    assert!(c.contains("bo_ticket=") && c.contains("Secure"), "{c}");
    // The same header from an address that is not a trusted proxy is ignored.
    let plain = TestServer::gated(EVENT, &backend.url(), |_| {}).await;
    create_event(&plain, EVENT, &small_event(Some(queue_cfg(5, 1)))).await;
    let mut spoof = Visitor::new(&plain);
    let r = spoof
        .send(
            Method::GET,
            "/",
            &[("accept", "text/html"), ("x-forwarded-proto", "https")],
        )
        .await;
    assert!(r.set_cookies().iter().all(|c| !c.contains("Secure")));
    srv.stop().await.unwrap();
    plain.stop().await.unwrap();
}

#[tokio::test]
async fn the_gate_stream_sends_the_visitors_document() {
    let backend = Backend::start().await;
    let srv = gated(&backend, 1).await;
    let mut v = Visitor::new(&srv);
    v.page("/").await;
    let req = Request::builder()
        .uri(format!("http://{}/_boxoffice/stream", v.gate))
        .header("cookie", format!("bo_ticket={}", v.jar["bo_ticket"]))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = v.client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut body = resp.into_body();
    let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("a first frame at once")
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(frame.data_ref().unwrap()).into_owned();
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a data line");
    let doc: Value = serde_json::from_str(data).unwrap();
    // First in line with a free slot: the background driver may admit the
    // visitor before the stream opens (the clock is manual, not the driver).
    assert!(
        doc["state"] == "waiting" || doc["state"] == "admitted",
        "{doc}"
    );
    assert!(doc.get("pass").is_none());
    assert_eq!(doc["event_name"], "Test night");
    // Admission is pushed on the stream.
    step(&srv);
    let mut got = text.clone();
    while !got.contains("\"admitted\"") {
        let f = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("admission pushed")
            .unwrap()
            .unwrap();
        if let Some(d) = f.data_ref() {
            got.push_str(&String::from_utf8_lossy(d));
        }
    }
    assert!(!got.contains("\"pass\""), "the pass never goes to a script");
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn an_admitted_visitors_websocket_is_tunnelled_to_the_backend() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = Backend::start().await;
    let srv = gated(&backend, 5).await;
    let mut v = Visitor::new(&srv);
    v.page("/").await;
    step(&srv);
    v.page("/_boxoffice/wait").await;
    let pass = v.jar.get("bo_pass").expect("admitted").clone();
    let mut s = tokio::net::TcpStream::connect(v.gate).await.unwrap();
    let hello = format!(
        "GET /ws HTTP/1.1\r\nHost: shop.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Cookie: bo_pass={pass}\r\nBoxoffice-User: mallory\r\n\r\n"
    );
    s.write_all(hello.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut byte))
            .await
            .expect("the gate answers the upgrade")
            .unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    for msg in [&b"hello through the gate"[..], &[0u8, 255, 13, 10][..]] {
        s.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
            .await
            .expect("echo in time")
            .unwrap();
        assert_eq!(back, msg);
    }
    let seen = backend.seen();
    let ws = seen
        .iter()
        .find(|s| s.path == "/ws")
        .expect("reached the backend");
    let user = ws
        .headers
        .get("boxoffice-user")
        .and_then(|v| v.to_str().ok());
    assert!(user.is_some_and(|u| u.starts_with("anon-")), "{user:?}");
    drop(s);
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn joins_through_the_gate_are_limited_per_address() {
    let backend = Backend::start().await;
    // Seen to fail (every newcomer got a place, 429 with a status document)
    // with the join limit in `visitor::join` removed.
    let srv = TestServer::gated(EVENT, &backend.url(), |s| {
        s.limits.join_rate_per_s = 1;
        s.limits.join_burst = 2;
    })
    .await;
    create_event(&srv, EVENT, &small_event(Some(queue_cfg(1, 1)))).await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        // A new visitor each time (no cookies), all from 127.0.0.1.
        let mut v = Visitor::new(&srv);
        let r = v.api("/x").await;
        assert_eq!(r.status, 429, "{}", r.text());
        codes.push((
            r.json().get("ticket").is_some(),
            v.jar.contains_key("bo_ticket"),
        ));
    }
    // The burst of two gets places; the rest are refused without one.
    assert_eq!(
        codes,
        [(true, true), (true, true), (false, false), (false, false)]
    );
    let mut late = Visitor::new(&srv);
    let r = late.api("/x").await;
    assert_eq!(r.json()["error"]["code"], "too_many_requests");
    assert!(r.header("retry-after").is_some());
    srv.stop().await.unwrap();
}

/// The gate's connections are counted apart from the API's:
/// `boxoffice_http_open_connections{listener="gate"}`.
#[tokio::test]
async fn the_gate_listener_counts_its_open_connections() {
    const GATE: &str = "boxoffice_http_open_connections{listener=\"gate\"} ";
    let backend = Backend::start().await;
    let srv = gated(&backend, 1).await;
    let gate = srv.gate.expect("gate address");
    let open = || async {
        let t = String::from_utf8_lossy(&srv.get("/metrics").await.body).into_owned();
        t.lines()
            .find_map(|l| l.strip_prefix(GATE))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {GATE}line:\n{t}"))
    };
    let until = |want: f64| async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let now = open().await;
            if now == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "gate: {now}, not {want}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    until(0.0).await;
    // Counted from accept, before a request is read.
    let tcp = tokio::net::TcpStream::connect(gate).await.expect("connect");
    until(1.0).await;
    drop(tcp);
    until(0.0).await;
}
