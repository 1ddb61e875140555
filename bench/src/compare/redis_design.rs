//! The usual Redis design, as Spring + Redis ticketing services build it,
//! against a `redis-server` this program starts and stops itself.
//!
//! - Waiting queue: `INCR` a sequence, `ZADD NX` the user with it as score,
//!   `ZRANK` for the position (three round trips per join); polls are one
//!   `ZRANK`; a scheduler `ZPOPMIN`s batches and `SADD`s them to an active set.
//! - Seats: one key per held seat; a Lua script holds all or nothing
//!   (`EXISTS` on every seat, then `SET … PX ttl`), a second one confirms.
//! - Coupons: a Lua script (`SISMEMBER` → `GET` stock → `DECR` + `SADD`); and
//!   the older variant under a spin lock (`SET NX PX`, then the same steps as
//!   separate commands, then a compare-and-delete script), as Redisson-style
//!   locking does.
//!
//! Every request is its own round trip on its own connection (no pipelining),
//! as each request of the Spring service is; only untimed set-up pipelines.
//! The scripts, keys and commands come from [`super::redis_layout`], shared
//! with the HTTP front in front of Redis (`bin/redis_front.rs`).

use super::redis_layout::{coupon_name, event_ns, Claim, CouponKeys, QueueKeys, Scripts, SeatKeys};
use super::suite::{ClaimResult, Client, Coupon, JoinReply, Outcome, System};
use super::workloads::{cpu_delta, cpu_time, histogram, record, Measured, Plan};
use anyhow::{ensure, Context, Result};
use boxoffice_testkit::RedisOptions;
use redis::Connection;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a side's data lives in Redis (see [`super::redis_layout`]).
#[derive(Clone, Debug)]
pub struct Keyspace {
    pub queue: QueueKeys,
    pub seats: SeatKeys,
    pub main: CouponKeys,
    pub spin: CouponKeys,
}

impl Keyspace {
    /// The direct client's: one queue, one venue, coupons `c` and `cs`.
    pub fn direct() -> Self {
        Keyspace {
            queue: QueueKeys::new(""),
            seats: SeatKeys::new(""),
            main: CouponKeys::new("c"),
            spin: CouponKeys::new("cs"),
        }
    }

    /// The front's (`bin/redis_front.rs`): keys of the named events and
    /// coupons, as the front builds them from the request paths.
    pub fn behind_front(
        queue_event: &str,
        seat_event: &str,
        main_coupon: &str,
        spin_coupon: &str,
    ) -> Self {
        Keyspace {
            queue: QueueKeys::new(&event_ns(queue_event)),
            seats: SeatKeys::new(&event_ns(seat_event)),
            main: CouponKeys::new(&coupon_name(main_coupon)),
            spin: CouponKeys::new(&coupon_name(spin_coupon)),
        }
    }

    pub fn coupon(&self, c: Coupon) -> &CouponKeys {
        match c {
            Coupon::Main => &self.main,
            Coupon::Spin => &self.spin,
        }
    }
}

/// The private `redis-server` (see [`boxoffice_testkit::RedisServer`]:
/// loopback, no persistence, killed by PID when dropped, so also on an
/// error or a panic), with its version for the report.
#[derive(Debug)]
pub struct RedisServer {
    server: boxoffice_testkit::RedisServer,
    pub port: u16,
    pub version: String,
}

impl RedisServer {
    pub fn start(bin: &Path) -> Result<Self> {
        let server = boxoffice_testkit::RedisServer::start(RedisOptions {
            bin: bin.to_path_buf(),
            ..RedisOptions::default()
        })?;
        let mut server = RedisServer {
            port: server.port(),
            server,
            version: String::new(),
        };
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query(&mut server.connect()?)
            .context("INFO server")?;
        server.version = info_field(&info, "redis_version").unwrap_or_default();
        Ok(server)
    }

    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    pub fn connect(&self) -> Result<Connection> {
        let client = redis::Client::open(self.server.url()).context("redis URL")?;
        let con = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .context("connecting to redis-server")?;
        con.set_read_timeout(Some(Duration::from_secs(60)))
            .context("setting the read timeout")?;
        Ok(con)
    }
}

fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// `used_memory` from `INFO memory`.
fn used_memory(con: &mut Connection) -> Result<u64> {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(con)
        .context("INFO memory")?;
    info_field(&info, "used_memory")
        .and_then(|v| v.parse().ok())
        .context("no used_memory in INFO memory")
}

/// The Redis design's side of the comparison: clients that call
/// `redis-server` directly. Its checks also serve the front row (the same
/// data behind an HTTP service), read from the front's own server under the
/// front's [`Keyspace`].
#[derive(Debug)]
pub struct RedisSide<'a> {
    server: &'a RedisServer,
    plan: Arc<Plan>,
    keys: Arc<Keyspace>,
}

