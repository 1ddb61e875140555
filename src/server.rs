//! The accept loop: a cap on open connections and one per client address,
//! a header read timeout, and
//! graceful shutdown (stop accepting, close live streams, let in-flight
//! requests finish within a grace period).

use crate::http::limits::ClientConns;
use crate::http::ConnSlot;
use crate::state::AppState;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    gate: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let limits = state.settings.limits.clone();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = ClientConns::new(limits.max_connections_per_client);
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let driver = tokio::spawn(crate::driver::run(state.clone()));
    // The gate stops with the closing flag, as live streams do.
    let gate = match (gate, &state.settings.gate) {
        (Some(l), Some(_)) => Some(tokio::spawn(crate::gate::serve(state.clone(), l))),
        _ => None,
    };
    state.set_ready(true);
    match listener.local_addr() {
        Ok(addr) => {
            tracing::info!(listen = %addr, shards = state.settings.shards, "serving requests")
        }
        Err(e) => {
            tracing::info!(listen_error = %e, shards = state.settings.shards, "serving requests")
        }
    }
    tokio::pin!(shutdown);
    loop {
        // At the cap, stop accepting: new clients wait in the listen backlog.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors or a reset during accept: back off briefly.
                    tracing::warn!(error = %e, "accept failed; retrying in 20 ms");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Over its address's cap, a connection is closed at once, without
        // an answer (its request was not read): one address trickling
        // headers on many connections cannot take every slot and make
        // others wait in the backlog.
        // A trusted proxy carries many clients: it is not capped per client.
        let counted = if limits.trusted_proxies.iter().any(|c| c.contains(peer.ip())) {
            None
        } else {
            let Some(c) = per_client.open(peer.ip()) else {
                state
                    .metrics
                    .connection_refused(crate::metrics::RefusedReason::PerClient);
                drop(tcp);
                drop(slot);
                continue;
            };
            Some(c)
        };
        let _ = tcp.set_nodelay(true);
        let st = state.clone();
        // The slot goes with every request of the connection, so a live
        // stream can give it back (streams have their own cap).
        let slot = ConnSlot::new(
            slot,
            state
                .metrics
                .connection_opened(crate::metrics::Listener::Api),
        );
        // (Handed over as an argument: request extensions would cost a map
        // allocation per request.)
        let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let (st, slot) = (st.clone(), slot.clone());
            async move { Ok::<_, Infallible>(crate::http::handle(st, req, peer, slot).await) }
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(tcp), svc));
        // The slot is freed when the last clone (the service's) is dropped
        // with the connection.
        tokio::spawn(async move {
            let _ = conn.await;
            drop(counted);
        });
    }
    state.set_ready(false);
    drop(listener);
    // Live streams end on this flag; the driver stops too.
    state.closing.send_replace(true);
    let grace = limits.shutdown_grace;
    let open = graceful.count();
    tracing::info!(
        open_connections = open,
        grace_ms = grace.as_millis() as u64,
        "stopped accepting; waiting for in-flight requests"
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "in-flight requests did not finish within the grace period; closing them"
        );
    }
    if let Some(gate) = gate {
        let _ = gate.await;
    }
    let _ = driver.await;
    tracing::info!("HTTP server stopped");
    Ok(())
}
