//! The example booking backend's server: what a ticketing team's own site
//! does behind the gate, in one small file. It never sees a visitor who is
//! not admitted: the gate sets `Boxoffice-User`, `Boxoffice-Ticket` and
//! `Boxoffice-Pass` from a verified pass on every request it forwards, and
//! this server trusts them because only the gate can reach it (it listens
//! on loopback). Everything it knows about seats, holds and coupons it asks
//! boxoffice for through the service API, with the visitor's pass.
//!
//! Pages: `GET /` the seat map, `POST /hold`, `GET /checkout?hold=ID`,
//! `POST /pay` (a simulated payment that fails at `--fail-rate`, and then
//! releases the hold and returns the coupon: the compensation step), and
//! `GET /healthz`. The confirmation page carries `Boxoffice-Command:
//! complete`, which tells the gate the visitor is done so the slot goes to
//! the next person in line.
//!
//! Tests include this file with `#[path = "../examples/booking/app.rs"]` and
//! run [`serve`] in-process.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// What the backend needs to know; `main.rs` fills it from flags and env.
#[derive(Clone)]
pub struct Config {
    /// Base URL of the boxoffice API (`http://127.0.0.1:8080`).
    pub boxoffice: String,
    /// Bearer token of the service realm.
    pub service_token: String,
    /// The event on sale.
    pub event: String,
    /// The coupon a visitor may apply at checkout.
    pub coupon: String,
    /// Probability (0.0–1.0) that the simulated payment fails.
    pub fail_rate: f64,
}

// By hand: the service token must never reach a log line.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("boxoffice", &self.boxoffice)
            .field("service_token", &"<redacted>")
            .field("event", &self.event)
            .field("coupon", &self.coupon)
            .field("fail_rate", &self.fail_rate)
            .finish()
    }
}

impl Config {
    /// Checks what would otherwise fail on the first request.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.fail_rate) {
            return Err("the fail rate must be between 0.0 and 1.0".into());
        }
        let base = self.boxoffice.trim_end_matches('/');
        match base.parse::<Uri>() {
            Ok(u) if u.scheme_str() == Some("http") && u.authority().is_some() => {}
            _ => return Err("the boxoffice URL must look like http://host:port".into()),
        }
        if self.service_token.is_empty() {
            return Err("a service token is needed (--service-token)".into());
        }
        for (what, id) in [("event", &self.event), ("coupon", &self.coupon)] {
            let ok = !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok {
                return Err(format!("the {what} id is not a boxoffice id"));
            }
        }
        Ok(())
    }
}

