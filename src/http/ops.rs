//! Operations: Prometheus metrics, liveness and readiness.

use super::errors::ApiError;
use super::{full, json_response, Cx, Reply};
use crate::wire::ops::{HEALTHY, READY};
use http::{header, HeaderValue, Response, StatusCode};

pub async fn metrics(cx: Cx) -> Reply {
    let st = &cx.state;
    let text = st.metrics.render(&st.engine, st.now());
    let mut r = Response::new(full(text));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(r)
}

pub async fn healthz(_cx: Cx) -> Reply {
    Ok(json_response(StatusCode::OK, &HEALTHY))
}

pub async fn readyz(cx: Cx) -> Reply {
    if cx.state.is_ready() {
        Ok(json_response(StatusCode::OK, &READY))
    } else {
        Err(ApiError::unavailable(
            "not serving yet (or shutting down)",
            1,
        ))
    }
}
