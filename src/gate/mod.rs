//! Gate mode (API.md "Gate", docs/gate.md): on its own listener, the
//! waiting room of one event in front of the booking backend.
//!
//! Every request is one of three things:
//! - the gate's own paths under `/_boxoffice/` (the waiting page, its
//!   status and live stream, its assets);
//! - a request of an admitted visitor (a pass cookie the engine honours):
//!   proxied to the backend ([`proxy`]), which may end the session with a
//!   `Boxoffice-Command` answer header;
//! - anyone else: joins the line ([`visitor`]) and is sent to the waiting
//!   page (page loads), or refused with 429 and the status (anything else:
//!   API calls, WebSocket upgrades).
//!
//! It fails closed: a request that is not proven admitted never reaches the
//! backend, and a backend error is shown as an error (502/504), never as the
//! waiting page.

pub mod cookies;
pub mod doc;
pub mod i18n;
pub mod page;
pub mod proxy;
pub mod visitor;

use crate::commit::Write;
use crate::config::GateSettings;
use crate::http::errors::ApiError;
use crate::http::limits::ClientConns;
use crate::http::sse;
use crate::http::{BodyRead, ConnSlot};
use crate::live::DocKind;
use crate::state::AppState;
use boxoffice_engine::{EventId, Rejection, TicketView};
use bytes::Bytes;
use doc::{GateDoc, StreamGateDoc};
use futures_util::FutureExt;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use i18n::Lang;
use proxy::{Backend, Command, Forwarding, GateBody};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use visitor::{Visitor, Who};

/// Where the gate's own paths live.
pub const PREFIX: &str = "/_boxoffice/";
const WAIT: &str = "/_boxoffice/wait";
const STATUS: &str = "/_boxoffice/status";
const STREAM: &str = "/_boxoffice/stream";
const ASSETS: &str = "/_boxoffice/assets/";

/// Security headers of every page the gate itself serves (see the module
/// docs of [`page`]: no inline script or style).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// The running gate: its settings and the backend client.
#[derive(Debug)]
pub struct Gate {
    state: Arc<AppState>,
    event: EventId,
    backend: Backend,
}

/// Serves the gate on `listener` until the server closes (the state's
/// closing flag), then lets in-flight requests finish within the grace period.
pub async fn serve(state: Arc<AppState>, listener: TcpListener) -> std::io::Result<()> {
    let Some(settings) = state.settings.gate.clone() else {
        return Ok(());
    };
    let backend = Backend::new(&settings.backend, settings.timeout, settings.max_inflight)
        .map_err(|e| std::io::Error::other(format!("gate backend: {e}")))?;
    let gate = Arc::new(Gate {
        state: state.clone(),
        event: settings.event.clone(),
        backend,
    });
    accept(gate, &settings, listener).await;
    Ok(())
}

async fn accept(gate: Arc<Gate>, settings: &GateSettings, listener: TcpListener) {
    let state = gate.state.clone();
    let limits = state.settings.limits.clone();
    let max = limits.max_connections;
    let slots = Arc::new(Semaphore::new(max));
    let per_client = ClientConns::new(limits.max_connections_per_client);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut closing = state.closing.subscribe();
    match listener.local_addr() {
        Ok(addr) => tracing::info!(
            gate = %addr,
            event = %settings.event,
            backend = %settings.backend,
            "gate serving the waiting room on http://{addr}/"
        ),
        Err(e) => tracing::info!(gate_error = %e, "gate serving"),
    }
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            () = closed(&mut closing) => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "gate accept failed; retrying in 20 ms");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = closed(&mut closing) => break,
        };
        // The same per-address cap as the API's listener (its own count):
        // behind a trusted proxy, many visitors share one address.
        let counted = if limits.trusted_proxies.iter().any(|c| c.contains(peer.ip())) {
            None
        } else {
            let Some(c) = per_client.open(peer.ip()) else {
                state
                    .metrics
                    .connection_refused(crate::metrics::RefusedReason::PerClient);
                continue;
            };
            Some(c)
        };
        let _ = tcp.set_nodelay(true);
        let slot = ConnSlot::new(
            slot,
            state
                .metrics
                .connection_opened(crate::metrics::Listener::Gate),
        );
        let g = gate.clone();
        let svc = service_fn(move |mut req: Request<Incoming>| {
            let g = g.clone();
            req.extensions_mut().insert(slot.clone());
            async move { Ok::<_, Infallible>(handle(g, req, peer).await) }
        });
        // Upgrades: an admitted visitor's WebSocket is tunnelled.
        let conn = http
            .serve_connection(TokioIo::new(tcp), svc)
            .with_upgrades();
        let mut on_close = state.closing.subscribe();
        let closing_now = async move { closed(&mut on_close).await };
        tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = closing_now => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(counted);
        });
    }
    drop(listener);
    // Every connection that still holds a slot is in a request (live
    // streams gave theirs back and end on the closing flag).
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let grace = limits.shutdown_grace;
    if tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("gate: in-flight requests did not finish within the grace period");
    }
    tracing::info!("gate stopped");
}