pub struct RedisClient {
    con: Connection,
    plan: Arc<Plan>,
    keys: Arc<Keyspace>,
    scripts: Scripts,
    /// Unique lock tokens: this client's id plus a counter.
    id: u64,
    counter: u64,
    lock_attempts: u64,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient").field("id", &self.id).finish()
    }
}

/// User index from a user name (`user-000000000000123`).
fn user_index(name: &str) -> Result<usize> {
    name.strip_prefix("user-")
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("unexpected member {name:?}"))
}

impl<'a> RedisSide<'a> {
    /// Empties the server (`FLUSHALL`) and loads the scripts.
    pub fn new(server: &'a RedisServer, plan: Arc<Plan>, keys: Keyspace) -> Result<Self> {
        let mut con = server.connect()?;
        redis::cmd("FLUSHALL")
            .query::<()>(&mut con)
            .context("FLUSHALL")?;
        // Load the scripts once (server-wide) so runs measure EVALSHA only.
        for script in Scripts::new().all() {
            script
                .prepare_invoke()
                .load(&mut con)
                .context("SCRIPT LOAD")?;
        }
        Ok(RedisSide {
            server,
            plan,
            keys: Arc::new(keys),
        })
    }

    /// The whole line in order: (user, score) by rank.
    fn zrange(&self) -> Result<Vec<(String, f64)>> {
        let mut con = self.server.connect()?;
        self.keys
            .queue
            .zrange_all()
            .query(&mut con)
            .context("ZRANGE")
    }

    /// The scheduler: `ZPOPMIN` a batch, `SADD` it to the active set, until
    /// the line is empty. Timed: each batch's two round trips. Checked: users
    /// come out in score order, each once, exactly the line.
    pub fn admit(&self, line: &[(String, u64)]) -> Result<Outcome> {
        let mut con = self.server.connect()?;
        let queue = &self.keys.queue;
        let batch = self.plan.sizes.admit_batch;
        let mut hist = histogram();
        let mut busy = Duration::ZERO;
        let mut popped_all: Vec<(String, f64)> = Vec::with_capacity(line.len());
        let cpu0 = cpu_time(self.server.pid());
        while popped_all.len() < line.len() {
            let start = Instant::now();
            let popped: Vec<(String, f64)> =
                queue.zpopmin(batch).query(&mut con).context("ZPOPMIN")?;
            ensure!(!popped.is_empty(), "the line ran dry early");
            queue
                .sadd_active(popped.iter().map(|(u, _)| u.as_str()))
                .query::<u64>(&mut con)
                .context("SADD")?;
            let took = start.elapsed();
            record(&mut hist, took);
            busy += took;
            popped_all.extend(popped);
        }
        let cpu = cpu_delta(self.server.pid(), cpu0, busy);
        ensure!(
            popped_all.windows(2).all(|w| w[0].1 < w[1].1),
            "admission is not in score order"
        );
        let mut by_position = vec![""; line.len()];
        for (ticket, pos) in line {
            *by_position
                .get_mut((*pos as usize).wrapping_sub(1))
                .context("position out of range")? = ticket;
        }
        for (i, (u, _)) in popped_all.iter().enumerate() {
            ensure!(
                by_position[i] == u,
                "admitted #{} is {u}, the line had {}",
                i + 1,
                by_position[i]
            );
        }
        let active: u64 = redis::cmd("SCARD")
            .arg(&queue.active)
            .query(&mut con)
            .context("SCARD")?;
        ensure!(active == line.len() as u64, "{active} in the active set");
        let batches = hist.len();
        Ok(Outcome::new(
            Measured {
                ops: popped_all.len() as u64,
                elapsed: busy,
                hist,
                cpu,
                cpu_parts: Vec::new(),
            },
            vec![format!("{batches} batches of ZPOPMIN {batch} + SADD")],
        ))
    }

    /// Bytes of `used_memory` per waiting user: `n` users `ZADD`ed (pipelined
    /// set-up) into an empty server.
    pub fn memory_per_user(&self, n: u64) -> Result<f64> {
        let mut con = self.server.connect()?;
        redis::cmd("FLUSHALL")
            .query::<()>(&mut con)
            .context("FLUSHALL")?;
        let before = used_memory(&mut con)?;
        const PER_CMD: u64 = 1_000;
        const PER_PIPE: u64 = 20;
        let mut next = 0u64;
        while next < n {
            let mut pipe = redis::pipe();
            for _ in 0..PER_PIPE {
                if next >= n {
                    break;
                }
                let end = (next + PER_CMD).min(n);
                let cmd = pipe.cmd("ZADD").arg(&self.keys.queue.waiting);
                for i in next..end {
                    cmd.arg(i + 1).arg(super::workloads::user_name(i as usize));
                }
                cmd.ignore();
                next = end;
            }
            pipe.query::<()>(&mut con).context("filling the line")?;
        }
        let count: u64 = self.keys.queue.zcard().query(&mut con).context("ZCARD")?;
        ensure!(count == n, "{count} users in line after adding {n}");
        let after = used_memory(&mut con)?;
        redis::cmd("FLUSHALL")
            .query::<()>(&mut con)
            .context("FLUSHALL")?;
        Ok(after.saturating_sub(before) as f64 / n as f64)
    }
}

