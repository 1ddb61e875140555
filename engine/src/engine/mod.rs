//! The engine: shards behind locks, and the operations the server calls.
//!
//! Events and coupons hash to shards (FNV-1a of the id, stable across builds
//! so snapshots restore onto the same layout). Operations on different shards
//! run in parallel; reads (status, counts) take the shard's shared lock.
//!
//! Invariants owned here: every write is recorded in its shard's journal under
//! the shard's write lock and answered with a [`Receipt`] naming the journal
//! `seq` to wait for (I6); the submodules connect the domain modules that
//! own the rest: `events`, `queue` (I3 FIFO, I7 capacity, I8 passes), `seats`
//! (I1), `coupons` (I2), `restore` (I6 replay), and idempotent retries (I5)
//! for holds and claims.

mod coupons;
mod events;
mod queue;
mod rejection;
mod restore;
mod seats;

pub use coupons::ClaimReply;
pub use events::{EventInfo, EventStats, EventSummary, Phase, PutOutcome};
pub use queue::{JoinAs, JoinKey, Joined, TicketReport, TicketView};
pub use rejection::{PassInvalid, Rejection};
pub use restore::{RestoreError, Snapshot};
pub use seats::HoldReply;

use crate::idempotency::{
    fingerprint, IdemLookup, IdemOutcome, IdemRecord, IdemScope, IdempotencyStore,
};
use crate::ids::{CouponId, EventId, IdempotencyKey};
use crate::journal::{Change, Entry};
use crate::passes::PassKeys;
use crate::shard::Shard;
use crate::time::Timestamp;
use parking_lot::RwLock;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a write did: its value, and the journal position a server must make
/// durable before it acknowledges the value (I6).
///
/// `seq` is the shard's journal `seq` when the write let go of the shard's
/// lock: the seq of the last change this write recorded, or, for a write
/// that recorded nothing (an idempotent replay, releasing a hold already
/// gone), of the state it observed, which may have been recorded by an
/// earlier request whose acknowledgement failed. Waiting for it covers both.
///
/// The value is reachable only by [`Receipt::into_value`]. The server calls
/// it in exactly one place, its commit path, after waiting for `seq`
/// (clippy's `disallowed-methods` forbids it elsewhere in the server);
/// embeddings without a durable journal (tests, benchmarks) call it directly.
#[must_use = "a write is acknowledged only through its receipt"]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt<T> {
    value: T,
    shard: usize,
    seq: u64,
}

impl<T> Receipt<T> {
    /// A receipt for `value`, taken under `shard`'s lock.
    fn new(shard: &Shard, value: T) -> Self {
        Receipt {
            value,
            shard: shard.index as usize,
            seq: shard.seq,
        }
    }

    /// The shard whose journal holds the write.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// The journal `seq` to wait for (0: nothing was ever recorded).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The write's value. A server acknowledges it only after its journal is
    /// durable up to [`Receipt::seq`].
    pub fn into_value(self) -> T {
        self.value
    }

    /// The same receipt around another value.
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Receipt<U> {
        Receipt {
            value: f(self.value),
            shard: self.shard,
            seq: self.seq,
        }
    }
}

/// How a hold's pass is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassCheck<'a> {
    /// A trusted caller (an embedding backend that checks passes itself).
    Trusted,
    /// An untrusted caller: on an event with a waiting room this pass (or
    /// its absence) is checked under the same lock as the hold.
    Required(Option<&'a str>),
}

/// The idempotency part of a keyed write (I5), shared by holds and claims:
/// look the key up before the write, remember the outcome after it.
struct Keyed<'k> {
    scope: IdemScope,
    key: &'k IdempotencyKey,
    fingerprint: u64,
}

impl<'k> Keyed<'k> {
    /// `None` without a key; only keyed requests pay for the fingerprint.
    fn new<R: serde::Serialize>(
        scope: IdemScope,
        key: Option<&'k IdempotencyKey>,
        request: &R,
    ) -> Option<Self> {
        key.map(|key| Keyed {
            scope,
            key,
            fingerprint: fingerprint(request),
        })
    }

    /// The first outcome for a retry, `None` for a fresh key; a key used
    /// with a different request is refused.
    fn lookup(&self, shard: &Shard, now: Timestamp) -> Result<Option<IdemOutcome>, Rejection> {
        match shard
            .idem
            .lookup(&self.scope, self.key, self.fingerprint, now)
        {
            IdemLookup::Fresh => Ok(None),
            IdemLookup::Replay(outcome) => Ok(Some(outcome)),
            IdemLookup::Conflict => Err(Rejection::IdempotencyKeyReused),
        }
    }

    /// Records the outcome of the write, so a retry returns it.
    fn remember(self, shard: &mut Shard, outcome: IdemOutcome, now: Timestamp) {
        let rec = IdemRecord {
            scope: self.scope,
            key: self.key.clone(),
            fingerprint: self.fingerprint,
            outcome,
            at: now,
        };
        shard.commit(now, Change::Idempotency(rec));
    }
}

/// How an engine is built.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub shards: NonZeroUsize,
    /// Root secret for ticket MACs (per-event keys are derived from it).
    pub secret: [u8; 32],
    /// Keys that sign and verify passes.
    pub pass_keys: PassKeys,
    /// Keep journal entries for [`Engine::drain_journal`]. Off: changes are
    /// numbered but not kept (memory-only servers).
    pub journal: bool,
    /// How long an idempotency key is remembered.
    pub idempotency_window_ms: u64,
    /// Most idempotency keys kept per shard.
    pub idempotency_max_keys: usize,
    /// Writer epoch new hold and claim ids carry at first (see
    /// [`Engine::set_writer_epoch`]).
    pub writer_epoch: u64,
}

