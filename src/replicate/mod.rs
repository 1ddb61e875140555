//! Durability through Redis: owns I6 (every acknowledged change survives a
//! crash of the engine and comes back on restart exactly).
//!
//! The engine numbers every change per shard (`seq` 1, 2, … with no gaps) and
//! keeps it in its journal. This module ships those entries to Redis and
//! rebuilds the engine from Redis on start:
//!
//! - **Shipping** ([`shipper`]): one task drains every shard's journal, encodes
//!   the entries (`journal::encode`, versioned postcard) and appends them with
//!   ONE `EVALSHA` per batch to a stream per shard (`<prefix>:s<i>:log`, entry
//!   id `<seq>-0`). The script checks the fencing epoch, skips what Redis
//!   already has (a retried batch whose reply was lost duplicates nothing) and
//!   refuses gaps. Requests that wait share the round trip (group commit).
//! - **Snapshots** ([`snapshots`]): per shard, periodically, an encoded
//!   `ShardSnapshot` at `<prefix>:s<i>:snap`, then `XTRIM MINID` drops the
//!   entries it covers, so recovery time and Redis memory stay bounded.
//! - **Recovery** ([`recover`]): the latest snapshot of each shard plus the
//!   entries after it, through `Engine::restore`.
//! - **One writer** ([`lease`]): a lease (`SET NX PX`, renewed) and a fencing
//!   epoch (raised on every acquisition, never lowered) that every write
//!   script checks. A standby waits for the lease; a writer whose epoch is
//!   gone is deposed and refuses writes.
//! - **One store** ([`store`]): the keyspace carries a random store id. A
//!   server that has seen one never writes to, or recovers from, a keyspace
//!   that lost it (missing id, epoch gone back, log shorter than what Redis
//!   acknowledged): the script that finds it quarantines the keyspace and
//!   every server fails closed ([`Status::StoreLost`]) until an operator runs
//!   `boxoffice store new` (I8: a wiped or failed-over Redis fails closed).
//!
//! Durability modes ([`Mode`]): `sync` answers a write only once Redis has
//! its entries; `sync-replica` also waits until `WAIT` reports enough
//! replicas have them; `async` answers at once and ships within a bounded
//! lag, with a bounded backlog ([`Replicator::admit_write`]). The primary is
//! a fixed URL or the master Redis Sentinel names ([`endpoint`]), resolved
//! again on every reconnect. docs/operations.md is the operator's side of all
//! this.

mod endpoint;
mod keys;
mod lease;
mod link;
pub mod metrics;
pub mod outbox;
mod recover;
mod replicas;
mod scripts;
mod shipper;
mod snapshots;
pub mod store;
pub mod warmup;

use boxoffice_engine::journal::CodecError;
use boxoffice_engine::{Engine, EngineConfig, RestoreError, Timestamp};
use keys::Keys;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// When a state-changing request is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// After Redis has stored the entries of the change (group commit).
    #[default]
    Sync,
    /// At once; the entries follow within [`Options::flush_interval`] plus a
    /// round trip. A crash loses at most that lag.
    Async,
    /// After Redis has stored the entries AND `WAIT` reports that at least
    /// [`Options::replicas`] replicas have them (for a Sentinel failover that
    /// promotes such a replica; see docs/operations.md for what `WAIT` does
    /// and does not promise). The lease's new epoch is replica-acknowledged
    /// the same way before the writer recovers.
    SyncReplica,
}

impl Mode {
    /// Whether a write waits for Redis before it is answered.
    pub fn waits(self) -> bool {
        self != Mode::Async
    }
}

