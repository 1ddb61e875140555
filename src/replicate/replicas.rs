//! Replica acknowledgement for [`Mode::SyncReplica`](super::Mode): `WAIT`
//! after a write, on the same connection.
//!
//! What `WAIT numreplicas timeout` tells: how many replicas have acknowledged
//! (`REPLCONF ACK`) the replication stream up to this connection's last
//! write. Replicas acknowledge what they received and applied in memory, not
//! what they fsynced; and it makes nothing strongly consistent: a failover
//! may still promote a replica that did not acknowledge (docs/operations.md,
//! "Redis HA"). It is a blocking call: the connection waits up to `timeout`.
//!
//! The barrier: Redis counts from the connection's last write that was
//! propagated. A fresh connection (after an error) whose retried append found
//! everything already there writes nothing, and a bare `WAIT` on it would
//! answer at once with every replica, covering entries that an earlier
//! connection wrote and no replica may have. So each `WAIT` follows a
//! `PUBLISH` on a channel no one needs to read (measured on Redis 7.0: a
//! `PUBLISH` moves the connection's offset to the end of the stream; it
//! creates no key). The replication stream is ordered, so a replica that
//! acknowledged the marker has everything written before it.

use super::Shared;
use redis::aio::MultiplexedConnection;
use redis::{RedisError, Value};
use std::time::Duration;

/// The marker channel, `<prefix>:replicated`.
fn channel(shared: &Shared) -> String {
    format!("{}:replicated", shared.opts.prefix)
}

/// The `WAIT` timeout in ms: the configured one, but at most half the
/// connection's response timeout (so the reply arrives before the client
/// gives up) and never 0 (which would block forever).
fn wait_ms(shared: &Shared, response_timeout: Duration) -> u64 {
    let t = shared.opts.replica_timeout.min(response_timeout / 2);
    (t.as_millis() as u64).max(1)
}

/// Appends the barrier and the `WAIT` to `pipe` (two replies: the `PUBLISH`
/// count, then the number of replicas).
pub(crate) fn add_wait(pipe: &mut redis::Pipeline, shared: &Shared, response_timeout: Duration) {
    pipe.cmd("PUBLISH")
        .arg(channel(shared))
        .arg("1")
        .cmd("WAIT")
        .arg(shared.opts.replicas)
        .arg(wait_ms(shared, response_timeout));
}

/// The replica count of a `WAIT` reply.
pub(crate) fn parse_wait(v: &Value) -> Result<u64, RedisError> {
    match v {
        Value::Int(n) if *n >= 0 => Ok(*n as u64),
        Value::ServerError(e) => Err(e.clone().into()),
        _ => Err(RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "unexpected reply to WAIT",
        ))),
    }
}

/// Barrier plus `WAIT` on `conn`: how many replicas have everything this
/// server wrote so far on any connection.
pub(crate) async fn wait(
    conn: &mut MultiplexedConnection,
    shared: &Shared,
    response_timeout: Duration,
) -> Result<u64, RedisError> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    add_wait(&mut pipe, shared, response_timeout);
    let replies: Vec<Value> = pipe.query_async(conn).await?;
    match replies.as_slice() {
        [Value::ServerError(e), _] => Err(e.clone().into()),
        [_, w] => parse_wait(w),
        _ => Err(RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "unexpected reply to PUBLISH + WAIT",
        ))),
    }
}
