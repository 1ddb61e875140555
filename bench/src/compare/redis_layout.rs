//! The Redis design's scripts, keys and commands, in one place. The
//! comparison's direct client ([`super::redis_design`]) and the HTTP front
//! in front of Redis (`bin/redis_front.rs`) build every command they send
//! from here, so the two cannot drift apart: what the front row measures is
//! exactly the Redis design's traffic plus an HTTP service in front of it.
//!
//! - Waiting queue ([`QueueKeys`]): `INCR` a sequence, `ZADD NX` the user
//!   with it as score, `ZRANK` for the position; a scheduler `ZPOPMIN`s
//!   batches into an active set (`SADD`).
//! - Seats ([`SeatKeys`]): one key per held seat, held all or nothing by
//!   [`HOLD_LUA`] and sold by [`CONFIRM_LUA`].
//! - Coupons ([`CouponKeys`]): [`CLAIM_LUA`], or the older spin-lock path
//!   (`SET NX PX`, four separate commands, [`UNLOCK_LUA`]).
//!
//! Keys live under a namespace: the direct client uses the empty one (one
//! queue, one venue), the front one per event ([`event_ns`]) and one per
//! coupon ([`coupon_name`]).

use redis::{Cmd, Pipeline, Script, ScriptInvocation};

/// How long a seat hold lives (as the engine's hold policy: 600 s).
pub const HOLD_TTL_MS: u64 = 600_000;
/// Lease of the spin lock.
pub const LOCK_LEASE_MS: u64 = 3_000;

/// All or nothing: 0 if any seat is taken, else every seat is set to the
/// hold id (`ARGV[1]`) with a TTL of `ARGV[2]` ms and 1 is returned.
pub const HOLD_LUA: &str = r"
for _, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 1 then return 0 end
end
for _, k in ipairs(KEYS) do
  redis.call('SET', k, ARGV[1], 'PX', ARGV[2])
end
return 1";

/// 1 and every seat sold (`sold:<hold>`, no TTL) if each is still held by
/// the hold `ARGV[1]`, else 0.
pub const CONFIRM_LUA: &str = r"
for _, k in ipairs(KEYS) do
  if redis.call('GET', k) ~= ARGV[1] then return 0 end
end
for _, k in ipairs(KEYS) do
  redis.call('SET', k, 'sold:' .. ARGV[1])
end
return 1";

/// -1 already claimed, -2 sold out, else the stock left after this claim.
pub const CLAIM_LUA: &str = r"
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -1 end
local stock = tonumber(redis.call('GET', KEYS[1]) or '0')
if stock <= 0 then return -2 end
redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
return stock - 1";

/// Compare-and-delete of the spin lock: 1 if this token held it.
pub const UNLOCK_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// The four scripts. Load them once per server ([`Scripts::all`] with
/// `SCRIPT LOAD`) so the timed runs send `EVALSHA` only.
#[derive(Debug)]
pub struct Scripts {
    pub hold: Script,
    pub confirm: Script,
    pub claim: Script,
    pub unlock: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}

impl Scripts {
    pub fn new() -> Self {
        Scripts {
            hold: Script::new(HOLD_LUA),
            confirm: Script::new(CONFIRM_LUA),
            claim: Script::new(CLAIM_LUA),
            unlock: Script::new(UNLOCK_LUA),
        }
    }

    pub fn all(&self) -> [&Script; 4] {
        [&self.hold, &self.confirm, &self.claim, &self.unlock]
    }
}

/// The namespace of one event's keys in the front: `event:<id>:`.
pub fn event_ns(event: &str) -> String {
    format!("event:{event}:")
}

/// The name a coupon's keys are built from in the front: `coupon:<id>`.
pub fn coupon_name(coupon: &str) -> String {
    format!("coupon:{coupon}")
}

/// One waiting room: `<ns>q:seq`, `<ns>q:waiting` (a sorted set of users by
/// sequence number) and `<ns>q:active` (the admitted users).
#[derive(Clone, Debug)]
pub struct QueueKeys {
    pub seq: String,
    pub waiting: String,
    pub active: String,
}

impl QueueKeys {
    pub fn new(ns: &str) -> Self {
        QueueKeys {
            seq: format!("{ns}q:seq"),
            waiting: format!("{ns}q:waiting"),
            active: format!("{ns}q:active"),
        }
    }

