//! One writer per Redis: the lease and the fencing epoch (the single-writer
//! half of I6: two servers never both add to one keyspace's history).
//!
//! The lease (`<prefix>:lease`, `SET … PX`, renewed every third of its TTL)
//! keeps a standby from taking over a live writer. Safety does not rest on it
//! (clocks, pauses and partitions can make two servers believe they hold it);
//! it rests on the epoch: taking the lease `INCR`s `<prefix>:epoch`, and every
//! write script first checks that the epoch is still the writer's own. So once
//! a new writer has its epoch, nothing the old one sends lands, and the new
//! writer reads state only after taking it.

use super::link::{Backoff, Link};
use super::scripts::{self, int, tagged, text, uint};
use super::{replicas, Mode, ReplicateError, Shared, Status};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

fn ttl_ms(s: &Shared) -> u64 {
    (s.opts.lease_ttl.as_millis() as u64).max(100)
}

/// Takes the lease, waiting (as a standby) while another server holds it.
/// Returns our fencing epoch.
pub(crate) async fn acquire_or_wait(shared: &Arc<Shared>) -> Result<u64, ReplicateError> {
    let poll = (shared.opts.lease_ttl / 5).max(Duration::from_millis(20));
    let mut link = Link::new(
        shared.clone(),
        "lease",
        shared.opts.connect_timeout.max(poll),
    );
    let mut backoff = Backoff::new();
    let mut said_waiting = false;
    let mut said_down = false;
    loop {
        if shared.status() == Status::Closed {
            return Err(ReplicateError::State(Status::Closed));
        }
        let reply: Result<redis::Value, _> = match link.get().await {
            Ok(conn) => {
                scripts::ACQUIRE
                    .key(shared.keys.lease())
                    .key(shared.keys.epoch())
                    .arg(&shared.owner)
                    .arg(ttl_ms(shared))
                    .invoke_async(conn)
                    .await
            }
            Err(e) => Err(e),
        };
        match reply {
            Ok(v) => {
                backoff.reset();
                said_down = false;
                match tagged(&v) {
                    Some(("OK", [epoch, ..])) => {
                        let epoch = uint(epoch).ok_or(ReplicateError::Reply("lease acquire"))?;
                        if shared.opts.mode == Mode::SyncReplica {
                            replicated_epoch(shared, &mut link, epoch).await?;
                        }
                        tracing::info!(
                            owner = %shared.owner,
                            epoch,
                            "replication: took the writer lease"
                        );
                        return Ok(epoch);
                    }
                    Some(("HELD", [owner, pttl, ..])) => {
                        shared.set_status(Status::Standby);
                        if !said_waiting {
                            tracing::info!(
                                holder = text(owner).unwrap_or("?"),
                                lease_left_ms = int(pttl).unwrap_or(-1),
                                "replication: standby; another server holds the writer lease, \
                                 waiting for it"
                            );
                            said_waiting = true;
                        }
                        // Try again soon after it would expire, but poll at
                        // least every `poll` in case it is released.
                        let left = Duration::from_millis(int(pttl).unwrap_or(0).max(0) as u64);
                        tokio::time::sleep(poll.min(left + Duration::from_millis(10))).await;
                    }
                    _ => return Err(ReplicateError::Reply("lease acquire")),
                }
            }
            Err(e) => {
                link.reset();
                if !said_down {
                    tracing::warn!(
                        error = %e,
                        "replication: cannot reach Redis to take the writer lease; retrying"
                    );
                    said_down = true;
                }
                tokio::time::sleep(backoff.step()).await;
            }
        }
    }
}

