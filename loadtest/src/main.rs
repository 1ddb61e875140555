//! `boxoffice-loadtest`: plays a scenario against a boxoffice server on
//! loopback and checks every promise (docs/loadtest.md).
//!
//! `run --scenario FILE --out DIR (--server-bin PATH | --target URL …)`:
//! scenario → start (or reach) the server → create the event and coupon →
//! play the scenario open-loop ([`driver`]) → read the final state back
//! (+ `boxoffice:out` with `--redis`) → `truth::check` → `report.json`,
//! `report.html` in DIR → the summary on stdout. Exit status: 0 when every
//! truth held, 2 when one did not (or the driver's own self-check failed),
//! 1 when the run itself failed.

mod driver;
mod http;
mod recorder;
mod scenario;
mod server;
mod setup;

use anyhow::{bail, ensure, Context, Result};
use boxoffice_loadtest::model::{
    ClientStats, EventSetup, HoldOutcome, IdentityMode, RunData, RunMeta,
};
use boxoffice_loadtest::{report, truth};
use clap::{Parser, Subcommand};
use scenario::Scenario;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(
    name = "boxoffice-loadtest",
    about = "boxoffice's flash-sale simulator (docs/loadtest.md)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Play a scenario and check the truths.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The scenario file (TOML, loadtest/scenarios/).
    #[arg(long)]
    scenario: PathBuf,
    /// Where report.json, report.html and server.log go (created).
    #[arg(long)]
    out: PathBuf,
    /// Start this `boxoffice` binary on a free loopback port (own random
    /// tokens and secret) and kill it at the end.
    #[arg(long, conflicts_with = "target")]
    server_bin: Option<PathBuf>,
    /// A running server: http://127.x.y.z:PORT (loopback only).
    #[arg(long, requires_all = ["admin_token", "service_token"])]
    target: Option<String>,
    #[arg(long, env = "BOXOFFICE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    #[arg(long, env = "BOXOFFICE_SERVICE_TOKEN", hide_env_values = true)]
    service_token: Option<String>,
    /// The server's --secret (needed for identity = "signed" with --target).
    #[arg(long, env = "BOXOFFICE_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// With --server-bin: replicate to a private redis-server and read
    /// `boxoffice:out` back. With --target: see --redis-url.
    #[arg(long)]
    redis: bool,
    /// With --target --redis: the target's Redis (redis://127.x.y.z:PORT).
    #[arg(long, requires = "target")]
    redis_url: Option<String>,
    /// Stretch every duration of the scenario by this factor.
    #[arg(long, default_value_t = 1.0)]
    duration_scale: f64,
    /// Multiply the users of every arrival phase by this factor.
    #[arg(long, default_value_t = 1.0)]
    users_scale: f64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn main() {
    let cli = Cli::parse();
    let Cmd::Run(args) = cli.cmd;
    match run(args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(2),
        Err(e) => {
            eprintln!("boxoffice-loadtest: {e:#}");
            std::process::exit(1);
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The key id the server derives from its secret (src/config.rs `kid`):
/// `k` and the first 4 bytes, in hex, of SHA-256("boxoffice kid v1\0" ‖ secret).
fn kid(secret: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::new()
        .chain_update(b"boxoffice kid v1\0")
        .chain_update(secret)
        .finalize();
    format!(
        "k{}",
        h[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

fn run(args: RunArgs) -> Result<bool> {
    let (mut sc, toml_text) = Scenario::load(&args.scenario)?;
    if args.duration_scale != 1.0 || args.users_scale != 1.0 {
        sc.scale(args.duration_scale, args.users_scale)
            .context("scaling the scenario")?;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let sources = http::source_addrs(sc.limits.source_addrs);

    let (target, mut started) = match (&args.server_bin, &args.target) {
        (Some(bin), None) => {
            let (t, s) = server::start(bin, args.redis, &args.out, sc.limits.max_streams)?;
            (t, Some(s))
        }
        (None, Some(url)) => {
            let addr = http::loopback_target(url)?;
            if let Some(r) = &args.redis_url {
                let rest = r
                    .strip_prefix("redis://")
                    .context("--redis-url must be redis://127.x.y.z:PORT")?;
                http::loopback_target(&format!("http://{}", rest.trim_end_matches('/')))
                    .context("--redis-url: loopback only")?;
            }
            ensure!(
                !args.redis || args.redis_url.is_some(),
                "--target --redis needs --redis-url"
            );
            (
                server::Target {
                    addr,
                    admin_token: args.admin_token.clone().unwrap_or_default(),
                    service_token: args.service_token.clone().unwrap_or_default(),
                    secret: args.secret.clone().unwrap_or_default(),
                    redis_url: args.redis_url.clone(),
                },
                None,
            )
        }
        _ => bail!("give --server-bin PATH or --target http://127.x.y.z:PORT"),
    };
    if sc.event.identity == IdentityMode::Signed {
        ensure!(
            target.secret.len() >= 32,
            "identity = \"signed\" needs the server's --secret (at least 32 bytes) to mint user tokens"
        );
    }
    server::wait_ready(target.addr, started.as_mut(), Duration::from_secs(30))?;
    let server_pid = started.as_ref().map(|s| s.pid.to_string());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(
        &rt,
        play(
            &args,
            sc,
            toml_text,
            &target,
            sources,
            server_pid.as_deref(),
        ),
    );
    // The server dies here (by PID), whatever happened.
    if let Some(mut s) = started.take() {
        s.server.kill();
    }
    let run = result?;
    finish(&args, run)
}

async fn play(
    args: &RunArgs,
    sc: Scenario,
    toml_text: String,
    target: &server::Target,
    sources: Vec<std::net::Ipv4Addr>,
    server_pid: Option<&str>,
) -> Result<RunData> {
    let started_pid = server_pid.and_then(|p| p.parse().ok());
    let auth = http::Auth::new(target.addr, &target.service_token, &target.admin_token)?;
    let mut admin = setup::Admin::new(auth.clone(), sources[0], target.addr);
    let t0 = Instant::now();
    let t0_ms = unix_ms();
    let event = format!("lt-{}-{}", sc.name, radix36(t0_ms));
    let coupon = format!("ltc-{}-{}", sc.name, radix36(t0_ms));
    let opens_at_ms = sc.event.opens_in_s.map(|s| t0_ms + (s * 1000.0) as u64);
    let opens_at = opens_at_ms.map(setup::rfc3339);
    setup::create(&mut admin, &sc, &event, &coupon, opens_at.as_deref()).await?;

    let key = if sc.event.identity == IdentityMode::Signed {
        let s = target.secret.as_bytes();
        Some(boxoffice_engine::PassKey::new(&kid(s), s).context("the secret as a pass key")?)
    } else {
        None
    };
    let load_start = server::loadavg();
    let cpu0 = server::cpu_seconds("self").unwrap_or(0.0);
    let server_cpu0 = server_pid.and_then(server::cpu_seconds);
    let setup_rec = EventSetup {
        event: event.clone(),
        coupon: coupon.clone(),
        capacity: sc.event.capacity,
        admit_per_s: sc.event.admit_per_s,
        session_ttl_s: sc.event.session_ttl_s,
        idle_timeout_s: sc.event.idle_timeout_s,
        poll_budget_per_s: 0,
        prequeue: sc.event.prequeue.as_str().to_string(),
        identity: sc.event.identity,
        opens_at_ms,
        seats: sc.seats() as u32,
        max_seats_per_user: sc.event.holds.max_seats_per_user,
        hold_ttl_s: sc.event.holds.ttl_s,
        coupon_stock: sc.coupon.stock,
        coupon_per_user: sc.coupon.per_user,
    };
    let conns = sc.limits.connections;
    let plan = driver::Plan {
        sc: sc.clone(),
        event: event.clone(),
        coupon: coupon.clone(),
        dst: target.addr,
        auth,
        key,
        sources: sources.clone(),
        t0_ms,
        t0,
        progress: !args.quiet,
        server_pid: started_pid,
    };
    eprintln!(
        "boxoffice-loadtest: {} — {} VUs, {} seats, coupon stock {}, server {}",
        sc.name,
        sc.users(),
        sc.seats(),
        sc.coupon.stock,
        target.addr
    );
    let played = driver::play(plan).await;
    if played.server_died {
        bail!("the server process ended during the run (see server.log in the --out directory)");
    }
    let wall_s = (played.ended_ms.saturating_sub(t0_ms)) as f64 / 1000.0;
    let client_cpu_s = server::cpu_seconds("self").unwrap_or(0.0) - cpu0;
    let server_cpu_s = match (server_pid.and_then(server::cpu_seconds), server_cpu0) {
        (Some(a), Some(b)) => Some(a - b),
        _ => None,
    };
    let server_peak_rss = server_pid.and_then(server::peak_rss);

    let readback = setup::readback(&mut admin, &sc, &event, &coupon)
        .await
        .context("reading the final state back")?;
    let out = match &target.redis_url {
        Some(url) if args.redis => {
            // Replication is asynchronous to nothing here (sync durability),
            // but give the stream a moment to settle after the last request.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let url = url.clone();
            let (e, c) = (event.clone(), coupon.clone());
            Some(
                tokio::task::spawn_blocking(move || setup::read_out(&url, &e, &c))
                    .await
                    .context("reading boxoffice:out")??,
            )
        }
        _ => None,
    };

    let mut limits = Vec::new();
    let core = |s: f64| {
        if wall_s > 0.0 {
            100.0 * s / wall_s
        } else {
            0.0
        }
    };
    let transport: u64 = played
        .errors
        .iter()
        .filter(|e| e.status == 0)
        .map(|e| e.count)
        .sum();
    if core(client_cpu_s) >= 85.0 {
        limits.push(format!(
            "client CPU: {:.0}% of a core (the driver runs on one thread)",
            core(client_cpu_s)
        ));
    }
    if let Some(s) = server_cpu_s {
        if core(s) >= 85.0 {
            limits.push(format!("server CPU: {:.0}% of a core", core(s)));
        }
    }
    // The busiest second of each side: a run can be limited in its peak
    // even when the average is low.
    let busiest = |f: fn(&boxoffice_loadtest::model::SecondStats) -> u32| {
        played
            .seconds
            .iter()
            .map(|s| (f(s), s.t_s))
            .max()
            .unwrap_or((0, 0))
    };
    let (cpu_c, t_c) = busiest(|s| s.client_cpu_pct);
    let (cpu_s, t_s) = busiest(|s| s.server_cpu_pct);
    if cpu_c >= 90 {
        limits.push(format!(
            "client CPU: {cpu_c}% of a core in its busiest second (t = {t_c} s)"
        ));
    }
    if server_cpu_s.is_some() && cpu_s >= 90 {
        limits.push(format!(
            "server CPU: {cpu_s}% of a core in its busiest second (t = {t_s} s)"
        ));
    }
    if played.max_send_lag_ms >= 100 {
        // Behind schedule: either every connection was busy (requests
        // queued in the client) or the client itself was slow to send.
        let why = if played.peak_in_flight >= u64::from(conns) {
            format!("all {conns} connections were busy (requests queued in the client; raise limits.connections)")
        } else {
            "connections were free: the client was slow to send (its CPU, or a busy machine: see the load average)".to_string()
        };
        limits.push(format!(
            "client send lag: up to {} ms behind the open-loop schedule; {why}",
            played.max_send_lag_ms
        ));
    }
    if transport > 0 {
        limits.push(format!("{transport} transport failures or timeouts"));
    }
    if played.timed_out {
        limits.push(format!(
            "stopped at limits.max_duration_s ({} s) with VUs still active",
            sc.limits.max_duration_s
        ));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let load_end = server::loadavg();
    // Only the start says something about others: by the end the load
    // average includes this run itself.
    if load_start >= 0.75 * cpus {
        limits.push(format!(
            "busy machine: load average {load_start:.2} before the run on {cpus} CPUs (other processes competed for them)"
        ));
    }
    if limits.is_empty() {
        limits.push(format!(
            "none: arrivals and requests went out as scheduled (send lag ≤ {} ms)",
            played.max_send_lag_ms
        ));
    }
    limits.push(format!(
        "measured: client CPU {:.0}% of a core, server CPU {}, {:.1} s wall, {} connections over {} source addresses",
        core(client_cpu_s),
        server_cpu_s.map_or("not measured (--target)".to_string(), |s| format!("{:.0}% of a core", core(s))),
        wall_s,
        conns,
        sources.len()
    ));
    let mut setup_rec = setup_rec;
    setup_rec.poll_budget_per_s = played.poll_budget_per_s;

    Ok(RunData {
        meta: RunMeta {
            scenario: sc.name.clone(),
            scenario_toml: toml_text,
            command: std::env::args().collect::<Vec<_>>().join(" "),
            started_at: setup::rfc3339(t0_ms),
            started_ms: t0_ms,
            ended_ms: played.ended_ms,
            sample_ms: sc.sample_ms,
            machine: server::machine(),
            load_start,
            load_end,
            server_cpu_s,
            server_peak_rss,
            client_cpu_s,
            client_peak_rss: server::peak_rss("self").unwrap_or(0),
            redis: out.is_some(),
            limits,
        },
        setup: setup_rec,
        vus: played.vus,
        samples: played.samples,
        seconds: played.seconds,
        ops: played.ops,
        errors: played.errors,
        readback,
        out,
        client: ClientStats {
            source_addrs: sources.iter().map(ToString::to_string).collect(),
            connections: conns,
            peak_streams: played.peak_streams,
            requests: played.requests,
            max_send_lag_ms: played.max_send_lag_ms,
        },
    })
}

fn radix36(mut n: u64) -> String {
    const D: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    loop {
        s.push(D[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8_lossy(&s).into_owned()
}

/// The driver's own sanity checks of what it recorded (the truth checks
/// judge the promises; these catch a driver that recorded nonsense).
fn self_check(run: &RunData) -> Vec<(bool, String)> {
    let mut checks = Vec::new();
    let mut seen = BTreeSet::new();
    let mut dup = 0;
    let mut sold_seats = 0u64;
    for v in &run.vus {
        if let Some(h) = &v.hold {
            if h.outcome == HoldOutcome::Sold {
                for s in &h.seats {
                    sold_seats += 1;
                    if !seen.insert(s.as_str()) {
                        dup += 1;
                    }
                }
            }
        }
    }
    checks.push((
        dup == 0,
        format!("{sold_seats} seats confirmed by VUs, {dup} of them twice"),
    ));
    let letters_sold = run.readback.seats.values().filter(|&&c| c == 'S').count() as u64;
    checks.push((
        letters_sold == run.readback.sold && sold_seats <= run.readback.sold,
        format!(
            "seat maps show {letters_sold} sold, the counts {}, VUs confirmed {sold_seats}",
            run.readback.sold
        ),
    ));
    let claims: u64 = run
        .vus
        .iter()
        .filter_map(|v| v.claim.as_ref())
        .map(|c| 1 + u64::from(c.extra_accepted))
        .sum();
    let returned = run
        .vus
        .iter()
        .filter_map(|v| v.claim.as_ref())
        .filter(|c| c.returned)
        .count() as u64;
    let rb = &run.readback;
    checks.push((
        claims.saturating_sub(returned) <= rb.coupon_stock
            && rb.coupon_issued + rb.coupon_remaining == rb.coupon_stock,
        format!(
            "{claims} claims accepted, {returned} returned; coupon issued {} + remaining {} = stock {}",
            rb.coupon_issued, rb.coupon_remaining, rb.coupon_stock
        ),
    ));
    checks
}

fn finish(args: &RunArgs, run: RunData) -> Result<bool> {
    let admitted = run.vus.iter().filter(|v| v.admitted.is_some()).count();
    let joined = run.vus.iter().filter(|v| v.ticket.is_some()).count();
    let bought = run
        .vus
        .iter()
        .filter(|v| v.purchase == Some(boxoffice_loadtest::model::Purchase::Bought))
        .count();
    let wall_s = run.meta.ended_ms.saturating_sub(run.meta.started_ms) as f64 / 1000.0;
    println!(
        "run: {} VUs arrived, {joined} joined, {admitted} admitted, {bought} bought; {} requests in {wall_s:.1} s ({:.0} req/s); {} errors",
        run.vus.len(),
        run.client.requests,
        run.client.requests as f64 / wall_s.max(1e-3),
        run.errors.iter().map(|e| e.count).sum::<u64>()
    );
    println!(
        "server: sold {} of {} seats, coupon issued {} of {}, served {}",
        run.readback.sold,
        run.setup.seats,
        run.readback.coupon_issued,
        run.readback.coupon_stock,
        run.readback.served
    );
    for l in &run.meta.limits {
        println!("limit: {l}");
    }
    let checks = self_check(&run);
    let mut ok = true;
    for (pass, what) in &checks {
        ok &= pass;
        println!(
            "{} driver self-check: {what}",
            if *pass { "ok  " } else { "FAIL" }
        );
    }
    let verdict = truth::check(&run);
    let json = args.out.join("report.json");
    let html = args.out.join("report.html");
    report::write_json(&run, &verdict, &json).context("writing report.json")?;
    report::write_html(&run, &verdict, &html).context("writing report.html")?;
    print!("{}", report::summary(&run, &verdict));
    println!("report: {} and {}", html.display(), json.display());
    Ok(ok && verdict.passed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_matches_the_server() {
        // The server's own test vector shape (src/config.rs): `k` + 8 hex.
        let k = kid(b"boxoffice-test-vector-secret");
        assert_eq!(k.len(), 9);
        assert!(k.starts_with('k'));
        assert_ne!(k, kid(b"another-secret"));
    }

    #[test]
    fn radix36_is_short() {
        assert_eq!(radix36(0), "0");
        assert_eq!(radix36(35), "z");
        assert_eq!(radix36(36), "10");
    }
}
