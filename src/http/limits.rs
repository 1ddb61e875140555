//! Abuse limits at the HTTP edge: joins rate-limited per client IP (GCRA,
//! `governor`, keyed; memory bounded by `retain_recent` from the driver), and
//! the body rules (64 KiB, JSON only). Connection cap and header timeout live
//! in the accept loop.

use crate::clock::{Clock, GovernorClock};
use crate::config::Limits;
use governor::clock::Clock as _;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use http::{header, HeaderMap};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

type Keyed<K = IpAddr> = RateLimiter<
    K,
    DashMapStateStore<K>,
    GovernorClock,
    governor::middleware::NoOpMiddleware<governor::nanos::Nanos>,
>;

/// Whole seconds, rounded up, until `not_until` (at least 1).
fn retry_after(
    not_until: &governor::NotUntil<governor::nanos::Nanos>,
    clock: &GovernorClock,
) -> u64 {
    let wait = not_until.wait_time_from(clock.now());
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// A join refused by the per-IP limit (answered as 429 with `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many joins from this address; retry in {retry_after_s} s")]
pub struct RateLimited {
    /// Whole seconds (rounded up) until a join would be allowed.
    pub retry_after_s: u64,
}

/// Per-IP limit on joins.
pub struct JoinLimiter {
    limiter: Option<Keyed>,
    clock: GovernorClock,
}

impl std::fmt::Debug for JoinLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinLimiter")
            .field("enabled", &self.limiter.is_some())
            .finish()
    }
}

/// IPv6 clients are keyed by their /64: one host usually owns the whole prefix.
pub fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl JoinLimiter {
    pub fn new(limits: &Limits, clock: Arc<dyn Clock>) -> Self {
        let clock = GovernorClock(clock);
        let limiter = NonZeroU32::new(limits.join_rate_per_s).map(|rate| {
            let burst = NonZeroU32::new(limits.join_burst).unwrap_or(rate);
            RateLimiter::dashmap_with_clock(
                Quota::per_second(rate).allow_burst(burst),
                clock.clone(),
            )
        });
        JoinLimiter { limiter, clock }
    }

    /// Ok, or refused with the seconds until the next join would be allowed.
    pub fn check(&self, ip: IpAddr) -> Result<(), RateLimited> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&key(ip))
            .map_err(|not_until| RateLimited {
                retry_after_s: retry_after(&not_until, &self.clock),
            })
    }

    /// Forgets clients whose state is back to fresh (bounds memory).
    pub fn retain_recent(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Clients currently tracked.
    pub fn tracked(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }
}

/// Status polls per ticket (GCRA keyed by ticket): a burst of
/// [`POLL_BURST`], then `poll_rate_per_s`. The fastest `poll_after_ms` the
/// server advises is 1 s, so a client that follows it (or is a little
/// eager, or has a few tabs) is never refused; only far-too-fast polling is.
/// Only tickets that exist are tracked (the check runs after the lookup),
/// and the driver forgets fresh ones (`retain_recent`), so memory is bounded
/// by the line.
pub struct PollLimiter {
    /// Keyed by a hash of the ticket, not the ticket: no allocation per poll
    /// (the hottest path). The hasher is seeded per process, so a client
    /// cannot aim a collision at someone's ticket; a collision would only
    /// make two tickets share one budget.
    limiter: Option<Keyed<u64>>,
    hasher: std::collections::hash_map::RandomState,
    clock: GovernorClock,
}

/// Polls one ticket may make at once before the sustained rate applies.
pub const POLL_BURST: u32 = 10;

impl std::fmt::Debug for PollLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollLimiter")
            .field("enabled", &self.limiter.is_some())
            .finish()
    }
}

impl PollLimiter {
    pub fn new(limits: &Limits, clock: Arc<dyn Clock>) -> Self {
        let clock = GovernorClock(clock);
        let limiter = NonZeroU32::new(limits.poll_rate_per_s).map(|rate| {
            let burst = NonZeroU32::new(POLL_BURST.max(limits.poll_rate_per_s)).unwrap_or(rate);
            RateLimiter::dashmap_with_clock(
                Quota::per_second(rate).allow_burst(burst),
                clock.clone(),
            )
        });
        PollLimiter {
            limiter,
            hasher: std::collections::hash_map::RandomState::new(),
            clock,
        }
    }

