//! The gate's reverse-proxy core (src/gate/proxy.rs) against a real backend
//! on loopback: a hyper test backend, a tiny front that calls
//! `Backend::forward` with a fixed `Forwarding` (served with upgrades, like
//! the gate), and a plain client. Nothing here sleeps to wait for a result
//! except the deliberately slow backend route, which outlives its 300 ms
//! timeout.
#![forbid(unsafe_code)]

use boxoffice::gate::proxy::{Backend, BoxError, Forwarding, ProxyError};
use boxoffice::http::limits::Cidr;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

type TestBody = UnsyncBoxBody<Bytes, BoxError>;

const FIVE_MIB: usize = 5 * 1024 * 1024;
const OWN_COOKIES: &[&str] = &["bo_ticket", "bo_pass", "bo_lang"];

fn full(b: impl Into<Bytes>) -> TestBody {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body without a length (sent chunked), in uneven pieces.
fn chunked(data: Vec<u8>) -> TestBody {
    let mut pieces = Vec::new();
    let mut rest = Bytes::from(data);
    let mut size = 1;
    while !rest.is_empty() {
        let n = size.min(rest.len());
        pieces.push(Ok::<_, BoxError>(Frame::data(rest.split_to(n))));
        size = (size * 7 + 13) % 100_000 + 1;
    }
    StreamBody::new(futures_util::stream::iter(pieces)).boxed_unsync()
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn sha(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---- the test backend -------------------------------------------------------

#[derive(Default)]
struct BackendState {
    accepted: AtomicUsize,
    release: Notify,
}

struct TestBackend {
    addr: SocketAddr,
    state: Arc<BackendState>,
}

impl TestBackend {
    fn url(&self) -> http::Uri {
        format!("http://{}", self.addr).parse().expect("uri")
    }
    fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }
}

async fn spawn_backend() -> TestBackend {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = Arc::new(BackendState::default());
    let st = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            st.accepted.fetch_add(1, Ordering::SeqCst);
            let st = st.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let st = st.clone();
                    async move { Ok::<_, Infallible>(backend_route(req, st).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    TestBackend { addr, state }
}

fn query_param<'a>(q: Option<&'a str>, key: &str) -> Option<&'a str> {
    q?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then_some(v)
    })
}

fn headers_json(h: &HeaderMap) -> Value {
    let pairs: Vec<Value> = h
        .iter()
        .map(|(n, v)| json!([n.as_str(), String::from_utf8_lossy(v.as_bytes())]))
        .collect();
    Value::Array(pairs)
}

