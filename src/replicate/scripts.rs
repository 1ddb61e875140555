//! The Lua scripts that write to Redis, and parsing of their replies.
//!
//! Every write goes through a script so that the fencing check and the write
//! are one atomic step in Redis: a deposed writer's late batch can never land
//! after a new writer took over (the new writer `INCR`ed the epoch before it
//! read anything). Replies are external input: parsed without panics.

use redis::{Script, Value};
use std::sync::LazyLock;

/// Appends journal entries to per-shard streams, and each appended entry's
/// business outcomes to the events-out stream (src/replicate/outbox.rs).
/// KEYS: epoch, heads, then one log stream per shard in the batch, then the
/// events-out stream.
/// ARGV: epoch, then per stream: shard, n, then n × (seq, encoded entry, m,
/// m × outcome JSON); last, the events-out MAXLEN (`~`; 0: none is written).
/// Replies `{'OK', shard, head, …}`, `{'FENCED', epoch}` or `{'GAP', shard, head, first}`.
pub(crate) static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then
  return {'FENCED', cur or ''}
end
local outkey = KEYS[#KEYS]
local maxlen = ARGV[#ARGV]
-- A script stops at its first failing command with the earlier writes kept:
-- an out key that is not a stream (set by hand) must fail the call before
-- anything is written, not after half of it.
if maxlen ~= '0' then
  local t = redis.call('TYPE', outkey)['ok']
  if t ~= 'none' and t ~= 'stream' then
    return redis.error_reply('boxoffice: ' .. outkey .. ' is a ' .. t .. ', not a stream')
  end
end
-- Pass 1: every shard's entries must be consecutive and continue what Redis
-- has (or overlap it, for a retried batch). Nothing is written before all are
-- checked, so a refusal leaves no half-written batch.
local heads = {}
local a = 2
for k = 3, #KEYS - 1 do
  local shard = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  local head = tonumber(redis.call('HGET', KEYS[2], shard) or '0')
  heads[k] = head
  a = a + 2
  local first = nil
  for j = 1, n do
    local seq = tonumber(ARGV[a])
    if first == nil then
      first = seq
      if first > head + 1 then
        return {'GAP', tonumber(shard), head, first}
      end
    elseif seq ~= first + j - 1 then
      return {'GAP', tonumber(shard), head, first}
    end
    a = a + 3 + tonumber(ARGV[a + 2])
  end
end
-- Pass 2: append what Redis does not have yet, each entry with its outcomes
-- (so an outcome is in the out stream exactly when its entry is in the log,
-- and a retried batch adds neither twice). The explicit log id makes Redis
-- itself refuse an out-of-order or duplicate entry as a second guard.
local out = {'OK'}
a = 2
for k = 3, #KEYS - 1 do
  local shard = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  local head = heads[k]
  local last = nil
  for j = 1, n do
    local seq = tonumber(ARGV[a])
    local m = tonumber(ARGV[a + 2])
    if seq > head then
      redis.call('XADD', KEYS[k], ARGV[a] .. '-0', 'e', ARGV[a + 1])
      if maxlen ~= '0' then
        for i = 1, m do
          redis.call('XADD', outkey, 'MAXLEN', '~', maxlen, '*', 'json', ARGV[a + 2 + i])
        end
      end
      head = seq
      last = ARGV[a]
    end
    a = a + 3 + m
  end
  if last then
    redis.call('HSET', KEYS[2], shard, last)
  end
  out[#out + 1] = tonumber(shard)
  out[#out + 1] = head
end
return out
",
    )
});

/// Stores a shard snapshot and trims the log entries it covers.
/// KEYS: epoch, heads, snap, log. ARGV: epoch, shard, seq, data, trim threshold (seq + 1).
/// Replies `{'OK', trimmed}`, `{'FENCED'}`, `{'AHEAD', head}` or `{'STALE', seq}`.
pub(crate) static SNAPSHOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {'FENCED'}
end
local head = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
local seq = tonumber(ARGV[3])
-- A snapshot past the log's head would leave entries that are neither in the
-- log nor safely ordered after it; the shipper always gets there first.
if seq > head then
  return {'AHEAD', head}
end
local cur = tonumber(redis.call('HGET', KEYS[3], 'seq') or '-1')
if seq <= cur then
  return {'STALE', cur}
end
redis.call('HSET', KEYS[3], 'seq', ARGV[3], 'data', ARGV[4])
local trimmed = redis.call('XTRIM', KEYS[4], 'MINID', ARGV[5])
return {'OK', trimmed}
",
    )
});

