//! The HTTP front: routing, realms, limits and the handlers of the v1 API.
//!
//! [`handle`] is the one entry per request: it routes, checks the realm,
//! runs the handler (a panic becomes a 500 rather than a dropped
//! connection), and records metrics and one access log event (target
//! `boxoffice::access`) under the route pattern.

pub mod auth;
mod coupons;
pub mod errors;
mod events;
pub mod limits;
mod ops;
pub(crate) use ops::metrics_allowed;
pub(crate) mod queue;
pub mod router;
mod seats;
pub(crate) mod sse;

use crate::state::AppState;
use crate::wire;
use boxoffice_engine::{CouponId, EventId, IdempotencyKey};
use bytes::Bytes;
use errors::ApiError;
use futures_util::FutureExt;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use router::{Match, RouteId};
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Every response body: a buffer or a live stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// `v` as JSON (between `head` and `tail`), serialised into this thread's
/// reusable scratch buffer and copied out at its exact size: one allocation
/// per body, none for a `Vec` grown as it goes. Never a slice of a shared
/// chunk: hyper queues up to 16 unsent bodies per connection, and a client
/// that stops reading would pin whole chunks with them.
pub(crate) fn json_bytes<T: serde::Serialize + ?Sized>(
    head: &[u8],
    v: &T,
    tail: &[u8],
) -> Option<Bytes> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> =
            std::cell::RefCell::new(Vec::with_capacity(1024));
    }
    SCRATCH.with(|scratch| {
        let mut buf = scratch.try_borrow_mut().ok()?;
        buf.clear();
        buf.extend_from_slice(head);
        serde_json::to_writer(&mut *buf, v).ok()?;
        buf.extend_from_slice(tail);
        Some(Bytes::copy_from_slice(&buf))
    })
}