impl EngineConfig {
    pub fn new(secret: [u8; 32], pass_keys: PassKeys) -> Self {
        EngineConfig {
            shards: NonZeroUsize::new(16).unwrap_or(NonZeroUsize::MIN),
            secret,
            pass_keys,
            journal: false,
            idempotency_window_ms: 24 * 3600 * 1000,
            idempotency_max_keys: 1_000_000,
            writer_epoch: 0,
        }
    }
}

/// What one [`Engine::tick`] did, summed over all shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    pub admitted: u64,
    pub idle_dropped: u64,
    pub sessions_expired: u64,
    pub holds_expired: u64,
    pub rooms_opened: u64,
}

/// The engine. `Send + Sync`; share it with an `Arc`.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    shards: Box<[RwLock<Shard>]>,
    /// Epoch every new hold and claim id carries (I8: ids never reissued).
    writer_epoch: AtomicU64,
}

fn fnv1a(tag: u8, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in std::iter::once(&tag).chain(bytes) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Self {
        let shards = (0..cfg.shards.get())
            .map(|i| {
                let idem =
                    IdempotencyStore::new(cfg.idempotency_window_ms, cfg.idempotency_max_keys);
                RwLock::new(Shard::new(i as u32, cfg.journal, idem, cfg.secret))
            })
            .collect();
        Engine::from_parts(cfg, shards)
    }

    fn from_parts(cfg: EngineConfig, shards: Box<[RwLock<Shard>]>) -> Self {
        let writer_epoch = AtomicU64::new(cfg.writer_epoch);
        Engine {
            cfg,
            shards,
            writer_epoch,
        }
    }

    /// Sets the writer epoch that hold and claim ids issued from now on
    /// carry. Ids resolve only with the epoch they were issued under, so
    /// when a writer's last changes are lost (a crash in async durability)
    /// and the next writer, under a newer epoch, reuses their slots, the
    /// lost ids name nothing instead of someone else's hold or claim (I8).
    ///
    /// Call it before the first write after building or restoring the
    /// engine, with an epoch no earlier writer of this state used (the
    /// server passes its fencing epoch, or the unix time in ms without
    /// Redis). Restored holds and claims keep the epochs they were issued
    /// under. The engine reads no clock: the caller picks the value.
    pub fn set_writer_epoch(&self, epoch: u64) {
        self.writer_epoch.store(epoch, Ordering::Release);
    }

    /// The epoch new hold and claim ids carry.
    pub fn writer_epoch(&self) -> u64 {
        self.writer_epoch.load(Ordering::Acquire)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub fn shard_of_event(&self, event: &EventId) -> usize {
        self.shard_of_event_named(event.as_str())
    }

    /// [`Engine::shard_of_event`] by the id's text.
    fn shard_of_event_named(&self, event: &str) -> usize {
        (fnv1a(b'e', event.as_bytes()) % self.shards.len() as u64) as usize
    }

    pub fn shard_of_coupon(&self, coupon: &CouponId) -> usize {
        (fnv1a(b'c', coupon.as_str().as_bytes()) % self.shards.len() as u64) as usize
    }

    fn event_shard(&self, event: &EventId) -> &RwLock<Shard> {
        self.event_shard_named(event.as_str())
    }

    /// [`Engine::event_shard`] by the id's text (the same shard).
    fn event_shard_named(&self, event: &str) -> &RwLock<Shard> {
        &self.shards[self.shard_of_event_named(event)]
    }

    fn coupon_shard(&self, coupon: &CouponId) -> &RwLock<Shard> {
        &self.shards[self.shard_of_coupon(coupon)]
    }

    /// Takes the journal entries recorded since the last call (journal on).
    ///
    /// # Panics
    ///
    /// If `shard >= shard_count()`: a caller's bug, not a state to paper
    /// over with an empty batch.
    pub fn drain_journal(&self, shard: usize) -> Vec<Entry> {
        self.shards[shard].write().take_journal()
    }

    /// `seq` of the last change recorded in a shard.
    pub fn journal_seq(&self, shard: usize) -> u64 {
        self.shards.get(shard).map_or(0, |s| s.read().seq)
    }

    /// Drives time: opens due pre-queues, ends sessions, drops idle users,
    /// admits, and expires holds, in every shard.
    pub fn tick(&self, now: Timestamp) -> TickReport {
        let mut report = TickReport::default();
        let mut qout = Vec::new();
        let mut sout = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = shard.write();
            let now = shard.advance(now);
            let ids: Vec<EventId> = shard.events.keys().cloned().collect();
            for id in ids {
                let Some(e) = shard.events.get_mut(&id) else {
                    continue;
                };
                if let Some(room) = &mut e.room {
                    let t = room.tick(now, &mut qout);
                    report.admitted += t.admitted;
                    report.idle_dropped += t.idle_dropped;
                    report.sessions_expired += t.sessions_expired;
                    report.rooms_opened += u64::from(t.opened);
                }
                report.holds_expired += e.seats.tick(now, &mut sout);
                shard.record_all(now, qout.drain(..), |change| Change::Queue {
                    event: id.clone(),
                    change,
                });
                shard.record_all(now, sout.drain(..), |change| Change::Seats {
                    event: id.clone(),
                    change,
                });
            }
        }
        report
    }
}