/// Takes the lease if free (or already ours) and bumps the fencing epoch.
/// KEYS: lease, epoch. ARGV: owner, ttl ms.
/// Replies `{'OK', epoch}` or `{'HELD', owner, pttl}`.
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then
  return {'HELD', cur, redis.call('PTTL', KEYS[1])}
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {'OK', epoch}
",
    )
});

/// Extends our lease; re-takes it if it lapsed (Redis was unreachable) and no
/// one else took it since (the epoch is still ours).
/// KEYS: lease, epoch. ARGV: owner, ttl ms, epoch. Replies 1 (ours) or 0 (fenced).
pub(crate) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[2]) ~= ARGV[3] then
  return 0
end
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
",
    )
});

/// Gives the lease up if it is still ours. KEYS: lease, epoch. ARGV: owner, epoch.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[2]) == ARGV[2] and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
",
    )
});

/// Records the layout (format, shard count) on first use and returns it.
/// KEYS: epoch, meta. ARGV: epoch, format, shards.
/// Replies `{'OK', format, shards}` or `{'FENCED'}`.
pub(crate) static META: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {'FENCED'}
end
local f = redis.call('HGET', KEYS[2], 'format')
local s = redis.call('HGET', KEYS[2], 'shards')
if not f or not s then
  redis.call('HSET', KEYS[2], 'format', ARGV[2], 'shards', ARGV[3])
  return {'OK', ARGV[2], ARGV[3]}
end
return {'OK', f, s}
",
    )
});

/// The items of an array reply.
pub(crate) fn items(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(items) | Value::Set(items) => Some(items),
        _ => None,
    }
}

/// A string-ish reply as bytes.
pub(crate) fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::Okay => Some(b"OK"),
        _ => None,
    }
}

/// A string-ish reply as text.
pub(crate) fn text(v: &Value) -> Option<&str> {
    bytes(v).and_then(|b| std::str::from_utf8(b).ok())
}

/// An integer reply (or a string of decimal digits, as Redis returns for
/// hash fields); negatives are refused.
pub(crate) fn uint(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        other => text(other).and_then(|s| s.parse().ok()),
    }
}

/// A signed integer reply.
pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other).and_then(|s| s.parse().ok()),
    }
}

/// The tag (`'OK'`, `'FENCED'`, …) and the rest of a script's reply.
pub(crate) fn tagged(v: &Value) -> Option<(&str, &[Value])> {
    let all = items(v)?;
    let (tag, rest) = all.split_first()?;
    Some((text(tag)?, rest))
}

/// What the append script said.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Appended {
    /// Per shard in the batch: Redis's head after the call.
    Ok(Vec<(usize, u64)>),
    Fenced {
        epoch: String,
    },
    Gap {
        shard: usize,
        head: u64,
        first: u64,
    },
}

pub(crate) fn parse_append(v: &Value) -> Option<Appended> {
    let (tag, rest) = tagged(v)?;
    match tag {
        "OK" => {
            if rest.len() % 2 != 0 {
                return None;
            }
            rest.chunks_exact(2)
                .map(|p| Some((usize::try_from(uint(&p[0])?).ok()?, uint(&p[1])?)))
                .collect::<Option<Vec<_>>>()
                .map(Appended::Ok)
        }
        "FENCED" => Some(Appended::Fenced {
            epoch: rest.first().and_then(text).unwrap_or("").to_string(),
        }),
        "GAP" => match rest {
            [s, h, f, ..] => Some(Appended::Gap {
                shard: usize::try_from(uint(s)?).ok()?,
                head: uint(h)?,
                first: uint(f)?,
            }),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn append_replies_parse_and_junk_is_refused() {
        let ok = Value::Array(vec![
            b("OK"),
            Value::Int(3),
            Value::Int(17),
            Value::Int(0),
            b("5"),
        ]);
        assert_eq!(parse_append(&ok), Some(Appended::Ok(vec![(3, 17), (0, 5)])));
        let fenced = Value::Array(vec![b("FENCED"), b("9")]);
        assert_eq!(
            parse_append(&fenced),
            Some(Appended::Fenced { epoch: "9".into() })
        );
        let gap = Value::Array(vec![b("GAP"), Value::Int(1), Value::Int(4), Value::Int(9)]);
        assert_eq!(
            parse_append(&gap),
            Some(Appended::Gap {
                shard: 1,
                head: 4,
                first: 9
            })
        );
        for junk in [
            Value::Nil,
            Value::Int(1),
            Value::Array(vec![]),
            Value::Array(vec![b("OK"), Value::Int(1)]),
            Value::Array(vec![b("OK"), Value::Int(-1), Value::Int(2)]),
            Value::Array(vec![b("GAP"), Value::Int(1)]),
            Value::Array(vec![b("WHAT")]),
        ] {
            assert_eq!(parse_append(&junk), None, "{junk:?}");
        }
    }
}
