//! The durability seam (I6).
//!
//! Every state-changing request is first admitted ([`Durability::admit`]:
//! with Redis, refused while this server is not the writer, Redis is known to
//! be down in sync mode, or the async backlog is full), then, in the one
//! commit path (`AppState::commit`, src/commit.rs), awaits
//! [`Durability::wait`] with the shard and journal `seq` of its engine
//! write's receipt before it answers. Memory mode answers at once;
//! Redis sync mode waits until Redis has stored the shard's journal up to
//! `seq` and fails with [`NotDurable`] when it cannot in time, which the HTTP
//! layer answers with 503 `unavailable` and `Retry-After`.

use crate::replicate::Replicator;

/// How acknowledged changes are kept.
#[derive(Debug, Clone)]
pub enum Durability {
    /// In memory only: a restart loses everything.
    Memory,
    /// Replicated to Redis (sync or async, see `replicate::Mode`).
    Redis(Replicator),
}

/// The change was applied but could not be made durable in time (or, from
/// [`Durability::admit`], may not be made now).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the change could not be stored durably; retry in {retry_after_s} s")]
pub struct NotDurable {
    pub retry_after_s: u64,
    /// Why, when Redis replication refused (for `/readyz/writes`).
    pub reason: Option<crate::replicate::Unavailable>,
}

impl From<crate::replicate::Unavailable> for NotDurable {
    fn from(e: crate::replicate::Unavailable) -> Self {
        NotDurable {
            retry_after_s: e.retry_after_s(),
            reason: Some(e),
        }
    }
}

impl Durability {
    /// Waits until the journal of `shard` is durable up to `seq`.
    pub async fn wait(&self, shard: usize, seq: u64) -> Result<(), NotDurable> {
        match self {
            Durability::Memory => {
                let _ = (shard, seq);
                Ok(())
            }
            Durability::Redis(r) => Ok(r.durable(shard, seq).await?),
        }
    }

    /// Whether a state-changing request may be applied now (checked before
    /// the engine is touched).
    pub fn admit(&self) -> Result<(), NotDurable> {
        match self {
            Durability::Memory => Ok(()),
            Durability::Redis(r) => Ok(r.admit_write()?),
        }
    }

    /// Whether this server holds the writer lease, and the fencing epoch it
    /// writes under (0 unless it holds the lease; memory only: never).
    pub fn lease(&self) -> (bool, u64) {
        match self {
            Durability::Memory => (false, 0),
            Durability::Redis(r) if r.holds_lease() => (true, r.epoch()),
            Durability::Redis(_) => (false, 0),
        }
    }

    /// False while replication is not the active writer (`/readyz`).
    pub fn ready(&self) -> bool {
        match self {
            Durability::Memory => true,
            Durability::Redis(r) => r.ready(),
        }
    }
}
