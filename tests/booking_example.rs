//! The example booking backend (examples/booking) end to end, without the
//! gate: a boxoffice server in-process on a manual clock with the demo event,
//! the backend in-process in front of it, and requests that carry the
//! `Boxoffice-*` headers the gate would set from a verified pass.

#[path = "../examples/booking/app.rs"]
mod booking;

use boxoffice::{Handle, ManualClock, Server, Settings};
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

const ADMIN: &str = "admin-token-for-booking-tests";
const SERVICE: &str = "service-token-for-booking-tests";
const SECRET: &[u8] = b"a-booking-test-secret-of-32-bytes";

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    #[track_caller]
    fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.body);
        self
    }
    #[track_caller]
    fn has(&self, needle: &str) -> &Self {
        assert!(
            self.body.contains(needle),
            "{needle:?} missing in ({}): {}",
            self.status,
            self.body
        );
        self
    }
}

async fn call(
    client: &HttpClient,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, String)>,
) -> Answer {
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let payload = match body {
        Some((ct, s)) => {
            b = b.header("content-type", ct);
            Bytes::from(s)
        }
        None => Bytes::new(),
    };
    let req = b.body(Full::new(payload)).expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(20), client.request(req))
        .await
        .expect("answer in time")
        .expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// boxoffice with the demo event, and backends in front of it.
struct Rig {
    api: SocketAddr,
    clock: Arc<ManualClock>,
    handle: Handle,
    client: HttpClient,
    stops: Vec<oneshot::Sender<()>>,
}

impl Rig {
    async fn start() -> Rig {
        let mut settings = Settings::new(ADMIN, SERVICE, SECRET);
        settings.demo = true;
        settings.limits.join_rate_per_s = 0;
        settings.limits.max_connections_per_client = settings.limits.max_connections;
        settings.shards = 2;
        let start = boxoffice::wire::time::parse("2026-12-01T10:00:00Z").expect("time");
        let clock = Arc::new(ManualClock::new(start));
        let server = Server::new(settings, clock.clone()).expect("valid settings");
        let handle = server.handle();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let api = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(server.serve(listener, async {
            let _ = rx.await;
        }));
        let client = Client::builder(TokioExecutor::new()).build_http();
        Rig {
            api,
            clock,
            handle,
            client,
            stops: vec![tx],
        }
    }

    /// Starts an example backend for `event` with the given payment failure rate.
    async fn backend(&mut self, event: &str, fail_rate: f64) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let cfg = booking::Config {
            boxoffice: format!("http://{}", self.api),
            service_token: SERVICE.into(),
            event: event.into(),
            coupon: "demo-coupon".into(),
            fail_rate,
        };
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            booking::serve(listener, cfg, async {
                let _ = rx.await;
            })
            .await
            .expect("backend serves");
        });
        self.stops.push(tx);
        addr
    }

    fn api_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    async fn api_get(&self, path: &str, service: bool) -> Answer {
        let auth = format!("Bearer {SERVICE}");
        let h: Vec<(&str, &str)> = if service {
            vec![("authorization", auth.as_str())]
        } else {
            vec![]
        };
        call(&self.client, Method::GET, &self.api_url(path), &h, None).await
    }

    /// Joins `user` through the service realm and waits (on the manual
    /// clock) until admitted: the ticket and the pass, as the gate would have.
    async fn admit(&self, user: &str) -> (String, String) {
        let auth = format!("Bearer {SERVICE}");
        let joined = call(
            &self.client,
            Method::POST,
            &self.api_url("/v1/events/demo/queue"),
            &[("authorization", &auth)],
            Some(("application/json", json!({ "user": user }).to_string())),
        )
        .await;
        assert!(
            joined.status == 201 || joined.status == 200,
            "{}",
            joined.body
        );
        let ticket = joined.json()["ticket"]
            .as_str()
            .expect("a ticket")
            .to_string();
        for _ in 0..20 {
            self.clock.advance_ms(500);
            self.handle.tick();
            let doc = self
                .api_get(&format!("/v1/events/demo/queue/{ticket}"), false)
                .await
                .json();
            if let Some(pass) = doc["pass"].as_str() {
                return (ticket, pass.to_string());
            }
        }
        panic!("{user} was not admitted");
    }

    async fn row_status(&self, section: &str, row: &str) -> String {
        let doc = self
            .api_get(&format!("/v1/events/demo/seats?section={section}"), false)
            .await
            .json();
        doc["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["row"] == row)
            .and_then(|r| r["status"].as_str())
            .expect("the row")
            .to_string()
    }

    async fn coupon(&self) -> Value {
        self.api_get("/v1/coupons/demo-coupon", false).await.json()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        for tx in self.stops.drain(..) {
            let _ = tx.send(());
        }
    }
}

/// A visitor as the gate presents them to the backend.
struct Visitor<'a> {
    client: &'a HttpClient,
    base: String,
    user: String,
    ticket: String,
    pass: String,
}

