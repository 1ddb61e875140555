//! The Lua scripts that write to Redis, and parsing of their replies.
//!
//! Every write goes through a script so that the fencing check (store id and
//! epoch, see `fence!`) and the write are one atomic step in Redis: a
//! deposed writer's late batch can never land after a new writer took over
//! (the new writer raised the epoch before it read anything), and nothing
//! lands in a keyspace that lost or changed its store. Replies are external
//! input: parsed without panics.

use redis::{Script, Value};
use std::sync::LazyLock;

/// The fencing check every write script starts with: the keyspace is still
/// the store this writer knows (`KEYS[1]` = `<prefix>:store`, `ARGV[1]` =
/// its id) and the epoch is still the writer's own (`KEYS[2]` =
/// `<prefix>:epoch`, `ARGV[2]`). Store and epoch are checked together, in
/// the same atomic step as the write:
/// - the store key missing, or the epoch lower than ours: the keyspace lost
///   acknowledged state (a wiped Redis, a failover to a replica that missed
///   writes). The script quarantines it (`<prefix>:store` becomes
///   `quarantined:<id>:<reason>`) so no server, new or old, uses it until an
///   operator runs `boxoffice store new`; replies `{'LOST', marker}`.
/// - already quarantined: `{'LOST', marker}`.
/// - another store id: `{'CHANGED', id}` (someone started a new store on
///   purpose; refused, not quarantined).
/// - a higher epoch: another writer took over; `{'FENCED', epoch}`.
macro_rules! fence {
    () => {
        r"
local function quarantine(why)
  local marker = 'quarantined:' .. ARGV[1] .. ':' .. why
  redis.call('SET', KEYS[1], marker)
  return {'LOST', marker}
end
local store = redis.call('GET', KEYS[1])
if store ~= ARGV[1] then
  if not store then
    return quarantine('the store id key is gone (Redis lost its data?)')
  end
  if string.sub(store, 1, 12) == 'quarantined:' then
    return {'LOST', store}
  end
  return {'CHANGED', store}
end
local cur_text = redis.call('GET', KEYS[2])
local cur = tonumber(cur_text or '0') or 0
local mine = tonumber(ARGV[2])
if cur < mine then
  return quarantine('the epoch went back from ' .. ARGV[2] .. ' to ' .. (cur_text or 'nothing'))
end
if cur > mine then
  return {'FENCED', cur_text}
end
"
    };
}

/// Appends journal entries to per-shard streams, and each appended entry's
/// business outcomes to the events-out stream (src/replicate/outbox.rs).
/// KEYS: store, epoch, heads, then one log stream per shard in the batch, then
/// the events-out stream.
/// ARGV: store id, epoch, then per stream: shard, n, then n × (seq, encoded
/// entry, m, m × outcome JSON); last, the events-out MAXLEN (`~`; 0: none is
/// written).
/// Replies `{'OK', shard, head, …}`, a `fence!` refusal, `{'GAP', shard,
/// head, first}` (a batch not consecutive in itself), or `{'LOST', marker}`
/// after quarantining on a gap (Redis has less than it acknowledged to this
/// writer).
pub(crate) static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        fence!(),
        r"
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
-- checked, so a refusal leaves no half-written batch. The writer always sends
-- from the oldest entry Redis has not acknowledged, so a head below that
-- means Redis lost acknowledged entries: quarantine.
local heads = {}
local a = 3
for k = 4, #KEYS - 1 do
  local shard = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  local head = tonumber(redis.call('HGET', KEYS[3], shard) or '0')
  heads[k] = head
  a = a + 2
  local first = nil
  for j = 1, n do
    local seq = tonumber(ARGV[a])
    if first == nil then
      first = seq
      if first > head + 1 then
        return quarantine('shard ' .. shard .. ' has entries only up to ' .. head ..
          ' but ' .. (first - 1) .. ' were acknowledged')
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
a = 3
for k = 4, #KEYS - 1 do
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
    redis.call('HSET', KEYS[3], shard, last)
  end
  out[#out + 1] = tonumber(shard)
  out[#out + 1] = head
end
return out
"
    ))
});

/// Stores a shard snapshot and trims the log entries it covers.
/// KEYS: store, epoch, heads, snap, log.
/// ARGV: store id, epoch, shard, seq, data, trim threshold (seq + 1).
/// Replies `{'OK', trimmed}`, a `fence!` refusal, `{'AHEAD', head}` or `{'STALE', seq}`.
pub(crate) static SNAPSHOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        fence!(),
        r"
local head = tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '0')
local seq = tonumber(ARGV[4])
-- A snapshot past the log's head would leave entries that are neither in the
-- log nor safely ordered after it; the shipper always gets there first.
if seq > head then
  return {'AHEAD', head}
end
local cur = tonumber(redis.call('HGET', KEYS[4], 'seq') or '-1')
if seq <= cur then
  return {'STALE', cur}
end
redis.call('HSET', KEYS[4], 'seq', ARGV[4], 'data', ARGV[5])
local trimmed = redis.call('XTRIM', KEYS[5], 'MINID', ARGV[6])
return {'OK', trimmed}
"
    ))
});

