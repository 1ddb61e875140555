//! The workloads, built once and driven the same way against every system.
//!
//! A [`Plan`] holds the inputs (who joins in which order, which seats each
//! hold asks for, who claims a coupon), generated from a fixed seed so every
//! system sees exactly the same requests. [`drive`] runs a workload with N
//! client threads pulling request indices from a shared counter, and records
//! one latency sample per user-visible operation in an HDR histogram.

use anyhow::{anyhow, Context, Result};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

/// Sizes of every workload; [`Sizes::full`] is what the issue asks for.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Distinct users who join (each once), before the repeat joins.
    pub joiners: usize,
    /// Repeat joins as a percentage of `joiners`.
    pub repeat_pct: usize,
    /// Users admitted per scheduler batch / engine tick.
    pub admit_batch: usize,
    /// Venue: sections × rows × seats per row.
    pub sections: u32,
    pub rows: u32,
    pub per_row: u32,
    /// Hold attempts (each by a new user, 1–4 adjacent seats).
    pub hold_attempts: usize,
    /// Distinct users claiming the coupon, plus `repeat_pct` duplicates.
    pub claimers: usize,
    pub coupon_stock: u32,
    /// The smaller spin-lock coupon run.
    pub spin_claimers: usize,
    pub spin_stock: u32,
    /// Waiting-line sizes for the memory comparison.
    pub memory_users: Vec<u64>,
}

impl Sizes {
    pub fn full() -> Self {
        Sizes {
            joiners: 1_000_000,
            repeat_pct: 10,
            admit_batch: 1_000,
            sections: 10,
            rows: 100,
            per_row: 50,
            hold_attempts: 100_000,
            claimers: 1_000_000,
            coupon_stock: 100_000,
            spin_claimers: 5_000,
            spin_stock: 500,
            memory_users: vec![1_000_000, 10_000_000],
        }
    }

    /// Tiny sizes for the CI smoke run: every code path, a few seconds.
    pub fn quick() -> Self {
        Sizes {
            joiners: 3_000,
            repeat_pct: 10,
            admit_batch: 1_000,
            sections: 1,
            rows: 10,
            per_row: 50,
            hold_attempts: 1_000,
            claimers: 3_000,
            coupon_stock: 300,
            spin_claimers: 300,
            spin_stock: 30,
            memory_users: vec![20_000],
        }
    }

    pub fn seats(&self) -> u64 {
        u64::from(self.sections) * u64::from(self.rows) * u64::from(self.per_row)
    }
}

/// splitmix64: tiny, seedable, good enough to shuffle request orders.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant at these sizes.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// One hold attempt: a user asking for 1–4 adjacent seats of one row.
#[derive(Clone, Debug)]
pub struct HoldReq {
    pub user: usize,
    /// `<section>-<row>-<number>` names, as the HTTP contract spells them.
    pub seats: Vec<String>,
    /// Confirm (pay for) the hold if it succeeds: every second attempt.
    pub confirm: bool,
}

/// Every input of every workload.
#[derive(Debug)]
pub struct Plan {
    pub sizes: Sizes,
    /// User names by index: 20 bytes, `user-000000000000123` (as the memory probe).
    pub users: Vec<String>,
    /// Join requests in order: `joiners` distinct users, then repeats mixed in.
    pub joins: Vec<usize>,
    /// Position polls: every waiting user once, in random order.
    pub polls: Vec<usize>,
    pub holds: Vec<HoldReq>,
    /// Coupon claims: `claimers` distinct users plus duplicates.
    pub claims: Vec<usize>,
    pub spin_claims: Vec<usize>,
}

/// User name of index `i` (the same 20-byte shape as `boxoffice_bench::user`).
pub fn user_name(i: usize) -> String {
    format!("user-{i:015}")
}

/// Seat name in the bench layout (`S<section>-<row>-<number>`, rows from 1).
pub fn seat_name(section: u32, row: u32, number: u32) -> String {
    format!("S{section}-{}-{number}", row + 1)
}

/// `distinct` users in order, plus `distinct * pct / 100` repeats, each placed
/// at a random point after that user's first request.
fn with_repeats(distinct: usize, pct: usize, rng: &mut Rng) -> Vec<usize> {
    let repeats = distinct * pct / 100;
    // Sort keys: first requests sit at `u << 20`; a repeat of `u` lands
    // anywhere after it, so it is never the user's first request.
    let mut keyed: Vec<(u64, usize)> = (0..distinct).map(|u| ((u as u64) << 20, u)).collect();
    for _ in 0..repeats {
        let u = rng.below(distinct as u64) as usize;
        let span = ((distinct - u) as u64) << 20;
        keyed.push((((u as u64) << 20) + 1 + rng.below(span), u));
    }
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, u)| u).collect()
}

