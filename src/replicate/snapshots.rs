//! Periodic shard snapshots, so recovery time and Redis memory stay bounded.
//!
//! Part of I6: a snapshot at `seq` s is written only once the log holds s
//! (the script refuses otherwise), then `XTRIM MINID s+1` drops the entries it
//! covers. Recovery reads the snapshot and the entries after it, so at any
//! instant Redis holds a complete history from some snapshot on.

use super::link::Link;
use super::metrics;
use super::scripts::{self, tagged};
use super::{EngineHost, Shared, Status};
use boxoffice_engine::journal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

enum Outcome {
    Written {
        seq: u64,
        bytes: usize,
    },
    /// Not now (the log is not there yet, or a newer snapshot exists).
    Skipped,
    Refused(scripts::Refused),
}

pub(crate) async fn run(shared: Arc<Shared>, host: Arc<dyn EngineHost>) {
    let shards = host.engine().shard_count();
    let mut link = Link::new(
        shared.clone(),
        "snapshots",
        shared.opts.bulk_response_timeout,
    );
    let mut snap_seq = shared.snap_seqs.lock().clone();
    snap_seq.resize(shards, 0);
    let mut last_at = vec![Instant::now(); shards];
    let mut sizes = vec![0usize; shards];
    let every = shared.opts.snapshot_every.max(1);
    let check = (shared.opts.snapshot_interval / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut tick = tokio::time::interval(check);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut said_failing = false;
    loop {
        tick.tick().await;
        if shared.status() != Status::Active {
            return;
        }
        for shard in 0..shards {
            let seq = host.engine().journal_seq(shard);
            let behind = seq.saturating_sub(snap_seq[shard]);
            let due = behind >= every
                || (behind > 0 && last_at[shard].elapsed() >= shared.opts.snapshot_interval);
            if !due {
                continue;
            }
            match snapshot_one(&shared, &host, &mut link, shard).await {
                Ok(Outcome::Written { seq, bytes }) => {
                    snap_seq[shard] = seq;
                    last_at[shard] = Instant::now();
                    sizes[shard] = bytes;
                    let total: usize = sizes.iter().sum();
                    host.with_metrics(&mut || metrics::snapshot_total_bytes(total));
                    said_failing = false;
                }
                Ok(Outcome::Skipped) => {}
                Ok(Outcome::Refused(found)) => {
                    shared.lose_store(&found);
                    return;
                }
                Err(e) => {
                    link.reset();
                    if !said_failing {
                        tracing::warn!(
                            shard,
                            error = %e,
                            "replication: snapshot failed; retrying later"
                        );
                        said_failing = true;
                    }
                    break;
                }
            }
        }
    }
}

async fn snapshot_one(
    shared: &Arc<Shared>,
    host: &Arc<dyn EngineHost>,
    link: &mut Link,
    shard: usize,
) -> Result<Outcome, redis::RedisError> {
    let started = Instant::now();
    // Copying the shard holds its read lock; encoding does not. Both are CPU
    // work that can take a while for a big shard: keep them off the runtime.
    let h = host.clone();
    let taken = tokio::task::spawn_blocking(move || {
        h.engine()
            .snapshot_shard(shard)
            .map(|s| (s.seq, journal::encode(&s)))
    })
    .await;
    let Ok(Some((seq, data))) = taken else {
        return Ok(Outcome::Skipped);
    };
    // Only what the log already has may be snapshotted (see the script).
    if shared.durable_seq(shard) < seq {
        shared.wake.notify_one();
        let Some(tx) = shared.durable.get().and_then(|d| d.get(shard)) else {
            return Ok(Outcome::Skipped);
        };
        let mut rx = tx.subscribe();
        let reached = tokio::time::timeout(shared.opts.commit_timeout, rx.wait_for(|d| *d >= seq));
        if !matches!(reached.await, Ok(Ok(_))) {
            return Ok(Outcome::Skipped);
        }
    }
    let bytes = data.len();
    let conn = link.get().await?;
    let reply: redis::Value = scripts::SNAPSHOT
        .key(shared.keys.store())
        .key(shared.keys.epoch())
        .key(shared.keys.heads())
        .key(shared.keys.snap(shard))
        .key(shared.keys.log(shard))
        .arg(shared.store_arg())
        .arg(shared.epoch.load(Ordering::Acquire))
        .arg(shard)
        .arg(seq)
        .arg(data)
        .arg(format!("{}-0", seq + 1))
        .invoke_async(conn)
        .await?;
    Ok(match tagged(&reply) {
        Some(("OK", _)) => {
            let elapsed = started.elapsed();
            let secs = elapsed.as_secs_f64();
            host.with_metrics(&mut || metrics::snapshot(secs));
            tracing::info!(
                shard,
                seq,
                bytes,
                duration_ms = elapsed.as_millis() as u64,
                "replication: snapshot written; log entries up to it trimmed"
            );
            Outcome::Written { seq, bytes }
        }
        Some((tag, rest)) => match scripts::refused(tag, rest) {
            Some(found) => Outcome::Refused(found),
            None => Outcome::Skipped,
        },
        None => Outcome::Skipped,
    })
}
