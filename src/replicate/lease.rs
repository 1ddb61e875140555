//! One writer per Redis: the lease and the fencing epoch (the single-writer
//! half of I6: two servers never both add to one keyspace's history).
//!
//! The lease (`<prefix>:lease`, `SET … PX`, renewed every third of its TTL)
//! keeps a standby from taking over a live writer. Safety does not rest on it
//! (clocks, pauses and partitions can make two servers believe they hold it);
//! it rests on the epoch: taking the lease raises `<prefix>:epoch`, and every
//! write script first checks that the store id and the epoch are still the
//! writer's own. So once a new writer has its epoch, nothing the old one
//! sends lands, and the new writer reads state only after taking it.
//!
//! Epochs never go back: a new one is `max(stored + 1, highest seen + 1,
//! unix ms now)`. The clock term keeps a keyspace that lost its counter from
//! handing out an epoch an old writer still holds; the store id catches the
//! rest (a wiped keyspace has no store id, and a server that saw one refuses
//! to go on without it).

use super::link::{Backoff, Link};
use super::scripts::{self, int, tagged, text, uint};
use super::{replicas, Mode, ReplicateError, Shared, Status};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

fn ttl_ms(s: &Shared) -> u64 {
    (s.opts.lease_ttl.as_millis() as u64).max(100)
}

/// This machine's clock in unix milliseconds: the floor of a new epoch, so
/// epochs grow even across a keyspace that lost its epoch counter. The
/// assumption (docs/operations.md): a new writer's clock is not behind the
/// old writer's by more than the failover time.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Takes the lease, waiting (as a standby) while another server holds it.
/// Returns our fencing epoch, or None once the keyspace turned out lost or
/// changed (the status is then [`Status::StoreLost`], already logged).
pub(crate) async fn acquire_or_wait(shared: &Arc<Shared>) -> Result<Option<u64>, ReplicateError> {
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
                    .key(shared.keys.store())
                    .key(shared.keys.epoch())
                    .key(shared.keys.lease())
                    .arg(shared.store_arg())
                    .arg(shared.seen_epoch.load(Ordering::Acquire))
                    .arg(&shared.owner)
                    .arg(ttl_ms(shared))
                    .arg(unix_ms())
                    .arg(&shared.fresh_store)
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
                    Some(("OK", [epoch, store, ..])) => {
                        let epoch = uint(epoch).ok_or(ReplicateError::Reply("lease acquire"))?;
                        let store = text(store).ok_or(ReplicateError::Reply("lease acquire"))?;
                        shared.saw(store, epoch);
                        if shared.opts.mode == Mode::SyncReplica {
                            replicated_epoch(shared, &mut link, epoch).await?;
                        }
                        tracing::info!(
                            owner = %shared.owner,
                            epoch,
                            store,
                            "replication: took the writer lease"
                        );
                        return Ok(Some(epoch));
                    }
                    Some(("HELD", [owner, pttl, store, epoch, ..])) => {
                        let epoch = uint(epoch).ok_or(ReplicateError::Reply("lease acquire"))?;
                        let store = text(store).ok_or(ReplicateError::Reply("lease acquire"))?;
                        shared.saw(store, epoch);
                        shared.set_status(Status::Standby);
                        if !said_waiting {
                            tracing::info!(
                                holder = text(owner).unwrap_or("?"),
                                lease_left_ms = int(pttl).unwrap_or(-1),
                                store,
                                epoch,
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
                    Some((tag, rest)) => match scripts::refused(tag, rest) {
                        Some(found) => {
                            shared.lose_store(&found);
                            return Ok(None);
                        }
                        None => return Err(ReplicateError::Reply("lease acquire")),
                    },
                    None => return Err(ReplicateError::Reply("lease acquire")),
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

/// Renews the lease until shutdown; deposes this server if the epoch moved
/// on, and fails closed if the keyspace lost its store (this is how a writer
/// with no writes notices a wiped Redis: within a third of the lease TTL).
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
                    .key(shared.keys.store())
                    .key(shared.keys.epoch())
                    .key(shared.keys.lease())
                    .arg(shared.store_arg())
                    .arg(epoch)
                    .arg(&shared.owner)
                    .arg(ttl_ms(&shared))
                    .invoke_async(conn)
                    .await
            }
            Err(e) => Err(e),
        };
        let outcome = reply
            .as_ref()
            .map(|v| tagged(v).map(|(tag, rest)| (tag == "OK", scripts::refused(tag, rest))));
        match outcome {
            Ok(Some((true, _))) => {
                if said_down {
                    tracing::info!(epoch, "replication: writer lease renewed again");
                }
                said_down = false;
            }
            Ok(Some((false, Some(found)))) => {
                shared.lose_store(&found);
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
            .key(shared.keys.store())
            .key(shared.keys.epoch())
            .key(shared.keys.lease())
            .arg(shared.store_arg())
            .arg(epoch)
            .arg(&shared.owner)
            .invoke_async(conn)
            .await;
        if let Ok(Some(("OK", _))) = r.as_ref().map(tagged) {
            tracing::info!(epoch, "replication: writer lease released");
        }
    }
}