pub fn json_response<T: serde::Serialize + ?Sized>(status: StatusCode, v: &T) -> Response<Body> {
    // A document that does not serialise (a timestamp past year 9999) is a
    // bug: answer 500 rather than an empty body with the intended status.
    // (The 500's own document is a `Value` of strings, which always does.)
    let Some(body) = json_bytes(b"", v, b"") else {
        return ApiError::internal().into_response();
    };
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub fn no_content() -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

pub type Reply = Result<Response<Body>, ApiError>;

/// One request in a handler's hands.
#[derive(Debug)]
pub struct Cx {
    pub state: Arc<AppState>,
    pub parts: http::request::Parts,
    body: Option<Incoming>,
    /// Path parameters as byte ranges of `parts.uri.path()` (no copies).
    params: [std::ops::Range<usize>; router::Params::MAX],
    pub peer: SocketAddr,
    pub route: &'static str,
    /// Whether the request body was read to its end (see [`BodyRead`]).
    body_read: BodyRead,
    /// This request's connection slot (live streams give it back).
    pub conn: Option<ConnSlot>,
}

/// Whether a request's body has been read to its end, shared by the API
/// listener and the gate. An answer sent while a body is still unread
/// carries `Connection: close`: hyper does not wait for the rest of it, and
/// a client writing its next request into that connection would otherwise
/// see a broken pipe and an unknown outcome. A request without a body (no
/// length above 0, not chunked) is never unread.
#[derive(Clone, Debug, Default)]
pub struct BodyRead(Option<Arc<AtomicBool>>);

impl BodyRead {
    /// The state of `body`, unread unless it is already at its end.
    pub fn of(body: &impl http_body::Body) -> Self {
        BodyRead((!body.is_end_stream()).then(|| Arc::new(AtomicBool::new(false))))
    }

    /// The body was read to its end.
    pub fn done(&self) {
        if let Some(read) = &self.0 {
            read.store(true, Ordering::Relaxed);
        }
    }

    /// A body that was sent and not yet read to its end.
    pub fn unread(&self) -> bool {
        self.0.as_ref().is_some_and(|r| !r.load(Ordering::Relaxed))
    }

    /// Adds `Connection: close` to `resp` while the body is unread.
    pub fn close_if_unread<B>(&self, resp: &mut Response<B>) {
        if self.unread() {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
}

/// A connection's slot under `--max-connections`, shared by its requests
/// (handed to [`handle`] with each). A live stream releases it, so open
/// streams count against `--max-streams` only and never lock out requests.
/// The slot is counted in `boxoffice_http_open_connections` while held.
#[derive(Clone, Debug, Default)]
pub struct ConnSlot(Arc<parking_lot::Mutex<Option<HeldSlot>>>);

type HeldSlot = (
    tokio::sync::OwnedSemaphorePermit,
    crate::metrics::OpenConnection,
);

impl ConnSlot {
    pub fn new(
        permit: tokio::sync::OwnedSemaphorePermit,
        counted: crate::metrics::OpenConnection,
    ) -> Self {
        ConnSlot(Arc::new(parking_lot::Mutex::new(Some((permit, counted)))))
    }

    /// Gives the slot back now (the connection lives on, uncounted).
    pub fn release(&self) {
        self.0.lock().take();
    }
}

impl Cx {
    pub fn param(&self, i: usize) -> &str {
        self.params
            .get(i)
            .and_then(|r| self.parts.uri.path().get(r.clone()))
            .unwrap_or("")
    }

    /// The event id's text, checked as [`Cx::event_id`] checks it (the same
    /// 400), without building an id.
    pub fn event_name(&self) -> Result<&str, ApiError> {
        let name = self.param(0);
        if !EventId::is_valid(name) {
            self.event_id()?;
        }
        Ok(name)
    }

    pub fn event_id(&self) -> Result<EventId, ApiError> {
        EventId::new(self.param(0)).map_err(|e| ApiError::bad_request(format!("event: {e}")))
    }

    pub fn coupon_id(&self) -> Result<CouponId, ApiError> {
        CouponId::new(self.param(0)).map_err(|e| ApiError::bad_request(format!("coupon: {e}")))
    }

    /// The `Idempotency-Key` header, if any (400 when malformed).
    pub fn idempotency_key(&self) -> Result<Option<IdempotencyKey>, ApiError> {
        let Some(v) = self.parts.headers.get("idempotency-key") else {
            return Ok(None);
        };
        let s = v.to_str().map_err(|_| {
            ApiError::bad_request("Idempotency-Key: 1 to 128 printable ASCII characters")
        })?;
        IdempotencyKey::new(s)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("Idempotency-Key: {e}")))
    }

    /// The client address for per-client limits: the TCP peer, or behind a
    /// `--trusted-proxy` the rightmost untrusted `X-Forwarded-For` address.
    pub fn client_ip(&self) -> std::net::IpAddr {
        limits::client_ip(
            self.peer.ip(),
            &self.parts.headers,
            &self.state.settings.limits.trusted_proxies,
        )
    }

    /// A query parameter (first occurrence, percent-decoded). A query that
    /// is not UTF-8 or has malformed percent-encoding is 400, never read as
    /// "absent" (which would answer a different question).
    pub fn query(&self, name: &str) -> Result<Option<String>, ApiError> {
        let Some(q) = self.parts.uri.query() else {
            return Ok(None);
        };
        let bad = || ApiError::bad_request("the query string is not valid percent-encoded UTF-8");
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k).ok_or_else(bad)?;
            let v = percent_decode(v).ok_or_else(bad)?;
            if k == name {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// The body, at most the configured size, as bytes. A body needs a JSON
    /// content type; `required` bodies must not be empty.
    async fn body_bytes(&mut self, required: bool) -> Result<Bytes, ApiError> {
        let max = self.state.settings.limits.max_body_bytes;
        let declared = self
            .parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(ApiError::payload_too_large(max));
        }
        let json = limits::is_json(&self.parts.headers);
        if json == Some(false) {
            return Err(ApiError::unsupported_media_type());
        }
        let bytes = match self.body.take() {
            None => Bytes::new(),
            Some(body) => {
                // A body trickled or never sent must not hold its
                // connection (and a slot) for as long as the client likes.
                let wait = self.state.settings.limits.body_read_timeout;
                let collected = tokio::time::timeout(wait, collect(Limited::new(body, max)))
                    .await
                    .map_err(|_| request_timeout(wait))?;
                match collected {
                    Ok(c) => c,
                    Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                        return Err(ApiError::payload_too_large(max))
                    }
                    Err(_) => return Err(ApiError::bad_request("the body could not be read")),
                }
            }
        };
        self.body_read.done();
        if !bytes.is_empty() && json.is_none() {
            return Err(ApiError::unsupported_media_type());
        }
        if bytes.is_empty() && required {
            return Err(ApiError::bad_request("a JSON body is required"));
        }
        Ok(bytes)
    }

    /// The body (required) as a request document of [`wire`](crate::wire).
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        let bytes = self.body_bytes(true).await?;
        Ok(wire::from_body(&bytes)?)
    }

    /// An optional body as a request document: none (or an empty one) is
    /// `None`; when sent, it must be JSON within limits.
    pub async fn json_if_any<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ApiError> {
        let bytes = self.body_bytes(false).await?;
        if bytes.is_empty() {
            return Ok(None);
        }
        Ok(Some(wire::from_body(&bytes)?))
    }

    /// Checks an optional body that carries nothing: when sent, it must
    /// still be JSON within limits.
    pub async fn json_opt(&mut self) -> Result<(), ApiError> {
        let bytes = self.body_bytes(false).await?;
        if !bytes.is_empty() {
            wire::parse_json(&bytes)?;
        }
        Ok(())
    }
}

