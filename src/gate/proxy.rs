//! Forwarding an admitted visitor's request to the booking backend.
//!
//! This module owns every rule about what crosses the gate, in both
//! directions, so that no other part of the gate has to think about it:
//!
//! - Hop-by-hop fields (RFC 9110 §7.6.1) describe one connection, and the
//!   gate's two connections are not the client's: `Connection`,
//!   `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`,
//!   `Upgrade`, `Proxy-Authenticate`, `Proxy-Authorization` and every field
//!   *named* in `Connection` are dropped both ways. hyper frames each side's
//!   body itself. An upgrade being tunnelled keeps `Upgrade` and
//!   `Connection: upgrade`, the two fields the handshake is made of.
//!   `Expect` is dropped too: the gate's own server answers `100-continue`
//!   when the body is first read, so the backend must not answer it again.
//! - Identity: the backend trusts `Boxoffice-User`, `Boxoffice-Ticket` and
//!   `Boxoffice-Pass`, so any `Boxoffice-*` field a client sends is removed
//!   and those three are set from the verified pass. The gate's own cookies
//!   (the pass among them) are cut out of `Cookie`. The original `Host`
//!   stays; `Via: 1.1 boxoffice` is added (RFC 9110 §7.6.3).
//! - Provenance: `X-Forwarded-For/Proto/Host` and `Forwarded` are believed
//!   only from a trusted proxy (`--trusted-proxy`); from anyone else they are
//!   replaced by what the gate saw itself, so a client cannot choose the
//!   address or scheme the backend logs and decides on.
//! - The backend's `Boxoffice-Command` (`complete` | `revoke`) is for the
//!   gate alone: it is taken out of the response and reported to the caller.
//!   Every `Set-Cookie` is kept (they are separate fields, never joined).
//! - Upstream failures are typed ([`ProxyError`]) and never a waiting page:
//!   no connection is 502 `backend_unavailable`, no answer within the timeout
//!   is 504 `backend_timeout`, too many requests in flight is 503
//!   `unavailable`. A failure *after* the headers were sent (the backend's
//!   body breaks off) is a body error, so the client's connection is cut
//!   rather than a truncated body ending cleanly.
//! - The client's side of a failure is the client's: a request body that
//!   does not arrive within its limit ([`ClientBody`]) is 408
//!   `request_timeout` when the backend has not answered yet (the
//!   connection is cut if it has), never the backend's 504.
//!
//! Compared with pingora, rpxy and linkerd2-proxy: all three strip the
//! `Connection`-named fields as well as the fixed list and special-case the
//! upgrade handshake the same way; pingora and linkerd tell "could not
//! connect" (502) from "no answer in time" (504) as done here. Unlike a
//! general proxy the gate retries nothing itself (a booking request is not
//! safely repeatable) beyond hyper-util's retry of a request that never
//! left a pooled connection the backend had already closed.

use crate::http::limits::Cidr;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::error::Error as StdError;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Any error a body may carry.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of a proxied response (the backend's, streamed).
pub type GateBody = UnsyncBoxBody<Bytes, BoxError>;

/// How long an idle pooled connection to the backend is kept. Below Node's
/// default `keepAliveTimeout` (5 s), the shortest common backend default: a
/// connection the backend has already closed is not picked from the pool
/// (a request written into such a connection fails as 502). Under on-sale
/// load connections are reused long before this.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// The longest wait for a TCP connection to the backend (capped by the
/// request timeout). A backend that does not accept within it is down (502),
/// not slow.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The `Retry-After` (seconds) of a [`ProxyError::Busy`] answer.
pub const BUSY_RETRY_AFTER_S: u64 = 1;

/// The `Boxoffice-*` fields the gate sets on a forwarded request.
pub const USER_HEADER: HeaderName = HeaderName::from_static("boxoffice-user");
pub const TICKET_HEADER: HeaderName = HeaderName::from_static("boxoffice-ticket");
pub const PASS_HEADER: HeaderName = HeaderName::from_static("boxoffice-pass");
/// The backend's command to the gate, never passed on to the client.
pub const COMMAND_HEADER: HeaderName = HeaderName::from_static("boxoffice-command");

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The fixed hop-by-hop list of RFC 9110 §7.6.1 (plus the obsolete but
/// still sent `Keep-Alive` and `Proxy-Connection`).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
];

/// What the backend tells the gate through `Boxoffice-Command`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// The user is done (booked): end the session, free the slot.
    Complete,
    /// End the session and clear the pass cookie.
    Revoke,
}

