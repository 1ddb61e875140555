//! The Redis design behind an HTTP front (`bin/redis_front.rs`), against its
//! own private `redis-server`: what the seed projects run (an HTTP service
//! calling Redis) at its cheapest. It is driven exactly as boxoffice over HTTP
//! is (the same client, requests, set-up and thread count) and checked as the
//! Redis design is, from its `redis-server` under the front's keys: one place
//! per user with unique sequence scores, polls at the line's ranks, no seat
//! held twice, exactly `stock` claims.

use super::http_side::{
    coupon_id, HttpClient, HttpServer, HttpSide, ADMIN, QUEUE_EVENT, SEAT_EVENT, SERVICE,
};
use super::redis_design::{Keyspace, RedisServer, RedisSide};
use super::suite::{Coupon, JoinReply, System};
use super::workloads::Plan;
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;

/// The front and its `redis-server`, both killed by PID when dropped (the
/// front first: it is declared first).
#[derive(Debug)]
pub struct FrontServers {
    pub front: HttpServer,
    pub redis: RedisServer,
}

impl FrontServers {
    pub fn start(redis_bin: &Path, front_bin: &Path) -> Result<Self> {
        let redis = RedisServer::start(redis_bin)
            .with_context(|| format!("starting {} for the front", redis_bin.display()))?;
        let url = format!("redis://127.0.0.1:{}/", redis.port);
        let front = HttpServer::launch(front_bin, "compare-front", |addr| {
            [
                "--listen",
                &addr.to_string(),
                "--redis",
                &url,
                "--admin-token",
                ADMIN,
                "--service-token",
                SERVICE,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        })?;
        Ok(FrontServers { front, redis })
    }
}

/// The front's side of the comparison: HTTP for the work, Redis for the
/// checks.
#[derive(Debug)]
pub struct FrontSide<'a> {
    http: HttpSide,
    checks: RedisSide<'a>,
}

impl<'a> FrontSide<'a> {
    /// Empties the front's `redis-server` (before any set-up call).
    pub fn new(servers: &'a FrontServers, plan: Arc<Plan>) -> Result<Self> {
        let pids = vec![servers.front.pid(), servers.redis.pid()];
        let keys = Keyspace::behind_front(
            QUEUE_EVENT,
            SEAT_EVENT,
            coupon_id(Coupon::Main),
            coupon_id(Coupon::Spin),
        );
        Ok(FrontSide {
            http: HttpSide::at(servers.front.addr, pids, plan.clone()),
            checks: RedisSide::new(&servers.redis, plan, keys)?,
        })
    }
}

impl System for FrontSide<'_> {
    type Client = HttpClient;

    /// The front, then its `redis-server`: the row's CPU is both.
    fn pids(&self) -> Vec<Option<u32>> {
        self.http.pids()
    }

    fn client(&self) -> Result<HttpClient> {
        self.http.client()
    }

    fn setup_queue(&self) -> Result<()> {
        self.http.setup_queue()
    }

    fn waiting(&self) -> Result<u64> {
        self.checks.waiting()
    }

    fn check_joins(
        &self,
        replies: &[(usize, JoinReply)],
        joiners: usize,
        notes: &mut Vec<String>,
    ) -> Result<()> {
        self.checks.check_joins(replies, joiners, notes)
    }

    fn line(&self, replies: &[(usize, JoinReply)], joiners: usize) -> Result<Vec<(String, u64)>> {
        self.checks.line(replies, joiners)
    }

    fn setup_seats(&self) -> Result<()> {
        self.http.setup_seats()
    }

    fn seat_counts(&self) -> Result<(u64, u64)> {
        self.checks.seat_counts()
    }

    /// boxoffice's coupon body, plus which Redis path the claims take: the
    /// spin-lock run takes the spin lock, as in the Redis design.
    fn setup_coupon(&self, coupon: Coupon, stock: u32) -> Result<()> {
        let lock = match coupon {
            Coupon::Main => "script",
            Coupon::Spin => "spin",
        };
        let body = format!(r#"{{"stock": {stock}, "per_user": 1, "lock": "{lock}"}}"#);
        let path = format!("/v1/coupons/{}", coupon_id(coupon));
        self.http.call("PUT", &path, Some(ADMIN), Some(&body))?;
        Ok(())
    }

    fn coupon_counts(&self, coupon: Coupon) -> Result<(u64, u64)> {
        self.checks.coupon_counts(coupon)
    }
}