/// Serves until `shutdown` resolves, then lets open requests finish (at
/// most a few seconds).
pub async fn serve(
    listener: TcpListener,
    cfg: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    cfg.validate()
        .map_err(|m| std::io::Error::new(std::io::ErrorKind::InvalidInput, m))?;
    let app = Arc::new(App::new(cfg));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning on the error.
                        eprintln!("booking: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let svc = service_fn(move |req| handle(app.clone(), req));
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

/// Largest form body a page posts (a full seat selection is far less).
const MAX_FORM: usize = 64 * 1024;
/// Largest API answer read (a seat map of a big section fits).
const MAX_API_BODY: usize = 8 * 1024 * 1024;
/// How long one API call may take before the page says the service is slow.
const API_TIMEOUT: Duration = Duration::from_secs(10);
/// Most seats one form may name: the API caps a user far lower anyway.
const MAX_SEATS_IN_FORM: usize = 64;

type Resp = Response<Full<Bytes>>;

struct App {
    cfg: Config,
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// The admitted visitor, as the gate names them.
struct Visitor {
    user: String,
    ticket: String,
    pass: String,
}

impl Visitor {
    fn from_headers(h: &HeaderMap) -> Option<Visitor> {
        // User ids are UTF-8 (API.md), so not `to_str`, which is ASCII only.
        let get = |name: &str| {
            let v = h.get(name)?;
            let s = std::str::from_utf8(v.as_bytes()).ok()?.trim();
            (!s.is_empty()).then(|| s.to_string())
        };
        Some(Visitor {
            user: get("boxoffice-user")?,
            ticket: get("boxoffice-ticket")?,
            pass: get("boxoffice-pass")?,
        })
    }
}

/// Why an API call did not succeed.
enum ApiFail {
    /// Boxoffice could not be reached or answered garbage.
    Down(String),
    /// Boxoffice answered an error: status, code, message and the whole body.
    Rejected {
        status: StatusCode,
        code: String,
        message: String,
        body: Value,
    },
}

impl ApiFail {
    fn code(&self) -> &str {
        match self {
            ApiFail::Down(_) => "unreachable",
            ApiFail::Rejected { code, .. } => code,
        }
    }

    /// The status this backend answers with when the call fails.
    fn status(&self) -> StatusCode {
        match self {
            ApiFail::Down(_) => StatusCode::BAD_GATEWAY,
            // An error of boxoffice itself is not the visitor's fault.
            ApiFail::Rejected { status, .. } if status.is_server_error() => StatusCode::BAD_GATEWAY,
            ApiFail::Rejected { status, .. } => *status,
        }
    }

    /// A sentence for the page, naming the error code.
    fn describe(&self) -> String {
        match self {
            ApiFail::Down(why) => format!("The ticketing service cannot be reached ({why})."),
            ApiFail::Rejected { code, message, .. } => format!("{message} ({code})"),
        }
    }
}

/// Which realm an API call is made in.
#[derive(Clone, Copy, PartialEq)]
enum Realm {
    Public,
    Service,
}

impl App {
    fn new(cfg: Config) -> App {
        let base = cfg.boxoffice.trim_end_matches('/').to_string();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_timer(TokioTimer::new())
            .build_http();
        App { cfg, base, client }
    }

    async fn api(
        &self,
        method: Method,
        path: &str,
        realm: Realm,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ApiFail> {
        let uri: Uri = format!("{}{path}", self.base)
            .parse()
            .map_err(|e| ApiFail::Down(format!("bad URL: {e}")))?;
        let mut b = Request::builder().method(method).uri(uri);
        if realm == Realm::Service {
            b = b.header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.cfg.service_token),
            );
        }
        if let Some(k) = idempotency_key {
            b = b.header("idempotency-key", k);
        }
        let payload = match body {
            Some(v) => {
                b = b.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let req = b
            .body(Full::new(payload))
            .map_err(|e| ApiFail::Down(format!("bad request: {e}")))?;
        let call = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| ApiFail::Down(e.to_string()))?;
            let status = resp.status();
            let bytes = Limited::new(resp.into_body(), MAX_API_BODY)
                .collect()
                .await
                .map_err(|e| ApiFail::Down(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, ApiFail>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(API_TIMEOUT, call)
            .await
            .map_err(|_| ApiFail::Down("no answer in time".into()))??;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|_| ApiFail::Down(format!("a {status} answer that is not JSON")))?
        };
        if status.is_success() {
            return Ok(value);
        }
        let err = &value["error"];
        Err(ApiFail::Rejected {
            status,
            code: err["code"].as_str().unwrap_or("unknown").to_string(),
            message: err["message"]
                .as_str()
                .unwrap_or("the ticketing service refused the request")
                .to_string(),
            body: value.clone(),
        })
    }

    fn event_path(&self, rest: &str) -> String {
        format!("/v1/events/{}{rest}", self.cfg.event)
    }
}

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if path == "/healthz" {
        return Ok(match method {
            Method::GET | Method::HEAD => text(StatusCode::OK, "ok\n"),
            _ => not_allowed(),
        });
    }
    let Some(visitor) = Visitor::from_headers(req.headers()) else {
        return Ok(html(
            StatusCode::FORBIDDEN,
            &page(
                "Come through the line",
                None,
                "<section id=\"no-pass\"><h1>Come through the line</h1>\
                 <p>This shop is only reachable through the waiting room. \
                 Open the site's public address and wait for your turn; \
                 you will be let in automatically.</p></section>",
            ),
        ));
    };
    let resp = match (method, path.as_str()) {
        (Method::GET | Method::HEAD, "/") => seat_map(&app, &visitor, None).await,
        (Method::POST, "/hold") => match read_form(req).await {
            Ok(form) => hold(&app, &visitor, &form).await,
            Err(r) => r,
        },
        (Method::GET | Method::HEAD, "/checkout") => {
            let form = parse_form(req.uri().query().unwrap_or("").as_bytes());
            checkout(&app, &visitor, first(&form, "hold")).await
        }
        (Method::POST, "/pay") => match read_form(req).await {
            Ok(form) => pay(&app, &visitor, &form).await,
            Err(r) => r,
        },
        (Method::POST, "/release") => match read_form(req).await {
            Ok(form) => release(&app, &visitor, &form).await,
            Err(r) => r,
        },
        (_, "/" | "/hold" | "/checkout" | "/pay" | "/release") => not_allowed(),
        _ => message_page(
            StatusCode::NOT_FOUND,
            &visitor,
            "Not found",
            "not-found",
            "There is no such page here.",
        ),
    };
    Ok(resp)
}

// ---------------------------------------------------------------- seat map

/// One row range of the event layout (from the event document).
struct RowRange {
    section: String,
    row: String,
    first: u64,
    last: u64,
    category: String,
}

/// Renders the seat map, optionally with a message (an error of a hold).
async fn seat_map(app: &App, v: &Visitor, msg: Option<(StatusCode, String)>) -> Resp {
    let event = match app
        .api(Method::GET, &app.event_path(""), Realm::Public, None, None)
        .await
    {
        Ok(e) => e,
        Err(f) => return api_failure_page(v, "The event could not be read", &f),
    };
    let ranges: Vec<RowRange> = event["seats"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    Some(RowRange {
                        section: r["section"].as_str()?.to_string(),
                        row: r["row"].as_str()?.to_string(),
                        first: r["first"].as_u64()?,
                        last: r["last"].as_u64()?,
                        category: r["category"].as_str()?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut sections: Vec<&str> = Vec::new();
    for r in &ranges {
        if !sections.contains(&r.section.as_str()) {
            sections.push(&r.section);
        }
    }
    let reads = sections.iter().map(|s| {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("section", s)
            .finish();
        let path = app.event_path(&format!("/seats?{q}"));
        async move { app.api(Method::GET, &path, Realm::Public, None, None).await }
    });
    let docs = futures_util::future::join_all(reads).await;

    let name = event["name"].as_str().unwrap_or(&app.cfg.event);
    let free = event["free"].as_u64().unwrap_or(0);
    let max_seats = event["holds"]["max_seats_per_user"].as_u64().unwrap_or(4);
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>{}</h1><p class=\"lead\"><span id=\"free-count\">{free}</span> seats free. \
         Pick up to {max_seats} seats, or let us choose the best available.</p>",
        esc(name)
    );
    let status = match msg {
        Some((status, m)) => {
            // A refusal is an alert; a plain report (seats given back) is not.
            let (class, role) = if status.is_success() {
                ("notice", "status")
            } else {
                ("notice error", "alert")
            };
            let _ = write!(
                body,
                "<p id=\"message\" class=\"{class}\" role=\"{role}\">{}</p>",
                esc(&m)
            );
            status
        }
        None => StatusCode::OK,
    };

    // Best available: one form, count and category.
    let mut categories: Vec<(String, u64)> = Vec::new();
    if let Some(cats) = event["categories"].as_object() {
        for (c, counts) in cats {
            categories.push((c.clone(), counts["free"].as_u64().unwrap_or(0)));
        }
    }
    let _ = write!(
        body,
        "<form id=\"best-form\" class=\"card\" method=\"post\" action=\"/hold\">\
         <h2>Best available</h2>\
         <input type=\"hidden\" name=\"nonce\" value=\"{}\">\
         <label>Seats <select id=\"best-count\" name=\"best\">",
        nonce()
    );
    for n in 1..=max_seats.min(10) {
        let sel = if n == 2 { " selected" } else { "" };
        let _ = write!(body, "<option value=\"{n}\"{sel}>{n}</option>");
    }
    body.push_str(
        "</select></label> <label>Category <select id=\"best-category\" name=\"category\">",
    );
    for (c, free) in &categories {
        let _ = write!(
            body,
            "<option value=\"{0}\">{0} ({free} free)</option>",
            esc(c)
        );
    }
    body.push_str(
        "</select></label> <button type=\"submit\" id=\"hold-best\">Hold best seats</button></form>",
    );

    // The map: a checkbox per seat, taken ones disabled.
    let _ = write!(
        body,
        "<form id=\"seat-form\" class=\"card\" method=\"post\" action=\"/hold\">\
         <h2>Pick your seats</h2>\
         <input type=\"hidden\" name=\"nonce\" value=\"{}\">\
         <p class=\"legend\"><span class=\"seat free\">free</span> \
         <span class=\"seat held\">held</span> <span class=\"seat sold\">sold</span></p>",
        nonce()
    );
    for (section, doc) in sections.iter().zip(&docs) {
        let _ = write!(
            body,
            "<fieldset class=\"section\" id=\"section-{0}\"><legend>Section {0}</legend>",
            esc(section)
        );
        match doc {
            Err(f) => {
                let _ = write!(
                    body,
                    "<p class=\"notice error\">This section could not be read: {}</p>",
                    esc(&f.describe())
                );
            }
            Ok(doc) => {
                for row in doc["rows"].as_array().into_iter().flatten() {
                    let (Some(r), Some(first), Some(status)) = (
                        row["row"].as_str(),
                        row["first"].as_u64(),
                        row["status"].as_str(),
                    ) else {
                        continue;
                    };
                    let _ = write!(
                        body,
                        "<div class=\"row\"><span class=\"row-label\">Row {}</span>",
                        esc(r)
                    );
                    for (i, letter) in status.chars().enumerate() {
                        let n = first.saturating_add(i as u64);
                        let seat = format!("{section}-{r}-{n}");
                        let category = ranges
                            .iter()
                            .find(|x| {
                                x.section == *section
                                    && x.row == r
                                    && (x.first..=x.last).contains(&n)
                            })
                            .map_or("", |x| x.category.as_str());
                        let (class, attr, what) = match letter {
                            'F' => ("free", "", "free"),
                            'H' => ("held", " disabled", "held"),
                            _ => ("sold", " disabled", "sold"),
                        };
                        let _ = write!(
                            body,
                            "<label class=\"seat {class}\" title=\"{seat} · {cat} · {what}\">\
                             <input type=\"checkbox\" name=\"seat\" id=\"seat-{seat}\" \
                             value=\"{seat}\"{attr}><span>{n}</span></label>",
                            seat = esc(&seat),
                            cat = esc(category),
                        );
                    }
                    body.push_str("</div>");
                }
            }
        }
        body.push_str("</fieldset>");
    }
    body.push_str(
        "<p><button type=\"submit\" id=\"hold-selected\">Hold selected seats</button></p></form>",
    );
    html(status, &page("Seats", Some(v), &body))
}

// -------------------------------------------------------------------- hold

async fn hold(app: &App, v: &Visitor, form: &[(String, String)]) -> Resp {
    let mut req = json!({"user": v.user, "pass": v.pass});
    if let Some(best) = first(form, "best") {
        let count = match best.trim().parse::<u32>() {
            Ok(n) if (1..=64).contains(&n) => n,
            _ => {
                let m = "Choose how many seats you want (a number).".to_string();
                return seat_map(app, v, Some((StatusCode::UNPROCESSABLE_ENTITY, m))).await;
            }
        };
        let category = first(form, "category").unwrap_or("").trim();
        if category.is_empty() {
            let m = "Choose a category.".to_string();
            return seat_map(app, v, Some((StatusCode::UNPROCESSABLE_ENTITY, m))).await;
        }
        req["best"] = json!({"count": count, "category": category});
    } else {
        let seats: Vec<&str> = form
            .iter()
            .filter(|(k, _)| k == "seat")
            .map(|(_, s)| s.as_str())
            .collect();
        if seats.is_empty() {
            let m = "Pick at least one seat first.".to_string();
            return seat_map(app, v, Some((StatusCode::UNPROCESSABLE_ENTITY, m))).await;
        }
        if seats.len() > MAX_SEATS_IN_FORM {
            let m = "That is far too many seats for one order.".to_string();
            return seat_map(app, v, Some((StatusCode::UNPROCESSABLE_ENTITY, m))).await;
        }
        req["seats"] = json!(seats);
    }
    // The form's nonce makes a double submit (or a retry after a lost
    // answer) the same hold, not a second one.
    let key = format!("hold-{}", form_nonce(form));
    let path = app.event_path("/holds");
    match app
        .api(Method::POST, &path, Realm::Service, Some(&req), Some(&key))
        .await
    {
        Ok(doc) => match doc["hold"].as_str() {
            Some(id) => {
                let q: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("hold", id)
                    .finish();
                redirect(&format!("/checkout?{q}"))
            }
            None => {
                let f = ApiFail::Down("a hold answer without a hold id".into());
                seat_map(app, v, Some((f.status(), f.describe()))).await
            }
        },
        Err(f) => {
            let m = hold_failure(&f);
            seat_map(app, v, Some((f.status(), m))).await
        }
    }
}

/// What the visitor reads when a hold is refused.
fn hold_failure(f: &ApiFail) -> String {
    let ApiFail::Rejected { code, body, .. } = f else {
        return f.describe();
    };
    match code.as_str() {
        "seats_unavailable" => {
            let taken: Vec<&str> = body["error"]["seats"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if taken.is_empty() {
                format!(
                    "Those seats are no longer available. Please pick others. ({})",
                    f.code()
                )
            } else {
                format!(
                    "Already taken: {}. Please pick other seats. ({})",
                    taken.join(", "),
                    f.code()
                )
            }
        }
        "limit_exceeded" => format!(
            "That is more seats than one person may have for this event. ({})",
            f.code()
        ),
        "pass_invalid" | "pass_required" => format!(
            "Your visit has ended or your pass is no longer valid; go back through the line. ({})",
            f.code()
        ),
        _ => f.describe(),
    }
}

// ---------------------------------------------------------------- checkout

/// The hold of `id` if it is the visitor's (another visitor's hold is "not
/// found": its id is no key to it).
async fn own_hold(app: &App, v: &Visitor, id: Option<&str>) -> Result<(String, Value), Resp> {
    let not_found = || {
        message_page(
            StatusCode::NOT_FOUND,
            v,
            "No such hold",
            "hold-missing",
            "We could not find that reservation. Pick your seats again.",
        )
    };
    let Some(id) = id.map(str::trim).filter(|s| !s.is_empty()) else {
        return Err(not_found());
    };
    let path = app.event_path(&format!("/holds/{}", path_segment(id)));
    match app
        .api(Method::GET, &path, Realm::Service, None, None)
        .await
    {
        Ok(doc) if doc["user"].as_str() == Some(v.user.as_str()) => Ok((id.to_string(), doc)),
        Ok(_) => Err(not_found()),
        Err(f @ ApiFail::Rejected { status, .. }) if status.is_client_error() => {
            if f.code() == "hold_not_found" {
                Err(not_found())
            } else {
                Err(api_failure_page(v, "The reservation could not be read", &f))
            }
        }
        Err(f) => Err(api_failure_page(v, "The reservation could not be read", &f)),
    }
}

fn seats_of(doc: &Value) -> Vec<String> {
    doc["seats"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn seat_list(id: &str, seats: &[String]) -> String {
    let mut s = format!("<ul id=\"{id}\" class=\"seats\">");
    for seat in seats {
        let _ = write!(s, "<li>{}</li>", esc(seat));
    }
    s.push_str("</ul>");
    s
}

/// A hold that can no longer be paid for: sold, released or expired.
fn hold_over(v: &Visitor, doc: &Value) -> Resp {
    match doc["state"].as_str() {
        Some("sold") => message_page(
            StatusCode::OK,
            v,
            "Already paid",
            "already-paid",
            "These seats are already yours; the order is complete.",
        ),
        Some(state) => message_page(
            StatusCode::GONE,
            v,
            "Reservation ended",
            "hold-ended",
            &format!(
                "This reservation is {state}: the seats are no longer held for you. \
                 Pick your seats again."
            ),
        ),
        None => message_page(
            StatusCode::BAD_GATEWAY,
            v,
            "Reservation unreadable",
            "hold-ended",
            "The ticketing service sent a reservation without a state.",
        ),
    }
}

async fn checkout(app: &App, v: &Visitor, id: Option<&str>) -> Resp {
    let (id, doc) = match own_hold(app, v, id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if doc["state"].as_str() != Some("held") {
        return hold_over(v, &doc);
    }
    let seats = seats_of(&doc);
    let expires = doc["expires_in_s"].as_u64().unwrap_or(0);
    let coupon_path = format!("/v1/coupons/{}", app.cfg.coupon);
    let remaining = match app
        .api(Method::GET, &coupon_path, Realm::Public, None, None)
        .await
    {
        Ok(c) => c["remaining"].as_u64(),
        Err(_) => None,
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Checkout</h1><section class=\"card\" id=\"hold\"><h2>Your seats</h2>{}\
         <p>Held for you for <strong id=\"expires-in\">{expires}</strong> more seconds \
         (<span id=\"expires-in-words\">{}</span>).</p></section>",
        seat_list("hold-seats", &seats),
        words(expires)
    );
    let coupon_note = match remaining {
        Some(0) => " (all gone; you may still try)".to_string(),
        Some(n) => format!(" ({n} left)"),
        None => String::new(),
    };
    let _ = write!(
        body,
        "<form id=\"pay-form\" class=\"card\" method=\"post\" action=\"/pay\">\
         <input type=\"hidden\" name=\"hold\" value=\"{hold}\">\
         <p><label><input type=\"checkbox\" id=\"use-coupon\" name=\"coupon\" value=\"on\"> \
         Apply coupon <code>{coupon}</code>{note}</label></p>\
         <p class=\"small\">Payment is simulated; it fails {rate}% of the time, \
         which releases your seats and gives the coupon back.</p>\
         <p><button type=\"submit\" id=\"pay\">Pay</button> \
         <button type=\"submit\" id=\"release\" class=\"secondary\" formaction=\"/release\">\
         Give the seats back</button> \
         <a href=\"/\" id=\"back-to-seats\">Back to the seat map</a></p></form>",
        hold = esc(&id),
        coupon = esc(&app.cfg.coupon),
        note = esc(&coupon_note),
        rate = (app.cfg.fail_rate * 100.0).round(),
    );
    html(StatusCode::OK, &page("Checkout", Some(v), &body))
}

/// The visitor changed their mind: the seats go back on sale at once.
async fn release(app: &App, v: &Visitor, form: &[(String, String)]) -> Resp {
    let (id, doc) = match own_hold(app, v, first(form, "hold")).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if doc["state"].as_str() != Some("held") {
        return hold_over(v, &doc);
    }
    let path = app.event_path(&format!("/holds/{}", path_segment(&id)));
    match app
        .api(Method::DELETE, &path, Realm::Service, None, None)
        .await
    {
        Ok(_) => {
            let m = format!("Seats {} are back on sale.", seats_of(&doc).join(", "));
            seat_map(app, v, Some((StatusCode::OK, m))).await
        }
        Err(f) => api_failure_page(v, "The seats could not be given back", &f),
    }
}

// --------------------------------------------------------------------- pay

/// A coupon claim made for this order.
struct Claim {
    id: String,
    remaining: Option<u64>,
}

async fn pay(app: &App, v: &Visitor, form: &[(String, String)]) -> Resp {
    let (id, doc) = match own_hold(app, v, first(form, "hold")).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if doc["state"].as_str() != Some("held") {
        return hold_over(v, &doc);
    }
    let seats = seats_of(&doc);
    let hold_path = app.event_path(&format!("/holds/{}", path_segment(&id)));

    // The coupon first: if it cannot be had, the visitor learns it on the
    // result page; it never stops the order.
    let mut notes: Vec<String> = Vec::new();
    let mut claim: Option<Claim> = None;
    if first(form, "coupon").is_some() {
        let path = format!("/v1/coupons/{}/claims", app.cfg.coupon);
        // One claim per hold, whatever the retries.
        let key = idempotency_key("claim", &id);
        match app
            .api(
                Method::POST,
                &path,
                Realm::Service,
                Some(&json!({"user": v.user})),
                Some(&key),
            )
            .await
        {
            Ok(c) => match c["claim"].as_str() {
                Some(cid) => {
                    claim = Some(Claim {
                        id: cid.to_string(),
                        remaining: c["remaining"].as_u64(),
                    })
                }
                None => notes.push("The coupon answer carried no claim; no coupon applied.".into()),
            },
            Err(f) => notes.push(match f.code() {
                "already_claimed" => format!(
                    "You have already used coupon {}; no coupon applied. (already_claimed)",
                    app.cfg.coupon
                ),
                "sold_out" => format!(
                    "Coupon {} is sold out; no coupon applied. (sold_out)",
                    app.cfg.coupon
                ),
                "not_open" => format!(
                    "Coupon {} cannot be claimed right now; no coupon applied. (not_open)",
                    app.cfg.coupon
                ),
                _ => format!("No coupon applied: {}", f.describe()),
            }),
        }
    }

    if roll() < app.cfg.fail_rate {
        // The compensation step: nothing of the failed order stays taken.
        let mut undone: Vec<String> = Vec::new();
        match app
            .api(Method::DELETE, &hold_path, Realm::Service, None, None)
            .await
        {
            Ok(_) => undone.push(format!(
                "Your seats {} were released at once.",
                seats.join(", ")
            )),
            Err(f) => undone.push(format!(
                "The seats could not be released now; they free themselves when the hold \
                 expires. {}",
                f.describe()
            )),
        }
        if let Some(c) = &claim {
            undone.push(release_claim(app, c).await);
        }
        let mut body = String::from(
            "<section id=\"payment-failed\" class=\"card error\"><h1>Payment failed</h1>\
             <p>The (simulated) payment was declined. Nothing was charged.</p><ul>",
        );
        for line in undone.iter().chain(&notes) {
            let _ = write!(body, "<li>{}</li>", esc(line));
        }
        body.push_str(
            "</ul><p><a href=\"/\" id=\"back-to-seats\">Back to the seat map</a> \
             to try again.</p></section>",
        );
        return html(
            StatusCode::PAYMENT_REQUIRED,
            &page("Payment failed", Some(v), &body),
        );
    }

    let order = order_id();
    let confirmed = app
        .api(
            Method::POST,
            &format!("{hold_path}/confirm"),
            Realm::Service,
            Some(&json!({"order": order})),
            None,
        )
        .await;
    if let Err(f) = confirmed {
        // No order, so no coupon either.
        let mut lines = vec![match f.code() {
            "hold_expired" => {
                "Your reservation ran out before the payment went through. (hold_expired)"
                    .to_string()
            }
            _ => format!("The order could not be confirmed: {}", f.describe()),
        }];
        if let Some(c) = &claim {
            lines.push(release_claim(app, c).await);
        }
        let mut body = String::from(
            "<section id=\"confirm-failed\" class=\"card error\"><h1>Order not completed</h1><ul>",
        );
        for l in &lines {
            let _ = write!(body, "<li>{}</li>", esc(l));
        }
        body.push_str(
            "</ul><p><a href=\"/\" id=\"back-to-seats\">Back to the seat map</a></p></section>",
        );
        return html(f.status(), &page("Order not completed", Some(v), &body));
    }

    let mut body = format!(
        "<section id=\"confirmed\" class=\"card ok\"><h1>Booked!</h1>\
         <p>Order <code id=\"order\">{}</code> is confirmed. Your seats:</p>{}",
        esc(&order),
        seat_list("confirmed-seats", &seats)
    );
    if let Some(c) = &claim {
        let left = c
            .remaining
            .map(|n| format!(" ({n} left for others)"))
            .unwrap_or_default();
        let _ = write!(
            body,
            "<p id=\"confirmed-coupon\">Coupon <code>{}</code> applied{}.</p>",
            esc(&app.cfg.coupon),
            esc(&left)
        );
    }
    for n in &notes {
        let _ = write!(body, "<p class=\"notice\">{}</p>", esc(n));
    }
    body.push_str(
        "<p>Your visit is complete: the next person in line gets your place in the shop.</p>\
         </section>",
    );
    let mut resp = html(StatusCode::OK, &page("Booked", Some(v), &body));
    // Tells the gate this visitor is done: the slot goes to the next one.
    resp.headers_mut()
        .insert("boxoffice-command", HeaderValue::from_static("complete"));
    resp
}

/// Gives a claimed coupon back; the sentence says how that went.
async fn release_claim(app: &App, c: &Claim) -> String {
    let path = format!(
        "/v1/coupons/{}/claims/{}",
        app.cfg.coupon,
        path_segment(&c.id)
    );
    match app
        .api(Method::DELETE, &path, Realm::Service, None, None)
        .await
    {
        Ok(_) => format!("Coupon {} was returned to stock.", app.cfg.coupon),
        Err(f) => format!("The coupon could not be returned: {}", f.describe()),
    }
}

// ------------------------------------------------------------------ helpers

async fn read_form(req: Request<Incoming>) -> Result<Vec<(String, String)>, Resp> {
    match Limited::new(req.into_body(), MAX_FORM).collect().await {
        Ok(b) => Ok(parse_form(&b.to_bytes())),
        Err(_) => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the form is too large or did not arrive\n",
        )),
    }
}

fn parse_form(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

fn first<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The form's nonce when it looks like one of ours, else a fresh one.
fn form_nonce(form: &[(String, String)]) -> String {
    match first(form, "nonce") {
        Some(n) if (8..=64).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            n.to_string()
        }
        _ => nonce(),
    }
}

/// An `Idempotency-Key` naming `id` (1–128 printable ASCII), else a random one.
fn idempotency_key(prefix: &str, id: &str) -> String {
    let k = format!("{prefix}-{id}");
    if k.len() <= 128 && k.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        k
    } else {
        format!("{prefix}-{}", nonce())
    }
}

/// 128 random bits in hex. The OS generator; a clock-seeded fallback keeps
/// the page working on the odd system where it fails (these are no secrets).
fn nonce() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        let a = fallback_random().to_le_bytes();
        let c = fallback_random().to_le_bytes();
        b[..8].copy_from_slice(&a);
        b[8..].copy_from_slice(&c);
    }
    b.iter().fold(String::with_capacity(32), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn fallback_random() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // xorshift64 over a state that every call moves on.
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ t;
    x |= 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// A uniform number in [0, 1): the simulated payment's dice.
fn roll() -> f64 {
    let r = getrandom::u64().unwrap_or_else(|_| fallback_random());
    // The top 53 bits make an exact double in [0, 1).
    (r >> 11) as f64 / (1u64 << 53) as f64
}

fn order_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let n = nonce();
    format!("o-{ms}-{}", &n[..8])
}

/// Percent-encodes one path segment (server-issued ids are opaque).
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A duration in words: "9 minutes 58 seconds".
fn words(s: u64) -> String {
    let (m, s) = (s / 60, s % 60);
    let plural = |n: u64, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    match (m, s) {
        (0, s) => plural(s, "second"),
        (m, 0) => plural(m, "minute"),
        (m, s) => format!("{} {}", plural(m, "minute"), plural(s, "second")),
    }
}

/// HTML-escapes text for element content and quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn api_failure_page(v: &Visitor, title: &str, f: &ApiFail) -> Resp {
    message_page(f.status(), v, title, "api-error", &f.describe())
}

fn message_page(status: StatusCode, v: &Visitor, title: &str, id: &str, msg: &str) -> Resp {
    let body = format!(
        "<section id=\"{id}\" class=\"card\"><h1>{}</h1><p id=\"message\">{}</p>\
         <p><a href=\"/\" id=\"back-to-seats\">Back to the seat map</a></p></section>",
        esc(title),
        esc(msg)
    );
    html(status, &page(title, Some(v), &body))
}

const CSS: &str = "\
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}\
header{background:#1d2330;color:#fff;padding:.6rem 1.2rem;display:flex;justify-content:space-between}\
header a{color:#fff}\
main{max-width:72rem;margin:0 auto;padding:1rem 1.2rem}\
.card{background:#fff;border-radius:8px;padding:1rem 1.2rem;margin:1rem 0;box-shadow:0 1px 3px #0002}\
.notice{padding:.6rem 1rem;border-radius:6px;background:#fff3cd}\
.error{border-left:4px solid #b42318}.notice.error{background:#fde8e7}\
.ok{border-left:4px solid #067647}\
.section{border:1px solid #d0d5dd;border-radius:6px;margin:.8rem 0}\
.row{display:flex;flex-wrap:wrap;align-items:center;gap:2px;margin:2px 0}\
.row-label{width:4.5rem;font-size:.85rem;color:#475467}\
.seat{display:inline-flex;align-items:center;font-size:.75rem;padding:1px 3px;border-radius:4px}\
.seat.free{background:#d1fadf}.seat.held{background:#fef0c7;color:#93370d}\
.seat.sold{background:#e4e7ec;color:#667085;text-decoration:line-through}\
.legend .seat{margin-right:.4rem}\
button{font:inherit;padding:.45rem 1rem;border:0;border-radius:6px;background:#1849a9;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#1849a9;border:1px solid #1849a9}\
button:focus,a:focus,input:focus,select:focus{outline:3px solid #f79009;outline-offset:2px}\
.small{font-size:.85rem;color:#475467}\
";

fn page(title: &str, v: Option<&Visitor>, body: &str) -> String {
    let (who, foot) = match v {
        Some(v) => (
            format!(
                "<span>Signed in as <strong id=\"user\">{}</strong></span>",
                esc(&v.user)
            ),
            format!(
                "<footer class=\"small\">Admitted from the waiting room with ticket \
                 <code id=\"ticket\">{}</code>.</footer>",
                esc(&v.ticket)
            ),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · Example box office</title><style>{CSS}</style></head><body>\
         <header><a href=\"/\">Example box office</a>{who}</header><main>{body}{foot}</main></body></html>",
        esc(title)
    )
}

fn html(status: StatusCode, body: &str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Seat maps and holds change by the second: never from a cache.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn text(status: StatusCode, body: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn not_allowed() -> Resp {
    text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
}

fn redirect(to: &str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}
