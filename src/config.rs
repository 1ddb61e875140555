//! Configuration: the command line (clap, each flag also read from
//! `BOXOFFICE_<NAME>`) and the validated [`Settings`] the server runs with.
//!
//! Validation happens once, here at the edge; the rest of the server trusts
//! [`Settings`].

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::time::Duration;

/// Limits that keep one client from exhausting the server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// A client must send its request headers within this time.
    pub header_read_timeout: Duration,
    /// A request body must arrive within this time once its headers are in
    /// (408 `request_timeout`, connection closed).
    pub body_read_timeout: Duration,
    /// Most open connections; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Most open connections from one client address (IPv4 address, IPv6
    /// /64); a further one is closed at once.
    pub max_connections_per_client: usize,
    /// Most open live status streams, apart from `max_connections` (a
    /// stream gives its connection slot back); over it 503 `unavailable`.
    pub max_streams: usize,
    /// Most open streams per ticket; a newer one ends the oldest.
    pub streams_per_ticket: usize,
    /// Joins per second allowed per client IP (GCRA); 0 turns the limit off.
    pub join_rate_per_s: u32,
    /// Joins a client IP may make in one burst.
    pub join_burst: u32,
    /// Proxies whose `X-Forwarded-For` names the client (per-client limits
    /// then use the rightmost untrusted address); empty: the header is ignored.
    pub trusted_proxies: Vec<crate::http::limits::Cidr>,
    /// Origins (`https://shop.example`) whose pages may call the public
    /// endpoints (CORS); empty: none.
    pub cors_origins: Vec<String>,
    /// Status polls per second per ticket after a burst of 10; 0 turns the
    /// limit off.
    pub poll_rate_per_s: u32,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(5),
            max_connections: 10_000,
            max_connections_per_client: 64,
            max_streams: 10_000,
            streams_per_ticket: 3,
            join_rate_per_s: 10,
            join_burst: 20,
            poll_rate_per_s: 2,
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Durability of acknowledged changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum DurabilityMode {
    /// Reply after the change is stored in Redis.
    #[default]
    Sync,
    /// Reply at once; ship to Redis in the background.
    Async,
    /// Reply after the change is stored in Redis and `WAIT` reports that
    /// --redis-replicas replicas have it (for Sentinel-managed Redis).
    SyncReplica,
}

/// How log lines are written (to stderr; docs/operations.md, "Logs").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, fields at the top level.
    Json,
}

/// Everything the server runs with, validated by [`Settings::validate`].
#[derive(Clone)]
pub struct Settings {
    pub admin_token: String,
    pub service_token: String,
    /// Pass signing key (and root of the ticket MAC keys); at least 32 bytes.
    pub secret: Vec<u8>,
    /// The secret before a rotation: passes signed with it still verify.
    pub previous_secret: Option<Vec<u8>>,
    /// Create the demo event and coupon at start.
    pub demo: bool,
    pub limits: Limits,
    /// How often the driver ticks the engine (at most 50 ms).
    pub tick_interval: Duration,
    /// Live status streams send a status event at least this often.
    pub heartbeat_interval: Duration,
    /// Live status streams are woken at most this often when their line
    /// moves (the cost of a busy line is then bounded per stream).
    pub live_interval: Duration,
    /// Number of engine shards.
    pub shards: usize,
    /// Redis URL for replication (None: memory only).
    pub redis: Option<String>,
    /// With `redis`: when a state-changing request is answered.
    pub durability: DurabilityMode,
    /// With `--durability async`: writes are refused (503) while the oldest
    /// change not yet in Redis is older than this (bounds what a crash loses).
    pub async_max_lag: Duration,
    /// With [`DurabilityMode::SyncReplica`]: replicas that must acknowledge.
    pub redis_replicas: u32,
    /// With `redis`: about how many outcomes the events-out stream keeps
    /// (`XADD MAXLEN ~`); 0 writes none.
    pub events_out_maxlen: u64,
    /// When set, `/metrics` needs `Authorization: Bearer <this>` (16+ bytes).
    pub metrics_token: Option<String>,
    /// Gate mode: a reverse proxy with the waiting room in front of the
    /// booking backend (`--gate-listen`, docs/gate.md).
    pub gate: Option<GateSettings>,
}

