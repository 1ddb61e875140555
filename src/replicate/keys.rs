//! Redis key names (part of I6: the layout recovery reads is the one the
//! writer writes). One place, so the layout docs/operations.md describes is
//! the one the code uses.

#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    /// Store identity: a random id made on first use (or
    /// `quarantined:<id>:<reason>` once a server found the keyspace lost
    /// acknowledged state). Checked by every write, with the epoch.
    pub fn store(&self) -> String {
        format!("{}:store", self.prefix)
    }

    /// Fencing epoch: raised by every lease acquisition (never lowered),
    /// checked by every write.
    pub fn epoch(&self) -> String {
        format!("{}:epoch", self.prefix)
    }

    /// Writer lease: the owner's name, with a TTL.
    pub fn lease(&self) -> String {
        format!("{}:lease", self.prefix)
    }

    /// Hash shard -> highest `seq` appended to that shard's log.
    pub fn heads(&self) -> String {
        format!("{}:heads", self.prefix)
    }

    /// Hash: `format` (journal format version), `shards` (shard count).
    pub fn meta(&self) -> String {
        format!("{}:meta", self.prefix)
    }

    /// Stream of shard `i`'s journal entries, id `<seq>-0`, field `e`.
    pub fn log(&self, shard: usize) -> String {
        format!("{}:s{shard}:log", self.prefix)
    }

    /// Stream of business outcomes (events out), field `json`
    /// (src/replicate/outbox.rs).
    pub fn out(&self) -> String {
        format!("{}:out", self.prefix)
    }

    /// Hash: `seq` and `data` (encoded `ShardSnapshot`) of shard `i`.
    pub fn snap(&self, shard: usize) -> String {
        format!("{}:s{shard}:snap", self.prefix)
    }
}