/// How the replicator talks to Redis. The defaults suit a Redis on the same
/// network; every field is a deliberate bound, see each comment.
#[derive(Clone, Debug)]
pub struct Options {
    /// Key prefix; every key is `<prefix>:…`. (Redis Cluster is not
    /// supported: each script touches several keys of one keyspace.)
    pub prefix: String,
    pub mode: Mode,
    /// Longest a sync write waits for Redis before it is answered 503.
    pub commit_timeout: Duration,
    /// Most entries applied but not yet in Redis; above it writes are refused
    /// (503) instead of growing memory without bound.
    pub max_backlog: u64,
    /// Async mode: while the oldest change not yet in Redis is older than
    /// this, writes are refused (503). With `max_backlog` it bounds what a
    /// crash can lose: the changes acknowledged within about this long
    /// before Redis stopped taking them.
    pub max_lag: Duration,
    /// The shipper drains the journals at least this often (entries no request
    /// waits for: async writes, admissions and expiries made by ticks).
    pub flush_interval: Duration,
    /// Most entries in one script call (bounds Redis's time inside the script).
    pub max_batch_entries: usize,
    /// Most encoded bytes in one script call.
    pub max_batch_bytes: usize,
    /// Writer lease lifetime; renewed every third of it. A standby takes over
    /// at most this long after the writer died.
    pub lease_ttl: Duration,
    /// Snapshot a shard once this many entries followed its last snapshot.
    pub snapshot_every: u64,
    /// Also snapshot a shard that changed at all after this long.
    pub snapshot_interval: Duration,
    /// TCP connect timeout to Redis (see [`link`] for why this value).
    pub connect_timeout: Duration,
    /// Response timeout of the shipping connection (see [`link`]).
    pub response_timeout: Duration,
    /// Response timeout of the snapshot and recovery connection: a snapshot of
    /// a large shard is tens of MB and may take seconds; giving up would only
    /// redo the work.
    pub bulk_response_timeout: Duration,
    /// Who holds the lease; unique per process unless set.
    pub owner: Option<String>,
    /// [`Mode::SyncReplica`]: how many replicas must acknowledge (`WAIT`).
    pub replicas: u32,
    /// [`Mode::SyncReplica`]: the `WAIT` timeout per batch. Below the shipping
    /// response timeout (the connection is blocked meanwhile) and well below
    /// the commit timeout, so a replica hiccup still leaves a retry in time.
    pub replica_timeout: Duration,
    /// Reading this many entries per `XRANGE` during recovery.
    pub recovery_page: usize,
    /// Events out: the business outcomes of every change are appended to
    /// `<prefix>:out` (src/replicate/outbox.rs), in the same script as the
    /// journal, with `XADD MAXLEN ~ <this>`: Redis keeps about this many of
    /// the newest (at least this many; `~` trims in whole stream nodes).
    /// 0 turns events out off entirely (nothing is built or written).
    pub events_out_maxlen: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix: "boxoffice".into(),
            mode: Mode::Sync,
            commit_timeout: Duration::from_secs(2),
            max_backlog: 200_000,
            max_lag: Duration::from_secs(1),
            flush_interval: Duration::from_millis(5),
            max_batch_entries: 10_000,
            max_batch_bytes: 4 << 20,
            lease_ttl: Duration::from_secs(5),
            snapshot_every: 100_000,
            snapshot_interval: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_millis(1500),
            bulk_response_timeout: Duration::from_secs(30),
            owner: None,
            replicas: 1,
            replica_timeout: Duration::from_millis(500),
            recovery_page: 10_000,
            events_out_maxlen: 1_000_000,
        }
    }
}

/// Where the replicator is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Built, not recovering yet.
    Idle,
    /// Waiting for another server's lease to end.
    Standby,
    /// Holds the lease, loading state from Redis.
    Recovering,
    /// Recovered; waiting for [`Replicator::spawn`].
    Recovered,
    /// The writer: ships, snapshots, renews its lease.
    Active,
    /// Another server took the lease: this one no longer writes. Restart it
    /// to make it a standby.
    Deposed,
    /// The keyspace lost acknowledged state (quarantined), or holds another
    /// store than the one this server saw: it neither writes nor serves as
    /// recovered. Final, like `Deposed`; docs/operations.md says what to do.
    StoreLost,
    /// Shut down or aborted.
    Closed,
}

/// Why a write is refused (the HTTP layer answers 503 `unavailable` with
/// `Retry-After`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("Redis did not confirm the change in time")]
    Timeout,
    #[error("Redis is unreachable")]
    Down,
    #[error("too many changes are waiting to be stored in Redis")]
    Backlog,
    #[error("changes are not reaching Redis in time (async lag limit)")]
    Lagging,
    #[error("this server is no longer the writer")]
    Deposed,
    #[error("Redis lost acknowledged state (or holds another store); writes are refused until an operator acts")]
    StoreLost,
    #[error("state is not recovered yet")]
    NotReady,
    #[error("the server is shutting down")]
    Closed,
}

impl Unavailable {
    /// The `Retry-After` to send, in seconds.
    pub fn retry_after_s(self) -> u64 {
        match self {
            Unavailable::Timeout
            | Unavailable::Down
            | Unavailable::Backlog
            | Unavailable::Lagging => 1,
            Unavailable::NotReady
            | Unavailable::Deposed
            | Unavailable::StoreLost
            | Unavailable::Closed => 5,
        }
    }
}