impl Visitor<'_> {
    fn headers(&self) -> [(&str, &str); 3] {
        [
            ("boxoffice-user", self.user.as_str()),
            ("boxoffice-ticket", self.ticket.as_str()),
            ("boxoffice-pass", self.pass.as_str()),
        ]
    }
    async fn get(&self, path: &str) -> Answer {
        let url = format!("{}{path}", self.base);
        call(self.client, Method::GET, &url, &self.headers(), None).await
    }
    async fn post(&self, path: &str, form: &str) -> Answer {
        let url = format!("{}{path}", self.base);
        let body = Some(("application/x-www-form-urlencoded", form.to_string()));
        call(self.client, Method::POST, &url, &self.headers(), body).await
    }
    /// Holds through the backend's form; the hold id from the redirect.
    async fn hold(&self, form: &str) -> String {
        let r = self.post("/hold", form).await;
        r.expect(303);
        let to = r.header("location").expect("a Location").to_string();
        let id = to
            .strip_prefix("/checkout?hold=")
            .unwrap_or_else(|| panic!("redirect to the checkout: {to}"));
        id.to_string()
    }
}

fn visitor<'a>(
    rig: &'a Rig,
    backend: SocketAddr,
    user: &str,
    tp: &(String, String),
) -> Visitor<'a> {
    Visitor {
        client: &rig.client,
        base: format!("http://{backend}"),
        user: user.into(),
        ticket: tp.0.clone(),
        pass: tp.1.clone(),
    }
}

#[tokio::test]
async fn without_the_gate_headers_the_backend_refuses() {
    let mut rig = Rig::start().await;
    let b = rig.backend("demo", 0.0).await;
    let base = format!("http://{b}");
    let health = call(
        &rig.client,
        Method::GET,
        &format!("{base}/healthz"),
        &[],
        None,
    )
    .await;
    health.expect(200);
    assert_eq!(health.body.trim(), "ok");
    for path in ["/", "/checkout?hold=x"] {
        call(
            &rig.client,
            Method::GET,
            &format!("{base}{path}"),
            &[],
            None,
        )
        .await
        .expect(403)
        .has("id=\"no-pass\"")
        .has("through the line");
    }
    // A header or two is not a visitor either.
    call(
        &rig.client,
        Method::POST,
        &format!("{base}/hold"),
        &[("boxoffice-user", "u-1")],
        Some(("application/x-www-form-urlencoded", "seat=A-1-1".into())),
    )
    .await
    .expect(403);
    assert_eq!(rig.row_status("A", "1").await, "F".repeat(20));
}