/// The whole body. One data frame (a body with `Content-Length`, as every
/// client of this API sends it) is kept as it came, without a frame list.
async fn collect<B>(body: B) -> Result<Bytes, B::Error>
where
    B: http_body::Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut joined: Option<bytes::BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        match (&mut joined, first.take()) {
            (Some(all), _) => all.extend_from_slice(&data),
            (None, None) => first = Some(data),
            (None, Some(head)) => {
                let mut all = bytes::BytesMut::with_capacity(head.len() + data.len());
                all.extend_from_slice(&head);
                all.extend_from_slice(&data);
                joined = Some(all);
            }
        }
    }
    Ok(match joined {
        Some(all) => all.freeze(),
        None => first.unwrap_or_default(),
    })
}

/// 408: the body did not arrive within `--body-read-timeout`.
fn request_timeout(wait: std::time::Duration) -> ApiError {
    ApiError::new(
        http::StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "the request body did not arrive within {} ms",
            wait.as_millis()
        ),
    )
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Where each parameter lies in `path` (which it was sliced from).
fn param_ranges(
    path: &str,
    params: router::Params<'_>,
) -> [std::ops::Range<usize>; router::Params::MAX] {
    let mut out: [std::ops::Range<usize>; router::Params::MAX] = Default::default();
    let base = path.as_ptr() as usize;
    for (o, p) in out.iter_mut().zip(params.as_slice()) {
        let start = (p.as_ptr() as usize).saturating_sub(base);
        *o = start..start + p.len();
    }
    out
}

/// Answers one request.
pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: SocketAddr,
    conn: ConnSlot,
) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    // The request's Origin when it is one of `--cors-origin`.
    let cors = allowed_origin(&state, req.headers());
    if let Some(origin) = cors.as_ref().filter(|_| method == Method::OPTIONS) {
        if let Some(resp) = preflight(origin, &req) {
            state.metrics.api_request(
                crate::metrics::SLOT_PREFLIGHT,
                "preflight",
                "OPTIONS",
                resp.status().as_u16(),
                started.elapsed(),
            );
            return resp;
        }
    }
    let body_read = BodyRead::of(req.body());
    let unread = body_read.clone();
    let (route_label, resp) = match router::route(req.method(), req.uri().path()) {
        Match::Found {
            route,
            endpoint,
            params,
        } => {
            let params = param_ranges(req.uri().path(), params);
            let run = async {
                state.auth.check(req.headers(), endpoint.realm)?;
                // Every method but GET may change state: with Redis, refuse it
                // up front (503) when it could not be made durable.
                if endpoint.method != "GET" {
                    state.admit()?;
                }
                let (parts, body) = req.into_parts();
                let cx = Cx {
                    state: state.clone(),
                    parts,
                    body: Some(body),
                    params,
                    peer,
                    route: route.pattern,
                    body_read,
                    conn: Some(conn),
                };
                dispatch(endpoint.id, cx).await
            };
            let resp = match AssertUnwindSafe(run).catch_unwind().await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => e.into_response(),
                Err(_) => {
                    state.metrics.panicked();
                    ApiError::internal().into_response()
                }
            };
            let mut resp = resp;
            if endpoint.realm.is_public() && !state.settings.limits.cors_origins.is_empty() {
                let h = resp.headers_mut();
                // Caches must keep answers for different origins apart.
                h.append(header::VARY, HeaderValue::from_static("origin"));
                if let Some(origin) = cors {
                    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                    h.insert(
                        header::ACCESS_CONTROL_EXPOSE_HEADERS,
                        HeaderValue::from_static("retry-after"),
                    );
                }
            }
            ((route.slot(), route.pattern), resp)
        }
        Match::MethodNotAllowed { route } => (
            (route.slot(), route.pattern),
            ApiError::method_not_allowed(route.allow()).into_response(),
        ),
        Match::NotFound => (
            (crate::metrics::SLOT_UNMATCHED, "unmatched"),
            ApiError::not_found().into_response(),
        ),
    };
    let (slot, route_label) = route_label;
    let mut resp = resp;
    unread.close_if_unread(&mut resp);
    let elapsed = started.elapsed();
    let (method, status) = (method_label(&method), resp.status().as_u16());
    state
        .metrics
        .api_request(slot, route_label, method, status, elapsed);
    // The access log: the route pattern (never the raw path: it carries
    // tickets, hold and claim ids), never headers or bodies. Fields are
    // integers and static strings, so a disabled target costs one cached
    // interest check and an enabled one allocates nothing here.
    tracing::info!(
        target: "boxoffice::access",
        method,
        route = route_label,
        status,
        duration_us = elapsed.as_micros() as u64,
        client = %peer,
    );
    resp
}