impl Command {
    /// The field value: `complete` | `revoke`.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Complete => "complete",
            Command::Revoke => "revoke",
        }
    }

    /// One field value: `complete` or `revoke`, any case, surrounding
    /// whitespace ignored.
    pub fn parse(value: &[u8]) -> Option<Command> {
        let v = value.trim_ascii();
        if v.eq_ignore_ascii_case(b"complete") {
            Some(Command::Complete)
        } else if v.eq_ignore_ascii_case(b"revoke") {
            Some(Command::Revoke)
        } else {
            None
        }
    }
}

/// Who the request is forwarded for.
#[derive(Clone, Copy, Debug)]
pub struct Forwarding<'a> {
    /// The TCP peer of the gate's connection.
    pub peer: SocketAddr,
    pub trusted_proxies: &'a [Cidr],
    pub user: &'a str,
    pub ticket: &'a str,
    pub pass: &'a str,
    /// Cookie names the gate owns, removed from the forwarded Cookie header.
    pub own_cookies: &'a [&'a str],
}

/// The backend's answer, ready for the client, and its command to the gate.
#[derive(Debug)]
pub struct Forwarded {
    pub response: Response<GateBody>,
    pub command: Option<Command>,
}

/// Why a request got no answer from the backend.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No connection to the backend (refused, unreachable, connect timeout).
    #[error("the backend is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The backend took the request but broke off the exchange before a
    /// complete response head (closed the connection, sent garbage).
    #[error("the backend broke off the exchange: {0}")]
    Broken(#[source] BoxError),
    /// No response head within the timeout.
    #[error("the backend sent no answer within {0:?}")]
    Timeout(Duration),
    /// More requests in flight to the backend than allowed.
    #[error("too many requests are in flight to the backend")]
    Busy,
    /// The client's request body failed while it was being forwarded.
    #[error("the request body failed: {0}")]
    ClientBody(#[source] BoxError),
    /// The client's request body did not arrive within `--body-read-timeout`
    /// (see [`ClientBody`]) before the backend answered.
    #[error("the request body did not arrive within {0:?}")]
    ClientTimeout(Duration),
    /// A request the gate does not forward (CONNECT, a target that is not a path).
    #[error("the request cannot be forwarded: {0}")]
    Refused(&'static str),
    /// A bad `--gate-backend` URL or limit (from [`Backend::new`]), or a
    /// value of the gate's own that is not a valid header.
    #[error("gate misconfigured: {0}")]
    Config(String),
}

impl ProxyError {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Unavailable(_) | ProxyError::Broken(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::ClientBody(_) | ProxyError::Refused(_) => StatusCode::BAD_REQUEST,
            ProxyError::ClientTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ProxyError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The API error code (`{"error":{"code"}}`).
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::Unavailable(_) | ProxyError::Broken(_) => "backend_unavailable",
            ProxyError::Timeout(_) => "backend_timeout",
            ProxyError::Busy => "unavailable",
            ProxyError::ClientBody(_) | ProxyError::Refused(_) => "bad_request",
            ProxyError::ClientTimeout(_) => "request_timeout",
            ProxyError::Config(_) => "internal",
        }
    }

    /// The message for the client: says what happened without the backend's
    /// address or internals (those are in `Display`, for the log).
    pub fn message(&self) -> &'static str {
        match self {
            ProxyError::Unavailable(_) | ProxyError::Broken(_) => {
                "the site behind the waiting room is not answering; try again shortly"
            }
            ProxyError::Timeout(_) => "the site behind the waiting room took too long to answer",
            ProxyError::Busy => "the site is busy; try again in a moment",
            ProxyError::ClientBody(_) => "the request body could not be read",
            ProxyError::ClientTimeout(_) => "the request body did not arrive in time",
            ProxyError::Refused(why) => why,
            ProxyError::Config(_) => "internal error",
        }
    }

    /// `Retry-After` seconds for the answer, where one helps.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            ProxyError::Busy => Some(BUSY_RETRY_AFTER_S),
            _ => None,
        }
    }
}

