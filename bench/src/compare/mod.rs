//! The side-by-side comparison: the same workloads, at the same concurrency,
//! against boxoffice in process, boxoffice over HTTP, the usual Redis design
//! (sorted-set queue, Lua seat holds, Lua or spin-lock coupons), that design
//! behind an HTTP front (`bin/redis_front.rs`, the like-for-like system over
//! HTTP) and bare hyper (`bin/bare_hyper.rs`, the ceiling over HTTP), in one
//! run on one machine. `bin/compare.rs` is the command line; `make bench` runs
//! it, and a quick mode runs in `make test` so it cannot rot.
//!
//! Every workload is checked on every side (no double seat, exact coupon
//! count, FIFO order); a failed check fails the run.

pub mod bare;
pub mod chart;
pub mod engine_side;
pub mod front_side;
pub mod http_side;
pub mod memory;
pub mod redis_design;
pub mod redis_layout;
pub mod report;
pub mod suite;
pub mod workloads;

use anyhow::{Context, Result};
use engine_side::EngineSide;
use front_side::{FrontServers, FrontSide};
use http_side::{HttpServer, HttpSide};
use memory::Probe;
use redis_design::{Keyspace, RedisServer, RedisSide};
use report::{MemRow, Meta, Report, Row, Status, Sys, Work};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use suite::{Coupon, System};
use workloads::{Plan, Sizes};

/// What to run and where to write.
#[derive(Clone, Debug)]
pub struct Options {
    pub sizes: Sizes,
    pub quick: bool,
    /// Client threads (connections) on every side.
    pub threads: usize,
    pub redis_server: PathBuf,
    /// `boxoffice` binary; `Err(reason)` skips the HTTP side.
    pub server: Result<PathBuf, String>,
    /// `redis_front` binary (the Redis design behind HTTP); `Err(reason)`
    /// skips that row.
    pub front: Result<PathBuf, String>,
    /// `bare_hyper` binary (the ceiling); `Err(reason)` skips that row.
    pub bare: Result<PathBuf, String>,
    pub memory_probe: Probe,
    /// The command line, as shown in the report.
    pub command: String,
    pub seed: u64,
    /// Systems to run (all by default); the others' rows say "not run".
    pub systems: Vec<Sys>,
}

impl Options {
    pub fn new(quick: bool) -> Self {
        Options {
            sizes: if quick { Sizes::quick() } else { Sizes::full() },
            quick,
            threads: 16,
            redis_server: PathBuf::from("/usr/bin/redis-server"),
            server: Err("no server binary given".into()),
            front: Err("no redis_front binary given".into()),
            bare: Err("no bare_hyper binary given".into()),
            memory_probe: Probe::InProcess,
            command: "compare".into(),
            seed: 0x5eed_b0c5,
            systems: Sys::ALL.to_vec(),
        }
    }
}

fn say(msg: impl AsRef<str>) {
    eprintln!("[compare] {}", msg.as_ref());
}

/// Runs one workload; an error or a panic (an engine bug, say) becomes a
/// failed row instead of ending the run, so the report shows what broke.
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(anyhow::anyhow!("panicked: {msg}"))
        }
    }
}

fn status_of(r: Result<suite::Outcome>) -> Status {
    match r {
        Ok(o) => Status::Done(o),
        Err(e) => Status::Failed(format!("{e:#}")),
    }
}

fn describe(work: Work, sys: Sys, s: &Status) {
    match s {
        Status::Done(o) => {
            let m = &o.measured;
            say(format!(
                "{:<18} {:<33} {:>10} ops in {:>7.2} s = {:>12.0} ops/s, p50 {:.2} µs, p99 {:.2} µs",
                work.short(),
                sys.name(),
                m.ops,
                m.elapsed.as_secs_f64(),
                m.throughput(),
                m.latency_us(0.5),
                m.latency_us(0.99)
            ));
            for note in &o.notes {
                say(format!("{:<18} {:<33} {note}", "", ""));
            }
        }
        Status::Failed(e) => say(format!("{} / {}: FAILED: {e}", work.short(), sys.name())),
        Status::Skipped(why) => say(format!("{} / {}: not run: {why}", work.short(), sys.name())),
    }
}

/// Admits the whole line (ticket, position) on one system.
type Admit<'a> = dyn Fn(&[(String, u64)]) -> Result<suite::Outcome> + 'a;

