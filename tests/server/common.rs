//! Test harness: a server in-process on 127.0.0.1:0 with a manual clock, and
//! a small HTTP client (hyper-util's legacy client, no TLS).

use boxoffice::{Handle, ManualClock, Server, Settings};
use boxoffice_engine::{EventId, PassKey, Timestamp, UserId, UserToken};
use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN: &str = "admin-token-for-tests";
pub const SERVICE: &str = "service-token-for-tests";
pub const SECRET: &[u8] = b"a-test-secret-of-32-bytes-length";

pub fn start_time() -> Timestamp {
    boxoffice::wire::time::parse("2026-12-01T10:00:00Z").unwrap_or(Timestamp::ZERO)
}

pub struct TestServer {
    pub addr: SocketAddr,
    /// The gate's address (`TestServer::gated`).
    pub gate: Option<SocketAddr>,
    pub clock: Arc<ManualClock>,
    pub handle: Handle,
    pub client: Client<HttpConnector, Full<Bytes>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A server with the join rate limit and the per-client connection cap
    /// off (tests run every client from 127.0.0.1).
    pub async fn start() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(f: impl FnOnce(&mut Settings)) -> Self {
        Self::start_inner(f, None).await
    }

    /// A server with the gate on for `event` in front of `backend`
    /// (`http://127.0.0.1:port`), both on free loopback ports.
    pub async fn gated(event: &str, backend: &str, f: impl FnOnce(&mut Settings)) -> Self {
        let gate = boxoffice::config::GateSettings {
            listen: "127.0.0.1:0".parse().expect("addr"),
            event: EventId::new(event).expect("event id"),
            backend: boxoffice::config::GateSettings::parse_backend(backend).expect("backend"),
            timeout: Duration::from_secs(5),
            max_inflight: 64,
        };
        Self::start_inner(
            move |s| {
                s.gate = Some(gate);
                f(s)
            },
            Some(()),
        )
        .await
    }