/// Misuse, or state in Redis that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    #[error("invalid Redis URL: {0}")]
    Url(String),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis holds state of {found} shards; this server is configured with {expected}")]
    ShardCount { found: u64, expected: usize },
    #[error("Redis holds state in format {found}; this build reads {expected}")]
    Format { found: String, expected: u8 },
    #[error("shard {shard}: cannot decode the {what} stored in Redis: {source}")]
    Decode {
        shard: usize,
        what: &'static str,
        source: CodecError,
    },
    #[error("unexpected reply from Redis to {0}")]
    Reply(&'static str),
    #[error("shard {shard}: {detail}")]
    Inconsistent { shard: usize, detail: String },
    #[error("restoring: {0}")]
    Restore(#[from] RestoreError),
    #[error("another server took the writer lease")]
    Fenced,
    #[error("the replicator is {0:?}, not in a state for this call")]
    State(Status),
    #[error("spawn needs a running tokio runtime")]
    NoRuntime,
    #[error("no OS randomness for a store id: {0}")]
    Random(String),
    #[error("the Redis keyspace lost acknowledged state and is quarantined: {0}")]
    StoreLost(String),
    #[error("the Redis keyspace holds another store ({0}) than the one this server saw")]
    StoreChanged(String),
}

/// What the replicator tasks need from the server: the engine, and the
/// metrics recorder the numbers belong to.
pub trait EngineHost: Send + Sync + 'static {
    fn engine(&self) -> &Engine;
    /// Runs `f` with the metrics recorder of this server installed. The
    /// default leaves the global recorder (if any) in place.
    fn with_metrics(&self, f: &mut dyn FnMut()) {
        f()
    }
}

impl EngineHost for Engine {
    fn engine(&self) -> &Engine {
        self
    }
}

/// State shared by the handle and the tasks.
struct Shared {
    opts: Options,
    /// The primary: a fixed URL or resolved through Sentinel on every connect.
    endpoint: endpoint::Endpoint,
    keys: Keys,
    owner: String,
    /// Our fencing epoch (0 before the lease is taken).
    epoch: AtomicU64,
    /// The store id this server has seen (learned from its first lease
    /// reply, HELD or OK); from then on it only accepts that store. Set
    /// once, so reading it per script call takes no lock and copies nothing.
    seen_store: OnceLock<String>,
    /// The highest epoch this server has seen in Redis; a lower one later
    /// means the keyspace went back.
    seen_epoch: AtomicU64,
    /// The id to create if the keyspace has none (first use).
    fresh_store: String,
    status: watch::Sender<Status>,
    /// Per shard: the highest `seq` Redis has acknowledged.
    durable: OnceLock<Box<[watch::Sender<u64>]>>,
    /// Nudges the shipper (a waiter is waiting, or shutdown).
    wake: Notify,
    /// False from a failed Redis call until the next successful one.
    link_up: AtomicBool,
    /// Entries drained from the engine and not yet acknowledged by Redis
    /// (the shipper's count, for metrics).
    backlog: AtomicU64,
    /// The instant the replicator was built: the origin of `oldest_pending_ms`.
    born: Instant,
    /// When the oldest entry not yet acknowledged by Redis was drained from
    /// the engine, in ms after `born`, plus one; 0 when none is pending. Set
    /// by the shipper; read by `admit_write` for the async lag limit.
    oldest_pending_ms: AtomicU64,
    /// When the shipper last drained the engine's journals (ms after `born`):
    /// changes still in the journals are at most this old.
    last_drain_ms: AtomicU64,
    /// The engine, for the exact backlog in `admit_write`. Weak: the server
    /// state that owns this replicator is usually the host.
    host: OnceLock<Weak<dyn EngineHost>>,
    reconnects: AtomicU64,
    /// [`Mode::SyncReplica`]: `WAIT` calls that saw fewer replicas than
    /// required (the entries stayed pending and were retried).
    replica_shortfalls: AtomicU64,
    /// Set by shutdown: the shipper flushes everything and stops.
    closing: AtomicBool,
    /// Per shard `seq` of the snapshot in Redis (known after recovery).
    snap_seqs: Mutex<Vec<u64>>,
    recovery_seconds: Mutex<Option<f64>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    shipper: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the client: its URL may carry a password.
        f.debug_struct("Replicator")
            .field("prefix", &self.opts.prefix)
            .field("mode", &self.opts.mode)
            .field("owner", &self.owner)
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// Moves to `to` unless the current status is final: `Closed` stays;
    /// `StoreLost` only closes; `Deposed` only closes or learns the store
    /// was lost. Returns whether the status changed.
    fn set_status(&self, to: Status) -> bool {
        self.status.send_if_modified(|s| {
            let allowed = match *s {
                Status::Closed => false,
                Status::StoreLost => to == Status::Closed,
                Status::Deposed => matches!(to, Status::Closed | Status::StoreLost),
                _ => true,
            };
            if *s == to || !allowed {
                return false;
            }
            *s = to;
            true
        })
    }