/// Resolves once the server closes (the flag's read guard is dropped here,
/// never held across an await of the caller).
async fn closed(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|c| *c).await;
}

/// What one request is about, for answers and cookies.
struct Ctx {
    peer: SocketAddr,
    client: std::net::IpAddr,
    /// The visitor came over TLS (a trusted proxy said so).
    secure: bool,
    /// A page load (`Accept` names `text/html`).
    html: bool,
    lang: Lang,
}

impl Ctx {
    fn new(gate: &Gate, headers: &HeaderMap, peer: SocketAddr) -> Self {
        let trusted = &gate.state.settings.limits.trusted_proxies;
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let lang = Lang::negotiate(
            None,
            cookies::get(headers, cookies::LANG),
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        );
        Ctx {
            peer,
            client: crate::http::limits::client_ip(peer.ip(), headers, trusted),
            secure: proxy::client_scheme(peer, headers, trusted) == "https",
            // A WebSocket handshake is never a page load, whatever it accepts.
            html: accept.contains("text/html") && !proxy::is_upgrade(headers),
            lang,
        }
    }

    fn jar(&self) -> cookies::Jar {
        cookies::Jar {
            secure: self.secure,
        }
    }
}

/// Answers one gate request: routes it, turns a panic into a 500, and
/// records metrics and the access log under a route label (never the raw
/// path, which may carry anything).
async fn handle(gate: Arc<Gate>, req: Request<Incoming>, peer: SocketAddr) -> Response<GateBody> {
    let started = Instant::now();
    let method = crate::http::method_label(req.method());
    let st = gate.state.clone();
    // Only a proxied request's body is ever read (on its way to the
    // backend); any answer sent before its end closes the connection.
    let body_read = BodyRead::of(req.body());
    let (route, mut resp) = match AssertUnwindSafe(route(&gate, req, peer, &body_read))
        .catch_unwind()
        .await
    {
        Ok(r) => r,
        Err(_) => {
            st.metrics.panicked();
            ("gate_internal", api_error(ApiError::internal()))
        }
    };
    body_read.close_if_unread(&mut resp);
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    st.metrics.http(route, method, status, elapsed);
    tracing::info!(
        target: "boxoffice::access",
        method,
        route,
        status,
        duration_us = elapsed.as_micros() as u64,
        client = %peer,
    );
    resp
}

async fn route(
    gate: &Gate,
    req: Request<Incoming>,
    peer: SocketAddr,
    body_read: &BodyRead,
) -> (&'static str, Response<GateBody>) {
    let path = req.uri().path();
    if !path.starts_with(PREFIX) {
        return ("gate_proxy", front(gate, req, peer, body_read).await);
    }
    // HEAD is answered wherever GET is, by the same code: hyper sends the
    // headers and never the body.
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let ctx = Ctx::new(gate, req.headers(), peer);
    let (label, resp) = match path {
        WAIT if get => ("gate_wait", wait(gate, &ctx, &req).await),
        STATUS if get => ("gate_status", status(gate, &req)),
        STREAM if get => ("gate_stream", stream(gate, &req)),
        p if get && p.starts_with(ASSETS) => ("gate_asset", asset(p)),
        WAIT | STATUS => (
            "gate_wait",
            api_error(ApiError::method_not_allowed("GET, HEAD".into())),
        ),
        STREAM => (
            "gate_stream",
            api_error(ApiError::method_not_allowed("GET, HEAD".into())),
        ),
        _ => ("gate_unmatched", api_error(ApiError::not_found())),
    };
    (label, resp)
}

/// A request outside `/_boxoffice/`: proxied for an admitted visitor,
/// queued for anyone else.
async fn front(
    gate: &Gate,
    req: Request<Incoming>,
    peer: SocketAddr,
    body_read: &BodyRead,
) -> Response<GateBody> {
    let st = &gate.state;
    // A WebSocket upgrade without a pass is like any other request that is
    // not a page load (the contract): it joins, and gets 429 with the status.
    let ctx = Ctx::new(gate, req.headers(), peer);
    let v = match visitor::resolve(st, &gate.event, req.headers(), ctx.client, true).await {
        Ok(v) => v,
        // A page load goes to the waiting page, which says what is wrong in
        // the visitor's language (sold out, full, not set up yet).
        Err(_) if ctx.html => return see_other(&page::wait_url(&return_path(&req), None)),
        Err(e) => return api_error(e),
    };
    let Visitor {
        who,
        new_ticket,
        new_pass,
    } = v;
    let mut resp = match who {
        Who::Admitted(a) => forward(gate, &ctx, req, a, new_pass, body_read).await,
        Who::Waiting(_) if ctx.html => see_other(&page::wait_url(&return_path(&req), None)),
        Who::Waiting(view) => queued(gate, &view),
    };
    if let Some(t) = new_ticket {
        ctx.jar().set_ticket(resp.headers_mut(), &t);
    }
    resp
}