/// The queue workloads on one system: joins, polls, and (through `admit`)
/// admission of the whole line, or why it has no admission row.
fn queue_rows<S: System>(
    sys: &S,
    which: Sys,
    plan: &Plan,
    threads: usize,
    admit: Result<&Admit<'_>, &str>,
    rows: &mut Vec<Row>,
) {
    let mut push = |work, status: Status| {
        describe(work, which, &status);
        rows.push(Row {
            work,
            sys: which,
            status,
        });
    };
    match guarded(|| suite::joins(sys, plan, threads)) {
        Ok((outcome, line)) => {
            push(Work::Joins, Status::Done(outcome));
            push(
                Work::Polls,
                status_of(guarded(|| suite::polls(sys, plan, &line, threads))),
            );
            let admitted = match admit {
                Ok(f) => status_of(guarded(|| f(&line))),
                Err(why) => Status::Skipped(why.into()),
            };
            push(Work::Admit, admitted);
        }
        Err(e) => {
            push(Work::Joins, Status::Failed(format!("{e:#}")));
            push(Work::Polls, Status::Skipped("joins failed".into()));
            push(Work::Admit, Status::Skipped("joins failed".into()));
        }
    }
}

fn other_rows<S: System>(sys: &S, which: Sys, plan: &Plan, threads: usize, rows: &mut Vec<Row>) {
    let runs: [(Work, &dyn Fn() -> Result<suite::Outcome>); 3] = [
        (Work::Seats, &|| suite::seats(sys, plan, threads)),
        (Work::Coupons, &|| {
            suite::coupons(sys, plan, Coupon::Main, threads)
        }),
        (Work::SpinCoupons, &|| {
            suite::coupons(sys, plan, Coupon::Spin, threads)
        }),
    ];
    for (work, f) in runs {
        let status = status_of(guarded(f));
        describe(work, which, &status);
        rows.push(Row {
            work,
            sys: which,
            status,
        });
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The first three fields of `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".into())
}

fn now_rfc3339() -> String {
    use time::format_description::well_known::Rfc3339;
    let now = time::OffsetDateTime::now_utc();
    // Whole seconds: a report's date needs no fraction.
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_else(|_| "unknown".into())
}

/// Why a system's rows are not run.
#[derive(Clone, Debug)]
enum NotRun {
    Skipped(String),
    Failed(String),
}

impl NotRun {
    fn status(&self) -> Status {
        match self {
            NotRun::Skipped(why) => Status::Skipped(why.clone()),
            NotRun::Failed(e) => Status::Failed(e.clone()),
        }
    }
}

/// Starts one of the serving programs, or says why its rows are not run.
fn start_server<T>(
    sys: Sys,
    wanted: bool,
    bin: &Result<PathBuf, String>,
    start: impl FnOnce(&PathBuf) -> Result<T>,
    describe: impl FnOnce(&T) -> String,
) -> Result<T, NotRun> {
    if !wanted {
        return Err(NotRun::Skipped("not selected".into()));
    }
    match bin {
        Ok(bin) => match start(bin) {
            Ok(s) => {
                say(format!(
                    "{}: {} ({})",
                    sys.name(),
                    describe(&s),
                    bin.display()
                ));
                Ok(s)
            }
            Err(e) => Err(NotRun::Failed(format!("starting {}: {e:#}", bin.display()))),
        },
        Err(why) => {
            say(format!("{} not run: {why}", sys.name()));
            Err(NotRun::Skipped(why.clone()))
        }
    }
}

/// Runs everything and returns the report (failed checks are in it: see
/// [`Report::failures`]). An error here means the run could not happen at
/// all (no redis-server, say).
pub fn run(opts: &Options) -> Result<Report> {
    let started = Instant::now();
    let load_start = load_average();
    let threads = opts.threads.max(1);
    say(format!(
        "building the plan ({} mode, {threads} client threads)",
        if opts.quick { "quick" } else { "full" }
    ));
    let plan = Arc::new(Plan::new(opts.sizes.clone(), opts.seed));
    let redis = RedisServer::start(&opts.redis_server)
        .with_context(|| format!("starting {}", opts.redis_server.display()))?;
    say(format!(
        "redis-server {} on port {}",
        redis.version, redis.port
    ));
    let want = |s: Sys| opts.systems.contains(&s);
    let http = start_server(
        Sys::Http,
        want(Sys::Http),
        &opts.server,
        |b| HttpServer::start(b),
        |s| format!("boxoffice serve on {}", s.addr),
    );
    let front = start_server(
        Sys::Front,
        want(Sys::Front),
        &opts.front,
        |b| FrontServers::start(&opts.redis_server, b),
        |s| {
            format!(
                "on {}, its redis-server on port {}",
                s.front.addr, s.redis.port
            )
        },
    );
    let bare = start_server(
        Sys::Bare,
        want(Sys::Bare),
        &opts.bare,
        |b| HttpServer::launch(b, "compare-bare", |addr| vec![addr.to_string()]),
        |s| format!("on {}", s.addr),
    );
    let mut rows = Vec::new();

    let engine = EngineSide::new(&plan)?;
    let redis_side = RedisSide::new(&redis, plan.clone(), Keyspace::direct())?;
    let http_side = http.as_ref().ok().map(|s| HttpSide::new(s, plan.clone()));
    let front_side = match &front {
        Ok(s) => match FrontSide::new(s, plan.clone()) {
            Ok(side) => Ok(side),
            Err(e) => Err(NotRun::Failed(format!("{e:#}"))),
        },
        Err(why) => Err(why.clone()),
    };
    let not_run = |sys: Sys| match (sys, &http, &front_side, &bare) {
        (Sys::Http, Err(why), _, _) => why.status(),
        (Sys::Front, _, Err(why), _) => why.status(),
        (Sys::Bare, _, _, Err(why)) => why.status(),
        _ => Status::Skipped("not selected".into()),
    };
    let skip = |sys: Sys, works: &[Work], rows: &mut Vec<Row>| {
        for &work in works {
            let status = not_run(sys);
            describe(work, sys, &status);
            rows.push(Row { work, sys, status });
        }
    };
    let bare_rows = |works: &[Work], rows: &mut Vec<Row>| match &bare {
        Ok(server) => {
            for &work in works {
                let status = guarded(|| Ok(bare::status(server, &plan, work, threads)))
                    .unwrap_or_else(|e| Status::Failed(format!("{e:#}")));
                describe(work, Sys::Bare, &status);
                rows.push(Row {
                    work,
                    sys: Sys::Bare,
                    status,
                });
            }
        }
        Err(_) => skip(Sys::Bare, works, rows),
    };
    const QUEUE: [Work; 3] = [Work::Joins, Work::Polls, Work::Admit];
    const OTHER: [Work; 3] = [Work::Seats, Work::Coupons, Work::SpinCoupons];

    // Each system in turn, so none competes with another for the 2 cores.
    let engine_admit = |line: &[(String, u64)]| engine.admit(line);
    if want(Sys::Engine) {
        queue_rows(
            &engine,
            Sys::Engine,
            &plan,
            threads,
            Ok(&engine_admit),
            &mut rows,
        );
    } else {
        skip(Sys::Engine, &QUEUE, &mut rows);
    }
    let redis_admit = |line: &[(String, u64)]| redis_side.admit(line);
    if want(Sys::Redis) {
        queue_rows(
            &redis_side,
            Sys::Redis,
            &plan,
            threads,
            Ok(&redis_admit),
            &mut rows,
        );
    } else {
        skip(Sys::Redis, &QUEUE, &mut rows);
    }
    match &http_side {
        Some(side) => queue_rows(
            side,
            Sys::Http,
            &plan,
            threads,
            Err("the server admits on its own timer"),
            &mut rows,
        ),
        None => skip(Sys::Http, &QUEUE, &mut rows),
    }
    match &front_side {
        Ok(side) => queue_rows(
            side,
            Sys::Front,
            &plan,
            threads,
            Err("no scheduler runs behind the front (the Redis design's admission row is the same commands)"),
            &mut rows,
        ),
        Err(_) => skip(Sys::Front, &QUEUE, &mut rows),
    }
    bare_rows(&QUEUE, &mut rows);
    if want(Sys::Engine) {
        other_rows(&engine, Sys::Engine, &plan, threads, &mut rows);
    } else {
        skip(Sys::Engine, &OTHER, &mut rows);
    }
    if want(Sys::Redis) {
        other_rows(&redis_side, Sys::Redis, &plan, threads, &mut rows);
    } else {
        skip(Sys::Redis, &OTHER, &mut rows);
    }
    match &http_side {
        Some(side) => other_rows(side, Sys::Http, &plan, threads, &mut rows),
        None => skip(Sys::Http, &OTHER, &mut rows),
    }
    match &front_side {
        Ok(side) => other_rows(side, Sys::Front, &plan, threads, &mut rows),
        Err(_) => skip(Sys::Front, &OTHER, &mut rows),
    }
    bare_rows(&OTHER, &mut rows);
    // The HTTP servers' state is no longer needed; free their memory and CPU.
    drop(front_side);
    drop(front);
    drop(bare);
    drop(http_side);
    drop(http);
    drop(engine);

    let mut memory = Vec::new();
    for &users in &opts.sizes.memory_users {
        say(format!("memory with {users} waiting users"));
        let e = want(Sys::Engine).then(|| {
            guarded(|| memory::engine_bytes_per_user(users, &opts.memory_probe))
                .map_err(|e| format!("{e:#}"))
        });
        let r = want(Sys::Redis).then(|| {
            redis_side
                .memory_per_user(users)
                .map_err(|e| format!("{e:#}"))
        });
        say(format!("  boxoffice {e:.1?} B/user, Redis {r:.1?} B/user"));
        memory.push(MemRow {
            users,
            engine: e,
            redis: r,
        });
    }

    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(Report {
        meta: Meta {
            date: now_rfc3339(),
            command: opts.command.clone(),
            nproc,
            cpu_model: cpu_model(),
            redis_version: redis.version.clone(),
            threads,
            quick: opts.quick,
            wall: started.elapsed(),
            load_start,
            load_end: load_average(),
        },
        sizes: opts.sizes.clone(),
        rows,
        memory,
    })
}