/// The booking backend: a pooled HTTP/1 client, the base URL and the limits.
/// Cheap to clone (shared state).
#[derive(Clone, Debug)]
pub struct Backend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client<HttpConnector, GateBody>,
    scheme: Scheme,
    authority: Authority,
    /// The base URL's path without a trailing `/` ("" for none).
    prefix: String,
    timeout: Duration,
    max_inflight: usize,
    slots: Arc<Semaphore>,
}

impl Backend {
    /// A backend at `base` (`http://host:port[/prefix]`); `timeout` bounds
    /// the wait for a response head, `max_inflight` the requests in flight
    /// (a request holds its slot until its response body ends or is dropped).
    pub fn new(base: &Uri, timeout: Duration, max_inflight: usize) -> Result<Self, ProxyError> {
        let bad = |why: &str| ProxyError::Config(format!("--gate-backend {base}: {why}"));
        if base.scheme() != Some(&Scheme::HTTP) {
            // The gate speaks plain HTTP to a backend on a private network;
            // it builds no TLS client.
            return Err(bad("must be an http:// URL"));
        }
        let authority = base
            .authority()
            .cloned()
            .ok_or_else(|| bad("has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("must not carry credentials"));
        }
        if base.query().is_some() {
            return Err(bad("must not carry a query"));
        }
        if timeout.is_zero() {
            return Err(ProxyError::Config("--gate-timeout must be positive".into()));
        }
        if max_inflight == 0 || max_inflight > Semaphore::MAX_PERMITS {
            return Err(ProxyError::Config(format!(
                "--gate-max-inflight must be between 1 and {}",
                Semaphore::MAX_PERMITS
            )));
        }
        let prefix = base.path().trim_end_matches('/').to_string();

        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT.min(timeout)));
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            // The original Host is forwarded; only a request without one
            // (HTTP/1.0) gets the backend's authority.
            .set_host(true)
            .build(connector);
        Ok(Backend {
            inner: Arc::new(Inner {
                client,
                scheme: Scheme::HTTP,
                authority,
                prefix,
                timeout,
                max_inflight,
                slots: Arc::new(Semaphore::new(max_inflight)),
            }),
        })
    }

    /// Requests in flight now (slots taken).
    pub fn inflight(&self) -> usize {
        let i = &self.inner;
        i.max_inflight.saturating_sub(i.slots.available_permits())
    }

    /// Forwards one request of an admitted visitor.
    ///
    /// The timeout runs from here to the backend's response head (connecting
    /// and any upload included); the response body then streams for as long
    /// as it takes. An upgrade request (see [`is_upgrade`]) whose
    /// `OnUpgrade` is in the extensions is tunnelled when the backend
    /// answers 101: the 101 is returned (with an empty body) and a task
    /// copies bytes both ways once hyper has switched both connections; the
    /// tunnel does not hold an in-flight slot and ends when either side
    /// closes.
    pub async fn forward<B>(
        &self,
        req: Request<B>,
        fwd: &Forwarding<'_>,
    ) -> Result<Forwarded, ProxyError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let inner = &self.inner;
        // Over the bound the answer is at once: queueing here would only
        // hold client connections open while the backend is saturated.
        let permit = inner
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ProxyError::Busy)?;

        let (mut parts, body) = req.into_parts();
        if parts.method == Method::CONNECT {
            return Err(ProxyError::Refused("CONNECT is not forwarded"));
        }
        // Only tunnel when the gate's server can hand over the connection.
        let client_upgrade = if is_upgrade(&parts.headers) {
            parts.extensions.remove::<OnUpgrade>()
        } else {
            None
        };
        let upgrading = client_upgrade.is_some();
        let uri = inner.target(&parts.uri)?;
        request_headers(&mut parts.headers, fwd, upgrading)?;

        let mut out = Request::new(body.map_err(Into::into).boxed_unsync());
        *out.method_mut() = parts.method;
        *out.uri_mut() = uri;
        // The gate's hop to the backend is its own HTTP/1.1 connection,
        // whatever version the client spoke.
        *out.version_mut() = Version::HTTP_11;
        *out.headers_mut() = parts.headers;

        let sent = tokio::time::timeout(inner.timeout, inner.client.request(out)).await;
        let mut resp = match sent {
            Err(_elapsed) => return Err(ProxyError::Timeout(inner.timeout)),
            Ok(Err(e)) => return Err(classify(e)),
            Ok(Ok(resp)) => resp,
        };

        let switched = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
        let command = response_headers(resp.headers_mut(), upgrading && switched);
        if switched {
            let Some(client_upgrade) = client_upgrade else {
                // A 101 the client never asked for cannot be passed on.
                return Err(ProxyError::Broken(
                    "the backend switched protocols unasked".into(),
                ));
            };
            let backend_upgrade = hyper::upgrade::on(&mut resp);
            // A switched connection is no longer a request in flight: its
            // slot is free once the 101 is out (the tunnel is bounded by the
            // gate's per-client connection limits, not by this).
            drop(permit);
            tokio::spawn(tunnel(client_upgrade, backend_upgrade));
            let (parts, _) = resp.into_parts();
            let response = Response::from_parts(
                parts,
                Empty::<Bytes>::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            );
            return Ok(Forwarded { response, command });
        }

        let response = resp.map(|body| {
            Slotted {
                body,
                permit: Some(permit),
            }
            .boxed_unsync()
        });
        Ok(Forwarded { response, command })
    }
}

