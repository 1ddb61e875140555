//! Snapshot and restore: one canonical snapshot per shard, and replay of
//! the journal entries after it.
//!
//! Invariant (I6): a restored engine equals the one that recorded the
//! journal; a gap in a shard's `seq`, or an entry that does not apply, is an
//! error, never skipped.

use super::{Engine, EngineConfig};
use crate::journal::Entry;
use crate::shard::{Misfit, Shard, ShardSnapshot};
use crate::time::Timestamp;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// Everything needed to rebuild an engine: one canonical snapshot per shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub shards: Vec<ShardSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("snapshot has {found} shards, the engine is configured with {expected}")]
    ShardCount { found: usize, expected: usize },
    #[error("shard {shard}: expected seq {expected}, found {found}")]
    Gap {
        shard: u32,
        expected: u64,
        found: u64,
    },
    #[error("entry names shard {0}, which does not exist")]
    NoSuchShard(u32),
    #[error("shard {shard}: entry {seq} does not apply: {misfit}")]
    Misfit {
        shard: u32,
        seq: u64,
        misfit: Misfit,
    },
}

impl Engine {
    // ---- snapshot and restore -------------------------------------------

    /// A canonical snapshot of every shard (each shard read under its lock;
    /// each carries the `seq` it includes).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            shards: self.shards.iter().map(|s| s.read().to_snapshot()).collect(),
        }
    }

    /// Snapshot of one shard.
    pub fn snapshot_shard(&self, shard: usize) -> Option<ShardSnapshot> {
        self.shards.get(shard).map(|s| s.read().to_snapshot())
    }

    /// Rebuilds an engine from a snapshot and the entries recorded after it
    /// (entries at or before a shard's snapshot `seq` are skipped; a gap is an
    /// error). Presence restarts at `now`: nobody is dropped for the downtime.
    pub fn restore(
        cfg: EngineConfig,
        snapshot: Snapshot,
        entries: impl IntoIterator<Item = Entry>,
        now: Timestamp,
    ) -> Result<Engine, RestoreError> {
        if snapshot.shards.len() != cfg.shards.get() {
            return Err(RestoreError::ShardCount {
                found: snapshot.shards.len(),
                expected: cfg.shards.get(),
            });
        }
        let mut shards: Vec<Shard> = snapshot
            .shards
            .into_iter()
            .map(|s| {
                Shard::from_snapshot(
                    s,
                    cfg.journal,
                    cfg.idempotency_window_ms,
                    cfg.idempotency_max_keys,
                    cfg.secret,
                    now,
                )
            })
            .collect();
        for entry in entries {
            let shard = shards
                .get_mut(entry.shard as usize)
                .ok_or(RestoreError::NoSuchShard(entry.shard))?;
            if entry.seq <= shard.seq {
                continue;
            }
            shard.replay(&entry).map_err(|misfit| match misfit {
                Misfit::Gap { expected } => RestoreError::Gap {
                    shard: entry.shard,
                    expected,
                    found: entry.seq,
                },
                misfit => RestoreError::Misfit {
                    shard: entry.shard,
                    seq: entry.seq,
                    misfit,
                },
            })?;
        }
        // Presence is not journaled: whoever was waiting gets a fresh idle
        // window from the restore instant, so downtime drops nobody.
        for shard in &mut shards {
            for e in shard.events.values_mut() {
                if let Some(room) = &mut e.room {
                    room.refresh_presence(now);
                }
            }
        }
        Ok(Engine::from_parts(
            cfg,
            shards.into_iter().map(RwLock::new).collect(),
        ))
    }

    /// An engine with no state, to restore into when there is no snapshot.
    pub fn empty_snapshot(shards: usize) -> Snapshot {
        Snapshot {
            shards: (0..shards)
                .map(|i| ShardSnapshot {
                    index: i as u32,
                    seq: 0,
                    clock: Timestamp::ZERO,
                    events: vec![],
                    coupons: vec![],
                    idempotency: vec![],
                })
                .collect(),
        }
    }
}