    /// An empty room.
    pub fn reset(&self) -> Cmd {
        let mut c = redis::cmd("DEL");
        c.arg(&self.seq).arg(&self.waiting).arg(&self.active);
        c
    }

    /// Join, step 1 of 3: the next sequence number.
    pub fn incr_seq(&self) -> Cmd {
        let mut c = redis::cmd("INCR");
        c.arg(&self.seq);
        c
    }

    /// Join, step 2 of 3: 1 if added, 0 if the user was already in line
    /// (`NX` keeps the first score).
    pub fn zadd_nx(&self, seq: u64, user: &str) -> Cmd {
        let mut c = redis::cmd("ZADD");
        c.arg(&self.waiting).arg("NX").arg(seq).arg(user);
        c
    }

    /// Join, step 3 of 3, and a poll: the 0-based rank, nil if not in line.
    pub fn zrank(&self, user: &str) -> Cmd {
        let mut c = redis::cmd("ZRANK");
        c.arg(&self.waiting).arg(user);
        c
    }

    /// The scheduler's batch: the first `n` users with their scores.
    pub fn zpopmin(&self, n: usize) -> Cmd {
        let mut c = redis::cmd("ZPOPMIN");
        c.arg(&self.waiting).arg(n);
        c
    }

    /// The scheduler's second step: the batch becomes active.
    pub fn sadd_active<'a>(&self, users: impl IntoIterator<Item = &'a str>) -> Cmd {
        let mut c = redis::cmd("SADD");
        c.arg(&self.active);
        for u in users {
            c.arg(u);
        }
        c
    }

    /// Users in line.
    pub fn zcard(&self) -> Cmd {
        let mut c = redis::cmd("ZCARD");
        c.arg(&self.waiting);
        c
    }

    /// The whole line with scores, in rank order (checks only).
    pub fn zrange_all(&self) -> Cmd {
        let mut c = redis::cmd("ZRANGE");
        c.arg(&self.waiting).arg(0).arg(-1).arg("WITHSCORES");
        c
    }
}

/// One venue's seats: `<ns>seat:<seat id>`, absent while free, the hold id
/// while held, `sold:<hold id>` once sold.
#[derive(Clone, Debug)]
pub struct SeatKeys {
    ns: String,
}

impl SeatKeys {
    pub fn new(ns: &str) -> Self {
        SeatKeys { ns: ns.to_string() }
    }

    pub fn key(&self, seat: &str) -> String {
        format!("{}seat:{seat}", self.ns)
    }

    /// The hold script over these seats, held by `hold_id` for
    /// [`HOLD_TTL_MS`]: 1 held, 0 some seat taken.
    pub fn hold<'s, S: AsRef<str>>(
        &self,
        scripts: &'s Scripts,
        seats: &[S],
        hold_id: &str,
    ) -> ScriptInvocation<'s> {
        let mut inv = scripts.hold.prepare_invoke();
        for s in seats {
            inv.key(self.key(s.as_ref()));
        }
        inv.arg(hold_id).arg(HOLD_TTL_MS);
        inv
    }

    /// The confirm script: 1 sold, 0 the hold lapsed.
    pub fn confirm<'s, S: AsRef<str>>(
        &self,
        scripts: &'s Scripts,
        seats: &[S],
        hold_id: &str,
    ) -> ScriptInvocation<'s> {
        let mut inv = scripts.confirm.prepare_invoke();
        for s in seats {
            inv.key(self.key(s.as_ref()));
        }
        inv.arg(hold_id);
        inv
    }
}

/// One coupon: `<name>:stock` (units left), `<name>:users` (who claimed) and
/// `<name>:lock` (the spin lock's key).
#[derive(Clone, Debug)]
pub struct CouponKeys {
    pub stock: String,
    pub users: String,
    pub lock: String,
}

/// What a claim came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    Claimed { remaining: u64 },
    AlreadyClaimed,
    SoldOut,
}

impl Claim {
    /// The claim script's answer.
    pub fn from_script(r: i64) -> Self {
        match r {
            -1 => Claim::AlreadyClaimed,
            r if r < 0 => Claim::SoldOut,
            r => Claim::Claimed {
                remaining: r.unsigned_abs(),
            },
        }
    }
}

impl CouponKeys {
    pub fn new(name: &str) -> Self {
        CouponKeys {
            stock: format!("{name}:stock"),
            users: format!("{name}:users"),
            lock: format!("{name}:lock"),
        }
    }

