//! One Redis connection with deliberate timeouts, reconnected on failure
//! (I6 under Redis trouble: bounded waits, never a hung writer).
//!
//! Each task (shipper, lease, snapshots) owns its link, so a multi-megabyte
//! snapshot write never queues a commit behind it and a stuck commit never
//! delays a lease renewal.
//!
//! Timeouts, and why (the redis crate's defaults are 1 s connect, 500 ms
//! response):
//! - connect, 1 s ([`Options::connect_timeout`](super::Options)): Redis sits on
//!   the same network; a connect that takes longer is a Redis that is down,
//!   and the sync writer's budget is 2 s, so one failed attempt plus a retry
//!   must fit in it.
//! - response, 1.5 s on the shipping link: a batch is bounded (10 000 entries,
//!   4 MiB), so a healthy Redis answers in milliseconds; 500 ms would trip on a
//!   fork or an AOF rewrite stall and churn connections for nothing, while
//!   anything past the 2 s commit timeout helps no waiter. A timed-out batch is
//!   simply retried: the append script skips what Redis already has.
//! - response, lease link: a third of the lease TTL, so a stuck renewal is
//!   abandoned before the next one is due.
//! - response, 30 s on the bulk link (snapshots, recovery): a snapshot can be
//!   tens of MB; giving up early would only redo the work.

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::Shared;

pub(crate) struct Link {
    shared: Arc<Shared>,
    /// Which task owns it, for the log ("shipper", "lease", …).
    role: &'static str,
    config: AsyncConnectionConfig,
    /// Connect and response timeouts, also for the Sentinel queries.
    timeouts: (Duration, Duration),
    conn: Option<MultiplexedConnection>,
    connected_before: bool,
}

impl Link {
    pub fn new(shared: Arc<Shared>, role: &'static str, response_timeout: Duration) -> Self {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(shared.opts.connect_timeout))
            .set_response_timeout(Some(response_timeout));
        let timeouts = (shared.opts.connect_timeout, response_timeout);
        Link {
            shared,
            role,
            config,
            timeouts,
            conn: None,
            connected_before: false,
        }
    }

    /// The connection, opened if needed (with Sentinel: to the master it
    /// names now, so a reconnect follows a failover).
    pub async fn get(&mut self) -> Result<&mut MultiplexedConnection, RedisError> {
        let conn = match self.conn.take() {
            Some(c) => c,
            None => {
                let c = match self
                    .shared
                    .endpoint
                    .connect(&self.config, self.timeouts)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        // Callers retry with backoff and say once that Redis
                        // is down; each attempt is only worth a debug line.
                        tracing::debug!(link = self.role, error = %e, "replication: connecting to Redis failed");
                        return Err(e);
                    }
                };
                if self.connected_before {
                    let n = self.shared.reconnects.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::info!(
                        link = self.role,
                        reconnects_total = n,
                        "replication: reconnected to Redis"
                    );
                } else {
                    tracing::debug!(link = self.role, "replication: connected to Redis");
                }
                self.connected_before = true;
                c
            }
        };
        Ok(self.conn.insert(conn))
    }

    /// [`reset`](Self::reset) after `e`, saying so when the node turned
    /// read-only: a primary demoted to replica by a failover answers
    /// `READONLY`, and the next [`get`](Self::get) resolves the master again.
    pub fn failed(&mut self, e: &RedisError) {
        if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly) {
            tracing::warn!(
                link = self.role,
                "replication: Redis answered READONLY (it is a replica now: failover); \
                 reconnecting to the current primary"
            );
        }
        self.reset();
    }

    /// Whether [`reset`](Self::reset) then [`get`](Self::get) may land on
    /// another node (Sentinel): worth doing when this one looks demoted.
    pub fn resolves(&self) -> bool {
        self.shared.endpoint.resolves()
    }

    /// Drops the connection after an error: a timed-out request may still be
    /// answered later on it, and a fresh connection has no such leftovers.
    /// Every caller does this on every error, `READONLY` included, so a
    /// connection to a demoted primary never outlives its first refusal.
    pub fn reset(&mut self) {
        if self.conn.take().is_some() {
            tracing::debug!(
                link = self.role,
                "replication: dropped the Redis connection after an error"
            );
        }
    }
}

/// Exponential backoff with jitter, 50 ms doubling to 2 s.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    seed: u64,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(2);

    pub fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        Backoff {
            next: Self::FIRST,
            seed,
        }
    }

    /// The next delay: the current step plus up to 50% jitter, so several
    /// servers do not reconnect in lockstep.
    pub fn step(&mut self) -> Duration {
        // xorshift64: plenty for jitter.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        let jitter_ms = self.seed % (base.as_millis() as u64 / 2 + 1);
        base + Duration::from_millis(jitter_ms)
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}
