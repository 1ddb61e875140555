//! Operations: Prometheus metrics, liveness and readiness.

use super::errors::ApiError;
use super::{full, json_response, Cx, Reply};
use crate::wire::ops::{HEALTHY, READY, WRITABLE};
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// With `--metrics-token`: the request's bearer token is that token
/// (compared as SHA-256 digests in constant time, so neither content nor
/// length leaks through timing). `/metrics` lists every event and coupon id.
pub(crate) fn metrics_allowed(headers: &HeaderMap, want: &str) -> bool {
    let Some(v) = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
    else {
        return false;
    };
    let token = match (v.get(..7), v.get(7..)) {
        (Some(scheme), Some(rest)) if scheme.eq_ignore_ascii_case(b"bearer ") => rest.trim_ascii(),
        _ => return false,
    };
    let (got, want): ([u8; 32], [u8; 32]) = (
        Sha256::digest(token).into(),
        Sha256::digest(want.as_bytes()).into(),
    );
    got.ct_eq(&want).into()
}

pub async fn metrics(cx: Cx) -> Reply {
    let st = &cx.state;
    if let Some(want) = &st.settings.metrics_token {
        if !metrics_allowed(&cx.parts.headers, want) {
            return Err(ApiError::unauthorized(
                "/metrics needs Authorization: Bearer <metrics token>",
            ));
        }
    }
    let (held, epoch) = st.durability.lease();
    st.metrics.lease(held, epoch);
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

/// Whether state-changing requests are admitted right now: `/readyz` stays
/// 200 while Redis is away (reads are served from memory), so a load balancer
/// that routes writes checks this one. 503 names the reason.
pub async fn readyz_writes(cx: Cx) -> Reply {
    if !cx.state.is_ready() {
        return Err(ApiError::unavailable(
            "not serving yet (or shutting down)",
            1,
        ));
    }
    match cx.state.admit() {
        Ok(()) => Ok(json_response(StatusCode::OK, &WRITABLE)),
        Err(e) => Err(ApiError::unavailable(
            match e.reason {
                Some(why) => format!("writes are refused now: {why}"),
                None => e.to_string(),
            },
            e.retry_after_s,
        )),
    }
}