    /// The store id to send with a script (`''` before one was seen).
    fn store_arg(&self) -> &str {
        self.seen_store.get().map_or("", String::as_str)
    }

    /// Remembers the store id and epoch a lease reply showed.
    fn saw(&self, store: &str, epoch: u64) {
        // The first store seen stays the one: a later, different id is
        // refused by the scripts (CHANGED), never adopted here.
        if self.seen_store.get().is_none() {
            let _ = self.seen_store.set(store.to_string());
        }
        self.seen_epoch.fetch_max(epoch, Ordering::AcqRel);
    }

    /// Fails closed for good: a script found the keyspace lost acknowledged
    /// state (and quarantined it) or holds another store. Says so once, with
    /// what was seen, what was found and what to do; sets the metric. A
    /// `Fenced` refusal is no loss (a newer writer): that deposes.
    fn lose_store(&self, found: &scripts::Refused) {
        let (changed, what) = match found {
            scripts::Refused::Fenced(epoch) => {
                self.depose(&format!(
                    "the fencing epoch in Redis is {epoch}, ours is {}: another server took the lease",
                    self.epoch.load(Ordering::Acquire)
                ));
                return;
            }
            scripts::Refused::Changed(id) => (true, id),
            scripts::Refused::Lost(marker) => (false, marker),
        };
        // Only the caller that makes the transition logs: the shipper and
        // the lease renewal may find it at the same moment.
        if !self.set_status(Status::StoreLost) {
            return;
        }
        let seen = self.store_arg();
        let seen_epoch = self.seen_epoch.load(Ordering::Acquire);
        if changed {
            tracing::error!(
                seen_store = %seen,
                seen_epoch,
                found_store = %what,
                "replication: STORE CHANGED: Redis now holds another store than the one this \
                 server saw (an operator ran `boxoffice store new`?); refusing it: writes answer \
                 503, /readyz is 503. Restart this server to adopt the new store"
            );
        } else if seen.is_empty() {
            tracing::error!(
                found = %what,
                "replication: STORE QUARANTINED: a server found this Redis keyspace lost \
                 acknowledged state; refusing it: /readyz is 503, writes answer 503. Recover \
                 the data if possible, run `boxoffice store new --redis URL --yes`, then \
                 restart the servers (docs/operations.md, \"Store identity\")"
            );
        } else {
            tracing::error!(
                seen_store = %seen,
                seen_epoch,
                found = %what,
                "replication: STORE LOST: Redis no longer holds the acknowledged state this \
                 server saw (restarted without persistence, flushed, or failed over to a \
                 replica that missed writes); the keyspace is quarantined. Writes answer \
                 503 and /readyz is 503 on every server until an operator acts: recover \
                 the data if possible, run `boxoffice store new --redis URL --yes`, then \
                 restart the servers (docs/operations.md, \"Store identity\")"
            );
        }
        if let Some(host) = self.host.get().and_then(Weak::upgrade) {
            host.with_metrics(&mut || metrics::store_lost(true));
        }
    }

    /// After a loss found before serving: stay as we are (unready, the
    /// placeholder listener answers 503) until shut down.
    async fn park_lost(&self) -> ReplicateError {
        let mut rx = self.status.subscribe();
        let _ = rx.wait_for(|st| *st == Status::Closed).await;
        ReplicateError::State(Status::Closed)
    }

    fn depose(&self, why: &str) {
        if self.status() != Status::Deposed {
            tracing::error!(
                reason = why,
                epoch = self.epoch.load(Ordering::Acquire),
                "replication: DEPOSED, no longer writing to Redis; writes answer 503 and \
                 /readyz is 503; restart this server to run it as a standby"
            );
        }
        self.set_status(Status::Deposed);
    }