    /// Untimed set-up: nobody has claimed, `stock` units left, no lock.
    pub fn reset(&self, stock: u32) -> Pipeline {
        let mut p = redis::pipe();
        p.cmd("DEL")
            .arg(&self.users)
            .arg(&self.lock)
            .ignore()
            .cmd("SET")
            .arg(&self.stock)
            .arg(stock)
            .ignore();
        p
    }

    /// The scripted claim (see [`Claim::from_script`]).
    pub fn claim<'s>(&self, scripts: &'s Scripts, user: &str) -> ScriptInvocation<'s> {
        let mut inv = scripts.claim.prepare_invoke();
        inv.key(&self.stock).key(&self.users).arg(user);
        inv
    }

    /// Spin-lock path, step 1 (retried at once until it answers OK, not nil).
    pub fn lock(&self, token: &str) -> Cmd {
        let mut c = redis::cmd("SET");
        c.arg(&self.lock)
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(LOCK_LEASE_MS);
        c
    }

    /// Spin-lock path, under the lock: has `user` claimed?
    pub fn sismember(&self, user: &str) -> Cmd {
        let mut c = redis::cmd("SISMEMBER");
        c.arg(&self.users).arg(user);
        c
    }

    /// Spin-lock path, under the lock: units left (also for checks).
    pub fn get_stock(&self) -> Cmd {
        let mut c = redis::cmd("GET");
        c.arg(&self.stock);
        c
    }

    /// Spin-lock path, under the lock: one unit fewer (answers the new stock).
    pub fn decr(&self) -> Cmd {
        let mut c = redis::cmd("DECR");
        c.arg(&self.stock);
        c
    }

    /// Spin-lock path, under the lock: `user` has claimed.
    pub fn sadd(&self, user: &str) -> Cmd {
        let mut c = redis::cmd("SADD");
        c.arg(&self.users).arg(user);
        c
    }

    /// Spin-lock path, last step: 1 if `token` still held the lock.
    pub fn unlock<'s>(&self, scripts: &'s Scripts, token: &str) -> ScriptInvocation<'s> {
        let mut inv = scripts.unlock.prepare_invoke();
        inv.key(&self.lock).arg(token);
        inv
    }

    /// Users who claimed (checks only).
    pub fn scard(&self) -> Cmd {
        let mut c = redis::cmd("SCARD");
        c.arg(&self.users);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct client's keys are the ones it always used; the front's are
    /// namespaced per event and coupon.
    #[test]
    fn key_names() {
        let q = QueueKeys::new("");
        assert_eq!((q.seq.as_str(), q.waiting.as_str()), ("q:seq", "q:waiting"));
        assert_eq!(SeatKeys::new("").key("S0-1-2"), "seat:S0-1-2");
        let c = CouponKeys::new("cs");
        assert_eq!((c.stock.as_str(), c.lock.as_str()), ("cs:stock", "cs:lock"));
        let q = QueueKeys::new(&event_ns("q"));
        assert_eq!(q.active, "event:q:q:active");
        assert_eq!(
            SeatKeys::new(&event_ns("s")).key("A-1-1"),
            "event:s:seat:A-1-1"
        );
        assert_eq!(CouponKeys::new(&coupon_name("c")).users, "coupon:c:users");
    }

    #[test]
    fn claim_answers() {
        assert_eq!(Claim::from_script(-1), Claim::AlreadyClaimed);
        assert_eq!(Claim::from_script(-2), Claim::SoldOut);
        assert_eq!(Claim::from_script(0), Claim::Claimed { remaining: 0 });
        assert_eq!(Claim::from_script(41), Claim::Claimed { remaining: 41 });
    }

    #[test]
    fn commands_are_the_documented_ones() {
        let q = QueueKeys::new("");
        let packed = String::from_utf8_lossy(&q.zadd_nx(7, "u").get_packed_command()).into_owned();
        assert!(packed.contains("ZADD") && packed.contains("NX") && packed.contains("q:waiting"));
        let scripts = Scripts::new();
        let seats = SeatKeys::new("");
        // Two keys, the hold id and the TTL: what the direct client always sent.
        let inv = seats.hold(&scripts, &["A-1-1", "A-1-2"], "h1");
        assert!(format!("{inv:?}").contains("keys: 2"));
        assert!(format!("{inv:?}").contains("args: 2"));
    }
}
