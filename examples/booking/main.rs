//! An example booking backend behind the boxoffice gate: a seat map, seat
//! holds through the service API with the visitor's pass, a coupon, a
//! simulated payment that can fail (and then gives everything back), and a
//! confirmation that ends the visitor's session in the gate.
//!
//! `cargo run --example booking -- --service-token … --event demo`; `make
//! demo` starts it with boxoffice and the gate. The server logic is in
//! `app.rs` (tests run it in-process).

mod app;

use clap::Parser;

/// The example booking backend (reached only through the boxoffice gate).
#[derive(Debug, Parser)]
#[command(
    name = "booking",
    version,
    about = "The example booking backend, reached only through the boxoffice gate"
)]
struct Args {
    /// Address to listen on (keep it on loopback: only the gate may reach it).
    #[arg(long, env = "BOOKING_LISTEN", default_value = "127.0.0.1:8082")]
    listen: std::net::SocketAddr,
    /// Base URL of the boxoffice API.
    #[arg(
        long,
        env = "BOOKING_BOXOFFICE",
        default_value = "http://127.0.0.1:8080"
    )]
    boxoffice: String,
    /// Bearer token of boxoffice's service realm.
    #[arg(long, env = "BOXOFFICE_SERVICE_TOKEN", hide_env_values = true)]
    service_token: String,
    /// The event on sale.
    #[arg(long, env = "BOOKING_EVENT", default_value = "demo")]
    event: String,
    /// The coupon offered at checkout.
    #[arg(long, env = "BOOKING_COUPON", default_value = "demo-coupon")]
    coupon: String,
    /// Probability (0.0 to 1.0) that the simulated payment fails.
    #[arg(long, env = "BOOKING_FAIL_RATE", default_value_t = 0.2, value_parser = fail_rate)]
    fail_rate: f64,
}

fn fail_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("a number from 0.0 to 1.0".into()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = app::Config {
        boxoffice: args.boxoffice,
        service_token: args.service_token,
        event: args.event,
        coupon: args.coupon,
        fail_rate: args.fail_rate,
    };
    if let Err(m) = cfg.validate() {
        // A usage error, said like clap says its own.
        eprintln!("error: {m}");
        std::process::exit(2);
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!(
        "booking backend for event {} on http://{} (boxoffice at {}, fail rate {})",
        cfg.event,
        listener.local_addr()?,
        cfg.boxoffice,
        cfg.fail_rate
    );
    app::serve(listener, cfg, stop_signal()).await?;
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM (`kill`, as `make demo` stops it): stop
/// accepting and let open requests finish.
async fn stop_signal() {
    let term = async {
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