    fn durable_seq(&self, shard: usize) -> u64 {
        self.durable
            .get()
            .and_then(|d| d.get(shard))
            .map_or(0, |tx| *tx.borrow())
    }

    fn publish_durable(&self, shard: usize, head: u64) {
        if let Some(tx) = self.durable.get().and_then(|d| d.get(shard)) {
            tx.send_if_modified(|d| {
                if head > *d {
                    *d = head;
                    true
                } else {
                    false
                }
            });
        }
    }

    fn ms_since_born(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.born).as_millis() as u64
    }

    /// Records when the oldest entry not yet acknowledged was drained (None:
    /// nothing pending).
    fn note_oldest_pending(&self, at: Option<Instant>) {
        let v = at.map_or(0, |t| self.ms_since_born(t) + 1);
        self.oldest_pending_ms.store(v, Ordering::Release);
    }

    fn note_drained(&self) {
        let now = self.ms_since_born(Instant::now());
        self.last_drain_ms.store(now, Ordering::Release);
    }

    /// How long the oldest change not yet acknowledged by Redis has waited
    /// (at least), given that `backlog` changes are not acknowledged: the
    /// shipper's oldest pending entry, or, when it holds none (it may be
    /// stuck connecting), the time since it last drained the journals.
    fn unacked_age(&self, backlog: u64) -> Option<Duration> {
        let now = self.born.elapsed();
        match self.oldest_pending_ms.load(Ordering::Acquire) {
            0 if backlog == 0 => None,
            0 => Some(now.saturating_sub(Duration::from_millis(
                self.last_drain_ms.load(Ordering::Acquire),
            ))),
            v => Some(now.saturating_sub(Duration::from_millis(v - 1))),
        }
    }

    fn refusal(&self) -> Option<Unavailable> {
        match self.status() {
            Status::Active => None,
            Status::Deposed => Some(Unavailable::Deposed),
            Status::StoreLost => Some(Unavailable::StoreLost),
            Status::Closed => Some(Unavailable::Closed),
            Status::Idle | Status::Standby | Status::Recovering | Status::Recovered => {
                Some(Unavailable::NotReady)
            }
        }
    }
}

/// The replication handle. Cheap to clone; all clones share one state.
#[derive(Clone, Debug)]
pub struct Replicator {
    shared: Arc<Shared>,
}

fn default_owner() -> String {
    let mut r = [0u8; 8];
    // Without OS randomness the pid and clock still make a collision unlikely;
    // and the fencing epoch, not the owner name, is what keeps writers apart.
    let _ = getrandom::fill(&mut r);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let rand: String = r.iter().map(|b| format!("{b:02x}")).collect();
    format!("pid{}-{nanos:08x}-{rand}", std::process::id())
}

impl Replicator {
    /// A replicator for the Redis at `url` (no I/O yet).
    pub fn new(url: &str, opts: Options) -> Result<Self, ReplicateError> {
        Self::new_born(url, opts, Instant::now())
    }

    /// [`Replicator::new`] with the origin of its clocks given (tests place
    /// it in the past, as a lease wait does, without sleeping).
    fn new_born(url: &str, opts: Options, born: Instant) -> Result<Self, ReplicateError> {
        let endpoint = endpoint::Endpoint::parse(url).map_err(ReplicateError::Url)?;
        tracing::debug!(redis = %endpoint.describe(), mode = ?opts.mode, "replication: Redis endpoint");
        let owner = opts.owner.clone().unwrap_or_else(default_owner);
        let fresh_store = store::new_id()?;
        Ok(Replicator {
            shared: Arc::new(Shared {
                keys: Keys::new(&opts.prefix),
                opts,
                endpoint,
                owner,
                epoch: AtomicU64::new(0),
                seen_store: OnceLock::new(),
                seen_epoch: AtomicU64::new(0),
                fresh_store,
                status: watch::Sender::new(Status::Idle),
                durable: OnceLock::new(),
                wake: Notify::new(),
                link_up: AtomicBool::new(true),
                backlog: AtomicU64::new(0),
                born,
                oldest_pending_ms: AtomicU64::new(0),
                last_drain_ms: AtomicU64::new(0),
                host: OnceLock::new(),
                reconnects: AtomicU64::new(0),
                replica_shortfalls: AtomicU64::new(0),
                closing: AtomicBool::new(false),
                snap_seqs: Mutex::new(Vec::new()),
                recovery_seconds: Mutex::new(None),
                tasks: Mutex::new(Vec::new()),
                shipper: Mutex::new(None),
            }),
        })
    }

