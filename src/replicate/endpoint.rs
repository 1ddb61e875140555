//! Where the Redis primary is: a fixed URL, or the master a set of Redis
//! Sentinels names (so the server follows a failover).
//!
//! Sentinel form (docs/operations.md, "Redis HA"):
//!
//! ```text
//! redis+sentinel://[[user]:password@]host1[:26379][,host2[:26379]…]/<master-name>[/<db>]
//! ```
//!
//! The credentials and the db are those of the data nodes (primary and
//! replicas); the sentinels are asked without credentials. Every new
//! connection resolves the master again: `SENTINEL get-master-addr-by-name`
//! against the sentinels in turn (the last one that answered first), then a
//! connection to that address whose `ROLE` must be `master` (a sentinel that
//! has not seen the failover yet names the old primary; a replica must never
//! be written to). The resolver is our own rather than the redis crate's
//! `sentinel` feature so each step runs under this module's connect and
//! response timeouts, on the same multiplexed connections as the direct form.
//!
//! Callers drop a connection on any error (see [`super::link`]), including a
//! `READONLY` reply from a primary demoted to replica, so the next call
//! resolves the master again.

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, RedisError, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The URL scheme of the sentinel form.
pub const SENTINEL_SCHEME: &str = "redis+sentinel://";
const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// A parsed `--redis` value.
pub(crate) enum Endpoint {
    Direct(redis::Client),
    Sentinel(Sentinels),
}

/// The sentinel form, parsed.
pub(crate) struct Sentinels {
    /// `host:port` of each sentinel (IPv6 hosts keep their brackets).
    addrs: Vec<String>,
    /// A client per sentinel, built once.
    clients: Vec<redis::Client>,
    master: String,
    /// `user:password@` as given (still percent-encoded), or empty.
    userinfo: String,
    db: i64,
    /// The sentinel that answered last: asked first next time.
    preferred: AtomicUsize,
}

impl Endpoint {
    /// Parses `url`; the error message never contains the password.
    pub fn parse(url: &str) -> Result<Self, String> {
        let Some(rest) = url.strip_prefix(SENTINEL_SCHEME) else {
            return redis::Client::open(url)
                .map(Endpoint::Direct)
                .map_err(|e| e.to_string());
        };
        let (authority, path) = rest.split_once('/').ok_or(
            "a sentinel URL needs the master name: redis+sentinel://host:26379/<master-name>",
        )?;
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (format!("{u}@"), h),
            None => (String::new(), authority),
        };
        let mut addrs = Vec::new();
        for h in hosts.split(',') {
            addrs.push(sentinel_addr(h)?);
        }
        let mut parts = path.trim_end_matches('/').split('/');
        let master = parts.next().unwrap_or_default().to_string();
        if master.is_empty() || !master.bytes().all(|c| c.is_ascii_graphic()) {
            return Err("a sentinel URL needs the master name after the hosts".into());
        }
        let db = match parts.next() {
            None => 0,
            Some(d) => d
                .parse::<i64>()
                .ok()
                .filter(|d| *d >= 0)
                .ok_or("the db after the master name must be a number")?,
        };
        if parts.next().is_some() {
            return Err("a sentinel URL is .../<master-name>[/<db>], nothing after".into());
        }
        let clients = addrs
            .iter()
            .map(|a| redis::Client::open(format!("redis://{a}/")).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        // The data-node URL must parse with these credentials (checked here
        // once, so a bad password encoding is a start-up error).
        redis::Client::open(format!("redis://{userinfo}127.0.0.1:6379/{db}"))
            .map_err(|_| "the credentials of the sentinel URL do not parse".to_string())?;
        Ok(Endpoint::Sentinel(Sentinels {
            addrs,
            clients,
            master,
            userinfo,
            db,
            preferred: AtomicUsize::new(0),
        }))
    }

    /// Opens a connection to the primary.
    pub async fn connect(
        &self,
        config: &AsyncConnectionConfig,
        timeouts: (Duration, Duration),
    ) -> Result<MultiplexedConnection, RedisError> {
        match self {
            Endpoint::Direct(c) => c.get_multiplexed_async_connection_with_config(config).await,
            Endpoint::Sentinel(s) => s.connect(config, timeouts).await,
        }
    }

    /// Whether a new connection may reach another node (Sentinel form).
    pub fn resolves(&self) -> bool {
        matches!(self, Endpoint::Sentinel(_))
    }

    /// For logs: which kind, never credentials.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Direct(c) => format!("{}", c.get_connection_info().addr()),
            Endpoint::Sentinel(s) => {
                format!("sentinels {} master {:?}", s.addrs.join(","), s.master)
            }
        }
    }
}

fn sentinel_addr(h: &str) -> Result<String, String> {
    let bad = || format!("{h:?} is not a sentinel host[:port]");
    if h.is_empty() {
        return Err("an empty sentinel host in the URL".into());
    }
    let (host, port) = if let Some(v6) = h.strip_prefix('[') {
        let (inside, after) = v6.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p,
            None if after.is_empty() => "",
            None => return Err(bad()),
        };
        (format!("[{inside}]"), port)
    } else {
        match h.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), port),
            None => (h.to_string(), ""),
        }
    };
    let port = if port.is_empty() {
        DEFAULT_SENTINEL_PORT
    } else {
        port.parse::<u16>().map_err(|_| bad())?
    };
    if host.is_empty() || host.contains(['/', '@', '?', '#']) {
        return Err(bad());
    }
    Ok(format!("{host}:{port}"))
}

