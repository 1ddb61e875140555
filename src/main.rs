//! `boxoffice serve`: parse flags, print credentials made up for this run,
//! bind, and serve until SIGINT or SIGTERM.

use anyhow::Context;
use boxoffice::config::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")
            .and_then(|rt| rt.block_on(serve(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One clear line (with causes), not a backtrace.
            eprintln!("boxoffice: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: boxoffice::config::ServeArgs) -> anyhow::Result<()> {
    let resolved = args.resolve()?;
    let listener = tokio::net::TcpListener::bind(resolved.listen)
        .await
        .with_context(|| format!("binding {}", resolved.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    for (name, value) in &resolved.generated {
        println!("generated {name}: {value}");
    }
    let s = &resolved.settings;
    match (&s.redis, s.durability) {
        (None, _) => println!("boxoffice listening on http://{addr} (memory only; no --redis)"),
        (Some(_), mode) => println!(
            "boxoffice listening on http://{addr} (replicating to Redis, durability {}); \
             ready once state is recovered",
            match mode {
                boxoffice::config::DurabilityMode::Sync => "sync",
                boxoffice::config::DurabilityMode::Async => "async",
            }
        ),
    }
    if s.demo {
        println!(
            "{}",
            boxoffice::demo::examples(&format!("http://{addr}"), &s.admin_token, &s.service_token)
        );
    }
    boxoffice::run(resolved.settings, listener, shutdown_signal()).await?;
    println!("boxoffice stopped");
    Ok(())
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
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