impl Inner {
    /// The backend URL for a request target: the base's prefix joined with
    /// the request's path and query.
    fn target(&self, uri: &Uri) -> Result<Uri, ProxyError> {
        let pq = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
        if !pq.starts_with('/') {
            return Err(ProxyError::Refused("the request target must be a path"));
        }
        let joined = format!("{}{}", self.prefix, pq);
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(joined)
            .build()
            .map_err(|_| ProxyError::Refused("the request target is not a valid path"))
    }
}

/// Sorts a client error: no connection is `Unavailable`, a failing request
/// body is the client's, anything else is the backend breaking off.
fn classify(e: hyper_util::client::legacy::Error) -> ProxyError {
    if e.is_connect() {
        return ProxyError::Unavailable(Box::new(e));
    }
    let mut source: Option<&(dyn StdError + 'static)> = e.source();
    let mut user = false;
    while let Some(s) = source {
        if let Some(t) = s.downcast_ref::<BodyTimeout>() {
            return ProxyError::ClientTimeout(t.0);
        }
        if s.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_user)
        {
            user = true;
        }
        source = s.source();
    }
    if user {
        return ProxyError::ClientBody(Box::new(e));
    }
    ProxyError::Broken(Box::new(e))
}

/// The client's request body on its way to the backend. It must arrive
/// within a limit (`--body-read-timeout`, as on the API listener), counted
/// from the start of the forwarding: a client that trickles its body would
/// otherwise hold its connection, a backend connection and an in-flight
/// slot until `--gate-timeout`, and its stall would be answered as the
/// backend's (504). The deadline is only noticed while the backend waits
/// for the body (a backend that stops reading it is slow, not the client).
/// Reading the body to its end is reported through [`BodyRead`].
///
/// [`BodyRead`]: crate::http::BodyRead
#[derive(Debug)]
pub struct ClientBody<B> {
    body: B,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    read: crate::http::BodyRead,
}

impl<B> ClientBody<B> {
    pub fn new(body: B, limit: Duration, read: crate::http::BodyRead) -> Self {
        ClientBody {
            body,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
            read,
        }
    }
}

/// The error a [`ClientBody`] ends with when its deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

