//! Store identity: the half of I8 that says a wiped or failed-over Redis
//! fails closed.
//!
//! `<prefix>:store` holds a random 128-bit id, made by the lease script on
//! first use. Every server remembers the id it saw and every write script
//! checks it with the epoch (see `scripts::fence!`). A keyspace that lost
//! acknowledged state is quarantined: the key then reads
//! `quarantined:<old id>:<reason>` and every server refuses it, a fresh one
//! too, until an operator starts a new store on purpose with
//! `boxoffice store new` ([`start_new`]). That command keeps whatever data
//! is there; servers that saw the old store keep refusing until restarted.

use super::recover::pairs;
use super::scripts::{self, items, text, uint};
use super::ReplicateError;
use redis::AsyncConnectionConfig;
use std::fmt;
use std::time::Duration;

/// The marker a quarantined `<prefix>:store` starts with.
pub const QUARANTINE_PREFIX: &str = "quarantined:";

/// A fresh store id: 128 random bits, hex.
pub(crate) fn new_id() -> Result<String, ReplicateError> {
    let mut r = [0u8; 16];
    // An identity must be unique: no fallback to weaker sources.
    getrandom::fill(&mut r).map_err(|e| ReplicateError::Random(e.to_string()))?;
    Ok(r.iter().map(|b| format!("{b:02x}")).collect())
}

/// What `<prefix>:store` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreState {
    /// No store id: a new Redis (or keys of a version before store ids, or
    /// a wiped Redis no server noticed).
    Missing,
    /// A live store.
    Id(String),
    /// A server found the keyspace lost acknowledged state.
    Quarantined { id: String, reason: String },
}

impl StoreState {
    fn parse(v: Option<&str>) -> Self {
        match v {
            None | Some("") => StoreState::Missing,
            Some(s) => match s.strip_prefix(QUARANTINE_PREFIX) {
                Some(rest) => {
                    let (id, reason) = rest.split_once(':').unwrap_or((rest, ""));
                    StoreState::Quarantined {
                        id: id.to_string(),
                        reason: reason.to_string(),
                    }
                }
                None => StoreState::Id(s.to_string()),
            },
        }
    }
}

impl fmt::Display for StoreState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreState::Missing => write!(f, "no store id"),
            StoreState::Id(id) => write!(f, "store {id}"),
            StoreState::Quarantined { id, reason } => {
                write!(f, "QUARANTINED (was store {id}): {reason}")
            }
        }
    }
}

/// What a keyspace holds, as `boxoffice store new` prints it.
#[derive(Clone, Debug)]
pub struct Found {
    pub store: StoreState,
    /// `<prefix>:epoch` as stored (None: absent).
    pub epoch: Option<String>,
    /// Per shard: the highest `seq` in its log.
    pub heads: Vec<(usize, u64)>,
    /// The writer lease holder, if one holds it now.
    pub lease: Option<String>,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  {}", self.store)?;
        writeln!(f, "  epoch: {}", self.epoch.as_deref().unwrap_or("none"))?;
        if self.heads.is_empty() {
            writeln!(f, "  journal: empty (no shard has entries)")?;
        } else {
            for (shard, head) in &self.heads {
                writeln!(f, "  shard {shard}: {head} entries")?;
            }
        }
        match &self.lease {
            Some(owner) => write!(f, "  writer lease: held by {owner}"),
            None => write!(f, "  writer lease: free"),
        }
    }
}

/// What [`start_new`] did.
#[derive(Clone, Debug)]
pub struct Started {
    pub previous: StoreState,
    pub id: String,
    pub epoch: u64,
}

/// The primary, for `redis://` and `redis+sentinel://` URLs alike.
async fn connect(url: &str) -> Result<redis::aio::MultiplexedConnection, ReplicateError> {
    let endpoint = super::endpoint::Endpoint::parse(url).map_err(ReplicateError::Url)?;
    let (connect, response) = (Duration::from_secs(2), Duration::from_secs(5));
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect))
        .set_response_timeout(Some(response));
    Ok(endpoint.connect(&config, (connect, response)).await?)
}

/// Reads the store id (or quarantine), epoch, heads and lease of `prefix`.
pub async fn inspect(url: &str, prefix: &str) -> Result<Found, ReplicateError> {
    let keys = super::keys::Keys::new(prefix);
    let mut conn = connect(url).await?;
    let values: redis::Value = redis::cmd("MGET")
        .arg(keys.store())
        .arg(keys.epoch())
        .arg(keys.lease())
        .query_async(&mut conn)
        .await?;
    let [store, epoch, lease] = items(&values).ok_or(ReplicateError::Reply("MGET"))? else {
        return Err(ReplicateError::Reply("MGET"));
    };
    let heads_reply: redis::Value = redis::cmd("HGETALL")
        .arg(keys.heads())
        .query_async(&mut conn)
        .await?;
    let mut heads = Vec::new();
    for (field, value) in pairs(&heads_reply).ok_or(ReplicateError::Reply("HGETALL heads"))? {
        let shard = text(field)
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or(ReplicateError::Reply("HGETALL heads"))?;
        heads.push((
            shard,
            uint(value).ok_or(ReplicateError::Reply("HGETALL heads"))?,
        ));
    }
    heads.sort_unstable();
    Ok(Found {
        store: StoreState::parse(text(store)),
        epoch: text(epoch).map(str::to_string),
        heads,
        lease: text(lease).map(str::to_string),
    })
}

/// Starts a new store on purpose over whatever `prefix` holds: clears a
/// quarantine, writes a fresh store id and sets the epoch to
/// `max(stored, unix ms now)`, in one script. The data stays; servers that
/// saw the old store keep refusing until restarted.
pub async fn start_new(url: &str, prefix: &str) -> Result<Started, ReplicateError> {
    let keys = super::keys::Keys::new(prefix);
    let id = new_id()?;
    let mut conn = connect(url).await?;
    let reply: redis::Value = scripts::STORE_NEW
        .key(keys.store())
        .key(keys.epoch())
        .arg(&id)
        .arg(super::lease::unix_ms())
        .invoke_async(&mut conn)
        .await?;
    let [previous, epoch] = items(&reply).ok_or(ReplicateError::Reply("store new"))? else {
        return Err(ReplicateError::Reply("store new"));
    };
    Ok(Started {
        previous: StoreState::parse(text(previous)),
        id,
        epoch: uint(epoch).ok_or(ReplicateError::Reply("store new"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_values_parse() {
        assert_eq!(StoreState::parse(None), StoreState::Missing);
        assert_eq!(
            StoreState::parse(Some("ab12")),
            StoreState::Id("ab12".into())
        );
        assert_eq!(
            StoreState::parse(Some("quarantined:ab12:the epoch went back from 5 to 4")),
            StoreState::Quarantined {
                id: "ab12".into(),
                reason: "the epoch went back from 5 to 4".into()
            }
        );
        let id = new_id().expect("randomness");
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, new_id().expect("randomness"));
    }
}
