//! Part of I6's recovery: nothing is served from state before it is
//! recovered. The listener before then: a standby or a recovering server
//! already answers, so probes see it alive (`/healthz` 200) but not ready
//! (`/readyz` and everything else 503 `unavailable` with `Retry-After`).
//! `/metrics` answers the series that matter before recovery:
//! `boxoffice_replication_store_lost` (a standby that found the keyspace lost
//! stays here, unready, and an alert must see why) and
//! `boxoffice_replication_lease_held` / `_epoch` (0 while waiting for the
//! lease, the lease's epoch while recovering), so "no writer holds the
//! lease" is visible from the standbys too. Nothing here touches
//! state; connections are closed after each answer so no client stays
//! attached to this placeholder once the real server runs.

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// What the placeholder knows of its replicator, read at accept.
#[derive(Clone, Copy, Debug)]
struct Seen {
    lost: bool,
    lease_held: bool,
    epoch: u64,
}

fn answer(
    req: &Request<Incoming>,
    seen: Seen,
    metrics_token: Option<&str>,
) -> Response<Full<Bytes>> {
    let lost = seen.lost;
    let metrics_refused =
        metrics_token.is_some_and(|t| !crate::http::metrics_allowed(req.headers(), t));
    let (status, body) = if req.uri().path() == "/healthz" {
        (StatusCode::OK, r#"{"status":"ok"}"#.to_string())
    } else if req.uri().path() == "/metrics" && metrics_refused {
        // The same refusal as the real server's: --metrics-token holds here too.
        (
            StatusCode::UNAUTHORIZED,
            r#"{"error":{"code":"unauthorized","message":"/metrics needs Authorization: Bearer <metrics token>"}}"#
                .to_string(),
        )
    } else if req.uri().path() == "/metrics" {
        use super::metrics::{EPOCH, LEASE_HELD, STORE_LOST};
        let epoch = if seen.lease_held { seen.epoch } else { 0 };
        let mut r = Response::new(Full::new(Bytes::from(format!(
            "# HELP {STORE_LOST} 1 if this server found the Redis keyspace lost acknowledged state or changed store, else 0\n\
             # TYPE {STORE_LOST} gauge\n{STORE_LOST} {}\n\
             # HELP {LEASE_HELD} 1 while this server holds the writer lease (recovering or writing), else 0\n\
             # TYPE {LEASE_HELD} gauge\n{LEASE_HELD} {}\n\
             # HELP {EPOCH} Fencing epoch this server writes under while it holds the writer lease, else 0\n\
             # TYPE {EPOCH} gauge\n{EPOCH} {epoch}\n",
            u8::from(lost),
            u8::from(seen.lease_held),
        ))));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    } else if lost {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":{"code":"unavailable","message":"Redis lost acknowledged state (or holds another store); this server refuses it until an operator acts"}}"#
                .to_string(),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":{"code":"unavailable","message":"recovering state from Redis (or waiting for the writer lease)"}}"#
                .to_string(),
        )
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let retry = if lost { "5" } else { "1" };
        h.insert(header::RETRY_AFTER, HeaderValue::from_static(retry));
    }
    r
}

/// Answers on `listener` as described above until `until` completes, then
/// closes the connections it opened and returns `until`'s output. `rep` is
/// the replicator being recovered (whether it found its store lost);
/// `metrics_token` guards `/metrics` as in the real server.
pub async fn answer_until<T>(
    listener: &TcpListener,
    rep: &super::Replicator,
    metrics_token: Option<&str>,
    until: impl Future<Output = T>,
) -> T {
    let mut conns = JoinSet::new();
    tokio::pin!(until);
    let out = loop {
        tokio::select! {
            out = &mut until => break out,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else {
                    // Out of descriptors or a reset during accept: back off briefly.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let seen = Seen {
                    lost: rep.store_lost(),
                    lease_held: rep.holds_lease(),
                    epoch: rep.epoch(),
                };
                let token: Option<std::sync::Arc<str>> = metrics_token.map(Into::into);
                let svc = service_fn(move |req: Request<Incoming>| {
                    let token = token.clone();
                    async move { Ok::<_, Infallible>(answer(&req, seen, token.as_deref())) }
                });
                let mut http = http1::Builder::new();
                http.keep_alive(false);
                conns.spawn(async move {
                    // A client that sends nothing is dropped when recovery ends.
                    let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
        }
    };
    conns.abort_all();
    out
}