async fn backend_route(mut req: Request<Incoming>, st: Arc<BackendState>) -> Response<TestBody> {
    let path = req.uri().path().to_string();
    let route = path.strip_prefix("/base").unwrap_or(&path).to_string();
    let query = req.uri().query().map(str::to_string);
    match route.as_str() {
        // What the backend saw, plus response fields the gate must treat.
        "/headers" => {
            let doc = json!({
                "path": req.uri().path_and_query().map(|p| p.as_str()),
                "headers": headers_json(req.headers()),
            });
            let mut r = Response::new(full(doc.to_string()));
            let h = r.headers_mut();
            h.insert("connection", HeaderValue::from_static("x-backend-hop"));
            h.insert("x-backend-hop", HeaderValue::from_static("1"));
            h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
            h.insert("proxy-authenticate", HeaderValue::from_static("Basic"));
            h.insert("trailer", HeaderValue::from_static("x-sum"));
            h.insert("x-backend-end-to-end", HeaderValue::from_static("kept"));
            h.insert("content-type", HeaderValue::from_static("application/json"));
            for c in ["a=1; Path=/", "b=2; HttpOnly", "c=3; Max-Age=60"] {
                h.append("set-cookie", HeaderValue::from_static(c));
            }
            if let Some(cmd) = query_param(query.as_deref(), "cmd") {
                // Spaces travel as %20 in the test's query.
                let cmd = cmd.replace("%20", " ");
                h.insert(
                    "boxoffice-command",
                    HeaderValue::from_str(&cmd).expect("cmd"),
                );
            }
            r
        }
        // The body's length and digest, and how it was framed on the
        // backend's hop.
        "/upload" => {
            let framing = json!({
                "content-length": req.headers().get("content-length").map(|v| v.to_str().unwrap_or("?")),
                "transfer-encoding": req.headers().get("transfer-encoding").map(|v| v.to_str().unwrap_or("?")),
            });
            let body = req
                .into_body()
                .collect()
                .await
                .expect("request body")
                .to_bytes();
            let doc = json!({"len": body.len(), "sha": sha(&body), "framing": framing});
            Response::new(full(doc.to_string()))
        }
        "/download" => {
            let n: usize = query_param(query.as_deref(), "n")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let data = pattern(n);
            if query_param(query.as_deref(), "chunked").is_some() {
                Response::new(chunked(data))
            } else {
                Response::new(full(data))
            }
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Response::new(full("late"))
        }
        // Headers at once, then the body waits for the test's release.
        "/hold" => {
            let st = st.clone();
            let stream = futures_util::stream::unfold(0u8, move |step| {
                let st = st.clone();
                async move {
                    match step {
                        0 => Some((Ok::<_, BoxError>(Frame::data(Bytes::from("start"))), 1)),
                        1 => {
                            st.release.notified().await;
                            Some((Ok(Frame::data(Bytes::from("end"))), 2))
                        }
                        _ => None,
                    }
                }
            });
            Response::new(StreamBody::new(stream).boxed_unsync())
        }
        "/ws" => {
            let seen_user = req.headers().get("boxoffice-user").cloned();
            let asked = req
                .headers()
                .get("upgrade")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
            if !asked {
                return Response::builder()
                    .status(StatusCode::BAD_REQUEST)
                    .body(full("no upgrade"))
                    .expect("response");
            }
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(upgraded) = on_upgrade.await else {
                    return;
                };
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 4096];
                loop {
                    match io.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if io.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
            let mut r = Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("upgrade", "websocket")
                .header("connection", "Upgrade")
                .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                .body(full(Bytes::new()))
                .expect("response");
            if let Some(u) = seen_user {
                r.headers_mut().insert("x-seen-user", u);
            }
            r
        }
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(full("no such route"))
            .expect("response"),
    }
}

