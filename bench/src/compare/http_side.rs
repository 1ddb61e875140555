//! boxoffice over HTTP: the real server binary, started by this program on a
//! free loopback port with known tokens and killed by PID when dropped.
//! The same client, launcher and set-up also drive the other HTTP systems
//! (the Redis design behind an HTTP front, bare hyper): see
//! [`super::front_side`] and [`super::bare`].
//!
//! Each client thread owns one keep-alive HTTP/1.1 connection and sends one
//! request at a time, like the Redis design's one connection per thread; a
//! user-visible operation is one HTTP call here. The client is a minimal
//! blocking HTTP/1.1 writer/reader (Content-Length and chunked bodies), so the
//! client threads cost about what the Redis client threads cost.

use super::suite::{ClaimResult, Client, Coupon, JoinReply, System};
use super::workloads::Plan;
use anyhow::{bail, ensure, Context, Result};
use boxoffice_testkit::{free_port, ChildGuard, TempDir};
use serde::Deserialize;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const ADMIN: &str = "compare-admin-token";
pub const SERVICE: &str = "compare-service-token";
const SECRET: &str = "compare-pass-secret-0123456789-abcdef";
/// The event with the waiting room, and the venue's.
pub(super) const QUEUE_EVENT: &str = "q";
pub(super) const SEAT_EVENT: &str = "s";

/// One keep-alive HTTP/1.1 connection.
#[derive(Debug)]
pub struct HttpConn {
    addr: SocketAddr,
    reader: Option<BufReader<TcpStream>>,
    out: Vec<u8>,
    line: String,
}

impl HttpConn {
    pub fn connect(addr: SocketAddr) -> Result<Self> {
        let mut c = HttpConn {
            addr,
            reader: None,
            out: Vec::with_capacity(512),
            line: String::with_capacity(128),
        };
        c.reader = Some(c.open()?);
        Ok(c)
    }

    fn open(&self) -> Result<BufReader<TcpStream>> {
        let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {}", self.addr))?;
        // One small request at a time: Nagle would only add delay.
        s.set_nodelay(true).context("TCP_NODELAY")?;
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .context("read timeout")?;
        Ok(BufReader::with_capacity(16 * 1024, s))
    }

    /// Sends one request and reads the whole response: (status, body).
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, Vec<u8>)> {
        if self.reader.is_none() {
            self.reader = Some(self.open()?);
        }
        self.out.clear();
        write!(
            self.out,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n",
            self.addr
        )?;
        if let Some(t) = token {
            write!(self.out, "Authorization: Bearer {t}\r\n")?;
        }
        match body {
            Some(b) => write!(
                self.out,
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )?,
            None => self.out.extend_from_slice(b"\r\n"),
        }
        let r = self.reader.as_mut().context("no connection")?;
        r.get_mut()
            .write_all(&self.out)
            .with_context(|| format!("sending {method} {path}"))?;
        let (status, body, close) = read_response(r, &mut self.line)
            .with_context(|| format!("reading the response to {method} {path}"))?;
        if close {
            self.reader = None;
        }
        Ok((status, body))
    }
}

fn read_line<'a>(r: &mut impl BufRead, line: &'a mut String) -> Result<&'a str> {
    line.clear();
    let n = r.read_line(line).context("reading")?;
    ensure!(n > 0, "the server closed the connection");
    Ok(line.trim_end_matches(['\r', '\n']))
}

/// Reads one response: status, body, and whether the server closes.
fn read_response(r: &mut impl BufRead, line: &mut String) -> Result<(u16, Vec<u8>, bool)> {
    let status_line = read_line(r, line)?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    loop {
        let h = read_line(r, line)?;
        if h.is_empty() {
            break;
        }
        let Some((name, value)) = h.split_once(':') else {
            bail!("bad header line {h:?}");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("content-length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let size_line = read_line(r, line)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .context("chunk size")?;
            if size == 0 {
                while !read_line(r, line)?.is_empty() {}
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..]).context("chunk")?;
            read_line(r, line)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body).context("body")?;
    }
    Ok((status, body, close))
}