impl<B> Body for ClientBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(None) => {
                this.read.done();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.body.is_end_stream() {
                    this.read.done();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Runs an upgraded connection: both sides' bytes copied until either ends.
async fn tunnel(client: OnUpgrade, backend: OnUpgrade) {
    let (client, backend) = match tokio::try_join!(client, backend) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade tunnel not established");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut backend = TokioIo::new(backend);
    match tokio::io::copy_bidirectional(&mut client, &mut backend).await {
        Ok((up, down)) => tracing::debug!(up, down, "upgrade tunnel closed"),
        Err(e) => tracing::debug!(error = %e, "upgrade tunnel broke off"),
    }
}

/// The backend's response body, holding the request's in-flight slot until
/// it ends, fails or is dropped.
struct Slotted {
    body: Incoming,
    permit: Option<OwnedSemaphorePermit>,
}

impl Body for Slotted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.permit = None;
                Poll::Ready(None)
            }
            // Passed on as an error, never as the end: hyper then cuts the
            // client's connection instead of closing a chunked body cleanly
            // (or leaving a Content-Length short), so the client sees the
            // truncation.
            Poll::Ready(Some(Err(e))) => {
                this.permit = None;
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.body.is_end_stream() {
                    this.permit = None;
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Whether `peer` is one of the trusted proxies.
fn trusted(peer: IpAddr, trusted: &[Cidr]) -> bool {
    trusted.iter().any(|c| c.contains(peer))
}

/// The nearest hop's element of a list field: the last comma-separated
/// element of its last line (a proxy appends), trimmed; `None` when empty.
fn nearest<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h [u8]> {
    let last = headers.get_all(name).iter().next_back()?;
    let element = last.as_bytes().rsplit(|b| *b == b',').next()?.trim_ascii();
    (!element.is_empty()).then_some(element)
}

/// "https" when a trusted proxy says so (X-Forwarded-Proto), else "http".
pub fn client_scheme(
    peer: SocketAddr,
    headers: &HeaderMap,
    trusted_proxies: &[Cidr],
) -> &'static str {
    if !trusted(peer.ip(), trusted_proxies) {
        return "http";
    }
    match nearest(headers, &X_FORWARDED_PROTO) {
        Some(v) if v.eq_ignore_ascii_case(b"https") => "https",
        _ => "http",
    }
}

/// A WebSocket (or other) upgrade request: `Connection` lists `upgrade`
/// and an `Upgrade` field is present.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(b"upgrade"))
}

/// The comma-separated tokens of every `Connection` line, trimmed.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Drops the hop-by-hop fields, those named in `Connection` included. With
/// `upgrade` the handshake's `Upgrade` stays and `Connection` becomes
/// exactly `upgrade`.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .collect();
    let upgrade_value = if upgrade {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    if let Some(v) = upgrade_value {
        headers.insert(header::UPGRADE, v);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Removes every `Boxoffice-*` field.
fn strip_boxoffice(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with("boxoffice-"))
        .cloned()
        .collect();
    for n in names {
        headers.remove(n);
    }
}

/// Cuts the gate's own cookies out of `Cookie`, joining what is left into
/// one field (RFC 6265 §5.4), or none when nothing is left.
fn strip_cookies(headers: &mut HeaderMap, own: &[&str]) {
    if !headers.contains_key(header::COOKIE) {
        return;
    }
    let mut kept: Vec<u8> = Vec::new();
    for line in headers.get_all(header::COOKIE) {
        for pair in line.as_bytes().split(|b| *b == b';') {
            let pair = pair.trim_ascii();
            if pair.is_empty() {
                continue;
            }
            let name = pair
                .split(|b| *b == b'=')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            if own.iter().any(|o| o.as_bytes() == name) {
                continue;
            }
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(pair);
        }
    }
    headers.remove(header::COOKIE);
    if let Ok(v) = HeaderValue::from_bytes(&kept) {
        if !kept.is_empty() {
            headers.insert(header::COOKIE, v);
        }
    }
}

/// The IP as the backend should read it: an IPv4-mapped IPv6 peer (a
/// dual-stack listener) is its IPv4 address.
fn plain_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Rewrites a request's fields for the backend (see the module notes).
fn request_headers(
    headers: &mut HeaderMap,
    fwd: &Forwarding<'_>,
    upgrade: bool,
) -> Result<(), ProxyError> {
    let from_proxy = trusted(fwd.peer.ip(), fwd.trusted_proxies);
    let proto = client_scheme(fwd.peer, headers, fwd.trusted_proxies);
    strip_hop_by_hop(headers, upgrade);
    strip_boxoffice(headers);
    headers.remove(header::EXPECT);

    // X-Forwarded-For: a trusted proxy's list plus that proxy; from anyone
    // else only the peer (whatever it claimed is dropped).
    let peer = plain_ip(fwd.peer.ip()).to_string();
    let mut xff: Vec<u8> = Vec::new();
    if from_proxy {
        for line in headers.get_all(&X_FORWARDED_FOR) {
            let line = line.as_bytes().trim_ascii();
            if !line.is_empty() {
                xff.extend_from_slice(line);
                xff.extend_from_slice(b", ");
            }
        }
    }
    xff.extend_from_slice(peer.as_bytes());
    headers.remove(&X_FORWARDED_FOR);
    let xff = HeaderValue::from_bytes(&xff)
        .map_err(|_| ProxyError::Config("X-Forwarded-For is not a header value".into()))?;
    headers.insert(X_FORWARDED_FOR, xff);

    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));

