//! An open-loop, rate-paced HTTP/1.1 load probe: latency at a chosen
//! throughput, the same for every server it is pointed at.
//!
//! wrk (closed loop) sends the next request as soon as the last one is
//! answered, so at saturation its p99 mixes queueing with per-request cost
//! and two servers are compared at different throughputs. This probe sends
//! on a fixed schedule instead: request `i` of the run is due at
//! `start + i / rate` and goes out on connection `i % connections` (each
//! connection sends its share of the rate, staggered). A connection has one
//! request in flight at a time; when an answer is late, the requests due
//! meanwhile wait and go out as soon as it is free. Latency is measured from
//! each request's *intended* send time (which counts that wait, correcting
//! coordinated omission as wrk2 does) and also from its actual send.
//!
//! The workloads are those of `scripts/wrk/status.lua` and
//! `scripts/wrk/unique_post.lua`, byte for byte in paths, headers and bodies:
//!
//! | mode | request |
//! |---|---|
//! | `poll` | `GET /v1/events/bench/queue/<ticket>`, a ticket from `--tickets` at random |
//! | `join` | `POST /v1/events/bench/queue` `{"user":"w-<n>"}` (service token) |
//! | `hold` | `POST /v1/events/<event>/holds` `{"user":"w-<n>","seats":["S<a>-<b>-<c>"]}` (service token) |
//! | `claim` | `POST /v1/coupons/bench/claims` `{"user":"w-<n>"}` (service token) |
//!
//! where `n = offset + i` and a hold takes seat `n` of the 1,000,000 in
//! sections `S0`–`S9`, rows `1`–`10`, seats `1`–`10000`.
//!
//! Requests due in the first `--warmup-seconds` are sent but not measured;
//! the run stops by itself 2 s after the last request was due (answers still
//! outstanding then are counted as `unfinished`, and their latency so far
//! goes into the corrected histogram; requests never sent are `unsent`).
//! Loopback only. `--cpu-pid` (repeatable) adds the server processes' CPU
//! (utime + stime from `/proc/<pid>/stat`) over the measured window, per
//! answered request.
//!
//! Output: one line of JSON on stdout, one human line on stderr.
//!
//! ```text
//! cargo run --release -p boxoffice-bench --bin paced -- 127.0.0.1:18180 \
//!   --rate 30000 --seconds 10 --warmup-seconds 2 --mode poll --tickets tickets.txt
//! ```

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Seats in the hold workload's venue (`S0-1-1` … `S9-10-10000`).
const VENUE_SEATS: u64 = 1_000_000;
/// How long the run waits for answers after the last request was due.
const DRAIN: Duration = Duration::from_secs(2);
/// Histogram bounds, in microseconds: 1 µs to 10 minutes, 3 digits.
const MAX_US: u64 = 600_000_000;
/// The timeline's slot: the worst corrected latency of the requests due in
/// each 10 ms of the measured window (stalls that recur show their period).
const SLOT: Duration = Duration::from_millis(10);
/// Slots reported (the worst ones).
const WORST_SLOTS: usize = 12;

/// Open-loop, rate-paced HTTP/1.1 probe (loopback only).
#[derive(Debug, Parser)]
#[command(name = "paced")]
struct Args {
    /// Server to load, host:port on loopback.
    target: SocketAddr,
    /// Total requests per second, over all connections.
    #[arg(long)]
    rate: u32,
    /// Connections, each with one request in flight at a time.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// Seconds sent at the same rate before measuring.
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u32,
    /// The workload.
    #[arg(long, value_enum, default_value_t = Mode::Poll)]
    mode: Mode,
    /// poll: file of tickets, one a line.
    #[arg(long)]
    tickets: Option<std::path::PathBuf>,
    /// join, hold, claim: bearer token of the service realm.
    #[arg(long, default_value = "")]
    service_token: String,
    /// join, hold, claim: the first user (and seat) number.
    #[arg(long, default_value_t = 0)]
    offset: u64,
    /// hold: the event whose seats are held.
    #[arg(long, default_value = "seats")]
    event: String,
    /// Local address to bind client sockets to (repeatable; connection `c`
    /// takes the `c % n`-th); each must be loopback.
    #[arg(long = "source", default_value = "127.0.0.1")]
    sources: Vec<IpAddr>,
    /// Client runtime threads (1: a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// A server process whose CPU to count over the measured window
    /// (repeatable: the front and its redis-server).
    #[arg(long = "cpu-pid")]
    cpu_pids: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Poll,
    Join,
    Hold,
    Claim,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Poll => "poll",
            Mode::Join => "join",
            Mode::Hold => "hold",
            Mode::Claim => "claim",
        }
    }
}