/// 429 with `Retry-After` and the visitor's status document (API calls of
/// a visitor who waits).
fn queued(gate: &Gate, view: &TicketView) -> Response<GateBody> {
    let st = &gate.state;
    let Some(doc) = gate_doc(st, &gate.event, view) else {
        return api_error(ApiError::internal());
    };
    let retry_s = view.status.poll_after_ms.div_ceil(1000).max(1);
    let mut r = json(StatusCode::TOO_MANY_REQUESTS, &doc);
    if let Ok(v) = HeaderValue::from_str(&retry_s.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Proxies an admitted visitor's request; applies the backend's command.
async fn forward(
    gate: &Gate,
    ctx: &Ctx,
    req: Request<Incoming>,
    a: visitor::Admitted,
    new_pass: Option<(String, u64)>,
    body_read: &BodyRead,
) -> Response<GateBody> {
    let st = &gate.state;
    // The body must arrive within --body-read-timeout, as on the API
    // listener (408, not the backend's 504, when it does not).
    let limit = st.settings.limits.body_read_timeout;
    let req = req.map(|b| proxy::ClientBody::new(b, limit, body_read.clone()));
    let fwd = Forwarding {
        peer: ctx.peer,
        trusted_proxies: &st.settings.limits.trusted_proxies,
        user: &a.user,
        ticket: &a.ticket,
        pass: &a.pass,
        own_cookies: cookies::OWN,
    };
    let html = ctx.html;
    let out = match gate.backend.forward(req, &fwd).await {
        Ok(out) => out,
        Err(e) => {
            tracing::warn!(error = %e, code = e.code(), "gate: backend request failed");
            // The client gets the safe message; the log has the detail.
            let err = ApiError::new(e.status(), e.code(), e.message());
            let err = match e.retry_after_s() {
                Some(s) => err.retry_after(s),
                None => err,
            };
            return if html {
                problem(ctx.lang, err, "/")
            } else {
                api_error(err)
            };
        }
    };
    let mut resp = out.response;
    if let Some((pass, left_s)) = new_pass {
        ctx.jar().set_pass(resp.headers_mut(), &pass, left_s);
    }
    if let Some(cmd) = out.command {
        end_session(gate, &a.ticket, cmd).await;
        if cmd == Command::Revoke {
            ctx.jar().clear(resp.headers_mut(), cookies::PASS);
        }
    }
    resp
}

/// The backend ended the visitor's session: the slot is free at once.
async fn end_session(gate: &Gate, ticket: &str, cmd: Command) {
    let st = &gate.state;
    if let Err(e) = st.admit() {
        // Not the writer (or not durable now): the session ends at its TTL.
        tracing::warn!(error = %e, ?cmd, "gate: could not end the session now");
        return;
    }
    match st.engine.complete(&gate.event, ticket, st.now()) {
        Ok(done) => {
            if let Err(e) = st.commit(done, Write::Complete(&gate.event)).await {
                tracing::warn!(error = %e, ?cmd, "gate: ending the session is not durable");
            }
        }
        // Already over (expired, or a second command): nothing to free.
        Err(e) => tracing::debug!(error = %e, ?cmd, "gate: session already ended"),
    }
}

/// `GET /_boxoffice/wait`: the waiting page; an admitted visitor gets the
/// pass cookie and goes back to where they were going.
async fn wait(gate: &Gate, ctx: &Ctx, req: &Request<Incoming>) -> Response<GateBody> {
    let st = &gate.state;
    let q = req.uri().query();
    let chosen = query(q, "lang").as_deref().and_then(Lang::parse);
    let lang = chosen.unwrap_or(ctx.lang);
    let return_to = page::safe_return(query(q, "return").as_deref());
    let resolved = visitor::resolve(st, &gate.event, req.headers(), ctx.client, true).await;
    let mut resp = match &resolved {
        Ok(Visitor {
            who: Who::Admitted(_),
            ..
        }) => see_other(&return_to),
        Ok(Visitor {
            who: Who::Waiting(view),
            ..
        }) => match gate_doc(st, &gate.event, view) {
            Some(doc) => wait_page(&doc, lang, st, &return_to),
            None => problem(lang, ApiError::internal(), &return_to),
        },
        Err(e) if e.code == "event_closed" => {
            match st.engine.event_summary(&gate.event, st.now()) {
                Ok(ev) => wait_page(&GateDoc::sold_out(&ev), lang, st, &return_to),
                Err(e) => problem(lang, e.into(), &return_to),
            }
        }
        Err(e) => problem(lang, e.clone(), &return_to),
    };
    let h = resp.headers_mut();
    if let Ok(v) = resolved {
        if let Some(t) = v.new_ticket {
            ctx.jar().set_ticket(h, &t);
        }
        if let Some((pass, left_s)) = v.new_pass {
            ctx.jar().set_pass(h, &pass, left_s);
        }
    }
    if let Some(l) = chosen {
        ctx.jar().set_lang(h, l.code());
    }
    resp
}

fn wait_page(doc: &GateDoc, lang: Lang, st: &AppState, return_to: &str) -> Response<GateBody> {
    let html = page::render_wait(&page::PageModel {
        doc,
        lang,
        now: st.now(),
        return_to,
    });
    page_response(StatusCode::OK, html)
}

/// `GET /_boxoffice/status`: the visitor's document (a poll; presence).
fn status(gate: &Gate, req: &Request<Incoming>) -> Response<GateBody> {
    let st = &gate.state;
    let Some(ticket) = cookies::get(req.headers(), cookies::TICKET) else {
        return api_error(Rejection::TicketNotFound.into());
    };
    let view = match st.engine.status(&gate.event, ticket, st.now()) {
        Ok(v) => v,
        Err(e) => return api_error(e.into()),
    };
    if let Err(e) = st.polls.check(ticket) {
        st.metrics.poll_limited();
        return api_error(
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "polled far faster than poll_after_ms; retry later",
            )
            .retry_after(e.retry_after_s),
        );
    }
    match gate_doc(st, &gate.event, &view) {
        Some(doc) => json(StatusCode::OK, &doc),
        None => api_error(ApiError::internal()),
    }
}

/// `GET /_boxoffice/stream`: the visitor's document, live.
fn stream(gate: &Gate, req: &Request<Incoming>) -> Response<GateBody> {
    let st = &gate.state;
    let Some(ticket) = cookies::get(req.headers(), cookies::TICKET) else {
        return api_error(Rejection::TicketNotFound.into());
    };
    let conn = req.extensions().get::<ConnSlot>();
    let render = sse::Render {
        kind: DocKind::Gate,
        frame: |st, id, view| sse::frame(&StreamGateDoc::from(&gate_doc(st, id, view)?)),
    };
    let opened = sse::open(st.clone(), gate.event.clone(), ticket, conn, render);
    match opened {
        Ok(r) => r.map(|b| b.map_err(|e| match e {}).boxed_unsync()),
        Err(e) => api_error(e),
    }
}

fn asset(path: &str) -> Response<GateBody> {
    let Some(a) = page::asset(path) else {
        return api_error(ApiError::not_found());
    };
    let mut r = Response::new(body(Bytes::from_static(a.body)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    // Asset paths carry their version: a new build serves new paths.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn gate_doc(st: &AppState, event: &EventId, view: &TicketView) -> Option<GateDoc> {
    let ev = st.engine.event_summary(event, st.now()).ok()?;
    Some(GateDoc::new(view, &ev))
}

/// Where a visitor was going: the request's path and query.
fn return_path(req: &Request<Incoming>) -> String {
    req.uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string())
}

/// The first value of `name` in a query string, percent-decoded.
fn query(q: Option<&str>, name: &str) -> Option<String> {
    q?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (crate::http::percent_decode(k)? == name)
            .then(|| crate::http::percent_decode(v))
            .flatten()
    })
}

