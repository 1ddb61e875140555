//! The shipper: journal entries to Redis, in order, in batches (group commit).
//!
//! Owns the shipping half of I6. One task drains every shard's journal into a
//! pending buffer, sends the oldest entries in ONE `EVALSHA` of the append
//! script, and on the reply publishes each shard's durable `seq` on a watch
//! channel that sync writers wait on. While a round trip is in flight, new
//! changes pile up in the journals and all go in the next batch: many requests
//! share one round trip.
//!
//! Nothing leaves the pending buffer until Redis acknowledged it, and a retry
//! always resends from the oldest unacknowledged entry. A batch whose reply
//! was lost is therefore a prefix of the retry, and the script skips what
//! Redis already has: no gap, no duplicate, whatever fails when.
//!
//! In `sync-replica` mode "acknowledged" also means `WAIT` counted enough
//! replicas (pipelined behind the append, see [`replicas`]); short of that
//! the entries stay pending and the batch is retried.

use super::link::{Backoff, Link};
use super::metrics;
use super::outbox::{self, Encoded};
use super::scripts::{self, parse_append, Appended};
use super::{replicas, EngineHost, Mode, Shared, Status};
use boxoffice_engine::journal;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Item {
    seq: u64,
    data: Vec<u8>,
    /// The entry's business outcomes (events out), appended with it.
    out: Vec<Encoded>,
    /// When the entry was drained from the engine (for the lag gauge).
    since: Instant,
}

/// Entries drained from the engine, not yet acknowledged by Redis.
struct Pending {
    shards: Vec<VecDeque<Item>>,
    count: usize,
    /// First shard considered by the next batch, so a full batch does not
    /// always favour low shard numbers.
    rotate: usize,
}

impl Pending {
    fn new(shards: usize) -> Self {
        Pending {
            shards: (0..shards).map(|_| VecDeque::new()).collect(),
            count: 0,
            rotate: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Moves the engine's new journal entries here, encoded, with their
    /// outcomes when events out is on.
    /// `epoch` is this writer's (it goes into the outcome ids).
    fn drain(&mut self, host: &dyn EngineHost, events_out: bool, epoch: u64) {
        let engine = host.engine();
        let now = Instant::now();
        for (i, q) in self.shards.iter_mut().enumerate() {
            for entry in engine.drain_journal(i) {
                q.push_back(Item {
                    seq: entry.seq,
                    data: journal::encode(&entry),
                    out: if events_out {
                        outbox::encode(&entry, epoch)
                    } else {
                        Vec::new()
                    },
                    since: now,
                });
                self.count += 1;
            }
        }
    }

    /// Drops what Redis acknowledged, counting its outcomes into `appended`
    /// (per [`outbox::TYPES`]). An item leaves once, so each outcome is
    /// counted once, also when the reply that stored it was lost and a retry
    /// found it there.
    fn ack(&mut self, shard: usize, head: u64, appended: &mut [u64; outbox::TYPES.len()]) {
        if let Some(q) = self.shards.get_mut(shard) {
            while q.front().is_some_and(|it| it.seq <= head) {
                if let Some(it) = q.pop_front() {
                    for o in &it.out {
                        if let Some(i) = outbox::TYPES.iter().position(|t| *t == o.kind) {
                            appended[i] += 1;
                        }
                    }
                }
                self.count -= 1;
            }
        }
    }

    fn oldest(&self) -> Option<Instant> {
        self.shards
            .iter()
            .filter_map(|q| q.front().map(|it| it.since))
            .min()
    }

    /// The append script call (`EVALSHA`) for the oldest entries of each
    /// shard, within the batch limits, with the number of entries it carries.
    /// Built as one command so each entry is copied once, into the buffer
    /// that goes on the wire.
    fn batch(&mut self, shared: &Shared) -> (redis::Cmd, usize) {
        let n = self.shards.len();
        let max_entries = shared.opts.max_batch_entries.max(1);
        let max_bytes = shared.opts.max_batch_bytes.max(1);
        let mut takes: Vec<(usize, usize)> = Vec::new();
        let (mut entries, mut bytes) = (0usize, 0usize);
        for k in 0..n {
            if entries >= max_entries || bytes >= max_bytes {
                break;
            }
            let shard = (self.rotate + k) % n;
            let mut take = 0usize;
            for it in &self.shards[shard] {
                // At least one entry per batch, however large, so a huge
                // entry cannot stall the log.
                // The outcomes' JSON goes in the same call: it counts too.
                let size = it.data.len() + it.out.iter().map(|o| o.json.len()).sum::<usize>();
                let over = entries + take >= max_entries || bytes + size > max_bytes;
                if over && entries + take > 0 {
                    break;
                }
                bytes += size;
                take += 1;
            }
            if take > 0 {
                takes.push((shard, take));
                entries += take;
            }
        }
        self.rotate = (self.rotate + 1) % n.max(1);
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(scripts::APPEND.get_hash())
            // store, epoch, heads, the logs, the out stream.
            .arg(4 + takes.len())
            .arg(shared.keys.store())
            .arg(shared.keys.epoch())
            .arg(shared.keys.heads());
        for &(shard, _) in &takes {
            cmd.arg(shared.keys.log(shard));
        }
        cmd.arg(shared.keys.out());
        cmd.arg(shared.store_arg())
            .arg(shared.epoch.load(Ordering::Acquire));
        for &(shard, take) in &takes {
            cmd.arg(shard).arg(take);
            for it in self.shards[shard].iter().take(take) {
                cmd.arg(it.seq).arg(&it.data[..]).arg(it.out.len());
                for o in &it.out {
                    cmd.arg(&o.json);
                }
            }
        }
        cmd.arg(shared.opts.events_out_maxlen);
        (cmd, entries)
    }
}

/// Sends an `EVALSHA`; loads the script once if Redis does not know it (first
/// call, or after a Redis restart) and sends it again. In
/// [`Mode::SyncReplica`] the replica barrier and `WAIT` go in the same
/// pipeline, right behind it on the same connection (no extra round trip);
/// the second value is then the number of replicas that acknowledged.
async fn eval(
    conn: &mut redis::aio::MultiplexedConnection,
    cmd: &redis::Cmd,
    shared: &Shared,
) -> Result<(redis::Value, Option<u64>), redis::RedisError> {
    if shared.opts.mode != Mode::SyncReplica {
        let v = match cmd.query_async(conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                scripts::APPEND.load_async(conn).await?;
                cmd.query_async(conn).await
            }
            other => other,
        }?;
        return Ok((v, None));
    }
    let mut pipe = redis::pipe();
    pipe.ignore_errors().add_command(cmd.clone());
    replicas::add_wait(&mut pipe, shared, shared.opts.response_timeout);
    let mut loaded = false;
    loop {
        let mut replies: Vec<redis::Value> = pipe.query_async(conn).await?;
        if replies.len() != 3 {
            return Err(redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "unexpected reply to the append pipeline",
            )));
        }
        let waited = replies.pop().map(|w| replicas::parse_wait(&w));
        match replies.swap_remove(0) {
            redis::Value::ServerError(e)
                if !loaded && e.kind() == Some(redis::ServerErrorKind::NoScript) =>
            {
                scripts::APPEND.load_async(conn).await?;
                loaded = true;
            }
            redis::Value::ServerError(e) => return Err(e.into()),
            v => return Ok((v, waited.transpose()?)),
        }
    }
}

