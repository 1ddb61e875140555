//! The ceiling for the HTTP front on this machine: a bare hyper 1.x HTTP/1.1
//! server on the same runtime and stack as `boxoffice serve` (tokio
//! multi-thread, hyper http1, keep-alive) that answers every request with a
//! small JSON body and does nothing else. `scripts/http-bench.sh` measures it
//! side by side with the real server, and the comparison program
//! (`bin/compare.rs`) drives it with the same requests as the server's HTTP
//! side, as the ceiling row.
//!
//! `cargo run --release -p boxoffice-bench --bin bare_hyper -- 127.0.0.1:18081`

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".to_string());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("bare hyper listening on http://{addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                let mut r = Response::new(Full::new(Bytes::from_static(
                    br#"{"state":"waiting","position":1}"#,
                )));
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("application/json"),
                );
                Ok::<_, Infallible>(r)
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