fn err(what: &'static str, detail: String) -> RedisError {
    RedisError::from((ErrorKind::MasterNameNotFoundBySentinel, what, detail))
}

impl Sentinels {
    async fn connect(
        &self,
        config: &AsyncConnectionConfig,
        (connect_timeout, response_timeout): (Duration, Duration),
    ) -> Result<MultiplexedConnection, RedisError> {
        let n = self.addrs.len();
        let first = self.preferred.load(Ordering::Relaxed) % n.max(1);
        // A sentinel is asked with the connection's own bounds, capped: it
        // answers from memory.
        let ask = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout.min(Duration::from_secs(1))));
        let mut last = None;
        for k in 0..n {
            let i = (first + k) % n;
            match self.master_from(i, &ask).await {
                Ok(addr) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return self.open_master(&addr, config).await;
                }
                Err(e) => {
                    tracing::debug!(sentinel = %self.addrs[i], error = %e, "replication: sentinel did not name the master");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| err("no sentinel", String::new())))
    }

    /// `host:port` of the master as sentinel `i` knows it.
    async fn master_from(
        &self,
        i: usize,
        ask: &AsyncConnectionConfig,
    ) -> Result<String, RedisError> {
        let mut c = self.clients[i]
            .get_multiplexed_async_connection_with_config(ask)
            .await?;
        let v: Value = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.master)
            .query_async(&mut c)
            .await?;
        let Value::Array(parts) = v else {
            return Err(err(
                "the sentinel does not know this master",
                self.master.clone(),
            ));
        };
        let text = |v: &Value| match v {
            Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
            Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        };
        match parts.as_slice() {
            [h, p] => {
                let (h, p) = (text(h), text(p).and_then(|p| p.parse::<u16>().ok()));
                match (h, p) {
                    (Some(h), Some(p)) if !h.is_empty() => Ok(if h.contains(':') {
                        format!("[{h}]:{p}")
                    } else {
                        format!("{h}:{p}")
                    }),
                    _ => Err(err("unexpected sentinel reply", String::new())),
                }
            }
            _ => Err(err("unexpected sentinel reply", String::new())),
        }
    }

    /// Connects to `addr` and checks it is a master: right after a failover a
    /// sentinel may still name the old primary, now a replica.
    async fn open_master(
        &self,
        addr: &str,
        config: &AsyncConnectionConfig,
    ) -> Result<MultiplexedConnection, RedisError> {
        let url = format!("redis://{}{addr}/{}", self.userinfo, self.db);
        let client = redis::Client::open(url).map_err(|_| {
            err(
                "the sentinel named an address that does not parse",
                addr.into(),
            )
        })?;
        let mut c = client
            .get_multiplexed_async_connection_with_config(config)
            .await?;
        let role: Value = redis::cmd("ROLE").query_async(&mut c).await?;
        let is_master = matches!(&role, Value::Array(v) if matches!(v.first(),
            Some(Value::BulkString(b)) if b == b"master"));
        if !is_master {
            return Err(err(
                "the address the sentinel named is not a master (failover in progress?)",
                addr.to_string(),
            ));
        }
        tracing::debug!(master = addr, "replication: sentinel resolved the master");
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentinels(url: &str) -> Sentinels {
        match Endpoint::parse(url) {
            Ok(Endpoint::Sentinel(s)) => s,
            Ok(Endpoint::Direct(_)) => panic!("{url}: parsed as direct"),
            Err(e) => panic!("{url}: {e}"),
        }
    }

    #[test]
    fn sentinel_urls_parse() {
        let s = sentinels("redis+sentinel://h1:26380,h2,[::1]:5/mymaster");
        assert_eq!(s.addrs, ["h1:26380", "h2:26379", "[::1]:5"]);
        assert_eq!(s.master, "mymaster");
        assert_eq!((s.db, s.userinfo.as_str()), (0, ""));
        let s = sentinels("redis+sentinel://:p%40ss@h1/m/3");
        assert_eq!((s.db, s.userinfo.as_str()), (3, ":p%40ss@"));
        assert!(matches!(
            Endpoint::parse("redis://127.0.0.1/"),
            Ok(Endpoint::Direct(_))
        ));
    }

    #[test]
    fn bad_sentinel_urls_are_refused_without_the_password() {
        for url in [
            "redis+sentinel://:secretpw@h1",
            "redis+sentinel://:secretpw@h1/",
            "redis+sentinel://:secretpw@h1:x/m",
            "redis+sentinel://:secretpw@,h1/m",
            "redis+sentinel://:secretpw@h1/m/x",
            "redis+sentinel://:secretpw@h1/m/1/2",
        ] {
            match Endpoint::parse(url) {
                Err(e) => assert!(!e.contains("secretpw"), "{url}: {e}"),
                Ok(_) => panic!("{url} parsed"),
            }
        }
    }
}
