//! Recovery: the latest snapshot of each shard plus the log entries after it.
//!
//! Owns the loading half of I6: what comes back is exactly what Redis
//! acknowledged. Everything read is checked (format version, shard count,
//! snapshot index, consecutive `seq`s, the log reaching the recorded head), so
//! a damaged or foreign keyspace is refused with a reason, never half-loaded.

use super::link::{Backoff, Link};
use super::scripts::{self, bytes, items, tagged, text, uint};
use super::{ReplicateError, Shared};
use boxoffice_engine::journal::{self, Entry, FORMAT_VERSION};
use boxoffice_engine::{Engine, ShardSnapshot, Snapshot};
use redis::{ErrorKind, RedisError, ServerErrorKind, Value};
use std::sync::Arc;

pub(crate) struct Loaded {
    pub snapshot: Snapshot,
    pub entries: Vec<Entry>,
    /// Per shard: the `seq` of the snapshot in Redis (0: none).
    pub snap_seqs: Vec<u64>,
}

/// Worth retrying: the connection, not the data, is the problem.
pub(crate) fn transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::BusyLoading)
                | ErrorKind::Server(ServerErrorKind::TryAgain)
                | ErrorKind::Server(ServerErrorKind::MasterDown)
        )
}

/// Loads every shard; retries (with backoff) while Redis is unreachable.
pub(crate) async fn load(shared: &Arc<Shared>, shards: usize) -> Result<Loaded, ReplicateError> {
    let mut link = Link::new(
        shared.clone(),
        "recovery",
        shared.opts.bulk_response_timeout,
    );
    let mut backoff = Backoff::new();
    loop {
        match load_once(shared, &mut link, shards).await {
            Err(ReplicateError::Redis(e)) if transient(&e) => {
                tracing::warn!(error = %e, "replication: recovery interrupted; retrying");
                link.reset();
                tokio::time::sleep(backoff.step()).await;
            }
            other => return other,
        }
    }
}

