//! Bytes per waiting user: boxoffice's resident-set growth against Redis's
//! `used_memory` growth, for the same users (20-byte ids) in one line.
//!
//! The engine is measured in a fresh child process (this program run with
//! [`PROBE_FLAG`]), so memory freed by earlier workloads cannot hide growth.
//! RSS counts allocator slack and page rounding; `used_memory` counts only
//! the bytes Redis asked its allocator for: the comparison leans toward Redis.

use crate::{engine, event, event_id, queue, rss_bytes, user, T0};
use anyhow::{ensure, Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// Hidden flag: `compare --memory-probe N` joins N users and prints the result.
pub const PROBE_FLAG: &str = "--memory-probe";

/// Where the engine probe runs.
#[derive(Clone, Debug)]
pub enum Probe {
    /// This executable, run as a child with [`PROBE_FLAG`].
    Child(PathBuf),
    /// In this process (tests: the test harness is not the compare binary).
    InProcess,
}

/// Joins `n` users into one waiting room in this process and returns the
/// resident-set growth per user.
pub fn engine_probe(n: u64) -> Result<f64> {
    let before = rss_bytes().context("reading /proc/self/statm")?;
    let e = engine(16);
    let id = event_id("mem");
    let _ = e
        .put_event(&id, event(Some(queue(1, 1)), vec![], 4), [1; 32], T0)
        .map_err(|r| anyhow::anyhow!("put_event: {r}"))?;
    for i in 0..n {
        // The id is built and dropped here: only what the engine keeps counts.
        let _ = e
            .join(&id, &user(i), T0)
            .map_err(|r| anyhow::anyhow!("join {i}: {r}"))?;
    }
    let after = rss_bytes().context("reading /proc/self/statm")?;
    let waiting = e.event(&id, T0).map(|i| i.waiting).unwrap_or(0);
    ensure!(waiting == n, "{waiting} waiting after {n} joins");
    Ok(after.saturating_sub(before) as f64 / n.max(1) as f64)
}

/// The engine's bytes per waiting user with `n` users.
pub fn engine_bytes_per_user(n: u64, probe: &Probe) -> Result<f64> {
    match probe {
        Probe::InProcess => engine_probe(n),
        Probe::Child(exe) => {
            let out = Command::new(exe)
                .args([PROBE_FLAG, &n.to_string()])
                .output()
                .with_context(|| format!("running {} {PROBE_FLAG} {n}", exe.display()))?;
            ensure!(
                out.status.success(),
                "memory probe failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            text.lines()
                .find_map(|l| l.strip_prefix("bytes_per_user="))
                .and_then(|v| v.trim().parse().ok())
                .with_context(|| format!("unexpected probe output {text:?}"))
        }
    }
}