/// Builds `bin` of `package` in release mode (a no-op when it is fresh) and
/// returns its path under target/release (or `CARGO_TARGET_DIR`).
pub fn build(package: &str, bin: &str) -> Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let args = ["build", "--release", "-p", package, "--bin", bin];
    let shown = format!("cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(&root)
        .status()
        .with_context(|| format!("running {shown}"))?;
    ensure!(status.success(), "{shown} failed");
    let path = target.join("release").join(bin);
    ensure!(
        path.exists(),
        "{} is missing after the build",
        path.display()
    );
    Ok(path)
}

/// [`build`] of the server: target/release/boxoffice.
pub fn build_server() -> Result<PathBuf> {
    build("boxoffice", "boxoffice")
}

/// A server process this program started (`boxoffice serve`, or one of the
/// other HTTP systems), killed by PID when dropped.
#[derive(Debug)]
pub struct HttpServer {
    // Declared before `dir`: the process is killed before its log goes.
    child: ChildGuard,
    pub addr: SocketAddr,
    dir: TempDir,
}

impl HttpServer {
    /// Starts `bin serve` on a free loopback port, memory only, and waits for
    /// `/readyz`. The per-IP join limit is turned off when the server has the
    /// flag: every client here shares one IP.
    pub fn start(bin: &Path) -> Result<Self> {
        Self::start_with(bin, &[])
    }

    /// [`HttpServer::start`] with more `serve` flags (`extra`, passed as given).
    pub fn start_with(bin: &Path, extra: &[&str]) -> Result<Self> {
        let help = Command::new(bin)
            .args(["serve", "--help"])
            .output()
            .with_context(|| format!("running {} serve --help", bin.display()))?;
        ensure!(
            help.status.success(),
            "{} serve --help failed: {}",
            bin.display(),
            String::from_utf8_lossy(&help.stderr)
        );
        // The load comes from one address: turn the per-client limits off
        // that this binary has (an older baseline may lack some).
        let help = String::from_utf8_lossy(&help.stdout);
        let flags: Vec<&str> = [
            ("--join-rate", "0"),
            ("--poll-rate", "0"),
            ("--max-connections-per-client", "10000"),
        ]
        .into_iter()
        .filter(|(flag, _)| help.contains(flag))
        .flat_map(|(flag, v)| [flag, v])
        .chain(extra.iter().copied())
        .collect();
        HttpServer::launch(bin, "compare-server", |addr| {
            let mut args: Vec<String> = [
                "serve",
                "--listen",
                &addr.to_string(),
                "--admin-token",
                ADMIN,
                "--service-token",
                SERVICE,
                "--secret",
                SECRET,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(flags.iter().map(|s| s.to_string()));
            args
        })
    }

    /// Starts `bin` with `args(addr)` on a free loopback port and waits for
    /// `/readyz` to answer 200; a port taken in between is retried with
    /// another (three tries). The child's output goes to `server.log` in its
    /// own temp dir (`tag`).
    pub fn launch(bin: &Path, tag: &str, args: impl Fn(SocketAddr) -> Vec<String>) -> Result<Self> {
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(bin, tag, &args) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("the server did not start")))
    }

    fn try_start(bin: &Path, tag: &str, args: &dyn Fn(SocketAddr) -> Vec<String>) -> Result<Self> {
        let port = free_port().context("probing a free loopback port")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = TempDir::new(tag).context("creating the server's temp dir")?;
        let mut cmd = Command::new(bin);
        cmd.args(args(addr));
        cmd.env_remove("BOXOFFICE_REDIS");
        // The access log would write ~100 MB per workload into server.log; the
        // comparison measures serving, with the server's other logs kept.
        cmd.env("RUST_LOG", "info,boxoffice::access=off");
        let child = ChildGuard::spawn_logged(&mut cmd, &dir.path().join("server.log"))
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = HttpServer { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.exited().context("server status")? {
                bail!("the server exited ({status}): {}", server.log().trim());
            }
            let ready = HttpConn::connect(addr)
                .and_then(|mut c| c.send("GET", "/readyz", None, None))
                .is_ok_and(|(s, _)| s == 200);
            if ready {
                return Ok(server);
            }
            ensure!(
                Instant::now() < deadline,
                "the server was not ready within 30 s: {}",
                server.log().trim()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct StatusDoc {
    ticket: String,
    state: String,
    position: Option<u64>,
    /// The Redis design's `INCR` number, from the front over Redis (not a
    /// boxoffice field).
    #[serde(default)]
    seq: Option<u64>,
}

#[derive(Deserialize)]
struct HoldDoc {
    hold: String,
    state: String,
}

#[derive(Deserialize)]
struct EventDoc {
    waiting: u64,
}

#[derive(Deserialize)]
struct SeatsDoc {
    held: u64,
    sold: u64,
}

#[derive(Deserialize)]
struct CouponDoc {
    issued: u64,
    remaining: u64,
}

#[derive(Deserialize)]
struct ErrorDoc {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
}

fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorDoc>(body)
        .map(|e| e.error.code)
        .unwrap_or_default()
}

pub(super) fn unexpected(what: &str, status: u16, body: &[u8]) -> anyhow::Error {
    anyhow::anyhow!("{what}: HTTP {status}: {}", String::from_utf8_lossy(body))
}

pub(super) fn coupon_id(c: Coupon) -> &'static str {
    match c {
        Coupon::Main => "c",
        Coupon::Spin => "c-spin",
    }
}

/// The timed paths without a variable part, spelled out (no formatting per
/// request); a test checks them against the names above.
const JOIN_PATH: &str = "/v1/events/q/queue";

fn claim_path(c: Coupon) -> &'static str {
    match c {
        Coupon::Main => "/v1/coupons/c/claims",
        Coupon::Spin => "/v1/coupons/c-spin/claims",
    }
}