/// Takes the lease if free (or already ours) with an epoch above every epoch
/// seen (never back, even on a keyspace that lost it), creating the store id
/// on first use.
/// KEYS: store, epoch, lease.
/// ARGV: store id seen ('' if none), highest epoch seen (0 if none), owner,
/// ttl ms, unix ms now (caller's clock), a fresh store id (used only if the
/// keyspace has none and this caller has seen none).
/// Replies `{'OK', epoch, store}`, `{'HELD', owner, pttl, store, epoch}`,
/// `{'LOST', marker}` (quarantined, possibly by this call) or `{'CHANGED', store}`.
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local function quarantine(why)
  local marker = 'quarantined:' .. ARGV[1] .. ':' .. why
  redis.call('SET', KEYS[1], marker)
  return {'LOST', marker}
end
local store = redis.call('GET', KEYS[1])
if store and string.sub(store, 1, 12) == 'quarantined:' then
  return {'LOST', store}
end
if ARGV[1] ~= '' then
  if not store then
    return quarantine('the store id key is gone (Redis lost its data?)')
  end
  if store ~= ARGV[1] then
    return {'CHANGED', store}
  end
end
local cur_text = redis.call('GET', KEYS[2])
local cur = tonumber(cur_text or '0') or 0
local seen = tonumber(ARGV[2])
if cur < seen then
  return quarantine('the epoch went back from ' .. ARGV[2] .. ' to ' .. (cur_text or 'nothing'))
end
if not store then
  -- First use (or keys of a version without store ids): adopt the keyspace.
  store = ARGV[6]
  redis.call('SET', KEYS[1], store)
end
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[3] then
  return {'HELD', holder, redis.call('PTTL', KEYS[3]), store, string.format('%.0f', cur)}
end
local epoch = math.max(cur + 1, seen + 1, tonumber(ARGV[5]))
local text = string.format('%.0f', epoch)
redis.call('SET', KEYS[2], text)
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
return {'OK', text, store}
",
    )
});

/// Extends our lease; re-takes it if it lapsed (Redis was unreachable) and no
/// one else took it since (store and epoch are still ours).
/// KEYS: store, epoch, lease. ARGV: store id, epoch, owner, ttl ms.
/// Replies `{'OK'}`, a `fence!` refusal, or `{'FENCED', epoch}` if another
/// owner holds the lease.
pub(crate) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        fence!(),
        r"
local holder = redis.call('GET', KEYS[3])
if holder == ARGV[3] then
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  return {'OK'}
end
if not holder then
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
  return {'OK'}
end
return {'FENCED', cur_text}
"
    ))
});

/// Gives the lease up if it is still ours.
/// KEYS: store, epoch, lease. ARGV: store id, epoch, owner.
/// Replies `{'OK', released}` or a `fence!` refusal.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        fence!(),
        r"
if redis.call('GET', KEYS[3]) == ARGV[3] then
  redis.call('DEL', KEYS[3])
  return {'OK', 1}
end
return {'OK', 0}
"
    ))
});

/// Records the layout (format, shard count) on first use and returns it.
/// KEYS: store, epoch, meta. ARGV: store id, epoch, format, shards.
/// Replies `{'OK', format, shards}` or a `fence!` refusal.
pub(crate) static META: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        fence!(),
        r"
local f = redis.call('HGET', KEYS[3], 'format')
local s = redis.call('HGET', KEYS[3], 'shards')
if not f or not s then
  redis.call('HSET', KEYS[3], 'format', ARGV[3], 'shards', ARGV[4])
  return {'OK', ARGV[3], ARGV[4]}
end
return {'OK', f, s}
"
    ))
});

/// `boxoffice store new`: starts a new store on purpose over whatever data
/// the keyspace holds (clears a quarantine).
/// KEYS: store, epoch. ARGV: new store id, unix ms now.
/// Replies `{previous store value or '', epoch}`.
pub(crate) static STORE_NEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local old = redis.call('GET', KEYS[1]) or ''
local cur = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local epoch = string.format('%.0f', math.max(cur, tonumber(ARGV[2])))
redis.call('SET', KEYS[2], epoch)
redis.call('SET', KEYS[1], ARGV[1])
return {old, epoch}
",
    )
});

/// What a script said when its store/epoch check failed (see `fence!`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The keyspace lost acknowledged state; it is quarantined (marker value).
    Lost(String),
    /// The keyspace is another store now (its id).
    Changed(String),
    /// Another writer has a higher epoch.
    Fenced(String),
}

/// The fencing refusal in a tagged reply, if it is one.
pub(crate) fn refused(tag: &str, rest: &[Value]) -> Option<Refused> {
    let arg = || rest.first().and_then(text).unwrap_or("").to_string();
    match tag {
        "LOST" => Some(Refused::Lost(arg())),
        "CHANGED" => Some(Refused::Changed(arg())),
        "FENCED" => Some(Refused::Fenced(arg())),
        _ => None,
    }
}

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
    Refused(Refused),
    /// A batch that is not consecutive in itself (a bug, never sent).
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
        "GAP" => match rest {
            [s, h, f, ..] => Some(Appended::Gap {
                shard: usize::try_from(uint(s)?).ok()?,
                head: uint(h)?,
                first: uint(f)?,
            }),
            _ => None,
        },
        other => refused(other, rest).map(Appended::Refused),
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
            Some(Appended::Refused(Refused::Fenced("9".into())))
        );
        let lost = Value::Array(vec![b("LOST"), b("quarantined:ab:gone")]);
        assert_eq!(
            parse_append(&lost),
            Some(Appended::Refused(Refused::Lost(
                "quarantined:ab:gone".into()
            )))
        );
        let changed = Value::Array(vec![b("CHANGED"), b("cd")]);
        assert_eq!(
            parse_append(&changed),
            Some(Appended::Refused(Refused::Changed("cd".into())))
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