/// A backend that reads one request head, writes `answer` raw and closes.
async fn spawn_raw_backend(answer: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = read_head(&mut s).await;
                let _ = s.write_all(answer).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

// ---- the front --------------------------------------------------------------

/// A front like the gate's for admitted visitors: every request forwarded
/// with a fixed identity; the reported command is shown to the test as
/// `x-test-command`; errors as the API's JSON error shape.
async fn spawn_front(backend: Backend, trusted: Vec<Cidr>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let trusted = Arc::new(trusted);
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let backend = backend.clone();
            let trusted = trusted.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let backend = backend.clone();
                    let trusted = trusted.clone();
                    async move {
                        let fwd = Forwarding {
                            peer,
                            trusted_proxies: &trusted,
                            user: "user-7",
                            ticket: "ticket-7",
                            pass: "pass-7",
                            own_cookies: OWN_COOKIES,
                        };
                        let resp = match backend.forward(req, &fwd).await {
                            Ok(f) => {
                                let mut r = f.response;
                                if let Some(c) = f.command {
                                    r.headers_mut().insert(
                                        "x-test-command",
                                        HeaderValue::from_static(c.as_str()),
                                    );
                                }
                                r
                            }
                            Err(e) => error_response(&e),
                        };
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

fn error_response(e: &ProxyError) -> Response<TestBody> {
    let doc = json!({"error": {"code": e.code(), "message": e.message()}});
    let mut r = Response::new(full(doc.to_string()));
    *r.status_mut() = e.status();
    if let Some(s) = e.retry_after_s() {
        r.headers_mut().insert("retry-after", HeaderValue::from(s));
    }
    r
}

fn backend_at(url: http::Uri, timeout: Duration, max_inflight: usize) -> Backend {
    Backend::new(&url, timeout, max_inflight).expect("backend")
}

async fn front_for(b: &TestBackend) -> SocketAddr {
    spawn_front(backend_at(b.url(), Duration::from_secs(10), 64), vec![]).await
}

// ---- the client -------------------------------------------------------------

fn client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn get(front: SocketAddr, path: &str) -> http::request::Builder {
    Request::builder().uri(format!("http://{front}{path}"))
}

async fn send(req: Request<TestBody>) -> (http::response::Parts, Bytes) {
    let resp = client().request(req).await.expect("response");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts, body)
}

fn json_of(b: &Bytes) -> Value {
    serde_json::from_slice(b).expect("json")
}

/// The values the backend saw for one field, in order.
fn seen(doc: &Value, name: &str) -> Vec<String> {
    doc["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter(|p| p[0] == name)
        .map(|p| p[1].as_str().expect("value").to_string())
        .collect()
}

async fn read_head(s: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// One request written raw; the answer's head and its (Content-Length) body.
async fn raw_exchange(front: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(front).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let head = read_head(&mut s).await.expect("head");
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.expect("body");
    format!("{head}{}", String::from_utf8_lossy(&body))
}

fn head_lines(answer: &str) -> Vec<String> {
    answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .lines()
        .map(str::to_ascii_lowercase)
        .collect()
}

// ---- the tests ----------------------------------------------------------------

#[tokio::test]
async fn large_bodies_cross_byte_exact_both_ways() {
    let b = spawn_backend().await;
    let front = front_for(&b).await;

    // Up, with a length.
    let data = pattern(FIVE_MIB);
    let (parts, body) = send(
        get(front, "/upload")
            .method("POST")
            .body(full(data.clone()))
            .expect("req"),
    )
    .await;
    assert_eq!(parts.status, 200);
    let doc = json_of(&body);
    assert_eq!(doc["len"], FIVE_MIB);
    assert_eq!(doc["sha"], sha(&data));
    assert_eq!(doc["framing"]["content-length"], FIVE_MIB.to_string());

    // Down, with a length.
    let (parts, body) = send(
        get(front, &format!("/download?n={FIVE_MIB}"))
            .body(full(Bytes::new()))
            .expect("req"),
    )
    .await;
    assert_eq!(parts.status, 200);
    assert_eq!(
        parts.headers.get("content-length").expect("length"),
        &FIVE_MIB.to_string()
    );
    assert!(body[..] == data[..], "5 MiB down, byte-exact");
}

#[tokio::test]
async fn chunked_bodies_cross_both_ways() {
    let b = spawn_backend().await;
    let front = front_for(&b).await;
    let data = pattern(FIVE_MIB + 12_345);

    let (parts, body) = send(
        get(front, "/upload")
            .method("POST")
            .body(chunked(data.clone()))
            .expect("req"),
    )
    .await;
    assert_eq!(parts.status, 200);
    let doc = json_of(&body);
    assert_eq!(doc["len"], data.len());
    assert_eq!(doc["sha"], sha(&data));
    assert_eq!(doc["framing"]["transfer-encoding"], "chunked");
    assert!(doc["framing"]["content-length"].is_null());

    let (parts, body) = send(
        get(front, &format!("/download?n={}&chunked=1", data.len()))
            .body(full(Bytes::new()))
            .expect("req"),
    )
    .await;
    assert_eq!(parts.status, 200);
    assert_eq!(
        parts.headers.get("transfer-encoding").expect("chunked"),
        "chunked"
    );
    assert!(body[..] == data[..], "chunked down, byte-exact");
}

#[tokio::test]
async fn a_slow_backend_is_504_within_the_timeout() {
    let b = spawn_backend().await;
    let timeout = Duration::from_millis(300);
    let front = spawn_front(backend_at(b.url(), timeout, 8), vec![]).await;
    let started = Instant::now();
    let (parts, body) = send(get(front, "/slow").body(full(Bytes::new())).expect("req")).await;
    let took = started.elapsed();
    assert_eq!(parts.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(json_of(&body)["error"]["code"], "backend_timeout");
    assert!(took >= timeout, "{took:?}");
    assert!(
        took < Duration::from_secs(2),
        "504 well before the backend answers: {took:?}"
    );
}

#[tokio::test]
async fn a_backend_that_is_down_is_502() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let url: http::Uri = format!("http://{closed}").parse().expect("uri");
    let front = spawn_front(backend_at(url, Duration::from_secs(5), 8), vec![]).await;
    let started = Instant::now();
    let (parts, body) = send(get(front, "/").body(full(Bytes::new())).expect("req")).await;
    assert_eq!(parts.status, StatusCode::BAD_GATEWAY);
    let doc = json_of(&body);
    assert_eq!(doc["error"]["code"], "backend_unavailable");
    let message = doc["error"]["message"].as_str().expect("message");
    assert!(
        !message.contains("127.0.0.1"),
        "no backend address: {message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused is at once"
    );
}

#[tokio::test]
async fn a_backend_closing_without_an_answer_is_502() {
    let addr = spawn_raw_backend(b"").await;
    let url: http::Uri = format!("http://{addr}").parse().expect("uri");
    let front = spawn_front(backend_at(url, Duration::from_secs(5), 8), vec![]).await;
    let (parts, body) = send(get(front, "/").body(full(Bytes::new())).expect("req")).await;
    assert_eq!(parts.status, StatusCode::BAD_GATEWAY);
    assert_eq!(json_of(&body)["error"]["code"], "backend_unavailable");
}

#[tokio::test]
async fn a_body_the_backend_breaks_off_is_broken_for_the_client_too() {
    let cases: [&'static [u8]; 2] = [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhello",
    ];
    for answer in cases {
        let addr = spawn_raw_backend(answer).await;
        let url: http::Uri = format!("http://{addr}").parse().expect("uri");
        let front = spawn_front(backend_at(url, Duration::from_secs(5), 8), vec![]).await;
        let resp = client()
            .request(get(front, "/").body(full(Bytes::new())).expect("req"))
            .await
            .expect("head");
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await;
        assert!(
            body.is_err(),
            "a truncated body must not end cleanly: {:?}",
            String::from_utf8_lossy(answer)
        );
    }
}

#[tokio::test]
async fn hop_by_hop_fields_are_dropped_both_ways() {
    let b = spawn_backend().await;
    let front = front_for(&b).await;
    let answer = raw_exchange(
        front,
        "GET /headers HTTP/1.1\r\nHost: shop.example\r\n\
         Connection: close, X-Client-Hop\r\nX-Client-Hop: secret\r\n\
         Keep-Alive: timeout=9\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\
         Trailer: x-sum\r\nUpgrade: h2c\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n\
         X-End-To-End: yes\r\n\r\n",
    )
    .await;
    let head = head_lines(&answer);
    assert!(head[0].starts_with("http/1.1 200"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).expect("body");
    let doc: Value = serde_json::from_str(body).expect("json");
    for gone in [
        "x-client-hop",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
    ] {
        assert!(seen(&doc, gone).is_empty(), "{gone} reached the backend");
    }
    // The gate's own hop to the backend is keep-alive: no client Connection.
    assert!(seen(&doc, "connection").is_empty());
    assert_eq!(seen(&doc, "x-end-to-end"), ["yes"]);
    assert_eq!(seen(&doc, "host"), ["shop.example"], "the original Host");

    // And back: the backend's hop fields never reach the client.
    for gone in [
        "x-backend-hop",
        "keep-alive",
        "proxy-authenticate",
        "trailer",
    ] {
        assert!(
            !head.iter().any(|l| l.starts_with(&format!("{gone}:"))),
            "{gone} reached the client: {head:?}"
        );
    }
    assert!(
        !head.iter().any(|l| l.contains("x-backend-hop")),
        "{head:?}"
    );
    assert!(head.contains(&"x-backend-end-to-end: kept".to_string()));
}

#[tokio::test]
async fn spoofed_identity_and_provenance_are_replaced() {
    let b = spawn_backend().await;
    let front = front_for(&b).await;
    let (parts, body) = send(
        get(front, "/headers?x=1")
            .header("host", "shop.example")
            .header("boxoffice-user", "admin")
            .header("boxoffice-ticket", "someone-else")
            .header("boxoffice-pass", "forged")
            .header("boxoffice-evil", "1")
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "evil.example")
            .header("forwarded", "for=6.6.6.6")
            .header("cookie", "bo_ticket=t; session=abc; bo_pass=p; bo_lang=ko")
            .body(full(Bytes::new()))
            .expect("req"),
    )
    .await;
    assert_eq!(parts.status, 200);
    let doc = json_of(&body);
    assert_eq!(seen(&doc, "boxoffice-user"), ["user-7"]);
    assert_eq!(seen(&doc, "boxoffice-ticket"), ["ticket-7"]);
    assert_eq!(seen(&doc, "boxoffice-pass"), ["pass-7"]);
    assert!(seen(&doc, "boxoffice-evil").is_empty());
    assert_eq!(seen(&doc, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen(&doc, "x-forwarded-proto"), ["http"]);
    assert_eq!(seen(&doc, "x-forwarded-host"), ["shop.example"]);
    assert!(seen(&doc, "forwarded").is_empty());
    assert_eq!(seen(&doc, "cookie"), ["session=abc"]);
    assert_eq!(doc["path"], "/headers?x=1");
}

#[tokio::test]
async fn a_trusted_proxy_is_believed_and_a_prefix_is_kept() {
    let b = spawn_backend().await;
    let url: http::Uri = format!("http://{}/base/", b.addr).parse().expect("uri");
    let trusted = vec!["127.0.0.0/8".parse::<Cidr>().expect("cidr")];
    let front = spawn_front(backend_at(url, Duration::from_secs(10), 8), trusted).await;
    let (_, body) = send(
        get(front, "/headers?y=2")
            .header("host", "internal:8080")
            .header("x-forwarded-for", "203.0.113.5")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "shop.example")
            .header("forwarded", "for=203.0.113.5;proto=https")
            .header("cookie", "bo_pass=p")
            .body(full(Bytes::new()))
            .expect("req"),
    )
    .await;
    let doc = json_of(&body);
    assert_eq!(doc["path"], "/base/headers?y=2");
    assert_eq!(seen(&doc, "x-forwarded-for"), ["203.0.113.5, 127.0.0.1"]);
    assert_eq!(seen(&doc, "x-forwarded-proto"), ["https"]);
    assert_eq!(seen(&doc, "x-forwarded-host"), ["shop.example"]);
    assert_eq!(seen(&doc, "forwarded"), ["for=203.0.113.5;proto=https"]);
    assert!(
        seen(&doc, "cookie").is_empty(),
        "only the gate's cookie: none left"
    );
}

#[tokio::test]
async fn every_set_cookie_is_kept_and_the_command_is_taken_out() {
    let b = spawn_backend().await;
    let front = front_for(&b).await;

    let (parts, _) = send(
        get(front, "/headers")
            .body(full(Bytes::new()))
            .expect("req"),
    )
    .await;
    let cookies: Vec<&str> = parts
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2; HttpOnly", "c=3; Max-Age=60"]);
    assert!(parts.headers.get("x-test-command").is_none());

    for (sent, reported) in [
        ("complete", "complete"),
        ("REVOKE", "revoke"),
        ("%20Complete", "complete"),
    ] {
        let (parts, _) = send(
            get(front, &format!("/headers?cmd={sent}"))
                .body(full(Bytes::new()))
                .expect("req"),
        )
        .await;
        assert!(parts.headers.get("boxoffice-command").is_none(), "{sent}");
        assert_eq!(parts.headers.get("x-test-command").expect(sent), reported);
        assert_eq!(parts.headers.get_all("set-cookie").iter().count(), 3);
    }
    let (parts, _) = send(
        get(front, "/headers?cmd=reboot")
            .body(full(Bytes::new()))
            .expect("req"),
    )
    .await;
    assert!(parts.headers.get("boxoffice-command").is_none());
    assert!(
        parts.headers.get("x-test-command").is_none(),
        "unknown: ignored"
    );
}

#[tokio::test]
async fn sequential_requests_reuse_one_backend_connection() {
    let b = spawn_backend().await;
    let front = front_for(&b).await;
    for i in 0..5 {
        // A fresh client connection to the front each time: the reuse is
        // the gate's pool, not the test client's.
        let (parts, _) = send(
            get(front, &format!("/headers?i={i}"))
                .body(full(Bytes::new()))
                .expect("req"),
        )
        .await;
        assert_eq!(parts.status, 200);
        // Let the finished exchange hand its connection back to the pool
        // before the next checkout.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, body) = send(
        get(front, "/upload")
            .method("POST")
            .body(full(pattern(100_000)))
            .expect("req"),
    )
    .await;
    assert_eq!(json_of(&body)["len"], 100_000);
    assert_eq!(b.accepted(), 1, "one pooled connection for every request");
}

#[tokio::test]
async fn the_in_flight_bound_answers_503_at_once_and_frees_the_slot() {
    let b = spawn_backend().await;
    let backend = backend_at(b.url(), Duration::from_secs(10), 1);
    let front = spawn_front(backend.clone(), vec![]).await;

    let held = client()
        .request(get(front, "/hold").body(full(Bytes::new())).expect("req"))
        .await
        .expect("head");
    assert_eq!(held.status(), 200);
    assert_eq!(
        backend.inflight(),
        1,
        "the slot is held while the body runs"
    );

    let started = Instant::now();
    let (parts, body) = send(
        get(front, "/headers")
            .body(full(Bytes::new()))
            .expect("req"),
    )
    .await;
    assert_eq!(parts.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_of(&body)["error"]["code"], "unavailable");
    assert_eq!(parts.headers.get("retry-after").expect("retry-after"), "1");
    assert!(started.elapsed() < Duration::from_secs(2), "no queueing");

    b.state.release.notify_one();
    let rest = held.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&rest[..], b"startend");
    // The slot is given back when the body ends (the front may still be
    // finishing its write when the client has read the last byte).
    let deadline = Instant::now() + Duration::from_secs(5);
    while backend.inflight() != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(backend.inflight(), 0);
    let (parts, _) = send(
        get(front, "/headers")
            .body(full(Bytes::new()))
            .expect("req"),
    )
    .await;
    assert_eq!(parts.status, 200);

    // A client that leaves mid-body gives the slot back too (its response
    // body is dropped), though the backend's body never ends.
    let mut s = TcpStream::connect(front).await.expect("connect");
    s.write_all(b"GET /hold HTTP/1.1\r\nHost: shop.example\r\n\r\n")
        .await
        .expect("write");
    let head = read_head(&mut s).await.expect("head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(backend.inflight(), 1);
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(5);
    while backend.inflight() != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(backend.inflight(), 0, "the slot of a client that left");
}

#[tokio::test]
async fn a_websocket_upgrade_is_tunnelled_both_ways() {
    let b = spawn_backend().await;
    let front = front_for(&b).await;
    let mut s = TcpStream::connect(front).await.expect("connect");
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: shop.example\r\nConnection: Upgrade\r\n\
          Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nBoxoffice-User: admin\r\n\r\n",
    )
    .await
    .expect("handshake");
    let head = read_head(&mut s).await.expect("head").to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("\r\nupgrade: websocket\r\n"), "{head}");
    assert!(head.contains("\r\nconnection: upgrade\r\n"), "{head}");
    assert!(head.contains("\r\nsec-websocket-accept: "), "{head}");
    assert!(
        head.contains("\r\nx-seen-user: user-7\r\n"),
        "the pass's user: {head}"
    );

    for msg in [
        &b"hello through the gate"[..],
        &[0u8, 255, 1, 254, 13, 10][..],
    ] {
        s.write_all(msg).await.expect("send");
        let mut back = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
            .await
            .expect("echo in time")
            .expect("echo");
        assert_eq!(back, msg);
    }
}

#[tokio::test]
async fn an_upgrade_the_backend_declines_is_a_plain_answer() {
    let b = spawn_backend().await;
    let front = front_for(&b).await;
    let answer = raw_exchange(
        front,
        "GET /headers HTTP/1.1\r\nHost: shop.example\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\n\r\n",
    )
    .await;
    let head = head_lines(&answer);
    assert!(head[0].starts_with("http/1.1 200"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).expect("body");
    let doc: Value = serde_json::from_str(body).expect("json");
    // It went out as an upgrade request (the backend chose not to switch).
    assert_eq!(seen(&doc, "upgrade"), ["websocket"]);
    assert_eq!(seen(&doc, "connection"), ["upgrade"]);
}
