//! The comparison program's quick mode, end to end, so it cannot rot: tiny
//! sizes against a redis-server it starts, the engine in process, the Redis
//! design behind its HTTP front and bare hyper (this package's binaries) and,
//! when the workspace has built it, the boxoffice server over HTTP. Every
//! correctness check must pass and the report and chart must be written.
//!
//! Skipped (with a notice) only when /usr/bin/redis-server is absent.

use anyhow::{ensure, Result};
use boxoffice_bench::compare::report::{self, Report, Status, Sys, Work};
use boxoffice_bench::compare::workloads::Sizes;
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

/// Options with this package's two HTTP fronts (cargo builds them for its
/// integration tests).
fn options(quick_sizes: Sizes) -> Options {
    let mut opts = Options::new(true);
    opts.sizes = quick_sizes;
    opts.front = Ok(PathBuf::from(env!("CARGO_BIN_EXE_redis_front")));
    opts.bare = Ok(PathBuf::from(env!("CARGO_BIN_EXE_bare_hyper")));
    opts
}

fn redis_missing() -> bool {
    let missing = !Path::new("/usr/bin/redis-server").exists();
    if missing {
        eprintln!("NOTICE: compare quick mode skipped: /usr/bin/redis-server is absent");
    }
    missing
}

/// Rows that never run: no system admits over HTTP.
fn admits_elsewhere(row: &report::Row) -> bool {
    row.work == Work::Admit && matches!(row.sys, Sys::Http | Sys::Front | Sys::Bare)
}

fn done(report: &Report, work: Work, sys: Sys) -> bool {
    report.outcome(work, sys).is_some()
}

#[test]
fn quick_compare_end_to_end() -> Result<()> {
    if redis_missing() {
        return Ok(());
    }
    let started = Instant::now();
    let mut opts = options(Sizes::quick());
    opts.server = server_binary();
    if let Err(why) = &opts.server {
        eprintln!("NOTICE: HTTP side of the quick compare not run: {why}");
    }
    let report = compare::run(&opts)?;
    let failures = report.failures();
    ensure!(failures.is_empty(), "failed checks: {failures:#?}");
    for row in &report.rows {
        let http_skipped = row.sys == Sys::Http && opts.server.is_err();
        let ok = matches!(row.status, Status::Done(_)) || http_skipped || admits_elsewhere(row);
        ensure!(
            ok,
            "{:?} / {:?} did not run: {:?}",
            row.work,
            row.sys,
            row.status
        );
    }
    // The front went through the Redis design's checks (a note on moved
    // positions, as for the direct client) and holds really sold seats.
    let joins = report
        .outcome(Work::Joins, Sys::Front)
        .map(|o| o.notes.join(" "));
    ensure!(
        joins.is_some_and(|n| n.contains("join replies")),
        "the front's joins were not checked against its sorted set"
    );
    let seats = report
        .outcome(Work::Seats, Sys::Front)
        .map(|o| o.notes.join(" "));
    ensure!(
        seats.is_some_and(|n| n.contains("seats sold")),
        "the front's holds were not checked"
    );
    // The front's CPU is the front's plus its redis-server's, when measured.
    if let Some(m) = report.outcome(Work::Joins, Sys::Front).map(|o| &o.measured) {
        ensure!(
            m.cpu.is_none() || m.cpu_parts.len() == 2,
            "the front's CPU is not split into front + redis-server: {:?}",
            m.cpu_parts
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
    ensure!(
        text.contains("### Over HTTP: the pure-Redis bound and the like-for-like system"),
        "the over-HTTP section is missing"
    );
    ensure!(
        text.contains(Sys::Front.name()) && text.contains(Sys::Bare.name()),
        "the front and bare rows are missing"
    );
    if opts.server.is_ok() {
        for work in [Work::Joins, Work::Polls, Work::Seats, Work::Coupons] {
            ensure!(
                report.ratio_of(work, Sys::Http, Sys::Front).is_some()
                    && report.ratio_of(work, Sys::Http, Sys::Bare).is_some(),
                "no boxoffice / front or / bare ratio for {work:?}"
            );
        }
    }
    ensure!(svg.contains("<svg"), "the chart is not SVG");
    ensure!(
        started.elapsed() < Duration::from_secs(30),
        "the quick mode took {:?}",
        started.elapsed()
    );
    Ok(())
}

/// `--only front,bare`: just those two rows run, on even smaller sizes, and
/// every other system's rows say they were not selected.
#[test]
fn only_the_front_and_bare_hyper() -> Result<()> {
    if redis_missing() {
        return Ok(());
    }
    let mut sizes = Sizes::quick();
    sizes.joiners = 300;
    sizes.hold_attempts = 200;
    sizes.claimers = 300;
    sizes.coupon_stock = 30;
    sizes.spin_claimers = 100;
    sizes.spin_stock = 10;
    sizes.memory_users = vec![];
    let mut opts = options(sizes);
    opts.systems = vec![Sys::Front, Sys::Bare];
    let report = compare::run(&opts)?;
    let failures = report.failures();
    ensure!(failures.is_empty(), "failed checks: {failures:#?}");
    for row in &report.rows {
        let selected = opts.systems.contains(&row.sys);
        let ok = match &row.status {
            Status::Done(_) => selected,
            Status::Skipped(why) if !selected => why == "not selected",
            Status::Skipped(_) => admits_elsewhere(row),
            Status::Failed(_) => false,
        };
        ensure!(ok, "{:?} / {:?}: {:?}", row.work, row.sys, row.status);
    }
    ensure!(done(&report, Work::SpinCoupons, Sys::Front));
    ensure!(done(&report, Work::Polls, Sys::Bare));
    Ok(())
}