    /// [`Replicator::new`] then [`Replicator::recover_engine`].
    pub async fn recover(
        url: &str,
        opts: Options,
        cfg: EngineConfig,
        now: impl FnOnce() -> Timestamp,
    ) -> Result<(Engine, Replicator), ReplicateError> {
        let r = Replicator::new(url, opts)?;
        let engine = r.recover_engine(cfg, now).await?;
        Ok((engine, r))
    }

    /// Takes the writer lease (waiting as a standby while another server holds
    /// it), then loads every shard's snapshot and the entries after it and
    /// returns the restored engine, built with `journal: true`. Connection
    /// trouble is retried with backoff; data that cannot be loaded is an error.
    /// `now` is read after loading (presence restarts then).
    pub async fn recover_engine(
        &self,
        mut cfg: EngineConfig,
        now: impl FnOnce() -> Timestamp,
    ) -> Result<Engine, ReplicateError> {
        let s = &self.shared;
        if s.status() != Status::Idle {
            return Err(ReplicateError::State(s.status()));
        }
        cfg.journal = true;
        let shards = cfg.shards.get();
        let epoch = match lease::acquire_or_wait(s).await? {
            Some(epoch) => epoch,
            None => return Err(s.park_lost().await),
        };
        // Recovery time proper: from the lease to a restored engine.
        let started = Instant::now();
        s.epoch.store(epoch, Ordering::Release);
        s.set_status(Status::Recovering);
        let loaded = match recover::load(s, shards).await {
            Err(ReplicateError::StoreLost(m)) => {
                s.lose_store(&scripts::Refused::Lost(m));
                return Err(s.park_lost().await);
            }
            Err(ReplicateError::StoreChanged(id)) => {
                s.lose_store(&scripts::Refused::Changed(id));
                return Err(s.park_lost().await);
            }
            other => other?,
        };
        let replayed = loaded.entries.len();
        let engine = Engine::restore(cfg, loaded.snapshot, loaded.entries, now())?;
        tracing::info!(
            shards,
            snapshots = loaded.snap_seqs.iter().filter(|&&s| s > 0).count(),
            replayed_entries = replayed,
            duration_ms = started.elapsed().as_millis() as u64,
            epoch,
            "replication: recovered state from Redis"
        );
        let heads: Box<[watch::Sender<u64>]> = (0..shards)
            .map(|i| watch::Sender::new(engine.journal_seq(i)))
            .collect();
        let _ = s.durable.set(heads);
        *s.snap_seqs.lock() = loaded.snap_seqs;
        *s.recovery_seconds.lock() = Some(started.elapsed().as_secs_f64());
        s.set_status(Status::Recovered);
        Ok(engine)
    }

    /// Starts the shipper, lease renewer and snapshotter on the current tokio
    /// runtime, for the engine [`Replicator::recover_engine`] returned.
    /// From here on the server is the writer and [`Replicator::ready`] is true.
    pub fn spawn(&self, host: Arc<dyn EngineHost>) -> Result<(), ReplicateError> {
        let s = &self.shared;
        if s.status() != Status::Recovered {
            return Err(ReplicateError::State(s.status()));
        }
        let rt = tokio::runtime::Handle::try_current().map_err(|_| ReplicateError::NoRuntime)?;
        let expected = s.durable.get().map_or(0, |d| d.len());
        if host.engine().shard_count() != expected {
            return Err(ReplicateError::ShardCount {
                found: host.engine().shard_count() as u64,
                expected,
            });
        }
        if let Some(secs) = *s.recovery_seconds.lock() {
            host.with_metrics(&mut || metrics::recovered(secs));
        }
        if s.opts.events_out_maxlen > 0 {
            host.with_metrics(&mut metrics::events_out_zero);
        }
        let _ = s.host.set(Arc::downgrade(&host));
        // The journals hold nothing unshipped now (recovery read them from
        // Redis): the bound on their age starts here, not at `born`, which
        // may lie a lease wait in the past. Without this, a write that came
        // before the shipper's first drain was refused as lagging.
        s.note_drained();
        s.set_status(Status::Active);
        let shipper = rt.spawn(shipper::run(s.clone(), host.clone()));
        *s.shipper.lock() = Some(shipper);
        let mut tasks = s.tasks.lock();
        tasks.push(rt.spawn(lease::renew_loop(s.clone())));
        tasks.push(rt.spawn(snapshots::run(s.clone(), host)));
        Ok(())
    }