fn body(bytes: Bytes) -> GateBody {
    http_body_util::Full::new(bytes)
        .map_err(|e| match e {})
        .boxed_unsync()
}

fn json<T: serde::Serialize>(status: StatusCode, v: &T) -> Response<GateBody> {
    crate::http::json_response(status, v).map(|b| b.map_err(|e| match e {}).boxed_unsync())
}

fn api_error(e: ApiError) -> Response<GateBody> {
    e.into_response()
        .map(|b| b.map_err(|e| match e {}).boxed_unsync())
}

fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn page_response(status: StatusCode, html: String) -> Response<GateBody> {
    let mut r = Response::new(body(Bytes::from(html)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    security_headers(h);
    r
}

/// An error as a page in the visitor's language (page loads), with the
/// contract's status and `Retry-After`.
fn problem(lang: Lang, e: ApiError, return_to: &str) -> Response<GateBody> {
    let status = e.status;
    let html = page::render_problem(lang, status.as_u16(), e.code, return_to);
    let retry = e.retry_after_s();
    let mut r = page_response(status, html);
    if let Some(s) = retry {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

fn see_other(location: &str) -> Response<GateBody> {
    let mut r = Response::new(body(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    let h = r.headers_mut();
    match HeaderValue::from_str(location) {
        Ok(v) => h.insert(header::LOCATION, v),
        Err(_) => h.insert(header::LOCATION, HeaderValue::from_static("/")),
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