    async fn start_inner(f: impl FnOnce(&mut Settings), gate: Option<()>) -> Self {
        let mut settings = Settings::new(ADMIN, SERVICE, SECRET);
        settings.limits.join_rate_per_s = 0;
        settings.limits.max_connections_per_client = settings.limits.max_connections;
        settings.shards = 4;
        f(&mut settings);
        let clock = Arc::new(ManualClock::new(start_time()));
        let server = Server::new(settings, clock.clone()).expect("valid settings");
        let handle = server.handle();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let gate_listener = match gate {
            Some(()) => Some(
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind gate"),
            ),
            None => None,
        };
        let gate = gate_listener
            .as_ref()
            .map(|l| l.local_addr().expect("gate addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve_gated(listener, gate_listener, async {
            let _ = rx.await;
        }));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build_http();
        TestServer {
            addr,
            gate,
            clock,
            handle,
            client,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Moves the clock and runs one driver step.
    pub fn advance(&self, ms: u64) {
        self.clock.advance_ms(ms);
        self.handle.tick();
    }

    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        Call {
            srv: self,
            method,
            path: path.to_string(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path).send().await
    }

    pub async fn admin_put(&self, path: &str, body: &Value) -> Resp {
        self.call(Method::PUT, path).admin().json(body).send().await
    }

    pub async fn service_post(&self, path: &str, body: &Value) -> Resp {
        self.call(Method::POST, path)
            .service()
            .json(body)
            .send()
            .await
    }

    pub async fn public_post(&self, path: &str, body: &Value) -> Resp {
        self.call(Method::POST, path).json(body).send().await
    }

    /// Stops the server and waits for it to exit.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(t) => tokio::time::timeout(Duration::from_secs(15), t)
                .await
                .expect("server stops in time")
                .expect("server task"),
            None => Ok(()),
        }
    }

    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub async fn join_server(&mut self) -> std::io::Result<()> {
        match self.task.take() {
            Some(t) => t.await.expect("server task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub struct Call<'a> {
    srv: &'a TestServer,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Call<'_> {
    pub fn bearer(mut self, token: &str) -> Self {
        self.headers
            .push(("authorization".into(), format!("Bearer {token}")));
        self
    }
    pub fn admin(self) -> Self {
        self.bearer(ADMIN)
    }
    pub fn service(self) -> Self {
        self.bearer(SERVICE)
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn json(mut self, v: &Value) -> Self {
        self.headers
            .push(("content-type".into(), "application/json".into()));
        self.body = Bytes::from(serde_json::to_vec(v).expect("json"));
        self
    }
    pub fn raw(mut self, content_type: Option<&str>, body: impl Into<Bytes>) -> Self {
        if let Some(ct) = content_type {
            self.headers.push(("content-type".into(), ct.into()));
        }
        self.body = body.into();
        self
    }
    pub async fn send(self) -> Resp {
        let mut b = Request::builder()
            .method(self.method)
            .uri(self.srv.url(&self.path));
        for (k, v) in &self.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let req = b.body(Full::new(self.body)).expect("request");
        let resp = tokio::time::timeout(Duration::from_secs(20), self.srv.client.request(req))
            .await
            .expect("answer in time")
            .expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "not JSON ({}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    /// The error code of an error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("<none>")
            .to_string()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts the status (and error code when given).
    #[track_caller]
    pub fn expect(&self, status: u16, code: Option<&str>) -> &Self {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        if let Some(c) = code {
            assert_eq!(
                self.code(),
                c,
                "body: {}",
                String::from_utf8_lossy(&self.body)
            );
        }
        self
    }
}

/// Rows `A-1` and `A-2`, 10 seats each (VIP and R).
pub fn small_event(queue: Option<Value>) -> Value {
    let mut e = json!({
        "name": "Test night",
        "seats": [
            {"section": "A", "row": "1", "first": 1, "last": 10, "category": "VIP"},
            {"section": "A", "row": "2", "first": 1, "last": 10, "category": "R"}
        ],
        "holds": {"ttl_s": 60, "max_ttl_s": 120, "max_seats_per_user": 4}
    });
    if let (Some(q), Some(o)) = (queue, e.as_object_mut()) {
        o.insert("queue".into(), q);
    }
    e
}

pub fn queue_cfg(capacity: u32, admit_per_s: u32) -> Value {
    json!({"capacity": capacity, "admit_per_s": admit_per_s, "session_ttl_s": 600,
           "idle_timeout_s": 86400, "max_waiting": 1000000, "prequeue": "fifo"})
}

/// Creates an event, asserting 201.
pub async fn create_event(srv: &TestServer, id: &str, body: &Value) -> Value {
    let r = srv.admin_put(&format!("/v1/events/{id}"), body).await;
    r.expect(201, None);
    r.json()
}

/// A user token for `user` in `event`, as the booking backend would mint it
/// with the server's secret (valid for 30 days of the test clock).
pub fn user_token(event: &str, user: &str) -> String {
    let key = PassKey::new(&boxoffice::config::kid(SECRET), SECRET).expect("test key");
    let exp = start_time().as_millis() / 1000 + 30 * 86_400;
    let (Ok(e), Ok(u)) = (EventId::new(event), UserId::new(user)) else {
        panic!("test ids: {event} {user}");
    };
    UserToken::new(&e, &u, exp).mint(&key)
}

/// The body of a public join of a `signed` event: the user and its token.
pub fn join_body(event: &str, user: &str) -> Value {
    json!({"user": user, "user_token": user_token(event, user)})
}

/// Joins a user publicly with a valid user token, returning the status
/// document.
pub async fn join(srv: &TestServer, event: &str, user: &str) -> Value {
    let r = srv
        .public_post(
            &format!("/v1/events/{event}/queue"),
            &join_body(event, user),
        )
        .await;
    assert!(
        r.status == 201 || r.status == 200,
        "join: {} {:?}",
        r.status,
        r.body
    );
    r.json()
}

pub async fn status(srv: &TestServer, event: &str, ticket: &str) -> Value {
    let r = srv.get(&format!("/v1/events/{event}/queue/{ticket}")).await;
    r.expect(200, None);
    r.json()
}
