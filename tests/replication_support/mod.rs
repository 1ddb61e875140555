//! Helpers for the replication tests: a private redis-server per test, an
//! engine configuration, and a random workload that records what was
//! acknowledged.
#![allow(dead_code)]

use boxoffice::replicate::{Options, Replicator, Unavailable};
use boxoffice_engine::config::{HoldPolicy, QueueConfig, RowRange};
use boxoffice_engine::queue::TicketState;
use boxoffice_engine::seats::{HoldState, SeatChoice};
use boxoffice_engine::*;
use boxoffice_testkit::{self as testkit, ChildGuard, RedisOptions};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub const T0: Timestamp = Timestamp(1_800_000_000_000);

pub const ADMIN: &str = "admin-token-replication-tests";
pub const SERVICE: &str = "service-token-replication-tests";
pub const SECRET: &str = "a-replication-test-secret-32-byte";

/// A redis-server this test started on 127.0.0.1 (boxoffice-testkit's),
/// stopped by PID on drop. Tests never touch a server they did not start.
/// Panics instead of returning errors: a test without its Redis cannot go on.
pub struct RedisServer {
    server: testkit::RedisServer,
    pub port: u16,
    /// Its temp dir (removed on drop); a test may put its logs there.
    pub dir: PathBuf,
}

impl RedisServer {
    fn launch(opts: RedisOptions) -> Self {
        let server = testkit::RedisServer::start(opts)
            .unwrap_or_else(|e| panic!("redis-server (scripts/ensure-test-deps.sh): {e}"));
        RedisServer {
            port: server.port(),
            dir: server.dir().to_path_buf(),
            server,
        }
    }

    /// No persistence: data lives as long as the process.
    pub fn start() -> Self {
        Self::launch(RedisOptions::default())
    }

    /// On a given port (nothing else must listen there).
    pub fn start_on(port: u16) -> Self {
        Self::launch(RedisOptions {
            port: Some(port),
            ..RedisOptions::default()
        })
    }

    /// With an fsync-always append-only file, so a restart keeps everything
    /// Redis acknowledged.
    pub fn start_persistent() -> Self {
        Self::launch(RedisOptions {
            aof: true,
            ..RedisOptions::default()
        })
    }

    /// A raw PING (no client library involved).
    pub fn ping(&self) -> bool {
        self.server.ping()
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Freezes the server (SIGSTOP): connections hang, as with a stalled Redis.
    pub fn pause(&self) {
        self.server.pause().expect("kill -STOP redis-server");
    }

    pub fn resume(&self) {
        self.server.resume().expect("kill -CONT redis-server");
    }

    /// kill -9 of this server's PID.
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Starts it again on the same port and directory (with the AOF, the data
    /// comes back).
    pub fn restart(&mut self) {
        self.server.restart().expect("redis-server restarts");
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("url")
    }
}

/// The server binary, killed (SIGKILL) on drop.
pub struct Boxoffice {
    child: ChildGuard,
    pub addr: String,
}

impl Boxoffice {
    /// Starts `boxoffice serve`; with `redis`, replicated in the given
    /// durability mode. Output goes to `log`.
    pub fn start(redis: Option<(&RedisServer, &str)>, log: &std::path::Path) -> Self {
        let port = testkit::free_port().expect("a free port");
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_boxoffice"));
        // Every client of these tests is on 127.0.0.1: per-client limits off.
        cmd.args([
            "serve",
            "--listen",
            &addr,
            "--join-rate",
            "0",
            "--poll-rate",
            "0",
        ])
        .args(["--max-connections-per-client", "10000"])
        .args(["--admin-token", ADMIN, "--service-token", SERVICE])
        .args(["--secret", SECRET]);
        if let Some((redis, mode)) = redis {
            cmd.args(["--redis", &redis.url(), "--durability", mode]);
        }
        let child = ChildGuard::spawn_logged(&mut cmd, log).expect("boxoffice binary");
        Boxoffice { child, addr }
    }

    /// kill -9.
    pub fn kill(&mut self) {
        self.child.kill();
    }
}

#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Http {
    pub fn new(addr: &str) -> Self {
        Http {
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(64)
                .build_http(),
            base: format!("http://{addr}"),
        }
    }

    /// Status and JSON body, or None if the server did not answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Option<(u16, Value)> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let bytes = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Bytes::from(serde_json::to_vec(v).ok()?)
            }
            None => Bytes::new(),
        };
        let req = b.body(Full::new(bytes)).ok()?;
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .ok()?
            .ok()?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Some((status, v))
    }

    pub async fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some((200, _)) = self.call(Method::GET, "/readyz", None, None).await {
                return;
            }
            assert!(Instant::now() < deadline, "server not ready in {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn engine_cfg(shards: usize) -> EngineConfig {
    let keys = PassKeys::new(PassKey::new("k1", b"test-pass-secret-0123").expect("key"));
    let mut cfg = EngineConfig::new([7u8; 32], keys);
    cfg.shards = NonZeroUsize::new(shards).expect("shards");
    cfg
}