    // X-Forwarded-Host: a trusted proxy's, else the Host the client sent.
    let host = from_proxy
        .then(|| nearest(headers, &X_FORWARDED_HOST))
        .flatten()
        .and_then(|v| HeaderValue::from_bytes(v).ok())
        .or_else(|| headers.get(header::HOST).cloned());
    headers.remove(&X_FORWARDED_HOST);
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host);
    }
    if !from_proxy {
        headers.remove(header::FORWARDED);
    }

    strip_cookies(headers, fwd.own_cookies);
    // RFC 9110 §7.6.3: a gateway names itself on the requests it forwards.
    headers.append(header::VIA, HeaderValue::from_static("1.1 boxoffice"));

    for (name, value) in [
        (USER_HEADER, fwd.user),
        (TICKET_HEADER, fwd.ticket),
        (PASS_HEADER, fwd.pass),
    ] {
        let v = HeaderValue::from_str(value)
            .map_err(|_| ProxyError::Config(format!("{name} is not a header value")))?;
        headers.insert(name, v);
    }
    Ok(())
}

/// Rewrites a response's fields for the client and takes out the backend's
/// command. With `upgrade` (a 101 being tunnelled) the handshake's
/// `Upgrade` and `Connection: upgrade` stay.
fn response_headers(headers: &mut HeaderMap, upgrade: bool) -> Option<Command> {
    let mut command = None;
    for value in headers.get_all(&COMMAND_HEADER) {
        match Command::parse(value.as_bytes()) {
            // Revoke is the stronger: it also clears the pass.
            Some(Command::Revoke) => command = Some(Command::Revoke),
            Some(Command::Complete) => {
                command.get_or_insert(Command::Complete);
            }
            None => tracing::warn!(
                value = %String::from_utf8_lossy(value.as_bytes()),
                "the backend sent an unknown Boxoffice-Command; ignored"
            ),
        }
    }
    headers.remove(&COMMAND_HEADER);
    strip_hop_by_hop(headers, upgrade);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    fn all(h: &HeaderMap, name: &str) -> Vec<String> {
        h.get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    const PROXY: &str = "10.0.0.0/8";
    const OWN: &[&str] = &["bo_ticket", "bo_pass", "bo_lang"];

    fn fwd<'a>(peer: &str, trusted: &'a [Cidr]) -> Forwarding<'a> {
        Forwarding {
            peer: peer.parse().expect("peer"),
            trusted_proxies: trusted,
            user: "u-1",
            ticket: "t-1",
            pass: "p.1",
            own_cookies: OWN,
        }
    }

    #[test]
    fn hop_by_hop_and_connection_named_fields_are_dropped() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("connection", " x-other ,"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic Zm9v"),
            ("proxy-authenticate", "Basic"),
            ("x-secret-hop", "1"),
            ("x-other", "2"),
            ("x-end-to-end", "3"),
            ("content-type", "text/plain"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let mut names: Vec<&str> = h.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "x-end-to-end"]);
    }

    #[test]
    fn an_upgrade_keeps_its_handshake_fields_only() {
        let mut h = map(&[
            ("connection", "Upgrade, x-hop"),
            ("upgrade", "websocket"),
            ("x-hop", "1"),
            ("sec-websocket-key", "abc"),
            ("te", "trailers"),
        ]);
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(all(&h, "upgrade"), ["websocket"]);
        assert_eq!(all(&h, "connection"), ["upgrade"]);
        assert!(h.get("x-hop").is_none() && h.get("te").is_none());
        assert_eq!(all(&h, "sec-websocket-key"), ["abc"]);
    }

    #[test]
    fn upgrade_needs_both_fields() {
        assert!(!is_upgrade(&map(&[("upgrade", "websocket")])));
        assert!(!is_upgrade(&map(&[("connection", "upgrade")])));
        assert!(is_upgrade(&map(&[
            ("connection", "keep-alive"),
            ("connection", "UPGRADE"),
            ("upgrade", "websocket"),
        ])));
    }

    #[test]
    fn client_boxoffice_fields_are_replaced_by_the_pass() {
        let mut h = map(&[
            ("boxoffice-user", "admin"),
            ("Boxoffice-Ticket", "someone-else"),
            ("boxoffice-pass", "forged"),
            ("boxoffice-command", "complete"),
            ("boxoffice-anything", "x"),
            ("host", "shop.example"),
        ]);
        request_headers(&mut h, &fwd("198.51.100.7:4000", &[]), false).expect("rewrite");
        assert_eq!(all(&h, "boxoffice-user"), ["u-1"]);
        assert_eq!(all(&h, "boxoffice-ticket"), ["t-1"]);
        assert_eq!(all(&h, "boxoffice-pass"), ["p.1"]);
        assert!(h.get("boxoffice-command").is_none());
        assert!(h.get("boxoffice-anything").is_none());
        assert_eq!(all(&h, "host"), ["shop.example"], "the original Host");
        assert_eq!(all(&h, "via"), ["1.1 boxoffice"]);
    }

    #[test]
    fn forwarded_fields_from_an_untrusted_peer_are_replaced() {
        let trusted: Vec<Cidr> = vec![PROXY.parse().expect("cidr")];
        let mut h = map(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "for=6.6.6.6;proto=https"),
            ("host", "shop.example"),
        ]);
        let f = fwd("198.51.100.7:4000", &trusted);
        assert_eq!(client_scheme(f.peer, &h, &trusted), "http");
        request_headers(&mut h, &f, false).expect("rewrite");
        assert_eq!(all(&h, "x-forwarded-for"), ["198.51.100.7"]);
        assert_eq!(all(&h, "x-forwarded-proto"), ["http"]);
        assert_eq!(all(&h, "x-forwarded-host"), ["shop.example"]);
        assert!(h.get("forwarded").is_none());
    }

    #[test]
    fn forwarded_fields_from_a_trusted_proxy_are_extended() {
        let trusted: Vec<Cidr> = vec![PROXY.parse().expect("cidr")];
        let mut h = map(&[
            ("x-forwarded-for", "203.0.113.5"),
            ("x-forwarded-for", "10.1.1.1"),
            ("x-forwarded-proto", "HTTPS"),
            ("x-forwarded-host", "shop.example"),
            ("forwarded", "for=203.0.113.5;proto=https"),
            ("host", "internal:8080"),
        ]);
        let f = fwd("10.0.0.2:4000", &trusted);
        assert_eq!(client_scheme(f.peer, &h, &trusted), "https");
        request_headers(&mut h, &f, false).expect("rewrite");
        assert_eq!(
            all(&h, "x-forwarded-for"),
            ["203.0.113.5, 10.1.1.1, 10.0.0.2"]
        );
        assert_eq!(all(&h, "x-forwarded-proto"), ["https"]);
        assert_eq!(all(&h, "x-forwarded-host"), ["shop.example"]);
        assert_eq!(all(&h, "forwarded"), ["for=203.0.113.5;proto=https"]);

        // Only http|https is believed, even from a trusted proxy.
        let odd = map(&[("x-forwarded-proto", "gopher")]);
        assert_eq!(client_scheme(f.peer, &odd, &trusted), "http");
        let mut odd = odd;
        request_headers(&mut odd, &f, false).expect("rewrite");
        assert_eq!(all(&odd, "x-forwarded-proto"), ["http"]);
        assert_eq!(all(&odd, "x-forwarded-for"), ["10.0.0.2"]);
    }

    #[test]
    fn a_mapped_ipv6_peer_is_logged_as_ipv4() {
        let mut h = HeaderMap::new();
        request_headers(&mut h, &fwd("[::ffff:192.0.2.1]:80", &[]), false).expect("rewrite");
        assert_eq!(all(&h, "x-forwarded-for"), ["192.0.2.1"]);
        assert!(h.get("x-forwarded-host").is_none(), "no Host, no XFH");
    }

    #[test]
    fn the_gates_cookies_are_cut_out() {
        let mut h = map(&[
            ("cookie", "bo_ticket=t; session=abc; bo_pass=p"),
            ("cookie", "bo_lang=ko;theme=dark"),
        ]);
        strip_cookies(&mut h, OWN);
        assert_eq!(all(&h, "cookie"), ["session=abc; theme=dark"]);

        let mut only_ours = map(&[("cookie", "bo_pass=p; bo_ticket=t")]);
        strip_cookies(&mut only_ours, OWN);
        assert!(only_ours.get("cookie").is_none(), "nothing left: no header");

        // Names are exact: a lookalike stays.
        let mut alike = map(&[("cookie", "bo_pass2=x; BO_PASS=y")]);
        strip_cookies(&mut alike, OWN);
        assert_eq!(all(&alike, "cookie"), ["bo_pass2=x; BO_PASS=y"]);
    }

    #[test]
    fn commands_parse_and_leave_the_response() {
        assert_eq!(Command::parse(b" Complete "), Some(Command::Complete));
        assert_eq!(Command::parse(b"REVOKE"), Some(Command::Revoke));
        assert_eq!(Command::parse(b"completed"), None);
        assert_eq!(Command::parse(b""), None);

        let mut h = map(&[
            ("boxoffice-command", "complete"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("connection", "close"),
        ]);
        assert_eq!(response_headers(&mut h, false), Some(Command::Complete));
        assert!(h.get("boxoffice-command").is_none());
        assert_eq!(all(&h, "set-cookie"), ["a=1", "b=2"]);
        assert!(h.get("connection").is_none());

        let mut both = map(&[
            ("boxoffice-command", "complete"),
            ("boxoffice-command", "revoke"),
        ]);
        assert_eq!(response_headers(&mut both, false), Some(Command::Revoke));

        let mut unknown = map(&[("boxoffice-command", "reboot")]);
        assert_eq!(response_headers(&mut unknown, false), None);
        assert!(unknown.is_empty(), "an unknown command is removed too");
    }

    #[test]
    fn backend_urls_are_checked() {
        let t = Duration::from_secs(1);
        let ok = |s: &str| Backend::new(&s.parse().expect("uri"), t, 4);
        assert!(ok("http://127.0.0.1:9000").is_ok());
        let b = ok("http://127.0.0.1:9000/shop/").expect("prefix");
        let target = b
            .inner
            .target(&"/seats?x=1".parse().expect("uri"))
            .expect("target");
        assert_eq!(target, "http://127.0.0.1:9000/shop/seats?x=1");
        for bad in [
            "https://127.0.0.1:9000",
            "/relative",
            "http://u:p@127.0.0.1:9000",
            "http://127.0.0.1:9000/?q=1",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
        assert!(Backend::new(&"http://h:1".parse().expect("uri"), t, 0).is_err());
        assert!(Backend::new(&"http://h:1".parse().expect("uri"), Duration::ZERO, 1).is_err());
        assert!(b.inner.target(&"*".parse().expect("uri")).is_err());
    }

    #[test]
    fn errors_map_to_the_contract() {
        let cases = [
            (
                ProxyError::Unavailable("x".into()),
                502,
                "backend_unavailable",
            ),
            (ProxyError::Broken("x".into()), 502, "backend_unavailable"),
            (
                ProxyError::Timeout(Duration::from_secs(1)),
                504,
                "backend_timeout",
            ),
            (ProxyError::Busy, 503, "unavailable"),
            (
                ProxyError::ClientTimeout(Duration::from_secs(1)),
                408,
                "request_timeout",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!((e.status().as_u16(), e.code()), (status, code), "{e}");
            assert!(!e.message().is_empty());
        }
        assert_eq!(ProxyError::Busy.retry_after_s(), Some(BUSY_RETRY_AFTER_S));
    }
}
