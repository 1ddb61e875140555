//! Part of I6's recovery: nothing is served from state before it is
//! recovered. The listener before then: a standby or a recovering server
//! already answers, so probes see it alive (`/healthz` 200) but not ready
//! (`/readyz` and everything else 503 `unavailable` with `Retry-After`).
//! Nothing here touches state; connections are closed after each answer so
//! no client stays attached to this placeholder once the real server runs.

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

fn answer(req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, body) = if req.uri().path() == "/healthz" {
        (StatusCode::OK, r#"{"status":"ok"}"#.to_string())
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
    if status != StatusCode::OK {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// Answers on `listener` as described above until `until` completes, then
/// closes the connections it opened and returns `until`'s output.
pub async fn answer_until<T>(listener: &TcpListener, until: impl Future<Output = T>) -> T {
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
                let svc = service_fn(|req: Request<Incoming>| async move {
                    Ok::<_, Infallible>(answer(&req))
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