/// When each request is due and on which connection.
#[derive(Clone, Copy, Debug)]
struct Schedule {
    rate: u32,
    connections: u32,
    warmup_s: u32,
    seconds: u32,
}

impl Schedule {
    /// Requests in the whole run, warm-up included.
    fn total(&self) -> u64 {
        u64::from(self.rate) * u64::from(self.warmup_s + self.seconds)
    }
    /// Offset of request `i` from the start: `i / rate` seconds.
    fn due(&self, i: u64) -> Duration {
        let r = u64::from(self.rate);
        Duration::new(i / r, ((i % r) * 1_000_000_000 / r) as u32)
    }
    /// The connection that sends request `i`.
    fn connection(&self, i: u64) -> usize {
        (i % u64::from(self.connections)) as usize
    }
    /// The measured window, as offsets from the start.
    fn window(&self) -> (Duration, Duration) {
        let w = Duration::from_secs(u64::from(self.warmup_s));
        (w, w + Duration::from_secs(u64::from(self.seconds)))
    }
    /// Request `i` is measured (it is due inside the window).
    fn measured(&self, due: Duration) -> bool {
        let (a, b) = self.window();
        due >= a && due < b
    }
}

/// The seat id of hold number `n` (as `unique_post.lua` names it).
fn seat(n: u64) -> String {
    let k = n % VENUE_SEATS;
    format!(
        "S{}-{}-{}",
        k / 100_000,
        (k / 10_000) % 10 + 1,
        k % 10_000 + 1
    )
}

/// What every connection needs to build its requests.
#[derive(Debug)]
struct Workload {
    mode: Mode,
    host: HeaderValue,
    auth: HeaderValue,
    tickets: Vec<String>,
    event: String,
    offset: u64,
}

