//! The comparison program's quick mode, end to end, so it cannot rot: tiny
//! sizes against a redis-server it starts, the engine in process and, when
//! the workspace has built it, the boxoffice server over HTTP. Every
//! correctness check must pass and the report and chart must be written.
//!
//! Skipped (with a notice) only when /usr/bin/redis-server is absent.

use anyhow::{ensure, Result};
use boxoffice_bench::compare::report::{self, Status, Sys};
use boxoffice_bench::compare::{self, chart, Options};
use boxoffice_testkit::TempDir;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The server binary `cargo test --workspace` builds for the root package's
/// tests (debug), else a release build; `Err` skips the HTTP side.
fn server_binary() -> Result<PathBuf, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    ["debug", "release"]
        .iter()
        .map(|p| target.join(p).join("boxoffice"))
        .find(|p| p.exists())
        .ok_or_else(|| "no boxoffice binary in target/ (build the workspace first)".into())
}

#[test]
fn quick_compare_end_to_end() -> Result<()> {
    let redis = Path::new("/usr/bin/redis-server");
    if !redis.exists() {
        eprintln!("NOTICE: compare quick mode skipped: /usr/bin/redis-server is absent");
        return Ok(());
    }
    let started = Instant::now();
    let mut opts = Options::new(true);
    opts.server = server_binary();
    if let Err(why) = &opts.server {
        eprintln!("NOTICE: HTTP side of the quick compare not run: {why}");
    }
    let report = compare::run(&opts)?;
    let failures = report.failures();
    ensure!(failures.is_empty(), "failed checks: {failures:#?}");
    for row in &report.rows {
        let http_skipped = row.sys == Sys::Http && opts.server.is_err();
        let ok = matches!(row.status, Status::Done(_))
            || http_skipped
            || (row.sys == Sys::Http && row.work == report::Work::Admit);
        ensure!(
            ok,
            "{:?} / {:?} did not run: {:?}",
            row.work,
            row.sys,
            row.status
        );
    }

    let tmp = TempDir::new("compare-quick")?;
    let dir = tmp.path();
    let md = dir.join("benchmarks.md");
    std::fs::write(&md, "# Benchmarks\n\nthe lead's text\n")?;
    report::write_section(&md, &report.markdown(Some("compare.svg")))?;
    chart::write(&report, &dir.join("compare.svg"))?;
    let text = std::fs::read_to_string(&md)?;
    let svg = std::fs::read_to_string(dir.join("compare.svg"))?;
    drop(tmp);
    ensure!(text.starts_with("# Benchmarks\n\nthe lead's text\n"));
    ensure!(text.contains(report::BEGIN) && text.contains(report::END));
    ensure!(text.contains("**join:"), "the table is missing");
    ensure!(svg.contains("<svg"), "the chart is not SVG");
    ensure!(
        started.elapsed() < Duration::from_secs(30),
        "the quick mode took {:?}",
        started.elapsed()
    );
    Ok(())
}