    /// Ok, or refused with the seconds until the next poll would be allowed.
    pub fn check(&self, ticket: &str) -> Result<(), RateLimited> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&std::hash::BuildHasher::hash_one(&self.hasher, ticket))
            .map_err(|not_until| RateLimited {
                retry_after_s: retry_after(&not_until, &self.clock),
            })
    }

    /// Forgets tickets whose state is back to fresh (bounds memory).
    pub fn retain_recent(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Tickets currently tracked.
    pub fn tracked(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }
}

/// An address range (`10.0.0.0/8`, `2001:db8::/32`; a bare address is
/// its /32 or /128), for `--trusted-proxy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

/// A `--trusted-proxy` value that is not an address range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address range like 10.0.0.0/8 or 2001:db8::/32")]
pub struct BadCidr(pub String);

impl std::str::FromStr for Cidr {
    type Err = BadCidr;
    fn from_str(s: &str) -> Result<Self, BadCidr> {
        let bad = || BadCidr(s.to_string());
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let net: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l.trim().parse::<u8>().map_err(|_| bad())?,
        };
        if len > max {
            return Err(bad());
        }
        Ok(Cidr { net, len })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The client address the per-client limits use: the TCP peer, unless the
/// peer is a trusted proxy; then the rightmost `X-Forwarded-For` address
/// that is not a trusted proxy (entries left of it are whatever the client
/// sent, and are never believed). Without trusted proxies the header is
/// ignored.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .flat_map(|v| v.to_str().unwrap_or("").rsplit(','));
    for hop in hops {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // Not an address: nothing further left can be trusted.
            return client;
        };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    client
}

/// Open connections per client address (keyed like the join limit: IPv4
/// address, IPv6 /64), so one address cannot take the slots of all others.
#[derive(Debug)]
pub struct ClientConns {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; uncounted when dropped.
#[derive(Debug)]
pub struct ClientConn {
    conns: Arc<ClientConns>,
    key: IpAddr,
}

impl ClientConns {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(ClientConns {
            cap,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a new connection from `ip`, or `None` when the address
    /// already has `cap` open (the connection is then refused).
    pub fn open(self: &Arc<Self>, ip: IpAddr) -> Option<ClientConn> {
        let key = key(ip);
        let mut open = self.open.lock();
        let n = open.entry(key).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(ClientConn {
            conns: self.clone(),
            key,
        })
    }

    /// Addresses with open connections.
    pub fn clients(&self) -> usize {
        self.open.lock().len()
    }
}

impl Drop for ClientConn {
    fn drop(&mut self) {
        let mut open = self.conns.open.lock();
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Whether the Content-Type names JSON (`application/json`, `…+json`,
/// parameters allowed).
pub fn is_json(headers: &HeaderMap) -> Option<bool> {
    let v = headers.get(header::CONTENT_TYPE)?;
    let Ok(v) = v.to_str() else {
        return Some(false);
    };
    // Compared without case, in place (no lowercased copy per request).
    let mime = v.split(';').next().unwrap_or("").trim().as_bytes();
    let prefix = b"application/";
    let suffix = b"+json";
    let starts = mime
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix));
    let ends = mime
        .len()
        .checked_sub(suffix.len())
        .and_then(|at| mime.get(at..))
        .is_some_and(|s| s.eq_ignore_ascii_case(suffix));
    Some(mime.eq_ignore_ascii_case(b"application/json") || (starts && ends))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use boxoffice_engine::Timestamp;
    use http::HeaderValue;

    #[test]
    fn gcra_per_ip_with_retry_after_and_recovery() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_000)));
        let limits = Limits {
            join_rate_per_s: 2,
            join_burst: 3,
            ..Limits::default()
        };
        let l = JoinLimiter::new(&limits, clock.clone());
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..3 {
            assert!(l.check(a).is_ok());
        }
        let e = l.check(a).err();
        assert_eq!(e, Some(RateLimited { retry_after_s: 1 }));
        assert!(l.check(b).is_ok(), "other clients are not affected");
        clock.advance_ms(500);
        assert!(l.check(a).is_ok(), "one more after 1/rate");
        clock.advance_secs(10);
        l.retain_recent();
        assert_eq!(l.tracked(), 0, "fresh clients are forgotten");
    }