/// [`Mode::SyncReplica`]: waits until enough replicas acknowledged the
/// `INCR` of our new epoch, before this server reads or writes anything. A
/// failover that promotes a replica which acknowledged then never brings back
/// an epoch older than ours while we acknowledge writes (the old writer's
/// epoch would pass its scripts again). Retried until it holds; a lease
/// that lapses meanwhile is re-taken by the renewal (the epoch is still
/// ours) or taken by another server, whose epoch then fences us.
async fn replicated_epoch(
    shared: &Arc<Shared>,
    link: &mut Link,
    epoch: u64,
) -> Result<(), ReplicateError> {
    let response = shared.opts.connect_timeout.max(Duration::from_secs(1));
    let mut said = false;
    let mut backoff = Backoff::new();
    loop {
        if shared.status() == Status::Closed {
            return Err(ReplicateError::State(Status::Closed));
        }
        // A new connection after an error is fine: the barrier in
        // `replicas::wait` covers what earlier connections wrote.
        let r = match link.get().await {
            Ok(conn) => replicas::wait(conn, shared, response).await,
            Err(e) => Err(e),
        };
        match r {
            Ok(n) if n >= u64::from(shared.opts.replicas) => {
                if said {
                    tracing::info!(
                        epoch,
                        replicas = n,
                        "replication: replicas acknowledged the new epoch"
                    );
                }
                return Ok(());
            }
            Ok(n) => {
                shared.replica_shortfalls.fetch_add(1, Ordering::Relaxed);
                if !said {
                    tracing::warn!(
                        epoch,
                        replicas = n,
                        wanted = shared.opts.replicas,
                        "replication: took the lease but too few replicas acknowledged the new \
                         epoch (WAIT); not recovering until they do"
                    );
                    said = true;
                }
            }
            Err(e) => {
                link.failed(&e);
                if !said {
                    tracing::warn!(error = %e, epoch, "replication: waiting for replicas to acknowledge the new epoch failed; retrying");
                    said = true;
                }
                tokio::time::sleep(backoff.step()).await;
            }
        }
    }
}

/// Renews the lease until shutdown; deposes this server if the epoch moved on.
pub(crate) async fn renew_loop(shared: Arc<Shared>) {
    let every = (shared.opts.lease_ttl / 3).max(Duration::from_millis(10));
    let mut link = Link::new(shared.clone(), "lease", every);
    let mut said_down = false;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if shared.status() != Status::Active {
            return;
        }
        let epoch = shared.epoch.load(Ordering::Acquire);
        let reply: Result<redis::Value, _> = match link.get().await {
            Ok(conn) => {
                scripts::RENEW
                    .key(shared.keys.lease())
                    .key(shared.keys.epoch())
                    .arg(&shared.owner)
                    .arg(ttl_ms(&shared))
                    .arg(epoch)
                    .invoke_async(conn)
                    .await
            }
            Err(e) => Err(e),
        };
        match reply.as_ref().map(uint) {
            Ok(Some(1)) => {
                if said_down {
                    tracing::info!(epoch, "replication: writer lease renewed again");
                }
                said_down = false;
            }
            Ok(Some(0)) => {
                shared.depose("the fencing epoch in Redis is no longer ours: another server took the lease, or Redis lost its data");
                return;
            }
            Ok(_) => {
                // Not a reply the script gives; treat like a failed call.
                tracing::warn!(
                    epoch,
                    "replication: unexpected reply to the lease renewal; reconnecting"
                );
                link.reset();
            }
            Err(e) => {
                link.reset();
                if !said_down {
                    tracing::warn!(
                        error = %e,
                        epoch,
                        lease_ttl_ms = ttl_ms(&shared),
                        "replication: cannot renew the writer lease; retrying"
                    );
                    said_down = true;
                }
            }
        }
    }
}

/// Gives the lease up (graceful shutdown) so a standby need not wait for it to
/// expire. Best effort: if it fails, the lease simply expires.
pub(crate) async fn release(shared: &Arc<Shared>) {
    let mut link = Link::new(shared.clone(), "lease", Duration::from_secs(1));
    let epoch = shared.epoch.load(Ordering::Acquire);
    if let Ok(conn) = link.get().await {
        let r: Result<redis::Value, _> = scripts::RELEASE
            .key(shared.keys.lease())
            .key(shared.keys.epoch())
            .arg(&shared.owner)
            .arg(epoch)
            .invoke_async(conn)
            .await;
        if r.is_ok() {
            tracing::info!(epoch, "replication: writer lease released");
        }
    }
}