/// The HTTP side of the comparison: boxoffice's, or (through
/// [`super::front_side`]) the front over Redis, which takes the same
/// requests.
#[derive(Debug)]
pub struct HttpSide {
    addr: SocketAddr,
    /// The serving processes whose CPU is measured.
    pids: Vec<Option<u32>>,
    plan: Arc<Plan>,
}

#[derive(Debug)]
pub struct HttpClient {
    conn: HttpConn,
    plan: Arc<Plan>,
    body: String,
}

impl HttpSide {
    pub fn new(server: &HttpServer, plan: Arc<Plan>) -> Self {
        Self::at(server.addr, vec![server.pid()], plan)
    }

    /// A side at `addr` whose serving processes are `pids`.
    pub fn at(addr: SocketAddr, pids: Vec<Option<u32>>, plan: Arc<Plan>) -> Self {
        HttpSide { addr, pids, plan }
    }

    /// One set-up or check call on a fresh connection (untimed).
    pub(super) fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Result<Vec<u8>> {
        let mut c = HttpConn::connect(self.addr)?;
        let (status, out) = c.send(method, path, token, body)?;
        ensure!(
            (200..300).contains(&status),
            "{}",
            unexpected(&format!("{method} {path}"), status, &out)
        );
        Ok(out)
    }
}

impl System for HttpSide {
    type Client = HttpClient;

    fn pids(&self) -> Vec<Option<u32>> {
        self.pids.clone()
    }

    fn client(&self) -> Result<HttpClient> {
        HttpClient::connect(self.addr, self.plan.clone())
    }

    fn setup_queue(&self) -> Result<()> {
        let capacity = self.plan.sizes.joiners.max(1);
        let body = serde_json::json!({
            "name": "compare queue",
            "queue": {"capacity": capacity, "admit_per_s": 1, "session_ttl_s": 86_400,
                      "idle_timeout_s": 86_400, "max_waiting": 100_000_000, "prequeue": "fifo"},
            "seats": [],
            "holds": {"ttl_s": 600, "max_ttl_s": 1800, "max_seats_per_user": 4}
        });
        let path = format!("/v1/events/{QUEUE_EVENT}");
        self.call("PUT", &path, Some(ADMIN), Some(&body.to_string()))?;
        // Paused: the server's own ticker must not admit while positions are checked.
        self.call("POST", &format!("{path}/pause"), Some(ADMIN), None)?;
        Ok(())
    }