/// Test options: a short lease, frequent flushes, no snapshots unless asked.
pub fn opts(owner: &str) -> Options {
    Options {
        owner: Some(owner.to_string()),
        lease_ttl: Duration::from_millis(1500),
        flush_interval: Duration::from_millis(2),
        snapshot_every: u64::MAX,
        snapshot_interval: Duration::from_secs(3600),
        commit_timeout: Duration::from_millis(1500),
        ..Options::default()
    }
}

/// Snapshots of both engines, presence cleared, are equal.
pub fn assert_same_state(live: &Engine, recovered: &Engine) {
    assert_same_snapshots(live.snapshot(), recovered.snapshot());
}

/// A live snapshot and a recovered one are equal (snapshots carry no presence).
pub fn assert_same_snapshots(a: Snapshot, b: Snapshot) {
    assert_eq!(a.shards.len(), b.shards.len());
    for (x, y) in a.shards.iter().zip(&b.shards) {
        assert_eq!(x, y, "shard {} differs after recovery", x.index);
    }
}

/// Waits until Redis has every shard's journal up to its current seq (in
/// either mode: async `durable()` does not wait, so poll the durable seq).
pub async fn flush(rep: &Replicator, engine: &Engine) {
    for shard in 0..engine.shard_count() {
        let seq = engine.journal_seq(shard);
        let deadline = Instant::now() + Duration::from_secs(60);
        while rep.durable_seq(shard) < seq {
            // In sync mode this also nudges the shipper.
            let r = rep.durable(shard, seq).await;
            if rep.durable_seq(shard) >= seq {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "shard {shard} not durable up to {seq}: {r:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).expect("non-zero")
}

/// A change the workload made that must survive once acknowledged.
#[derive(Clone, Debug)]
pub enum Ack {
    Confirmed(EventId, HoldId),
    Claimed(CouponId, ClaimId, UserId),
    Returned(CouponId, ClaimId),
    /// A new ticket in a waiting room.
    Joined(EventId, String, UserId),
    Other,
}

/// Random operations on events (seats, and waiting rooms on the `queued`
/// ones), coupons and time, from a fixed seed.
pub struct Workload {
    rng: u64,
    pub now: Timestamp,
    pub events: Vec<EventId>,
    /// Events with a waiting room (also in `events`).
    pub queued: Vec<EventId>,
    /// Every ticket handed out: event, ticket, user.
    pub tickets: Vec<(EventId, String, UserId)>,
    pub coupons: Vec<CouponId>,
    holds: Vec<(EventId, HoldId)>,
    claims: Vec<(CouponId, ClaimId)>,
    pub stock: u32,
}

impl Workload {
    pub fn new(seed: u64, events: usize, coupons: usize) -> Self {
        Workload {
            rng: seed | 1,
            now: T0,
            events: (0..events)
                .map(|i| EventId::new(&format!("ev{i}")).expect("id"))
                .collect(),
            coupons: (0..coupons)
                .map(|i| CouponId::new(&format!("cp{i}")).expect("id"))
                .collect(),
            queued: vec![],
            tickets: vec![],
            holds: vec![],
            claims: vec![],
            stock: 40,
        }
    }

    /// Adds `n` events with a waiting room (the first FIFO and open now, the
    /// others a random-order pre-queue that opens during the run).
    pub fn with_queues(mut self, n: usize) -> Self {
        for i in 0..n {
            let id = EventId::new(&format!("q{i}")).expect("id");
            self.events.push(id.clone());
            self.queued.push(id);
        }
        self
    }

    pub fn queued_config(i: usize) -> EventConfig {
        let mut cfg = Self::event_config();
        cfg.queue = Some(QueueConfig {
            capacity: nz(3),
            admit_per_s: nz(2),
            session_ttl_s: nz(40),
            idle_timeout_s: nz(30),
            max_waiting: nz(1000),
            poll_budget_per_s: boxoffice_engine::QueueConfig::default_poll_budget(nz(2), nz(1000)),
            identity: boxoffice_engine::Identity::Signed,
            prequeue: if i == 0 {
                PrequeueOrder::Fifo
            } else {
                PrequeueOrder::Random
            },
        });
        if i > 0 {
            cfg.opens_at = Some(T0.plus_secs(20));
        }
        cfg
    }

    pub fn next(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % n.max(1)
    }

    fn seats() -> Vec<RowRange> {
        ["A", "B"]
            .iter()
            .flat_map(|s| {
                (1..=3).map(move |r| RowRange {
                    section: s.to_string(),
                    row: r.to_string(),
                    first: 1,
                    last: 8,
                    category: if *s == "A" { "VIP".into() } else { "R".into() },
                })
            })
            .collect()
    }

    pub fn event_config() -> EventConfig {
        EventConfig {
            name: "replication test".into(),
            opens_at: None,
            queue: None,
            seats: Self::seats(),
            holds: HoldPolicy {
                ttl_s: nz(30),
                max_ttl_s: nz(120),
                max_seats_per_user: nz(4),
            },
        }
    }

    pub fn coupon_config(&self) -> CouponConfig {
        CouponConfig {
            stock: self.stock,
            per_user: nz(2),
            opens_at: None,
            closes_at: None,
        }
    }

    /// Creates the events and coupons; returns the shards touched.
    pub fn setup(&mut self, engine: &Engine) -> Vec<usize> {
        let mut shards = vec![];
        for (i, e) in self.events.clone().iter().enumerate() {
            let seed = [i as u8 + 1; 32];
            let cfg = match self.queued.iter().position(|q| q == e) {
                Some(k) => Self::queued_config(k),
                None => Self::event_config(),
            };
            let _ = engine.put_event(e, cfg, seed, self.now).expect("event");
            shards.push(engine.shard_of_event(e));
        }
        for c in self.coupons.clone() {
            let _ = engine
                .put_coupon(&c, self.coupon_config(), self.now)
                .expect("coupon");
            shards.push(engine.shard_of_coupon(&c));
        }
        shards
    }

    fn user(&mut self) -> UserId {
        let n = self.next(40);
        UserId::new(&format!("user-{n}")).expect("user")
    }

    /// One random operation; returns the shard it touched and, if it
    /// succeeded, what it changed.
    pub fn step(&mut self, engine: &Engine) -> (usize, Ack) {
        let roll = self.next(100);
        if roll < 5 {
            self.now = self.now.plus_ms(self.next(20_000));
            engine.tick(self.now);
            return (0, Ack::Other);
        }
        self.now = self.now.plus_ms(self.next(50));
        let now = self.now;
        if roll < 50 && !self.coupons.is_empty() {
            let k = self.next(self.coupons.len() as u64) as usize;
            let c = self.coupons[k].clone();
            let shard = engine.shard_of_coupon(&c);
            if roll < 40 {
                let u = self.user();
                let key = (self.next(4) == 0)
                    .then(|| IdempotencyKey::new(&format!("k-{}", self.next(30))).expect("key"));
                return match engine
                    .claim(&c, &u, key.as_ref(), now)
                    .map(Receipt::into_value)
                {
                    Ok(r) if !r.replayed => {
                        self.claims.push((c.clone(), r.claim));
                        (shard, Ack::Claimed(c, r.claim, u))
                    }
                    _ => (shard, Ack::Other),
                };
            }
            let mine: Vec<_> = self
                .claims
                .iter()
                .filter(|(x, _)| *x == c)
                .cloned()
                .collect();
            if mine.is_empty() {
                return (shard, Ack::Other);
            }
            let (_, claim) = mine[self.next(mine.len() as u64) as usize].clone();
            return match engine.return_claim(&c, claim, now).map(Receipt::into_value) {
                Ok(()) => (shard, Ack::Returned(c, claim)),
                Err(_) => (shard, Ack::Other),
            };
        }
        if roll < 65 && !self.queued.is_empty() {
            return self.queue_step(engine);
        }
        if self.events.is_empty() {
            return (0, Ack::Other);
        }
        let k = self.next(self.events.len() as u64) as usize;
        let e = self.events[k].clone();
        let shard = engine.shard_of_event(&e);
        match roll {
            50..=74 => {
                let u = self.user();
                let choice = if self.next(3) == 0 {
                    SeatChoice::Best {
                        count: nz(1 + self.next(2) as u32),
                        category: if self.next(2) == 0 { "VIP" } else { "R" }.into(),
                    }
                } else {
                    let n = 1 + self.next(2);
                    let seats = (0..n)
                        .map(|_| {
                            let s = if self.next(2) == 0 { "A" } else { "B" };
                            let id = format!("{s}-{}-{}", 1 + self.next(3), 1 + self.next(8));
                            SeatId::parse(&id).expect("seat")
                        })
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    SeatChoice::Exact(seats)
                };
                match engine.hold(&e, &u, &choice, None, now) {
                    Ok(h) => {
                        self.holds.push((e, h.into_value().hold.id));
                        (shard, Ack::Other)
                    }
                    Err(_) => (shard, Ack::Other),
                }
            }
            75..=89 => {
                let Some((ev, hold)) = self.pick_hold(&e) else {
                    return (shard, Ack::Other);
                };
                match engine
                    .confirm(&ev, hold, "order", now)
                    .map(Receipt::into_value)
                {
                    Ok(info) if info.state == HoldState::Sold => (shard, Ack::Confirmed(ev, hold)),
                    _ => (shard, Ack::Other),
                }
            }
            90..=94 => {
                if let Some((ev, hold)) = self.pick_hold(&e) {
                    let _ = engine.release(&ev, hold, now);
                }
                (shard, Ack::Other)
            }
            _ => {
                if let Some((ev, hold)) = self.pick_hold(&e) {
                    let _ = engine.extend(&ev, hold, 1 + self.next(60) as u32, now);
                }
                (shard, Ack::Other)
            }
        }
    }

    fn queue_step(&mut self, engine: &Engine) -> (usize, Ack) {
        let k = self.next(self.queued.len() as u64) as usize;
        let e = self.queued[k].clone();
        let shard = engine.shard_of_event(&e);
        let now = self.now;
        let mine: Vec<_> = self
            .tickets
            .iter()
            .filter(|(x, _, _)| *x == e)
            .cloned()
            .collect();
        let pick = |w: &mut Self| {
            (!mine.is_empty()).then(|| mine[w.next(mine.len() as u64) as usize].clone())
        };
        match self.next(10) {
            0..=4 => {
                let u = self.user();
                match engine.join(&e, &u, now).map(Receipt::into_value) {
                    Ok(j) if j.created => {
                        let t = j.view.status.ticket.clone();
                        self.tickets.push((e.clone(), t.clone(), u.clone()));
                        (shard, Ack::Joined(e, t, u))
                    }
                    _ => (shard, Ack::Other),
                }
            }
            5..=7 => {
                // Presence (soft state, not journaled) keeps users in line.
                if let Some((_, t, _)) = pick(self) {
                    let _ = engine.status(&e, &t, now);
                }
                (shard, Ack::Other)
            }
            8 => {
                if let Some((_, t, _)) = pick(self) {
                    let _ = engine.leave(&e, &t, now);
                }
                (shard, Ack::Other)
            }
            _ => {
                if let Some((_, t, _)) = pick(self) {
                    let _ = engine.complete(&e, &t, now);
                }
                (shard, Ack::Other)
            }
        }
    }

    fn pick_hold(&mut self, e: &EventId) -> Option<(EventId, HoldId)> {
        let mine: Vec<_> = self.holds.iter().filter(|(x, _)| x == e).cloned().collect();
        if mine.is_empty() {
            return None;
        }
        Some(mine[self.next(mine.len() as u64) as usize].clone())
    }
}

/// Every acknowledged change is in `engine`: confirmed holds are sold,
/// acknowledged claims exist (and are returned when the return was acked).
pub fn assert_acked_present(engine: &Engine, acked: &[Ack], now: Timestamp) {
    let snap = engine.snapshot();
    let coupon = |c: &CouponId| {
        snap.shards
            .iter()
            .flat_map(|s| s.coupons.iter())
            .find(|x| x.id() == c)
            .cloned()
    };
    let mut returned = std::collections::HashSet::new();
    for a in acked {
        if let Ack::Returned(c, claim) = a {
            returned.insert((c.clone(), *claim));
        }
    }
    for a in acked {
        match a {
            Ack::Confirmed(e, h) => {
                let info = engine
                    .get_hold(e, *h, now)
                    .expect("an acknowledged hold exists");
                assert_eq!(
                    info.state,
                    HoldState::Sold,
                    "acknowledged confirm of {h:?} lost"
                );
            }
            Ack::Claimed(c, claim, user) => {
                let cp = coupon(c).expect("coupon exists");
                let (owner, is_returned) = cp
                    .claim_info(*claim)
                    .unwrap_or_else(|| panic!("acknowledged claim {claim:?} of {c} lost"));
                assert_eq!(owner, user);
                if returned.contains(&(c.clone(), *claim)) {
                    assert!(is_returned, "acknowledged return of {claim:?} lost");
                }
            }
            Ack::Joined(e, t, u) => {
                let v = engine
                    .status(e, t, now)
                    .unwrap_or_else(|r| panic!("acknowledged ticket {t} of {e} lost: {r}"));
                assert_eq!(&v.status.user, u);
            }
            Ack::Returned(..) | Ack::Other => {}
        }
    }
    // I2 after recovery: conservation on every coupon.
    for s in &snap.shards {
        for c in &s.coupons {
            let n = c.counts();
            assert_eq!(n.issued + n.remaining, n.stock, "coupon conservation");
        }
    }
}

/// Counts durable() refusals by kind.
#[derive(Debug, Default)]
pub struct Refusals {
    pub timeout: u32,
    pub down: u32,
    pub other: u32,
}

impl Refusals {
    pub fn add(&mut self, e: Unavailable) {
        match e {
            Unavailable::Timeout => self.timeout += 1,
            Unavailable::Down => self.down += 1,
            _ => self.other += 1,
        }
    }
    pub fn total(&self) -> u32 {
        self.timeout + self.down + self.other
    }
}

/// The waiting rooms agree ticket by ticket: same state, and every pass the
/// live engine shows is accepted by the recovered one (passes stay valid).
/// Returns how many admitted tickets (with passes) were compared.
pub fn assert_tickets_agree(live: &Engine, recovered: &Engine, w: &Workload) -> usize {
    let mut admitted = 0;
    for (e, t, u) in &w.tickets {
        let a = live.status(e, t, w.now).expect("live ticket");
        let b = recovered.status(e, t, w.now).expect("recovered ticket");
        if a.status.state == TicketState::Expired {
            // Idleness is judged from presence, which restarts on recovery.
            continue;
        }
        assert_eq!(a.status.state, b.status.state, "ticket {t} of {e}");
        if a.status.state == TicketState::Admitted {
            admitted += 1;
            assert_eq!(a.pass_expires_at, b.pass_expires_at);
            let pass = a.pass.as_deref();
            recovered
                .check_pass(e, u, pass, w.now)
                .unwrap_or_else(|r| panic!("a live pass is refused after recovery: {r}"));
        }
    }
    admitted
}

impl Http {
    /// Status and raw body text (for `/metrics`), or None if the server did
    /// not answer.
    pub async fn text(&self, path: &str) -> Option<(u16, String)> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(format!("{}{path}", self.base))
            .body(Full::new(Bytes::new()))
            .ok()?;
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .ok()?
            .ok()?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// The value of an unlabelled series on `/metrics` (None: not there or
    /// no answer).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.text("/metrics").await?;
        body.lines()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .find_map(|v| v.trim().parse().ok())
    }
}

/// Runs `boxoffice store new` on `redis` (with `--yes` if `yes`): exit code
/// and stdout + stderr.
pub fn store_new(redis: &RedisServer, yes: bool) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_boxoffice"));
    cmd.args(["store", "new", "--redis", &redis.url()]);
    if yes {
        cmd.arg("--yes");
    }
    let out = cmd.output().expect("boxoffice store new runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Waits until `path` (a log file) contains `needle`; whether it did.
pub async fn wait_for_log(path: &std::path::Path, needle: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if std::fs::read_to_string(path).is_ok_and(|s| s.contains(needle)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every outcome in the events-out stream `<prefix>:out`, oldest first: the
/// `json` field of each entry, parsed (panics on an entry without one).
pub async fn read_events_out(redis: &RedisServer, prefix: &str) -> Vec<Value> {
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let mut out = Vec::new();
    let mut from = "-".to_string();
    loop {
        let page: Vec<OutItem> = redis::cmd("XRANGE")
            .arg(format!("{prefix}:out"))
            .arg(&from)
            .arg("+")
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut conn)
            .await
            .expect("XRANGE");
        let Some((last, _)) = page.last() else {
            return out;
        };
        from = format!("({last}");
        for (id, fields) in &page {
            let json = fields
                .iter()
                .find(|(k, _)| k == "json")
                .unwrap_or_else(|| panic!("stream entry {id} has no json field"));
            out.push(serde_json::from_slice(&json.1).expect("the json field is JSON"));
        }
    }
}

/// An XRANGE item of the events-out stream: stream id and field/value pairs.
type OutItem = (String, Vec<(String, Vec<u8>)>);

/// `(shard, seq, n)` of an events-out id `"<shard>-<seq>-<n>"`.
pub fn out_id(v: &Value) -> (u64, u64, u64, u64) {
    let id = v["id"].as_str().unwrap_or_else(|| panic!("no id: {v}"));
    let parts: Vec<u64> = id
        .split('-')
        .map(|p| p.parse().unwrap_or_else(|_| panic!("id {id}")))
        .collect();
    match parts[..] {
        [e, s, q, n] => (e, s, q, n),
        _ => panic!("id {id} is not <epoch>-<shard>-<seq>-<n>"),
    }
}

/// No id twice in the stream, every envelope is version 1, and per `event`
/// the ids grow strictly as `(epoch, seq, n)` in stream order (one shard each).
pub fn assert_out_ids_unique_and_ordered(out: &[Value]) {
    let mut seen = std::collections::HashSet::new();
    let mut last: std::collections::HashMap<String, (u64, u64, u64, u64)> = Default::default();
    for v in out {
        assert_eq!(v["v"], 1, "{v}");
        let id = out_id(v);
        assert!(seen.insert(id), "id {id:?} appears twice in the stream");
        // Seat and queue outcomes share their event's shard; a coupon's
        // `event` is the coupon id, a namespace of its own.
        let coupon = v["type"].as_str().is_some_and(|t| t.starts_with("coupon."));
        let scope = format!("{}/{}", if coupon { "coupon" } else { "event" }, v["event"]);
        if let Some(prev) = last.insert(scope.clone(), id) {
            assert_eq!(prev.1, id.1, "{scope}: one shard per event");
            assert!(
                (prev.0, prev.2, prev.3) < (id.0, id.2, id.3),
                "{scope}: {prev:?} then {id:?}"
            );
        }
    }
}

impl Boxoffice {
    /// [`Boxoffice::start`] with more flags after the usual ones.
    pub fn start_with(
        redis: &RedisServer,
        mode: &str,
        extra: &[&str],
        log: &std::path::Path,
    ) -> Self {
        let port = testkit::free_port().expect("a free port");
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_boxoffice"));
        cmd.args([
            "serve",
            "--listen",
            &addr,
            "--join-rate",
            "0",
            "--poll-rate",
            "0",
        ])
        .args(["--max-connections-per-client", "10000"])
        .args(["--admin-token", ADMIN, "--service-token", SERVICE])
        .args(["--secret", SECRET])
        .args(["--redis", &redis.url(), "--durability", mode])
        .args(extra);
        let child = ChildGuard::spawn_logged(&mut cmd, log).expect("boxoffice binary");
        Boxoffice { child, addr }
    }
}

/// A recovered, spawned replicator on `redis` with an engine of `shards`
/// shards, its clock at `now` (asserts it became the ready writer).
pub async fn start_replicator(
    redis: &RedisServer,
    o: Options,
    shards: usize,
    now: Timestamp,
) -> (std::sync::Arc<Engine>, Replicator) {
    let (engine, rep) = Replicator::recover(&redis.url(), o, engine_cfg(shards), || now)
        .await
        .expect("recovers");
    let engine = std::sync::Arc::new(engine);
    rep.spawn(engine.clone()).expect("spawns");
    assert!(rep.ready());
    (engine, rep)
}
