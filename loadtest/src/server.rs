//! The server under test: started by the tool (`--server-bin`, on a free
//! loopback port with its own random credentials, killed by PID at the end)
//! or reached at `--target`; and what /proc says about the machine and the
//! processes (CPU seconds, peak memory, load).

use anyhow::{bail, Context, Result};
use boxoffice_testkit::{ChildGuard, RedisOptions, RedisServer};
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Where and as whom the driver talks to the server.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub admin_token: String,
    pub service_token: String,
    pub secret: String,
    /// The `redis://` URL the server replicates to (the tool's own Redis).
    pub redis_url: Option<String>,
}

/// A server (and Redis) this tool started; both die with it.
#[derive(Debug)]
pub struct Started {
    // Declared first: the server goes before its Redis.
    pub server: ChildGuard,
    pub _redis: Option<RedisServer>,
    pub pid: u32,
}

/// `n` random bytes as hex, from the OS.
pub fn random_hex(n: usize) -> Result<String> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// What the server needs to carry a load test from a few loopback
/// addresses: no per-address join limit (public joins of thousands of users
/// come from 127.0.0.2…), enough connections per address and streams.
pub fn start(
    bin: &Path,
    with_redis: bool,
    out_dir: &Path,
    max_streams: u32,
) -> Result<(Target, Started)> {
    let redis = if with_redis {
        Some(RedisServer::start(RedisOptions::default()).context("starting redis-server")?)
    } else {
        None
    };
    let redis_url = redis.as_ref().map(RedisServer::url);
    let port = boxoffice_testkit::free_port()?;
    let target = Target {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        admin_token: random_hex(16)?,
        service_token: random_hex(16)?,
        secret: random_hex(32)?,
        redis_url: redis_url.clone(),
    };
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .arg("--listen")
        .arg(target.addr.to_string())
        .arg("--admin-token")
        .arg(&target.admin_token)
        .arg("--service-token")
        .arg(&target.service_token)
        .arg("--secret")
        .arg(&target.secret)
        .arg("--join-rate")
        .arg("0")
        .arg("--max-connections")
        .arg("20000")
        .arg("--max-connections-per-client")
        .arg("10000")
        .arg("--max-streams")
        .arg((max_streams + 100).to_string());
    if let Some(url) = &redis_url {
        cmd.arg("--redis").arg(url);
    }
    // The server's own environment must not change what is tested.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("BOXOFFICE_") {
            cmd.env_remove(k);
        }
    }
    let log = out_dir.join("server.log");
    let server = ChildGuard::spawn_logged(&mut cmd, &log)
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = server
        .id()
        .context("the server exited before it got a PID")?;
    Ok((
        target,
        Started {
            server,
            _redis: redis,
            pid,
        },
    ))
}

/// Waits for `/readyz` to answer 200 (plain blocking HTTP: nothing runs yet).
pub fn wait_ready(addr: SocketAddr, started: Option<&mut Started>, within: Duration) -> Result<()> {
    use std::io::Write;
    let deadline = Instant::now() + within;
    let mut started = started;
    loop {
        if let Some(s) = started.as_deref_mut() {
            if let Ok(Some(st)) = s.server.exited() {
                bail!("the server exited during start-up ({st}); see server.log");
            }
        }
        if let Ok(mut c) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let req = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            let mut buf = Vec::new();
            if c.write_all(req.as_bytes()).is_ok()
                && c.read_to_end(&mut buf).is_ok()
                && buf.starts_with(b"HTTP/1.1 200")
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("the server at {addr} was not ready within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `uname -srm`, the CPU model and count, the memory.
pub fn machine() -> String {
    let uname = Command::new("uname")
        .arg("-srm")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    format!(
        "{uname}; {cpus} × {model}; {:.1} GiB RAM",
        mem_kb as f64 / 1024.0 / 1024.0
    )
}

/// Whether process `pid` still runs (not gone, not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The 1-minute load average.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// User + system CPU seconds of a process (`self` or a PID), from
/// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s: the
/// kernel's USER_HZ on Linux).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, stime 15.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Peak resident memory (VmHWM) of a process, bytes.
pub fn peak_rss(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_reads_of_this_process() {
        assert!(cpu_seconds("self").is_some());
        assert!(peak_rss("self").is_some_and(|b| b > 0));
        assert!(!machine().is_empty());
        assert!(alive(std::process::id()));
        assert!(!alive(u32::MAX));
        assert_eq!(random_hex(4).map(|s| s.len()).ok(), Some(8));
    }
}
