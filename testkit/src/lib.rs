//! Process helpers shared by the integration tests (tests/replication_support)
//! and the comparison program (bench/src/compare): a free loopback port, a
//! temp directory removed on drop, a child process killed on drop, and a
//! private `redis-server` on a free port stopped by its PID.
//!
//! Everything here only ever signals processes it started itself: a test or
//! a benchmark must never touch a server someone else runs on the machine.
//! For Redis HA tests: a replica ([`RedisOptions::replica_of`]) and a
//! [`Sentinel`], each on its own free port and stopped by PID.
//! Sync and std-only, so both the tokio tests and the threaded benchmark can
//! use it; the one exception is [`browser`] (headless Chromium over
//! WebDriver, async, for the real-browser tests).

pub mod browser;

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What went wrong starting or driving a child process.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The process ended before it was ready; `log` is its output so far.
    #[error("{what} exited ({status}): {log}")]
    Exited {
        what: String,
        status: ExitStatus,
        log: String,
    },
    #[error("{what} did not answer within {after:?}")]
    NotReady { what: String, after: Duration },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// A free loopback port: bound, read and released, so the child binds it
/// next. Another process may take it in between; callers that pick the port
/// themselves retry with a new one (see [`RedisServer::start`]).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `ready` every `every` until it returns true or `within` has passed;
/// returns whether it became ready.
pub fn wait_until(within: Duration, every: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// A fresh directory under the system temp dir, removed (with everything in
/// it) on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// `boxoffice-{tag}-{pid}-{nanos}-{n}`: unique across processes and
    /// across calls in one process, so parallel tests never share one.
    pub fn new(tag: &str) -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "boxoffice-{tag}-{}-{nanos}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A stop/continue signal for [`ChildGuard::signal`] (kill is
/// [`ChildGuard::kill`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGSTOP: the process freezes, its connections hang.
    Stop,
    /// SIGCONT.
    Cont,
}

/// A child process this program started, killed (SIGKILL) and reaped on
/// drop, so also when a test panics or a benchmark returns an error.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
}

impl ChildGuard {
    /// Spawns `cmd` with stdin closed and stdout and stderr appended to `log`
    /// (created if missing, kept across restarts).
    pub fn spawn_logged(cmd: &mut Command, log: &Path) -> io::Result<Self> {
        let out = OpenOptions::new().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()?;
        Ok(ChildGuard { child: Some(child) })
    }

    /// Guards a child spawned elsewhere.
    pub fn new(child: Child) -> Self {
        ChildGuard { child: Some(child) }
    }

    /// The PID, or None once killed.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(status)` if the process has ended (or was killed).
    pub fn exited(&mut self) -> io::Result<Option<ExitStatus>> {
        match &mut self.child {
            Some(c) => c.try_wait(),
            None => Ok(Some(ExitStatus::default())),
        }
    }

    /// Sends SIGSTOP or SIGCONT to this child's PID.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        let Some(pid) = self.id() else {
            return Err(io::Error::other("the process is no longer running"));
        };
        let flag = match sig {
            Signal::Stop => "-STOP",
            Signal::Cont => "-CONT",
        };
        // The shell's builtin `kill`: no procps (and no libc binding) needed.
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill {flag} {pid}"))
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("kill {flag} {pid}: {status}")))
        }
    }

    /// kill -9 of this child's PID, then reaps it; a no-op the second time.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // A stopped process dies of SIGKILL too; SIGCONT first does no
            // harm and lets it go at once.
            if let Ok(None) = c.try_wait() {
                let _ = Command::new("sh")
                    .arg("-c")
                    .arg(format!("kill -CONT {}", c.id()))
                    .status();
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How to start a [`RedisServer`].
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// The binary (default: `redis-server` from `PATH`).
    pub bin: PathBuf,
    /// A fixed port (nothing else may listen there), or None for a free one.
    pub port: Option<u16>,
    /// An fsync-always append-only file, so a restart keeps everything
    /// Redis acknowledged; otherwise no persistence at all.
    pub aof: bool,
    /// How long to wait for the first PONG.
    pub ready_within: Duration,
    /// Start as a replica of the Redis on this loopback port
    /// (`--replicaof 127.0.0.1 <port>`).
    pub replica_of: Option<u16>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            bin: PathBuf::from("redis-server"),
            port: None,
            aof: false,
            ready_within: Duration::from_secs(10),
            replica_of: None,
        }
    }
}