impl Plan {
    pub fn new(sizes: Sizes, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let joins = with_repeats(sizes.joiners, sizes.repeat_pct, &mut rng);
        let mut polls: Vec<usize> = (0..sizes.joiners).collect();
        rng.shuffle(&mut polls);
        let holds = (0..sizes.hold_attempts)
            .map(|k| {
                let n = 1 + rng.below(4) as u32;
                let section = rng.below(u64::from(sizes.sections)) as u32;
                let row = rng.below(u64::from(sizes.rows)) as u32;
                let first = 1 + rng.below(u64::from(sizes.per_row.saturating_sub(n) + 1)) as u32;
                HoldReq {
                    user: k,
                    seats: (first..first + n)
                        .map(|num| seat_name(section, row, num))
                        .collect(),
                    confirm: k % 2 == 0,
                }
            })
            .collect();
        let claims = with_repeats(sizes.claimers, sizes.repeat_pct, &mut rng);
        let spin_claims = with_repeats(sizes.spin_claimers, sizes.repeat_pct, &mut rng);
        let n_users = sizes
            .joiners
            .max(sizes.hold_attempts)
            .max(sizes.claimers)
            .max(sizes.spin_claimers);
        Plan {
            users: (0..n_users).map(user_name).collect(),
            sizes,
            joins,
            polls,
            holds,
            claims,
            spin_claims,
        }
    }
}

/// A new latency histogram: 1 ns to 100 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("constant bounds are valid")
}

/// Times `f` and records its latency.
pub fn timed<T>(hist: &mut Histogram<u64>, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    record(hist, start.elapsed());
    out
}

pub fn record(hist: &mut Histogram<u64>, d: Duration) {
    // Saturate rather than fail on an outlier above 100 s.
    hist.saturating_record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1));
}

/// CPU time (user + system) a process has used so far: `pid`, or this
/// process. Read from `/proc/<pid>/stat` in clock ticks of 1/100 s (Linux's
/// fixed `USER_HZ`); `None` off Linux.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the `(comm)`: state is the first, utime the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// CPU used since `before`, if the run was long enough for the 10 ms ticks
/// of `/proc` to give a figure within about 10%.
pub fn cpu_delta(pid: Option<u32>, before: Option<Duration>, run: Duration) -> Option<Duration> {
    if run < Duration::from_millis(100) {
        return None;
    }
    cpu_time(pid).zip(before).map(|(b, a)| b.saturating_sub(a))
}

/// [`cpu_time`] of each process (a system can be several: an HTTP front
/// and its redis-server).
fn cpu_times(pids: &[Option<u32>]) -> Vec<Option<Duration>> {
    pids.iter().map(|p| cpu_time(*p)).collect()
}

/// Each process's [`cpu_delta`]; `None` unless every one was measured.
fn cpu_deltas(
    pids: &[Option<u32>],
    before: &[Option<Duration>],
    run: Duration,
) -> Option<Vec<Duration>> {
    pids.iter()
        .zip(before)
        .map(|(p, b)| cpu_delta(*p, *b, run))
        .collect()
}

/// What one workload run on one system measured.
#[derive(Clone, Debug)]
pub struct Measured {
    /// User-visible operations done (samples in `hist`, or users admitted).
    pub ops: u64,
    pub elapsed: Duration,
    /// Latency per operation (per batch for admission), in nanoseconds.
    pub hist: Histogram<u64>,
    /// CPU time the serving processes used during the run (in process: this
    /// whole process, client loop included).
    pub cpu: Option<Duration>,
    /// `cpu` by process when a system is more than one (an HTTP front, then
    /// its redis-server); empty otherwise.
    pub cpu_parts: Vec<Duration>,
}

impl Measured {
    pub fn from_hist(hist: Histogram<u64>, elapsed: Duration) -> Self {
        Measured {
            ops: hist.len(),
            elapsed,
            hist,
            cpu: None,
            cpu_parts: Vec::new(),
        }
    }

    /// Sets the CPU time from each serving process's share.
    pub fn set_cpu(&mut self, parts: Option<Vec<Duration>>) {
        self.cpu = parts.as_ref().map(|p| p.iter().sum());
        self.cpu_parts = parts.filter(|p| p.len() > 1).unwrap_or_default();
    }

    pub fn throughput(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Serving CPU per operation, in microseconds.
    pub fn cpu_us_per_op(&self) -> Option<f64> {
        self.cpu
            .map(|c| c.as_secs_f64() * 1e6 / self.ops.max(1) as f64)
    }

    /// [`Self::cpu_us_per_op`] of each serving process (see `cpu_parts`).
    pub fn cpu_us_per_op_parts(&self) -> Vec<f64> {
        self.cpu_parts
            .iter()
            .map(|c| c.as_secs_f64() * 1e6 / self.ops.max(1) as f64)
            .collect()
    }

    /// Latency at quantile `q` in microseconds.
    pub fn latency_us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1_000.0
    }
}