impl Workload {
    /// Request number `i` of the run (`pick` chooses a ticket for a poll).
    fn request(&self, i: u64, pick: u64) -> Result<Request<Full<Bytes>>> {
        let n = self.offset + i;
        let (method, path, body) = match self.mode {
            Mode::Poll => {
                let t = &self.tickets[(pick % self.tickets.len() as u64) as usize];
                (Method::GET, format!("/v1/events/bench/queue/{t}"), None)
            }
            Mode::Join => (
                Method::POST,
                "/v1/events/bench/queue".to_string(),
                Some(format!(r#"{{"user":"w-{n}"}}"#)),
            ),
            Mode::Claim => (
                Method::POST,
                "/v1/coupons/bench/claims".to_string(),
                Some(format!(r#"{{"user":"w-{n}"}}"#)),
            ),
            Mode::Hold => (
                Method::POST,
                format!("/v1/events/{}/holds", self.event),
                Some(format!(r#"{{"user":"w-{n}","seats":["{}"]}}"#, seat(n))),
            ),
        };
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        let body = match body {
            Some(s) => {
                b = b
                    .header(CONTENT_TYPE, "application/json")
                    .header(AUTHORIZATION, self.auth.clone());
                Bytes::from(s)
            }
            None => Bytes::new(),
        };
        b.body(Full::new(body)).context("building a request")
    }
}

/// One connection's tally (merged at the end).
#[derive(Debug)]
struct Stats {
    corrected: Histogram<u64>,
    actual: Histogram<u64>,
    /// How late the pacer handed requests over (whole run only).
    pacer_lag: Histogram<u64>,
    ok: u64,
    non_2xx: u64,
    errors: u64,
    unfinished: u64,
    unsent: u64,
    answered_in_window: u64,
    answered: u64,
    /// Worst corrected latency (µs) of the requests due in each slot.
    slots: Vec<u64>,
}

impl Stats {
    fn new() -> Result<Self> {
        Ok(Stats {
            corrected: Histogram::new_with_bounds(1, MAX_US, 3)?,
            actual: Histogram::new_with_bounds(1, MAX_US, 3)?,
            pacer_lag: Histogram::new_with_bounds(1, MAX_US, 3)?,
            ok: 0,
            non_2xx: 0,
            errors: 0,
            unfinished: 0,
            unsent: 0,
            answered_in_window: 0,
            answered: 0,
            slots: Vec::new(),
        })
    }
    /// Notes a measured request's corrected latency in its slot.
    fn slot(&mut self, since_window: Duration, us: u64) {
        let k = (since_window.as_nanos() / SLOT.as_nanos()) as usize;
        if self.slots.len() <= k {
            self.slots.resize(k + 1, 0);
        }
        self.slots[k] = self.slots[k].max(us);
    }
    /// The worst slots: (ms into the measured window, worst µs), worst first.
    fn worst_slots(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = self
            .slots
            .iter()
            .enumerate()
            .map(|(k, &us)| (k as u64 * SLOT.as_millis() as u64, us))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(WORST_SLOTS);
        v
    }
    fn merge(&mut self, o: &Stats) -> Result<()> {
        self.corrected.add(&o.corrected)?;
        self.actual.add(&o.actual)?;
        self.ok += o.ok;
        self.non_2xx += o.non_2xx;
        self.errors += o.errors;
        self.unfinished += o.unfinished;
        self.unsent += o.unsent;
        self.answered_in_window += o.answered_in_window;
        self.answered += o.answered;
        if self.slots.len() < o.slots.len() {
            self.slots.resize(o.slots.len(), 0);
        }
        for (a, &b) in self.slots.iter_mut().zip(&o.slots) {
            *a = (*a).max(b);
        }
        Ok(())
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_US)
}

/// A due request as the pacer hands it over: its number and due offset.
type Due = (u64, Duration);

async fn connect(source: IpAddr, target: SocketAddr) -> Result<http1::SendRequest<Full<Bytes>>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Its error, if any, shows up on the next send.
        let _ = conn.await;
    });
    Ok(sender)
}

/// One connection: sends what the pacer hands it, one at a time, until the
/// pacer is done and every request is answered, or `stop`.
async fn run_connection(
    c: usize,
    source: IpAddr,
    args: (SocketAddr, Schedule, Instant, Instant),
    work: Arc<Workload>,
    mut sender: Option<http1::SendRequest<Full<Bytes>>>,
    mut due: mpsc::UnboundedReceiver<Due>,
) -> Result<Stats> {
    let (target, schedule, start, stop) = args;
    let (w0, w1) = schedule.window();
    let mut stats = Stats::new()?;
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64 ^ (c as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let deadline = tokio::time::Instant::from_std(stop);
    loop {
        let next = tokio::select! {
            d = due.recv() => d,
            _ = tokio::time::sleep_until(deadline) => break,
        };
        let Some((i, at)) = next else { break };
        let measured = schedule.measured(at);
        // xorshift64: the poll's ticket.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let req = work.request(i, rng)?;
        let attempt = async {
            if sender.as_ref().is_none_or(|s| s.is_closed()) {
                sender = Some(connect(source, target).await?);
            }
            let s = sender.as_mut().context("no connection")?;
            s.ready().await?;
            let sent = Instant::now();
            let res = s.send_request(req).await?;
            let status = res.status();
            res.into_body().collect().await?;
            anyhow::Ok((sent, status))
        };
        let outcome = tokio::select! {
            r = attempt => Some(r),
            _ = tokio::time::sleep_until(deadline) => None,
        };
        let done = Instant::now();
        let corrected = micros(done.saturating_duration_since(start + at));
        match outcome {
            None => {
                if measured {
                    stats.unfinished += 1;
                    stats.corrected.saturating_record(corrected);
                    stats.slot(at - w0, corrected);
                }
                break;
            }
            Some(Err(_)) => {
                sender = None;
                if measured {
                    stats.errors += 1;
                }
            }
            Some(Ok((sent, status))) => {
                stats.answered += 1;
                let since = done.saturating_duration_since(start);
                if since >= w0 && since < w1 {
                    stats.answered_in_window += 1;
                }
                if measured {
                    stats.corrected.saturating_record(corrected);
                    stats.slot(at - w0, corrected);
                    stats
                        .actual
                        .saturating_record(micros(done.saturating_duration_since(sent)));
                    if status.is_success() {
                        stats.ok += 1;
                    } else {
                        stats.non_2xx += 1;
                    }
                }
            }
        }
    }
    while let Ok((_, at)) = due.try_recv() {
        if schedule.measured(at) {
            stats.unsent += 1;
        }
    }
    Ok(stats)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count from its `)`.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("no ')' in /proc/<pid>/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the line are 12 and 13 after the name.
    let get = |k: usize| -> Result<u64> {
        f.get(k)
            .context("short /proc/<pid>/stat")?
            .parse::<u64>()
            .context("utime/stime")
    };
    Ok(get(11)? + get(12)?)
}

fn cpu_total(pids: &[u32]) -> Result<u64> {
    pids.iter().map(|&p| cpu_ticks(p)).sum()
}

/// The machine's CPU time so far, in clock ticks: (all but idle and
/// iowait, niced user time), from the first line of `/proc/stat`.
fn machine_ticks() -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse::<u64>().context("/proc/stat field"))
        .collect::<Result<_>>()?;
    ensure!(f.len() >= 5, "short /proc/stat");
    let (nice, idle, iowait) = (f[1], f[3], f[4]);
    Ok((f.iter().sum::<u64>() - idle - iowait, nice))
}

fn quantiles(h: &Histogram<u64>) -> serde_json::Value {
    let q = |p: f64| h.value_at_quantile(p);
    serde_json::json!({
        "p50_us": q(0.50), "p90_us": q(0.90), "p99_us": q(0.99),
        "p999_us": q(0.999), "max_us": h.max(),
    })
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

fn check(args: &Args) -> Result<()> {
    ensure!(args.rate > 0, "--rate must be above 0");
    ensure!(args.connections > 0, "--connections must be above 0");
    ensure!(args.seconds > 0, "--seconds must be above 0");
    ensure!(args.threads > 0, "--threads must be above 0");
    ensure!(
        args.target.ip().is_loopback(),
        "{} is not a loopback address (this probe loads loopback only)",
        args.target
    );
    for s in &args.sources {
        ensure!(
            s.is_loopback() && s.is_ipv4(),
            "--source {s} is not an IPv4 loopback address"
        );
    }
    if args.mode == Mode::Hold {
        let last = args.offset % VENUE_SEATS
            + u64::from(args.rate) * u64::from(args.warmup_seconds + args.seconds);
        ensure!(
            last <= VENUE_SEATS,
            "this hold pass would take seats past the venue's {VENUE_SEATS} (offset + rate × \
             duration = {last}): give it a smaller rate or duration, or a venue of its own"
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    check(&args)?;
    let tickets = match (args.mode, &args.tickets) {
        (Mode::Poll, Some(p)) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let t: Vec<String> = text
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            ensure!(!t.is_empty(), "{} has no tickets", p.display());
            t
        }
        (Mode::Poll, None) => bail!("--mode poll needs --tickets"),
        _ => Vec::new(),
    };
    let work = Arc::new(Workload {
        mode: args.mode,
        host: HeaderValue::from_str(&args.target.to_string())?,
        auth: HeaderValue::from_str(&format!("Bearer {}", args.service_token))
            .context("--service-token")?,
        tickets,
        event: args.event.clone(),
        offset: args.offset,
    });
    let schedule = Schedule {
        rate: args.rate,
        connections: args.connections,
        warmup_s: args.warmup_seconds,
        seconds: args.seconds,
    };
    let rt = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    let (stats, cpu, (busy, nice)) = rt.block_on(run(&args, schedule, work))?;

    let us_per_tick = 1e6 / rustix::param::clock_ticks_per_second() as f64;
    let cpu_per_req =
        cpu.map(|ticks| ticks as f64 * us_per_tick / stats.answered_in_window.max(1) as f64);
    let achieved = stats.answered_in_window as f64 / f64::from(args.seconds);
    let cores = |ticks: u64| {
        (ticks as f64 * us_per_tick / 1e6 / f64::from(args.seconds) * 100.0).round() / 100.0
    };
    let json = serde_json::json!({
        "target": args.target.to_string(),
        "mode": args.mode.name(),
        "rate": args.rate,
        "connections": args.connections,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup_seconds,
        "achieved_rate": achieved.round(),
        "measured": stats.ok + stats.non_2xx,
        "non_2xx": stats.non_2xx,
        "errors": stats.errors,
        "unfinished": stats.unfinished,
        "unsent": stats.unsent,
        "corrected": quantiles(&stats.corrected),
        "actual": quantiles(&stats.actual),
        "pacer_lag": quantiles(&stats.pacer_lag),
        "worst_10ms_slots": stats.worst_slots(),
        "server_cpu_us_per_req": cpu_per_req.map(|c| (c * 100.0).round() / 100.0),
        // Cores busy over the window, all processes, and niced ones alone.
        "machine_busy_cores": cores(busy),
        "machine_nice_cores": cores(nice),
    });
    println!("{json}");
    let c = &stats.corrected;
    let a = &stats.actual;
    eprintln!(
        "{} {} at {}/s: {:.0}/s achieved; corrected p50 {} p99 {} p99.9 {} max {}; \
         from send p50 {} p99 {}; pacer late p99 {}; non-2xx {}, errors {}, unfinished {}, unsent {}{}; \
         machine {:.2} cores busy, {:.2} niced",
        args.target,
        args.mode.name(),
        args.rate,
        achieved,
        ms(c.value_at_quantile(0.5)),
        ms(c.value_at_quantile(0.99)),
        ms(c.value_at_quantile(0.999)),
        ms(c.max()),
        ms(a.value_at_quantile(0.5)),
        ms(a.value_at_quantile(0.99)),
        ms(stats.pacer_lag.value_at_quantile(0.99)),
        stats.non_2xx,
        stats.errors,
        stats.unfinished,
        stats.unsent,
        cpu_per_req
            .map(|c| format!("; server CPU {c:.2} µs/request"))
            .unwrap_or_default(),
        cores(busy),
        cores(nice),
    );
    Ok(())
}

/// Opens the connections, paces the run from a thread of its own (a
/// blocking sleep is finer than tokio's 1 ms timer), and merges the tallies.
/// The tallies, the servers' CPU ticks, the machine's (busy, niced) ticks.
type Outcome = (Stats, Option<u64>, (u64, u64));

async fn run(args: &Args, schedule: Schedule, work: Arc<Workload>) -> Result<Outcome> {
    // Connect first, so the schedule does not start with 64 handshakes.
    let mut senders = Vec::new();
    for c in 0..args.connections as usize {
        let source = args.sources[c % args.sources.len()];
        let s = connect(source, args.target)
            .await
            .with_context(|| format!("connecting to {} from {source}", args.target))?;
        senders.push(s);
    }
    let start = Instant::now() + Duration::from_millis(50);
    let stop = start + schedule.due(schedule.total().saturating_sub(1)) + DRAIN;
    let mut txs = Vec::new();
    let mut tasks = Vec::new();
    for (c, first) in senders.into_iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel::<Due>();
        txs.push(tx);
        let source = args.sources[c % args.sources.len()];
        let work = work.clone();
        let a = (args.target, schedule, start, stop);
        // The first connection was opened above; later ones on demand.
        tasks.push(tokio::spawn(run_connection(
            c,
            source,
            a,
            work,
            Some(first),
            rx,
        )));
    }
    // The pacer's own lateness (handing a request over after it was due)
    // is part of every corrected latency: it is reported on its own.
    let mut lag = Histogram::<u64>::new_with_bounds(1, MAX_US, 3)?;
    let pacer = std::thread::spawn(move || {
        let total = schedule.total();
        let mut i = 0;
        while i < total {
            let now = Instant::now();
            while i < total && start + schedule.due(i) <= now {
                let due = schedule.due(i);
                if schedule.measured(due) {
                    lag.saturating_record(micros(now.saturating_duration_since(start + due)));
                }
                // A closed channel means the connection gave up: its
                // requests are then neither sent nor counted.
                let _ = txs[schedule.connection(i)].send((i, due));
                i += 1;
            }
            if i < total {
                std::thread::sleep((start + schedule.due(i)).saturating_duration_since(now));
            }
        }
        lag
    });
    // Server and machine CPU over the measured window (the machine's tells
    // whether anything else, a niced compile say, ran meanwhile).
    let (w0, w1) = schedule.window();
    tokio::time::sleep_until(tokio::time::Instant::from_std(start + w0)).await;
    let before = cpu_total(&args.cpu_pids)?;
    let (busy0, nice0) = machine_ticks()?;
    tokio::time::sleep_until(tokio::time::Instant::from_std(start + w1)).await;
    let (busy1, nice1) = machine_ticks()?;
    let cpu = (!args.cpu_pids.is_empty())
        .then(|| cpu_total(&args.cpu_pids).map(|t| t.saturating_sub(before)))
        .transpose()?;
    let machine = (busy1.saturating_sub(busy0), nice1.saturating_sub(nice0));
    let mut stats = Stats::new()?;
    for t in tasks {
        stats.merge(&t.await.context("a connection task panicked")??)?;
    }
    match pacer.join() {
        Ok(lag) => stats.pacer_lag = lag,
        Err(_) => bail!("the pacer thread panicked"),
    }
    Ok((stats, cpu, machine))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched() -> Schedule {
        Schedule {
            rate: 3000,
            connections: 64,
            warmup_s: 1,
            seconds: 2,
        }
    }

    #[test]
    fn schedule_spreads_the_rate_over_connections() {
        let s = sched();
        assert_eq!(s.total(), 9000);
        assert_eq!(s.due(0), Duration::ZERO);
        assert_eq!(s.due(3000), Duration::from_secs(1));
        assert_eq!(s.due(1), Duration::from_nanos(333_333));
        // Due times never go backwards and step by 1/rate.
        for i in 1..s.total() {
            let step = s.due(i) - s.due(i - 1);
            assert!(step >= Duration::from_nanos(333_333) && step <= Duration::from_nanos(333_334));
        }
        // Each connection sends every 64th request: its share of the rate.
        assert_eq!(s.connection(0), 0);
        assert_eq!(s.connection(63), 63);
        assert_eq!(s.connection(64), 0);
        let on_0 = (0..s.total()).filter(|&i| s.connection(i) == 0).count();
        assert_eq!(on_0, 9000_usize.div_ceil(64));
    }

    #[test]
    fn only_the_window_is_measured() {
        let s = sched();
        assert!(!s.measured(s.due(2999)));
        assert!(s.measured(s.due(3000)));
        assert!(s.measured(s.due(8999)));
        assert!(!s.measured(Duration::from_secs(3)));
        let measured = (0..s.total()).filter(|&i| s.measured(s.due(i))).count();
        assert_eq!(measured, 6000);
    }

    #[test]
    fn seats_match_the_wrk_script() {
        assert_eq!(seat(0), "S0-1-1");
        assert_eq!(seat(9_999), "S0-1-10000");
        assert_eq!(seat(10_000), "S0-2-1");
        assert_eq!(seat(999_999), "S9-10-10000");
        assert_eq!(seat(1_000_000), "S0-1-1");
    }

    #[test]
    fn arguments_parse_and_are_checked() {
        use clap::CommandFactory;
        Args::command().debug_assert();
        let a = Args::try_parse_from([
            "paced",
            "127.0.0.1:8080",
            "--rate",
            "30000",
            "--mode",
            "hold",
            "--source",
            "127.0.0.2",
            "--source",
            "127.0.0.3",
            "--offset",
            "5",
            "--event",
            "seats2",
        ])
        .expect("parses");
        assert_eq!(a.connections, 64);
        assert_eq!(a.mode, Mode::Hold);
        assert_eq!(a.sources.len(), 2);
        assert_eq!(a.event, "seats2");
        check(&a).expect("valid");
        // 30,000/s for 12 s is 360,000 seats: fits; 100,000/s does not.
        let big = Args::try_parse_from([
            "paced",
            "127.0.0.1:8080",
            "--rate",
            "100000",
            "--mode",
            "hold",
        ])
        .expect("parses");
        assert!(check(&big).is_err());
        let remote = Args::try_parse_from(["paced", "10.0.0.1:80", "--rate", "1"]).expect("parses");
        assert!(check(&remote).is_err());
        assert!(
            Args::try_parse_from(["paced", "127.0.0.1:80"]).is_err(),
            "--rate is required"
        );
        assert!(
            Args::try_parse_from(["paced", "127.0.0.1:80", "--rate", "1", "--mode", "x"]).is_err()
        );
    }

    #[test]
    fn requests_match_the_wrk_scripts() {
        let w = Workload {
            mode: Mode::Hold,
            host: HeaderValue::from_static("127.0.0.1:1"),
            auth: HeaderValue::from_static("Bearer s"),
            tickets: vec!["t1".into()],
            event: "seats2".into(),
            offset: 10_000,
        };
        let r = w.request(1, 0).expect("request");
        assert_eq!(r.uri(), "/v1/events/seats2/holds");
        assert_eq!(r.headers()[AUTHORIZATION], "Bearer s");
        let poll = Workload {
            mode: Mode::Poll,
            ..w
        };
        let r = poll.request(1, 7).expect("request");
        assert_eq!(
            (r.method(), r.uri().path()),
            (&Method::GET, "/v1/events/bench/queue/t1")
        );
        assert!(r.headers().get(AUTHORIZATION).is_none());
    }

    #[test]
    fn slots_keep_the_worst_and_merge() {
        let mut a = Stats::new().expect("stats");
        a.slot(Duration::from_millis(5), 100);
        a.slot(Duration::from_millis(7), 300);
        a.slot(Duration::from_millis(25), 200);
        let mut b = Stats::new().expect("stats");
        b.slot(Duration::from_millis(31), 900);
        a.merge(&b).expect("merge");
        assert_eq!(a.slots, vec![300, 0, 200, 900]);
        assert_eq!(
            a.worst_slots(),
            vec![(30, 900), (0, 300), (20, 200), (10, 0)]
        );
    }

    #[test]
    fn proc_stat_is_read() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_ok());
        let (busy, nice) = machine_ticks().expect("/proc/stat");
        assert!(busy >= nice);
    }
}