#[tokio::test]
async fn seat_map_hold_pay_fail_compensates_then_pay_confirms() {
    let mut rig = Rig::start().await;
    let failing = rig.backend("demo", 1.0).await;
    let paying = rig.backend("demo", 0.0).await;
    let tp = rig.admit("u-1").await;
    let fail = visitor(&rig, failing, "u-1", &tp);
    let ok = visitor(&rig, paying, "u-1", &tp);

    // The seat map: every demo seat free, a checkbox each, both forms.
    let map = fail.get("/").await;
    map.expect(200)
        .has("<input type=\"checkbox\" name=\"seat\" id=\"seat-A-1-3\" value=\"A-1-3\">")
        .has("value=\"C-10-40\"")
        .has("id=\"hold-selected\"")
        .has("id=\"hold-best\"")
        .has("<strong id=\"user\">u-1</strong>")
        .has("<span id=\"free-count\">760</span>");
    assert_eq!(map.body.matches("name=\"seat\"").count(), 760);
    assert!(!map.body.contains(" disabled>"), "nothing is taken yet");

    let before = rig.coupon().await;
    let remaining = before["remaining"].as_u64().expect("remaining");

    // Payment fails: the seats come free at once and the coupon goes back.
    let hold = fail.hold("seat=A-1-1&seat=A-1-2").await;
    assert_eq!(rig.row_status("A", "1").await.get(..2), Some("HH"));
    fail.get(&format!("/checkout?hold={hold}"))
        .await
        .expect(200)
        .has("<li>A-1-1</li><li>A-1-2</li>")
        .has("id=\"use-coupon\"")
        .has("id=\"pay\"")
        .has("id=\"expires-in\">600<");
    // While held, the map shows the seats taken.
    fail.get("/")
        .await
        .has("id=\"seat-A-1-1\" value=\"A-1-1\" disabled>");
    let failed = fail.post("/pay", &format!("hold={hold}&coupon=on")).await;
    failed
        .has("id=\"payment-failed\"")
        .has("A-1-1, A-1-2 were released")
        .has("returned to stock")
        .has("id=\"back-to-seats\"");
    assert_eq!(failed.header("boxoffice-command"), None);
    assert_eq!(rig.row_status("A", "1").await, "F".repeat(20));
    let h = rig
        .api_get(&format!("/v1/events/demo/holds/{hold}"), true)
        .await;
    assert_eq!(h.json()["state"], "released", "{}", h.body);
    let after = rig.coupon().await;
    assert_eq!(after["remaining"].as_u64(), Some(remaining));
    assert_eq!(after["issued"], before["issued"]);

    // Payment succeeds: sold, coupon used, and the gate is told "complete".
    let hold = ok.hold("seat=A-1-1&seat=A-1-2").await;
    let done = ok.post("/pay", &format!("hold={hold}&coupon=on")).await;
    done.expect(200)
        .has("id=\"confirmed\"")
        .has("<ul id=\"confirmed-seats\" class=\"seats\"><li>A-1-1</li><li>A-1-2</li></ul>")
        .has("id=\"confirmed-coupon\"");
    assert_eq!(done.header("boxoffice-command"), Some("complete"));
    assert_eq!(rig.row_status("A", "1").await.get(..3), Some("SSF"));
    let h = rig
        .api_get(&format!("/v1/events/demo/holds/{hold}"), true)
        .await;
    assert_eq!(h.json()["state"], "sold", "{}", h.body);
    assert_eq!(
        rig.coupon().await["remaining"].as_u64(),
        Some(remaining - 1)
    );
    // Paying again does not sell or claim twice.
    ok.post("/pay", &format!("hold={hold}&coupon=on"))
        .await
        .expect(200)
        .has("id=\"already-paid\"");
    assert_eq!(
        rig.coupon().await["remaining"].as_u64(),
        Some(remaining - 1)
    );

    // Taken seats: the map again, with the API's error code.
    ok.post("/hold", "seat=A-1-2&seat=A-1-5")
        .await
        .expect(409)
        .has("id=\"message\"")
        .has("A-1-2")
        .has("(seats_unavailable)")
        .has("id=\"seat-A-1-2\" value=\"A-1-2\" disabled>");
    ok.post("/hold", "seat=Q-1-1")
        .await
        .expect(422)
        .has("(unknown_seat)");
    ok.post("/hold", "nonce=abcdefgh")
        .await
        .expect(422)
        .has("Pick at least one seat");
    // Best available: two more are allowed (4 a user), a fifth is not.
    let best = ok.hold("best=2&category=R").await;
    ok.get(&format!("/checkout?hold={best}"))
        .await
        .expect(200)
        .has("<li>B-");
    ok.post("/hold", "best=1&category=S")
        .await
        .expect(422)
        .has("(limit_exceeded)");
    // Someone else's hold is nobody's business.
    let tp2 = rig.admit("u-2").await;
    let other = visitor(&rig, paying, "u-2", &tp2);
    other
        .get(&format!("/checkout?hold={best}"))
        .await
        .expect(404)
        .has("id=\"hold-missing\"");
    other
        .post("/pay", &format!("hold={best}"))
        .await
        .expect(404);
    // A pass that is not this user's is refused by boxoffice, and said so.
    let forged = Visitor {
        pass: tp.1.clone(),
        ..visitor(&rig, paying, "u-2", &tp2)
    };
    forged
        .post("/hold", "seat=C-1-1")
        .await
        .expect(403)
        .has("(pass_invalid)");
    // Giving seats back: on sale again at once (and room for others).
    ok.get(&format!("/checkout?hold={best}"))
        .await
        .has("id=\"release\"");
    ok.post("/release", &format!("hold={best}"))
        .await
        .expect(200)
        .has("are back on sale")
        .has("role=\"status\"");
    let h = rig
        .api_get(&format!("/v1/events/demo/holds/{best}"), true)
        .await;
    assert_eq!(h.json()["state"], "released", "{}", h.body);
    assert_eq!(rig.row_status("B", "1").await, "F".repeat(30));
    ok.hold("seat=C-1-1").await;
}

#[tokio::test]
async fn what_the_api_says_is_escaped() {
    let mut rig = Rig::start().await;
    let auth = format!("Bearer {ADMIN}");
    let event = json!({
        "name": "<script>alert(1)</script> & \"friends\"",
        "seats": [{"section": "A", "row": "1", "first": 1, "last": 2, "category": "<b>V\"IP</b>"}]
    });
    call(
        &rig.client,
        Method::PUT,
        &rig.api_url("/v1/events/xss"),
        &[("authorization", &auth)],
        Some(("application/json", event.to_string())),
    )
    .await
    .expect(201);
    let b = rig.backend("xss", 0.0).await;
    let v = Visitor {
        client: &rig.client,
        base: format!("http://{b}"),
        user: "<i>me</i>".into(),
        ticket: "t".into(),
        pass: "p".into(),
    };
    let map = v.get("/").await;
    map.expect(200)
        .has("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;friends&quot;")
        .has("value=\"A-1-2\"")
        .has("&lt;b&gt;V&quot;IP&lt;/b&gt;")
        .has("&lt;i&gt;me&lt;/i&gt;");
    assert!(!map.body.contains("<script>"));
    assert!(!map.body.contains("<b>"));
    assert!(!map.body.contains("<i>me"));
}