    #[test]
    fn polls_limited_per_ticket_after_a_burst() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_000)));
        let limits = Limits {
            poll_rate_per_s: 2,
            ..Limits::default()
        };
        let l = PollLimiter::new(&limits, clock.clone());
        for _ in 0..POLL_BURST {
            assert!(l.check("t1").is_ok());
        }
        assert_eq!(l.check("t1"), Err(RateLimited { retry_after_s: 1 }));
        assert!(l.check("t2").is_ok(), "other tickets are not affected");
        // Polling every second (the fastest advice) is never refused.
        for _ in 0..100 {
            clock.advance_ms(1_000);
            assert!(l.check("t3").is_ok());
        }
        clock.advance_secs(60);
        l.retain_recent();
        assert_eq!(l.tracked(), 0, "fresh tickets are forgotten");
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c: Cidr = "10.1.0.0/16".parse().expect("cidr");
        assert!(c.contains([10, 1, 200, 3].into()));
        assert!(!c.contains([10, 2, 0, 1].into()));
        assert!(c.contains("::ffff:10.1.2.3".parse().expect("ip")));
        let one: Cidr = "192.0.2.7".parse().expect("bare address");
        assert!(one.contains([192, 0, 2, 7].into()) && !one.contains([192, 0, 2, 8].into()));
        let all: Cidr = "0.0.0.0/0".parse().expect("cidr");
        assert!(all.contains([8, 8, 8, 8].into()));
        let v6: Cidr = "2001:db8::/32".parse().expect("cidr");
        assert!(v6.contains("2001:db8:ffff::1".parse().expect("ip")));
        assert!(!v6.contains([10, 0, 0, 1].into()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/", "2001:db8::/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_read_only_behind_trusted_proxies() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().expect("cidr")];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.5, 10.0.0.9"),
        );
        let proxy: IpAddr = [10, 0, 0, 1].into();
        let stranger: IpAddr = [198, 51, 100, 1].into();
        let client: IpAddr = [203, 0, 113, 5].into();
        assert_eq!(
            client_ip(proxy, &h, &trusted),
            client,
            "rightmost untrusted"
        );
        assert_eq!(
            client_ip(stranger, &h, &trusted),
            stranger,
            "header ignored"
        );
        assert_eq!(client_ip(proxy, &h, &[]), proxy, "no trusted proxies");
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("junk, 10.0.0.9"),
        );
        assert_eq!(client_ip(proxy, &h, &trusted), IpAddr::from([10, 0, 0, 9]));
        h.remove("x-forwarded-for");
        assert_eq!(client_ip(proxy, &h, &trusted), proxy);
    }

    #[test]
    fn connections_counted_per_address() {
        let c = ClientConns::new(2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let (a1, a2) = (c.open(a), c.open(a));
        assert!(a1.is_some() && a2.is_some());
        assert!(c.open(a).is_none(), "over the cap");
        assert!(c.open(b).is_some(), "other addresses are not affected");
        drop(a1);
        assert!(c.open(a).is_some(), "a closed connection frees its place");
        drop(a2);
        assert_eq!(c.clients(), 0, "no entry is kept for idle addresses");
    }

    #[test]
    fn ipv6_keyed_by_prefix() {
        let x: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let y: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        assert_eq!(key(x), key(y));
    }

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert_eq!(is_json(&h), None);
        for (v, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            assert_eq!(is_json(&h), Some(ok), "{v}");
        }
    }
}