/// Gate mode (docs/gate.md): on `listen`, the waiting room of `event` in
/// front of the booking backend at `backend`.
#[derive(Clone, Debug)]
pub struct GateSettings {
    pub listen: SocketAddr,
    pub event: boxoffice_engine::EventId,
    /// `http://host:port` with an optional path prefix (no TLS to the backend).
    pub backend: http::Uri,
    /// How long the backend may take to start answering (504 after that).
    pub timeout: Duration,
    /// Most proxied requests in flight at once (503 above).
    pub max_inflight: usize,
}

/// Default `--gate-timeout` in seconds.
pub const GATE_TIMEOUT_S: u64 = 30;
/// Default `--gate-max-inflight`.
pub const GATE_MAX_INFLIGHT: usize = 1024;

impl GateSettings {
    /// Validates `--gate-backend` (an `http://` URL with a host and no query).
    pub fn parse_backend(url: &str) -> Result<http::Uri, SetupError> {
        let bad = |why: &str| SetupError::Invalid(format!("--gate-backend {url:?}: {why}"));
        let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(bad(
                    "https backends are not supported: the gate speaks plain HTTP to a backend \
                     on a private network (docs/gate.md)",
                ))
            }
            _ => return Err(bad("must start with http://")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad("names no host"));
        }
        if uri.query().is_some() {
            return Err(bad("must not carry a query"));
        }
        Ok(uri)
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        f.debug_struct("Settings")
            .field("demo", &self.demo)
            .field("limits", &self.limits)
            .field("tick_interval", &self.tick_interval)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("live_interval", &self.live_interval)
            .field("shards", &self.shards)
            // The URL may carry a password.
            .field("redis", &self.redis.is_some())
            .field("durability", &self.durability)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

/// Shortest `--secret` / `--previous-secret` accepted.
pub const MIN_SECRET_BYTES: usize = 32;
/// Shortest admin or service token accepted.
pub const MIN_TOKEN_BYTES: usize = 16;

/// The key id passes signed with `secret` carry: `k` and the first 4 bytes,
/// in hex, of SHA-256("boxoffice kid v1\0" || secret). Derived, not
/// numbered, so a server given the old secret as `--previous-secret`
/// recognises the kid of the passes it signed before (docs/passes.md).
pub fn kid(secret: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::new()
        .chain_update(b"boxoffice kid v1\0")
        .chain_update(secret)
        .finalize();
    format!("k{}", hex(&h[..4]))
}

/// The pass keys of the settings: the secret signs, the previous secret
/// (if any) still verifies.
pub fn pass_keys(settings: &Settings) -> Result<boxoffice_engine::PassKeys, SetupError> {
    use boxoffice_engine::{PassKey, PassKeys};
    let key = |s: &[u8]| {
        PassKey::new(&kid(s), s).map_err(|e| SetupError::Invalid(format!("secret: {e}")))
    };
    Ok(PassKeys {
        current: key(&settings.secret)?,
        previous: settings.previous_secret.as_deref().map(key).transpose()?,
    })
}

/// Why the server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Invalid(String),
    #[error("could not read randomness from the OS: {0}")]
    Random(String),
    #[error("demo setup failed: {0}")]
    Demo(String),
}

impl Settings {
    pub fn new(admin_token: &str, service_token: &str, secret: &[u8]) -> Self {
        Settings {
            admin_token: admin_token.to_string(),
            service_token: service_token.to_string(),
            secret: secret.to_vec(),
            previous_secret: None,
            demo: false,
            limits: Limits::default(),
            tick_interval: Duration::from_millis(50),
            heartbeat_interval: Duration::from_secs(15),
            live_interval: Duration::from_millis(500),
            shards: 16,
            redis: None,
            durability: DurabilityMode::Sync,
            async_max_lag: Duration::from_millis(1000),
            redis_replicas: 1,
            events_out_maxlen: 1_000_000,
            metrics_token: None,
            gate: None,
        }
    }

