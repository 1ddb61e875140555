//! The waiting room: join, status, leave (public) and complete (service).

use super::errors::ApiError;
use super::{json_response, no_content, Cx, Reply};
use crate::commit::Write;
use crate::idempotency::Replay;
use crate::wire::queue::{JoinRequest, StatusDoc};
use boxoffice_engine::{Rejection, TicketView};
use http::StatusCode;
use serde_json::Value;

/// The status document as a JSON value (live streams compare successive ones).
pub fn status_doc(v: &TicketView) -> Value {
    serde_json::to_value(StatusDoc::new(v)).unwrap_or(Value::Null)
}

pub async fn join(mut cx: Cx) -> Reply {
    let id = cx.event_id()?;
    // Refuse floods before doing any work for them.
    if let Err(e) = cx.state.joins.check(cx.client_ip()) {
        cx.state.metrics.rate_limited(cx.route);
        return Err(e.into());
    }
    let key = cx.idempotency_key()?;
    let user = cx.json::<JoinRequest>().await?.user.0;
    let st = &cx.state;
    let now = st.now();
    let replay = match &key {
        Some(k) => st.join_replays.lookup(&id, k, &user, now),
        None => Replay::Fresh,
    };
    if replay == Replay::Conflict {
        return Err(Rejection::IdempotencyKeyReused.into());
    }
    let joined = st.engine.join(&id, &user, now)?;
    let joined = st.commit(joined, Write::Join(&id)).await?;
    let status = match replay {
        Replay::Same(code) => StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
        _ if joined.created => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    if let (Some(k), Replay::Fresh) = (&key, replay) {
        st.join_replays
            .remember(&id, k, &user, status.as_u16(), now);
    }
    Ok(json_response(status, &StatusDoc::new(&joined.view)))
}

fn ticket(cx: &Cx) -> Result<&str, ApiError> {
    let t = cx.param(1);
    // Tickets are short tokens; anything long or odd names no ticket.
    if t.len() > 256 {
        return Err(Rejection::TicketNotFound.into());
    }
    Ok(t)
}

pub async fn status(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let t = ticket(&cx)?;
    let view = cx.state.engine.status(&id, t, cx.state.now())?;
    // After the lookup, so only tickets that exist are tracked (a flood of
    // made-up tickets is 404 and costs no memory here).
    if let Err(e) = cx.state.polls.check(t) {
        cx.state.metrics.poll_limited();
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "this ticket is polled far faster than its poll_after_ms; retry later",
        )
        .retry_after(e.retry_after_s));
    }
    Ok(json_response(StatusCode::OK, &StatusDoc::new(&view)))
}

pub async fn leave(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let st = &cx.state;
    let left = st.engine.leave(&id, ticket(&cx)?, st.now())?;
    st.commit(left, Write::Leave(&id)).await?;
    Ok(no_content())
}

pub async fn complete(mut cx: Cx) -> Reply {
    let id = cx.event_id()?;
    cx.json_opt().await?;
    let st = &cx.state;
    let done = st.engine.complete(&id, ticket(&cx)?, st.now())?;
    st.commit(done, Write::Complete(&id)).await?;
    Ok(no_content())
}