/// The request's `Origin` when it is one of `--cors-origin` (exact match).
fn allowed_origin(state: &AppState, headers: &http::HeaderMap) -> Option<HeaderValue> {
    let allowed = &state.settings.limits.cors_origins;
    if allowed.is_empty() {
        return None;
    }
    let origin = headers.get(header::ORIGIN)?;
    allowed
        .iter()
        .any(|a| a.as_bytes() == origin.as_bytes())
        .then(|| origin.clone())
}

/// A CORS preflight from an allowed origin for a public endpoint: 204 with
/// the public methods of the path and the request headers a page may send.
/// Anything else (no `Access-Control-Request-Method`, a service or admin
/// endpoint) is not a preflight we answer: it falls through to the router
/// (405 for `OPTIONS`), with no CORS headers.
fn preflight(origin: &HeaderValue, req: &Request<Incoming>) -> Option<Response<Body>> {
    let wanted = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)?
        .to_str()
        .ok()
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())?;
    let Match::Found {
        route, endpoint, ..
    } = router::route(&wanted, req.uri().path())
    else {
        return None;
    };
    if !endpoint.realm.is_public() {
        return None;
    }
    let methods = route
        .endpoints
        .iter()
        .filter(|e| e.realm.is_public())
        .map(|e| e.method)
        .collect::<Vec<_>>()
        .join(", ");
    let mut r = no_content();
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_str(&methods).ok()?,
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, idempotency-key"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    h.insert(header::VARY, HeaderValue::from_static("origin"));
    Some(r)
}

/// Methods as metric labels; anything unusual is one label (bounded cardinality).
pub(crate) fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

async fn dispatch(id: RouteId, cx: Cx) -> Reply {
    use RouteId::*;
    match id {
        EventPut => events::put(cx).await,
        EventGet => events::get(cx).await,
        EventDelete => events::delete(cx).await,
        EventPause => events::pause(cx, true).await,
        EventResume => events::pause(cx, false).await,
        QueueJoin => queue::join(cx).await,
        QueueStatus => queue::status(cx).await,
        QueueStream => sse::stream(cx).await,
        QueueLeave => queue::leave(cx).await,
        QueueComplete => queue::complete(cx).await,
        Seats => seats::availability(cx).await,
        HoldCreate => seats::create(cx).await,
        HoldGet => seats::get(cx).await,
        HoldDelete => seats::release(cx).await,
        HoldConfirm => seats::confirm(cx).await,
        HoldExtend => seats::extend(cx).await,
        CouponPut => coupons::put(cx).await,
        CouponGet => coupons::get(cx).await,
        ClaimCreate => coupons::claim(cx).await,
        ClaimDelete => coupons::give_back(cx).await,
        Metrics => ops::metrics(cx).await,
        Healthz => ops::healthz(cx).await,
        Readyz => ops::readyz(cx).await,
        ReadyzWrites => ops::readyz_writes(cx).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("A%2DB+c").as_deref(), Some("A-B c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    /// A body of several frames (chunked) is joined in order; trailers are
    /// not data; an error ends it.
    #[test]
    fn collecting_bodies() {
        use http_body_util::StreamBody;
        type Frame = Result<http_body::Frame<Bytes>, &'static str>;
        let run = |frames: Vec<Frame>| {
            let body = StreamBody::new(futures_util::stream::iter(frames));
            futures_util::FutureExt::now_or_never(collect(body)).expect("ready")
        };
        let data = |s: &'static str| Ok(http_body::Frame::data(Bytes::from_static(s.as_bytes())));
        assert_eq!(run(vec![]), Ok(Bytes::new()));
        assert_eq!(
            run(vec![data("{\"a\":1}")]),
            Ok(Bytes::from_static(b"{\"a\":1}"))
        );
        let trailers = Ok(http_body::Frame::trailers(http::HeaderMap::new()));
        assert_eq!(
            run(vec![data("{\"a\""), data(":"), trailers, data("1}")]),
            Ok(Bytes::from_static(b"{\"a\":1}"))
        );
        assert_eq!(run(vec![data("{"), Err("reset")]), Err("reset"));
    }
}