/// A `redis-server` on 127.0.0.1 in its own temp dir (its log is
/// `redis.log` there), killed by PID and the dir removed on drop.
#[derive(Debug)]
pub struct RedisServer {
    // Declared before `dir`: the process goes before its directory.
    child: ChildGuard,
    dir: TempDir,
    port: u16,
    opts: RedisOptions,
}

impl RedisServer {
    /// Starts one and waits for PONG. On a free port, a port taken between
    /// probing and binding is retried with another (three tries).
    pub fn start(opts: RedisOptions) -> Result<Self, Error> {
        let tries = if opts.port.is_some() { 1 } else { 3 };
        let mut last = None;
        for _ in 0..tries {
            match Self::try_start(&opts) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::NotReady {
            what: "redis-server".into(),
            after: Duration::ZERO,
        }))
    }

    fn try_start(opts: &RedisOptions) -> Result<Self, Error> {
        let port = match opts.port {
            Some(p) => p,
            None => free_port().map_err(io_err("probing a free loopback port"))?,
        };
        let dir = TempDir::new("redis").map_err(io_err("creating redis-server's temp dir"))?;
        let child = Self::launch(opts, port, dir.path())?;
        let mut server = RedisServer {
            child,
            dir,
            port,
            opts: opts.clone(),
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn launch(opts: &RedisOptions, port: u16, dir: &Path) -> Result<ChildGuard, Error> {
        let mut cmd = Command::new(&opts.bin);
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(dir)
            .args(["--appendonly", if opts.aof { "yes" } else { "no" }])
            .args(["--daemonize", "no", "--loglevel", "warning"]);
        if opts.aof {
            cmd.args(["--appendfsync", "always"]);
        }
        if let Some(primary) = opts.replica_of {
            cmd.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        ChildGuard::spawn_logged(&mut cmd, &dir.join("redis.log"))
            .map_err(io_err(format!("starting {}", opts.bin.display())))
    }

    fn wait_ready(&mut self) -> Result<(), Error> {
        let what = format!("redis-server on port {}", self.port);
        let deadline = Instant::now() + self.opts.ready_within;
        loop {
            let exited = self.child.exited().map_err(io_err(what.clone()))?;
            if let Some(status) = exited {
                return Err(Error::Exited {
                    what,
                    status,
                    log: self.log().trim().to_string(),
                });
            }
            if self.ping() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::NotReady {
                    what,
                    after: self.opts.ready_within,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its working directory (AOF, log); other files may go there too and
    /// are removed with it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `redis://127.0.0.1:{port}/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The PID, or None after [`kill`](Self::kill).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Its output so far (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("redis.log")).unwrap_or_default()
    }

    /// A raw PING (no client library involved): true on `+PONG`.
    pub fn ping(&self) -> bool {
        ping(self.port)
    }

    /// Freezes the server (SIGSTOP): connections hang, as with a stalled
    /// Redis.
    pub fn pause(&self) -> io::Result<()> {
        self.child.signal(Signal::Stop)
    }

    pub fn resume(&self) -> io::Result<()> {
        self.child.signal(Signal::Cont)
    }

    /// kill -9 of this server's PID; the directory stays until drop.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// Kills it (if running) and starts it again on the same port and
    /// directory: with the AOF, the data comes back.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.child.kill();
        self.child = Self::launch(&self.opts, self.port, self.dir.path())?;
        self.wait_ready()
    }
}

/// How to start a [`Sentinel`]. The defaults are short, for tests: a
/// primary is judged down after 1 s and a failover may retry after 3 s.
#[derive(Clone, Debug)]
pub struct SentinelOptions {
    /// The binary (default `redis-server`, run with `--sentinel`; Debian's
    /// `redis-sentinel` is the same program).
    pub bin: PathBuf,
    /// The name the master is monitored under (`redis+sentinel://…/<name>`).
    pub master_name: String,
    /// `down-after-milliseconds`.
    pub down_after: Duration,
    /// `failover-timeout`.
    pub failover_timeout: Duration,
    /// How many sentinels must agree the primary is down (1 for one sentinel).
    pub quorum: u32,
    pub ready_within: Duration,
}

impl Default for SentinelOptions {
    fn default() -> Self {
        SentinelOptions {
            bin: PathBuf::from("redis-server"),
            master_name: "boxoffice".into(),
            down_after: Duration::from_millis(1000),
            failover_timeout: Duration::from_millis(3000),
            quorum: 1,
            ready_within: Duration::from_secs(10),
        }
    }
}

/// A Redis Sentinel on 127.0.0.1 monitoring the primary on a given loopback
/// port, with its (rewritable) config file in its own temp dir; killed by PID
/// and the dir removed on drop.
#[derive(Debug)]
pub struct Sentinel {
    child: ChildGuard,
    dir: TempDir,
    port: u16,
}

impl Sentinel {
    /// Starts one watching the primary on `primary_port` and waits for PONG
    /// (three tries on a free port, as [`RedisServer::start`]).
    pub fn start(primary_port: u16, opts: SentinelOptions) -> Result<Self, Error> {
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(primary_port, &opts) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::NotReady {
            what: "redis sentinel".into(),
            after: Duration::ZERO,
        }))
    }

    fn try_start(primary_port: u16, opts: &SentinelOptions) -> Result<Self, Error> {
        let port = free_port().map_err(io_err("probing a free loopback port"))?;
        let dir = TempDir::new("sentinel").map_err(io_err("creating the sentinel's temp dir"))?;
        // Sentinel rewrites its config file (state, epochs): it must be a
        // writable file of its own.
        let conf = dir.path().join("sentinel.conf");
        let name = &opts.master_name;
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndaemonize no\nloglevel notice\n\
             dir {dir}\nlogfile \"\"\n\
             sentinel monitor {name} 127.0.0.1 {primary_port} {quorum}\n\
             sentinel down-after-milliseconds {name} {down}\n\
             sentinel failover-timeout {name} {failover}\n\
             sentinel parallel-syncs {name} 1\n",
            dir = dir.path().display(),
            quorum = opts.quorum.max(1),
            down = opts.down_after.as_millis().max(1),
            failover = opts.failover_timeout.as_millis().max(1),
        );
        std::fs::write(&conf, text).map_err(io_err("writing sentinel.conf"))?;
        let mut cmd = Command::new(&opts.bin);
        cmd.arg(&conf).arg("--sentinel");
        let log = dir.path().join("sentinel.log");
        let mut child = ChildGuard::spawn_logged(&mut cmd, &log).map_err(io_err(format!(
            "starting {} --sentinel",
            opts.bin.display()
        )))?;
        let what = format!("redis sentinel on port {port}");
        let deadline = Instant::now() + opts.ready_within;
        loop {
            if let Some(status) = child.exited().map_err(io_err(what.clone()))? {
                return Err(Error::Exited {
                    what,
                    status,
                    log: std::fs::read_to_string(&log).unwrap_or_default(),
                });
            }
            if ping(port) {
                return Ok(Sentinel { child, dir, port });
            }
            if Instant::now() >= deadline {
                return Err(Error::NotReady {
                    what,
                    after: opts.ready_within,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:{port}`, for a `redis+sentinel://` URL.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Its log so far (failover events: `+sdown`, `+switch-master`, …).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        self.child.kill();
    }
}

/// A raw PING to a loopback port: true on `+PONG`.
pub fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_are_distinct_and_removed() -> io::Result<()> {
        let a = TempDir::new("kit")?;
        let b = TempDir::new("kit")?;
        assert_ne!(a.path(), b.path());
        let p = a.path().to_path_buf();
        std::fs::write(p.join("f"), b"x")?;
        drop(a);
        assert!(!p.exists());
        Ok(())
    }

    #[test]
    fn child_is_killed_on_drop() -> io::Result<()> {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let dir = TempDir::new("kit")?;
        let mut child = ChildGuard::spawn_logged(&mut cmd, &dir.path().join("log"))?;
        assert_eq!(child.exited()?, None);
        child.signal(Signal::Stop)?;
        child.kill();
        assert_eq!(child.id(), None);
        assert!(child.exited()?.is_some());
        Ok(())
    }

    #[test]
    fn free_ports_are_bindable() -> io::Result<()> {
        // Other tests of the suite take ports in parallel, so one of them may
        // bind the port between `free_port` and the bind below (seen once in
        // CI as AddrInUse). A port that is free every time but one of five is
        // what `free_port` promises; one it returns that is never bindable
        // still fails this test.
        let mut last = None;
        for _ in 0..5 {
            match TcpListener::bind(("127.0.0.1", free_port()?)) {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no attempt made")))
    }
}
