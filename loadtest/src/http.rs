//! The HTTP/1.1 client: one hyper connection per socket, each bound to a
//! chosen 127.0.0.x source address (so neither the ephemeral ports of one
//! address nor the server's per-address caps bound the run), plus the small
//! parsers the driver needs: status documents, error codes, pass payloads
//! and server-sent events. Everything the server sends is parsed without
//! panicking: a malformed answer is a recorded error, never a crash.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;
use tokio::net::TcpSocket;

/// Largest answer body read (a seat map of a 100,000-seat section is ~100 KB).
const MAX_BODY: usize = 8 << 20;

/// Checks that `url` is `http://127.x.y.z:port` and returns the address.
pub fn loopback_target(url: &str) -> Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .context("--target must be http://127.x.y.z:PORT")?;
    let hostport = rest.trim_end_matches('/');
    let addr: SocketAddr = hostport
        .parse()
        .with_context(|| format!("--target {url:?}: not an IPv4 address and port"))?;
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => Ok(addr),
        _ => bail!("--target {url:?}: only loopback (127.0.0.0/8) targets are allowed"),
    }
}

/// The source addresses connections are spread over: 127.0.0.2 ….
pub fn source_addrs(n: u32) -> Vec<Ipv4Addr> {
    (0..n)
        .map(|i| Ipv4Addr::new(127, 0, 0, (2 + i).min(254) as u8))
        .collect()
}

/// One keep-alive connection.
#[derive(Debug)]
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    /// Last time a request finished on it: the server closes keep-alive
    /// connections idle for 10 s, so an older one is replaced before use
    /// rather than raced.
    pub last_used: Instant,
    /// The server asked to close after the last answer.
    pub closing: bool,
}

/// Connects from `src` to `dst` (the connection task runs on the current
/// `LocalSet`).
pub async fn connect(src: Ipv4Addr, dst: SocketAddr) -> Result<Conn> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(IpAddr::V4(src), 0))
        .with_context(|| format!("binding {src}"))?;
    let stream = sock
        .connect(dst)
        .await
        .with_context(|| format!("connecting {src} -> {dst}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::task::spawn_local(async move {
        // Ends when the server closes the connection or the sender is dropped.
        let _ = conn.await;
    });
    Ok(Conn {
        sender,
        last_used: Instant::now(),
        closing: false,
    })
}

/// Who a request speaks as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Realm {
    Public,
    Service,
    Admin,
}

/// A request to send: method, path and query, optional JSON body.
#[derive(Debug)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub realm: Realm,
    pub body: Option<Vec<u8>>,
    pub idempotency_key: Option<String>,
}

impl Req {
    pub fn get(path: String) -> Self {
        Req {
            method: Method::GET,
            path,
            realm: Realm::Public,
            body: None,
            idempotency_key: None,
        }
    }
    pub fn new(method: Method, path: String, realm: Realm, body: Option<Vec<u8>>) -> Self {
        Req {
            method,
            path,
            realm,
            body,
            idempotency_key: None,
        }
    }
}

/// Precomputed header values of a target.
#[derive(Clone, Debug)]
pub struct Auth {
    pub host: HeaderValue,
    pub service: HeaderValue,
    pub admin: HeaderValue,
}

impl Auth {
    pub fn new(dst: SocketAddr, service: &str, admin: &str) -> Result<Self> {
        Ok(Auth {
            host: HeaderValue::from_str(&dst.to_string())?,
            service: HeaderValue::from_str(&format!("Bearer {service}"))
                .context("service token is not a valid header value")?,
            admin: HeaderValue::from_str(&format!("Bearer {admin}"))
                .context("admin token is not a valid header value")?,
        })
    }

    pub fn build(&self, req: Req) -> Result<Request<Full<Bytes>>> {
        let mut b = Request::builder()
            .method(req.method)
            .uri(req.path)
            .header(HOST, self.host.clone());
        match req.realm {
            Realm::Public => {}
            Realm::Service => b = b.header(AUTHORIZATION, self.service.clone()),
            Realm::Admin => b = b.header(AUTHORIZATION, self.admin.clone()),
        }
        if let Some(k) = req.idempotency_key {
            b = b.header("idempotency-key", k);
        }
        let body = match req.body {
            Some(v) => {
                b = b.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Full::new(Bytes::from(v))
            }
            None => Full::new(Bytes::new()),
        };
        Ok(b.body(body)?)
    }
}

/// A whole answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Bytes,
    pub retry_after_s: Option<u64>,
}

impl Conn {
    /// Whether the connection can carry another request.
    pub fn usable(&self) -> bool {
        !self.closing
            && !self.sender.is_closed()
            && self.last_used.elapsed() < std::time::Duration::from_secs(5)
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Resp> {
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let h = resp.headers();
        self.closing = h
            .get(CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let retry_after_s = h
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the body: {e}"))?
            .to_bytes();
        self.last_used = Instant::now();
        Ok(Resp {
            status,
            body,
            retry_after_s,
        })
    }

    /// Sends a request whose answer is a stream; returns the status and the
    /// body to read frames from.
    pub async fn open_stream(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, hyper::body::Incoming)> {
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        Ok((resp.status(), resp.into_body()))
    }
}

/// The fields of a status document the driver reads.
#[derive(Debug, Deserialize)]
pub struct StatusDoc<'a> {
    #[serde(borrow)]
    pub ticket: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub user: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub state: Cow<'a, str>,
    pub position: Option<u64>,
    pub waiting: Option<u64>,
    pub eta_s: Option<u64>,
    pub poll_after_ms: Option<u64>,
    #[serde(borrow)]
    pub pass: Option<Cow<'a, str>>,
}

pub fn status_doc(body: &[u8]) -> Option<StatusDoc<'_>> {
    serde_json::from_slice(body).ok()
}