/// Runs until shutdown (after flushing), abort, or deposition.
pub(crate) async fn run(shared: Arc<Shared>, host: Arc<dyn EngineHost>) {
    let shards = host.engine().shard_count();
    let mut pending = Pending::new(shards);
    let mut link = Link::new(shared.clone(), "shipper", shared.opts.response_timeout);
    let mut backoff = Backoff::new();
    let mut retry_at: Option<Instant> = None;
    let mut down_since: Option<Instant> = None;
    let mut gauges_at = Instant::now();
    let flush = shared.opts.flush_interval.max(Duration::from_millis(1));
    loop {
        match shared.status() {
            Status::Closed => return,
            Status::Deposed | Status::StoreLost => return discard(&shared, host.as_ref()).await,
            _ => {}
        }
        let closing = shared.closing.load(Ordering::Acquire);
        let now = Instant::now();
        match retry_at.filter(|t| now < *t) {
            // Redis is away: keep draining (so the backlog count stays true)
            // but do not call before the backoff is over.
            Some(t) => tokio::time::sleep(flush.min(t - now)).await,
            None if pending.is_empty() && !closing => {
                tokio::select! {
                    () = shared.wake.notified() => {}
                    () = tokio::time::sleep(flush) => {}
                }
            }
            None => {}
        }
        pending.drain(
            host.as_ref(),
            shared.opts.events_out_maxlen > 0,
            shared.epoch.load(Ordering::Acquire),
        );
        shared
            .backlog
            .store(pending.count as u64, Ordering::Release);
        shared.note_oldest_pending(pending.oldest());
        shared.note_drained();
        if gauges_at.elapsed() >= Duration::from_millis(100) {
            gauges_at = Instant::now();
            let lag = pending.oldest().map_or(0.0, |t| t.elapsed().as_secs_f64());
            let events = pending.count as u64;
            let reconnects = shared.reconnects.load(Ordering::Relaxed);
            host.with_metrics(&mut || metrics::lag(lag, events, reconnects));
        }
        if closing && pending.is_empty() {
            return;
        }
        if retry_at.is_some_and(|t| Instant::now() < t) {
            continue;
        }
        if pending.is_empty() {
            // Nothing to send: while Redis is marked down, probe it so writes
            // are admitted again as soon as it is back.
            if down_since.is_some() {
                let ok = match link.get().await {
                    Ok(conn) => redis::cmd("PING")
                        .query_async::<redis::Value>(conn)
                        .await
                        .is_ok(),
                    Err(_) => false,
                };
                if ok {
                    up_again(&shared, &mut down_since, &mut backoff, &mut retry_at);
                } else {
                    link.reset();
                    retry_at = Some(Instant::now() + backoff.step());
                }
            }
            continue;
        }
        let (cmd, entries) = pending.batch(&shared);
        let started = Instant::now();
        let reply = match link.get().await {
            Ok(conn) => eval(conn, &cmd, &shared).await,
            Err(e) => Err(e),
        };
        let (outcome, acked_by) = match &reply {
            Ok((v, n)) => (
                parse_append(v).ok_or("an unexpected reply to the append script".to_string()),
                *n,
            ),
            Err(e) => {
                link.failed(e);
                (Err(e.to_string()), None)
            }
        };
        let wanted = u64::from(shared.opts.replicas);
        match outcome {
            Ok(Appended::Ok(_)) if acked_by.is_some_and(|n| n < wanted) => {
                // Stored on the primary, not yet on enough replicas: nothing is
                // acknowledged. The entries stay pending; the retry appends
                // nothing (the script skips what Redis has) and WAITs again,
                // and writes are refused up front meanwhile (link_up false).
                let n = shared.replica_shortfalls.fetch_add(1, Ordering::Relaxed) + 1;
                shared.link_up.store(false, Ordering::Release);
                if down_since.is_none() {
                    tracing::warn!(
                        replicas = acked_by.unwrap_or(0),
                        wanted,
                        shortfalls_total = n,
                        pending_entries = pending.count,
                        "replication: stored on the primary but too few replicas acknowledged \
                         (WAIT); not acknowledging, retrying"
                    );
                    down_since = Some(Instant::now());
                }
                // With Sentinel, too few replicas may mean this node is an
                // old primary a failover left behind (still a master until
                // Sentinel demotes it, seconds later): resolve the master
                // again. The barrier makes the new connection's WAIT cover
                // what this one wrote.
                if link.resolves() {
                    link.reset();
                }
                // WAIT itself waited its timeout; no backoff on top, so the
                // first batch after a replica is back is acknowledged at once.
                retry_at = Some(Instant::now() + Duration::from_millis(20));
            }
            Ok(Appended::Ok(heads)) => {
                let secs = started.elapsed().as_secs_f64();
                host.with_metrics(&mut || metrics::batch(entries, secs));
                let mut appended = [0u64; outbox::TYPES.len()];
                for (shard, head) in heads {
                    pending.ack(shard, head, &mut appended);
                    shared.publish_durable(shard, head);
                }
                if appended.iter().any(|&n| n > 0) {
                    host.with_metrics(&mut || metrics::events_out(&appended));
                }
                shared
                    .backlog
                    .store(pending.count as u64, Ordering::Release);
                shared.note_oldest_pending(pending.oldest());
                up_again(&shared, &mut down_since, &mut backoff, &mut retry_at);
            }
            Ok(Appended::Refused(found)) => {
                // A newer writer (deposed), or a keyspace that lost or
                // changed its store (quarantined by the script if lost).
                shared.lose_store(&found);
                // The loop's top turns to discarding.
                continue;
            }
            Ok(Appended::Gap { shard, head, first }) => {
                shared.depose(&format!(
                    "a batch for shard {shard} starting at {first} was not consecutive \
                     (Redis head {head}): a bug; nothing of it was written"
                ));
                // The loop's top turns to discarding.
                continue;
            }
            Err(why) => {
                // A failed call reset the link above; an unparsable reply
                // resets it here.
                link.reset();
                shared.link_up.store(false, Ordering::Release);
                if down_since.is_none() {
                    tracing::warn!(
                        error = %why,
                        pending_entries = pending.count,
                        "replication: Redis write failed; pending entries kept and retried in order"
                    );
                    down_since = Some(Instant::now());
                }
                retry_at = Some(Instant::now() + backoff.step());
            }
        }
    }
}

/// A deposed writer keeps answering reads, and its driver may still expire
/// holds and admit users in memory. Nothing of that may reach Redis, but the
/// journal must not grow without bound either: drop it until shutdown.
async fn discard(shared: &Shared, host: &dyn EngineHost) {
    while matches!(shared.status(), Status::Deposed | Status::StoreLost) {
        for i in 0..host.engine().shard_count() {
            drop(host.engine().drain_journal(i));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn up_again(
    shared: &Shared,
    down_since: &mut Option<Instant>,
    backoff: &mut Backoff,
    retry_at: &mut Option<Instant>,
) {
    if let Some(t) = down_since.take() {
        tracing::info!(
            down_ms = t.elapsed().as_millis() as u64,
            "replication: Redis reachable again"
        );
    }
    shared.link_up.store(true, Ordering::Release);
    backoff.reset();
    *retry_at = None;
}
