//! `compare`: boxoffice against the usual Redis design, side by side, in one
//! run on this machine; over HTTP also against that design behind an HTTP
//! front (`redis_front`) and against bare hyper (`bare_hyper`, the ceiling).
//! Starts its own `redis-server`s, `boxoffice serve`, `redis_front` and
//! `bare_hyper` on free loopback ports and stops them all by PID.
//!
//! ```text
//! cargo run --release -p boxoffice-bench --bin compare -- --out docs/benchmarks.md
//! cargo run --release -p boxoffice-bench --bin compare -- --quick
//! cargo run --release -p boxoffice-bench --bin compare -- --only http,front,bare
//! ```
//!
//! `--help` lists the options. Exits non-zero if any correctness check fails;
//! then nothing is written.

use anyhow::{Context, Result};
use boxoffice_bench::compare::http_side::build;
use boxoffice_bench::compare::report::Sys;
use boxoffice_bench::compare::{self, chart, memory, report, Options};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// boxoffice against the usual Redis design, side by side, on this machine.
#[derive(Debug, Parser)]
#[command(name = "compare")]
struct Args {
    /// Tiny sizes (the CI smoke run).
    #[arg(long)]
    quick: bool,
    /// Rewrite the marked section of FILE with the report.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write the chart here (default: compare.svg beside --out).
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Client threads (connections) on every side.
    #[arg(
        long,
        visible_alias = "concurrency",
        value_name = "N",
        default_value_t = 16
    )]
    threads: usize,
    /// The redis-server binary to start.
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/redis-server")]
    redis_server: PathBuf,
    /// A `boxoffice` binary (default: build and use target/release/boxoffice).
    #[arg(long, value_name = "PATH")]
    server: Option<PathBuf>,
    /// A `redis_front` binary (default: build and use
    /// target/release/redis_front).
    #[arg(long, value_name = "PATH")]
    front: Option<PathBuf>,
    /// A `bare_hyper` binary (default: build and use target/release/bare_hyper).
    #[arg(long, value_name = "PATH")]
    bare: Option<PathBuf>,
    /// Skip boxoffice's HTTP side (the front and bare hyper still run).
    #[arg(long)]
    no_http: bool,
    /// Run only these systems; the others' rows say so.
    #[arg(
        long,
        value_name = "engine,redis,http,front,bare",
        value_delimiter = ',',
        value_parser = parse_sys
    )]
    only: Option<Vec<Sys>>,
    /// Internal: print the engine's bytes per waiting user for this many
    /// users and exit (the memory probe runs in a fresh child process).
    #[arg(long = "memory-probe", value_name = "USERS", hide = true)]
    memory_probe: Option<u64>,
}

fn parse_sys(s: &str) -> Result<Sys, String> {
    Sys::from_flag(s.trim()).ok_or_else(|| {
        let names: Vec<&str> = Sys::ALL.iter().map(|s| s.flag()).collect();
        format!("unknown system {:?} ({})", s.trim(), names.join(", "))
    })
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("compare: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The binary given, else a fresh release build of it; `Err` (the rows are
/// not run) when its system is not selected.
fn binary(
    systems: &[Sys],
    sys: Sys,
    given: Option<PathBuf>,
    package: &str,
    bin: &str,
) -> Result<Result<PathBuf, String>> {
    if !systems.contains(&sys) {
        return Ok(Err("not selected".into()));
    }
    Ok(Ok(match given {
        Some(p) => p,
        None => build(package, bin)?,
    }))
}

fn real_main() -> Result<ExitCode> {
    let args = Args::parse();
    if let Some(n) = args.memory_probe {
        println!("bytes_per_user={}", memory::engine_probe(n)?);
        return Ok(ExitCode::SUCCESS);
    }

    let mut opts = Options::new(args.quick);
    opts.threads = args.threads;
    opts.redis_server = args.redis_server;
    if let Some(systems) = args.only {
        opts.systems = systems;
    }
    let (out, svg, server, no_http) = (args.out, args.svg, args.server, args.no_http);
    let (front, bare) = (args.front, args.bare);
    opts.command = format!(
        "cargo run --release -p boxoffice-bench --bin compare --{}",
        std::env::args()
            .skip(1)
            .map(|a| format!(" {a}"))
            .collect::<String>()
    );
    opts.memory_probe = memory::Probe::Child(
        std::env::current_exe().context("locating this executable for the memory probe")?,
    );
    opts.server = if no_http {
        Err("--no-http given".into())
    } else {
        binary(&opts.systems, Sys::Http, server, "boxoffice", "boxoffice")?
    };
    opts.front = binary(
        &opts.systems,
        Sys::Front,
        front,
        "boxoffice-bench",
        "redis_front",
    )?;
    opts.bare = binary(
        &opts.systems,
        Sys::Bare,
        bare,
        "boxoffice-bench",
        "bare_hyper",
    )?;
    let svg = svg.or_else(|| out.as_ref().map(|o| o.with_file_name("compare.svg")));

    let report = compare::run(&opts)?;
    let svg_link = svg.as_ref().map(|s| {
        let same_dir = out.as_ref().and_then(|o| o.parent()) == s.parent();
        match s.file_name() {
            Some(name) if same_dir => name.to_string_lossy().into_owned(),
            _ => s.display().to_string(),
        }
    });
    let text = report.markdown(svg_link.as_deref());
    println!("\n{text}");

    let failures = report.failures();
    if !failures.is_empty() {
        eprintln!(
            "compare: {} failed check(s); nothing written:",
            failures.len()
        );
        for f in failures {
            eprintln!("  - {f}");
        }
        return Ok(ExitCode::FAILURE);
    }
    if let Some(path) = &svg {
        chart::write(&report, path)?;
        eprintln!("[compare] chart written to {}", path.display());
    }
    if let Some(path) = &out {
        report::write_section(path, &text)?;
        eprintln!("[compare] section written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn the_memory_probe_flag_is_the_one_the_parent_passes() {
        let a = Args::try_parse_from(["compare", memory::PROBE_FLAG, "1000"]).expect("parses");
        assert_eq!(a.memory_probe, Some(1000));
    }

    #[test]
    fn flags_keep_their_meaning() {
        let a = Args::try_parse_from([
            "compare",
            "--quick",
            "--out",
            "docs/benchmarks.md",
            "--concurrency",
            "4",
            "--only",
            "engine, redis,front,bare",
            "--no-http",
        ])
        .expect("parses");
        assert!(a.quick && a.no_http);
        assert_eq!(a.out, Some(PathBuf::from("docs/benchmarks.md")));
        assert_eq!(a.threads, 4);
        assert_eq!(
            a.only,
            Some(vec![Sys::Engine, Sys::Redis, Sys::Front, Sys::Bare])
        );
        for sys in Sys::ALL {
            assert_eq!(parse_sys(sys.flag()), Ok(sys));
        }
        assert_eq!(a.redis_server, PathBuf::from("/usr/bin/redis-server"));
        assert!(Args::try_parse_from(["compare", "--only", "mysql"]).is_err());
        assert!(Args::try_parse_from(["compare", "--bogus"]).is_err());
    }
}
