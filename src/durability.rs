//! The durability seam (I6 once replication lands).
//!
//! Every state-changing request awaits [`Durability::wait`] after its engine
//! operation and before it answers, with the shard's journal `seq` at that
//! point. Memory mode answers at once. Replication (a later issue) adds a
//! variant that waits until Redis has stored the shard's journal up to `seq`
//! (sync) and fails with [`NotDurable`] while Redis is away, which the HTTP
//! layer answers with 503 `unavailable` and `Retry-After`.

/// How acknowledged changes are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// In memory only: a restart loses everything.
    Memory,
}

/// The change was applied but could not be made durable in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the change could not be stored durably; retry in {retry_after_s} s")]
pub struct NotDurable {
    pub retry_after_s: u64,
}

impl Durability {
    /// Waits until the journal of `shard` is durable up to `seq`.
    pub async fn wait(&self, shard: usize, seq: u64) -> Result<(), NotDurable> {
        match self {
            Durability::Memory => {
                let _ = (shard, seq);
                Ok(())
            }
        }
    }
}
