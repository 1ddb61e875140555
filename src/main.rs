//! `boxoffice serve`: parse flags, set up logging, print credentials made up
//! for this run, bind, and serve until SIGINT or SIGTERM.
//!
//! Two outputs, on purpose: stdout carries what a person starting the server
//! reads once (made-up credentials, the `--demo` walkthrough); stderr carries
//! the log (docs/operations.md, "Logs"). Only this binary installs a tracing
//! subscriber: the library emits events and never touches the global one, so
//! tests can run many servers in one process.

use anyhow::Context;
use boxoffice::config::{Cli, Command, DurabilityMode, LogFormat, StoreCommand, StoreNewArgs};
use clap::Parser;
use std::process::ExitCode;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Store(StoreCommand::New(args)) => return store_new(&args),
    };
    let logs = match init_logs(args.log_format, args.access_log) {
        Ok(l) => l,
        Err(e) => {
            // No logger yet: this one line has nowhere else to go.
            eprintln!("boxoffice: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(serve(args)));
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One clear event (with causes), not a backtrace.
            tracing::error!(error = format_args!("{e:#}"), "boxoffice failed");
            ExitCode::FAILURE
        }
    };
    let dropped = logs.dropped.dropped_lines();
    if dropped > 0 {
        tracing::warn!(
            dropped_lines = dropped,
            "log lines were dropped because stderr could not keep up"
        );
    }
    // Dropping the guard flushes every line still queued for stderr.
    drop(logs);
    code
}

struct Logs {
    /// Flushes the log writer's queue when dropped.
    _flush: WorkerGuard,
    /// Counts lines dropped at the queue's limit.
    dropped: ErrorCounter,
}

/// The process's one subscriber: `RUST_LOG` directives on top of `info`,
/// formatted as text or JSON, written to stderr by a background thread.
///
/// Requests only format their line and queue it (bounded, lossy past
/// 128,000 queued lines rather than ever blocking a request on a slow
/// stderr); the writer thread batches lines through a buffer, so a busy
/// server makes one write per batch rather than one per request.
fn init_logs(format: LogFormat, access_log: bool) -> anyhow::Result<Logs> {
    // `info` first, so `RUST_LOG=boxoffice::access=info` changes only the
    // access log (a directive list without a bare level would turn off every
    // target it does not name). The access log is off unless asked for: it
    // costs a measurable share of a poll (docs/benchmarks.md).
    let base = if access_log {
        "info"
    } else {
        "info,boxoffice::access=off"
    };
    let directives = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(v) => format!("{base},{v}"),
        Err(std::env::VarError::NotPresent) => base.to_string(),
        Err(e) => return Err(e).context("reading RUST_LOG"),
    };
    let filter = EnvFilter::builder()
        .parse(&directives)
        .context("RUST_LOG is not a valid filter (e.g. info,boxoffice::access=off)")?;
    let (writer, guard) = NonBlockingBuilder::default()
        .thread_name("boxoffice-log")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer.clone())
        .with_ansi(false);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
    installed
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("installing the log subscriber")?;
    Ok(Logs {
        _flush: guard,
        dropped: writer.error_counter(),
    })
}

async fn serve(args: boxoffice::config::ServeArgs) -> anyhow::Result<()> {
    let resolved = args.resolve()?;
    let listener = tokio::net::TcpListener::bind(resolved.listen)
        .await
        .with_context(|| format!("binding {}", resolved.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let gate = match &resolved.settings.gate {
        None => None,
        Some(g) => Some(
            tokio::net::TcpListener::bind(g.listen)
                .await
                .with_context(|| format!("binding the gate on {}", g.listen))?,
        ),
    };
    // For the person who started the server, not for the log: credentials
    // never go to the log.
    for (name, value) in &resolved.generated {
        println!("generated {name}: {value}");
    }
    let s = &resolved.settings;
    let durability = match (&s.redis, s.durability) {
        (None, _) => "memory",
        (Some(_), DurabilityMode::Sync) => "sync",
        (Some(_), DurabilityMode::Async) => "async",
        (Some(_), DurabilityMode::SyncReplica) => "sync-replica",
    };
    tracing::info!(
        listen = %addr,
        durability,
        shards = s.shards,
        // Whether, not which: a Redis URL may carry a password.
        redis = s.redis.is_some(),
        max_connections = s.limits.max_connections,
        join_rate_per_s = s.limits.join_rate_per_s,
        demo = s.demo,
        version = env!("CARGO_PKG_VERSION"),
        "boxoffice listening on http://{addr}{}",
        if s.redis.is_some() {
            "; ready once state is recovered from Redis"
        } else {
            " (memory only; no --redis)"
        }
    );
    if s.demo {
        // Only what the server made up itself is printed; the operator's
        // own tokens appear as placeholders.
        let made = |name: &str| {
            resolved
                .generated
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        let now = boxoffice::Clock::now(&boxoffice::SystemClock);
        let user_token = boxoffice::demo::user_token(&s.secret, now)
            .map_err(|e| anyhow::anyhow!("minting the demo user token: {e}"))?;
        println!(
            "{}",
            boxoffice::demo::examples(
                &format!("http://{addr}"),
                made("admin token"),
                made("service token"),
                &user_token,
            )
        );
    }
    boxoffice::run(resolved.settings, listener, gate, shutdown_signal()).await?;
    tracing::info!("boxoffice stopped");
    Ok(())
}

/// `boxoffice store new`: prints what the keyspace holds, and with `--yes`
/// starts a new store over it (exit 0); without `--yes` exits 2. Output is
/// for the operator at the terminal, so plain stdout/stderr, no log.
fn store_new(args: &StoreNewArgs) -> ExitCode {
    use boxoffice::replicate::store;
    let run = async {
        let found = store::inspect(&args.redis, &args.prefix)
            .await
            .context("reading the keyspace")?;
        println!("keyspace {}:* holds:\n{found}", args.prefix);
        if !args.yes {
            println!(
                "would: clear any quarantine, write a new store id, set the epoch to at least \
                 now; the data above is kept (delete the keys first to start empty). \
                 Nothing changed: run again with --yes to do it."
            );
            return Ok(false);
        }
        if found.lease.is_some() {
            println!(
                "note: a writer holds the lease; it saw the old store and will stop \
                 writing (restart it to adopt the new store)"
            );
        }
        let started = store::start_new(&args.redis, &args.prefix)
            .await
            .context("starting the new store")?;
        println!(
            "started store {} at epoch {} (was: {}). Restart every boxoffice server on this \
             keyspace: servers that saw the old store refuse the new one until restarted.",
            started.id, started.epoch, started.previous
        );
        anyhow::Ok(true)
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(run));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("boxoffice store new: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
                "SIGTERM"
            }
            Err(_) => std::future::pending::<&str>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<&str>();
    let signal = tokio::select! {
        () = ctrl_c => "SIGINT",
        s = term => s,
    };
    tracing::info!(
        signal,
        "shutting down: no new connections, in-flight requests finish"
    );
}