/// `error.code` of an error answer, or `"unparsed"`.
pub fn error_code(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct E<'a> {
        #[serde(borrow)]
        error: Inner<'a>,
    }
    #[derive(Deserialize)]
    struct Inner<'a> {
        #[serde(borrow)]
        code: Cow<'a, str>,
    }
    match serde_json::from_slice::<E<'_>>(body) {
        Ok(e) if e.error.code.len() <= 64 => e.error.code.into_owned(),
        _ => "unparsed".to_string(),
    }
}

/// `iat` and `exp` (Unix ms) from a pass `v1.<kid>.<payload>.<sig>`.
pub fn pass_times(pass: &str) -> Option<(u64, u64)> {
    use base64::Engine as _;
    #[derive(Deserialize)]
    struct P {
        iat: u64,
        exp: u64,
    }
    let mut parts = pass.split('.');
    if parts.next()? != "v1" {
        return None;
    }
    let _kid = parts.next()?;
    let payload = parts.next()?;
    parts.next()?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let p: P = serde_json::from_slice(&raw).ok()?;
    Some((p.iat, p.exp))
}

/// Incremental parser of `text/event-stream`: feed it bytes as they come,
/// get the `data` of every complete event named `status` (or unnamed).
/// Multi-line `data:` fields are joined with `\n`, comments (`:`) and other
/// fields ignored, `\r\n` and `\n` both end lines. A line longer than
/// 1 MiB is a protocol error.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
}

impl SseParser {
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Vec<u8>>) -> Result<()> {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(nl) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl;
            let mut line = &self.buf[start..end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            let line = line.to_vec();
            start = end + 1;
            self.line(&line, out);
        }
        self.buf.drain(..start);
        if self.buf.len() > 1 << 20 {
            bail!("event-stream line over 1 MiB");
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Vec<u8>>) {
        if line.is_empty() {
            if self.has_data && (self.event.is_empty() || self.event == b"status") {
                out.push(std::mem::take(&mut self.data));
            }
            self.data.clear();
            self.event.clear();
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => self.event = value.to_vec(),
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            _ => {}
        }
    }
}

/// Reads the next data frame of a streaming body (None at its end).
pub async fn next_chunk(body: &mut hyper::body::Incoming) -> Result<Option<Bytes>> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    return Ok(Some(d));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        assert!(loopback_target("http://127.0.0.1:8080").is_ok());
        assert!(loopback_target("http://127.9.8.7:1/").is_ok());
        for bad in [
            "http://10.0.0.1:80",
            "http://0.0.0.0:80",
            "https://127.0.0.1:80",
            "http://localhost:80",
            "http://[::1]:80",
            "127.0.0.1:80",
        ] {
            assert!(loopback_target(bad).is_err(), "{bad}");
        }
        assert_eq!(
            source_addrs(2),
            [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)]
        );
    }

    #[test]
    fn sse_events_across_chunks() {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        let text = b": hi\r\nevent: status\r\ndata: {\"a\":1}\r\n\r\nevent: other\ndata: x\n\nevent: status\ndata: {\"b\":\ndata: 2}\n\ndata:3\n\n";
        for chunk in text.chunks(5) {
            p.push(chunk, &mut out).expect("parse");
        }
        let got: Vec<&[u8]> = out.iter().map(|v| v.as_slice()).collect();
        assert_eq!(got, [&b"{\"a\":1}"[..], b"{\"b\":\n2}", b"3"]);
    }

    #[test]
    fn sse_refuses_endless_lines() {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        assert!(p.push(&vec![b'x'; (1 << 20) + 1], &mut out).is_err());
    }

    #[test]
    fn status_documents_parse() {
        let d = status_doc(br#"{"ticket":"AAAA","event":"e","user":"u-1","state":"waiting","position":3,"waiting":9,"eta_s":null,"poll_after_ms":1000}"#)
            .expect("doc");
        assert_eq!(d.state, "waiting");
        assert_eq!(d.position, Some(3));
        assert_eq!(d.eta_s, None);
        assert!(status_doc(b"{").is_none());
        assert!(status_doc(br#"{"state": 3}"#).is_none());
        assert_eq!(
            error_code(br#"{"error":{"code":"sold_out","message":"x"}}"#),
            "sold_out"
        );
        assert_eq!(error_code(b"<html>"), "unparsed");
    }

    #[test]
    fn pass_payloads_decode() {
        use base64::Engine as _;
        let p = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"e":"e","u":"u","t":"t","iat":5,"exp":9}"#);
        assert_eq!(pass_times(&format!("v1.k1.{p}.sig")), Some((5, 9)));
        assert_eq!(pass_times(&format!("v2.k1.{p}.sig")), None);
        assert_eq!(pass_times("v1.k1"), None);
        assert_eq!(pass_times("v1.k1.!!!.x"), None);
    }
}