    fn waiting(&self) -> Result<u64> {
        let body = self.call("GET", &format!("/v1/events/{QUEUE_EVENT}"), None, None)?;
        Ok(serde_json::from_slice::<EventDoc>(&body)
            .context("event document")?
            .waiting)
    }

    fn setup_seats(&self) -> Result<()> {
        let s = &self.plan.sizes;
        let mut rows = Vec::new();
        for section in 0..s.sections {
            for row in 1..=s.rows {
                rows.push(serde_json::json!({"section": format!("S{section}"),
                    "row": row.to_string(), "first": 1, "last": s.per_row, "category": "R"}));
            }
        }
        let body = serde_json::json!({
            "name": "compare venue",
            "seats": rows,
            "holds": {"ttl_s": 600, "max_ttl_s": 1800, "max_seats_per_user": 4}
        });
        let path = format!("/v1/events/{SEAT_EVENT}");
        self.call("PUT", &path, Some(ADMIN), Some(&body.to_string()))?;
        Ok(())
    }

    fn seat_counts(&self) -> Result<(u64, u64)> {
        let path = format!("/v1/events/{SEAT_EVENT}/seats");
        let body = self.call("GET", &path, None, None)?;
        let d: SeatsDoc = serde_json::from_slice(&body).context("seat counts")?;
        Ok((d.held, d.sold))
    }

    fn setup_coupon(&self, coupon: Coupon, stock: u32) -> Result<()> {
        let body = format!(r#"{{"stock": {stock}, "per_user": 1}}"#);
        let path = format!("/v1/coupons/{}", coupon_id(coupon));
        self.call("PUT", &path, Some(ADMIN), Some(&body))?;
        Ok(())
    }

    fn coupon_counts(&self, coupon: Coupon) -> Result<(u64, u64)> {
        let path = format!("/v1/coupons/{}", coupon_id(coupon));
        let d: CouponDoc =
            serde_json::from_slice(&self.call("GET", &path, None, None)?).context("coupon")?;
        Ok((d.issued, d.remaining))
    }
}

/// The requests, built the same way for every HTTP system; the [`Client`]
/// impl reads boxoffice's answers, [`super::bare`] the ceiling's fixed one.
impl HttpClient {
    pub(super) fn connect(addr: SocketAddr, plan: Arc<Plan>) -> Result<Self> {
        Ok(HttpClient {
            conn: HttpConn::connect(addr)?,
            plan,
            body: String::with_capacity(256),
        })
    }