    /// Waits until Redis holds `shard`'s journal up to `seq` (sync mode; async
    /// mode returns at once). Never `Ok` for a change Redis does not have in
    /// sync mode: on a timeout (`commit_timeout`), Redis trouble or loss of the
    /// lease the answer is [`Unavailable`]; the change itself stays queued and
    /// reaches Redis when it can (a retry with the same idempotency key then
    /// finds it).
    pub async fn durable(&self, shard: usize, seq: u64) -> Result<(), Unavailable> {
        let s = &self.shared;
        if let Some(why) = s.refusal() {
            return Err(why);
        }
        if s.opts.mode == Mode::Async {
            return Ok(());
        }
        let Some(tx) = s.durable.get().and_then(|d| d.get(shard)) else {
            return Err(Unavailable::NotReady);
        };
        let mut rx = tx.subscribe();
        if *rx.borrow() >= seq {
            return Ok(());
        }
        s.wake.notify_one();
        let mut status = s.status.subscribe();
        let wait = async {
            tokio::select! {
                r = rx.wait_for(|d| *d >= seq) => match r {
                    Ok(_) => Ok(()),
                    Err(_) => Err(Unavailable::Closed),
                },
                r = status.wait_for(|st| *st != Status::Active) => {
                    let st = r.map(|st| *st).unwrap_or(Status::Closed);
                    Err(match st {
                        Status::Deposed => Unavailable::Deposed,
                        Status::StoreLost => Unavailable::StoreLost,
                        _ => Unavailable::Closed,
                    })
                }
            }
        };
        match tokio::time::timeout(s.opts.commit_timeout, wait).await {
            Ok(r) => r,
            // A last look: the ack may have landed as the timer fired.
            Err(_) if s.durable_seq(shard) >= seq => Ok(()),
            Err(_) if s.link_up.load(Ordering::Acquire) => Err(Unavailable::Timeout),
            Err(_) => Err(Unavailable::Down),
        }
    }

    /// Checks, BEFORE a change is applied, that it may be: this server is the
    /// writer, the backlog has room, and (sync mode) Redis is reachable, so a
    /// change that would only be answered 503 is not made at all.
    pub fn admit_write(&self) -> Result<(), Unavailable> {
        let s = &self.shared;
        if let Some(why) = s.refusal() {
            return Err(why);
        }
        if s.opts.mode.waits() && !s.link_up.load(Ordering::Acquire) {
            return Err(Unavailable::Down);
        }
        let backlog = self.backlog();
        if backlog >= s.opts.max_backlog {
            return Err(Unavailable::Backlog);
        }
        if s.opts.mode == Mode::Async
            && s.unacked_age(backlog)
                .is_some_and(|age| age > s.opts.max_lag)
        {
            return Err(Unavailable::Lagging);
        }
        Ok(())
    }

    /// True while this server is the recovered, active writer (`/readyz`).
    pub fn ready(&self) -> bool {
        self.shared.status() == Status::Active
    }

    pub fn status(&self) -> Status {
        self.shared.status()
    }