    pub fn validate(&self) -> Result<(), SetupError> {
        let bad = |m: &str| Err(SetupError::Invalid(m.to_string()));
        // Messages name the setting, never its value.
        for (name, t) in [
            ("admin token", &self.admin_token),
            ("service token", &self.service_token),
        ] {
            if t.len() < MIN_TOKEN_BYTES
                || t.len() > 256
                || !t.bytes().all(|c| (0x21..=0x7e).contains(&c))
            {
                return Err(SetupError::Invalid(format!(
                    "the {name} must be {MIN_TOKEN_BYTES}-256 printable ASCII characters \
                     without spaces"
                )));
            }
        }
        if self.secret.len() < MIN_SECRET_BYTES {
            return Err(SetupError::Invalid(format!(
                "the secret must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        if self
            .previous_secret
            .as_ref()
            .is_some_and(|p| p.len() < MIN_SECRET_BYTES)
        {
            return Err(SetupError::Invalid(format!(
                "the previous secret must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        // One leaked credential must not be another: all of them differ.
        let creds: Vec<(&str, &[u8])> = [
            ("admin token", Some(self.admin_token.as_bytes())),
            ("service token", Some(self.service_token.as_bytes())),
            ("secret", Some(self.secret.as_slice())),
            ("previous secret", self.previous_secret.as_deref()),
            // A Prometheus config holds this one: it must never open the API.
            (
                "metrics token",
                self.metrics_token.as_deref().map(str::as_bytes),
            ),
        ]
        .into_iter()
        .filter_map(|(n, v)| Some((n, v?)))
        .collect();
        for (i, (a, va)) in creds.iter().enumerate() {
            for (b, vb) in &creds[i + 1..] {
                if va == vb {
                    return Err(SetupError::Invalid(format!(
                        "the {a} and the {b} must differ"
                    )));
                }
            }
        }
        if self.limits.body_read_timeout.is_zero()
            || self.limits.body_read_timeout > Duration::from_secs(300)
        {
            return bad("the body read timeout must be between 1 and 300 s");
        }
        if self.limits.max_connections == 0 {
            return bad("max connections must be at least 1");
        }
        if self.limits.max_streams == 0 || self.limits.streams_per_ticket == 0 {
            return bad("max streams must be at least 1");
        }
        for o in &self.limits.cors_origins {
            if !is_origin(o) {
                return Err(SetupError::Invalid(format!(
                    "--cors-origin {o:?} is not an origin like https://shop.example or \
                     http://localhost:3000 (scheme and host, no path)"
                )));
            }
        }
        if self.limits.max_connections_per_client == 0 {
            return bad("max connections per client must be at least 1");
        }
        if self.tick_interval.is_zero() || self.tick_interval > Duration::from_millis(50) {
            return bad("the tick interval must be between 1 and 50 ms");
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval > Duration::from_secs(15) {
            return bad("the heartbeat interval must be between 1 ms and 15 s");
        }
        if self.live_interval.is_zero() || self.live_interval > Duration::from_secs(15) {
            return bad("the live interval must be between 1 ms and 15 s");
        }
        if self.shards == 0 || self.shards > 1024 {
            return bad("shards must be between 1 and 1024");
        }
        if let Some(g) = &self.gate {
            if g.timeout.is_zero() || g.timeout > Duration::from_secs(3600) {
                return bad("the gate timeout must be between 1 ms and 3600 s");
            }
            if g.max_inflight == 0 {
                return bad("--gate-max-inflight must be at least 1");
            }
        }
        if self.redis_replicas == 0 || self.redis_replicas > 100 {
            return bad("--redis-replicas must be between 1 and 100");
        }
        if self.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return bad("the metrics token must be at least 16 bytes");
        }
        Ok(())
    }
}

/// `scheme://host[:port]` with nothing after it, as browsers send `Origin`.
fn is_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".-:[]".contains(&c))
}

/// `boxoffice` command line.
#[derive(Debug, Parser)]
#[command(
    name = "boxoffice",
    version,
    about = "Waiting room, seat holds and coupons for ticket on-sales"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
// Parsed once at start and moved out at once: the size difference is moot.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Serve the v1 HTTP API.
    Serve(ServeArgs),
    /// Inspect or reset the identity of a Redis store (docs/operations.md,
    /// "Store identity").
    #[command(subcommand)]
    Store(StoreCommand),
}

/// `boxoffice store …`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Start a new store on purpose after a server quarantined the keyspace
    /// (Redis lost acknowledged state) or to adopt a keyspace deliberately.
    ///
    /// Prints what the keyspace holds (store id or quarantine reason, epoch,
    /// journal heads per shard, lease holder). With --yes it then clears the
    /// quarantine, writes a new store id and sets the epoch to at least now
    /// (unix ms). It KEEPS whatever data is there: the next writer recovers
    /// it as the new store's state. To start empty instead, delete the
    /// prefix's keys first (e.g. `redis-cli --scan --pattern 'boxoffice:*' |
    /// xargs redis-cli del`). Servers that saw the old store keep refusing
    /// until restarted. Without --yes nothing is changed and the exit code
    /// is 2.
    New(StoreNewArgs),
}

/// Flags of `boxoffice store new`.
#[derive(Debug, Args)]
pub struct StoreNewArgs {
    /// Redis URL of the keyspace.
    #[arg(long, env = "BOXOFFICE_REDIS")]
    pub redis: String,
    /// Key prefix of the keyspace.
    #[arg(long, default_value = "boxoffice")]
    pub prefix: String,
    /// Really do it (otherwise only print what would be done).
    #[arg(long)]
    pub yes: bool,
}

/// Flags of `boxoffice serve`; each also reads `BOXOFFICE_<NAME>`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BOXOFFICE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Bearer token of the admin realm (random when absent).
    #[arg(long, env = "BOXOFFICE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Bearer token of the service realm (random when absent).
    #[arg(long, env = "BOXOFFICE_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: Option<String>,
    /// Pass signing key, at least 32 bytes (random when absent).
    #[arg(long, env = "BOXOFFICE_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// The secret before a rotation (at least 32 bytes): passes and user
    /// tokens signed with it stay valid.
    #[arg(long, env = "BOXOFFICE_PREVIOUS_SECRET", hide_env_values = true)]
    pub previous_secret: Option<String>,
    /// Redis URL for replication (absent: memory only): redis://[[user]:password@]host[:port][/db],
    /// or Sentinel-managed: redis+sentinel://[[user]:password@]host1[:26379][,host2…]/<master-name>[/db]
    /// (credentials and db are the data nodes'; the server follows failovers).
    #[arg(long, env = "BOXOFFICE_REDIS", hide_env_values = true)]
    pub redis: Option<String>,
    /// With --redis: reply after Redis stored the change (sync), after Redis
    /// stored it and --redis-replicas replicas acknowledged it (sync-replica,
    /// WAIT), or at once (async).
    #[arg(long, env = "BOXOFFICE_DURABILITY", value_enum, default_value_t = DurabilityMode::Sync)]
    pub durability: DurabilityMode,
    /// With --durability async: refuse writes (503) while the oldest change not
    /// yet stored in Redis is older than this many milliseconds. This bounds
    /// what a crash can lose to about this much time of writes.
    #[arg(long, env = "BOXOFFICE_ASYNC_MAX_LAG_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub async_max_lag_ms: u64,
    /// With --durability sync-replica: how many replicas must acknowledge a
    /// change (WAIT) before it is answered.
    #[arg(long, env = "BOXOFFICE_REDIS_REPLICAS", default_value_t = 1)]
    pub redis_replicas: u32,
    /// With --redis: the events-out stream (<prefix>:out) keeps about this
    /// many of the newest business outcomes (XADD MAXLEN ~); 0 turns events
    /// out off.
    #[arg(long, env = "BOXOFFICE_EVENTS_OUT_MAXLEN", default_value_t = 1_000_000)]
    pub events_out_maxlen: u64,
    /// Create a ready demo event (seats, queue) and coupon.
    #[arg(long, env = "BOXOFFICE_DEMO")]
    pub demo: bool,
    /// Joins per second per client IP; 0 turns the limit off (load tests).
    #[arg(long, env = "BOXOFFICE_JOIN_RATE", default_value_t = 10)]
    pub join_rate: u32,
    /// Joins a client IP may make in one burst.
    #[arg(long, env = "BOXOFFICE_JOIN_BURST", default_value_t = 20)]
    pub join_burst: u32,
    /// Status polls per second of one ticket (after a burst of 10) before
    /// 429; 0 turns the limit off.
    #[arg(long, env = "BOXOFFICE_POLL_RATE", default_value_t = 2)]
    pub poll_rate: u32,
    /// Most open connections (live status streams excluded: --max-streams).
    #[arg(long, env = "BOXOFFICE_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Most open connections from one client address (IPv4 address, IPv6
    /// /64); over it a new connection is closed at once.
    #[arg(
        long,
        env = "BOXOFFICE_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 64
    )]
    pub max_connections_per_client: usize,
    /// Most open live status streams, counted apart from --max-connections.
    #[arg(long, env = "BOXOFFICE_MAX_STREAMS", default_value_t = 10_000)]
    pub max_streams: usize,
    /// A proxy or load balancer (address range, repeatable or comma-separated)
    /// whose X-Forwarded-For names the client for the per-client limits.
    #[arg(
        long = "trusted-proxy",
        env = "BOXOFFICE_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    pub trusted_proxy: Vec<String>,
    /// An origin (https://shop.example; repeatable or comma-separated) whose
    /// pages may call the public endpoints from the browser (CORS).
    #[arg(
        long = "cors-origin",
        env = "BOXOFFICE_CORS_ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origin: Vec<String>,
    /// Seconds a request body may take to arrive once its headers are in
    /// (408 `request_timeout` after that).
    #[arg(long, env = "BOXOFFICE_BODY_READ_TIMEOUT", default_value_t = 5)]
    pub body_read_timeout: u64,
    /// Log lines on stderr as text or JSON; filter with RUST_LOG (default info).
    #[arg(long, env = "BOXOFFICE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log one line per request (target `boxoffice::access`). Off by default:
    /// measured at ~15% of status-poll throughput on a 2-core machine
    /// (docs/benchmarks.md); `RUST_LOG=boxoffice::access=info` also turns it on.
    #[arg(long, env = "BOXOFFICE_ACCESS_LOG")]
    pub access_log: bool,
    /// Bearer token `/metrics` then needs (at least 16 bytes, unlike the
    /// other tokens and the secrets; absent: open).
    #[arg(long, env = "BOXOFFICE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Gate mode: also serve, on this address, the waiting room of
    /// --gate-event in front of --gate-backend (docs/gate.md).
    #[arg(long, env = "BOXOFFICE_GATE_LISTEN", requires_all = ["gate_event", "gate_backend"])]
    pub gate_listen: Option<SocketAddr>,
    /// The event whose waiting room the gate runs.
    #[arg(long, env = "BOXOFFICE_GATE_EVENT", requires = "gate_listen")]
    pub gate_event: Option<String>,
    /// The booking backend admitted visitors are proxied to (http://host:port).
    #[arg(long, env = "BOXOFFICE_GATE_BACKEND", requires = "gate_listen")]
    pub gate_backend: Option<String>,
    /// Seconds the backend may take to start answering (504 `backend_timeout`).
    #[arg(long, env = "BOXOFFICE_GATE_TIMEOUT", default_value_t = GATE_TIMEOUT_S,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub gate_timeout: u64,
    /// Most proxied requests in flight at once (503 `unavailable` above).
    #[arg(long, env = "BOXOFFICE_GATE_MAX_INFLIGHT", default_value_t = GATE_MAX_INFLIGHT)]
    pub gate_max_inflight: usize,
}

/// Settings resolved from the command line, and which credentials were made up.
#[derive(Debug)]
pub struct Resolved {
    pub listen: SocketAddr,
    pub settings: Settings,
    /// Credentials generated because none were given: print them once.
    pub generated: Vec<(&'static str, String)>,
}

/// Hex of fresh OS randomness.
pub fn random_hex(bytes: usize) -> Result<String, SetupError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| SetupError::Random(e.to_string()))?;
    Ok(hex(&buf))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

impl ServeArgs {
    /// Validates the flags and fills in random credentials where none were given.
    pub fn resolve(self) -> Result<Resolved, SetupError> {
        if self.redis.is_some() && self.secret.is_none() {
            // A made-up secret would change at every restart, and tickets and
            // passes recovered from Redis would no longer verify.
            return Err(SetupError::Invalid(
                "--redis needs --secret (or BOXOFFICE_SECRET): tickets and passes are signed \
                 with it and must still verify after a restart"
                    .to_string(),
            ));
        }
        let mut generated = Vec::new();
        let mut pick = |name: &'static str, given: Option<String>| -> Result<String, SetupError> {
            match given {
                Some(v) => Ok(v),
                None => {
                    let v = random_hex(24)?;
                    generated.push((name, v.clone()));
                    Ok(v)
                }
            }
        };
        let admin = pick("admin token", self.admin_token)?;
        let service = pick("service token", self.service_token)?;
        let secret = pick("secret", self.secret)?;
        let mut settings = Settings::new(&admin, &service, secret.as_bytes());
        settings.previous_secret = self.previous_secret.map(String::into_bytes);
        settings.demo = self.demo;
        settings.limits.join_rate_per_s = self.join_rate;
        settings.limits.join_burst = self.join_burst.max(1);
        settings.limits.poll_rate_per_s = self.poll_rate;
        settings.limits.cors_origins = self.cors_origin;
        settings.limits.trusted_proxies = self
            .trusted_proxy
            .iter()
            .map(|c| c.parse())
            .collect::<Result<_, _>>()
            .map_err(|e| SetupError::Invalid(format!("--trusted-proxy: {e}")))?;
        settings.limits.max_connections = self.max_connections;
        settings.limits.max_connections_per_client = self.max_connections_per_client;
        settings.limits.max_streams = self.max_streams;
        settings.limits.body_read_timeout = Duration::from_secs(self.body_read_timeout);
        settings.redis = self.redis;
        settings.durability = self.durability;
        settings.async_max_lag = Duration::from_millis(self.async_max_lag_ms);
        settings.redis_replicas = self.redis_replicas;
        settings.events_out_maxlen = self.events_out_maxlen;
        settings.metrics_token = self.metrics_token;
        if let (Some(listen), Some(event), Some(backend)) =
            (self.gate_listen, self.gate_event, self.gate_backend)
        {
            let event = boxoffice_engine::EventId::new(&event)
                .map_err(|e| SetupError::Invalid(format!("--gate-event: {e}")))?;
            settings.gate = Some(GateSettings {
                listen,
                event,
                backend: GateSettings::parse_backend(&backend)?,
                timeout: Duration::from_secs(self.gate_timeout),
                max_inflight: self.gate_max_inflight,
            });
        }
        settings.validate()?;
        Ok(Resolved {
            listen: self.listen,
            settings,
            generated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["boxoffice", "serve"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Serve(a),
            }) => a,
            Ok(other) => panic!("not serve: {other:?}"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn store_new_parses_and_needs_a_redis_url() {
        let cli = Cli::try_parse_from([
            "boxoffice",
            "store",
            "new",
            "--redis",
            "redis://x/",
            "--yes",
        ])
        .expect("parses");
        match cli.command {
            Command::Store(StoreCommand::New(a)) => {
                assert_eq!(a.redis, "redis://x/");
                assert_eq!(a.prefix, "boxoffice");
                assert!(a.yes);
            }
            other => panic!("{other:?}"),
        }
        let bare = Cli::try_parse_from(["boxoffice", "store", "new", "--redis", "redis://x/"])
            .expect("parses");
        assert!(matches!(
            bare.command,
            Command::Store(StoreCommand::New(StoreNewArgs { yes: false, .. }))
        ));
    }

    #[test]
    fn gate_flags_are_read_and_checked() {
        let r = args(&[
            "--gate-listen",
            "127.0.0.1:8081",
            "--gate-event",
            "night-1",
            "--gate-backend",
            "http://127.0.0.1:9000/shop",
            "--gate-timeout",
            "7",
        ])
        .resolve()
        .expect("resolves");
        let g = r.settings.gate.expect("gate on");
        assert_eq!(g.listen.to_string(), "127.0.0.1:8081");
        assert_eq!(g.event.as_str(), "night-1");
        assert_eq!(g.backend.path(), "/shop");
        assert_eq!(g.timeout, Duration::from_secs(7));
        assert_eq!(g.max_inflight, GATE_MAX_INFLIGHT);
        assert!(args(&[])
            .resolve()
            .expect("resolves")
            .settings
            .gate
            .is_none());
        for bad in [
            "https://10.0.0.1/",
            "ftp://x/",
            "/relative",
            "http://x/?q=1",
        ] {
            let e = args(&[
                "--gate-listen",
                "127.0.0.1:8081",
                "--gate-event",
                "e1",
                "--gate-backend",
                bad,
            ])
            .resolve()
            .expect_err(bad);
            assert!(e.to_string().contains("--gate-backend"), "{bad}: {e}");
        }
        // The gate needs all three flags.
        let argv = ["boxoffice", "serve", "--gate-listen", "127.0.0.1:8081"];
        assert!(Cli::try_parse_from(argv).is_err());
        let argv = ["boxoffice", "serve", "--gate-event", "e1"];
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn defaults_and_random_credentials() {
        let r = args(&[]).resolve().expect("resolves");
        assert_eq!(r.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(r.generated.len(), 3);
        assert_ne!(r.settings.admin_token, r.settings.service_token);
    }

    #[test]
    fn redis_and_durability_are_read() {
        let r = args(&[
            "--redis",
            "redis://127.0.0.1/",
            "--secret",
            "0123456789abcdef0123456789abcdef",
        ])
        .resolve()
        .expect("resolves");
        assert_eq!(r.settings.redis.as_deref(), Some("redis://127.0.0.1/"));
        assert_eq!(r.settings.durability, DurabilityMode::Sync);
        assert_eq!(r.settings.events_out_maxlen, 1_000_000);
        let off = args(&[
            "--redis",
            "redis://h/",
            "--secret",
            "0123456789abcdef0123456789abcdef",
            "--events-out-maxlen",
            "0",
        ])
        .resolve()
        .expect("resolves");
        assert_eq!(off.settings.events_out_maxlen, 0);
        let a = args(&[
            "--redis",
            "redis://h/",
            "--secret",
            "0123456789abcdef0123456789abcdef",
            "--durability",
            "async",
        ])
        .resolve()
        .expect("resolves");
        assert_eq!(a.settings.durability, DurabilityMode::Async);
        let a = args(&[
            "--redis",
            "redis+sentinel://s1:26379,s2/mymaster",
            "--secret",
            "0123456789abcdef0123456789abcdef",
            "--durability",
            "sync-replica",
            "--redis-replicas",
            "2",
        ])
        .resolve()
        .expect("resolves");
        assert_eq!(a.settings.durability, DurabilityMode::SyncReplica);
        assert_eq!(a.settings.redis_replicas, 2);
        let e = args(&["--redis-replicas", "0"]).resolve();
        assert!(matches!(e, Err(SetupError::Invalid(m)) if m.contains("--redis-replicas")));
        // The async lag limit: read, and bounded (0 would refuse every write,
        // hours would be no bound).
        let a = args(&["--async-max-lag-ms", "250"])
            .resolve()
            .expect("resolves");
        assert_eq!(a.settings.async_max_lag, Duration::from_millis(250));
        for bad in ["0", "9", "60001"] {
            let argv = ["boxoffice", "serve", "--async-max-lag-ms", bad];
            assert!(
                Cli::try_parse_from(argv).is_err(),
                "--async-max-lag-ms {bad}"
            );
        }
        // Without an explicit secret, recovered passes would not verify.
        let e = args(&["--redis", "redis://127.0.0.1/"]).resolve();
        assert!(matches!(e, Err(SetupError::Invalid(m)) if m.contains("--secret")));
    }

    #[test]
    fn log_format_is_read() {
        assert_eq!(args(&[]).log_format, LogFormat::Text);
        assert_eq!(args(&["--log-format", "json"]).log_format, LogFormat::Json);
        assert!(!args(&[]).access_log, "the access log is opt-in");
        assert!(args(&["--access-log"]).access_log);
    }

    fn refusal(extra: &[&str]) -> String {
        match args(extra).resolve() {
            Err(SetupError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn short_or_shared_credentials_are_refused_without_echoing_them() {
        let secret = "a-secret-of-at-least-32-bytes-123";
        let old = "an-old-secret-of-at-least-32-bytes";
        let token = "a-token-of-16-bytes";
        for (extra, says) in [
            (
                vec!["--secret", "short-secret-of-31-bytes-123456"],
                "secret must be at least 32",
            ),
            (
                vec!["--admin-token", "fifteen-bytes-x"],
                "admin token must be 16",
            ),
            (vec!["--service-token", "short"], "service token must be 16"),
            (
                vec!["--secret", secret, "--previous-secret", "short"],
                "previous secret must",
            ),
            (
                vec!["--admin-token", token, "--service-token", token],
                "must differ",
            ),
            (
                vec!["--secret", secret, "--previous-secret", secret],
                "must differ",
            ),
            // The metrics token too: each of these four started a server
            // before the check covered it.
            (
                vec!["--admin-token", token, "--metrics-token", token],
                "admin token and the metrics token must differ",
            ),
            (
                vec!["--service-token", token, "--metrics-token", token],
                "service token and the metrics token must differ",
            ),
            (
                vec!["--secret", secret, "--metrics-token", secret],
                "secret and the metrics token must differ",
            ),
            (
                vec![
                    "--secret",
                    secret,
                    "--previous-secret",
                    old,
                    "--metrics-token",
                    old,
                ],
                "previous secret and the metrics token must differ",
            ),
        ] {
            let m = refusal(&extra);
            assert!(m.contains(says), "{m}");
            for v in &extra {
                if !v.starts_with("--") {
                    assert!(!m.contains(v), "the message echoes a credential: {m}");
                }
            }
        }
        // A token equal to the secret (both at least 32 bytes).
        let m = refusal(&["--secret", secret, "--admin-token", secret]);
        assert!(m.contains("admin token and the secret must differ"), "{m}");
        assert!(!m.contains(secret));
    }

    #[test]
    fn passes_signed_with_the_previous_secret_still_verify() {
        use boxoffice_engine::passes::{sign, verify};
        use boxoffice_engine::{PassClaims, Timestamp};
        let old = "the-old-secret-of-at-least-32-bytes";
        let new = "the-new-secret-of-at-least-32-bytes";
        let before = args(&["--secret", old]).resolve().expect("resolves");
        let after = args(&["--secret", new, "--previous-secret", old])
            .resolve()
            .expect("resolves");
        let claims = PassClaims {
            event: "e1".into(),
            user: "u-1".into(),
            ticket: "t".into(),
            issued_ms: 1_000,
            expires_ms: 10_000,
        };
        let old_keys = pass_keys(&before.settings).expect("keys");
        let new_keys = pass_keys(&after.settings).expect("keys");
        assert_ne!(old_keys.current.id(), new_keys.current.id(), "kids differ");
        let pass = sign(&claims, &old_keys.current);
        assert!(pass.starts_with(&format!("v1.{}.", kid(old.as_bytes()))));
        let now = Timestamp(2_000);
        assert_eq!(verify(&pass, &new_keys, now).ok(), Some(claims.clone()));
        // Without the previous secret, the old pass names an unknown key.
        let only_new = args(&["--secret", new]).resolve().expect("resolves");
        let keys = pass_keys(&only_new.settings).expect("keys");
        assert!(verify(&pass, &keys, now).is_err());
    }

    #[test]
    fn kids_are_derived_from_the_secret() {
        let k = kid(b"boxoffice-test-vector-secret");
        assert_eq!(k.len(), 9);
        assert!(k.starts_with('k') && k.bytes().all(|c| c.is_ascii_alphanumeric()));
        // The value docs/passes.md gives (computed there with Python's hashlib).
        assert_eq!(k, "k03f9cc91");
        assert_ne!(k, kid(b"another-secret"));
    }

    #[test]
    fn trusted_proxies_are_parsed_and_checked() {
        let r = args(&["--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "::1"])
            .resolve()
            .expect("resolves");
        assert_eq!(r.settings.limits.trusted_proxies.len(), 2);
        let e = args(&["--trusted-proxy", "10.0.0.0/40"]).resolve();
        assert!(matches!(e, Err(SetupError::Invalid(m)) if m.contains("--trusted-proxy")));
    }

    #[test]
    fn cors_origins_are_checked() {
        let r = args(&[
            "--cors-origin",
            "https://shop.example,http://localhost:3000",
        ])
        .resolve()
        .expect("resolves");
        assert_eq!(r.settings.limits.cors_origins.len(), 2);
        for bad in ["shop.example", "https://shop.example/", "*", "ftp://x"] {
            let e = args(&["--cors-origin", bad]).resolve();
            assert!(matches!(e, Err(SetupError::Invalid(m)) if m.contains("--cors-origin")));
        }
    }

    #[test]
    fn hex_encodes() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
