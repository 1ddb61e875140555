//! The waiting room: join, status, leave (public) and complete (service).

use super::errors::ApiError;
use super::json;
use super::{json_response, no_content, Cx, Reply};
use crate::idempotency::Replay;
use boxoffice_engine::{Rejection, TicketView};
use http::StatusCode;
use serde_json::{json, Value};

/// The status document.
pub fn status_doc(v: &TicketView) -> Value {
    let s = &v.status;
    let mut doc = json!({
        "ticket": s.ticket,
        "event": v.event.as_str(),
        "user": s.user.as_str(),
        "state": s.state.as_str(),
        "position": s.position,
        "waiting": s.waiting,
        "eta_s": s.eta_s,
        "poll_after_ms": s.poll_after_ms,
    });
    if let (Some(pass), Some(exp), Some(obj)) = (&v.pass, v.pass_expires_at, doc.as_object_mut()) {
        obj.insert("pass".into(), Value::from(pass.as_str()));
        obj.insert("pass_expires_at".into(), Value::from(exp.to_rfc3339()));
    }
    doc
}

pub async fn join(mut cx: Cx) -> Reply {
    let id = cx.event_id()?;
    // Refuse floods before doing any work for them.
    if let Err(e) = cx.state.joins.check(cx.peer.ip()) {
        cx.state.metrics.rate_limited(cx.route);
        return Err(e);
    }
    let key = cx.idempotency_key()?;
    let body = cx.json().await?;
    let user = json::object(&body)?.user("user")?;
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
    st.metrics.join(&id, joined.created);
    st.lines.touch(&id);
    st.durable(st.engine.shard_of_event(&id)).await?;
    let status = match replay {
        Replay::Same(code) => StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
        _ if joined.created => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    if let (Some(k), Replay::Fresh) = (&key, replay) {
        st.join_replays
            .remember(&id, k, &user, status.as_u16(), now);
    }
    Ok(json_response(status, &status_doc(&joined.view)))
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
    let view = cx.state.engine.status(&id, ticket(&cx)?, cx.state.now())?;
    Ok(json_response(StatusCode::OK, &status_doc(&view)))
}

pub async fn leave(cx: Cx) -> Reply {
    let id = cx.event_id()?;
    let st = &cx.state;
    st.engine.leave(&id, ticket(&cx)?, st.now())?;
    st.metrics.leave(&id);
    st.lines.touch(&id);
    st.durable(st.engine.shard_of_event(&id)).await?;
    Ok(no_content())
}

pub async fn complete(mut cx: Cx) -> Reply {
    let id = cx.event_id()?;
    cx.json_opt().await?;
    let st = &cx.state;
    st.engine.complete(&id, ticket(&cx)?, st.now())?;
    st.metrics.complete(&id);
    st.lines.touch(&id);
    st.durable(st.engine.shard_of_event(&id)).await?;
    Ok(no_content())
}
