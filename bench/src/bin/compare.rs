//! `compare`: boxoffice against the usual Redis design, side by side, in one
//! run on this machine. Starts its own `redis-server` and `boxoffice serve`
//! on free loopback ports and stops both by PID.
//!
//! ```text
//! cargo run --release -p boxoffice-bench --bin compare -- --out docs/benchmarks.md
//! cargo run --release -p boxoffice-bench --bin compare -- --quick
//! ```
//!
//! Options: `--quick` (tiny sizes, CI smoke), `--out FILE` (rewrite the marked
//! section of FILE), `--svg FILE` (default: compare.svg beside `--out`),
//! `--threads N` (client threads on every side, default 16), `--redis-server
//! PATH` (default /usr/bin/redis-server), `--server PATH` (a `boxoffice`
//! binary; default: build and use target/release/boxoffice), `--no-http`,
//! `--only engine,redis,http` (run only these; the others' rows say so).
//! Exits non-zero if any correctness check fails; then nothing is written.

use anyhow::{bail, ensure, Context, Result};
use boxoffice_bench::compare::report::Sys;
use boxoffice_bench::compare::{self, chart, memory, report, Options};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("compare: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the server binary in release mode (a no-op when it is fresh) and
/// returns its path.
fn build_server() -> Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--release", "--bin", "boxoffice"])
        .current_dir(&root)
        .status()
        .context("running cargo build --release --bin boxoffice")?;
    ensure!(
        status.success(),
        "cargo build --release --bin boxoffice failed"
    );
    let bin = target.join("release").join("boxoffice");
    ensure!(bin.exists(), "{} is missing after the build", bin.display());
    Ok(bin)
}

fn real_main() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(memory::PROBE_FLAG) {
        let n: u64 = args
            .get(1)
            .and_then(|v| v.parse().ok())
            .context("--memory-probe needs a user count")?;
        println!("bytes_per_user={}", memory::engine_probe(n)?);
        return Ok(ExitCode::SUCCESS);
    }

    let quick = args.iter().any(|a| a == "--quick");
    let mut opts = Options::new(quick);
    let (mut out, mut svg, mut server, mut no_http) = (None, None, None, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--quick" => {}
            "--out" => out = Some(PathBuf::from(value()?)),
            "--svg" => svg = Some(PathBuf::from(value()?)),
            "--threads" | "--concurrency" => {
                opts.threads = value()?.parse().context("--threads: a number")?;
            }
            "--redis-server" => opts.redis_server = PathBuf::from(value()?),
            "--server" => server = Some(PathBuf::from(value()?)),
            "--no-http" => no_http = true,
            "--only" => {
                opts.systems = value()?
                    .split(',')
                    .map(|s| match s.trim() {
                        "engine" => Ok(Sys::Engine),
                        "http" => Ok(Sys::Http),
                        "redis" => Ok(Sys::Redis),
                        other => bail!("--only: unknown system {other:?}"),
                    })
                    .collect::<Result<_>>()?;
            }
            "-h" | "--help" => {
                println!(
                    "compare [--quick] [--out FILE] [--svg FILE] [--threads N] \
                     [--redis-server PATH] [--server PATH] [--no-http] \
                     [--only engine,redis,http]"
                );
                return Ok(ExitCode::SUCCESS);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    opts.command = format!(
        "cargo run --release -p boxoffice-bench --bin compare --{}",
        args.iter().map(|a| format!(" {a}")).collect::<String>()
    );
    opts.memory_probe = memory::Probe::Child(
        std::env::current_exe().context("locating this executable for the memory probe")?,
    );
    opts.server = if no_http || !opts.systems.contains(&Sys::Http) {
        Err("--no-http given".into())
    } else {
        Ok(match server {
            Some(p) => p,
            None => build_server()?,
        })
    };
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