/// Runs `total` requests on `threads` client threads. Each thread first builds
/// its state with `init` (a connection, say; not timed), then all start at
/// once and pull request indices from a shared counter; `op` records its own
/// latency samples. Returns the wall time from the common start to the last
/// thread's end, the merged histogram, the CPU time of the processes in
/// `cpu_of` (`None`: this one) and each thread's final state.
pub fn drive<S, I, F>(
    threads: usize,
    total: usize,
    cpu_of: &[Option<u32>],
    init: I,
    op: F,
) -> Result<(Measured, Vec<S>)>
where
    S: Send,
    I: Fn(usize) -> Result<S> + Sync,
    F: Fn(&mut S, usize, &mut Histogram<u64>) -> Result<()> + Sync,
{
    // Small chunks keep threads busy to the end without a shared-counter
    // bottleneck for the in-process engine.
    const CHUNK: usize = 8;
    let threads = threads.max(1);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    // Two barriers: every thread is set up (connected) before the CPU
    // baseline is read, and all start together after it.
    let ready = Barrier::new(threads + 1);
    let go = Barrier::new(threads + 1);
    let fail = |e: anyhow::Error| {
        failed.store(true, Ordering::Relaxed);
        if let Ok(mut slot) = first_error.lock() {
            slot.get_or_insert(e);
        }
    };
    let (cpu, results) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (next, failed, ready, go, init, op, fail) =
                    (&next, &failed, &ready, &go, &init, &op, &fail);
                scope.spawn(move || {
                    let state = init(t);
                    // Everyone waits at the barriers, even a thread whose
                    // set-up failed, so the others are not left hanging.
                    ready.wait();
                    go.wait();
                    // Each thread notes its own start and end: the main
                    // thread may be descheduled while the clients run.
                    let start = Instant::now();
                    let mut state = match state {
                        Ok(s) => s,
                        Err(e) => {
                            fail(e.context(format!("client thread {t} set-up")));
                            return None;
                        }
                    };
                    let mut hist = histogram();
                    let mut last_done = None;
                    'outer: while !failed.load(Ordering::Relaxed) {
                        let first = next.fetch_add(CHUNK, Ordering::Relaxed);
                        if first >= total {
                            break;
                        }
                        for i in first..(first + CHUNK).min(total) {
                            if let Err(e) = op(&mut state, i, &mut hist) {
                                fail(e.context(format!("request {i}")));
                                break 'outer;
                            }
                        }
                        last_done = Some(Instant::now());
                    }
                    // A thread that found no work left (it was scheduled
                    // late) does not stretch the measured time.
                    Some((state, hist, last_done.map(|end| (start, end))))
                })
            })
            .collect();
        ready.wait();
        let cpu0 = cpu_times(cpu_of);
        let t0 = Instant::now();
        go.wait();
        let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        let cpu = cpu_deltas(cpu_of, &cpu0, t0.elapsed());
        (cpu, results)
    });
    if let Some(e) = first_error.lock().ok().and_then(|mut e| e.take()) {
        return Err(e);
    }
    let mut hist = histogram();
    let mut states = Vec::with_capacity(threads);
    let (mut first_start, mut last_end): (Option<Instant>, Option<Instant>) = (None, None);
    for r in results {
        let (state, h, span) = r
            .map_err(|_| anyhow!("a client thread panicked"))?
            .context("a client thread stopped early")?;
        hist.add(&h).context("merging latency histograms")?;
        states.push(state);
        if let Some((start, end)) = span {
            first_start = Some(first_start.map_or(start, |s| s.min(start)));
            last_end = Some(last_end.map_or(end, |e| e.max(end)));
        }
    }
    let elapsed = last_end
        .zip(first_start)
        .map_or(Duration::ZERO, |(e, s)| e.duration_since(s));
    let mut m = Measured::from_hist(hist, elapsed);
    m.set_cpu(cpu);
    Ok((m, states))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_follow_first_requests() {
        let mut rng = Rng::new(7);
        let v = with_repeats(1_000, 10, &mut rng);
        assert_eq!(v.len(), 1_100);
        let mut seen = vec![false; 1_000];
        let mut next_new = 0;
        for u in v {
            if !seen[u] {
                // First requests come in user order.
                assert_eq!(u, next_new);
                next_new += 1;
                seen[u] = true;
            }
        }
        assert_eq!(next_new, 1_000);
    }

    #[test]
    fn holds_fit_in_rows() {
        let plan = Plan::new(Sizes::quick(), 1);
        for h in &plan.holds {
            assert!((1..=4).contains(&h.seats.len()));
            for s in &h.seats {
                let n: u32 = s
                    .rsplit('-')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                assert!((1..=plan.sizes.per_row).contains(&n), "{s}");
            }
        }
    }

    #[test]
    fn drive_counts_every_request() -> Result<()> {
        let (m, states) = drive(
            4,
            1_000,
            &[None],
            |_| Ok(0u64),
            |n, i, h| {
                timed(h, || *n += i as u64);
                Ok(())
            },
        )?;
        assert_eq!(m.ops, 1_000);
        assert_eq!(states.iter().sum::<u64>(), (0..1_000u64).sum::<u64>());
        Ok(())
    }
}