impl System for RedisSide<'_> {
    type Client = RedisClient;

    fn pids(&self) -> Vec<Option<u32>> {
        vec![self.server.pid()]
    }

    fn client(&self) -> Result<RedisClient> {
        let con = self.server.connect()?;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(RedisClient {
            con,
            plan: self.plan.clone(),
            keys: self.keys.clone(),
            scripts: Scripts::new(),
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            counter: 0,
            lock_attempts: 0,
        })
    }

    fn setup_queue(&self) -> Result<()> {
        let mut con = self.server.connect()?;
        self.keys.queue.reset().query::<()>(&mut con).context("DEL")
    }

    fn waiting(&self) -> Result<u64> {
        let mut con = self.server.connect()?;
        self.keys.queue.zcard().query(&mut con).context("ZCARD")
    }

    /// The design's own promises: one place per user, kept on a repeat join
    /// (`ZADD NX` keeps the first score), unique sequence scores. Reported
    /// positions that later changed are counted as a note: `INCR` and `ZADD`
    /// are two round trips, so a later number can land first and be ranked
    /// ahead until the earlier one arrives.
    fn check_joins(
        &self,
        replies: &[(usize, JoinReply)],
        joiners: usize,
        notes: &mut Vec<String>,
    ) -> Result<()> {
        let all = self.zrange()?;
        ensure!(
            all.len() == joiners,
            "{} in line, expected {joiners}",
            all.len()
        );
        ensure!(
            all.windows(2).all(|w| w[0].1 < w[1].1),
            "sequence scores are not unique"
        );
        let mut rank_score = vec![(0u64, 0u64); joiners];
        for (rank, (name, score)) in all.iter().enumerate() {
            let u = user_index(name)?;
            *rank_score.get_mut(u).context("member out of range")? = (rank as u64, *score as u64);
        }
        let mut moved = 0usize;
        for (u, r) in replies {
            let (rank, score) = rank_score[*u];
            if r.created {
                ensure!(
                    r.seq == Some(score),
                    "user {u}'s score {score} is not the sequence {:?} it was added with",
                    r.seq
                );
            }
            if r.position != rank + 1 {
                moved += 1;
            }
        }
        notes.push(format!(
            "{moved} of {} join replies ({:.3}%) reported a position that later changed \
             (INCR and ZADD are separate round trips)",
            replies.len(),
            100.0 * moved as f64 / replies.len().max(1) as f64
        ));
        Ok(())
    }

    fn line(&self, _replies: &[(usize, JoinReply)], joiners: usize) -> Result<Vec<(String, u64)>> {
        let mut line = vec![(String::new(), 0); joiners];
        for (rank, (name, _)) in self.zrange()?.into_iter().enumerate() {
            let u = user_index(&name)?;
            *line.get_mut(u).context("member out of range")? = (name, rank as u64 + 1);
        }
        Ok(line)
    }

    fn setup_seats(&self) -> Result<()> {
        // Free seats have no key; nothing to create.
        Ok(())
    }

    fn seat_counts(&self) -> Result<(u64, u64)> {
        let mut con = self.server.connect()?;
        let s = &self.plan.sizes;
        let mut names = Vec::with_capacity(s.seats() as usize);
        for section in 0..s.sections {
            for row in 0..s.rows {
                for n in 1..=s.per_row {
                    let seat = super::workloads::seat_name(section, row, n);
                    names.push(self.keys.seats.key(&seat));
                }
            }
        }
        let (mut held, mut sold) = (0, 0);
        for chunk in names.chunks(1_000) {
            let values: Vec<Option<String>> = redis::cmd("MGET")
                .arg(chunk)
                .query(&mut con)
                .context("MGET")?;
            for v in values.into_iter().flatten() {
                if v.starts_with("sold:") {
                    sold += 1;
                } else {
                    held += 1;
                }
            }
        }
        Ok((held, sold))
    }

    fn setup_coupon(&self, coupon: Coupon, stock: u32) -> Result<()> {
        let mut con = self.server.connect()?;
        self.keys
            .coupon(coupon)
            .reset(stock)
            .query::<()>(&mut con)
            .context("setting the stock")
    }

    fn coupon_counts(&self, coupon: Coupon) -> Result<(u64, u64)> {
        let mut con = self.server.connect()?;
        let keys = self.keys.coupon(coupon);
        let issued: u64 = keys.scard().query(&mut con).context("SCARD")?;
        let remaining: i64 = keys.get_stock().query(&mut con).context("GET")?;
        ensure!(remaining >= 0, "stock went negative: {remaining}");
        Ok((issued, remaining as u64))
    }
}