    fn user_body(&mut self, user: usize) {
        self.body.clear();
        self.body.push_str(r#"{"user":""#);
        self.body.push_str(&self.plan.users[user]);
        self.body.push_str(r#""}"#);
    }

    /// The backend's join (service realm) of user `user`.
    pub(super) fn send_join(&mut self, user: usize) -> Result<(u16, Vec<u8>)> {
        self.user_body(user);
        self.conn
            .send("POST", JOIN_PATH, Some(SERVICE), Some(&self.body))
    }

    pub(super) fn send_poll(&mut self, ticket: &str) -> Result<(u16, Vec<u8>)> {
        let path = format!("/v1/events/{QUEUE_EVENT}/queue/{ticket}");
        self.conn.send("GET", &path, None, None)
    }

    /// Hold attempt `attempt` of the plan.
    pub(super) fn send_hold(&mut self, attempt: usize) -> Result<(u16, Vec<u8>)> {
        let req = &self.plan.holds[attempt];
        self.body.clear();
        self.body.push_str(r#"{"user":""#);
        self.body.push_str(&self.plan.users[req.user]);
        self.body.push_str(r#"","seats":["#);
        for (i, s) in req.seats.iter().enumerate() {
            if i > 0 {
                self.body.push(',');
            }
            self.body.push('"');
            self.body.push_str(s);
            self.body.push('"');
        }
        self.body.push_str("]}");
        let path = format!("/v1/events/{SEAT_EVENT}/holds");
        self.conn
            .send("POST", &path, Some(SERVICE), Some(&self.body))
    }

    pub(super) fn send_confirm(&mut self, hold: &str) -> Result<(u16, Vec<u8>)> {
        let path = format!("/v1/events/{SEAT_EVENT}/holds/{hold}/confirm");
        self.conn
            .send("POST", &path, Some(SERVICE), Some(r#"{"order":"o-1"}"#))
    }

    pub(super) fn send_claim(&mut self, coupon: Coupon, user: usize) -> Result<(u16, Vec<u8>)> {
        self.user_body(user);
        self.conn
            .send("POST", claim_path(coupon), Some(SERVICE), Some(&self.body))
    }
}

impl Client for HttpClient {
    type Hold = String;

    /// Joins as a booking backend does: service realm, on the user's behalf
    /// (the event is `signed`; a public join would need a user token).
    fn join(&mut self, user: usize) -> Result<JoinReply> {
        let (status, body) = self.send_join(user)?;
        ensure!(
            status == 201 || status == 200,
            "{}",
            unexpected("join", status, &body)
        );
        let d: StatusDoc = serde_json::from_slice(&body).context("status document")?;
        Ok(JoinReply {
            ticket: d.ticket,
            position: d.position.context("a joined user has no position")?,
            created: status == 201,
            seq: d.seq,
        })
    }

    fn poll(&mut self, ticket: &str) -> Result<u64> {
        let (status, body) = self.send_poll(ticket)?;
        ensure!(status == 200, "{}", unexpected("status", status, &body));
        let d: StatusDoc = serde_json::from_slice(&body).context("status document")?;
        ensure!(d.state == "waiting", "ticket is {}, not waiting", d.state);
        d.position.context("a waiting user has no position")
    }

    fn hold(&mut self, attempt: usize) -> Result<Option<String>> {
        let (status, body) = self.send_hold(attempt)?;
        match status {
            201 => {
                let d: HoldDoc = serde_json::from_slice(&body).context("hold document")?;
                ensure!(d.state == "held", "new hold is {}", d.state);
                Ok(Some(d.hold))
            }
            409 if error_code(&body) == "seats_unavailable" => Ok(None),
            _ => Err(unexpected("hold", status, &body)),
        }
    }

    fn confirm(&mut self, _attempt: usize, hold: &String) -> Result<bool> {
        let (status, body) = self.send_confirm(hold)?;
        match status {
            200 => {
                let d: HoldDoc = serde_json::from_slice(&body).context("hold document")?;
                Ok(d.state == "sold")
            }
            410 => Ok(false),
            _ => Err(unexpected("confirm", status, &body)),
        }
    }

    fn claim(&mut self, coupon: Coupon, user: usize) -> Result<ClaimResult> {
        let (status, body) = self.send_claim(coupon, user)?;
        match (status, error_code(&body).as_str()) {
            (201, _) => Ok(ClaimResult::Claimed),
            (409, "already_claimed") => Ok(ClaimResult::AlreadyClaimed),
            (410, "sold_out") => Ok(ClaimResult::SoldOut),
            _ => Err(unexpected("claim", status, &body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_paths_match_the_names() {
        assert_eq!(JOIN_PATH, format!("/v1/events/{QUEUE_EVENT}/queue"));
        for c in [Coupon::Main, Coupon::Spin] {
            assert_eq!(
                claim_path(c),
                format!("/v1/coupons/{}/claims", coupon_id(c))
            );
        }
    }

    #[test]
    fn reads_length_and_chunked_responses() -> Result<()> {
        let mut line = String::new();
        let raw = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}";
        let (s, b, close) = read_response(&mut &raw[..], &mut line)?;
        assert_eq!((s, b.as_slice(), close), (201, &b"{}"[..], false));
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                    3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (s, b, close) = read_response(&mut &raw[..], &mut line)?;
        assert_eq!((s, b.as_slice(), close), (200, &b"abcde"[..], true));
        Ok(())
    }
}