    /// A receiver that sees every status change (to log or to react to deposition).
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.shared.status.subscribe()
    }

    pub fn mode(&self) -> Mode {
        self.shared.opts.mode
    }

    /// Highest `seq` of `shard` that Redis has acknowledged.
    pub fn durable_seq(&self, shard: usize) -> u64 {
        self.shared.durable_seq(shard)
    }

    /// [`Mode::SyncReplica`]: how often `WAIT` saw fewer replicas than
    /// required (each time the entries stayed pending and were retried).
    pub fn replica_shortfalls(&self) -> u64 {
        self.shared.replica_shortfalls.load(Ordering::Relaxed)
    }

    /// Whether this server holds the writer lease as far as it knows: it
    /// took it (recovering or writing) and was not deposed, did not find its
    /// store lost and is not closed.
    pub fn holds_lease(&self) -> bool {
        matches!(
            self.shared.status(),
            Status::Recovering | Status::Recovered | Status::Active
        )
    }

    /// Our fencing epoch (0 before the lease is taken).
    pub fn epoch(&self) -> u64 {
        self.shared.epoch.load(Ordering::Acquire)
    }

    /// The store id this server has seen (None before its first lease reply).
    pub fn store_id(&self) -> Option<String> {
        self.shared.seen_store.get().cloned()
    }

    /// The highest fencing epoch this server has seen in Redis.
    pub fn seen_epoch(&self) -> u64 {
        self.shared.seen_epoch.load(Ordering::Acquire)
    }

    /// True once this server found its store lost or changed
    /// ([`Status::StoreLost`]; the `boxoffice_replication_store_lost` gauge).
    pub fn store_lost(&self) -> bool {
        self.shared.status() == Status::StoreLost
    }

    /// Whether the last Redis call succeeded.
    pub fn link_up(&self) -> bool {
        self.shared.link_up.load(Ordering::Acquire)
    }

    /// Changes applied but not acknowledged by Redis yet, counted exactly
    /// from the engine's `seq`s (the shipper may be stuck in a round trip, so
    /// its own count can be stale by then).
    pub fn backlog(&self) -> u64 {
        let s = &self.shared;
        let Some(host) = s.host.get().and_then(Weak::upgrade) else {
            return s.backlog.load(Ordering::Acquire);
        };
        let engine = host.engine();
        (0..engine.shard_count())
            .map(|i| engine.journal_seq(i).saturating_sub(s.durable_seq(i)))
            .sum()
    }

    /// Graceful stop: ships everything pending (bounded by `commit_timeout`
    /// plus a little), stops the tasks and gives the lease up so a standby
    /// takes over at once. Call it after the HTTP server stopped taking writes.
    pub async fn shutdown(&self) {
        let s = &self.shared;
        s.closing.store(true, Ordering::Release);
        s.wake.notify_one();
        let shipper = s.shipper.lock().take();
        if let Some(mut h) = shipper {
            let grace = s.opts.commit_timeout + Duration::from_secs(1);
            if tokio::time::timeout(grace, &mut h).await.is_err() {
                h.abort();
            }
        }
        for t in s.tasks.lock().drain(..) {
            t.abort();
        }
        let was_writer = s.status() == Status::Active;
        s.set_status(Status::Closed);
        if was_writer {
            lease::release(s).await;
        }
    }

    /// Stops every task at once without flushing or releasing the lease, as a
    /// crash would (tests; a standby then waits for the lease to expire).
    pub fn abort(&self) {
        let s = &self.shared;
        if let Some(h) = s.shipper.lock().take() {
            h.abort();
        }
        for t in s.tasks.lock().drain(..) {
            t.abort();
        }
        s.set_status(Status::Closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boxoffice_engine::{CouponConfig, CouponId, EngineConfig, PassKey, PassKeys, Timestamp};

    /// A writer that became active long after it was built (it waited out
    /// an old lease) takes a burst of async writes that come before its
    /// shipper has run once. Failed before `spawn` noted a drain: the age
    /// of the unshipped change was measured from `born`, 10 s back.
    #[test]
    fn a_new_writer_is_not_lagging_before_its_shipper_first_runs() {
        let opts = Options {
            mode: Mode::Async,
            max_lag: Duration::from_secs(1),
            ..Options::default()
        };
        let born = Instant::now()
            .checked_sub(Duration::from_secs(10))
            .expect("the clock is over 10 s past its origin");
        // Port 1: nothing there, and nothing here ever connects (the
        // spawned tasks are never polled).
        let r = Replicator::new_born("redis://127.0.0.1:1", opts, born).expect("replicator");
        let key = PassKey::new("k1", b"a-test-secret-of-32-bytes-length").expect("key");
        let cfg = EngineConfig::new([7; 32], PassKeys::new(key));
        let engine = Arc::new(Engine::new(cfg));
        let heads: Box<[watch::Sender<u64>]> = (0..engine.shard_count())
            .map(|i| watch::Sender::new(engine.journal_seq(i)))
            .collect();
        let _ = r.shared.durable.set(heads);
        r.shared.set_status(Status::Recovered);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _guard = rt.enter();
        r.spawn(engine.clone()).expect("spawn");

        assert_eq!(r.admit_write(), Ok(()));
        let coupon = CouponId::new("c1").expect("id");
        let config = CouponConfig {
            stock: 1,
            per_user: CouponConfig::DEFAULT_PER_USER,
            opens_at: None,
            closes_at: None,
        };
        let put = engine.put_coupon(&coupon, config, Timestamp(1));
        assert!(put.is_ok(), "put: {put:?}");
        assert_eq!(r.backlog(), 1, "the write is not shipped yet");
        assert_eq!(r.admit_write(), Ok(()), "the next write is admitted");
    }
}