async fn load_once(
    shared: &Arc<Shared>,
    link: &mut Link,
    shards: usize,
) -> Result<Loaded, ReplicateError> {
    let keys = &shared.keys;
    let epoch = shared.epoch.load(std::sync::atomic::Ordering::Acquire);
    let conn = link.get().await?;
    let meta: Value = scripts::META
        .key(keys.store())
        .key(keys.epoch())
        .key(keys.meta())
        .arg(shared.store_arg())
        .arg(epoch)
        .arg(FORMAT_VERSION.to_string())
        .arg(shards)
        .invoke_async(conn)
        .await?;
    match tagged(&meta) {
        Some(("OK", [format, count, ..])) => {
            let format = text(format).unwrap_or("?");
            if format != FORMAT_VERSION.to_string() {
                return Err(ReplicateError::Format {
                    found: format.to_string(),
                    expected: FORMAT_VERSION,
                });
            }
            let count = uint(count).ok_or(ReplicateError::Reply("meta"))?;
            if count != shards as u64 {
                return Err(ReplicateError::ShardCount {
                    found: count,
                    expected: shards,
                });
            }
        }
        Some((tag, rest)) => {
            return Err(match scripts::refused(tag, rest) {
                Some(scripts::Refused::Fenced(_)) => ReplicateError::Fenced,
                Some(scripts::Refused::Lost(m)) => ReplicateError::StoreLost(m),
                Some(scripts::Refused::Changed(id)) => ReplicateError::StoreChanged(id),
                None => ReplicateError::Reply("meta"),
            })
        }
        None => return Err(ReplicateError::Reply("meta")),
    }

    let heads_reply: Value = redis::cmd("HGETALL")
        .arg(keys.heads())
        .query_async(conn)
        .await?;
    let mut heads = vec![0u64; shards];
    for (field, value) in pairs(&heads_reply).ok_or(ReplicateError::Reply("HGETALL heads"))? {
        let shard = text(field)
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or(ReplicateError::Reply("HGETALL heads"))?;
        let head = uint(value).ok_or(ReplicateError::Reply("HGETALL heads"))?;
        let slot = heads.get_mut(shard).ok_or(ReplicateError::Inconsistent {
            shard,
            detail: format!("a head is recorded for shard {shard} of {shards}"),
        })?;
        *slot = head;
    }

    let mut snapshot = Engine::empty_snapshot(shards);
    let mut snap_seqs = vec![0u64; shards];
    let mut entries = Vec::new();
    for shard in 0..shards {
        let conn = link.get().await?;
        let snap: Value = redis::cmd("HMGET")
            .arg(keys.snap(shard))
            .arg("seq")
            .arg("data")
            .query_async(conn)
            .await?;
        let mut next = 1u64;
        match items(&snap) {
            Some([Value::Nil, Value::Nil]) => {}
            Some([seq, data]) => {
                let seq = uint(seq).ok_or(ReplicateError::Reply("HMGET snap"))?;
                let data = bytes(data).ok_or(ReplicateError::Reply("HMGET snap"))?;
                let s: ShardSnapshot =
                    journal::decode(data).map_err(|source| ReplicateError::Decode {
                        shard,
                        what: "snapshot",
                        source,
                    })?;
                if s.index as usize != shard || s.seq != seq {
                    return Err(ReplicateError::Inconsistent {
                        shard,
                        detail: format!(
                            "the snapshot stored for it is of shard {} at seq {} (recorded: {seq})",
                            s.index, s.seq
                        ),
                    });
                }
                next = seq + 1;
                snap_seqs[shard] = seq;
                if let Some(slot) = snapshot.shards.get_mut(shard) {
                    *slot = s;
                }
            }
            _ => return Err(ReplicateError::Reply("HMGET snap")),
        }
        let head = heads[shard];
        if next > head + 1 {
            return Err(ReplicateError::Inconsistent {
                shard,
                detail: format!(
                    "the snapshot is at seq {} but the log head is {head}",
                    next - 1
                ),
            });
        }
        while next <= head {
            let conn = link.get().await?;
            let page: Value = redis::cmd("XRANGE")
                .arg(keys.log(shard))
                .arg(format!("{next}-0"))
                .arg("+")
                .arg("COUNT")
                .arg(shared.opts.recovery_page.max(1))
                .query_async(conn)
                .await?;
            let page = items(&page).ok_or(ReplicateError::Reply("XRANGE"))?;
            if page.is_empty() {
                break;
            }
            for item in page {
                let (id_seq, data) = stream_entry(item).ok_or(ReplicateError::Reply("XRANGE"))?;
                let entry: Entry =
                    journal::decode(data).map_err(|source| ReplicateError::Decode {
                        shard,
                        what: "journal entry",
                        source,
                    })?;
                if id_seq != next || entry.seq != next || entry.shard as usize != shard {
                    return Err(ReplicateError::Inconsistent {
                        shard,
                        detail: format!(
                            "expected entry {next}, found id {id_seq} holding shard {} seq {}",
                            entry.shard, entry.seq
                        ),
                    });
                }
                entries.push(entry);
                next += 1;
            }
        }
        if next != head + 1 {
            return Err(ReplicateError::Inconsistent {
                shard,
                detail: format!("the log ends at seq {} but its head is {head}", next - 1),
            });
        }
    }
    Ok(Loaded {
        snapshot,
        entries,
        snap_seqs,
    })
}

/// Field/value pairs of a hash reply (RESP2 flat array or RESP3 map).
pub(crate) fn pairs(v: &Value) -> Option<Vec<(&Value, &Value)>> {
    match v {
        Value::Map(m) => Some(m.iter().map(|(k, v)| (k, v)).collect()),
        Value::Array(a) if a.len() % 2 == 0 => {
            Some(a.chunks_exact(2).map(|p| (&p[0], &p[1])).collect())
        }
        _ => None,
    }
}

/// `[id, [field, value, …]]` → (seq of `<seq>-0`, value of field `e`).
fn stream_entry(v: &Value) -> Option<(u64, &[u8])> {
    let [id, fields] = items(v)? else {
        return None;
    };
    let seq = text(id)?.strip_suffix("-0")?.parse().ok()?;
    let fields = items(fields)?;
    let data = fields
        .chunks_exact(2)
        .find(|p| bytes(&p[0]) == Some(b"e"))
        .and_then(|p| bytes(&p[1]))?;
    Some((seq, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_entries_parse_and_junk_is_refused() {
        let b = |s: &[u8]| Value::BulkString(s.to_vec());
        let ok = Value::Array(vec![b(b"42-0"), Value::Array(vec![b(b"e"), b(b"\x01xyz")])]);
        assert_eq!(stream_entry(&ok), Some((42, &b"\x01xyz"[..])));
        let wrong_id = Value::Array(vec![b(b"42-1"), Value::Array(vec![b(b"e"), b(b"x")])]);
        assert_eq!(stream_entry(&wrong_id), None);
        let no_field = Value::Array(vec![b(b"42-0"), Value::Array(vec![b(b"f"), b(b"x")])]);
        assert_eq!(stream_entry(&no_field), None);
        assert_eq!(stream_entry(&Value::Nil), None);
        assert_eq!(stream_entry(&Value::Array(vec![b(b"1-0")])), None);
    }
}