impl RedisClient {
    /// The spin-lock coupon path: lock, four separate commands, unlock.
    fn claim_locked(&mut self, user: &str) -> Result<ClaimResult> {
        let keys = self.keys.clone();
        let keys = keys.coupon(Coupon::Spin);
        self.counter += 1;
        let token = format!("{}-{}", self.id, self.counter);
        loop {
            self.lock_attempts += 1;
            let ok: Option<String> = keys
                .lock(&token)
                .query(&mut self.con)
                .context("SET NX PX")?;
            if ok.is_some() {
                break;
            }
        }
        let con = &mut self.con;
        let result = (|| -> Result<ClaimResult> {
            let member: bool = keys.sismember(user).query(con).context("SISMEMBER")?;
            if member {
                return Ok(ClaimResult::AlreadyClaimed);
            }
            let stock: i64 = keys.get_stock().query(con).context("GET")?;
            if stock <= 0 {
                return Ok(ClaimResult::SoldOut);
            }
            keys.decr().query::<i64>(con).context("DECR")?;
            keys.sadd(user).query::<u64>(con).context("SADD")?;
            Ok(ClaimResult::Claimed)
        })();
        let released: i64 = keys
            .unlock(&self.scripts, &token)
            .invoke(&mut self.con)
            .context("unlock")?;
        ensure!(released == 1, "the lock lease ran out under a claim");
        result
    }
}

impl Client for RedisClient {
    type Hold = String;

    fn join(&mut self, user: usize) -> Result<JoinReply> {
        let name = &self.plan.users[user];
        let queue = &self.keys.queue;
        let seq: u64 = queue.incr_seq().query(&mut self.con).context("INCR")?;
        let added: u64 = queue
            .zadd_nx(seq, name)
            .query(&mut self.con)
            .context("ZADD NX")?;
        let rank: Option<u64> = queue.zrank(name).query(&mut self.con).context("ZRANK")?;
        Ok(JoinReply {
            ticket: name.clone(),
            position: rank.context("just added, not in line")? + 1,
            created: added == 1,
            seq: Some(seq),
        })
    }

    fn poll(&mut self, ticket: &str) -> Result<u64> {
        let rank: Option<u64> = self
            .keys
            .queue
            .zrank(ticket)
            .query(&mut self.con)
            .context("ZRANK")?;
        Ok(rank.context("not in line")? + 1)
    }

    fn hold(&mut self, attempt: usize) -> Result<Option<String>> {
        // The id a Spring service would make with a UUID: unique per attempt.
        let hold_id = format!("h{attempt}");
        let ok: i64 = self
            .keys
            .seats
            .hold(&self.scripts, &self.plan.holds[attempt].seats, &hold_id)
            .invoke(&mut self.con)
            .context("hold script")?;
        Ok((ok == 1).then_some(hold_id))
    }

    fn confirm(&mut self, attempt: usize, hold: &String) -> Result<bool> {
        let ok: i64 = self
            .keys
            .seats
            .confirm(&self.scripts, &self.plan.holds[attempt].seats, hold)
            .invoke(&mut self.con)
            .context("confirm script")?;
        Ok(ok == 1)
    }

    fn claim(&mut self, coupon: Coupon, user: usize) -> Result<ClaimResult> {
        let plan = self.plan.clone();
        let name = &plan.users[user];
        if coupon == Coupon::Spin {
            return self.claim_locked(name);
        }
        let r: i64 = self
            .keys
            .coupon(coupon)
            .claim(&self.scripts, name)
            .invoke(&mut self.con)
            .context("claim script")?;
        Ok(match Claim::from_script(r) {
            Claim::AlreadyClaimed => ClaimResult::AlreadyClaimed,
            Claim::SoldOut => ClaimResult::SoldOut,
            Claim::Claimed { .. } => ClaimResult::Claimed,
        })
    }

    fn lock_attempts(&self) -> u64 {
        self.lock_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields() {
        let info = "# Memory\r\nused_memory:1234\r\nused_memory_human:1.2K\r\n";
        assert_eq!(info_field(info, "used_memory").as_deref(), Some("1234"));
        assert_eq!(user_index("user-000000000000042").ok(), Some(42));
    }
}
